/* Records and batches: plain data with clear ownership, and the names of verdicts, lanes and
 * delivery kinds for logs. Must never grow behaviour beyond constructors and lookups. */
#include "model/record.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/mem.h"

const char *weir_verdict_name(enum weir_verdict v)
{
    static const char *const names[WEIR_VERDICT_COUNT] = {
        [WEIR_VERDICT_PENDING] = "pending", [WEIR_VERDICT_DONE] = "done",
        [WEIR_VERDICT_RETRY] = "retry",     [WEIR_VERDICT_RELEASE] = "release",
        [WEIR_VERDICT_REJECT] = "reject",
    };
    return (unsigned)v < WEIR_VERDICT_COUNT ? names[v] : "?";
}

const char *weir_delivery_name(enum weir_delivery d)
{
    static const char *const names[WEIR_DELIVERY_COUNT] = {
        [WEIR_DELIVERY_QUEUE] = "queue",
        [WEIR_DELIVERY_ASYNC] = "async",
        [WEIR_DELIVERY_STREAM] = "stream",
    };
    return (unsigned)d < WEIR_DELIVERY_COUNT ? names[d] : "?";
}

bool weir_delivery_invokes(enum weir_delivery d)
{
    return d != WEIR_DELIVERY_ASYNC;
}

uint32_t weir_lane_of(const char *key, size_t len)
{
    uint64_t h = weir_hash_fnv1a64(key, len);
    uint32_t lane = (uint32_t)(h ^ (h >> 32));
    return lane == WEIR_LANE_ANY ? 0 : lane;
}

struct weir_record *weir_record_new(void)
{
    return weir_calloc(1, sizeof(struct weir_record));
}

struct weir_record *weir_record_new_packed(size_t data_len, size_t id_len, size_t stream_len,
                                           bool has_key, size_t key_len)
{
    size_t bytes = sizeof(struct weir_record) + data_len + 1 + id_len + 1 +
                   (stream_len ? stream_len + 1 : 0) + (has_key ? key_len + 1 : 0);
    struct weir_record *r = weir_malloc(bytes);
    memset(r, 0, sizeof(*r));
    char *at = (char *)(r + 1);
    r->packed = true;
    r->data = at;
    r->data[data_len] = '\0';
    r->data_len = data_len;
    at += data_len + 1;
    r->id = at;
    r->id[id_len] = '\0';
    at += id_len + 1;
    if (stream_len) {
        r->stream = at;
        r->stream[stream_len] = '\0';
        at += stream_len + 1;
    }
    if (has_key) {
        r->key = at;
        r->key[key_len] = '\0';
        r->key_len = key_len;
    }
    return r;
}

void weir_record_free(struct weir_record *r)
{
    if (!r)
        return;
    if (r->home)
        r->home->take_back(r->home, r);
    else
        weir_record_destroy(r);
}

void weir_record_destroy(struct weir_record *r)
{
    if (!r)
        return;
    if (!r->packed) {
        free(r->data);
        free(r->id);
        free(r->stream);
        free(r->key);
    }
    free(r->event_name);
    free(r->etag);
    free(r->handle);
    free(r->group_id);
    free(r->dedup_id);
    free(r->attrs_json);
    free(r->reason);
    free(r->headers);
    weir_row_free(r->row);
    free(r);
}

void weir_record_reject(struct weir_record *r, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    free(r->reason);
    r->reason = weir_strdup(text);
    r->verdict = WEIR_VERDICT_REJECT;
}

static void put_u32(char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (char)(v >> (8 * i));
}

static uint32_t get_u32(const char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)(unsigned char)p[i] << (8 * i);
    return v;
}

#define HEADER_NULL_VALUE UINT32_MAX

void weir_headers_add(char **packed, size_t *len, const char *name, size_t name_len,
                      const char *value, size_t value_len)
{
    size_t add = 8 + name_len + (value ? value_len : 0);
    char *p = weir_realloc(*packed, *len + add);
    char *at = p + *len;
    put_u32(at, (uint32_t)name_len);
    memcpy(at + 4, name, name_len);
    put_u32(at + 4 + name_len, value ? (uint32_t)value_len : HEADER_NULL_VALUE);
    if (value && value_len)
        memcpy(at + 8 + name_len, value, value_len);
    *packed = p;
    *len += add;
}

bool weir_headers_next(const char *packed, size_t len, size_t *off, struct weir_header *h)
{
    size_t at = *off;
    if (!packed || at + 4 > len)
        return false;
    size_t name_len = get_u32(packed + at);
    if (name_len > len - at - 4 || len - at - 4 - name_len < 4)
        return false;
    h->name = packed + at + 4;
    h->name_len = name_len;
    uint32_t value_len = get_u32(packed + at + 4 + name_len);
    at += 8 + name_len;
    if (value_len == HEADER_NULL_VALUE) {
        h->value = NULL;
        h->value_len = 0;
    } else {
        if (value_len > len - at)
            return false;
        h->value = packed + at;
        h->value_len = value_len;
        at += value_len;
    }
    *off = at;
    return true;
}

struct weir_batch *weir_batch_new(uint32_t lane)
{
    struct weir_batch *b = weir_calloc(1, sizeof(*b));
    b->lane = lane;
    weir_buf_init(&b->event);
    weir_buf_init(&b->response.payload);
    weir_list_init(&b->link);
    return b;
}

void weir_batch_free(struct weir_batch *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n && !b->borrowed; i++)
        weir_record_free(b->records[i]);
    free(b->records);
    weir_buf_deinit(&b->event);
    weir_buf_deinit(&b->response.payload);
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

int64_t weir_batch_lease_ms(const struct weir_batch *b)
{
    int64_t l = 0;
    for (size_t i = 0; i < b->n; i++) {
        int64_t rl = b->records[i]->lease_ms;
        if (rl && (!l || rl < l))
            l = rl;
    }
    return l;
}

size_t weir_batch_count(const struct weir_batch *b, enum weir_verdict v)
{
    size_t n = 0;
    for (size_t i = 0; i < b->n; i++)
        n += b->records[i]->verdict == v;
    return n;
}
