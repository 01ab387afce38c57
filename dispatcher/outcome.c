/* Outcome classification: one invocation's raw result -> ok / partial / function error /
 * timeout / throttled / fatal, by the rules of reference sections 1.5 and 6.1 (docs/events.md
 * has the table). Pure: no I/O, no policy; it must never decide a retry or touch a verdict.
 * `why` is one line for logs and never carries payload bytes beyond a short error message. */
#include "dispatcher/outcome.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/hash.h"
#include "core/mem.h"

/* How much of a function's own error text may reach a log line. */
#define WHY_MSG_MAX  100
#define WHY_TYPE_MAX 64
#define WHY_ID_MAX   64

/* Above this many (entries x records) the ids are looked up through a hash index rather than
 * a scan: a 10000-record batch naming every record would otherwise cost 10^8 comparisons. */
#define SCAN_WORK_MAX 4096

/* ": detail" when the target gave one. */
#define DETAIL(res) ((res)->detail[0] ? ": " : ""), (res)->detail

const char *weir_outcome_name(enum weir_outcome o)
{
    switch (o) {
    case WEIR_OUTCOME_OK:
        return "ok";
    case WEIR_OUTCOME_PARTIAL:
        return "partial";
    case WEIR_OUTCOME_FUNCTION_ERROR:
        return "function_error";
    case WEIR_OUTCOME_TIMEOUT:
        return "timeout";
    case WEIR_OUTCOME_THROTTLED:
        return "throttled";
    case WEIR_OUTCOME_FATAL:
        return "fatal";
    }
    return "unknown";
}

void weir_classified_deinit(struct weir_classified *c)
{
    free(c->failed);
    c->failed = NULL;
    c->n_failed = 0;
}

/* Sets the outcome and a one-line reason: control characters (from a function's error text or
 * a library message) become spaces so the log stays one line per event. */
