/* The dispatcher: drives a batch to its final outcome. It owns functions (their endpoint pools
 * and concurrency), invocations, classification, and the delivery policies that turn an outcome
 * into a verdict per record (dispatcher/policy.h). It must never parse a source protocol. */
#ifndef WEIR_DISPATCHER_H
#define WEIR_DISPATCHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "model/record.h"

struct event_base;
struct weir_event_ctx;
struct weir_event_format;
struct weir_function_cfg;
struct weir_stream;
struct weir_stream_cfg;
struct weir_function;
struct weir_target_ops;

/* How one mapping wants its batches driven. */
struct weir_disp_policy {
    enum weir_delivery delivery; /* the policy row (dispatcher/policy.h) */
    bool report_batch_item_failures;
    const char *mapping_name; /* for logs; borrowed */
    /* The mapping's event format and its context, borrowed: how a partial response names records,
     * how a part of a batch is encoded again, what a failure record says of a batch. NULL format:
     * record ids are strings. */
    const struct weir_event_format *format;
    const struct weir_event_ctx *ctx;
    /* STREAM: the mapping's retries, record age, bisect and failure destination. */
    struct weir_stream *stream;
    /* STREAM: told as records of a batch still held become done (those before a partial
     * response's lowest reported record, a half that succeeded, records given up), so the
     * source's checkpoint can move before the batch comes back. NULL: not told. */
    void (*records_done)(void *ctx, struct weir_record *const *records, size_t n);
    void *records_done_ctx;
};

/* Called once per submitted batch when every record has a verdict; ownership of b returns. */
typedef void (*weir_disp_done_fn)(void *arg, struct weir_batch *b);

/* Builds the function's targets (one per endpoint, or one command). cfg is borrowed. */
struct weir_function *weir_function_new(const struct weir_function_cfg *cfg,
                                        struct event_base *base, struct weir_err *err);
/* The same with the target protocol given: tests drive the dispatcher with a fake target. */
struct weir_function *weir_function_new_with(const struct weir_function_cfg *cfg,
                                             const struct weir_target_ops *ops,
                                             struct event_base *base, struct weir_err *err);
/* Cancels whatever is still running (its batches are not called back). NULL is a no-op. */
void weir_function_free(struct weir_function *fn);
const char *weir_function_name(const struct weir_function *fn);
const struct weir_function_cfg *weir_function_config(const struct weir_function *fn);
struct event_base *weir_function_base(const struct weir_function *fn);

/* How many more invocations the function could start now (bounded by reserved concurrency and
 * single-flight endpoints; a large number when unbounded). */
size_t weir_function_free_slots(const struct weir_function *fn);
/* Registers cb(arg) to be called whenever a slot frees; the same (cb, arg) is kept once. */
void weir_function_watch(struct weir_function *fn, void (*cb)(void *arg), void *arg);
void weir_function_unwatch(struct weir_function *fn, void (*cb)(void *arg), void *arg);

/* Takes b and drives it by pol's policy row; done(arg, b) gives it back with verdicts. pol is
 * borrowed for as long as the batch is in flight. */
void weir_disp_submit(struct weir_function *fn, struct weir_batch *b,
                      const struct weir_disp_policy *pol, weir_disp_done_fn done, void *arg);
/* Shutdown past its bound: abort every invocation and waiting batch of fn; each comes back through
 * its done callback. Records of an aborted invocation are RETRY (the function may have run them);
 * records never sent (waiting, or backing off after a throttle) are RELEASE. */
void weir_disp_abort(struct weir_function *fn);

/* ---- stream semantics (stream.c) ---------------------------------------------------------
 * For ordered sources (Kafka, Postgres), reference 1.4: a batch stays with the dispatcher until
 * every record is done. Function errors are retried up to maximum_retry_attempts (throttles and
 * unreachable targets are retried with backoff without spending it); records older than
 * maximum_record_age_in_seconds are not invoked again; bisect_batch_on_function_error halves a
 * failing batch down to single records; a partial response resumes from its lowest reported
 * record. What is given up goes to the on_failure destination (reference 1.6), then is done. */

