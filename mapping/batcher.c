/* The batcher: records -> batches of one lane, each closed on size, window (counted from its
 * first record), payload limit, lane change or an explicit flush, with its event built as the
 * records arrive. Pure: it owns no timer and does no I/O; it must never invoke or drop a record.
 * Each record is encoded exactly once, into scratch, so the size check costs no second pass. */
#include "mapping/batcher.h"

#include <assert.h>
#include <string.h>

#include "core/clock.h"

/* Every event shape weir writes is a JSON array of records: one comma between elements. */
#define SEPARATOR_LEN 1

#define SCRATCH_KEEP_MAX (256 * 1024)

void weir_batcher_init(struct weir_batcher *bt, const struct weir_batcher_cfg *cfg,
                       struct weir_mapping *m, weir_batcher_flush_fn flush, void *arg)
{
    assert(cfg->batch_size >= 1);
    assert(cfg->encoder && cfg->ctx && flush);
    memset(bt, 0, sizeof(*bt));
    bt->cfg = *cfg;
    bt->m = m;
    bt->flush = flush;
    bt->arg = arg;
    weir_buf_init(&bt->scratch);
}

void weir_batcher_deinit(struct weir_batcher *bt)
{
    weir_batch_free(bt->open);
    bt->open = NULL;
    weir_buf_deinit(&bt->scratch);
}

/* Completes the open batch's event and hands the batch over. open is cleared before the
 * callback so a callback that adds records starts a fresh batch. */
static void close_open(struct weir_batcher *bt)
{
    struct weir_batch *b = bt->open;
    if (!b)
        return;
    bt->open = NULL;
    bt->cfg.encoder->close(&b->event, bt->cfg.ctx);
    bt->flush(bt->arg, b);
}

void weir_batcher_add(struct weir_batcher *bt, struct weir_record *r)
{
    const struct weir_encoder *enc = bt->cfg.encoder;

    weir_buf_reset(&bt->scratch);
    enc->append(&bt->scratch, bt->cfg.ctx, r, 1);

    if (bt->open && bt->open->lane != r->lane)
        close_open(bt);
    if (bt->open &&
        bt->open->event.len + SEPARATOR_LEN + bt->scratch.len + enc->close_len > bt->cfg.max_bytes)
        close_open(bt);

    if (!bt->open) {
        bt->open = weir_batch_new(bt->m, r->lane);
        bt->open->opened_ms = weir_clock_mono_ms();
        enc->open(&bt->open->event, bt->cfg.ctx);
    } else {
        weir_buf_append_char(&bt->open->event, ',');
    }
    weir_buf_append(&bt->open->event, bt->scratch.data, bt->scratch.len);
    weir_batch_take(bt->open, r);
    /* Keep scratch sized for ordinary records: one 6 MB message must not pin 8 MB per mapping
     * for the rest of the run, and copying a large record costs more than reallocating. */
    if (bt->scratch.cap > SCRATCH_KEEP_MAX)
        weir_buf_deinit(&bt->scratch);

    /* A record too large for any event is closed alone at once: holding it would only make the
     * next record start a new batch anyway, and the dispatcher must see it to refuse it. */
    if (bt->open->n >= bt->cfg.batch_size ||
        bt->open->event.len + enc->close_len > bt->cfg.max_bytes)
        close_open(bt);
}

void weir_batcher_flush(struct weir_batcher *bt)
{
    close_open(bt);
}

int64_t weir_batcher_due_ms(const struct weir_batcher *bt)
{
    if (!bt->open || bt->cfg.window_ms <= 0)
        return -1;
    return bt->open->opened_ms + bt->cfg.window_ms;
}

void weir_batcher_tick(struct weir_batcher *bt)
{
    int64_t due = weir_batcher_due_ms(bt);
    if (due >= 0 && weir_clock_mono_ms() >= due)
        close_open(bt);
}

size_t weir_batcher_pending(const struct weir_batcher *bt)
{
    return bt->open ? bt->open->n : 0;
}

struct weir_batch *weir_batcher_steal(struct weir_batcher *bt)
{
    struct weir_batch *b = bt->open;
    bt->open = NULL;
    return b;
}
