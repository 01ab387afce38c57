/* The Kafka source benchmark: N 100-byte records produced into a topic of P partitions on the test
 * broker (kafka_broker: librdkafka's mock cluster in a process of its own), then read from that
 * same topic, in the same run, by a raw librdkafka high-level consumer, by kcat (`-C -e`, and `-C
 * -c N`), and by weir carrying them to a null HTTP function at batch 100 and 1000, every one of
 * them once in each of two rounds and judged by its better round; then, for latency, records
 * produced at a steady rate while each consumer is caught up. Owns its broker, its weir and kcat
 * children and the null function (a thread of this process). A program that prints figures, never
 * a test: it fails only when the benchmark broke (a record lost, the broker dropped data, a child
 * that would not start or stop). */
#define _GNU_SOURCE /* memmem (nullfn.h), nftw, pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "bench/common.h"
#include "bench/nullfn.h"
#include "core/mem.h"

#define VALUE_LEN 100
/* A value opens with "<produce time, 20 digits of us> <seq, 10 digits> ": HEAD_LEN bytes, which
 * HEAD_B64 characters of base64 hold (33 bytes). */
#define HEAD_LEN           32
#define HEAD_B64           44
#define TOPIC              "bench"
#define FN_NAME            "function"
#define KEYS_PER_PARTITION 16
#define STALL_LIMIT_US     (30 * 1000000LL)
/* A consumer group's first join on the mock takes about 3 s; a first record later than this
 * means something is wrong. */
#define JOIN_LIMIT_US (60 * 1000000LL)
#define MAX_BATCHES   4
/* weir's default fetch.wait.max.ms (FETCH_WAIT_MAX_MS in pollers/kafka.c), for the report. */
#define WEIR_FETCH_WAIT_MS 100
/* Every consumer reads the whole topic once a round; judged by its better round. */
#define ROUNDS 2

/* kcat's two ways of reading the topic: to every partition's end (-e, the goal's), or N records. */
enum kcat_mode { KCAT_TO_END, KCAT_COUNT, KCAT_MODES };

/* The latency runs, each on a topic of its own so that every consumer starts caught up. */
enum lat_run { LAT_RAW, LAT_WEIR_FIRST };

struct options {
    long records;
    int partitions;
    int batches[MAX_BATCHES];
    int n_batches;
    int pace_rate;
    int pace_seconds;
    bool window0; /* a latency run at window 0 too: weir's own latency, without the window */
    /* fetch.wait.max.ms given to every consumer (raw, kcat, weir) in the throughput runs and in
     * the latency runs; 0 leaves each its default: librdkafka's (500 ms) for the raw consumer and
     * kcat, weir's own (WEIR_FETCH_WAIT_MS) for weir. */
    int fetch_wait_ms;
    int lat_fetch_wait_ms;
    const char *weir_log_level; /* info: weir logs nothing per record or batch */
    bool keep;                  /* keep the work directory (configurations, logs) */
    char weir[PATH_MAX];
    char broker[PATH_MAX];
    const char *kcat;
};

/* ---- the children killed on a signal ------------------------------------------------------- */

static volatile pid_t broker_pid_g = -1;
static volatile pid_t weir_pid_g = -1;
static volatile pid_t kcat_pid_g = -1;

