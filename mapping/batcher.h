/* The batcher: collects records into batches, one open batch per lane, and closes a batch when it
 * holds batch_size records, when its window (counted from its first record) ends, or before the
 * next record would push its event past the invoke payload limit. Pure: no timers, no I/O; time
 * from core/clock. */
#ifndef WEIR_BATCHER_H
#define WEIR_BATCHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/list.h"
#include "core/u32map.h"
#include "model/event.h"
#include "model/record.h"

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
    struct weir_u32map by_lane; /* lane -> its open batch */
    struct weir_list open;      /* open batches, oldest first: the order their windows end in */
    size_t pending;             /* records in open batches */
    size_t open_len;            /* bytes of an event's opening */
    size_t last_event_bytes;    /* the event_bytes of the record added last */
    /* Records of the batch closed last: the next one's event is sized for as many. */
    size_t last_closed_records;
    struct weir_buf scratch;
    weir_batcher_flush_fn flush;
    void *arg;
};

void weir_batcher_init(struct weir_batcher *bt, const struct weir_batcher_cfg *cfg,
                       weir_batcher_flush_fn flush, void *arg);
/* Frees the open batches and their records without flushing. */
void weir_batcher_deinit(struct weir_batcher *bt);
/* Adds r to its lane's open batch, taking ownership, and sets r->event_bytes. It may close that
 * batch first (payload limit) and/or after (full). A record whose element alone makes an event
 * larger than max_bytes cannot be delivered in any event: it is not taken (false), so the
 * caller can reject it. */
bool weir_batcher_add(struct weir_batcher *bt, struct weir_record *r);
/* Closes and hands over lane's open batch, if it has one. */
void weir_batcher_flush_lane(struct weir_batcher *bt, uint32_t lane);
/* Closes and hands over every open batch, oldest first. */
void weir_batcher_flush(struct weir_batcher *bt);
/* Closes and hands over every open batch, oldest first, except those of lanes hold(arg, lane)
 * says to keep open. hold must not add records or close batches. */
void weir_batcher_flush_unless(struct weir_batcher *bt, bool (*hold)(void *arg, uint32_t lane),
                               void *arg);
/* Mono ms at which the oldest open batch's window ends; -1 when nothing is open or window_ms
 * is 0. */
int64_t weir_batcher_due_ms(const struct weir_batcher *bt);
/* Closes every open batch whose window has ended by now. */
void weir_batcher_tick(struct weir_batcher *bt);
/* Records in open batches: all of them, or those of one lane. */
size_t weir_batcher_pending(const struct weir_batcher *bt);
size_t weir_batcher_pending_lane(const struct weir_batcher *bt, uint32_t lane);
/* Takes lane's open batch without closing it (its records are given back); NULL when none. */
struct weir_batch *weir_batcher_steal_lane(struct weir_batcher *bt, uint32_t lane);
/* Takes the oldest open batch without closing it (shutdown: its records are given back); NULL
 * when none is open. */
struct weir_batch *weir_batcher_steal(struct weir_batcher *bt);

#endif
