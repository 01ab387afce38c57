/* One mapping's pipeline: records from its poller go through the filter and the batcher into
 * lanes, and batches to the dispatcher; verdicts come back to the poller. It owns the poller, the
 * filter, the batcher, the lanes (order: one batch of an ordered lane in flight at a time), the
 * window and scaling timers and the bounds: batches in flight (concurrency) and bytes buffered.
 * At a bound the poller is paused, never buffered without limit. It must never talk to a server
 * itself. */
#include "mapping/mapping.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/u32map.h"
#include "dispatcher/dispatcher.h"
#include "mapping/batcher.h"
#include "mapping/filter.h"
#include "mapping/positions.h"
#include "pollers/poller.h"

/* AWS starts an SQS mapping at 5 concurrent batches and adds up to 300 a minute while messages
 * remain; weir does the same in steps of 5 a second, and steps back down when idle. */
#define SCALE_START     5
#define SCALE_STEP      5
#define SCALE_MAX       1000
#define SCALE_PERIOD_MS 1000
/* Filtered-out and rejected records are settled together at the end of each read; a read larger
 * than this settles them in runs of this many, so a huge read does not hold leases it could
 * release. */
#define SIDE_SETTLE_MAX 500
/* What a record is assumed to hold before any has been seen, for the byte budget. */
#define FIRST_RECORD_BYTES_GUESS 1024
/* An ordered lane reads ahead one batch beyond the one in flight, then waits. */
#define ORDERED_LANE_BATCHES 2
/* A stream partition's lanes (parallelization_factor of them) are numbered from its own number
 * times this. */
#define PARTITION_LANES 10

/* A lane's state in this mapping, kept while it holds anything or is paused. */
struct lane {
    uint32_t id;
    struct weir_list waiting; /* closed batches held back while one of the lane is in flight */
    size_t inflight;          /* batches of the lane with the dispatcher */
    size_t ready;             /* batches of the lane in the mapping's ready queue */
    size_t records;           /* records of the lane in its open, waiting and in-flight batches */
    bool paused;              /* the poller was told to stop reading it */
};

struct weir_mapping {
    const struct weir_mapping_cfg *mc;
    char component[96];
    char *region;
    struct event_base *base;
    struct weir_function *fn;
    const struct weir_source *src;
    struct weir_poller *p;
    const struct weir_source_info *info;
    const struct weir_event_format *format; /* the source's, or the one the mapping chose */
    /* A stream source (it checkpoints by position): where each partition can be checkpointed,
     * which partitions are paused, and how many lanes a partition is spread over. */
    bool positional;
    struct weir_positions positions;
    struct weir_u32map paused_parts; /* partition -> non-NULL while paused */
    uint32_t lanes_per_partition;
    struct weir_batcher bt;
    struct weir_event_ctx ctx;
    struct weir_disp_policy pol;
    struct weir_timer *window_timer;
    struct weir_timer *scale_timer;
    struct event *stopped_event;

    struct weir_u32map lanes; /* lane id -> struct lane */
    struct weir_list ready;   /* closed batches waiting for a concurrency slot, oldest first */
    size_t queued;            /* closed batches not yet submitted: ready and lanes' waiting */
    size_t inflight;          /* batches handed to the dispatcher and not yet back */
    size_t limit;             /* maximum_concurrency, or SCALE_MAX */
    size_t cap; /* current concurrency, scaled between min(SCALE_START, limit) and limit */
    size_t peak_inflight;    /* since the last scale tick */
    bool saturated;          /* since the last scale tick, inflight reached cap */
    size_t budget;           /* bytes of records buffered and in flight at most */
    bool read_ahead;         /* leases leave room to read a batch ahead per slot (room_any) */
    int64_t ahead_lease_ms;  /* the lease a record needs left for that: two function timeouts */
    size_t avg_record_bytes; /* a running average, to turn bytes left into records */

    bool started;
    bool stopping;
    bool poller_stop_requested;
    bool poller_stopped;
    void (*stop_done)(void *arg);
    void *stop_arg;
    struct weir_batch *release;  /* records that arrived while stopping, to give back */
    struct weir_filter *filter;  /* filter_criteria compiled; NULL when the mapping has none */
    struct weir_batch *filtered; /* records no pattern matched, to settle as done */
    struct weir_batch *rejected; /* records no event can hold, to settle as rejected */
    struct weir_mapping_stats stats;
};

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* ---- lanes ---- */

static struct lane *lane_find(const struct weir_mapping *m, uint32_t id)
{
    return weir_u32map_get(&m->lanes, id);
}

static struct lane *lane_get(struct weir_mapping *m, uint32_t id)
{
    struct lane *l = lane_find(m, id);
    if (!l) {
        l = weir_calloc(1, sizeof(*l));
        l->id = id;
        weir_list_init(&l->waiting);
        weir_u32map_put(&m->lanes, id, l);
    }
    return l;
}

/* Forgets a lane that holds nothing: lanes come and go with message groups. */
static void lane_put(struct weir_mapping *m, struct lane *l)
{
    if (l->records || l->inflight || l->ready || l->paused || !weir_list_empty(&l->waiting))
        return;
    weir_u32map_del(&m->lanes, l->id);
    free(l);
}

/* ---- room: how much the poller may read ---- */

/* Records the byte budget has room for; a mapping holding nothing always takes a first read,
 * however large its records. */
