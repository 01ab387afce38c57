/* Redis list destination: RPUSH of each message onto a list (redis://host:port/db/key), so a weir
 * mapping, a worker library or redis-cli can read it back. One connection, opened when the first
 * message comes and again after it is lost; messages written while it is down fail at once and
 * their caller retries later, so nothing waits here without bound. A host name is resolved
 * without blocking. Must never retry on its own. */
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/destination.h"
#include "core/list.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/redis_uri.h"
#include "core/resolve.h"

#define COMPONENT "destination.redis"

struct put {
    struct redis_dest *d;
    struct weir_buf data;
    weir_dest_done_fn done;
    void *arg;
    char error[640];
    struct weir_list link; /* d->waiting (until connected), d->failed (to report) */
};

struct redis_dest {
    struct weir_destination base;
    struct event_base *ev_base;
    struct weir_redis_uri uri;
    char safe[256];
    struct weir_resolver *resolver;
    struct weir_resolve *lookup;
    redisAsyncContext *ac;
    bool ready;               /* AUTH and SELECT answered: RPUSH goes to the right db */
    struct weir_list waiting; /* puts made before ready */
    struct weir_list failed;  /* puts to report failed from the loop's next turn */
    struct event *report;
    bool down_logged;
};

static weir_status redis_check(const char *uri, struct weir_err *err)
{
    struct weir_redis_uri u;
    if (weir_redis_uri_parse(uri, &u, err) != WEIR_OK)
        return WEIR_ERR;
    weir_redis_uri_deinit(&u);
    return WEIR_OK;
}

static void put_free(struct put *put)
{
    weir_buf_deinit(&put->data);
    free(put);
}

static void on_report(evutil_socket_t fd, short what, void *arg)
{
    struct redis_dest *d = arg;
    struct weir_list *node;
    while ((node = weir_list_pop_front(&d->failed))) {
        struct put *put = weir_list_entry(node, struct put, link);
        put->done(put->arg, WEIR_ERR, put->error);
        put_free(put);
    }
}

/* Fails put from the loop's next turn (never inside the caller's put). */
static void fail_later(struct redis_dest *d, struct put *put, const char *why)
{
    snprintf(put->error, sizeof(put->error), "redis %s: %.300s", d->safe, why);
    weir_list_remove(&put->link);
    weir_list_push_back(&d->failed, &put->link);
    event_active(d->report, EV_TIMEOUT, 0);
}

static void fail_waiting(struct redis_dest *d, const char *why)
{
    struct weir_list *node;
    while ((node = weir_list_first(&d->waiting)))
        fail_later(d, weir_list_entry(node, struct put, link), why);
}

static void on_pushed(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct put *put = privdata;
    redisReply *r = reply;
    if (!r) {
        /* The connection went away (or the destination is being freed: then done must not
         * run). */
        if (put->d) {
            snprintf(put->error, sizeof(put->error), "redis %s: connection lost: %.300s",
                     put->d->safe, ac->errstr[0] ? ac->errstr : "closed");
            put->done(put->arg, WEIR_ERR, put->error);
        }
        put_free(put);
        return;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        char why[640];
        snprintf(why, sizeof(why), "redis %s: RPUSH refused: %.300s", put->d->safe, r->str);
        put->done(put->arg, WEIR_ERR, why);
    } else {
        put->done(put->arg, WEIR_OK, NULL);
    }
    put_free(put);
}

static void send_put(struct redis_dest *d, struct put *put)
{
    if (redisAsyncCommand(d->ac, on_pushed, put, "RPUSH %b %b", d->uri.key, strlen(d->uri.key),
                          put->data.data, put->data.len) != REDIS_OK) {
        weir_list_push_back(&d->waiting, &put->link);
        fail_later(d, put, "cannot send RPUSH");
    }
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct redis_dest *d = ac->data;
    if (!d || status == REDIS_OK)
        return;
    /* hiredis frees the context after this returns. */
    d->ac = NULL;
    weir_log_limited(WEIR_LOG_WARN, COMPONENT, "cannot connect destination=%s error=\"%s\"",
                     d->safe, ac->errstr);
    fail_waiting(d, ac->errstr);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct redis_dest *d = ac->data;
    if (!d || d->ac != ac)
        return;
    d->ac = NULL;
    d->ready = false;
    if (status != REDIS_OK && !d->down_logged) {
        weir_warn(COMPONENT, "connection lost destination=%s error=\"%s\"", d->safe, ac->errstr);
        d->down_logged = true;
    }
    fail_waiting(d, ac->errstr[0] ? ac->errstr : "disconnected");
}

/* The answer to AUTH (final false) or SELECT (final true). Nothing is pushed before SELECT has
 * answered: a push pipelined behind a SELECT that fails would land in database 0. */
