/* Positions per partition: a ring of the positions read and not yet checkpointed, oldest first,
 * each with a done mark. A position is found by binary search (they increase); the ring's head
 * moves past done positions, and the checkpoint with it. Memory is one entry per record held,
 * which the mapping's bounds limit. */
#include "mapping/positions.h"

#include <stdlib.h>

#include "core/mem.h"

struct entry {
    uint64_t seq;
    bool done;
};

struct part {
    struct entry *ring;
    size_t cap; /* a power of two */
    size_t head;
    size_t len;
    size_t hint;         /* where the next done position most likely is: after the last one */
    uint64_t last;       /* the last position read */
    uint64_t done_below; /* the checkpoint told last */
};

void weir_positions_init(struct weir_positions *p)
{
    weir_u32map_init(&p->parts);
}

static void part_free(struct part *pt)
{
    if (pt)
        free(pt->ring);
    free(pt);
}

void weir_positions_deinit(struct weir_positions *p)
{
    for (size_t i = 0; i < p->parts.cap; i++)
        part_free(p->parts.vals[i]);
    weir_u32map_deinit(&p->parts);
}

static struct entry *at(const struct part *pt, size_t i)
{
    return &pt->ring[(pt->head + i) & (pt->cap - 1)];
}

static void grow(struct part *pt)
{
    size_t cap = pt->cap ? pt->cap * 2 : 64;
    struct entry *ring = weir_malloc(cap * sizeof(*ring));
    for (size_t i = 0; i < pt->len; i++)
        ring[i] = *at(pt, i);
    free(pt->ring);
    pt->ring = ring;
    pt->cap = cap;
    pt->head = 0;
}

bool weir_positions_add(struct weir_positions *p, uint32_t part, uint64_t seq)
{
    struct part *pt = weir_u32map_get(&p->parts, part);
    bool in_order = true;
    if (pt && seq <= pt->last) {
        in_order = false;
        weir_positions_forget(p, part);
        pt = NULL;
    }
    if (!pt) {
        pt = weir_calloc(1, sizeof(*pt));
        pt->done_below = seq;
        weir_u32map_put(&p->parts, part, pt);
    }
    if (pt->len == pt->cap)
        grow(pt);
    *at(pt, pt->len) = (struct entry){seq, false};
    pt->len++;
    pt->last = seq;
    return in_order;
}

bool weir_positions_done(struct weir_positions *p, uint32_t part, uint64_t seq,
                         uint64_t *done_below)
{
    struct part *pt = weir_u32map_get(&p->parts, part);
    if (!pt || !pt->len)
        return false;
    /* A batch is done in order: its next record is most often right after the last one. */
    size_t lo = pt->hint;
    if (lo >= pt->len || at(pt, lo)->seq != seq) {
        size_t hi = pt->len;
        lo = 0;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (at(pt, mid)->seq < seq)
                lo = mid + 1;
            else
                hi = mid;
        }
    }
    if (lo == pt->len || at(pt, lo)->seq != seq)
        return false;
    at(pt, lo)->done = true;
    pt->hint = lo + 1;
    if (lo != 0)
        return false;
    while (pt->len && at(pt, 0)->done) {
        pt->head = (pt->head + 1) & (pt->cap - 1);
        pt->len--;
        pt->hint = pt->hint ? pt->hint - 1 : 0;
    }
    uint64_t below = pt->len ? at(pt, 0)->seq : pt->last + 1;
    if (below <= pt->done_below)
        return false;
    pt->done_below = below;
    *done_below = below;
    return true;
}

size_t weir_positions_held(const struct weir_positions *p, uint32_t part)
{
    const struct part *pt = weir_u32map_get(&p->parts, part);
    return pt ? pt->len : 0;
}

void weir_positions_forget(struct weir_positions *p, uint32_t part)
{
    part_free(weir_u32map_del(&p->parts, part));
}
