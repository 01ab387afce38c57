/* The stream policy (reference 1.4), for ordered sources: Kafka partitions, a Postgres slot. A
 * batch stays here until every record is done, so its lane stays blocked and its source's
 * checkpoint stays below it. Each attempt invokes what is left of the batch: all of it at first,
 * then the part a partial response asked for again (from its lowest reported record), or one half
 * after a bisection. Function errors and reported failures spend maximum_retry_attempts;
 * throttles are retried with backoff without spending it, never past a record's age; records older
 * than maximum_record_age_in_seconds are not invoked again. What is given up — retries spent,
 * records aged out, a record no event can hold — goes to the on_failure destination (the failure
 * record of reference 1.6, or, for a destination that takes records, the records themselves) and is
 * then done. A destination that fails is tried again: the lane waits, nothing is dropped. Must
 * never parse a source protocol or speak a destination's. */
#include <stdint.h>
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
#include "model/event.h"

/* A throttled attempt is tried again after 100 ms, doubling up to 5 s. */
#define THROTTLE_FIRST_MS 100
#define THROTTLE_MAX_MS   5000
/* So is an attempt after a function error: AWS retries a stream batch promptly. */
#define RETRY_FIRST_MS 100
#define RETRY_MAX_MS   5000
/* A destination that failed is tried again after 1 s, doubling up to 5 minutes. */
#define SINK_RETRY_FIRST_MS 1000
#define SINK_RETRY_MAX_MS   (5 * 60 * 1000)
/* AWS caps infinite retries at 10 when an on-failure destination is set (Kafka, reference 1.1). */
#define RETRIES_WITH_DESTINATION 10

/* The names AWS gives (reference 1.6); the record-age one is weir's choice (AWS documents none). */
#define CONDITION_RETRIES   "RetryAttemptsExhausted"
#define CONDITION_AGE       "RecordAgeExceeded"
#define CONDITION_TOO_LARGE "MaximumPayloadSizeExceeded"

struct weir_stream {
    struct weir_function *fn;
    const struct weir_stream_cfg *cfg;
    int max_retries; /* -1: infinite */
    struct weir_destination *on_failure;
    char dest_safe[256];
    char comp[96];
    char function_arn[256];
    struct weir_list runs; /* every batch held, also one already handed back with puts out */
    bool stopping;         /* the mapping stops: a failed batch is handed back, not retried */
    struct run *accepting; /* inside stream_accept: a batch done already goes back later */
    struct weir_stream_stats stats;
};

/* A run of the batch's records, by index: what an attempt invokes. */
struct range {
    size_t lo, hi;
    int retries; /* function errors and partial responses spent on it */
};

/* One write to the destination: which record (SIZE_MAX: the failure record of them all). */
struct put {
    struct run *run;
    size_t i;
};

struct run {
    struct weir_stream *s;
    struct weir_function *fn;
    struct weir_batch *b; /* NULL once handed back */
    const struct weir_disp_policy *pol;
    weir_disp_done_fn done;
    void *arg;
    struct range *ranges; /* still to do; the last is next */
    size_t n_ranges, cap_ranges;
    struct weir_batch *attempt; /* in flight: b itself, or a part of it borrowing its records */
    uint32_t invocations;       /* of the records now being attempted: approximateInvokeCount */
    uint32_t attempts;          /* submitted to the dispatcher, whether or not they ran */
    int64_t backoff_ms;
    int64_t throttle_ms;      /* the last throttle's backoff; 0 once the function ran */
    struct weir_timer *timer; /* the next attempt, or the destination again */
    struct weir_hold hold;    /* while waiting out the timer or the destination */
    bool holding;
    bool forgotten; /* its partition was revoked: it comes back, not done, without more attempts */
    /* Records being given up: written to the destination, then done. */
    struct weir_record **gone;
    size_t n_gone;
    const char *condition;
    struct weir_response last; /* the answer that gave them up (responseContext) */
    bool invoked;              /* whether the function ever ran for them */
    struct put *puts;          /* one per record given up, for a destination that takes records */
    bool *gone_written;        /* which of them it has: a retry writes only the others */
    unsigned puts_out;
    bool put_failed;
    struct weir_list link; /* in s->runs */
};

/* ---- life ---------------------------------------------------------------------------------- */

