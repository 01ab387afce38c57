/* Dispatcher unit tests: a fake target (this layer's own test double) stands in for the function,
 * so pool, concurrency, verdict and retry rules are checked deterministically. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "connectors/target.h"
#include "core/clock.h"
#include "core/mem.h"
#include "dispatcher/dispatcher.h"
#include "model/event.h"
#include "tests/unit/fake_target.h"

/* ---- fixtures ---- */

static struct event_base *base;
static struct weir_batch *returned[MAX_INV];
static size_t n_returned;
static size_t watcher_calls;

static void on_done(void *arg, struct weir_batch *b)
{
    returned[n_returned++] = b;
}

static void on_slot(void *arg)
{
    watcher_calls++;
}

static char *urls2[] = {"http://a", "http://b", NULL};

static struct weir_function_cfg fn_cfg(int reserved, int single_flight, size_t n_urls)
{
    struct weir_function_cfg c;
    memset(&c, 0, sizeof(c));
    c.name = "fn";
    c.urls = urls2;
    c.n_urls = n_urls;
    c.timeout = 3;
    c.reserved_concurrency = reserved;
    c.single_flight = single_flight;
    return c;
}

static struct weir_disp_policy policy(bool report)
{
    return (struct weir_disp_policy){
        .delivery = WEIR_DELIVERY_QUEUE, .report_batch_item_failures = report, .mapping_name = "m"};
}

static struct weir_batch *batch_of(size_t n, int64_t deadline_ms)
{
    struct weir_batch *b = weir_batch_new(0);
    for (size_t i = 0; i < n; i++) {
        struct weir_record *r = weir_record_new();
        char id[32];
        snprintf(id, sizeof(id), "m%zu", i + 1);
        r->id = weir_strdup(id);
        r->data = weir_strdup("x");
        r->data_len = 1;
        r->deadline_ms = deadline_ms;
        weir_batch_take(b, r);
    }
    weir_buf_append_str(&b->event, "{\"Records\":[]}");
    return b;
}

static int setup(void **state)
{
    base = event_base_new();
    n_invs = 0;
    n_returned = 0;
    cancelled = 0;
    watcher_calls = 0;
    weir_clock_fake(1000000, 1700000000000);
    return 0;
}

static int teardown(void **state)
{
    for (size_t i = 0; i < n_returned; i++)
        weir_batch_free(returned[i]);
    event_base_free(base);
    weir_clock_real();
    return 0;
}

/* Steps weir's clock and runs what became due: timers fire from the loop, on stepped time. */
static void step_ms(int ms)
{
    weir_clock_step(ms);
    event_base_loop(base, EVLOOP_NONBLOCK);
}

/* ---- tests ---- */

static void ok_response_settles_every_record_done(void **state)
{
    struct weir_function_cfg c = fn_cfg(-1, 0, 1);
    struct weir_disp_policy pol = policy(true);
    struct weir_function *fn = weir_function_new_with(&c, &fake_ops, base, NULL);
    weir_disp_submit(fn, batch_of(3, 0), &pol, on_done, NULL);
    assert_int_equal(n_invs, 1);
    complete(0, WEIR_TRANSPORT_OK, 200, "{}");
    assert_int_equal(n_returned, 1);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(returned[0]->records[i]->verdict, WEIR_VERDICT_DONE);
    assert_int_equal(returned[0]->invocations, 1);
    weir_function_free(fn);
}

static void partial_response_retries_only_the_listed_records(void **state)
{
    struct weir_function_cfg c = fn_cfg(-1, 0, 1);
    struct weir_disp_policy pol = policy(true);
    struct weir_function *fn = weir_function_new_with(&c, &fake_ops, base, NULL);
    weir_disp_submit(fn, batch_of(3, 0), &pol, on_done, NULL);
    complete(0, WEIR_TRANSPORT_OK, 200, "{\"batchItemFailures\":[{\"itemIdentifier\":\"m2\"}]}");
    assert_int_equal(n_returned, 1);
    assert_int_equal(returned[0]->records[0]->verdict, WEIR_VERDICT_DONE);
    assert_int_equal(returned[0]->records[1]->verdict, WEIR_VERDICT_RETRY);
    assert_int_equal(returned[0]->records[2]->verdict, WEIR_VERDICT_DONE);
    weir_function_free(fn);
}

