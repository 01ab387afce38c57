/* The asynchronous invocation queue and its two policy rows. One queue per function, as AWS
 * keeps one: accepted events are stored durably (store/async.h), taken when due as the function
 * has free slots, invoked one event per invocation, and driven to their end by reference section
 * 3.2: function errors retried maximum_retry_attempts times after the configured delays,
 * throttles retried with backoff from 1 s to 5 min, events older than
 * maximum_event_age_in_seconds discarded before any attempt; then the invocation record to
 * on_success or on_failure, the raw event to the dead-letter target, and the row deleted. Only
 * what is taken lives in memory, so a backlog of any size waits on disk. Must never parse a
 * source protocol or speak a destination's. */
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "connectors/destination.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/mem.h"
#include "dispatcher/policy.h"
#include "store/async.h"

/* Events taken from the store and not yet finished, per function, at most. */
#define WORKING_MAX 1024
/* Taken ahead of the function's free slots: the events that wait in memory for a slot, so one
 * freeing finds its next event there, not a round trip to the store away. */
#define READ_AHEAD 64
/* AWS: a throttled event is retried after 1 s at first, then ever later, up to 5 minutes. */
#define THROTTLE_FIRST_MS 1000
#define THROTTLE_MAX_MS   (5 * 60 * 1000)
/* A destination that failed is tried again on the same schedule. */
#define SINK_RETRY_FIRST_MS 1000
#define SINK_RETRY_MAX_MS   (5 * 60 * 1000)
/* AWS cuts a dead letter's ErrorMessage attribute at 1 KB. */
#define ERROR_MESSAGE_MAX 1024

enum sink { SINK_SUCCESS, SINK_FAILURE, SINK_DEAD_LETTER, SINK_COUNT };

static const char *const sink_names[SINK_COUNT] = {"on_success", "on_failure",
                                                   "dead_letter_config"};

struct weir_async_queue {
    struct weir_function *fn;
    const struct weir_function_cfg *cfg;
    struct weir_async_store *store;
    struct event_base *base;
    char comp[96];
    char arn[256]; /* the function's, qualified with $LATEST as AWS writes it in records */
    struct weir_destination *sinks[SINK_COUNT];
    char sink_names_safe[SINK_COUNT][256];
    struct weir_disp_policy pol; /* the attempts' */
    struct weir_timer *timer;    /* the next due event */
    struct weir_list taken;      /* what a take brings back */
    struct weir_list ready;      /* taken, waiting for a slot of the function (ev->link) */
    size_t n_ready;
    struct weir_list works; /* every event taken and not yet written back */
    bool started, stopping, taking, take_again;
    void (*stopped)(void *arg);
    void *stopped_arg;
    struct weir_async_stats stats;
};

/* One event taken from the store, until it is written back. */
struct work {
    struct weir_async_queue *q;
    struct weir_async_event *ev;
    unsigned puts_out;
    bool removing;            /* its last write to the store was the removal */
    int64_t write_backoff_ms; /* after a write the store refused */
    struct weir_timer *retry; /* that write again */
    struct weir_list link;    /* in q->works */
};

struct accept {
    struct weir_async_queue *q;
    struct weir_list events;
    weir_async_accepted_fn done;
    void *arg;
    /* A batch a mapping handed over (the async row), instead of done. */
    struct weir_batch *b;
    weir_disp_done_fn batch_done;
    void *batch_arg;
};

static void pump(struct weir_async_queue *q);

/* Calls the stop callback once nothing is taken and no take is out. */
static bool check_stopped(struct weir_async_queue *q)
{
    if (!q->stopping)
        return false;
    if (q->stats.working == 0 && !q->taking && q->stopped) {
        void (*done)(void *) = q->stopped;
        q->stopped = NULL;
        done(q->stopped_arg);
    }
    return true;
}

static void work_free(struct work *w)
{
    weir_list_remove(&w->link);
    weir_timer_free(w->retry);
    weir_async_event_free(w->ev);
    free(w);
}

