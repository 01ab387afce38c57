/* The SQLite database: the lock, the schema, and the worker thread that runs jobs in groups, each
 * group one transaction with a savepoint per job. After weir_store_open returns, the database
 * handle and its statements are the thread's alone, until weir_store_free has joined it. Must
 * never run a statement on the loop after open. */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"

/* Raise it with every change to the schema below, and migrate from the older numbers in
 * migrate(). */
#define SCHEMA_VERSION 1

static const char schema_sql[] =
    /* The asynchronous invocation queue (dispatcher/async.c through store/async_sqlite.c): one
     * row per accepted event, until its final outcome has reached every destination. */
    "CREATE TABLE IF NOT EXISTS async_events ("
    " id INTEGER PRIMARY KEY,"
    " function TEXT NOT NULL,"
    " request_id TEXT NOT NULL,"
    " origin TEXT NOT NULL,"
    " payload BLOB NOT NULL,"
    " accepted_ms INTEGER NOT NULL," /* wall ms: the event's age counts from it */
    " due_ms INTEGER NOT NULL,"      /* wall ms of its next attempt */
    " invokes INTEGER NOT NULL DEFAULT 0,"
    " function_errors INTEGER NOT NULL DEFAULT 0,"
    " backoff_ms INTEGER NOT NULL DEFAULT 0,"
    " outcome TEXT,"                             /* the condition once decided, NULL before */
    " pending_sinks INTEGER NOT NULL DEFAULT 0," /* destinations still to receive it */
    " last_status INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT,"
    " last_response BLOB"
    ");"
    "CREATE INDEX IF NOT EXISTS async_events_due ON async_events(function, due_ms, id);"
    /* The bucket source's catalog (store/catalog.c): what was announced of each object, so
     * changes made while weir was down, or lost to an inotify overflow, are found. */
    "CREATE TABLE IF NOT EXISTS bucket_objects ("
    " bucket TEXT NOT NULL," /* the bucket's directory */
    " key TEXT NOT NULL,"
    " size INTEGER NOT NULL,"
    " mtime_ns INTEGER NOT NULL,"
    " ino INTEGER NOT NULL,"
    " etag TEXT NOT NULL,"
    " sequencer INTEGER NOT NULL,"
    " PRIMARY KEY (bucket, key)"
    ") WITHOUT ROWID;";

#define STMT_CACHE 32

struct cached_stmt {
    const char *sql;
    sqlite3_stmt *stmt;
};

struct weir_store {
    char *dir;
    char *path;
    int lock_fd;
    sqlite3 *db;
    struct weir_worker *worker;
    /* The thread's, from open to free. */
    struct cached_stmt stmts[STMT_CACHE];
    size_t n_stmts;
};

/* The thread's view is the store itself; the type only says which side may use it. */
struct weir_store_tx {
    struct weir_store s;
};

static struct weir_store *of_tx(struct weir_store_tx *tx)
{
    return &tx->s;
}

static int mkdir_p(const char *dir)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0750) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(path, 0750) != 0 && errno != EEXIST ? -1 : 0;
}

/* Takes dir/weir.lock. WEIR_AGAIN when another process has it. */
static weir_status take_lock(struct weir_store *s, struct weir_err *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/weir.lock", s->dir);
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->lock_fd < 0)
        return weir_err_set(err, "state directory %s: cannot open %s: %s", s->dir, path,
                            strerror(errno));
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK)
            return weir_err_set(err, "state directory %s: cannot lock %s: %s", s->dir, path,
                                strerror(errno));
        char pid[32] = "";
        ssize_t n = pread(s->lock_fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        weir_err_set(err, "state directory %s is in use by another weir process (pid %s)", s->dir,
                     pid[0] ? pid : "unknown");
        close(s->lock_fd);
        s->lock_fd = -1;
        return WEIR_AGAIN;
    }
    char pid[32];
    int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(s->lock_fd, 0) != 0 || pwrite(s->lock_fd, pid, (size_t)len, 0) != len)
        weir_warn("store", "cannot write the pid into the lock file path=%s error=\"%s\"", path,
                  strerror(errno));
    return WEIR_OK;
}

