/* HTTP function target on libcurl, for the URLs weir's own client (http_target.c) leaves alone:
 * https, credentials in the URL, a proxy from the environment. POSTs an event to a function's URL
 * (the Lambda Invoke API, the Runtime Interface Emulator, a webhook) on libcurl's multi-socket
 * API, driven by the libevent loop.
 * Owns the shared CURLM of each event_base and the easy handle of each invocation. It reports
 * what came back and must never judge it: retries and verdicts are the dispatcher's. */
#include "connectors/target.h"

#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "config/config.h"
#include "connectors/http_shared.h"
#include "core/clock.h"
#include "core/list.h"
#include "core/log.h"
#include "core/mem.h"

#define COMPONENT "target.curl"
/* Idle connections kept per event loop: beyond any concurrency weir runs one function at. */
#define CONNECTIONS_KEPT 1024
/* Easy handles kept per target for the next invocations. */
#define IDLE_HANDLES_KEPT 64

/* The one multi handle of an event_base, shared by its HTTP targets so that they share one
 * connection cache. Targets hold a reference each; the loop callbacks hold one while they run,
 * so a done callback that frees the last target cannot free the multi handle under them. */
struct curl_loop {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    struct weir_list socks; /* every socket curl watches (cs->node); freed with the loop */
    int refs;
    struct curl_loop *next;
};

/* One socket curl watches; attached to curl's socket with curl_multi_assign. */
struct curl_sock {
    struct curl_loop *cl;
    struct event *ev;
    struct weir_list node; /* in cl->socks */
};

/* weir runs one loop thread, so a plain list is enough to find a base's multi handle. */
static struct curl_loop *loops;

struct weir_target {
    struct curl_loop *cl;
    char *url;                  /* the final URL, Invoke path applied */
    char *log_url;              /* url with any password hidden */
    struct curl_slist *headers; /* the same for every request */
    CURLU *curlu;               /* url, parsed once: libcurl would parse it for every request */
    struct weir_list invs;      /* running, so free can cancel them (inv->node) */
    /* Easy handles of finished invocations, set up for this target, reused: making one costs
     * more than the rest of a small invocation's client side. */
    CURL *idle[IDLE_HANDLES_KEPT];
    size_t n_idle;
};

struct weir_invocation {
    struct weir_target *t;
    CURL *easy;          /* NULL once setup failed; `defer` then reports it */
    struct event *defer; /* reports a failure found inside invoke from the loop */
    weir_invoke_done_fn done;
    void *arg;
    struct weir_invoke_result res;
    char fn_error[64];   /* X-Amz-Function-Error */
    char error_type[64]; /* Error-Type (the emulator's newer concurrency mode) */
    bool too_large;
    int64_t start_us;
    char errbuf[CURL_ERROR_SIZE];
    struct weir_list node; /* in t->invs */
};

static void check_multi_info(struct curl_loop *cl);

/* ---- the shared multi handle and its libevent glue ------------------------------------------ */

static void sock_free(struct curl_sock *cs)
{
    weir_list_remove(&cs->node);
    /* Safe even when this is the event whose callback is running: libevent does not touch a
     * persistent event after its callback returns. */
    event_free(cs->ev);
    free(cs);
}

static void loop_release(struct curl_loop *cl)
{
    if (--cl->refs > 0)
        return;
    /* Cleanup may still call the socket and timer callbacks, so both stay valid until it ends. */
    curl_multi_cleanup(cl->multi);
    while (!weir_list_empty(&cl->socks))
        sock_free(weir_list_entry(cl->socks.next, struct curl_sock, node));
    event_free(cl->timer);
    for (struct curl_loop **pp = &loops; *pp; pp = &(*pp)->next) {
        if (*pp == cl) {
            *pp = cl->next;
            break;
        }
    }
    free(cl);
    curl_global_cleanup();
}

static void on_sock_event(evutil_socket_t fd, short what, void *arg)
{
    struct curl_sock *cs = arg;
    struct curl_loop *cl = cs->cl; /* cs may be freed by curl's socket callback below */
    int action =
        ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running;
    cl->refs++;
    curl_multi_socket_action(cl->multi, fd, action, &running);
    check_multi_info(cl);
    loop_release(cl);
}

