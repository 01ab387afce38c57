/* The batcher: records -> batches, one open batch per lane, each closed on size, window (counted
 * from its first record), payload limit or an explicit flush, with its event built as the
 * records arrive. Pure: it owns no timer and does no I/O; it must never invoke or drop a record.
 * Each record is encoded exactly once, into scratch, so the size check costs no second pass. */
#include "mapping/batcher.h"

#include <assert.h>
#include <string.h>

#include "core/clock.h"

/* Every event shape weir writes is a JSON array of records: one comma between elements. */
#define SEPARATOR_LEN 1

#define SCRATCH_KEEP_MAX (256 * 1024)
/* The most a new batch's event buffer is sized to before its records arrive (its capacity then
 * rounds up to 1 MiB). */
#define EVENT_PRESIZE_MAX (1024 * 1024 - 2)

void weir_batcher_init(struct weir_batcher *bt, const struct weir_batcher_cfg *cfg,
                       weir_batcher_flush_fn flush, void *arg)
{
    assert(cfg->batch_size >= 1);
    assert(cfg->encoder && cfg->ctx && flush);
    memset(bt, 0, sizeof(*bt));
    bt->cfg = *cfg;
    bt->flush = flush;
    bt->arg = arg;
    weir_u32map_init(&bt->by_lane);
    weir_list_init(&bt->open);
    weir_buf_init(&bt->scratch);
    cfg->encoder->open(&bt->scratch, cfg->ctx, NULL);
    bt->open_len = bt->scratch.len;
}

/* Forgets b as an open batch; the caller now owns it. */
static void detach(struct weir_batcher *bt, struct weir_batch *b)
{
    weir_u32map_del(&bt->by_lane, b->lane);
    weir_list_remove(&b->link);
    bt->pending -= b->n;
}

void weir_batcher_deinit(struct weir_batcher *bt)
{
    struct weir_batch *b;
    while ((b = weir_batcher_steal(bt)))
        weir_batch_free(b);
    weir_u32map_deinit(&bt->by_lane);
    weir_buf_deinit(&bt->scratch);
}

/* Completes b's event and hands it over. It is detached first, so a callback that adds records
 * to the same lane starts a fresh batch. */
static void close_batch(struct weir_batcher *bt, struct weir_batch *b)
{
    bt->last_closed_records = b->n;
    detach(bt, b);
    bt->cfg.encoder->close(&b->event, bt->cfg.ctx);
    bt->flush(bt->arg, b);
}

/* What the next batch's event will likely take: as many records as the last batch closed with,
 * each the size of the last record's element. A new batch's buffer starts there, so filling it
 * does not copy it through a dozen reallocations (at batch 1000, 5% of the Kafka source's CPU);
 * batches that close small on their window start small. Bounded: the buffer's capacity rounds up
 * to a power of two, so this stays below one. */
static size_t event_estimate(const struct weir_batcher *bt)
{
    size_t records = bt->last_closed_records ? bt->last_closed_records : 1;
    size_t total = bt->open_len + records * bt->last_event_bytes + bt->cfg.encoder->close_len;
    if (total > bt->cfg.max_bytes)
        total = bt->cfg.max_bytes;
    return total < EVENT_PRESIZE_MAX ? total : EVENT_PRESIZE_MAX;
}

