/* The asynchronous invocation queue (dispatcher/async.c) on a real SQLite store and real
 * directory destinations under TMPDIR, with a fake target standing in for the function and the
 * clock stepped: retries after the configured delays, throttle backoff, event age, destination
 * records and dead letters as reference sections 3.2 to 3.5 give them, a destination that fails
 * and is tried again, events left by an earlier run, and a mapping's batch accepted through the
 * async row. */
#define _GNU_SOURCE /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <event2/event.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "connectors/target.h"
#include "core/clock.h"
#include "core/mem.h"
#include "dispatcher/dispatcher.h"
#include "model/record.h"
#include "store/async.h"
#include "store/store.h"
#include "tests/unit/fake_target.h"

static struct event_base *base;
static char dir[256], ok_dir[300], fail_dir[300], dlq_dir[300];
static char ok_uri[320], fail_uri[320], dlq_uri[320];
static struct weir_store *store;
static struct weir_async_store *astore;
static struct weir_function_cfg cfg;
static struct weir_function *fn;
static struct weir_async_queue *q;
static char *urls[] = {"http://fn", NULL};

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void open_store(void)
{
    struct weir_err err = {{0}};
    char state[300];
    snprintf(state, sizeof(state), "%s/state", dir);
    if (weir_store_open(state, base, &store, &err) != WEIR_OK)
        fail_msg("store: %s", err.msg);
    astore = weir_async_store_sqlite(store);
}

static int setup(void **state)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/weir-async-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
    snprintf(ok_dir, sizeof(ok_dir), "%s/ok", dir);
    snprintf(fail_dir, sizeof(fail_dir), "%s/failed", dir);
    snprintf(dlq_dir, sizeof(dlq_dir), "%s/dlq", dir);
    snprintf(ok_uri, sizeof(ok_uri), "file://%s", ok_dir);
    snprintf(fail_uri, sizeof(fail_uri), "file://%s", fail_dir);
    snprintf(dlq_uri, sizeof(dlq_uri), "file://%s", dlq_dir);
    base = event_base_new();
    n_invs = 0;
    cancelled = 0;
    weir_clock_fake(1000000, 1700000000000);
    memset(&cfg, 0, sizeof(cfg));
    cfg.name = "thumbs";
    cfg.urls = urls;
    cfg.n_urls = 1;
    cfg.timeout = 3;
    cfg.reserved_concurrency = -1;
    cfg.async.maximum_retry_attempts = 2;
    cfg.async.maximum_event_age_in_seconds = 21600;
    cfg.async.retry_delays_in_seconds[0] = 60;
    cfg.async.retry_delays_in_seconds[1] = 120;
    open_store();
    fn = weir_function_new_with(&cfg, &fake_ops, base, NULL);
    return 0;
}

static void on_stopped_quietly(void *arg)
{
}

/* As weir run ends: the queue stops taking, then the store closes, then the rest. */
static void close_all(void)
{
    if (q)
        weir_async_queue_stop(q, on_stopped_quietly, NULL);
    weir_store_free(store);
    store = NULL;
    weir_async_queue_free(q);
    q = NULL;
    if (astore)
        astore->ops->free(astore);
    astore = NULL;
    weir_function_free(fn);
    fn = NULL;
}

