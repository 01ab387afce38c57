/* The dispatcher: functions (endpoint pools, reserved concurrency), invocations and outcome
 * classification; the mapping's delivery policy row (dispatcher/policy.h) turns each outcome into
 * a verdict per record or another attempt. It must never parse a source protocol; it sees
 * records only through ids and deadlines. */
#include "dispatcher/dispatcher.h"

#include <assert.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "connectors/target.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/mem.h"
#include "dispatcher/outcome.h"
#include "dispatcher/policy.h"
#include "model/event.h"

/* An invocation starts only while its records' lease covers the function's whole timeout and
 * this much more: one that outlived its lease could see its records given to another consumer
 * (in a FIFO queue: its message group to another invocation) while it still ran. */
#define LEASE_MARGIN_MS 200
/* Unless the lease was never that long (a visibility timeout about the function's timeout, which
 * AWS allows): then what a batch claimed this long ago would still have. */
#define LEASE_FRESH_MS 1000

struct endpoint {
    struct weir_target *t;
    size_t busy;
};

struct job {
    struct weir_function *fn;
    struct weir_batch *b;
    const struct weir_disp_policy *pol;
    const struct weir_policy *policy;
    struct weir_attempt at;
    weir_disp_done_fn done;
    void *arg;
    struct endpoint *ep;
    struct weir_invocation *inv;
    struct weir_timer *timer; /* the policy's delay before the next attempt */
    struct event *deferred;   /* hands back a batch refused before any invocation (next turn) */
    char request_id[37];
    struct weir_list link; /* in fn->waiting, fn->running, fn->delayed or fn->refused */
};

struct watcher {
    void (*cb)(void *arg);
    void *arg;
};

struct weir_function {
    const struct weir_function_cfg *cfg;
    struct event_base *base;
    const struct weir_target_ops *ops;
    char component[96];
    struct endpoint *eps;
    size_t n_eps;
    size_t next_ep;
    size_t running;
    size_t limit; /* reserved concurrency, SIZE_MAX when unset */
    struct weir_list waiting;
    struct weir_list running_jobs;
    struct weir_list delayed; /* waiting for the policy's delay before another attempt */
    struct weir_list refused; /* refused before an invocation, handed back on the next turn */
    struct weir_list holds;   /* what policies hold outside these lists (struct weir_hold) */
    bool aborting;
    struct watcher *watchers;
    size_t n_watchers;
    bool notifying;
    struct weir_async_queue *async; /* borrowed: the runtime owns it */
};

static struct job *job_of(struct weir_list *node)
{
    return node ? weir_list_entry(node, struct job, link) : NULL;
}

void weir_policy_partial_verdicts(struct weir_batch *b, const struct weir_classified *c)
{
    weir_batch_set_verdicts(b, WEIR_VERDICT_DONE);
    for (size_t i = 0; i < c->n_failed; i++)
        b->records[c->failed[i]]->verdict = WEIR_VERDICT_RETRY;
}

const struct weir_policy *weir_policy_of(enum weir_delivery d)
{
    static const struct weir_policy *const rows[WEIR_DELIVERY_COUNT] = {
        [WEIR_DELIVERY_QUEUE] = &weir_policy_queue,
        [WEIR_DELIVERY_ASYNC] = &weir_policy_async,
        [WEIR_DELIVERY_STREAM] = &weir_policy_stream,
    };
    return (unsigned)d < WEIR_DELIVERY_COUNT ? rows[d] : NULL;
}

const char *weir_function_name(const struct weir_function *fn)
{
    return fn->cfg->name;
}

const struct weir_function_cfg *weir_function_config(const struct weir_function *fn)
{
    return fn->cfg;
}

struct event_base *weir_function_base(const struct weir_function *fn)
{
    return fn->base;
}

void weir_function_set_async(struct weir_function *fn, struct weir_async_queue *q)
{
    fn->async = q;
}

