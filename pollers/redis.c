/* Redis list as SQS: a reliable queue on a list, with leases, receive counts, redrive, and FIFO
 * queues (message groups in order, one batch of a group in flight, deduplication). Owns the
 * Redis protocol for one mapping: connections, script calls, the reaper, reconnects, and the
 * source's row in the registry (its keys, rules and event format). Must never know functions,
 * HTTP or retries, and never drop an element it cannot read (it goes to the dead-letter list, or
 * is set aside, or stays leased). Whatever is leased and not deleted comes back. */
#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/list.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/resolve.h"
#include "model/event.h"
#include "pollers/poller.h"
#include "pollers/redis.h"

#define RECONNECT_MIN_MS 100
#define RECONNECT_MAX_MS 5000
#define RECLAIM_LIMIT    1000
#define REAP_MAX_MS      1000
#define REAP_MIN_MS      100
/* Two claims in flight: the next is on the wire while the last reply's records are being
 * delivered, so Redis is not left idle for that time (measured: it was a third of the run). */
#define MAX_CLAIMS_IN_FLIGHT 2
/* One claim takes records for several batches at once (a batch of batches), so small batches
 * are not bound by one round trip each; this bounds one script call's work and reply. */
#define CLAIM_MAX_RECORDS 1000
/* A FIFO claim first moves at most this many new messages from the list into their groups. */
#define FIFO_INGEST_MAX   1000
#define RETRY_AFTER_ERROR 1000 /* ms before claiming again after the server refused a claim */
/* Deletes gather this long, or to this many arguments, before they go in one script call. */
#define DELETE_GATHER_MS  1
#define DELETE_GATHER_MAX 2000
#define WAIT_FALLBACK_MS  100 /* ms between claims while the wait connection is down */
/* BLMOVE blocks for 1 s at most; no answer by then means the wait connection is dead without
 * having said so (a host that lost power, a dropped path): nothing is ever written on it while
 * it waits, so TCP would never notice, and the poller would wait on it forever. */
#define WAIT_ANSWER_MS 5000
/* Malformed elements: at most this many error lines per window per poller; the rest counted. */
#define MALFORMED_LINES     10
#define MALFORMED_WINDOW_MS 10000
/* Envelope numbers (rc, sent, fr, seq) are integers JSON carries exactly: below 2^53. */
#define ENVELOPE_INT_MAX 9007199254740991.0

/* ---- scripts, URI, keys, element parsing (redis.h) ---- */

static const char *const script_texts[WEIR_REDIS_NSCRIPTS] = {
    [WEIR_REDIS_CLAIM] = WEIR_REDIS_LUA_CLAIM,
    [WEIR_REDIS_RECLAIM] = WEIR_REDIS_LUA_RECLAIM,
    [WEIR_REDIS_RELEASE] = WEIR_REDIS_LUA_RELEASE,
    [WEIR_REDIS_DELETE] = WEIR_REDIS_LUA_DELETE,
    [WEIR_REDIS_BURY] = WEIR_REDIS_LUA_BURY,
    [WEIR_REDIS_CLAIM_FIFO] = WEIR_REDIS_LUA_CLAIM_FIFO,
    [WEIR_REDIS_RECLAIM_FIFO] = WEIR_REDIS_LUA_RECLAIM_FIFO,
    [WEIR_REDIS_RELEASE_FIFO] = WEIR_REDIS_LUA_RELEASE_FIFO,
    [WEIR_REDIS_DELETE_FIFO] = WEIR_REDIS_LUA_DELETE_FIFO,
};

static const char *const script_names[WEIR_REDIS_NSCRIPTS] = {
    [WEIR_REDIS_CLAIM] = "claim",
    [WEIR_REDIS_RECLAIM] = "reclaim",
    [WEIR_REDIS_RELEASE] = "release",
    [WEIR_REDIS_DELETE] = "delete",
    [WEIR_REDIS_BURY] = "bury",
    [WEIR_REDIS_CLAIM_FIFO] = "claim (fifo)",
    [WEIR_REDIS_RECLAIM_FIFO] = "reclaim (fifo)",
    [WEIR_REDIS_RELEASE_FIFO] = "release (fifo)",
    [WEIR_REDIS_DELETE_FIFO] = "delete (fifo)",
};

const char *weir_redis_script_text(enum weir_redis_script s)
{
    return script_texts[s];
}

const char *weir_redis_script_name(enum weir_redis_script s)
{
    return script_names[s];
}

bool weir_redis_key_is_fifo(const char *key)
{
    size_t n = strlen(key);
    return n > 5 && strcmp(key + n - 5, ".fifo") == 0;
}

static char *key_join(const char *list, const char *suffix)
{
    size_t a = strlen(list), b = strlen(suffix);
    char *s = weir_malloc(a + b + 1);
    memcpy(s, list, a);
    memcpy(s + a, suffix, b + 1);
    return s;
}

void weir_redis_keys_init(struct weir_redis_keys *k, const char *list)
{
    k->list = weir_strdup(list);
    k->inflight = key_join(list, ":weir:inflight");
    k->leases = key_join(list, ":weir:leases");
    k->seq = key_join(list, ":weir:seq");
    k->parked = key_join(list, ":weir:parked");
    k->fifo_seq = key_join(list, ":weir:fifo:seq");
    k->ready = key_join(list, ":weir:ready");
    k->busy = key_join(list, ":weir:busy");
    k->dedup = key_join(list, ":weir:dedup");
    k->group_prefix = key_join(list, ":weir:g:");
}

void weir_redis_keys_deinit(struct weir_redis_keys *k)
{
    free(k->list);
    free(k->inflight);
    free(k->leases);
    free(k->seq);
    free(k->parked);
    free(k->fifo_seq);
    free(k->ready);
    free(k->busy);
    free(k->dedup);
    free(k->group_prefix);
    memset(k, 0, sizeof(*k));
}

/* salt NULL: the queue's stable prefix; otherwise mixed into the hash. */
static void lease_prefix_salted(const struct weir_redis_uri *u, const char *salt, char out[25])
{
    struct weir_buf s;
    weir_buf_init(&s);
    weir_buf_printf(&s, "%s:%d/%d/%s", u->host, u->port, u->db, u->key);
    if (salt)
        weir_buf_printf(&s, "#%s", salt);
    uint64_t h = weir_hash_fnv1a64(s.data, s.len);
    uint64_t h2 = weir_hash_fnv1a64(&h, sizeof(h));
    weir_buf_deinit(&s);
    char d[19];
    snprintf(d, sizeof(d), "%016" PRIx64 "%02x", h, (unsigned)(h2 & 0xff));
    snprintf(out, 25, "%.8s-%.4s-4%.3s-8%.3s-", d, d + 8, d + 12, d + 15);
}

void weir_redis_lease_prefix(const struct weir_redis_uri *u, char out[25])
{
    lease_prefix_salted(u, NULL, out);
}

char *weir_redis_source_arn(const struct weir_redis_uri *u, const char *region)
{
    struct weir_buf s;
    weir_buf_init(&s);
    weir_buf_printf(&s, "%s:%d/%d", u->host, u->port, u->db);
    uint64_t account = weir_hash_fnv1a64(s.data, s.len) % 1000000000000ULL;
    weir_buf_reset(&s);
    weir_buf_printf(&s, "arn:aws:sqs:%s:%012" PRIu64 ":%s", region, account, u->key);
    return weir_buf_take(&s, NULL);
}

