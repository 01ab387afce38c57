/* What fn_http and fn_exec share: reading an SQS event's records into record-file lines, and the
 * failing-record rule (docs/functions.md). Header-only: each test function is one .c file. */
#ifndef WEIR_TEST_FN_EVENT_H
#define WEIR_TEST_FN_EVENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"

/* A record fails when its body contains `match` (when one is given) and its receive count is at
 * most `receives` (when that is > 0). */
struct fn_fail_rule {
    const char *match; /* NULL: none */
    long receives;     /* 0: on every receive */
};

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

/* Appends one line per record to lines:
 * `<messageId>\t<ApproximateReceiveCount>\t<body>\t<pid>\t<request-seq>\t<records>\n`, and the
 * ids of failing records to failing (only when a match is given: they are what a partial batch
 * response names). Returns whether the request fails in the failure modes: a record failed, or
 * no match is given and the rule applies to every receive. */
static bool fn_event_scan(json_t *records, const struct fn_fail_rule *rule, long seq,
                          struct weir_buf *lines, json_t *failing)
{
    bool any_fails = false;
    size_t n = json_array_size(records), i;
    json_t *r;
    json_array_foreach(records, i, r)
    {
        const char *id = json_string_value(json_object_get(r, "messageId"));
        const char *body = json_string_value(json_object_get(r, "body"));
        const char *receives = json_string_value(
            json_object_get(json_object_get(r, "attributes"), "ApproximateReceiveCount"));
        id = id ? id : "-";
        body = body ? body : "";
        receives = receives ? receives : "0";
        fn_append_clean(lines, id);
        weir_buf_append_char(lines, '\t');
        fn_append_clean(lines, receives);
        weir_buf_append_char(lines, '\t');
        fn_append_clean(lines, body);
        weir_buf_printf(lines, "\t%ld\t%ld\t%zu\n", (long)getpid(), seq, n);
        if (fn_record_fails(rule, body, receives)) {
            any_fails = true;
            if (rule->match)
                json_array_append_new(failing, json_string(id));
        }
    }
    return any_fails || (!rule->match && rule->receives == 0);
}

#endif
