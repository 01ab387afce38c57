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

/* The records of an event: its Records[] (SQS, S3), or, with any_event, for an event without
 * them (what the Invoke API queues for an asynchronous invocation), one record standing for the
 * whole event: its messageId the event's "id" member when it is a string, its body the event as
 * compact JSON. A new reference; NULL when the event has no Records and any_event is false. */
static json_t *fn_event_records(json_t *event, bool any_event)
{
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
            if (rule->match)
                json_array_append_new(failing, json_string(id));
            if (group)
                json_object_set_new(failed_groups, group, json_true());
        }
    }
    json_decref(failed_groups);
    return any_fails || (!rule->match && rule->receives == 0);
}

#endif
