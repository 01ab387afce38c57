/* The asynchronous invocation queue on weir's SQLite database (table async_events, see
 * store/store.c): each operation is a store job, so a burst of accepts commits with one fsync.
 * What this process has taken is kept in memory, not in the rows: one process owns the database
 * (the store's lock), so a take is a read, which commits without an fsync, and a process that
 * dies leaves nothing marked. Must never decide what happens to an event. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "store/async.h"
#include "store/store.h"

const char *weir_async_outcome_name(enum weir_async_outcome o)
{
    switch (o) {
    case WEIR_ASYNC_SUCCESS:
        return "Success";
    case WEIR_ASYNC_RETRIES_EXHAUSTED:
        return "RetriesExhausted";
    case WEIR_ASYNC_EVENT_AGE_EXCEEDED:
        return "EventAgeExceeded";
    default:
        return "";
    }
}

static enum weir_async_outcome outcome_of(const char *name)
{
    for (int o = WEIR_ASYNC_SUCCESS; o <= WEIR_ASYNC_EVENT_AGE_EXCEEDED; o++)
        if (name && !strcmp(name, weir_async_outcome_name(o)))
            return o;
    return WEIR_ASYNC_UNDECIDED;
}

struct weir_async_event *weir_async_event_new(const char *function, const char *origin,
                                              const char *payload, size_t len)
{
    struct weir_async_event *ev = weir_calloc(1, sizeof(*ev));
    ev->function = weir_strdup(function);
    ev->origin = weir_strdup(origin);
    ev->payload = weir_malloc(len + 1);
    memcpy(ev->payload, payload, len);
    ev->payload[len] = '\0';
    ev->payload_len = len;
    weir_list_init(&ev->link);
    return ev;
}

void weir_async_event_free(struct weir_async_event *ev)
{
    if (!ev)
        return;
    free(ev->function);
    free(ev->origin);
    free(ev->payload);
    free(ev->last_error);
    free(ev->last_response);
    free(ev);
}

static char *dup_bytes(const void *data, size_t len)
{
    char *p = weir_malloc(len + 1);
    if (len)
        memcpy(p, data, len);
    p[len] = '\0';
    return p;
}

void weir_async_event_set_answer(struct weir_async_event *ev, long status, const char *error,
                                 const char *response, size_t response_len)
{
    ev->last_status = status;
    free(ev->last_error);
    ev->last_error = error && *error ? weir_strdup(error) : NULL;
    free(ev->last_response);
    ev->last_response = response ? dup_bytes(response, response_len) : NULL;
    ev->last_response_len = response ? response_len : 0;
}

enum op_kind { OP_PUT, OP_TAKE, OP_UPDATE, OP_REMOVE };

struct sqlite_store;

struct op {
    struct weir_store_job job;
    struct sqlite_store *s;
    enum op_kind kind;
    struct weir_list events; /* put: to store; take: what was taken (the thread fills it) */
    struct weir_async_event *ev;
    const char *function; /* take: borrowed; the caller keeps it alive until done */
    int64_t now_ms;
    size_t max;
    int64_t *skip; /* take: the ids taken already (a copy), which it must not return */
    size_t n_skip;
    int64_t next_due_ms;
    struct weir_list *into;
    weir_async_done_fn done;
    weir_async_take_fn take_done;
    void *arg;
};

struct sqlite_store {
    struct weir_async_store base;
    struct weir_store *db;
    /* Ids taken and not yet written back (the loop's): a take returns none of them. A handful
     * per function (the queue takes at most its WORKING_MAX), so an array does. */
    int64_t *taken;
    size_t n_taken, cap_taken;
};

static void taken_add(struct sqlite_store *s, int64_t id)
{
    if (s->n_taken == s->cap_taken) {
        s->cap_taken = s->cap_taken ? s->cap_taken * 2 : 64;
        s->taken = weir_realloc(s->taken, s->cap_taken * sizeof(*s->taken));
    }
    s->taken[s->n_taken++] = id;
}

static void taken_del(struct sqlite_store *s, int64_t id)
{
    for (size_t i = 0; i < s->n_taken; i++)
        if (s->taken[i] == id) {
            s->taken[i] = s->taken[--s->n_taken];
            return;
        }
}

