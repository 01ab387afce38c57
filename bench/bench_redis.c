/* The Redis source benchmark: N 100-byte messages through weir to a null HTTP function, each run
 * beside the raw rate of the same work without weir, measured in the same run on the same machine:
 * batch 1 (concurrency 16 unless --concurrency) beside a plain HTTP client POSTing the same event
 * to the same function; batch 10 and 100 beside the claim and delete scripts driven by a plain
 * client; a FIFO queue (batch 10, many groups) beside its FIFO scripts, with the function checking
 * that every group arrived in order and was never in two invocations at once. Owns its
 * redis-server, its weir children and the null function (a thread of this process). It is a program
 * that prints figures, never a test: it fails only when the benchmark broke. */
#define _GNU_SOURCE /* memmem, nftw, strcasestr */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "bench/common.h"
#include "bench/nullfn.h"
#include "core/buf.h"
#include "core/mem.h"
#include "core/status.h"
#include "model/event.h"
#include "model/record.h"
#include "pollers/redis.h"

#define BODY_LEN          100
#define VALUE_MAX         (BODY_LEN + 64) /* a list element: the body, or a FIFO envelope around it */
#define PRELOAD_CHUNK     1000            /* values per RPUSH while preloading */
#define STALL_LIMIT_US    (30 * 1000000LL)
#define QUEUE_KEY         "bench:q"
#define RAW_QUEUE_KEY     "bench:raw"
#define FIFO_KEY          "bench:fifo.fifo" /* the .fifo suffix makes it a FIFO queue */
#define RAW_FIFO_KEY      "bench:rawfifo.fifo"
#define RTT_PROBES        1000  /* push->claim round trips measured without weir */
#define LEASE_MS          60000 /* the visibility_timeout (60 s) the weir runs are configured with */
#define FIFO_BATCH        10    /* AWS's largest batch for a FIFO queue */
#define FIFO_INGEST       1000  /* pollers/redis.c's FIFO_INGEST_MAX: moved into groups per claim */
#define SMALL_CONCURRENCY 16    /* batch 1 and FIFO, unless --concurrency says otherwise */
/* The function is named "function", so weir's URL rule gives it the path the raw client uses. */
#define FN_NAME     "function"
#define INVOKE_PATH "/2015-03-31/functions/" FN_NAME "/invocations"

struct options {
    long messages;
    int batches[8];
    int n_batches;
    char weir[PATH_MAX];
    const char *redis_server;
    int concurrency; /* scaling_config.maximum_concurrency; 0 = the default of each run */
    int latency_rate;
    int latency_seconds;
    bool fifo;
    long fifo_groups;
};

/* ---- the children killed on a signal ------------------------------------------------------- */

/* Children are killed from the signal handler too, so an interrupted run leaves no server. */
static volatile pid_t redis_pid_g = -1;
static volatile pid_t weir_pid_g = -1;

static void on_signal(int sig)
{
    if (weir_pid_g > 0)
        kill(weir_pid_g, SIGKILL);
    if (redis_pid_g > 0)
        kill(redis_pid_g, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* ---- redis-server ---------------------------------------------------------------------------- */

struct server {
    pid_t pid;
    int port;
    char version[32];
};

static redisContext *rconnect(int port)
{
    struct timeval tv = {.tv_sec = 10}; /* connect and, in hiredis 0.14, every reply */
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c && c->err) {
        redisFree(c);
        return NULL;
    }
    return c;
}

static int server_start(struct server *s, const char *exe, const char *dir)
{
    char port[16], log[PATH_MAX + 16];
    s->port = free_port();
    snprintf(port, sizeof port, "%d", s->port);
    snprintf(log, sizeof log, "%s/redis.log", dir);
    char *argv[] = {(char *)exe,    "--port", port,    "--bind",    "127.0.0.1", "--save", "",
                    "--appendonly", "no",     "--dir", (char *)dir, "--logfile", log,      NULL};
    s->pid = spawn(argv, log);
    if (s->pid < 0) {
        say("cannot start %s: %s", exe, strerror(errno));
        return -1;
    }
    redis_pid_g = s->pid;
    int64_t deadline = mono_us() + 10 * 1000000LL;
    while (mono_us() < deadline) {
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            say("%s exited during start-up (see %s)", exe, log);
            s->pid = -1;
            redis_pid_g = -1;
            return -1;
        }
        redisContext *c = rconnect(s->port);
        if (c) {
            redisReply *r = redisCommand(c, "PING");
            bool up = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
            freeReplyObject(r);
            if (up) {
                r = redisCommand(c, "INFO server");
                const char *v =
                    r && r->type == REDIS_REPLY_STRING ? strstr(r->str, "redis_version:") : NULL;
                snprintf(s->version, sizeof s->version, "?");
                if (v)
                    sscanf(v + 14, "%31[^\r\n]", s->version);
                freeReplyObject(r);
                redisFree(c);
                return 0;
            }
            redisFree(c);
        }
        sleep_us(20000);
    }
    say("redis-server on port %d did not answer PING within 10 s", s->port);
    return -1;
}

static void server_stop(struct server *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    if (wait_child(s->pid, 5 * 1000000LL) < 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
    }
    s->pid = -1;
    redis_pid_g = -1;
}

/* Runs one command and checks that it did not fail. */
static int rdo(redisContext *c, const char *what, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        say("%s: %s", what, r ? r->str : c->errstr);
        freeReplyObject(r);
        return -1;
    }
    freeReplyObject(r);
    return 0;
}

/* A message body: push time (wall-clock microseconds) and sequence number, padded to 100 bytes.
 * Only digits, spaces and dots, so it reaches the function verbatim inside a JSON string. */
static void make_body(char out[BODY_LEN], int64_t push_us, long seq)
{
    char head[48];
    int n = snprintf(head, sizeof head, "%020" PRId64 " %010ld ", push_us, seq);
    memset(out, '.', BODY_LEN);
    memcpy(out, head, (size_t)n);
}

/* A list element for message seq: its body, or for a FIFO queue (groups > 0) the envelope
 * {"weir":1,"body":"...","group":"g0042"}, message seq going to group seq % groups (round-robin:
 * a group's messages are every groups-th of the sequence). Returns its length. */
static size_t make_value(char out[VALUE_MAX], int64_t push_us, long seq, long groups)
{
    if (groups <= 0) {
        make_body(out, push_us, seq);
        return BODY_LEN;
    }
    char body[BODY_LEN];
    make_body(body, push_us, seq);
    int n = snprintf(out, VALUE_MAX, "{\"weir\":1,\"body\":\"%.*s\",\"group\":\"g%04ld\"}",
                     BODY_LEN, body, seq % groups);
    return (size_t)n;
}

/* Pushes messages first..first+count-1 to key (FIFO envelopes when groups > 0), RPUSH of
 * PRELOAD_CHUNK values, 8 in flight. */
static int preload(redisContext *c, const char *key, long first, long count, long groups)
{
    size_t argc_max = PRELOAD_CHUNK + 2;
    const char **argv = weir_calloc(argc_max, sizeof *argv);
    size_t *argvlen = weir_calloc(argc_max, sizeof *argvlen);
    char *values = weir_malloc((size_t)PRELOAD_CHUNK * VALUE_MAX);
    int rc = -1, pending = 0;
    int64_t now = wall_us();
    argv[0] = "RPUSH";
    argvlen[0] = 5;
    argv[1] = key;
    argvlen[1] = strlen(key);
    for (long done = 0; done < count;) {
        long n = count - done < PRELOAD_CHUNK ? count - done : PRELOAD_CHUNK;
        for (long i = 0; i < n; i++) {
            argv[2 + i] = values + i * VALUE_MAX;
            argvlen[2 + i] = make_value(values + i * VALUE_MAX, now, first + done + i, groups);
        }
        /* hiredis copies the arguments into its output buffer, so the values can be reused. */
        redisAppendCommandArgv(c, (int)(n + 2), argv, argvlen);
        pending++;
        done += n;
        while (pending > 0 && (pending >= 8 || done == count)) {
            redisReply *r;
            if (redisGetReply(c, (void **)&r) != REDIS_OK || r->type == REDIS_REPLY_ERROR) {
                say("preload RPUSH: %s", r ? r->str : c->errstr);
                if (r)
                    freeReplyObject(r);
                goto fail;
            }
            freeReplyObject(r);
            pending--;
        }
    }
    rc = 0;
fail:
    free(values);
    free(argvlen);
    free(argv);
    return rc;
}