bool weir_batcher_add(struct weir_batcher *bt, struct weir_record *r)
{
    const struct weir_encoder *enc = bt->cfg.encoder;

    /* Into the lane's open batch directly, when it has one and the record fits: the element is
     * written once, not written and copied. */
    struct weir_batch *open = weir_u32map_get(&bt->by_lane, r->lane);
    if (open) {
        size_t mark = open->event.len;
        weir_buf_append_char(&open->event, ',');
        enc->append(&open->event, bt->cfg.ctx, r, 1);
        if (open->event.len + enc->close_len <= bt->cfg.max_bytes) {
            r->event_bytes = open->event.len - mark - 1 + SEPARATOR_LEN;
            bt->last_event_bytes = r->event_bytes;
            weir_batch_take(open, r);
            bt->pending++;
            if (open->n >= bt->cfg.batch_size)
                close_batch(bt, open);
            return true;
        }
        open->event.len = mark; /* it does not fit: taken back, and on below */
        open->event.data[mark] = '\0';
    }

    weir_buf_reset(&bt->scratch);
    enc->append(&bt->scratch, bt->cfg.ctx, r, 1);
    r->event_bytes = bt->scratch.len + SEPARATOR_LEN;
    bt->last_event_bytes = r->event_bytes;

    /* An event holding this record alone: its opening, the element and the closing. */
    if (bt->open_len + bt->scratch.len + enc->close_len > bt->cfg.max_bytes) {
        if (bt->scratch.cap > SCRATCH_KEEP_MAX)
            weir_buf_deinit(&bt->scratch);
        return false;
    }

    struct weir_batch *b = weir_u32map_get(&bt->by_lane, r->lane);
    if (b && b->event.len + SEPARATOR_LEN + bt->scratch.len + enc->close_len > bt->cfg.max_bytes) {
        close_batch(bt, b);
        b = NULL;
    }
    if (!b) {
        b = weir_batch_new(r->lane);
        b->opened_ms = weir_clock_mono_ms();
        weir_buf_reserve(&b->event, event_estimate(bt));
        enc->open(&b->event, bt->cfg.ctx, r);
        weir_u32map_put(&bt->by_lane, r->lane, b);
        weir_list_push_back(&bt->open, &b->link);
    } else {
        weir_buf_append_char(&b->event, ',');
    }
    weir_buf_append(&b->event, bt->scratch.data, bt->scratch.len);
    weir_batch_take(b, r);
    bt->pending++;
    /* Keep scratch sized for ordinary records: one 6 MB message must not pin 8 MB per mapping
     * for the rest of the run, and copying a large record costs more than reallocating. */
    if (bt->scratch.cap > SCRATCH_KEEP_MAX)
        weir_buf_deinit(&bt->scratch);

    if (b->n >= bt->cfg.batch_size)
        close_batch(bt, b);
    return true;
}

void weir_batcher_flush_lane(struct weir_batcher *bt, uint32_t lane)
{
    struct weir_batch *b = weir_u32map_get(&bt->by_lane, lane);
    if (b)
        close_batch(bt, b);
}

void weir_batcher_flush(struct weir_batcher *bt)
{
    struct weir_list *node;
    while ((node = weir_list_first(&bt->open)))
        close_batch(bt, weir_list_entry(node, struct weir_batch, link));
}

void weir_batcher_flush_unless(struct weir_batcher *bt, bool (*hold)(void *arg, uint32_t lane),
                               void *arg)
{
    struct weir_list *node, *tmp;
    weir_list_foreach_safe(node, tmp, &bt->open)
    {
        struct weir_batch *b = weir_list_entry(node, struct weir_batch, link);
        if (!hold(arg, b->lane))
            close_batch(bt, b);
    }
}

int64_t weir_batcher_due_ms(const struct weir_batcher *bt)
{
    struct weir_list *node = weir_list_first(&bt->open);
    if (!node || bt->cfg.window_ms <= 0)
        return -1;
    return weir_list_entry(node, struct weir_batch, link)->opened_ms + bt->cfg.window_ms;
}

void weir_batcher_tick(struct weir_batcher *bt)
{
    int64_t due;
    while ((due = weir_batcher_due_ms(bt)) >= 0 && weir_clock_mono_ms() >= due)
        close_batch(bt, weir_list_entry(weir_list_first(&bt->open), struct weir_batch, link));
}

size_t weir_batcher_pending(const struct weir_batcher *bt)
{
    return bt->pending;
}

size_t weir_batcher_pending_lane(const struct weir_batcher *bt, uint32_t lane)
{
    const struct weir_batch *b = weir_u32map_get(&bt->by_lane, lane);
    return b ? b->n : 0;
}

struct weir_batch *weir_batcher_steal(struct weir_batcher *bt)
{
    struct weir_list *node = weir_list_first(&bt->open);
    if (!node)
        return NULL;
    struct weir_batch *b = weir_list_entry(node, struct weir_batch, link);
    detach(bt, b);
    return b;
}

struct weir_batch *weir_batcher_steal_lane(struct weir_batcher *bt, uint32_t lane)
{
    struct weir_batch *b = weir_u32map_get(&bt->by_lane, lane);
    if (b)
        detach(bt, b);
    return b;
}