static size_t bytes_room(const struct weir_mapping *m)
{
    if (m->stats.bytes == 0)
        return SIZE_MAX;
    if (m->stats.bytes >= m->budget)
        return 0;
    size_t n = (m->budget - m->stats.bytes) / m->avg_record_bytes;
    return n ? n : 1;
}

static size_t room_any(const struct weir_mapping *m)
{
    if (!m->started || m->stopping)
        return 0;
    /* The batches that can be invoked now, and read ahead one more for each slot this mapping
     * holds, busy or free (so a slot that frees finds its next batch here, not a round trip to
     * the source away), less those already waiting. Read ahead only where leases leave room for
     * the wait: records read while the function has no free slot wait with their lease
     * ticking. */
    /* A batch that is only stored (async) takes no slot of the function. */
    size_t free_slots =
        weir_delivery_invokes(m->pol.delivery) ? weir_function_free_slots(m->fn) : SIZE_MAX;
    size_t slots = m->inflight < m->cap ? min_size(m->cap - m->inflight, free_slots) : 0;
    size_t ahead = m->read_ahead ? min_size(m->cap, m->inflight + slots) : 0;
    if (slots + ahead <= m->queued)
        return 0;
    size_t batches = slots + ahead - m->queued;
    size_t pending = weir_batcher_pending(&m->bt);
    size_t size = (size_t)m->mc->batch_size;
    size_t room = batches * size > pending ? batches * size - pending : 0;
    return min_size(room, bytes_room(m));
}

/* Records a stream partition holds at most, read, waiting and in flight together: two batches
 * per lane it is spread over, and never fewer than this, so a partition of small batches keeps
 * its next ones at hand. The byte budget bounds the memory of all partitions together. */
#define PARTITION_HELD_MIN 1000

static size_t partition_bound(const struct weir_mapping *m)
{
    size_t bound = m->lanes_per_partition * ORDERED_LANE_BATCHES * (size_t)m->mc->batch_size;
    size_t least = m->mc->stream.partition_held_min > 0 ? (size_t)m->mc->stream.partition_held_min
                                                        : PARTITION_HELD_MIN;
    return bound > least ? bound : least;
}

/* A stream partition reads until it holds its bound; then it is paused, and the consumer goes on
 * reading the others. */
static size_t room_partition(const struct weir_mapping *m, uint32_t part)
{
    if (!m->started || m->stopping)
        return 0;
    size_t bound = partition_bound(m);
    size_t held = weir_positions_held(&m->positions, part);
    return min_size(held < bound ? bound - held : 0, bytes_room(m));
}

static size_t room_lane(const struct weir_mapping *m, uint32_t id)
{
    if (id == WEIR_LANE_ANY || !m->info->ordered_lanes)
        return room_any(m);
    if (m->positional)
        return room_partition(m, id);
    if (!m->started || m->stopping)
        return 0;
    const struct lane *l = lane_find(m, id);
    size_t bound = ORDERED_LANE_BATCHES * (size_t)m->mc->batch_size;
    size_t held = l ? l->records : 0;
    return min_size(held < bound ? bound - held : 0, bytes_room(m));
}

static size_t sink_room(void *ctx, uint32_t lane)
{
    return room_lane(ctx, lane);
}

static void poller_resume(struct weir_mapping *m)
{
    if (m->started && !m->stopping && m->src->ops->resume)
        m->src->ops->resume(m->p, WEIR_LANE_ANY);
}

/* A paused partition is resumed once it holds half its bound, not at the first free place, so it
 * is read in runs rather than a record at a time (a source may pay for each resume: a fetch). */
static void partition_maybe_resume(struct weir_mapping *m, uint32_t part)
{
    if (!weir_u32map_get(&m->paused_parts, part) || m->stopping ||
        weir_positions_held(&m->positions, part) * 2 > partition_bound(m) ||
        room_partition(m, part) == 0)
        return;
    weir_u32map_del(&m->paused_parts, part);
    m->src->ops->resume(m->p, part);
}

/* Every paused partition that has room again is resumed: room comes back as any batch finishes
 * (the byte budget is shared), not only as one of the partition's own does. */
static void partitions_maybe_resume(struct weir_mapping *m)
{
    size_t n = 0, cap = m->paused_parts.n;
    if (!cap)
        return;
    /* Keys first: resuming deletes from the table, which must not happen while walking it. */
    uint32_t *parts = weir_malloc(cap * sizeof(*parts));
    for (size_t i = 0; i < m->paused_parts.cap && n < cap; i++)
        if (m->paused_parts.vals[i])
            parts[n++] = m->paused_parts.keys[i];
    for (size_t k = 0; k < n; k++)
        partition_maybe_resume(m, parts[k]);
    free(parts);
}

static void partition_maybe_pause(struct weir_mapping *m, uint32_t part)
{
    if (!m->src->ops->pause || weir_u32map_get(&m->paused_parts, part) ||
        room_partition(m, part) > 0)
        return;
    weir_u32map_put(&m->paused_parts, part, m);
    m->src->ops->pause(m->p, part);
}

/* The partition a stream record belongs to, whichever lane it went to. */
static uint32_t partition_of(const struct weir_record *r)
{
    return (uint32_t)r->partition;
}

/* Tells the poller to read l again when it was paused and has room now. */
static void lane_maybe_resume(struct weir_mapping *m, struct lane *l)
{
    if (!l->paused || m->stopping || room_lane(m, l->id) == 0)
        return;
    l->paused = false;
    m->src->ops->resume(m->p, l->id);
}