static void work_finished(struct weir_async_queue *q, struct work *w)
{
    work_free(w);
    q->stats.working--;
    if (!check_stopped(q))
        pump(q);
}

static int64_t next_backoff(int64_t last, int64_t first, int64_t max)
{
    int64_t next = last ? last * 2 : first;
    return next > max ? max : next;
}

static void write_again(void *arg);

static void on_written(void *arg, weir_status st, const char *error)
{
    struct work *w = arg;
    struct weir_async_queue *q = w->q;
    if (st == WEIR_OK || q->stopping) {
        /* Stopping with a write refused: the row stays as it was, marked taken, and the next
         * start takes it again. */
        if (st != WEIR_OK)
            weir_log_limited(WEIR_LOG_ERROR, q->comp,
                             "async: cannot write an event back to the store; it is taken "
                             "again when weir starts request_id=%s error=\"%s\"",
                             w->ev->request_id, error);
        work_finished(q, w);
        return;
    }
    /* The store refused (a full disk, an I/O error): the same write again, later; the event
     * stays taken meanwhile, so nothing else picks it up. */
    w->write_backoff_ms = next_backoff(w->write_backoff_ms, SINK_RETRY_FIRST_MS, SINK_RETRY_MAX_MS);
    weir_log_limited(WEIR_LOG_ERROR, q->comp,
                     "async: cannot write an event back to the store; trying again "
                     "request_id=%s delay_ms=%lld error=\"%s\"",
                     w->ev->request_id, (long long)w->write_backoff_ms, error);
    if (!w->retry)
        w->retry = weir_timer_new(q->base, write_again, w);
    weir_timer_after(w->retry, w->write_backoff_ms);
}

/* Writes the event's new state back; it is taken again when due. */
static void write_back(struct work *w)
{
    w->removing = false;
    w->q->store->ops->update(w->q->store, w->ev, on_written, w);
}

static void remove_event(struct work *w)
{
    w->removing = true;
    w->q->store->ops->remove(w->q->store, w->ev, on_written, w);
}

static void write_again(void *arg)
{
    struct work *w = arg;
    if (w->removing)
        remove_event(w);
    else
        write_back(w);
}

/* ---- the records destinations get -------------------------------------------------------- */

/* Appends bytes as JSON: as they are when they are a JSON text, else as a JSON string. */
static void append_json_or_string(struct weir_buf *out, const char *data, size_t len)
{
    json_error_t jerr;
    json_t *j = len ? json_loadb(data, len,
                                 JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &jerr)
                    : NULL;
    if (j) {
        json_decref(j);
        weir_buf_append(out, data, len);
    } else if (!len) {
        weir_buf_append_str(out, "null");
    } else {
        weir_buf_append_json_str(out, data, len);
    }
}

/* The invocation record of reference section 3.5. */
static void build_record(const struct weir_async_queue *q, const struct weir_async_event *ev,
                         struct weir_buf *out)
{
    char now[25];
    weir_clock_iso8601(weir_clock_wall_ms(), now);
    weir_buf_printf(out, "{\"version\":\"1.0\",\"timestamp\":\"%s\",\"requestContext\":", now);
    weir_buf_printf(out, "{\"requestId\":\"%s\",\"functionArn\":", ev->request_id);
    weir_buf_append_json_str(out, q->arn, strlen(q->arn));
    weir_buf_printf(out, ",\"condition\":\"%s\",\"approximateInvokeCount\":%u},",
                    weir_async_outcome_name(ev->outcome), ev->invokes);
    weir_buf_append_str(out, "\"requestPayload\":");
    append_json_or_string(out, ev->payload, ev->payload_len);
    /* An event the function never ran (aged out while throttled) has no response to tell. */
    bool answered = ev->invokes > 0 && ev->last_status != 0;
    if (answered) {
        weir_buf_printf(out,
                        ",\"responseContext\":{\"statusCode\":%ld,\"executedVersion\":\"$LATEST\"",
                        ev->last_status);
        if (ev->outcome != WEIR_ASYNC_SUCCESS && ev->last_error) {
            weir_buf_append_str(out, ",\"functionError\":");
            weir_buf_append_json_str(out, ev->last_error, strlen(ev->last_error));
        }
        weir_buf_append_str(out, "},\"responsePayload\":");
        append_json_or_string(out, ev->last_response, ev->last_response_len);
    }
    weir_buf_append_char(out, '}');
}