struct weir_stream *weir_stream_new(struct weir_function *fn, const struct weir_stream_cfg *cfg,
                                    const char *mapping_name, const char *region,
                                    struct event_base *base, struct weir_err *err)
{
    struct weir_stream *s = weir_calloc(1, sizeof(*s));
    s->fn = fn;
    s->cfg = cfg;
    weir_list_init(&s->runs);
    snprintf(s->comp, sizeof(s->comp), "mapping/%s", mapping_name);
    snprintf(s->function_arn, sizeof(s->function_arn), "arn:aws:lambda:%s:000000000000:function:%s",
             region, weir_function_name(fn));
    s->max_retries = cfg->maximum_retry_attempts;
    if (cfg->on_failure) {
        s->on_failure = weir_destination_new(cfg->on_failure, base, err);
        if (!s->on_failure) {
            free(s);
            return NULL;
        }
        weir_log_redact_uri(cfg->on_failure, s->dest_safe, sizeof(s->dest_safe));
        if (s->max_retries < 0) {
            s->max_retries = RETRIES_WITH_DESTINATION;
            weir_info(s->comp,
                      "maximum_retry_attempts is infinite and an on_failure destination is set: "
                      "retries capped at %d, as AWS does",
                      RETRIES_WITH_DESTINATION);
        }
    }
    return s;
}

static void run_free(struct run *run)
{
    weir_list_remove(&run->link);
    if (run->holding)
        weir_function_unhold(&run->hold);
    weir_timer_free(run->timer);
    /* An attempt still out belongs to the dispatcher's job, and with it b when it is b. */
    if (run->attempt == run->b)
        run->b = NULL;
    weir_batch_free(run->b);
    weir_buf_deinit(&run->last.payload);
    free(run->ranges);
    free(run->gone);
    free(run->puts);
    free(run->gone_written);
    free(run);
}

void weir_stream_free(struct weir_stream *s)
{
    if (!s)
        return;
    struct weir_list *node;
    while ((node = weir_list_first(&s->runs)))
        run_free(weir_list_entry(node, struct run, link));
    weir_destination_free(s->on_failure);
    free(s);
}

static void run_abort(struct run *run);

void weir_stream_stop(struct weir_stream *s)
{
    s->stopping = true;
    /* A batch waiting out a retry's backoff comes back now, not done; one being invoked, or
     * written to the destination, finishes that first. */
    struct weir_list *node, *tmp;
    weir_list_foreach_safe(node, tmp, &s->runs)
    {
        struct run *run = weir_list_entry(node, struct run, link);
        if (run->b && run->holding && !run->n_gone)
            run_abort(run);
    }
}

void weir_stream_forget(struct weir_stream *s, int32_t partition)
{
    struct weir_list *node, *tmp;
    weir_list_foreach_safe(node, tmp, &s->runs)
    {
        struct run *run = weir_list_entry(node, struct run, link);
        if (!run->b || !run->b->n || run->b->records[0]->partition != partition)
            continue;
        run->forgotten = true;
        /* Waiting out a backoff: back now. Being invoked, or written to the destination: back
         * when that ends. */
        if (run->holding && !run->n_gone)
            run_abort(run);
    }
}

const struct weir_stream_stats *weir_stream_stats(const struct weir_stream *s)
{
    return &s->stats;
}

/* ---- handing back ---------------------------------------------------------------------------- */

static void unhold(struct run *run)
{
    if (run->holding) {
        weir_function_unhold(&run->hold);
        run->holding = false;
    }
}

/* Gives the batch back; the run lives on only while destination puts are out. */
static void run_finish(struct run *run)
{
    struct weir_batch *b = run->b;
    weir_disp_done_fn done = run->done;
    void *arg = run->arg;
    bool accepting = run->s->accepting == run;
    struct weir_function *fn = run->fn;
    const struct weir_disp_policy *pol = run->pol;
    run->b = NULL;
    unhold(run);
    if (run->timer)
        weir_timer_stop(run->timer);
    if (!run->puts_out)
        run_free(run);
    /* Never from inside weir_disp_submit: its caller may still be working with the batch. */
    if (accepting)
        weir_disp_finish_later(fn, b, pol, done, arg);
    else
        done(arg, b);
}

/* Shutdown: what is not done comes back not done; the source keeps its checkpoint below it. */
static void run_abort(struct run *run)
{
    for (size_t i = 0; i < run->b->n; i++) {
        struct weir_record *r = run->b->records[i];
        if (r->verdict != WEIR_VERDICT_DONE)
            r->verdict = run->attempts ? WEIR_VERDICT_RETRY : WEIR_VERDICT_RELEASE;
    }
    run_finish(run);
}

