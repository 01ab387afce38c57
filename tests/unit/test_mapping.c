/* Mapping unit tests: a fake poller and a fake target around the real batcher and dispatcher, to
 * check batching triggers, backpressure, verdict flow and the stop sequence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "core/mem.h"
#include "dispatcher/dispatcher.h"
#include "mapping/mapping.h"
#include "pollers/poller.h"
#include "tests/unit/fake_poller.h"
#include "tests/unit/fake_target.h"

/* ---- fixtures ---- */

static struct event_base *base;
static struct weir_function_cfg fcfg;
static struct weir_mapping_cfg mcfg;
static struct weir_function *fn;
static struct weir_mapping *m;
static char *urls1[] = {"http://a", NULL};
static int stopped;
static int next_id;

static void on_stopped(void *arg)
{
    stopped++;
}

static void make_enabled(int batch_size, int window_s, int max_concurrency, int single_flight,
                         bool enabled)
{
    memset(&fcfg, 0, sizeof(fcfg));
    fcfg.name = "fn";
    fcfg.urls = urls1;
    fcfg.n_urls = 1;
    fcfg.timeout = 3;
    fcfg.reserved_concurrency = -1;
    fcfg.single_flight = single_flight;
    memset(&mcfg, 0, sizeof(mcfg));
    mcfg.name = "m";
    mcfg.source = "fake://q";
    mcfg.function = "fn";
    mcfg.fn = &fcfg;
    mcfg.batch_size = batch_size;
    mcfg.maximum_batching_window_in_seconds = window_s;
    mcfg.maximum_concurrency = max_concurrency;
    mcfg.enabled = enabled;
    mcfg.report_batch_item_failures = true;
    fn = weir_function_new_with(&fcfg, &fake_ops, base, NULL);
    m = weir_mapping_new_with(&mcfg, &fake_source, "us-east-1", fn, base, NULL);
    assert_non_null(m);
    assert_int_equal(weir_mapping_start(m), WEIR_OK);
}

static void make(int batch_size, int window_s, int max_concurrency, int single_flight)
{
    make_enabled(batch_size, window_s, max_concurrency, single_flight, true);
}

static void deliver(int n)
{
    for (int i = 0; i < n; i++) {
        struct weir_record *r = weir_record_new();
        char id[32];
        snprintf(id, sizeof(id), "id-%d", ++next_id);
        r->id = weir_strdup(id);
        r->handle = weir_strdup(id);
        r->data = weir_strdup("body");
        r->data_len = 4;
        r->receive_count = 1;
        fake_deliver(r);
    }
}

static void run_loop_ms(int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

static int setup(void **state)
{
    fake_source_reset();
    base = event_base_new();
    n_invs = 0;
    cancelled = 0;
    stopped = 0;
    next_id = 0;
    return 0;
}

static int teardown(void **state)
{
    weir_mapping_free(m);
    weir_function_free(fn);
    event_base_free(base);
    return 0;
}

/* ---- tests ---- */

static void zero_window_closes_the_batch_when_a_read_ends(void **state)
{
    make(10, 0, 0, 0);
    assert_true(poller.started);
    /* Room for the 5 batches the mapping starts with (AWS's initial SQS concurrency). */
    assert_int_equal(fake_room(), 50);
    deliver(3);
    assert_int_equal(n_invs, 0);
    assert_int_equal(fake_room(), 47);
    fake_read_done();
    assert_int_equal(n_invs, 1);
    assert_int_equal(weir_mapping_stats(m)->batches, 1);
}

static void full_batch_closes_before_the_read_ends(void **state)
{
    make(2, 0, 0, 0);
    deliver(5);
    assert_int_equal(n_invs, 2);
    fake_read_done();
    assert_int_equal(n_invs, 3);
}

static void window_closes_the_batch_a_window_after_its_first_record(void **state)
{
    make(100, 1, 0, 0);
    deliver(3);
    fake_read_done();
    assert_int_equal(n_invs, 0);
    run_loop_ms(600);
    assert_int_equal(n_invs, 0);
    run_loop_ms(600);
    assert_int_equal(n_invs, 1);
}

static void reading_pauses_at_the_concurrency_cap_and_resumes_when_a_batch_returns(void **state)
{
    make(1, 0, 2, 0);
    deliver(1);
    deliver(1);
    assert_int_equal(n_invs, 2);
    assert_int_equal(fake_room(), 0);
    int resumes = poller.resumes;
    complete(0, WEIR_TRANSPORT_OK, 200, "{}");
    assert_true(poller.resumes > resumes);
    assert_int_equal(fake_room(), 1);
}

static void reading_pauses_while_the_function_has_no_free_slot(void **state)
{
    make(1, 0, 10, 1);
    deliver(1);
    assert_int_equal(n_invs, 1);
    assert_int_equal(fake_room(), 0);
    complete(0, WEIR_TRANSPORT_OK, 200, "{}");
    assert_int_equal(fake_room(), 1);
}

static void verdicts_of_a_partial_response_reach_the_poller(void **state)
{
    make(3, 0, 0, 0);
    deliver(3);
    assert_int_equal(n_invs, 1);
    complete(0, WEIR_TRANSPORT_OK, 200, "{\"batchItemFailures\":[{\"itemIdentifier\":\"id-2\"}]}");
    assert_int_equal(poller.settles, 1);
    assert_int_equal(poller.settled[WEIR_VERDICT_DONE], 2);
    assert_int_equal(poller.settled[WEIR_VERDICT_RETRY], 1);
    assert_int_equal(weir_mapping_stats(m)->records_retry, 1);
}

static void stop_gives_back_unsent_records_and_waits_for_batches_in_flight(void **state)
{
    make(2, 5, 0, 0);
    deliver(2); /* full: in flight */
    deliver(1); /* pending in the window */
    assert_int_equal(n_invs, 1);
    weir_mapping_stop(m, on_stopped, NULL);
    assert_int_equal(poller.settled[WEIR_VERDICT_RELEASE], 1);
    assert_int_equal(fake_room(), 0);
    assert_false(poller.stop_called);
    complete(0, WEIR_TRANSPORT_OK, 200, "{}");
    assert_int_equal(poller.settled[WEIR_VERDICT_DONE], 2);
    assert_true(poller.stop_called);
    assert_int_equal(stopped, 0);
    poller.stop_done(poller.stop_arg);
    run_loop_ms(10);
    assert_int_equal(stopped, 1);
}

static void records_arriving_while_stopping_are_given_back(void **state)
{
    make(10, 0, 0, 0);
    weir_mapping_stop(m, on_stopped, NULL);
    deliver(2);
    fake_read_done();
    assert_int_equal(n_invs, 0);
    assert_int_equal(poller.settled[WEIR_VERDICT_RELEASE], 2);
}

static void disabled_mapping_reads_nothing(void **state)
{
    make_enabled(10, 0, 0, 0, false);
    assert_false(poller.started);
    assert_int_equal(fake_room(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(zero_window_closes_the_batch_when_a_read_ends, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(full_batch_closes_before_the_read_ends, setup, teardown),
        cmocka_unit_test_setup_teardown(window_closes_the_batch_a_window_after_its_first_record,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            reading_pauses_at_the_concurrency_cap_and_resumes_when_a_batch_returns, setup,
            teardown),
        cmocka_unit_test_setup_teardown(reading_pauses_while_the_function_has_no_free_slot, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(verdicts_of_a_partial_response_reach_the_poller, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            stop_gives_back_unsent_records_and_waits_for_batches_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(records_arriving_while_stopping_are_given_back, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(disabled_mapping_reads_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