/* Cuts s to at most max bytes without splitting a UTF-8 character. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* The dead letter's attributes (reference 3.4): RequestID, ErrorCode, ErrorMessage. */
static void build_dead_letter_attrs(const struct weir_async_event *ev, struct weir_buf *out)
{
    char msg[ERROR_MESSAGE_MAX + 1] = "";
    if (ev->last_response && ev->last_response_len) {
        /* The function's own errorMessage when it gave one, else what it answered. */
        json_error_t jerr;
        json_t *j = json_loadb(ev->last_response, ev->last_response_len, 0, &jerr);
        const char *m = json_string_value(json_object_get(j, "errorMessage"));
        const char *src = m ? m : ev->last_response;
        size_t len = m ? strlen(m) : ev->last_response_len;
        len = utf8_cut(src, len, ERROR_MESSAGE_MAX);
        memcpy(msg, src, len);
        msg[len] = '\0';
        json_decref(j);
    } else if (ev->last_error) {
        snprintf(msg, sizeof(msg), "%s", ev->last_error);
    } else if (ev->outcome == WEIR_ASYNC_EVENT_AGE_EXCEEDED) {
        snprintf(msg, sizeof(msg), "the event was older than maximum_event_age_in_seconds");
    }
    weir_buf_append_str(out, "{\"RequestID\":{\"dataType\":\"String\",\"stringValue\":");
    weir_buf_append_json_str(out, ev->request_id, strlen(ev->request_id));
    weir_buf_printf(out,
                    "},\"ErrorCode\":{\"dataType\":\"Number\",\"stringValue\":\"%ld\"},"
                    "\"ErrorMessage\":{\"dataType\":\"String\",\"stringValue\":",
                    ev->last_status);
    weir_buf_append_json_str(out, msg, strlen(msg));
    weir_buf_append_str(out, "}}");
}

/* ---- destinations ------------------------------------------------------------------------- */

struct put {
    struct work *w;
    enum sink sink;
};

static void deliver(struct work *w);

static void after_puts(struct work *w)
{
    struct weir_async_event *ev = w->ev;
    if (ev->pending_sinks == 0) {
        remove_event(w);
        return;
    }
    /* Some destination did not take it: the outcome is kept with the event, and only the
     * destinations still missing get it when it is taken again. */
    ev->backoff_ms = next_backoff(ev->backoff_ms, SINK_RETRY_FIRST_MS, SINK_RETRY_MAX_MS);
    ev->due_ms = weir_clock_wall_ms() + ev->backoff_ms;
    write_back(w);
}

static void on_put(void *arg, weir_status st, const char *error)
{
    struct put *p = arg;
    struct work *w = p->w;
    struct weir_async_queue *q = w->q;
    if (st == WEIR_OK) {
        w->ev->pending_sinks &= ~(1u << p->sink);
        q->stats.delivered++;
    } else {
        q->stats.delivery_failures++;
        weir_log_limited_for(WEIR_LOG_WARN, q->comp, sink_names[p->sink],
                             "async: destination failed; it is tried again later "
                             "destination=%s request_id=%s error=\"%s\"",
                             q->sink_names_safe[p->sink], w->ev->request_id, error);
    }
    free(p);
    if (--w->puts_out == 0)
        after_puts(w);
}