/* ---- on the thread ------------------------------------------------------------------------- */

static const char sql_insert[] =
    "INSERT INTO async_events(function, request_id, origin, payload, accepted_ms, due_ms)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6)";
/* The function's events in due order (the index's order), the payload read only for those
 * returned. */
static const char sql_order[] = "SELECT id, due_ms FROM async_events WHERE function=?1"
                                " ORDER BY due_ms, id LIMIT ?2";
static const char sql_row[] =
    "SELECT request_id, origin, payload, accepted_ms, due_ms, invokes, function_errors,"
    " backoff_ms, outcome, pending_sinks, last_status, last_error, last_response"
    " FROM async_events WHERE id=?1";
static const char sql_update[] =
    "UPDATE async_events SET due_ms=?2, invokes=?3, function_errors=?4, backoff_ms=?5,"
    " outcome=?6, pending_sinks=?7, last_status=?8, last_error=?9, last_response=?10"
    " WHERE id=?1";
static const char sql_delete[] = "DELETE FROM async_events WHERE id=?1";

static weir_status step_done(struct weir_store_tx *tx, struct op *op, sqlite3_stmt *st,
                             const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? WEIR_OK : weir_store_fail(tx, &op->job, what);
}

static weir_status run_put(struct weir_store_tx *tx, struct op *op)
{
    struct weir_list *node;
    for (node = op->events.next; node != &op->events; node = node->next) {
        struct weir_async_event *ev = weir_list_entry(node, struct weir_async_event, link);
        sqlite3_stmt *st = weir_store_stmt(tx, &op->job, sql_insert);
        if (!st)
            return WEIR_ERR;
        sqlite3_bind_text(st, 1, ev->function, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, ev->request_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, ev->origin, -1, SQLITE_STATIC);
        sqlite3_bind_blob64(st, 4, ev->payload, ev->payload_len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, ev->accepted_ms);
        sqlite3_bind_int64(st, 6, ev->due_ms);
        if (step_done(tx, op, st, "storing an event") != WEIR_OK)
            return WEIR_ERR;
        ev->id = sqlite3_last_insert_rowid(weir_store_db(tx));
    }
    return WEIR_OK;
}

static char *column_copy(sqlite3_stmt *st, int col, size_t *len)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL) {
        if (len)
            *len = 0;
        return NULL;
    }
    const void *data = sqlite3_column_blob(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    if (len)
        *len = n;
    return dup_bytes(data ? data : "", n);
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* op->skip is sorted (run_take sorts it first). */
static bool skipped(const struct op *op, int64_t id)
{
    return op->n_skip && bsearch(&id, op->skip, op->n_skip, sizeof(id), cmp_id);
}

static weir_status read_row(struct weir_store_tx *tx, struct op *op, int64_t id)
{
    sqlite3_stmt *st = weir_store_stmt(tx, &op->job, sql_row);
    if (!st)
        return WEIR_ERR;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        struct weir_async_event *ev = weir_calloc(1, sizeof(*ev));
        ev->id = id;
        ev->function = weir_strdup(op->function);
        const char *rid = (const char *)sqlite3_column_text(st, 0);
        snprintf(ev->request_id, sizeof(ev->request_id), "%s", rid ? rid : "");
        ev->origin = column_copy(st, 1, NULL);
        ev->payload = column_copy(st, 2, &ev->payload_len);
        if (!ev->payload)
            ev->payload = dup_bytes("", 0);
        ev->accepted_ms = sqlite3_column_int64(st, 3);
        ev->due_ms = sqlite3_column_int64(st, 4);
        ev->invokes = (uint32_t)sqlite3_column_int64(st, 5);
        ev->function_errors = (uint32_t)sqlite3_column_int64(st, 6);
        ev->backoff_ms = sqlite3_column_int64(st, 7);
        ev->outcome = outcome_of((const char *)sqlite3_column_text(st, 8));
        ev->pending_sinks = (uint32_t)sqlite3_column_int64(st, 9);
        ev->last_status = (long)sqlite3_column_int64(st, 10);
        ev->last_error = column_copy(st, 11, NULL);
        ev->last_response = column_copy(st, 12, &ev->last_response_len);
        weir_list_push_back(&op->events, &ev->link);
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE
               ? WEIR_OK
               : weir_store_fail(tx, &op->job, "reading an event");
}

/* A read only: the earliest due events not taken already, and the due time of the next. */
static weir_status run_take(struct weir_store_tx *tx, struct op *op)
{
    sqlite3_stmt *st = weir_store_stmt(tx, &op->job, sql_order);
    if (!st)
        return WEIR_ERR;
    sqlite3_bind_text(st, 1, op->function, -1, SQLITE_STATIC);
    /* Enough rows to pass over every one taken already and still see one past those wanted. */
    sqlite3_bind_int64(st, 2, (sqlite3_int64)(op->max + op->n_skip + 1));
    qsort(op->skip, op->n_skip, sizeof(*op->skip), cmp_id);
    size_t n_ids = 0;
    int64_t *ids = weir_calloc(op->max ? op->max : 1, sizeof(*ids));
    op->next_due_ms = -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0), due = sqlite3_column_int64(st, 1);
        if (skipped(op, id))
            continue;
        if (n_ids < op->max && due <= op->now_ms) {
            ids[n_ids++] = id;
            continue;
        }
        op->next_due_ms = due;
        break;
    }
    sqlite3_reset(st);
    weir_status status = rc == SQLITE_ROW || rc == SQLITE_DONE
                             ? WEIR_OK
                             : weir_store_fail(tx, &op->job, "reading due events");
    for (size_t i = 0; status == WEIR_OK && i < n_ids; i++)
        status = read_row(tx, op, ids[i]);
    free(ids);
    return status;
}