/* ---- scripts --------------------------------------------------------------------------------- */

struct script {
    const char *src;
    char sha[41];
};

static int script_load(redisContext *c, struct script *s)
{
    redisReply *r = redisCommand(c, "SCRIPT LOAD %s", s->src);
    if (!r || r->type != REDIS_REPLY_STRING) {
        say("SCRIPT LOAD: %s", r && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr);
        freeReplyObject(r);
        return -1;
    }
    snprintf(s->sha, sizeof s->sha, "%s", r->str);
    freeReplyObject(r);
    return 0;
}

/* ---- the null function: bench/nullfn.h's server, counting SQS records ---------------------- */

/* A request the function holds in a FIFO run: answered at the end of the loop turn, so requests
 * that arrive together are in flight at the function together. Its groups are held_groups[g0 ..
 * g0 + ng - 1]. */
struct held {
    struct nullfn_req *req;
    size_t g0, ng;
};

struct sqs_fn {
    struct nullfn srv;
    struct event *release_ev; /* FIFO runs: answers the held requests */
    /* Only the server thread touches these (between runs, nothing is held). */
    struct held *held;
    size_t n_held, cap_held;
    long *held_groups;
    size_t n_hg, cap_hg;

    pthread_mutex_t mu; /* guards everything below: the server thread writes, main reads */
    long capacity;      /* sequence numbers 0..capacity-1 are expected */
    uint8_t *seen;      /* one bit per sequence number */
    long unique, dups, bad, records, invocations;
    long target;        /* unique count at which t_target_us is taken */
    int64_t t_first_us; /* first receipt (wall clock) */
    int64_t t_target_us;
    long inv_at_target;
    long lat_base; /* sequence numbers >= lat_base are latency probes */
    int64_t *lat;  /* receipt - push, microseconds, indexed by seq - lat_base */
    long lat_cap;
    /* FIFO runs (groups > 0): message seq is in group g<seq % groups>. */
    long groups;
    long *last_seq;   /* per group: the highest seq received so far, -1 before the first */
    int *open;        /* per group: requests the function holds, not yet answered */
    long order_bad;   /* records that came after a later record of their group (or again) */
    long overlap_bad; /* requests holding a group that another held request already held */
    long group_bad;   /* records whose MessageGroupId is missing or not the one they were sent */
};

static long parse_digits(const char *p, int n, bool *ok)
{
    long v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            *ok = false;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* The group index of the record in [p, end): the digits of its "MessageGroupId":"g<digits>",
 * or -1. */
static long group_of(const char *p, const char *end)
{
    static const char key[] = "\"MessageGroupId\":\"g";
    const char *h = memmem(p, (size_t)(end - p), key, sizeof key - 1);
    if (!h)
        return -1;
    h += sizeof key - 1;
    long g = 0;
    int n = 0;
    for (; h < end && *h >= '0' && *h <= '9' && n < 9; h++, n++)
        g = g * 10 + (*h - '0');
    return n > 0 && h < end && *h == '"' ? g : -1;
}

/* FIFO: the order of seq in its group, and the group in this request's list (once). Called with
 * mu held. */
static void fifo_check(struct sqs_fn *f, long seq, const char *rec, const char *rec_end, size_t g0)
{
    long g = group_of(rec, rec_end);
    if (g < 0 || g != seq % f->groups) {
        f->group_bad++;
        return;
    }
    if (seq <= f->last_seq[g])
        f->order_bad++;
    else
        f->last_seq[g] = seq;
    for (size_t i = g0; i < f->n_hg; i++)
        if (f->held_groups[i] == g)
            return;
    if (f->n_hg == f->cap_hg) {
        f->cap_hg = f->cap_hg ? 2 * f->cap_hg : 256;
        f->held_groups = weir_realloc(f->held_groups, f->cap_hg * sizeof *f->held_groups);
    }
    f->held_groups[f->n_hg++] = g;
}

/* Answers every request with 200 {} after counting the records of the SQS event. The event is
 * not parsed as JSON: finding each "body":" is enough, and keeps the function off the profile.
 * In a FIFO run the request is held until the end of the loop turn (see struct held). */
static void sqs_fn_handle(struct nullfn_req *req, const char *p, size_t len, void *arg)
{
    struct nullfn *srv = arg;
    struct sqs_fn *f = srv->arg;
    int64_t now = wall_us();
    const char *end = p + len;
    static const char needle[] = "\"body\":\"";
    const size_t nl = sizeof needle - 1;
    size_t g0 = f->n_hg;

    pthread_mutex_lock(&f->mu);
    f->invocations++;
    if (f->t_first_us == 0)
        f->t_first_us = now;
    for (const char *hit = memmem(p, len, needle, nl); hit;) {
        const char *rec = hit + nl;
        hit = memmem(rec, (size_t)(end - rec), needle, nl);
        const char *rec_end = hit ? hit : end;
        f->records++;
        bool ok = rec_end - rec >= 32 && rec[20] == ' ' && rec[31] == ' ';
        int64_t push = ok ? parse_digits(rec, 20, &ok) : 0;
        long seq = ok ? parse_digits(rec + 21, 10, &ok) : 0;
        if (!ok || seq >= f->capacity) {
            f->bad++;
            continue;
        }
        if (f->groups > 0)
            fifo_check(f, seq, rec, rec_end, g0);
        uint8_t bit = (uint8_t)(1u << (seq & 7));
        if (f->seen[seq >> 3] & bit) {
            f->dups++;
            continue;
        }
        f->seen[seq >> 3] |= bit;
        f->unique++;
        if (seq >= f->lat_base && seq - f->lat_base < f->lat_cap)
            f->lat[seq - f->lat_base] = now - push;
        if (f->unique == f->target) {
            f->t_target_us = now;
            f->inv_at_target = f->invocations;
        }
    }
    if (f->groups > 0)
        for (size_t i = g0; i < f->n_hg; i++)
            if (f->open[f->held_groups[i]]++ > 0)
                f->overlap_bad++;
    pthread_mutex_unlock(&f->mu);

    if (f->groups == 0) {
        nullfn_reply_ok(srv, req);
        return;
    }
    if (f->n_held == f->cap_held) {
        f->cap_held = f->cap_held ? 2 * f->cap_held : 64;
        f->held = weir_realloc(f->held, f->cap_held * sizeof *f->held);
    }
    f->held[f->n_held++] = (struct held){req, g0, f->n_hg - g0};
    /* Runs after the callbacks already active in this loop turn: the other requests that arrived
     * with this one are read (and held) first. */
    if (f->n_held == 1)
        event_active(f->release_ev, EV_TIMEOUT, 0);
}

static void sqs_fn_release_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sqs_fn *f = arg;
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->n_held; i++)
        for (size_t j = 0; j < f->held[i].ng; j++)
            f->open[f->held_groups[f->held[i].g0 + j]]--;
    pthread_mutex_unlock(&f->mu);
    for (size_t i = 0; i < f->n_held; i++)
        nullfn_reply_ok(&f->srv, f->held[i].req);
    f->n_held = 0;
    f->n_hg = 0;
}

static int sqs_fn_start(struct sqs_fn *f)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    if (nullfn_open(&f->srv, NULLFN_EVHTTP, sqs_fn_handle, f) != 0)
        return -1;
    f->release_ev = event_new(f->srv.base, -1, 0, sqs_fn_release_cb, f);
    return nullfn_run(&f->srv);
}

static void sqs_fn_stop(struct sqs_fn *f)
{
    nullfn_join(&f->srv);
    if (f->release_ev)
        event_free(f->release_ev);
    nullfn_stop(&f->srv);
    free(f->seen);
    free(f->lat);
    free(f->last_seq);
    free(f->open);
    free(f->held);
    free(f->held_groups);
    pthread_mutex_destroy(&f->mu);
}

/* Expects sequence numbers 0..capacity-1; probes from lat_base on; groups > 0 for a FIFO run.
 * Called with no sender. */
