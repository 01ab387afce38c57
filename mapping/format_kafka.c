/* The self-managed Kafka event format, whole (reference section 4.2): the encoder (records ->
 * {"eventSource":"SelfManagedKafka",...,"records":{"<topic>-<partition>":[...]}}), the record
 * shape filter patterns see (`value` only), the object itemIdentifier of a partial batch response
 * (section 1.5) and the KafkaBatchInfo of a failure record (section 1.6). It writes bytes only;
 * it must never talk to a broker or decide a verdict. */
#include <assert.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "core/clock.h"
#include "mapping/format_common.h"
#include "model/event.h"

/* Kafka's own limits bound the "<topic>-<partition>" key of the opening: a topic name is at most
 * 249 characters of [a-zA-Z0-9._-] (none of which JSON escapes), a partition an int32 (at most
 * 11 characters, "-2147483648"), joined by one '-'. */
#define KAFKA_TOPIC_MAX     249
#define KAFKA_PARTITION_MAX 11
#define KAFKA_TP_MAX        (KAFKA_TOPIC_MAX + 1 + KAFKA_PARTITION_MAX)

/* How much of a name from the function's answer a reason repeats. */
#define WHY_NAME_MAX 40

/* "<topic>-<partition>", unquoted, into out[]; its length. */
static size_t tp_text(const struct weir_record *r, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s-%" PRId32, r->stream ? r->stream : "", r->partition);
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

/* The key of r's partition in `records` (and in a failure record's recordsInfo), quoted. */
static void append_tp(struct weir_buf *out, const struct weir_record *r)
{
    const char *topic = r->stream ? r->stream : "";
    char part[16];
    int n = snprintf(part, sizeof(part), "-%" PRId32, r->partition);
    /* One JSON string of topic and suffix: write the topic's, then reopen it before the '"'. */
    weir_buf_append_json_str(out, topic, strlen(topic));
    out->len--;
    weir_buf_append(out, part, (size_t)n);
    weir_buf_append_char(out, '"');
}

/* The opening names the batch's partition. Without a record it must be at least as long as any
 * real one: the batcher counts it against the payload limit. */
static void kafka_open(struct weir_buf *out, const struct weir_event_ctx *ctx,
                       const struct weir_record *first)
{
    weir_buf_append_str(out, "{\"eventSource\":\"SelfManagedKafka\",\"bootstrapServers\":");
    weir_format_cstr(out, ctx->endpoint);
    weir_buf_append_str(out, ",\"records\":{");
    if (first) {
        append_tp(out, first);
    } else {
        char pad[KAFKA_TP_MAX + 2];
        memset(pad, 'x', sizeof(pad));
        pad[0] = pad[sizeof(pad) - 1] = '"';
        weir_buf_append(out, pad, sizeof(pad));
    }
    weir_buf_append(out, ":[", 2);
}

/* Header values are Java bytes in AWS's event: signed, so 0x80..0xff read -128..-1. */
static void append_signed_bytes(struct weir_buf *out, const char *v, size_t len)
{
    weir_buf_reserve(out, len * 5 + 2);
    weir_buf_append_char(out, '[');
    for (size_t i = 0; i < len; i++) {
        if (i)
            weir_buf_append_char(out, ',');
        weir_buf_append_i64(out, (signed char)v[i]);
    }
    weir_buf_append_char(out, ']');
}

/* headers: an array of one-member objects, in the record's order (a name may repeat). A null
 * value is written as [] (docs/events.md says why). */
static void append_headers(struct weir_buf *out, const struct weir_record *r)
{
    struct weir_header h;
    size_t off = 0;
    bool first = true;
    weir_buf_append_str(out, ",\"headers\":[");
    while (weir_headers_next(r->headers, r->headers_len, &off, &h)) {
        if (!first)
            weir_buf_append_char(out, ',');
        first = false;
        weir_buf_append_char(out, '{');
        weir_buf_append_json_str(out, h.name, h.name_len);
        weir_buf_append_char(out, ':');
        append_signed_bytes(out, h.value, h.value ? h.value_len : 0);
        weir_buf_append_char(out, '}');
    }
    weir_buf_append_char(out, ']');
}

/* True when s is written in JSON as it is, between quotes (a Kafka topic always is: its
 * characters are [a-zA-Z0-9._-]). */
static bool json_plain(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '"' ||
            s[i] == '\\')
            return false;
    return true;
}

#define PUT_LITERAL(o, lit) (memcpy((o), (lit), sizeof(lit) - 1), (o) + sizeof(lit) - 1)

