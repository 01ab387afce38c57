/* Outcome classification, table-driven: every rule of dispatcher/outcome.c, every row of the
 * reference's partial-response table (1.5) and every emulator case of 6.1. Each row says what a
 * target reported and what weir must conclude. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/mem.h"
#include "dispatcher/outcome.h"
#include "model/record.h"

enum {
    OK = WEIR_OUTCOME_OK,
    PARTIAL = WEIR_OUTCOME_PARTIAL,
    FERR = WEIR_OUTCOME_FUNCTION_ERROR,
    TIMEOUT = WEIR_OUTCOME_TIMEOUT,
    THROTTLED = WEIR_OUTCOME_THROTTLED,
    FATAL = WEIR_OUTCOME_FATAL
};

#define T_OK       WEIR_TRANSPORT_OK
#define HTML_2MIB  ((const char *)1) /* marker: a 2 MiB HTML error page */
#define LONG_ERROR ((const char *)2) /* marker: a runtime error with a 5000-byte message */

struct row {
    const char *name;
    enum weir_transport transport;
    long status;
    int exit_code;
    const char *function_error;
    const char *body;
    bool report;
    int want;
    const char *failed; /* PARTIAL: the indexes, "0,2" */
    const char *why;    /* a substring `why` must hold (non-OK rows) */
};

/* The batch every row is classified against. "ab-long" catches prefix matching. */
static const char *const ids[] = {"a", "b", "c", "ab-long"};

static struct weir_batch *batch_of(const char *const *idv, size_t n)
{
    struct weir_batch *b = weir_batch_new(0);
    for (size_t i = 0; i < n; i++) {
        struct weir_record *r = weir_record_new();
        r->id = weir_strdup(idv[i]);
        r->data = weir_strdup("{}");
        r->data_len = 2;
        weir_batch_take(b, r);
    }
    return b;
}