static void deliver(struct work *w)
{
    struct weir_async_queue *q = w->q;
    struct weir_async_event *ev = w->ev;
    struct weir_buf record, attrs;
    weir_buf_init(&record);
    weir_buf_init(&attrs);
    /* Counted first, so a destination that answers at once cannot finish the work midway. */
    w->puts_out = 1;
    for (int s = 0; s < SINK_COUNT; s++) {
        if (!(ev->pending_sinks & (1u << s)))
            continue;
        if (!q->sinks[s]) { /* no longer configured: nothing to wait for */
            ev->pending_sinks &= ~(1u << s);
            continue;
        }
        struct weir_message msg = {.id = ev->request_id};
        if (s == SINK_DEAD_LETTER) {
            if (!attrs.len)
                build_dead_letter_attrs(ev, &attrs);
            msg.body = ev->payload;
            msg.body_len = ev->payload_len;
            msg.attrs_json = attrs.data;
        } else {
            if (!record.len)
                build_record(q, ev, &record);
            msg.body = record.data;
            msg.body_len = record.len;
        }
        struct put *p = weir_calloc(1, sizeof(*p));
        p->w = w;
        p->sink = (enum sink)s;
        w->puts_out++;
        q->sinks[s]->ops->put(q->sinks[s], &msg, on_put, p);
    }
    weir_buf_deinit(&record);
    weir_buf_deinit(&attrs);
    if (--w->puts_out == 0)
        after_puts(w);
}

/* The event has its outcome: log it once, then its destinations. */
static void decide(struct work *w, enum weir_async_outcome outcome)
{
    struct weir_async_queue *q = w->q;
    struct weir_async_event *ev = w->ev;
    ev->outcome = outcome;
    ev->backoff_ms = 0;
    ev->pending_sinks = 0;
    if (outcome == WEIR_ASYNC_SUCCESS) {
        q->stats.succeeded++;
        if (q->sinks[SINK_SUCCESS])
            ev->pending_sinks |= 1u << SINK_SUCCESS;
        weir_debug(q->comp, "async: succeeded request_id=%s attempts=%u origin=%s", ev->request_id,
                   ev->invokes, ev->origin);
    } else {
        if (outcome == WEIR_ASYNC_RETRIES_EXHAUSTED)
            q->stats.retries_exhausted++;
        else
            q->stats.event_age_exceeded++;
        if (q->sinks[SINK_FAILURE])
            ev->pending_sinks |= 1u << SINK_FAILURE;
        if (q->sinks[SINK_DEAD_LETTER])
            ev->pending_sinks |= 1u << SINK_DEAD_LETTER;
        weir_log_limited(WEIR_LOG_WARN, q->comp,
                         "async: event failed: %s request_id=%s attempts=%u age_s=%lld "
                         "origin=%s error=\"%s\"%s",
                         weir_async_outcome_name(outcome), ev->request_id, ev->invokes,
                         (long long)((weir_clock_wall_ms() - ev->accepted_ms) / 1000), ev->origin,
                         ev->last_error ? ev->last_error : "",
                         ev->pending_sinks ? ""
                                           : " (no on_failure destination or dead_letter_config: "
                                             "the event is discarded)");
    }
    if (ev->pending_sinks)
        deliver(w);
    else
        remove_event(w);
}

/* ---- attempts ----------------------------------------------------------------------------- */

static bool too_old(const struct weir_async_queue *q, const struct weir_async_event *ev,
                    int64_t at_ms)
{
    return at_ms - ev->accepted_ms >= (int64_t)q->cfg->async.maximum_event_age_in_seconds * 1000;
}

