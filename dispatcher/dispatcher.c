/* The dispatcher: functions (endpoint pools, reserved concurrency), invocations, outcome
 * classification and the retry policy that turns an outcome into a verdict per record.
 * It must never parse a source protocol; it sees records only through ids and deadlines. */
#include "dispatcher/dispatcher.h"

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
#include "mapping/encode.h"

/* Throttled invocations (the function never ran) are retried with backoff from 100 ms up to 5 s
 * while the records' leases allow; AWS does the same for SQS until the visibility window ends. */
#define THROTTLE_BACKOFF_FIRST_MS 100
#define THROTTLE_BACKOFF_MAX_MS   5000
/* Do not start an invocation whose records' lease ends this soon: another consumer may get them. */
#define LEASE_MARGIN_MS 200

struct endpoint {
    struct weir_target *t;
    size_t busy;
};

struct job {
    struct weir_function *fn;
    struct weir_batch *b;
    const struct weir_disp_policy *pol;
    weir_disp_done_fn done;
    void *arg;
    struct endpoint *ep;
    struct weir_invocation *inv;
    struct event *timer; /* throttle backoff, or the deferred finish */
    int64_t backoff_ms;
    char request_id[37];
    struct job *prev, *next; /* in fn->waiting or fn->running */
};

struct job_list {
    struct job *head, *tail;
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
    struct job_list waiting;
    struct job_list running_jobs;
    struct job_list backoff; /* throttled jobs waiting for their timer */
    struct job_list refused; /* over the payload limit, handed back on the next loop turn */
    struct watcher *watchers;
    size_t n_watchers;
    bool notifying;
};

static void list_push(struct job_list *l, struct job *j)
{
    j->next = NULL;
    j->prev = l->tail;
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
}

static void list_remove(struct job_list *l, struct job *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        l->head = j->next;
    if (j->next)
        j->next->prev = j->prev;
    else
        l->tail = j->prev;
    j->prev = j->next = NULL;
}

static struct job *list_pop(struct job_list *l)
{
    struct job *j = l->head;
    if (j)
        list_remove(l, j);
    return j;
}

const char *weir_function_name(const struct weir_function *fn)
{
    return fn->cfg->name;
}

struct weir_function *weir_function_new(const struct weir_function_cfg *cfg,
                                        struct event_base *base, struct weir_err *err)
{
    return weir_function_new_with(cfg, cfg->n_urls ? &weir_target_http : &weir_target_exec, base,
                                  err);
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
    for (const struct job *j = fn->waiting.head; j && slots; j = j->next)
        slots--;
    return slots;
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
    if (j->timer)
        event_free(j->timer);
    free(j);
}

/* Hands the batch back and forgets the job. */
static void job_finish(struct job *j)
{
    struct weir_batch *b = j->b;
    weir_disp_done_fn done = j->done;
    void *arg = j->arg;
    job_free(j);
    done(arg, b);
}

static void start_waiting(struct weir_function *fn);
static void on_invoked(void *arg, struct weir_invoke_result *res);

static void apply_failure(struct job *j, enum weir_verdict v)
{
    weir_batch_set_verdicts(j->b, v);
}

static void job_start(struct job *j)
{
    struct weir_function *fn = j->fn;
    struct weir_batch *b = j->b;
    int64_t timeout_ms = (int64_t)fn->cfg->timeout * 1000;
    int64_t deadline = weir_batch_deadline(b);
    if (deadline && weir_clock_mono_ms() + LEASE_MARGIN_MS >= deadline) {
        /* The lease ran out while the batch waited: the source may already have handed these
         * records to another consumer, so invoking now would only duplicate work. */
        weir_log_limited(WEIR_LOG_WARN, fn->component,
                         "mapping %s: lease ended before the batch could be invoked; records "
                         "return to the source records=%zu",
                         j->pol->mapping_name, b->n);
        apply_failure(j, WEIR_VERDICT_RETRY);
        job_finish(j);
        return;
    }
    j->ep = idle_endpoint(fn);
    j->ep->busy++;
    fn->running++;
    b->invocations++;
    list_push(&fn->running_jobs, j);
    weir_uuid4(j->request_id);
    weir_debug(fn->component, "invoke mapping=%s request_id=%s records=%zu bytes=%zu",
               j->pol->mapping_name, j->request_id, b->n, b->event.len);
    j->inv = fn->ops->invoke(j->ep->t, b->event.data, b->event.len, timeout_ms, on_invoked, j);
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
    while (fn->waiting.head && has_slot(fn))
        job_start(list_pop(&fn->waiting));
}

static void on_backoff_done(evutil_socket_t fd, short what, void *arg)
{
    struct job *j = arg;
    list_remove(&j->fn->backoff, j);
    list_push(&j->fn->waiting, j);
    start_waiting(j->fn);
}

static bool retry_throttled(struct job *j)
{
    struct weir_function *fn = j->fn;
    int64_t deadline = weir_batch_deadline(j->b);
    j->backoff_ms = j->backoff_ms ? j->backoff_ms * 2 : THROTTLE_BACKOFF_FIRST_MS;
    if (j->backoff_ms > THROTTLE_BACKOFF_MAX_MS)
        j->backoff_ms = THROTTLE_BACKOFF_MAX_MS;
    int64_t retry_at = weir_clock_mono_ms() + j->backoff_ms;
    if (deadline && retry_at + (int64_t)fn->cfg->timeout * 1000 + LEASE_MARGIN_MS > deadline)
        return false;
    if (!j->timer)
        j->timer = evtimer_new(fn->base, on_backoff_done, j);
    struct timeval tv = {.tv_sec = j->backoff_ms / 1000, .tv_usec = (j->backoff_ms % 1000) * 1000};
    list_push(&fn->backoff, j);
    evtimer_add(j->timer, &tv);
    return true;
}