static bool lua_space(char c)
{
    /* The set Lua's %s matches, so the claim side and the reclaim script agree. */
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

int weir_redis_is_envelope(const char *el, size_t len)
{
    size_t i = 0;
    if (!len || el[0] != '{')
        return 0;
    for (i = 1; i < len && lua_space(el[i]); i++)
        ;
    if (len - i < 6 || memcmp(el + i, "\"weir\"", 6) != 0)
        return 0;
    for (i += 6; i < len && lua_space(el[i]); i++)
        ;
    return i < len && el[i] == ':';
}

static weir_status opt_string(json_t *env, const char *name, char **out, struct weir_err *err)
{
    json_t *v = json_object_get(env, name);
    if (!v)
        return WEIR_OK;
    if (!json_is_string(v) || !json_string_length(v))
        return weir_err_set(err, "\"%s\" is not a non-empty string", name);
    /* An id, a group or a dedup id goes on as a C string: a NUL inside would cut it short. */
    if (memchr(json_string_value(v), '\0', json_string_length(v)))
        return weir_err_set(err, "\"%s\" holds a NUL character", name);
    *out = weir_strndup(json_string_value(v), json_string_length(v));
    return WEIR_OK;
}

/* A non-negative whole number below 2^53: producer input, so anything else (a fraction, 1e300,
 * a negative, a string) is refused here rather than converted. */
static weir_status opt_int(json_t *env, const char *name, int64_t *out, struct weir_err *err)
{
    json_t *v = json_object_get(env, name);
    if (!v)
        return WEIR_OK;
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0 || (double)i > ENVELOPE_INT_MAX)
            return weir_err_set(err, "\"%s\" is %" JSON_INTEGER_FORMAT "; it must be 0..2^53", name,
                                i);
        *out = (int64_t)i;
        return WEIR_OK;
    }
    if (!json_is_real(v))
        return weir_err_set(err, "\"%s\" is not a number", name);
    double d = json_real_value(v);
    /* Checked before any conversion: casting a double outside int64_t's range is undefined. */
    if (!(d >= 0 && d <= ENVELOPE_INT_MAX) || d != floor(d))
        return weir_err_set(err, "\"%s\" is %g; it must be a whole number 0..2^53", name, d);
    *out = (int64_t)d;
    return WEIR_OK;
}

static uint64_t lease_seq(const char *lease_id)
{
    size_t len = strlen(lease_id);
    const char *tail = lease_id + (len > 12 ? len - 12 : 0);
    for (const char *c = tail; *c; c++)
        if (!isxdigit((unsigned char)*c))
            return 0;
    return strtoull(tail, NULL, 16);
}

weir_status weir_redis_parse_element(const char *el, size_t len, const char *lease_id,
                                     int64_t now_ms, const struct weir_event_format *fmt,
                                     struct weir_record **out, struct weir_err *err)
{
    struct weir_record *r = weir_record_new();
    json_t *env = NULL;
    r->handle = weir_strdup(lease_id);
    r->seq = lease_seq(lease_id);
    r->receive_count = 1;
    r->first_receive_ms = now_ms;
    r->sent_ms = now_ms;
    if (!weir_redis_is_envelope(el, len)) {
        r->data = weir_malloc(len + 1);
        memcpy(r->data, el, len);
        r->data[len] = '\0';
        r->data_len = len;
        r->id = weir_strdup(lease_id);
        *out = r;
        return WEIR_OK;
    }
    json_error_t jerr;
    env = json_loadb(el, len, JSON_ALLOW_NUL, &jerr);
    if (!env) {
        weir_err_set(err, "envelope is not JSON: %s (line %d, column %d)", jerr.text, jerr.line,
                     jerr.column);
        goto fail;
    }
    json_t *body = json_object_get(env, "body");
    if (!json_is_string(body)) {
        weir_err_set(err, "envelope has no string \"body\"");
        goto fail;
    }
    int64_t rc = 0, sent = -1, fr = -1, fifo_seq = 0;
    if (opt_string(env, "id", &r->id, err) || opt_string(env, "group", &r->group_id, err) ||
        opt_string(env, "dedup", &r->dedup_id, err) || opt_int(env, "rc", &rc, err) ||
        opt_int(env, "sent", &sent, err) || opt_int(env, "fr", &fr, err) ||
        opt_int(env, "seq", &fifo_seq, err))
        goto fail;
    json_t *attrs = json_object_get(env, "attributes");
    if (attrs && !fmt->render_attrs) {
        weir_err_set(err, "\"attributes\" are not supported by the %s event format", fmt->name);
        goto fail;
    }
    if (attrs && fmt->render_attrs((const struct json_t *)attrs, &r->attrs_json, err))
        goto fail;
    r->data_len = json_string_length(body);
    r->data = weir_malloc(r->data_len + 1);
    memcpy(r->data, json_string_value(body), r->data_len);
    r->data[r->data_len] = '\0';
    if (!r->id)
        r->id = weir_strdup(lease_id);
    r->receive_count = rc >= UINT32_MAX ? UINT32_MAX : (uint32_t)rc + 1;
    if (fr >= 0)
        r->first_receive_ms = fr;
    r->sent_ms = sent >= 0 ? sent : r->first_receive_ms;
    r->fifo_seq = (uint64_t)fifo_seq;
    json_decref(env);
    *out = r;
    return WEIR_OK;
fail:
    json_decref(env);
    weir_record_free(r);
    return WEIR_ERR;
}

/* ---- configuration: the source's own keys and rules ---- */

#define RS struct weir_redis_settings

static const struct weir_cfg_key redrive_keys[] = {
    WEIR_CFG_KEY_INT("max_receive_count", RS, max_receive_count, 1, 1000, 0),
    WEIR_CFG_KEY_STRING("dead_letter_target", RS, dead_letter_target, 1),
};

static const struct weir_cfg_key redis_keys[] = {
    WEIR_CFG_KEY_INT("visibility_timeout", RS, visibility_timeout, 0, 43200, 30),
    WEIR_CFG_KEY_OBJECT("redrive_policy", redrive_keys),
    WEIR_CFG_KEY_BOOL("fifo", RS, fifo, 0),
};

/* AWS's bounds for FIFO queues. */
#define FIFO_MAX_BATCH 10

static void redis_validate(const struct weir_mapping_cfg *mc, struct weir_cfg_report *rep)
{
    const struct weir_redis_settings *rs = mc->settings;
    const char *name = mc->name ? mc->name : "?";
    /* AWS refuses a function timeout longer than the queue's visibility timeout. */
    if (mc->fn && mc->fn->timeout > rs->visibility_timeout)
        weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "visibility_timeout"),
                            "mapping '%s': visibility_timeout (%d s) is shorter than the timeout "
                            "of function '%s' (%d s): messages would come back while still being "
                            "processed",
                            name, rs->visibility_timeout, mc->fn->name, mc->fn->timeout);
    if (rs->max_receive_count > 0 && !rs->dead_letter_target)
        weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "redrive_policy"),
                            "mapping '%s': redrive_policy.max_receive_count needs "
                            "redrive_policy.dead_letter_target",
                            name);
    if (rs->dead_letter_target && rs->max_receive_count <= 0)
        weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "redrive_policy"),
                            "mapping '%s': redrive_policy.dead_letter_target needs "
                            "redrive_policy.max_receive_count (1..1000)",
                            name);
    struct weir_redis_uri u;
    struct weir_err err;
    if (!mc->source || weir_redis_uri_parse(mc->source, &u, &err) != WEIR_OK) {
        weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "source"), "mapping '%s': %s", name,
                            mc->source ? err.msg : "source is missing");
        return;
    }
    if (rs->dead_letter_target && strcmp(rs->dead_letter_target, u.key) == 0)
        weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "redrive_policy"),
                            "mapping '%s': redrive_policy.dead_letter_target '%s' is the queue "
                            "itself",
                            name, rs->dead_letter_target);
    bool fifo = weir_redis_key_is_fifo(u.key);
    if (weir_mapping_cfg_has(mc, "fifo") && rs->fifo != fifo)
        weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "fifo"),
                            rs->fifo ? "mapping '%s': fifo: true, but the list '%s' is not named "
                                       "like a FIFO queue: its name must end in .fifo, as SQS's do"
                                     : "mapping '%s': fifo: false, but the list '%s' is named like "
                                       "a FIFO queue (its name ends in .fifo)",
                            name, u.key);
    if (fifo && mc->batch_size > FIFO_MAX_BATCH)
        weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "batch_size"),
                            "mapping '%s': batch_size %d is out of range 1..%d for a FIFO queue "
                            "(as AWS)",
                            name, mc->batch_size, FIFO_MAX_BATCH);
    if (fifo && mc->maximum_batching_window_in_seconds > 0)
        weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "maximum_batching_window_in_seconds"),
                            "mapping '%s': a FIFO queue takes no batching window (AWS does not "
                            "support one for FIFO queues); remove "
                            "maximum_batching_window_in_seconds",
                            name);
    weir_redis_uri_deinit(&u);
}

