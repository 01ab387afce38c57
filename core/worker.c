/* The worker thread and its two pipes: job pointers go to the thread through one and come back
 * through the other. A pointer is 8 bytes, less than PIPE_BUF, so every write moves it whole.
 * The loop side never blocks: what the pipe cannot take now waits in a list until it is
 * writable. Must never call a job's done anywhere but on the loop. */
#define _GNU_SOURCE /* pipe2, pthread_setname_np */
#include "core/worker.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"

/* Jobs the thread runs as one group at most: enough for one commit to carry a burst, few enough
 * that the first job of a group is not kept waiting long behind the last. */
#define GROUP_MAX 512

struct weir_worker {
    struct event_base *base;
    char name[32];
    weir_worker_run_fn run;
    void *ctx;
    pthread_t thread;
    bool started;
    int to_thread[2]; /* [0] the thread reads, [1] the loop writes (non-blocking) */
    int to_loop[2];   /* [0] the loop reads (non-blocking), [1] the thread writes */
    struct event *readable, *writable;
    struct weir_list unsent; /* submitted, not yet in the pipe */
    size_t pending;          /* submitted, done not yet called */
    bool closing;            /* being freed: nothing more goes to the thread */
};

/* Reads whole pointers from fd into jobs (up to max); blocks only when `block` and none are
 * there. Returns how many, 0 at end of file (or nothing ready, when not blocking). */
static size_t read_jobs(int fd, struct weir_worker_job **jobs, size_t max, bool block)
{
    size_t have = 0; /* bytes */
    char *at = (char *)jobs;
    for (;;) {
        ssize_t n = read(fd, at + have, max * sizeof(*jobs) - have);
        if (n > 0) {
            have += (size_t)n;
            if (have % sizeof(*jobs) == 0)
                return have / sizeof(*jobs);
            continue; /* a pointer split across reads: the rest is on its way */
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN && (block || have % sizeof(*jobs)))
            continue; /* a partial pointer is never left behind */
        return have / sizeof(*jobs);
    }
}

static void *thread_main(void *arg)
{
    struct weir_worker *w = arg;
    struct weir_worker_job *jobs[GROUP_MAX];
    size_t n;
    /* Named as the worker (cut to the 15 characters Linux keeps), for top -H and perf. */
    char name[16];
    memcpy(name, w->name, sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    pthread_setname_np(pthread_self(), name);
    while ((n = read_jobs(w->to_thread[0], jobs, GROUP_MAX, true)) > 0) {
        for (size_t i = 0; i < n; i++)
            jobs[i]->ran = true;
        w->run(w->ctx, jobs, n);
        const char *at = (const char *)jobs;
        size_t left = n * sizeof(*jobs);
        while (left) {
            ssize_t wrote = write(w->to_loop[1], at, left);
            if (wrote < 0 && errno == EINTR)
                continue;
            if (wrote < 0)
                abort(); /* the loop's end is open until it has read to the end */
            at += wrote;
            left -= (size_t)wrote;
        }
    }
    /* The end of the returns: free reads up to here. */
    close(w->to_loop[1]);
    return NULL;
}

static void flush_unsent(struct weir_worker *w)
{
    struct weir_list *node;
    while ((node = weir_list_first(&w->unsent))) {
        struct weir_worker_job *job = weir_list_entry(node, struct weir_worker_job, link);
        ssize_t n = write(w->to_thread[1], &job, sizeof(job));
        if (n == (ssize_t)sizeof(job)) {
            weir_list_remove(node);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        /* Full (EAGAIN): the rest goes when the thread has read some. */
        event_add(w->writable, NULL);
        return;
    }
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    flush_unsent(arg);
}

static void finish(struct weir_worker *w, struct weir_worker_job *job)
{
    w->pending--;
    job->done(job);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct weir_worker *w = arg;
    struct weir_worker_job *jobs[GROUP_MAX];
    size_t n;
    /* A bounded number of rounds, so a busy thread cannot keep the loop here. */
    for (int round = 0; round < 4 && (n = read_jobs(fd, jobs, GROUP_MAX, false)) > 0; round++)
        for (size_t i = 0; i < n; i++)
            finish(w, jobs[i]);
}

static int set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

struct weir_worker *weir_worker_new(struct event_base *base, const char *name,
                                    weir_worker_run_fn run, void *ctx, struct weir_err *err)
{
    struct weir_worker *w = weir_calloc(1, sizeof(*w));
    w->base = base;
    snprintf(w->name, sizeof(w->name), "%s", name);
    w->run = run;
    w->ctx = ctx;
    w->to_thread[0] = w->to_thread[1] = w->to_loop[0] = w->to_loop[1] = -1;
    weir_list_init(&w->unsent);
    if (pipe2(w->to_thread, O_CLOEXEC) != 0 || pipe2(w->to_loop, O_CLOEXEC) != 0 ||
        set_nonblocking(w->to_thread[1]) != 0 || set_nonblocking(w->to_loop[0]) != 0) {
        weir_err_set(err, "worker %s: cannot create its pipes: %s", name, strerror(errno));
        goto fail;
    }
    w->readable = event_new(base, w->to_loop[0], EV_READ | EV_PERSIST, on_readable, w);
    w->writable = event_new(base, w->to_thread[1], EV_WRITE, on_writable, w);
    event_add(w->readable, NULL);
    /* The thread must not take the process's signals (SIGCHLD, SIGTERM are the loop's). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&w->thread, NULL, thread_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        weir_err_set(err, "worker %s: cannot start its thread: %s", name, strerror(rc));
        goto fail;
    }
    w->started = true;
    return w;
fail:
    weir_worker_free(w);
    return NULL;
}

void weir_worker_submit(struct weir_worker *w, struct weir_worker_job *job)
{
    job->ran = false;
    w->pending++;
    weir_list_push_back(&w->unsent, &job->link);
    /* While the worker is freed, a done callback may submit more: those wait in the list, and
     * free finishes them unrun. */
    if (!w->closing && !event_pending(w->writable, EV_WRITE, NULL))
        flush_unsent(w);
}

size_t weir_worker_pending(const struct weir_worker *w)
{
    return w->pending;
}

void weir_worker_free(struct weir_worker *w)
{
    if (!w)
        return;
    w->closing = true;
    if (w->writable)
        event_del(w->writable);
    if (w->to_thread[1] >= 0)
        close(w->to_thread[1]); /* the thread reads to the end, runs what it got, and exits */
    if (w->started) {
        /* Read the returns while the thread still writes them, to the end it marks by closing
         * its side: waiting for the thread first could leave it blocked on a full pipe. */
        int flags = fcntl(w->to_loop[0], F_GETFL);
        fcntl(w->to_loop[0], F_SETFL, flags & ~O_NONBLOCK);
        struct weir_worker_job *jobs[GROUP_MAX];
        size_t n;
        while ((n = read_jobs(w->to_loop[0], jobs, GROUP_MAX, true)) > 0)
            for (size_t i = 0; i < n; i++)
                finish(w, jobs[i]);
        pthread_join(w->thread, NULL);
        w->to_loop[1] = -1; /* closed by the thread */
    }
    struct weir_list *node;
    while ((node = weir_list_pop_front(&w->unsent)))
        finish(w, weir_list_entry(node, struct weir_worker_job, link));
    if (w->readable)
        event_free(w->readable);
    if (w->writable)
        event_free(w->writable);
    int fds[] = {w->to_thread[0], w->to_loop[0], w->to_loop[1]};
    for (size_t i = 0; i < sizeof(fds) / sizeof(*fds); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(w);
}