static void on_hold_abort(struct weir_hold *h)
{
    struct run *run = weir_list_entry(h, struct run, hold);
    run->holding = false;
    run_abort(run);
}

static void write_gone(struct run *run);
static void run_next(struct run *run);

/* The timer ends a wait: records being given up go to the destination (again), or the next
 * attempt starts. */
static void on_timer(void *arg)
{
    struct run *run = arg;
    unhold(run);
    if (run->n_gone)
        write_gone(run);
    else
        run_next(run);
}

/* Waits ms where weir_disp_abort can find the run. */
static void wait_timer(struct run *run, int64_t ms)
{
    if (!run->timer)
        run->timer = weir_timer_new(weir_function_base(run->fn), on_timer, run);
    if (!run->holding) {
        weir_function_hold(run->fn, &run->hold);
        run->holding = true;
    }
    weir_timer_after(run->timer, ms);
}

/* ---- giving records up ------------------------------------------------------------------------
 */

static void failure_record(struct run *run, struct weir_buf *out)
{
    char when[25], request_id[37];
    const struct weir_event_format *fmt = run->pol->format;
    weir_clock_iso8601(weir_clock_wall_ms(), when);
    weir_uuid4(request_id);
    weir_buf_printf(out,
                    "{\"version\":\"1.0\",\"timestamp\":\"%s\",\"requestContext\":{\"requestId\":"
                    "\"%s\",\"functionArn\":\"%s\",\"condition\":\"%s\","
                    "\"approximateInvokeCount\":%u},\"responseContext\":",
                    when, request_id, run->s->function_arn, run->condition, run->invocations);
    if (run->invoked && run->last.ran) {
        weir_buf_printf(out, "{\"statusCode\":%ld,\"executedVersion\":\"$LATEST\"",
                        run->last.status);
        if (run->last.function_error[0]) {
            weir_buf_append_str(out, ",\"functionError\":");
            weir_buf_append_json_str(out, run->last.function_error,
                                     strlen(run->last.function_error));
        }
        weir_buf_append_char(out, '}');
    } else {
        weir_buf_append_str(out, "null");
    }
    if (fmt && fmt->batch_info) {
        weir_buf_append_char(out, ',');
        fmt->batch_info(out, run->pol->ctx, run->gone, run->n_gone);
    }
    weir_buf_append_char(out, '}');
}

/* Tells the mapping that records of the batch still held are done, so the source's checkpoint
 * can move before the batch comes back (AWS moves it on a partial response). */
static void report_done(const struct run *run, struct weir_record *const *records, size_t n)
{
    if (n && run->pol->records_done)
        run->pol->records_done(run->pol->records_done_ctx, records, n);
}

/* Room for n records to give up, none of them written yet. */
static void gone_reserve(struct run *run, size_t n)
{
    run->n_gone = 0;
    run->gone = weir_realloc(run->gone, (n ? n : 1) * sizeof(*run->gone));
    run->puts = weir_realloc(run->puts, (n ? n : 1) * sizeof(*run->puts));
    run->gone_written = weir_realloc(run->gone_written, (n ? n : 1) * sizeof(*run->gone_written));
    memset(run->gone_written, 0, (n ? n : 1) * sizeof(*run->gone_written));
}

static void gone_done(struct run *run)
{
    unhold(run);
    for (size_t i = 0; i < run->n_gone; i++)
        run->gone[i]->verdict = WEIR_VERDICT_DONE;
    report_done(run, run->gone, run->n_gone);
    run->n_gone = 0;
    run->backoff_ms = 0;
    if (run->s->stopping || run->forgotten || weir_function_aborting(run->fn)) {
        run_abort(run); /* what is left is not invoked while stopping */
        return;
    }
    run_next(run);
}

static void write_gone(struct run *run);
static void on_timer(void *arg);

