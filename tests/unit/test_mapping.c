/* Mapping unit tests: a fake source and a fake target around the real batcher and dispatcher, on
 * a stepped clock, to check batching triggers, backpressure (concurrency, function slots, the
 * byte budget), lanes (order, one batch of an ordered lane in flight, a failure blocking its lane,
 * per-lane pause), records no event can hold, verdict flow and the stop sequence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "core/clock.h"
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
    int mib = mcfg.maximum_buffered_mib; /* a test may set it before make() */
    memset(&mcfg, 0, sizeof(mcfg));
    mcfg.maximum_buffered_mib = mib ? mib : 64;
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
    m = weir_mapping_new_with(&mcfg, &fake_source, "us-east-1", fn, base, NULL, NULL);
    assert_non_null(m);
    assert_int_equal(weir_mapping_start(m), WEIR_OK);
}

static void make(int batch_size, int window_s, int max_concurrency, int single_flight)
{
    make_enabled(batch_size, window_s, max_concurrency, single_flight, true);
}

static int64_t lease_ms = 5000;

static struct weir_record *record(uint32_t lane, size_t body_len)
{
    struct weir_record *r = weir_record_new();
    char id[32];
    snprintf(id, sizeof(id), "id-%d", ++next_id);
    r->id = weir_strdup(id);
    r->handle = weir_strdup(id);
    r->data = weir_malloc(body_len + 1);
    memset(r->data, 'b', body_len);
    r->data[body_len] = '\0';
    r->data_len = body_len;
    r->receive_count = 1;
    r->lane = lane;
    /* A lease that leaves no room to read ahead (two function timeouts): tests of read-ahead
     * give their records a longer one. */
    r->deadline_ms = weir_clock_mono_ms() + lease_ms;
    return r;
}

static void deliver_lane(int n, uint32_t lane)
{
    for (int i = 0; i < n; i++)
        fake_deliver(record(lane, 4));
}

static void deliver(int n)
{
    deliver_lane(n, 0);
}

/* Steps weir's clock and runs what became due (timers fire from the loop). */
static void step_ms(int ms)
{
    weir_clock_step(ms);
    event_base_loop(base, EVLOOP_NONBLOCK);
}

/* The messageIds of invocation i's event, in order, as "id-1,id-2": which records went out in
 * which batch. */
static const char *ids_of(size_t i)
{
    static char out[512];
    size_t o = 0;
    out[0] = '\0';
    const char *p = invs[i].payload;
    assert_true(invs[i].active);
    while ((p = strstr(p, "\"messageId\":\""))) {
        p += 13;
        const char *end = strchr(p, '"');
        o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%.*s", o ? "," : "", (int)(end - p), p);
        p = end;
    }
    return out;
}