static weir_status exec_sql(struct weir_store *s, const char *sql, struct weir_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return WEIR_OK;
    weir_err_set(err, "state database %s: %s", s->path, msg ? msg : sqlite3_errmsg(s->db));
    sqlite3_free(msg);
    return WEIR_ERR;
}

static weir_status pragma_text(struct weir_store *s, const char *sql, const char *want,
                               struct weir_err *err)
{
    sqlite3_stmt *st = NULL;
    weir_status rc = WEIR_ERR;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        weir_err_set(err, "state database %s: %s: %s", s->path, sql, sqlite3_errmsg(s->db));
        goto out;
    }
    const char *got = (const char *)sqlite3_column_text(st, 0);
    if (!got || strcasecmp(got, want) != 0) {
        weir_err_set(err,
                     "state database %s: %s answered '%s', not '%s' (is it on a file system "
                     "without shared memory, or read-only?)",
                     s->path, sql, got ? got : "", want);
        goto out;
    }
    rc = WEIR_OK;
out:
    sqlite3_finalize(st);
    return rc;
}

static weir_status migrate(struct weir_store *s, struct weir_err *err)
{
    sqlite3_stmt *st = NULL;
    int version = 0;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (version > SCHEMA_VERSION)
        return weir_err_set(err,
                            "state database %s has schema version %d; this weir knows up to %d "
                            "(it was written by a newer weir)",
                            s->path, version, SCHEMA_VERSION);
    char set[64];
    snprintf(set, sizeof(set), "PRAGMA user_version=%d", SCHEMA_VERSION);
    if (exec_sql(s, "BEGIN IMMEDIATE", err) != WEIR_OK)
        return WEIR_ERR;
    if (exec_sql(s, schema_sql, err) != WEIR_OK || exec_sql(s, set, err) != WEIR_OK) {
        exec_sql(s, "ROLLBACK", NULL);
        return WEIR_ERR;
    }
    return exec_sql(s, "COMMIT", err);
}

static void run_group(void *ctx, struct weir_worker_job **jobs, size_t n);

