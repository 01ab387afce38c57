/* A fake poller for unit tests of the mapping: it records what the mapping asks of its source
 * (start, resume, settles with their verdicts, stop) and keeps the stop callback for the test to
 * call. Header-only so each test executable gets its own copy. Include it after cmocka.h. */
#ifndef WEIR_TEST_FAKE_POLLER_H
#define WEIR_TEST_FAKE_POLLER_H

#include <stdio.h>
#include <string.h>

#include "mapping/filter.h"
#include "pollers/poller.h"

struct weir_poller {
    int started;
    int resumes;
    int stop_called;
    void (*stop_done)(void *);
    void *stop_arg;
    size_t settles;
    size_t last_settle_n;
    size_t settled[4]; /* records settled, by verdict */
    char seen[64][16]; /* ids settled as done, in order */
    size_t n_seen;
};

static struct weir_poller poller;

static struct weir_poller *fake_poller_new(struct weir_mapping *m,
                                           const struct weir_mapping_cfg *mc, const char *region,
                                           struct event_base *base, struct weir_err *err)
{
    memset(&poller, 0, sizeof(poller));
    return &poller;
}

static weir_status fake_poller_start(struct weir_poller *p)
{
    p->started = 1;
    return WEIR_OK;
}

static void fake_poller_resume(struct weir_poller *p)
{
    p->resumes++;
}

static void fake_poller_settle(struct weir_poller *p, const struct weir_batch *b)
{
    p->settles++;
    p->last_settle_n = b->n;
    for (size_t i = 0; i < b->n; i++) {
        p->settled[b->records[i]->verdict]++;
        if (b->records[i]->verdict == WEIR_VERDICT_DONE && p->n_seen < 64)
            snprintf(p->seen[p->n_seen++], sizeof(p->seen[0]), "%s", b->records[i]->id);
    }
}

static void fake_poller_stop(struct weir_poller *p, void (*done)(void *), void *arg)
{
    p->stop_called = 1;
    p->stop_done = done;
    p->stop_arg = arg;
}

static const char *fake_poller_arn(const struct weir_poller *p)
{
    return "arn:aws:sqs:us-east-1:000000000000:orders";
}

static void fake_poller_free(struct weir_poller *p)
{
}

/* Not const: a test may take away filter_shape to see a source that cannot filter. */
static struct weir_poller_ops fake_poller_ops = {
    .name = "fake",
    .scheme = "fake",
    .encoder = &weir_encoder_sqs,
    .filter_shape = &weir_filter_shape_sqs,
    .semantics = WEIR_SEMANTICS_QUEUE,
    .default_batch_size = 10,
    .max_batch_size = 10000,
    .new = fake_poller_new,
    .start = fake_poller_start,
    .resume = fake_poller_resume,
    .settle = fake_poller_settle,
    .stop = fake_poller_stop,
    .source_arn = fake_poller_arn,
    .free = fake_poller_free,
};

#endif