static void sqs_fn_reset(struct sqs_fn *f, long capacity, long target, long lat_base, long lat_cap,
                         long groups)
{
    pthread_mutex_lock(&f->mu);
    free(f->seen);
    free(f->lat);
    free(f->last_seq);
    free(f->open);
    f->capacity = capacity;
    f->seen = weir_calloc((size_t)capacity / 8 + 1, 1);
    f->unique = f->dups = f->bad = f->records = f->invocations = 0;
    f->target = target;
    f->t_first_us = f->t_target_us = 0;
    f->inv_at_target = 0;
    f->lat_base = lat_base;
    f->lat_cap = lat_cap;
    f->lat = weir_calloc((size_t)lat_cap + 1, sizeof *f->lat);
    f->groups = groups;
    f->last_seq = weir_malloc(((size_t)groups + 1) * sizeof *f->last_seq);
    for (long g = 0; g <= groups; g++)
        f->last_seq[g] = -1;
    f->open = weir_calloc((size_t)groups + 1, sizeof *f->open);
    f->order_bad = f->overlap_bad = f->group_bad = 0;
    pthread_mutex_unlock(&f->mu);
}

struct sqs_fn_view {
    long unique, dups, bad, records, invocations, inv_at_target;
    int64_t t_first_us, t_target_us;
    long order_bad, overlap_bad, group_bad;
};

static struct sqs_fn_view sqs_fn_read(struct sqs_fn *f)
{
    pthread_mutex_lock(&f->mu);
    struct sqs_fn_view v = {f->unique,      f->dups,          f->bad,        f->records,
                            f->invocations, f->inv_at_target, f->t_first_us, f->t_target_us,
                            f->order_bad,   f->overlap_bad,   f->group_bad};
    pthread_mutex_unlock(&f->mu);
    return v;
}

/* ---- figures --------------------------------------------------------------------------------- */

/* What a run compares weir with. */
enum run_kind {
    RUN_POST, /* batch 1: a plain HTTP client POSTing the same event to the same function */
    RUN_STD,  /* the claim and delete scripts, driven by a plain client */
    RUN_FIFO, /* the FIFO claim and delete scripts, driven by a plain client */
};

enum { RAW_BEFORE, RAW_AFTER, RAW_PINNED };

struct result {
    enum run_kind kind;
    int batch;
    int window;
    int concurrency; /* scaling_config.maximum_concurrency; 0 = weir's default */
    long groups;     /* RUN_FIFO: message groups */
    char label[32];  /* "batch 10", "fifo batch 10": for progress lines and file names */
    /* Raw rate without weir, records/s (requests/s for RUN_POST): [RAW_BEFORE] and [RAW_AFTER]
     * weir's drain where the scheduler puts them (the two tell how much the machine drifted),
     * [RAW_PINNED] with the client and redis-server on one CPU (not for RUN_POST). */
    double raw_rps[3];
    double raw_cpu_redis[3];  /* redis-server's CPU share during the raw loop (1.0 = one core) */
    double raw_cpu_client[2]; /* RUN_POST: the client thread's CPU share */
    double raw_cpu_fn[2];     /* RUN_POST: the function thread's CPU share */
    double raw_default;       /* mean of before and after */
    double raw_best;          /* the best of the raw figures: the one weir is judged against */
    double weir_rps;          /* through weir, records/s */
    double weir_ips;          /* invocations/s */
    long dups;
    long order_bad, overlap_bad, group_bad;        /* RUN_FIFO: what the function saw break */
    double cpu_weir, cpu_redis, cpu_fn, elapsed_s; /* during the drain */
    bool has_lat;
    struct pct lat;
    long rss_kb;
    long log_lines;
};

struct ctx {
    struct options *opt;
    struct server srv;
    struct sqs_fn fn;
    redisContext *c;
    char dir[256]; /* short, so every file name below it fits PATH_MAX */
};

/* ---- the raw claim, without weir ------------------------------------------------------------- */

/* The claim and delete scripts weir's poller runs, taken from its own header with the KEYS and
 * ARGV pollers/redis.c builds (send_claim, add_delete), so the raw figure is the same
 * server-side work without weir around it. A list named *.fifo takes the FIFO scripts. */
struct claimer {
    redisContext *c;
    struct script claim, del;
    struct weir_redis_keys keys;
    char prefix[25];
    bool fifo;
};

static int claimer_init(struct claimer *k, redisContext *c, int port, const char *list)
{
    char uri[256];
    struct weir_redis_uri u;
    struct weir_err err;
    snprintf(uri, sizeof uri, "redis://127.0.0.1:%d/0/%s", port, list);
    if (weir_redis_uri_parse(uri, &u, &err) != WEIR_OK) {
        say("%s: %s", uri, err.msg);
        return -1;
    }
    weir_redis_lease_prefix(&u, k->prefix);
    weir_redis_uri_deinit(&u);
    weir_redis_keys_init(&k->keys, list);
    k->c = c;
    k->fifo = weir_redis_key_is_fifo(list);
    k->claim.src = weir_redis_script_text(k->fifo ? WEIR_REDIS_CLAIM_FIFO : WEIR_REDIS_CLAIM);
    k->del.src = weir_redis_script_text(k->fifo ? WEIR_REDIS_DELETE_FIFO : WEIR_REDIS_DELETE);
    if (script_load(c, &k->claim) != 0 || script_load(c, &k->del) != 0) {
        weir_redis_keys_deinit(&k->keys);
        return -1;
    }
    return 0;
}

static void claimer_deinit(struct claimer *k)
{
    weir_redis_keys_deinit(&k->keys);
}

/* Index of the first lease id in a claim reply: {now, id1, element1, ...}, or for a FIFO queue
 * {now, duplicates, {refusals}, more, id1, element1, ...}. */
static size_t claimer_first(const struct claimer *k)
{
    return k->fifo ? 4 : 1;
}

static redisReply *fifo_claim(struct claimer *k, int batch)
{
    /* send_claim's layout for n = batch, so one group (groups = n / batch_size). KEYS: list,
     * inflight, leases, seq, fifo seq, ready, busy, dedup, where refusals go (the parked list:
     * no dead-letter list). ARGV: n, lease ms, lease id prefix (weir salts its prefix per
     * connection; same length), per group, groups, ingest, group list prefix, dedup window,
     * message id prefix. */
    char n[16], lease[16], gmax[16], groups[16], ingest[16], window[16];
    snprintf(n, sizeof n, "%d", batch);
    snprintf(lease, sizeof lease, "%d", LEASE_MS);
    snprintf(gmax, sizeof gmax, "%d", batch);
    snprintf(groups, sizeof groups, "%d", 1);
    snprintf(ingest, sizeof ingest, "%d", FIFO_INGEST);
    snprintf(window, sizeof window, "%d", WEIR_REDIS_DEDUP_WINDOW_MS);
    const char *argv[] = {"EVALSHA",
                          k->claim.sha,
                          "9",
                          k->keys.list,
                          k->keys.inflight,
                          k->keys.leases,
                          k->keys.seq,
                          k->keys.fifo_seq,
                          k->keys.ready,
                          k->keys.busy,
                          k->keys.dedup,
                          k->keys.parked,
                          n,
                          lease,
                          k->prefix,
                          gmax,
                          groups,
                          ingest,
                          k->keys.group_prefix,
                          window,
                          k->prefix};
    size_t len[sizeof argv / sizeof *argv];
    for (size_t i = 0; i < sizeof argv / sizeof *argv; i++)
        len[i] = strlen(argv[i]);
    return redisCommandArgv(k->c, (int)(sizeof argv / sizeof *argv), argv, len);
}

/* One claim of up to batch messages. *out is the reply; *n the number of messages in it. */
static int claimer_claim(struct claimer *k, int batch, redisReply **out, size_t *n)
{
    redisReply *r = k->fifo ? fifo_claim(k, batch)
                            : redisCommand(k->c, "EVALSHA %s 4 %s %s %s %s %d %d %s", k->claim.sha,
                                           k->keys.list, k->keys.inflight, k->keys.leases,
                                           k->keys.seq, batch, LEASE_MS, k->prefix);
    size_t first = claimer_first(k);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < first ||
        (r->elements - first) % 2 != 0) {
        say("claim: %s", r && r->type == REDIS_REPLY_ERROR ? r->str
                         : r                               ? "unexpected reply"
                                                           : k->c->errstr);
        freeReplyObject(r);
        return -1;
    }
    if (k->fifo && r->element[2]->type == REDIS_REPLY_ARRAY && r->element[2]->elements > 0) {
        say("FIFO claim refused a message: %s", r->element[2]->element[0]->str);
        freeReplyObject(r);
        return -1;
    }
    *out = r;
    *n = (r->elements - first) / 2;
    return 0;
}