static const struct row rows[] = {
    /* Rule 1: the transport. */
    {"transport timeout", WEIR_TRANSPORT_TIMEOUT, 0, 0, "", "", true, TIMEOUT, NULL,
     "function timeout"},
    {"transport refused", WEIR_TRANSPORT_REFUSED, 0, 0, "", "", true, THROTTLED, NULL,
     "Connection refused"},
    {"transport failed mid-way", WEIR_TRANSPORT_FAILED, 0, 0, "", "", true, FERR, NULL,
     "may have run"},
    {"response over 6 MB", WEIR_TRANSPORT_TOO_LARGE, 200, 0, "", "", true, FERR, NULL,
     "response larger than 6 MB"},
    {"transport timeout beats a good body", WEIR_TRANSPORT_TIMEOUT, 200, 0, "", "{}", true, TIMEOUT,
     NULL, "timeout"},

    /* Rule 2: HTTP status. */
    {"429 throttled", T_OK, 429, 0, "", "{\"Type\":\"User\",\"Message\":\"Rate exceeded\"}", true,
     THROTTLED, NULL, "HTTP 429"},
    {"503 never ran", T_OK, 503, 0, "", "", true, THROTTLED, NULL, "HTTP 503"},
    {"413 payload too large", T_OK, 413, 0, "", "", true, FATAL, NULL,
     "HTTP 413: payload too large"},
    {"400 bad request with API error", T_OK, 400, 0, "",
     "{\"Type\":\"User\",\"Message\":\"Could not parse request body into json\"}", true, FATAL,
     NULL, "Could not parse request body"},
    {"404 no such function", T_OK, 404, 0, "", "", false, FATAL, NULL, "HTTP 404"},
    {"RIE 400 for a concurrent invocation stays fatal", T_OK, 400, 0, "",
     "{\"errorMessage\":\"concurrent invocations are not supported\",\"errorType\":\"Busy\"}", true,
     FATAL, NULL, "HTTP 400"},
    {"500 function error", T_OK, 500, 0, "", "", true, FERR, NULL, "HTTP 500"},
    {"RIE 502 init failure carries its error", T_OK, 502, 0, "",
     "{\"errorMessage\":\"exit status 1\",\"errorType\":\"Runtime.ExitError\"}", true, FERR, NULL,
     "Runtime.ExitError: exit status 1"},
    {"500 with a partial body is still an error", T_OK, 500, 0, "",
     "{\"batchItemFailures\":[{\"itemIdentifier\":\"a\"}]}", true, FERR, NULL, "HTTP 500"},
    {"2 MiB HTML 500", T_OK, 500, 0, "", HTML_2MIB, true, FERR, NULL, "HTTP 500"},
    {"302 is not success", T_OK, 302, 0, "", "", true, FERR, NULL, "HTTP 302"},
    {"204 empty is success", T_OK, 204, 0, "", "", true, OK, NULL, NULL},

    /* Rule 3: the function error header, or a non-zero exit. */
    {"X-Amz-Function-Error Unhandled", T_OK, 200, 0, "Unhandled",
     "{\"errorMessage\":\"boom\",\"errorType\":\"ValueError\",\"stackTrace\":[]}", true, FERR, NULL,
     "Unhandled: ValueError: boom"},
    {"function error wins over a partial body", T_OK, 200, 0, "Unhandled",
     "{\"batchItemFailures\":[{\"itemIdentifier\":\"a\"}]}", true, FERR, NULL, "Unhandled"},
    {"function error counts with report off", T_OK, 200, 0, "Handled", "{}", false, FERR, NULL,
     "Handled"},
    {"Error-Type header (RIE concurrency mode)", T_OK, 200, 0, "Runtime.ExitError", "", true, FERR,
     NULL, "Runtime.ExitError"},
    {"exec exit 1", T_OK, 0, 1, "Unhandled", "", false, FERR, NULL, "exited with code 1"},
    {"exec exit 3 with an error on stdout", T_OK, 0, 3, "Unhandled",
     "{\"errorType\":\"KeyError\",\"errorMessage\":\"'id'\"}", true, FERR, NULL,
     "code 3: KeyError: 'id'"},
    {"exec killed by a signal", T_OK, 0, -1, "Unhandled", "", true, FERR, NULL,
     "killed by a signal"},
    {"exec exit 0 with a partial body", T_OK, 200, 0, "",
     "{\"batchItemFailures\":[{\"itemIdentifier\":\"b\"}]}", true, PARTIAL, "1", NULL},

    /* Rule 4: the emulator's timeout text. */
    {"RIE timeout text", T_OK, 200, 0, "", "Task timed out after 3.00 seconds", true, TIMEOUT, NULL,
     "Task timed out after 3.00 seconds"},
    {"RIE timeout text after whitespace, report off", T_OK, 200, 0, "",
     " \r\n\tTask timed out after 1.00 seconds\nmore", false, TIMEOUT, NULL,
     "Task timed out after 1.00 seconds"},
    {"a prefix of the timeout text is just not JSON", T_OK, 200, 0, "", "Task timed out", true,
     FERR, NULL, "not JSON"},

    /* Rule 5: the emulator's error body without a header. */
    {"RIE error body", T_OK, 200, 0, "",
     "{\"errorMessage\":\"division by zero\",\"errorType\":\"ZeroDivisionError\","
     "\"requestId\":\"9f\",\"stackTrace\":[\"  File x\\n\"]}",
     true, FERR, NULL, "ZeroDivisionError: division by zero"},
    {"RIE error body with report off", T_OK, 200, 0, "",
     "{\"errorType\":\"Runtime.HandlerNotFound\"}", false, FERR, NULL, "HandlerNotFound"},
    {"error body with trace and cause", T_OK, 200, 0, "",
     "{\"errorMessage\":\"x\",\"trace\":[],\"cause\":{\"a\":1}}", true, FERR, NULL, ": x"},
    {"error-looking object with other keys is a normal answer", T_OK, 200, 0, "",
     "{\"errorMessage\":\"x\",\"batchItemFailures\":[]}", true, OK, NULL, NULL},
    {"error-looking object with other keys, report off", T_OK, 200, 0, "",
     "{\"errorType\":\"x\",\"orderId\":1}", false, OK, NULL, NULL},
    {"stackTrace alone is not an error", T_OK, 200, 0, "", "{\"stackTrace\":[]}", true, OK, NULL,
     NULL},
    {"long error message is cut", T_OK, 200, 0, "", LONG_ERROR, true, FERR, NULL, "Big: yyyy"},

    /* Rule 6: report off ignores the body. */
    {"report off ignores batchItemFailures", T_OK, 200, 0, "",
     "{\"batchItemFailures\":[{\"itemIdentifier\":\"a\"}]}", false, OK, NULL, NULL},
    {"report off ignores a body that is not JSON", T_OK, 200, 0, "", "<html>", false, OK, NULL,
     NULL},
    {"report off ignores a bad partial body", T_OK, 200, 0, "",
     "{\"batchItemFailures\":[{\"itemIdentifier\":\"\"}]}", false, OK, NULL, NULL},

    /* Rule 7: partial batch responses, reference 1.5's table first. */
    {"empty list", T_OK, 200, 0, "", "{\"batchItemFailures\":[]}", true, OK, NULL, NULL},
    {"null list", T_OK, 200, 0, "", "{\"batchItemFailures\":null}", true, OK, NULL, NULL},
    {"empty object", T_OK, 200, 0, "", "{}", true, OK, NULL, NULL},
    {"null body", T_OK, 200, 0, "", "null", true, OK, NULL, NULL},
    {"empty body (also RIE's answer after the runtime exits)", T_OK, 200, 0, "", "", true, OK, NULL,
     NULL},
    {"whitespace body", T_OK, 200, 0, "", " \n\t\r ", true, OK, NULL, NULL},
    {"empty-string itemIdentifier", T_OK, 200, 0, "",
     "{\"batchItemFailures\":[{\"itemIdentifier\":\"\"}]}", true, FERR, NULL,
     "batchItemFailures[0].itemIdentifier is empty"},
    {"null itemIdentifier", T_OK, 200, 0, "", "{\"batchItemFailures\":[{\"itemIdentifier\":null}]}",
     true, FERR, NULL, "is null"},
    {"misspelled itemIdentifier key", T_OK, 200, 0, "",
     "{\"batchItemFailures\":[{\"itemidentifier\":\"a\"}]}", true, FERR, NULL,
     "has no itemIdentifier"},
    {"body not JSON", T_OK, 200, 0, "", "{\"batchItemFailures\":[", true, FERR, NULL,
     "function response is not JSON"},
    {"id not in the batch", T_OK, 200, 0, "",
     "{\"batchItemFailures\":[{\"itemIdentifier\":\"zz-unknown\"}]}", true, FERR, NULL,
     "\"zz-unknown\" is not in the batch"},
    {"a prefix of an id is not the id", T_OK, 200, 0, "",
     "{\"batchItemFailures\":[{\"itemIdentifier\":\"ab\"}]}", true, FERR, NULL, "\"ab\""},
    {"id with a NUL inside is not the id", T_OK, 200, 0, "",
     "{\"batchItemFailures\":[{\"itemIdentifier\":\"a\\u0000\"}]}", true, FERR, NULL,
     "not in the batch"},
    {"mixed valid and empty id", T_OK, 200, 0, "",
     "{\"batchItemFailures\":[{\"itemIdentifier\":\"a\"},{\"itemIdentifier\":\"\"}]}", true, FERR,
     NULL, "batchItemFailures[1]"},
    {"number itemIdentifier", T_OK, 200, 0, "", "{\"batchItemFailures\":[{\"itemIdentifier\":42}]}",
     true, FERR, NULL, "not a string"},
    {"Kafka-style object itemIdentifier", T_OK, 200, 0, "",
     "{\"batchItemFailures\":[{\"itemIdentifier\":{\"topic-partition\":\"t-0\",\"offset\":1}}]}",
     true, FERR, NULL, "not a string"},
    {"entry that is not an object", T_OK, 200, 0, "", "{\"batchItemFailures\":[\"a\"]}", true, FERR,
     NULL, "batchItemFailures[0] is not an object"},
    {"batchItemFailures an object", T_OK, 200, 0, "", "{\"batchItemFailures\":{}}", true, FERR,
     NULL, "not an array"},
    {"batchItemFailures a string", T_OK, 200, 0, "", "{\"batchItemFailures\":\"a\"}", true, FERR,
     NULL, "not an array"},
    {"JSON string body", T_OK, 200, 0, "", "\"done\"", true, OK, NULL, NULL},
    {"JSON number body", T_OK, 200, 0, "", "42", true, OK, NULL, NULL},
    {"JSON array body", T_OK, 200, 0, "", "[{\"itemIdentifier\":\"a\"}]", true, OK, NULL, NULL},
    {"JSON true body", T_OK, 200, 0, "", "true", true, OK, NULL, NULL},
    {"two named, out of order", T_OK, 200, 0, "",
     "{\"batchItemFailures\":[{\"itemIdentifier\":\"c\"},{\"itemIdentifier\":\"a\"}]}", true,
     PARTIAL, "0,2", "2 of 4"},
    {"duplicate ids collapse", T_OK, 200, 0, "",
     "{\"batchItemFailures\":[{\"itemIdentifier\":\"c\"},{\"itemIdentifier\":\"a\"},"
     "{\"itemIdentifier\":\"c\"},{\"itemIdentifier\":\"a\"}]}",
     true, PARTIAL, "0,2", NULL},
    {"every record named is still partial", T_OK, 200, 0, "",
     "{\"batchItemFailures\":[{\"itemIdentifier\":\"ab-long\"},{\"itemIdentifier\":\"c\"},"
     "{\"itemIdentifier\":\"b\"},{\"itemIdentifier\":\"a\"}]}",
     true, PARTIAL, "0,1,2,3", NULL},
    {"extra keys are allowed", T_OK, 200, 0, "",
     "  {\"note\":1,\"batchItemFailures\":[{\"itemIdentifier\":\"ab-long\",\"why\":\"x\"}]}\n",
     true, PARTIAL, "3", NULL},
    {"202 with a partial body", T_OK, 202, 0, "",
     "{\"batchItemFailures\":[{\"itemIdentifier\":\"b\"}]}", true, PARTIAL, "1", NULL},
};

