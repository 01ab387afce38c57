/* Sources: the poller interface, the interface a poller hands its records through, and the
 * registry's rows. A poller owns one source protocol: connect, read, lease, settle, reconnect.
 * It must never know functions, HTTP, retries or the mapping: its records leave through the sink
 * it is given, and it is called back through its ops to settle.
 * Adding a source is one new file in pollers/ and one row in the registry (pollers/registry.c). */
#ifndef WEIR_POLLER_H
#define WEIR_POLLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/status.h"
#include "model/event.h"
#include "model/record.h"

struct event_base;
struct weir_store;

/* Where a poller's records go: handed to it when it is created. */
struct weir_sink_ops {
    /* How many more records `lane` can take now (WEIR_LANE_ANY: all lanes together). 0: read no
     * more of it until the poller is resumed. */
    size_t (*room)(void *ctx, uint32_t lane);
    /* Hands r on; ownership is taken. r->lane says its lane; a stream source's lane is the
     * record's partition, which the mapping spreads over parallelization_factor lanes by key. */
    void (*deliver)(void *ctx, struct weir_record *r);
    /* One read has ended: with a zero batching window, what it delivered is sent now. */
    void (*read_done)(void *ctx);
    /* The source no longer reads `lane` (a partition revoked in a rebalance): its records not yet
     * sent are dropped, never settled, and its checkpoint forgotten; batches of it in flight
     * finish, and what they settle is the source's to ignore. */
    void (*forget)(void *ctx, uint32_t lane);
};

struct weir_sink {
    const struct weir_sink_ops *ops;
    void *ctx;
};

/* What a poller is made from. Everything is borrowed and outlives the poller. */
struct weir_poller_args {
    const struct weir_mapping_cfg *mc; /* the mapping; mc->settings is the source's own struct */
    const char *region;
    const char *component; /* "mapping/orders", to prefix its log lines */
    struct event_base *base;
    struct weir_sink sink;
    const struct weir_event_format *format; /* the row's, for what the poller renders itself */
    struct weir_store *store; /* weir's durable state (store/store.h), NULL when not open; a
                                 source that keeps state there (the bucket's catalog) needs it */
};

/* What a running poller tells about its source. */
struct weir_source_info {
    const char *source_arn;       /* eventSourceARN; owned by the poller */
    const char *endpoint;         /* what events name as the source's servers (Kafka's
                                     bootstrapServers), or NULL; owned by the poller */
    const char *stream_label;     /* what ends a table's stream ARN (event.h), or NULL; owned by
                                     the poller */
    const char *stream_view_type; /* DynamoDB's images (event.h), or NULL; owned by the poller */
    bool arrays_as_sets;          /* DynamoDB: arrays written as sets where they can be */
    /* Records of one lane must reach the function in order, one batch of a lane at a time (SQS
     * FIFO message groups, partitions). false: lanes are only for capacity. */
    bool ordered_lanes;
};

struct weir_poller;

struct weir_poller_ops {
    /* Creates the poller; nothing is connected until start. NULL with err filled on failure. */
    struct weir_poller *(*new)(const struct weir_poller_args *args, struct weir_err *err);
    const struct weir_source_info *(*info)(const struct weir_poller *p);
    /* Connects and starts reading whenever the sink has room. */
    weir_status (*start)(struct weir_poller *p);
    /* Stop reading `lane` (a partition) until resumed; records of it already read still come.
     * NULL when the source reads lanes only together. */
    void (*pause)(struct weir_poller *p, uint32_t lane);
    /* The sink has room again for `lane` (WEIR_LANE_ANY: for any). */
    void (*resume)(struct weir_poller *p, uint32_t lane);
    /* Applies the verdict of every record of b: DONE settled, RETRY left for redelivery,
     * RELEASE given back at once, REJECT to the dead-letter target (or set aside) with its
     * reason. b stays the caller's; the poller copies what it needs. */
    void (*settle)(struct weir_poller *p, const struct weir_batch *b);
    /* A source that checkpoints by position (a stream): every record of `lane` (a partition)
     * whose seq is below done_below is done, and the source may commit up to it. Called as the
     * point moves; never moves back. NULL: the source settles record by record. */
    void (*checkpoint)(struct weir_poller *p, uint32_t lane, uint64_t done_below);
    /* Stops reading; settles still work. Calls done(arg) once every server operation it started
     * has finished (or failed), so the poller can be freed. */
    void (*stop)(struct weir_poller *p, void (*done)(void *arg), void *arg);
    /* NULL is a no-op. */
    void (*free)(struct weir_poller *p);
};

/* A row of the registry: everything weir knows of a source, in one place. */
struct weir_source {
    struct weir_cfg_source config; /* name, URI scheme, keys, defaults, ranges, rules */
    const struct weir_event_format *format;
    /* The format a mapping chose (Kafka: SelfManagedKafka or Kinesis); NULL: always `format`.
     * Filter patterns are checked against `format` when the file is loaded. */
    const struct weir_event_format *(*format_of)(const struct weir_mapping_cfg *mc);
    enum weir_delivery delivery; /* how the dispatcher drives its batches */
    const struct weir_poller_ops *ops;
};

/* The registry, NULL-terminated. */
extern const struct weir_source *const weir_sources[];
/* The row whose configuration view is cs (as config/ hands it back), or NULL. */
const struct weir_source *weir_source_of(const struct weir_cfg_source *cs);

#endif
