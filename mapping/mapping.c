/* One mapping's pipeline: records from its poller go through the filter and the batcher to the
 * dispatcher, and verdicts come back to the poller. It owns the poller, the filter, the batcher,
 * the window timer and the in-flight bound (backpressure). It must never talk to a server
 * itself. */
#include "mapping/mapping.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "dispatcher/dispatcher.h"
#include "mapping/batcher.h"
#include "mapping/filter.h"
#include "pollers/poller.h"

/* AWS starts an SQS mapping at 5 concurrent batches and adds up to 300 a minute while messages
 * remain; weir does the same in steps of 5 a second, and steps back down when idle. */
#define SCALE_START     5
#define SCALE_STEP      5
#define SCALE_MAX       1000
#define SCALE_PERIOD_MS 1000
/* Filtered-out records are settled together at the end of each read; a read larger than this
 * settles them in runs of this many, so a huge read does not hold leases it could release. */
#define FILTERED_SETTLE_MAX 500

struct weir_mapping {
    const struct weir_mapping_cfg *cfg;
    char component[96];
    char *region;
    struct event_base *base;
    struct weir_function *fn;
    const struct weir_poller_ops *ops;
    struct weir_poller *p;
    struct weir_batcher bt;
    struct weir_event_ctx ctx;
    struct weir_disp_policy pol;
    struct event *window_timer;
    int64_t window_due_ms; /* when window_timer is armed for; -1 when not armed */
    struct event *scale_timer;
    struct event *stopped_event;

    size_t inflight; /* batches handed to the dispatcher and not yet back */
    size_t limit;    /* maximum_concurrency, or SCALE_MAX */
    size_t cap;      /* current concurrency, scaled between min(SCALE_START, limit) and limit */
    size_t peak_inflight; /* since the last scale tick */
    bool saturated;       /* since the last scale tick, inflight reached cap */
    bool started;
    bool stopping;
    bool poller_stop_requested;
    bool poller_stopped;
    void (*stop_done)(void *arg);
    void *stop_arg;
    struct weir_batch *release;  /* records that arrived while stopping, to give back */
    struct weir_filter *filter;  /* filter_criteria compiled; NULL when the mapping has none */
    struct weir_batch *filtered; /* records no pattern matched, to settle as done */
    struct weir_mapping_stats stats;
};

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

static void poller_resume(struct weir_mapping *m)
{
    if (m->started && !m->stopping && m->ops->resume)
        m->ops->resume(m->p);
}

static void on_function_slot(void *arg)
{
    poller_resume(arg);
}

static void maybe_finish_stop(struct weir_mapping *m);

static void on_batch_done(void *arg, struct weir_batch *b)
{
    struct weir_mapping *m = arg;
    m->inflight--;
    m->stats.invocations += b->invocations;
    for (size_t i = 0; i < b->n; i++) {
        switch (b->records[i]->verdict) {
        case WEIR_VERDICT_DONE:
            m->stats.records_done++;
            break;
        case WEIR_VERDICT_RELEASE:
            m->stats.records_released++;
            break;
        default:
            m->stats.records_retry++;
            break;
        }
    }
    m->ops->settle(m->p, b);
    weir_batch_free(b);
    if (m->stopping)
        maybe_finish_stop(m);
    else
        poller_resume(m);
}

static void on_batch_closed(void *arg, struct weir_batch *b)
{
    struct weir_mapping *m = arg;
    m->stats.batches++;
    m->inflight++;
    if (m->inflight > m->peak_inflight)
        m->peak_inflight = m->inflight;
    if (m->inflight >= m->cap)
        m->saturated = true;
    weir_trace(m->component, "batch closed records=%zu bytes=%zu inflight=%zu", b->n, b->event.len,
               m->inflight);
    weir_disp_submit(m->fn, b, &m->pol, on_batch_done, m);
}