static void on_put(void *arg, weir_status st, const char *error)
{
    struct put *put = arg;
    struct run *run = put->run;
    struct weir_stream *s = run->s;
    run->puts_out--;
    if (st == WEIR_OK) {
        s->stats.delivered++;
        if (put->i != SIZE_MAX)
            run->gone_written[put->i] = true;
    } else {
        s->stats.delivery_failures++;
        run->put_failed = true;
        weir_log_limited(WEIR_LOG_ERROR, s->comp,
                         "on_failure destination refused a failure record; trying again "
                         "destination=%s why=\"%s\"",
                         s->dest_safe, error ? error : "");
    }
    if (run->puts_out)
        return;
    if (!run->b) {
        run_free(run); /* handed back (aborted) while the puts were out */
        return;
    }
    if (!run->put_failed) {
        gone_done(run);
        return;
    }
    /* The lane waits: records given up are done only once their destination has them. */
    run->backoff_ms = run->backoff_ms ? run->backoff_ms * 2 : SINK_RETRY_FIRST_MS;
    if (run->backoff_ms > SINK_RETRY_MAX_MS)
        run->backoff_ms = SINK_RETRY_MAX_MS;
    wait_timer(run, run->backoff_ms);
}

/* Origin headers a failed record carries to a destination that takes records. */
static void origin_headers(const struct run *run, const struct weir_record *r, char **packed,
                           size_t *len)
{
    char num[32];
    if (r->headers_len) {
        *packed = weir_malloc(r->headers_len);
        memcpy(*packed, r->headers, r->headers_len);
        *len = r->headers_len;
    }
    if (r->stream)
        weir_headers_add(packed, len, "weir-source-topic", 17, r->stream, strlen(r->stream));
    snprintf(num, sizeof(num), "%d", r->partition);
    weir_headers_add(packed, len, "weir-source-partition", 21, num, strlen(num));
    snprintf(num, sizeof(num), "%llu", (unsigned long long)r->seq);
    weir_headers_add(packed, len, "weir-source-offset", 18, num, strlen(num));
    weir_headers_add(packed, len, "weir-condition", 14, run->condition, strlen(run->condition));
    const char *why = r->reason ? r->reason : run->last.why;
    weir_headers_add(packed, len, "weir-error", 10, why, strlen(why));
}

static void write_gone(struct run *run)
{
    struct weir_stream *s = run->s;
    run->put_failed = false;
    /* Held while the destination writes, so a shutdown past its bound can hand the batch back
     * (what was being written comes back not done). */
    if (!run->holding) {
        weir_function_hold(run->fn, &run->hold);
        run->holding = true;
    }
    if (!s->on_failure) {
        weir_warn(s->comp,
                  "records given up and dropped (no on_failure destination) condition=%s "
                  "records=%zu partition=%d first_seq=%llu last_seq=%llu",
                  run->condition, run->n_gone, run->gone[0]->partition,
                  (unsigned long long)run->gone[0]->seq,
                  (unsigned long long)run->gone[run->n_gone - 1]->seq);
        gone_done(run);
        return;
    }
    weir_info(s->comp,
              "records given up; to the on_failure destination condition=%s records=%zu "
              "first_seq=%llu last_seq=%llu destination=%s",
              run->condition, run->n_gone, (unsigned long long)run->gone[0]->seq,
              (unsigned long long)run->gone[run->n_gone - 1]->seq, s->dest_safe);
    char request_id[37];
    weir_uuid4(request_id);
    if (s->on_failure->ops->takes_records) {
        for (size_t i = 0; i < run->n_gone; i++)
            run->puts_out += !run->gone_written[i];
        for (size_t i = 0; i < run->n_gone; i++) {
            const struct weir_record *r = run->gone[i];
            if (run->gone_written[i])
                continue;
            char *headers = NULL;
            size_t headers_len = 0;
            origin_headers(run, r, &headers, &headers_len);
            struct weir_message msg = {
                .id = request_id,
                .body = r->data,
                .body_len = r->data_len,
                .body_null = r->data_null,
                .key = r->key,
                .key_len = r->key_len,
                .headers = headers,
                .headers_len = headers_len,
            };
            run->puts[i] = (struct put){run, i};
            s->on_failure->ops->put(s->on_failure, &msg, on_put, &run->puts[i]);
            free(headers);
        }
        return;
    }
    struct weir_buf body;
    weir_buf_init(&body);
    failure_record(run, &body);
    struct weir_message msg = {.id = request_id, .body = body.data, .body_len = body.len};
    run->puts_out = 1;
    run->puts[0] = (struct put){run, SIZE_MAX};
    s->on_failure->ops->put(s->on_failure, &msg, on_put, &run->puts[0]);
    weir_buf_deinit(&body);
}

/* Gives up records[lo..hi) of b that are not done (all when pick is NULL, else those pick
 * chooses), for condition. */