static void on_signal(int sig)
{
    if (weir_pid_g > 0)
        kill(weir_pid_g, SIGKILL);
    if (kcat_pid_g > 0)
        kill(kcat_pid_g, SIGKILL);
    if (broker_pid_g > 0)
        kill(broker_pid_g, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* ---- records --------------------------------------------------------------------------------- */

/* A value: produce time (wall-clock microseconds, 20 digits), sequence number (10 digits), dots to
 * 100 bytes. */
static void make_value(char out[VALUE_LEN], int64_t push_us, long seq)
{
    char head[48];
    int n = snprintf(head, sizeof head, "%020" PRId64 " %010ld ", push_us, seq);
    memset(out, '.', VALUE_LEN);
    memcpy(out, head, (size_t)n);
}

static long digits(const char *p, int n, bool *ok)
{
    long v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            *ok = false;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

static bool parse_head(const char *p, size_t len, int64_t *push_us, long *seq)
{
    bool ok = len >= HEAD_LEN && p[20] == ' ' && p[31] == ' ';
    if (!ok)
        return false;
    *push_us = digits(p, 20, &ok);
    *seq = digits(p + 21, 10, &ok);
    return ok;
}

/* The partition and key of record seq: partitions are fed round-robin, so evenly, and every key
 * lives in one partition (key number mod partitions), as a key partitioner would place it. */
static int32_t partition_of(long seq, int partitions)
{
    return (int32_t)(seq % partitions);
}

static int key_of(long seq, int partitions, char *out, size_t len)
{
    long k = seq % ((long)partitions * KEYS_PER_PARTITION);
    return snprintf(out, len, "k%06ld", k);
}

/* ---- the tally: what a consumer received ---------------------------------------------------- */

/* Written by the consumer under test (the null function's thread, or the raw consumer), read by
 * the main thread. Sequence numbers 0..capacity-1; latency kept for lat_base.. */
struct tally {
    pthread_mutex_t mu;
    long capacity;
    uint8_t *seen; /* a bit per sequence number */
    long unique, dups, bad, records, invocations;
    long want, want99;
    /* Wall clock: the first record, the want-th distinct one, and the 99%-th (the last records
     * of a partition may wait out a batching window). */
    int64_t t_first_us, t_want_us, t_99_us;
    /* The longest time nothing arrived before the 99%-th record: a consumer that stalls (a
     * fetcher asleep) shows here, apart from the batching windows at the end. */
    int64_t t_last_us, longest_pause_us, longest_pause_from_us;
    long inv_at_want;
    long lat_base, lat_cap;
    int64_t *lat; /* receipt - produce, microseconds, by seq - lat_base */
};

static void tally_reset(struct tally *t, long capacity, long want, long lat_base, long lat_cap)
{
    pthread_mutex_lock(&t->mu);
    free(t->seen);
    free(t->lat);
    t->capacity = capacity;
    t->seen = weir_calloc((size_t)capacity / 8 + 1, 1);
    t->unique = t->dups = t->bad = t->records = t->invocations = 0;
    t->want = want;
    t->want99 = (want * 99 + 99) / 100;
    t->t_first_us = t->t_want_us = t->t_99_us = 0;
    t->t_last_us = t->longest_pause_us = t->longest_pause_from_us = 0;
    t->inv_at_want = 0;
    t->lat_base = lat_base;
    t->lat_cap = lat_cap;
    t->lat = weir_calloc((size_t)lat_cap + 1, sizeof *t->lat);
    pthread_mutex_unlock(&t->mu);
}

/* One record received at now; called with mu held. */
static void tally_add(struct tally *t, const char *head, size_t len, int64_t now)
{
    int64_t push;
    long seq;
    t->records++;
    if (t->t_first_us == 0)
        t->t_first_us = now;
    if (t->t_99_us == 0 && t->t_last_us && now - t->t_last_us > t->longest_pause_us) {
        t->longest_pause_us = now - t->t_last_us;
        t->longest_pause_from_us = t->t_last_us;
    }
    t->t_last_us = now;
    if (!parse_head(head, len, &push, &seq) || seq < 0 || seq >= t->capacity) {
        t->bad++;
        return;
    }
    uint8_t bit = (uint8_t)(1u << (seq & 7));
    if (t->seen[seq >> 3] & bit) {
        t->dups++;
        return;
    }
    t->seen[seq >> 3] |= bit;
    t->unique++;
    if (seq >= t->lat_base && seq - t->lat_base < t->lat_cap)
        t->lat[seq - t->lat_base] = now - push;
    if (t->unique == t->want99)
        t->t_99_us = now;
    if (t->unique == t->want) {
        t->t_want_us = now;
        t->inv_at_want = t->invocations;
    }
}

struct tally_view {
    long unique, dups, bad, records, invocations, inv_at_want;
    int64_t t_first_us, t_want_us, t_99_us, longest_pause_us, longest_pause_from_us;
};

static struct tally_view tally_read(struct tally *t)
{
    pthread_mutex_lock(&t->mu);
    struct tally_view v = {t->unique,
                           t->dups,
                           t->bad,
                           t->records,
                           t->invocations,
                           t->inv_at_want,
                           t->t_first_us,
                           t->t_want_us,
                           t->t_99_us,
                           t->longest_pause_us,
                           t->longest_pause_from_us};
    pthread_mutex_unlock(&t->mu);
    return v;
}

static struct pct tally_latency(struct tally *t, long first, long n)
{
    pthread_mutex_lock(&t->mu);
    struct pct p = percentiles(t->lat + (first - t->lat_base), n);
    pthread_mutex_unlock(&t->mu);
    return p;
}

/* ---- the null function: an HTTP server on a thread of this process --------------------------- */

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Decodes the first HEAD_B64 characters at p (no padding among them) into out; false if they
 * are not base64. */
static bool b64_head(const char *p, char out[HEAD_B64 / 4 * 3])
{
    for (int i = 0; i < HEAD_B64; i += 4) {
        int a = b64_value((unsigned char)p[i]), b = b64_value((unsigned char)p[i + 1]);
        int c = b64_value((unsigned char)p[i + 2]), d = b64_value((unsigned char)p[i + 3]);
        if ((a | b | c | d) < 0)
            return false;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        out[i / 4 * 3] = (char)(v >> 16);
        out[i / 4 * 3 + 1] = (char)(v >> 8 & 0xff);
        out[i / 4 * 3 + 2] = (char)(v & 0xff);
    }
    return true;
}

/* The first "value":" in [p, end), or NULL. glibc's memmem was half the function's CPU (it
 * compares byte by byte); a 'v' is rare outside the values, which the caller skips, and memchr
 * finds it 32 bytes a step. */
static const char *find_value(const char *p, const char *end)
{
    static const char needle[] = "\"value\":\"";
    const size_t nl = sizeof needle - 1;
    if (end - p < (ptrdiff_t)nl)
        return NULL;
    /* The 'v' of a match is at least one byte in, and leaves room for the rest after it. */
    for (const char *v = p + 1, *last = end - (nl - 1); v <= last; v++) {
        v = memchr(v, 'v', (size_t)(last - v) + 1);
        if (!v)
            return NULL;
        if (v[-1] == '"' && !memcmp(v, needle + 1, nl - 1))
            return v - 1;
    }
    return NULL;
}

/* Answers every POST with 200 {} after counting the records of the SelfManagedKafka event. The
 * event is not parsed as JSON: each "value":" is found (find_value) and only the head of its
 * base64 decoded, so the function stays cheap; the search for the next one starts after the
 * value's closing quote (base64 has no quote), found with memchr. */
static void nullfn_handle(struct nullfn_req *req, const char *p, size_t len, void *arg)
{
    struct nullfn *f = arg;
    struct tally *t = f->arg;
    int64_t now = wall_us();
    const char *end = p + len;
    const size_t value_at = sizeof "\"value\":\"" - 1;
    char head[HEAD_B64 / 4 * 3];

    pthread_mutex_lock(&t->mu);
    t->invocations++;
    for (const char *hit = find_value(p, end); hit;) {
        const char *v = hit + value_at;
        const char *quote = memchr(v, '"', (size_t)(end - v));
        const char *next = quote ? quote + 1 : end;
        hit = find_value(next, end);
        if (end - v < HEAD_B64 || !b64_head(v, head)) {
            t->records++;
            t->bad++;
            continue;
        }
        tally_add(t, head, sizeof head, now);
    }
    pthread_mutex_unlock(&t->mu);
    nullfn_reply_ok(f, req);
}

/* ---- the broker ------------------------------------------------------------------------------ */

struct ctx {
    const struct options *o;
    char dir[256];
    char boot[256];
    pid_t broker;
    rd_kafka_t *bulk;  /* the producer of the backlog: linger and large batches */
    rd_kafka_t *paced; /* the producer of the latency runs: linger.ms 0 */
    long delivery_failed;
    int fetch_wait_ms; /* of the runs now going: o->fetch_wait_ms or o->lat_fetch_wait_ms */
    struct tally t;
    struct nullfn fn;
};

static void lat_topic(int run, char *out, size_t len)
{
    snprintf(out, len, "lat%d", run);
}

static int broker_start(struct ctx *x, int lat_topics)
{
    const struct options *o = x->o;
    char boot_file[300], log[300];
    snprintf(boot_file, sizeof boot_file, "%s/bootstrap", x->dir);
    snprintf(log, sizeof log, "%s/broker.log", x->dir);
    char topics[8][64];
    char *argv[32];
    int a = 0;
    argv[a++] = (char *)o->broker;
    argv[a++] = "--brokers";
    argv[a++] = "1";
    snprintf(topics[0], sizeof topics[0], TOPIC ":%d", o->partitions);
    argv[a++] = "--topic";
    argv[a++] = topics[0];
    for (int i = 0; i < lat_topics && i < 7; i++) {
        char name[16];
        lat_topic(i, name, sizeof name);
        snprintf(topics[i + 1], sizeof topics[i + 1], "%s:%d", name, o->partitions);
        argv[a++] = "--topic";
        argv[a++] = topics[i + 1];
    }
    argv[a++] = "--bootstrap-file";
    argv[a++] = boot_file;
    argv[a] = NULL;
    x->broker = spawn(argv, log);
    if (x->broker < 0) {
        say("cannot start %s: %s", o->broker, strerror(errno));
        return -1;
    }
    broker_pid_g = x->broker;
    int64_t deadline = mono_us() + 10 * 1000000LL;
    while (mono_us() < deadline) {
        FILE *f = fopen(boot_file, "r");
        if (f) {
            bool ok = fgets(x->boot, sizeof x->boot, f) != NULL;
            fclose(f);
            x->boot[strcspn(x->boot, "\r\n")] = 0;
            if (ok && x->boot[0])
                return 0;
        }
        if (waitpid(x->broker, NULL, WNOHANG) == x->broker) {
            say("%s exited during start-up (see %s)", o->broker, log);
            x->broker = broker_pid_g = -1;
            return -1;
        }
        sleep_us(20000);
    }
    say("the broker wrote no bootstrap file within 10 s (see %s)", log);
    return -1;
}

static void broker_stop(struct ctx *x)
{
    if (x->broker <= 0)
        return;
    kill(x->broker, SIGTERM);
    if (wait_child(x->broker, 10 * 1000000LL) < 0) {
        kill(x->broker, SIGKILL);
        waitpid(x->broker, NULL, 0);
    }
    x->broker = broker_pid_g = -1;
}

/* ---- producing ------------------------------------------------------------------------------- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct ctx *x = opaque;
    if (m->err) {
        if (x->delivery_failed++ == 0)
            say("a record was not delivered: %s", rd_kafka_err2str(m->err));
    }
}

static rd_kafka_t *producer_new(struct ctx *x, bool bulk)
{
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *kv[][2] = {
        {"bootstrap.servers", x->boot},
        /* The backlog goes fast, in large batches; a latency record goes at once. */
        {"linger.ms", bulk ? "20" : "5"},
        {"batch.num.messages", bulk ? "10000" : "1000"},
        {"queue.buffering.max.messages", "1000000"},
    };
    for (size_t i = 0; i < sizeof kv / sizeof *kv; i++)
        if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], why, sizeof why) != RD_KAFKA_CONF_OK) {
            say("producer %s: %s", kv[i][0], why);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    rd_kafka_conf_set_opaque(conf, x);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (!rk) {
        say("producer: %s", why);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

/* Produces records first..first+n-1 to topic, at rate records/s (0: as fast as the producer
 * takes them), each value stamped with the wall clock just before it is handed over. */
static int produce(struct ctx *x, rd_kafka_t *rk, const char *topic, long first, long n, int rate)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int64_t t0 = mono_us();
    for (long i = 0; i < n; i++) {
        long seq = first + i;
        if (rate > 0) {
            int64_t due = t0 + (int64_t)((double)i * 1e6 / rate);
            int64_t ahead = due - mono_us();
            if (ahead > 0)
                sleep_us(ahead);
        }
        char value[VALUE_LEN], key[16];
        int kl = key_of(seq, x->o->partitions, key, sizeof key);
        for (;;) {
            make_value(value, wall_us(), seq);
            rd_kafka_resp_err_t err = rd_kafka_producev(
                rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(partition_of(seq, x->o->partitions)),
                RD_KAFKA_V_KEY(key, (size_t)kl), RD_KAFKA_V_VALUE(value, VALUE_LEN),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (!err)
                break;
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                say("produce: %s", rd_kafka_err2str(err));
                rd_kafka_topic_destroy(rkt);
                return -1;
            }
            rd_kafka_poll(rk, 5);
        }
        if ((i & 255) == 0)
            rd_kafka_poll(rk, 0);
    }
    rd_kafka_resp_err_t err = rd_kafka_flush(rk, 60000);
    rd_kafka_topic_destroy(rkt);
    if (err || x->delivery_failed) {
        say("produce: %s; %ld records not delivered", err ? rd_kafka_err2str(err) : "flushed",
            x->delivery_failed);
        return -1;
    }
    return 0;
}

/* What the broker holds of topic: every partition must start at offset 0 and hold its share.
 * The mock drops a partition's oldest data silently beyond about 5 MiB. */
static int check_kept(struct ctx *x, const char *topic, long n)
{
    long kept = 0, dropped_parts = 0;
    for (int p = 0; p < x->o->partitions; p++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t err =
            rd_kafka_query_watermark_offsets(x->bulk, topic, p, &lo, &hi, 10000);
        if (err) {
            say("watermarks of %s-%d: %s", topic, p, rd_kafka_err2str(err));
            return -1;
        }
        long want = n / x->o->partitions + (p < n % x->o->partitions ? 1 : 0);
        if (lo != 0 || hi != want)
            dropped_parts++;
        kept += (long)(hi - lo);
    }
    if (kept != n || dropped_parts) {
        say("INVALID: the broker keeps %ld of the %ld records produced (%ld partitions short): "
            "the mock keeps about 5 MiB per partition; run with more --partitions",
            kept, n, dropped_parts);
        return -1;
    }
    return 0;
}

/* ---- waiting for a consumer ------------------------------------------------------------------ */

/* Waits until the tally holds want distinct records. Fails when *child (weir or kcat, if given)
 * exits, when nothing arrives within JOIN_LIMIT_US, or nothing new for STALL_LIMIT_US. first(arg)
 * is called once, as soon as the first record has arrived. */
static int await_tally(struct ctx *x, long want, pid_t *child, void (*first)(void *), void *arg)
{
    long last = -1;
    int64_t last_progress = mono_us();
    bool had_first = false;
    for (;;) {
        struct tally_view v = tally_read(&x->t);
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
        if (child && *child > 0 && waitpid(*child, &st, WNOHANG) == *child) {
            *child = -1;
            weir_pid_g = -1;
            say("weir exited early (%s %d) with %ld of %ld records delivered",
                WIFEXITED(st) ? "status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
                v.unique, want);
            return -2;
        }
        int64_t limit = had_first ? STALL_LIMIT_US : JOIN_LIMIT_US;
        if (mono_us() - last_progress > limit) {
            say("no progress for %lld s: %ld of %ld records received (%ld unreadable)",
                (long long)(limit / 1000000), v.unique, want, v.bad);
            return -1;
        }
        sleep_us(1000);
    }
}

/* CPU used by the processes of one run, from its first record on. */
struct cpu_mark {
    pid_t consumer; /* weir, or this process for the raw consumer */
    pid_t broker;
    const struct nullfn *fn; /* NULL: no function in this run */
    double consumer0, broker0, fn0;
};

static void cpu_mark_take(void *arg)
{
    struct cpu_mark *m = arg;
    m->consumer0 = pid_cpu(m->consumer);
    m->broker0 = pid_cpu(m->broker);
    m->fn0 = m->fn ? nullfn_cpu(m->fn) : 0;
}

/* ---- figures --------------------------------------------------------------------------------- */

struct throughput {
    char label[64];
    double rps, ips, elapsed_s;
    double s99;         /* weir: seconds from the first record to 99% of them */
    double pause_ms;    /* weir: the longest time nothing arrived before that */
    double pause_at_s;  /* weir: when that pause began, from the first record */
    struct pct backlog; /* weir: produce -> receipt of the backlog (produced before weir started) */
    double cpu_consumer, cpu_broker, cpu_fn; /* shares of the interval (1.0 = one core) */
    double startup_s; /* from the start of the consumer to its first record */
    double wall_s;    /* kcat: the whole process, start-up included */
    long dups;
    long rss_kb;
    long log_lines;
    int batch;
    bool ran;
};

struct latency {
    char label[64];
    struct pct lat;
    long rss_kb;
    bool ran;
};

/* ---- the raw consumer ------------------------------------------------------------------------ */

struct rawc {
    struct ctx *x;
    rd_kafka_t *rk;
    volatile bool stop;
};

static rd_kafka_t *raw_consumer_new(struct ctx *x, const char *group, const char *topic)
{
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* librdkafka's defaults otherwise (auto commit on), as a plain consumer has them, but for
     * its pre-fetch bound. Every partition's records wait in the consumer's one queue, and
     * librdkafka 2.0.2 stops fetching all of them while that queue holds queued.min.messages
     * (100,000) and looks again only when its broker thread next wakes, up to a second later:
     * the raw figure swung between 0.3M and 1.9M records/s with it. Unbounded, the consumer
     * reads at the topic's top speed, the reference weir is held to. */
    const char *kv[][2] = {
        {"bootstrap.servers", x->boot},
        {"group.id", group},
        {"auto.offset.reset", "earliest"},
        {"session.timeout.ms", "6000"},
        {"enable.partition.eof", "false"},
        {"queued.min.messages", "10000000"},
        {"queued.max.messages.kbytes", "2097151"},
    };
    for (size_t i = 0; i < sizeof kv / sizeof *kv; i++)
        if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], why, sizeof why) != RD_KAFKA_CONF_OK) {
            say("consumer %s: %s", kv[i][0], why);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    char wait[16];
    snprintf(wait, sizeof wait, "%d", x->fetch_wait_ms);
    if (x->fetch_wait_ms > 0 &&
        rd_kafka_conf_set(conf, "fetch.wait.max.ms", wait, why, sizeof why) != RD_KAFKA_CONF_OK) {
        say("consumer fetch.wait.max.ms: %s", why);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    if (!rk) {
        say("consumer: %s", why);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err) {
        say("subscribe %s: %s", topic, rd_kafka_err2str(err));
        rd_kafka_destroy(rk);
        return NULL;
    }
    return rk;
}

/* Polls until stopped: each record into the tally, as the null function does for weir. */
static void *raw_consume(void *arg)
{
    struct rawc *c = arg;
    struct tally *t = &c->x->t;
    while (!c->stop) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 100);
        if (!m)
            continue;
        if (m->err) {
            say("raw consumer: %s", rd_kafka_message_errstr(m));
        } else {
            int64_t now = wall_us();
            pthread_mutex_lock(&t->mu);
            tally_add(t, m->payload, m->len, now);
            pthread_mutex_unlock(&t->mu);
        }
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

static void raw_close(struct rawc *c)
{
    rd_kafka_consumer_close(c->rk);
    rd_kafka_destroy(c->rk);
    c->rk = NULL;
}

/* The whole topic, read by a plain high-level consumer in a new group: records/s from the first
 * record to the N-th. The count proves what the broker kept. */
static int run_raw(struct ctx *x, struct throughput *r, int round)
{
    char group[64];
    snprintf(group, sizeof group, "bench-raw-%d-%d", (int)getpid(), round);
    tally_reset(&x->t, x->o->records, x->o->records, 0, 0);
    struct rawc c = {.x = x};
    int64_t t0 = wall_us();
    c.rk = raw_consumer_new(x, group, TOPIC);
    if (!c.rk)
        return -1;
    pthread_t th;
    pthread_create(&th, NULL, raw_consume, &c);
    struct cpu_mark mark = {.consumer = getpid(), .broker = x->broker};
    int rc = await_tally(x, x->o->records, NULL, cpu_mark_take, &mark);
    double cpu_self = pid_cpu(getpid()), cpu_broker = pid_cpu(x->broker);
    c.stop = true;
    pthread_join(th, NULL);
    raw_close(&c);
    struct tally_view v = tally_read(&x->t);
    if (rc != 0) {
        say("INVALID: the raw consumer read %ld of the %ld records produced", v.unique,
            x->o->records);
        return -1;
    }
    r->elapsed_s = (double)(v.t_want_us - v.t_first_us) / 1e6;
    r->rps = (double)x->o->records / r->elapsed_s;
    r->cpu_consumer = (cpu_self - mark.consumer0) / r->elapsed_s;
    r->cpu_broker = (cpu_broker - mark.broker0) / r->elapsed_s;
    r->startup_s = (double)(v.t_first_us - t0) / 1e6;
    r->dups = v.dups;
    r->ran = true;
    say("%s: %.0f rec/s (first record %.2f s after the consumer was made)", r->label, r->rps,
        r->startup_s);
    return 0;
}

/* ---- kcat ------------------------------------------------------------------------------------ */

/* `kcat -C -e -q -o beginning -f '%o\n'` (to_eof), or with `-c N` in place of `-e`: one line per
 * record into a pipe this process reads. Records/s from the first line read to the last; its
 * start-up (metadata, offsets) is before the first line, and the whole process's time is kept
 * beside it. kcat's output is buffered, and flushed whole at its exit: with -e the last line comes
 * only once every partition has reported its end, which on the mock costs a fetch it holds for
 * fetch.wait.max.ms; with -c N kcat exits at the N-th record. */
static int run_kcat(struct ctx *x, struct throughput *r, bool to_eof)
{
    int fds[2];
    char log[300];
    snprintf(log, sizeof log, "%s/kcat.log", x->dir);
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    int64_t t0 = wall_us();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fds[1], 1);
        if (fd >= 0)
            dup2(fd, 2);
        char wait[48], count[24];
        snprintf(wait, sizeof wait, "fetch.wait.max.ms=%d", x->fetch_wait_ms);
        snprintf(count, sizeof count, "%ld", x->o->records);
        char *argv[16];
        int a = 0;
        argv[a++] = (char *)x->o->kcat;
        argv[a++] = "-C";
        argv[a++] = to_eof ? "-e" : "-c";
        if (!to_eof)
            argv[a++] = count;
        char *rest[] = {"-q", "-b", x->boot, "-t", TOPIC, "-o", "beginning", "-f", "%o\n"};
        for (size_t i = 0; i < sizeof rest / sizeof *rest; i++)
            argv[a++] = rest[i];
        if (x->fetch_wait_ms > 0) {
            argv[a++] = "-X";
            argv[a++] = wait;
        }
        argv[a] = NULL;
        execvp(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    kcat_pid_g = pid;
    close(fds[1]);
    char buf[65536];
    long lines = 0;
    int64_t t_first = 0, t_last = 0, last_progress = mono_us();
    int rc = -1;
    for (;;) {
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        int k = poll(&pfd, 1, 1000);
        if (k < 0 && errno == EINTR)
            continue;
        if (k == 0) {
            if (mono_us() - last_progress > STALL_LIMIT_US) {
                say("kcat: nothing for %lld s after %ld lines", STALL_LIMIT_US / 1000000, lines);
                kill(pid, SIGKILL);
                break;
            }
            continue;
        }
        ssize_t n = read(fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        int64_t now = wall_us();
        if (!t_first)
            t_first = now;
        t_last = now;
        last_progress = mono_us();
        for (char *p = buf; (p = memchr(p, '\n', (size_t)(buf + n - p))); p++)
            lines++;
    }
    close(fds[0]);
    int st = 0;
    struct rusage ru;
    if (wait4(pid, &st, 0, &ru) != pid)
        memset(&ru, 0, sizeof ru);
    kcat_pid_g = -1;
    int64_t t_end = wall_us();
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        say("kcat exited with %s %d (see %s)", WIFEXITED(st) ? "status" : "signal",
            WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), log);
    } else if (lines != x->o->records) {
        say("INVALID: kcat read %ld of the %ld records produced", lines, x->o->records);
    } else if (t_last <= t_first) {
        say("kcat: its output came in one piece; no rate");
    } else {
        rc = 0;
    }
    if (rc != 0)
        return -1;
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    r->elapsed_s = (double)(t_last - t_first) / 1e6;
    r->rps = (double)lines / r->elapsed_s;
    r->startup_s = (double)(t_first - t0) / 1e6;
    r->wall_s = (double)(t_end - t0) / 1e6;
    r->cpu_consumer = cpu / r->wall_s; /* the whole process: its rusage has no finer grain */
    r->ran = true;
    say("%s: %.0f rec/s (first line %.3f s after exec, exit after %.2f s: %.0f rec/s overall)",
        r->label, r->rps, r->startup_s, r->wall_s, (double)lines / r->wall_s);
    return 0;
}

