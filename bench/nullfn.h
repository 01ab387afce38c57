/* The null function the benchmarks invoke: an HTTP/1.1 server on 127.0.0.1 (a free port) on a
 * thread of the benchmark's own, so its CPU can be read apart from the benchmark's. Each
 * benchmark brings the handler that counts its event's records.
 *
 * Two transports behind one handler. NULLFN_LEAN, for the benchmarks whose yardstick has no
 * function in it (a raw Kafka consumer, a raw replication stream): the function only takes CPU
 * from weir on the same machine, so it is as cheap as an HTTP server can be — each connection
 * reads into one buffer of its own (a body lands contiguous, no copy after recv), only
 * Content-Length, Expect and Transfer-Encoding are looked at in the head, and the answer is one
 * canned send. It speaks what weir's clients send: a request with a Content-Length on keep-alive
 * connections; a chunked body is refused (the connection closed, and said). NULLFN_EVHTTP,
 * libevent's evhttp, for the SQS benchmark, whose batch-1 goal is a ratio to this very server's raw
 * POST rate as it was set (evhttp costs ~70 us per 26 KB request where the lean one costs ~30).
 * Header-only, as bench/common.h; it must never measure anything itself. */
#ifndef WEIR_BENCH_NULLFN_H
#define WEIR_BENCH_NULLFN_H

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "bench/common.h"

#define NULLFN_BUF_MIN (64 * 1024)
/* A request's head at most; weir's is a few hundred bytes. */
#define NULLFN_HEAD_MAX (64 * 1024)
/* A body at most: weir's invoke payload limit is 6 MB. */
#define NULLFN_BODY_MAX (64L * 1024 * 1024)

struct nullfn;

enum nullfn_transport { NULLFN_LEAN, NULLFN_EVHTTP };

/* One connection, and the request read on it (NULLFN_EVHTTP: one request): between the handler's
 * call and nullfn_reply_ok it is the handler's (a benchmark may hold answers back). */
struct nullfn_req {
    struct nullfn *f;
    struct nullfn_req *prev, *next; /* the server's open connections */
    int fd;
    struct event *ev;
    char *buf; /* bytes read and not yet answered */
    size_t len, cap;
    size_t head_len, body_len;    /* of the request at buf, once its head is whole */
    bool continued;               /* 100 Continue sent for it */
    bool busy;                    /* handed to the handler, not answered yet */
    bool gone;                    /* the peer closed while busy: freed when answered */
    struct evhttp_request *evreq; /* NULLFN_EVHTTP: the request itself */
};

/* f is the server (struct nullfn *), whose arg is the handler's. */
typedef void (*nullfn_handler)(struct nullfn_req *req, const char *body, size_t len, void *f);

struct nullfn {
    enum nullfn_transport transport;
    struct event_base *base;
    struct evhttp *http;    /* NULLFN_EVHTTP */
    struct evbuffer *reply; /* NULLFN_EVHTTP */
    struct event *accept_ev;
    struct event *stop_ev;
    int listen_fd;
    int stop_pipe[2];
    int port;
    nullfn_handler handle;
    pthread_t thread;
    bool running; /* the thread is started and not joined */
    pid_t tid;
    long refused;             /* connections closed for a request it cannot read */
    struct nullfn_req *conns; /* open connections, freed at stop */
    void *arg;                /* the handler's */
};

static inline void nullfn_stop_cb(evutil_socket_t fd, short what, void *arg)
{
    event_base_loopbreak(arg);
}

static inline void *nullfn_main(void *arg)
{
    struct nullfn *f = arg;
    pthread_setname_np(pthread_self(), "nullfn");
    __atomic_store_n(&f->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
    event_base_dispatch(f->base);
    return NULL;
}

static inline void nullfn_req_free(struct nullfn_req *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        r->f->conns = r->next;
    if (r->next)
        r->next->prev = r->prev;
    event_free(r->ev);
    close(r->fd);
    free(r->buf);
    free(r);
}

/* The value of Content-Length in the head (-1: none or not a number); *chunked and *expect
 * tell whether Transfer-Encoding and Expect: 100-continue are there. */
static inline long nullfn_head_fields(const char *head, size_t len, bool *chunked, bool *expect)
{
    long length = -1;
    *chunked = *expect = false;
    const char *end = head + len;
    const char *line = memchr(head, '\n', len); /* past the request line */
    while (line && ++line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        size_t n = (size_t)((eol ? eol : end) - line);
        if (n > 15 && !strncasecmp(line, "content-length:", 15)) {
            const char *d = line + 15, *eod = line + n;
            while (d < eod && (*d == ' ' || *d == '\t'))
                d++;
            length = d < eod && *d >= '0' && *d <= '9' ? 0 : -1;
            for (; length >= 0 && d < eod && *d >= '0' && *d <= '9'; d++)
                length = length > NULLFN_BODY_MAX ? length : length * 10 + (*d - '0');
        } else if (n > 18 && !strncasecmp(line, "transfer-encoding:", 18))
            *chunked = true;
        else if (n > 7 && !strncasecmp(line, "expect:", 7) && memmem(line, n, "100-continue", 12))
            *expect = true;
        line = eol;
    }
    return length;
}

static inline void nullfn_send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            poll(&pfd, 1, 1000);
        } else {
            return; /* the peer is gone: its read ends the connection */
        }
    }
}

