/* Kafka topic destination (kafka://host:port[,host:port...]/topic[?property=value&...]): each
 * message produced as one Kafka message — value the body, key and headers the record's own — by
 * an idempotent librdkafka producer (acks=all), so a stream's failed records land in a topic as
 * AWS puts them there. The query's properties (percent-encoded) go to the producer as they are
 * (sasl.*, message.timeout.ms, ...); bootstrap.servers comes from the host list only. The loop is
 * woken through the producer's queue event fd: no thread of weir's, no polling timer. librdkafka
 * resends within message.timeout.ms (30 s unless the query says otherwise; idempotence keeps that
 * free of duplicates) and then the put fails; must never retry beyond that on its own. A fatal
 * producer error (the idempotent sequence broken by the cluster) fails every later put, and is
 * logged as such, until the destination is made again. */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <librdkafka/rdkafka.h>

#include "connectors/destination.h"
#include "core/list.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/text.h"
#include "model/record.h"

#define COMPONENT "destination.kafka"

/* A put that never gets its delivery report in this time fails (the query may change it). */
#define MESSAGE_TIMEOUT_MS "30000"
#define TOPIC_MAX          249

/* What a kafka:// URI says. */
struct kafka_uri {
    char *servers; /* "host:port,host:port", as bootstrap.servers takes it */
    char *topic;
    char **props; /* name, value, name, value, ... (decoded) */
    size_t n_props;
};

struct put {
    weir_dest_done_fn done;
    void *arg;
    char error[640];       /* failed before it was produced: why */
    struct weir_list link; /* d->produced (waiting for its report), or d->failed */
};

struct kafka_dest {
    struct weir_destination base;
    char safe[256]; /* the URI without its query, which may hold a password */
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    rd_kafka_queue_t *mainq;
    int wake[2];               /* librdkafka writes to [1] when its main queue gets work */
    struct event *wake_ev;     /* [0] readable: serve the main queue */
    struct event *report;      /* fails d->failed from the loop's next turn */
    struct weir_list produced; /* handed to librdkafka, waiting for a delivery report */
    struct weir_list failed;   /* refused by librdkafka at once, reported on the next turn */
    int busy;                  /* inside a turn that calls done: a free must wait for its end */
    bool free_pending;
};

static void kafka_free(struct weir_destination *base);

/* ---- the URI -------------------------------------------------------------------------------- */

static void uri_deinit(struct kafka_uri *u)
{
    free(u->servers);
    free(u->topic);
    for (size_t i = 0; i < 2 * u->n_props; i++)
        free(u->props[i]);
    free(u->props);
    memset(u, 0, sizeof(*u));
}

/* s[0..len) with %XX decoded (and '+' kept: librdkafka values are not form-encoded), or NULL
 * when a % is not followed by two hex digits or decodes to a NUL. */
static char *decode(const char *s, size_t len)
{
    char *out = weir_malloc(len + 1), *o = out;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            *o++ = s[i];
            continue;
        }
        int hi = i + 2 < len ? weir_hex_digit(s[i + 1]) : -1;
        int lo = i + 2 < len ? weir_hex_digit(s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            return NULL;
        }
        *o++ = (char)(hi * 16 + lo);
        i += 2;
    }
    *o = '\0';
    return out;
}

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

/* One "host:port" (or "[v6]:port") of the list. */
static bool host_port_ok(const char *s, size_t len)
{
    size_t at = 0;
    if (len && s[0] == '[') {
        while (at < len && s[at] != ']')
            at++;
        if (at == len || at == 1)
            return false;
        for (size_t i = 1; i < at; i++)
            if (!(weir_hex_digit(s[i]) >= 0 || s[i] == ':' || s[i] == '.'))
                return false;
        at++;
    } else {
        while (at < len && host_char(s[at]))
            at++;
        if (at == 0)
            return false;
    }
    if (at == len || s[at] != ':' || at + 1 == len || len - at - 1 > 5)
        return false;
    long port = 0;
    for (size_t i = at + 1; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        port = port * 10 + (s[i] - '0');
    }
    return port >= 1 && port <= 65535;
}

static bool topic_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

#define URI_FORM "kafka://host:port[,host:port...]/topic[?property=value&...]"

