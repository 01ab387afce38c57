/* The queue policy (SQS): an invocation's outcome becomes a verdict per message at once; a failed
 * message is not retried here but comes back from the source when its lease (visibility timeout)
 * ends, one receive more, until the queue's redrive policy takes it. Only throttles (the function
 * never ran) are retried here, with backoff, while the lease leaves room for a whole invocation.
 * It must never hold a batch past its records' lease. */
#include <stdint.h>

#include "core/clock.h"
#include "core/log.h"
#include "dispatcher/policy.h"

/* AWS retries a throttled SQS invoke until the visibility window is used up; weir backs off from
 * 100 ms doubling up to 5 s. */
#define THROTTLE_BACKOFF_FIRST_MS 100
#define THROTTLE_BACKOFF_MAX_MS   5000
/* An attempt must end this long before the lease does, or another consumer may get the records. */
#define LEASE_MARGIN_MS 200

static enum weir_policy_next queue_judge(struct weir_attempt *at, struct weir_batch *b,
                                         const struct weir_classified *c, int64_t *delay_ms)
{
    const char *m = at->pol->mapping_name;
    switch (c->outcome) {
    case WEIR_OUTCOME_OK:
        weir_batch_set_verdicts(b, WEIR_VERDICT_DONE);
        return WEIR_POLICY_FINISH;
    case WEIR_OUTCOME_PARTIAL:
        weir_policy_partial_verdicts(b, c);
        weir_info(at->component, "partial batch response mapping=%s records=%zu failed=%zu", m,
                  b->n, c->n_failed);
        return WEIR_POLICY_FINISH;
    case WEIR_OUTCOME_THROTTLED: {
        weir_log_limited_for(WEIR_LOG_WARN, at->component, m, "throttled mapping=%s why=\"%s\"", m,
                             c->why);
        int64_t backoff = at->backoff_ms ? at->backoff_ms * 2 : THROTTLE_BACKOFF_FIRST_MS;
        if (backoff > THROTTLE_BACKOFF_MAX_MS)
            backoff = THROTTLE_BACKOFF_MAX_MS;
        int64_t deadline = weir_batch_deadline(b);
        int64_t ends = weir_clock_mono_ms() + backoff + at->function_timeout_ms + LEASE_MARGIN_MS;
        if (!deadline || ends <= deadline) {
            at->backoff_ms = backoff;
            *delay_ms = backoff;
            return WEIR_POLICY_AGAIN;
        }
        weir_batch_set_verdicts(b, WEIR_VERDICT_RETRY);
        return WEIR_POLICY_FINISH;
    }
    default:
        /* The whole batch failed: each message comes back after its visibility timeout with its
         * receive count raised, until the redrive policy takes it. */
        weir_log_limited_for(WEIR_LOG_WARN, at->component, m,
                             "%s mapping=%s records=%zu why=\"%s\"", weir_outcome_name(c->outcome),
                             m, b->n, c->why);
        weir_batch_set_verdicts(b, WEIR_VERDICT_RETRY);
        return WEIR_POLICY_FINISH;
    }
}

const struct weir_policy weir_policy_queue = {
    .name = "queue",
    .judge = queue_judge,
};