static void arm_window(struct weir_mapping *m)
{
    int64_t due = weir_batcher_due_ms(&m->bt);
    if (due < 0) {
        if (m->window_due_ms >= 0)
            event_del(m->window_timer);
        m->window_due_ms = -1;
        return;
    }
    if (due == m->window_due_ms)
        return;
    int64_t wait = due - weir_clock_mono_ms();
    if (wait < 0)
        wait = 0;
    struct timeval tv = {.tv_sec = wait / 1000, .tv_usec = (wait % 1000) * 1000};
    event_add(m->window_timer, &tv);
    m->window_due_ms = due;
}

static void on_window(evutil_socket_t fd, short what, void *arg)
{
    struct weir_mapping *m = arg;
    m->window_due_ms = -1;
    weir_batcher_tick(&m->bt);
    arm_window(m);
    poller_resume(m);
}

static void on_scale(evutil_socket_t fd, short what, void *arg)
{
    struct weir_mapping *m = arg;
    size_t floor = min_size(SCALE_START, m->limit);
    size_t before = m->cap;
    if (m->saturated)
        m->cap = min_size(m->limit, m->cap + SCALE_STEP);
    else if (m->peak_inflight * 2 < m->cap && m->cap > floor)
        m->cap = m->cap - SCALE_STEP < floor ? floor : m->cap - SCALE_STEP;
    if (m->cap != before)
        weir_debug(m->component, "concurrency %s to %zu", m->cap > before ? "raised" : "lowered",
                   m->cap);
    m->saturated = m->inflight >= m->cap;
    m->peak_inflight = m->inflight;
    if (m->cap > before)
        poller_resume(m);
}

/* The configuration was checked when loaded; this compiles it again for this source's records
 * (and refuses it for a caller that skipped the check). */
static bool compile_filter(struct weir_mapping *m, struct weir_err *err)
{
    const struct weir_mapping_cfg *cfg = m->cfg;
    const char *texts[WEIR_FILTER_MAX_PATTERNS];
    size_t lens[WEIR_FILTER_MAX_PATTERNS], bad = 0;
    struct weir_filter_error ferr;
    if (!m->ops->filter_shape) {
        weir_err_set(err, "mapping '%s': the %s source cannot filter records", cfg->name,
                     m->ops->name);
        return false;
    }
    if (cfg->n_filters > WEIR_FILTER_MAX_PATTERNS) {
        weir_err_set(err, "mapping '%s': %zu filters; at most %d", cfg->name, cfg->n_filters,
                     WEIR_FILTER_MAX_PATTERNS);
        return false;
    }
    for (size_t i = 0; i < cfg->n_filters; i++) {
        texts[i] = cfg->filters[i].pattern;
        lens[i] = cfg->filters[i].pattern_len;
    }
    m->filter = weir_filter_new(texts, lens, cfg->n_filters, m->ops->filter_shape, &bad, &ferr);
    if (!m->filter) {
        weir_err_set(err,
                     "mapping '%s': filter_criteria.filters[%zu].pattern: at %s (offset %zu): %s",
                     cfg->name, bad, ferr.path[0] ? ferr.path : "the top", ferr.offset, ferr.msg);
        return false;
    }
    return true;
}

struct weir_mapping *weir_mapping_new(const struct weir_mapping_cfg *cfg, const char *region,
                                      struct weir_function *fn, struct event_base *base,
                                      struct weir_err *err)
{
    const struct weir_poller_ops *ops = weir_poller_find(cfg->source);
    if (!ops) {
        weir_err_set(err, "no source handles '%s'", cfg->source);
        return NULL;
    }
    return weir_mapping_new_with(cfg, ops, region, fn, base, err);
}

