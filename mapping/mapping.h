/* One mapping: a source's records -> filter -> lanes and batches -> the dispatcher, and verdicts
 * back to the source. It owns its poller, filter, batcher, lanes, timers and its bounds (batches
 * in flight, bytes buffered); it must never talk to a server itself. */
#ifndef WEIR_MAPPING_H
#define WEIR_MAPPING_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "model/record.h"

struct event_base;
struct weir_mapping_cfg;
struct weir_function;
struct weir_source;
struct weir_store;

struct weir_mapping;

/* The mapping of mc, reading the source mc->src names. mc, fn and store are borrowed and must
 * outlive the mapping. store: weir's durable state, handed to a source that keeps some there
 * (the bucket's catalog); NULL when it is not open. */
struct weir_mapping *weir_mapping_new(const struct weir_mapping_cfg *mc, const char *region,
                                      struct weir_function *fn, struct event_base *base,
                                      struct weir_store *store, struct weir_err *err);
/* The same with the source row given: tests drive the mapping with a fake source. */
struct weir_mapping *weir_mapping_new_with(const struct weir_mapping_cfg *mc,
                                           const struct weir_source *src, const char *region,
                                           struct weir_function *fn, struct event_base *base,
                                           struct weir_store *store, struct weir_err *err);
/* Starts the poller (a disabled mapping logs and stays idle). */
weir_status weir_mapping_start(struct weir_mapping *m);
/* Graceful stop: reads no more, gives back records not yet sent, waits for batches in flight,
 * then for the poller's last settles; calls done(arg) once all is quiet. */
void weir_mapping_stop(struct weir_mapping *m, void (*done)(void *arg), void *arg);
/* NULL is a no-op. */
void weir_mapping_free(struct weir_mapping *m);

const char *weir_mapping_name(const struct weir_mapping *m);

/* Counters, for logs, metrics and tests. */
struct weir_mapping_stats {
    uint64_t records_in;
    uint64_t batches;
    uint64_t invocations;
    uint64_t records_done;
    uint64_t records_retry;
    uint64_t records_released;
    uint64_t records_filtered; /* matched no filter_criteria pattern: settled, never invoked */
    uint64_t records_rejected; /* could never be delivered (too large): to the dead-letter target */
    size_t bytes;              /* bytes of records buffered and in flight, now */
    size_t peak_bytes;
    size_t inflight; /* batches with the dispatcher, now */
};
const struct weir_mapping_stats *weir_mapping_stats(const struct weir_mapping *m);

#endif
