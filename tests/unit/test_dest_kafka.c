/* The Kafka topic destination against a real Kafka-protocol cluster: tests/tools/kafka_broker (the
 * program the integration tests use, found beside this test or at $WEIR_KAFKA_BROKER) started as a
 * child. Messages put on a real event_base are read back with a librdkafka consumer, byte for
 * byte; the broker is taken down with SIGUSR1 to see puts fail, and up again with SIGUSR2. */
#define _GNU_SOURCE /* nftw */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <setjmp.h>
#include <cmocka.h>

#include <event2/event.h>
#include <librdkafka/rdkafka.h>

#include "connectors/destination.h"
#include "core/clock.h"
#include "model/record.h"

#define TOPIC      "dest"
#define PARTITIONS 3
#define DOWN_TOPIC "down"
#define N_MESSAGES 100

static char dir[PATH_MAX];   /* this run's temp dir: the bootstrap file */
static char bootstrap[1024]; /* "127.0.0.1:port" */
static pid_t broker_pid = -1;
static struct event_base *base;

/* ---- the broker ----------------------------------------------------------------------------- */

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int broker_path(char *out, size_t len)
{
    const char *env = getenv("WEIR_KAFKA_BROKER");
    if (env && *env) {
        snprintf(out, len, "%s", env);
        return 0;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    return snprintf(out, len, "%s/kafka_broker", self) < (int)len ? 0 : -1;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int group_setup(void **state)
{
    char path[PATH_MAX], boot_file[PATH_MAX + 16];
    if (broker_path(path, sizeof(path)) != 0 || access(path, X_OK) != 0) {
        fprintf(stderr, "kafka_broker not found at %s (build it, or set WEIR_KAFKA_BROKER)\n",
                path);
        return -1;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/weir-dest-kafka-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return -1;
    snprintf(boot_file, sizeof(boot_file), "%s/bootstrap", dir);
    broker_pid = fork();
    if (broker_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* not left behind by a test that crashed */
        freopen("/dev/null", "w", stdout);
        execl(path, "kafka_broker", "--brokers", "1", "--topic", TOPIC ":3", "--topic",
              DOWN_TOPIC ":1", "--bootstrap-file", boot_file, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 3000; i++) {
        FILE *f = fopen(boot_file, "r");
        if (f) {
            bool ok = fgets(bootstrap, sizeof(bootstrap), f) != NULL;
            fclose(f);
            bootstrap[strcspn(bootstrap, "\n")] = '\0';
            if (ok && bootstrap[0]) {
                base = event_base_new();
                return base ? 0 : -1;
            }
        }
        if (waitpid(broker_pid, NULL, WNOHANG) == broker_pid) {
            broker_pid = -1;
            fprintf(stderr, "kafka_broker exited before it was ready\n");
            return -1;
        }
        sleep_ms(10);
    }
    fprintf(stderr, "kafka_broker wrote no bootstrap file in 30 s\n");
    return -1;
}

static int group_teardown(void **state)
{
    int rv = 0;
    if (broker_pid > 0) {
        int status = 0;
        kill(broker_pid, SIGTERM);
        waitpid(broker_pid, &status, 0);
        /* Under the sanitizers a report makes it exit non-zero. */
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "kafka_broker ended with status %d on SIGTERM\n", status);
            rv = -1;
        }
        broker_pid = -1;
    }
    if (base)
        event_base_free(base);
    if (dir[0])
        nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    return rv;
}

/* Whether the broker's port accepts a connection now. */
static bool broker_accepts(void)
{
    char host[64];
    const char *colon = strrchr(bootstrap, ':');
    snprintf(host, sizeof(host), "%.*s", (int)(colon - bootstrap), bootstrap);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    inet_pton(AF_INET, host, &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

/* SIGUSR1 (down) or SIGUSR2 (up), then waits until the port says so. */
static void broker_set(bool up)
{
    kill(broker_pid, up ? SIGUSR2 : SIGUSR1);
    for (int i = 0; i < 3000 && broker_accepts() != up; i++)
        sleep_ms(10);
    assert_true(broker_accepts() == up);
}

/* Each test starts with the broker up, whatever the one before left. */
static int test_setup(void **state)
{
    if (!broker_accepts())
        broker_set(true);
    return 0;
}

/* ---- the loop ------------------------------------------------------------------------------- */

struct done_rec {
    int calls;
    weir_status st;
    char error[700];
};

static bool in_put; /* done must never run inside put */

static void on_done(void *arg, weir_status st, const char *error)
{
    struct done_rec *r = arg;
    assert_false(in_put);
    r->calls++;
    r->st = st;
    snprintf(r->error, sizeof(r->error), "%s", error ? error : "");
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
}

static bool all_done(const struct done_rec *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (r[i].calls == 0)
            return false;
    return true;
}

/* Runs the loop until every put got its done, or max_ms passed. */
static bool run_until(const struct done_rec *r, size_t n, int64_t max_ms)
{
    int64_t deadline = weir_clock_mono_ms() + max_ms;
    struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {0, 10000};
    event_add(tick, &tv);
    while (!all_done(r, n) && weir_clock_mono_ms() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(tick);
    return all_done(r, n);
}

static void put(struct weir_destination *d, const struct weir_message *msg, struct done_rec *r)
{
    in_put = true;
    d->ops->put(d, msg, on_done, r);
    in_put = false;
}

static struct weir_destination *dest_new(const char *topic_and_query)
{
    char uri[1200];
    struct weir_err err = {{0}};
    snprintf(uri, sizeof(uri), "kafka://%s/%s", bootstrap, topic_and_query);
    assert_int_equal(weir_destination_check(uri, &err), WEIR_OK);
    struct weir_destination *d = weir_destination_new(uri, base, &err);
    if (!d)
        fail_msg("weir_destination_new(%s): %s", uri, err.msg);
    assert_ptr_equal(d->ops, &weir_dest_kafka);
    assert_true(d->ops->takes_records);
    return d;
}

/* ---- what is sent, and reading it back ------------------------------------------------------ */

/* Message i: a value with a NUL and bytes that are not ASCII, a key (none for every tenth),
 * headers with a null value, an empty one and binary bytes, in this order. */
struct sent {
    char value[64];
    size_t value_len;
    char key[32];
    size_t key_len;
    bool has_key;
    char *headers;
    size_t headers_len;
};

static void make_sent(struct sent *s, int i)
{
    memset(s, 0, sizeof(*s));
    s->value_len = (size_t)snprintf(s->value, sizeof(s->value), "value-%03d", i);
    memcpy(s->value + s->value_len, "\0\xff\xc3\xa9\x80", 5);
    s->value_len += 5;
    s->has_key = i % 10 != 0;
    if (s->has_key)
        s->key_len = (size_t)snprintf(s->key, sizeof(s->key), "key-%03d\xfe", i);
    char n[16];
    int n_len = snprintf(n, sizeof(n), "%d", i);
    weir_headers_add(&s->headers, &s->headers_len, "n", 1, n, (size_t)n_len);
    weir_headers_add(&s->headers, &s->headers_len, "null", 4, NULL, 0);
    weir_headers_add(&s->headers, &s->headers_len, "empty", 5, "", 0);
    weir_headers_add(&s->headers, &s->headers_len, "bin\xe2\x82\xac", 6, "\x00\xff\x80\x7f", 4);
    weir_headers_add(&s->headers, &s->headers_len, "n", 1, "again", 5); /* names repeat */
}

static void check_received(const rd_kafka_message_t *rkm, const struct sent *s)
{
    assert_int_equal(rkm->len, s->value_len);
    assert_memory_equal(rkm->payload, s->value, s->value_len);
    if (!s->has_key) {
        assert_null(rkm->key);
    } else {
        assert_non_null(rkm->key);
        assert_int_equal(rkm->key_len, s->key_len);
        assert_memory_equal(rkm->key, s->key, s->key_len);
    }
    rd_kafka_headers_t *hdrs = NULL;
    assert_int_equal(rd_kafka_message_headers(rkm, &hdrs), RD_KAFKA_RESP_ERR_NO_ERROR);
    struct weir_header h;
    size_t off = 0, idx = 0;
    while (weir_headers_next(s->headers, s->headers_len, &off, &h)) {
        const char *name;
        const void *value;
        size_t size;
        assert_int_equal(rd_kafka_header_get_all(hdrs, idx++, &name, &value, &size),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
        assert_int_equal(strlen(name), h.name_len);
        assert_memory_equal(name, h.name, h.name_len);
        if (!h.value) {
            assert_null(value);
        } else {
            assert_non_null(value);
            assert_int_equal(size, h.value_len);
            assert_memory_equal(value, h.value, h.value_len);
        }
    }
    assert_int_equal(rd_kafka_header_cnt(hdrs), idx);
}

static void conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
        fail_msg("%s: %s", name, errstr);
}

/* Reads every partition of topic from its beginning to its end, handing each message to each;
 * returns how many came, or fails the test when the end is not reached in 30 s. Whatever was
 * produced (acks=all) before the call is read. A consumer cannot be destroyed while a message of
 * its is held, so none outlives the call. */
static size_t consume(const char *topic, int partitions,
                      void (*each)(const rd_kafka_message_t *rkm, void *arg), void *arg)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    conf_set(conf, "bootstrap.servers", bootstrap);
    conf_set(conf, "group.id", "test-dest-kafka");
    conf_set(conf, "enable.auto.commit", "false");
    conf_set(conf, "enable.partition.eof", "true");
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!rk)
        fail_msg("consumer: %s", errstr);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    /* Assigned, not subscribed: no group join, which the mock makes wait seconds. */
    assert_int_equal(rd_kafka_assign(rk, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);
    size_t got = 0;
    int at_end = 0;
    int64_t deadline = weir_clock_mono_ms() + 30000;
    while (at_end < partitions && weir_clock_mono_ms() < deadline) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 100);
        if (!rkm)
            continue;
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            at_end++;
        } else if (!rkm->err) {
            got++;
            if (each)
                each(rkm, arg);
        }
        rd_kafka_message_destroy(rkm);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    assert_int_equal(at_end, partitions);
    return got;
}

/* ---- tests ---------------------------------------------------------------------------------- */

struct received {
    const struct sent *sent;
    bool seen[N_MESSAGES];
    bool partition_used[PARTITIONS];
};

static void on_received(const rd_kafka_message_t *rkm, void *arg)
{
    struct received *rx = arg;
    int i = atoi((const char *)rkm->payload + strlen("value-"));
    assert_true(i >= 0 && i < N_MESSAGES);
    assert_false(rx->seen[i]);
    rx->seen[i] = true;
    assert_true(rkm->partition >= 0 && rkm->partition < PARTITIONS);
    rx->partition_used[rkm->partition] = true;
    check_received(rkm, &rx->sent[i]);
}

static void puts_reach_the_topic_with_key_value_and_headers_byte_for_byte(void **state)
{
    struct weir_destination *d = dest_new(TOPIC);
    static struct sent sent[N_MESSAGES];
    static struct done_rec done[N_MESSAGES];
    memset(done, 0, sizeof(done));
    for (int i = 0; i < N_MESSAGES; i++) {
        make_sent(&sent[i], i);
        struct weir_message msg = {
            .id = "id",
            .body = sent[i].value,
            .body_len = sent[i].value_len,
            .attrs_json = i % 2 ? "{\"A\":{\"dataType\":\"String\",\"stringValue\":\"x\"}}" : NULL,
            .key = sent[i].has_key ? sent[i].key : NULL,
            .key_len = sent[i].key_len,
            .headers = sent[i].headers,
            .headers_len = sent[i].headers_len,
        };
        put(d, &msg, &done[i]);
        assert_int_equal(done[i].calls, 0);
    }
    assert_true(run_until(done, N_MESSAGES, 60000));
    for (int i = 0; i < N_MESSAGES; i++) {
        if (done[i].st != WEIR_OK)
            fail_msg("put %d: %s", i, done[i].error);
        assert_int_equal(done[i].calls, 1);
    }
    weir_destination_free(d);

    struct received rx = {.sent = sent};
    assert_int_equal(consume(TOPIC, PARTITIONS, on_received, &rx), N_MESSAGES);
    for (int i = 0; i < N_MESSAGES; i++)
        assert_true(rx.seen[i]);
    for (int p = 0; p < PARTITIONS; p++)
        assert_true(rx.partition_used[p]); /* keys spread over the partitions */
    for (int i = 0; i < N_MESSAGES; i++)
        free(sent[i].headers);
}

static void check_refuses_bad_uris_with_a_clear_message(void **state)
{
    static const struct {
        const char *uri;
        const char *says;
    } bad[] = {
        {"kafka://", "at least one host:port"},
        {"kafka:///topic", "at least one host:port"},
        {"kafka://127.0.0.1/topic", "is not a host:port"},
        {"kafka://127.0.0.1:0/topic", "is not a host:port"},
        {"kafka://127.0.0.1:65536/topic", "is not a host:port"},
        {"kafka://127.0.0.1:9092,/topic", "is not a host:port"},
        {"kafka://127.0.0.1:9092,broker:x/topic", "\"broker:x\" is not a host:port"},
        {"kafka://user:pw@127.0.0.1:9092/topic", "is not a host:port"},
        {"kafka://127.0.0.1:9092", "needs a topic"},
        {"kafka://127.0.0.1:9092/", "needs a topic"},
        {"kafka://127.0.0.1:9092?acks=1", "needs a topic"},
        {"kafka://127.0.0.1:9092/a/b", "holds '/'"},
        {"kafka://127.0.0.1:9092/caf\xc3\xa9", "a Kafka topic name is made of"},
        {"kafka://127.0.0.1:9092/with space", "holds ' '"},
        {"kafka://127.0.0.1:9092/..", "cannot name a Kafka topic"},
        {"kafka://127.0.0.1:9092/t#frag", "no #fragment"},
        {"kafka://127.0.0.1:9092/t?acks", "is not property=value"},
        {"kafka://127.0.0.1:9092/t?=1", "is not property=value"},
        {"kafka://127.0.0.1:9092/t?linger.ms=%zz", "bad %-escape"},
        {"kafka://127.0.0.1:9092/t?no.such.property=1", "no.such.property"},
        {"kafka://127.0.0.1:9092/t?message.timeout.ms=abc", "message.timeout.ms"},
        {"kafka://127.0.0.1:9092/t?bootstrap.servers=a:1", "the URI's hosts"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        struct weir_err err = {{0}};
        if (weir_destination_check(bad[i].uri, &err) != WEIR_ERR)
            fail_msg("accepted %s", bad[i].uri);
        if (!strstr(err.msg, bad[i].says))
            fail_msg("%s: \"%s\" does not say \"%s\"", bad[i].uri, err.msg, bad[i].says);
        /* new refuses it too, connecting nowhere */
        assert_null(weir_destination_new(bad[i].uri, base, &err));
    }
    char long_topic[300];
    memset(long_topic, 'a', sizeof(long_topic));
    char uri[400];
    snprintf(uri, sizeof(uri), "kafka://h:1/%.250s", long_topic);
    struct weir_err err = {{0}};
    assert_int_equal(weir_destination_check(uri, &err), WEIR_ERR);
    assert_non_null(strstr(err.msg, "Kafka takes 1..249"));
    snprintf(uri, sizeof(uri), "kafka://h:1/%.249s", long_topic);
    assert_int_equal(weir_destination_check(uri, &err), WEIR_OK);

    static const char *const good[] = {
        "kafka://127.0.0.1:9092/failures",
        "KAFKA://broker-1.example.com:9092,broker_2:19092,[::1]:9093/Orders.DLQ-v2_x",
        "kafka://h:1/t?message.timeout.ms=5000&linger.ms=0&&client.id=weir%2Dtest",
        "kafka://h:1/t?",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
        if (weir_destination_check(good[i], &err) != WEIR_OK)
            fail_msg("refused %s: %s", good[i], err.msg);
    /* librdkafka's word on a value it cannot take is kept. */
    assert_int_equal(weir_destination_check("kafka://h:1/t?security.protocol=bogus", &err),
                     WEIR_ERR);
    assert_non_null(strstr(err.msg, "Invalid value \"bogus\" for configuration property"));
}

static void a_message_librdkafka_refuses_fails_from_the_loop_not_inside_put(void **state)
{
    struct weir_destination *d = dest_new(TOPIC "?message.max.bytes=1000");
    static char big[4000];
    memset(big, 'x', sizeof(big));
    struct weir_message msg = {.id = "id", .body = big, .body_len = sizeof(big)};
    struct done_rec done = {0};
    put(d, &msg, &done);
    assert_int_equal(done.calls, 0);
    assert_true(run_until(&done, 1, 10000));
    assert_int_equal(done.st, WEIR_ERR);
    assert_non_null(strstr(done.error, "too large"));
    assert_non_null(strstr(done.error, "kafka://"));
    weir_destination_free(d);
}

static void a_put_fails_when_the_broker_stays_down_past_the_message_timeout(void **state)
{
    /* Reconnects soon after the broker is back, where librdkafka would back off for up to 10 s. */
    struct weir_destination *d =
        dest_new(DOWN_TOPIC "?message.timeout.ms=2000&reconnect.backoff.max.ms=200");
    struct weir_message msg = {.id = "id", .body = "first", .body_len = 5};
    struct done_rec done[3] = {{0}};
    put(d, &msg, &done[0]);
    assert_true(run_until(&done[0], 1, 30000));
    if (done[0].st != WEIR_OK)
        fail_msg("first put: %s", done[0].error);

    broker_set(false);
    msg.body = "while-down";
    msg.body_len = 10;
    int64_t t0 = weir_clock_mono_ms();
    put(d, &msg, &done[1]);
    assert_true(run_until(&done[1], 1, 30000));
    int64_t took = weir_clock_mono_ms() - t0;
    assert_int_equal(done[1].st, WEIR_ERR);
    if (!strstr(done[1].error, "timed out"))
        fail_msg("the failure says: %s", done[1].error);
    assert_true(took >= 1900); /* not before the message timeout */

    /* Back up: the same producer delivers again. */
    broker_set(true);
    msg.body = "after";
    msg.body_len = 5;
    put(d, &msg, &done[2]);
    assert_true(run_until(&done[2], 1, 30000));
    if (done[2].st != WEIR_OK)
        fail_msg("put after the broker came back: %s", done[2].error);
    weir_destination_free(d);

    /* "first" and "after"; the timed-out one never landed. */
    assert_int_equal(consume(DOWN_TOPIC, 1, NULL, NULL), 2);
}

static void free_abandons_puts_in_flight_quickly_and_never_calls_their_done(void **state)
{
    struct weir_destination *d = dest_new(DOWN_TOPIC);
    struct weir_message msg = {.id = "id", .body = "x", .body_len = 1};
    struct done_rec warm = {0}, done[20] = {{0}};
    put(d, &msg, &warm);
    assert_true(run_until(&warm, 1, 30000));
    assert_int_equal(warm.st, WEIR_OK);
    broker_set(false);
    for (int i = 0; i < 20; i++)
        put(d, &msg, &done[i]);
    /* A few turns of the loop: they are in librdkafka's hands, not delivered. */
    struct done_rec never = {0};
    run_until(&never, 1, 300);
    int64_t t0 = weir_clock_mono_ms();
    weir_destination_free(d);
    int64_t took = weir_clock_mono_ms() - t0;
    broker_set(true);
    for (int i = 0; i < 20; i++)
        assert_int_equal(done[i].calls, 0);
    run_until(&never, 1, 200); /* nothing left to fire on the loop either */
    for (int i = 0; i < 20; i++)
        assert_int_equal(done[i].calls, 0);
    if (took > 2000)
        fail_msg("free took %lld ms", (long long)took);
}

/* done may free the destination; the puts still waiting are then abandoned. */
struct free_in_done {
    struct weir_destination *d;
    int calls;
};

static void on_done_free(void *arg, weir_status st, const char *error)
{
    struct free_in_done *f = arg;
    f->calls++;
    weir_destination_free(f->d);
}

static void free_from_inside_done_is_safe(void **state)
{
    struct weir_destination *d = dest_new(TOPIC);
    struct free_in_done f = {.d = d};
    struct weir_message msg = {.id = "id", .body = "y", .body_len = 1};
    for (int i = 0; i < 5; i++)
        d->ops->put(d, &msg, on_done_free, &f);
    int64_t deadline = weir_clock_mono_ms() + 30000;
    struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {0, 10000};
    event_add(tick, &tv);
    while (f.calls == 0 && weir_clock_mono_ms() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
    /* A few more turns: nothing of the freed destination may run. */
    for (int i = 0; i < 20; i++)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(tick);
    assert_int_equal(f.calls, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(puts_reach_the_topic_with_key_value_and_headers_byte_for_byte,
                               test_setup),
        cmocka_unit_test_setup(check_refuses_bad_uris_with_a_clear_message, test_setup),
        cmocka_unit_test_setup(a_message_librdkafka_refuses_fails_from_the_loop_not_inside_put,
                               test_setup),
        cmocka_unit_test_setup(a_put_fails_when_the_broker_stays_down_past_the_message_timeout,
                               test_setup),
        cmocka_unit_test_setup(free_abandons_puts_in_flight_quickly_and_never_calls_their_done,
                               test_setup),
        cmocka_unit_test_setup(free_from_inside_done_is_safe, test_setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