static void give_up(struct run *run, size_t lo, size_t hi, const char *condition,
                    bool (*pick)(const struct run *run, const struct weir_record *r, int64_t now))
{
    int64_t now = weir_clock_wall_ms();
    gone_reserve(run, hi - lo);
    for (size_t i = lo; i < hi; i++) {
        struct weir_record *r = run->b->records[i];
        if (r->verdict != WEIR_VERDICT_DONE && (!pick || pick(run, r, now)))
            run->gone[run->n_gone++] = r;
    }
    run->condition = condition;
    if (!strcmp(condition, CONDITION_RETRIES))
        run->s->stats.retries_exhausted += run->n_gone;
    else if (!strcmp(condition, CONDITION_AGE))
        run->s->stats.record_age_exceeded += run->n_gone;
    else
        run->s->stats.too_large += run->n_gone;
    write_gone(run);
}

/* ---- record age ------------------------------------------------------------------------------ */

static bool too_old(const struct run *run, const struct weir_record *r, int64_t now)
{
    int age = run->s->cfg->maximum_record_age_in_seconds;
    return age >= 0 && r->sent_ms > 0 && now - r->sent_ms > (int64_t)age * 1000;
}

static size_t count_too_old(const struct run *run, size_t lo, size_t hi)
{
    size_t n = 0;
    int64_t now = weir_clock_wall_ms();
    for (size_t i = lo; i < hi; i++)
        if (run->b->records[i]->verdict != WEIR_VERDICT_DONE &&
            too_old(run, run->b->records[i], now))
            n++;
    return n;
}

/* ---- attempts -------------------------------------------------------------------------------- */

static void on_attempted(void *arg, struct weir_batch *a);

static void retry_later(struct run *run)
{
    run->backoff_ms = run->backoff_ms ? run->backoff_ms * 2 : RETRY_FIRST_MS;
    if (run->backoff_ms > RETRY_MAX_MS)
        run->backoff_ms = RETRY_MAX_MS;
    wait_timer(run, run->backoff_ms);
}

static void push_range(struct run *run, size_t lo, size_t hi, int retries)
{
    if (run->n_ranges == run->cap_ranges) {
        run->cap_ranges = run->cap_ranges ? run->cap_ranges * 2 : 4;
        run->ranges = weir_realloc(run->ranges, run->cap_ranges * sizeof(*run->ranges));
    }
    run->ranges[run->n_ranges++] = (struct range){lo, hi, retries};
}

/* Invokes what is not done of the top range. */
static void attempt(struct run *run, struct range *rg)
{
    struct weir_batch *b = run->b;
    size_t pending = 0;
    for (size_t i = rg->lo; i < rg->hi; i++)
        pending += b->records[i]->verdict != WEIR_VERDICT_DONE;
    if (pending == b->n && b->event.len) {
        run->attempt = b; /* the whole batch, its event as the mapping built it */
    } else {
        const struct weir_encoder *enc = run->pol->format->encoder;
        struct weir_batch *a = weir_batch_new(b->lane);
        a->borrowed = true;
        int first = 1;
        for (size_t i = rg->lo; i < rg->hi; i++) {
            struct weir_record *r = b->records[i];
            if (r->verdict == WEIR_VERDICT_DONE)
                continue;
            if (first)
                enc->open(&a->event, run->pol->ctx, r);
            enc->append(&a->event, run->pol->ctx, r, first);
            first = 0;
            weir_batch_take(a, r);
        }
        enc->close(&a->event, run->pol->ctx);
        run->attempt = a;
    }
    for (size_t i = 0; i < run->attempt->n; i++)
        run->attempt->records[i]->verdict = WEIR_VERDICT_PENDING;
    run->s->stats.attempts++;
    run->attempts++;
    weir_disp_submit_row(run->fn, run->attempt, run->pol, &weir_policy_stream_attempt, on_attempted,
                         run);
}

/* The next step: the top range again, or the one after it, or the batch back when all is done. */
static void run_next(struct run *run)
{
    while (run->n_ranges) {
        struct range *rg = &run->ranges[run->n_ranges - 1];
        size_t pending = 0;
        for (size_t i = rg->lo; i < rg->hi; i++)
            pending += run->b->records[i]->verdict != WEIR_VERDICT_DONE;
        if (!pending) {
            run->n_ranges--;
            run->invocations = 0;
            continue;
        }
        if (count_too_old(run, rg->lo, rg->hi)) {
            give_up(run, rg->lo, rg->hi, CONDITION_AGE, too_old);
            return;
        }
        attempt(run, rg);
        return;
    }
    run_finish(run);
}