static void verdict(struct weir_classified *out, enum weir_outcome o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void verdict(struct weir_classified *out, enum weir_outcome o, const char *fmt, ...)
{
    va_list ap;
    out->outcome = o;
    va_start(ap, fmt);
    vsnprintf(out->why, sizeof(out->why), fmt, ap);
    va_end(ap);
    for (char *c = out->why; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = ' ';
}

/* The response body, parsed at most once and only when a rule needs it. */
struct body {
    const char *p; /* first non-whitespace byte */
    size_t len;    /* bytes from p to the end */
    json_t *json;  /* parsed value, NULL until parsed or when not JSON */
    int parsed;
};

static void body_init(struct body *bd, const struct weir_buf *raw)
{
    const char *p = raw->data ? raw->data : "";
    const char *end = p + (raw->data ? raw->len : 0);
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    bd->p = p;
    bd->len = (size_t)(end - p);
    bd->json = NULL;
    bd->parsed = 0;
}

static json_t *body_json(struct body *bd)
{
    if (!bd->parsed) {
        json_error_t jerr;
        bd->parsed = 1;
        bd->json = json_loadb(bd->p, bd->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    }
    return bd->json;
}

/* The parsed body when it can be an object (starts with '{'): a 2 MB HTML page from a proxy is
 * not worth handing to a JSON parser to learn that it is not an error object. */
static json_t *body_object(struct body *bd)
{
    if (bd->len == 0 || bd->p[0] != '{')
        return NULL;
    json_t *j = body_json(bd);
    return json_is_object(j) ? j : NULL;
}

/* The runtime's error answer: {"errorMessage","errorType","stackTrace",...} and nothing else.
 * RIE returns it with status 200 and no X-Amz-Function-Error header (reference 6.1). */
static int is_runtime_error(const json_t *o)
{
    static const char *const allowed[] = {"errorMessage", "errorType", "stackTrace",
                                          "trace",        "requestId", "cause"};
    const char *key;
    json_t *v;
    if (!json_is_object(o))
        return 0;
    json_object_foreach((json_t *)o, key, v)
    {
        size_t i;
        for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
            if (strcmp(key, allowed[i]) == 0)
                break;
        if (i == sizeof(allowed) / sizeof(allowed[0]))
            return 0;
    }
    return json_object_get(o, "errorMessage") || json_object_get(o, "errorType");
}

/* Writes ": <type>: <message>" from an error object into dst (empty when there is none).
 * Lambda's API errors use Type/Message, runtimes errorType/errorMessage. */
static void error_text(const json_t *o, char *dst, size_t dst_len)
{
    dst[0] = '\0';
    if (!json_is_object(o))
        return;
    const char *type = json_string_value(json_object_get(o, "errorType"));
    const char *msg = json_string_value(json_object_get(o, "errorMessage"));
    if (!type)
        type = json_string_value(json_object_get(o, "Type"));
    if (!msg)
        msg = json_string_value(json_object_get(o, "Message"));
    if (!msg)
        msg = json_string_value(json_object_get(o, "message"));
    if (type && msg)
        snprintf(dst, dst_len, ": %.*s: %.*s", WHY_TYPE_MAX, type, WHY_MSG_MAX, msg);
    else if (type || msg)
        snprintf(dst, dst_len, ": %.*s", WHY_MSG_MAX, type ? type : msg);
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* An open-addressing index of the batch's record ids, built only for large responses. */
struct id_index {
    long *slots; /* record index, -1 empty */
    size_t mask;
};

static void index_build(struct id_index *ix, const struct weir_batch *b)
{
    size_t cap = 16;
    while (cap < b->n * 2)
        cap *= 2;
    ix->mask = cap - 1;
    ix->slots = weir_malloc(cap * sizeof(*ix->slots));
    for (size_t i = 0; i < cap; i++)
        ix->slots[i] = -1;
    for (size_t i = 0; i < b->n; i++) {
        const char *id = b->records[i]->id;
        size_t h = (size_t)weir_hash_fnv1a64(id, strlen(id)) & ix->mask;
        while (ix->slots[h] >= 0)
            h = (h + 1) & ix->mask;
        ix->slots[h] = (long)i;
    }
}

static long index_find(const struct id_index *ix, const struct weir_batch *b, const char *id,
                       size_t len)
{
    size_t h = (size_t)weir_hash_fnv1a64(id, len) & ix->mask;
    for (; ix->slots[h] >= 0; h = (h + 1) & ix->mask) {
        const char *rid = b->records[ix->slots[h]]->id;
        if (strlen(rid) == len && memcmp(rid, id, len) == 0)
            return ix->slots[h];
    }
    return -1;
}

/* Copies an id for a log line: at most WHY_ID_MAX bytes, quotes and controls replaced. */
static void printable_id(const char *id, size_t len, char out[WHY_ID_MAX + 4])
{
    size_t n = len < WHY_ID_MAX ? len : WHY_ID_MAX;
    for (size_t i = 0; i < n; i++)
        out[i] = ((unsigned char)id[i] < 0x20 || id[i] == '"' || id[i] == 0x7f) ? '?' : id[i];
    if (n < len) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

/* Rule 7: the partial batch response (reference 1.5). Any malformed entry fails the whole
 * batch, as AWS does; a valid list names records by their id. */
static void classify_partial(struct body *bd, const struct weir_batch *b,
                             const struct weir_event_format *format, struct weir_classified *out)
{
    if (bd->len == 0) {
        out->outcome = WEIR_OUTCOME_OK;
        return;
    }
    json_t *j = body_json(bd);
    if (!j) {
        verdict(out, WEIR_OUTCOME_FUNCTION_ERROR, "function response is not JSON");
        return;
    }
    /* A string, number or array has no batchItemFailures key: nothing is named as failed.
     * AWS documents only objects; weir reads the rest as success (docs/events.md). */
    json_t *bif = json_is_object(j) ? json_object_get(j, "batchItemFailures") : NULL;
    if (!bif || json_is_null(bif) || (json_is_array(bif) && json_array_size(bif) == 0)) {
        out->outcome = WEIR_OUTCOME_OK;
        return;
    }
    if (!json_is_array(bif)) {
        verdict(out, WEIR_OUTCOME_FUNCTION_ERROR, "batchItemFailures is not an array");
        return;
    }

    size_t n = json_array_size(bif);
    size_t *failed = weir_malloc(n * sizeof(*failed));
    struct id_index ix = {NULL, 0};
    if (n * b->n > SCAN_WORK_MAX)
        index_build(&ix, b);

    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(bif, i);
        json_t *id = json_is_object(e) ? json_object_get(e, "itemIdentifier") : NULL;
        if (!json_is_object(e)) {
            verdict(out, WEIR_OUTCOME_FUNCTION_ERROR, "batchItemFailures[%zu] is not an object", i);
            goto fail;
        }
        if (!id) {
            verdict(out, WEIR_OUTCOME_FUNCTION_ERROR,
                    "batchItemFailures[%zu] has no itemIdentifier", i);
            goto fail;
        }
        if (format && format->find_item) {
            char why[160];
            long found = format->find_item(id, b, why, sizeof(why));
            if (found < 0) {
                verdict(out, WEIR_OUTCOME_FUNCTION_ERROR,
                        "batchItemFailures[%zu].itemIdentifier %s", i, why);
                goto fail;
            }
            failed[i] = (size_t)found;
            continue;
        }
        if (!json_is_string(id)) {
            verdict(out, WEIR_OUTCOME_FUNCTION_ERROR, "batchItemFailures[%zu].itemIdentifier is %s",
                    i, json_is_null(id) ? "null" : "not a string");
            goto fail;
        }
        const char *s = json_string_value(id);
        size_t len = json_string_length(id);
        if (len == 0) {
            verdict(out, WEIR_OUTCOME_FUNCTION_ERROR,
                    "batchItemFailures[%zu].itemIdentifier is empty", i);
            goto fail;
        }
        long at = ix.slots ? index_find(&ix, b, s, len) : weir_batch_find(b, s, len);
        if (at < 0) {
            char shown[WHY_ID_MAX + 4];
            printable_id(s, len, shown);
            verdict(out, WEIR_OUTCOME_FUNCTION_ERROR,
                    "batchItemFailures[%zu].itemIdentifier \"%s\" is not in the batch", i, shown);
            goto fail;
        }
        failed[i] = (size_t)at;
    }
    free(ix.slots);

    qsort(failed, n, sizeof(*failed), cmp_size);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || failed[u - 1] != failed[i])
            failed[u++] = failed[i];
    out->failed = failed;
    out->n_failed = u;
    verdict(out, WEIR_OUTCOME_PARTIAL, "function reported %zu of %zu records as failed", u, b->n);
    return;

fail:
    free(ix.slots);
    free(failed);
}

/* Rules 2-5 on a response that arrived: HTTP status, error header or exit code, the
 * emulator's timeout text, the emulator's headerless error body. Returns 1 when decided. */
static int classify_error(const struct weir_invoke_result *res, struct body *bd,
                          struct weir_classified *out)
{
    char text[WHY_TYPE_MAX + WHY_MSG_MAX + 8];
    long st = res->status;

    if (st == 0) {
        /* exec: a status of 0 means the command exited non-zero. */
        error_text(body_object(bd), text, sizeof(text));
        if (res->exit_code < 0)
            verdict(out, WEIR_OUTCOME_FUNCTION_ERROR, "command killed by a signal%s", text);
        else
            verdict(out, WEIR_OUTCOME_FUNCTION_ERROR, "command exited with code %d%s",
                    res->exit_code, text);
        return 1;
    }
    if (st == 429 || st == 503) {
        verdict(out, WEIR_OUTCOME_THROTTLED, "HTTP %ld: %s, the function did not run", st,
                st == 429 ? "too many requests" : "service unavailable");
        return 1;
    }
    if (st >= 400 && st < 500) {
        /* Includes RIE's 400 for a second concurrent invocation: the body does not say so
         * reliably, and weir never sends one to a busy single-flight endpoint. */
        error_text(body_object(bd), text, sizeof(text));
        verdict(out, WEIR_OUTCOME_FATAL, "HTTP %ld: %s%s", st,
                st == 413 ? "payload too large" : "request refused", text);
        return 1;
    }
    if (st < 200 || st >= 300) {
        error_text(body_object(bd), text, sizeof(text));
        verdict(out, WEIR_OUTCOME_FUNCTION_ERROR, "HTTP %ld from the function%s", st, text);
        return 1;
    }
    if (res->function_error[0]) {
        error_text(body_object(bd), text, sizeof(text));
        verdict(out, WEIR_OUTCOME_FUNCTION_ERROR, "function error %.*s%s", WHY_TYPE_MAX,
                res->function_error, text);
        return 1;
    }
    static const char timed_out[] = "Task timed out after";
    if (bd->len >= sizeof(timed_out) - 1 && memcmp(bd->p, timed_out, sizeof(timed_out) - 1) == 0) {
        size_t line = strcspn(bd->p, "\r\n");
        if (line > bd->len)
            line = bd->len;
        verdict(out, WEIR_OUTCOME_TIMEOUT, "%.*s", (int)(line < WHY_MSG_MAX ? line : WHY_MSG_MAX),
                bd->p);
        return 1;
    }
    json_t *o = body_object(bd);
    if (o && is_runtime_error(o)) {
        error_text(o, text, sizeof(text));
        verdict(out, WEIR_OUTCOME_FUNCTION_ERROR, "function error%s", text);
        return 1;
    }
    return 0;
}

void weir_outcome_classify(const struct weir_invoke_result *res, const struct weir_batch *b,
                           bool report_batch_item_failures, const struct weir_event_format *format,
                           struct weir_classified *out)
{
    memset(out, 0, sizeof(*out));
    out->outcome = WEIR_OUTCOME_OK;

    switch (res->transport) {
    case WEIR_TRANSPORT_OK:
        break;
    case WEIR_TRANSPORT_TIMEOUT:
        verdict(out, WEIR_OUTCOME_TIMEOUT, "no answer within the function timeout (%lld ms)%s%s",
                (long long)(res->elapsed_us / 1000), DETAIL(res));
        return;
    case WEIR_TRANSPORT_REFUSED:
        verdict(out, WEIR_OUTCOME_THROTTLED, "target refused, the function did not run%s%s",
                DETAIL(res));
        return;
    case WEIR_TRANSPORT_FAILED:
        verdict(out, WEIR_OUTCOME_FUNCTION_ERROR,
                "invocation broke off, the function may have run%s%s", DETAIL(res));
        return;
    case WEIR_TRANSPORT_TOO_LARGE:
        verdict(out, WEIR_OUTCOME_FUNCTION_ERROR, "response larger than 6 MB");
        return;
    }

    struct body bd;
    body_init(&bd, &res->body);
    if (!classify_error(res, &bd, out) && report_batch_item_failures)
        classify_partial(&bd, b, format, out);
    json_decref(bd.json);
}