static void partial_response_is_ignored_without_report_batch_item_failures(void **state)
{
    struct weir_function_cfg c = fn_cfg(-1, 0, 1);
    struct weir_disp_policy pol = policy(false);
    struct weir_function *fn = weir_function_new_with(&c, &fake_ops, base, NULL);
    weir_disp_submit(fn, batch_of(2, 0), &pol, on_done, NULL);
    complete(0, WEIR_TRANSPORT_OK, 200, "{\"batchItemFailures\":[{\"itemIdentifier\":\"m2\"}]}");
    assert_int_equal(returned[0]->records[1]->verdict, WEIR_VERDICT_DONE);
    weir_function_free(fn);
}

static void function_error_retries_the_whole_batch(void **state)
{
    struct weir_function_cfg c = fn_cfg(-1, 0, 1);
    struct weir_disp_policy pol = policy(true);
    struct weir_function *fn = weir_function_new_with(&c, &fake_ops, base, NULL);
    weir_disp_submit(fn, batch_of(2, 0), &pol, on_done, NULL);
    complete(0, WEIR_TRANSPORT_OK, 200, "{\"errorMessage\":\"boom\",\"errorType\":\"Error\"}");
    assert_int_equal(returned[0]->records[0]->verdict, WEIR_VERDICT_RETRY);
    assert_int_equal(returned[0]->records[1]->verdict, WEIR_VERDICT_RETRY);
    weir_function_free(fn);
}

static void single_flight_endpoint_never_gets_a_second_concurrent_invocation(void **state)
{
    struct weir_function_cfg c = fn_cfg(-1, 1, 2);
    struct weir_disp_policy pol = policy(false);
    struct weir_function *fn = weir_function_new_with(&c, &fake_ops, base, NULL);
    weir_function_watch(fn, on_slot, NULL);
    assert_int_equal(weir_function_free_slots(fn), 2);
    for (int i = 0; i < 5; i++)
        weir_disp_submit(fn, batch_of(1, 0), &pol, on_done, NULL);
    assert_int_equal(n_invs, 2);
    assert_int_equal(active_on_endpoint(0), 1);
    assert_int_equal(active_on_endpoint(1), 1);
    assert_int_equal(weir_function_free_slots(fn), 0);
    for (size_t done = 0; done < 5; done++) {
        size_t i;
        for (i = 0; i < n_invs && !invs[i].active; i++)
            ;
        complete(i, WEIR_TRANSPORT_OK, 200, "");
        assert_true(active_on_endpoint(0) <= 1);
        assert_true(active_on_endpoint(1) <= 1);
    }
    assert_int_equal(n_invs, 5);
    assert_int_equal(n_returned, 5);
    assert_true(watcher_calls >= 1);
    weir_function_free(fn);
}

static void reserved_concurrency_bounds_running_invocations(void **state)
{
    struct weir_function_cfg c = fn_cfg(3, 0, 1);
    struct weir_disp_policy pol = policy(false);
    struct weir_function *fn = weir_function_new_with(&c, &fake_ops, base, NULL);
    for (int i = 0; i < 5; i++)
        weir_disp_submit(fn, batch_of(1, 0), &pol, on_done, NULL);
    assert_int_equal(n_invs, 3);
    complete(0, WEIR_TRANSPORT_OK, 200, "");
    assert_int_equal(n_invs, 4);
    weir_function_free(fn);
}

static void throttled_invocation_is_retried_after_backoff(void **state)
{
    struct weir_function_cfg c = fn_cfg(-1, 0, 1);
    struct weir_disp_policy pol = policy(false);
    struct weir_function *fn = weir_function_new_with(&c, &fake_ops, base, NULL);
    weir_disp_submit(fn, batch_of(2, 0), &pol, on_done, NULL);
    complete(0, WEIR_TRANSPORT_REFUSED, 0, NULL);
    assert_int_equal(n_returned, 0);
    assert_int_equal(n_invs, 1);
    step_ms(99); /* the first backoff is 100 ms */
    assert_int_equal(n_invs, 1);
    step_ms(1);
    assert_int_equal(n_invs, 2);
    complete(1, WEIR_TRANSPORT_REFUSED, 0, NULL);
    step_ms(199); /* doubled */
    assert_int_equal(n_invs, 2);
    step_ms(1);
    assert_int_equal(n_invs, 3);
    complete(2, WEIR_TRANSPORT_OK, 200, "{}");
    assert_int_equal(n_returned, 1);
    assert_int_equal(returned[0]->records[0]->verdict, WEIR_VERDICT_DONE);
    assert_int_equal(returned[0]->invocations, 3);
    weir_function_free(fn);
}