/* ---- weir ------------------------------------------------------------------------------------ */

/* window_s < 0: the source's default (Kafka: 0.5 s), not written. */
static int weir_start(struct ctx *x, const char *label, const char *topic, int batch, int window_s,
                      pid_t *pid, char *log, size_t log_len)
{
    char cfg[320];
    snprintf(cfg, sizeof cfg, "%s/weir-%s.yaml", x->dir, label);
    snprintf(log, log_len, "%s/weir-%s.log", x->dir, label);
    FILE *f = fopen(cfg, "w");
    if (!f) {
        say("%s: %s", cfg, strerror(errno));
        return -1;
    }
    fprintf(f,
            "state_dir: %s/state-%s\n"
            "functions:\n"
            "  - name: " FN_NAME "\n"
            "    url: http://127.0.0.1:%d/\n"
            "    timeout: 30\n"
            "mappings:\n"
            "  - name: bench\n"
            "    source: kafka://%s/%s\n"
            "    function: " FN_NAME "\n"
            "    batch_size: %d\n"
            "    consumer_group_id: weir-bench-%s-%d\n"
            "    kafka_config:\n"
            "      session.timeout.ms: \"6000\"\n",
            x->dir, label, x->fn.port, x->boot, topic, batch, label, (int)getpid());
    if (x->fetch_wait_ms > 0)
        fprintf(f, "      fetch.wait.max.ms: \"%d\"\n", x->fetch_wait_ms);
    if (window_s >= 0)
        fprintf(f, "    maximum_batching_window_in_seconds: %d\n", window_s);
    fclose(f);
    char *argv[] = {(char *)x->o->weir,           "run", "-c", cfg, "--log-level",
                    (char *)x->o->weir_log_level, NULL};
    *pid = spawn(argv, log);
    if (*pid < 0) {
        say("cannot start %s: %s", x->o->weir, strerror(errno));
        return -1;
    }
    weir_pid_g = *pid;
    return 0;
}