static void on_timer_event(evutil_socket_t fd, short what, void *arg)
{
    struct curl_loop *cl = arg;
    int running;
    cl->refs++;
    curl_multi_socket_action(cl->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_multi_info(cl);
    loop_release(cl);
}

/* CURLMOPT_SOCKETFUNCTION: curl says which events it wants on a socket. Runs inside curl, so it
 * only moves libevent events; it never calls back into curl or into weir. */
static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct curl_loop *cl = userp;
    struct curl_sock *cs = socketp;

    if (what == CURL_POLL_REMOVE) {
        if (cs)
            sock_free(cs);
        return 0;
    }
    short kind = EV_PERSIST;
    if (what & CURL_POLL_IN)
        kind |= EV_READ;
    if (what & CURL_POLL_OUT)
        kind |= EV_WRITE;
    if (!cs) {
        cs = weir_calloc(1, sizeof(*cs));
        cs->cl = cl;
        weir_list_push_back(&cl->socks, &cs->node);
        curl_multi_assign(cl->multi, s, cs);
    } else {
        event_free(cs->ev);
    }
    cs->ev = event_new(cl->base, s, kind, on_sock_event, cs);
    event_add(cs->ev, NULL);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: -1 deletes the timer; 0 means "as soon as possible", which must still
 * go through the loop: calling socket_action from here would re-enter curl. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct curl_loop *cl = userp;
    if (timeout_ms < 0) {
        evtimer_del(cl->timer);
        return 0;
    }
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    evtimer_add(cl->timer, &tv);
    return 0;
}

static struct curl_loop *loop_get(struct event_base *base, struct weir_err *err)
{
    for (struct curl_loop *cl = loops; cl; cl = cl->next) {
        if (cl->base == base) {
            cl->refs++;
            return cl;
        }
    }
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        weir_err_set(err, "libcurl initialisation failed: %s", curl_easy_strerror(rc));
        return NULL;
    }
    struct curl_loop *cl = weir_calloc(1, sizeof(*cl));
    cl->base = base;
    weir_list_init(&cl->socks);
    cl->multi = curl_multi_init();
    if (!cl->multi) {
        weir_err_set(err, "curl_multi_init failed");
        goto fail;
    }
    cl->timer = evtimer_new(base, on_timer_event, cl);
    curl_multi_setopt(cl->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(cl->multi, CURLMOPT_SOCKETDATA, cl);
    curl_multi_setopt(cl->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(cl->multi, CURLMOPT_TIMERDATA, cl);
    /* Keep every connection a burst opened: by default libcurl sizes its cache from the
     * transfers running at the moment and closes the rest as load dips, and about one
     * invocation in thirteen then paid for a new TCP connection. */
    curl_multi_setopt(cl->multi, CURLMOPT_MAXCONNECTS, (long)CONNECTIONS_KEPT);
    cl->refs = 1;
    cl->next = loops;
    loops = cl;
    return cl;

fail:
    free(cl);
    curl_global_cleanup();
    return NULL;
}

/* ---- one invocation ------------------------------------------------------------------------- */

static void inv_unlink(struct weir_invocation *inv)
{
    weir_list_remove(&inv->node);
    inv->t = NULL;
}

/* Detaches inv's easy handle; keeps it for the target's next invocation when the transfer ended
 * (a cancelled one goes: it may be mid-transfer). */
static void easy_release(struct weir_invocation *inv, struct curl_loop *cl, bool ended)
{
    CURL *e = inv->easy;
    if (!e)
        return;
    inv->easy = NULL;
    curl_multi_remove_handle(cl->multi, e);
    struct weir_target *t = inv->t;
    if (ended && t && t->n_idle < IDLE_HANDLES_KEPT) {
        /* Nothing of this invocation may be reached through it any more. */
        curl_easy_setopt(e, CURLOPT_WRITEDATA, NULL);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, NULL);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
        curl_easy_setopt(e, CURLOPT_PRIVATE, NULL);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, NULL);
        t->idle[t->n_idle++] = e;
        return;
    }
    curl_easy_cleanup(e);
}

/* Detaches the easy handle and frees the invocation. Never called from inside a curl callback. */
static void inv_free(struct weir_invocation *inv, struct curl_loop *cl)
{
    easy_release(inv, cl, false);
    if (inv->defer)
        event_free(inv->defer);
    inv_unlink(inv);
    weir_invoke_result_deinit(&inv->res);
    free(inv);
}