static weir_status run_update(struct weir_store_tx *tx, struct op *op)
{
    const struct weir_async_event *ev = op->ev;
    sqlite3_stmt *st = weir_store_stmt(tx, &op->job, sql_update);
    if (!st)
        return WEIR_ERR;
    sqlite3_bind_int64(st, 1, ev->id);
    sqlite3_bind_int64(st, 2, ev->due_ms);
    sqlite3_bind_int64(st, 3, ev->invokes);
    sqlite3_bind_int64(st, 4, ev->function_errors);
    sqlite3_bind_int64(st, 5, ev->backoff_ms);
    if (ev->outcome != WEIR_ASYNC_UNDECIDED)
        sqlite3_bind_text(st, 6, weir_async_outcome_name(ev->outcome), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, ev->pending_sinks);
    sqlite3_bind_int64(st, 8, ev->last_status);
    if (ev->last_error)
        sqlite3_bind_text(st, 9, ev->last_error, -1, SQLITE_STATIC);
    if (ev->last_response)
        sqlite3_bind_blob64(st, 10, ev->last_response, ev->last_response_len, SQLITE_STATIC);
    return step_done(tx, op, st, "updating an event");
}

static weir_status run_remove(struct weir_store_tx *tx, struct op *op)
{
    sqlite3_stmt *st = weir_store_stmt(tx, &op->job, sql_delete);
    if (!st)
        return WEIR_ERR;
    sqlite3_bind_int64(st, 1, op->ev->id);
    return step_done(tx, op, st, "deleting an event");
}

static weir_status run_op(struct weir_store_tx *tx, struct weir_store_job *job)
{
    struct op *op = weir_list_entry(job, struct op, job);
    switch (op->kind) {
    case OP_PUT:
        return run_put(tx, op);
    case OP_TAKE: {
        weir_status st = run_take(tx, op);
        if (st != WEIR_OK) { /* rolled back: what was read is not taken */
            struct weir_list *node;
            while ((node = weir_list_pop_front(&op->events)))
                weir_async_event_free(weir_list_entry(node, struct weir_async_event, link));
        }
        return st;
    }
    case OP_UPDATE:
        return run_update(tx, op);
    case OP_REMOVE:
        return run_remove(tx, op);
    }
    return WEIR_ERR;
}

/* ---- on the loop --------------------------------------------------------------------------- */

