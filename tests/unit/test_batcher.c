/* The batcher: when a batch closes (size, window from its first record, payload limit, flush),
 * one open batch per lane, a record no event can hold refused, that every closed event is valid
 * JSON holding exactly its records, that nothing leaks when a batch is dropped open, and that a
 * freed batch hands each record with a home back to it. Time is the stepped clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/clock.h"
#include "core/mem.h"
#include "mapping/batcher.h"
#include "model/event.h"
#include "model/record.h"

static const struct weir_event_ctx ctx = {
    .source_arn = "arn:aws:sqs:eu-west-1:000000000000:orders",
    .region = "eu-west-1",
};

#define MAX_CLOSED 64

/* What the flush callback saw. */
struct sink {
    struct weir_batch *closed[MAX_CLOSED];
    size_t n;
};

static void on_flush(void *arg, struct weir_batch *b)
{
    struct sink *s = arg;
    assert_true(s->n < MAX_CLOSED);
    s->closed[s->n++] = b;
}

static void sink_free(struct sink *s)
{
    for (size_t i = 0; i < s->n; i++)
        weir_batch_free(s->closed[i]);
    s->n = 0;
}

static int next_id;

static struct weir_record *rec_sized(size_t body_len, uint32_t lane)
{
    struct weir_record *r = weir_record_new();
    char id[32];
    snprintf(id, sizeof(id), "msg-%d", next_id++);
    r->id = weir_strdup(id);
    r->handle = weir_strdup("h");
    r->data = weir_malloc(body_len + 1);
    memset(r->data, 'x', body_len);
    r->data[body_len] = '\0';
    r->data_len = body_len;
    r->receive_count = 1;
    r->lane = lane;
    return r;
}

static struct weir_record *rec(void)
{
    return rec_sized(16, 0);
}

static void init(struct weir_batcher *bt, struct sink *s, size_t batch_size, int64_t window_ms,
                 size_t max_bytes)
{
    const struct weir_batcher_cfg cfg = {
        .batch_size = batch_size,
        .window_ms = window_ms,
        .max_bytes = max_bytes,
        .encoder = weir_format_sqs.encoder,
        .ctx = &ctx,
    };
    memset(s, 0, sizeof(*s));
    weir_batcher_init(bt, &cfg, on_flush, s);
}

/* The closed batch's event parses as an SQS event whose messageIds are exactly the batch's
 * records, in order. */
static void assert_event_matches(const struct weir_batch *b)
{
    json_error_t jerr;
    json_t *ev = json_loadb(b->event.data, b->event.len, 0, &jerr);
    if (!ev)
        fail_msg("closed event is not JSON: %s at %d", jerr.text, jerr.position);
    json_t *recs = json_object_get(ev, "Records");
    assert_true(json_is_array(recs));
    assert_int_equal(json_array_size(recs), b->n);
    for (size_t i = 0; i < b->n; i++) {
        const char *id = json_string_value(json_object_get(json_array_get(recs, i), "messageId"));
        assert_non_null(id);
        assert_string_equal(id, b->records[i]->id);
    }
    json_decref(ev);
}

static void batch_closes_when_it_holds_batch_size_records(void **state)
{
    struct weir_batcher bt;
    struct sink s;
    weir_clock_fake(1000, 1700000000000);
    init(&bt, &s, 3, 0, WEIR_INVOKE_PAYLOAD_MAX);
    weir_batcher_add(&bt, rec());
    weir_batcher_add(&bt, rec());
    assert_int_equal(s.n, 0);
    assert_int_equal(weir_batcher_pending(&bt), 2);
    weir_batcher_add(&bt, rec());
    assert_int_equal(s.n, 1);
    assert_int_equal(s.closed[0]->n, 3);
    assert_int_equal(weir_batcher_pending(&bt), 0);
    assert_event_matches(s.closed[0]);
    weir_batcher_add(&bt, rec());
    assert_int_equal(s.n, 1);
    assert_int_equal(weir_batcher_pending(&bt), 1);
    weir_batcher_deinit(&bt);
    sink_free(&s);
}

