/* The Redis queue against a real redis-server started by this test on a free loopback port: the
 * Lua scripts run raw through a synchronous hiredis context (claim, reclaim, release, delete,
 * bury), the element parser and URI rules, then the poller itself on a libevent loop with a
 * stand-in mapping (delivery, settles, redelivery after the lease, BLMOVE pickup, a Redis
 * restart, stop with Redis down, dead-lettering of unreadable elements, AUTH). */
#define _GNU_SOURCE /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <ftw.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/mem.h"
#include "model/record.h"
#include "pollers/poller.h"
#include "pollers/redis.h"

extern const struct weir_source weir_source_redis;
#define redis_ops (weir_source_redis.ops)

/* ---- the server ---- */

static pid_t server_pid = -1;
static int server_port;
static char server_dir[4096];
static redisContext *rc;

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        perror("free_port");
        exit(1);
    }
    close(fd);
    return ntohs(a.sin_port);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static redisContext *connect_sync(void)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", server_port, tv);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    return c;
}

/* Starts redis-server on server_port and waits until it answers PING. */
static int server_start(void)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", server_port);
    server_pid = fork();
    if (server_pid == 0) {
        freopen("/dev/null", "w", stdout);
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", server_dir, "--daemonize", "no", "--loglevel",
               "warning", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        redisContext *c = connect_sync();
        if (c) {
            redisReply *r = redisCommand(c, "PING");
            int ok = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
            freeReplyObject(r);
            if (ok) {
                rc = c;
                return 0;
            }
            redisFree(c);
        }
        sleep_ms(10);
    }
    fprintf(stderr, "redis-server did not answer on port %d\n", server_port);
    return -1;
}