static weir_status uri_parse(const char *uri, struct kafka_uri *u, struct weir_err *err)
{
    memset(u, 0, sizeof(*u));
    if (strncasecmp(uri, "kafka://", 8) != 0)
        return weir_err_set(err, "a Kafka destination is written %s", URI_FORM);
    const char *hosts = uri + 8;
    size_t hosts_len = strcspn(hosts, "/?#");
    if (hosts_len == 0)
        return weir_err_set(err, "a Kafka destination needs at least one host:port: %s", URI_FORM);
    for (const char *h = hosts;; h++) {
        size_t len = strcspn(h, ",/?#");
        if (!host_port_ok(h, len))
            return weir_err_set(err,
                                "\"%.*s\" is not a host:port (a port 1..65535 is required): %s",
                                (int)len, h, URI_FORM);
        h += len;
        if (*h != ',')
            break;
    }
    if (hosts[hosts_len] != '/')
        return weir_err_set(err, "a Kafka destination needs a topic after the hosts: %s", URI_FORM);
    const char *topic = hosts + hosts_len + 1;
    size_t topic_len = strcspn(topic, "?#");
    if (topic_len == 0)
        return weir_err_set(err, "a Kafka destination needs a topic after the hosts: %s", URI_FORM);
    if (topic_len > TOPIC_MAX)
        return weir_err_set(err, "the topic name is %zu characters long; Kafka takes 1..%d",
                            topic_len, TOPIC_MAX);
    for (size_t i = 0; i < topic_len; i++)
        if (!topic_char(topic[i]))
            return weir_err_set(err,
                                "the topic \"%.*s\" holds '%c'; a Kafka topic name is made of "
                                "a-z, A-Z, 0-9, '.', '_' and '-'",
                                (int)topic_len, topic, topic[i]);
    if ((topic_len == 1 && topic[0] == '.') || (topic_len == 2 && !strncmp(topic, "..", 2)))
        return weir_err_set(err, "\"%.*s\" cannot name a Kafka topic", (int)topic_len, topic);
    if (topic[topic_len] == '#')
        return weir_err_set(err, "a Kafka destination has no #fragment: %s", URI_FORM);

    u->servers = weir_strndup(hosts, hosts_len);
    u->topic = weir_strndup(topic, topic_len);
    if (topic[topic_len] != '?')
        return WEIR_OK;
    for (const char *q = topic + topic_len + 1; *q;) {
        size_t len = strcspn(q, "&#");
        if (q[len] == '#') {
            weir_err_set(err, "a Kafka destination has no #fragment: %s", URI_FORM);
            goto fail;
        }
        if (len) {
            const char *eq = memchr(q, '=', len);
            if (!eq || eq == q) {
                weir_err_set(err, "\"%.*s\" in the query is not property=value", (int)len, q);
                goto fail;
            }
            char *name = decode(q, (size_t)(eq - q));
            char *value = decode(eq + 1, len - (size_t)(eq - q) - 1);
            if (!name || !value) {
                free(name);
                free(value);
                weir_err_set(err, "\"%.*s\" in the query has a bad %%-escape", (int)len, q);
                goto fail;
            }
            if (!strcmp(name, "bootstrap.servers") || !strcmp(name, "metadata.broker.list")) {
                free(name);
                free(value);
                weir_err_set(err, "the brokers of a Kafka destination are the URI's hosts, not "
                                  "a bootstrap.servers property");
                goto fail;
            }
            u->props = weir_realloc(u->props, sizeof(*u->props) * 2 * (u->n_props + 1));
            u->props[2 * u->n_props] = name;
            u->props[2 * u->n_props + 1] = value;
            u->n_props++;
        }
        q += len;
        if (*q == '&')
            q++;
    }
    return WEIR_OK;
fail:
    uri_deinit(u);
    return WEIR_ERR;
}