static void batch_closes_when_window_ends_from_first_record(void **state)
{
    struct weir_batcher bt;
    struct sink s;
    weir_clock_fake(5000, 1700000000000);
    init(&bt, &s, 100, 2000, WEIR_INVOKE_PAYLOAD_MAX);
    assert_int_equal(weir_batcher_due_ms(&bt), -1);

    weir_clock_step(300); /* time before the first record does not count */
    weir_batcher_add(&bt, rec());
    assert_int_equal(s.n, 0);
    assert_int_equal(weir_list_entry(weir_list_first(&bt.open), struct weir_batch, link)->opened_ms,
                     5300);
    assert_int_equal(weir_batcher_due_ms(&bt), 7300);

    weir_clock_step(1500); /* later records do not move the window */
    weir_batcher_add(&bt, rec());
    assert_int_equal(weir_batcher_due_ms(&bt), 7300);

    weir_clock_step(499); /* 7299: one millisecond early */
    weir_batcher_tick(&bt);
    assert_int_equal(s.n, 0);
    assert_int_equal(weir_batcher_pending(&bt), 2);

    weir_clock_step(1); /* 7300: due */
    weir_batcher_tick(&bt);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.closed[0]->n, 2);
    assert_int_equal(s.closed[0]->opened_ms, 5300);
    assert_event_matches(s.closed[0]);
    assert_int_equal(weir_batcher_due_ms(&bt), -1);

    /* The next batch's window starts at its own first record. */
    weir_clock_step(10000);
    weir_batcher_add(&bt, rec());
    assert_int_equal(weir_batcher_due_ms(&bt), 17300 + 2000);
    weir_batcher_tick(&bt);
    assert_int_equal(s.n, 1);
    weir_batcher_deinit(&bt);
    sink_free(&s);
}

static void zero_window_waits_for_flush(void **state)
{
    struct weir_batcher bt;
    struct sink s;
    weir_clock_fake(0, 0);
    init(&bt, &s, 10, 0, WEIR_INVOKE_PAYLOAD_MAX);
    weir_batcher_add(&bt, rec());
    assert_int_equal(weir_batcher_due_ms(&bt), -1);
    weir_clock_step(1000000);
    weir_batcher_tick(&bt);
    assert_int_equal(s.n, 0);
    weir_batcher_flush(&bt);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.closed[0]->n, 1);
    assert_event_matches(s.closed[0]);
    weir_batcher_deinit(&bt);
    sink_free(&s);
}

static void flush_with_nothing_open_does_nothing(void **state)
{
    struct weir_batcher bt;
    struct sink s;
    weir_clock_fake(0, 0);
    init(&bt, &s, 10, 1000, WEIR_INVOKE_PAYLOAD_MAX);
    weir_batcher_flush(&bt);
    weir_batcher_tick(&bt);
    assert_int_equal(s.n, 0);
    assert_null(weir_batcher_steal(&bt));
    weir_batcher_add(&bt, rec());
    weir_batcher_flush(&bt);
    weir_batcher_flush(&bt);
    assert_int_equal(s.n, 1);
    weir_batcher_deinit(&bt);
    sink_free(&s);
}

static void records_past_6mb_split_into_two_batches_under_the_limit(void **state)
{
    struct weir_batcher bt;
    struct sink s;
    weir_clock_fake(0, 0);
    init(&bt, &s, 10000, 0, WEIR_INVOKE_PAYLOAD_MAX);
    /* Five 1.5 MB bodies: four cannot share one 6 MB event with their metadata. */
    for (int i = 0; i < 5; i++)
        weir_batcher_add(&bt, rec_sized(1536 * 1024, 0));
    weir_batcher_flush(&bt);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.closed[0]->n + s.closed[1]->n, 5);
    assert_int_equal(s.closed[0]->n, 3);
    for (size_t i = 0; i < s.n; i++) {
        assert_true(s.closed[i]->event.len <= WEIR_INVOKE_PAYLOAD_MAX);
        assert_event_matches(s.closed[i]);
    }
    weir_batcher_deinit(&bt);
    sink_free(&s);
}