static void server_kill(void)
{
    if (rc) {
        redisFree(rc);
        rc = NULL;
    }
    if (server_pid > 0) {
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
        server_pid = -1;
    }
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int group_setup(void **state)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(server_dir, sizeof(server_dir), "%s/weir-redis-test-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(server_dir))
        return -1;
    server_port = free_port();
    return server_start();
}

static int group_teardown(void **state)
{
    server_kill();
    nftw(server_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static int test_setup(void **state)
{
    redisReply *r = redisCommand(rc, "FLUSHALL");
    int ok = r && r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    return ok ? 0 : -1;
}

/* ---- script helpers ---- */

static const char *const KEY = "q";
static const char *const DLQ = "q-dlq";
static struct weir_redis_keys keys;
static char prefix[25];

static void keys_for(const char *list)
{
    weir_redis_keys_deinit(&keys);
    weir_redis_keys_init(&keys, list);
    struct weir_redis_uri u = {
        .host = "127.0.0.1", .port = server_port, .db = 0, .key = (char *)list};
    weir_redis_lease_prefix(&u, prefix);
}

/* EVAL of script s with the given keys and args on c. */
static redisReply *eval_on(redisContext *c, enum weir_redis_script s, int nkeys,
                           const char *const *k, int nargs, const char *const *a)
{
    const char *argv[64];
    char nk[8];
    int argc = 0;
    snprintf(nk, sizeof(nk), "%d", nkeys);
    argv[argc++] = "EVAL";
    argv[argc++] = weir_redis_script_text(s);
    argv[argc++] = nk;
    for (int i = 0; i < nkeys; i++)
        argv[argc++] = k[i];
    for (int i = 0; i < nargs; i++)
        argv[argc++] = a[i];
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR)
        fail_msg("%s: %s", weir_redis_script_name(s), r->str);
    return r;
}

static redisReply *claim_on(redisContext *c, int n, int64_t lease_ms)
{
    char sn[16], sl[24];
    snprintf(sn, sizeof(sn), "%d", n);
    snprintf(sl, sizeof(sl), "%lld", (long long)lease_ms);
    const char *k[] = {keys.list, keys.inflight, keys.leases, keys.seq};
    const char *a[] = {sn, sl, prefix};
    redisReply *r = eval_on(c, WEIR_REDIS_CLAIM, 4, k, 3, a);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_true(r->elements % 2 == 1);
    assert_int_equal(r->element[0]->type, REDIS_REPLY_INTEGER);
    return r;
}

static redisReply *claim(int n)
{
    return claim_on(rc, n, 30000);
}

/* Reclaim as if the clock were `now` (0: the server's). Returns {returned, dead}. */
static void reclaim(int64_t now, int maxrc, const char *dlq, long long *back, long long *dead)
{
    char sn[24], sm[16];
    snprintf(sn, sizeof(sn), "%lld", (long long)now);
    snprintf(sm, sizeof(sm), "%d", maxrc);
    const char *k[] = {keys.list, keys.inflight, keys.leases, dlq};
    const char *a[] = {sn, sm, "1000", "30000"};
    redisReply *r = eval_on(rc, WEIR_REDIS_RECLAIM, dlq ? 4 : 3, k, 4, a);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 2);
    *back = r->element[0]->integer;
    *dead = r->element[1]->integer;
    freeReplyObject(r);
}

/* Far enough ahead that every lease has ended. */
#define FUTURE 9000000000000LL

static long long cmd_int(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* The server's clock, in ms. */
static long long server_ms(void)
{
    redisReply *t = redisCommand(rc, "TIME");
    long long ms = atoll(t->element[0]->str) * 1000 + atoll(t->element[1]->str) / 1000;
    freeReplyObject(t);
    return ms;
}

/* The element at index i of list (a copy; free it), or NULL. */
static char *lindex(const char *list, long i, size_t *len)
{
    redisReply *r = redisCommand(rc, "LINDEX %s %ld", list, i);
    assert_non_null(r);
    char *s = NULL;
    if (len)
        *len = 0;
    if (r->type == REDIS_REPLY_STRING) {
        s = weir_malloc(r->len + 1);
        memcpy(s, r->str, r->len);
        s[r->len] = '\0';
        if (len)
            *len = r->len;
    }
    freeReplyObject(r);
    return s;
}

static void rpush(const char *list, const char *el, size_t len)
{
    cmd_int("RPUSH %s %b", list, el, len);
}

static struct weir_record *parse_ok(const char *el, size_t len, const char *lease, int64_t now)
{
    struct weir_record *r = NULL;
    struct weir_err err;
    if (weir_redis_parse_element(el, len, lease, now, &weir_format_sqs, &r, &err) != WEIR_OK)
        fail_msg("parse of %.*s failed: %s", (int)len, el, err.msg);
    return r;
}

/* ---- scripts ---- */

static void claim_takes_from_the_head_and_leases_each_element(void **state)
{
    keys_for(KEY);
    cmd_int("RPUSH q a b c");
    redisReply *r = claim(2);
    assert_int_equal(r->elements, 5);
    int64_t now = r->element[0]->integer;
    int64_t wall = weir_clock_wall_ms();
    assert_true(now > wall - 5000 && now < wall + 5000);
    assert_string_equal(r->element[2]->str, "a");
    assert_string_equal(r->element[4]->str, "b");
    const char *id1 = r->element[1]->str;
    assert_int_equal(strlen(id1), 36);
    assert_memory_equal(id1, prefix, 24);
    assert_string_equal(id1 + 24, "000000000001");
    assert_string_equal(r->element[3]->str + 24, "000000000002");
    redisReply *h = redisCommand(rc, "HGET %s %s", keys.inflight, id1);
    assert_string_equal(h->str, "a");
    freeReplyObject(h);
    redisReply *z = redisCommand(rc, "ZSCORE %s %s", keys.leases, id1);
    assert_int_equal(strtoll(z->str, NULL, 10), now + 30000);
    freeReplyObject(z);
    freeReplyObject(r);
    assert_int_equal(cmd_int("LLEN q"), 1);

    r = claim(5);
    assert_int_equal(r->elements, 3);
    assert_string_equal(r->element[2]->str, "c");
    freeReplyObject(r);
    r = claim(5);
    assert_int_equal(r->elements, 1); /* empty list: only the server time */
    freeReplyObject(r);
}

static void concurrent_claims_never_lease_one_element_twice(void **state)
{
    keys_for(KEY);
    enum { N = 3000 };
    for (int i = 0; i < N; i += 500) {
        const char *argv[502];
        char bufs[500][16];
        argv[0] = "RPUSH";
        argv[1] = "q";
        for (int j = 0; j < 500; j++) {
            snprintf(bufs[j], sizeof(bufs[j]), "m%d", i + j);
            argv[2 + j] = bufs[j];
        }
        freeReplyObject(redisCommandArgv(rc, 502, argv, NULL));
    }
    pid_t child = fork();
    if (child == 0) {
        /* The other weir: claims in its own batches, reports what it got in a set. */
        redisContext *c = connect_sync();
        if (!c)
            _exit(2);
        for (;;) {
            redisReply *r = redisCommand(c, "EVAL %s 4 %s %s %s %s 7 30000 %s",
                                         weir_redis_script_text(WEIR_REDIS_CLAIM), keys.list,
                                         keys.inflight, keys.leases, keys.seq, prefix);
            if (!r || r->type != REDIS_REPLY_ARRAY)
                _exit(3);
            size_t n = r->elements;
            for (size_t i = 2; i < n; i += 2)
                freeReplyObject(
                    redisCommand(c, "SADD child %b", r->element[i]->str, r->element[i]->len));
            freeReplyObject(r);
            if (n == 1)
                break;
        }
        redisFree(c);
        _exit(0);
    }
    size_t mine = 0;
    for (;;) {
        redisReply *r = claim(5);
        size_t n = r->elements;
        for (size_t i = 2; i < n; i += 2) {
            cmd_int("SADD mine %s", r->element[i]->str);
            mine++;
        }
        freeReplyObject(r);
        if (n == 1)
            break;
    }
    int status = 0;
    waitpid(child, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    long long theirs = cmd_int("SCARD child");
    assert_int_equal(cmd_int("SCARD mine"), (long long)mine);
    assert_true(mine > 0 && theirs > 0); /* both really took part */
    assert_int_equal((long long)mine + theirs, N);
    assert_int_equal(cmd_int("SINTERSTORE both mine child"), 0);
    assert_int_equal(cmd_int("HLEN %s", keys.inflight), N); /* N distinct lease ids */
    assert_int_equal(cmd_int("ZCARD %s", keys.leases), N);
}

static void plain_message_keeps_its_id_across_reclaim(void **state)
{
    keys_for(KEY);
    cmd_int("RPUSH q hello");
    redisReply *r = claim(1);
    int64_t now1 = r->element[0]->integer;
    char *id1 = weir_strdup(r->element[1]->str);
    struct weir_record *first = parse_ok(r->element[2]->str, r->element[2]->len, id1, now1);
    assert_string_equal(first->id, id1);
    assert_string_equal(first->handle, id1);
    assert_int_equal(first->receive_count, 1);
    assert_int_equal(first->first_receive_ms, now1);
    assert_int_equal(first->sent_ms, now1);
    assert_int_equal(first->seq, 1);
    weir_record_free(first);
    freeReplyObject(r);

    long long back, dead;
    reclaim(FUTURE, 0, NULL, &back, &dead);
    assert_int_equal(back, 1);
    assert_int_equal(dead, 0);
    size_t len;
    char *el = lindex("q", 0, &len);
    assert_non_null(el);
    assert_true(strncmp(el, "{\"weir\":1,", 10) == 0);

    r = claim(1);
    int64_t now2 = r->element[0]->integer;
    const char *id2 = r->element[1]->str;
    assert_string_not_equal(id2, id1);
    struct weir_record *again = parse_ok(r->element[2]->str, r->element[2]->len, id2, now2);
    assert_string_equal(again->id, id1); /* messageId stable */
    assert_string_equal(again->handle, id2);
    assert_int_equal(again->receive_count, 2);
    assert_int_equal(again->first_receive_ms, now1);
    assert_int_equal(again->data_len, 5);
    assert_memory_equal(again->data, "hello", 5);
    weir_record_free(again);
    freeReplyObject(r);
    free(el);
    free(id1);
}

static void reclaim_returns_expired_leases_to_the_head_oldest_first(void **state)
{
    keys_for(KEY);
    cmd_int("RPUSH q a b c d");
    freeReplyObject(claim(2));
    long long back, dead;
    reclaim(FUTURE, 0, NULL, &back, &dead);
    assert_int_equal(back, 2);
    assert_int_equal(cmd_int("LLEN q"), 4);
    const char *want[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++) {
        size_t len;
        char *el = lindex("q", i, &len);
        struct weir_record *r = parse_ok(el, len, "00000000-0000-4000-8000-0000000000ff", 1);
        assert_int_equal(r->data_len, 1);
        assert_memory_equal(r->data, want[i], 1);
        assert_int_equal(r->receive_count, i < 2 ? 2 : 1);
        weir_record_free(r);
        free(el);
    }
    assert_int_equal(cmd_int("HLEN %s", keys.inflight), 0);
    assert_int_equal(cmd_int("ZCARD %s", keys.leases), 0);
}

static void reclaim_leaves_leases_that_have_not_ended(void **state)
{
    keys_for(KEY);
    cmd_int("RPUSH q a");
    freeReplyObject(claim(1));
    long long back, dead;
    reclaim(0, 0, NULL, &back, &dead); /* server time: the 30 s lease is still running */
    assert_int_equal(back + dead, 0);
    assert_int_equal(cmd_int("HLEN %s", keys.inflight), 1);
    assert_int_equal(cmd_int("LLEN q"), 0);
}

static const char TRICKY_ENVELOPE[] =
    "{\"weir\":1,\"body\":\"line\\n\\\"quoted\\\" \\u00e9 \\u0000 /slash \xe2\x82\xac\","
    "\"attributes\":{\"tenant\":\"acme\",\"n\":{\"dataType\":\"Number\",\"stringValue\":\"42\"}},"
    "\"group\":\"g1\",\"dedup\":\"d1\",\"sent\":1741083062118,\"x-custom\":[1,\"two\"]}";
static const char TRICKY_BODY[] = "line\n\"quoted\" \xc3\xa9 \0 /slash \xe2\x82\xac";

static void reclaim_moves_to_the_dead_letter_list_at_max_receives_with_body_intact(void **state)
{
    keys_for(KEY);
    rpush("q", TRICKY_ENVELOPE, sizeof(TRICKY_ENVELOPE) - 1);
    long long back, dead;
    for (int round = 1; round <= 2; round++) {
        redisReply *r = claim(1);
        assert_int_equal(r->elements, 3);
        struct weir_record *rec =
            parse_ok(r->element[2]->str, r->element[2]->len, r->element[1]->str, 5);
        assert_int_equal(rec->receive_count, round);
        weir_record_free(rec);
        freeReplyObject(r);
        reclaim(FUTURE, 2, DLQ, &back, &dead);
        assert_int_equal(back, round == 1 ? 1 : 0);
        assert_int_equal(dead, round == 1 ? 0 : 1);
    }
    assert_int_equal(cmd_int("LLEN q"), 0);
    assert_int_equal(cmd_int("LLEN %s", DLQ), 1);
    assert_int_equal(cmd_int("HLEN %s", keys.inflight), 0);
    assert_int_equal(cmd_int("ZCARD %s", keys.leases), 0);

    size_t len;
    char *el = lindex(DLQ, 0, &len);
    assert_true(strncmp(el, "{\"weir\":1,", 10) == 0);
    struct weir_record *r = parse_ok(el, len, "00000000-0000-4000-8000-000000000009", 7);
    assert_int_equal(r->data_len, sizeof(TRICKY_BODY) - 1);
    assert_memory_equal(r->data, TRICKY_BODY, sizeof(TRICKY_BODY) - 1);
    assert_int_equal(r->receive_count, 3); /* received twice, rc 2 */
    assert_string_equal(r->group_id, "g1");
    assert_string_equal(r->dedup_id, "d1");
    assert_int_equal(r->sent_ms, 1741083062118LL);
    assert_non_null(r->attrs_json);
    assert_non_null(strstr(r->attrs_json, "\"tenant\":{\"stringValue\":\"acme\""));
    assert_non_null(strstr(r->attrs_json, "\"n\":{\"stringValue\":\"42\""));
    /* A member weir does not know is carried along. */
    json_error_t jerr;
    json_t *j = json_loadb(el, len, JSON_ALLOW_NUL, &jerr);
    assert_non_null(j);
    json_t *x = json_object_get(j, "x-custom");
    assert_true(json_is_array(x) && json_array_size(x) == 2);
    assert_string_equal(json_string_value(json_array_get(x, 1)), "two");
    json_decref(j);
    weir_record_free(r);
    free(el);
}

static void release_gives_back_without_counting_a_receive(void **state)
{
    keys_for(KEY);
    static const char env[] = "{\"weir\":1,\"id\":\"m-1\",\"body\":\"b\",\"rc\":3}";
    cmd_int("RPUSH q plain");
    rpush("q", env, sizeof(env) - 1);
    cmd_int("RPUSH q later");
    redisReply *r = claim(2);
    const char *k[] = {keys.list, keys.inflight, keys.leases};
    const char *a[] = {r->element[1]->str, r->element[3]->str};
    redisReply *rel = eval_on(rc, WEIR_REDIS_RELEASE, 3, k, 2, a);
    assert_int_equal(rel->integer, 2);
    freeReplyObject(rel);
    freeReplyObject(r);
    size_t len;
    char *e0 = lindex("q", 0, &len);
    assert_string_equal(e0, "plain");
    char *e1 = lindex("q", 1, &len);
    assert_string_equal(e1, env); /* byte for byte: rc not raised */
    char *e2 = lindex("q", 2, &len);
    assert_string_equal(e2, "later");
    free(e0);
    free(e1);
    free(e2);
    assert_int_equal(cmd_int("HLEN %s", keys.inflight), 0);
    assert_int_equal(cmd_int("ZCARD %s", keys.leases), 0);
}

static void delete_removes_the_lease_and_leaves_others(void **state)
{
    keys_for(KEY);
    cmd_int("RPUSH q a b c");
    redisReply *r = claim(3);
    const char *k[] = {keys.inflight, keys.leases};
    const char *a[] = {r->element[1]->str, r->element[5]->str, "no-such-lease"};
    redisReply *d = eval_on(rc, WEIR_REDIS_DELETE, 2, k, 3, a);
    assert_int_equal(d->integer, 2);
    freeReplyObject(d);
    freeReplyObject(r);
    assert_int_equal(cmd_int("HLEN %s", keys.inflight), 1);
    assert_int_equal(cmd_int("ZCARD %s", keys.leases), 1);
    long long back, dead;
    reclaim(FUTURE, 0, NULL, &back, &dead);
    assert_int_equal(back, 1); /* only b, which was not deleted */
    size_t len;
    char *el = lindex("q", 0, &len);
    struct weir_record *rec = parse_ok(el, len, "00000000-0000-4000-8000-000000000009", 1);
    assert_memory_equal(rec->data, "b", 1);
    weir_record_free(rec);
    free(el);
}

static void bury_moves_an_unreadable_element_unchanged(void **state)
{
    keys_for(KEY);
    static const char bad[] = "{\"weir\":1,\"body\":\"cut off";
    rpush("q", bad, sizeof(bad) - 1);
    redisReply *r = claim(1);
    struct weir_record *rec = NULL;
    struct weir_err err;
    assert_int_equal(weir_redis_parse_element(r->element[2]->str, r->element[2]->len,
                                              r->element[1]->str, 1, &weir_format_sqs, &rec, &err),
                     WEIR_ERR);
    assert_null(rec);
    const char *k[] = {keys.inflight, keys.leases, DLQ, keys.busy, keys.ready};
    const char *a[] = {"0", keys.group_prefix, r->element[1]->str, "unreadable"};
    redisReply *b = eval_on(rc, WEIR_REDIS_BURY, 5, k, 4, a);
    assert_int_equal(b->integer, 1);
    freeReplyObject(b);
    freeReplyObject(r);
    char *el = lindex(DLQ, 0, NULL);
    assert_string_equal(el, bad);
    free(el);
    assert_int_equal(cmd_int("HLEN %s", keys.inflight), 0);
    assert_int_equal(cmd_int("ZCARD %s", keys.leases), 0);
}

static void reclaim_puts_an_unreadable_element_back_unchanged_without_a_dlq(void **state)
{
    keys_for(KEY);
    static const char bad[] = "{\"weir\":1,\"body\":42}";
    rpush("q", bad, sizeof(bad) - 1);
    freeReplyObject(claim(1));
    long long back, dead;
    reclaim(FUTURE, 0, NULL, &back, &dead);
    assert_int_equal(back, 1);
    char *el = lindex("q", 0, NULL);
    assert_string_equal(el, bad);
    free(el);
    /* With a dead-letter list it goes there instead of looping. */
    freeReplyObject(claim(1));
    reclaim(FUTURE, 5, DLQ, &back, &dead);
    assert_int_equal(dead, 1);
    el = lindex(DLQ, 0, NULL);
    assert_string_equal(el, bad);
    free(el);
}

static void reclaim_replaces_invalid_utf8_of_a_plain_body(void **state)
{
    keys_for(KEY);
    static const char raw[] = "a\xff"
                              "b\xc3";
    rpush("q", raw, sizeof(raw) - 1);
    redisReply *r = claim(1);
    struct weir_record *first =
        parse_ok(r->element[2]->str, r->element[2]->len, r->element[1]->str, 1);
    assert_int_equal(first->data_len, 4); /* first delivery: the bytes as pushed */
    weir_record_free(first);
    freeReplyObject(r);
    long long back, dead;
    reclaim(FUTURE, 0, NULL, &back, &dead);
    size_t len;
    char *el = lindex("q", 0, &len);
    struct weir_record *rec = parse_ok(el, len, "00000000-0000-4000-8000-000000000009", 1);
    static const char want[] = "a\xef\xbf\xbd"
                               "b\xef\xbf\xbd";
    assert_int_equal(rec->data_len, sizeof(want) - 1);
    assert_memory_equal(rec->data, want, sizeof(want) - 1);
    weir_record_free(rec);
    free(el);
}

static void reclaim_changes_nothing_when_the_dead_letter_key_is_not_a_list(void **state)
{
    keys_for(KEY);
    static const char last[] = "{\"weir\":1,\"body\":\"x\",\"rc\":4}";
    cmd_int("RPUSH q good");
    rpush("q", last, sizeof(last) - 1);
    freeReplyObject(redisCommand(rc, "SET %s not-a-list", DLQ));
    freeReplyObject(claim(2));
    /* "good" goes back, "last" is due for the dead-letter key, which cannot take it: the script
     * must fail before writing anything, not after "good" has left the inflight hash. */
    char now[24];
    snprintf(now, sizeof(now), "%lld", FUTURE);
    const char *argv[] = {"EVAL",        weir_redis_script_text(WEIR_REDIS_RECLAIM),
                          "4",           keys.list,
                          keys.inflight, keys.leases,
                          DLQ,           now,
                          "5",           "1000",
                          "30000"};
    redisReply *r = redisCommandArgv(rc, 11, argv, NULL);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    assert_int_equal(cmd_int("LLEN q"), 0);
    assert_int_equal(cmd_int("HLEN %s", keys.inflight), 2); /* both still leased: none lost */
    assert_int_equal(cmd_int("ZCARD %s", keys.leases), 2);
    /* Once the key is fixed, the same leases are returned and dead-lettered as usual. */
    cmd_int("DEL %s", DLQ);
    long long back, dead;
    reclaim(FUTURE, 5, DLQ, &back, &dead);
    assert_int_equal(back, 1);
    assert_int_equal(dead, 1);
    char *el = lindex("q", 0, NULL);
    assert_non_null(strstr(el, "\"body\":\"good\""));
    free(el);
}

static void claim_takes_nothing_when_its_own_keys_hold_another_type(void **state)
{
    keys_for(KEY);
    cmd_int("RPUSH q a b");
    freeReplyObject(redisCommand(rc, "SET %s not-a-hash", keys.inflight));
    /* The script must refuse before its LPOP: Redis keeps a failed script's earlier writes. */
    const char *argv[] = {"EVAL",        weir_redis_script_text(WEIR_REDIS_CLAIM),
                          "4",           keys.list,
                          keys.inflight, keys.leases,
                          keys.seq,      "2",
                          "30000",       prefix};
    redisReply *r = redisCommandArgv(rc, 10, argv, NULL);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "WRONGTYPE"));
    freeReplyObject(r);
    assert_int_equal(cmd_int("LLEN q"), 2);
    cmd_int("DEL %s", keys.inflight);
    r = claim(2);
    assert_int_equal(r->elements, 5);
    freeReplyObject(r);
}

/* ---- the element parser, URI, names ---- */

static void envelope_members_become_record_fields(void **state)
{
    static const char env[] =
        "{ \"weir\" : 1, \"id\":\"msg-7\", \"body\":\"{\\\"k\\\":1}\", \"attributes\":{"
        "\"s\":\"plain\",\"n\":{\"dataType\":\"Number.float\",\"stringValue\":\"1.5\"},"
        "\"b\":{\"dataType\":\"Binary\",\"binaryValue\":\"AAEC\"}},"
        "\"group\":\"grp\",\"dedup\":\"dd\",\"sent\":1000,\"rc\":4,\"fr\":2000}";
    struct weir_record *r =
        parse_ok(env, sizeof(env) - 1, "0a0b0c0d-0e0f-4aaa-8bbb-0000000000ff", 5000);
    assert_string_equal(r->id, "msg-7");
    assert_string_equal(r->handle, "0a0b0c0d-0e0f-4aaa-8bbb-0000000000ff");
    assert_int_equal(r->seq, 255);
    assert_int_equal(r->data_len, 7);
    assert_string_equal(r->data, "{\"k\":1}");
    assert_string_equal(r->group_id, "grp");
    assert_string_equal(r->dedup_id, "dd");
    assert_int_equal(r->sent_ms, 1000);
    assert_int_equal(r->first_receive_ms, 2000);
    assert_int_equal(r->receive_count, 5);
    assert_string_equal(
        r->attrs_json,
        "{\"s\":{\"stringValue\":\"plain\",\"stringListValues\":[],\"binaryListValues\":[],"
        "\"dataType\":\"String\"},"
        "\"n\":{\"stringValue\":\"1.5\",\"stringListValues\":[],\"binaryListValues\":[],"
        "\"dataType\":\"Number.float\"},"
        "\"b\":{\"binaryValue\":\"AAEC\",\"stringListValues\":[],\"binaryListValues\":[],"
        "\"dataType\":\"Binary\"}}");
    weir_record_free(r);

    /* Only body: the rest defaults from the lease and the claim time. */
    static const char min[] = "{\"weir\":1,\"body\":\"x\"}";
    r = parse_ok(min, sizeof(min) - 1, "0a0b0c0d-0e0f-4aaa-8bbb-000000000010", 5000);
    assert_string_equal(r->id, "0a0b0c0d-0e0f-4aaa-8bbb-000000000010");
    assert_int_equal(r->receive_count, 1);
    assert_int_equal(r->first_receive_ms, 5000);
    assert_int_equal(r->sent_ms, 5000);
    assert_null(r->attrs_json);
    assert_null(r->group_id);
    weir_record_free(r);
}

static void elements_not_starting_with_the_weir_member_are_plain_bodies(void **state)
{
    static const char *const plain[] = {
        "{\"other\":1,\"weir\":1}", " {\"weir\":1}", "{\"weirdo\":1}", "[1,2]", "", "{"};
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        size_t len = strlen(plain[i]);
        assert_false(weir_redis_is_envelope(plain[i], len));
        struct weir_record *r = parse_ok(plain[i], len, "l-000000000001", 1);
        assert_int_equal(r->data_len, len);
        assert_memory_equal(r->data, plain[i], len);
        weir_record_free(r);
    }
    static const char bin[] = "a\0b";
    struct weir_record *r = parse_ok(bin, 3, "l-000000000001", 1);
    assert_int_equal(r->data_len, 3);
    assert_memory_equal(r->data, bin, 3);
    weir_record_free(r);
    assert_true(weir_redis_is_envelope("{\n\t\"weir\"\r :1}", 14));
}