/* ---- settling ---- */

/* Marks done records in their partitions' positions and tells the source each checkpoint that
 * moved, once per partition (a batch holds one; what a filter left out may hold several). */
static void move_checkpoints(struct weir_mapping *m, struct weir_record *const *records, size_t n)
{
    uint32_t part = 0;
    uint64_t below = 0;
    bool moved = false;
    for (size_t i = 0; i < n; i++) {
        const struct weir_record *r = records[i];
        uint64_t at;
        if (moved && partition_of(r) != part) {
            m->src->ops->checkpoint(m->p, part, below);
            moved = false;
        }
        if (r->verdict == WEIR_VERDICT_DONE &&
            weir_positions_done(&m->positions, partition_of(r), r->seq, &at)) {
            part = partition_of(r);
            below = at;
            moved = true;
        }
    }
    if (moved)
        m->src->ops->checkpoint(m->p, part, below);
}

/* Hands b's verdicts to the source; for a stream, done records also move their partition's
 * checkpoint, which the source is told. */
static void settle(struct weir_mapping *m, const struct weir_batch *b)
{
    m->src->ops->settle(m->p, b);
    if (m->positional)
        move_checkpoints(m, b->records, b->n);
}

/* The stream policy's word that records of a batch it still holds are done. */
static void on_records_done(void *ctx, struct weir_record *const *records, size_t n)
{
    struct weir_mapping *m = ctx;
    if (m->positional)
        move_checkpoints(m, records, n);
}

/* ---- batches to the dispatcher and back ---- */

static void maybe_finish_stop(struct weir_mapping *m);
static void on_batch_done(void *arg, struct weir_batch *b);

static void submit(struct weir_mapping *m, struct weir_batch *b)
{
    struct lane *l = lane_get(m, b->lane);
    l->inflight++;
    m->inflight++;
    if (m->inflight > m->peak_inflight)
        m->peak_inflight = m->inflight;
    if (m->inflight >= m->cap)
        m->saturated = true;
    m->stats.inflight = m->inflight;
    weir_trace(m->component, "batch submitted lane=%u records=%zu bytes=%zu inflight=%zu", b->lane,
               b->n, b->event.len, m->inflight);
    weir_disp_submit(m->fn, b, &m->pol, on_batch_done, m);
}

/* Submits ready batches while the concurrency allows. */
static void pump_ready(struct weir_mapping *m)
{
    struct weir_list *node;
    while (m->inflight < m->cap && (node = weir_list_pop_front(&m->ready))) {
        struct weir_batch *b = weir_list_entry(node, struct weir_batch, link);
        m->queued--;
        lane_get(m, b->lane)->ready--;
        submit(m, b);
    }
}

static void make_ready(struct weir_mapping *m, struct weir_batch *b)
{
    weir_list_push_back(&m->ready, &b->link);
    m->queued++;
    lane_get(m, b->lane)->ready++;
    pump_ready(m);
}

/* Counts b's verdicts into the stats; true when a record is to retry or was released (not
 * done). One pass: the records are cold by the time their batch is done. */
static bool count_verdicts(struct weir_mapping *m, const struct weir_batch *b)
{
    bool not_done = false;
    for (size_t i = 0; i < b->n; i++) {
        enum weir_verdict v = b->records[i]->verdict;
        not_done |= v == WEIR_VERDICT_RETRY || v == WEIR_VERDICT_RELEASE;
        switch (v) {
        case WEIR_VERDICT_DONE:
            m->stats.records_done++;
            break;
        case WEIR_VERDICT_RELEASE:
            m->stats.records_released++;
            break;
        case WEIR_VERDICT_REJECT:
            m->stats.records_rejected++;
            break;
        default:
            m->stats.records_retry++;
            break;
        }
    }
    return not_done;
}

/* Gives b's records back to the source unsent and frees b. */
static void give_back(struct weir_mapping *m, struct weir_batch *b)
{
    weir_batch_set_verdicts(b, WEIR_VERDICT_RELEASE);
    m->stats.records_released += b->n;
    settle(m, b);
    weir_batch_free(b);
}

/* Accounts a batch that leaves the mapping: it is neither buffered nor in flight any more. */
static void forget_batch(struct weir_mapping *m, struct lane *l, const struct weir_batch *b)
{
    l->records -= b->n;
    m->stats.bytes -= b->bytes;
}

/* Moves b's records to the end of run (b is left empty). */
static void move_records(struct weir_batch *run, struct weir_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        weir_batch_take(run, b->records[i]);
    b->n = 0;
}

/* Gives back to the source every record of lane l not sent yet, in the lane's order and in one
 * settle: `run` first (records that came back unsent, or an empty batch), then the lane's
 * waiting batches, oldest first, then its open batch. One settle, because a source that puts
 * records back at the head of a lane (a FIFO message group) keeps one run's order but would
 * reverse the order of several. Takes run. Returns how many went back. */
