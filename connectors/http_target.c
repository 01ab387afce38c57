/* HTTP function target for plain http:// URLs: weir's own HTTP/1.1 client on non-blocking
 * sockets, driven by the libevent loop. An invocation needs little of HTTP — one POST with a
 * Content-Length, then a response with a Content-Length, chunked or ending at close, on kept-alive
 * connections — and this does that at a fraction of libcurl's cost per request (libcurl was
 * 13–21% of weir's loop in the Kafka benchmark's profile). URLs it does not take (https,
 * credentials, a proxy in the environment) go to the libcurl target, curl_target.c.
 * Owns its connections, lookups and timers. It reports what came back and must never judge it:
 * retries and verdicts are the dispatcher's. */
#include "connectors/target.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "config/config.h"
#include "connectors/http_response.h"
#include "connectors/http_shared.h"
#include "core/clock.h"
#include "core/list.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/resolve.h"

#define COMPONENT "target.http"
/* Idle connections kept per target: beyond any concurrency weir runs one function at. */
#define IDLE_CONNECTIONS_KEPT 1024
#define READ_SIZE             (64 * 1024)
/* Functions may run for up to 15 minutes on an idle connection; notice a dead peer (as
 * curl_target.c does with CURLOPT_TCP_KEEPALIVE's defaults). */
#define KEEPALIVE_IDLE_S 60
/* A connect that neither succeeds nor fails this long gives way to the host's next address, when
 * it has one (an address that drops packets, as a host that is down behind a name does). */
#define NEXT_ADDRESS_AFTER_MS 2000

/* One TCP connection to the target's host: running one invocation, or idle in t->idle. */
struct conn {
    struct weir_target *t;
    int fd;
    struct event *readable; /* added for the connection's whole life: an idle one that becomes
                               readable was closed by the server (or sent garbage) */
    struct event *writable; /* added while connecting, or while a request is part-sent */
    bool connecting;
    unsigned served;             /* responses read on it */
    struct weir_invocation *inv; /* NULL while idle */
    struct weir_list node;       /* in t->idle while idle */
};

struct weir_invocation {
    struct weir_target *t;
    struct conn *c;              /* while connected */
    struct weir_resolve *lookup; /* while the host's name is looked up */
    /* The host's addresses, tried in turn until one connects: the target's own for a numeric
     * host, else what the lookup found (then owned here). */
    const struct sockaddr_storage *addrs;
    size_t n_addrs;
    size_t next_addr;
    struct sockaddr_storage *found;
    struct event *next_address; /* moves on from a connect that hangs, while addresses remain */
    struct event *timer;        /* the function's timeout */
    struct event *defer;        /* reports a failure found inside invoke from the loop */
    bool in_invoke;
    weir_invoke_done_fn done;
    void *arg;
    const char *payload; /* borrowed until done or cancel */
    size_t len;
    char length_line[32]; /* the request's "<Content-Length>\r\n\r\n" */
    size_t length_line_len;
    size_t sent;  /* bytes of the request written, head included */
    bool resent;  /* sent once more on a new connection: a reused one died without an answer */
    size_t heard; /* bytes of the response read */
    struct weir_invoke_result res;
    struct weir_http_response resp; /* its body is res.body */
    int64_t start_us;
    int64_t timeout_ms;
    struct weir_list node; /* in t->invs */
};

struct weir_target {
    struct event_base *base;
    char *log_url;
    char host[256]; /* as the URL names it, brackets of an IPv6 address removed */
    int port;
    /* The request up to the Content-Length value: the same for every invocation. */
    char *head;
    size_t head_len;
    struct weir_resolver *resolver; /* for a host given by name; NULL for a numeric address */
    struct sockaddr_storage addr;   /* a numeric host's address */
    struct weir_list idle;          /* most recently used first (conn->node) */
    size_t n_idle;
    struct weir_list invs; /* running, so free can cancel them (inv->node) */
};

/* ---- connections ---------------------------------------------------------------------------- */

