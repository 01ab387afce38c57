/* The catalog's statements on table bucket_objects (schema in store/store.c), each operation one
 * store job, so the writes of a burst of settled files commit together. Must never touch a file
 * of the bucket. */
#include "store/catalog.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "store/store.h"

struct weir_catalog_entry *weir_catalog_entry_new(const char *key)
{
    struct weir_catalog_entry *e = weir_calloc(1, sizeof(*e));
    e->key = weir_strdup(key);
    weir_list_init(&e->link);
    return e;
}

void weir_catalog_entry_free(struct weir_catalog_entry *e)
{
    if (!e)
        return;
    free(e->key);
    free(e);
}

enum op_kind { OP_LOAD, OP_PUT, OP_REMOVE };

struct op {
    struct weir_store_job job;
    enum op_kind kind;
    char *bucket;
    struct weir_catalog_entry *e; /* put: a copy; remove: the key only */
    struct weir_list entries;     /* load: filled on the thread */
    weir_catalog_done_fn done;
    weir_catalog_load_fn load_done;
    void *arg;
};

static const char sql_load[] = "SELECT key, size, mtime_ns, ino, etag, sequencer FROM "
                               "bucket_objects WHERE bucket=?1";
static const char sql_put[] = "INSERT OR REPLACE INTO bucket_objects(bucket, key, size, mtime_ns, "
                              "ino, etag, sequencer) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char sql_remove[] = "DELETE FROM bucket_objects WHERE bucket=?1 AND key=?2";

/* On the thread. */
static weir_status run_op(struct weir_store_tx *tx, struct weir_store_job *job)
{
    struct op *op = (struct op *)job;
    const char *sql = op->kind == OP_LOAD ? sql_load : op->kind == OP_PUT ? sql_put : sql_remove;
    sqlite3_stmt *st = weir_store_stmt(tx, job, sql);
    if (!st)
        return WEIR_ERR;
    sqlite3_bind_text(st, 1, op->bucket, -1, SQLITE_STATIC);
    if (op->kind == OP_LOAD) {
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            const char *key = (const char *)sqlite3_column_text(st, 0);
            struct weir_catalog_entry *e = weir_catalog_entry_new(key ? key : "");
            e->size = sqlite3_column_int64(st, 1);
            e->mtime_ns = sqlite3_column_int64(st, 2);
            e->ino = (uint64_t)sqlite3_column_int64(st, 3);
            const char *etag = (const char *)sqlite3_column_text(st, 4);
            snprintf(e->etag, sizeof(e->etag), "%s", etag ? etag : "");
            e->sequencer = (uint64_t)sqlite3_column_int64(st, 5);
            weir_list_push_back(&op->entries, &e->link);
        }
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? WEIR_OK : weir_store_fail(tx, job, "reading the catalog");
    }
    sqlite3_bind_text(st, 2, op->e->key, -1, SQLITE_STATIC);
    if (op->kind == OP_PUT) {
        sqlite3_bind_int64(st, 3, op->e->size);
        sqlite3_bind_int64(st, 4, op->e->mtime_ns);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)op->e->ino);
        sqlite3_bind_text(st, 6, op->e->etag, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, (sqlite3_int64)op->e->sequencer);
    }
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? WEIR_OK : weir_store_fail(tx, job, "writing the catalog");
}

static void op_done(struct weir_store_job *job)
{
    struct op *op = (struct op *)job;
    const char *error = job->status == WEIR_OK ? NULL : job->error;
    if (op->kind == OP_LOAD) {
        op->load_done(op->arg, job->status, error, &op->entries);
        struct weir_list *node; /* what the caller left */
        while ((node = weir_list_pop_front(&op->entries)))
            weir_catalog_entry_free(weir_list_entry(node, struct weir_catalog_entry, link));
    } else if (op->done) {
        op->done(op->arg, job->status, error);
    }
    weir_catalog_entry_free(op->e);
    free(op->bucket);
    free(op);
}

static struct op *op_new(enum op_kind kind, const char *bucket)
{
    struct op *op = weir_calloc(1, sizeof(*op));
    op->kind = kind;
    op->bucket = weir_strdup(bucket);
    op->job.run = run_op;
    op->job.done = op_done;
    weir_list_init(&op->entries);
    return op;
}

void weir_catalog_load(struct weir_store *s, const char *bucket, weir_catalog_load_fn done,
                       void *arg)
{
    struct op *op = op_new(OP_LOAD, bucket);
    op->load_done = done;
    op->arg = arg;
    weir_store_submit(s, &op->job);
}

void weir_catalog_put(struct weir_store *s, const char *bucket, const struct weir_catalog_entry *e,
                      weir_catalog_done_fn done, void *arg)
{
    struct op *op = op_new(OP_PUT, bucket);
    op->e = weir_catalog_entry_new(e->key);
    op->e->size = e->size;
    op->e->mtime_ns = e->mtime_ns;
    op->e->ino = e->ino;
    memcpy(op->e->etag, e->etag, sizeof(e->etag));
    op->e->sequencer = e->sequencer;
    op->done = done;
    op->arg = arg;
    weir_store_submit(s, &op->job);
}

void weir_catalog_remove(struct weir_store *s, const char *bucket, const char *key,
                         weir_catalog_done_fn done, void *arg)
{
    struct op *op = op_new(OP_REMOVE, bucket);
    op->e = weir_catalog_entry_new(key);
    op->done = done;
    op->arg = arg;
    weir_store_submit(s, &op->job);
}