static size_t give_back_lane(struct weir_mapping *m, struct lane *l, struct weir_batch *run)
{
    struct weir_list *node;
    while ((node = weir_list_pop_front(&l->waiting))) {
        struct weir_batch *b = weir_list_entry(node, struct weir_batch, link);
        m->queued--;
        forget_batch(m, l, b);
        move_records(run, b);
        weir_batch_free(b);
    }
    struct weir_batch *open = weir_batcher_steal_lane(&m->bt, l->id);
    if (open) {
        l->records -= open->n;
        for (size_t i = 0; i < open->n; i++)
            m->stats.bytes -= open->records[i]->data_len + open->records[i]->event_bytes;
        move_records(run, open);
        weir_batch_free(open);
    }
    size_t n = run->n;
    if (n)
        give_back(m, run);
    else
        weir_batch_free(run);
    return n;
}

/* A failure blocks its lane, as SQS FIFO blocks a message group: what came back unsent of b
 * and every later record of the lane held here go back to the source, so the failed records
 * come back (in the lane's order) before them. b's other verdicts are settled as they are. */
static void block_lane(struct weir_mapping *m, struct lane *l, struct weir_batch *b)
{
    struct weir_batch *run = weir_batch_new(l->id);
    size_t kept = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (b->records[i]->verdict == WEIR_VERDICT_RELEASE)
            weir_batch_take(run, b->records[i]);
        else
            b->records[kept++] = b->records[i];
    }
    b->n = kept;
    if (b->n)
        settle(m, b);
    size_t unsent = run->n;
    m->stats.records_released -= unsent; /* counted with b's verdicts already */
    size_t n = give_back_lane(m, l, run);
    if (n > unsent)
        weir_debug(m->component,
                   "lane blocked by a failure; later records given back lane=%u records=%zu", l->id,
                   n - unsent);
}

static void on_batch_done(void *arg, struct weir_batch *b)
{
    struct weir_mapping *m = arg;
    struct lane *l = lane_get(m, b->lane);
    m->inflight--;
    m->stats.inflight = m->inflight;
    l->inflight--;
    forget_batch(m, l, b);
    m->stats.invocations += b->invocations;
    /* In an ordered lane a record that is not done (to retry, or never sent) holds back the
     * lane's later records. Not in a stream outside a stop: a stream batch comes back not done
     * only when its partition was revoked, and what the lane holds now was read since, maybe of
     * the same partition assigned again; its checkpoint stays below what was not done. */
    bool not_done = count_verdicts(m, b);
    bool blocked = m->info->ordered_lanes && not_done && (!m->positional || m->stopping);
    if (blocked) {
        block_lane(m, l, b);
    } else {
        settle(m, b);
        if (m->info->ordered_lanes && !l->inflight) {
            struct weir_list *next = weir_list_pop_front(&l->waiting);
            if (next) {
                m->queued--;
                make_ready(m, weir_list_entry(next, struct weir_batch, link));
            } else if (m->bt.cfg.window_ms == 0 && !m->stopping) {
                /* The batch lane_busy kept open goes now. */
                weir_batcher_flush_lane(&m->bt, b->lane);
            }
        }
    }
    weir_batch_free(b);
    pump_ready(m);
    if (m->stopping) {
        lane_put(m, l);
        maybe_finish_stop(m);
        return;
    }
    if (m->positional)
        partitions_maybe_resume(m);
    else
        lane_maybe_resume(m, l);
    lane_put(m, l);
    poller_resume(m);
}

static void on_batch_closed(void *arg, struct weir_batch *b)
{
    struct weir_mapping *m = arg;
    struct lane *l = lane_get(m, b->lane);
    m->stats.batches++;
    b->bytes = 0;
    for (size_t i = 0; i < b->n; i++)
        b->bytes += b->records[i]->data_len + b->records[i]->event_bytes;
    /* An ordered lane sends one batch at a time: a later one waits while another of the lane
     * is in flight or ready to go. */
    if (m->info->ordered_lanes && (l->inflight || l->ready || !weir_list_empty(&l->waiting))) {
        weir_list_push_back(&l->waiting, &b->link);
        m->queued++;
        return;
    }
    make_ready(m, b);
}

/* ---- timers ---- */

static void arm_window(struct weir_mapping *m)
{
    int64_t due = weir_batcher_due_ms(&m->bt);
    if (due < 0)
        weir_timer_stop(m->window_timer);
    else if (due != weir_timer_due(m->window_timer))
        weir_timer_at(m->window_timer, due);
}

static void on_window(void *arg)
{
    struct weir_mapping *m = arg;
    weir_batcher_tick(&m->bt);
    arm_window(m);
    poller_resume(m);
}

/* Whether the mapping's concurrency scales with the backlog, as AWS scales SQS pollers. */
static bool scales_with_backlog(const struct weir_mapping *m)
{
    return m->pol.delivery == WEIR_DELIVERY_QUEUE;
}

static void on_scale(void *arg)
{
    struct weir_mapping *m = arg;
    if (!scales_with_backlog(m))
        return; /* its cap is fixed */
    size_t floor = min_size(SCALE_START, m->limit);
    size_t before = m->cap;
    if (m->saturated)
        m->cap = min_size(m->limit, m->cap + SCALE_STEP);
    else if (m->peak_inflight * 2 < m->cap && m->cap > floor)
        m->cap = m->cap - SCALE_STEP < floor ? floor : m->cap - SCALE_STEP;
    if (m->cap != before)
        weir_debug(m->component, "concurrency %s concurrency=%zu",
                   m->cap > before ? "raised" : "lowered", m->cap);
    m->saturated = m->inflight >= m->cap;
    m->peak_inflight = m->inflight;
    weir_timer_after(m->scale_timer, SCALE_PERIOD_MS);
    if (m->cap > before) {
        pump_ready(m);
        poller_resume(m);
    }
}