/* The group of a claimed FIFO element ("group":"g0042" as the claim script encodes it), or "". */
static void element_group(const redisReply *el, const char **grp, size_t *len)
{
    static const char key[] = "\"group\":\"";
    const char *h = memmem(el->str, el->len, key, sizeof key - 1);
    *grp = "";
    *len = 0;
    if (!h)
        return;
    h += sizeof key - 1;
    const char *q = memchr(h, '"', el->len - (size_t)(h - el->str));
    if (q) {
        *grp = h;
        *len = (size_t)(q - h);
    }
}

/* Deletes what one claim leased, as weir settles a batch whose records are all done
 * (add_delete's layout: a FIFO delete names each lease's group, so the group is unlocked). */
static int claimer_delete(struct claimer *k, const redisReply *claimed)
{
    size_t first = claimer_first(k), n = (claimed->elements - first) / 2;
    size_t fixed = k->fifo ? 8 : 5, per = k->fifo ? 2 : 1;
    const char **argv = weir_calloc(fixed + per * n, sizeof *argv);
    size_t *len = weir_calloc(fixed + per * n, sizeof *len);
    argv[0] = "EVALSHA";
    argv[1] = k->del.sha;
    if (k->fifo) {
        argv[2] = "4";
        argv[3] = k->keys.inflight;
        argv[4] = k->keys.leases;
        argv[5] = k->keys.busy;
        argv[6] = k->keys.ready;
        argv[7] = k->keys.group_prefix;
    } else {
        argv[2] = "2";
        argv[3] = k->keys.inflight;
        argv[4] = k->keys.leases;
    }
    for (size_t i = 0; i < fixed; i++)
        len[i] = strlen(argv[i]);
    for (size_t i = 0; i < n; i++) {
        const redisReply *id = claimed->element[first + 2 * i];
        argv[fixed + per * i] = id->str;
        len[fixed + per * i] = id->len;
        if (k->fifo)
            element_group(claimed->element[first + 2 * i + 1], &argv[fixed + per * i + 1],
                          &len[fixed + per * i + 1]);
    }
    redisReply *r = redisCommandArgv(k->c, (int)(fixed + per * n), argv, len);
    const redisReply *count =
        r && k->fifo && r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? r->element[0] : r;
    int rc = 0;
    if (!count || count->type != REDIS_REPLY_INTEGER || count->integer != (long long)n) {
        say("delete: %s", r && r->type == REDIS_REPLY_ERROR ? r->str
                          : r                               ? "deleted fewer leases than claimed"
                                                            : k->c->errstr);
        rc = -1;
    }
    freeReplyObject(r);
    free(len);
    free(argv);
    return rc;
}

/* Raw push->claim round trip: RPUSH on one connection, then at once the claim on another. This
 * is the floor for any poller's latency on this server. */
static int raw_push_claim_rtt(struct ctx *x, int64_t *out)
{
    int rc = -1;
    bool inited = false;
    struct claimer k;
    redisContext *c2 = rconnect(x->srv.port);
    if (!c2 || claimer_init(&k, c2, x->srv.port, RAW_QUEUE_KEY) != 0)
        goto fail;
    inited = true;
    for (int i = 0; i < RTT_PROBES; i++) {
        char body[BODY_LEN];
        redisReply *got;
        size_t n;
        int64_t t0 = mono_us();
        make_body(body, wall_us(), i);
        if (rdo(x->c, "RPUSH", "RPUSH %s %b", RAW_QUEUE_KEY, body, (size_t)BODY_LEN) != 0 ||
            claimer_claim(&k, 10, &got, &n) != 0)
            goto fail;
        out[i] = mono_us() - t0;
        int d = n == 1 ? claimer_delete(&k, got) : -1;
        freeReplyObject(got);
        if (n != 1)
            say("push->claim probe: the claim returned %zu messages, not 1", n);
        if (d != 0)
            goto fail;
    }
    rc = rdo(x->c, "FLUSHALL", "FLUSHALL");
fail:
    if (inited)
        claimer_deinit(&k);
    if (c2)
        redisFree(c2);
    return rc;
}

/* Claim + delete on one connection, one batch at a time, until the preloaded list is empty:
 * the server work of one weir poller, without weir. */

/* Puts thread/process id (0: the calling thread) on the given CPUs. */
static void set_cpus(pid_t id, const cpu_set_t *set)
{
    if (sched_setaffinity(id, sizeof *set, set) != 0)
        say("sched_setaffinity: %s", strerror(errno));
}

static int run_raw(struct ctx *x, struct result *res, int which)
{
    long n = x->opt->messages, got = 0;
    struct claimer k;
    int rc = -1;
    const char *key = res->kind == RUN_FIFO ? RAW_FIFO_KEY : RAW_QUEUE_KEY;
    if (rdo(x->c, "FLUSHALL", "FLUSHALL") != 0)
        return -1;
    static const char *const what[] = {"before weir", "after weir",
                                       "client and redis-server on one CPU"};
    say("%s: preloading %ld messages for the raw claim (%s)", res->label, n, what[which]);
    if (preload(x->c, key, 0, n, res->kind == RUN_FIFO ? res->groups : 0) != 0 ||
        claimer_init(&k, x->c, x->srv.port, key) != 0)
        return -1;
    /* On a virtual machine, a synchronous round trip between two CPUs pays for waking the other
     * vCPU twice; on one CPU it does not. Both placements are measured, and weir is held to the
     * faster. */
    cpu_set_t all, one;
    CPU_ZERO(&one);
    sched_getaffinity(0, sizeof all, &all);
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
        if (CPU_ISSET(cpu, &all)) {
            CPU_SET(cpu, &one);
            break;
        }
    if (which == RAW_PINNED) {
        set_cpus(0, &one);
        set_cpus(x->srv.pid, &one);
    }
    double cpu0 = pid_cpu(x->srv.pid);
    int64_t t0 = mono_us();
    for (;;) {
        redisReply *r;
        size_t m;
        if (claimer_claim(&k, res->batch, &r, &m) != 0)
            goto fail;
        int d = m ? claimer_delete(&k, r) : 0;
        freeReplyObject(r);
        if (d != 0)
            goto fail;
        if (m == 0)
            break;
        got += (long)m;
    }
    double el = (double)(mono_us() - t0) / 1e6;
    double cpu1 = pid_cpu(x->srv.pid);
    if (which == RAW_PINNED) {
        set_cpus(0, &all);
        set_cpus(x->srv.pid, &all);
    }
    if (got != n) {
        say("the raw claim returned %ld messages of %ld preloaded", got, n);
        goto fail;
    }
    res->raw_rps[which] = (double)n / el;
    res->raw_cpu_redis[which] = (cpu1 - cpu0) / el;
    say("%s: raw claim+delete %.0f rec/s", res->label, res->raw_rps[which]);
    rc = rdo(x->c, "FLUSHALL", "FLUSHALL");
fail:
    claimer_deinit(&k);
    return rc;
}

/* ---- the raw POST rate, without weir --------------------------------------------------------- */

/* The request weir sends for one record of a 100-byte message: the event built by weir's own
 * element parser and SQS encoder (same ids, ARN and attributes, so the same size), behind the
 * headers libcurl sends for weir. *seq_at is the offset of the message's 10 sequence digits,
 * which the client rewrites for every request. The caller frees the result. */