static void malformed_envelopes_are_refused_with_the_reason(void **state)
{
    static const struct {
        const char *el;
        const char *why;
    } cases[] = {
        {"{\"weir\":1,\"body\":\"x\"", "not JSON"},
        {"{\"weir\":1}", "no string \"body\""},
        {"{\"weir\":1,\"body\":7}", "no string \"body\""},
        {"{\"weir\":1,\"body\":\"x\",\"id\":5}", "\"id\""},
        {"{\"weir\":1,\"body\":\"x\",\"rc\":\"2\"}", "\"rc\""},
        {"{\"weir\":1,\"body\":\"x\",\"attributes\":[1]}", "attributes"},
        {"{\"weir\":1,\"body\":\"x\",\"attributes\":{\"a\":3}}", "attribute \"a\""},
        {"{\"weir\":1,\"body\":\"x\",\"attributes\":{\"a\":{\"dataType\":\"Json\","
         "\"stringValue\":\"1\"}}}",
         "dataType \"Json\""},
        {"{\"weir\":1,\"body\":\"x\",\"attributes\":{\"a\":{\"dataType\":\"Binary\","
         "\"stringValue\":\"1\"}}}",
         "binaryValue"},
        {"{\"weir\":1,\"body\":\"\xff\"}", "not JSON"},
        /* Numbers out of range are refused, never converted: casting 1e300 to an integer is
         * undefined behaviour (the sanitizer build checks float-cast-overflow). */
        {"{\"weir\":1,\"body\":\"x\",\"rc\":1e300}", "\"rc\" is 1e+300"},
        {"{\"weir\":1,\"body\":\"x\",\"rc\":-1e300}", "\"rc\""},
        {"{\"weir\":1,\"body\":\"x\",\"sent\":1.5}", "whole number"},
        {"{\"weir\":1,\"body\":\"x\",\"fr\":-3}", "\"fr\" is -3"},
        {"{\"weir\":1,\"body\":\"x\",\"seq\":9007199254740993}", "\"seq\""},
        {"{\"weir\":1,\"body\":\"x\",\"sent\":1e19}", "\"sent\""},
        {"{\"weir\":1,\"body\":\"x\",\"seq\":\"7\"}", "\"seq\" is not a number"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct weir_record *r = NULL;
        struct weir_err err = {{0}};
        weir_status st = weir_redis_parse_element(cases[i].el, strlen(cases[i].el), "l-1", 1,
                                                  &weir_format_sqs, &r, &err);
        if (st != WEIR_ERR)
            fail_msg("accepted %s", cases[i].el);
        assert_null(r);
        if (!strstr(err.msg, cases[i].why))
            fail_msg("%s: error '%s' does not say '%s'", cases[i].el, err.msg, cases[i].why);
    }
}

static void lease_ids_are_uuid_shaped_and_stable_per_queue(void **state)
{
    struct weir_redis_uri u = {.host = "127.0.0.1", .port = 6379, .db = 0, .key = "orders"};
    char a[25], b[25], c[25];
    weir_redis_lease_prefix(&u, a);
    weir_redis_lease_prefix(&u, b);
    assert_string_equal(a, b);
    u.key = "payments";
    weir_redis_lease_prefix(&u, c);
    assert_string_not_equal(a, c);
    assert_int_equal(strlen(a), 24);
    for (int i = 0; i < 24; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(a[i], '-');
        else
            assert_non_null(strchr("0123456789abcdef", a[i]));
    }
    assert_int_equal(a[14], '4');
    assert_int_equal(a[19], '8');
}

static void source_arn_names_the_list_under_a_stable_account(void **state)
{
    struct weir_redis_uri u = {.host = "127.0.0.1", .port = 6379, .db = 0, .key = "orders"};
    char *arn = weir_redis_source_arn(&u, "eu-west-1");
    assert_int_equal(strncmp(arn, "arn:aws:sqs:eu-west-1:", 22), 0);
    for (int i = 22; i < 34; i++)
        assert_true(arn[i] >= '0' && arn[i] <= '9');
    assert_string_equal(arn + 34, ":orders");
    u.key = "other";
    char *arn2 = weir_redis_source_arn(&u, "eu-west-1");
    assert_memory_equal(arn, arn2, 34); /* account is per server and db, not per list */
    u.db = 1;
    char *arn3 = weir_redis_source_arn(&u, "eu-west-1");
    assert_memory_not_equal(arn, arn3, 34);
    free(arn);
    free(arn2);
    free(arn3);
}

static void uri_parse_accepts_the_documented_forms(void **state)
{
    struct weir_redis_uri u;
    struct weir_err err;
    assert_int_equal(weir_redis_uri_parse("redis://127.0.0.1:6379/0/orders", &u, &err), WEIR_OK);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.key, "orders");
    assert_null(u.password);
    weir_redis_uri_deinit(&u);

    assert_int_equal(weir_redis_uri_parse("redis://:secret@127.0.0.1:6380/orders", &u, &err),
                     WEIR_OK);
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.password, "secret");
    assert_null(u.user);
    weir_redis_uri_deinit(&u);

    assert_int_equal(
        weir_redis_uri_parse("redis://app:p%40ss%3Aw@cache.local/7/jobs:high/a", &u, &err),
        WEIR_OK);
    assert_string_equal(u.host, "cache.local");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 7);
    assert_string_equal(u.user, "app");
    assert_string_equal(u.password, "p@ss:w");
    assert_string_equal(u.key, "jobs:high/a");
    weir_redis_uri_deinit(&u);

    assert_int_equal(weir_redis_uri_parse("redis://[::1]:7000/q%20one", &u, &err), WEIR_OK);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);
    assert_string_equal(u.key, "q one");
    weir_redis_uri_deinit(&u);
}