/* The producer's configuration: weir's settings, then the URI's properties over them. */
static rd_kafka_conf_t *make_conf(const struct kafka_uri *u, struct weir_err *err)
{
    static const char *const fixed[][2] = {
        {"acks", "all"},
        {"enable.idempotence", "true"},
        {"message.timeout.ms", MESSAGE_TIMEOUT_MS},
        {"client.id", "weir"},
        /* Logs and errors reach us through the main queue, on the loop's thread. */
        {"log.queue", "true"},
    };
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    for (size_t i = 0; i < sizeof(fixed) / sizeof(*fixed); i++)
        if (rd_kafka_conf_set(conf, fixed[i][0], fixed[i][1], errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
            weir_err_set(err, "Kafka destination: %s", errstr);
            goto fail;
        }
    if (rd_kafka_conf_set(conf, "bootstrap.servers", u->servers, errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
        weir_err_set(err, "Kafka destination: %s", errstr);
        goto fail;
    }
    for (size_t i = 0; i < u->n_props; i++)
        if (rd_kafka_conf_set(conf, u->props[2 * i], u->props[2 * i + 1], errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
            /* librdkafka's words, which name the property (and an enumerated value it cannot
             * take; a secret is a free string, which it never refuses). */
            weir_err_set(err, "Kafka destination property %s: %s", u->props[2 * i], errstr);
            goto fail;
        }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static weir_status kafka_check(const char *uri, struct weir_err *err)
{
    struct kafka_uri u;
    if (uri_parse(uri, &u, err) != WEIR_OK)
        return WEIR_ERR;
    rd_kafka_conf_t *conf = make_conf(&u, err);
    uri_deinit(&u);
    if (!conf)
        return WEIR_ERR;
    rd_kafka_conf_destroy(conf);
    return WEIR_OK;
}

/* ---- callbacks, all run by rd_kafka_poll on the loop ---------------------------------------- */

/* librdkafka's own lines. A broker connection failing (FAIL) comes to on_error as well, which
 * says it shorter: here it is only debug. */
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    struct kafka_dest *d = rd_kafka_opaque(rk);
    const char *who = d ? d->safe : "?";
    if (level <= 4 && strcmp(fac, "FAIL") != 0)
        weir_log_limited_for(level <= 3 ? WEIR_LOG_ERROR : WEIR_LOG_WARN, COMPONENT, who,
                             "librdkafka destination=%s facility=%s message=\"%s\"", who, fac, buf);
    else
        weir_debug(COMPONENT, "librdkafka destination=%s facility=%s message=\"%s\"", who, fac,
                   buf);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct kafka_dest *d = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_fatal_error(rk, why, sizeof(why));
        weir_log_limited_for(WEIR_LOG_ERROR, COMPONENT, d->safe,
                             "producer failed for good destination=%s error=\"%s\"", d->safe, why);
        return;
    }
    weir_log_limited_for(WEIR_LOG_WARN, COMPONENT, d->safe, "destination=%s error=\"%s: %s\"",
                         d->safe, rd_kafka_err2name(err), reason);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkmessage, void *opaque)
{
    struct kafka_dest *d = opaque;
    struct put *put = rkmessage->_private;
    weir_list_remove(&put->link);
    if (d->free_pending) {
        /* Freed by an earlier done of this turn: abandoned. */
    } else if (!rkmessage->err) {
        put->done(put->arg, WEIR_OK, NULL);
    } else {
        char why[640];
        /* Not rd_kafka_message_errstr: for a delivery report that is the payload. */
        snprintf(why, sizeof(why), "kafka %s: not delivered: %s", d->safe,
                 rd_kafka_err2str(rkmessage->err));
        put->done(put->arg, WEIR_ERR, why);
    }
    free(put);
}

/* Ends a turn that may have called done; a free asked for meanwhile happens now. */
static void turn_end(struct kafka_dest *d)
{
    if (--d->busy == 0 && d->free_pending)
        kafka_free(&d->base);
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct kafka_dest *d = arg;
    char drain[256];
    /* Drained before serving: a wake-up written while the queue is served is then not lost
     * (librdkafka writes one only when the queue goes from empty to not empty). */
    while (read(fd, drain, sizeof(drain)) > 0)
        ;
    d->busy++;
    rd_kafka_poll(d->rk, 0);
    turn_end(d);
}

static void on_report(evutil_socket_t fd, short what, void *arg)
{
    struct kafka_dest *d = arg;
    struct weir_list *node;
    d->busy++;
    while (!d->free_pending && (node = weir_list_pop_front(&d->failed))) {
        struct put *put = weir_list_entry(node, struct put, link);
        put->done(put->arg, WEIR_ERR, put->error);
        free(put);
    }
    turn_end(d);
}

/* ---- the operations ------------------------------------------------------------------------- */

static void kafka_put(struct weir_destination *base, const struct weir_message *msg,
                      weir_dest_done_fn done, void *arg)
{
    struct kafka_dest *d = (struct kafka_dest *)base;
    struct put *put = weir_calloc(1, sizeof(*put));
    put->done = done;
    put->arg = arg;
    weir_list_init(&put->link);

    rd_kafka_headers_t *hdrs = NULL;
    struct weir_header h;
    size_t off = 0;
    while (weir_headers_next(msg->headers, msg->headers_len, &off, &h)) {
        if (!hdrs)
            hdrs = rd_kafka_headers_new(8);
        rd_kafka_header_add(hdrs, h.name, (ssize_t)h.name_len, h.value,
                            h.value ? (ssize_t)h.value_len : 0);
    }
    weir_list_push_back(&d->produced, &put->link);
    rd_kafka_resp_err_t err =
        rd_kafka_producev(d->rk, RD_KAFKA_V_RKT(d->rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_VALUE(msg->body_null ? NULL : (void *)msg->body,
                                           msg->body_null ? 0 : msg->body_len),
                          RD_KAFKA_V_KEY(msg->key, msg->key ? msg->key_len : 0),
                          RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(put), RD_KAFKA_V_END);
    if (!err)
        return; /* the headers are librdkafka's now */
    if (hdrs)
        rd_kafka_headers_destroy(hdrs);
    char fatal[200] = "";
    if (err == RD_KAFKA_RESP_ERR__FATAL)
        rd_kafka_fatal_error(d->rk, fatal, sizeof(fatal));
    snprintf(put->error, sizeof(put->error), "kafka %.200s: not produced: %.100s%s%s", d->safe,
             rd_kafka_err2str(err), fatal[0] ? ": " : "", fatal);
    weir_list_remove(&put->link);
    weir_list_push_back(&d->failed, &put->link);
    event_active(d->report, EV_TIMEOUT, 0);
}

static struct weir_destination *kafka_new(const char *uri, struct event_base *base,
                                          struct weir_err *err)
{
    struct kafka_uri u;
    if (uri_parse(uri, &u, err) != WEIR_OK)
        return NULL;
    struct kafka_dest *d = weir_calloc(1, sizeof(*d));
    d->base.ops = &weir_dest_kafka;
    d->wake[0] = d->wake[1] = -1;
    weir_list_init(&d->produced);
    weir_list_init(&d->failed);
    snprintf(d->safe, sizeof(d->safe), "kafka://%.120s/%s", u.servers, u.topic);

    char errstr[512];
    rd_kafka_conf_t *conf = make_conf(&u, err);
    if (!conf)
        goto fail;
    rd_kafka_conf_set_opaque(conf, d);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, on_log);
    d->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!d->rk) {
        rd_kafka_conf_destroy(conf);
        weir_err_set(err, "Kafka destination %s: %s", d->safe, errstr);
        goto fail;
    }
    rd_kafka_set_log_queue(d->rk, NULL); /* the main queue */
    d->rkt = rd_kafka_topic_new(d->rk, u.topic, NULL);
    if (!d->rkt) {
        weir_err_set(err, "Kafka destination %s: %s", d->safe,
                     rd_kafka_err2str(rd_kafka_last_error()));
        goto fail;
    }
    if (pipe2(d->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
        weir_err_set(err, "Kafka destination %s: pipe: %s", d->safe, strerror(errno));
        goto fail;
    }
    d->wake_ev = event_new(base, d->wake[0], EV_READ | EV_PERSIST, on_wake, d);
    d->report = event_new(base, -1, 0, on_report, d);
    if (!d->wake_ev || !d->report || event_add(d->wake_ev, NULL) != 0) {
        weir_err_set(err, "Kafka destination %s: cannot watch its queue", d->safe);
        goto fail;
    }
    d->mainq = rd_kafka_queue_get_main(d->rk);
    rd_kafka_queue_io_event_enable(d->mainq, d->wake[1], "k", 1);
    /* What was queued before the fd was set woke nobody. */
    event_active(d->wake_ev, EV_READ, 0);
    uri_deinit(&u);
    return &d->base;
fail:
    uri_deinit(&u);
    kafka_free(&d->base);
    return NULL;
}

static void kafka_free(struct weir_destination *base)
{
    struct kafka_dest *d = (struct kafka_dest *)base;
    if (!d)
        return;
    if (d->busy) {
        d->free_pending = true; /* from inside done: when the turn ends */
        return;
    }
    if (d->mainq) {
        rd_kafka_queue_io_event_enable(d->mainq, -1, NULL, 0);
        rd_kafka_queue_destroy(d->mainq);
    }
    if (d->wake_ev)
        event_free(d->wake_ev);
    if (d->report)
        event_free(d->report);
    if (d->rkt)
        rd_kafka_topic_destroy(d->rkt);
    if (d->rk) {
        /* Abandoned: nothing waits for what is queued or in flight, and no report is served
         * again, so done is never called. */
        rd_kafka_purge(d->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT |
                                  RD_KAFKA_PURGE_F_NON_BLOCKING);
        rd_kafka_destroy(d->rk);
    }
    struct weir_list *node;
    while ((node = weir_list_pop_front(&d->produced)))
        free(weir_list_entry(node, struct put, link));
    while ((node = weir_list_pop_front(&d->failed)))
        free(weir_list_entry(node, struct put, link));
    if (d->wake[0] >= 0)
        close(d->wake[0]);
    if (d->wake[1] >= 0)
        close(d->wake[1]);
    free(d);
}

const struct weir_destination_ops weir_dest_kafka = {
    .scheme = "kafka",
    .example = "kafka://127.0.0.1:9092/<topic>",
    .takes_records = true,
    .check = kafka_check,
    .new = kafka_new,
    .put = kafka_put,
    .free = kafka_free,
};