static char *post_request(const struct ctx *x, size_t *len, size_t *seq_at)
{
    char uri[256], lease[40], body[BODY_LEN];
    struct weir_redis_uri u;
    struct weir_err err;
    struct weir_record *r = NULL;
    struct weir_buf ev, req;
    char *out = NULL;
    snprintf(uri, sizeof uri, "redis://127.0.0.1:%d/0/" QUEUE_KEY, x->srv.port);
    if (weir_redis_uri_parse(uri, &u, &err) != WEIR_OK) {
        say("%s: %s", uri, err.msg);
        return NULL;
    }
    char *arn = weir_redis_source_arn(&u, "us-east-1");
    weir_redis_lease_prefix(&u, lease);
    snprintf(lease + 24, sizeof lease - 24, "%012x", 1);
    weir_redis_uri_deinit(&u);
    make_body(body, wall_us(), 0);
    weir_buf_init(&ev);
    weir_buf_init(&req);
    if (weir_redis_parse_element(body, BODY_LEN, lease, wall_us() / 1000, &weir_format_sqs, &r,
                                 &err) != WEIR_OK) {
        say("the event for the raw POST: %s", err.msg);
        goto done;
    }
    const struct weir_encoder *enc = weir_format_sqs.encoder;
    struct weir_event_ctx ectx = {.source_arn = arn, .region = "us-east-1"};
    enc->open(&ev, &ectx, NULL);
    enc->append(&ev, &ectx, r, 1);
    enc->close(&ev, &ectx);
    weir_buf_printf(&req,
                    "POST " INVOKE_PATH " HTTP/1.1\r\n"
                    "Host: 127.0.0.1:%d\r\n"
                    "User-Agent: weir/" WEIR_VERSION "\r\n"
                    "Accept: */*\r\n"
                    "Content-Type: application/json\r\n"
                    "X-Amz-Invocation-Type: RequestResponse\r\n"
                    "Content-Length: %zu\r\n\r\n",
                    x->fn.srv.port, ev.len);
    static const char needle[] = "\"body\":\"";
    const char *b = memmem(ev.data, ev.len, needle, sizeof needle - 1);
    *seq_at = req.len + (size_t)(b - ev.data) + sizeof needle - 1 + 21;
    weir_buf_append(&req, ev.data, ev.len);
    out = weir_buf_take(&req, len);
done:
    weir_record_free(r);
    weir_buf_deinit(&ev);
    weir_buf_deinit(&req);
    free(arn);
    return out;
}

/* One keep-alive connection of the raw client: one request in flight at a time. */
struct post_conn {
    int fd;
    char *req; /* this connection's copy of the request */
    size_t off;
    bool sending;
    char in[1024];
    size_t in_len;
};

static int post_send(struct post_conn *pc, int ep, size_t len)
{
    while (pc->off < len) {
        ssize_t w = send(pc->fd, pc->req + pc->off, len - pc->off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            if (!pc->sending) {
                struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = pc};
                epoll_ctl(ep, EPOLL_CTL_MOD, pc->fd, &ev);
                pc->sending = true;
            }
            return 0;
        }
        if (w < 0) {
            say("raw POST: send: %s", strerror(errno));
            return -1;
        }
        pc->off += (size_t)w;
    }
    if (pc->sending) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = pc};
        epoll_ctl(ep, EPOLL_CTL_MOD, pc->fd, &ev);
        pc->sending = false;
    }
    return 0;
}

/* Starts request seq on pc: its sequence digits, then as much as the socket takes. */
static int post_start(struct post_conn *pc, int ep, size_t len, size_t seq_at, long seq)
{
    for (int i = 9; i >= 0; i--, seq /= 10)
        pc->req[seq_at + (size_t)i] = (char)('0' + seq % 10);
    pc->off = 0;
    pc->in_len = 0;
    return post_send(pc, ep, len);
}

/* 1 when pc->in holds a whole 200 response, 0 when more is to come, -1 on anything else. */
static int post_response(struct post_conn *pc)
{
    pc->in[pc->in_len] = 0;
    const char *eoh = strstr(pc->in, "\r\n\r\n");
    if (!eoh)
        return pc->in_len + 1 < sizeof pc->in ? 0 : -1;
    const char *cl = strcasestr(pc->in, "\r\ncontent-length:");
    long body = cl && cl < eoh ? strtol(cl + 17, NULL, 10) : 0;
    size_t total = (size_t)(eoh + 4 - pc->in) + (size_t)body;
    if (pc->in_len < total)
        return total < sizeof pc->in ? 0 : -1;
    if (strncmp(pc->in, "HTTP/1.1 200 ", 13) != 0 || pc->in_len > total) {
        say("raw POST: unexpected response: %.40s", pc->in);
        return -1;
    }
    return 1;
}

/* The raw request rate of the null function: `concurrency` keep-alive HTTP/1.1 connections, each
 * POSTing the one-record event and reading the whole response before the next, until N
 * requests are answered. No weir, no Redis: the ceiling of batch 1 on this machine. */
static int run_post(struct ctx *x, struct result *res, int which)
{
    long n = x->opt->messages, next = 0, done = 0;
    int c = res->concurrency, ep = -1, rc = -1;
    size_t len = 0, seq_at = 0;
    char *req = post_request(x, &len, &seq_at);
    struct post_conn *pcs = weir_calloc((size_t)c, sizeof *pcs);
    for (int i = 0; i < c; i++)
        pcs[i].fd = -1;
    if (!req)
        goto fail;
    sqs_fn_reset(&x->fn, n, n, n, 0, 0);
    ep = epoll_create1(0);
    say("%s: raw POST to the function, %d connections, %ld requests (%s)", res->label, c, n,
        which == RAW_BEFORE ? "before weir" : "after weir");
    for (int i = 0; i < c; i++) {
        struct post_conn *pc = &pcs[i];
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)x->fn.srv.port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int one = 1;
        pc->fd = socket(AF_INET, SOCK_STREAM, 0);
        if (pc->fd < 0 || connect(pc->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            say("raw POST: connect: %s", strerror(errno));
            goto fail;
        }
        /* As libcurl does: no Nagle delay on a request written in pieces. */
        setsockopt(pc->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(pc->fd, F_SETFL, fcntl(pc->fd, F_GETFL) | O_NONBLOCK);
        pc->req = weir_malloc(len);
        memcpy(pc->req, req, len);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = pc};
        epoll_ctl(ep, EPOLL_CTL_ADD, pc->fd, &ev);
    }
    char fn_stat[64];
    snprintf(fn_stat, sizeof fn_stat, "/proc/self/task/%d/stat", (int)x->fn.srv.tid);
    struct timespec cpu0, cpu1;
    double fn0 = cpu_seconds(fn_stat);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu0);
    int64_t t0 = mono_us(), last_progress = t0;
    for (int i = 0; i < c && next < n; i++)
        if (post_start(&pcs[i], ep, len, seq_at, next++) != 0)
            goto fail;
    while (done < n) {
        struct epoll_event evs[64];
        int k = epoll_wait(ep, evs, 64, 1000);
        if (k < 0 && errno != EINTR) {
            say("raw POST: epoll_wait: %s", strerror(errno));
            goto fail;
        }
        if (k <= 0 && mono_us() - last_progress > STALL_LIMIT_US) {
            say("raw POST: no response for %lld s (%ld of %ld answered)", STALL_LIMIT_US / 1000000,
                done, n);
            goto fail;
        }
        for (int e = 0; e < k; e++) {
            struct post_conn *pc = evs[e].data.ptr;
            if ((evs[e].events & EPOLLOUT) && post_send(pc, ep, len) != 0)
                goto fail;
            if (!(evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                continue;
            ssize_t got = recv(pc->fd, pc->in + pc->in_len, sizeof pc->in - 1 - pc->in_len, 0);
            if (got < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (got <= 0) {
                say("raw POST: the function closed a connection (%s)",
                    got < 0 ? strerror(errno) : "EOF");
                goto fail;
            }
            pc->in_len += (size_t)got;
            int r = post_response(pc);
            if (r < 0)
                goto fail;
            if (r == 0)
                continue;
            done++;
            last_progress = mono_us();
            if (next < n && post_start(pc, ep, len, seq_at, next++) != 0)
                goto fail;
        }
    }
    int64_t t1 = mono_us();
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu1);
    double el = (double)(t1 - t0) / 1e6;
    struct sqs_fn_view v = sqs_fn_read(&x->fn);
    if (v.unique != n || v.dups != 0 || v.bad != 0) {
        say("raw POST: the function counted %ld distinct events of %ld (%ld duplicates, %ld "
            "unreadable)",
            v.unique, n, v.dups, v.bad);
        goto fail;
    }
    res->raw_rps[which] = (double)n / el;
    res->raw_cpu_client[which] =
        ((double)(cpu1.tv_sec - cpu0.tv_sec) + (double)(cpu1.tv_nsec - cpu0.tv_nsec) / 1e9) / el;
    res->raw_cpu_fn[which] = (cpu_seconds(fn_stat) - fn0) / el;
    say("%s: raw POST %.0f req/s", res->label, res->raw_rps[which]);
    rc = 0;
fail:
    for (int i = 0; i < c; i++) {
        if (pcs[i].fd >= 0)
            close(pcs[i].fd);
        free(pcs[i].req);
    }
    free(pcs);
    free(req);
    if (ep >= 0)
        close(ep);
    return rc;
}

/* ---- one weir phase -------------------------------------------------------------------------- */

static int write_config(const struct ctx *x, const struct result *res, const char *key, char *path,
                        size_t path_len)
{
    snprintf(path, path_len, "%s/weir-%s.yaml", x->dir, res->label);
    for (char *c = strrchr(path, '/'); *c; c++)
        if (*c == ' ')
            *c = '-';
    FILE *f = fopen(path, "w");
    if (!f) {
        say("%s: %s", path, strerror(errno));
        return -1;
    }
    fprintf(f,
            "functions:\n"
            "  - name: " FN_NAME "\n"
            "    url: http://127.0.0.1:%d/\n"
            "    timeout: 30\n"
            "mappings:\n"
            "  - name: bench\n"
            "    source: redis://127.0.0.1:%d/0/%s\n"
            "    function: " FN_NAME "\n"
            "    batch_size: %d\n"
            "    maximum_batching_window_in_seconds: %d\n"
            "    visibility_timeout: 60\n",
            x->fn.srv.port, x->srv.port, key, res->batch, res->window);
    if (res->concurrency > 0)
        fprintf(f, "    scaling_config:\n      maximum_concurrency: %d\n", res->concurrency);
    fclose(f);
    return 0;
}

static long count_lines(const char *path, bool print)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[1024];
    long n = 0;
    while (fgets(line, sizeof line, f)) {
        if (print && n < 20)
            fprintf(stderr, "  weir| %s", line);
        n++;
    }
    fclose(f);
    return n;
}