static void on_readable(evutil_socket_t fd, short what, void *arg);
static void on_writable(evutil_socket_t fd, short what, void *arg);

static void conn_close(struct conn *c)
{
    if (c->inv)
        c->inv->c = NULL;
    else if (weir_list_linked(&c->node)) {
        weir_list_remove(&c->node);
        c->t->n_idle--;
    }
    /* Safe from the connection's own callbacks: libevent does not touch an event after its
     * callback returns. */
    event_free(c->readable);
    event_free(c->writable);
    close(c->fd);
    free(c);
}

/* Starts connecting to addr for inv. false with errno set when the connection could not even be
 * started (or was refused at once, as loopback does). */
static bool conn_open(struct weir_invocation *inv, const struct sockaddr *addr, socklen_t len)
{
    struct weir_target *t = inv->t;
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    int one = 1, idle = KEEPALIVE_IDLE_S;
    /* The request goes out in one write; the response must not wait for a delayed ACK. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &idle, sizeof(idle));
    bool connecting = false;
    if (connect(fd, addr, len) != 0) {
        if (errno != EINPROGRESS) {
            int saved = errno;
            close(fd);
            errno = saved;
            return false;
        }
        connecting = true;
    }
    struct conn *c = weir_calloc(1, sizeof(*c));
    c->t = t;
    c->fd = fd;
    c->connecting = connecting;
    c->readable = event_new(t->base, fd, EV_READ | EV_PERSIST, on_readable, c);
    c->writable = event_new(t->base, fd, EV_WRITE | EV_PERSIST, on_writable, c);
    weir_list_init(&c->node);
    event_add(c->readable, NULL);
    if (connecting)
        event_add(c->writable, NULL);
    c->inv = inv;
    inv->c = c;
    return true;
}

/* Takes the most recently used idle connection that is still good, or NULL. The loop may not have
 * seen yet what happened to one while it was idle: a close by the server (a restart, its
 * keep-alive timeout) or bytes nobody asked for, which would be taken for the next answer. A peek
 * finds both and costs less than a request lost on a dead connection. */
static struct conn *conn_take_idle(struct weir_target *t)
{
    while (!weir_list_empty(&t->idle)) {
        struct conn *c = weir_list_entry(weir_list_pop_front(&t->idle), struct conn, node);
        weir_list_init(&c->node);
        t->n_idle--;
        char byte;
        ssize_t r = recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return c;
        conn_close(c);
    }
    return NULL;
}

/* c's invocation is over and the connection can carry another request. */
static void conn_keep(struct conn *c)
{
    struct weir_target *t = c->t;
    c->inv->c = NULL;
    c->inv = NULL;
    c->served++;
    if (t->n_idle >= IDLE_CONNECTIONS_KEPT) {
        conn_close(c);
        return;
    }
    weir_list_push_front(&t->idle, &c->node);
    t->n_idle++;
}

/* ---- one invocation ------------------------------------------------------------------------- */

static void inv_free(struct weir_invocation *inv)
{
    if (inv->c)
        conn_close(inv->c); /* mid-request: it cannot carry another */
    weir_resolve_cancel(inv->lookup);
    free(inv->found);
    if (inv->next_address)
        event_free(inv->next_address);
    if (inv->timer)
        event_free(inv->timer);
    if (inv->defer)
        event_free(inv->defer);
    if (inv->t)
        weir_list_remove(&inv->node);
    weir_http_response_deinit(&inv->resp);
    weir_invoke_result_deinit(&inv->res);
    free(inv);
}

static size_t request_len(const struct weir_invocation *inv)
{
    return inv->t->head_len + inv->length_line_len + inv->len;
}

/* Hands the result to the caller and frees the invocation. The caller's done may cancel other
 * invocations, start new ones or free the target; none of that reaches this invocation, and the
 * caller of report must not touch the target or a connection afterwards. */
static void report(struct weir_invocation *inv)
{
    struct weir_invoke_result *res = &inv->res;
    res->elapsed_us = weir_clock_mono_us() - inv->start_us;
    res->status = inv->resp.status;
    snprintf(res->function_error, sizeof(res->function_error), "%s",
             inv->resp.function_error[0] ? inv->resp.function_error : inv->resp.error_type);
    if (res->transport != WEIR_TRANSPORT_OK)
        weir_debug(COMPONENT, "invocation failed url=%s error=\"%s\"", inv->t->log_url,
                   res->detail);
    if (inv->c) {
        if (inv->resp.keep_alive && inv->resp.done && inv->sent == request_len(inv))
            conn_keep(inv->c);
        else
            conn_close(inv->c);
    }
    weir_list_remove(&inv->node);
    inv->t = NULL;
    inv->done(inv->arg, res);
    inv_free(inv);
}

static void on_defer(evutil_socket_t fd, short what, void *arg)
{
    report(arg);
}

/* Ends inv with a transport failure; from inside invoke the report waits for the loop. */
static void fail(struct weir_invocation *inv, enum weir_transport transport, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct weir_invocation *inv, enum weir_transport transport, const char *fmt, ...)
{
    inv->res.transport = transport;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(inv->res.detail, sizeof(inv->res.detail), fmt, ap);
    va_end(ap);
    inv->resp.keep_alive = false;
    if (inv->c)
        conn_close(inv->c);
    weir_resolve_cancel(inv->lookup);
    inv->lookup = NULL;
    if (inv->in_invoke) {
        inv->defer = event_new(inv->t->base, -1, 0, on_defer, inv);
        event_active(inv->defer, EV_TIMEOUT, 1);
        return;
    }
    report(inv);
}

static void send_rest(struct weir_invocation *inv);
static void start(struct weir_invocation *inv, bool fresh);

/* The connection broke before the response was whole. A reused connection that the server had
 * closed while it was idle, answering not one byte, gets the request once more on a new one:
 * the keep-alive race every HTTP client handles (libcurl does the same). */
static void broken(struct weir_invocation *inv, const char *what, int error)
{
    struct conn *c = inv->c;
    if (c && c->served > 0 && inv->heard == 0 && !inv->resent) {
        conn_close(c);
        inv->resent = true;
        inv->sent = 0;
        start(inv, true);
        return;
    }
    if (inv->heard == 0)
        fail(inv, WEIR_TRANSPORT_FAILED, "%s%s%s: empty reply from the function", what,
             error ? ": " : "", error ? strerror(error) : "");
    else
        fail(inv, WEIR_TRANSPORT_FAILED, "%s%s%s after %zu bytes of the response", what,
             error ? ": " : "", error ? strerror(error) : "", inv->heard);
}

static void send_rest(struct weir_invocation *inv)
{
    struct conn *c = inv->c;
    const struct weir_target *t = inv->t;
    size_t total = request_len(inv);
    while (inv->sent < total) {
        struct iovec iov[3];
        int n = 0;
        size_t at = inv->sent;
        const char *parts[3] = {t->head, inv->length_line, inv->payload};
        size_t lens[3] = {t->head_len, inv->length_line_len, inv->len};
        for (int i = 0; i < 3; i++) {
            if (at >= lens[i]) {
                at -= lens[i];
                continue;
            }
            iov[n].iov_base = (void *)(parts[i] + at);
            iov[n].iov_len = lens[i] - at;
            n++;
            at = 0;
        }
        /* MSG_NOSIGNAL: a peer gone must be an error here, not SIGPIPE for weir. */
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (!event_pending(c->writable, EV_WRITE, NULL))
                    event_add(c->writable, NULL);
                return;
            }
            broken(inv, "sending the request", errno);
            return;
        }
        inv->sent += (size_t)w;
    }
    if (event_pending(c->writable, EV_WRITE, NULL))
        event_del(c->writable);
}