/* ---- the poller ----
 *
 * Two connections. `cmd` carries the scripts (claim, reclaim, delete, release, bury) in order.
 * `wait` only ever carries BLMOVE <list> <list> LEFT LEFT 1: a blocking no-op rotation of the
 * list that answers as soon as the list is non-empty (or nil after 1 s), so an empty queue costs
 * one idle connection instead of a polling loop, pickup is immediate, and nothing is taken off
 * the list by waiting. Each connection reconnects on its own with capped backoff; a host name is
 * resolved without blocking (core/resolve.h) before each connect.
 *
 * Frees of hiredis contexts never happen inside a hiredis callback (hiredis would defer them and
 * then call our callbacks after we are gone): they go through `kick`, an event run by the loop.
 */

enum conn_kind { CONN_CMD, CONN_WAIT };
enum hs_kind { HS_AUTH, HS_SELECT, HS_SCRIPT }; /* HS_SCRIPT + i loads script i */
enum link_state { LINK_INIT, LINK_UP, LINK_DOWN };

struct conn;

struct hs_step {
    struct conn *c;
    int kind;
};

struct conn {
    struct weir_poller *p;
    enum conn_kind kind;
    redisAsyncContext *ac;       /* NULL while down */
    struct weir_resolve *lookup; /* the host name being resolved before a connect */
    bool ready;                  /* handshake (AUTH, SELECT, SCRIPT LOAD) answered */
    bool broken;                 /* the server refused the handshake: drop it from the loop */
    int hs_pending;
    int backoff_ms;
    struct weir_timer *retry;
    struct hs_step hs[HS_SCRIPT + WEIR_REDIS_NSCRIPTS];
    char err[WEIR_ERR_MAX]; /* why it last went down, for the log */
};

/* One script call on the cmd connection. argv[0..1] are filled at send time (EVALSHA sha or EVAL
 * text); the rest (numkeys, keys, args) is owned by the op, so the caller's batch may go. */
struct op {
    struct weir_poller *p;
    enum weir_redis_script script;
    int argc, cap;
    char **argv;
    size_t *lens;
    size_t asked;          /* claim: how many elements were asked for */
    int64_t sent_mono;     /* claim: mono ms it was sent; the local lease deadline counts from it */
    int prefix_arg;        /* claim: the argument holding the lease id prefix */
    bool eval;             /* send as EVAL (the server answered NOSCRIPT) */
    struct weir_list link; /* in the pending queue */
};

struct weir_poller {
    struct weir_sink sink;
    const struct weir_event_format *format; /* the row's: renders envelope attributes */
    const struct weir_mapping_cfg *mc;
    const struct weir_redis_settings *rs;
    struct event_base *base;
    char comp[96];
    char safe_uri[256];
    struct weir_redis_uri uri;
    struct weir_redis_keys keys;
    struct weir_source_info info;
    char *dlq;
    char prefix[25];    /* lease ids: salted per connection */
    char id_prefix[25]; /* FIFO message ids: the queue's own, stable */
    char *arn;
    bool fifo;
    int64_t lease_ms;
    int64_t reap_ms;
    int max_receive;
    size_t batch_size;

    struct weir_resolver *resolver;
    struct conn cmd, wait;
    char sha[WEIR_REDIS_NSCRIPTS][41];
    enum link_state link;

    bool started, stopping, stopped, dead;
    size_t claims_out;        /* claims sent and not yet fully processed */
    size_t asked_out;         /* records those claims asked for */
    bool waiting;             /* a BLMOVE (or the fallback timer) is outstanding */
    bool claim_now;           /* a settle made a FIFO group ready: claim without waiting */
    bool reclaiming;          /* a reclaim is outstanding */
    int cb_depth;             /* > 0 while inside one of our hiredis callbacks */
    size_t outstanding;       /* ops sent on cmd and not yet answered */
    struct weir_list pending; /* ops waiting for cmd to be ready */
    size_t n_pending;
    struct op *deletes; /* deletes of this loop turn, sent together at its end */

    struct weir_timer *reap_timer, *idle_timer, *wait_timer;
    struct event *kick_ev;
    struct event *stopped_ev;       /* calls done once stopped */
    struct weir_timer *flush_timer; /* sends the deletes gathered (DELETE_GATHER_MS) */
    void (*done)(void *arg);
    void *done_arg;

    int64_t malformed_window_ms;
    unsigned malformed_lines;
    unsigned long malformed_suppressed;
};

static void pump(struct weir_poller *p);
static void claim_finished(struct weir_poller *p, const struct op *op);
static void kick(struct weir_poller *p);
static void conn_lost(struct conn *c);
static void flush_deletes(struct weir_poller *p);

static const char *conn_name(const struct conn *c)
{
    return c->kind == CONN_CMD ? "cmd" : "wait";
}

static size_t sink_room(const struct weir_poller *p)
{
    return p->sink.ops->room(p->sink.ctx, WEIR_LANE_ANY);
}

/* -- ops -- */

static struct op *op_new(struct weir_poller *p, enum weir_redis_script script)
{
    struct op *op = weir_calloc(1, sizeof(*op));
    op->p = p;
    op->script = script;
    op->cap = 16;
    op->argv = weir_malloc((size_t)op->cap * sizeof(*op->argv));
    op->lens = weir_malloc((size_t)op->cap * sizeof(*op->lens));
    op->argc = 2; /* EVALSHA sha */
    op->argv[0] = op->argv[1] = NULL;
    weir_list_init(&op->link);
    return op;
}

static void op_arg(struct op *op, const char *s, size_t len)
{
    if (op->argc == op->cap) {
        op->cap *= 2;
        op->argv = weir_realloc(op->argv, (size_t)op->cap * sizeof(*op->argv));
        op->lens = weir_realloc(op->lens, (size_t)op->cap * sizeof(*op->lens));
    }
    op->argv[op->argc] = weir_strndup(s, len);
    op->lens[op->argc] = len;
    op->argc++;
}

static void op_str(struct op *op, const char *s)
{
    op_arg(op, s, strlen(s));
}

static void op_int(struct op *op, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%" PRId64, v);
    op_arg(op, tmp, (size_t)n);
}

/* Adds the KEYS of a script call: their count, then each. */
static void op_keys(struct op *op, int n, ...)
{
    va_list ap;
    op_int(op, n);
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        op_str(op, va_arg(ap, const char *));
    va_end(ap);
}

static void op_free(struct op *op)
{
    for (int i = 2; i < op->argc; i++)
        free(op->argv[i]);
    free(op->argv);
    free(op->lens);
    free(op);
}

static void on_op_reply(redisAsyncContext *ac, void *reply, void *privdata);

static void op_queue(struct weir_poller *p, struct op *op)
{
    weir_list_push_back(&p->pending, &op->link);
    p->n_pending++;
}