static void on_function_slot(void *arg)
{
    poller_resume(arg);
}

/* ---- records from the poller ---- */

/* Settles what collected in *side (filtered out: done; too large: rejected). */
static void settle_side(struct weir_mapping *m, struct weir_batch **side)
{
    struct weir_batch *b = *side;
    if (!b)
        return;
    *side = NULL;
    settle(m, b);
    weir_batch_free(b);
}

static void set_aside(struct weir_mapping *m, struct weir_batch **side, struct weir_record *r)
{
    if (!*side)
        *side = weir_batch_new(r->lane);
    weir_batch_take(*side, r);
    if ((*side)->n >= SIDE_SETTLE_MAX)
        settle_side(m, side);
}

static void hold_for_release(struct weir_mapping *m, struct weir_record *r)
{
    if (!m->release)
        m->release = weir_batch_new(0);
    weir_batch_take(m->release, r);
}

static void sink_deliver(void *ctx, struct weir_record *r)
{
    struct weir_mapping *m = ctx;
    m->stats.records_in++;
    if (m->stopping) {
        hold_for_release(m, r);
        return;
    }
    /* Before the batcher, as Lambda filters before batching: a filtered record takes no room in
     * a batch and never reaches the function. */
    uint32_t part = partition_of(r);
    if (m->positional) {
        r->lane = part;
        if (!weir_positions_add(&m->positions, part, r->seq))
            weir_warn(m->component,
                      "partition read again from an earlier position; its checkpoint starts over "
                      "partition=%u seq=%llu",
                      part, (unsigned long long)r->seq);
        if (m->lanes_per_partition > 1)
            r->lane = part * PARTITION_LANES +
                      (r->key ? weir_lane_of(r->key, r->key_len) % m->lanes_per_partition : 0);
    }
    if (m->filter && !weir_filter_match(m->filter, r, m->format->encoder, &m->ctx)) {
        m->stats.records_filtered++;
        r->verdict = WEIR_VERDICT_DONE;
        set_aside(m, &m->filtered, r);
        return;
    }
    struct lane *l = lane_get(m, r->lane);
    uint32_t lane = r->lane;
    size_t bytes = r->data_len;
    int64_t deadline = r->deadline_ms;
    l->records++;
    if (!weir_batcher_add(&m->bt, r)) {
        /* No event can hold it: delivering it is impossible, and reading it again would only
         * repeat this. The source moves it to its dead-letter target, with the reason. */
        l->records--;
        m->stats.records_rejected++;
        weir_log_limited(WEIR_LOG_ERROR, m->component,
                         "record too large for any event; rejected id=%s bytes=%zu limit=%d", r->id,
                         r->event_bytes, WEIR_INVOKE_PAYLOAD_MAX);
        weir_record_reject(r,
                           "its event element of %zu bytes is over the %d-byte invoke payload "
                           "limit",
                           r->event_bytes, WEIR_INVOKE_PAYLOAD_MAX);
        if (m->positional) {
            /* A stream's policy gives it up to the failure destination (reference 1.6,
             * MaximumPayloadSizeExceeded), in a batch of its own that takes its turn in the lane
             * after the records before it. */
            uint32_t at = r->lane;
            weir_batcher_flush_lane(&m->bt, at);
            struct weir_batch *alone = weir_batch_new(at);
            weir_batch_take(alone, r);
            lane_get(m, at)->records++;
            m->stats.bytes += r->data_len + r->event_bytes;
            on_batch_closed(m, alone);
            return;
        }
        set_aside(m, &m->rejected, r);
        lane_put(m, l);
        return;
    }
    /* r may be in a batch submitted just now: it is not read again (the batcher keeps its size),
     * though the dispatcher never answers from inside a submit. */
    bytes += m->bt.last_event_bytes;
    m->read_ahead = !deadline || deadline - weir_clock_mono_ms() >= m->ahead_lease_ms;
    m->stats.bytes += bytes;
    if (m->stats.bytes > m->stats.peak_bytes)
        m->stats.peak_bytes = m->stats.bytes;
    m->avg_record_bytes = (m->avg_record_bytes * 7 + bytes) / 8;
    if (!m->avg_record_bytes)
        m->avg_record_bytes = 1;
    l = lane_find(m, lane);
    if (m->positional) {
        partition_maybe_pause(m, part);
    } else if (l && m->info->ordered_lanes && m->src->ops->pause && !l->paused &&
               room_lane(m, lane) == 0) {
        l->paused = true;
        m->src->ops->pause(m->p, lane);
    }
    arm_window(m);
}

static void release_pending(struct weir_mapping *m)
{
    if (!m->release || !m->release->n)
        return;
    struct weir_batch *b = m->release;
    m->release = NULL;
    give_back(m, b);
}

/* With no batching window a batch closes at the end of a read; but one of an ordered lane that
 * has a batch in flight or waiting could not go before that one is done anyway, so it stays open
 * and goes on filling until then (on_batch_done closes it): as full as AWS's next poll of the
 * shard would be, not as small as one socket read. */
static bool lane_busy(void *arg, uint32_t lane)
{
    struct weir_mapping *m = arg;
    if (!m->info->ordered_lanes)
        return false;
    struct lane *l = lane_find(m, lane);
    return l && (l->inflight || l->ready || !weir_list_empty(&l->waiting));
}