struct weir_mapping *weir_mapping_new_with(const struct weir_mapping_cfg *cfg,
                                           const struct weir_poller_ops *ops, const char *region,
                                           struct weir_function *fn, struct event_base *base,
                                           struct weir_err *err)
{
    struct weir_mapping *m = weir_calloc(1, sizeof(*m));
    m->cfg = cfg;
    m->base = base;
    m->fn = fn;
    m->region = weir_strdup(region);
    m->window_due_ms = -1;
    snprintf(m->component, sizeof(m->component), "mapping/%s", cfg->name);
    m->ops = ops;
    m->limit = cfg->maximum_concurrency > 0 ? (size_t)cfg->maximum_concurrency : SCALE_MAX;
    m->cap = min_size(SCALE_START, m->limit);
    m->window_timer = evtimer_new(base, on_window, m);
    m->scale_timer = event_new(base, -1, EV_PERSIST, on_scale, m);
    if (cfg->n_filters && !compile_filter(m, err))
        goto fail;
    m->p = m->ops->new (m, cfg, region, base, err);
    if (!m->p)
        goto fail;
    m->ctx.source_arn = m->ops->source_arn(m->p);
    m->ctx.region = m->region;
    m->pol.semantics = m->ops->semantics;
    m->pol.report_batch_item_failures = cfg->report_batch_item_failures;
    m->pol.mapping_name = cfg->name;
    struct weir_batcher_cfg bc = {
        .batch_size = (size_t)cfg->batch_size,
        .window_ms = (int64_t)cfg->maximum_batching_window_in_seconds * 1000,
        .max_bytes = WEIR_INVOKE_PAYLOAD_MAX,
        .encoder = m->ops->encoder,
        .ctx = &m->ctx,
    };
    weir_batcher_init(&m->bt, &bc, m, on_batch_closed, m);
    return m;
fail:
    weir_mapping_free(m);
    return NULL;
}

weir_status weir_mapping_start(struct weir_mapping *m)
{
    if (!m->cfg->enabled) {
        weir_info(m->component, "disabled (enabled: false); not reading source=%s", m->ops->name);
        return WEIR_OK;
    }
    m->started = true;
    weir_function_watch(m->fn, on_function_slot, m);
    struct timeval period = {.tv_sec = SCALE_PERIOD_MS / 1000,
                             .tv_usec = (SCALE_PERIOD_MS % 1000) * 1000};
    event_add(m->scale_timer, &period);
    if (m->ops->start(m->p) != WEIR_OK)
        return WEIR_ERR;
    weir_info(m->component,
              "started source=%s function=%s batch_size=%d window_s=%d max_concurrency=%zu "
              "report_batch_item_failures=%s filters=%zu",
              m->ops->name, weir_function_name(m->fn), m->cfg->batch_size,
              m->cfg->maximum_batching_window_in_seconds, m->limit,
              m->cfg->report_batch_item_failures ? "true" : "false", m->cfg->n_filters);
    return WEIR_OK;
}

static void on_stopped_event(evutil_socket_t fd, short what, void *arg)
{
    struct weir_mapping *m = arg;
    weir_info(
        m->component,
        "stopped records_in=%llu done=%llu retry=%llu released=%llu filtered=%llu "
        "invocations=%llu",
        (unsigned long long)m->stats.records_in, (unsigned long long)m->stats.records_done,
        (unsigned long long)m->stats.records_retry, (unsigned long long)m->stats.records_released,
        (unsigned long long)m->stats.records_filtered, (unsigned long long)m->stats.invocations);
    if (m->stop_done)
        m->stop_done(m->stop_arg);
}

static void on_poller_stopped(void *arg)
{
    struct weir_mapping *m = arg;
    m->poller_stopped = true;
    /* Defer: the poller may call us from inside its own callback, and our caller may free it. */
    event_active(m->stopped_event, EV_TIMEOUT, 0);
}

static void release_pending(struct weir_mapping *m)
{
    if (!m->release || !m->release->n)
        return;
    weir_batch_set_verdicts(m->release, WEIR_VERDICT_RELEASE);
    m->stats.records_released += m->release->n;
    m->ops->settle(m->p, m->release);
    weir_batch_free(m->release);
    m->release = NULL;
}

/* Filtered-out records are done: the source forgets them (SQS deletes them, as Lambda does). */
static void settle_filtered(struct weir_mapping *m)
{
    if (!m->filtered)
        return;
    struct weir_batch *b = m->filtered;
    m->filtered = NULL;
    weir_debug(m->component, "filtered out records=%zu total=%llu", b->n,
               (unsigned long long)m->stats.records_filtered);
    m->ops->settle(m->p, b);
    weir_batch_free(b);
}