static void on_attempted(void *arg, struct weir_batch *b)
{
    struct work *w = arg;
    struct weir_async_queue *q = w->q;
    struct weir_async_event *ev = w->ev;
    const struct weir_response *resp = &b->response;
    enum weir_verdict v = b->records[0]->verdict;
    int64_t now = weir_clock_wall_ms();
    if (b->invocations > 0)
        ev->invokes++;
    if (v == WEIR_VERDICT_DONE) {
        weir_async_event_set_answer(ev, resp->status, NULL, resp->payload.data, resp->payload.len);
        weir_batch_free(b);
        decide(w, WEIR_ASYNC_SUCCESS);
        return;
    }
    char why[sizeof(resp->why)];
    snprintf(why, sizeof(why), "%s", resp->why);
    if (resp->ran) {
        /* The function ran and failed (an error, a timeout, a crash): one retry used. */
        ev->function_errors++;
        /* A timeout or a crash answered nothing; AWS reports such an invocation as status 200
         * with a function error, as it does every function error. */
        weir_async_event_set_answer(ev, resp->status ? resp->status : 200, resp->function_error,
                                    resp->payload.data, resp->payload.len);
        weir_batch_free(b);
        if (ev->function_errors > (uint32_t)q->cfg->async.maximum_retry_attempts) {
            decide(w, WEIR_ASYNC_RETRIES_EXHAUSTED);
            return;
        }
        q->stats.retried++;
        int delay_s = q->cfg->async.retry_delays_in_seconds[ev->function_errors > 1 ? 1 : 0];
        ev->due_ms = now + (int64_t)delay_s * 1000;
        weir_log_limited(WEIR_LOG_INFO, q->comp,
                         "async: function error, retrying request_id=%s retry=%u of %d "
                         "delay_s=%d why=\"%s\"",
                         ev->request_id, ev->function_errors, q->cfg->async.maximum_retry_attempts,
                         delay_s, why);
    } else {
        /* It never ran (throttled, unreachable, or aborted at shutdown): no retry used. A
         * function error already told stays the answer destinations see. */
        q->stats.throttled++;
        if (ev->function_errors == 0)
            weir_async_event_set_answer(ev, 0, resp->why[0] ? resp->why : "not invoked", NULL, 0);
        weir_batch_free(b);
        ev->backoff_ms = next_backoff(ev->backoff_ms, THROTTLE_FIRST_MS, THROTTLE_MAX_MS);
        ev->due_ms = now + ev->backoff_ms;
        /* Not past the moment it ages out: then it ends without another attempt. */
        int64_t ages_out =
            ev->accepted_ms + (int64_t)q->cfg->async.maximum_event_age_in_seconds * 1000;
        if (ev->due_ms > ages_out)
            ev->due_ms = ages_out;
        weir_log_limited(WEIR_LOG_WARN, q->comp,
                         "async: the function was not reached; trying again later "
                         "request_id=%s delay_ms=%lld why=\"%s\"",
                         ev->request_id, (long long)(ev->due_ms - now), why);
    }
    write_back(w);
}

static void invoke(struct work *w)
{
    struct weir_async_queue *q = w->q;
    struct weir_async_event *ev = w->ev;
    struct weir_batch *b = weir_batch_new(0);
    struct weir_record *r = weir_record_new();
    r->id = weir_strdup(ev->request_id);
    r->data = weir_strdup("");
    weir_batch_take(b, r);
    weir_buf_append(&b->event, ev->payload, ev->payload_len);
    q->stats.attempts++;
    weir_disp_submit_row(q->fn, b, &q->pol, &weir_policy_async_attempt, on_attempted, w);
}

/* ev was taken (and counted in working): its attempt, or its destinations, begin. */
static void begin(struct weir_async_queue *q, struct weir_async_event *ev)
{
    struct work *w = weir_calloc(1, sizeof(*w));
    w->q = q;
    w->ev = ev;
    weir_list_push_back(&q->works, &w->link);
    if (ev->outcome != WEIR_ASYNC_UNDECIDED)
        deliver(w); /* decided before; a destination still has to take it */
    else if (too_old(q, ev, weir_clock_wall_ms()))
        decide(w, WEIR_ASYNC_EVENT_AGE_EXCEEDED);
    else
        invoke(w);
}