/* Sends op on the cmd connection, or queues it until the connection is ready. */
static void op_submit(struct weir_poller *p, struct op *op)
{
    if (!p->cmd.ready || !p->cmd.ac) {
        op_queue(p, op);
        return;
    }
    if (op->prefix_arg) /* a claim queued across a reconnect: the current prefix */
        memcpy(op->argv[op->prefix_arg], p->prefix, 24);
    bool eval = op->eval || !p->sha[op->script][0];
    op->argv[0] = eval ? "EVAL" : "EVALSHA";
    op->argv[1] = eval ? (char *)script_texts[op->script] : p->sha[op->script];
    op->lens[0] = strlen(op->argv[0]);
    op->lens[1] = strlen(op->argv[1]);
    if (redisAsyncCommandArgv(p->cmd.ac, on_op_reply, op, op->argc, (const char **)op->argv,
                              op->lens) != REDIS_OK) {
        op_queue(p, op);
        return;
    }
    p->outstanding++;
}

static void flush_pending(struct weir_poller *p)
{
    struct weir_list queued;
    weir_list_init(&queued);
    /* Move the queue aside first: op_submit may queue an op again (connection gone). */
    while (!weir_list_empty(&p->pending)) {
        struct weir_list *node = weir_list_pop_front(&p->pending);
        weir_list_push_back(&queued, node);
    }
    p->n_pending = 0;
    struct weir_list *node;
    while ((node = weir_list_pop_front(&queued)))
        op_submit(p, weir_list_entry(node, struct op, link));
}

static void drop_pending(struct weir_poller *p)
{
    struct weir_list *node;
    while ((node = weir_list_pop_front(&p->pending)))
        op_free(weir_list_entry(node, struct op, link));
    p->n_pending = 0;
    if (p->deletes) {
        op_free(p->deletes);
        p->deletes = NULL;
    }
}

/* -- malformed elements -- */

static void log_malformed(struct weir_poller *p, const char *lease_id, const char *why,
                          const char *moved_to)
{
    int64_t now = weir_clock_mono_ms();
    if (now - p->malformed_window_ms >= MALFORMED_WINDOW_MS) {
        if (p->malformed_suppressed)
            weir_error(p->comp, "redis: more malformed messages not logged list=%s count=%lu",
                       p->keys.list, p->malformed_suppressed);
        p->malformed_window_ms = now;
        p->malformed_lines = 0;
        p->malformed_suppressed = 0;
    }
    if (p->malformed_lines >= MALFORMED_LINES) {
        p->malformed_suppressed++;
        return;
    }
    p->malformed_lines++;
    if (moved_to)
        weir_error(p->comp,
                   "redis: malformed message moved aside list=%s lease=%s error=\"%s\" to=%s",
                   p->keys.list, lease_id, why, moved_to);
    else
        weir_error(p->comp,
                   "redis: malformed message left leased until its lease ends list=%s lease=%s "
                   "error=\"%s\"",
                   p->keys.list, lease_id, why);
}

/* -- claim -- */

static void go_wait(struct weir_poller *p);

/* A bury call: elements that can never be delivered, to the dead-letter list or (without one)
 * the parked list, each with its reason. */
static struct op *bury_op(struct weir_poller *p)
{
    struct op *op = op_new(p, WEIR_REDIS_BURY);
    op_keys(op, 5, p->keys.inflight, p->keys.leases, p->dlq ? p->dlq : p->keys.parked, p->keys.busy,
            p->keys.ready);
    op_str(op, p->fifo ? "1" : "0");
    op_str(op, p->keys.group_prefix);
    return op;
}

static struct op *release_op(struct weir_poller *p)
{
    struct op *op;
    if (p->fifo) {
        op = op_new(p, WEIR_REDIS_RELEASE_FIFO);
        op_keys(op, 5, p->keys.list, p->keys.inflight, p->keys.leases, p->keys.busy, p->keys.ready);
        op_str(op, p->keys.group_prefix);
    } else {
        op = op_new(p, WEIR_REDIS_RELEASE);
        op_keys(op, 3, p->keys.list, p->keys.inflight, p->keys.leases);
    }
    return op;
}

/* The records of a claim reply start after its header: {now} for a standard queue, {now,
 * duplicates, refusals, more} for a FIFO one. */
static size_t claim_header_len(const struct weir_poller *p)
{
    return p->fifo ? 4 : 1;
}

static void release_ids(struct weir_poller *p, const redisReply *r)
{
    struct op *op = release_op(p);
    for (size_t i = claim_header_len(p); i + 1 < r->elements; i += 2)
        op_arg(op, r->element[i]->str, r->element[i]->len);
    op_submit(p, op);
}

/* A FIFO claim also reports what its ingest did with new messages. */
static void log_fifo_ingest(struct weir_poller *p, const redisReply *r)
{
    long long dups = r->element[1]->integer;
    const redisReply *refused = r->element[2];
    if (dups)
        weir_debug(p->comp,
                   "redis: duplicate messages dropped (same dedup id within 5 min) "
                   "list=%s count=%lld",
                   p->keys.list, dups);
    for (size_t i = 0; i < refused->elements; i++)
        weir_log_limited(WEIR_LOG_ERROR, p->comp,
                         "redis: message refused by the FIFO queue list=%s reason=\"%.*s\" to=%s",
                         p->keys.list, (int)refused->element[i]->len, refused->element[i]->str,
                         p->dlq ? p->dlq : p->keys.parked);
}

static bool claim_reply_ok(const struct weir_poller *p, const redisReply *r)
{
    size_t head = claim_header_len(p);
    bool ok = r->type == REDIS_REPLY_ARRAY && r->elements >= head &&
              (r->elements - head) % 2 == 0 && r->element[0]->type == REDIS_REPLY_INTEGER;
    if (ok && p->fifo)
        ok = r->element[1]->type == REDIS_REPLY_INTEGER && r->element[2]->type == REDIS_REPLY_ARRAY;
    for (size_t i = 0; ok && p->fifo && i < r->element[2]->elements; i++)
        ok = r->element[2]->element[i]->type == REDIS_REPLY_STRING;
    for (size_t i = head; ok && i < r->elements; i++)
        ok = r->element[i]->type == REDIS_REPLY_STRING;
    return ok;
}

static void on_claim(struct weir_poller *p, struct op *op, redisReply *r)
{
    if (r->type == REDIS_REPLY_ERROR) {
        weir_log_limited(WEIR_LOG_ERROR, p->comp, "redis: claim failed list=%s error=\"%s\"",
                         p->keys.list, r->str);
        claim_finished(p, op);
        p->waiting = true;
        weir_timer_after(p->idle_timer, RETRY_AFTER_ERROR);
        return;
    }
    if (!claim_reply_ok(p, r)) {
        /* Cannot happen with our script; the leases, if any, expire and come back. */
        weir_log_limited(WEIR_LOG_ERROR, p->comp, "redis: unexpected claim reply list=%s type=%d",
                         p->keys.list, r->type);
        claim_finished(p, op);
        p->waiting = true;
        weir_timer_after(p->idle_timer, RETRY_AFTER_ERROR);
        return;
    }
    size_t head = claim_header_len(p);
    size_t n = (r->elements - head) / 2;
    /* A short claim means an empty queue, except in a FIFO queue whose groups hold fewer
     * messages than a batch: there the script says whether more is ready. */
    bool more = n == op->asked || (p->fifo && r->element[3]->integer > 0);
    if (p->fifo)
        log_fifo_ingest(p, r);
    if (p->stopping) {
        /* Claimed after stop: hand them straight back; they were never seen. */
        if (n)
            release_ids(p, r);
        claim_finished(p, op);
        return;
    }
    int64_t now = (int64_t)r->element[0]->integer;
    int64_t deadline = op->sent_mono + p->lease_ms;
    struct op *bury = NULL;
    /* This reply's records stay counted in asked_out until delivered, so a claim sent meanwhile
     * (the early one below, or one from resume() inside deliver) asks only for what is left. */
    p->claims_out--;
    if (more)
        pump(p);
    for (size_t i = head; i < r->elements; i += 2) {
        const redisReply *id = r->element[i], *el = r->element[i + 1];
        struct weir_record *rec = NULL;
        struct weir_err err;
        if (weir_redis_parse_element(el->str, el->len, id->str, now, p->format, &rec, &err) !=
            WEIR_OK) {
            /* A FIFO queue cannot leave it leased: its group would stay blocked. */
            bool bury_it = p->dlq || p->fifo;
            log_malformed(p, id->str, err.msg, !bury_it ? NULL : p->dlq ? p->dlq : p->keys.parked);
            if (bury_it) {
                if (!bury)
                    bury = bury_op(p);
                op_arg(bury, id->str, id->len);
                op_str(bury, err.msg);
            }
            continue;
        }
        rec->deadline_ms = deadline;
        rec->lease_ms = p->lease_ms;
        if (p->fifo && rec->group_id)
            rec->lane = weir_lane_of(rec->group_id, strlen(rec->group_id));
        p->sink.ops->deliver(p->sink.ctx, rec);
        if (p->dead)
            break;
    }
    if (p->dead) {
        if (bury)
            op_free(bury);
        return;
    }
    if (bury)
        op_submit(p, bury);
    p->asked_out -= op->asked;
    if (n)
        p->sink.ops->read_done(p->sink.ctx);
    if (p->dead || p->stopping)
        return;
    if (more)
        pump(p);
    else if (!p->claims_out && sink_room(p) > 0)
        go_wait(p);
}