static int teardown(void **state)
{
    close_all();
    event_base_free(base);
    weir_clock_real();
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* Runs the loop (the store and the directory writers answer from their threads) until cond holds
 * or a few seconds of real time pass. Time on weir's clock does not move. */
#define RUN_UNTIL(cond)                                                                            \
    do {                                                                                           \
        for (int spin_ = 0; spin_ < 20000 && !(cond); spin_++) {                                   \
            event_base_loop(base, EVLOOP_NONBLOCK);                                                \
            if (!(cond))                                                                           \
                usleep(200);                                                                       \
        }                                                                                          \
        if (!(cond))                                                                               \
            fail_msg("timed out waiting for: %s", #cond);                                          \
    } while (0)

/* Lets whatever is in flight on the threads finish, without waiting for any one thing. */
static void quiesce(void)
{
    for (int i = 0; i < 50; i++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        usleep(500);
    }
}

static void step_s(int s)
{
    weir_clock_step((int64_t)s * 1000);
    quiesce();
}

static void start_queue(void)
{
    struct weir_err err = {{0}};
    q = weir_async_queue_new(fn, astore, "eu-west-1", &err);
    if (!q)
        fail_msg("queue: %s", err.msg);
    weir_async_queue_start(q);
}

struct accepted {
    int calls;
    weir_status st;
    char request_id[37];
};

static void on_accepted(void *arg, weir_status st, const char *error, const char *request_id)
{
    struct accepted *a = arg;
    a->calls++;
    a->st = st;
    snprintf(a->request_id, sizeof(a->request_id), "%s", request_id);
}

static void accept_event(const char *payload, struct accepted *a)
{
    memset(a, 0, sizeof(*a));
    weir_async_accept(fn, "api", payload, strlen(payload), on_accepted, a);
    assert_int_equal(a->calls, 0); /* never from inside the call */
    RUN_UNTIL(a->calls == 1);
    assert_int_equal(a->st, WEIR_OK);
    assert_int_equal(strlen(a->request_id), 36);
}

static size_t active(void)
{
    size_t n = 0;
    for (size_t i = 0; i < n_invs; i++)
        n += invs[i].active;
    return n;
}

static size_t files_in(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* The one file in path, parsed. */
static json_t *only_file(const char *path)
{
    assert_int_equal(files_in(path), 1);
    DIR *d = opendir(path);
    struct dirent *e;
    char file[600] = "";
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            snprintf(file, sizeof(file), "%s/%s", path, e->d_name);
    closedir(d);
    json_error_t jerr;
    json_t *j = json_load_file(file, 0, &jerr);
    if (!j)
        fail_msg("%s: %s", file, jerr.text);
    return j;
}

static const char *str_at(json_t *j, const char *a, const char *b)
{
    json_t *v = json_object_get(j, a);
    if (b)
        v = json_object_get(v, b);
    return json_string_value(v);
}

static json_int_t int_at(json_t *j, const char *a, const char *b)
{
    return json_integer_value(json_object_get(json_object_get(j, a), b));
}

static const char ERROR_BODY[] = "{\"errorMessage\":\"boom\",\"errorType\":\"ValueError\"}";

/* ---- tests ---- */

static void an_accepted_event_is_invoked_and_its_success_recorded(void **state)
{
    cfg.async.on_success = ok_uri;
    start_queue();
    struct accepted a;
    accept_event("{\"bucket\":\"photos\",\"key\":\"cat.jpg\"}", &a);
    RUN_UNTIL(n_invs == 1);
    assert_int_equal(invs[0].len, strlen("{\"bucket\":\"photos\",\"key\":\"cat.jpg\"}"));
    assert_memory_equal(invs[0].payload, "{\"bucket\":\"photos\",\"key\":\"cat.jpg\"}",
                        invs[0].len);
    complete(0, WEIR_TRANSPORT_OK, 200, "{\"thumbnail\":\"cat-small.jpg\"}");
    RUN_UNTIL(files_in(ok_dir) == 1 && weir_async_queue_stats(q)->working == 0);

    json_t *r = only_file(ok_dir);
    assert_string_equal(str_at(r, "version", NULL), "1.0");
    assert_string_equal(str_at(r, "requestContext", "requestId"), a.request_id);
    assert_string_equal(str_at(r, "requestContext", "condition"), "Success");
    assert_string_equal(str_at(r, "requestContext", "functionArn"),
                        "arn:aws:lambda:eu-west-1:000000000000:function:thumbs:$LATEST");
    assert_int_equal(int_at(r, "requestContext", "approximateInvokeCount"), 1);
    assert_string_equal(str_at(r, "requestPayload", "key"), "cat.jpg"); /* as JSON, not a string */
    assert_int_equal(int_at(r, "responseContext", "statusCode"), 200);
    assert_string_equal(str_at(r, "responseContext", "executedVersion"), "$LATEST");
    assert_null(json_object_get(json_object_get(r, "responseContext"), "functionError"));
    assert_string_equal(str_at(r, "responsePayload", "thumbnail"), "cat-small.jpg");
    assert_string_equal(str_at(r, "timestamp", NULL), "2023-11-14T22:13:20.000Z");
    json_decref(r);
    assert_int_equal(weir_async_queue_stats(q)->succeeded, 1);

    /* Done with: nothing is invoked again, however long it waits. */
    step_s(3600);
    assert_int_equal(n_invs, 1);
}

static void function_errors_are_retried_after_the_delays_then_go_to_on_failure(void **state)
{
    cfg.async.on_failure = fail_uri;
    cfg.dead_letter_target = dlq_uri;
    start_queue();
    struct accepted a;
    accept_event("{\"n\":1}", &a);
    RUN_UNTIL(n_invs == 1);
    complete(0, WEIR_TRANSPORT_OK, 200, ERROR_BODY);
    quiesce();
    /* The first retry comes after 60 s, not before. */
    step_s(59);
    assert_int_equal(n_invs, 1);
    step_s(1);
    RUN_UNTIL(n_invs == 2);
    complete(1, WEIR_TRANSPORT_OK, 200, ERROR_BODY);
    quiesce();
    /* The second after 120 s more. */
    step_s(119);
    assert_int_equal(n_invs, 2);
    step_s(1);
    RUN_UNTIL(n_invs == 3);
    /* A timeout is a function error too. */
    complete(2, WEIR_TRANSPORT_TIMEOUT, 0, NULL);
    RUN_UNTIL(files_in(fail_dir) == 1 && files_in(dlq_dir) == 1 &&
              weir_async_queue_stats(q)->working == 0);
    /* maximum_retry_attempts 2: three attempts, no fourth. */
    step_s(3600);
    assert_int_equal(n_invs, 3);

    json_t *r = only_file(fail_dir);
    assert_string_equal(str_at(r, "requestContext", "condition"), "RetriesExhausted");
    assert_int_equal(int_at(r, "requestContext", "approximateInvokeCount"), 3);
    assert_string_equal(str_at(r, "requestContext", "requestId"), a.request_id);
    assert_string_equal(str_at(r, "responseContext", "functionError"), "Unhandled");
    json_decref(r);

    /* The dead letter is the raw event with RequestID, ErrorCode and ErrorMessage, in weir's
     * envelope. The last answer was the timeout: it gave no body, so the message is the why. */
    json_t *d = only_file(dlq_dir);
    assert_string_equal(str_at(d, "body", NULL), "{\"n\":1}");
    assert_string_equal(str_at(d, "id", NULL), a.request_id);
    json_t *attrs = json_object_get(d, "attributes");
    assert_string_equal(str_at(attrs, "RequestID", "stringValue"), a.request_id);
    assert_string_equal(str_at(attrs, "RequestID", "dataType"), "String");
    assert_string_equal(str_at(attrs, "ErrorCode", "dataType"), "Number");
    assert_non_null(str_at(attrs, "ErrorMessage", "stringValue"));
    json_decref(d);
    assert_int_equal(weir_async_queue_stats(q)->retries_exhausted, 1);
    assert_int_equal(weir_async_queue_stats(q)->retried, 2);
}

static void a_dead_letter_carries_the_functions_error_message(void **state)
{
    cfg.async.maximum_retry_attempts = 0;
    cfg.dead_letter_target = dlq_uri;
    start_queue();
    struct accepted a;
    accept_event("{\"n\":2}", &a);
    RUN_UNTIL(n_invs == 1);
    complete(0, WEIR_TRANSPORT_OK, 200, ERROR_BODY);
    RUN_UNTIL(files_in(dlq_dir) == 1 && weir_async_queue_stats(q)->working == 0);
    json_t *d = only_file(dlq_dir);
    json_t *attrs = json_object_get(d, "attributes");
    assert_string_equal(str_at(attrs, "ErrorMessage", "stringValue"), "boom");
    assert_string_equal(str_at(attrs, "ErrorCode", "stringValue"), "200");
    json_decref(d);
    assert_int_equal(n_invs, 1); /* maximum_retry_attempts 0: one attempt */
}

static void throttles_back_off_without_using_retries(void **state)
{
    cfg.async.maximum_retry_attempts = 0;
    cfg.async.on_success = ok_uri;
    start_queue();
    struct accepted a;
    accept_event("{\"n\":3}", &a);
    /* 1 s, 2 s, 4 s, 8 s between attempts; none of them counts as a retry. */
    int64_t gaps[] = {1, 2, 4, 8};
    RUN_UNTIL(n_invs == 1);
    for (size_t i = 0; i < 4; i++) {
        complete(n_invs - 1, WEIR_TRANSPORT_OK, 429, "{\"message\":\"Rate Exceeded.\"}");
        quiesce();
        if (gaps[i] > 1) {
            step_s((int)gaps[i] - 1);
            assert_int_equal(n_invs, i + 1);
        }
        step_s(1);
        RUN_UNTIL(n_invs == i + 2);
    }
    complete(n_invs - 1, WEIR_TRANSPORT_OK, 200, "{}");
    RUN_UNTIL(files_in(ok_dir) == 1 && weir_async_queue_stats(q)->working == 0);
    json_t *r = only_file(ok_dir);
    assert_string_equal(str_at(r, "requestContext", "condition"), "Success");
    json_decref(r);
    assert_int_equal(weir_async_queue_stats(q)->throttled, 4);
}

static void an_event_past_its_age_ends_without_another_attempt(void **state)
{
    cfg.async.maximum_event_age_in_seconds = 60;
    cfg.async.on_failure = fail_uri;
    start_queue();
    struct accepted a;
    accept_event("{\"n\":4}", &a);
    RUN_UNTIL(n_invs == 1);
    /* The function is unreachable: backoff 1, 2, 4, 8, 16, 32 s ... until the 60 s are up. */
    for (int s = 0; s < 70 && weir_async_queue_stats(q)->event_age_exceeded == 0; s++) {
        for (size_t i = 0; i < n_invs; i++)
            if (invs[i].active)
                complete(i, WEIR_TRANSPORT_REFUSED, 0, NULL);
        step_s(1);
    }
    RUN_UNTIL(files_in(fail_dir) == 1 && weir_async_queue_stats(q)->working == 0);
    size_t attempts = n_invs;
    assert_true(attempts >= 5 && attempts <= 7);
    json_t *r = only_file(fail_dir);
    assert_string_equal(str_at(r, "requestContext", "condition"), "EventAgeExceeded");
    /* It never ran: no responseContext, no responsePayload. */
    assert_null(json_object_get(r, "responseContext"));
    assert_null(json_object_get(r, "responsePayload"));
    json_decref(r);
    step_s(600);
    assert_int_equal(n_invs, attempts);
}

static void a_failed_destination_is_tried_again_alone(void **state)
{
    /* The failure directory's parent is missing at first: writes into it fail. */
    char missing[400], missing_uri[420];
    snprintf(missing, sizeof(missing), "%s/later/failed", dir);
    snprintf(missing_uri, sizeof(missing_uri), "file://%s", missing);
    cfg.async.maximum_retry_attempts = 0;
    cfg.async.on_failure = missing_uri;
    cfg.dead_letter_target = dlq_uri;
    start_queue();
    struct accepted a;
    accept_event("{\"n\":5}", &a);
    RUN_UNTIL(n_invs == 1);
    complete(0, WEIR_TRANSPORT_OK, 200, ERROR_BODY);
    RUN_UNTIL(files_in(dlq_dir) == 1 && weir_async_queue_stats(q)->delivery_failures == 1 &&
              weir_async_queue_stats(q)->working == 0);
    char parent[400];
    snprintf(parent, sizeof(parent), "%s/later", dir);
    assert_int_equal(mkdir(parent, 0755), 0);
    step_s(1);
    RUN_UNTIL(files_in(missing) == 1 && weir_async_queue_stats(q)->working == 0);
    /* Not invoked again, and the dead letter that was written is not written twice. */
    assert_int_equal(n_invs, 1);
    assert_int_equal(files_in(dlq_dir), 1);
    json_t *r = only_file(missing);
    assert_string_equal(str_at(r, "requestContext", "condition"), "RetriesExhausted");
    json_decref(r);
}

static void events_stored_before_a_restart_are_delivered_after_it(void **state)
{
    /* Accepted while nothing takes them, then the process "dies". */
    struct accepted a[3];
    struct weir_err err = {{0}};
    q = weir_async_queue_new(fn, astore, "eu-west-1", &err);
    accept_event("{\"n\":10}", &a[0]);
    accept_event("{\"n\":11}", &a[1]);
    accept_event("{\"n\":12}", &a[2]);
    assert_int_equal(n_invs, 0);
    close_all();

    open_store();
    fn = weir_function_new_with(&cfg, &fake_ops, base, NULL);
    start_queue();
    RUN_UNTIL(n_invs == 3);
    for (size_t i = 0; i < 3; i++) {
        char want[16];
        snprintf(want, sizeof(want), "{\"n\":%zu}", 10 + i);
        assert_int_equal(invs[i].len, strlen(want));
        assert_memory_equal(invs[i].payload, want, invs[i].len);
        complete(i, WEIR_TRANSPORT_OK, 200, "{}");
    }
    RUN_UNTIL(weir_async_queue_stats(q)->working == 0);
    assert_int_equal(weir_async_queue_stats(q)->succeeded, 3);
}

static void concurrency_bounds_what_is_invoked_and_the_rest_waits_in_the_queue(void **state)
{
    cfg.reserved_concurrency = 2;
    weir_function_free(fn);
    fn = weir_function_new_with(&cfg, &fake_ops, base, NULL);
    start_queue();
    struct accepted a;
    for (int i = 0; i < 5; i++)
        accept_event("{}", &a);
    RUN_UNTIL(n_invs == 2);
    quiesce();
    assert_int_equal(active(), 2);
    /* The other three were taken ahead and wait in the queue, not at the function: its free
     * slots say 0, not less, to its other callers. */
    assert_int_equal(weir_async_queue_stats(q)->working, 5);
    assert_int_equal(weir_function_free_slots(fn), 0);
    complete(0, WEIR_TRANSPORT_OK, 200, "{}");
    RUN_UNTIL(n_invs == 3);
    quiesce();
    assert_int_equal(active(), 2);
    for (size_t i = 1; i < 5; i++) {
        RUN_UNTIL(n_invs > i);
        complete(i, WEIR_TRANSPORT_OK, 200, "{}");
    }
    RUN_UNTIL(weir_async_queue_stats(q)->succeeded == 5 && weir_async_queue_stats(q)->working == 0);
}

static void an_event_waiting_for_a_slot_ages_out_when_it_would_start(void **state)
{
    cfg.reserved_concurrency = 1;
    cfg.async.maximum_event_age_in_seconds = 60;
    cfg.async.on_failure = fail_uri;
    weir_function_free(fn);
    fn = weir_function_new_with(&cfg, &fake_ops, base, NULL);
    start_queue();
    struct accepted a;
    accept_event("{\"n\":1}", &a);
    accept_event("{\"n\":2}", &a);
    RUN_UNTIL(n_invs == 1);
    /* The second waits for the one slot longer than its age allows. */
    step_s(61);
    complete(0, WEIR_TRANSPORT_OK, 200, "{}");
    RUN_UNTIL(files_in(fail_dir) == 1 && weir_async_queue_stats(q)->working == 0);
    assert_int_equal(n_invs, 1);
    json_t *r = only_file(fail_dir);
    assert_string_equal(str_at(r, "requestContext", "condition"), "EventAgeExceeded");
    assert_int_equal(int_at(r, "requestPayload", "n"), 2); /* the one that waited */
    json_decref(r);
}

static struct weir_batch *returned;

static void on_batch_back(void *arg, struct weir_batch *b)
{
    returned = b;
}

static void a_mappings_batch_is_done_once_stored_and_invoked_later(void **state)
{
    start_queue();
    struct weir_batch *b = weir_batch_new(0);
    struct weir_record *r = weir_record_new();
    r->id = weir_strdup("photos/cat.jpg");
    r->data = weir_strdup("");
    weir_batch_take(b, r);
    weir_buf_append_str(&b->event, "{\"Records\":[{\"eventName\":\"ObjectCreated:Put\"}]}");
    struct weir_disp_policy pol = {.delivery = WEIR_DELIVERY_ASYNC, .mapping_name = "photos"};
    returned = NULL;
    weir_disp_submit(fn, b, &pol, on_batch_back, NULL);
    assert_null(returned);
    RUN_UNTIL(returned != NULL);
    assert_int_equal(returned->records[0]->verdict, WEIR_VERDICT_DONE);
    weir_batch_free(returned);
    RUN_UNTIL(n_invs == 1);
    assert_non_null(strstr(invs[0].payload, "ObjectCreated:Put"));
    complete(0, WEIR_TRANSPORT_OK, 200, "{}");
    RUN_UNTIL(weir_async_queue_stats(q)->succeeded == 1 && weir_async_queue_stats(q)->working == 0);
}

static int stopped;

static void on_stopped(void *arg)
{
    stopped++;
}

static void stop_waits_for_the_attempt_in_flight(void **state)
{
    start_queue();
    struct accepted a;
    accept_event("{}", &a);
    RUN_UNTIL(n_invs == 1);
    stopped = 0;
    weir_async_queue_stop(q, on_stopped, NULL);
    assert_int_equal(stopped, 0);
    /* Shutdown's bound passed: the invocation is aborted and the event written back. */
    weir_disp_abort(fn);
    RUN_UNTIL(stopped == 1);
    close_all();
    /* It is there for the next run, which invokes it. */
    open_store();
    fn = weir_function_new_with(&cfg, &fake_ops, base, NULL);
    start_queue();
    step_s(2);
    RUN_UNTIL(n_invs == 2);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(an_accepted_event_is_invoked_and_its_success_recorded),
        T(function_errors_are_retried_after_the_delays_then_go_to_on_failure),
        T(a_dead_letter_carries_the_functions_error_message),
        T(throttles_back_off_without_using_retries),
        T(an_event_past_its_age_ends_without_another_attempt),
        T(a_failed_destination_is_tried_again_alone),
        T(events_stored_before_a_restart_are_delivered_after_it),
        T(concurrency_bounds_what_is_invoked_and_the_rest_waits_in_the_queue),
        T(an_event_waiting_for_a_slot_ages_out_when_it_would_start),
        T(a_mappings_batch_is_done_once_stored_and_invoked_later),
        T(stop_waits_for_the_attempt_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