static void on_invoked(void *arg, struct weir_invoke_result *res)
{
    struct job *j = arg;
    struct weir_function *fn = j->fn;
    struct weir_batch *b = j->b;
    list_remove(&fn->running_jobs, j);
    j->inv = NULL;
    j->ep->busy--;
    fn->running--;

    struct weir_classified c;
    weir_outcome_classify(res, b, j->pol->report_batch_item_failures, &c);
    long elapsed_ms = (long)(res->elapsed_us / 1000);
    switch (c.outcome) {
    case WEIR_OUTCOME_OK:
        weir_batch_set_verdicts(b, WEIR_VERDICT_DONE);
        weir_debug(fn->component, "ok mapping=%s request_id=%s records=%zu elapsed_ms=%ld",
                   j->pol->mapping_name, j->request_id, b->n, elapsed_ms);
        break;
    case WEIR_OUTCOME_PARTIAL:
        weir_batch_set_verdicts(b, WEIR_VERDICT_DONE);
        for (size_t i = 0; i < c.n_failed; i++)
            b->records[c.failed[i]]->verdict = WEIR_VERDICT_RETRY;
        weir_info(fn->component,
                  "partial batch response mapping=%s request_id=%s records=%zu failed=%zu",
                  j->pol->mapping_name, j->request_id, b->n, c.n_failed);
        break;
    case WEIR_OUTCOME_THROTTLED:
        weir_log_limited(WEIR_LOG_WARN, fn->component, "throttled mapping=%s: %s",
                         j->pol->mapping_name, c.why);
        if (retry_throttled(j)) {
            weir_classified_deinit(&c);
            /* The slot is free while this batch backs off: a batch already waiting takes it now,
             * not only after the backoff. */
            start_waiting(fn);
            notify_watchers(fn);
            return;
        }
        apply_failure(j, WEIR_VERDICT_RETRY);
        break;
    default:
        /* Queue semantics: the whole batch fails and each message comes back after its
         * visibility timeout with its receive count raised, until the redrive policy takes it. */
        weir_log_limited(WEIR_LOG_WARN, fn->component, "%s mapping=%s records=%zu: %s",
                         weir_outcome_name(c.outcome), j->pol->mapping_name, b->n, c.why);
        apply_failure(j, WEIR_VERDICT_RETRY);
        break;
    }
    weir_classified_deinit(&c);
    job_finish(j);
    start_waiting(fn);
    notify_watchers(fn);
}

static void on_refused_payload(evutil_socket_t fd, short what, void *arg)
{
    struct job *j = arg;
    list_remove(&j->fn->refused, j);
    job_finish(j);
}

void weir_disp_submit(struct weir_function *fn, struct weir_batch *b,
                      const struct weir_disp_policy *pol, weir_disp_done_fn done, void *arg)
{
    struct job *j = weir_calloc(1, sizeof(*j));
    j->fn = fn;
    j->b = b;
    j->pol = pol;
    j->done = done;
    j->arg = arg;
    if (b->event.len > WEIR_INVOKE_PAYLOAD_MAX) {
        /* Lambda refuses a synchronous payload over 6 MB; the records go back to the source and
         * its redrive policy decides. Deferred so the caller never sees its callback re-entered. */
        weir_log_limited(WEIR_LOG_ERROR, fn->component,
                         "mapping %s: event of %zu bytes is over the 6 MB invoke limit; records "
                         "return to the source records=%zu",
                         pol->mapping_name, b->event.len, b->n);
        weir_batch_set_verdicts(b, WEIR_VERDICT_RETRY);
        j->timer = evtimer_new(fn->base, on_refused_payload, j);
        list_push(&fn->refused, j);
        struct timeval zero = {0, 0};
        evtimer_add(j->timer, &zero);
        return;
    }
    list_push(&fn->waiting, j);
    start_waiting(fn);
}

void weir_disp_abort(struct weir_function *fn)
{
    struct job *j;
    while ((j = list_pop(&fn->running_jobs))) {
        fn->ops->cancel(j->inv);
        j->inv = NULL;
        j->ep->busy--;
        fn->running--;
        /* The function may have run: the records come back as a new receive. */
        apply_failure(j, WEIR_VERDICT_RETRY);
        job_finish(j);
    }
    while ((j = list_pop(&fn->backoff))) {
        evtimer_del(j->timer);
        apply_failure(j, WEIR_VERDICT_RELEASE);
        job_finish(j);
    }
    while ((j = list_pop(&fn->waiting))) {
        apply_failure(j, WEIR_VERDICT_RELEASE);
        job_finish(j);
    }
}

static void free_jobs(struct weir_function *fn, struct job_list *l)
{
    struct job *j;
    while ((j = list_pop(l))) {
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
    free_jobs(fn, &fn->backoff);
    free_jobs(fn, &fn->waiting);
    free_jobs(fn, &fn->refused);
    for (size_t i = 0; i < fn->n_eps; i++)
        if (fn->eps[i].t)
            fn->ops->free(fn->eps[i].t);
    free(fn->eps);
    free(fn->watchers);
    free(fn);
}
