/* weir's durable state, the embedded default: one SQLite database in the state directory.
 * WAL with synchronous=FULL, so a commit survives SIGKILL and a power cut; one weir process owns
 * a state directory at a time (a lock file), so two never hand out the same work. Statements run
 * on a worker thread in groups that commit together, so the loop never waits for the disk.
 * The schema of every table lives here; the modules that use a table (store/async_sqlite.c,
 * store/catalog.c) own its statements. Must never know what the rows mean beyond that. */
#ifndef WEIR_STORE_H
#define WEIR_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "core/worker.h"

struct event_base;
struct sqlite3;
struct sqlite3_stmt;

struct weir_store;

/* Opens (creating if needed) dir/weir.db, after taking the lock dir/weir.lock. WEIR_AGAIN when
 * another process holds the lock (err names its pid): try again later. WEIR_ERR with err when
 * the directory or the database cannot be used. */
weir_status weir_store_open(const char *dir, struct event_base *base, struct weir_store **out,
                            struct weir_err *err);
/* Runs every job already submitted (their done callbacks follow), then closes. NULL is a no-op. */
void weir_store_free(struct weir_store *s);
const char *weir_store_path(const struct weir_store *s);

/* What a job sees on the thread: the open transaction. */
struct weir_store_tx;

/* One unit of work. run executes on the store's thread inside a transaction shared with the jobs
 * that arrived with it; what it changed commits with theirs (one fsync for all), or, when it
 * returns WEIR_ERR, is rolled back alone. done follows on the loop with status: WEIR_OK only when
 * the job's changes are committed. Between submit and done the job belongs to the thread. */
struct weir_store_job {
    struct weir_worker_job w;
    weir_status (*run)(struct weir_store_tx *tx, struct weir_store_job *job);
    void (*done)(struct weir_store_job *job);
    weir_status status;
    char error[256]; /* why, when status is WEIR_ERR */
};

void weir_store_submit(struct weir_store *s, struct weir_store_job *job);

/* ---- on the thread, inside run ------------------------------------------------------------ */

/* The prepared statement for sql (a string literal: it is cached by its address), reset and with
 * its bindings cleared. NULL when it cannot be prepared (the job's error is set). */
struct sqlite3_stmt *weir_store_stmt(struct weir_store_tx *tx, struct weir_store_job *job,
                                     const char *sql);
/* Records SQLite's error for the job and returns WEIR_ERR, for `return weir_store_fail(...)`. */
weir_status weir_store_fail(struct weir_store_tx *tx, struct weir_store_job *job, const char *what);
struct sqlite3 *weir_store_db(struct weir_store_tx *tx);

#endif
