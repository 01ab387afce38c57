/* What fn_http and fn_exec share: reading an event's records into record-file lines, and the
 * failing-record rule (docs/functions.md). Header-only: each test function is one .c file. */
#ifndef WEIR_TEST_FN_EVENT_H
#define WEIR_TEST_FN_EVENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"

/* A record fails when its body contains `match` (when one is given) and its receive count is at
 * most `receives` (when that is > 0). */
struct fn_fail_rule {
    const char *match; /* NULL: none */
    long receives;     /* 0: on every receive */
    bool fifo;         /* a failure also fails the later records of its message group */
};

/* Wall-clock milliseconds, for the record line's time of receipt. */
static long long fn_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fn_append_clean(struct weir_buf *b, const char *s)
{
    for (; *s; s++)
        weir_buf_append_char(b, (*s == '\t' || *s == '\n' || *s == '\r') ? ' ' : *s);
}

static bool fn_record_fails(const struct fn_fail_rule *rule, const char *body, const char *receives)
{
    if (rule->match && !strstr(body, rule->match))
        return false;
    if (rule->receives > 0 && strtol(receives, NULL, 10) > rule->receives)
        return false;
    return true;
}

/* Decodes standard base64 (padding optional); a new NUL-terminated string, invalid input cut. */
static char *fn_base64_decode(const char *in)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = in ? strlen(in) : 0;
    char *out = malloc(n * 3 / 4 + 4);
    size_t len = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n && in[i] != '='; i++) {
        const char *c = strchr(alphabet, in[i]);
        if (!c || !*c)
            break;
        acc = (acc << 6) | (unsigned)(c - alphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[len++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[len] = '\0';
    return out;
}

/* A stream record as the SQS-shaped object the rest of this file reads: messageId (Kafka
 * "<topic>-<partition>:<offset>", Kinesis the sequenceNumber), the decoded value as body, the key
 * as MessageGroupId, and the identifier a partial batch response names it by. */
static json_t *fn_stream_record(const char *id, const char *value_b64, const char *key,
                                json_t *ident)
{
    char *body = fn_base64_decode(value_b64);
    json_t *r = json_pack("{s:s, s:s, s:{s:s}, s:O}", "messageId", id, "body", body, "attributes",
                          "MessageGroupId", key ? key : "-", "ident", ident);
    free(body);
    return r;
}

/* Appends v as compact JSON, keys sorted, with no whitespace at all: a space inside a string is
 * written \u0020 (the same JSON), so that space-separated words of a body stay apart and each
 * reads back with jq. "-" for NULL. */
static void fn_append_json_word(struct weir_buf *b, json_t *v)
{
    if (!v) {
        weir_buf_append_char(b, '-');
        return;
    }
    char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    for (const char *s = text; s && *s; s++) {
        if (*s == ' ')
            weir_buf_append_str(b, "\\u0020");
        else
            weir_buf_append_char(b, *s);
    }
    free(text);
}

/* A DynamoDB Streams record as an SQS-shaped one: messageId and identifier its
 * dynamodb.SequenceNumber, body "<eventName> <Keys> <NewImage> <OldImage>" (fn_append_json_word;
 * "-" for an image the record lacks), and Keys again as MessageGroupId, so a test checks the order
 * per item key. */
static json_t *fn_dynamodb_record(json_t *r)
{
    json_t *d = json_object_get(r, "dynamodb");
    const char *seq = json_string_value(json_object_get(d, "SequenceNumber"));
    const char *name = json_string_value(json_object_get(r, "eventName"));
    struct weir_buf keys, body;
    weir_buf_init(&keys);
    weir_buf_init(&body);
    fn_append_json_word(&keys, json_object_get(d, "Keys"));
    weir_buf_printf(&body, "%s %s ", name && *name ? name : "-", keys.data);
    fn_append_json_word(&body, json_object_get(d, "NewImage"));
    weir_buf_append_char(&body, ' ');
    fn_append_json_word(&body, json_object_get(d, "OldImage"));
    seq = seq ? seq : "-";
    json_t *out = json_pack("{s:s, s:s, s:{s:s}, s:s}", "messageId", seq, "body", body.data,
                            "attributes", "MessageGroupId", keys.data, "ident", seq);
    weir_buf_deinit(&keys);
    weir_buf_deinit(&body);
    return out;
}

/* Kafka's records{} (SelfManagedKafka), Kinesis' Records[] and DynamoDB Streams' Records[]
 * turned into SQS-shaped records; NULL when the event is none of them. */
static json_t *fn_stream_records(json_t *event)
{
    json_t *out = json_array();
    json_t *kafka = json_object_get(event, "records");
    if (json_is_object(kafka)) {
        const char *tp;
        json_t *list;
        json_object_foreach(kafka, tp, list)
        {
            size_t i;
            json_t *r;
            json_array_foreach(list, i, r)
            {
                char id[320];
                /* fn_http reads integers as reals (JSON_DECODE_INT_AS_REAL). */
                json_int_t offset = (json_int_t)json_number_value(json_object_get(r, "offset"));
                snprintf(id, sizeof(id), "%s:%lld", tp, (long long)offset);
                const char *key_b64 = json_string_value(json_object_get(r, "key"));
                char *key = key_b64 ? fn_base64_decode(key_b64) : NULL;
                json_t *ident = json_pack("{s:s, s:I}", "topic-partition", tp, "offset", offset);
                json_array_append_new(
                    out, fn_stream_record(id, json_string_value(json_object_get(r, "value")), key,
                                          ident));
                json_decref(ident);
                free(key);
            }
        }
        return out;
    }
    json_t *records = json_object_get(event, "Records");
    json_t *first = json_array_get(records, 0);
    const char *source = json_string_value(json_object_get(first, "eventSource"));
    if (source && strcmp(source, "aws:dynamodb") == 0) {
        size_t i;
        json_t *r;
        json_array_foreach(records, i, r)
        {
            json_array_append_new(out, fn_dynamodb_record(r));
        }
        return out;
    }
    if (!json_object_get(first, "kinesis")) {
        json_decref(out);
        return NULL;
    }
    size_t i;
    json_t *r;
    json_array_foreach(records, i, r)
    {
        json_t *k = json_object_get(r, "kinesis");
        const char *seq = json_string_value(json_object_get(k, "sequenceNumber"));
        json_t *ident = json_string(seq ? seq : "");
        json_array_append_new(
            out, fn_stream_record(seq ? seq : "-", json_string_value(json_object_get(k, "data")),
                                  json_string_value(json_object_get(k, "partitionKey")), ident));
        json_decref(ident);
    }
    return out;
}

/* The records of an event: its Records[] (SQS, S3), or, with any_event, for an event without
 * them (what the Invoke API queues for an asynchronous invocation), one record standing for the
 * whole event: its messageId the event's "id" member when it is a string, its body the event as
 * compact JSON. A new reference; NULL when the event has no Records and any_event is false. */
static json_t *fn_event_records(json_t *event, bool any_event)
{
    json_t *stream = fn_stream_records(event);
    if (stream)
        return stream;
    json_t *records = json_object_get(event, "Records");
    if (json_is_array(records))
        return json_incref(records);
    if (!any_event)
        return NULL;
    char *text = json_dumps(event, JSON_COMPACT | JSON_ENCODE_ANY);
    const char *id = json_string_value(json_object_get(event, "id"));
    json_t *one = json_pack("{s:s, s:s}", "messageId", id ? id : "-", "body", text ? text : "");
    free(text);
    records = json_array();
    json_array_append_new(records, one);
    return records;
}

/* The record's SQS MessageGroupId (FIFO), or NULL. */
static const char *fn_record_group(json_t *r)
{
    return json_string_value(json_object_get(json_object_get(r, "attributes"), "MessageGroupId"));
}

/* Appends one line per record to lines:
 * `<messageId>\t<ApproximateReceiveCount>\t<body>\t<pid>\t<request-seq>\t<records>\t<group>
 * \t<requests in flight>\t<received, epoch ms>\n` (group "-" outside a FIFO queue), and the ids of
 * failing records to failing (only when a match is given: they are what a partial batch response
 * names). With rule->fifo, a record after a failing one in its message group is named too, as FIFO
 * functions are told to (Powertools' FIFO processor). Returns whether the request fails in the
 * failure modes: a record failed, or no match is given and the rule applies to every receive. */
static bool fn_event_scan(json_t *records, const struct fn_fail_rule *rule, long seq,
                          long in_flight, struct weir_buf *lines, json_t *failing)
{
    json_t *failed_groups = json_object();
    bool any_fails = false;
    size_t n = json_array_size(records), i;
    json_t *r;
    json_array_foreach(records, i, r)
    {
        const char *id = json_string_value(json_object_get(r, "messageId"));
        const char *body = json_string_value(json_object_get(r, "body"));
        json_t *s3 = json_object_get(r, "s3");
        if (!id && s3) {
            /* An S3 record: its object's key (as the event writes it) and its event name. */
            id = json_string_value(json_object_get(json_object_get(s3, "object"), "key"));
            body = json_string_value(json_object_get(r, "eventName"));
        }
        const char *receives = json_string_value(
            json_object_get(json_object_get(r, "attributes"), "ApproximateReceiveCount"));
        const char *group = fn_record_group(r);
        id = id ? id : "-";
        body = body ? body : "";
        receives = receives ? receives : "0";
        fn_append_clean(lines, id);
        weir_buf_append_char(lines, '\t');
        fn_append_clean(lines, receives);
        weir_buf_append_char(lines, '\t');
        fn_append_clean(lines, body);
        weir_buf_printf(lines, "\t%ld\t%ld\t%zu\t", (long)getpid(), seq, n);
        fn_append_clean(lines, group ? group : "-");
        weir_buf_printf(lines, "\t%ld\t%lld\n", in_flight, fn_now_ms());
        bool after_failure = rule->fifo && group && json_object_get(failed_groups, group);
        if (after_failure || fn_record_fails(rule, body, receives)) {
            any_fails = true;
            json_t *ident = json_object_get(r, "ident");
            if (rule->match)
                json_array_append_new(failing, ident ? json_incref(ident) : json_string(id));
            if (group)
                json_object_set_new(failed_groups, group, json_true());
        }
    }
    json_decref(failed_groups);
    return any_fails || (!rule->match && rule->receives == 0);
}

#endif
