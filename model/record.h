/* Records, batches, verdicts and lanes: the words every layer shares. A record travels from a
 * poller through a mapping to the dispatcher; only its verdict travels back. Plain data below
 * pollers/, mapping/ and dispatcher/; must never know a source protocol, a target or a policy. */
#ifndef WEIR_RECORD_H
#define WEIR_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/list.h"
#include "model/row.h"

/* Kafka's timestampType: the producer's clock, or the broker's at append. */
enum weir_time_type { WEIR_TIME_CREATE = 0, WEIR_TIME_LOG_APPEND };

enum weir_verdict {
    WEIR_VERDICT_PENDING = 0,
    WEIR_VERDICT_DONE,  /* succeeded, filtered out, or routed to a failure destination: settle it */
    WEIR_VERDICT_RETRY, /* not done: the source delivers it again (counts as a receive) */
    WEIR_VERDICT_RELEASE, /* never given to the function: hand it back at once, no receive counted
                           */
    WEIR_VERDICT_REJECT,  /* can never be delivered (record->reason says why): the source moves it
                             to its dead-letter target, or keeps it aside; never reads it again */
    WEIR_VERDICT_COUNT
};

const char *weir_verdict_name(enum weir_verdict v);

/* A lane is a run of records whose order matters to the function: a partition, a message group,
 * a key hash. Records of one lane reach the function in order; when the mapping's lanes are
 * ordered, one batch of a lane is in flight at a time. A source without order puts every record
 * in lane 0. */
#define WEIR_LANE_ANY UINT32_MAX /* in room() and resume(): every lane together */

/* Lane of a key (a message group, a partition key), never WEIR_LANE_ANY. */
uint32_t weir_lane_of(const char *key, size_t len);

/* Packed record headers: a run of entries, each a 4-byte name length, the name, a 4-byte value
 * length (0xffffffff: a null value), the value; lengths little-endian. */
struct weir_header {
    const char *name;
    size_t name_len;
    const char *value; /* NULL for a null value */
    size_t value_len;
};
/* Appends one header to *packed (grown with realloc). value NULL: a null value. */
void weir_headers_add(char **packed, size_t *len, const char *name, size_t name_len,
                      const char *value, size_t value_len);
/* Reads the header at *off and moves *off past it; false at the end or on a truncated entry. */
bool weir_headers_next(const char *packed, size_t len, size_t *off, struct weir_header *h);

struct weir_record;

/* Where a record goes back to when it is freed, for a maker that frees its records itself: a
 * poller making records on a thread of its own has them freed there, where they were allocated,
 * so freeing costs the loop neither the time nor the allocator's locks. take_back runs on the
 * loop and owns the record from then on (it frees it with weir_record_destroy). */
struct weir_record_home {
    void (*take_back)(struct weir_record_home *home, struct weir_record *r);
};

/* One record. Every string is owned by the record (free with weir_record_free) and may be NULL
 * unless said otherwise. Source-specific fields are plain members so an encoder can use them
 * without knowing the source protocol. */
struct weir_record {
    /* First, together: what every record's trip touches (its place and verdict, the bytes an
     * encoder reads), so a record made on another thread or cold by the time its batch is done
     * costs a cache line or two there, not one per field. */
    enum weir_verdict verdict;
    int32_t partition;             /* the stream's partition (a Kafka partition, a shard) */
    uint64_t seq;                  /* source order: list sequence, offset, order read */
    uint32_t lane;                 /* ordering lane; records of one batch share it */
    enum weir_time_type time_type; /* what sent_ms is (Kafka's timestampType) */
    char *data;                    /* payload bytes (SQS body); never NULL, may hold NUL bytes */
    size_t data_len;
    int64_t sent_ms;               /* wall ms the producer sent it (SentTimestamp) */
    struct weir_record_home *home; /* NULL: weir_record_free frees it there and then */
    /* Streams (a Kafka topic, a replication slot): where the record sits and what came with it.
     * The key and headers are bytes; the headers are packed (weir_headers_add). */
    char *stream; /* the topic, the table: what the source calls the stream */
    char *key;    /* the message key (Kafka), NULL when it has none */
    size_t key_len;
    size_t headers_len;
    char *headers;      /* packed headers, NULL when none */
    size_t event_bytes; /* bytes its element adds to an event; set when it is batched */
    bool data_null;     /* the payload is null, not empty (a Kafka tombstone) */
    bool packed;        /* made by weir_record_new_packed */
    char *id; /* the identity a function names in batchItemFailures (SQS messageId); never NULL */
    /* Mono ms after which the source takes it back (lease), 0 = none: read for every record as
     * it is batched and invoked, so among the fields read then, not at the struct's end. */
    int64_t deadline_ms;
    char *handle;           /* the poller's settle handle (SQS receiptHandle, a Redis lease id) */
    char *group_id;         /* SQS MessageGroupId, Kafka key, ... */
    char *dedup_id;         /* SQS MessageDeduplicationId */
    char *attrs_json;       /* messageAttributes as the event shows them (a JSON object), or NULL */
    char *reason;           /* REJECT: why, for the dead-letter entry and the log */
    char *event_name;       /* S3: "ObjectCreated:Put", "ObjectRemoved:Delete" */
    char *etag;             /* S3: the MD5 of the object's content, 32 hex digits */
    int64_t object_size;    /* S3: the object's size in bytes (a delete has none) */
    struct weir_row *row;   /* a table row's change (Postgres), owned; NULL otherwise */
    uint64_t fifo_seq;      /* SQS FIFO SequenceNumber; 0 outside a FIFO queue */
    uint32_t receive_count; /* SQS ApproximateReceiveCount, counting this receive */
    int64_t first_receive_ms; /* wall ms of its first receive (ApproximateFirstReceiveTimestamp) */
    int64_t lease_ms; /* how long the lease was when taken; 0 = none (then so is deadline_ms) */
};

