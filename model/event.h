/* Event formats: the words for turning records into the exact AWS event JSON a function receives.
 * The invoke payload limit, the encoder interface, the shape filter patterns see, and the format
 * a source row names (encoder, filter shape, attribute rendering together). Formats are defined
 * in mapping/ (format_*.c); this header only declares them, so a source row below the layers can
 * name its format. Must never talk to a server or decide a verdict. */
#ifndef WEIR_EVENT_H
#define WEIR_EVENT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/status.h"
#include "model/record.h"

/* Lambda's synchronous invoke payload limit (6 MB): a batch's event never grows past it. */
#define WEIR_INVOKE_PAYLOAD_MAX (6 * 1024 * 1024)

/* What an event needs beyond its records. Borrowed strings. */
struct weir_event_ctx {
    const char *source_arn;   /* eventSourceARN; S3: the bucket's ARN */
    const char *region;       /* awsRegion */
    const char *mapping_name; /* S3: s3.configurationId, the notification's name */
    const char *endpoint;     /* Kafka: bootstrapServers, as the mapping's source names them */
    /* DynamoDB: each record's table has a stream ARN of its own, built from the region, the
     * record's stream (the table) and this label: ...:table/<table>/stream/<label>. */
    const char *stream_label;
    /* DynamoDB: which images a record carries (KEYS_ONLY, NEW_IMAGE, OLD_IMAGE,
     * NEW_AND_OLD_IMAGES), and whether a one-dimensional array of distinct strings, numbers or
     * bytes without NULLs is written as a set (SS, NS, BS) instead of a list (L). */
    const char *stream_view_type;
    bool arrays_as_sets;
};

struct weir_encoder {
    const char *name;
    /* Writes the event's opening ("{\"Records\":["). first: the batch's first record (a batch
     * holds one lane, so one partition); NULL asks for the longest opening any batch can have,
     * which the batcher counts against the payload limit. */
    void (*open)(struct weir_buf *out, const struct weir_event_ctx *ctx,
                 const struct weir_record *first);
    /* Writes one record element; `first` tells whether a separator is needed. */
    void (*append)(struct weir_buf *out, const struct weir_event_ctx *ctx,
                   const struct weir_record *r, int first);
    /* Writes the event's closing; close_len is how many bytes that adds. */
    void (*close)(struct weir_buf *out, const struct weir_event_ctx *ctx);
    size_t close_len;
};

/* What a top-level key of a source's record holds, as filter patterns see it. */
enum weir_filter_key_kind {
    WEIR_FILTER_KEY_DATA,   /* the payload (r->data): matched as JSON when it is JSON */
    WEIR_FILTER_KEY_STRING, /* metadata holding a string (messageId) */
    WEIR_FILTER_KEY_OBJECT, /* metadata holding an object (attributes) */
};

struct weir_filter_key {
    const char *name;
    enum weir_filter_key_kind kind;
};

/* The record a source delivers as patterns see it: its top-level keys, at most one of them the
 * data key (a DynamoDB record has none: it is all metadata). Metadata values are read from the
 * record element the source's encoder writes, so a pattern sees what the function would see. */
struct weir_filter_shape {
    const char *name; /* for messages: "SQS" */
    const struct weir_filter_key *keys;
    size_t n_keys;
    /* SQS: a payload that is not JSON is a plain string, matched by plain patterns on the data
     * key. Without it (Kinesis) a plain pattern on the data key is refused. */
    bool plain_data;
};

struct json_t; /* jansson */

/* One event shape, whole: how its records are written, what filter patterns see of them, and how
 * producer-given attributes become the event's. A source row names one. */
struct weir_event_format {
    const char *name; /* "SQS" */
    const struct weir_encoder *encoder;
    /* NULL: records of this shape cannot be filtered. */
    const struct weir_filter_shape *filter_shape;
    /* Turns attributes a producer attached (a JSON object) into the event's form, checking each;
     * *out is a new JSON text the caller owns, or NULL when there are none. NULL: the format has
     * no attributes. */
    weir_status (*render_attrs)(const struct json_t *attrs, char **out, struct weir_err *err);
    /* The record of b a partial batch response's itemIdentifier names (reference 1.5): its index,
     * or -1 with why filled (one line, no payload bytes). NULL: the identifier is a non-empty
     * string equal to a record's id (SQS messageId, Kinesis sequenceNumber). */
    long (*find_item)(const struct json_t *ident, const struct weir_batch *b, char *why,
                      size_t why_len);
    /* Writes the batch-info member of a stream failure record (reference 1.6) for records[0..n),
     * a run of one lane in order: "\"KafkaBatchInfo\":{...}". NULL: not a stream format. */
    void (*batch_info)(struct weir_buf *out, const struct weir_event_ctx *ctx,
                       struct weir_record *const *records, size_t n);
};

/* SQS Records[] (reference section 4.3): mapping/format_sqs.c. */
extern const struct weir_event_format weir_format_sqs;
/* S3 event notification Records[] (reference section 4.5): mapping/format_s3.c. */
extern const struct weir_event_format weir_format_s3;
/* Self-managed Kafka records{} (reference section 4.2): mapping/format_kafka.c. */
extern const struct weir_event_format weir_format_kafka;
/* Kinesis Records[] (reference section 4.1) of a Kafka partition: mapping/format_kinesis.c. */
extern const struct weir_event_format weir_format_kinesis;
/* DynamoDB Streams Records[] of a table's row changes (reference section 4.4):
 * mapping/format_dynamodb.c. */
extern const struct weir_event_format weir_format_dynamodb;

#endif
