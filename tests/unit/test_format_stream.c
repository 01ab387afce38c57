/* The two stream formats of a Kafka partition: the SelfManagedKafka event (reference section 4.2)
 * and the Kinesis event (section 4.1), key by key and type by type; keys, values and headers as
 * bytes (absent, binary, signed header bytes, null header values, tombstones); the opening the
 * batcher counts; the Kafka itemIdentifier object (section 1.5); the failure records' batch
 * info (section 1.6); and the filter reading the payload key of each. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/buf.h"
#include "core/mem.h"
#include "mapping/filter.h"
#include "model/event.h"
#include "model/record.h"
#include "tests/unit/json_asserts.h"

#define LEN(a) (sizeof(a) / sizeof(*(a)))

/* The reference's example record: {"orderId":"o-17","status":"PAID"} and its base64. */
#define ORDER      "{\"orderId\":\"o-17\",\"status\":\"PAID\"}"
#define ORDER_B64  "eyJvcmRlcklkIjoiby0xNyIsInN0YXR1cyI6IlBBSUQifQ=="
#define SENT_MS    1741083062118LL
#define SENT_ISO   "2025-03-04T10:11:02.118Z"
#define BOOTSTRAP  "broker-1:9092,broker-2:9092"
#define KAFKA_ARN  "arn:aws:kafka:eu-west-1:000000000000:cluster/weir/orders"
#define STREAM_ARN "arn:aws:kinesis:eu-west-1:000000000000:stream/orders"

static const struct weir_event_ctx kafka_ctx = {
    .source_arn = KAFKA_ARN,
    .region = "eu-west-1",
    .endpoint = BOOTSTRAP,
};

static const struct weir_event_ctx kinesis_ctx = {
    .source_arn = STREAM_ARN,
    .region = "eu-west-1",
    .endpoint = BOOTSTRAP,
};

/* A record as the Kafka poller makes it. key NULL: no key; value NULL: a tombstone. */
static struct weir_record *rec(const char *topic, int32_t partition, uint64_t offset,
                               const char *key, size_t key_len, const char *value, size_t value_len)
{
    struct weir_record *r = weir_record_new();
    char id[32];
    snprintf(id, sizeof(id), "%020llu", (unsigned long long)offset);
    r->id = weir_strdup(id);
    r->stream = weir_strdup(topic);
    r->partition = partition;
    r->seq = offset;
    if (key) {
        r->key = weir_malloc(key_len + 1);
        memcpy(r->key, key, key_len);
        r->key[key_len] = '\0';
        r->key_len = key_len;
    }
    if (!value) {
        r->data_null = true;
        value = "";
        value_len = 0;
    }
    r->data = weir_malloc(value_len + 1);
    memcpy(r->data, value, value_len);
    r->data[value_len] = '\0';
    r->data_len = value_len;
    r->sent_ms = SENT_MS;
    r->time_type = WEIR_TIME_CREATE;
    return r;
}

static struct weir_record *rec_str(const char *topic, int32_t partition, uint64_t offset,
                                   const char *key, const char *value)
{
    return rec(topic, partition, offset, key, key ? strlen(key) : 0, value,
               value ? strlen(value) : 0);
}

static void header(struct weir_record *r, const char *name, const char *value, size_t len)
{
    weir_headers_add(&r->headers, &r->headers_len, name, strlen(name), value, len);
}

static struct weir_batch *batch_of(struct weir_record **rs, size_t n)
{
    struct weir_batch *b = weir_batch_new(0);
    for (size_t i = 0; i < n; i++)
        weir_batch_take(b, rs[i]);
    return b;
}

/* Encodes the records as one event (opened with the first record, as the batcher does) into out,
 * checking close_len. */
static void encode_into(struct weir_buf *out, const struct weir_event_format *fmt,
                        struct weir_record *const *rs, size_t n, const struct weir_event_ctx *c)
{
    fmt->encoder->open(out, c, rs[0]);
    for (size_t i = 0; i < n; i++)
        fmt->encoder->append(out, c, rs[i], i == 0);
    size_t before = out->len;
    fmt->encoder->close(out, c);
    assert_int_equal(out->len - before, fmt->encoder->close_len);
}

static json_t *parse(const char *text, size_t len)
{
    json_error_t jerr;
    json_t *j = json_loadb(text, len, JSON_ALLOW_NUL, &jerr);
    if (!j)
        fail_msg("not JSON: %s at %d: %.300s", jerr.text, jerr.position, text);
    return j;
}

static json_t *encode(const struct weir_event_format *fmt, struct weir_record *const *rs, size_t n,
                      const struct weir_event_ctx *c)
{
    struct weir_buf out;
    weir_buf_init(&out);
    encode_into(&out, fmt, rs, n, c);
    json_t *ev = parse(out.data, out.len);
    weir_buf_deinit(&out);
    assert_true(json_is_object(ev));
    return ev;
}

static int b64_value(unsigned char c)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = c ? strchr(tbl, c) : NULL;
    return p ? (int)(p - tbl) : -1;
}

