/* The null function the stream benchmarks invoke: an HTTP server on 127.0.0.1 (a free port) on a
 * thread of the benchmark's own, so its CPU can be read apart from the benchmark's. Each
 * benchmark brings the handler that counts its event's records. Header-only, as bench/common.h;
 * it must never measure anything itself. */
#ifndef WEIR_BENCH_NULLFN_H
#define WEIR_BENCH_NULLFN_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/syscall.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "bench/common.h"

struct nullfn {
    struct event_base *base;
    struct evhttp *http;
    struct event *stop_ev;
    struct evbuffer *reply;
    int stop_pipe[2];
    int port;
    pthread_t thread;
    bool running; /* the thread is started and not joined */
    pid_t tid;
    void *arg; /* the handler's */
};

static inline void nullfn_stop_cb(evutil_socket_t fd, short what, void *arg)
{
    event_base_loopbreak(arg);
}

static inline void *nullfn_main(void *arg)
{
    struct nullfn *f = arg;
    __atomic_store_n(&f->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
    event_base_dispatch(f->base);
    return NULL;
}

/* Makes the server, listening, without its thread yet: events of the caller's on f->base (made
 * before nullfn_run, as libevent wants one thread per base) go between the two. handle(req, f)
 * will be called on its thread for every POST, and f->arg is arg. -1 when it cannot listen. */
static inline int nullfn_open(struct nullfn *f, void (*handle)(struct evhttp_request *, void *),
                              void *arg)
{
    memset(f, 0, sizeof *f);
    f->arg = arg;
    if (pipe(f->stop_pipe) != 0)
        return -1;
    f->base = event_base_new();
    f->http = evhttp_new(f->base);
    f->reply = evbuffer_new();
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(f->http, "127.0.0.1", 0);
    if (!bs) {
        say("null function: cannot listen on 127.0.0.1");
        return -1;
    }
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl);
    f->port = ntohs(sa.sin_port);
    evhttp_set_allowed_methods(f->http, EVHTTP_REQ_POST);
    evhttp_set_gencb(f->http, handle, f);
    f->stop_ev = event_new(f->base, f->stop_pipe[0], EV_READ, nullfn_stop_cb, f->base);
    event_add(f->stop_ev, NULL);
    return 0;
}

/* Starts the thread of a server nullfn_open made. -1 when it cannot. */
static inline int nullfn_run(struct nullfn *f)
{
    if (pthread_create(&f->thread, NULL, nullfn_main, f) != 0)
        return -1;
    f->running = true;
    while (__atomic_load_n(&f->tid, __ATOMIC_ACQUIRE) == 0)
        sleep_us(1000);
    return 0;
}

/* nullfn_open, then nullfn_run. */
static inline int nullfn_start(struct nullfn *f, void (*handle)(struct evhttp_request *, void *),
                               void *arg)
{
    return nullfn_open(f, handle, arg) == 0 ? nullfn_run(f) : -1;
}

/* Answers req with 200 and {}, as a function that succeeded. */
static inline void nullfn_reply_ok(struct nullfn *f, struct evhttp_request *req)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evbuffer_add(f->reply, "{}", 2);
    evhttp_send_reply(req, 200, "OK", f->reply);
}

/* Stops the server's thread; its base and events stay, for the caller's to be freed first. */
static inline void nullfn_join(struct nullfn *f)
{
    if (f->running && write(f->stop_pipe[1], "x", 1) == 1)
        pthread_join(f->thread, NULL);
    f->running = false;
}

/* Stops the thread (unless nullfn_join did) and frees the server. */
static inline void nullfn_stop(struct nullfn *f)
{
    nullfn_join(f);
    event_free(f->stop_ev);
    evhttp_free(f->http);
    evbuffer_free(f->reply);
    event_base_free(f->base);
    close(f->stop_pipe[0]);
    close(f->stop_pipe[1]);
}

/* CPU seconds the server's thread has used. */
static inline double nullfn_cpu(const struct nullfn *f)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)f->tid);
    return cpu_seconds(path);
}

#endif