/* Hands the request at the front of r->buf to the handler once it is whole, and stops reading
 * the connection until it is answered (the handler's body pointer stays valid until then).
 * false: the request could not be read, and r is freed. */
static inline bool nullfn_try_request(struct nullfn_req *r)
{
    if (r->busy || r->gone)
        return true;
    if (!r->head_len) {
        char *blank = r->len >= 4 ? memmem(r->buf, r->len, "\r\n\r\n", 4) : NULL;
        if (!blank) {
            if (r->len > NULLFN_HEAD_MAX)
                goto refuse;
            return true;
        }
        bool chunked, expect;
        r->head_len = (size_t)(blank + 4 - r->buf);
        long length = nullfn_head_fields(r->buf, r->head_len, &chunked, &expect);
        if (chunked || length < 0 || length > NULLFN_BODY_MAX)
            goto refuse;
        r->body_len = (size_t)length;
        if (expect && !r->continued && r->len < r->head_len + r->body_len) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            nullfn_send_all(r->fd, cont, sizeof cont - 1);
        }
        r->continued = true;
    }
    if (r->len < r->head_len + r->body_len) {
        /* Room for the whole body now: the next reads fill it in one go. */
        size_t need = r->head_len + r->body_len;
        if (need > r->cap) {
            while (r->cap < need)
                r->cap *= 2;
            r->buf = realloc(r->buf, r->cap);
            if (!r->buf)
                abort();
        }
        return true;
    }
    r->busy = true;
    event_del(r->ev);
    r->f->handle(r, r->buf + r->head_len, r->body_len, r->f);
    return true;
refuse:
    say("null function: a request it cannot read (no Content-Length, chunked, or too large): "
        "connection closed");
    r->f->refused++;
    nullfn_req_free(r);
    return false;
}

static inline void nullfn_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct nullfn_req *r = arg;
    bool eof = false;
    for (;;) {
        if (r->len == r->cap) {
            r->cap *= 2;
            r->buf = realloc(r->buf, r->cap);
            if (!r->buf)
                abort();
        }
        ssize_t n = recv(fd, r->buf + r->len, r->cap - r->len, 0);
        if (n > 0) {
            r->len += (size_t)n;
            if (r->len < r->cap)
                break; /* what was there is read: a second recv would find nothing */
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        eof = true; /* the end, or an error */
        break;
    }
    /* A request that came whole with the end is still answered (and counted). */
    if (!nullfn_try_request(r))
        return;
    if (!eof)
        return;
    event_del(r->ev);
    if (r->busy)
        r->gone = true; /* freed when answered */
    else
        nullfn_req_free(r);
}

static inline void nullfn_accept_cb(evutil_socket_t fd, short what, void *arg)
{
    struct nullfn *f = arg;
    for (;;) {
        int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0)
            return;
        int one = 1;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct nullfn_req *r = calloc(1, sizeof *r);
        if (!r)
            abort();
        r->f = f;
        r->next = f->conns;
        if (f->conns)
            f->conns->prev = r;
        f->conns = r;
        r->fd = c;
        r->cap = NULLFN_BUF_MIN;
        r->buf = malloc(r->cap);
        if (!r->buf)
            abort();
        r->ev = event_new(f->base, c, EV_READ | EV_PERSIST, nullfn_read_cb, r);
        event_add(r->ev, NULL);
    }
}

