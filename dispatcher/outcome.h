/* Outcome classification: one invocation's raw result -> ok / partial / function error / timeout /
 * throttled / fatal, and which records a partial response names. Pure; no I/O. */
#ifndef WEIR_OUTCOME_H
#define WEIR_OUTCOME_H

#include <stdbool.h>
#include <stddef.h>

#include "connectors/target.h"
#include "model/event.h"
#include "model/record.h"

enum weir_outcome {
    WEIR_OUTCOME_OK,             /* every record succeeded */
    WEIR_OUTCOME_PARTIAL,        /* a valid batchItemFailures named some records */
    WEIR_OUTCOME_FUNCTION_ERROR, /* the function ran and failed (or answered what cannot be read) */
    WEIR_OUTCOME_TIMEOUT,        /* the function did not answer within its timeout */
    WEIR_OUTCOME_THROTTLED,      /* the function never ran: busy, refused, 429 */
    WEIR_OUTCOME_FATAL,          /* the request itself is wrong (4xx, payload too large) */
};

const char *weir_outcome_name(enum weir_outcome o);

struct weir_classified {
    enum weir_outcome outcome;
    /* For PARTIAL: indexes into the batch of the records named as failed, ascending, unique.
     * Owned; free with weir_classified_deinit. */
    size_t *failed;
    size_t n_failed;
    char why[256]; /* a one-line reason for logs when not OK */
};

/* Classifies res for batch b. report_batch_item_failures: the mapping opted in to partial batch
 * responses (reference 1.5); otherwise the body is ignored unless it is a runtime error. format:
 * how its itemIdentifiers name records (Kafka's are objects); NULL: record ids as strings. */
void weir_outcome_classify(const struct weir_invoke_result *res, const struct weir_batch *b,
                           bool report_batch_item_failures, const struct weir_event_format *format,
                           struct weir_classified *out);
void weir_classified_deinit(struct weir_classified *c);

#endif