/* Strict base64 (standard alphabet, padded) to bytes; fails the test on anything else. */
static size_t b64_decode(const char *s, char *out)
{
    size_t len = strlen(s), n = 0;
    if (len % 4)
        fail_msg("base64 length %zu is not a multiple of 4: %s", len, s);
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) {
            v[k] =
                s[i + k] == '=' && i + 4 == len && k >= 2 ? 0 : b64_value((unsigned char)s[i + k]);
            if (v[k] < 0)
                fail_msg("not base64: %s", s);
        }
        uint32_t w =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[n++] = (char)(w >> 16);
        if (s[i + 2] != '=')
            out[n++] = (char)(w >> 8);
        if (s[i + 3] != '=')
            out[n++] = (char)w;
    }
    return n;
}

static void assert_b64_of(const char *b64, const char *bytes, size_t len)
{
    char buf[256];
    assert_true(strlen(b64) / 4 * 3 <= sizeof(buf));
    size_t n = b64_decode(b64, buf);
    assert_int_equal(n, len);
    assert_memory_equal(buf, bytes, len);
}

static json_t *kafka_records(json_t *ev, const char *tp, size_t n)
{
    json_t *records = json_object_get(ev, "records");
    assert_true(json_is_object(records));
    assert_int_equal(json_object_size(records), 1);
    json_t *arr = json_object_get(records, tp);
    if (!json_is_array(arr))
        fail_msg("records has no array under %s", tp);
    assert_int_equal(json_array_size(arr), n);
    return arr;
}

/* Asserts the header array element i is {name: [bytes]} with exactly those signed bytes. */
static void assert_header(json_t *headers, size_t i, const char *name, const int *bytes, size_t n)
{
    json_t *h = json_array_get(headers, i);
    assert_true(json_is_object(h));
    assert_int_equal(json_object_size(h), 1);
    json_t *v = json_object_get(h, name);
    if (!json_is_array(v))
        fail_msg("header %zu is not {\"%s\": [...]}", i, name);
    assert_int_equal(json_array_size(v), n);
    for (size_t k = 0; k < n; k++) {
        json_t *e = json_array_get(v, k);
        assert_true(json_is_integer(e));
        assert_int_equal(json_integer_value(e), bytes[k]);
    }
}

/* ==== SelfManagedKafka ======================================================================== */

static const char *const kafka_event_keys[] = {"eventSource", "bootstrapServers", "records", NULL};
static const char *const kafka_record_keys[] = {
    "topic", "partition", "offset", "timestamp", "timestampType", "key", "value", "headers", NULL};

static void kafka_record_has_exactly_the_reference_keys_and_types(void **state)
{
    struct weir_record *r = rec_str("orders", 0, 120, "o-17", ORDER);
    header(r, "trace-id", "trace-1", 7);
    json_t *ev = encode(&weir_format_kafka, &r, 1, &kafka_ctx);

    assert_keys(ev, kafka_event_keys);
    assert_string_equal(str_at(ev, "eventSource"), "SelfManagedKafka");
    assert_string_equal(str_at(ev, "bootstrapServers"), BOOTSTRAP);
    json_t *e = json_array_get(kafka_records(ev, "orders-0", 1), 0);
    assert_keys(e, kafka_record_keys);
    assert_string_equal(str_at(e, "topic"), "orders");
    assert_int_equal(int_at(e, "partition"), 0);
    assert_int_equal(int_at(e, "offset"), 120);
    assert_int_equal(int_at(e, "timestamp"), SENT_MS);
    assert_string_equal(str_at(e, "timestampType"), "CREATE_TIME");
    assert_string_equal(str_at(e, "key"), "by0xNw==");
    assert_string_equal(str_at(e, "value"), ORDER_B64);
    json_t *headers = json_object_get(e, "headers");
    assert_true(json_is_array(headers));
    assert_int_equal(json_array_size(headers), 1);
    static const int trace[] = {116, 114, 97, 99, 101, 45, 49};
    assert_header(headers, 0, "trace-id", trace, LEN(trace));

    json_decref(ev);
    weir_record_free(r);
}

static void kafka_null_key_and_null_value_are_left_out_and_no_headers_is_empty(void **state)
{
    struct weir_record *rs[] = {
        rec_str("orders", 2, 7, NULL, ORDER),
        rec_str("orders", 2, 8, "o-17", NULL),
        rec("orders", 2, 9, "", 0, "", 0),
    };
    json_t *ev = encode(&weir_format_kafka, rs, LEN(rs), &kafka_ctx);
    json_t *arr = kafka_records(ev, "orders-2", 3);

    json_t *no_key = json_array_get(arr, 0);
    assert_null(json_object_get(no_key, "key"));
    assert_string_equal(str_at(no_key, "value"), ORDER_B64);
    assert_int_equal(json_object_size(no_key), LEN(kafka_record_keys) - 2);

    json_t *tomb = json_array_get(arr, 1);
    assert_null(json_object_get(tomb, "value"));
    assert_string_equal(str_at(tomb, "key"), "by0xNw==");
    assert_int_equal(json_object_size(tomb), LEN(kafka_record_keys) - 2);

    /* An empty key and an empty value are bytes, not nulls. */
    json_t *empty = json_array_get(arr, 2);
    assert_keys(empty, kafka_record_keys);
    assert_string_equal(str_at(empty, "key"), "");
    assert_string_equal(str_at(empty, "value"), "");

    for (size_t i = 0; i < LEN(rs); i++) {
        json_t *h = json_object_get(json_array_get(arr, i), "headers");
        assert_true(json_is_array(h));
        assert_int_equal(json_array_size(h), 0);
        weir_record_free(rs[i]);
    }
    json_decref(ev);
}