struct weir_async_queue *weir_function_async(const struct weir_function *fn)
{
    return fn->async;
}

struct weir_function *weir_function_new(const struct weir_function_cfg *cfg,
                                        struct event_base *base, struct weir_err *err)
{
    return weir_function_new_with(cfg, weir_target_for(cfg), base, err);
}

struct weir_function *weir_function_new_with(const struct weir_function_cfg *cfg,
                                             const struct weir_target_ops *ops,
                                             struct event_base *base, struct weir_err *err)
{
    struct weir_function *fn = weir_calloc(1, sizeof(*fn));
    fn->cfg = cfg;
    fn->base = base;
    snprintf(fn->component, sizeof(fn->component), "function/%s", cfg->name);
    fn->ops = ops;
    fn->n_eps = cfg->n_urls ? cfg->n_urls : 1;
    fn->eps = weir_calloc(fn->n_eps, sizeof(*fn->eps));
    fn->limit = cfg->reserved_concurrency >= 0 ? (size_t)cfg->reserved_concurrency : SIZE_MAX;
    weir_list_init(&fn->waiting);
    weir_list_init(&fn->running_jobs);
    weir_list_init(&fn->delayed);
    weir_list_init(&fn->refused);
    weir_list_init(&fn->holds);
    for (size_t i = 0; i < fn->n_eps; i++) {
        fn->eps[i].t = fn->ops->new (cfg, i, base, err);
        if (!fn->eps[i].t)
            goto fail;
    }
    if (fn->limit == 0)
        weir_warn(fn->component, "reserved_concurrency is 0: the function is never invoked and "
                                 "its mappings read nothing");
    return fn;
fail:
    weir_function_free(fn);
    return NULL;
}

static struct endpoint *idle_endpoint(struct weir_function *fn)
{
    for (size_t k = 0; k < fn->n_eps; k++) {
        struct endpoint *ep = &fn->eps[(fn->next_ep + k) % fn->n_eps];
        if (!fn->cfg->single_flight || ep->busy == 0) {
            fn->next_ep = (fn->next_ep + k + 1) % fn->n_eps;
            return ep;
        }
    }
    return NULL;
}

size_t weir_function_free_slots(const struct weir_function *fn)
{
    if (fn->running >= fn->limit)
        return 0;
    size_t slots = fn->limit - fn->running;
    if (fn->cfg->single_flight) {
        size_t idle = 0;
        for (size_t i = 0; i < fn->n_eps; i++)
            idle += fn->eps[i].busy == 0;
        if (idle < slots)
            slots = idle;
    }
    /* Batches already waiting for a slot take the free ones first. */
    size_t waiting = weir_list_count(&fn->waiting);
    return slots > waiting ? slots - waiting : 0;
}

void weir_function_watch(struct weir_function *fn, void (*cb)(void *arg), void *arg)
{
    for (size_t i = 0; i < fn->n_watchers; i++)
        if (fn->watchers[i].cb == cb && fn->watchers[i].arg == arg)
            return;
    fn->watchers = weir_realloc(fn->watchers, (fn->n_watchers + 1) * sizeof(*fn->watchers));
    fn->watchers[fn->n_watchers++] = (struct watcher){cb, arg};
}

void weir_function_unwatch(struct weir_function *fn, void (*cb)(void *arg), void *arg)
{
    for (size_t i = 0; i < fn->n_watchers; i++) {
        if (fn->watchers[i].cb == cb && fn->watchers[i].arg == arg) {
            fn->watchers[i] = fn->watchers[--fn->n_watchers];
            return;
        }
    }
}

static void notify_watchers(struct weir_function *fn)
{
    /* A watcher may unwatch (or claim, which submits) from inside its callback. */
    if (fn->notifying)
        return;
    fn->notifying = true;
    for (size_t i = 0; i < fn->n_watchers && weir_function_free_slots(fn) > 0; i++)
        fn->watchers[i].cb(fn->watchers[i].arg);
    fn->notifying = false;
}