static void uri_parse_refuses_what_it_cannot_use(void **state)
{
    static const struct {
        const char *uri;
        const char *why;
    } cases[] = {
        {"redis://127.0.0.1:6379", "missing list key"},
        {"redis://127.0.0.1:6379/", "missing list key"},
        {"redis://127.0.0.1:6379/0/", "missing list key"},
        {"redis://127.0.0.1:6379/3", "missing list key"},
        {"redis://127.0.0.1:0/q", "bad port"},
        {"redis://127.0.0.1:99999/q", "bad port"},
        {"redis://127.0.0.1:x/q", "bad port"},
        {"redis://127.0.0.1/99999999999/q", "bad db"},
        {"redis://127.0.0.1/q?timeout=3", "query"},
        {"redis://user@127.0.0.1/q", "needs a password"},
        {"redis://:/q", "missing host"},
        {"redis://h/q%zz", "percent"},
        {"http://127.0.0.1/q", "redis://"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct weir_redis_uri u;
        struct weir_err err = {{0}};
        if (weir_redis_uri_parse(cases[i].uri, &u, &err) != WEIR_ERR)
            fail_msg("accepted %s", cases[i].uri);
        if (!strstr(err.msg, cases[i].why))
            fail_msg("%s: error '%s' does not say '%s'", cases[i].uri, err.msg, cases[i].why);
    }
    /* The password never appears in an error. */
    struct weir_redis_uri u;
    struct weir_err err = {{0}};
    assert_int_equal(weir_redis_uri_parse("redis://:hunter2@h:1/0/", &u, &err), WEIR_ERR);
    assert_null(strstr(err.msg, "hunter2"));
}

/* ---- FIFO queues: the scripts ---- */

static void cmd_ok(const char *cmd)
{
    redisReply *r = redisCommand(rc, cmd);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
}

static const char *const FKEY = "f.fifo";
static const char *const FDLQ = "f-dlq";

/* A FIFO envelope for group g. dedup may be NULL. */
static void fpush(const char *g, const char *body, const char *dedup)
{
    char el[512];
    if (dedup)
        snprintf(el, sizeof(el), "{\"weir\":1,\"body\":\"%s\",\"group\":\"%s\",\"dedup\":\"%s\"}",
                 body, g, dedup);
    else
        snprintf(el, sizeof(el), "{\"weir\":1,\"body\":\"%s\",\"group\":\"%s\"}", body, g);
    rpush(FKEY, el, strlen(el));
}

/* One FIFO claim: at most n messages, gmax of a group, maxg groups, dedup window ms; refused
 * messages to `target`. */
static redisReply *fclaim_opts(int n, int gmax, int maxg, long window, const char *target)
{
    char sn[16], sg[16], sm[16], sw[24], sl[24];
    snprintf(sn, sizeof(sn), "%d", n);
    snprintf(sg, sizeof(sg), "%d", gmax);
    snprintf(sm, sizeof(sm), "%d", maxg);
    snprintf(sw, sizeof(sw), "%ld", window);
    snprintf(sl, sizeof(sl), "%d", 30000);
    const char *k[] = {keys.list,  keys.inflight, keys.leases, keys.seq, keys.fifo_seq,
                       keys.ready, keys.busy,     keys.dedup,  target};
    const char *a[] = {sn, sl, prefix, sg, sm, "1000", keys.group_prefix, sw, prefix};
    redisReply *r = eval_on(rc, WEIR_REDIS_CLAIM_FIFO, 9, k, 9, a);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_true(r->elements >= 4 && (r->elements - 4) % 2 == 0);
    assert_int_equal(r->element[2]->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->element[3]->type, REDIS_REPLY_INTEGER);
    return r;
}

static redisReply *fclaim(int n, int gmax)
{
    return fclaim_opts(n, gmax, 1000, WEIR_REDIS_DEDUP_WINDOW_MS, keys.parked);
}

/* The body and group of claimed message i (0-based) of a FIFO claim reply. */
static struct weir_record *fclaimed(const redisReply *r, size_t i)
{
    const redisReply *id = r->element[4 + 2 * i], *el = r->element[5 + 2 * i];
    return parse_ok(el->str, el->len, id->str, 1);
}

static void fdelete(const char *lease, const char *group, long long *deleted, long long *woke)
{
    const char *k[] = {keys.inflight, keys.leases, keys.busy, keys.ready};
    const char *a[] = {keys.group_prefix, lease, group};
    redisReply *r = eval_on(rc, WEIR_REDIS_DELETE_FIFO, 4, k, 3, a);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    *deleted = r->element[0]->integer;
    *woke = r->element[1]->integer;
    freeReplyObject(r);
}

static void freclaim(int64_t now, int maxrc, const char *dlq, long long *back, long long *dead)
{
    char sn[24], sm[16];
    snprintf(sn, sizeof(sn), "%lld", (long long)now);
    snprintf(sm, sizeof(sm), "%d", maxrc);
    const char *k[] = {keys.list, keys.inflight, keys.leases, keys.busy, keys.ready, dlq};
    const char *a[] = {sn, sm, "1000", "30000", keys.group_prefix};
    redisReply *r = eval_on(rc, WEIR_REDIS_RECLAIM_FIFO, dlq ? 6 : 5, k, 5, a);
    assert_int_equal(r->elements, 2);
    *back = r->element[0]->integer;
    *dead = r->element[1]->integer;
    freeReplyObject(r);
}

/* Every group with waiting messages and no lease is in the ready list exactly once, and no
 * other group is. */
static void assert_fifo_invariant(const char *const *groups, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char glist[128];
        snprintf(glist, sizeof(glist), "%s%s", keys.group_prefix, groups[i]);
        long long waiting = cmd_int("LLEN %s", glist);
        long long busy = cmd_int("HEXISTS %s %s", keys.busy, groups[i]);
        redisReply *pos = redisCommand(rc, "LPOS %s %s COUNT 0", keys.ready, groups[i]);
        long long ready = (long long)pos->elements;
        freeReplyObject(pos);
        if (ready != (waiting > 0 && !busy))
            fail_msg("group %s: waiting=%lld busy=%lld but %lld times in ready", groups[i], waiting,
                     busy, ready);
    }
}

static void fifo_claim_moves_messages_into_groups_in_order_and_numbers_them(void **state)
{
    keys_for(FKEY);
    fpush("A", "a1", NULL);
    fpush("B", "b1", NULL);
    fpush("A", "a2", NULL);
    fpush("B", "b2", NULL);
    fpush("A", "a3", NULL);
    redisReply *r = fclaim(10, 10);
    assert_int_equal(r->element[1]->integer, 0);
    assert_int_equal(r->element[2]->elements, 0);
    assert_int_equal((r->elements - 4) / 2, 5);
    /* A group's messages together and in push order, groups in the order they first came;
     * SequenceNumbers in push order, and a stable messageId for each. */
    static const char *const want[] = {"a1", "a2", "a3", "b1", "b2"};
    static const uint64_t seqs[] = {1, 3, 5, 2, 4};
    for (size_t i = 0; i < 5; i++) {
        struct weir_record *rec = fclaimed(r, i);
        assert_string_equal(rec->data, want[i]);
        assert_string_equal(rec->group_id, i < 3 ? "A" : "B");
        assert_int_equal(rec->fifo_seq, seqs[i]);
        assert_memory_equal(rec->id, prefix, 24);
        weir_record_free(rec);
    }
    freeReplyObject(r);
    assert_int_equal(cmd_int("LLEN %s", FKEY), 0);
    assert_int_equal(cmd_int("HLEN %s", keys.busy), 2);
    assert_int_equal(cmd_int("LLEN %s", keys.ready), 0);
}

static void fifo_a_group_with_leases_is_not_claimed_again(void **state)
{
    keys_for(FKEY);
    fpush("A", "a1", NULL);
    fpush("A", "a2", NULL);
    redisReply *r = fclaim(10, 1); /* one of A: A is locked with a2 waiting */
    assert_int_equal((r->elements - 4) / 2, 1);
    char *lease = weir_strdup(r->element[4]->str);
    freeReplyObject(r);
    fpush("A", "a3", NULL);
    fpush("C", "c1", NULL);
    r = fclaim(10, 10);
    /* Only C: A holds a lease, however many of its messages wait. */
    assert_int_equal((r->elements - 4) / 2, 1);
    struct weir_record *rec = fclaimed(r, 0);
    assert_string_equal(rec->data, "c1");
    weir_record_free(rec);
    freeReplyObject(r);
    static const char *const groups[] = {"A", "C"};
    assert_fifo_invariant(groups, 2);
    /* Its last lease settled, A is ready again, with a2 first. */
    long long deleted, woke;
    fdelete(lease, "A", &deleted, &woke);
    assert_int_equal(deleted, 1);
    assert_int_equal(woke, 1);
    assert_fifo_invariant(groups, 2);
    r = fclaim(10, 10);
    assert_int_equal((r->elements - 4) / 2, 2);
    rec = fclaimed(r, 0);
    assert_string_equal(rec->data, "a2");
    weir_record_free(rec);
    rec = fclaimed(r, 1);
    assert_string_equal(rec->data, "a3");
    weir_record_free(rec);
    freeReplyObject(r);
    free(lease);
}

static void fifo_a_group_stays_locked_until_its_last_lease_is_settled(void **state)
{
    keys_for(FKEY);
    fpush("A", "a1", NULL);
    fpush("A", "a2", NULL);
    fpush("A", "a3", NULL);
    redisReply *r = fclaim(2, 10);
    assert_int_equal((r->elements - 4) / 2, 2);
    long long deleted, woke;
    fdelete(r->element[4]->str, "A", &deleted, &woke);
    assert_int_equal(woke, 0);
    redisReply *r2 = fclaim(10, 10);
    assert_int_equal(r2->elements, 4); /* a3 waits: a2 is still leased */
    freeReplyObject(r2);
    fdelete(r->element[6]->str, "A", &deleted, &woke);
    assert_int_equal(woke, 1);
    freeReplyObject(r);
    r = fclaim(10, 10);
    struct weir_record *rec = fclaimed(r, 0);
    assert_string_equal(rec->data, "a3");
    weir_record_free(rec);
    freeReplyObject(r);
}

static void fifo_reclaim_returns_the_whole_group_to_its_head_in_order(void **state)
{
    keys_for(FKEY);
    fpush("A", "a1", NULL);
    fpush("A", "a2", NULL);
    fpush("A", "a3", NULL);
    redisReply *r = fclaim(10, 10);
    freeReplyObject(r);
    fpush("A", "a4", NULL); /* newer: must come after the retries */
    long long back, dead;
    freclaim(FUTURE, 0, NULL, &back, &dead);
    assert_int_equal(back, 3);
    assert_int_equal(dead, 0);
    assert_int_equal(cmd_int("HLEN %s", keys.busy), 0);
    r = fclaim(10, 10);
    assert_int_equal((r->elements - 4) / 2, 4);
    static const char *const want[] = {"a1", "a2", "a3", "a4"};
    for (size_t i = 0; i < 4; i++) {
        struct weir_record *rec = fclaimed(r, i);
        assert_string_equal(rec->data, want[i]);
        assert_int_equal(rec->receive_count, i < 3 ? 2 : 1);
        weir_record_free(rec);
    }
    freeReplyObject(r);
}