/* ---- taking due events -------------------------------------------------------------------- */

static void arm(struct weir_async_queue *q, int64_t due_wall_ms)
{
    if (due_wall_ms < 0)
        return;
    int64_t delay = due_wall_ms - weir_clock_wall_ms();
    int64_t at = weir_clock_mono_ms() + (delay > 0 ? delay : 0);
    if (!weir_timer_armed(q->timer) || weir_timer_due(q->timer) > at)
        weir_timer_at(q->timer, at);
}

/* Begins what is ready while the function has slots: events wait here, not at the function,
 * so the function's free slots stay true for its other callers (mappings, the Invoke API), and
 * an event's age is checked when it is about to be invoked, however long it waited. */
static void start_ready(struct weir_async_queue *q)
{
    struct weir_list *node;
    while (q->n_ready && weir_function_free_slots(q->fn) > 0 &&
           (node = weir_list_pop_front(&q->ready))) {
        q->n_ready--;
        begin(q, weir_list_entry(node, struct weir_async_event, link));
    }
}

/* Drops what waits for a slot (stopping): those rows are taken by this process only in its
 * memory, and the next start takes them again. */
static void drop_ready(struct weir_async_queue *q)
{
    struct weir_list *node;
    while ((node = weir_list_pop_front(&q->ready))) {
        weir_async_event_free(weir_list_entry(node, struct weir_async_event, link));
        q->n_ready--;
        q->stats.working--;
    }
}

static void on_taken(void *arg, weir_status st, const char *error, struct weir_list *events,
                     int64_t next_due_ms)
{
    struct weir_async_queue *q = arg;
    q->taking = false;
    if (q->stopping) {
        /* Stopped meanwhile: what was taken stays marked taken in the store, and the next
         * start takes it again. */
        struct weir_list *node;
        while ((node = weir_list_pop_front(events)))
            weir_async_event_free(weir_list_entry(node, struct weir_async_event, link));
        check_stopped(q);
        return;
    }
    if (st != WEIR_OK) {
        weir_log_limited(WEIR_LOG_ERROR, q->comp,
                         "async: cannot read due events from the store; trying again in 1 s "
                         "error=\"%s\"",
                         error);
        weir_timer_after(q->timer, 1000);
        return;
    }
    size_t n = 0;
    struct weir_list *node;
    while ((node = weir_list_pop_front(events))) {
        weir_list_push_back(&q->ready, node);
        q->n_ready++;
        q->stats.working++;
        n++;
    }
    arm(q, next_due_ms);
    start_ready(q);
    if (n || q->take_again)
        pump(q);
}

static void pump(struct weir_async_queue *q)
{
    if (!q->started || q->stopping)
        return;
    start_ready(q);
    if (q->taking) {
        q->take_again = true; /* something became due while that take ran */
        return;
    }
    /* A take brings what the free slots take now and READ_AHEAD more (an Event's payload may be
     * a megabyte: what waits in memory is bounded), up to WORKING_MAX at work; and it waits
     * until half that room is free, so each brings many — a take reads past every event held,
     * and one per finished event would cost more than the events. */
    size_t slots = weir_function_free_slots(q->fn);
    if (q->stats.working > WORKING_MAX / 2 || q->n_ready >= READ_AHEAD)
        return; /* an event finishing, or a slot freeing, calls pump again */
    size_t want = WORKING_MAX - q->stats.working;
    size_t enough = (slots < WORKING_MAX ? slots : WORKING_MAX) + READ_AHEAD - q->n_ready;
    if (want > enough)
        want = enough;
    q->taking = true;
    q->take_again = false;
    weir_timer_stop(q->timer);
    q->store->ops->take(q->store, q->cfg->name, weir_clock_wall_ms(), want, &q->taken, on_taken, q);
}

static void on_timer(void *arg)
{
    pump(arg);
}

static void on_slot_free(void *arg)
{
    pump(arg);
}

