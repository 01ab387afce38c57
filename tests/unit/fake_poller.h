/* A fake source for unit tests of the mapping: a registry row whose poller records what the
 * mapping asks of it (start, pause, resume, settles with their verdicts, stop), keeps the stop
 * callback for the test to call, and hands the test the sink it was given, so the test plays the
 * source: fake_room, fake_deliver, fake_read_done. Header-only so each test executable gets its
 * own copy. Include it after cmocka.h. */
#ifndef WEIR_TEST_FAKE_POLLER_H
#define WEIR_TEST_FAKE_POLLER_H

#include <stdio.h>
#include <string.h>

#include "mapping/filter.h"
#include "pollers/poller.h"

#define FAKE_SEEN_MAX 256

struct weir_poller {
    struct weir_sink sink;
    struct weir_source_info info;
    int started;
    int resumes;
    int pauses;
    uint32_t last_paused, last_resumed; /* one lane (not WEIR_LANE_ANY) */
    int stop_called;
    void (*stop_done)(void *);
    void *stop_arg;
    size_t settles;
    size_t last_settle_n;
    size_t settled[WEIR_VERDICT_COUNT]; /* records settled, by verdict */
    char seen[FAKE_SEEN_MAX][16];       /* ids settled as done, in order */
    size_t n_seen;
    char reasons[8][256]; /* reasons of the first rejected records */
    size_t n_reasons;
    char released[FAKE_SEEN_MAX][16]; /* ids given back unsent, in the order settled */
    size_t n_released;
};

static struct weir_poller poller;
/* What the next fake poller reports about its lanes. */
static bool fake_ordered_lanes;

static struct weir_poller *fake_poller_new(const struct weir_poller_args *args,
                                           struct weir_err *err)
{
    memset(&poller, 0, sizeof(poller));
    poller.sink = args->sink;
    poller.info.source_arn = "arn:aws:sqs:us-east-1:000000000000:orders";
    poller.info.ordered_lanes = fake_ordered_lanes;
    return &poller;
}

static const struct weir_source_info *fake_poller_info(const struct weir_poller *p)
{
    return &p->info;
}

static weir_status fake_poller_start(struct weir_poller *p)
{
    p->started = 1;
    return WEIR_OK;
}

static void fake_poller_pause(struct weir_poller *p, uint32_t lane)
{
    p->pauses++;
    p->last_paused = lane;
}

static void fake_poller_resume(struct weir_poller *p, uint32_t lane)
{
    p->resumes++;
    if (lane != WEIR_LANE_ANY)
        p->last_resumed = lane;
}

static void fake_poller_settle(struct weir_poller *p, const struct weir_batch *b)
{
    p->settles++;
    p->last_settle_n = b->n;
    for (size_t i = 0; i < b->n; i++) {
        const struct weir_record *r = b->records[i];
        p->settled[r->verdict]++;
        if (r->verdict == WEIR_VERDICT_DONE && p->n_seen < FAKE_SEEN_MAX)
            snprintf(p->seen[p->n_seen++], sizeof(p->seen[0]), "%s", r->id);
        if (r->verdict == WEIR_VERDICT_RELEASE && p->n_released < FAKE_SEEN_MAX)
            snprintf(p->released[p->n_released++], sizeof(p->released[0]), "%s", r->id);
        if (r->verdict == WEIR_VERDICT_REJECT && p->n_reasons < 8)
            snprintf(p->reasons[p->n_reasons++], sizeof(p->reasons[0]), "%s",
                     r->reason ? r->reason : "");
    }
}

static void fake_poller_stop(struct weir_poller *p, void (*done)(void *), void *arg)
{
    p->stop_called = 1;
    p->stop_done = done;
    p->stop_arg = arg;
}

static void fake_poller_free(struct weir_poller *p)
{
}

static const struct weir_poller_ops fake_poller_ops = {
    .new = fake_poller_new,
    .info = fake_poller_info,
    .start = fake_poller_start,
    .pause = fake_poller_pause,
    .resume = fake_poller_resume,
    .settle = fake_poller_settle,
    .stop = fake_poller_stop,
    .free = fake_poller_free,
};

/* Not const: a test may take away the filter shape (fake_format.filter_shape = NULL). */
static struct weir_event_format fake_format;

static struct weir_source fake_source = {
    .config =
        {
            .name = "fake",
            .scheme = "fake",
            .example_uri = "fake://q",
            .default_batch_size = 10,
            .max_batch_size = 10000,
        },
    .format = &fake_format,
    .delivery = WEIR_DELIVERY_QUEUE,
    .ops = &fake_poller_ops,
};

/* The fake source as a fresh test expects it: SQS records, filterable, lanes unordered. */
static inline void fake_source_reset(void)
{
    fake_format = weir_format_sqs;
    fake_source.format = &fake_format;
    fake_ordered_lanes = false;
}

/* The test as the source: what the mapping can take, handing it a record, ending a read. */
static inline size_t fake_room(void)
{
    return poller.sink.ops->room(poller.sink.ctx, WEIR_LANE_ANY);
}

static inline size_t fake_room_lane(uint32_t lane)
{
    return poller.sink.ops->room(poller.sink.ctx, lane);
}

static inline void fake_deliver(struct weir_record *r)
{
    poller.sink.ops->deliver(poller.sink.ctx, r);
}

static inline void fake_read_done(void)
{
    poller.sink.ops->read_done(poller.sink.ctx);
}

#endif