static void fifo_past_max_receives_a_message_is_dead_lettered_and_its_group_goes_on(void **state)
{
    keys_for(FKEY);
    fpush("A", "poison", NULL);
    fpush("A", "next", NULL);
    long long back, dead;
    for (int receive = 1; receive <= 3; receive++) {
        redisReply *r = fclaim(1, 1);
        struct weir_record *rec = fclaimed(r, 0);
        assert_string_equal(rec->data, "poison");
        assert_int_equal(rec->receive_count, receive);
        weir_record_free(rec);
        freeReplyObject(r);
        freclaim(FUTURE, 3, FDLQ, &back, &dead);
    }
    assert_int_equal(dead, 1);
    assert_int_equal(cmd_int("LLEN %s", FDLQ), 1);
    char *el = lindex(FDLQ, 0, NULL);
    assert_non_null(strstr(el, "\"body\":\"poison\""));
    assert_non_null(strstr(el, "\"group\":\"A\""));
    assert_non_null(strstr(el, "\"rc\":3"));
    free(el);
    redisReply *r = fclaim(10, 10);
    struct weir_record *rec = fclaimed(r, 0);
    assert_string_equal(rec->data, "next");
    weir_record_free(rec);
    freeReplyObject(r);
}

static void fifo_a_short_claim_says_whether_more_groups_are_ready(void **state)
{
    keys_for(FKEY);
    for (int g = 0; g < 5; g++) {
        char name[16];
        snprintf(name, sizeof(name), "s%d", g);
        fpush(name, "one", NULL);
    }
    /* Asked for 10 of at most 2 groups: 2 come back, short, and more groups are ready. */
    redisReply *r = fclaim_opts(10, 10, 2, 60000, keys.parked);
    assert_int_equal((r->elements - 4) / 2, 2);
    assert_int_equal(r->element[3]->integer, 1);
    freeReplyObject(r);
    r = fclaim_opts(10, 10, 10, 60000, keys.parked);
    assert_int_equal((r->elements - 4) / 2, 3);
    assert_int_equal(r->element[3]->integer, 0); /* nothing ready, nothing waiting to move in */
    freeReplyObject(r);
}

static void fifo_dedup_drops_a_repeat_within_the_window_only(void **state)
{
    keys_for(FKEY);
    fpush("A", "first", "d-1");
    fpush("A", "again", "d-1");
    fpush("B", "other", "d-2");
    redisReply *r = fclaim_opts(10, 10, 10, 60000, keys.parked);
    assert_int_equal(r->element[1]->integer, 1);
    assert_int_equal((r->elements - 4) / 2, 2);
    struct weir_record *rec = fclaimed(r, 0);
    assert_string_equal(rec->data, "first");
    assert_string_equal(rec->dedup_id, "d-1");
    weir_record_free(rec);
    freeReplyObject(r);
    /* Past the window (1 ms here; SQS's 5 minutes in weir) the same id is accepted again. */
    sleep_ms(20);
    fpush("C", "later", "d-1");
    r = fclaim_opts(10, 10, 10, 1, keys.parked);
    assert_int_equal(r->element[1]->integer, 0);
    assert_int_equal((r->elements - 4) / 2, 1);
    freeReplyObject(r);
}

static void fifo_messages_without_a_group_are_refused_with_the_reason(void **state)
{
    keys_for(FKEY);
    static const char plain[] = "no envelope";
    static const char nogroup[] = "{\"weir\":1,\"body\":\"x\"}";
    static const char broken[] = "{\"weir\":1,\"body\":";
    rpush(FKEY, plain, sizeof(plain) - 1);
    rpush(FKEY, nogroup, sizeof(nogroup) - 1);
    rpush(FKEY, broken, sizeof(broken) - 1);
    fpush("A", "ok", NULL);
    redisReply *r = fclaim_opts(10, 10, 10, 60000, FDLQ);
    assert_int_equal(r->element[2]->elements, 3);
    assert_non_null(strstr(r->element[2]->element[0]->str, "not an envelope"));
    assert_non_null(strstr(r->element[2]->element[1]->str, "no message group"));
    assert_non_null(strstr(r->element[2]->element[2]->str, "malformed"));
    assert_int_equal((r->elements - 4) / 2, 1);
    freeReplyObject(r);
    /* In the target: a plain body wrapped in an envelope with the reason, an envelope with the
     * reason added, the unreadable one unchanged. Nothing lost. */
    assert_int_equal(cmd_int("LLEN %s", FDLQ), 3);
    size_t len;
    char *el = lindex(FDLQ, 0, &len);
    struct weir_record *rec = parse_ok(el, len, "00000000-0000-4000-8000-000000000001", 1);
    assert_string_equal(rec->data, plain);
    weir_record_free(rec);
    assert_non_null(strstr(el, "\"reason\":"));
    free(el);
    el = lindex(FDLQ, 1, NULL);
    assert_non_null(strstr(el, "no message group"));
    free(el);
    el = lindex(FDLQ, 2, NULL);
    assert_string_equal(el, broken);
    free(el);
}

static void fifo_a_message_that_cannot_be_written_back_is_refused_and_nothing_is_lost(void **state)
{
    keys_for(FKEY);
    fpush("g1", "a", NULL);
    /* 1e400 reads as infinity, which cjson cannot write back: before, the whole claim failed
     * after popping, and every message popped with it was gone. */
    static const char inf[] = "{\"weir\":1,\"body\":\"b\",\"group\":\"g1\",\"x\":1e400}";
    rpush(FKEY, inf, sizeof(inf) - 1);
    fpush("g2", "c", NULL);
    redisReply *r = fclaim_opts(10, 10, 10, 60000, FDLQ);
    assert_int_equal(r->element[2]->elements, 1);
    assert_non_null(strstr(r->element[2]->element[0]->str, "out of range"));
    assert_int_equal((r->elements - 4) / 2, 2);
    freeReplyObject(r);
    assert_int_equal(cmd_int("LLEN %s", FDLQ), 1);
    char *el = lindex(FDLQ, 0, NULL);
    assert_string_equal(el, inf); /* unchanged: it cannot be written any other way */
    free(el);
    /* A number beyond 2^53 is written as a number, not cast to a wrong integer. */
    static const char big[] = "{\"weir\":1,\"body\":\"d\",\"group\":\"g3\",\"sent\":1e300}";
    rpush(FKEY, big, sizeof(big) - 1);
    r = fclaim_opts(10, 10, 10, 60000, FDLQ);
    assert_int_equal((r->elements - 4) / 2, 1);
    assert_null(strstr(r->element[5]->str, "-9223372036854775808"));
    freeReplyObject(r);
}

static void fifo_group_ids_are_checked_as_sqs_checks_them(void **state)
{
    keys_for(FKEY);
    static const char nul[] = "{\"weir\":1,\"body\":\"n\",\"group\":\"a\\u0000b\"}";
    static const char space[] = "{\"weir\":1,\"body\":\"s\",\"group\":\"a b\"}";
    static const char num[] = "{\"weir\":1,\"body\":\"s\",\"group\":7}";
    char longest[256], too_long[256];
    snprintf(longest, sizeof(longest), "{\"weir\":1,\"body\":\"l\",\"group\":\"%0128d\"}", 0);
    snprintf(too_long, sizeof(too_long), "{\"weir\":1,\"body\":\"t\",\"group\":\"%0129d\"}", 0);
    rpush(FKEY, nul, sizeof(nul) - 1);
    rpush(FKEY, space, sizeof(space) - 1);
    rpush(FKEY, num, sizeof(num) - 1);
    rpush(FKEY, longest, strlen(longest));
    rpush(FKEY, too_long, strlen(too_long));
    fpush("x!#$%&'()*+,-./:;<=>?@[]^_`{|}~", "punct", "d!1");
    redisReply *r = fclaim_opts(10, 10, 10, 60000, FDLQ);
    assert_int_equal(r->element[2]->elements, 4);
    for (size_t i = 0; i < 4; i++)
        assert_non_null(strstr(r->element[2]->element[i]->str, "\"group\" (MessageGroupId)"));
    assert_int_equal((r->elements - 4) / 2, 2);
    freeReplyObject(r);
    assert_int_equal(cmd_int("LLEN %s", FDLQ), 4);
}

static void fifo_release_gives_back_to_the_group_head_without_a_receive(void **state)
{
    keys_for(FKEY);
    fpush("A", "a1", NULL);
    fpush("A", "a2", NULL);
    fpush("A", "a3", NULL);
    redisReply *r = fclaim(2, 10);
    const char *k[] = {keys.list, keys.inflight, keys.leases, keys.busy, keys.ready};
    const char *a[] = {keys.group_prefix, r->element[4]->str, r->element[6]->str};
    redisReply *rel = eval_on(rc, WEIR_REDIS_RELEASE_FIFO, 5, k, 3, a);
    assert_int_equal(rel->element[0]->integer, 2);
    assert_int_equal(rel->element[1]->integer, 1); /* A is ready again */
    freeReplyObject(rel);
    freeReplyObject(r);
    r = fclaim(10, 10);
    static const char *const want[] = {"a1", "a2", "a3"};
    for (size_t i = 0; i < 3; i++) {
        struct weir_record *rec = fclaimed(r, i);
        assert_string_equal(rec->data, want[i]);
        assert_int_equal(rec->receive_count, 1);
        weir_record_free(rec);
    }
    freeReplyObject(r);
}

/* Mean microseconds per call of the FIFO claim script, from the server's own statistics. */
static double claim_usec_per_call(int calls)
{
    cmd_ok("CONFIG RESETSTAT");
    for (int i = 0; i < calls; i++) {
        redisReply *r = fclaim(1, 1);
        freeReplyObject(r);
    }
    redisReply *info = redisCommand(rc, "INFO commandstats");
    const char *line = strstr(info->str, "cmdstat_eval:");
    assert_non_null(line);
    const char *per = strstr(line, "usec_per_call=");
    double usec = strtod(per + 14, NULL);
    freeReplyObject(info);
    return usec;
}

static void fifo_claiming_costs_the_same_however_many_groups_are_blocked(void **state)
{
    keys_for(FKEY);
    /* Few groups, none blocked. */
    for (int i = 0; i < 300; i++) {
        char g[16];
        snprintf(g, sizeof(g), "g%d", i);
        fpush(g, "m", NULL);
    }
    redisReply *r = fclaim(1, 1); /* moves them all into their groups */
    freeReplyObject(r);
    double few = claim_usec_per_call(200);
    /* 20000 blocked groups with 10 messages each waiting behind their leases. */
    cmd_ok("FLUSHALL");
    static const char fill[] =
        "for i = 1, 20000 do\n"
        "  local g = 'b' .. i\n"
        "  local el = '{\"weir\":1,\"body\":\"m\",\"group\":\"' .. g .. '\"}'\n"
        "  redis.call('RPUSH', ARGV[1] .. g, el, el, el, el, el, el, el, el, "
        "el, el)\n"
        "  redis.call('HSET', KEYS[1], g, 'a-lease')\n"
        "end\n"
        "return 1\n";
    redisReply *p = redisCommand(rc, "EVAL %s 1 %s %s", fill, keys.busy, keys.group_prefix);
    assert_int_equal(p->type, REDIS_REPLY_INTEGER);
    freeReplyObject(p);
    for (int i = 0; i < 300; i++) {
        char g[16];
        snprintf(g, sizeof(g), "g%d", i);
        fpush(g, "m", NULL);
    }
    r = fclaim(1, 1);
    freeReplyObject(r);
    double many = claim_usec_per_call(200);
    /* A scan over 20000 groups (or 200000 messages) would cost milliseconds a call; the claim
     * pops ready groups, so it costs what it did. Generous: a busy machine makes both noisy. */
    print_message("claim: %.1f us a call with 300 groups, %.1f with 20000 more blocked\n", few,
                  many);
    if (many > few * 5 + 50)
        fail_msg("claim cost grew with blocked groups: %.1f us a call, against %.1f", many, few);
}