/* ---- accepting events --------------------------------------------------------------------- */

static void on_stored(void *arg, weir_status st, const char *error)
{
    struct accept *a = arg;
    struct weir_async_queue *q = a->q;
    struct weir_list *node = weir_list_pop_front(&a->events);
    struct weir_async_event *ev = weir_list_entry(node, struct weir_async_event, link);
    if (st == WEIR_OK) {
        q->stats.accepted++;
        weir_debug(q->comp, "async: accepted request_id=%s origin=%s bytes=%zu", ev->request_id,
                   ev->origin, ev->payload_len);
    } else {
        weir_log_limited(WEIR_LOG_ERROR, q->comp,
                         "async: cannot store an event; it is not accepted origin=%s "
                         "error=\"%s\"",
                         ev->origin, error);
    }
    if (a->b) {
        /* Done for the source once stored; otherwise it delivers the records again. */
        weir_batch_set_verdicts(a->b, st == WEIR_OK ? WEIR_VERDICT_DONE : WEIR_VERDICT_RETRY);
        a->batch_done(a->batch_arg, a->b);
    } else {
        a->done(a->arg, st, error, ev->request_id);
    }
    weir_async_event_free(ev);
    free(a);
    if (st == WEIR_OK)
        pump(q);
}

static struct accept *accept_new(struct weir_async_queue *q, const char *origin,
                                 const char *payload, size_t len)
{
    struct accept *a = weir_calloc(1, sizeof(*a));
    a->q = q;
    weir_list_init(&a->events);
    struct weir_async_event *ev = weir_async_event_new(q->cfg->name, origin, payload, len);
    weir_uuid4(ev->request_id);
    ev->accepted_ms = ev->due_ms = weir_clock_wall_ms();
    weir_list_push_back(&a->events, &ev->link);
    return a;
}

void weir_async_accept(struct weir_function *fn, const char *origin, const char *payload,
                       size_t len, weir_async_accepted_fn done, void *arg)
{
    struct weir_async_queue *q = weir_function_async(fn);
    /* weir run gives every function its queue before anything can accept events. */
    if (!q)
        abort();
    struct accept *a = accept_new(q, origin, payload, len);
    a->done = done;
    a->arg = arg;
    q->store->ops->put(q->store, &a->events, on_stored, a);
}

/* The async row: a mapping's batch (one event: S3 sends one record per event) is accepted into
 * the function's queue; the source hears "done" once it is stored. */
static void async_accept_batch(struct weir_function *fn, struct weir_batch *b,
                               const struct weir_disp_policy *pol, weir_disp_done_fn done,
                               void *arg)
{
    struct weir_async_queue *q = weir_function_async(fn);
    /* weir run opens the store for every function a mapping of this kind feeds. */
    if (!q)
        abort();
    char origin[96];
    snprintf(origin, sizeof(origin), "mapping/%s", pol->mapping_name);
    struct accept *a = accept_new(q, origin, b->event.data, b->event.len);
    a->b = b;
    a->batch_done = done;
    a->batch_arg = arg;
    q->store->ops->put(q->store, &a->events, on_stored, a);
}

static enum weir_policy_next async_judge(struct weir_attempt *at, struct weir_batch *b,
                                         const struct weir_classified *c, int64_t *delay_ms)
{
    /* AWS takes no batchItemFailures from an asynchronous invocation: any answer that is not
     * an error is a success. What follows a failure is the queue's (on_attempted). */
    bool ok = c->outcome == WEIR_OUTCOME_OK || c->outcome == WEIR_OUTCOME_PARTIAL;
    weir_batch_set_verdicts(b, ok ? WEIR_VERDICT_DONE : WEIR_VERDICT_RETRY);
    return WEIR_POLICY_FINISH;
}

const struct weir_policy weir_policy_async = {
    .name = "async",
    .accept = async_accept_batch,
};