static void fill_body(struct weir_buf *body, const char *spec)
{
    if (spec == HTML_2MIB) {
        weir_buf_append_str(body, "<!DOCTYPE html>\n<html><body><h1>500 Internal Server Error");
        while (body->len < 2 * 1024 * 1024)
            weir_buf_append_str(body, "<p>\"errorMessage\": stack frames and noise</p>\n");
        weir_buf_append_str(body, "</body></html>\n");
    } else if (spec == LONG_ERROR) {
        weir_buf_append_str(body, "{\"errorType\":\"Big\",\"errorMessage\":\"");
        for (int i = 0; i < 5000; i++)
            weir_buf_append_char(body, 'y');
        weir_buf_append_str(body, "\"}");
    } else {
        weir_buf_append_str(body, spec);
    }
}

static void failed_list(const struct weir_classified *c, char *out, size_t len)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < c->n_failed && o < len; i++)
        o += (size_t)snprintf(out + o, len - o, "%s%zu", i ? "," : "", c->failed[i]);
}

static void every_row_classifies_as_the_reference_says(void **state)
{
    struct weir_batch *b = batch_of(ids, 4);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct row *rw = &rows[i];
        struct weir_invoke_result res;
        memset(&res, 0, sizeof(res));
        weir_buf_init(&res.body);
        res.transport = rw->transport;
        res.status = rw->status;
        res.exit_code = rw->exit_code;
        snprintf(res.function_error, sizeof(res.function_error), "%s", rw->function_error);
        if (rw->transport == WEIR_TRANSPORT_REFUSED)
            snprintf(res.detail, sizeof(res.detail), "Failed to connect: Connection refused");
        fill_body(&res.body, rw->body);

        struct weir_classified c;
        weir_outcome_classify(&res, b, rw->report, NULL, &c);
        if ((int)c.outcome != rw->want)
            fail_msg("row \"%s\": outcome %s, want %s (why: %s)", rw->name,
                     weir_outcome_name(c.outcome), weir_outcome_name(rw->want), c.why);
        if (c.outcome != WEIR_OUTCOME_OK) {
            if (!c.why[0] || strchr(c.why, '\n') || strchr(c.why, '\r'))
                fail_msg("row \"%s\": why must be one non-empty line: \"%s\"", rw->name, c.why);
        }
        if (rw->why && !strstr(c.why, rw->why))
            fail_msg("row \"%s\": why \"%s\" lacks \"%s\"", rw->name, c.why, rw->why);
        if (rw->want == PARTIAL) {
            char got[64];
            failed_list(&c, got, sizeof(got));
            if (strcmp(got, rw->failed) != 0)
                fail_msg("row \"%s\": failed [%s], want [%s]", rw->name, got, rw->failed);
        } else if (c.n_failed || c.failed) {
            fail_msg("row \"%s\": failed list set for a %s outcome", rw->name,
                     weir_outcome_name(c.outcome));
        }
        /* No payload beyond a short error message reaches the log line. */
        if (strstr(c.why, "<html") || strstr(c.why, "yyyyyyyyyy"
                                                    "yyyyyyyyyy"
                                                    "yyyyyyyyyy"
                                                    "yyyyyyyyyy"
                                                    "yyyyyyyyyy"
                                                    "yyyyyyyyyy"
                                                    "yyyyyyyyyy"
                                                    "yyyyyyyyyy"
                                                    "yyyyyyyyyy"
                                                    "yyyyyyyyyy"
                                                    "y"))
            fail_msg("row \"%s\": why carries payload: %.80s", rw->name, c.why);
        weir_classified_deinit(&c);
        assert_null(c.failed);
        weir_buf_deinit(&res.body);
    }
    weir_batch_free(b);
}