static void throttled_invocation_frees_its_slot_for_a_waiting_batch(void **state)
{
    struct weir_function_cfg c = fn_cfg(1, 0, 1);
    struct weir_disp_policy pol = policy(false);
    struct weir_function *fn = weir_function_new_with(&c, &fake_ops, base, NULL);
    weir_disp_submit(fn, batch_of(1, 0), &pol, on_done, NULL);
    weir_disp_submit(fn, batch_of(1, 0), &pol, on_done, NULL);
    assert_int_equal(n_invs, 1);
    complete(0, WEIR_TRANSPORT_REFUSED, 0, NULL);
    /* The throttled batch backs off without its slot; the waiting one is invoked at once. */
    assert_int_equal(n_invs, 2);
    complete(1, WEIR_TRANSPORT_OK, 200, "{}");
    assert_int_equal(n_returned, 1);
    step_ms(100);
    assert_int_equal(n_invs, 3);
    complete(2, WEIR_TRANSPORT_OK, 200, "{}");
    assert_int_equal(n_returned, 2);
    assert_int_equal(returned[1]->invocations, 2);
    weir_function_free(fn);
}

static void throttled_invocation_gives_records_back_when_the_lease_cannot_cover_a_retry(void **s)
{
    struct weir_function_cfg c = fn_cfg(-1, 0, 1);
    struct weir_disp_policy pol = policy(false);
    struct weir_function *fn = weir_function_new_with(&c, &fake_ops, base, NULL);
    /* Lease enough for one invocation (3 s timeout) but not for a backoff and another. */
    weir_disp_submit(fn, batch_of(1, weir_clock_mono_ms() + 3250), &pol, on_done, NULL);
    assert_int_equal(n_invs, 1);
    complete(0, WEIR_TRANSPORT_OK, 429, "slow down");
    assert_int_equal(n_returned, 1);
    assert_int_equal(returned[0]->records[0]->verdict, WEIR_VERDICT_RETRY);
    weir_function_free(fn);
}

static void batch_whose_lease_ended_is_not_invoked(void **state)
{
    struct weir_function_cfg c = fn_cfg(-1, 0, 1);
    struct weir_disp_policy pol = policy(false);
    struct weir_function *fn = weir_function_new_with(&c, &fake_ops, base, NULL);
    weir_disp_submit(fn, batch_of(1, weir_clock_mono_ms() - 1), &pol, on_done, NULL);
    assert_int_equal(n_invs, 0);
    assert_int_equal(n_returned, 0); /* never handed back from inside submit */
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(n_returned, 1);
    /* The function never saw it: it goes back unsent, no receive counted. */
    assert_int_equal(returned[0]->records[0]->verdict, WEIR_VERDICT_RELEASE);
    weir_function_free(fn);
}

static void a_lease_about_the_function_timeout_still_invokes_a_fresh_batch(void **state)
{
    struct weir_function_cfg c = fn_cfg(-1, 0, 1); /* timeout 3 s */
    struct weir_disp_policy pol = policy(false);
    struct weir_function *fn = weir_function_new_with(&c, &fake_ops, base, NULL);
    /* A 3 s visibility timeout for a 3 s function (AWS allows it): a batch claimed a moment ago
     * is invoked, or nothing ever would be. */
    struct weir_batch *b = batch_of(1, weir_clock_mono_ms() + 2900);
    b->records[0]->lease_ms = 3000;
    weir_disp_submit(fn, b, &pol, on_done, NULL);
    assert_int_equal(n_invs, 1);
    complete(0, WEIR_TRANSPORT_OK, 200, "{}");
    /* One that waited past what a second-old claim would have is not. */
    b = batch_of(1, weir_clock_mono_ms() + 1900);
    b->records[0]->lease_ms = 3000;
    weir_disp_submit(fn, b, &pol, on_done, NULL);
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(n_invs, 1);
    assert_int_equal(returned[1]->records[0]->verdict, WEIR_VERDICT_RELEASE);
    weir_function_free(fn);
}