/* Counts one spent retry on rg; false (and the range given up) when the budget is spent. */
static bool spend_retry(struct run *run, struct range *rg)
{
    rg->retries++;
    run->s->stats.retries++;
    if (run->s->max_retries >= 0 && rg->retries > run->s->max_retries) {
        give_up(run, rg->lo, rg->hi, CONDITION_RETRIES, NULL);
        return false;
    }
    return true;
}

static void keep_last(struct run *run, struct weir_batch *a)
{
    struct weir_buf payload = run->last.payload;
    run->last = a->response;
    a->response.payload = payload;
    weir_buf_reset(&a->response.payload);
    run->invoked = run->invoked || run->last.ran;
}

/* Wall ms at which the oldest record not done of rg ages out; INT64_MAX when none will. */
static int64_t ages_out(const struct run *run, const struct range *rg)
{
    int age = run->s->cfg->maximum_record_age_in_seconds;
    int64_t first = INT64_MAX;
    for (size_t i = rg->lo; age >= 0 && i < rg->hi; i++) {
        const struct weir_record *r = run->b->records[i];
        if (r->verdict != WEIR_VERDICT_DONE && r->sent_ms > 0 &&
            r->sent_ms + (int64_t)age * 1000 < first)
            first = r->sent_ms + (int64_t)age * 1000;
    }
    return first;
}

/* The function never ran: try again after a backoff that spends no retry, but never past the
 * moment a record ages out (then the next step gives it up, without invoking it). */
static void throttled(struct run *run, const struct range *rg)
{
    struct weir_stream *s = run->s;
    s->stats.throttles++;
    if (s->stopping || run->forgotten) {
        run_abort(run);
        return;
    }
    run->throttle_ms = run->throttle_ms ? run->throttle_ms * 2 : THROTTLE_FIRST_MS;
    if (run->throttle_ms > THROTTLE_MAX_MS)
        run->throttle_ms = THROTTLE_MAX_MS;
    int64_t wait = run->throttle_ms;
    int64_t end = ages_out(run, rg), now = weir_clock_wall_ms();
    if (end != INT64_MAX && now + wait > end)
        wait = end - now + 1 > 0 ? end - now + 1 : 0;
    weir_log_limited(WEIR_LOG_WARN, s->comp, "throttled; trying again delay_ms=%lld why=\"%s\"",
                     (long long)wait, run->last.why);
    wait_timer(run, wait);
}

static void on_attempted(void *arg, struct weir_batch *a)
{
    struct run *run = arg;
    struct weir_stream *s = run->s;
    struct range *rg = &run->ranges[run->n_ranges - 1];
    run->attempt = NULL;
    if (a->response.ran)
        run->invocations++;
    keep_last(run, a);
    size_t n = a->n, failed = 0, first_failed = n;
    for (size_t i = 0; i < n; i++) {
        if (a->records[i]->verdict != WEIR_VERDICT_DONE) {
            failed++;
            if (first_failed == n)
                first_failed = i;
        }
    }
    struct weir_record *resume = first_failed < n ? a->records[first_failed] : NULL;
    /* A part of the batch that succeeded (a half, what followed a partial response) is done now;
     * the whole batch succeeding comes back at once. */
    if (a != run->b && !weir_function_aborting(run->fn))
        report_done(run, a->records, first_failed);
    /* From the lowest reported record on, what the attempt held is tried again (also records
     * after it that succeeded), as AWS moves the checkpoint to just before it; records given up
     * earlier (aged out) were not in the attempt and stay done. */
    for (size_t i = first_failed; i < n; i++)
        a->records[i]->verdict = WEIR_VERDICT_PENDING;
    if (a != run->b)
        weir_batch_free(a);
    if (weir_function_aborting(run->fn) || run->forgotten || (failed && s->stopping)) {
        run_abort(run);
        return;
    }
    if (!failed) {
        run->backoff_ms = 0;
        run_next(run);
        return;
    }
    if (!run->last.ran) {
        throttled(run, rg);
        return;
    }
    run->throttle_ms = 0;
    /* A partial response (the function did not fail) is one even when it names every record:
     * then it is retried whole, not bisected. */
    if (failed < n || !run->last.function_error[0]) {
        /* Done up to the lowest reported record; from it on, tried again. */
        size_t at = rg->lo;
        while (run->b->records[at] != resume)
            at++;
        if (a == run->b)
            report_done(run, run->b->records + rg->lo, at - rg->lo);
        rg->lo = at;
        weir_info(s->comp,
                  "partial batch response; retrying from the lowest reported record seq=%llu "
                  "records=%zu",
                  (unsigned long long)resume->seq, rg->hi - rg->lo);
        if (spend_retry(run, rg))
            retry_later(run);
        return;
    }
    size_t pending = 0;
    for (size_t i = rg->lo; i < rg->hi; i++)
        pending += run->b->records[i]->verdict != WEIR_VERDICT_DONE;
    if (s->cfg->bisect_batch_on_function_error && pending > 1) {
        /* Halves, first the older: splitting spends no retry. */
        size_t mid = rg->lo + (rg->hi - rg->lo) / 2;
        struct range whole = *rg;
        run->n_ranges--;
        push_range(run, mid, whole.hi, whole.retries);
        push_range(run, whole.lo, mid, whole.retries);
        s->stats.bisections++;
        weir_info(s->comp, "function error; batch bisected records=%zu why=\"%s\"", pending,
                  run->last.why);
        run_next(run);
        return;
    }
    weir_log_limited(WEIR_LOG_WARN, s->comp,
                     "function error; batch retried records=%zu retries=%d max=%d why=\"%s\"",
                     pending, rg->retries + 1, s->max_retries, run->last.why);
    if (spend_retry(run, rg))
        retry_later(run);
}

