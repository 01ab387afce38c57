/* Encoders: records -> the exact AWS event JSON a function receives. One encoder per event shape.
 * Encoders write bytes; they must never talk to a server or decide a verdict. */
#ifndef WEIR_ENCODE_H
#define WEIR_ENCODE_H

#include <stddef.h>

#include "core/buf.h"
#include "mapping/record.h"

/* Lambda's synchronous invoke payload limit (6 MB): a batch's event never grows past it. */
#define WEIR_INVOKE_PAYLOAD_MAX (6 * 1024 * 1024)

/* What an event needs beyond its records. Borrowed strings. */
struct weir_event_ctx {
    const char *source_arn; /* eventSourceARN */
    const char *region;     /* awsRegion */
};

struct weir_encoder {
    const char *name;
    /* Writes the event's opening ("{\"Records\":["). */
    void (*open)(struct weir_buf *out, const struct weir_event_ctx *ctx);
    /* Writes one record element; `first` tells whether a separator is needed. */
    void (*append)(struct weir_buf *out, const struct weir_event_ctx *ctx,
                   const struct weir_record *r, int first);
    /* Writes the event's closing; close_len is how many bytes that adds. */
    void (*close)(struct weir_buf *out, const struct weir_event_ctx *ctx);
    size_t close_len;
};

/* SQS Records[] (reference section 4.3). */
extern const struct weir_encoder weir_encoder_sqs;

#endif