/* Hands the result to the caller and frees the invocation. The caller's done may cancel other
 * invocations, start new ones, or free the target; none of that reaches this invocation. */
static void inv_report(struct weir_invocation *inv, struct curl_loop *cl)
{
    weir_invoke_done_fn done = inv->done;
    void *arg = inv->arg;
    inv->res.elapsed_us = weir_clock_mono_us() - inv->start_us;
    easy_release(inv, cl, true);
    inv_unlink(inv);
    done(arg, &inv->res);
    inv_free(inv, cl);
}

static void finish(struct weir_invocation *inv, CURLcode rc)
{
    struct weir_invoke_result *res = &inv->res;
    curl_easy_getinfo(inv->easy, CURLINFO_RESPONSE_CODE, &res->status);
    if (inv->too_large) {
        res->transport = WEIR_TRANSPORT_TOO_LARGE;
        snprintf(res->detail, sizeof(res->detail), "response larger than %d bytes",
                 WEIR_RESPONSE_MAX);
    } else {
        switch (rc) {
        case CURLE_OK:
            res->transport = WEIR_TRANSPORT_OK;
            break;
        case CURLE_OPERATION_TIMEDOUT:
            res->transport = WEIR_TRANSPORT_TIMEOUT;
            break;
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
            res->transport = WEIR_TRANSPORT_REFUSED;
            break;
        default:
            res->transport = WEIR_TRANSPORT_FAILED;
            break;
        }
        if (rc != CURLE_OK)
            snprintf(res->detail, sizeof(res->detail), "%s",
                     inv->errbuf[0] ? inv->errbuf : curl_easy_strerror(rc));
    }
    snprintf(res->function_error, sizeof(res->function_error), "%s",
             inv->fn_error[0] ? inv->fn_error : inv->error_type);
    if (res->transport != WEIR_TRANSPORT_OK)
        weir_debug(COMPONENT, "invocation failed url=%s error=\"%s\"", inv->t->log_url,
                   res->detail);
}

static void check_multi_info(struct curl_loop *cl)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(cl->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        CURLcode rc = msg->data.result;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        struct weir_invocation *inv = (struct weir_invocation *)priv;
        finish(inv, rc);
        inv_report(inv, cl);
    }
}

static void on_defer(evutil_socket_t fd, short what, void *arg)
{
    struct weir_invocation *inv = arg;
    struct curl_loop *cl = inv->t->cl;
    cl->refs++;
    inv_report(inv, cl);
    loop_release(cl);
}

static size_t on_header(char *line, size_t size, size_t n, void *userdata)
{
    struct weir_invocation *inv = userdata;
    const char *v;
    size_t vn;
    n *= size;
    if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        /* A new status line (after a 1xx): only the final response's headers count. */
        inv->fn_error[0] = '\0';
        inv->error_type[0] = '\0';
    } else if (weir_http_header_is(line, n, "X-Amz-Function-Error", &v, &vn)) {
        weir_http_header_value(v, vn, inv->fn_error, sizeof(inv->fn_error));
    } else if (weir_http_header_is(line, n, "Error-Type", &v, &vn)) {
        weir_http_header_value(v, vn, inv->error_type, sizeof(inv->error_type));
    }
    return n;
}

static size_t on_body(char *data, size_t size, size_t n, void *userdata)
{
    struct weir_invocation *inv = userdata;
    struct weir_buf *body = &inv->res.body;
    n *= size;
    if (body->len + n > WEIR_RESPONSE_MAX) {
        /* Keep what fits, then abort the transfer: returning short makes curl stop. */
        weir_buf_append(body, data, WEIR_RESPONSE_MAX - body->len);
        inv->too_large = true;
        return 0;
    }
    weir_buf_append(body, data, n);
    return n;
}

static void defer_failure(struct weir_invocation *inv, const char *why)
{
    inv->res.transport = WEIR_TRANSPORT_FAILED;
    snprintf(inv->res.detail, sizeof(inv->res.detail), "%s", why);
    inv->defer = event_new(inv->t->cl->base, -1, 0, on_defer, inv);
    event_active(inv->defer, EV_TIMEOUT, 1);
}