/* A batch from the mapping. Records it marked REJECT (none of them fits in any event) are
 * given up at once; the others are attempted. */
static void stream_accept(struct weir_function *fn, struct weir_batch *b,
                          const struct weir_disp_policy *pol, weir_disp_done_fn done, void *arg)
{
    struct weir_stream *s = pol->stream;
    struct run *run = weir_calloc(1, sizeof(*run));
    run->s = s;
    run->fn = fn;
    run->b = b;
    run->pol = pol;
    run->done = done;
    run->arg = arg;
    run->hold.abort = on_hold_abort;
    weir_list_push_back(&s->runs, &run->link);
    push_range(run, 0, b->n, 0);
    size_t rejected = weir_batch_count(b, WEIR_VERDICT_REJECT);
    if (rejected) {
        for (size_t i = 0; i < b->n; i++)
            if (b->records[i]->verdict != WEIR_VERDICT_REJECT)
                b->records[i]->verdict = WEIR_VERDICT_PENDING;
        gone_reserve(run, rejected);
        for (size_t i = 0; i < b->n; i++)
            if (b->records[i]->verdict == WEIR_VERDICT_REJECT)
                run->gone[run->n_gone++] = b->records[i];
        run->condition = CONDITION_TOO_LARGE;
        s->stats.too_large += rejected;
        /* From the loop's next turn: with no destination the batch would be handed back from
         * inside the submit. */
        wait_timer(run, 0);
        return;
    }
    s->accepting = run;
    run_next(run); /* may finish, and free, the run */
    s->accepting = NULL;
}

/* One attempt's outcome becomes verdicts on its records; the run decides what follows (a throttle
 * too: it waits where a stopping mapping finds it). */
static enum weir_policy_next stream_judge(struct weir_attempt *at, struct weir_batch *b,
                                          const struct weir_classified *c, int64_t *delay_ms)
{
    switch (c->outcome) {
    case WEIR_OUTCOME_OK:
        weir_batch_set_verdicts(b, WEIR_VERDICT_DONE);
        return WEIR_POLICY_FINISH;
    case WEIR_OUTCOME_PARTIAL:
        weir_policy_partial_verdicts(b, c);
        return WEIR_POLICY_FINISH;
    case WEIR_OUTCOME_THROTTLED:
        /* The run waits out the backoff itself, where a stopping mapping finds it. */
        weir_batch_set_verdicts(b, WEIR_VERDICT_RETRY);
        return WEIR_POLICY_FINISH;
    default:
        weir_batch_set_verdicts(b, WEIR_VERDICT_RETRY);
        return WEIR_POLICY_FINISH;
    }
}

const struct weir_policy weir_policy_stream = {
    .name = "stream",
    .accept = stream_accept,
};

const struct weir_policy weir_policy_stream_attempt = {
    .name = "stream-attempt",
    .keeps_response = true,
    .judge = stream_judge,
};
