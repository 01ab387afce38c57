/* The poller interface and the registry of sources. A poller owns one source protocol: connect,
 * read, lease, settle, reconnect. It must never know functions, HTTP or retries.
 * Adding a source is one new file in pollers/ and one row in the registry (pollers/registry.c). */
#ifndef WEIR_POLLER_H
#define WEIR_POLLER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/status.h"
#include "mapping/encode.h"
#include "mapping/record.h"

struct event_base;
struct weir_mapping;
struct weir_mapping_cfg;
struct weir_cfg_report;
struct weir_filter_shape;

/* How the dispatcher treats failures for this source. */
enum weir_semantics {
    WEIR_SEMANTICS_QUEUE,  /* SQS: per-message receive counts; failed messages come back later */
    WEIR_SEMANTICS_STREAM, /* Kinesis/DynamoDB/Kafka: blocking retry per lane */
};

struct weir_poller;

struct weir_poller_ops {
    const char *name;   /* "redis" */
    const char *scheme; /* URI scheme that selects it: "redis" */
    const struct weir_encoder *encoder;
    /* The top-level keys of this source's records and which one holds the payload, for
     * filter_criteria (mapping/filter.h). NULL: the source cannot filter. */
    const struct weir_filter_shape *filter_shape;
    enum weir_semantics semantics;
    int default_batch_size;
    int max_batch_size;
    int default_window_s;
    /* Source-specific configuration rules; reports each broken rule. Called by config/. */
    void (*validate)(const struct weir_mapping_cfg *mc, struct weir_cfg_report *rep);
    /* Creates the poller for mapping m; nothing is connected until start. */
    struct weir_poller *(*new)(struct weir_mapping *m, const struct weir_mapping_cfg *mc,
                               const char *region, struct event_base *base, struct weir_err *err);
    /* Connects and starts reading whenever weir_mapping_want(m) > 0. */
    weir_status (*start)(struct weir_poller *p);
    /* The mapping can take records again after having wanted none. */
    void (*resume)(struct weir_poller *p);
    /* Applies the verdict of every record of b: DONE settled, RETRY left for redelivery,
     * RELEASE given back at once. b stays the caller's; the poller copies what it needs. */
    void (*settle)(struct weir_poller *p, const struct weir_batch *b);
    /* Stops reading; settles still work. Calls done(arg) once every server operation it started
     * has finished (or failed), so the poller can be freed. */
    void (*stop)(struct weir_poller *p, void (*done)(void *arg), void *arg);
    /* The eventSourceARN for events. */
    const char *(*source_arn)(const struct weir_poller *p);
    /* NULL is a no-op. */
    void (*free)(struct weir_poller *p);
};

/* The row whose scheme matches uri's, or NULL. */
const struct weir_poller_ops *weir_poller_find(const char *uri);
/* The registry, NULL-terminated, for help texts. */
extern const struct weir_poller_ops *const weir_pollers[];

#endif