static void maybe_finish_stop(struct weir_mapping *m)
{
    settle_filtered(m);
    release_pending(m);
    if (m->inflight || m->poller_stop_requested)
        return;
    m->poller_stop_requested = true;
    m->ops->stop(m->p, on_poller_stopped, m);
}

void weir_mapping_stop(struct weir_mapping *m, void (*done)(void *arg), void *arg)
{
    m->stop_done = done;
    m->stop_arg = arg;
    m->stopped_event = event_new(m->base, -1, 0, on_stopped_event, m);
    if (!m->started) {
        event_active(m->stopped_event, EV_TIMEOUT, 0);
        return;
    }
    m->stopping = true;
    event_del(m->window_timer);
    event_del(m->scale_timer);
    weir_function_unwatch(m->fn, on_function_slot, m);
    struct weir_batch *open = weir_batcher_steal(&m->bt);
    if (open) {
        if (!m->release)
            m->release = weir_batch_new(m, 0);
        for (size_t i = 0; i < open->n; i++)
            weir_batch_take(m->release, open->records[i]);
        open->n = 0;
        weir_batch_free(open);
    }
    weir_info(m->component, "stopping inflight_batches=%zu giving_back=%zu", m->inflight,
              m->release ? m->release->n : 0);
    maybe_finish_stop(m);
}

void weir_mapping_free(struct weir_mapping *m)
{
    if (!m)
        return;
    if (m->started && !m->stopping)
        weir_function_unwatch(m->fn, on_function_slot, m);
    if (m->ops && m->p)
        weir_batcher_deinit(&m->bt);
    if (m->p)
        m->ops->free(m->p);
    weir_batch_free(m->release);
    weir_batch_free(m->filtered);
    weir_filter_free(m->filter);
    if (m->window_timer)
        event_free(m->window_timer);
    if (m->scale_timer)
        event_free(m->scale_timer);
    if (m->stopped_event)
        event_free(m->stopped_event);
    free(m->region);
    free(m);
}

const char *weir_mapping_name(const struct weir_mapping *m)
{
    return m->cfg->name;
}

size_t weir_mapping_want(const struct weir_mapping *m)
{
    if (!m->started || m->stopping)
        return 0;
    if (m->inflight >= m->cap)
        return 0;
    /* Records claimed while the function has no free slot would only wait with their lease
     * ticking, so the source is read only for the batches that can be invoked now. */
    size_t room = min_size(m->cap - m->inflight, weir_function_free_slots(m->fn));
    size_t pending = weir_batcher_pending(&m->bt);
    size_t size = (size_t)m->cfg->batch_size;
    return room * size > pending ? room * size - pending : 0;
}

void weir_mapping_deliver(struct weir_mapping *m, struct weir_record *r)
{
    m->stats.records_in++;
    if (m->stopping) {
        if (!m->release)
            m->release = weir_batch_new(m, 0);
        weir_batch_take(m->release, r);
        return;
    }
    /* Before the batcher, as Lambda filters before batching: a filtered record takes no room in
     * a batch and never reaches the function. */
    if (m->filter && !weir_filter_match(m->filter, r, m->ops->encoder, &m->ctx)) {
        m->stats.records_filtered++;
        r->verdict = WEIR_VERDICT_DONE;
        if (!m->filtered)
            m->filtered = weir_batch_new(m, r->lane);
        weir_batch_take(m->filtered, r);
        if (m->filtered->n >= FILTERED_SETTLE_MAX)
            settle_filtered(m);
        return;
    }
    weir_batcher_add(&m->bt, r);
    arm_window(m);
}

void weir_mapping_read_done(struct weir_mapping *m)
{
    settle_filtered(m);
    if (m->stopping) {
        release_pending(m);
        return;
    }
    if (m->cfg->maximum_batching_window_in_seconds == 0)
        weir_batcher_flush(&m->bt);
    arm_window(m);
}

const struct weir_mapping_stats *weir_mapping_stats(const struct weir_mapping *m)
{
    return &m->stats;
}