/* An easy handle with what every invocation of t shares; the rest is set per invocation. */
static CURL *easy_new(struct weir_target *t)
{
    CURL *e = curl_easy_init();
    if (!e)
        return NULL;
    if (t->curlu)
        curl_easy_setopt(e, CURLOPT_CURLU, t->curlu);
    else
        curl_easy_setopt(e, CURLOPT_URL, t->url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    /* The dispatcher alone decides about retries: no redirects, no signals from the resolver. */
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    /* Functions may run for up to 15 minutes on an idle connection; notice a dead peer. */
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    return e;
}

static struct weir_invocation *http_invoke(struct weir_target *t, const char *payload, size_t len,
                                           int64_t timeout_ms, weir_invoke_done_fn done, void *arg)
{
    struct weir_invocation *inv = weir_calloc(1, sizeof(*inv));
    inv->t = t;
    inv->done = done;
    inv->arg = arg;
    inv->start_us = weir_clock_mono_us();
    weir_invoke_result_init(&inv->res);
    weir_list_push_back(&t->invs, &inv->node);

    CURL *e = t->n_idle ? t->idle[--t->n_idle] : easy_new(t);
    if (!e) {
        defer_failure(inv, "curl_easy_init failed");
        return inv;
    }
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, payload);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? (long)timeout_ms : 0L);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, inv);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, inv);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, inv->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, inv);
    CURLMcode mc = curl_multi_add_handle(t->cl->multi, e);
    if (mc != CURLM_OK) {
        curl_easy_cleanup(e);
        defer_failure(inv, curl_multi_strerror(mc));
        return inv;
    }
    /* curl_multi_add_handle set a zero timer; the transfer starts from the loop. */
    inv->easy = e;
    return inv;
}

static void http_cancel(struct weir_invocation *inv)
{
    if (!inv)
        return;
    inv_free(inv, inv->t->cl);
}

/* ---- the target ----------------------------------------------------------------------------- */

static struct weir_target *http_new(const struct weir_function_cfg *fc, size_t endpoint,
                                    struct event_base *base, struct weir_err *err)
{
    assert(fc->urls && endpoint < fc->n_urls);
    struct weir_target *t = weir_calloc(1, sizeof(*t));
    weir_list_init(&t->invs);
    char log_url[512];
    weir_log_redact_uri(fc->urls[endpoint], log_url, sizeof(log_url));
    t->log_url = weir_strdup(log_url);
    t->cl = loop_get(base, err);
    if (!t->cl)
        goto fail;
    t->url = weir_http_function_url(fc, fc->urls[endpoint], log_url, err);
    if (!t->url)
        goto fail;
    t->curlu = curl_url();
    if (t->curlu && curl_url_set(t->curlu, CURLUPART_URL, t->url, 0) != CURLUE_OK) {
        curl_url_cleanup(t->curlu);
        t->curlu = NULL;
    }
    char *host = weir_http_host_header(t->url);
    if (host)
        t->headers = curl_slist_append(t->headers, host);
    free(host);
    t->headers = curl_slist_append(t->headers, "User-Agent: weir/" WEIR_VERSION);
    t->headers = curl_slist_append(t->headers, "Content-Type: application/json");
    t->headers = curl_slist_append(t->headers, "X-Amz-Invocation-Type: RequestResponse");
    /* No "Expect: 100-continue" round trip for large events: servers that ignore it (the
     * emulator) would cost a second on every such invocation. */
    t->headers = curl_slist_append(t->headers, "Expect:");
    if (!t->headers) {
        weir_err_set(err, "function %s: out of memory building headers", fc->name);
        goto fail;
    }
    weir_debug(COMPONENT, "target ready function=%s url=%s", fc->name, t->log_url);
    return t;

fail:
    if (t->cl)
        loop_release(t->cl);
    curl_url_cleanup(t->curlu);
    curl_slist_free_all(t->headers);
    free(t->url);
    free(t->log_url);
    free(t);
    return NULL;
}

static void http_free(struct weir_target *t)
{
    if (!t)
        return;
    while (!weir_list_empty(&t->invs))
        inv_free(weir_list_entry(t->invs.next, struct weir_invocation, node), t->cl);
    while (t->n_idle)
        curl_easy_cleanup(t->idle[--t->n_idle]);
    curl_url_cleanup(t->curlu);
    curl_slist_free_all(t->headers);
    loop_release(t->cl);
    free(t->url);
    free(t->log_url);
    free(t);
}

const struct weir_target_ops weir_target_curl = {
    .name = "curl",
    .new = http_new,
    .invoke = http_invoke,
    .cancel = http_cancel,
    .free = http_free,
};