static void kafka_binary_key_and_value_round_trip_through_base64(void **state)
{
    static const char key[] = {'\0', (char)0xff, (char)0x80, 'a', '"', '\n'};
    static const char value[] = {'{', '\0', (char)0xc3, (char)0x28, (char)0xfe, '}', '\\'};
    for (size_t cut = 0; cut < 3; cut++) {
        /* Every base64 tail: no padding, one '=', two. */
        struct weir_record *r =
            rec("bin", 1, 1, key, sizeof(key) - cut, value, sizeof(value) - cut);
        json_t *ev = encode(&weir_format_kafka, &r, 1, &kafka_ctx);
        json_t *e = json_array_get(kafka_records(ev, "bin-1", 1), 0);
        assert_b64_of(str_at(e, "key"), key, sizeof(key) - cut);
        assert_b64_of(str_at(e, "value"), value, sizeof(value) - cut);
        json_decref(ev);
        weir_record_free(r);
    }
}

static void kafka_header_bytes_are_signed_and_a_null_value_is_an_empty_array(void **state)
{
    struct weir_record *r = rec_str("orders", 0, 1, "k", ORDER);
    header(r, "ascii", "ab", 2);
    header(r, "utf8", "\xc3\xa9", 2);
    header(r, "bin", "\x00\x7f\x80\xff", 4);
    header(r, "nullv", NULL, 0);
    header(r, "empty", "", 0);
    header(r, "dup", "1", 1);
    header(r, "dup", "2", 1);
    header(r, "quo\"te\n", "x", 1);
    json_t *ev = encode(&weir_format_kafka, &r, 1, &kafka_ctx);
    json_t *headers =
        json_object_get(json_array_get(kafka_records(ev, "orders-0", 1), 0), "headers");
    assert_int_equal(json_array_size(headers), 8);

    static const int ab[] = {97, 98}, e_acute[] = {-61, -87}, bin[] = {0, 127, -128, -1};
    static const int one[] = {49}, two[] = {50}, x[] = {120};
    assert_header(headers, 0, "ascii", ab, 2);
    assert_header(headers, 1, "utf8", e_acute, 2);
    assert_header(headers, 2, "bin", bin, 4);
    assert_header(headers, 3, "nullv", NULL, 0);
    assert_header(headers, 4, "empty", NULL, 0);
    assert_header(headers, 5, "dup", one, 1);
    assert_header(headers, 6, "dup", two, 1);
    assert_header(headers, 7, "quo\"te\n", x, 1);
    json_decref(ev);
    weir_record_free(r);
}

static void kafka_timestamp_types_and_large_numbers(void **state)
{
    struct weir_record *rs[] = {
        rec_str("orders", 2147483647, 1099511627781ULL, "a", "1"),
        rec_str("orders", 2147483647, 1099511627782ULL, "a", "2"),
    };
    rs[1]->time_type = WEIR_TIME_LOG_APPEND;
    rs[1]->sent_ms = -1; /* a record without a timestamp */
    json_t *ev = encode(&weir_format_kafka, rs, 2, &kafka_ctx);
    json_t *arr = kafka_records(ev, "orders-2147483647", 2);
    json_t *a = json_array_get(arr, 0), *b = json_array_get(arr, 1);
    assert_string_equal(str_at(a, "timestampType"), "CREATE_TIME");
    assert_string_equal(str_at(b, "timestampType"), "LOG_APPEND_TIME");
    assert_int_equal(int_at(a, "timestamp"), SENT_MS);
    assert_int_equal(int_at(b, "timestamp"), -1);
    assert_int_equal(int_at(a, "partition"), 2147483647);
    assert_int_equal(int_at(a, "offset"), 1099511627781LL);
    assert_int_equal(int_at(b, "offset"), 1099511627782LL);
    json_decref(ev);
    weir_record_free(rs[0]);
    weir_record_free(rs[1]);
}

/* A Kafka topic never needs escaping, but the format does not rely on its source for that: a
 * stream name with a quote, a backslash or a control character is written as JSON escapes it. */
static void kafka_topic_that_needs_escaping_is_escaped(void **state)
{
    const char *topic = "a\"b\\c\td";
    struct weir_record *rs[] = {
        rec_str(topic, -1, 3, "k", "1"),
        rec_str(topic, -1, 4, NULL, "2"),
    };
    header(rs[1], "h", "v", 1);
    json_t *ev = encode(&weir_format_kafka, rs, 2, &kafka_ctx);
    json_t *arr = kafka_records(ev, "a\"b\\c\td--1", 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *e = json_array_get(arr, i);
        assert_int_equal(json_object_size(e), LEN(kafka_record_keys) - 1 - (i == 1));
        assert_string_equal(str_at(e, "topic"), topic);
        assert_int_equal(int_at(e, "partition"), -1);
        assert_int_equal(int_at(e, "offset"), 3 + (int)i);
    }
    assert_int_equal(json_array_size(json_object_get(json_array_get(arr, 1), "headers")), 1);
    json_decref(ev);
    weir_record_free(rs[0]);
    weir_record_free(rs[1]);
}