static socklen_t addr_len(const struct sockaddr_storage *a)
{
    return a->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static void connect_next(struct weir_invocation *inv, int last_error);

static void on_connect_slow(evutil_socket_t fd, short what, void *arg)
{
    struct weir_invocation *inv = arg;
    if (inv->c && inv->c->connecting) {
        conn_close(inv->c);
        connect_next(inv, ETIMEDOUT);
    }
}

/* Connects to the host's next address, or fails inv with the last error once none is left. */
static void connect_next(struct weir_invocation *inv, int last_error)
{
    const struct weir_target *t = inv->t;
    while (inv->next_addr < inv->n_addrs) {
        if (conn_open(inv, (const struct sockaddr *)&inv->addrs[inv->next_addr],
                      addr_len(&inv->addrs[inv->next_addr]))) {
            inv->next_addr++;
            if (!inv->c->connecting) {
                send_rest(inv);
            } else if (inv->next_addr < inv->n_addrs) {
                if (!inv->next_address)
                    inv->next_address = evtimer_new(t->base, on_connect_slow, inv);
                struct timeval tv = {.tv_sec = NEXT_ADDRESS_AFTER_MS / 1000,
                                     .tv_usec = (NEXT_ADDRESS_AFTER_MS % 1000) * 1000};
                evtimer_add(inv->next_address, &tv);
            }
            return;
        }
        inv->next_addr++;
        last_error = errno;
    }
    fail(inv, WEIR_TRANSPORT_REFUSED, "connect to %s port %d: %s", t->host, t->port,
         strerror(last_error));
}

static void on_resolved(const char *const *addrs, size_t n, const struct weir_err *err, void *arg)
{
    struct weir_invocation *inv = arg;
    inv->lookup = NULL;
    if (err) {
        fail(inv, WEIR_TRANSPORT_REFUSED, "%s", err->msg);
        return;
    }
    free(inv->found);
    inv->found = weir_calloc(n, sizeof(*inv->found));
    size_t usable = 0;
    char port[16];
    snprintf(port, sizeof(port), "%d", inv->t->port);
    for (size_t i = 0; i < n; i++) {
        struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
                                 .ai_socktype = SOCK_STREAM};
        struct addrinfo *ai = NULL;
        if (getaddrinfo(addrs[i], port, &hints, &ai) == 0 && ai &&
            ai->ai_addrlen <= sizeof(inv->found[usable]))
            memcpy(&inv->found[usable++], ai->ai_addr, ai->ai_addrlen);
        if (ai)
            freeaddrinfo(ai);
    }
    inv->addrs = inv->found;
    inv->n_addrs = usable;
    inv->next_addr = 0;
    connect_next(inv, EADDRNOTAVAIL);
}

