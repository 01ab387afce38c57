/* Asynchronous host name resolution on the loop, through evdns.
 * Owns one evdns_base (from /etc/resolv.conf and /etc/hosts) and every lookup started on it, down
 * to cancelled ones evdns has yet to hand back. Must never block on a resolver, never call back
 * from inside a weir_resolve_* or weir_resolver_* call, and never call back after a cancel. */
#include "core/resolve.h"

#include <assert.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "core/clock.h"
#include "core/list.h"
#include "core/log.h"
#include "core/mem.h"

#define COMP        "resolve"
#define RESOLV_CONF "/etc/resolv.conf"
/* evdns's own defaults (5 s, 3 sends) let one silent nameserver hold a lookup for 15 s; a source
 * that is reconnecting should hear sooner. Set before resolv.conf is read, so its options win. */
#define DNS_TIMEOUT  "3"
#define DNS_ATTEMPTS "2"
/* Any IPv6 text form with a zone ("%" and an interface name or index). */
#define ADDR_MAX 80

struct weir_resolver {
    struct event_base *base;
    struct evdns_base *dns;
    struct weir_list lookups; /* weir_resolve.node: the ones a caller still holds */
    unsigned orphans;         /* cancelled lookups whose evdns callback is still to come */
    struct event *reap;       /* frees a dying resolver once its last orphan is back */
    bool dying;               /* weir_resolver_free ran while orphans were out */
};

struct weir_resolve {
    struct weir_list node;
    struct weir_resolver *rs;
    char *host;         /* as given, brackets removed */
    weir_resolve_fn cb; /* one of the two is set while the caller holds the lookup */
    weir_resolve_all_fn cb_all;
    void *arg;
    bool in_evdns; /* evdns still owes on_gai a call; req is its handle once start returned */
    struct evdns_getaddrinfo_request *req;
    struct event *done; /* delivers the outcome from the loop */
    int64_t started_ms;
    char addrs[WEIR_RESOLVE_ADDRS_MAX][ADDR_MAX]; /* the outcome: addresses, or else err */
    size_t n_addrs;
    struct weir_err err;
};

static void release(struct weir_resolver *rs)
{
    /* Nothing is left in evdns here, so there is nothing for it to fail or hand back. */
    evdns_base_free(rs->dns, 0);
    event_free(rs->reap);
    free(rs);
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
    release(arg);
}

static void free_lookup(struct weir_resolve *q)
{
    weir_list_remove(&q->node);
    event_free(q->done);
    free(q->host);
    free(q);
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    struct weir_resolve *q = arg;
    weir_resolve_fn cb = q->cb;
    weir_resolve_all_fn cb_all = q->cb_all;
    void *cb_arg = q->arg;
    char addrs[WEIR_RESOLVE_ADDRS_MAX][ADDR_MAX];
    const char *list[WEIR_RESOLVE_ADDRS_MAX];
    size_t n = q->n_addrs;
    struct weir_err err;
    memcpy(addrs, q->addrs, n * sizeof(addrs[0]));
    for (size_t i = 0; i < n; i++)
        list[i] = addrs[i];
    if (!n)
        err = q->err;
    /* Gone before the call, so the callback may free the resolver, and nothing can reach it. */
    free_lookup(q);
    if (cb_all)
        cb_all(n ? list : NULL, n, n ? NULL : &err, cb_arg);
    else
        cb(n ? list[0] : NULL, n ? NULL : &err, cb_arg);
}

/* Writes sa as a numeric string; false for a family a connect could not use. */
static bool format_addr(const struct sockaddr *sa, char *out, size_t len)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        return evutil_inet_ntop(AF_INET, &sin->sin_addr, out, len) != NULL;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        if (!evutil_inet_ntop(AF_INET6, &sin6->sin6_addr, out, len))
            return false;
        /* A link-local address is useless without its zone; getaddrinfo takes it numeric. */
        if (sin6->sin6_scope_id) {
            size_t n = strlen(out);
            snprintf(out + n, len - n, "%%%" PRIu32, (uint32_t)sin6->sin6_scope_id);
        }
        return true;
    }
    return false;
}