static void sink_read_done(void *ctx)
{
    struct weir_mapping *m = ctx;
    if (m->filtered)
        weir_debug(m->component, "filtered out records=%zu total=%llu", m->filtered->n,
                   (unsigned long long)m->stats.records_filtered);
    settle_side(m, &m->filtered);
    settle_side(m, &m->rejected);
    if (m->stopping) {
        release_pending(m);
        return;
    }
    if (m->bt.cfg.window_ms == 0)
        weir_batcher_flush_unless(&m->bt, lane_busy, m);
    arm_window(m);
}

/* A partition revoked from this consumer: what is not sent of it is dropped (the source reads it
 * again, here or elsewhere, from its checkpoint); batches of it in flight finish. */
static void sink_forget(void *ctx, uint32_t part)
{
    struct weir_mapping *m = ctx;
    if (!m->positional)
        return;
    size_t dropped = 0;
    struct weir_list *node, *tmp;
    weir_list_foreach_safe(node, tmp, &m->ready)
    {
        struct weir_batch *b = weir_list_entry(node, struct weir_batch, link);
        if (!b->n || partition_of(b->records[0]) != part)
            continue;
        struct lane *l = lane_get(m, b->lane);
        weir_list_remove(&b->link);
        m->queued--;
        l->ready--;
        forget_batch(m, l, b);
        dropped += b->n;
        weir_batch_free(b);
        lane_put(m, l);
    }
    for (uint32_t k = 0; k < m->lanes_per_partition; k++) {
        uint32_t id = m->lanes_per_partition > 1 ? part * PARTITION_LANES + k : part;
        struct lane *l = lane_find(m, id);
        if (!l)
            continue;
        while ((node = weir_list_pop_front(&l->waiting))) {
            struct weir_batch *b = weir_list_entry(node, struct weir_batch, link);
            m->queued--;
            forget_batch(m, l, b);
            dropped += b->n;
            weir_batch_free(b);
        }
        struct weir_batch *open = weir_batcher_steal_lane(&m->bt, id);
        if (open) {
            l->records -= open->n;
            for (size_t i = 0; i < open->n; i++)
                m->stats.bytes -= open->records[i]->data_len + open->records[i]->event_bytes;
            dropped += open->n;
            weir_batch_free(open);
        }
        l->paused = false;
        lane_put(m, l);
    }
    weir_positions_forget(&m->positions, part);
    weir_u32map_del(&m->paused_parts, part);
    if (m->pol.stream)
        weir_stream_forget(m->pol.stream, (int32_t)part);
    weir_info(m->component,
              "partition forgotten (revoked, or its connection lost) partition=%u "
              "dropped_unsent=%zu",
              part, dropped);
}

static const struct weir_sink_ops sink_ops = {
    .room = sink_room,
    .deliver = sink_deliver,
    .read_done = sink_read_done,
    .forget = sink_forget,
};

/* ---- life ---- */

/* The configuration was checked when loaded; this compiles it again for this source's records
 * (and refuses it for a caller that skipped the check). */
static bool compile_filter(struct weir_mapping *m, struct weir_err *err)
{
    const struct weir_mapping_cfg *mc = m->mc;
    const char *texts[WEIR_FILTER_MAX_PATTERNS];
    size_t lens[WEIR_FILTER_MAX_PATTERNS], bad = 0;
    struct weir_filter_error ferr;
    if (!m->format->filter_shape) {
        weir_err_set(err, "the %s source cannot filter records", m->src->config.name);
        return false;
    }
    if (mc->n_filters > WEIR_FILTER_MAX_PATTERNS) {
        weir_err_set(err, "%zu filters; at most %d", mc->n_filters, WEIR_FILTER_MAX_PATTERNS);
        return false;
    }
    for (size_t i = 0; i < mc->n_filters; i++) {
        texts[i] = mc->filters[i].pattern;
        lens[i] = mc->filters[i].pattern_len;
    }
    m->filter = weir_filter_new(texts, lens, mc->n_filters, m->format->filter_shape, &bad, &ferr);
    if (!m->filter) {
        weir_err_set(err, "filter_criteria.filters[%zu].pattern: at %s (offset %zu): %s", bad,
                     ferr.path[0] ? ferr.path : "the top", ferr.offset, ferr.msg);
        return false;
    }
    return true;
}

struct weir_mapping *weir_mapping_new(const struct weir_mapping_cfg *mc, const char *region,
                                      struct weir_function *fn, struct event_base *base,
                                      struct weir_store *store, struct weir_err *err)
{
    const struct weir_source *src = mc->src ? weir_source_of(mc->src) : NULL;
    if (!src) {
        weir_err_set(err, "no source handles '%s'", mc->source);
        return NULL;
    }
    return weir_mapping_new_with(mc, src, region, fn, base, store, err);
}