static void job_free(struct job *j)
{
    weir_timer_free(j->timer);
    if (j->deferred)
        event_free(j->deferred);
    free(j);
}

/* Hands the batch back and forgets the job. */
static void job_finish(struct job *j)
{
    struct weir_batch *b = j->b;
    weir_disp_done_fn done = j->done;
    void *arg = j->arg;
    weir_list_remove(&j->link);
    job_free(j);
    done(arg, b);
}

static void start_waiting(struct weir_function *fn);
static void on_invoked(void *arg, struct weir_invoke_result *res);

static void on_deferred_finish(evutil_socket_t fd, short what, void *arg)
{
    job_finish(arg);
}

/* Hands j's batch back from the loop's next turn: never from inside weir_disp_submit, whose
 * caller may still be working with the batch's records. */
static void job_finish_later(struct job *j)
{
    weir_list_remove(&j->link);
    weir_list_push_back(&j->fn->refused, &j->link);
    if (!j->deferred)
        j->deferred = event_new(j->fn->base, -1, 0, on_deferred_finish, j);
    event_active(j->deferred, EV_TIMEOUT, 0);
}

static void job_start(struct job *j)
{
    struct weir_function *fn = j->fn;
    struct weir_batch *b = j->b;
    int64_t deadline = weir_batch_deadline(b);
    int64_t need = j->at.function_timeout_ms + LEASE_MARGIN_MS;
    /* The lease only matters against a deadline: without one, not read (a cache line each). */
    int64_t lease = deadline ? weir_batch_lease_ms(b) : 0;
    if (lease && lease - LEASE_FRESH_MS < need)
        need = lease - LEASE_FRESH_MS > LEASE_MARGIN_MS ? lease - LEASE_FRESH_MS : LEASE_MARGIN_MS;
    if (deadline && weir_clock_mono_ms() + need > deadline) {
        /* Too little lease left for a whole invocation (the batch waited for a slot): the source
         * could hand these records to another consumer while the function still ran. A batch the
         * function never saw goes back unsent (no receive counted, where the lease still
         * holds); one it saw before (throttled since) comes back as a retry. */
        weir_log_limited_for(WEIR_LOG_WARN, fn->component, j->pol->mapping_name,
                             "lease too short to invoke the batch; records return to the source "
                             "mapping=%s records=%zu lease_left_ms=%lld",
                             j->pol->mapping_name, b->n,
                             (long long)(deadline - weir_clock_mono_ms()));
        weir_batch_set_verdicts(b, b->invocations ? WEIR_VERDICT_RETRY : WEIR_VERDICT_RELEASE);
        job_finish_later(j);
        return;
    }
    j->ep = idle_endpoint(fn);
    j->ep->busy++;
    fn->running++;
    b->invocations++;
    weir_list_push_back(&fn->running_jobs, &j->link);
    weir_uuid4(j->request_id);
    weir_debug(fn->component, "invoke mapping=%s request_id=%s records=%zu bytes=%zu attempt=%u",
               j->pol->mapping_name, j->request_id, b->n, b->event.len, b->invocations);
    j->inv = fn->ops->invoke(j->ep->t, b->event.data, b->event.len, j->at.function_timeout_ms,
                             on_invoked, j);
}

static bool has_slot(const struct weir_function *fn)
{
    if (fn->running >= fn->limit)
        return false;
    if (!fn->cfg->single_flight)
        return true;
    for (size_t i = 0; i < fn->n_eps; i++)
        if (fn->eps[i].busy == 0)
            return true;
    return false;
}

static void start_waiting(struct weir_function *fn)
{
    while (!weir_list_empty(&fn->waiting) && has_slot(fn))
        job_start(job_of(weir_list_pop_front(&fn->waiting)));
}