/* SIGTERM, and weir must exit 0 (it commits and leaves its group first). */
static int weir_stop(pid_t *pid)
{
    int rc = weir_sigterm(*pid);
    *pid = -1;
    weir_pid_g = -1;
    return rc;
}

/* The whole topic through weir at one batch size, in a new group (one per round): records/s at
 * the function from the first record to the N-th. */
static int run_weir(struct ctx *x, struct throughput *r, int round)
{
    long n = x->o->records;
    char label[32], log[320];
    pid_t pid = -1;
    snprintf(label, sizeof label, "b%d-%d", r->batch, round + 1);
    tally_reset(&x->t, n, n, 0, n);
    int64_t t0 = wall_us();
    if (weir_start(x, label, TOPIC, r->batch, -1, &pid, log, sizeof log) != 0)
        return -1;
    say("%s: weir started (pid %d), joining its group and draining", r->label, (int)pid);
    struct cpu_mark mark = {.consumer = pid, .broker = x->broker, .fn = &x->fn};
    if (await_tally(x, n, &pid, cpu_mark_take, &mark) != 0)
        goto fail;
    struct tally_view v = tally_read(&x->t);
    r->elapsed_s = (double)(v.t_want_us - v.t_first_us) / 1e6;
    r->s99 = (double)(v.t_99_us - v.t_first_us) / 1e6;
    r->pause_ms = (double)v.longest_pause_us / 1e3;
    r->pause_at_s = v.longest_pause_us ? (double)(v.longest_pause_from_us - v.t_first_us) / 1e6 : 0;
    r->backlog = tally_latency(&x->t, 0, n);
    r->cpu_consumer = (pid_cpu(pid) - mark.consumer0) / r->elapsed_s;
    r->cpu_broker = (pid_cpu(x->broker) - mark.broker0) / r->elapsed_s;
    r->cpu_fn = (nullfn_cpu(&x->fn) - mark.fn0) / r->elapsed_s;
    r->rps = (double)n / r->elapsed_s;
    r->ips = (double)v.inv_at_want / r->elapsed_s;
    r->startup_s = (double)(v.t_first_us - t0) / 1e6;
    /* A record delivered twice shows soon after; give it a moment. */
    sleep_us(1000000);
    v = tally_read(&x->t);
    r->dups = v.dups;
    if (v.bad) {
        say("the function received %ld records it could not read", v.bad);
        goto fail;
    }
    r->rss_kb = peak_rss_kb(pid);
    if (weir_stop(&pid) != 0)
        goto fail;
    r->log_lines = log_problems(log, false);
    r->ran = true;
    say("%s: %.0f rec/s, %.0f inv/s (first record %.2f s after start)", r->label, r->rps, r->ips,
        r->startup_s);
    return 0;
fail:
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        weir_pid_g = -1;
    }
    log_problems(log, true);
    return -1;
}