static void op_done(struct weir_store_job *job)
{
    struct op *op = weir_list_entry(job, struct op, job);
    const char *error = job->status == WEIR_OK ? NULL : job->error;
    if (op->kind == OP_TAKE) {
        /* A take that failed took nothing: what it read is not the caller's. */
        struct weir_list *node;
        while ((node = weir_list_pop_front(&op->events))) {
            struct weir_async_event *ev = weir_list_entry(node, struct weir_async_event, link);
            if (job->status == WEIR_OK) {
                taken_add(op->s, ev->id);
                weir_list_push_back(op->into, node);
            } else {
                weir_async_event_free(ev);
            }
        }
        free(op->skip);
        op->take_done(op->arg, job->status, error, op->into, op->next_due_ms);
    } else if (op->kind == OP_PUT) {
        /* The events go back to the caller's list as they came. */
        struct weir_list *node;
        while ((node = weir_list_pop_front(&op->events)))
            weir_list_push_back(op->into, node);
        op->done(op->arg, job->status, error);
    } else {
        /* Written back (or gone): no longer this process's to hold, whatever the caller does
         * next. Refused: it stays taken, and the caller writes it again. */
        if (job->status == WEIR_OK)
            taken_del(op->s, op->ev->id);
        op->done(op->arg, job->status, error);
    }
    free(op);
}

static struct op *op_new(struct weir_async_store *st, enum op_kind kind)
{
    struct op *op = weir_calloc(1, sizeof(*op));
    op->s = (struct sqlite_store *)st;
    op->kind = kind;
    op->job.run = run_op;
    op->job.done = op_done;
    weir_list_init(&op->events);
    return op;
}

static void submit(struct weir_async_store *st, struct op *op)
{
    weir_store_submit(((struct sqlite_store *)st)->db, &op->job);
}

static void sq_put(struct weir_async_store *st, struct weir_list *events, weir_async_done_fn done,
                   void *arg)
{
    struct op *op = op_new(st, OP_PUT);
    struct weir_list *node;
    while ((node = weir_list_pop_front(events)))
        weir_list_push_back(&op->events, node);
    op->into = events;
    op->done = done;
    op->arg = arg;
    submit(st, op);
}

static void sq_take(struct weir_async_store *st, const char *function, int64_t now_ms, size_t max,
                    struct weir_list *into, weir_async_take_fn done, void *arg)
{
    struct op *op = op_new(st, OP_TAKE);
    op->function = function;
    op->now_ms = now_ms;
    op->max = max;
    struct sqlite_store *s = (struct sqlite_store *)st;
    op->n_skip = s->n_taken;
    op->skip = weir_calloc(s->n_taken ? s->n_taken : 1, sizeof(*op->skip));
    if (s->n_taken)
        memcpy(op->skip, s->taken, s->n_taken * sizeof(*op->skip));
    op->into = into;
    op->take_done = done;
    op->arg = arg;
    submit(st, op);
}

/* An update or a remove: both carry one taken event and answer with done. */
static void submit_event_op(struct weir_async_store *st, enum op_kind kind,
                            struct weir_async_event *ev, weir_async_done_fn done, void *arg)
{
    struct op *op = op_new(st, kind);
    op->ev = ev;
    op->done = done;
    op->arg = arg;
    submit(st, op);
}

static void sq_update(struct weir_async_store *st, struct weir_async_event *ev,
                      weir_async_done_fn done, void *arg)
{
    submit_event_op(st, OP_UPDATE, ev, done, arg);
}

static void sq_remove(struct weir_async_store *st, struct weir_async_event *ev,
                      weir_async_done_fn done, void *arg)
{
    submit_event_op(st, OP_REMOVE, ev, done, arg);
}

static void sq_free(struct weir_async_store *st)
{
    if (st)
        free(((struct sqlite_store *)st)->taken);
    free(st);
}

static const struct weir_async_store_ops sqlite_ops = {
    .name = "sqlite",
    .put = sq_put,
    .take = sq_take,
    .update = sq_update,
    .remove = sq_remove,
    .free = sq_free,
};

struct weir_async_store *weir_async_store_sqlite(struct weir_store *db)
{
    struct sqlite_store *s = weir_calloc(1, sizeof(*s));
    s->base.ops = &sqlite_ops;
    s->db = db;
    return &s->base;
}