static void send_claim(struct weir_poller *p, size_t n)
{
    struct op *op;
    if (p->fifo) {
        /* One batch per group: as many groups as batches can run. */
        size_t groups = n / p->batch_size ? n / p->batch_size : 1;
        op = op_new(p, WEIR_REDIS_CLAIM_FIFO);
        op_keys(op, 9, p->keys.list, p->keys.inflight, p->keys.leases, p->keys.seq,
                p->keys.fifo_seq, p->keys.ready, p->keys.busy, p->keys.dedup,
                p->dlq ? p->dlq : p->keys.parked);
        op_int(op, (int64_t)n);
        op_int(op, p->lease_ms);
        op->prefix_arg = op->argc;
        op_str(op, p->prefix);
        op_int(op, (int64_t)p->batch_size);
        op_int(op, (int64_t)groups);
        op_int(op, FIFO_INGEST_MAX);
        op_str(op, p->keys.group_prefix);
        op_int(op, WEIR_REDIS_DEDUP_WINDOW_MS);
        op_str(op, p->id_prefix);
    } else {
        op = op_new(p, WEIR_REDIS_CLAIM);
        op_keys(op, 4, p->keys.list, p->keys.inflight, p->keys.leases, p->keys.seq);
        op_int(op, (int64_t)n);
        op_int(op, p->lease_ms);
        op->prefix_arg = op->argc;
        op_str(op, p->prefix);
    }
    op->asked = n;
    op->sent_mono = weir_clock_mono_ms();
    p->claims_out++;
    p->asked_out += n;
    op_submit(p, op);
}

/* A claim that delivers nothing (error, lost reply, stopping) no longer counts. */
static void claim_finished(struct weir_poller *p, const struct op *op)
{
    p->claims_out--;
    p->asked_out -= op->asked;
}

static void pump(struct weir_poller *p)
{
    while (p->started && !p->stopping && !p->dead && p->cmd.ready &&
           (!p->waiting || p->claim_now) && p->claims_out < MAX_CLAIMS_IN_FLIGHT) {
        size_t want = sink_room(p);
        if (want <= p->asked_out)
            return;
        want -= p->asked_out;
        size_t max = p->batch_size > CLAIM_MAX_RECORDS ? p->batch_size : CLAIM_MAX_RECORDS;
        p->claim_now = false;
        send_claim(p, want < max ? want : max);
    }
}

static void on_wait_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct weir_poller *p = privdata;
    redisReply *r = reply;
    p->cb_depth++;
    if (p->dead)
        goto out;
    weir_timer_stop(p->wait_timer);
    p->waiting = false;
    if (!r) {
        /* The wait connection is gone; claims go on, waiting on a timer until it is back. */
        pump(p);
        goto out;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        weir_log_limited(WEIR_LOG_ERROR, p->comp, "redis: BLMOVE failed list=%s error=\"%s\"",
                         p->keys.list, r->str);
        p->waiting = true;
        weir_timer_after(p->idle_timer, RETRY_AFTER_ERROR);
        goto out;
    }
    pump(p);
out:
    p->cb_depth--;
}

static void go_wait(struct weir_poller *p)
{
    if (p->waiting)
        return;
    p->waiting = true;
    if (p->wait.ready && p->wait.ac &&
        redisAsyncCommand(p->wait.ac, on_wait_reply, p, "BLMOVE %b %b LEFT LEFT 1", p->keys.list,
                          strlen(p->keys.list), p->keys.list, strlen(p->keys.list)) == REDIS_OK) {
        weir_timer_after(p->wait_timer, WAIT_ANSWER_MS);
        return;
    }
    /* No wait connection right now: claim again a little later instead. */
    weir_timer_after(p->idle_timer, WAIT_FALLBACK_MS);
}

static void on_idle(void *arg)
{
    struct weir_poller *p = arg;
    p->waiting = false;
    pump(p);
}

/* The BLMOVE went unanswered: drop the wait connection (its reply callback then runs with NULL
 * and claims resume) and let it reconnect. */
static void on_wait_overdue(void *arg)
{
    struct weir_poller *p = arg;
    if (p->dead || p->stopping || !p->wait.ac)
        return;
    snprintf(p->wait.err, sizeof(p->wait.err), "no answer to BLMOVE within %d ms", WAIT_ANSWER_MS);
    p->wait.broken = true;
    kick(p);
}

/* -- reaper -- */

static void on_reap(void *arg)
{
    struct weir_poller *p = arg;
    if (p->stopping || p->dead || p->reclaiming)
        return;
    if (!p->cmd.ready)
        return; /* re-armed when cmd is ready again */
    struct op *op;
    if (p->fifo) {
        op = op_new(p, WEIR_REDIS_RECLAIM_FIFO);
        if (p->dlq)
            op_keys(op, 6, p->keys.list, p->keys.inflight, p->keys.leases, p->keys.busy,
                    p->keys.ready, p->dlq);
        else
            op_keys(op, 5, p->keys.list, p->keys.inflight, p->keys.leases, p->keys.busy,
                    p->keys.ready);
    } else {
        op = op_new(p, WEIR_REDIS_RECLAIM);
        if (p->dlq)
            op_keys(op, 4, p->keys.list, p->keys.inflight, p->keys.leases, p->dlq);
        else
            op_keys(op, 3, p->keys.list, p->keys.inflight, p->keys.leases);
    }
    op_str(op, "0");
    op_int(op, p->max_receive);
    op_int(op, RECLAIM_LIMIT);
    op_int(op, p->lease_ms);
    if (p->fifo)
        op_str(op, p->keys.group_prefix);
    p->reclaiming = true;
    op_submit(p, op);
}

static void on_reclaim(struct weir_poller *p, redisReply *r)
{
    p->reclaiming = false;
    int64_t next = p->reap_ms;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_INTEGER && r->element[1]->type == REDIS_REPLY_INTEGER) {
        long long back = r->element[0]->integer, dead = r->element[1]->integer;
        if (back)
            weir_debug(p->comp, "redis: leases expired, messages returned list=%s count=%lld",
                       p->keys.list, back);
        if (dead)
            weir_info(p->comp,
                      "redis: messages moved to the dead-letter list list=%s dlq=%s "
                      "count=%lld max_receive_count=%d",
                      p->keys.list, p->dlq, dead, p->max_receive);
        if (back + dead >= RECLAIM_LIMIT)
            next = 0; /* more may be due: go again at once */
        if (p->fifo && back) {
            p->claim_now = true; /* groups were unlocked: claim them now */
            pump(p);
        }
    } else {
        weir_log_limited(WEIR_LOG_ERROR, p->comp, "redis: reclaim failed list=%s error=\"%s\"",
                         p->keys.list, r->type == REDIS_REPLY_ERROR ? r->str : "bad reply");
    }
    if (!p->stopping)
        weir_timer_after(p->reap_timer, next);
}