static void kafka_records_keep_their_order_under_their_partition_key(void **state)
{
    /* A lane of a partition split by key: offsets need not be contiguous. */
    static const uint64_t offsets[] = {120, 121, 125, 130};
    struct weir_record *rs[LEN(offsets)];
    for (size_t i = 0; i < LEN(rs); i++)
        rs[i] = rec_str("my-topic", 3, offsets[i], "k", ORDER);
    json_t *ev = encode(&weir_format_kafka, rs, LEN(rs), &kafka_ctx);
    json_t *arr = kafka_records(ev, "my-topic-3", LEN(rs));
    for (size_t i = 0; i < LEN(rs); i++) {
        json_t *e = json_array_get(arr, i);
        assert_int_equal(int_at(e, "offset"), offsets[i]);
        assert_string_equal(str_at(e, "topic"), "my-topic");
        assert_int_equal(int_at(e, "partition"), 3);
        weir_record_free(rs[i]);
    }
    json_decref(ev);
}

static size_t opening_len(const struct weir_event_format *fmt, const struct weir_event_ctx *c,
                          const struct weir_record *first)
{
    struct weir_buf out;
    weir_buf_init(&out);
    fmt->encoder->open(&out, c, first);
    size_t n = out.len;
    /* The opening and the closing alone are an event without records: JSON. */
    fmt->encoder->close(&out, c);
    json_decref(parse(out.data, out.len));
    weir_buf_deinit(&out);
    return n;
}

static void kafka_opening_without_a_record_is_no_shorter_than_any_real_one(void **state)
{
    char topic[250];
    memset(topic, 'T', 249);
    topic[249] = '\0';
    size_t longest = opening_len(&weir_format_kafka, &kafka_ctx, NULL);
    static const int32_t partitions[] = {0, 7, 2147483647, INT32_MIN};
    for (size_t i = 0; i < LEN(partitions); i++) {
        struct weir_record *r = rec_str(topic, partitions[i], 1, NULL, "1");
        size_t real = opening_len(&weir_format_kafka, &kafka_ctx, r);
        if (real > longest)
            fail_msg("opening for partition %d is %zu bytes, the bound %zu", partitions[i], real,
                     longest);
        weir_record_free(r);
    }
    /* The bound is tight for a legal partition: no more than the longest real opening. */
    struct weir_record *r = rec_str(topic, INT32_MIN, 1, NULL, "1");
    assert_int_equal(opening_len(&weir_format_kafka, &kafka_ctx, r), longest);
    weir_record_free(r);

    /* Kinesis' opening names no partition. */
    r = rec_str(topic, 2147483647, 1, NULL, "1");
    assert_int_equal(opening_len(&weir_format_kinesis, &kinesis_ctx, NULL),
                     opening_len(&weir_format_kinesis, &kinesis_ctx, r));
    weir_record_free(r);
}

/* ---- the Kafka itemIdentifier ---- */

static long find(const struct weir_batch *b, const char *ident_json, char *why, size_t why_len)
{
    json_error_t jerr;
    json_t *ident = json_loads(ident_json, JSON_DECODE_ANY, &jerr);
    if (!ident)
        fail_msg("test identifier is not JSON: %s", ident_json);
    why[0] = '\0';
    long at = weir_format_kafka.find_item(ident, b, why, why_len);
    json_decref(ident);
    return at;
}

static void assert_found(const struct weir_batch *b, const char *ident_json, long want)
{
    char why[160];
    long at = find(b, ident_json, why, sizeof(why));
    if (at != want)
        fail_msg("%s: found %ld, want %ld (%s)", ident_json, at, want, why);
}

/* Refused, with a one-line reason containing `part`. */
static void assert_refused(const struct weir_batch *b, const char *ident_json, const char *part)
{
    char why[160];
    long at = find(b, ident_json, why, sizeof(why));
    if (at != -1)
        fail_msg("%s: found %ld, want refused", ident_json, at);
    if (!why[0] || strchr(why, '\n') || !strstr(why, part))
        fail_msg("%s: reason \"%s\" does not say \"%s\" in one line", ident_json, why, part);
}

