/* Destinations: where weir hands on what leaves a function's path — the asynchronous queue's
 * invocation records (on_success, on_failure) and dead letters. One row per URI scheme: a Redis
 * list, a directory, an HTTP endpoint; a Kafka topic or a Postgres table is one more row and one
 * more file, with the same operations. A destination reports delivered or not; it must never
 * decide what happens next (the caller retries). */
#ifndef WEIR_DESTINATION_H
#define WEIR_DESTINATION_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/status.h"

struct event_base;

/* What is delivered. Borrowed for the call to put. */
struct weir_message {
    const char *id; /* the message's identity (the request id); a safe file name part */
    const char *body;
    size_t body_len;
    /* Attributes as weir's envelope takes them ({"RequestID":{"dataType":"String",
     * "stringValue":"..."}}), or NULL. A message with attributes is written as weir's envelope
     * (docs/redis-queue.md), one without as its body alone, so a weir mapping can read either back
     * as an SQS message. */
    const char *attrs_json;
    /* A record handed on as itself (a stream's failed record to a Kafka topic): its key and
     * packed headers (model/record.h), NULL when it has none. Destinations that write messages
     * (a list, a file) ignore them. */
    bool body_null; /* a record's null value (a Kafka tombstone), not an empty one */
    const char *key;
    size_t key_len;
    const char *headers;
    size_t headers_len;
};

/* Appends what a destination writes for msg: its body, or the envelope around it. */
void weir_message_render(const struct weir_message *msg, struct weir_buf *out);

/* Called once per put, on the loop, never from inside put. error: why it was not delivered. */
typedef void (*weir_dest_done_fn)(void *arg, weir_status st, const char *error);

struct weir_destination;

struct weir_destination_ops {
    const char *scheme;  /* "redis", "file", "http", "https" */
    const char *example; /* for messages: "redis://127.0.0.1:6379/0/failures" */
    /* A stream's failed batch goes here as its records themselves (key, value, headers, plus
     * headers naming their origin), not as one failure record: a Kafka topic, as AWS does. */
    bool takes_records;
    /* Whether uri names a destination of this kind that could work; err says what is wrong
     * otherwise. Called when the configuration is loaded; connects nowhere. */
    weir_status (*check)(const char *uri, struct weir_err *err);
    struct weir_destination *(*new)(const char *uri, struct event_base *base, struct weir_err *err);
    /* Delivers msg (copied); done reports whether it was written. */
    void (*put)(struct weir_destination *d, const struct weir_message *msg, weir_dest_done_fn done,
                void *arg);
    /* Puts still running are abandoned: their done is never called. NULL is a no-op. */
    void (*free)(struct weir_destination *d);
};

/* Every destination starts with its row. */
struct weir_destination {
    const struct weir_destination_ops *ops;
};

/* The row whose scheme uri has, or NULL. */
const struct weir_destination_ops *weir_destination_find(const char *uri);
/* Checks uri against its row; an unknown scheme is an error that lists the known ones. */
weir_status weir_destination_check(const char *uri, struct weir_err *err);
/* A destination for uri (its row's new). NULL with err on failure. */
struct weir_destination *weir_destination_new(const char *uri, struct event_base *base,
                                              struct weir_err *err);
/* NULL is a no-op. */
void weir_destination_free(struct weir_destination *d);

extern const struct weir_destination_ops weir_dest_redis;
extern const struct weir_destination_ops weir_dest_dir;
extern const struct weir_destination_ops weir_dest_http;
extern const struct weir_destination_ops weir_dest_https;
extern const struct weir_destination_ops weir_dest_kafka;

#endif
