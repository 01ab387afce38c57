/* Delivery policies: how the dispatcher turns one invocation's outcome into verdicts, or into
 * another attempt. One row per delivery kind (model/record.h); adding a kind is a row and its
 * functions in a file of its own. Internal to dispatcher/. */
#ifndef WEIR_POLICY_H
#define WEIR_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "core/list.h"
#include "dispatcher/dispatcher.h"
#include "dispatcher/outcome.h"
#include "model/record.h"

/* What the dispatcher knows of a batch's attempts so far; a policy keeps its own state here. */
struct weir_attempt {
    const struct weir_disp_policy *pol;
    const char *component; /* the function's, for log lines */
    int64_t function_timeout_ms;
    int64_t backoff_ms; /* the last delay asked for; 0 before the first */
};

enum weir_policy_next {
    WEIR_POLICY_FINISH, /* every record has its verdict: hand the batch back */
    WEIR_POLICY_AGAIN,  /* invoke it again after *delay_ms; verdicts untouched */
};

struct weir_policy {
    const char *name;
    /* How a submitted batch begins. NULL: it is invoked (queued for a slot of the function).
     * The async row stores it in the function's durable queue instead, and hands it back done
     * once stored; the queue invokes it later through its own row. */
    void (*accept)(struct weir_function *fn, struct weir_batch *b,
                   const struct weir_disp_policy *pol, weir_disp_done_fn done, void *arg);
    /* Keep each invocation's answer in b->response (the Invoke API replies with it, the async
     * queue's destinations carry it). */
    bool keeps_response;
    /* Judges one invocation of b whose outcome was c: sets every record's verdict and returns
     * FINISH, or returns AGAIN with *delay_ms. Logs what it decided, at the level it deserves. */
    enum weir_policy_next (*judge)(struct weir_attempt *at, struct weir_batch *b,
                                   const struct weir_classified *c, int64_t *delay_ms);
};

/* SQS: per-message receive counts; throttles retried while the lease lasts (queue.c). */
extern const struct weir_policy weir_policy_queue;
/* Kafka, Postgres: a batch blocks its lane until done; retries, bisect, age (stream.c). */
extern const struct weir_policy weir_policy_stream;
/* A mapping's batches become events in the function's asynchronous queue (async.c). */
extern const struct weir_policy weir_policy_async;
/* Rows no mapping names, for the dispatcher's own callers: one attempt of an asynchronous event,
 * whose outcome the queue acts on (async.c); one synchronous invocation, its answer handed back
 * as it is (the Invoke API's RequestResponse, direct.c). */
extern const struct weir_policy weir_policy_async_attempt;
/* One attempt of (a part of) a stream batch, whose outcome the stream run acts on (stream.c). */
extern const struct weir_policy weir_policy_stream_attempt;
extern const struct weir_policy weir_policy_direct;

/* Every record of b done, but those a partial response named (c->failed), which are to retry. */
void weir_policy_partial_verdicts(struct weir_batch *b, const struct weir_classified *c);

/* The row of delivery kind d. */
const struct weir_policy *weir_policy_of(enum weir_delivery d);

/* weir_disp_submit with the row given, for the rows no mapping names. */
void weir_disp_submit_row(struct weir_function *fn, struct weir_batch *b,
                          const struct weir_disp_policy *pol, const struct weir_policy *row,
                          weir_disp_done_fn done, void *arg);

/* Hands b back through done from the loop's next turn, never invoked (its verdicts as set).
 * Cancelled, without done, when fn is freed first. */
void weir_disp_finish_later(struct weir_function *fn, struct weir_batch *b,
                            const struct weir_disp_policy *pol, weir_disp_done_fn done, void *arg);

/* Something a policy holds for a function outside the dispatcher's own lists (a stream batch
 * waiting out a backoff, or for its failure destination): weir_disp_abort calls abort, which must
 * hand the batch back through its done callback. */
struct weir_hold {
    void (*abort)(struct weir_hold *h);
    struct weir_list link;
};
void weir_function_hold(struct weir_function *fn, struct weir_hold *h);
void weir_function_unhold(struct weir_hold *h);
/* True while weir_disp_abort hands batches back: what comes back then was aborted. */
bool weir_function_aborting(const struct weir_function *fn);

/* The function's asynchronous queue, NULL when it has none (no state store). */
struct weir_async_queue *weir_function_async(const struct weir_function *fn);
void weir_function_set_async(struct weir_function *fn, struct weir_async_queue *q);

#endif