/* Sends inv's request on an idle connection, or on a new one (always, when fresh). */
static void start(struct weir_invocation *inv, bool fresh)
{
    struct weir_target *t = inv->t;
    inv->heard = 0;
    weir_http_response_reset(&inv->resp);
    inv->c = fresh ? NULL : conn_take_idle(t);
    if (inv->c) {
        inv->c->inv = inv;
        send_rest(inv);
        return;
    }
    if (t->resolver) {
        inv->lookup = weir_resolve_all_start(t->resolver, t->host, t->port, on_resolved, inv);
        return;
    }
    inv->addrs = &t->addr;
    inv->n_addrs = 1;
    inv->next_addr = 0;
    connect_next(inv, 0);
}

static void arm_timer(struct weir_invocation *inv, int64_t ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    evtimer_add(inv->timer, &tv);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct weir_invocation *inv = arg;
    /* libevent counts from the time it cached at the top of the loop pass, which can be a little
     * before invoke: the function gets its whole timeout. */
    int64_t left_us = inv->timeout_ms * 1000 - (weir_clock_mono_us() - inv->start_us);
    if (left_us > 0) {
        arm_timer(inv, (left_us + 999) / 1000);
        return;
    }
    fail(inv, WEIR_TRANSPORT_TIMEOUT, "timed out after %" PRId64 " ms with %zu bytes received",
         inv->timeout_ms, inv->heard);
}