/* Closes exactly at the limit: a record that makes the event exactly max_bytes fits. */
static void record_that_fills_the_event_exactly_still_fits(void **state)
{
    struct weir_batcher bt;
    struct sink s;
    weir_clock_fake(0, 0);
    /* Measure one event of two records, then use that size as the limit. */
    init(&bt, &s, 10, 0, WEIR_INVOKE_PAYLOAD_MAX);
    next_id = 100;
    weir_batcher_add(&bt, rec());
    weir_batcher_add(&bt, rec());
    weir_batcher_flush(&bt);
    size_t exact = s.closed[0]->event.len;
    weir_batcher_deinit(&bt);
    sink_free(&s);

    init(&bt, &s, 10, 0, exact);
    next_id = 100;
    weir_batcher_add(&bt, rec());
    weir_batcher_add(&bt, rec());
    assert_int_equal(s.n, 0);
    weir_batcher_add(&bt, rec()); /* one byte would be too many */
    assert_int_equal(s.n, 1);
    assert_int_equal(s.closed[0]->n, 2);
    assert_int_equal(s.closed[0]->event.len, exact);
    assert_event_matches(s.closed[0]);
    weir_batcher_deinit(&bt);
    sink_free(&s);
}

static void a_record_no_event_can_hold_is_refused_and_nothing_closes(void **state)
{
    struct weir_batcher bt;
    struct sink s;
    weir_clock_fake(0, 0);
    init(&bt, &s, 100, 0, 4096);
    weir_batcher_add(&bt, rec());
    struct weir_record *big = rec_sized(8000, 0);
    assert_false(weir_batcher_add(&bt, big));
    /* Not taken, sized for the caller's reason, and the open batch is untouched. */
    assert_true(big->event_bytes > 4096);
    assert_int_equal(s.n, 0);
    assert_int_equal(weir_batcher_pending(&bt), 1);
    weir_record_free(big);
    /* With nothing open it is refused the same way. */
    weir_batcher_flush(&bt);
    big = rec_sized(8000, 0);
    assert_false(weir_batcher_add(&bt, big));
    weir_record_free(big);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.closed[0]->n, 1);
    assert_event_matches(s.closed[0]);
    weir_batcher_deinit(&bt);
    sink_free(&s);
}

static void each_lane_fills_its_own_batch(void **state)
{
    struct weir_batcher bt;
    struct sink s;
    weir_clock_fake(0, 0);
    init(&bt, &s, 3, 1000, WEIR_INVOKE_PAYLOAD_MAX);
    next_id = 0;
    weir_batcher_add(&bt, rec_sized(10, 7));
    weir_batcher_add(&bt, rec_sized(10, 8));
    weir_batcher_add(&bt, rec_sized(10, 7));
    /* Another lane's record does not close lane 7's batch. */
    assert_int_equal(s.n, 0);
    assert_int_equal(weir_batcher_pending(&bt), 3);
    assert_int_equal(weir_batcher_pending_lane(&bt, 7), 2);
    assert_int_equal(weir_batcher_pending_lane(&bt, 8), 1);
    assert_int_equal(weir_batcher_pending_lane(&bt, 9), 0);
    weir_batcher_add(&bt, rec_sized(10, 7)); /* lane 7 full */
    assert_int_equal(s.n, 1);
    assert_int_equal(s.closed[0]->lane, 7);
    assert_int_equal(s.closed[0]->n, 3);
    assert_event_matches(s.closed[0]);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(s.closed[0]->records[i]->lane, 7);
    /* Order within the lane is the order added. */
    assert_string_equal(s.closed[0]->records[0]->id, "msg-0");
    assert_string_equal(s.closed[0]->records[1]->id, "msg-2");
    assert_string_equal(s.closed[0]->records[2]->id, "msg-3");
    assert_int_equal(weir_batcher_pending_lane(&bt, 8), 1);
    weir_batcher_deinit(&bt);
    sink_free(&s);
}

