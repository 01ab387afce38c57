/* The batcher: collects records into batches and closes a batch when it holds batch_size records,
 * when its window (counted from its first record) ends, or before the next record would push
 * the event past the invoke payload limit. Pure: no timers, no I/O; time from core/clock. */
#ifndef WEIR_BATCHER_H
#define WEIR_BATCHER_H

#include <stddef.h>
#include <stdint.h>

#include "mapping/encode.h"
#include "mapping/record.h"

struct weir_batcher_cfg {
    size_t batch_size;
    int64_t window_ms; /* 0: close on weir_batcher_flush (end of a read) or when full */
    size_t max_bytes;  /* WEIR_INVOKE_PAYLOAD_MAX outside tests */
    const struct weir_encoder *encoder;
    const struct weir_event_ctx *ctx; /* borrowed for the batcher's life */
};

/* Receives a closed batch with its event complete; takes ownership of b. */
typedef void (*weir_batcher_flush_fn)(void *arg, struct weir_batch *b);

struct weir_batcher {
    struct weir_batcher_cfg cfg;
    struct weir_mapping *m;
    struct weir_batch *open; /* NULL when nothing is pending */
    struct weir_buf scratch;
    weir_batcher_flush_fn flush;
    void *arg;
};

void weir_batcher_init(struct weir_batcher *bt, const struct weir_batcher_cfg *cfg,
                       struct weir_mapping *m, weir_batcher_flush_fn flush, void *arg);
/* Frees the open batch and its records without flushing. */
void weir_batcher_deinit(struct weir_batcher *bt);
/* Adds r (ownership taken). May close the open batch first (payload limit) and/or after (full).
 * A record whose event alone passes max_bytes is closed in a batch of its own; the dispatcher
 * refuses it. */
void weir_batcher_add(struct weir_batcher *bt, struct weir_record *r);
/* Closes and hands over the open batch, if any. */
void weir_batcher_flush(struct weir_batcher *bt);
/* Mono ms at which the open batch's window ends; -1 when nothing is open or window_ms is 0. */
int64_t weir_batcher_due_ms(const struct weir_batcher *bt);
/* Closes the open batch if its window has ended by now. */
void weir_batcher_tick(struct weir_batcher *bt);
/* Records in the open batch. */
size_t weir_batcher_pending(const struct weir_batcher *bt);
/* Takes the open batch without closing it (shutdown: its records are given back). */
struct weir_batch *weir_batcher_steal(struct weir_batcher *bt);

#endif