static void kafka_item_identifier_names_a_record_by_topic_partition_and_offset(void **state)
{
    struct weir_record *rs[] = {
        rec_str("my-topic", 1, 120, "a", "1"),
        rec_str("my-topic", 1, 121, "b", "2"),
        rec_str("my-topic", 1, 125, "c", "3"),
    };
    struct weir_batch *b = batch_of(rs, LEN(rs));

    assert_found(b, "{\"topic-partition\":\"my-topic-1\",\"offset\":120}", 0);
    assert_found(b, "{\"topic-partition\":\"my-topic-1\",\"offset\":125}", 2);
    assert_found(b, "{\"offset\":121,\"topic-partition\":\"my-topic-1\"}", 1);
    assert_found(b, "{\"topic-partition\":\"my-topic-1\",\"offset\":\"121\"}", 1);
    assert_found(b, "{\"topic-partition\":\"my-topic-1\",\"offset\":\"00125\"}", 2);
    /* Other members are ignored, as in any JSON AWS reads. */
    assert_found(b, "{\"topic-partition\":\"my-topic-1\",\"offset\":120,\"note\":1}", 0);

    assert_refused(b, "{\"topic-partition\":\"my-topic-2\",\"offset\":120}", "my-topic-2");
    assert_refused(b, "{\"topic-partition\":\"my-topic-2\",\"offset\":120}", "my-topic-1");
    assert_refused(b, "{\"topic-partition\":\"my-topic-10\",\"offset\":120}", "topic-partition");
    assert_refused(b, "{\"topic-partition\":\"my-topic\",\"offset\":120}", "topic-partition");
    assert_refused(b, "{\"topic-partition\":\"other-1\",\"offset\":120}", "topic-partition");
    assert_refused(b, "{\"topic-partition\":\"my-topic-1\",\"offset\":122}", "not in the batch");
    assert_refused(b, "{\"topic-partition\":\"my-topic-1\",\"offset\":\"122\"}", "122");
    assert_refused(b, "{\"topic-partition\":\"my-topic-1\"}", "\"offset\"");
    assert_refused(b, "{\"offset\":120}", "\"topic-partition\"");
    assert_refused(b, "{\"topicPartition\":\"my-topic-1\",\"offset\":120}", "\"topic-partition\"");
    assert_refused(b, "{\"topic-partition\":1,\"offset\":120}", "\"topic-partition\"");
    assert_refused(b, "{\"topic-partition\":\"my-topic-1\",\"offset\":-1}", "\"offset\"");
    assert_refused(b, "{\"topic-partition\":\"my-topic-1\",\"offset\":120.0}", "\"offset\"");
    assert_refused(b, "{\"topic-partition\":\"my-topic-1\",\"offset\":\"12a\"}", "\"offset\"");
    assert_refused(b, "{\"topic-partition\":\"my-topic-1\",\"offset\":\"\"}", "\"offset\"");
    assert_refused(b, "{\"topic-partition\":\"my-topic-1\",\"offset\":\"-120\"}", "\"offset\"");
    assert_refused(b, "{\"topic-partition\":\"my-topic-1\",\"offset\":null}", "\"offset\"");
    assert_refused(b, "{\"topic-partition\":\"my-topic-1\",\"offset\":\"18446744073709551615\"}",
                   "not in the batch");
    assert_refused(b, "{\"topic-partition\":\"my-topic-1\",\"offset\":\"18446744073709551616\"}",
                   "\"offset\"");
    assert_found(b, "{\"topic-partition\":\"my-topic-1\",\"offset\":\"000000000000000000120\"}", 0);
    assert_refused(b, "{}", "\"topic-partition\"");
    assert_refused(b, "null", "null");
    assert_refused(b, "\"\"", "empty");
    assert_refused(b, "\"00000000000000000120\"", "not an object");
    assert_refused(b, "120", "not an object");
    assert_refused(b, "[\"my-topic-1\",120]", "not an object");

    /* A missing itemIdentifier reaches find_item as NULL. */
    char why[160];
    assert_int_equal(weir_format_kafka.find_item(NULL, b, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "missing"));

    /* What the function wrote is shown in one line and shortened. */
    assert_refused(b, "{\"topic-partition\":\"a\\nb-1\",\"offset\":120}", "a?b-1");
    char tiny[16];
    assert_int_equal(find(b, "{\"topic-partition\":\"x-1\",\"offset\":1}", tiny, sizeof(tiny)), -1);
    assert_int_equal(strlen(tiny), sizeof(tiny) - 1);

    weir_batch_free(b);
}

static void kafka_batch_info_is_the_reference_kafka_batch_info(void **state)
{
    struct weir_record *rs[] = {
        rec_str("orders", 0, 120, "a", "12345"),
        rec_str("orders", 0, 121, "b", NULL),
        rec_str("orders", 0, 122, "c", "123"),
    };
    rs[2]->sent_ms = SENT_MS + 886;
    struct weir_buf out;
    weir_buf_init(&out);
    weir_buf_append_char(&out, '{');
    weir_format_kafka.batch_info(&out, &kafka_ctx, rs, LEN(rs));
    weir_buf_append_char(&out, '}');
    json_t *doc = parse(out.data, out.len);
    assert_int_equal(json_object_size(doc), 1);
    json_t *info = json_object_get(doc, "KafkaBatchInfo");
    static const char *const keys[] = {"batchSize",   "eventSourceArn", "bootstrapServers",
                                       "payloadSize", "recordsInfo",    NULL};
    assert_keys(info, keys);
    assert_int_equal(int_at(info, "batchSize"), 3);
    assert_string_equal(str_at(info, "eventSourceArn"), KAFKA_ARN);
    assert_string_equal(str_at(info, "bootstrapServers"), BOOTSTRAP);
    assert_int_equal(int_at(info, "payloadSize"), 8);
    json_t *ri = json_object_get(info, "recordsInfo");
    assert_true(json_is_object(ri));
    assert_int_equal(json_object_size(ri), 1);
    json_t *p = json_object_get(ri, "orders-0");
    static const char *const pkeys[] = {"firstRecordOffset", "lastRecordOffset",
                                        "firstRecordTimestamp", "lastRecordTimestamp", NULL};
    assert_keys(p, pkeys);
    assert_string_equal(str_at(p, "firstRecordOffset"), "120");
    assert_string_equal(str_at(p, "lastRecordOffset"), "122");
    assert_string_equal(str_at(p, "firstRecordTimestamp"), SENT_ISO);
    assert_string_equal(str_at(p, "lastRecordTimestamp"), "2025-03-04T10:11:03.004Z");
    json_decref(doc);
    weir_buf_deinit(&out);
    for (size_t i = 0; i < LEN(rs); i++)
        weir_record_free(rs[i]);
}