static void windows_end_per_lane_from_each_first_record(void **state)
{
    struct weir_batcher bt;
    struct sink s;
    weir_clock_fake(0, 0);
    init(&bt, &s, 100, 1000, WEIR_INVOKE_PAYLOAD_MAX);
    weir_batcher_add(&bt, rec_sized(10, 7));
    weir_clock_step(400);
    weir_batcher_add(&bt, rec_sized(10, 8));
    weir_batcher_add(&bt, rec_sized(10, 7));
    /* The oldest open batch decides when the batcher is due next. */
    assert_int_equal(weir_batcher_due_ms(&bt), 1000);
    weir_clock_step(600);
    weir_batcher_tick(&bt);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.closed[0]->lane, 7);
    assert_int_equal(s.closed[0]->n, 2);
    assert_int_equal(weir_batcher_due_ms(&bt), 1400);
    weir_clock_step(399);
    weir_batcher_tick(&bt);
    assert_int_equal(s.n, 1);
    weir_clock_step(1);
    weir_batcher_tick(&bt);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.closed[1]->lane, 8);
    assert_int_equal(weir_batcher_due_ms(&bt), -1);
    /* A flush closes every lane's batch, oldest first. */
    weir_batcher_add(&bt, rec_sized(10, 9));
    weir_batcher_add(&bt, rec_sized(10, 3));
    weir_batcher_flush(&bt);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.closed[2]->lane, 9);
    assert_int_equal(s.closed[3]->lane, 3);
    weir_batcher_deinit(&bt);
    sink_free(&s);
}

static void steal_lane_takes_only_that_lanes_batch(void **state)
{
    struct weir_batcher bt;
    struct sink s;
    weir_clock_fake(0, 0);
    init(&bt, &s, 10, 1000, WEIR_INVOKE_PAYLOAD_MAX);
    weir_batcher_add(&bt, rec_sized(10, 1));
    weir_batcher_add(&bt, rec_sized(10, 2));
    weir_batcher_add(&bt, rec_sized(10, 2));
    struct weir_batch *b = weir_batcher_steal_lane(&bt, 2);
    assert_non_null(b);
    assert_int_equal(b->n, 2);
    assert_null(weir_batcher_steal_lane(&bt, 2));
    assert_int_equal(weir_batcher_pending(&bt), 1);
    assert_int_equal(weir_batcher_pending_lane(&bt, 1), 1);
    /* Lane 2 starts afresh. */
    weir_batcher_add(&bt, rec_sized(10, 2));
    assert_int_equal(weir_batcher_pending_lane(&bt, 2), 1);
    weir_batch_free(b);
    weir_batcher_deinit(&bt);
    sink_free(&s);
}

static void every_closed_event_holds_exactly_the_records_added(void **state)
{
    struct weir_batcher bt;
    struct sink s;
    weir_clock_fake(0, 0);
    init(&bt, &s, 7, 50, 20000);
    /* A mix of sizes, lanes, windows and flushes; count every record through. */
    size_t added = 0;
    for (int i = 0; i < 120; i++) {
        uint32_t lane = (uint32_t)((i / 11) % 3);
        weir_batcher_add(&bt, rec_sized((size_t)(i * 97) % 3000, lane));
        added++;
        weir_clock_step(3);
        weir_batcher_tick(&bt);
        if (i % 29 == 0)
            weir_batcher_flush(&bt);
        if (s.n > MAX_CLOSED - 8) {
            for (size_t j = 0; j < s.n; j++) {
                assert_true(s.closed[j]->n >= 1 && s.closed[j]->n <= 7);
                assert_true(s.closed[j]->event.len <= 20000);
                assert_event_matches(s.closed[j]);
                for (size_t k = 0; k < s.closed[j]->n; k++)
                    assert_int_equal(s.closed[j]->records[k]->lane, s.closed[j]->lane);
                added -= s.closed[j]->n;
            }
            sink_free(&s);
        }
    }
    weir_batcher_flush(&bt);
    for (size_t j = 0; j < s.n; j++) {
        assert_event_matches(s.closed[j]);
        added -= s.closed[j]->n;
    }
    assert_int_equal(added, 0);
    weir_batcher_deinit(&bt);
    sink_free(&s);
}