weir_status weir_store_open(const char *dir, struct event_base *base, struct weir_store **out,
                            struct weir_err *err)
{
    struct weir_store *s = weir_calloc(1, sizeof(*s));
    weir_status rc = WEIR_ERR;
    s->lock_fd = -1;
    s->dir = weir_strdup(dir);
    size_t len = strlen(dir) + sizeof("/weir.db");
    s->path = weir_malloc(len);
    snprintf(s->path, len, "%s/weir.db", dir);
    *out = NULL;
    if (mkdir_p(dir) != 0) {
        weir_err_set(err, "state directory %s: cannot create it: %s", dir, strerror(errno));
        goto fail;
    }
    rc = take_lock(s, err);
    if (rc != WEIR_OK)
        goto fail;
    rc = WEIR_ERR;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(s->path, &s->db, flags, NULL) != SQLITE_OK) {
        weir_err_set(err, "state database %s: cannot open: %s", s->path,
                     s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    /* WAL: readers never wait for the writer; synchronous=FULL in WAL mode syncs the log on
     * every commit, which is what makes an accepted event survive a power cut. */
    if (pragma_text(s, "PRAGMA journal_mode=WAL", "wal", err) != WEIR_OK ||
        exec_sql(s, "PRAGMA synchronous=FULL", err) != WEIR_OK ||
        exec_sql(s, "PRAGMA busy_timeout=5000", err) != WEIR_OK || migrate(s, err) != WEIR_OK)
        goto fail;
    s->worker = weir_worker_new(base, "store", run_group, s, err);
    if (!s->worker)
        goto fail;
    *out = s;
    return WEIR_OK;
fail:
    weir_store_free(s);
    return rc;
}

const char *weir_store_path(const struct weir_store *s)
{
    return s->path;
}

void weir_store_free(struct weir_store *s)
{
    if (!s)
        return;
    weir_worker_free(s->worker);
    for (size_t i = 0; i < s->n_stmts; i++)
        sqlite3_finalize(s->stmts[i].stmt);
    if (s->db && sqlite3_close(s->db) != SQLITE_OK)
        weir_warn("store", "closing the state database failed path=%s error=\"%s\"", s->path,
                  sqlite3_errmsg(s->db));
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* releases the lock */
    free(s->dir);
    free(s->path);
    free(s);
}

static void on_job_done(struct weir_worker_job *w)
{
    struct weir_store_job *job = weir_list_entry(w, struct weir_store_job, w);
    if (!w->ran) {
        job->status = WEIR_ERR;
        snprintf(job->error, sizeof(job->error), "the state store closed before the job ran");
    }
    job->done(job);
}

void weir_store_submit(struct weir_store *s, struct weir_store_job *job)
{
    job->status = WEIR_ERR;
    job->error[0] = '\0';
    job->w.done = on_job_done;
    weir_worker_submit(s->worker, &job->w);
}

/* ---- the thread ---------------------------------------------------------------------------- */

struct sqlite3 *weir_store_db(struct weir_store_tx *tx)
{
    return of_tx(tx)->db;
}

weir_status weir_store_fail(struct weir_store_tx *tx, struct weir_store_job *job, const char *what)
{
    snprintf(job->error, sizeof(job->error), "%s: %s", what, sqlite3_errmsg(of_tx(tx)->db));
    return WEIR_ERR;
}

/* sql (a string literal: cached by its address) prepared once for the life of the store, NULL
 * when SQLite refuses it. Thousands of jobs a second each open and close a savepoint: parsing
 * their statements every time would cost more than most jobs. */
static sqlite3_stmt *cached_stmt(struct weir_store *s, const char *sql)
{
    for (size_t i = 0; i < s->n_stmts; i++)
        if (s->stmts[i].sql == sql)
            return s->stmts[i].stmt;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
        return NULL;
    if (s->n_stmts == STMT_CACHE)
        abort(); /* more distinct statements than the cache holds: raise STMT_CACHE */
    s->stmts[s->n_stmts++] = (struct cached_stmt){sql, st};
    return st;
}

sqlite3_stmt *weir_store_stmt(struct weir_store_tx *tx, struct weir_store_job *job, const char *sql)
{
    sqlite3_stmt *st = cached_stmt(of_tx(tx), sql);
    if (!st) {
        weir_store_fail(tx, job, "prepare");
        return NULL;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

/* Runs sql (a string literal) on the thread; SQLite's message into error on failure. */
static bool thread_exec(struct weir_store *s, const char *sql, char *error, size_t len)
{
    sqlite3_stmt *st = cached_stmt(s, sql);
    int rc = st ? sqlite3_step(st) : SQLITE_ERROR;
    if (st)
        sqlite3_reset(st);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        return true;
    if (error)
        snprintf(error, len, "%s: %s", sql, sqlite3_errmsg(s->db));
    return false;
}

static const char sql_begin[] = "BEGIN IMMEDIATE";
static const char sql_commit[] = "COMMIT";
static const char sql_rollback[] = "ROLLBACK";
static const char sql_savepoint[] = "SAVEPOINT job";
static const char sql_release[] = "RELEASE job";
static const char sql_rollback_to[] = "ROLLBACK TO job";

static void run_group(void *ctx, struct weir_worker_job **jobs, size_t n)
{
    struct weir_store *s = ctx;
    struct weir_store_tx *tx = (struct weir_store_tx *)s;
    char error[256];
    if (!thread_exec(s, sql_begin, error, sizeof(error))) {
        for (size_t i = 0; i < n; i++) {
            struct weir_store_job *job = weir_list_entry(jobs[i], struct weir_store_job, w);
            job->status = WEIR_ERR;
            snprintf(job->error, sizeof(job->error), "%s", error);
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct weir_store_job *job = weir_list_entry(jobs[i], struct weir_store_job, w);
        if (!thread_exec(s, sql_savepoint, job->error, sizeof(job->error))) {
            job->status = WEIR_ERR;
            continue;
        }
        job->status = job->run(tx, job);
        if (job->status != WEIR_OK)
            thread_exec(s, sql_rollback_to, NULL, 0);
        thread_exec(s, sql_release, NULL, 0);
    }
    if (thread_exec(s, sql_commit, error, sizeof(error)))
        return;
    thread_exec(s, sql_rollback, NULL, 0);
    for (size_t i = 0; i < n; i++) {
        struct weir_store_job *job = weir_list_entry(jobs[i], struct weir_store_job, w);
        if (job->status == WEIR_OK) {
            job->status = WEIR_ERR;
            snprintf(job->error, sizeof(job->error), "%s", error);
        }
    }
}