static int setup(void **state)
{
    fake_source_reset();
    lease_ms = 5000;
    mcfg.maximum_buffered_mib = 0;
    weir_clock_fake(1000000, 1700000000000);
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
    weir_clock_real();
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
    step_ms(999);
    assert_int_equal(n_invs, 0);
    step_ms(1);
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
    event_base_loop(base, EVLOOP_NONBLOCK);
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

/* ---- lanes ---- */

/* With no window, a busy ordered lane's batch keeps filling across reads, and goes as soon as
 * the lane is free. */
static void a_busy_lanes_batch_fills_across_reads_until_the_lane_is_free(void **state)
{
    fake_ordered_lanes = true;
    make(10, 0, 0, 0);
    deliver_lane(2, 7); /* id-1 id-2: sent at the read's end */
    fake_read_done();
    assert_int_equal(n_invs, 1);
    for (int i = 0; i < 3; i++) {
        deliver_lane(1, 7); /* id-3, id-4, id-5: one read each */
        fake_read_done();
    }
    assert_int_equal(n_invs, 1);
    complete(0, WEIR_TRANSPORT_OK, 200, "{}");
    assert_int_equal(n_invs, 2);
    assert_string_equal(ids_of(1), "id-3,id-4,id-5");
    complete(1, WEIR_TRANSPORT_OK, 200, "{}");
    assert_int_equal(poller.settled[WEIR_VERDICT_DONE], 5);
}

static void ordered_lanes_keep_order_and_send_one_batch_of_a_lane_at_a_time(void **state)
{
    fake_ordered_lanes = true;
    make(2, 0, 0, 0);
    deliver_lane(3, 7); /* id-1 id-2 | id-3 */
    deliver_lane(1, 9); /* id-4 */
    fake_read_done();
    /* Lane 7's first batch and lane 9's go out together; lane 7's second waits for its first. */
    assert_int_equal(n_invs, 2);
    assert_string_equal(ids_of(0), "id-1,id-2");
    assert_string_equal(ids_of(1), "id-4");
    /* id-5: lane 7 is busy, so its open batch stayed open at the read's end and takes it. */
    deliver_lane(1, 7);
    fake_read_done();
    assert_int_equal(n_invs, 2);
    complete(1, WEIR_TRANSPORT_OK, 200, "{}"); /* lane 9 done: lane 7 still waits */
    assert_int_equal(n_invs, 2);
    complete(0, WEIR_TRANSPORT_OK, 200, "{}");
    assert_int_equal(n_invs, 3);
    assert_string_equal(ids_of(2), "id-3,id-5");
    complete(2, WEIR_TRANSPORT_OK, 200, "{}");
    assert_int_equal(n_invs, 3);
    assert_int_equal(poller.settled[WEIR_VERDICT_DONE], 5);
    assert_string_equal(poller.seen[0], "id-4");
    assert_string_equal(poller.seen[1], "id-1");
    assert_string_equal(poller.seen[3], "id-3");
    assert_string_equal(poller.seen[4], "id-5");
}

static void a_lanes_batch_waiting_for_a_slot_holds_back_the_lanes_next_one(void **state)
{
    lease_ms = 60000;
    fake_ordered_lanes = true;
    make(2, 0, 2, 0);
    deliver_lane(2, 1); /* id-1 id-2 */
    deliver_lane(2, 2); /* id-3 id-4: both slots busy */
    assert_int_equal(n_invs, 2);
    deliver_lane(4, 7); /* id-5 id-6 | id-7 id-8: the first waits for a slot */
    fake_read_done();
    assert_int_equal(n_invs, 2);
    complete(0, WEIR_TRANSPORT_OK, 200, "{}");
    /* One slot free: lane 7's first batch goes; its second waits for it, though a slot could
     * be found for it too. */
    assert_int_equal(n_invs, 3);
    assert_string_equal(ids_of(2), "id-5,id-6");
    complete(1, WEIR_TRANSPORT_OK, 200, "{}");
    assert_int_equal(n_invs, 3);
    complete(2, WEIR_TRANSPORT_OK, 200, "{}");
    assert_int_equal(n_invs, 4);
    assert_string_equal(ids_of(3), "id-7,id-8");
    complete(3, WEIR_TRANSPORT_OK, 200, "{}");
}

static void a_batch_refused_at_submit_comes_back_from_the_loop(void **state)
{
    lease_ms = 100; /* far less than a function timeout: the dispatcher gives it back unsent */
    make(1, 0, 0, 0);
    deliver(1);
    /* Not from inside the delivery (the mapping was still working with the record). */
    assert_int_equal(poller.settles, 0);
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(n_invs, 0);
    assert_int_equal(poller.settled[WEIR_VERDICT_RELEASE], 1);
    assert_int_equal(weir_mapping_stats(m)->bytes, 0);
    assert_int_equal(weir_mapping_stats(m)->inflight, 0);
}

static void unordered_lanes_send_batches_of_one_lane_together(void **state)
{
    make(2, 0, 0, 0);
    deliver_lane(6, 0);
    fake_read_done();
    assert_int_equal(n_invs, 3);
}

static void a_failure_blocks_its_lane_and_gives_back_what_waits_behind_it(void **state)
{
    lease_ms = 60000; /* the 5 s window must not outlast the leases */
    fake_ordered_lanes = true;
    make(2, 5, 0, 0);
    deliver_lane(2, 7); /* id-1 id-2: full, in flight */
    deliver_lane(2, 7); /* id-3 id-4: full, waits behind it */
    deliver_lane(1, 7); /* id-5: open, in the window */
    deliver_lane(1, 8); /* id-6: another lane, open */
    assert_int_equal(n_invs, 1);
    complete(0, WEIR_TRANSPORT_OK, 200, "{\"errorType\":\"E\",\"errorMessage\":\"x\"}");
    /* id-1 and id-2 come back later (RETRY); everything after them in lane 7 goes back to the
     * source now, unsent, so the retries come first. Lane 8 is untouched. */
    assert_int_equal(poller.settled[WEIR_VERDICT_RETRY], 2);
    assert_int_equal(poller.settled[WEIR_VERDICT_RELEASE], 3);
    assert_int_equal(n_invs, 1);
    step_ms(5000);
    assert_int_equal(n_invs, 2);
    assert_string_equal(ids_of(1), "id-6");
    complete(1, WEIR_TRANSPORT_OK, 200, "{}");
    assert_int_equal(weir_mapping_stats(m)->bytes, 0);
}

static void what_a_failure_holds_back_goes_back_in_one_run_in_lane_order(void **state)
{
    fake_ordered_lanes = true;
    make(2, 5, 0, 0);
    deliver_lane(2, 7); /* id-1 id-2 in flight */
    deliver_lane(2, 7); /* id-3 id-4 waiting */
    deliver_lane(2, 7); /* id-5 id-6 waiting (a lane holds at most 2 batches: paused after) */
    deliver_lane(1, 7); /* id-7 open */
    size_t settles = poller.settles;
    complete(0, WEIR_TRANSPORT_OK, 200, "{\"errorType\":\"E\",\"errorMessage\":\"x\"}");
    /* The failed batch settled (retry), then one settle giving back everything after it, in
     * order: a source that pushes them back to the head of the group keeps that order. */
    assert_int_equal(poller.settles, settles + 2);
    assert_int_equal(poller.last_settle_n, 5);
    assert_int_equal(poller.n_released, 5);
    static const char *const want[] = {"id-3", "id-4", "id-5", "id-6", "id-7"};
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(poller.released[i], want[i]);
}

static void a_batch_that_comes_back_unsent_leads_its_lanes_run(void **state)
{
    fake_ordered_lanes = true;
    make(2, 5, 0, 0);
    deliver_lane(2, 7); /* id-1 id-2: in flight */
    deliver_lane(1, 7); /* id-3: open */
    /* Shutdown past its bound: the invocation is aborted (retry), the rest given back. */
    weir_mapping_stop(m, on_stopped, NULL);
    assert_int_equal(poller.n_released, 1);
    assert_string_equal(poller.released[0], "id-3");
    weir_disp_abort(fn);
    assert_int_equal(poller.settled[WEIR_VERDICT_RETRY], 2);
}

static void a_partial_failure_blocks_its_lane_too(void **state)
{
    fake_ordered_lanes = true;
    make(2, 0, 0, 0);
    deliver_lane(4, 7);
    fake_read_done();
    assert_int_equal(n_invs, 1);
    complete(0, WEIR_TRANSPORT_OK, 200, "{\"batchItemFailures\":[{\"itemIdentifier\":\"id-2\"}]}");
    /* As AWS: the list is honoured exactly (id-1 done, id-2 retried), and the lane's later
     * records wait for the retry. */
    assert_int_equal(poller.settled[WEIR_VERDICT_DONE], 1);
    assert_int_equal(poller.settled[WEIR_VERDICT_RETRY], 1);
    assert_int_equal(poller.settled[WEIR_VERDICT_RELEASE], 2);
    assert_int_equal(n_invs, 1);
}

static void a_full_ordered_lane_is_paused_and_resumed_alone(void **state)
{
    fake_ordered_lanes = true;
    make(2, 5, 0, 0);
    assert_int_equal(fake_room_lane(7), 4); /* one batch in flight, one filling */
    deliver_lane(2, 7);                     /* in flight */
    assert_int_equal(poller.pauses, 0);
    deliver_lane(2, 7); /* the next batch, full, waiting */
    assert_int_equal(fake_room_lane(7), 0);
    assert_int_equal(poller.pauses, 1);
    assert_int_equal(poller.last_paused, 7);
    /* Other lanes read on. */
    assert_int_equal(fake_room_lane(8), 4);
    complete(0, WEIR_TRANSPORT_OK, 200, "{}");
    assert_int_equal(fake_room_lane(7), 2);
    assert_int_equal(poller.last_resumed, 7);
}

static void lanes_beyond_the_concurrency_wait_their_turn(void **state)
{
    fake_ordered_lanes = true;
    make(10, 0, 2, 0);
    for (uint32_t lane = 1; lane <= 5; lane++)
        deliver_lane(1, lane);
    fake_read_done();
    /* Five one-record batches, two at a time. */
    assert_int_equal(n_invs, 2);
    assert_int_equal(fake_room(), 0);
    complete(0, WEIR_TRANSPORT_OK, 200, "{}");
    assert_int_equal(n_invs, 3);
    complete(1, WEIR_TRANSPORT_OK, 200, "{}");
    complete(2, WEIR_TRANSPORT_OK, 200, "{}");
    assert_int_equal(n_invs, 5);
    assert_string_equal(ids_of(4), "id-5");
}

static void reading_ahead_one_batch_per_slot_when_leases_leave_room(void **state)
{
    lease_ms = 60000; /* room for a wait and a function timeout (3 s) twice over */
    make(1, 0, 2, 0);
    deliver(2);
    fake_read_done();
    assert_int_equal(n_invs, 2);
    /* Both slots busy: still room to read one batch ahead for each. */
    assert_int_equal(fake_room(), 2);
    deliver(2);
    fake_read_done();
    assert_int_equal(n_invs, 2);
    assert_int_equal(fake_room(), 0);
    /* A slot frees: the next batch is already here, no read needed first. */
    complete(0, WEIR_TRANSPORT_OK, 200, "{}");
    assert_int_equal(n_invs, 3);
    assert_string_equal(ids_of(2), "id-3");
    assert_int_equal(fake_room(), 1);
}

static void no_reading_ahead_when_a_wait_could_outlast_the_lease(void **state)
{
    lease_ms = 6000; /* under two function timeouts (3 s) and a second */
    make(1, 0, 2, 0);
    deliver(2);
    fake_read_done();
    assert_int_equal(n_invs, 2);
    assert_int_equal(fake_room(), 0);
}

/* ---- the byte budget, and records no event can hold ---- */

static void reading_pauses_at_the_byte_budget(void **state)
{
    lease_ms = 60000; /* the 5 s window must not outlast the leases */
    mcfg.maximum_buffered_mib = 1;
    make(10, 5, 0, 0);
    /* Nothing held: a first read always gets room, however large its records. */
    assert_true(fake_room() > 0);
    fake_deliver(record(0, 600 * 1024));
    fake_deliver(record(0, 600 * 1024));
    /* 1.2 MB held (encoded and raw), over 1 MiB: no room whatever the concurrency says. */
    assert_true(weir_mapping_stats(m)->bytes >= 1200 * 1024);
    assert_int_equal(fake_room(), 0);
    step_ms(5000);
    assert_int_equal(n_invs, 1);
    assert_int_equal(fake_room(), 0); /* in flight still counts */
    complete(0, WEIR_TRANSPORT_OK, 200, "{}");
    assert_int_equal(weir_mapping_stats(m)->bytes, 0);
    assert_true(fake_room() > 0);
    assert_true(weir_mapping_stats(m)->peak_bytes >= 1200 * 1024);
}

static void room_shrinks_with_the_size_of_records_seen(void **state)
{
    mcfg.maximum_buffered_mib = 1;
    make(100, 5, 1000, 0);
    for (int i = 0; i < 20; i++)
        fake_deliver(record(0, 20 * 1024));
    /* ~40 KB a record held of a 1 MiB budget: room for ~25 more, not the 5 batches x 100. */
    size_t room = fake_room();
    assert_true(room > 0 && room < 40);
}

static void a_record_no_event_can_hold_is_rejected_and_never_invoked(void **state)
{
    make(10, 0, 0, 0);
    deliver(1);
    fake_deliver(record(0, WEIR_INVOKE_PAYLOAD_MAX));
    deliver(1);
    fake_read_done();
    assert_int_equal(n_invs, 1);
    assert_string_equal(ids_of(0), "id-1,id-3");
    assert_int_equal(poller.settled[WEIR_VERDICT_REJECT], 1);
    assert_int_equal(poller.n_reasons, 1);
    assert_non_null(strstr(poller.reasons[0], "invoke payload limit"));
    assert_int_equal(weir_mapping_stats(m)->records_rejected, 1);
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
        cmocka_unit_test_setup_teardown(
            ordered_lanes_keep_order_and_send_one_batch_of_a_lane_at_a_time, setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_busy_lanes_batch_fills_across_reads_until_the_lane_is_free, setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_lanes_batch_waiting_for_a_slot_holds_back_the_lanes_next_one, setup, teardown),
        cmocka_unit_test_setup_teardown(a_batch_refused_at_submit_comes_back_from_the_loop, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(unordered_lanes_send_batches_of_one_lane_together, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            a_failure_blocks_its_lane_and_gives_back_what_waits_behind_it, setup, teardown),
        cmocka_unit_test_setup_teardown(
            what_a_failure_holds_back_goes_back_in_one_run_in_lane_order, setup, teardown),
        cmocka_unit_test_setup_teardown(a_batch_that_comes_back_unsent_leads_its_lanes_run, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_partial_failure_blocks_its_lane_too, setup, teardown),
        cmocka_unit_test_setup_teardown(a_full_ordered_lane_is_paused_and_resumed_alone, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(lanes_beyond_the_concurrency_wait_their_turn, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(reading_ahead_one_batch_per_slot_when_leases_leave_room,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(no_reading_ahead_when_a_wait_could_outlast_the_lease, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(reading_pauses_at_the_byte_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(room_shrinks_with_the_size_of_records_seen, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_record_no_event_can_hold_is_rejected_and_never_invoked,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