/* ---- filtering ---- */

static struct weir_filter *compile1(const char *pattern, const struct weir_filter_shape *shape)
{
    size_t len = strlen(pattern), bad;
    struct weir_filter_error err;
    return weir_filter_new(&pattern, &len, 1, shape, &bad, &err);
}

static bool matches(const struct weir_event_format *fmt, const struct weir_event_ctx *c,
                    const char *pattern, struct weir_record *r)
{
    struct weir_filter *f = compile1(pattern, fmt->filter_shape);
    if (!f)
        fail_msg("pattern refused: %s", pattern);
    bool hit = weir_filter_match(f, r, fmt->encoder, c);
    weir_filter_free(f);
    weir_record_free(r);
    return hit;
}

static void kafka_filter_reads_the_value_as_json(void **state)
{
    const struct weir_event_format *k = &weir_format_kafka;
    const char *paid = "{\"value\":{\"status\":[\"PAID\"]}}";
    assert_true(matches(k, &kafka_ctx, paid, rec_str("orders", 0, 1, "o-17", ORDER)));
    assert_true(
        matches(k, &kafka_ctx, paid, rec_str("orders", 0, 1, NULL, "{\"status\":\"PAID\"}")));
    assert_false(
        matches(k, &kafka_ctx, paid, rec_str("orders", 0, 1, "k", "{\"status\":\"NEW\"}")));
    assert_false(matches(k, &kafka_ctx, paid, rec_str("orders", 0, 1, "k", "PAID")));
    assert_false(matches(k, &kafka_ctx, paid, rec_str("orders", 0, 1, "k", NULL)));
    assert_true(matches(k, &kafka_ctx, "{\"value\":{\"n\":[{\"numeric\":[\">\",10]}]}}",
                        rec_str("orders", 0, 1, "k", "{\"n\":11}")));

    /* A value that is not UTF-8 is not JSON: no pattern on it matches. */
    const char *has_status = "{\"value\":{\"status\":[{\"exists\":true}]}}";
    assert_true(matches(k, &kafka_ctx, has_status, rec_str("o", 0, 1, "k", "{\"status\":\"P\"}")));
    assert_false(
        matches(k, &kafka_ctx, has_status, rec_str("o", 0, 1, "k", "{\"status\":\"P\xff\"}")));

    /* Only `value` is filterable, and only as JSON. */
    assert_null(compile1("{\"key\":[\"o-17\"]}", k->filter_shape));
    assert_null(compile1("{\"topic\":[\"orders\"]}", k->filter_shape));
    assert_null(compile1("{\"value\":[\"PAID\"]}", k->filter_shape));
}

/* ==== Kinesis ================================================================================= */

static const char *const kinesis_record_keys[] = {
    "kinesis",           "eventSource", "eventVersion",   "eventID", "eventName",
    "invokeIdentityArn", "awsRegion",   "eventSourceARN", NULL};
static const char *const kinesis_inner_keys[] = {"kinesisSchemaVersion",
                                                 "partitionKey",
                                                 "sequenceNumber",
                                                 "data",
                                                 "approximateArrivalTimestamp",
                                                 NULL};

static json_t *kinesis_records(json_t *ev, size_t n)
{
    assert_int_equal(json_object_size(ev), 1);
    json_t *arr = json_object_get(ev, "Records");
    assert_true(json_is_array(arr));
    assert_int_equal(json_array_size(arr), n);
    return arr;
}

static void kinesis_record_has_exactly_the_reference_keys_and_types(void **state)
{
    struct weir_record *r = rec_str("orders", 3, 1, "o-17", ORDER);
    header(r, "trace-id", "t", 1); /* Kinesis has no headers: not written */
    struct weir_buf out;
    weir_buf_init(&out);
    encode_into(&out, &weir_format_kinesis, &r, 1, &kinesis_ctx);
    /* Seconds with exactly three decimals, as a JSON number. */
    assert_non_null(strstr(out.data, "\"approximateArrivalTimestamp\":1741083062.118}"));
    json_t *ev = parse(out.data, out.len);
    weir_buf_deinit(&out);

    json_t *e = json_array_get(kinesis_records(ev, 1), 0);
    assert_keys(e, kinesis_record_keys);
    json_t *k = json_object_get(e, "kinesis");
    assert_keys(k, kinesis_inner_keys);
    assert_string_equal(str_at(k, "kinesisSchemaVersion"), "1.0");
    assert_string_equal(str_at(k, "partitionKey"), "o-17");
    assert_string_equal(str_at(k, "sequenceNumber"), "00000000000000000001");
    assert_string_equal(str_at(k, "data"), ORDER_B64);
    json_t *at = json_object_get(k, "approximateArrivalTimestamp");
    assert_true(json_is_real(at));
    assert_true(json_real_value(at) > 1741083062.1179 && json_real_value(at) < 1741083062.1181);
    assert_string_equal(str_at(e, "eventSource"), "aws:kinesis");
    assert_string_equal(str_at(e, "eventVersion"), "1.0");
    assert_string_equal(str_at(e, "eventID"), "shardId-000000000003:00000000000000000001");
    assert_string_equal(str_at(e, "eventName"), "aws:kinesis:record");
    assert_string_equal(str_at(e, "invokeIdentityArn"), "arn:aws:iam::000000000000:role/weir");
    assert_string_equal(str_at(e, "awsRegion"), "eu-west-1");
    assert_string_equal(str_at(e, "eventSourceARN"), STREAM_ARN);
    json_decref(ev);
    weir_record_free(r);
}