struct weir_stream_stats {
    uint64_t attempts;
    uint64_t retries;   /* attempts after a function error or a partial response */
    uint64_t throttles; /* attempts the function never ran */
    uint64_t bisections;
    uint64_t retries_exhausted; /* records given up after the retry budget */
    uint64_t record_age_exceeded;
    uint64_t too_large; /* records no event can hold */
    uint64_t delivered; /* failure records and failed records written to the destination */
    uint64_t delivery_failures;
};

/* The stream handling of one mapping; cfg, mapping_name and fn are borrowed and outlive it. Creates
 * the on_failure destination. region: for ARNs in failure records. NULL with err on failure. */
struct weir_stream *weir_stream_new(struct weir_function *fn, const struct weir_stream_cfg *cfg,
                                    const char *mapping_name, const char *region,
                                    struct event_base *base, struct weir_err *err);
/* The mapping stops: a batch waiting to be retried comes back now, not done (the source keeps
 * its checkpoint below it), and one whose attempt fails comes back instead of being retried. */
void weir_stream_stop(struct weir_stream *s);
/* The source no longer owns partition (revoked): its batches come back, not done, without more
 * attempts (at once when waiting, else when their invocation or destination write ends). */
void weir_stream_forget(struct weir_stream *s, int32_t partition);
/* Batches still held are dropped (their callbacks never called). NULL is a no-op. */
void weir_stream_free(struct weir_stream *s);
const struct weir_stream_stats *weir_stream_stats(const struct weir_stream *s);

/* ---- one synchronous invocation (direct.c) -------------------------------------------------
 * The Invoke API's RequestResponse: the payload goes to the function once, as it is, and its
 * answer comes back as it is. */

/* resp: borrowed for the call. */
typedef void (*weir_disp_answer_fn)(void *arg, const struct weir_response *resp);

/* Invokes fn once with payload (copied); answer(arg, resp) follows from the loop. A function
 * with no free slot is not waited for: resp->ran is false and resp->status 429. */
void weir_disp_invoke(struct weir_function *fn, const char *payload, size_t len,
                      weir_disp_answer_fn answer, void *arg);

/* ---- the asynchronous invocation queue (async.c) -------------------------------------------
 * Per function, as AWS keeps one: events accepted (the Invoke API's Event, a bucket mapping's
 * batches) wait durably in a store, are invoked when due, retried after function errors with
 * the configured delays and after throttles with backoff, aged out, and end at the function's
 * destinations. */

struct weir_async_store;
struct weir_async_queue;

struct weir_async_stats {
    uint64_t accepted;
    uint64_t attempts;
    uint64_t succeeded;
    uint64_t retried;   /* after a function error */
    uint64_t throttled; /* attempts the function never ran */
    uint64_t retries_exhausted;
    uint64_t event_age_exceeded;
    uint64_t delivered; /* records and dead letters written to destinations */
    uint64_t delivery_failures;
    size_t working; /* events taken from the store and not yet written back */
};

/* Gives fn its queue on store (borrowed; both must outlive the queue) and creates the
 * destinations fn's configuration names. region: for ARNs in records. NULL with err on failure. */
struct weir_async_queue *weir_async_queue_new(struct weir_function *fn,
                                              struct weir_async_store *store, const char *region,
                                              struct weir_err *err);
/* Starts invoking what is due (events left by an earlier run first). */
void weir_async_queue_start(struct weir_async_queue *q);
/* Takes nothing more; once every event it holds is written back (invocations finish, or are
 * aborted with weir_disp_abort), calls done(arg). */
void weir_async_queue_stop(struct weir_async_queue *q, void (*done)(void *arg), void *arg);
/* NULL is a no-op. */
void weir_async_queue_free(struct weir_async_queue *q);
const struct weir_async_stats *weir_async_queue_stats(const struct weir_async_queue *q);

/* Called once the event is durably accepted (st WEIR_OK) or could not be (error says why).
 * request_id: the event's id (x-amzn-RequestId, requestContext.requestId). */
typedef void (*weir_async_accepted_fn)(void *arg, weir_status st, const char *error,
                                       const char *request_id);

/* Accepts payload (copied) for asynchronous invocation of fn, which must have its queue.
 * origin names the sender in logs ("api"). done follows from the loop, never from inside the
 * call. */
void weir_async_accept(struct weir_function *fn, const char *origin, const char *payload,
                       size_t len, weir_async_accepted_fn done, void *arg);

#endif