static void an_invocation_starts_only_while_the_lease_covers_its_whole_timeout(void **state)
{
    struct weir_function_cfg c = fn_cfg(-1, 0, 1); /* timeout 3 s */
    struct weir_disp_policy pol = policy(false);
    struct weir_function *fn = weir_function_new_with(&c, &fake_ops, base, NULL);
    /* 3 s of lease left: a function running its whole timeout would outlive it. */
    weir_disp_submit(fn, batch_of(1, weir_clock_mono_ms() + 3000), &pol, on_done, NULL);
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(n_invs, 0);
    assert_int_equal(n_returned, 1);
    assert_int_equal(returned[0]->records[0]->verdict, WEIR_VERDICT_RELEASE);
    /* The timeout and the margin left: invoked. */
    weir_disp_submit(fn, batch_of(1, weir_clock_mono_ms() + 3200), &pol, on_done, NULL);
    assert_int_equal(n_invs, 1);
    complete(0, WEIR_TRANSPORT_OK, 200, "{}");
    weir_function_free(fn);
}

static void event_over_6mb_is_refused_without_invoking(void **state)
{
    struct weir_function_cfg c = fn_cfg(-1, 0, 1);
    struct weir_disp_policy pol = policy(false);
    struct weir_function *fn = weir_function_new_with(&c, &fake_ops, base, NULL);
    struct weir_batch *b = batch_of(1, 0);
    weir_buf_reserve(&b->event, WEIR_INVOKE_PAYLOAD_MAX + 1);
    memset(b->event.data, ' ', WEIR_INVOKE_PAYLOAD_MAX + 1);
    b->event.len = WEIR_INVOKE_PAYLOAD_MAX + 1;
    b->event.data[b->event.len] = '\0';
    weir_disp_submit(fn, b, &pol, on_done, NULL);
    assert_int_equal(n_returned, 0); /* never re-entered from inside submit */
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(n_invs, 0);
    assert_int_equal(n_returned, 1);
    /* Lambda would refuse it too: rejected (to the dead-letter target), never retried. */
    assert_int_equal(returned[0]->records[0]->verdict, WEIR_VERDICT_REJECT);
    assert_non_null(strstr(returned[0]->records[0]->reason, "6 MB"));
    weir_function_free(fn);
}

static void abort_returns_running_as_retry_and_waiting_as_release(void **state)
{
    struct weir_function_cfg c = fn_cfg(1, 0, 1);
    struct weir_disp_policy pol = policy(false);
    struct weir_function *fn = weir_function_new_with(&c, &fake_ops, base, NULL);
    weir_disp_submit(fn, batch_of(1, 0), &pol, on_done, NULL);
    weir_disp_submit(fn, batch_of(1, 0), &pol, on_done, NULL);
    assert_int_equal(n_invs, 1);
    weir_disp_abort(fn);
    assert_int_equal(cancelled, 1);
    assert_int_equal(n_returned, 2);
    assert_int_equal(returned[0]->records[0]->verdict, WEIR_VERDICT_RETRY);
    assert_int_equal(returned[1]->records[0]->verdict, WEIR_VERDICT_RELEASE);
    weir_function_free(fn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(ok_response_settles_every_record_done, setup, teardown),
        cmocka_unit_test_setup_teardown(partial_response_retries_only_the_listed_records, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            partial_response_is_ignored_without_report_batch_item_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(function_error_retries_the_whole_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(
            single_flight_endpoint_never_gets_a_second_concurrent_invocation, setup, teardown),
        cmocka_unit_test_setup_teardown(reserved_concurrency_bounds_running_invocations, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(throttled_invocation_is_retried_after_backoff, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(throttled_invocation_frees_its_slot_for_a_waiting_batch,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            throttled_invocation_gives_records_back_when_the_lease_cannot_cover_a_retry, setup,
            teardown),
        cmocka_unit_test_setup_teardown(batch_whose_lease_ended_is_not_invoked, setup, teardown),
        cmocka_unit_test_setup_teardown(
            an_invocation_starts_only_while_the_lease_covers_its_whole_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_lease_about_the_function_timeout_still_invokes_a_fresh_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(event_over_6mb_is_refused_without_invoking, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(abort_returns_running_as_retry_and_waiting_as_release,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