static void kinesis_partition_key_is_the_key_as_text(void **state)
{
    static const char binary[] = {'a', (char)0xff, 'b', '\0', 'c'};
    struct weir_record *rs[] = {
        rec_str("orders", 0, 1, NULL, ORDER),
        rec_str("orders", 0, 2, "caf\xc3\xa9 \"q\"\n", ORDER),
        rec("orders", 0, 3, binary, sizeof(binary), ORDER, strlen(ORDER)),
    };
    json_t *ev = encode(&weir_format_kinesis, rs, LEN(rs), &kinesis_ctx);
    json_t *arr = kinesis_records(ev, LEN(rs));
    json_t *k0 = json_object_get(json_array_get(arr, 0), "kinesis");
    json_t *k1 = json_object_get(json_array_get(arr, 1), "kinesis");
    json_t *k2 = json_object_get(json_array_get(arr, 2), "kinesis");
    assert_string_equal(str_at(k0, "partitionKey"), "");
    assert_string_equal(str_at(k1, "partitionKey"), "caf\xc3\xa9 \"q\"\n");
    /* A byte that is not UTF-8 becomes U+FFFD; a NUL stays. */
    json_t *pk = json_object_get(k2, "partitionKey");
    static const char want[] = "a\xef\xbf\xbd"
                               "b\0c";
    assert_int_equal(json_string_length(pk), sizeof(want) - 1);
    assert_memory_equal(json_string_value(pk), want, sizeof(want) - 1);
    json_decref(ev);
    for (size_t i = 0; i < LEN(rs); i++)
        weir_record_free(rs[i]);
}

static void kinesis_data_is_the_value_in_base64_and_a_tombstone_is_empty(void **state)
{
    static const char value[] = {'\0', (char)0x80, (char)0xff, 'z'};
    struct weir_record *rs[] = {
        rec("orders", 0, 1, "k", 1, value, sizeof(value)),
        rec_str("orders", 0, 2, "k", NULL),
    };
    json_t *ev = encode(&weir_format_kinesis, rs, LEN(rs), &kinesis_ctx);
    json_t *arr = kinesis_records(ev, LEN(rs));
    json_t *k0 = json_object_get(json_array_get(arr, 0), "kinesis");
    json_t *k1 = json_object_get(json_array_get(arr, 1), "kinesis");
    assert_b64_of(str_at(k0, "data"), value, sizeof(value));
    assert_string_equal(str_at(k1, "data"), "");
    assert_keys(k1, kinesis_inner_keys);
    json_decref(ev);
    for (size_t i = 0; i < LEN(rs); i++)
        weir_record_free(rs[i]);
}

static void kinesis_arrival_time_always_has_three_decimals(void **state)
{
    static const struct {
        int64_t ms;
        const char *text;
    } cases[] = {
        {1741083062000LL, ":1741083062.000}"},
        {1741083062005LL, ":1741083062.005}"},
        {1741083062050LL, ":1741083062.050}"},
        {5, ":0.005}"},
        {0, ":0.000}"},
        {-1, ":-0.001}"},
    };
    for (size_t i = 0; i < LEN(cases); i++) {
        struct weir_record *r = rec_str("orders", 0, 1, "k", "1");
        r->sent_ms = cases[i].ms;
        struct weir_buf out;
        weir_buf_init(&out);
        encode_into(&out, &weir_format_kinesis, &r, 1, &kinesis_ctx);
        if (!strstr(out.data, cases[i].text))
            fail_msg("%lld ms: no %s in %s", (long long)cases[i].ms, cases[i].text, out.data);
        json_t *ev = parse(out.data, out.len);
        json_t *at =
            json_object_get(json_object_get(json_array_get(kinesis_records(ev, 1), 0), "kinesis"),
                            "approximateArrivalTimestamp");
        assert_true(json_is_real(at));
        json_decref(ev);
        weir_buf_deinit(&out);
        weir_record_free(r);
    }
}

static void kinesis_records_keep_order_and_share_the_shard(void **state)
{
    static const uint64_t offsets[] = {9, 10, 99, 100, 12345678901ULL};
    struct weir_record *rs[LEN(offsets)];
    for (size_t i = 0; i < LEN(rs); i++)
        rs[i] = rec_str("orders", 12, offsets[i], "k", ORDER);
    json_t *ev = encode(&weir_format_kinesis, rs, LEN(rs), &kinesis_ctx);
    json_t *arr = kinesis_records(ev, LEN(rs));
    const char *prev = "";
    for (size_t i = 0; i < LEN(rs); i++) {
        json_t *e = json_array_get(arr, i);
        const char *seq = str_at(json_object_get(e, "kinesis"), "sequenceNumber");
        assert_int_equal(strlen(seq), 20);
        assert_int_equal(strtoull(seq, NULL, 10), offsets[i]);
        /* Zero-padded: lexical order is offset order. */
        assert_true(strcmp(prev, seq) < 0);
        prev = seq;
        char id[64];
        snprintf(id, sizeof(id), "shardId-000000000012:%s", seq);
        assert_string_equal(str_at(e, "eventID"), id);
    }
    /* A function names a failed record by its sequenceNumber: the batch's own lookup finds it. */
    assert_null(weir_format_kinesis.find_item);
    struct weir_batch *b = batch_of(rs, LEN(rs));
    assert_int_equal(weir_batch_find(b, "00000000000000000099", 20), 2);
    weir_batch_free(b);
    json_decref(ev);
}