/* Waits until the null function has seen `want` distinct messages. Fails when weir exits (then
 * *weir becomes -1: it was reaped) or nothing new arrives for STALL_LIMIT_US. first(arg) is
 * called once, as soon as the first record has arrived. */
static int await_unique(struct ctx *x, pid_t *weir, long want, void (*first)(void *), void *arg)
{
    long last = -1;
    int64_t last_progress = mono_us();
    bool had_first = false;
    for (;;) {
        struct sqs_fn_view v = sqs_fn_read(&x->fn);
        if (!had_first && v.records > 0) {
            had_first = true;
            if (first)
                first(arg);
        }
        if (v.unique >= want)
            return 0;
        if (v.unique != last) {
            last = v.unique;
            last_progress = mono_us();
        }
        int st;
        if (waitpid(*weir, &st, WNOHANG) == *weir) {
            *weir = -1;
            weir_pid_g = -1;
            say("weir exited early (%s %d) with %ld of %ld messages delivered",
                WIFEXITED(st) ? "status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
                v.unique, want);
            return -2;
        }
        if (mono_us() - last_progress > STALL_LIMIT_US) {
            say("no progress for %lld s: %ld of %ld messages delivered (lost or stuck; %ld "
                "records unreadable)",
                STALL_LIMIT_US / 1000000, v.unique, want, v.bad);
            return -1;
        }
        sleep_us(1000);
    }
}

struct cpu_mark {
    pid_t weir, redis;
    pid_t fn_tid;
    double weir0, redis0, fn0;
};

static void cpu_mark_take(void *arg)
{
    struct cpu_mark *m = arg;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)m->fn_tid);
    m->weir0 = pid_cpu(m->weir);
    m->redis0 = pid_cpu(m->redis);
    m->fn0 = cpu_seconds(path);
}

/* Pushes probes at a steady rate, one RPUSH each, body = push time; seq from first on. */
static long push_probes(struct ctx *x, long first, int rate, int seconds)
{
    long n = (long)rate * seconds;
    int64_t period_ns = 1000000000LL / rate;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (long i = 0; i < n; i++) {
        next.tv_nsec += period_ns;
        while (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
            ;
        char body[BODY_LEN];
        make_body(body, wall_us(), first + i);
        if (rdo(x->c, "probe RPUSH", "RPUSH %s %b", QUEUE_KEY, body, (size_t)BODY_LEN) != 0)
            return -1;
    }
    return n;
}

static int run_weir(struct ctx *x, struct result *res)
{
    struct options *o = x->opt;
    bool fifo = res->kind == RUN_FIFO;
    const char *key = fifo ? FIFO_KEY : QUEUE_KEY;
    /* A FIFO queue refuses plain bodies: the latency phase, which pushes them, is not run. */
    long n = o->messages, probes = fifo ? 0 : (long)o->latency_rate * o->latency_seconds;
    char cfg[PATH_MAX], log[PATH_MAX];
    pid_t pid = -1;
    int rc = -1;

    if (rdo(x->c, "FLUSHALL", "FLUSHALL") != 0)
        return -1;
    say("%s: preloading %ld messages for weir", res->label, n);
    if (preload(x->c, key, 0, n, fifo ? res->groups : 0) != 0)
        return -1;
    if (write_config(x, res, key, cfg, sizeof cfg) != 0)
        return -1;
    snprintf(log, sizeof log, "%s", cfg);
    snprintf(log + strlen(log) - 5, 6, ".log");
    sqs_fn_reset(&x->fn, n + probes, n, n, probes, fifo ? res->groups : 0);

    char *argv[] = {o->weir, "run", "-c", cfg, "--log-level", "warn", NULL};
    pid = spawn(argv, log);
    if (pid < 0) {
        say("cannot start %s: %s", o->weir, strerror(errno));
        return -1;
    }
    weir_pid_g = pid;
    say("%s: weir started (pid %d), draining", res->label, (int)pid);

    struct cpu_mark mark = {.weir = pid, .redis = x->srv.pid, .fn_tid = x->fn.srv.tid};
    if (await_unique(x, &pid, n, cpu_mark_take, &mark) != 0)
        goto fail;
    struct sqs_fn_view v = sqs_fn_read(&x->fn);
    char fn_stat[64];
    snprintf(fn_stat, sizeof fn_stat, "/proc/self/task/%d/stat", (int)x->fn.srv.tid);
    res->cpu_weir = pid_cpu(pid) - mark.weir0;
    res->cpu_redis = pid_cpu(x->srv.pid) - mark.redis0;
    res->cpu_fn = cpu_seconds(fn_stat) - mark.fn0;
    res->elapsed_s = (double)(v.t_target_us - v.t_first_us) / 1e6;
    if (res->elapsed_s <= 0)
        res->elapsed_s = 1e-6;
    res->weir_rps = (double)n / res->elapsed_s;
    res->weir_ips = (double)v.inv_at_target / res->elapsed_s;

    if (!fifo) {
        /* Latency: the queue is empty and weir is polling it; probes arrive at a steady rate. */
        say("%s: drained; latency probes %d msg/s for %d s", res->label, o->latency_rate,
            o->latency_seconds);
        if (push_probes(x, n, o->latency_rate, o->latency_seconds) != probes)
            goto fail;
        if (await_unique(x, &pid, n + probes, NULL, NULL) != 0)
            goto fail;
        pthread_mutex_lock(&x->fn.mu);
        res->lat = percentiles(x->fn.lat, probes);
        pthread_mutex_unlock(&x->fn.mu);
        res->has_lat = true;
    }
    v = sqs_fn_read(&x->fn);
    res->dups = v.dups;
    res->order_bad = v.order_bad;
    res->overlap_bad = v.overlap_bad;
    res->group_bad = v.group_bad;
    if (v.bad > 0) {
        say("the function received %ld records it could not read", v.bad);
        goto fail;
    }

    res->rss_kb = peak_rss_kb(pid);
    kill(pid, SIGTERM);
    int st = wait_child(pid, 15 * 1000000LL);
    if (st < 0) {
        say("weir did not stop within 15 s of SIGTERM");
        goto fail;
    }
    pid = -1;
    weir_pid_g = -1;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        say("weir exited with %s %d", WIFEXITED(st) ? "status" : "signal",
            WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        goto fail;
    }
    res->log_lines = count_lines(log, false);
    rc = 0;
fail:
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        weir_pid_g = -1;
    }
    if (rc != 0)
        count_lines(log, true);
    return rc;
}