static void outcome_names_are_the_log_names(void **state)
{
    assert_string_equal(weir_outcome_name(WEIR_OUTCOME_OK), "ok");
    assert_string_equal(weir_outcome_name(WEIR_OUTCOME_PARTIAL), "partial");
    assert_string_equal(weir_outcome_name(WEIR_OUTCOME_FUNCTION_ERROR), "function_error");
    assert_string_equal(weir_outcome_name(WEIR_OUTCOME_TIMEOUT), "timeout");
    assert_string_equal(weir_outcome_name(WEIR_OUTCOME_THROTTLED), "throttled");
    assert_string_equal(weir_outcome_name(WEIR_OUTCOME_FATAL), "fatal");
}

/* Large batches go through the hash index: the same answers as the scan. */
static void large_batch_partial_names_the_right_records(void **state)
{
    enum { N = 5000 };
    char **idv = weir_malloc(N * sizeof(*idv));
    for (size_t i = 0; i < N; i++) {
        char id[48];
        snprintf(id, sizeof(id), "59a6b3d1-44f2-4f8e-9c43-%012zu", i);
        idv[i] = weir_strdup(id);
    }
    struct weir_batch *b = batch_of((const char *const *)idv, N);

    struct weir_invoke_result res;
    memset(&res, 0, sizeof(res));
    weir_buf_init(&res.body);
    res.transport = WEIR_TRANSPORT_OK;
    res.status = 200;
    /* Every third record, from the back, each named twice. */
    weir_buf_append_str(&res.body, "{\"batchItemFailures\":[");
    size_t named = 0;
    for (size_t k = 0; k < 2; k++)
        for (size_t i = N; i-- > 0;)
            if (i % 3 == 0) {
                weir_buf_printf(&res.body, "%s{\"itemIdentifier\":\"%s\"}",
                                res.body.data[res.body.len - 1] == '[' ? "" : ",", idv[i]);
                named += k == 0;
            }
    weir_buf_append_str(&res.body, "]}");

    struct weir_classified c;
    weir_outcome_classify(&res, b, true, NULL, &c);
    assert_int_equal(c.outcome, WEIR_OUTCOME_PARTIAL);
    assert_int_equal(c.n_failed, named);
    for (size_t j = 0; j < c.n_failed; j++)
        assert_int_equal(c.failed[j], j * 3);
    weir_classified_deinit(&c);

    /* One unknown id at the very end still fails the whole batch. */
    res.body.len -= 2;
    weir_buf_append_str(&res.body, ",{\"itemIdentifier\":\"59a6b3d1-44f2-4f8e-9c43-x\"}]}");
    weir_outcome_classify(&res, b, true, NULL, &c);
    assert_int_equal(c.outcome, WEIR_OUTCOME_FUNCTION_ERROR);
    assert_non_null(strstr(c.why, "is not in the batch"));
    assert_null(c.failed);
    weir_classified_deinit(&c);

    weir_buf_deinit(&res.body);
    weir_batch_free(b);
    for (size_t i = 0; i < N; i++)
        free(idv[i]);
    free(idv);
}

static void unknown_long_id_is_cut_in_the_reason(void **state)
{
    struct weir_batch *b = batch_of(ids, 4);
    struct weir_invoke_result res;
    memset(&res, 0, sizeof(res));
    weir_buf_init(&res.body);
    res.status = 200;
    weir_buf_append_str(&res.body, "{\"batchItemFailures\":[{\"itemIdentifier\":\"");
    for (int i = 0; i < 1000; i++)
        weir_buf_append_char(&res.body, 'q');
    weir_buf_append_str(&res.body, "\\n\\\"\"}]}");
    struct weir_classified c;
    weir_outcome_classify(&res, b, true, NULL, &c);
    assert_int_equal(c.outcome, WEIR_OUTCOME_FUNCTION_ERROR);
    assert_true(strlen(c.why) < 160);
    assert_non_null(strstr(c.why, "qqq..."));
    weir_classified_deinit(&c);
    weir_buf_deinit(&res.body);
    weir_batch_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_row_classifies_as_the_reference_says),
        cmocka_unit_test(outcome_names_are_the_log_names),
        cmocka_unit_test(large_batch_partial_names_the_right_records),
        cmocka_unit_test(unknown_long_id_is_cut_in_the_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