/* ---- the poller, with a stand-in sink ---- */

#define SINK_MAX 2048

/* What the poller handed on, through the sink it was given. */
struct test_sink {
    size_t cap;
    struct weir_record *got[SINK_MAX];
    size_t n_got;
    size_t unsettled;
    int read_done;
};

static size_t sink_room(void *ctx, uint32_t lane)
{
    struct test_sink *s = ctx;
    return s->unsettled >= s->cap ? 0 : s->cap - s->unsettled;
}

static void sink_deliver(void *ctx, struct weir_record *r)
{
    struct test_sink *s = ctx;
    assert_true(s->n_got < SINK_MAX);
    s->got[s->n_got++] = r;
    s->unsettled++;
}

static void sink_read_done(void *ctx)
{
    struct test_sink *s = ctx;
    s->read_done++;
}

static const struct weir_sink_ops sink_ops = {
    .room = sink_room,
    .deliver = sink_deliver,
    .read_done = sink_read_done,
};

struct rig {
    struct event_base *base;
    struct event *tick;
    struct test_sink m;
    struct weir_mapping_cfg mc;
    struct weir_redis_settings rs;
    char source[128];
    struct weir_poller *p;
    int done_calls;
};

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
}

static struct weir_poller *rig_poller_new(struct rig *g, struct weir_err *err)
{
    struct weir_poller_args args = {
        .mc = &g->mc,
        .region = "us-east-1",
        .component = "mapping/redis-test",
        .base = g->base,
        .sink = {.ops = &sink_ops, .ctx = &g->m},
    };
    return redis_ops->new (&args, err);
}