static void settle(struct weir_resolve *q, int result, const struct evutil_addrinfo *res)
{
    if (result == 0) {
        q->n_addrs = 0;
        for (const struct evutil_addrinfo *ai = res; ai && q->n_addrs < WEIR_RESOLVE_ADDRS_MAX;
             ai = ai->ai_next)
            if (ai->ai_addr && format_addr(ai->ai_addr, q->addrs[q->n_addrs], ADDR_MAX))
                q->n_addrs++;
        if (q->n_addrs) {
            weir_debug(COMP, "resolved host=%s addr=%s addresses=%zu ms=%" PRId64, q->host,
                       q->addrs[0], q->n_addrs, weir_clock_mono_ms() - q->started_ms);
            return;
        }
        /* evdns says "no error" with an empty list when /etc/hosts names the host only in a
         * family the hints exclude; there is no evdns text to keep. */
        weir_err_set(&q->err,
                     "cannot resolve host \"%s\": the answer holds no IPv4 or IPv6 address",
                     q->host);
        return;
    }
    /* evdns folds a timeout into its generic failure; the time taken tells the two apart. */
    weir_err_set(&q->err, "cannot resolve host \"%s\": %s (after %" PRId64 " ms)", q->host,
                 evutil_gai_strerror(result), weir_clock_mono_ms() - q->started_ms);
}

/* evdns's callback. It can run inside evdns_getaddrinfo (an answer from /etc/hosts), from evdns's
 * deferred queue, or after a cancel; the caller's callback only ever runs from q->done. */
static void on_gai(int result, struct evutil_addrinfo *res, void *arg)
{
    struct weir_resolve *q = arg;
    struct weir_resolver *rs = q->rs;
    q->in_evdns = false;
    q->req = NULL;
    if (!q->cb && !q->cb_all) {
        /* Cancelled: evdns is handing it back. */
        if (res)
            evutil_freeaddrinfo(res);
        free_lookup(q);
        assert(rs->orphans > 0);
        if (--rs->orphans == 0 && rs->dying)
            event_active(rs->reap, EV_TIMEOUT, 0); /* not from inside evdns's own call stack */
        return;
    }
    settle(q, result, res);
    if (res)
        evutil_freeaddrinfo(res);
    event_active(q->done, EV_TIMEOUT, 0);
}

/* Whether getaddrinfo would take host as a numeric address without any I/O. libc's inet_pton,
 * not evutil's: evutil's IPv4 parser (sscanf) also accepts forms such as " 1.2.3.4" that libc
 * would send to DNS, and the caller's connect is libc's. */
static bool is_numeric(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    if (strlen(host) >= ADDR_MAX)
        return false; /* no interface name is that long: evdns will refuse it */
    if (inet_pton(AF_INET, host, buf) == 1)
        return true;
    const char *zone = strchr(host, '%');
    if (!zone)
        return inet_pton(AF_INET6, host, buf) == 1;
    char a[INET6_ADDRSTRLEN];
    size_t n = (size_t)(zone - host);
    if (n >= sizeof(a) || zone[1] == '\0')
        return false;
    memcpy(a, host, n);
    a[n] = '\0';
    return inet_pton(AF_INET6, a, buf) == 1;
}

struct weir_resolver *weir_resolver_new(struct event_base *base, struct weir_err *err)
{
    assert(base);
    struct weir_resolver *rs = weir_calloc(1, sizeof(*rs));
    rs->base = base;
    weir_list_init(&rs->lookups);
    rs->reap = event_new(base, -1, 0, on_reap, rs);
    /* Not EVDNS_BASE_INITIALIZE_NAMESERVERS: with it, libevent 2.1 returns NULL when
     * resolv.conf is missing or lists no nameserver, although it has loaded /etc/hosts and fallen
     * back to 127.0.0.1 by then; a container without resolv.conf could not even resolve
     * "localhost". DISABLE_WHEN_INACTIVE: an idle resolver must not keep the loop running. */
    rs->dns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (!rs->dns) {
        weir_err_set(err, "libevent could not start its DNS resolver (it could not seed the "
                          "random generator for DNS ids)");
        goto fail;
    }
    int rc = evdns_base_set_option(rs->dns, "timeout:", DNS_TIMEOUT);
    rc |= evdns_base_set_option(rs->dns, "attempts:", DNS_ATTEMPTS);
    assert(rc == 0);
    /* DNS_OPTIONS_ALL includes DNS_OPTION_HOSTSFILE: evdns loads /etc/hosts first, whatever
     * becomes of resolv.conf. */
    rc = evdns_base_resolv_conf_parse(rs->dns, DNS_OPTIONS_ALL, RESOLV_CONF);
    switch (rc) {
    case 0:
        break;
    case 1: /* evdns has set its defaults: nameserver 127.0.0.1 */
        weir_warn(COMP, "no resolver configuration, asking a nameserver on 127.0.0.1 path=%s",
                  RESOLV_CONF);
        break;
    case 6: /* evdns has added 127.0.0.1 */
        weir_warn(COMP, "no nameserver configured, asking 127.0.0.1 path=%s", RESOLV_CONF);
        break;
    default:
        /* Codes from evdns_base_resolv_conf_parse's documentation; evdns has no text for them. */
        weir_err_set(err, "cannot read %s: %s (evdns code %d)", RESOLV_CONF,
                     rc == 2   ? "cannot stat the file"
                     : rc == 3 ? "file too large"
                     : rc == 4 ? "out of memory"
                     : rc == 5 ? "short read"
                               : "unknown error",
                     rc);
        goto fail;
    }
    return rs;
fail:
    if (rs->dns)
        evdns_base_free(rs->dns, 0);
    event_free(rs->reap);
    free(rs);
    return NULL;
}