/* ---- latency --------------------------------------------------------------------------------- */

/* One record per partition, until the consumer has every one: then its group is joined, every
 * partition is fetched, and it is caught up. Sequence numbers 0..partitions-1. */
static int warm_up(struct ctx *x, const char *topic, pid_t *child)
{
    if (produce(x, x->paced, topic, 0, x->o->partitions, 0) != 0)
        return -1;
    return await_tally(x, x->o->partitions, child, NULL, NULL);
}

/* Records at a steady rate, while the consumer is caught up: produce call to receipt. */
static int pace(struct ctx *x, const char *topic, pid_t *child, struct latency *l)
{
    long first = x->o->partitions, n = (long)x->o->pace_rate * x->o->pace_seconds;
    pthread_mutex_lock(&x->t.mu);
    x->t.want = first + n;
    pthread_mutex_unlock(&x->t.mu);
    if (produce(x, x->paced, topic, first, n, x->o->pace_rate) != 0 ||
        await_tally(x, first + n, child, NULL, NULL) != 0)
        return -1;
    l->lat = tally_latency(&x->t, first, n);
    return 0;
}

static void lat_reset(struct ctx *x)
{
    long n = (long)x->o->pace_rate * x->o->pace_seconds;
    tally_reset(&x->t, x->o->partitions + n, x->o->partitions, x->o->partitions, n);
}