static void rig_init(struct rig *g, const char *list, int visibility, const char *dlq, int maxrc,
                     const char *auth)
{
    memset(g, 0, sizeof(*g));
    g->base = event_base_new();
    g->tick = event_new(g->base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {0, 10000};
    event_add(g->tick, &tv);
    g->m.cap = 100;
    snprintf(g->source, sizeof(g->source), "redis://%s127.0.0.1:%d/0/%s", auth ? auth : "",
             server_port, list);
    g->mc.name = "redis-test";
    g->mc.source = g->source;
    g->mc.batch_size = 10;
    g->rs.visibility_timeout = visibility;
    g->rs.dead_letter_target = (char *)dlq;
    g->rs.max_receive_count = maxrc;
    g->mc.settings = &g->rs;
    g->mc.enabled = true;
    struct weir_err err = {{0}};
    g->p = rig_poller_new(g, &err);
    if (!g->p)
        fail_msg("poller new: %s", err.msg);
}

static void rig_free(struct rig *g)
{
    redis_ops->free(g->p);
    for (size_t i = 0; i < g->m.n_got; i++)
        weir_record_free(g->m.got[i]);
    event_free(g->tick);
    /* Run what the frees deferred, then the base can go. */
    event_base_loop(g->base, EVLOOP_NONBLOCK);
    event_base_free(g->base);
}

/* Runs the loop until *flag reaches want or ms pass; returns the elapsed ms. */
static int64_t run_until(struct rig *g, const size_t *count, size_t want, int64_t ms)
{
    int64_t t0 = weir_clock_mono_ms();
    while (*count < want && weir_clock_mono_ms() - t0 < ms)
        event_base_loop(g->base, EVLOOP_ONCE);
    return weir_clock_mono_ms() - t0;
}

static void run_for(struct rig *g, int64_t ms)
{
    int64_t t0 = weir_clock_mono_ms();
    while (weir_clock_mono_ms() - t0 < ms)
        event_base_loop(g->base, EVLOOP_ONCE);
}

/* Waits until a client of the server is blocked in BLMOVE. */
static void wait_blocked_in_blmove(struct rig *g)
{
    for (int i = 0; i < 1000; i++) {
        redisReply *r = redisCommand(rc, "CLIENT LIST");
        bool blocked = r && r->type == REDIS_REPLY_STRING && strstr(r->str, "cmd=blmove");
        freeReplyObject(r);
        if (blocked)
            return;
        run_for(g, 10);
    }
    fail_msg("no client blocked in BLMOVE");
}

/* How many EVALSHA calls the server has answered so far. */
static long long evalsha_calls(void)
{
    redisReply *r = redisCommand(rc, "INFO commandstats");
    const char *line = r && r->str ? strstr(r->str, "cmdstat_evalsha:calls=") : NULL;
    long long n = line ? atoll(line + 22) : 0;
    freeReplyObject(r);
    return n;
}

/* Settles got[from..to) with verdict v (the records stay in got[] for the test to read). */
static void settle(struct rig *g, size_t from, size_t to, enum weir_verdict v)
{
    struct weir_batch *b = weir_batch_new(0);
    for (size_t i = from; i < to; i++) {
        struct weir_record *r = weir_record_new();
        r->handle = weir_strdup(g->m.got[i]->handle);
        r->id = weir_strdup(g->m.got[i]->id);
        if (g->m.got[i]->group_id)
            r->group_id = weir_strdup(g->m.got[i]->group_id);
        r->verdict = v;
        weir_batch_take(b, r);
    }
    redis_ops->settle(g->p, b);
    weir_batch_free(b);
    g->m.unsettled -= to - from;
    redis_ops->resume(g->p, WEIR_LANE_ANY);
}

static void on_stop_done(void *arg)
{
    ((struct rig *)arg)->done_calls++;
}

static void stop_and_wait(struct rig *g, int64_t ms)
{
    redis_ops->stop(g->p, on_stop_done, g);
    assert_int_equal(g->done_calls, 0); /* never from inside stop */
    size_t count = 0;
    int64_t t0 = weir_clock_mono_ms();
    while (!g->done_calls && weir_clock_mono_ms() - t0 < ms)
        event_base_loop(g->base, EVLOOP_ONCE);
    (void)count;
    assert_int_equal(g->done_calls, 1);
}

static void poller_delivers_settles_and_redelivers_after_the_lease(void **state)
{
    cmd_int("RPUSH pq m0 m1 m2 m3 m4");
    struct rig g;
    rig_init(&g, "pq", 3, NULL, 0, NULL);
    keys_for("pq");
    assert_int_equal(redis_ops->start(g.p), WEIR_OK);
    run_until(&g, &g.m.n_got, 5, 3000);
    assert_int_equal(g.m.n_got, 5);
    assert_true(g.m.read_done >= 1);
    for (int i = 0; i < 5; i++) {
        char want[16];
        snprintf(want, sizeof(want), "m%d", i);
        assert_string_equal(g.m.got[i]->data, want);
        assert_int_equal(g.m.got[i]->receive_count, 1);
        assert_true(g.m.got[i]->deadline_ms > weir_clock_mono_ms());
    }
    assert_int_equal(cmd_int("HLEN %s", keys.inflight), 5);

    /* m0..m2 done, m3 failed (RETRY), m4 never sent (RELEASE). */
    char *retry_id = weir_strdup(g.m.got[3]->id);
    settle(&g, 0, 3, WEIR_VERDICT_DONE);
    settle(&g, 3, 4, WEIR_VERDICT_RETRY);
    settle(&g, 4, 5, WEIR_VERDICT_RELEASE);
    /* The released one comes straight back, not counted as a receive: while the failed one is
     * still leased, so it did not wait for a lease to end. */
    run_until(&g, &g.m.n_got, 6, 10000);
    assert_int_equal(g.m.n_got, 6);
    assert_int_equal(cmd_int("HEXISTS %s %s", keys.inflight, g.m.got[3]->handle), 1);
    assert_string_equal(g.m.got[5]->data, "m4");
    assert_int_equal(g.m.got[5]->receive_count, 1);
    settle(&g, 5, 6, WEIR_VERDICT_DONE);
    /* The failed one comes back when its 3 s lease ends, one receive more, same messageId. */
    run_until(&g, &g.m.n_got, 7, 15000);
    assert_int_equal(g.m.n_got, 7);
    assert_string_equal(g.m.got[6]->data, "m3");
    assert_string_equal(g.m.got[6]->id, retry_id);
    assert_int_equal(g.m.got[6]->receive_count, 2);
    assert_string_not_equal(g.m.got[6]->handle, retry_id);
    settle(&g, 6, 7, WEIR_VERDICT_DONE);
    run_for(&g, 100);
    assert_int_equal(cmd_int("HLEN %s", keys.inflight), 0);
    assert_int_equal(cmd_int("ZCARD %s", keys.leases), 0);

    /* An empty queue is waited on with BLMOVE (no polling): a new message wakes the claim. */
    wait_blocked_in_blmove(&g);
    long long claims = evalsha_calls();
    run_for(&g, 2000);
    /* Idle for 2 s: a reclaim every 750 ms and a claim after each 1 s BLMOVE timeout, not a
     * claim loop (every 100 ms would be 20). */
    long long idle_calls = evalsha_calls() - claims;
    if (idle_calls > 8)
        fail_msg("%lld script calls in 2 s on an idle queue: polling", idle_calls);
    cmd_int("RPUSH pq late");
    run_until(&g, &g.m.n_got, 8, 10000);
    assert_int_equal(g.m.n_got, 8);
    assert_string_equal(g.m.got[7]->data, "late");
    settle(&g, 7, 8, WEIR_VERDICT_DONE);

    stop_and_wait(&g, 3000);
    assert_int_equal(cmd_int("HLEN %s", keys.inflight), 0);
    assert_int_equal(cmd_int("LLEN pq"), 0);
    free(retry_id);
    rig_free(&g);
}

static void poller_respects_backpressure_and_batch_size(void **state)
{
    for (int i = 0; i < 50; i++)
        cmd_int("RPUSH bq x%d", i);
    struct rig g;
    rig_init(&g, "bq", 30, NULL, 0, NULL);
    g.m.cap = 25;
    assert_int_equal(redis_ops->start(g.p), WEIR_OK);
    run_until(&g, &g.m.n_got, 25, 3000);
    run_for(&g, 200);
    assert_int_equal(g.m.n_got, 25); /* wants no more than it can take */
    assert_int_equal(cmd_int("LLEN bq"), 25);
    settle(&g, 0, 25, WEIR_VERDICT_DONE);
    run_until(&g, &g.m.n_got, 50, 3000);
    assert_int_equal(g.m.n_got, 50);
    assert_string_equal(g.m.got[49]->data, "x49");
    settle(&g, 25, 50, WEIR_VERDICT_DONE);
    stop_and_wait(&g, 3000);
    rig_free(&g);
}

static void poller_gives_back_what_a_claim_returns_after_stop(void **state)
{
    struct rig g;
    rig_init(&g, "xq", 30, NULL, 0, NULL);
    keys_for("xq");
    g.m.cap = 0; /* connected but wanting nothing */
    assert_int_equal(redis_ops->start(g.p), WEIR_OK);
    run_for(&g, 200);
    cmd_int("RPUSH xq a b c");
    /* Hold the claim at the server so that its reply comes after stop. */
    freeReplyObject(redisCommand(rc, "CLIENT PAUSE 400 WRITE"));
    g.m.cap = 10;
    redis_ops->resume(g.p, WEIR_LANE_ANY);
    run_for(&g, 50);
    redis_ops->stop(g.p, on_stop_done, &g);
    int64_t t0 = weir_clock_mono_ms();
    while (!g.done_calls && weir_clock_mono_ms() - t0 < 3000)
        event_base_loop(g.base, EVLOOP_ONCE);
    assert_int_equal(g.done_calls, 1);
    assert_int_equal(g.m.n_got, 0);
    assert_int_equal(cmd_int("LLEN xq"), 3); /* all back, in order, nothing leased */
    assert_int_equal(cmd_int("HLEN %s", keys.inflight), 0);
    /* The claim did run (3 lease ids were drawn): the release path gave them back. */
    redisReply *seq = redisCommand(rc, "GET %s", keys.seq);
    assert_int_equal(seq->type, REDIS_REPLY_STRING);
    assert_string_equal(seq->str, "3");
    freeReplyObject(seq);
    char *el = lindex("xq", 0, NULL);
    assert_string_equal(el, "a");
    free(el);
    rig_free(&g);
}

static void poller_survives_a_script_cache_flush(void **state)
{
    struct rig g;
    rig_init(&g, "fq", 30, NULL, 0, NULL);
    keys_for("fq");
    assert_int_equal(redis_ops->start(g.p), WEIR_OK);
    cmd_int("RPUSH fq one");
    run_until(&g, &g.m.n_got, 1, 3000);
    assert_int_equal(g.m.n_got, 1);
    freeReplyObject(redisCommand(rc, "SCRIPT FLUSH"));
    /* delete answers NOSCRIPT and is sent again as EVAL */
    settle(&g, 0, 1, WEIR_VERDICT_DONE);
    cmd_int("RPUSH fq two");
    run_until(&g, &g.m.n_got, 2, 3000);
    assert_int_equal(g.m.n_got, 2);
    assert_string_equal(g.m.got[1]->data, "two");
    settle(&g, 1, 2, WEIR_VERDICT_DONE);
    run_for(&g, 100);
    assert_int_equal(cmd_int("HLEN %s", keys.inflight), 0);
    stop_and_wait(&g, 3000);
    rig_free(&g);
}

static void poller_reconnects_after_a_redis_restart(void **state)
{
    struct rig g;
    rig_init(&g, "rq", 30, NULL, 0, NULL);
    assert_int_equal(redis_ops->start(g.p), WEIR_OK);
    cmd_int("RPUSH rq before");
    run_until(&g, &g.m.n_got, 1, 3000);
    assert_int_equal(g.m.n_got, 1);
    settle(&g, 0, 1, WEIR_VERDICT_DONE);
    run_for(&g, 50);

    server_kill();
    run_for(&g, 400); /* the poller notices and starts reconnecting */
    assert_int_equal(server_start(), 0);
    cmd_int("RPUSH rq after");
    run_until(&g, &g.m.n_got, 2, 8000);
    assert_int_equal(g.m.n_got, 2);
    assert_string_equal(g.m.got[1]->data, "after");
    settle(&g, 1, 2, WEIR_VERDICT_DONE);
    stop_and_wait(&g, 3000);
    keys_for("rq");
    assert_int_equal(cmd_int("HLEN %s", keys.inflight), 0);
    rig_free(&g);
}

static void poller_stop_with_redis_down_gives_up_and_calls_done(void **state)
{
    struct rig g;
    rig_init(&g, "sq", 30, NULL, 0, NULL);
    assert_int_equal(redis_ops->start(g.p), WEIR_OK);
    cmd_int("RPUSH sq one");
    run_until(&g, &g.m.n_got, 1, 3000);
    assert_int_equal(g.m.n_got, 1);
    server_kill();
    run_for(&g, 300);
    settle(&g, 0, 1, WEIR_VERDICT_DONE); /* cannot be written */
    stop_and_wait(&g, 6000);
    rig_free(&g);
    assert_int_equal(server_start(), 0);
}

static void poller_lease_ids_do_not_repeat_after_redis_loses_its_data(void **state)
{
    struct rig g;
    rig_init(&g, "nq", 30, NULL, 0, NULL);
    keys_for("nq");
    assert_int_equal(redis_ops->start(g.p), WEIR_OK);
    cmd_int("RPUSH nq old");
    run_until(&g, &g.m.n_got, 1, 3000);
    assert_int_equal(g.m.n_got, 1);

    /* Redis restarts without persistence while "old" is still being processed: the lease
     * counter starts again from 1. */
    server_kill();
    run_for(&g, 300);
    assert_int_equal(server_start(), 0);
    cmd_int("RPUSH nq fresh");
    run_until(&g, &g.m.n_got, 2, 8000);
    assert_int_equal(g.m.n_got, 2);
    assert_string_equal(g.m.got[1]->data, "fresh");
    assert_string_not_equal(g.m.got[1]->handle, g.m.got[0]->handle);

    /* "old" finishes late: its delete must not end the lease of "fresh", which is being
     * processed and would be lost if that processing failed. */
    settle(&g, 0, 1, WEIR_VERDICT_DONE);
    run_for(&g, 200);
    assert_int_equal(cmd_int("HLEN %s", keys.inflight), 1);
    assert_int_equal(cmd_int("ZCARD %s", keys.leases), 1);
    settle(&g, 1, 2, WEIR_VERDICT_DONE);
    stop_and_wait(&g, 3000);
    assert_int_equal(cmd_int("HLEN %s", keys.inflight), 0);
    rig_free(&g);
}

/* A TCP relay to the server in a child process. On SIGUSR1 every connection that has carried a
 * BLMOVE goes silent both ways and stays open, as when the peer vanished without a FIN (a host
 * that lost power, a network path that dropped); connections made later are relayed as usual. */
static pid_t relay_pid = -1;
static volatile sig_atomic_t relay_freeze;

static void on_relay_usr1(int sig)
{
    relay_freeze = 1;
}

static bool relay_copy(int from, int to, bool *saw_blmove)
{
    char buf[65536];
    ssize_t n = read(from, buf, sizeof(buf));
    if (n <= 0)
        return false;
    if (memmem(buf, (size_t)n, "BLMOVE", 6))
        *saw_blmove = true;
    for (ssize_t off = 0; off < n;) {
        ssize_t w = write(to, buf + off, (size_t)(n - off));
        if (w <= 0)
            return false;
        off += w;
    }
    return true;
}

static void relay_run(int lfd)
{
    struct {
        int client, server;
        bool blmove, frozen;
    } cs[32];
    size_t n = 0;
    struct sigaction sa = {.sa_handler = on_relay_usr1};
    sigaction(SIGUSR1, &sa, NULL);
    for (;;) {
        if (relay_freeze) {
            relay_freeze = 0;
            for (size_t i = 0; i < n; i++)
                if (cs[i].blmove)
                    cs[i].frozen = true;
        }
        struct pollfd pf[1 + 64];
        int idx[1 + 64];
        nfds_t np = 0;
        pf[np++] = (struct pollfd){.fd = lfd, .events = POLLIN};
        for (size_t i = 0; i < n; i++) {
            if (cs[i].frozen)
                continue;
            idx[np] = (int)i;
            pf[np++] = (struct pollfd){.fd = cs[i].client, .events = POLLIN};
            idx[np] = (int)i;
            pf[np++] = (struct pollfd){.fd = cs[i].server, .events = POLLIN};
        }
        if (poll(pf, np, 50) <= 0)
            continue;
        if ((pf[0].revents & POLLIN) && n < 32) {
            int c = accept(lfd, NULL, NULL);
            int sfd = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in a = {.sin_family = AF_INET,
                                    .sin_port = htons((uint16_t)server_port),
                                    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
            if (c >= 0 && connect(sfd, (struct sockaddr *)&a, sizeof(a)) == 0) {
                cs[n].client = c;
                cs[n].server = sfd;
                cs[n].blmove = cs[n].frozen = false;
                n++;
            } else {
                close(c);
                close(sfd);
            }
        }
        for (nfds_t k = 1; k < np; k++) {
            if (!pf[k].revents)
                continue;
            size_t i = (size_t)idx[k];
            if (cs[i].client < 0)
                continue;
            bool to_server = pf[k].fd == cs[i].client;
            if (!relay_copy(pf[k].fd, to_server ? cs[i].server : cs[i].client, &cs[i].blmove)) {
                close(cs[i].client);
                close(cs[i].server);
                cs[i].client = cs[i].server = -1;
                cs[i].frozen = true; /* never polled again */
            }
        }
    }
}

/* Starts the relay; returns its port. */
static int relay_start(void)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 16) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &len) != 0)
        fail_msg("relay: %s", strerror(errno));
    relay_pid = fork();
    if (relay_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        relay_run(lfd);
        _exit(0);
    }
    close(lfd);
    return ntohs(a.sin_port);
}

static void relay_stop(void)
{
    if (relay_pid > 0) {
        kill(relay_pid, SIGKILL);
        waitpid(relay_pid, NULL, 0);
        relay_pid = -1;
    }
}

static void poller_replaces_a_wait_connection_that_went_silent(void **state)
{
    int port = relay_start();
    struct rig g;
    rig_init(&g, "wq", 30, NULL, 0, NULL);
    snprintf(g.source, sizeof(g.source), "redis://127.0.0.1:%d/0/wq", port);
    redis_ops->free(g.p);
    struct weir_err err;
    g.p = rig_poller_new(&g, &err);
    assert_non_null(g.p);
    assert_int_equal(redis_ops->start(g.p), WEIR_OK);
    run_for(&g, 300); /* connected, the queue empty: waiting in BLMOVE */
    kill(relay_pid, SIGUSR1);
    run_for(&g, 100);
    /* The wait connection will never answer again, and nothing tells the poller so. A message
     * pushed now must still be claimed: the poller may not wait on that connection forever. */
    cmd_int("RPUSH wq after-silence");
    run_until(&g, &g.m.n_got, 1, 10000);
    assert_int_equal(g.m.n_got, 1);
    assert_string_equal(g.m.got[0]->data, "after-silence");
    settle(&g, 0, 1, WEIR_VERDICT_DONE);
    stop_and_wait(&g, 3000);
    rig_free(&g);
    relay_stop();
}

static void poller_moves_unreadable_elements_to_the_dead_letter_list(void **state)
{
    static const char bad[] = "{\"weir\":1,\"body\":";
    rpush("dq", bad, sizeof(bad) - 1);
    cmd_int("RPUSH dq fine");
    struct rig g;
    rig_init(&g, "dq", 30, "dq-dead", 3, NULL);
    assert_int_equal(redis_ops->start(g.p), WEIR_OK);
    run_until(&g, &g.m.n_got, 1, 3000);
    run_for(&g, 200);
    assert_int_equal(g.m.n_got, 1); /* only the readable one reached the mapping */
    assert_string_equal(g.m.got[0]->data, "fine");
    char *el = lindex("dq-dead", 0, NULL);
    assert_non_null(el);
    assert_string_equal(el, bad);
    free(el);
    keys_for("dq");
    assert_int_equal(cmd_int("HLEN %s", keys.inflight), 1); /* "fine", still leased */
    settle(&g, 0, 1, WEIR_VERDICT_DONE);
    stop_and_wait(&g, 3000);
    rig_free(&g);
}