static void on_handshake(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct redis_dest *d = ac->data;
    redisReply *r = reply;
    bool final = privdata != NULL;
    if (!d || !r)
        return; /* gone; on_disconnect fails what waits */
    if (r->type == REDIS_REPLY_ERROR) {
        char why[300];
        snprintf(why, sizeof(why), "%s refused: %.200s", final ? "SELECT" : "AUTH", r->str);
        weir_log_limited(WEIR_LOG_ERROR, COMPONENT,
                         "destination refused us destination=%s "
                         "error=\"%s\"",
                         d->safe, why);
        fail_waiting(d, why);
        redisAsyncDisconnect(ac);
        return;
    }
    if (!final)
        return;
    d->ready = true;
    if (d->down_logged)
        weir_info(COMPONENT, "connected destination=%s", d->safe);
    d->down_logged = false;
    struct weir_list *node;
    while ((node = weir_list_pop_front(&d->waiting)))
        send_put(d, weir_list_entry(node, struct put, link));
}

static void handshake(struct redis_dest *d)
{
    if (d->uri.password && d->uri.user)
        redisAsyncCommand(d->ac, on_handshake, NULL, "AUTH %s %s", d->uri.user, d->uri.password);
    else if (d->uri.password)
        redisAsyncCommand(d->ac, on_handshake, NULL, "AUTH %s", d->uri.password);
    redisAsyncCommand(d->ac, on_handshake, d, "SELECT %d", d->uri.db);
}

static void on_resolved(const char *addr, const struct weir_err *err, void *arg)
{
    struct redis_dest *d = arg;
    d->lookup = NULL;
    if (!addr) {
        fail_waiting(d, err->msg);
        return;
    }
    redisAsyncContext *ac = redisAsyncConnect(addr, d->uri.port);
    if (!ac || ac->err) {
        fail_waiting(d, ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        return;
    }
    ac->data = d;
    d->ac = ac;
    redisLibeventAttach(ac, d->ev_base);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    handshake(d);
}

static void redis_put(struct weir_destination *base, const struct weir_message *msg,
                      weir_dest_done_fn done, void *arg)
{
    struct redis_dest *d = (struct redis_dest *)base;
    struct put *put = weir_calloc(1, sizeof(*put));
    put->d = d;
    put->done = done;
    put->arg = arg;
    weir_list_init(&put->link);
    weir_buf_init(&put->data);
    weir_message_render(msg, &put->data);
    if (d->ready) {
        send_put(d, put);
        return;
    }
    weir_list_push_back(&d->waiting, &put->link);
    if (!d->ac && !d->lookup)
        d->lookup = weir_resolve_start(d->resolver, d->uri.host, d->uri.port, on_resolved, d);
}

static struct weir_destination *redis_new(const char *uri, struct event_base *base,
                                          struct weir_err *err)
{
    struct redis_dest *d = weir_calloc(1, sizeof(*d));
    d->base.ops = &weir_dest_redis;
    d->ev_base = base;
    weir_list_init(&d->waiting);
    weir_list_init(&d->failed);
    weir_log_redact_uri(uri, d->safe, sizeof(d->safe));
    if (weir_redis_uri_parse(uri, &d->uri, err) != WEIR_OK)
        goto fail;
    d->resolver = weir_resolver_new(base, err);
    if (!d->resolver)
        goto fail;
    d->report = event_new(base, -1, 0, on_report, d);
    return &d->base;
fail:
    weir_redis_uri_deinit(&d->uri);
    free(d);
    return NULL;
}

static void redis_free(struct weir_destination *base)
{
    struct redis_dest *d = (struct redis_dest *)base;
    if (!d)
        return;
    if (d->ac) {
        /* Pending RPUSH callbacks run now with no reply; they must not report. */
        redisAsyncContext *ac = d->ac;
        d->ac = NULL;
        ac->data = NULL;
        for (redisCallback *cb = ac->replies.head; cb; cb = cb->next)
            if (cb->fn == on_pushed)
                ((struct put *)cb->privdata)->d = NULL;
        redisAsyncFree(ac);
    }
    weir_resolve_cancel(d->lookup);
    weir_resolver_free(d->resolver);
    struct weir_list *node;
    while ((node = weir_list_pop_front(&d->waiting)))
        put_free(weir_list_entry(node, struct put, link));
    while ((node = weir_list_pop_front(&d->failed)))
        put_free(weir_list_entry(node, struct put, link));
    if (d->report)
        event_free(d->report);
    weir_redis_uri_deinit(&d->uri);
    free(d);
}

const struct weir_destination_ops weir_dest_redis = {
    .scheme = "redis",
    .example = "redis://127.0.0.1:6379/0/<list-key>",
    .check = redis_check,
    .new = redis_new,
    .put = redis_put,
    .free = redis_free,
};