static void kinesis_batch_info_is_the_reference_kinesis_batch_info(void **state)
{
    struct weir_record *rs[] = {
        rec_str("orders", 3, 120, "a", "1"),
        rec_str("orders", 3, 127, "b", "2"),
    };
    rs[1]->sent_ms = SENT_MS + 7786;
    struct weir_buf out;
    weir_buf_init(&out);
    weir_buf_append_char(&out, '{');
    weir_format_kinesis.batch_info(&out, &kinesis_ctx, rs, LEN(rs));
    weir_buf_append_char(&out, '}');
    json_t *doc = parse(out.data, out.len);
    assert_int_equal(json_object_size(doc), 1);
    json_t *info = json_object_get(doc, "KinesisBatchInfo");
    static const char *const keys[] = {"shardId",
                                       "startSequenceNumber",
                                       "endSequenceNumber",
                                       "approximateArrivalOfFirstRecord",
                                       "approximateArrivalOfLastRecord",
                                       "batchSize",
                                       "streamArn",
                                       NULL};
    assert_keys(info, keys);
    assert_string_equal(str_at(info, "shardId"), "shardId-000000000003");
    assert_string_equal(str_at(info, "startSequenceNumber"), "00000000000000000120");
    assert_string_equal(str_at(info, "endSequenceNumber"), "00000000000000000127");
    assert_string_equal(str_at(info, "approximateArrivalOfFirstRecord"), SENT_ISO);
    assert_string_equal(str_at(info, "approximateArrivalOfLastRecord"), "2025-03-04T10:11:09.904Z");
    assert_int_equal(int_at(info, "batchSize"), 2);
    assert_string_equal(str_at(info, "streamArn"), STREAM_ARN);
    json_decref(doc);
    weir_buf_deinit(&out);
    for (size_t i = 0; i < LEN(rs); i++)
        weir_record_free(rs[i]);
}

static void kinesis_filter_reads_the_data_as_json(void **state)
{
    const struct weir_event_format *k = &weir_format_kinesis;
    const char *paid = "{\"data\":{\"status\":[\"PAID\"]}}";
    assert_true(matches(k, &kinesis_ctx, paid, rec_str("orders", 0, 1, "o-17", ORDER)));
    assert_false(
        matches(k, &kinesis_ctx, paid, rec_str("orders", 0, 1, "k", "{\"status\":\"NEW\"}")));
    assert_false(matches(k, &kinesis_ctx, paid, rec_str("orders", 0, 1, "k", "PAID")));
    assert_false(matches(k, &kinesis_ctx, paid, rec_str("orders", 0, 1, "k", NULL)));
    assert_null(compile1("{\"data\":[\"PAID\"]}", k->filter_shape));
    assert_null(compile1("{\"partitionKey\":[\"o-17\"]}", k->filter_shape));
    assert_null(compile1("{\"value\":{\"status\":[\"PAID\"]}}", k->filter_shape));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kafka_record_has_exactly_the_reference_keys_and_types),
        cmocka_unit_test(kafka_null_key_and_null_value_are_left_out_and_no_headers_is_empty),
        cmocka_unit_test(kafka_topic_that_needs_escaping_is_escaped),
        cmocka_unit_test(kafka_binary_key_and_value_round_trip_through_base64),
        cmocka_unit_test(kafka_header_bytes_are_signed_and_a_null_value_is_an_empty_array),
        cmocka_unit_test(kafka_timestamp_types_and_large_numbers),
        cmocka_unit_test(kafka_records_keep_their_order_under_their_partition_key),
        cmocka_unit_test(kafka_opening_without_a_record_is_no_shorter_than_any_real_one),
        cmocka_unit_test(kafka_item_identifier_names_a_record_by_topic_partition_and_offset),
        cmocka_unit_test(kafka_batch_info_is_the_reference_kafka_batch_info),
        cmocka_unit_test(kafka_filter_reads_the_value_as_json),
        cmocka_unit_test(kinesis_record_has_exactly_the_reference_keys_and_types),
        cmocka_unit_test(kinesis_partition_key_is_the_key_as_text),
        cmocka_unit_test(kinesis_data_is_the_value_in_base64_and_a_tombstone_is_empty),
        cmocka_unit_test(kinesis_arrival_time_always_has_three_decimals),
        cmocka_unit_test(kinesis_records_keep_order_and_share_the_shard),
        cmocka_unit_test(kinesis_batch_info_is_the_reference_kinesis_batch_info),
        cmocka_unit_test(kinesis_filter_reads_the_data_as_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