static void steal_takes_the_open_batch_without_closing_it(void **state)
{
    struct weir_batcher bt;
    struct sink s;
    weir_clock_fake(0, 0);
    init(&bt, &s, 10, 1000, WEIR_INVOKE_PAYLOAD_MAX);
    weir_batcher_add(&bt, rec());
    weir_batcher_add(&bt, rec());
    struct weir_batch *b = weir_batcher_steal(&bt);
    assert_non_null(b);
    assert_int_equal(b->n, 2);
    assert_int_equal(s.n, 0);
    assert_int_equal(weir_batcher_pending(&bt), 0);
    assert_int_equal(weir_batcher_due_ms(&bt), -1);
    /* Not closed: the event has no closing bytes yet. */
    assert_true(b->event.len >= 2);
    assert_false(memcmp(b->event.data + b->event.len - 2, "]}", 2) == 0);
    weir_batch_free(b);
    weir_batcher_deinit(&bt);
}

static void deinit_frees_an_open_batch(void **state)
{
    /* Run under valgrind (or ASan) to see the point: the open batch and its records go. */
    struct weir_batcher bt;
    struct sink s;
    weir_clock_fake(0, 0);
    init(&bt, &s, 10, 1000, WEIR_INVOKE_PAYLOAD_MAX);
    weir_batcher_add(&bt, rec_sized(300000, 0)); /* also drops the large scratch */
    weir_batcher_add(&bt, rec());
    assert_int_equal(weir_batcher_pending(&bt), 2);
    weir_batcher_deinit(&bt);
    assert_true(weir_list_empty(&bt.open));
    assert_int_equal(s.n, 0);
}

/* A home that keeps what it is given back. */
struct keeping_home {
    struct weir_record_home home;
    struct weir_record *kept[4];
    size_t n;
};

static void keep(struct weir_record_home *wh, struct weir_record *r)
{
    struct keeping_home *h = weir_list_entry(wh, struct keeping_home, home);
    assert_true(h->n < 4);
    h->kept[h->n++] = r;
}

static void a_record_with_a_home_goes_back_there_when_its_batch_is_freed(void **state)
{
    (void)state;
    struct keeping_home h = {.home.take_back = keep};
    struct weir_batch *b = weir_batch_new(0);
    struct weir_record *homed[2] = {rec(), rec()};
    homed[0]->home = &h.home;
    homed[1]->home = &h.home;
    weir_batch_take(b, homed[0]);
    weir_batch_take(b, rec()); /* no home: freed with the batch (the leak check sees it) */
    weir_batch_take(b, homed[1]);
    weir_batch_free(b);
    assert_int_equal(h.n, 2);
    assert_ptr_equal(h.kept[0], homed[0]);
    assert_ptr_equal(h.kept[1], homed[1]);
    /* The home frees them itself, whatever their home says. */
    weir_record_destroy(h.kept[0]);
    weir_record_destroy(h.kept[1]);
    weir_record_free(NULL);
    weir_record_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(batch_closes_when_it_holds_batch_size_records),
        cmocka_unit_test(batch_closes_when_window_ends_from_first_record),
        cmocka_unit_test(zero_window_waits_for_flush),
        cmocka_unit_test(flush_with_nothing_open_does_nothing),
        cmocka_unit_test(records_past_6mb_split_into_two_batches_under_the_limit),
        cmocka_unit_test(record_that_fills_the_event_exactly_still_fits),
        cmocka_unit_test(a_record_no_event_can_hold_is_refused_and_nothing_closes),
        cmocka_unit_test(each_lane_fills_its_own_batch),
        cmocka_unit_test(windows_end_per_lane_from_each_first_record),
        cmocka_unit_test(steal_lane_takes_only_that_lanes_batch),
        cmocka_unit_test(every_closed_event_holds_exactly_the_records_added),
        cmocka_unit_test(steal_takes_the_open_batch_without_closing_it),
        cmocka_unit_test(deinit_frees_an_open_batch),
        cmocka_unit_test(a_record_with_a_home_goes_back_there_when_its_batch_is_freed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
