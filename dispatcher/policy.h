/* Delivery policies: how the dispatcher turns one invocation's outcome into verdicts, or into
 * another attempt. One row per delivery kind (model/record.h); adding a kind is a row and its
 * functions in a file of its own. Internal to dispatcher/. */
#ifndef WEIR_POLICY_H
#define WEIR_POLICY_H

#include <stdbool.h>
#include <stdint.h>

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
    /* Judges one invocation of b whose outcome was c: sets every record's verdict and returns
     * FINISH, or returns AGAIN with *delay_ms. Logs what it decided, at the level it deserves. */
    enum weir_policy_next (*judge)(struct weir_attempt *at, struct weir_batch *b,
                                   const struct weir_classified *c, int64_t *delay_ms);
};

/* SQS: per-message receive counts; throttles retried while the lease lasts (queue.c). */
extern const struct weir_policy weir_policy_queue;

/* The row of delivery kind d. */
const struct weir_policy *weir_policy_of(enum weir_delivery d);

#endif