struct weir_record *weir_record_new(void);
/* A record whose data, id, stream and key live in its own allocation, each of the given length
 * (data and id NUL-terminated after it; stream NULL when stream_len is 0, key NULL when
 * has_key is false), for the caller to fill: a stream source makes one per message, and one
 * allocation instead of five counts. Those four fields must not be replaced or freed alone. */
struct weir_record *weir_record_new_packed(size_t data_len, size_t id_len, size_t stream_len,
                                           bool has_key, size_t key_len);
/* Gives r back to its home, or frees it when it has none. NULL is a no-op. A record with a home
 * is freed on the loop. */
void weir_record_free(struct weir_record *r);
/* Frees r and everything it owns, here and now, whatever its home: for homes. NULL is a no-op. */
void weir_record_destroy(struct weir_record *r);
/* Sets r->reason (copied) and the verdict REJECT. */
void weir_record_reject(struct weir_record *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* What a function answered one invocation, kept for the policies that hand it on: the Invoke
 * API's reply, the asynchronous queue's destination records and dead letters. */
struct weir_response {
    bool ran;                /* the function was reached; false: it never ran (throttled) */
    long status;             /* HTTP status (exec: 200 on exit 0); 0 when nothing answered */
    char function_error[64]; /* "Unhandled" when the function failed, else "" */
    char why[256];           /* the outcome's reason when it was not a success, else "" */
    struct weir_buf payload; /* the response body */
};

/* A run of records of one lane, with the event built for them. A batch belongs to its mapping
 * until the dispatcher takes it, and comes back to the mapping with a verdict on every record. */
struct weir_batch {
    struct weir_record **records; /* owned */
    size_t n;
    size_t cap;
    uint32_t lane;
    int64_t opened_ms;     /* mono ms the first record was added: the window counts from it */
    struct weir_buf event; /* the encoded AWS event JSON, complete once the batch is closed */
    size_t bytes;          /* what its records count against the mapping's byte budget */
    uint32_t invocations;  /* invocations made for this batch so far */
    struct weir_response response; /* the last invocation's answer, when its policy keeps it */
    bool borrowed; /* its records belong to another batch (a part of it being retried): freeing
                      it frees none of them */
    struct weir_list link; /* for whoever holds the batch: the batcher, a lane's queue */
};

struct weir_batch *weir_batch_new(uint32_t lane);
/* Frees the batch and every record still in it (none when borrowed). NULL is a no-op. */
void weir_batch_free(struct weir_batch *b);
/* Appends r; the batch takes ownership. */
void weir_batch_take(struct weir_batch *b, struct weir_record *r);
/* Index of the record whose id equals id, or -1. */
long weir_batch_find(const struct weir_batch *b, const char *id, size_t id_len);
/* Sets every record's verdict to v. */
void weir_batch_set_verdicts(struct weir_batch *b, enum weir_verdict v);
/* Earliest record deadline in the batch (0 when no record has one). */
int64_t weir_batch_deadline(const struct weir_batch *b);
/* Shortest lease a record of the batch was taken with (0 when none has one). */
int64_t weir_batch_lease_ms(const struct weir_batch *b);
/* How many of the batch's records have verdict v. */
size_t weir_batch_count(const struct weir_batch *b, enum weir_verdict v);

/* How a mapping's batches are driven to their outcome: the dispatcher's policy rows. A source
 * names its kind; adding one is a row and its functions in dispatcher/. */
enum weir_delivery {
    WEIR_DELIVERY_QUEUE,  /* SQS: per-message receive counts; failed messages come back later */
    WEIR_DELIVERY_ASYNC,  /* S3: each batch is an event accepted into the function's durable
                             asynchronous queue; done for the source once it is stored */
    WEIR_DELIVERY_STREAM, /* Kafka, Postgres: a batch blocks its lane until it succeeds, its
                             retries are spent or its records age out; then on to the failure
                             destination, and the lane moves on */
    WEIR_DELIVERY_COUNT
};

const char *weir_delivery_name(enum weir_delivery d);
/* Whether a batch handed over under d waits for a slot of the function (queue), or is only
 * stored and invoked later on the queue's own terms (async). */
bool weir_delivery_invokes(enum weir_delivery d);

#endif