static int lat_raw(struct ctx *x, struct latency *l)
{
    char group[64], topic[16];
    lat_topic(LAT_RAW, topic, sizeof topic);
    snprintf(group, sizeof group, "bench-raw-lat-%d", (int)getpid());
    lat_reset(x);
    struct rawc c = {.x = x};
    c.rk = raw_consumer_new(x, group, topic);
    if (!c.rk)
        return -1;
    pthread_t th;
    pthread_create(&th, NULL, raw_consume, &c);
    int rc = warm_up(x, topic, NULL) == 0 && pace(x, topic, NULL, l) == 0 ? 0 : -1;
    c.stop = true;
    pthread_join(th, NULL);
    raw_close(&c);
    l->ran = rc == 0;
    return rc;
}

static int lat_weir(struct ctx *x, int run, int batch, int window_s, struct latency *l)
{
    char topic[16], label[32], log[320];
    pid_t pid = -1;
    lat_topic(run, topic, sizeof topic);
    snprintf(label, sizeof label, "lat-b%d-w%d", batch, window_s);
    lat_reset(x);
    if (weir_start(x, label, topic, batch, window_s, &pid, log, sizeof log) != 0)
        return -1;
    if (warm_up(x, topic, &pid) != 0 || pace(x, topic, &pid, l) != 0)
        goto fail;
    l->rss_kb = peak_rss_kb(pid);
    if (weir_stop(&pid) != 0)
        goto fail;
    l->ran = true;
    return 0;
fail:
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        weir_pid_g = -1;
    }
    log_problems(log, true);
    return -1;
}

/* ---- the report ------------------------------------------------------------------------------ */

/* The better rate of a consumer's rounds (0: it never ran). */
static double better(const struct throughput r[ROUNDS])
{
    double best = 0;
    for (int i = 0; i < ROUNDS; i++)
        if (r[i].ran && r[i].rps > best)
            best = r[i].rps;
    return best;
}

