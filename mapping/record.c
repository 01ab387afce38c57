/* Records and batches: plain data with clear ownership. */
#include "mapping/record.h"

#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

struct weir_record *weir_record_new(void)
{
    return weir_calloc(1, sizeof(struct weir_record));
}

void weir_record_free(struct weir_record *r)
{
    if (!r)
        return;
    free(r->data);
    free(r->id);
    free(r->handle);
    free(r->group_id);
    free(r->dedup_id);
    free(r->attrs_json);
    free(r);
}

struct weir_batch *weir_batch_new(struct weir_mapping *m, uint32_t lane)
{
    struct weir_batch *b = weir_calloc(1, sizeof(*b));
    b->m = m;
    b->lane = lane;
    weir_buf_init(&b->event);
    return b;
}

void weir_batch_free(struct weir_batch *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        weir_record_free(b->records[i]);
    free(b->records);
    weir_buf_deinit(&b->event);
    free(b);
}

void weir_batch_take(struct weir_batch *b, struct weir_record *r)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 16;
        b->records = weir_realloc(b->records, b->cap * sizeof(*b->records));
    }
    b->records[b->n++] = r;
}

long weir_batch_find(const struct weir_batch *b, const char *id, size_t id_len)
{
    for (size_t i = 0; i < b->n; i++) {
        const char *rid = b->records[i]->id;
        if (strlen(rid) == id_len && memcmp(rid, id, id_len) == 0)
            return (long)i;
    }
    return -1;
}

void weir_batch_set_verdicts(struct weir_batch *b, enum weir_verdict v)
{
    for (size_t i = 0; i < b->n; i++)
        b->records[i]->verdict = v;
}

int64_t weir_batch_deadline(const struct weir_batch *b)
{
    int64_t d = 0;
    for (size_t i = 0; i < b->n; i++) {
        int64_t rd = b->records[i]->deadline_ms;
        if (rd && (!d || rd < d))
            d = rd;
    }
    return d;
}
