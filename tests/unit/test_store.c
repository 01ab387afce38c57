/* store/ and core/worker.c: the worker thread's hand-off (order, groups, jobs outstanding at
 * free), the state database (lock, schema, a job's failure rolled back alone) and the async
 * queue's SQLite store (put, take in due order, taken rows hidden, update, remove, reopen). Real
 * SQLite files in a directory under TMPDIR. */
#define _GNU_SOURCE /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <ftw.h>
#include <sqlite3.h>

#include "core/mem.h"
#include "core/worker.h"
#include "store/async.h"
#include "store/store.h"

static char dir[256];
static struct event_base *base;

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int setup(void **state)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/weir-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
    base = event_base_new();
    return 0;
}

static int teardown(void **state)
{
    event_base_free(base);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* Runs the loop until *flag is set (the done callbacks come through it). */
static void run_until(const bool *flag)
{
    for (int i = 0; i < 100000 && !*flag; i++)
        event_base_loop(base, EVLOOP_ONCE);
    assert_true(*flag);
}

/* ---- the worker --------------------------------------------------------------------------- */

struct seen {
    int order[64];
    size_t n;
    size_t groups;
};

struct num_job {
    struct weir_worker_job w;
    int n;
    struct seen *seen;
    bool on_thread; /* set by the thread */
    bool done;
};

static void run_nums(void *ctx, struct weir_worker_job **jobs, size_t n)
{
    struct seen *seen = ctx;
    seen->groups++;
    for (size_t i = 0; i < n; i++) {
        struct num_job *j = (struct num_job *)jobs[i];
        j->on_thread = true;
        seen->order[seen->n++] = j->n;
    }
}

static void num_done(struct weir_worker_job *w)
{
    struct num_job *j = (struct num_job *)w;
    j->done = true;
}

static void worker_runs_jobs_in_order_and_calls_done_on_the_loop(void **state)
{
    struct seen seen;
    memset(&seen, 0, sizeof(seen));
    struct weir_err err = {{0}};
    struct weir_worker *w = weir_worker_new(base, "test", run_nums, &seen, &err);
    assert_non_null(w);
    struct num_job jobs[40];
    for (int i = 0; i < 40; i++) {
        jobs[i] = (struct num_job){.w.done = num_done, .n = i, .seen = &seen};
        weir_worker_submit(w, &jobs[i].w);
    }
    assert_int_equal(weir_worker_pending(w), 40);
    /* done is never called from inside submit. */
    for (int i = 0; i < 40; i++)
        assert_false(jobs[i].done);
    run_until(&jobs[39].done);
    for (int i = 0; i < 40; i++) {
        assert_true(jobs[i].done);
        assert_true(jobs[i].w.ran);
    }
    assert_int_equal(weir_worker_pending(w), 0);
    /* The thread ran them in submission order, in at most as many groups as jobs. */
    assert_int_equal(seen.n, 40);
    for (int i = 0; i < 40; i++)
        assert_int_equal(seen.order[i], i);
    assert_true(seen.groups >= 1 && seen.groups <= 40);
    weir_worker_free(w);
}

static void worker_free_finishes_every_job_submitted(void **state)
{
    struct seen seen;
    memset(&seen, 0, sizeof(seen));
    struct weir_err err = {{0}};
    struct weir_worker *w = weir_worker_new(base, "test", run_nums, &seen, &err);
    struct num_job jobs[10];
    for (int i = 0; i < 10; i++) {
        jobs[i] = (struct num_job){.w.done = num_done, .n = i, .seen = &seen};
        weir_worker_submit(w, &jobs[i].w);
    }
    weir_worker_free(w); /* without running the loop: done comes from free */
    for (int i = 0; i < 10; i++)
        assert_true(jobs[i].done);
}

static void count_run(void *ctx, struct weir_worker_job **jobs, size_t n)
{
    *(size_t *)ctx += n;
}

static size_t finished;

static void count_done(struct weir_worker_job *w)
{
    finished++;
    free(w);
}

static void worker_free_never_waits_on_a_full_pipe(void **state)
{
    /* More results than the pipe back to the loop holds (64 KiB, 8192 pointers), and the loop
     * never turned to read them: free must read them itself while the thread writes. */
    size_t ran = 0;
    struct weir_err err = {{0}};
    struct weir_worker *w = weir_worker_new(base, "test", count_run, &ran, &err);
    finished = 0;
    for (int i = 0; i < 30000; i++) {
        struct weir_worker_job *job = weir_calloc(1, sizeof(*job));
        job->done = count_done;
        weir_worker_submit(w, job);
    }
    weir_worker_free(w);
    assert_int_equal(finished, 30000);
}

static struct weir_worker *resubmitting;

static void resubmit_done(struct weir_worker_job *w)
{
    finished++;
    /* A done callback that submits more while the worker is being freed. */
    if (finished < 5) {
        struct weir_worker_job *job = weir_calloc(1, sizeof(*job));
        job->done = resubmit_done;
        weir_worker_submit(resubmitting, job);
    }
    free(w);
}

static void worker_free_finishes_what_its_callbacks_submit(void **state)
{
    size_t ran = 0;
    struct weir_err err = {{0}};
    resubmitting = weir_worker_new(base, "test", count_run, &ran, &err);
    finished = 0;
    struct weir_worker_job *job = weir_calloc(1, sizeof(*job));
    job->done = resubmit_done;
    weir_worker_submit(resubmitting, job);
    weir_worker_free(resubmitting);
    assert_int_equal(finished, 5);
}

/* ---- the database ------------------------------------------------------------------------- */

static struct weir_store *open_store(void)
{
    struct weir_store *s = NULL;
    struct weir_err err = {{0}};
    if (weir_store_open(dir, base, &s, &err) != WEIR_OK)
        fail_msg("open: %s", err.msg);
    return s;
}

static void store_creates_the_directory_and_a_wal_database(void **state)
{
    char sub[400];
    snprintf(sub, sizeof(sub), "%s/a/b", dir);
    struct weir_store *s = NULL;
    struct weir_err err = {{0}};
    assert_int_equal(weir_store_open(sub, base, &s, &err), WEIR_OK);
    char want[420];
    snprintf(want, sizeof(want), "%s/weir.db", sub);
    assert_string_equal(weir_store_path(s), want);
    weir_store_free(s);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(want, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void store_is_held_by_one_process_at_a_time(void **state)
{
    struct weir_store *s = open_store();
    /* Another process asks for the same directory: it is told who holds it. */
    pid_t pid = fork();
    if (pid == 0) {
        struct event_base *b = event_base_new();
        struct weir_store *other = NULL;
        struct weir_err err = {{0}};
        weir_status rc = weir_store_open(dir, b, &other, &err);
        char want[64];
        snprintf(want, sizeof(want), "(pid %ld)", (long)getppid());
        _exit(rc == WEIR_AGAIN && other == NULL && strstr(err.msg, want) ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    weir_store_free(s);
    /* Released with the store: it opens again. */
    s = open_store();
    weir_store_free(s);
}

struct sql_job {
    struct weir_store_job job;
    const char *sql;
    bool fail_after;
    bool done;
};

static weir_status run_sql(struct weir_store_tx *tx, struct weir_store_job *job)
{
    struct sql_job *j = (struct sql_job *)job;
    if (sqlite3_exec(weir_store_db(tx), j->sql, NULL, NULL, NULL) != SQLITE_OK)
        return weir_store_fail(tx, job, "exec");
    if (j->fail_after) {
        snprintf(job->error, sizeof(job->error), "failed on purpose");
        return WEIR_ERR;
    }
    return WEIR_OK;
}

static void sql_done(struct weir_store_job *job)
{
    ((struct sql_job *)job)->done = true;
}

static long count_rows(const char *table)
{
    char path[400], sql[128];
    snprintf(path, sizeof(path), "%s/weir.db", dir);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long n = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void a_failing_job_is_rolled_back_alone(void **state)
{
    struct weir_store *s = open_store();
    struct sql_job jobs[3] = {
        {.job = {.run = run_sql, .done = sql_done},
         .sql = "INSERT INTO async_events(function,request_id,origin,payload,accepted_ms,due_ms)"
                " VALUES('f','a','t','p',1,1)"},
        {.job = {.run = run_sql, .done = sql_done},
         .sql = "INSERT INTO async_events(function,request_id,origin,payload,accepted_ms,due_ms)"
                " VALUES('f','b','t','p',1,1)",
         .fail_after = true},
        {.job = {.run = run_sql, .done = sql_done}, .sql = "INSERT INTO no_such_table VALUES(1)"},
    };
    for (int i = 0; i < 3; i++)
        weir_store_submit(s, &jobs[i].job);
    run_until(&jobs[2].done);
    assert_int_equal(jobs[0].job.status, WEIR_OK);
    assert_int_equal(jobs[1].job.status, WEIR_ERR);
    assert_string_equal(jobs[1].job.error, "failed on purpose");
    assert_int_equal(jobs[2].job.status, WEIR_ERR);
    assert_non_null(strstr(jobs[2].job.error, "no such table"));
    weir_store_free(s);
    /* Only the first job's row was committed. */
    assert_int_equal(count_rows("async_events"), 1);
}

/* ---- the async queue's store -------------------------------------------------------------- */

struct result {
    bool done;
    weir_status st;
    char error[256];
    int64_t next_due;
};

static void on_done(void *arg, weir_status st, const char *error)
{
    struct result *r = arg;
    r->done = true;
    r->st = st;
    snprintf(r->error, sizeof(r->error), "%s", error ? error : "");
}

static void on_taken(void *arg, weir_status st, const char *error, struct weir_list *events,
                     int64_t next_due_ms)
{
    struct result *r = arg;
    on_done(arg, st, error);
    r->next_due = next_due_ms;
}

static void put_events(struct weir_async_store *as, const char *fn, const int64_t *due, size_t n)
{
    struct weir_list events;
    weir_list_init(&events);
    for (size_t i = 0; i < n; i++) {
        char payload[32];
        int len = snprintf(payload, sizeof(payload), "{\"n\":%zu}", i);
        struct weir_async_event *ev = weir_async_event_new(fn, "test", payload, (size_t)len);
        snprintf(ev->request_id, sizeof(ev->request_id), "req-%s-%zu", fn, i);
        ev->accepted_ms = 1000;
        ev->due_ms = due[i];
        weir_list_push_back(&events, &ev->link);
    }
    struct result r = {0};
    as->ops->put(as, &events, on_done, &r);
    assert_true(weir_list_empty(&events)); /* the store holds them until done */
    run_until(&r.done);
    assert_int_equal(r.st, WEIR_OK);
    assert_int_equal(weir_list_count(&events), n);
    int64_t last_id = 0;
    struct weir_list *node;
    while ((node = weir_list_pop_front(&events))) {
        struct weir_async_event *ev = weir_list_entry(node, struct weir_async_event, link);
        assert_true(ev->id > last_id); /* ids were set, in order */
        last_id = ev->id;
        weir_async_event_free(ev);
    }
}

static size_t take(struct weir_async_store *as, const char *fn, int64_t now, size_t max,
                   struct weir_list *into, int64_t *next_due)
{
    struct result r = {0};
    as->ops->take(as, fn, now, max, into, on_taken, &r);
    run_until(&r.done);
    assert_int_equal(r.st, WEIR_OK);
    *next_due = r.next_due;
    return weir_list_count(into);
}

static struct weir_async_event *pop(struct weir_list *events)
{
    struct weir_list *node = weir_list_pop_front(events);
    assert_non_null(node);
    return weir_list_entry(node, struct weir_async_event, link);
}

static void free_all(struct weir_list *events)
{
    struct weir_list *node;
    while ((node = weir_list_pop_front(events)))
        weir_async_event_free(weir_list_entry(node, struct weir_async_event, link));
}

static void async_store_takes_due_events_earliest_first_and_hides_them(void **state)
{
    struct weir_store *s = open_store();
    struct weir_async_store *as = weir_async_store_sqlite(s);
    const int64_t due[] = {5000, 2000, 3000, 9000};
    put_events(as, "f", due, 4);
    const int64_t other_due[] = {1000};
    put_events(as, "g", other_due, 1);

    struct weir_list got;
    weir_list_init(&got);
    int64_t next;
    /* At 4000 three of f's are due; max 2 takes the earliest two. */
    assert_int_equal(take(as, "f", 4000, 2, &got, &next), 2);
    struct weir_async_event *a = pop(&got), *b = pop(&got);
    assert_int_equal(a->due_ms, 2000);
    assert_string_equal(a->request_id, "req-f-1");
    assert_string_equal(a->payload, "{\"n\":1}");
    assert_int_equal(a->payload_len, 7);
    assert_string_equal(a->function, "f");
    assert_string_equal(a->origin, "test");
    assert_int_equal(a->accepted_ms, 1000);
    assert_int_equal(b->due_ms, 3000);
    assert_int_equal(next, 5000); /* the earliest not taken */

    /* Taken events are not taken again; g's are g's. */
    assert_int_equal(take(as, "f", 4000, 10, &got, &next), 0);
    assert_int_equal(take(as, "g", 4000, 10, &got, &next), 1);
    assert_int_equal(next, -1);
    free_all(&got);

    /* a failed: back with a later due time and its answer; b is finished. */
    a->due_ms = 7000;
    a->invokes = 1;
    a->function_errors = 1;
    weir_async_event_set_answer(a, 200, "Unhandled", "{\"errorMessage\":\"x\"}", 20);
    struct result r1 = {0}, r2 = {0};
    as->ops->update(as, a, on_done, &r1);
    as->ops->remove(as, b, on_done, &r2);
    run_until(&r2.done);
    run_until(&r1.done);
    assert_int_equal(r1.st, WEIR_OK);
    assert_int_equal(r2.st, WEIR_OK);
    weir_async_event_free(a);
    weir_async_event_free(b);

    /* At 6000 only the one due at 5000 is there: a waits for 7000, b is gone. */
    assert_int_equal(take(as, "f", 6000, 10, &got, &next), 1);
    struct weir_async_event *c = pop(&got);
    assert_int_equal(c->due_ms, 5000);
    assert_int_equal(next, 7000);
    weir_async_event_free(c);
    as->ops->free(as);
    weir_store_free(s);
}

static void async_store_keeps_events_across_a_reopen_and_frees_what_was_taken(void **state)
{
    struct weir_store *s = open_store();
    struct weir_async_store *as = weir_async_store_sqlite(s);
    const int64_t due[] = {100, 200};
    put_events(as, "f", due, 2);
    struct weir_list got;
    weir_list_init(&got);
    int64_t next;
    assert_int_equal(take(as, "f", 1000, 10, &got, &next), 2);
    struct weir_async_event *a = pop(&got);
    a->invokes = 2;
    a->function_errors = 2;
    a->outcome = WEIR_ASYNC_RETRIES_EXHAUSTED;
    a->pending_sinks = 3;
    weir_async_event_set_answer(a, 200, "Unhandled", "{\"errorType\":\"E\"}", 17);
    struct result r = {0};
    as->ops->update(as, a, on_done, &r);
    run_until(&r.done);
    weir_async_event_free(a);
    free_all(&got);
    as->ops->free(as);
    /* A process that stops with an event taken (the second) leaves it to the next. */
    weir_store_free(s);

    s = open_store();
    as = weir_async_store_sqlite(s);
    assert_int_equal(take(as, "f", 1000, 10, &got, &next), 2);
    a = pop(&got);
    assert_int_equal(a->due_ms, 100);
    assert_int_equal(a->invokes, 2);
    assert_int_equal(a->function_errors, 2);
    assert_int_equal(a->outcome, WEIR_ASYNC_RETRIES_EXHAUSTED);
    assert_int_equal(a->pending_sinks, 3);
    assert_int_equal(a->last_status, 200);
    assert_string_equal(a->last_error, "Unhandled");
    assert_int_equal(a->last_response_len, 17);
    assert_memory_equal(a->last_response, "{\"errorType\":\"E\"}", 17);
    struct weir_async_event *b = pop(&got);
    assert_int_equal(b->invokes, 0);
    assert_int_equal(b->outcome, WEIR_ASYNC_UNDECIDED);
    assert_null(b->last_error);
    assert_null(b->last_response);
    weir_async_event_free(a);
    weir_async_event_free(b);
    as->ops->free(as);
    weir_store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(worker_runs_jobs_in_order_and_calls_done_on_the_loop, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(worker_free_finishes_every_job_submitted, setup, teardown),
        cmocka_unit_test_setup_teardown(worker_free_never_waits_on_a_full_pipe, setup, teardown),
        cmocka_unit_test_setup_teardown(worker_free_finishes_what_its_callbacks_submit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(store_creates_the_directory_and_a_wal_database, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(store_is_held_by_one_process_at_a_time, setup, teardown),
        cmocka_unit_test_setup_teardown(a_failing_job_is_rolled_back_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(async_store_takes_due_events_earliest_first_and_hides_them,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            async_store_keeps_events_across_a_reopen_and_frees_what_was_taken, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
