/* One mapping: a source's records -> batches -> the dispatcher, and verdicts back to the source.
 * It owns its poller, batcher and window timer; it must never talk to a server itself. */
#ifndef WEIR_MAPPING_H
#define WEIR_MAPPING_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "mapping/record.h"

struct event_base;
struct weir_mapping_cfg;
struct weir_function;
struct weir_poller_ops;

struct weir_mapping;

/* cfg and fn are borrowed and must outlive the mapping. */
struct weir_mapping *weir_mapping_new(const struct weir_mapping_cfg *cfg, const char *region,
                                      struct weir_function *fn, struct event_base *base,
                                      struct weir_err *err);
/* The same with the source protocol given: tests drive the mapping with a fake poller. */
struct weir_mapping *weir_mapping_new_with(const struct weir_mapping_cfg *cfg,
                                           const struct weir_poller_ops *ops, const char *region,
                                           struct weir_function *fn, struct event_base *base,
                                           struct weir_err *err);
/* Starts the poller (a disabled mapping logs and stays idle). */
weir_status weir_mapping_start(struct weir_mapping *m);
/* Graceful stop: reads no more, gives back records not yet sent, waits for batches in flight,
 * then for the poller's last settles; calls done(arg) once all is quiet. */
void weir_mapping_stop(struct weir_mapping *m, void (*done)(void *arg), void *arg);
/* NULL is a no-op. */
void weir_mapping_free(struct weir_mapping *m);

const char *weir_mapping_name(const struct weir_mapping *m);

/* Called by the poller. */
/* How many records the mapping can take now: room for every batch it could invoke at once,
 * less what its open batch holds. 0 means pause (resume() is called later). */
size_t weir_mapping_want(const struct weir_mapping *m);
/* Hands r to the mapping; ownership is taken. */
void weir_mapping_deliver(struct weir_mapping *m, struct weir_record *r);
/* The poller finished one read: with a zero batching window the open batch closes now. */
void weir_mapping_read_done(struct weir_mapping *m);

/* Counters, for logs, metrics and tests. */
struct weir_mapping_stats {
    uint64_t records_in;
    uint64_t batches;
    uint64_t invocations;
    uint64_t records_done;
    uint64_t records_retry;
    uint64_t records_released;
    uint64_t records_filtered; /* matched no filter_criteria pattern: settled, never invoked */
};
const struct weir_mapping_stats *weir_mapping_stats(const struct weir_mapping *m);

#endif