/* -- replies of ops -- */

static bool is_claim(const struct op *op)
{
    return op->script == WEIR_REDIS_CLAIM || op->script == WEIR_REDIS_CLAIM_FIFO;
}

static void on_op_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct op *op = privdata;
    struct weir_poller *p = op->p;
    redisReply *r = reply;
    p->cb_depth++;
    p->outstanding--;
    if (p->dead)
        goto done;
    if (!r) {
        /* The connection went away with this op unanswered. A lost claim loses nothing: its
         * elements are leased in Redis and the reaper (ours or another weir's) returns them when
         * the lease ends. A lost delete or release: the leases end and the messages are
         * delivered again. Duplicates, never loss: that is the at-least-once guarantee. */
        if (is_claim(op))
            claim_finished(p, op);
        else if (op->script == WEIR_REDIS_RECLAIM || op->script == WEIR_REDIS_RECLAIM_FIFO)
            p->reclaiming = false;
        goto done;
    }
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0 && !op->eval) {
        /* The server lost its script cache (SCRIPT FLUSH, or a restart we did not see): EVAL
         * sends the text, and caches it again for the EVALSHAs after it. */
        op->eval = true;
        op_submit(p, op);
        p->cb_depth--;
        kick(p);
        return;
    }
    switch (op->script) {
    case WEIR_REDIS_CLAIM:
    case WEIR_REDIS_CLAIM_FIFO:
        on_claim(p, op, r);
        break;
    case WEIR_REDIS_RECLAIM:
    case WEIR_REDIS_RECLAIM_FIFO:
        on_reclaim(p, r);
        break;
    case WEIR_REDIS_DELETE_FIFO:
    case WEIR_REDIS_RELEASE_FIFO:
        /* {deleted or released, groups made ready}: a ready group is work to claim now, not
         * after the next BLMOVE (which only wakes for new messages on the list). */
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
            r->element[1]->type == REDIS_REPLY_INTEGER && r->element[1]->integer > 0) {
            p->claim_now = true;
            pump(p);
            break;
        }
        /* fall through */
    default:
        if (r->type == REDIS_REPLY_ERROR)
            weir_log_limited(WEIR_LOG_ERROR, p->comp, "redis: %s failed list=%s error=\"%s\"",
                             script_names[op->script], p->keys.list, r->str);
        break;
    }
done:
    p->cb_depth--;
    if (!p->dead)
        kick(p);
    op_free(op);
}

/* -- connections -- */

static void update_link(struct weir_poller *p)
{
    bool up = p->cmd.ready && (p->wait.ready || p->stopping);
    if (up && p->link != LINK_UP) {
        weir_info(p->comp, "redis: %s source=%s list=%s db=%d",
                  p->link == LINK_INIT ? "connected" : "reconnected", p->safe_uri, p->keys.list,
                  p->uri.db);
        p->link = LINK_UP;
    }
}

static void conn_ready(struct conn *c)
{
    struct weir_poller *p = c->p;
    c->ready = true;
    c->backoff_ms = RECONNECT_MIN_MS;
    update_link(p);
    if (c->kind == CONN_CMD) {
        flush_pending(p);
        if (!p->stopping && !weir_timer_armed(p->reap_timer))
            weir_timer_after(p->reap_timer, p->reap_ms);
    }
    pump(p);
}

static void on_hs_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct hs_step *step = privdata;
    struct conn *c = step->c;
    struct weir_poller *p = c->p;
    redisReply *r = reply;
    p->cb_depth++;
    if (p->dead || !r || c->ac != ac || c->broken)
        goto out;
    if (r->type == REDIS_REPLY_ERROR) {
        const char *what = step->kind == HS_AUTH     ? "AUTH"
                           : step->kind == HS_SELECT ? "SELECT"
                                                     : "SCRIPT LOAD";
        snprintf(c->err, sizeof(c->err), "%s refused: %s", what, r->str);
        /* No conn= here: the limiter then folds the wait connection's identical refusal. */
        weir_log_limited(WEIR_LOG_ERROR, p->comp, "redis: %s refused list=%s error=\"%s\"", what,
                         p->keys.list, r->str);
        c->broken = true;
        kick(p);
        goto out;
    }
    if (step->kind >= HS_SCRIPT && r->type == REDIS_REPLY_STRING && r->len == 40)
        memcpy(p->sha[step->kind - HS_SCRIPT], r->str, 41);
    if (--c->hs_pending == 0)
        conn_ready(c);
out:
    p->cb_depth--;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct conn *c = ac->data;
    if (!c || c->ac != ac || status == REDIS_OK)
        return;
    /* hiredis frees the context after this returns, without a disconnect callback. */
    struct weir_poller *p = c->p;
    p->cb_depth++;
    snprintf(c->err, sizeof(c->err), "%s", ac->c.errstr[0] ? ac->c.errstr : "connect failed");
    c->ac = NULL;
    conn_lost(c);
    p->cb_depth--;
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct conn *c = ac->data;
    if (!c || c->ac != ac)
        return;
    struct weir_poller *p = c->p;
    p->cb_depth++;
    snprintf(c->err, sizeof(c->err), "%s", ac->c.errstr[0] ? ac->c.errstr : "disconnected");
    c->ac = NULL;
    conn_lost(c);
    p->cb_depth--;
}

static void hs_send(struct conn *c, int kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    c->hs[kind].c = c;
    c->hs[kind].kind = kind;
    if (redisvAsyncCommand(c->ac, on_hs_reply, &c->hs[kind], fmt, ap) == REDIS_OK)
        c->hs_pending++;
    va_end(ap);
}