static void report(const struct ctx *x, const struct throughput raw[ROUNDS],
                   const struct throughput kc[KCAT_MODES][ROUNDS],
                   const struct throughput w[][ROUNDS], int n_w, const struct latency *lat,
                   int n_lat, double produce_rps, double load0)
{
    const struct options *o = x->o;
    double raw_best = better(raw);
    /* The goal is the issue's `kcat -C -e`; kcat -c N (its read alone, without the wait for
     * every partition's end) is printed beside it. */
    double kcat_best = better(kc[KCAT_TO_END]);
    double kcat_read = better(kc[KCAT_COUNT]);
    printf("\nweir kafka benchmark  records=%ld value=%dB partitions=%d  librdkafka %s (mock "
           "broker)  cores=%ld  load average %.2f before, %.2f after\n",
           o->records, VALUE_LEN, o->partitions, rd_kafka_version_str(),
           sysconf(_SC_NPROCESSORS_ONLN), load0, loadavg());
    printf("produced %ld records at %.0f rec/s; the broker kept every one (watermarks, and the "
           "raw consumer's count)\n",
           o->records, produce_rps);
    /* A finite run ends with each partition's last, partial batch waiting out the window: that
     * wait is the window's, not throughput, and at 0.5 s it is a third of a run. */
    long per_partition = o->records / o->partitions, more = o->records % o->partitions;
    for (int i = 0; i < o->n_batches; i++) {
        /* The first `more` partitions hold one record beyond the others. */
        if (per_partition % o->batches[i] || (more && (per_partition + 1) % o->batches[i]))
            printf("at batch %d partitions end with a partial batch, which waits out the window: "
                   "the rate includes that wait\n",
                   o->batches[i]);
    }
    char defaults[128], fw[64], lfw[64];
    snprintf(defaults, sizeof defaults,
             "each consumer's default: librdkafka's (500 ms) for the raw consumer and kcat, "
             "weir's own (%d ms) for weir",
             WEIR_FETCH_WAIT_MS);
    snprintf(fw, sizeof fw, "%d ms for every consumer", o->fetch_wait_ms);
    snprintf(lfw, sizeof lfw, "%d ms for every consumer", o->lat_fetch_wait_ms);
    printf("fetch.wait.max.ms: %s in the throughput runs; %s in the latency runs\n\n",
           o->fetch_wait_ms ? fw : defaults, o->lat_fetch_wait_ms ? lfw : defaults);
    printf("%-44s %10s %8s %8s  %s\n", "consumer (first record -> last)", "rec/s", "to raw",
           "to kcat", "cpu: consumer / broker / function; notes");
    for (int round = 0; round < ROUNDS; round++) {
        const struct throughput *r = &raw[round];
        if (r->ran)
            printf("%-44s %10.0f %8.2f %8.2f  %3.0f%% / %3.0f%%; first record %.1f s after "
                   "start (group join)\n",
                   r->label, r->rps, r->rps / raw_best, r->rps / kcat_best, 100 * r->cpu_consumer,
                   100 * r->cpu_broker, r->startup_s);
        for (int k = 0; k < KCAT_MODES; k++) {
            r = &kc[k][round];
            if (r->ran)
                printf("%-44s %10.0f %8.2f %8.2f  %3.0f%% (whole process); first line %.3f s "
                       "after exec, whole run %.2f s = %.0f rec/s\n",
                       r->label, r->rps, r->rps / raw_best, r->rps / kcat_best,
                       100 * r->cpu_consumer, r->startup_s, r->wall_s,
                       (double)o->records / r->wall_s);
        }
        for (int i = 0; i < n_w; i++) {
            r = &w[i][round];
            if (r->ran)
                printf(
                    "%-44s %10.0f %8.2f %8.2f  %3.0f%% / %3.0f%% / %3.0f%%; %.0f inv/s; 99%% "
                    "of the records in %.2f s of %.2f s, none for %.0f ms at most before (from "
                    "%.2f s); first record %.1f s after start; peak RSS %.1f MB; duplicates %ld\n",
                    r->label, r->rps, r->rps / raw_best, r->rps / kcat_best, 100 * r->cpu_consumer,
                    100 * r->cpu_broker, 100 * r->cpu_fn, r->ips, r->s99, r->elapsed_s, r->pause_ms,
                    r->pause_at_s, r->startup_s, (double)r->rss_kb / 1024.0, r->dups);
        }
    }
    printf("(ratios to the better of the raw consumer's rounds, %.0f rec/s, and of kcat -C -e's, "
           "%.0f rec/s)\n",
           raw_best, kcat_best);
    for (int i = 0; i < n_w; i++)
        for (int round = 0; round < ROUNDS; round++)
            if (w[i][round].ran)
                printf("%s: produce -> receipt of the backlog p50 %.2f s, p99 %.2f s (produced "
                       "before weir started: the wait, not weir's latency)\n",
                       w[i][round].label, w[i][round].backlog.p50_ms / 1000,
                       w[i][round].backlog.p99_ms / 1000);
    printf("\n");
    printf("latency, produce call -> receipt, %d rec/s for %d s while caught up (n=%ld each):\n",
           o->pace_rate, o->pace_seconds, (long)o->pace_rate * o->pace_seconds);
    for (int i = 0; i < n_lat; i++) {
        const struct latency *l = &lat[i];
        if (!l->ran)
            continue;
        printf("  %-44s p50 %8.2f ms  p99 %8.2f ms  max %8.1f ms", l->label, l->lat.p50_ms,
               l->lat.p99_ms, l->lat.max_ms);
        if (l->rss_kb > 0)
            printf("  peak RSS %.1f MB", (double)l->rss_kb / 1024.0);
        printf("\n");
    }
    for (int i = 0; i < n_w; i++)
        for (int round = 0; round < ROUNDS; round++)
            if (w[i][round].ran && w[i][round].log_lines > 0)
                printf("note: weir logged %ld warning/error line%s in %s (see its log)\n",
                       w[i][round].log_lines, w[i][round].log_lines == 1 ? "" : "s",
                       w[i][round].label);
    printf("\ngoals (each consumer's better round):\n");
    for (int i = 0; i < n_w; i++) {
        double rps = better(w[i]);
        if (rps <= 0)
            continue;
        printf("  batch %-5d >= 0.6 x raw consumer: %.2f %-12s faster than kcat -C -e: %.2f x %s"
               "  (%.2f x kcat -C -c N)\n",
               w[i][0].batch, rps / raw_best, rps / raw_best >= 0.6 ? "goal met" : "goal missed",
               rps / kcat_best, rps > kcat_best ? "goal met" : "goal missed",
               kcat_read > 0 ? rps / kcat_read : 0);
    }
    if (kcat_read > 0)
        printf("  (kcat -C -c N is kcat's read alone, %.2f x the raw consumer: kcat -C reads each "
               "partition with the simple consumer, no group; weir is a group member, as the raw "
               "consumer)\n",
               kcat_read / raw_best);
}

/* ---- main ------------------------------------------------------------------------------------ */

static void usage(FILE *out)
{
    fputs("usage: bench_kafka [--records N] [--partitions P] [--batch-sizes 100,1000]\n"
          "                   [--pace-rate REC_PER_S] [--pace-seconds S] [--no-window0]\n"
          "                   [--fetch-wait-ms MS] [--lat-fetch-wait-ms MS]\n"
          "                   [--weir PATH] [--broker PATH] [--kcat PATH]\n"
          "                   [--weir-log-level LEVEL] [--keep]\n",
          out);
}

/* dir/name for a program built beside this one. */
static void beside_self(const char *name, char *out, size_t len)
{
    char self[PATH_MAX - 32];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        snprintf(out, len, "%s", name);
        return;
    }
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = 0;
    snprintf(out, len, "%s/%s", self, name);
}

static int parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"records", required_argument, NULL, 'n'},
        {"partitions", required_argument, NULL, 'p'},
        {"batch-sizes", required_argument, NULL, 'b'},
        {"pace-rate", required_argument, NULL, 'R'},
        {"pace-seconds", required_argument, NULL, 'S'},
        {"no-window0", no_argument, NULL, 'W'},
        {"fetch-wait-ms", required_argument, NULL, 'f'},
        {"lat-fetch-wait-ms", required_argument, NULL, 'F'},
        {"weir", required_argument, NULL, 'w'},
        {"broker", required_argument, NULL, 'B'},
        {"kcat", required_argument, NULL, 'k'},
        {"weir-log-level", required_argument, NULL, 'L'},
        {"keep", no_argument, NULL, 'K'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (struct options){.records = 1000000,
                          .partitions = 50,
                          .batches = {100, 1000},
                          .n_batches = 2,
                          .pace_rate = 20000,
                          .pace_seconds = 5,
                          .window0 = true,
                          .lat_fetch_wait_ms = 10,
                          .kcat = "kcat",
                          .weir_log_level = "info"};
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            o->records = strtol(optarg, NULL, 10);
            break;
        case 'p':
            o->partitions = atoi(optarg);
            break;
        case 'b':
            o->n_batches = parse_int_list(optarg, o->batches, MAX_BATCHES);
            break;
        case 'R':
            o->pace_rate = atoi(optarg);
            break;
        case 'S':
            o->pace_seconds = atoi(optarg);
            break;
        case 'W':
            o->window0 = false;
            break;
        case 'f':
            o->fetch_wait_ms = atoi(optarg);
            break;
        case 'F':
            o->lat_fetch_wait_ms = atoi(optarg);
            break;
        case 'w':
            snprintf(o->weir, sizeof o->weir, "%s", optarg);
            break;
        case 'B':
            snprintf(o->broker, sizeof o->broker, "%s", optarg);
            break;
        case 'k':
            o->kcat = optarg;
            break;
        case 'L':
            o->weir_log_level = optarg;
            break;
        case 'K':
            o->keep = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (o->records < 1 || o->records > 100000000 || o->partitions < 1 || o->partitions > 1000 ||
        o->n_batches < 1 || o->pace_rate < 1 || o->pace_seconds < 1 || o->fetch_wait_ms < 0 ||
        o->lat_fetch_wait_ms < 0) {
        usage(stderr);
        return -1;
    }
    for (int i = 0; i < o->n_batches; i++)
        if (o->batches[i] < 1 || o->batches[i] > 10000) {
            fprintf(stderr, "bench_kafka: batch sizes are 1..10000 (AWS's range for Kafka)\n");
            return -1;
        }
    if (!o->weir[0])
        beside_self("weir", o->weir, sizeof o->weir);
    if (!o->broker[0])
        beside_self("kafka_broker", o->broker, sizeof o->broker);
    return 0;
}