/* ---- the response --------------------------------------------------------------------------- */

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    struct weir_invocation *inv = c->inv;
    char data[READ_SIZE];
    if (!inv) {
        /* Idle: the server closed it (or sent what nobody asked for). */
        ssize_t r = recv(fd, data, sizeof(data), 0);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        conn_close(c);
        return;
    }
    if (c->connecting)
        return; /* a refused connection is readable too; on_writable says why */
    for (;;) {
        ssize_t r = recv(fd, data, sizeof(data), 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            broken(inv, "reading the response", errno);
            return;
        }
        if (r == 0) {
            if (weir_http_response_closed(&inv->resp)) {
                report(inv);
            } else {
                broken(inv, "connection closed by the function", 0);
            }
            return;
        }
        inv->heard += (size_t)r;
        switch (weir_http_response_feed(&inv->resp, data, (size_t)r)) {
        case WEIR_HTTP_MORE:
            break;
        case WEIR_HTTP_DONE:
            report(inv);
            return;
        case WEIR_HTTP_BAD:
            inv->res.transport = WEIR_TRANSPORT_FAILED;
            snprintf(inv->res.detail, sizeof(inv->res.detail), "%s", inv->resp.error);
            report(inv);
            return;
        case WEIR_HTTP_TOO_LARGE:
            inv->res.transport = WEIR_TRANSPORT_TOO_LARGE;
            snprintf(inv->res.detail, sizeof(inv->res.detail), "%s", inv->resp.error);
            report(inv);
            return;
        }
        /* A short read emptied the socket; waiting costs less than a recv that says so. */
        if ((size_t)r < sizeof(data))
            return;
    }
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    struct weir_invocation *inv = c->inv;
    if (!inv) {
        event_del(c->writable);
        return;
    }
    if (c->connecting) {
        int error = 0;
        socklen_t len = sizeof(error);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0)
            error = errno;
        if (error) {
            conn_close(c);
            connect_next(inv, error);
            return;
        }
        c->connecting = false;
        if (inv->next_address)
            evtimer_del(inv->next_address);
    }
    send_rest(inv);
}

static struct weir_invocation *http_invoke(struct weir_target *t, const char *payload, size_t len,
                                           int64_t timeout_ms, weir_invoke_done_fn done, void *arg)
{
    struct weir_invocation *inv = weir_calloc(1, sizeof(*inv));
    inv->t = t;
    inv->done = done;
    inv->arg = arg;
    inv->payload = payload;
    inv->len = len;
    inv->timeout_ms = timeout_ms;
    inv->start_us = weir_clock_mono_us();
    inv->length_line_len =
        (size_t)snprintf(inv->length_line, sizeof(inv->length_line), "%zu\r\n\r\n", len);
    weir_invoke_result_init(&inv->res);
    weir_http_response_init(&inv->resp, &inv->res.body, WEIR_RESPONSE_MAX);
    weir_list_push_back(&t->invs, &inv->node);
    if (timeout_ms > 0) {
        inv->timer = evtimer_new(t->base, on_timeout, inv);
        arm_timer(inv, timeout_ms);
    }
    inv->in_invoke = true;
    start(inv, false);
    inv->in_invoke = false;
    return inv;
}

static void http_cancel(struct weir_invocation *inv)
{
    if (inv)
        inv_free(inv);
}

/* ---- the target ----------------------------------------------------------------------------- */

bool weir_http_target_takes(const char *url)
{
    const char *forced = getenv("WEIR_HTTP_CLIENT");
    if (forced && strcmp(forced, "libcurl") == 0)
        return false;
    /* libcurl honours these; a function behind a proxy is left to it. */
    static const char *const proxies[] = {"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < sizeof(proxies) / sizeof(proxies[0]); i++) {
        const char *v = getenv(proxies[i]);
        if (v && *v)
            return false;
    }
    CURLU *u = curl_url();
    char *scheme = NULL, *user = NULL, *zone = NULL;
    /* An IPv6 zone ("[fe80::1%25eth0]") is libcurl's to connect with. */
    bool plain = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
                 curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
                 strcasecmp(scheme, "http") == 0 &&
                 curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_NO_USER &&
                 curl_url_get(u, CURLUPART_ZONEID, &zone, 0) != CURLUE_OK;
    curl_free(scheme);
    curl_free(user);
    curl_free(zone);
    curl_url_cleanup(u);
    return plain;
}