/* One record's element, written in place after a single reserve: this runs for every record a
 * stream carries, so it avoids an append (and its bounds check) per field. */
static void kafka_append(struct weir_buf *out, const struct weir_event_ctx *ctx,
                         const struct weir_record *r, int first)
{
    static const char create[] = ",\"timestampType\":\"CREATE_TIME\"";
    static const char log_append[] = ",\"timestampType\":\"LOG_APPEND_TIME\"";
    const char *topic = r->stream ? r->stream : "";
    size_t topic_len = strlen(topic);
    bool topic_plain = json_plain(topic, topic_len);
    /* Everything but a topic that needs escaping and the headers, at its longest. */
    size_t most = 1 + sizeof("{\"topic\":\"\",\"partition\":,\"offset\":,\"timestamp\":") +
                  (topic_plain ? topic_len : 0) + 3 * (WEIR_U64_DIGITS + 1) + sizeof(log_append) +
                  sizeof(",\"key\":\"\"") + WEIR_BASE64_LEN(r->key_len) +
                  sizeof(",\"value\":\"\"") + WEIR_BASE64_LEN(r->data_len) +
                  sizeof(",\"headers\":[]}");
    weir_buf_reserve(out, most);
    char *o = out->data + out->len;
    if (!first)
        *o++ = ',';
    o = PUT_LITERAL(o, "{\"topic\":");
    if (topic_plain) {
        *o++ = '"';
        memcpy(o, topic, topic_len);
        o += topic_len;
        *o++ = '"';
    } else {
        out->len = (size_t)(o - out->data);
        weir_buf_append_json_str(out, topic, topic_len);
        weir_buf_reserve(out, most);
        o = out->data + out->len;
    }
    o = PUT_LITERAL(o, ",\"partition\":");
    o = weir_put_i64(o, r->partition);
    o = PUT_LITERAL(o, ",\"offset\":");
    o = weir_put_u64(o, r->seq);
    o = PUT_LITERAL(o, ",\"timestamp\":");
    o = weir_put_i64(o, r->sent_ms);
    if (r->time_type == WEIR_TIME_LOG_APPEND)
        o = PUT_LITERAL(o, log_append);
    else
        o = PUT_LITERAL(o, create);
    /* A null key or value is left out, as Lambda does (aws-lambda-go models both as optional;
     * Powertools had to learn that a tombstone's event has no "value"). */
    if (r->key) {
        o = PUT_LITERAL(o, ",\"key\":\"");
        o = weir_put_base64(o, r->key, r->key_len);
        *o++ = '"';
    }
    if (!r->data_null) {
        o = PUT_LITERAL(o, ",\"value\":\"");
        o = weir_put_base64(o, r->data, r->data_len);
        *o++ = '"';
    }
    if (!r->headers_len) {
        o = PUT_LITERAL(o, ",\"headers\":[]}");
        out->len = (size_t)(o - out->data);
        out->data[out->len] = '\0';
        return;
    }
    out->len = (size_t)(o - out->data);
    append_headers(out, r);
    weir_buf_append_char(out, '}');
}

static void kafka_close(struct weir_buf *out, const struct weir_event_ctx *ctx)
{
    weir_buf_append(out, "]}}", 3);
}

static const struct weir_encoder kafka_encoder = {
    .name = "kafka",
    .open = kafka_open,
    .append = kafka_append,
    .close = kafka_close,
    .close_len = 3,
};

/* ---- what filter patterns see ---- */

/* Lambda filters Kafka records on `value` alone, read as JSON; the filter reads r->data, the
 * bytes before base64. */
static const struct weir_filter_key kafka_keys[] = {
    {"value", WEIR_FILTER_KEY_DATA},
};

static const struct weir_filter_shape kafka_shape = {
    .name = "Kafka",
    .keys = kafka_keys,
    .n_keys = sizeof(kafka_keys) / sizeof(*kafka_keys),
    .plain_data = false,
};

/* ---- the partial batch response's itemIdentifier ---- */

/* s as a reason may show it: at most WHY_NAME_MAX bytes, anything but printable ASCII as '?'. */
static void printable(const char *s, size_t len, char out[WHY_NAME_MAX + 4])
{
    size_t n = len > WHY_NAME_MAX ? WHY_NAME_MAX : len;
    for (size_t i = 0; i < n; i++)
        out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    if (n < len) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

/* The offset: a non-negative JSON integer, or a string of decimal digits (some runtimes write
 * 64-bit numbers as strings). */
static bool read_offset(const json_t *v, uint64_t *off)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0)
            return false;
        *off = (uint64_t)i;
        return true;
    }
    if (!json_is_string(v))
        return false;
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len == 0)
        return false;
    uint64_t acc = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (acc > (UINT64_MAX - d) / 10)
            return false;
        acc = acc * 10 + d;
    }
    *off = acc;
    return true;
}