/* ---- main ------------------------------------------------------------------------------------ */

static void usage(FILE *out)
{
    fputs("usage: bench_redis [--messages N] [--batch-sizes 1,10,100] [--weir PATH]\n"
          "                   [--redis-server PATH] [--concurrency C]\n"
          "                   [--latency-rate MSG_PER_S] [--latency-seconds S]\n"
          "                   [--no-fifo] [--fifo-groups N]\n",
          out);
}

static int parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"messages", required_argument, NULL, 'n'},
        {"batch-sizes", required_argument, NULL, 'b'},
        {"weir", required_argument, NULL, 'w'},
        {"redis-server", required_argument, NULL, 'r'},
        {"concurrency", required_argument, NULL, 'C'},
        {"latency-rate", required_argument, NULL, 'R'},
        {"latency-seconds", required_argument, NULL, 'S'},
        {"no-fifo", no_argument, NULL, 'F'},
        {"fifo-groups", required_argument, NULL, 'G'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    o->messages = 1000000;
    o->batches[0] = 1;
    o->batches[1] = 10;
    o->batches[2] = 100;
    o->n_batches = 3;
    o->redis_server = "redis-server";
    o->concurrency = 0;
    o->latency_rate = 2000;
    o->latency_seconds = 5;
    o->fifo = true;
    o->fifo_groups = 1000;
    o->weir[0] = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            o->messages = strtol(optarg, NULL, 10);
            break;
        case 'b':
            o->n_batches =
                parse_int_list(optarg, o->batches, (int)(sizeof o->batches / sizeof *o->batches));
            break;
        case 'w':
            snprintf(o->weir, sizeof o->weir, "%s", optarg);
            break;
        case 'r':
            o->redis_server = optarg;
            break;
        case 'C':
            o->concurrency = atoi(optarg);
            break;
        case 'R':
            o->latency_rate = atoi(optarg);
            break;
        case 'S':
            o->latency_seconds = atoi(optarg);
            break;
        case 'F':
            o->fifo = false;
            break;
        case 'G':
            o->fifo_groups = strtol(optarg, NULL, 10);
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (o->messages < 1 || o->messages > 100000000 || (o->n_batches == 0 && !o->fifo) ||
        o->latency_rate < 1 || o->latency_seconds < 1) {
        usage(stderr);
        return -1;
    }
    for (int i = 0; i < o->n_batches; i++)
        if (o->batches[i] < 1 || o->batches[i] > 10000) {
            fprintf(stderr, "bench_redis: batch sizes are 1..10000\n");
            return -1;
        }
    if (o->concurrency != 0 && (o->concurrency < 2 || o->concurrency > 1000)) {
        fprintf(stderr, "bench_redis: --concurrency is 2..1000 (maximum_concurrency's range)\n");
        return -1;
    }
    if (o->fifo_groups < 1 || o->fifo_groups > 1000000) {
        fprintf(stderr, "bench_redis: --fifo-groups is 1..1000000\n");
        return -1;
    }
    if (!o->weir[0]) {
        /* Default: the weir built next to this program. */
        char self[PATH_MAX - 8];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0)
            return -1;
        self[n] = 0;
        char *slash = strrchr(self, '/');
        *slash = 0;
        snprintf(o->weir, sizeof o->weir, "%s/weir", self);
    }
    return 0;
}

/* The 1-minute load average, so a reader can tell a quiet machine from a busy one. */
static const char *goal(bool met)
{
    return met ? "goal met" : "goal missed";
}

static void conc_str(const struct result *r, char *out, size_t len)
{
    if (r->concurrency > 0)
        snprintf(out, len, "concurrency=%d", r->concurrency);
    else
        snprintf(out, len, "concurrency=default");
}

static void report_raw(const struct result *r)
{
    if (r->kind == RUN_POST) {
        printf("raw POST rate (no weir) concurrency=%d  %.0f req/s  before weir %.0f, after %.0f "
               "(client cpu %.0f%%, %.0f%%; function cpu %.0f%%, %.0f%%)\n",
               r->concurrency, r->raw_best, r->raw_rps[RAW_BEFORE], r->raw_rps[RAW_AFTER],
               100 * r->raw_cpu_client[RAW_BEFORE], 100 * r->raw_cpu_client[RAW_AFTER],
               100 * r->raw_cpu_fn[RAW_BEFORE], 100 * r->raw_cpu_fn[RAW_AFTER]);
        return;
    }
    printf("%-31s batch=%-4d %9.0f rec/s  any CPU: before %.0f, after %.0f (redis cpu %.0f%%, "
           "%.0f%%)\n",
           r->kind == RUN_FIFO ? "raw FIFO claim+delete (no weir)" : "raw claim+delete (no weir)",
           r->batch, r->raw_default, r->raw_rps[RAW_BEFORE], r->raw_rps[RAW_AFTER],
           100 * r->raw_cpu_redis[RAW_BEFORE], 100 * r->raw_cpu_redis[RAW_AFTER]);
    printf("%-31s            %9.0f rec/s  client and redis on one CPU (redis cpu %.0f%%)\n", "",
           r->raw_rps[RAW_PINNED], 100 * r->raw_cpu_redis[RAW_PINNED]);
}

static void report_weir(const struct result *r)
{
    char conc[32], what[40];
    conc_str(r, conc, sizeof conc);
    snprintf(what, sizeof what, "through weir%s (window %d)", r->kind == RUN_FIFO ? ", FIFO" : "",
             r->window);
    printf("%-31s batch=%-4d %9.0f rec/s  %.0f inv/s  %s", what, r->batch, r->weir_rps, r->weir_ips,
           conc);
    if (r->kind == RUN_FIFO)
        printf(" groups=%ld", r->groups);
    if (r->kind == RUN_POST)
        printf("  ratio %.2f to the raw POST rate", r->weir_ips / r->raw_best);
    else
        printf("  ratio %.2f to the better raw (%.2f to any-CPU raw)", r->weir_rps / r->raw_best,
               r->weir_rps / r->raw_default);
    printf("  peak RSS %.1f MB\n", (double)r->rss_kb / 1024.0);
    printf("  cpu during the drain (%.2f s): weir %.0f%%  redis %.0f%%  function %.0f%%"
           "   duplicates %ld\n",
           r->elapsed_s, 100 * r->cpu_weir / r->elapsed_s, 100 * r->cpu_redis / r->elapsed_s,
           100 * r->cpu_fn / r->elapsed_s, r->dups);
    if (r->kind == RUN_FIFO) {
        long bad = r->order_bad + r->overlap_bad + r->group_bad;
        printf("  FIFO checks: %ld records out of order in their group, %ld invocations holding a "
               "group already held, %ld records with a wrong or missing MessageGroupId   %s\n",
               r->order_bad, r->overlap_bad, r->group_bad,
               bad ? "BROKEN: these figures measure a weir that breaks FIFO order" : "ok");
    }
}