static inline void nullfn_evhttp_cb(struct evhttp_request *evreq, void *arg)
{
    struct nullfn *f = arg;
    struct nullfn_req *r = calloc(1, sizeof *r);
    if (!r)
        abort();
    r->f = f;
    r->evreq = evreq;
    struct evbuffer *in = evhttp_request_get_input_buffer(evreq);
    size_t len = evbuffer_get_length(in);
    f->handle(r, len ? (const char *)evbuffer_pullup(in, -1) : "", len, f);
}

/* Makes the server, listening, without its thread yet: events of the caller's on f->base (made
 * before nullfn_run, as libevent wants one thread per base) go between the two. handle(req,
 * body, len, f) will be called on its thread for every request, with f->arg = arg, and must
 * answer it with nullfn_reply_ok, then or later (on the thread). -1 when it cannot listen. */
static inline int nullfn_open(struct nullfn *f, enum nullfn_transport transport,
                              nullfn_handler handle, void *arg)
{
    memset(f, 0, sizeof *f);
    f->transport = transport;
    f->arg = arg;
    f->handle = handle;
    f->listen_fd = -1;
    if (pipe(f->stop_pipe) != 0)
        return -1;
    f->base = event_base_new();
    f->stop_ev = event_new(f->base, f->stop_pipe[0], EV_READ, nullfn_stop_cb, f->base);
    event_add(f->stop_ev, NULL);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    if (transport == NULLFN_EVHTTP) {
        f->http = evhttp_new(f->base);
        f->reply = evbuffer_new();
        struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(f->http, "127.0.0.1", 0);
        if (!bs) {
            say("null function: cannot listen on 127.0.0.1");
            return -1;
        }
        getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl);
        f->port = ntohs(sa.sin_port);
        evhttp_set_allowed_methods(f->http, EVHTTP_REQ_POST);
        evhttp_set_gencb(f->http, nullfn_evhttp_cb, f);
        return 0;
    }
    f->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (f->listen_fd < 0 || bind(f->listen_fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(f->listen_fd, 1024) != 0 ||
        getsockname(f->listen_fd, (struct sockaddr *)&sa, &sl) != 0) {
        say("null function: cannot listen on 127.0.0.1: %s", strerror(errno));
        return -1;
    }
    f->port = ntohs(sa.sin_port);
    f->accept_ev = event_new(f->base, f->listen_fd, EV_READ | EV_PERSIST, nullfn_accept_cb, f);
    event_add(f->accept_ev, NULL);
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
static inline int nullfn_start(struct nullfn *f, enum nullfn_transport transport,
                               nullfn_handler handle, void *arg)
{
    return nullfn_open(f, transport, handle, arg) == 0 ? nullfn_run(f) : -1;
}

/* Answers req with 200 and {}, as a function that succeeded; the connection reads on. */
static inline void nullfn_reply_ok(struct nullfn *f, struct nullfn_req *r)
{
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             "Content-Length: 2\r\n\r\n{}";
    if (r->evreq) {
        evhttp_add_header(evhttp_request_get_output_headers(r->evreq), "Content-Type",
                          "application/json");
        evbuffer_add(f->reply, "{}", 2);
        evhttp_send_reply(r->evreq, 200, "OK", f->reply);
        free(r);
        return;
    }
    if (r->gone) {
        nullfn_req_free(r);
        return;
    }
    nullfn_send_all(r->fd, ok, sizeof ok - 1);
    size_t used = r->head_len + r->body_len;
    memmove(r->buf, r->buf + used, r->len - used);
    r->len -= used;
    r->head_len = r->body_len = 0;
    r->continued = r->busy = false;
    event_add(r->ev, NULL);
    if (r->len)
        nullfn_try_request(r); /* a request sent before this answer (pipelined) */
}

/* Stops the server's thread; its base and events stay, for the caller's to be freed first. */
static inline void nullfn_join(struct nullfn *f)
{
    if (f->running && write(f->stop_pipe[1], "x", 1) == 1)
        pthread_join(f->thread, NULL);
    f->running = false;
}

/* Stops the thread (unless nullfn_join did) and frees the server, closing its connections. */
static inline void nullfn_stop(struct nullfn *f)
{
    nullfn_join(f);
    while (f->conns)
        nullfn_req_free(f->conns);
    if (f->accept_ev)
        event_free(f->accept_ev);
    if (f->stop_ev)
        event_free(f->stop_ev);
    if (f->listen_fd >= 0)
        close(f->listen_fd);
    if (f->http)
        evhttp_free(f->http);
    if (f->reply)
        evbuffer_free(f->reply);
    if (f->base)
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
