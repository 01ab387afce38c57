/* A worker thread for work that would block the loop: SQLite commits that wait for fsync, files
 * written and synced. The loop hands it jobs; the thread runs whatever has arrived as one group
 * (so the store commits many jobs with one fsync) and hands each job back to the loop, where its
 * done callback runs. Jobs travel through two pipes, so no memory is shared while a job is on the
 * thread and weir code takes no locks. Must never call a job's done off the loop. */
#ifndef WEIR_WORKER_H
#define WEIR_WORKER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/list.h"
#include "core/status.h"

struct event_base;

/* One piece of work; embed it in the struct that carries the job's data. Between submit and done
 * the thread owns the job and everything it points to; the loop must not touch them. */
struct weir_worker_job {
    /* On the loop, once the thread ran the job (or, when the worker is freed first, never ran it:
     * then ran is false). */
    void (*done)(struct weir_worker_job *job);
    bool ran;
    struct weir_list link; /* the loop's, while the job waits to be written to the thread */
};

/* Runs on the thread: the n jobs that arrived together, in submission order. */
typedef void (*weir_worker_run_fn)(void *ctx, struct weir_worker_job **jobs, size_t n);

struct weir_worker;

/* Starts the thread. ctx is handed to run on the thread and must stay valid until the worker is
 * freed; the loop must not use what the thread uses through it. NULL with err on failure. */
struct weir_worker *weir_worker_new(struct event_base *base, const char *name,
                                    weir_worker_run_fn run, void *ctx, struct weir_err *err);
/* Queues job for the thread; done(job) follows on the loop. */
void weir_worker_submit(struct weir_worker *w, struct weir_worker_job *job);
/* Jobs submitted whose done has not run yet. */
size_t weir_worker_pending(const struct weir_worker *w);
/* Lets the thread finish every job already handed to it, joins it, and calls done for every job
 * still outstanding (ran false for those never handed over). NULL is a no-op. */
void weir_worker_free(struct weir_worker *w);

#endif