int main(int argc, char **argv)
{
    struct options o;
    if (parse_args(argc, argv, &o) != 0)
        return 2;
    if (access(o.weir, X_OK) != 0 || access(o.broker, X_OK) != 0) {
        fprintf(stderr,
                "bench_kafka: %s: %s (build weir and kafka_broker, or pass --weir and "
                "--broker)\n",
                access(o.weir, X_OK) != 0 ? o.weir : o.broker, strerror(errno));
        return 2;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);

    struct ctx x = {.o = &o, .broker = -1};
    pthread_mutex_init(&x.t.mu, NULL);
    /* Two rounds, each reading the whole topic with every consumer in turn; every ratio is
     * between the better runs of the two rounds, so no consumer is judged by a moment the
     * machine was slow that another had a second chance at. */
    struct throughput raw[ROUNDS] = {{.label = "raw librdkafka consumer, round 1"},
                                     {.label = "raw librdkafka consumer, round 2"}};
    struct throughput kc[KCAT_MODES][ROUNDS] = {
        {{.label = "kcat -C -e, round 1"}, {.label = "kcat -C -e, round 2"}},
        {{.label = "kcat -C -c N, round 1"}, {.label = "kcat -C -c N, round 2"}}};
    struct throughput w[MAX_BATCHES][ROUNDS];
    memset(w, 0, sizeof w);
    struct latency lat[2 + MAX_BATCHES];
    memset(lat, 0, sizeof lat);
    int n_lat = 0, rc = 1;
    bool fn_up = false;
    double load0 = loadavg(), produce_rps = 0;

    const char *tmp =
        getenv("TMPDIR") && strlen(getenv("TMPDIR")) < 200 ? getenv("TMPDIR") : "/tmp";
    snprintf(x.dir, sizeof x.dir, "%s/weir-bench-kafka-XXXXXX", tmp);
    if (!mkdtemp(x.dir)) {
        say("mkdtemp %s: %s", x.dir, strerror(errno));
        return 1;
    }
    int lat_topics = 1 + o.n_batches + (o.window0 ? 1 : 0);
    if (broker_start(&x, lat_topics) != 0)
        goto out;
    if (nullfn_start(&x.fn, NULLFN_LEAN, nullfn_handle, &x.t) != 0)
        goto out;
    fn_up = true;
    x.bulk = producer_new(&x, true);
    x.paced = producer_new(&x, false);
    if (!x.bulk || !x.paced)
        goto out;
    say("broker %s (pid %d), topic %s of %d partitions, null function on port %d, weir %s", x.boot,
        (int)x.broker, TOPIC, o.partitions, x.fn.port, o.weir);

    say("producing %ld records of %d bytes", o.records, VALUE_LEN);
    int64_t t0 = mono_us();
    if (produce(&x, x.bulk, TOPIC, 0, o.records, 0) != 0)
        goto out;
    produce_rps = (double)o.records * 1e6 / (double)(mono_us() - t0);
    say("produced: %.0f rec/s", produce_rps);
    if (check_kept(&x, TOPIC, o.records) != 0)
        goto out;

    x.fetch_wait_ms = o.fetch_wait_ms;
    for (int round = 0; round < ROUNDS; round++) {
        if (run_raw(&x, &raw[round], round) != 0 ||
            run_kcat(&x, &kc[KCAT_TO_END][round], true) != 0 ||
            run_kcat(&x, &kc[KCAT_COUNT][round], false) != 0)
            goto out;
        for (int i = 0; i < o.n_batches; i++) {
            struct throughput *r = &w[i][round];
            r->batch = o.batches[i];
            snprintf(r->label, sizeof r->label, "weir, batch %d (window 0.5 s), round %d",
                     o.batches[i], round + 1);
            if (run_weir(&x, r, round) != 0)
                goto out;
        }
    }

    x.fetch_wait_ms = o.lat_fetch_wait_ms;
    say("latency runs: %d rec/s for %d s, each consumer caught up on a topic of its own",
        o.pace_rate, o.pace_seconds);
    snprintf(lat[n_lat].label, sizeof lat[n_lat].label, "raw librdkafka consumer");
    if (lat_raw(&x, &lat[n_lat++]) != 0)
        goto out;
    for (int i = 0; i < o.n_batches; i++) {
        snprintf(lat[n_lat].label, sizeof lat[n_lat].label, "weir, batch %d, window 0.5 s",
                 o.batches[i]);
        if (lat_weir(&x, LAT_WEIR_FIRST + i, o.batches[i], -1, &lat[n_lat++]) != 0)
            goto out;
    }
    if (o.window0) {
        snprintf(lat[n_lat].label, sizeof lat[n_lat].label, "weir, batch %d, window 0",
                 o.batches[0]);
        if (lat_weir(&x, LAT_WEIR_FIRST + o.n_batches, o.batches[0], 0, &lat[n_lat++]) != 0)
            goto out;
    }
    report(&x, raw, kc, w, o.n_batches, lat, n_lat, produce_rps, load0);
    rc = 0;
out:
    if (x.bulk)
        rd_kafka_destroy(x.bulk);
    if (x.paced)
        rd_kafka_destroy(x.paced);
    if (fn_up)
        nullfn_stop(&x.fn);
    broker_stop(&x);
    free(x.t.seen);
    free(x.t.lat);
    pthread_mutex_destroy(&x.t.mu);
    if (rc == 0 && !o.keep)
        nftw(x.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    else
        say("%s; logs kept in %s", rc == 0 ? "done" : "failed", x.dir);
    return rc;
}