void weir_resolver_free(struct weir_resolver *rs)
{
    if (!rs)
        return;
    assert(!rs->dying);
    struct weir_list *node, *tmp;
    weir_list_foreach_safe(node, tmp, &rs->lookups)
        weir_resolve_cancel(weir_list_entry(node, struct weir_resolve, node));
    if (rs->orphans) {
        /* evdns's cancellations come back through the loop and read the evdns_base: it must
         * live until the last of them has (on_gai, then on_reap). */
        rs->dying = true;
        return;
    }
    release(rs);
}

static struct weir_resolve *start(struct weir_resolver *rs, const char *host, int port,
                                  weir_resolve_fn cb, weir_resolve_all_fn cb_all, void *arg)
{
    assert(rs && !rs->dying && host && (cb || cb_all) && port >= 0 && port <= 65535);
    struct weir_resolve *q = weir_calloc(1, sizeof(*q));
    q->rs = rs;
    q->cb = cb;
    q->cb_all = cb_all;
    q->arg = arg;
    q->started_ms = weir_clock_mono_ms();
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']')
        q->host = weir_strndup(host + 1, n - 2);
    else
        q->host = weir_strdup(host);
    q->done = event_new(rs->base, -1, 0, on_done, q);
    weir_list_push_back(&rs->lookups, &q->node);

    if (q->host[0] == '\0') {
        weir_err_set(&q->err, "cannot resolve an empty host name");
        event_active(q->done, EV_TIMEOUT, 0);
        return q;
    }
    if (is_numeric(q->host)) {
        snprintf(q->addrs[0], ADDR_MAX, "%s", q->host);
        q->n_addrs = 1;
        event_active(q->done, EV_TIMEOUT, 0);
        return q;
    }

    weir_debug(COMP, "looking up host=%s port=%d", q->host, port);
    struct evutil_addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC; /* A and AAAA; evdns lists IPv4 first, as hiredis prefers */
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    q->in_evdns = true;
    struct evdns_getaddrinfo_request *req =
        evdns_getaddrinfo(rs->dns, q->host, NULL, &hints, on_gai, q);
    /* NULL means on_gai has run already (numeric or /etc/hosts, or an immediate failure). */
    if (q->in_evdns) {
        assert(req);
        q->req = req;
    }
    return q;
}

struct weir_resolve *weir_resolve_start(struct weir_resolver *rs, const char *host, int port,
                                        weir_resolve_fn cb, void *arg)
{
    return start(rs, host, port, cb, NULL, arg);
}

struct weir_resolve *weir_resolve_all_start(struct weir_resolver *rs, const char *host, int port,
                                            weir_resolve_all_fn cb, void *arg)
{
    return start(rs, host, port, NULL, cb, arg);
}

void weir_resolve_cancel(struct weir_resolve *q)
{
    if (!q)
        return;
    if (!q->in_evdns) {
        free_lookup(q); /* an outcome waiting in q->done goes with it */
        return;
    }
    /* evdns calls on_gai once more, with EVUTIL_EAI_CANCEL (or an answer it had already queued),
     * and not before the loop's next pass: q stays until then, out of the caller's reach. */
    weir_list_remove(&q->node);
    q->cb = NULL;
    q->cb_all = NULL;
    q->rs->orphans++;
    evdns_getaddrinfo_cancel(q->req);
}