/* Connects c to addr, a numeric address: hiredis' getaddrinfo then does no I/O. */
static void conn_connect(struct conn *c, const char *addr)
{
    struct weir_poller *p = c->p;
    redisAsyncContext *ac = redisAsyncConnect(addr, p->uri.port);
    if (!ac || ac->err) {
        snprintf(c->err, sizeof(c->err), "%s", ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        conn_lost(c);
        return;
    }
    ac->data = c;
    c->ac = ac;
    redisLibeventAttach(ac, p->base);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* Queued now, written by hiredis once connected, answered in order. */
    if (p->uri.password && p->uri.user)
        hs_send(c, HS_AUTH, "AUTH %s %s", p->uri.user, p->uri.password);
    else if (p->uri.password)
        hs_send(c, HS_AUTH, "AUTH %s", p->uri.password);
    hs_send(c, HS_SELECT, "SELECT %d", p->uri.db);
    if (c->kind == CONN_CMD)
        for (int i = 0; i < WEIR_REDIS_NSCRIPTS; i++)
            hs_send(c, HS_SCRIPT + i, "SCRIPT LOAD %s", script_texts[i]);
}

static void on_resolved(const char *addr, const struct weir_err *err, void *arg)
{
    struct conn *c = arg;
    struct weir_poller *p = c->p;
    c->lookup = NULL;
    if (p->dead)
        return;
    if (!addr) {
        snprintf(c->err, sizeof(c->err), "%s", err->msg);
        conn_lost(c);
        return;
    }
    if (strcmp(addr, p->uri.host) != 0)
        weir_debug(p->comp, "redis: resolved host=%s address=%s conn=%s", p->uri.host, addr,
                   conn_name(c));
    conn_connect(c, addr);
}

/* Opens c: resolves the host (from the loop, never blocking it), then connects. Never called
 * from inside a hiredis callback (start, the retry timer). */
static void conn_open(struct conn *c)
{
    struct weir_poller *p = c->p;
    c->ready = c->broken = false;
    c->hs_pending = 0;
    if (c->kind == CONN_CMD) {
        /* A new lease id prefix for every connection. A Redis restart or failover that loses the
         * lease counter hands out the same numbers again; under the old prefix, a late delete or
         * release of a lease we took before would hit another message's new lease: deleting it
         * while a function holds it (lost if that function fails), or pushing it back mid-lease.
         * Old leases keep their full ids, so settling them is unchanged. */
        char salt[37];
        weir_uuid4(salt);
        lease_prefix_salted(&p->uri, salt, p->prefix);
    }
    c->lookup = weir_resolve_start(p->resolver, p->uri.host, p->uri.port, on_resolved, c);
}

/* Frees c's context. Only from the loop (kick), never inside a hiredis callback. */
static void conn_drop(struct conn *c)
{
    redisAsyncContext *ac = c->ac;
    if (!ac)
        return;
    c->ac = NULL;
    ac->data = NULL;    /* so its disconnect callback knows it is not news */
    redisAsyncFree(ac); /* pending replies are called back with NULL */
    conn_lost(c);
}

static void on_retry(void *arg)
{
    struct conn *c = arg;
    struct weir_poller *p = c->p;
    if (p->dead || c->ac || c->lookup || (p->stopping && c->kind == CONN_WAIT))
        return;
    weir_debug(p->comp, "redis: connecting conn=%s host=%s port=%d", conn_name(c), p->uri.host,
               p->uri.port);
    conn_open(c);
}

/* c is down (refused, lost or dropped): log the state change once and plan the next attempt. */
static void conn_lost(struct conn *c)
{
    struct weir_poller *p = c->p;
    c->ready = false;
    c->broken = false;
    c->hs_pending = 0;
    if (p->dead)
        return;
    if (c->kind == CONN_WAIT)
        p->waiting = false;
    if (p->stopping) {
        if (c->kind == CONN_CMD) {
            if (p->n_pending || p->outstanding)
                weir_warn(p->comp,
                          "redis: unreachable while stopping, giving up; their leases will end and "
                          "the messages come back list=%s error=\"%s\" unsettled_ops=%zu",
                          p->keys.list, c->err, p->n_pending + p->outstanding);
            drop_pending(p);
            kick(p);
        }
        return;
    }
    if (p->link != LINK_DOWN) {
        weir_warn(p->comp, "redis: %s, reconnecting list=%s conn=%s error=\"%s\"",
                  p->link == LINK_UP ? "connection lost" : "cannot connect", p->keys.list,
                  conn_name(c), c->err);
        p->link = LINK_DOWN;
    } else {
        weir_debug(p->comp, "redis: still down conn=%s error=\"%s\" retry_ms=%d", conn_name(c),
                   c->err, c->backoff_ms);
    }
    weir_timer_after(c->retry, c->backoff_ms);
    c->backoff_ms = c->backoff_ms * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : c->backoff_ms * 2;
}

/* -- stop, kick, free -- */

static void on_stopped(evutil_socket_t fd, short what, void *arg)
{
    struct weir_poller *p = arg;
    /* The caller may free p from done: nothing of p is touched after it. */
    p->done(p->done_arg);
}

static void finish_stop(struct weir_poller *p)
{
    p->stopped = true;
    weir_info(p->comp, "redis: stopped list=%s", p->keys.list);
    /* Through the loop, by an event of p's own: freeing p before it runs cancels it, where a
     * one-off event would still call done on a mapping already gone. */
    if (p->done)
        event_active(p->stopped_ev, EV_TIMEOUT, 0);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    struct weir_poller *p = arg;
    if (p->dead)
        return;
    if (p->wait.ac && (p->wait.broken || p->stopping))
        conn_drop(&p->wait);
    if (p->cmd.ac && p->cmd.broken)
        conn_drop(&p->cmd);
    if (p->stopping && !p->stopped && !p->outstanding && !p->n_pending && !p->deletes)
        finish_stop(p);
}

static void kick(struct weir_poller *p)
{
    event_active(p->kick_ev, EV_TIMEOUT, 0);
}

static void redis_stop(struct weir_poller *p, void (*done)(void *arg), void *arg)
{
    if (p->stopping)
        return;
    p->stopping = true;
    p->done = done;
    p->done_arg = arg;
    flush_deletes(p);
    weir_info(p->comp, "redis: stopping list=%s pending_ops=%zu", p->keys.list,
              p->n_pending + p->outstanding);
    weir_timer_stop(p->reap_timer);
    weir_timer_stop(p->idle_timer);
    weir_timer_stop(p->wait_timer);
    weir_timer_stop(p->wait.retry);
    weir_resolve_cancel(p->wait.lookup);
    p->wait.lookup = NULL;
    p->waiting = false;
    if (p->started && !p->cmd.ac && p->n_pending) {
        /* Down, with settles to write: one attempt now instead of after the backoff. */
        if (!p->cmd.lookup)
            weir_timer_after(p->cmd.retry, 0);
    } else if (!p->cmd.ac) {
        weir_timer_stop(p->cmd.retry);
        weir_resolve_cancel(p->cmd.lookup);
        p->cmd.lookup = NULL;
        drop_pending(p);
    }
    kick(p);
}

static void real_free(struct weir_poller *p)
{
    /* Contexts first: their pending callbacks run now, with NULL replies, and find p dead. */
    if (p->cmd.ac) {
        p->cmd.ac->data = NULL;
        redisAsyncFree(p->cmd.ac);
    }
    if (p->wait.ac) {
        p->wait.ac->data = NULL;
        redisAsyncFree(p->wait.ac);
    }
    drop_pending(p);
    /* Cancels the lookups still running, without calling back. */
    weir_resolver_free(p->resolver);
    weir_timer_free(p->reap_timer);
    weir_timer_free(p->idle_timer);
    weir_timer_free(p->wait_timer);
    weir_timer_free(p->cmd.retry);
    weir_timer_free(p->wait.retry);
    if (p->kick_ev)
        event_free(p->kick_ev);
    if (p->stopped_ev)
        event_free(p->stopped_ev);
    weir_timer_free(p->flush_timer);
    weir_redis_uri_deinit(&p->uri);
    weir_redis_keys_deinit(&p->keys);
    free(p->dlq);
    free(p->arn);
    free(p);
}

static void on_deferred_free(evutil_socket_t fd, short what, void *arg)
{
    real_free(arg);
}

static void redis_free(struct weir_poller *p)
{
    if (!p)
        return;
    p->dead = true;
    if (p->cb_depth > 0) {
        /* Inside one of our hiredis callbacks: hiredis would defer the context free and call us
         * back after p is gone. Finish from the loop instead. */
        weir_timer_stop(p->reap_timer);
        weir_timer_stop(p->idle_timer);
        weir_timer_stop(p->wait_timer);
        weir_timer_stop(p->cmd.retry);
        weir_timer_stop(p->wait.retry);
        event_del(p->kick_ev);
        event_del(p->stopped_ev);
        weir_timer_stop(p->flush_timer);
        struct timeval zero = {0, 0};
        event_base_once(p->base, -1, EV_TIMEOUT, on_deferred_free, p, &zero);
        return;
    }
    real_free(p);
}

/* -- the ops table entries -- */

static int64_t lease_ms_of(const struct weir_mapping_cfg *mc)
{
    const struct weir_redis_settings *rs = mc->settings;
    int64_t vis = rs->visibility_timeout;
    int64_t window = mc->maximum_batching_window_in_seconds;
    int64_t fn_timeout = mc->fn ? mc->fn->timeout : 0;
    /* Reference 2.1: when the window and the function timeout together pass the visibility
     * timeout, AWS uses window + timeout + 30 s, so a batch is not redelivered mid-invocation. */
    if (window + fn_timeout > vis)
        vis = window + fn_timeout + 30;
    return vis * 1000;
}

static void on_flush(void *arg)
{
    flush_deletes(arg);
}

static struct weir_poller *redis_new(const struct weir_poller_args *a, struct weir_err *err)
{
    const struct weir_mapping_cfg *mc = a->mc;
    const struct weir_redis_settings *rs = mc->settings;
    struct weir_poller *p = weir_calloc(1, sizeof(*p));
    p->sink = a->sink;
    p->format = a->format;
    p->mc = mc;
    p->rs = rs;
    p->base = a->base;
    weir_list_init(&p->pending);
    snprintf(p->comp, sizeof(p->comp), "%s", a->component);
    weir_log_redact_uri(mc->source, p->safe_uri, sizeof(p->safe_uri));
    p->cmd = (struct conn){.p = p, .kind = CONN_CMD, .backoff_ms = RECONNECT_MIN_MS};
    p->wait = (struct conn){.p = p, .kind = CONN_WAIT, .backoff_ms = RECONNECT_MIN_MS};
    p->cmd.retry = weir_timer_new(a->base, on_retry, &p->cmd);
    p->wait.retry = weir_timer_new(a->base, on_retry, &p->wait);
    p->reap_timer = weir_timer_new(a->base, on_reap, p);
    p->idle_timer = weir_timer_new(a->base, on_idle, p);
    p->wait_timer = weir_timer_new(a->base, on_wait_overdue, p);
    p->kick_ev = event_new(a->base, -1, 0, on_kick, p);
    p->stopped_ev = event_new(a->base, -1, 0, on_stopped, p);
    p->flush_timer = weir_timer_new(a->base, on_flush, p);
    if (weir_redis_uri_parse(mc->source, &p->uri, err) != WEIR_OK)
        goto fail;
    p->resolver = weir_resolver_new(a->base, err);
    if (!p->resolver)
        goto fail;
    weir_redis_keys_init(&p->keys, p->uri.key);
    p->fifo = weir_redis_key_is_fifo(p->uri.key);
    if (rs->dead_letter_target && *rs->dead_letter_target)
        p->dlq = weir_strdup(rs->dead_letter_target);
    weir_redis_lease_prefix(&p->uri, p->prefix);
    weir_redis_lease_prefix(&p->uri, p->id_prefix);
    p->arn = weir_redis_source_arn(&p->uri, a->region ? a->region : "us-east-1");
    p->info.source_arn = p->arn;
    p->info.ordered_lanes = p->fifo;
    p->lease_ms = lease_ms_of(mc);
    p->reap_ms = p->lease_ms / 4;
    if (p->reap_ms > REAP_MAX_MS)
        p->reap_ms = REAP_MAX_MS;
    if (p->reap_ms < REAP_MIN_MS)
        p->reap_ms = REAP_MIN_MS;
    p->max_receive = p->dlq ? rs->max_receive_count : 0;
    p->batch_size = mc->batch_size > 0 ? (size_t)mc->batch_size : 10;
    return p;
fail:
    real_free(p);
    return NULL;
}

static const struct weir_source_info *redis_info(const struct weir_poller *p)
{
    return &p->info;
}

static weir_status redis_start(struct weir_poller *p)
{
    if (p->started)
        return WEIR_OK;
    p->started = true;
    weir_info(p->comp,
              "redis: starting source=%s list=%s fifo=%s lease_ms=%" PRId64
              " batch_size=%zu dlq=%s max_receive_count=%d",
              p->safe_uri, p->keys.list, p->fifo ? "true" : "false", p->lease_ms, p->batch_size,
              p->dlq ? p->dlq : "-", p->max_receive);
    conn_open(&p->cmd);
    conn_open(&p->wait);
    return WEIR_OK;
}

static void redis_resume(struct weir_poller *p, uint32_t lane)
{
    /* Claims take any lane (a FIFO claim takes whichever groups are ready), so a lane's room is
     * the whole poller's. */
    pump(p);
}

/* Sends the deletes collected this loop turn as one script call. */
static void flush_deletes(struct weir_poller *p)
{
    struct op *del = p->deletes;
    if (!del)
        return;
    p->deletes = NULL;
    weir_timer_stop(p->flush_timer);
    if (p->stopped && !p->cmd.ready) {
        weir_warn(p->comp,
                  "redis: settle after stop while disconnected; the leases will end and the "
                  "messages come back list=%s",
                  p->keys.list);
        op_free(del);
        return;
    }
    op_submit(p, del);
}

static void add_delete(struct weir_poller *p, const struct weir_record *r)
{
    if (!p->deletes) {
        if (p->fifo) {
            p->deletes = op_new(p, WEIR_REDIS_DELETE_FIFO);
            op_keys(p->deletes, 4, p->keys.inflight, p->keys.leases, p->keys.busy, p->keys.ready);
            op_str(p->deletes, p->keys.group_prefix);
        } else {
            p->deletes = op_new(p, WEIR_REDIS_DELETE);
            op_keys(p->deletes, 2, p->keys.inflight, p->keys.leases);
        }
        /* The batches settled within a millisecond go in one call: with small batches that is
         * one script call for many instead of one each, for Redis and for weir. A delete that
         * waits a millisecond more costs nothing but that (a crash meanwhile redelivers). */
        weir_timer_after(p->flush_timer, DELETE_GATHER_MS);
    }
    op_str(p->deletes, r->handle);
    if (p->fifo)
        op_str(p->deletes, r->group_id ? r->group_id : "");
    if (p->deletes->argc >= DELETE_GATHER_MAX)
        flush_deletes(p);
}

static void redis_settle(struct weir_poller *p, const struct weir_batch *b)
{
    if (p->dead)
        return;
    struct op *rel = NULL, *bury = NULL;
    for (size_t i = 0; i < b->n; i++) {
        const struct weir_record *r = b->records[i];
        if (!r->handle)
            continue;
        switch (r->verdict) {
        case WEIR_VERDICT_DONE:
            add_delete(p, r);
            break;
        case WEIR_VERDICT_RELEASE:
            if (!rel)
                rel = release_op(p);
            op_str(rel, r->handle);
            break;
        case WEIR_VERDICT_REJECT:
            if (!bury)
                bury = bury_op(p);
            op_str(bury, r->handle);
            op_str(bury, r->reason ? r->reason : "rejected");
            weir_error(p->comp,
                       "redis: message can never be delivered list=%s id=%s "
                       "reason=\"%s\" moved_to=%s",
                       p->keys.list, r->id, r->reason ? r->reason : "rejected",
                       p->dlq ? p->dlq : p->keys.parked);
            break;
        default:
            /* RETRY: nothing. The message comes back when its lease ends, one receive more, as
             * SQS returns it after the visibility timeout with ApproximateReceiveCount + 1. */
            break;
        }
    }
    struct op *ops[] = {rel, bury};
    for (size_t i = 0; i < 2; i++) {
        if (!ops[i])
            continue;
        if (p->stopped && !p->cmd.ready) {
            /* After stop with the server gone: nothing will write these. */
            weir_warn(p->comp,
                      "redis: settle after stop while disconnected; the leases will end and the "
                      "messages come back list=%s",
                      p->keys.list);
            op_free(ops[i]);
        } else {
            op_submit(p, ops[i]);
        }
    }
    if (p->stopping)
        flush_deletes(p);
}

static const struct weir_poller_ops redis_ops = {
    .new = redis_new,
    .info = redis_info,
    .start = redis_start,
    .resume = redis_resume,
    .settle = redis_settle,
    .stop = redis_stop,
    .free = redis_free,
};

const struct weir_source weir_source_redis = {
    .config =
        {
            .name = "redis",
            .scheme = "redis",
            .example_uri = "redis://127.0.0.1:6379/0/orders",
            .keys = redis_keys,
            .n_keys = sizeof(redis_keys) / sizeof(*redis_keys),
            .settings_size = sizeof(struct weir_redis_settings),
            .default_batch_size = 10,
            .max_batch_size = 10000,
            .default_window_ms = 0,
            .validate = redis_validate,
        },
    .format = &weir_format_sqs,
    .delivery = WEIR_DELIVERY_QUEUE,
    .ops = &redis_ops,
};