struct weir_mapping *weir_mapping_new_with(const struct weir_mapping_cfg *mc,
                                           const struct weir_source *src, const char *region,
                                           struct weir_function *fn, struct event_base *base,
                                           struct weir_store *store, struct weir_err *err)
{
    struct weir_mapping *m = weir_calloc(1, sizeof(*m));
    m->mc = mc;
    m->base = base;
    m->fn = fn;
    m->src = src;
    m->region = weir_strdup(region);
    snprintf(m->component, sizeof(m->component), "mapping/%s", mc->name);
    m->limit = mc->maximum_concurrency > 0 ? (size_t)mc->maximum_concurrency : SCALE_MAX;
    m->cap = min_size(SCALE_START, m->limit);
    m->budget = (size_t)(mc->maximum_buffered_mib > 0 ? mc->maximum_buffered_mib : 64) << 20;
    m->avg_record_bytes = FIRST_RECORD_BYTES_GUESS;
    /* A record read ahead may wait one invocation for its slot, then take one: its lease must
     * cover both, with a second to spare. Until a record says otherwise, do not read ahead. */
    m->ahead_lease_ms = 2 * (int64_t)(mc->fn ? mc->fn->timeout : 900) * 1000 + 1000;
    weir_u32map_init(&m->lanes);
    weir_list_init(&m->ready);
    m->format = src->format_of ? src->format_of(mc) : src->format;
    m->positional = src->ops->checkpoint != NULL;
    weir_positions_init(&m->positions);
    weir_u32map_init(&m->paused_parts);
    m->lanes_per_partition =
        mc->stream.parallelization_factor > 1 ? (uint32_t)mc->stream.parallelization_factor : 1;
    m->window_timer = weir_timer_new(base, on_window, m);
    m->scale_timer = weir_timer_new(base, on_scale, m);
    if (mc->n_filters && !compile_filter(m, err))
        goto fail;
    struct weir_poller_args args = {
        .mc = mc,
        .region = region,
        .component = m->component,
        .base = base,
        .sink = {.ops = &sink_ops, .ctx = m},
        .format = m->format,
        .store = store,
    };
    m->p = src->ops->new (&args, err);
    if (!m->p)
        goto fail;
    m->info = src->ops->info(m->p);
    m->ctx.source_arn = m->info->source_arn;
    m->ctx.region = m->region;
    m->ctx.mapping_name = mc->name;
    m->ctx.endpoint = m->info->endpoint;
    m->ctx.stream_label = m->info->stream_label;
    m->ctx.stream_view_type = m->info->stream_view_type;
    m->ctx.arrays_as_sets = m->info->arrays_as_sets;
    m->pol.delivery = src->delivery;
    m->pol.format = m->format;
    m->pol.ctx = &m->ctx;
    m->pol.records_done = on_records_done;
    m->pol.records_done_ctx = m;
    if (src->delivery == WEIR_DELIVERY_STREAM) {
        m->pol.stream = weir_stream_new(fn, &mc->stream, mc->name, region, base, err);
        if (!m->pol.stream)
            goto fail;
    }
    /* Storing needs no scaling up as pollers do (AWS scales SQS pollers; S3 pushes), and a
     * stream's concurrency is its lanes (partitions x parallelization_factor, one batch each):
     * all the batches the mapping may have in flight at once from the start. */
    if (!scales_with_backlog(m))
        m->cap = m->limit;
    m->pol.report_batch_item_failures = mc->report_batch_item_failures;
    m->pol.mapping_name = mc->name;
    struct weir_batcher_cfg bc = {
        .batch_size = (size_t)mc->batch_size,
        /* Tests build a configuration by hand, with the seconds only. */
        .window_ms = mc->batching_window_ms
                         ? mc->batching_window_ms
                         : (int64_t)mc->maximum_batching_window_in_seconds * 1000,
        .max_bytes = WEIR_INVOKE_PAYLOAD_MAX,
        .encoder = m->format->encoder,
        .ctx = &m->ctx,
    };
    weir_batcher_init(&m->bt, &bc, on_batch_closed, m);
    return m;
fail:
    weir_mapping_free(m);
    return NULL;
}

weir_status weir_mapping_start(struct weir_mapping *m)
{
    if (!m->mc->enabled) {
        weir_info(m->component, "disabled (enabled: false); not reading source=%s",
                  m->src->config.name);
        return WEIR_OK;
    }
    m->started = true;
    weir_function_watch(m->fn, on_function_slot, m);
    weir_timer_after(m->scale_timer, SCALE_PERIOD_MS);
    if (m->src->ops->start(m->p) != WEIR_OK)
        return WEIR_ERR;
    weir_info(m->component,
              "started source=%s function=%s delivery=%s format=%s ordered_lanes=%s batch_size=%d "
              "window_ms=%lld max_concurrency=%zu buffer_mib=%zu report_batch_item_failures=%s "
              "filters=%zu",
              m->src->config.name, weir_function_name(m->fn), weir_delivery_name(m->pol.delivery),
              m->format->name, m->info->ordered_lanes ? "true" : "false", m->mc->batch_size,
              (long long)m->bt.cfg.window_ms, m->limit, m->budget >> 20,
              m->mc->report_batch_item_failures ? "true" : "false", m->mc->n_filters);
    return WEIR_OK;
}