static void poller_authenticates_with_the_uri_password(void **state)
{
    freeReplyObject(redisCommand(rc, "CONFIG SET requirepass s3cret"));
    freeReplyObject(redisCommand(rc, "AUTH s3cret"));
    cmd_int("RPUSH aq secret-msg");
    struct rig bad;
    rig_init(&bad, "aq", 30, NULL, 0, ":wrong@");
    assert_int_equal(redis_ops->start(bad.p), WEIR_OK);
    run_for(&bad, 400);
    assert_int_equal(bad.m.n_got, 0);
    stop_and_wait(&bad, 3000);
    rig_free(&bad);

    struct rig g;
    rig_init(&g, "aq", 30, NULL, 0, ":s3cret@");
    assert_int_equal(redis_ops->start(g.p), WEIR_OK);
    run_until(&g, &g.m.n_got, 1, 3000);
    assert_int_equal(g.m.n_got, 1);
    assert_string_equal(g.m.got[0]->data, "secret-msg");
    settle(&g, 0, 1, WEIR_VERDICT_DONE);
    stop_and_wait(&g, 3000);
    rig_free(&g);
    freeReplyObject(redisCommand(rc, "CONFIG SET requirepass %s", ""));
}

static void poller_lease_follows_visibility_or_window_plus_timeout(void **state)
{
    /* visibility 40, no function: the lease is 40 s (checked through the server's deadline). */
    cmd_int("RPUSH lq a");
    struct rig g;
    rig_init(&g, "lq", 40, NULL, 0, NULL);
    keys_for("lq");
    long long before = server_ms();
    assert_int_equal(redis_ops->start(g.p), WEIR_OK);
    run_until(&g, &g.m.n_got, 1, 10000);
    assert_int_equal(g.m.n_got, 1);
    long long after = server_ms();
    redisReply *z = redisCommand(rc, "ZSCORE %s %s", keys.leases, g.m.got[0]->handle);
    long long deadline = atoll(z->str);
    freeReplyObject(z);
    /* Claimed between before and after, on the server's clock: the lease is 40 s from then. */
    assert_true(deadline >= before + 40000 && deadline <= after + 40000);
    settle(&g, 0, 1, WEIR_VERDICT_DONE);
    stop_and_wait(&g, 3000);
    rig_free(&g);

    /* window 20 + function timeout 30 > visibility 40: 20 + 30 + 30 = 80 s. */
    struct weir_function_cfg fn = {.name = "f", .timeout = 30};
    cmd_int("RPUSH lq b");
    rig_init(&g, "lq", 40, NULL, 0, NULL);
    g.mc.fn = &fn;
    g.mc.maximum_batching_window_in_seconds = 20;
    redis_ops->free(g.p);
    struct weir_err err;
    g.p = rig_poller_new(&g, &err);
    before = server_ms();
    assert_int_equal(redis_ops->start(g.p), WEIR_OK);
    run_until(&g, &g.m.n_got, 1, 10000);
    assert_int_equal(g.m.n_got, 1);
    after = server_ms();
    z = redisCommand(rc, "ZSCORE %s %s", keys.leases, g.m.got[0]->handle);
    deadline = atoll(z->str);
    freeReplyObject(z);
    assert_true(deadline >= before + 80000 && deadline <= after + 80000);
    settle(&g, 0, 1, WEIR_VERDICT_DONE);
    stop_and_wait(&g, 3000);
    rig_free(&g);
}

static void poller_fifo_delivers_groups_as_ordered_lanes_and_goes_on_when_one_unlocks(void **state)
{
    keys_for("po.fifo");
    for (int i = 1; i <= 15; i++) {
        char el[128];
        snprintf(el, sizeof(el), "{\"weir\":1,\"body\":\"a%d\",\"group\":\"A\"}", i);
        rpush("po.fifo", el, strlen(el));
        snprintf(el, sizeof(el), "{\"weir\":1,\"body\":\"b%d\",\"group\":\"B\"}", i);
        rpush("po.fifo", el, strlen(el));
    }
    struct rig g;
    rig_init(&g, "po.fifo", 30, NULL, 0, NULL);
    assert_true(redis_ops->info(g.p)->ordered_lanes);
    assert_non_null(strstr(redis_ops->info(g.p)->source_arn, ":po.fifo"));
    assert_int_equal(redis_ops->start(g.p), WEIR_OK);
    /* One batch (10) of each group, then both groups are locked. */
    run_until(&g, &g.m.n_got, 20, 10000);
    run_for(&g, 200);
    assert_int_equal(g.m.n_got, 20);
    uint32_t lane_a = weir_lane_of("A", 1), lane_b = weir_lane_of("B", 1);
    assert_int_not_equal(lane_a, lane_b);
    size_t na = 0, nb = 0;
    uint64_t last_a = 0, last_b = 0;
    for (size_t i = 0; i < g.m.n_got; i++) {
        const struct weir_record *r = g.m.got[i];
        char want[8];
        bool a = !strcmp(r->group_id, "A");
        snprintf(want, sizeof(want), "%c%zu", a ? 'a' : 'b', (a ? na : nb) + 1);
        assert_string_equal(r->data, want);
        assert_int_equal(r->lane, a ? lane_a : lane_b);
        assert_true(r->fifo_seq > (a ? last_a : last_b));
        *(a ? &last_a : &last_b) = r->fifo_seq;
        *(a ? &na : &nb) += 1;
    }
    /* Settling A's batch unlocks A: the rest of A comes without waiting for new messages. */
    size_t first_a = 0;
    while (strcmp(g.m.got[first_a]->group_id, "A"))
        first_a++;
    assert_true(first_a == 0 || first_a == 10);
    settle(&g, first_a, first_a + 10, WEIR_VERDICT_DONE);
    run_until(&g, &g.m.n_got, 25, 10000);
    assert_int_equal(g.m.n_got, 25);
    for (size_t i = 20; i < 25; i++) {
        char want[8];
        snprintf(want, sizeof(want), "a%zu", i - 9);
        assert_string_equal(g.m.got[i]->data, want);
    }
    stop_and_wait(&g, 10000);
    rig_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(claim_takes_from_the_head_and_leases_each_element, test_setup),
        cmocka_unit_test_setup(concurrent_claims_never_lease_one_element_twice, test_setup),
        cmocka_unit_test_setup(plain_message_keeps_its_id_across_reclaim, test_setup),
        cmocka_unit_test_setup(reclaim_returns_expired_leases_to_the_head_oldest_first, test_setup),
        cmocka_unit_test_setup(reclaim_leaves_leases_that_have_not_ended, test_setup),
        cmocka_unit_test_setup(
            reclaim_moves_to_the_dead_letter_list_at_max_receives_with_body_intact, test_setup),
        cmocka_unit_test_setup(release_gives_back_without_counting_a_receive, test_setup),
        cmocka_unit_test_setup(delete_removes_the_lease_and_leaves_others, test_setup),
        cmocka_unit_test_setup(bury_moves_an_unreadable_element_unchanged, test_setup),
        cmocka_unit_test_setup(reclaim_puts_an_unreadable_element_back_unchanged_without_a_dlq,
                               test_setup),
        cmocka_unit_test_setup(reclaim_replaces_invalid_utf8_of_a_plain_body, test_setup),
        cmocka_unit_test_setup(reclaim_changes_nothing_when_the_dead_letter_key_is_not_a_list,
                               test_setup),
        cmocka_unit_test_setup(claim_takes_nothing_when_its_own_keys_hold_another_type, test_setup),
        cmocka_unit_test_setup(fifo_claim_moves_messages_into_groups_in_order_and_numbers_them,
                               test_setup),
        cmocka_unit_test_setup(fifo_a_group_with_leases_is_not_claimed_again, test_setup),
        cmocka_unit_test_setup(fifo_a_group_stays_locked_until_its_last_lease_is_settled,
                               test_setup),
        cmocka_unit_test_setup(fifo_reclaim_returns_the_whole_group_to_its_head_in_order,
                               test_setup),
        cmocka_unit_test_setup(
            fifo_past_max_receives_a_message_is_dead_lettered_and_its_group_goes_on, test_setup),
        cmocka_unit_test_setup(fifo_a_short_claim_says_whether_more_groups_are_ready, test_setup),
        cmocka_unit_test_setup(fifo_dedup_drops_a_repeat_within_the_window_only, test_setup),
        cmocka_unit_test_setup(fifo_messages_without_a_group_are_refused_with_the_reason,
                               test_setup),
        cmocka_unit_test_setup(fifo_release_gives_back_to_the_group_head_without_a_receive,
                               test_setup),
        cmocka_unit_test_setup(
            fifo_a_message_that_cannot_be_written_back_is_refused_and_nothing_is_lost, test_setup),
        cmocka_unit_test_setup(fifo_group_ids_are_checked_as_sqs_checks_them, test_setup),
        cmocka_unit_test_setup(fifo_claiming_costs_the_same_however_many_groups_are_blocked,
                               test_setup),
        cmocka_unit_test(envelope_members_become_record_fields),
        cmocka_unit_test(elements_not_starting_with_the_weir_member_are_plain_bodies),
        cmocka_unit_test(malformed_envelopes_are_refused_with_the_reason),
        cmocka_unit_test(lease_ids_are_uuid_shaped_and_stable_per_queue),
        cmocka_unit_test(source_arn_names_the_list_under_a_stable_account),
        cmocka_unit_test(uri_parse_accepts_the_documented_forms),
        cmocka_unit_test(uri_parse_refuses_what_it_cannot_use),
        cmocka_unit_test_setup(poller_delivers_settles_and_redelivers_after_the_lease, test_setup),
        cmocka_unit_test_setup(poller_respects_backpressure_and_batch_size, test_setup),
        cmocka_unit_test_setup(poller_moves_unreadable_elements_to_the_dead_letter_list,
                               test_setup),
        cmocka_unit_test_setup(poller_lease_follows_visibility_or_window_plus_timeout, test_setup),
        cmocka_unit_test_setup(poller_authenticates_with_the_uri_password, test_setup),
        cmocka_unit_test_setup(poller_gives_back_what_a_claim_returns_after_stop, test_setup),
        cmocka_unit_test_setup(poller_survives_a_script_cache_flush, test_setup),
        cmocka_unit_test_setup(poller_reconnects_after_a_redis_restart, test_setup),
        cmocka_unit_test_setup(poller_stop_with_redis_down_gives_up_and_calls_done, test_setup),
        cmocka_unit_test_setup(poller_lease_ids_do_not_repeat_after_redis_loses_its_data,
                               test_setup),
        cmocka_unit_test_setup(poller_replaces_a_wait_connection_that_went_silent, test_setup),
        cmocka_unit_test_setup(
            poller_fifo_delivers_groups_as_ordered_lanes_and_goes_on_when_one_unlocks, test_setup),
    };
    int rv = cmocka_run_group_tests(tests, group_setup, group_teardown);
    weir_redis_keys_deinit(&keys);
    return rv;
}