/* Fills t's host, port and request head from the function's final URL. */
static bool parse_url(struct weir_target *t, const struct weir_function_cfg *fc, const char *url,
                      struct weir_err *err)
{
    char *host = NULL, *port = NULL, *path = NULL, *query = NULL;
    bool ok = false;
    CURLU *u = curl_url();
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
        weir_err_set(err, "function %s: url %s: no host, port or path", fc->name, t->log_url);
        goto done;
    }
    curl_url_get(u, CURLUPART_QUERY, &query, 0);
    size_t hn = strlen(host);
    if (hn >= 2 && host[0] == '[' && host[hn - 1] == ']')
        snprintf(t->host, sizeof(t->host), "%.*s", (int)(hn - 2), host + 1);
    else
        snprintf(t->host, sizeof(t->host), "%s", host);
    t->port = atoi(port);
    char *host_header = weir_http_host_header(url);
    struct weir_buf b;
    weir_buf_init(&b);
    weir_buf_printf(&b,
                    "POST %s%s%s HTTP/1.1\r\n%s\r\nUser-Agent: weir/" WEIR_VERSION "\r\n"
                    "Content-Type: application/json\r\n"
                    "X-Amz-Invocation-Type: RequestResponse\r\n"
                    "Content-Length: ",
                    path, query ? "?" : "", query ? query : "", host_header ? host_header : "");
    free(host_header);
    t->head = weir_buf_take(&b, &t->head_len);
    ok = true;
done:
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    curl_url_cleanup(u);
    return ok;
}

static void http_free(struct weir_target *t);

static struct weir_target *http_new(const struct weir_function_cfg *fc, size_t endpoint,
                                    struct event_base *base, struct weir_err *err)
{
    assert(fc->urls && endpoint < fc->n_urls);
    struct weir_target *t = weir_calloc(1, sizeof(*t));
    t->base = base;
    weir_list_init(&t->idle);
    weir_list_init(&t->invs);
    char log_url[512];
    weir_log_redact_uri(fc->urls[endpoint], log_url, sizeof(log_url));
    t->log_url = weir_strdup(log_url);
    char *url = weir_http_function_url(fc, fc->urls[endpoint], log_url, err);
    if (!url)
        goto fail;
    bool parsed = parse_url(t, fc, url, err);
    free(url);
    if (!parsed)
        goto fail;

    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof(port), "%d", t->port);
    if (getaddrinfo(t->host, port, &hints, &ai) == 0 && ai) {
        memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
        freeaddrinfo(ai);
    } else {
        /* A name: looked up for every new connection, so a function that moves (a container
         * restarted with a new address) is found again. */
        struct weir_err why = {{0}};
        t->resolver = weir_resolver_new(base, &why);
        if (!t->resolver) {
            weir_err_set(err, "function %s: %s", fc->name, why.msg);
            goto fail;
        }
    }
    weir_debug(COMPONENT, "target ready function=%s url=%s", fc->name, t->log_url);
    return t;

fail:
    http_free(t);
    return NULL;
}

static void http_free(struct weir_target *t)
{
    if (!t)
        return;
    while (!weir_list_empty(&t->invs))
        inv_free(weir_list_entry(t->invs.next, struct weir_invocation, node));
    while (!weir_list_empty(&t->idle))
        conn_close(weir_list_entry(t->idle.next, struct conn, node));
    weir_resolver_free(t->resolver);
    free(t->head);
    free(t->log_url);
    free(t);
}

const struct weir_target_ops weir_target_http = {
    .name = "http",
    .new = http_new,
    .invoke = http_invoke,
    .cancel = http_cancel,
    .free = http_free,
};