static void report(const struct ctx *x, const struct result *res, int n, const struct pct *rtt,
                   double load0)
{
    const struct options *o = x->opt;
    printf("\nweir redis benchmark  messages=%ld body=%dB  redis %s  cores=%ld  "
           "load average %.2f before, %.2f after\n\n",
           o->messages, BODY_LEN, x->srv.version, sysconf(_SC_NPROCESSORS_ONLN), load0, loadavg());
    for (int i = 0; i < n; i++) {
        report_raw(&res[i]);
        report_weir(&res[i]);
    }
    printf("\n");
    for (int i = 0; i < n; i++) {
        const struct result *r = &res[i];
        if (!r->has_lat)
            continue;
        printf("latency push->function (window %d, batch %d, %d msg/s, n=%ld): p50 %.2f ms  "
               "p99 %.2f ms  max %.1f ms%s\n",
               r->window, r->batch, o->latency_rate, r->lat.n, r->lat.p50_ms, r->lat.p99_ms,
               r->lat.max_ms,
               r->window > 0 ? "  (the batch closes when full or after the window)" : "");
    }
    printf("raw push->claim without weir (RPUSH, then the claim on a second connection): "
           "p50 %.3f ms  p99 %.3f ms\n",
           rtt->p50_ms, rtt->p99_ms);
    long rss = 0;
    for (int i = 0; i < n; i++)
        if (res[i].rss_kb > rss)
            rss = res[i].rss_kb;
    printf("weir peak RSS: %.1f MB (VmHWM, largest of %d run%s)\n", (double)rss / 1024.0, n,
           n == 1 ? "" : "s");
    for (int i = 0; i < n; i++)
        if (res[i].log_lines > 0)
            printf("note: weir logged %ld warning/error line%s at %s (see its log)\n",
                   res[i].log_lines, res[i].log_lines == 1 ? "" : "s", res[i].label);

    printf("\ngoals:\n");
    const struct result *b1 = NULL, *b100 = NULL, *lat = NULL, *ff = NULL;
    for (int i = 0; i < n; i++) {
        const struct result *r = &res[i];
        if (r->kind == RUN_POST && !b1)
            b1 = r;
        if (r->kind == RUN_STD && r->batch == 100 && !b100)
            b100 = r;
        /* The latency goal is judged at batch 10 (window 0); else at the first window-0 run. */
        if (r->has_lat && r->window == 0 && (!lat || (r->batch == 10 && lat->batch != 10)))
            lat = r;
        if (r->kind == RUN_FIFO)
            ff = r;
    }
    if (b1) {
        double ratio = b1->weir_ips / b1->raw_best;
        printf("  ratio at batch 1 >= 0.40:              %.3f (weir inv/s to the raw POST rate, "
               "concurrency %d)   %s\n",
               ratio, b1->concurrency, goal(ratio >= 0.4));
    } else {
        printf("  ratio at batch 1 >= 0.40:              not measured (batch 1 not run)\n");
    }
    if (b100) {
        double ratio = b100->weir_rps / b100->raw_best;
        printf("  ratio at batch 100 >= 0.80 (aim 1.0):  %.3f (to the better raw)   %s%s\n", ratio,
               goal(ratio >= 0.8), ratio >= 1.0 ? ", aim reached" : "");
    } else {
        printf("  ratio at batch 100 >= 0.80 (aim 1.0):  not measured (batch 100 not run)\n");
    }
    if (lat)
        printf("  p50 latency at window 0 <= 1 ms:       %.2f ms (batch %d)   %s\n",
               lat->lat.p50_ms, lat->batch, goal(lat->lat.p50_ms <= 1.0));
    else
        printf("  p50 latency at window 0 <= 1 ms:       not measured (no batch size <= 10)\n");
    printf("  weir peak RSS <= 16 MB:                %.1f MB   %s\n", (double)rss / 1024.0,
           goal(rss <= 16 * 1024));
    if (ff) {
        long bad = ff->order_bad + ff->overlap_bad + ff->group_bad;
        printf("FIFO (no goal): %.0f rec/s, ratio %.3f to the better raw FIFO claim+delete; "
               "order and exclusivity %s\n",
               ff->weir_rps, ff->weir_rps / ff->raw_best,
               bad ? "BROKEN (see the FIFO checks above)" : "held (0 violations)");
    }
}

/* Runs one comparison: the raw figure before weir, weir, and the raw figure(s) after. */
static int run_one(struct ctx *x, struct result *r)
{
    if (r->kind == RUN_POST) {
        if (run_post(x, r, RAW_BEFORE) != 0 || run_weir(x, r) != 0 ||
            run_post(x, r, RAW_AFTER) != 0)
            return -1;
        r->raw_default = (r->raw_rps[RAW_BEFORE] + r->raw_rps[RAW_AFTER]) / 2;
        r->raw_best = r->raw_rps[RAW_BEFORE] > r->raw_rps[RAW_AFTER] ? r->raw_rps[RAW_BEFORE]
                                                                     : r->raw_rps[RAW_AFTER];
        say("%s: raw POST %.0f req/s (best), weir %.0f inv/s (ratio %.2f)", r->label, r->raw_best,
            r->weir_ips, r->weir_ips / r->raw_best);
        return 0;
    }
    if (run_raw(x, r, RAW_BEFORE) != 0 || run_weir(x, r) != 0 || run_raw(x, r, RAW_AFTER) != 0 ||
        run_raw(x, r, RAW_PINNED) != 0)
        return -1;
    r->raw_default = (r->raw_rps[RAW_BEFORE] + r->raw_rps[RAW_AFTER]) / 2;
    r->raw_best = r->raw_default > r->raw_rps[RAW_PINNED] ? r->raw_default : r->raw_rps[RAW_PINNED];
    say("%s: raw %.0f rec/s (best), weir %.0f rec/s (ratio %.2f)", r->label, r->raw_best,
        r->weir_rps, r->weir_rps / r->raw_best);
    return 0;
}

int main(int argc, char **argv)
{
    struct options opt;
    if (parse_args(argc, argv, &opt) != 0)
        return 2;
    if (access(opt.weir, X_OK) != 0) {
        fprintf(stderr, "bench_redis: %s: %s (build weir, or pass --weir PATH)\n", opt.weir,
                strerror(errno));
        return 2;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);

    struct ctx x = {.opt = &opt, .srv = {.pid = -1}};
    struct result res[9];
    memset(res, 0, sizeof res);
    struct pct rtt = {0};
    int64_t *rtt_v = NULL;
    int rc = 1, done = 0, runs = 0;
    bool fn_up = false;
    double load0 = loadavg();

    for (int i = 0; i < opt.n_batches; i++) {
        struct result *r = &res[runs++];
        r->batch = opt.batches[i];
        /* Batch 1 is compared with the function's raw POST rate, at concurrency 16 by default:
         * one message per invocation is bound by invocations, not by Redis. */
        r->kind = r->batch == 1 ? RUN_POST : RUN_STD;
        r->concurrency = opt.concurrency ? opt.concurrency : r->batch == 1 ? SMALL_CONCURRENCY : 0;
        /* AWS refuses a batch size above 10 with a window under 1 s for SQS. */
        r->window = r->batch > 10 ? 1 : 0;
        snprintf(r->label, sizeof r->label, "batch %d", r->batch);
    }
    if (opt.fifo) {
        struct result *r = &res[runs++];
        r->kind = RUN_FIFO;
        r->batch = FIFO_BATCH;
        r->window = 0; /* AWS takes no batching window for a FIFO queue, and neither does weir */
        r->concurrency = opt.concurrency ? opt.concurrency : SMALL_CONCURRENCY;
        r->groups = opt.fifo_groups;
        snprintf(r->label, sizeof r->label, "fifo batch %d", r->batch);
    }

    const char *tmp =
        getenv("TMPDIR") && strlen(getenv("TMPDIR")) < 200 ? getenv("TMPDIR") : "/tmp";
    snprintf(x.dir, sizeof x.dir, "%s/weir-bench-XXXXXX", tmp);
    if (!mkdtemp(x.dir)) {
        say("mkdtemp %s: %s", x.dir, strerror(errno));
        return 1;
    }
    if (server_start(&x.srv, opt.redis_server, x.dir) != 0)
        goto fail;
    x.c = rconnect(x.srv.port);
    if (!x.c) {
        say("cannot connect to redis-server on port %d", x.srv.port);
        goto fail;
    }
    if (sqs_fn_start(&x.fn) != 0)
        goto fail;
    fn_up = true;
    say("redis %s on port %d, null function on port %d, weir %s", x.srv.version, x.srv.port,
        x.fn.srv.port, opt.weir);

    rtt_v = weir_calloc(RTT_PROBES, sizeof *rtt_v);
    if (raw_push_claim_rtt(&x, rtt_v) != 0)
        goto fail;
    rtt = percentiles(rtt_v, RTT_PROBES);

    for (; done < runs; done++)
        if (run_one(&x, &res[done]) != 0)
            goto fail;
    rdo(x.c, "FLUSHALL", "FLUSHALL");
    report(&x, res, done, &rtt, load0);
    rc = 0;
    /* Measuring a weir that broke FIFO order is a failure of what was measured: the figures are
     * printed, and the exit status says so. */
    for (int i = 0; i < done; i++)
        if (res[i].order_bad + res[i].overlap_bad + res[i].group_bad > 0)
            rc = 3;
fail:
    free(rtt_v);
    if (x.c)
        redisFree(x.c);
    if (fn_up)
        sqs_fn_stop(&x.fn);
    server_stop(&x.srv);
    if (rc == 0)
        nftw(x.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    else
        say("%s; logs kept in %s", rc == 3 ? "weir broke FIFO order" : "failed", x.dir);
    return rc;
}