static long kafka_find_item(const json_t *ident, const struct weir_batch *b, char *why,
                            size_t why_len)
{
    char shown[WHY_NAME_MAX + 4], mine[WHY_NAME_MAX + 4];
    if (!ident || json_is_null(ident)) {
        snprintf(why, why_len, "is %s", ident ? "null" : "missing");
        return -1;
    }
    if (json_is_string(ident) && json_string_length(ident) == 0) {
        snprintf(why, why_len, "is empty");
        return -1;
    }
    if (!json_is_object(ident)) {
        snprintf(why, why_len, "is not an object {\"topic-partition\": ..., \"offset\": ...}");
        return -1;
    }
    const json_t *tp = json_object_get(ident, "topic-partition");
    const json_t *ov = json_object_get(ident, "offset");
    uint64_t offset;
    if (!json_is_string(tp)) {
        snprintf(why, why_len, "has no \"topic-partition\" string");
        return -1;
    }
    if (!ov) {
        snprintf(why, why_len, "has no \"offset\"");
        return -1;
    }
    if (!read_offset(ov, &offset)) {
        snprintf(why, why_len, "has an \"offset\" that is not a non-negative integer");
        return -1;
    }
    const char *name = json_string_value(tp);
    size_t name_len = json_string_length(tp);
    char key[KAFKA_TOPIC_MAX + 16];
    size_t key_len = b->n ? tp_text(b->records[0], key, sizeof(key)) : 0;
    printable(name, name_len, shown);
    /* A batch holds one partition, in offset order: the name is checked once, the offset found
     * by halving (a 10,000-record batch naming every record costs no scan per entry). */
    if (!b->n || name_len != key_len || memcmp(name, key, key_len) != 0) {
        printable(key, key_len, mine);
        snprintf(why, why_len, "names topic-partition \"%s\", not this batch's \"%s\"", shown,
                 mine);
        return -1;
    }
    size_t lo = 0, hi = b->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->records[mid]->seq < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < b->n && b->records[lo]->seq == offset)
        return (long)lo;
    snprintf(why, why_len, "offset %" PRIu64 " of \"%s\" is not in the batch", offset, shown);
    return -1;
}

/* ---- the failure record's KafkaBatchInfo ---- */

static void append_u64_str(struct weir_buf *out, uint64_t v)
{
    weir_buf_append_char(out, '"');
    weir_format_u64(out, v);
    weir_buf_append_char(out, '"');
}

static void kafka_batch_info(struct weir_buf *out, const struct weir_event_ctx *ctx,
                             struct weir_record *const *records, size_t n)
{
    assert(n > 0);
    const struct weir_record *first = records[0], *last = records[n - 1];
    uint64_t payload = 0;
    for (size_t i = 0; i < n; i++)
        payload += records[i]->data_null ? 0 : records[i]->data_len;

    weir_buf_append_str(out, "\"KafkaBatchInfo\":{\"batchSize\":");
    weir_format_u64(out, n);
    weir_buf_append_str(out, ",\"eventSourceArn\":");
    weir_format_cstr(out, ctx->source_arn);
    weir_buf_append_str(out, ",\"bootstrapServers\":");
    weir_format_cstr(out, ctx->endpoint);
    weir_buf_append_str(out, ",\"payloadSize\":");
    weir_format_u64(out, payload);
    weir_buf_append_str(out, ",\"recordsInfo\":{");
    append_tp(out, first);
    weir_buf_append_str(out, ":{\"firstRecordOffset\":");
    append_u64_str(out, first->seq);
    weir_buf_append_str(out, ",\"lastRecordOffset\":");
    append_u64_str(out, last->seq);
    weir_buf_append_str(out, ",\"firstRecordTimestamp\":");
    weir_format_time_str(out, first->sent_ms);
    weir_buf_append_str(out, ",\"lastRecordTimestamp\":");
    weir_format_time_str(out, last->sent_ms);
    weir_buf_append_str(out, "}}}");
}

const struct weir_event_format weir_format_kafka = {
    .name = "SelfManagedKafka",
    .encoder = &kafka_encoder,
    .filter_shape = &kafka_shape,
    .find_item = kafka_find_item,
    .batch_info = kafka_batch_info,
};