static void on_stopped_event(evutil_socket_t fd, short what, void *arg)
{
    struct weir_mapping *m = arg;
    weir_info(
        m->component,
        "stopped records_in=%llu done=%llu retry=%llu released=%llu filtered=%llu "
        "rejected=%llu invocations=%llu",
        (unsigned long long)m->stats.records_in, (unsigned long long)m->stats.records_done,
        (unsigned long long)m->stats.records_retry, (unsigned long long)m->stats.records_released,
        (unsigned long long)m->stats.records_filtered,
        (unsigned long long)m->stats.records_rejected, (unsigned long long)m->stats.invocations);
    if (m->pol.stream) {
        const struct weir_stream_stats *st = weir_stream_stats(m->pol.stream);
        weir_info(m->component,
                  "stream attempts=%llu retries=%llu throttles=%llu bisections=%llu "
                  "retries_exhausted=%llu record_age_exceeded=%llu too_large=%llu "
                  "to_destination=%llu destination_failures=%llu",
                  (unsigned long long)st->attempts, (unsigned long long)st->retries,
                  (unsigned long long)st->throttles, (unsigned long long)st->bisections,
                  (unsigned long long)st->retries_exhausted,
                  (unsigned long long)st->record_age_exceeded, (unsigned long long)st->too_large,
                  (unsigned long long)st->delivered, (unsigned long long)st->delivery_failures);
    }
    if (m->stop_done)
        m->stop_done(m->stop_arg);
}

static void on_poller_stopped(void *arg)
{
    struct weir_mapping *m = arg;
    m->poller_stopped = true;
    /* Defer: the poller may call us from inside its own callback, and our caller may free it. */
    event_active(m->stopped_event, EV_TIMEOUT, 0);
}

static void maybe_finish_stop(struct weir_mapping *m)
{
    settle_side(m, &m->filtered);
    settle_side(m, &m->rejected);
    release_pending(m);
    if (m->inflight || m->poller_stop_requested)
        return;
    m->poller_stop_requested = true;
    m->src->ops->stop(m->p, on_poller_stopped, m);
}

/* Every record not yet submitted (in a ready batch, waiting in a lane, in an open batch) goes
 * back to the source, lane by lane in each lane's order. */
static size_t give_back_unsent(struct weir_mapping *m)
{
    size_t n = 0;
    struct weir_list *node;
    /* A lane's ready batch is its oldest unsent one: it leads the lane's run. */
    while ((node = weir_list_pop_front(&m->ready))) {
        struct weir_batch *b = weir_list_entry(node, struct weir_batch, link);
        struct lane *l = lane_get(m, b->lane);
        m->queued--;
        l->ready--;
        forget_batch(m, l, b);
        struct weir_batch *run = weir_batch_new(l->id);
        move_records(run, b);
        weir_batch_free(b);
        n += give_back_lane(m, l, run);
        lane_put(m, l);
    }
    for (size_t i = 0; i < m->lanes.cap; i++) {
        struct lane *l = m->lanes.vals[i];
        if (l && !weir_list_empty(&l->waiting))
            n += give_back_lane(m, l, weir_batch_new(l->id));
    }
    /* What remains open belongs to lanes with nothing waiting. */
    struct weir_batch *b;
    while ((b = weir_batcher_steal(&m->bt))) {
        struct lane *l = lane_get(m, b->lane);
        l->records -= b->n;
        for (size_t k = 0; k < b->n; k++)
            m->stats.bytes -= b->records[k]->data_len + b->records[k]->event_bytes;
        n += b->n;
        give_back(m, b);
        lane_put(m, l);
    }
    return n;
}

void weir_mapping_stop(struct weir_mapping *m, void (*done)(void *arg), void *arg)
{
    m->stop_done = done;
    m->stop_arg = arg;
    m->stopped_event = event_new(m->base, -1, 0, on_stopped_event, m);
    if (!m->started) {
        event_active(m->stopped_event, EV_TIMEOUT, 0);
        return;
    }
    m->stopping = true;
    weir_timer_stop(m->window_timer);
    weir_timer_stop(m->scale_timer);
    weir_function_unwatch(m->fn, on_function_slot, m);
    size_t given = give_back_unsent(m);
    if (m->pol.stream)
        weir_stream_stop(m->pol.stream);
    weir_info(m->component, "stopping inflight_batches=%zu giving_back=%zu", m->inflight,
              given + (m->release ? m->release->n : 0));
    maybe_finish_stop(m);
}

void weir_mapping_free(struct weir_mapping *m)
{
    if (!m)
        return;
    if (m->started && !m->stopping)
        weir_function_unwatch(m->fn, on_function_slot, m);
    if (m->p)
        weir_batcher_deinit(&m->bt);
    struct weir_list *node;
    while ((node = weir_list_pop_front(&m->ready)))
        weir_batch_free(weir_list_entry(node, struct weir_batch, link));
    for (size_t i = 0; i < m->lanes.cap; i++) {
        struct lane *l = m->lanes.vals[i];
        if (!l)
            continue;
        while ((node = weir_list_pop_front(&l->waiting)))
            weir_batch_free(weir_list_entry(node, struct weir_batch, link));
        free(l);
    }
    weir_u32map_deinit(&m->lanes);
    if (m->p)
        m->src->ops->free(m->p);
    weir_batch_free(m->release);
    weir_batch_free(m->filtered);
    weir_batch_free(m->rejected);
    weir_filter_free(m->filter);
    weir_stream_free(m->pol.stream);
    weir_positions_deinit(&m->positions);
    weir_u32map_deinit(&m->paused_parts);
    weir_timer_free(m->window_timer);
    weir_timer_free(m->scale_timer);
    if (m->stopped_event)
        event_free(m->stopped_event);
    free(m->region);
    free(m);
}

const char *weir_mapping_name(const struct weir_mapping *m)
{
    return m->mc->name;
}

const struct weir_mapping_stats *weir_mapping_stats(const struct weir_mapping *m)
{
    return &m->stats;
}