const struct weir_policy weir_policy_async_attempt = {
    .name = "async-attempt",
    .keeps_response = true,
    .judge = async_judge,
};

/* ---- the queue ---------------------------------------------------------------------------- */

struct weir_async_queue *weir_async_queue_new(struct weir_function *fn,
                                              struct weir_async_store *store, const char *region,
                                              struct weir_err *err)
{
    const struct weir_function_cfg *cfg = weir_function_config(fn);
    struct weir_async_queue *q = weir_calloc(1, sizeof(*q));
    q->fn = fn;
    q->cfg = cfg;
    q->store = store;
    q->base = weir_function_base(fn);
    snprintf(q->comp, sizeof(q->comp), "function/%s", cfg->name);
    snprintf(q->arn, sizeof(q->arn), "arn:aws:lambda:%s:000000000000:function:%s:$LATEST", region,
             cfg->name);
    q->pol = (struct weir_disp_policy){.delivery = WEIR_DELIVERY_ASYNC, .mapping_name = "async"};
    weir_list_init(&q->taken);
    weir_list_init(&q->ready);
    weir_list_init(&q->works);
    const char *uris[SINK_COUNT] = {cfg->async.on_success, cfg->async.on_failure,
                                    cfg->dead_letter_target};
    for (int s = 0; s < SINK_COUNT; s++) {
        if (!uris[s])
            continue;
        weir_log_redact_uri(uris[s], q->sink_names_safe[s], sizeof(q->sink_names_safe[s]));
        struct weir_err derr = {{0}};
        q->sinks[s] = weir_destination_new(uris[s], q->base, &derr);
        if (!q->sinks[s]) {
            weir_err_set(err, "function %s: %s %s: %s", cfg->name, sink_names[s],
                         q->sink_names_safe[s], derr.msg);
            goto fail;
        }
    }
    q->timer = weir_timer_new(q->base, on_timer, q);
    weir_function_set_async(fn, q);
    return q;
fail:
    weir_async_queue_free(q);
    return NULL;
}

void weir_async_queue_start(struct weir_async_queue *q)
{
    q->started = true;
    weir_function_watch(q->fn, on_slot_free, q);
    pump(q);
}

void weir_async_queue_stop(struct weir_async_queue *q, void (*done)(void *arg), void *arg)
{
    q->stopping = true;
    weir_timer_stop(q->timer);
    weir_function_unwatch(q->fn, on_slot_free, q);
    q->stopped = done;
    q->stopped_arg = arg;
    drop_ready(q);
    /* A write waiting to be tried again is given up: its row stays taken for the next start. */
    struct weir_list *node, *tmp;
    weir_list_foreach_safe(node, tmp, &q->works)
    {
        struct work *w = weir_list_entry(node, struct work, link);
        if (w->retry && weir_timer_armed(w->retry))
            work_finished(q, w);
    }
    check_stopped(q);
}

const struct weir_async_stats *weir_async_queue_stats(const struct weir_async_queue *q)
{
    return &q->stats;
}

void weir_async_queue_free(struct weir_async_queue *q)
{
    if (!q)
        return;
    if (weir_function_async(q->fn) == q)
        weir_function_set_async(q->fn, NULL);
    weir_function_unwatch(q->fn, on_slot_free, q);
    weir_timer_free(q->timer);
    for (int s = 0; s < SINK_COUNT; s++)
        weir_destination_free(q->sinks[s]);
    struct weir_list *node;
    while ((node = weir_list_pop_front(&q->taken)))
        weir_async_event_free(weir_list_entry(node, struct weir_async_event, link));
    drop_ready(q);
    /* Work still out (a shutdown that gave up): nothing calls it back any more, since the
     * runtime freed the store first and frees the functions, whose attempts it is, next. Its
     * rows stay marked taken; the next start takes them again. */
    while ((node = weir_list_first(&q->works)))
        work_free(weir_list_entry(node, struct work, link));
    free(q);
}