static void on_delay_done(void *arg)
{
    struct job *j = arg;
    weir_list_remove(&j->link);
    weir_list_push_back(&j->fn->waiting, &j->link);
    start_waiting(j->fn);
}

static void keep_response(struct weir_batch *b, struct weir_invoke_result *res,
                          const struct weir_classified *c)
{
    struct weir_response *out = &b->response;
    out->ran = c->outcome != WEIR_OUTCOME_THROTTLED;
    out->status = res->transport == WEIR_TRANSPORT_OK ? res->status : 0;
    snprintf(out->function_error, sizeof(out->function_error), "%s",
             c->outcome == WEIR_OUTCOME_OK || c->outcome == WEIR_OUTCOME_PARTIAL ? ""
             : res->function_error[0] ? res->function_error
                                      : "Unhandled");
    snprintf(out->why, sizeof(out->why), "%s",
             c->outcome == WEIR_OUTCOME_OK || c->outcome == WEIR_OUTCOME_PARTIAL ? "" : c->why);
    if (res->transport == WEIR_TRANSPORT_TOO_LARGE) {
        /* What was read of it is cut, not JSON: the error Lambda answers instead. */
        out->status = 200;
        snprintf(out->function_error, sizeof(out->function_error), "Unhandled");
        weir_buf_reset(&out->payload);
        weir_buf_printf(&out->payload,
                        "{\"errorMessage\":\"Response payload size exceeded maximum allowed "
                        "payload size (%d bytes).\",\"errorType\":\"Function."
                        "ResponseSizeTooLarge\"}",
                        WEIR_RESPONSE_MAX);
        return;
    }
    /* The body moves over; the result is done with it. */
    struct weir_buf swap = out->payload;
    out->payload = res->body;
    res->body = swap;
    weir_buf_reset(&res->body);
}

static void on_invoked(void *arg, struct weir_invoke_result *res)
{
    struct job *j = arg;
    struct weir_function *fn = j->fn;
    struct weir_batch *b = j->b;
    weir_list_remove(&j->link);
    j->inv = NULL;
    j->ep->busy--;
    fn->running--;

    struct weir_classified c;
    weir_outcome_classify(res, b, j->pol->report_batch_item_failures, j->pol->format, &c);
    if (j->policy->keeps_response)
        keep_response(b, res, &c);
    weir_debug(fn->component, "invoked mapping=%s request_id=%s outcome=%s elapsed_ms=%ld",
               j->pol->mapping_name, j->request_id, weir_outcome_name(c.outcome),
               (long)(res->elapsed_us / 1000));
    int64_t delay_ms = 0;
    enum weir_policy_next next = j->policy->judge(&j->at, b, &c, &delay_ms);
    weir_classified_deinit(&c);
    if (next == WEIR_POLICY_AGAIN) {
        if (!j->timer)
            j->timer = weir_timer_new(fn->base, on_delay_done, j);
        weir_list_push_back(&fn->delayed, &j->link);
        weir_timer_after(j->timer, delay_ms);
    } else {
        job_finish(j);
    }
    /* The slot is free (also while this batch waits for its next attempt): a batch already
     * waiting takes it now. */
    start_waiting(fn);
    notify_watchers(fn);
}

void weir_disp_submit(struct weir_function *fn, struct weir_batch *b,
                      const struct weir_disp_policy *pol, weir_disp_done_fn done, void *arg)
{
    const struct weir_policy *row = weir_policy_of(pol->delivery);
    assert(row);
    if (row->accept)
        row->accept(fn, b, pol, done, arg);
    else
        weir_disp_submit_row(fn, b, pol, row, done, arg);
}

void weir_disp_submit_row(struct weir_function *fn, struct weir_batch *b,
                          const struct weir_disp_policy *pol, const struct weir_policy *row,
                          weir_disp_done_fn done, void *arg)
{
    struct job *j = weir_calloc(1, sizeof(*j));
    j->fn = fn;
    j->b = b;
    j->pol = pol;
    j->policy = row;
    j->at.pol = pol;
    j->at.component = fn->component;
    j->at.function_timeout_ms = (int64_t)fn->cfg->timeout * 1000;
    j->done = done;
    j->arg = arg;
    weir_list_init(&j->link);
    if (b->event.len > WEIR_INVOKE_PAYLOAD_MAX) {
        /* The mapping never closes such a batch (a record too large alone is rejected before);
         * should one come, Lambda would refuse it, so it is rejected here, not invoked. Deferred
         * so the caller never sees its callback re-entered. */
        weir_log_limited_for(WEIR_LOG_ERROR, fn->component, pol->mapping_name,
                             "event over the 6 MB invoke limit; records rejected mapping=%s "
                             "bytes=%zu records=%zu",
                             pol->mapping_name, b->event.len, b->n);
        for (size_t i = 0; i < b->n; i++)
            weir_record_reject(b->records[i],
                               "the event of its batch (%zu bytes) is over the "
                               "6 MB invoke payload limit",
                               b->event.len);
        job_finish_later(j);
        return;
    }
    weir_list_push_back(&fn->waiting, &j->link);
    start_waiting(fn);
}

void weir_disp_finish_later(struct weir_function *fn, struct weir_batch *b,
                            const struct weir_disp_policy *pol, weir_disp_done_fn done, void *arg)
{
    struct job *j = weir_calloc(1, sizeof(*j));
    j->fn = fn;
    j->b = b;
    j->pol = pol;
    j->done = done;
    j->arg = arg;
    weir_list_init(&j->link);
    job_finish_later(j);
}

void weir_function_hold(struct weir_function *fn, struct weir_hold *h)
{
    weir_list_push_back(&fn->holds, &h->link);
}

void weir_function_unhold(struct weir_hold *h)
{
    weir_list_remove(&h->link);
}

bool weir_function_aborting(const struct weir_function *fn)
{
    return fn->aborting;
}

void weir_disp_abort(struct weir_function *fn)
{
    struct job *j;
    fn->aborting = true;
    while ((j = job_of(weir_list_pop_front(&fn->running_jobs)))) {
        fn->ops->cancel(j->inv);
        j->inv = NULL;
        j->ep->busy--;
        fn->running--;
        /* The function may have run: the records come back as a new receive. */
        weir_batch_set_verdicts(j->b, WEIR_VERDICT_RETRY);
        job_finish(j);
    }
    while ((j = job_of(weir_list_pop_front(&fn->delayed)))) {
        weir_timer_stop(j->timer);
        weir_batch_set_verdicts(j->b, WEIR_VERDICT_RELEASE);
        job_finish(j);
    }
    while ((j = job_of(weir_list_pop_front(&fn->waiting)))) {
        weir_batch_set_verdicts(j->b, WEIR_VERDICT_RELEASE);
        job_finish(j);
    }
    struct weir_list *node;
    while ((node = weir_list_pop_front(&fn->holds))) {
        struct weir_hold *h = weir_list_entry(node, struct weir_hold, link);
        weir_list_init(&h->link);
        h->abort(h);
    }
    fn->aborting = false;
}

static void free_jobs(struct weir_function *fn, struct weir_list *list)
{
    struct job *j;
    while ((j = job_of(weir_list_pop_front(list)))) {
        if (j->inv)
            fn->ops->cancel(j->inv);
        weir_batch_free(j->b);
        job_free(j);
    }
}

void weir_function_free(struct weir_function *fn)
{
    if (!fn)
        return;
    free_jobs(fn, &fn->running_jobs);
    free_jobs(fn, &fn->delayed);
    free_jobs(fn, &fn->waiting);
    free_jobs(fn, &fn->refused);
    for (size_t i = 0; i < fn->n_eps; i++)
        if (fn->eps[i].t)
            fn->ops->free(fn->eps[i].t);
    free(fn->eps);
    free(fn->watchers);
    free(fn);
}
