/* core/: JSON string escaping and base64 (core/buf.c), MD5 against RFC 1321's test suite and
 * the UUID format (core/hash.c), URI redaction, the log line and its repeat limiter (core/log.c),
 * timers on the stepped and the real clock (core/clock.c), the u32 map (core/u32map.c) and the
 * intrusive list (core/list.h). Nothing here sleeps: time is stepped, except in the one test of
 * the real clock, which waits on the loop for 20 ms. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <jansson.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/list.h"
#include "core/md5x8.h"
#include "core/log.h"
#include "core/u32map.h"

static void assert_json_str(const char *in, size_t len, const char *want)
{
    struct weir_buf b;
    weir_buf_init(&b);
    weir_buf_append_json_str(&b, in, len);
    if (strcmp(b.data, want) != 0)
        fail_msg("escaped to %s, want %s", b.data, want);
    assert_int_equal(b.len, strlen(want));
    /* Whatever went in, a JSON parser takes what came out. */
    json_error_t jerr;
    json_t *j = json_loadb(b.data, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!json_is_string(j))
        fail_msg("%s is not a JSON string: %s", b.data, jerr.text);
    json_decref(j);
    weir_buf_deinit(&b);
}

#define JSON_STR(lit, want) assert_json_str(lit, sizeof(lit) - 1, want)

static void json_string_escapes_what_json_requires(void **state)
{
    JSON_STR("", "\"\"");
    JSON_STR("plain text 123", "\"plain text 123\"");
    JSON_STR("q\"b\\s/", "\"q\\\"b\\\\s/\"");
    JSON_STR("\n\r\t", "\"\\n\\r\\t\"");
    JSON_STR("\b\f", "\"\\u0008\\u000c\"");
    JSON_STR("\x01\x1f", "\"\\u0001\\u001f\"");
    JSON_STR("a\0b", "\"a\\u0000b\"");
    JSON_STR("\x7f", "\"\x7f\""); /* DEL is legal in a JSON string */
}

static void json_string_keeps_utf8_and_replaces_invalid_bytes(void **state)
{
    JSON_STR("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
    JSON_STR("\xff", "\"\\ufffd\"");
    JSON_STR("a\x80z", "\"a\\ufffdz\"");
    JSON_STR("\xc0\x80", "\"\\ufffd\\ufffd\"");                       /* overlong NUL */
    JSON_STR("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");            /* a UTF-16 surrogate */
    JSON_STR("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* past U+10FFFF */
    JSON_STR("ok\xe2\x82", "\"ok\\ufffd\\ufffd\"");                   /* cut at the end */
    JSON_STR("\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\"");             /* U+10FFFF itself is fine */
}

static void json_string_appends_after_existing_bytes(void **state)
{
    struct weir_buf b;
    weir_buf_init(&b);
    weir_buf_append_str(&b, "{\"k\":");
    weir_buf_append_json_str(&b, "v\"", 2);
    weir_buf_append_char(&b, '}');
    assert_string_equal(b.data, "{\"k\":\"v\\\"\"}");
    weir_buf_deinit(&b);
}

static void base64_matches_rfc4648_vectors(void **state)
{
    static const char *const vec[][2] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        struct weir_buf b;
        weir_buf_init(&b);
        weir_buf_append_str(&b, "x:");
        weir_buf_append_base64(&b, vec[i][0], strlen(vec[i][0]));
        assert_int_equal(b.len, 2 + strlen(vec[i][1]));
        assert_string_equal(b.data + 2, vec[i][1]);
        weir_buf_deinit(&b);
    }
    static const unsigned char bin[] = {0x00, 0xff, 0xfe, 0xfb, 0xef, 0x3e};
    struct weir_buf b;
    weir_buf_init(&b);
    weir_buf_append_base64(&b, bin, sizeof(bin));
    assert_string_equal(b.data, "AP/+++8+");
    weir_buf_deinit(&b);
}

/* Base64 the slow way, six bits at a time, to check the table-driven writer against. */
static void base64_by_bits(const unsigned char *in, size_t len, char *out)
{
    static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t bit = 0; bit < len * 8; bit += 6) {
        unsigned v = 0;
        for (size_t k = bit; k < bit + 6; k++)
            v = v << 1 | (k < len * 8 ? (in[k / 8] >> (7 - k % 8)) & 1u : 0u);
        out[o++] = chars[v];
    }
    while (o % 4)
        out[o++] = '=';
    out[o] = '\0';
}

static void base64_of_every_twelve_bits_matches_the_bitwise_encoding(void **state)
{
    /* Three bytes a step: every value of the first twelve bits and of the last twelve, and each
     * length's tail (1 and 2 bytes left over). */
    enum { N = 4096 * 3 };
    unsigned char *in = malloc(N + 2);
    for (size_t v = 0; v < 4096; v++) {
        uint32_t word = (uint32_t)v << 12 | (uint32_t)(4095 - v);
        in[3 * v] = (unsigned char)(word >> 16);
        in[3 * v + 1] = (unsigned char)(word >> 8);
        in[3 * v + 2] = (unsigned char)word;
    }
    in[N] = 0xfb;
    in[N + 1] = 0x0f;
    char *want = malloc(WEIR_BASE64_LEN(N + 2) + 1);
    for (size_t len = N; len <= N + 2; len++) {
        base64_by_bits(in, len, want);
        struct weir_buf b;
        weir_buf_init(&b);
        weir_buf_append_base64(&b, in, len);
        assert_int_equal(b.len, WEIR_BASE64_LEN(len));
        assert_string_equal(b.data, want);
        char *put = malloc(WEIR_BASE64_LEN(len) + 1);
        char *end = weir_put_base64(put, in, len);
        assert_int_equal(end - put, WEIR_BASE64_LEN(len));
        assert_memory_equal(put, want, WEIR_BASE64_LEN(len));
        free(put);
        weir_buf_deinit(&b);
    }
    free(want);
    free(in);
}

/* Encodes len bytes of src from a buffer of exactly len bytes into one of exactly the encoding's
 * length, so that the sanitized build reports a read or a write past either, and compares. */
static void base64_exact_matches_the_bitwise_encoding(const unsigned char *src, size_t len,
                                                      char *want)
{
    unsigned char *in = malloc(len ? len : 1);
    memcpy(in, src, len);
    char *put = malloc(len ? WEIR_BASE64_LEN(len) : 1);
    base64_by_bits(in, len, want);
    char *end = weir_put_base64(put, in, len);
    assert_int_equal(end - put, WEIR_BASE64_LEN(len));
    assert_memory_equal(put, want, WEIR_BASE64_LEN(len));
    free(put);
    free(in);
}

/* The wide writer (AVX2 where the CPU has it, 24 bytes a step) against the bitwise one: random
 * bytes, every length to a few steps past the wide step's reach from every start within a step,
 * then a long run. */
static void
base64_of_random_bytes_at_every_length_and_start_matches_the_bitwise_encoding(void **state)
{
    enum { N = 65536, SHORT = 120, STEP = 24 };
    unsigned char *in = malloc(N);
    uint32_t x = 2463534242u; /* xorshift32: the same bytes every run */
    for (size_t i = 0; i < N; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        in[i] = (unsigned char)x;
    }
    char *want = malloc(WEIR_BASE64_LEN(N) + 1);
    for (size_t start = 0; start < STEP; start++)
        for (size_t len = 0; len <= SHORT; len++)
            base64_exact_matches_the_bitwise_encoding(in + start, len, want);
    base64_exact_matches_the_bitwise_encoding(in, N, want);
    free(want);
    free(in);
}

static void number_writers_write_every_digit_and_the_sign(void **state)
{
    static const struct {
        int64_t v;
        const char *text;
    } signed_vec[] = {{0, "0"},
                      {7, "7"},
                      {-1, "-1"},
                      {10, "10"},
                      {-2147483648LL, "-2147483648"},
                      {INT64_MAX, "9223372036854775807"},
                      {INT64_MIN, "-9223372036854775808"}};
    char out[WEIR_U64_DIGITS + 2];
    for (size_t i = 0; i < sizeof(signed_vec) / sizeof(*signed_vec); i++) {
        char *end = weir_put_i64(out, signed_vec[i].v);
        *end = '\0';
        assert_string_equal(out, signed_vec[i].text);
    }
    /* Every value to 1000, and each power of ten and its neighbours, against printf. */
    for (uint64_t v = 0; v <= 1000; v++) {
        char want[24];
        snprintf(want, sizeof want, "%" PRIu64, v);
        *weir_put_u64(out, v) = '\0';
        assert_string_equal(out, want);
    }
    for (uint64_t p = 10; p <= 10000000000000000000ULL; p *= 10) {
        for (uint64_t v = p - 1; v <= p + 1; v++) {
            char want[24];
            snprintf(want, sizeof want, "%" PRIu64, v);
            *weir_put_u64(out, v) = '\0';
            assert_string_equal(out, want);
        }
        if (p == 10000000000000000000ULL)
            break;
    }
    char *end = weir_put_u64(out, UINT64_MAX);
    assert_int_equal(end - out, WEIR_U64_DIGITS);
    *end = '\0';
    assert_string_equal(out, "18446744073709551615");
    end = weir_put_u64(out, 1000000);
    *end = '\0';
    assert_string_equal(out, "1000000");
}

static void md5_matches_rfc1321_test_suite(void **state)
{
    static const char *const vec[][2] = {
        {"", "d41d8cd98f00b204e9800998ecf8427e"},
        {"a", "0cc175b9c0f1b6a831c399e269772661"},
        {"abc", "900150983cd24fb0d6963f7d28e17f72"},
        {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
        {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
        {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
         "d174ab98d277d9f5a5611c2c9f419d9f"},
        {"1234567890123456789012345678901234567890123456789012345678901234567890123456789"
         "0",
         "57edf4a22be3c955ac49da2e2107b67a"},
    };
    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        char hex[33];
        weir_md5_hex(vec[i][0], strlen(vec[i][0]), hex);
        if (strcmp(hex, vec[i][1]) != 0)
            fail_msg("MD5(\"%s\") = %s, want %s", vec[i][0], hex, vec[i][1]);
    }
}

/* Eight lanes of different data and lengths, advanced together block by block in runs of
 * different sizes, then each finished on its own: every digest equals the one-stream MD5 of the
 * same bytes. */
static void md5x8_lanes_match_one_stream_md5(void **state)
{
    if (!weir_md5x8_available())
        fail_msg("this CPU has no AVX2: weir hashes one file at a time with OpenSSL's MD5, and "
                 "this test of the eight-lane MD5 cannot run here");
    srand(7);
    for (int round = 0; round < 50; round++) {
        size_t blocks = 1 + (size_t)(rand() % 40);
        unsigned char *data[WEIR_MD5X8_LANES];
        size_t tail[WEIR_MD5X8_LANES];
        uint32_t st[4][WEIR_MD5X8_LANES];
        for (int l = 0; l < WEIR_MD5X8_LANES; l++) {
            tail[l] = (size_t)(rand() % 130);
            data[l] = malloc(blocks * 64 + tail[l]);
            for (size_t i = 0; i < blocks * 64 + tail[l]; i++)
                data[l][i] = (unsigned char)rand();
            struct weir_md5 init;
            weir_md5_init(&init);
            for (int k = 0; k < 4; k++)
                st[k][l] = init.state[k];
        }
        /* Runs of 1..7 blocks, as a hashing thread takes what each file has read. */
        for (size_t done = 0; done < blocks;) {
            size_t run = 1 + (size_t)(rand() % 7);
            if (run > blocks - done)
                run = blocks - done;
            const unsigned char *at[WEIR_MD5X8_LANES];
            for (int l = 0; l < WEIR_MD5X8_LANES; l++)
                at[l] = data[l] + done * 64;
            weir_md5x8_blocks(st, at, run);
            done += run;
        }
        for (int l = 0; l < WEIR_MD5X8_LANES; l++) {
            struct weir_md5 lane, whole;
            for (int k = 0; k < 4; k++)
                lane.state[k] = st[k][l];
            lane.bytes = blocks * 64;
            weir_md5_update(&lane, data[l] + blocks * 64, tail[l]);
            unsigned char got[16], want[16];
            weir_md5_final(&lane, got);
            weir_md5_init(&whole);
            weir_md5_update(&whole, data[l], blocks * 64 + tail[l]);
            weir_md5_final(&whole, want);
            assert_memory_equal(got, want, 16);
            free(data[l]);
        }
    }
}

static void md5_of_a_million_a_in_uneven_pieces(void **state)
{
    /* The classic long vector, fed in pieces that straddle block and padding boundaries. */
    static char as[1024]; /* longer than any step below */
    memset(as, 'a', sizeof(as));
    struct weir_md5 ctx;
    weir_md5_init(&ctx);
    size_t left = 1000000, step = 1;
    while (left) {
        size_t n = step < left ? step : left;
        weir_md5_update(&ctx, as, n);
        left -= n;
        step = step % 997 + 13;
    }
    unsigned char d[16];
    weir_md5_final(&ctx, d);
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + i * 2, 3, "%02x", d[i]);
    assert_string_equal(hex, "7707d6ae4e027c70eea2a935c2296f21");
}

static void md5_in_pieces_equals_md5_at_once(void **state)
{
    unsigned char data[300];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)(i * 31 + 7);
    for (size_t len = 0; len <= sizeof(data); len++) {
        char once[33], pieces[33];
        weir_md5_hex(data, len, once);
        struct weir_md5 ctx;
        weir_md5_init(&ctx);
        for (size_t off = 0; off < len;) {
            size_t n = (off % 5) + 1;
            if (n > len - off)
                n = len - off;
            weir_md5_update(&ctx, data + off, n);
            off += n;
        }
        unsigned char d[16];
        weir_md5_final(&ctx, d);
        for (int i = 0; i < 16; i++)
            snprintf(pieces + i * 2, 3, "%02x", d[i]);
        if (strcmp(once, pieces) != 0)
            fail_msg("length %zu: %s at once, %s in pieces", len, once, pieces);
    }
}

static int cmp_uuid(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void uuid4_has_the_version_4_format_and_does_not_repeat(void **state)
{
    enum { N = 2000 };
    static char ids[N][37];
    for (int n = 0; n < N; n++) {
        char *u = ids[n];
        memset(u, '#', 37);
        weir_uuid4(u);
        assert_int_equal(strlen(u), 36);
        for (int i = 0; i < 36; i++) {
            if (i == 8 || i == 13 || i == 18 || i == 23) {
                assert_int_equal(u[i], '-');
                continue;
            }
            if (!((u[i] >= '0' && u[i] <= '9') || (u[i] >= 'a' && u[i] <= 'f')))
                fail_msg("%s: not lowercase hex at %d", u, i);
        }
        assert_int_equal(u[14], '4');
        assert_non_null(strchr("89ab", u[19]));
    }
    qsort(ids, N, sizeof(ids[0]), cmp_uuid);
    for (int n = 1; n < N; n++)
        assert_string_not_equal(ids[n - 1], ids[n]);
}

static void redact(const char *uri, const char *want)
{
    char out[256];
    weir_log_redact_uri(uri, out, sizeof(out));
    if (strcmp(out, want) != 0)
        fail_msg("redact(%s) = %s, want %s", uri, out, want);
}

static void redact_uri_hides_the_password_only(void **state)
{
    redact("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0");
    redact("redis://weir:s3cret@127.0.0.1:6379/0", "redis://weir:***@127.0.0.1:6379/0");
    redact("redis://:s3cret@127.0.0.1:6379", "redis://:***@127.0.0.1:6379");
    redact("redis://tokenonly@host/0", "redis://***@host/0");
    redact("postgres://u:p@ss@db:5432/x", "postgres://u:***@db:5432/x");
    redact("postgres://u:pw@db/x?sslmode=disable", "postgres://u:***@db/x?sslmode=disable");
    redact("http://fn:8080/path@not-userinfo", "http://fn:8080/path@not-userinfo");
    redact("kafka://broker:9092", "kafka://broker:9092");
    redact("file:///srv/dlq", "file:///srv/dlq");
    redact("", "");
}

static void redact_uri_truncates_and_terminates(void **state)
{
    char out[12];
    memset(out, 'Z', sizeof(out));
    weir_log_redact_uri("redis://user:password@host:6379/0", out, sizeof(out));
    assert_int_equal(strlen(out), sizeof(out) - 1);
    assert_null(strstr(out, "password"));
    char one[1] = {'Z'};
    weir_log_redact_uri("redis://u:p@h", one, 1);
    assert_int_equal(one[0], '\0');
    char none[1] = {'Z'};
    weir_log_redact_uri("redis://u:p@h", none, 0);
    assert_int_equal(none[0], 'Z');
}

/* ---- timers on weir's clock (core/clock.c) ---- */

#define T0_MS     1000000       /* the fake monotonic clock's start */
#define W0_MS     1741083062118 /* the fake wall clock's start: 2025-03-04T10:11:02.118Z */
#define MAX_SHOTS 8

/* A timer and what its callback saw. */
struct shot {
    struct weir_timer *t;
    int id;
    int fires;
    bool armed_in_cb;
    int64_t due_in_cb;
    int64_t fired_at_ms;
    int rearms; /* times the callback sets its own timer again, rearm_ms on */
    int64_t rearm_ms;
    struct weir_timer *stop_other; /* stopped from this callback */
};

/* One loop per test; teardown frees every timer a failed assertion left behind. */
static struct {
    struct event_base *base;
    struct shot shots[MAX_SHOTS];
    int nshots;
    int order[64]; /* shot ids in the order they fired */
    int nfired;
} lp;

static void on_shot(void *arg)
{
    struct shot *s = arg;
    s->fires++;
    s->armed_in_cb = weir_timer_armed(s->t);
    s->due_in_cb = weir_timer_due(s->t);
    s->fired_at_ms = weir_clock_mono_ms();
    if (lp.nfired < (int)(sizeof(lp.order) / sizeof(lp.order[0])))
        lp.order[lp.nfired++] = s->id;
    if (s->stop_other)
        weir_timer_stop(s->stop_other);
    if (s->rearms > 0) {
        s->rearms--;
        weir_timer_after(s->t, s->rearm_ms);
    }
}

static struct shot *shot_new(void)
{
    assert_true(lp.nshots < MAX_SHOTS);
    struct shot *s = &lp.shots[lp.nshots];
    s->id = lp.nshots++;
    s->t = weir_timer_new(lp.base, on_shot, s);
    return s;
}

/* One non-blocking turn of the loop: runs what is due, never waits. */
static void turn(void)
{
    assert_int_not_equal(event_base_loop(lp.base, EVLOOP_NONBLOCK), -1);
}

static void assert_fired_in_order(const int *want, int n)
{
    if (lp.nfired != n)
        fail_msg("%d timers fired, want %d", lp.nfired, n);
    for (int i = 0; i < n; i++)
        if (lp.order[i] != want[i])
            fail_msg("firing %d was timer %d, want timer %d", i, lp.order[i], want[i]);
}

static int loop_setup(void **state)
{
    memset(&lp, 0, sizeof(lp));
    lp.base = event_base_new();
    weir_clock_fake(T0_MS, W0_MS);
    return lp.base ? 0 : -1;
}

static int loop_teardown(void **state)
{
    for (int i = 0; i < lp.nshots; i++)
        weir_timer_free(lp.shots[i].t);
    event_base_free(lp.base);
    weir_clock_real();
    return 0;
}

#define LOOP_TEST(f) cmocka_unit_test_setup_teardown(f, loop_setup, loop_teardown)

static void timer_waits_for_the_fake_clock_and_fires_once_when_stepped_to_it(void **state)
{
    struct shot *s = shot_new();
    weir_timer_after(s->t, 1000);
    assert_int_equal(weir_timer_due(s->t), T0_MS + 1000);
    turn();
    assert_int_equal(s->fires, 0);
    weir_clock_step(999);
    turn();
    assert_int_equal(s->fires, 0);
    assert_true(weir_timer_armed(s->t));
    weir_clock_step(1);
    turn();
    assert_int_equal(s->fires, 1);
    assert_int_equal(s->fired_at_ms, T0_MS + 1000);
    turn();
    weir_clock_step(100000);
    turn();
    assert_int_equal(s->fires, 1);
}

static void timers_made_due_by_one_step_fire_in_due_order(void **state)
{
    /* Armed out of order; the last one stays beyond the step. */
    static const int64_t after[] = {400, 100, 300, 200, 250, 600};
    for (size_t i = 0; i < sizeof(after) / sizeof(after[0]); i++)
        weir_timer_after(shot_new()->t, after[i]);
    weir_clock_step(500);
    turn();
    static const int want[] = {1, 3, 4, 2, 0};
    assert_fired_in_order(want, 5);
    assert_true(weir_timer_armed(lp.shots[5].t));
    assert_int_equal(lp.shots[5].fires, 0);
    weir_clock_step(100);
    turn();
    assert_int_equal(lp.shots[5].fires, 1);
    assert_int_equal(lp.nfired, 6);
}

static void a_rearmed_timer_fires_only_at_its_new_time(void **state)
{
    /* Later: the old time passes without a firing. */
    struct shot *s = shot_new();
    weir_timer_after(s->t, 100);
    weir_timer_after(s->t, 500);
    assert_int_equal(weir_timer_due(s->t), T0_MS + 500);
    weir_clock_step(100);
    turn();
    assert_int_equal(s->fires, 0);
    weir_clock_step(400);
    turn();
    assert_int_equal(s->fires, 1);

    /* Earlier: fires at the new time, and not again at the old one. */
    weir_timer_after(s->t, 1000);
    weir_timer_at(s->t, weir_clock_mono_ms() + 10);
    weir_clock_step(10);
    turn();
    assert_int_equal(s->fires, 2);
    weir_clock_step(2000);
    turn();
    assert_int_equal(s->fires, 2);

    /* Moved after a step made it due but before the loop ran: the old firing is gone. */
    weir_timer_after(s->t, 100);
    weir_clock_step(100);
    weir_timer_after(s->t, 300);
    turn();
    assert_int_equal(s->fires, 2);
    weir_clock_step(299);
    turn();
    assert_int_equal(s->fires, 2);
    weir_clock_step(1);
    turn();
    assert_int_equal(s->fires, 3);
}

static void
stopping_a_timer_made_due_by_a_step_before_the_loop_runs_prevents_it_firing(void **state)
{
    struct shot *s = shot_new();
    weir_timer_after(s->t, 100);
    weir_clock_step(100);
    weir_timer_stop(s->t);
    assert_false(weir_timer_armed(s->t));
    assert_int_equal(weir_timer_due(s->t), -1);
    turn();
    weir_clock_step(100000);
    turn();
    assert_int_equal(s->fires, 0);

    /* Stopped while waiting, and stopped twice. */
    weir_timer_after(s->t, 100);
    weir_timer_stop(s->t);
    weir_timer_stop(s->t);
    weir_clock_step(200);
    turn();
    assert_int_equal(s->fires, 0);
}

static void a_timer_stopped_by_an_earlier_timers_callback_does_not_fire(void **state)
{
    struct shot *first = shot_new(), *second = shot_new();
    first->stop_other = second->t;
    weir_timer_after(first->t, 100);
    weir_timer_after(second->t, 200);
    weir_clock_step(300); /* both made due at once */
    turn();
    assert_int_equal(first->fires, 1);
    assert_int_equal(second->fires, 0);
    assert_false(weir_timer_armed(second->t));
}

static void timer_set_for_now_or_the_past_fires_on_the_next_turn_without_a_step(void **state)
{
    struct shot *now = shot_new(), *past = shot_new(), *zero = shot_new();
    weir_timer_at(now->t, T0_MS);
    weir_timer_at(past->t, T0_MS - 5000);
    weir_timer_after(zero->t, 0);
    assert_true(weir_timer_armed(now->t));
    assert_true(weir_timer_armed(past->t));
    assert_true(weir_timer_armed(zero->t));
    assert_int_equal(now->fires + past->fires + zero->fires, 0); /* not from inside the call */
    turn();
    static const int want[] = {0, 1, 2};
    assert_fired_in_order(want, 3);
    assert_int_equal(weir_clock_mono_ms(), T0_MS);
    turn();
    assert_int_equal(lp.nfired, 3);
}

static void freeing_an_armed_or_due_timer_is_safe(void **state)
{
    struct shot *waiting = shot_new(), *stepped = shot_new(), *now = shot_new();
    weir_timer_after(waiting->t, 1000);
    weir_timer_after(stepped->t, 10);
    weir_clock_step(10);
    weir_timer_after(now->t, 0);
    weir_timer_free(waiting->t);
    weir_timer_free(stepped->t);
    weir_timer_free(now->t);
    waiting->t = stepped->t = now->t = NULL;
    weir_timer_free(NULL);
    turn();
    weir_clock_step(10000);
    turn();
    assert_int_equal(lp.nfired, 0);
}

static void timer_armed_and_due_report_its_state(void **state)
{
    struct shot *s = shot_new();
    assert_false(weir_timer_armed(s->t));
    assert_int_equal(weir_timer_due(s->t), -1);
    weir_timer_after(s->t, 250);
    assert_true(weir_timer_armed(s->t));
    assert_int_equal(weir_timer_due(s->t), T0_MS + 250);
    weir_timer_at(s->t, T0_MS + 70);
    assert_int_equal(weir_timer_due(s->t), T0_MS + 70);
    weir_clock_step(70);
    assert_true(weir_timer_armed(s->t)); /* due, but the loop has not run it yet */
    turn();
    assert_int_equal(s->fires, 1);
    assert_false(s->armed_in_cb); /* a one-shot timer is no longer armed in its callback */
    assert_int_equal(s->due_in_cb, -1);
    assert_false(weir_timer_armed(s->t));
    assert_int_equal(weir_timer_due(s->t), -1);
    weir_timer_after(s->t, -30); /* a negative delay is now */
    assert_int_equal(weir_timer_due(s->t), T0_MS + 70);
}

static void a_callback_may_rearm_its_own_timer(void **state)
{
    struct shot *s = shot_new();
    s->rearms = 2;
    s->rearm_ms = 100;
    weir_timer_after(s->t, 50);
    weir_clock_step(50);
    turn();
    assert_int_equal(s->fires, 1);
    assert_true(weir_timer_armed(s->t));
    assert_int_equal(weir_timer_due(s->t), T0_MS + 150);
    weir_clock_step(99);
    turn();
    assert_int_equal(s->fires, 1);
    weir_clock_step(1);
    turn();
    assert_int_equal(s->fires, 2);
    assert_int_equal(weir_timer_due(s->t), T0_MS + 250);
    weir_clock_step(1000); /* past the last re-arm: fires once more, then rests */
    turn();
    assert_int_equal(s->fires, 3);
    assert_false(weir_timer_armed(s->t));
    weir_clock_step(1000);
    turn();
    assert_int_equal(s->fires, 3);
}

static void switching_to_the_real_clock_rearms_pending_fake_timers_on_real_time(void **state)
{
    weir_clock_real();
    int64_t real_now = weir_clock_mono_ms();
    if (real_now < 10000)
        skip(); /* the monotonic clock is too young to have a past before fake time 1000 */
    weir_clock_fake(0, W0_MS);
    struct shot *past = shot_new(), *future = shot_new();
    weir_timer_after(past->t, 1000); /* due at 1000: long gone on the real clock */
    weir_timer_at(future->t, real_now + 3600 * 1000);
    turn();
    assert_int_equal(lp.nfired, 0);

    weir_clock_real();
    assert_false(weir_clock_is_fake());
    assert_true(weir_timer_armed(past->t));
    assert_int_equal(weir_timer_due(past->t), 1000);
    assert_int_equal(weir_timer_due(future->t), real_now + 3600 * 1000);
    turn();
    assert_int_equal(past->fires, 1);
    assert_int_equal(future->fires, 0);
    assert_true(weir_timer_armed(future->t));
}

static void real_clock_timer_fires_no_earlier_than_its_delay(void **state)
{
    weir_clock_real();
    struct shot *s = shot_new();
    int64_t start_ms = weir_clock_mono_ms(), start_us = weir_clock_mono_us();
    weir_timer_after(s->t, 20);
    /* Each blocking turn returns once something ran; an early libevent wake-up re-arms. */
    for (int turns = 0; !s->fires && turns < 1000; turns++)
        assert_int_not_equal(event_base_loop(lp.base, EVLOOP_ONCE), -1);
    assert_int_equal(s->fires, 1);
    int64_t elapsed_us = weir_clock_mono_us() - start_us;
    if (s->fired_at_ms - start_ms < 20)
        fail_msg("fired %lld ms after being set for 20 ms", (long long)(s->fired_at_ms - start_ms));
    /* The clock counts whole milliseconds, so the due time may lie up to 1 ms before
     * start + 20 ms when the timer was set late in a millisecond. */
    if (elapsed_us <= 19000)
        fail_msg("fired %lld us after being set for 20 ms", (long long)elapsed_us);
}

/* ---- the log line and its limiter (core/log.c) ---- */

/* stderr redirected into a file under TMPDIR (which scripts/test.sh points at its per-run
 * directory), or /tmp. Assertions wait for capture_end: a failure message must reach the real
 * stderr. */
struct capture {
    char path[512];
    int saved_fd;
};

static void capture_begin(struct capture *c)
{
    const char *dir = getenv("TMPDIR");
    snprintf(c->path, sizeof(c->path), "%s/weir-test-core-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(c->path);
    assert_true(fd >= 0);
    fflush(stderr);
    c->saved_fd = dup(STDERR_FILENO);
    assert_true(c->saved_fd >= 0);
    assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    close(fd);
}

/* What the last capture caught; log_teardown frees it, also after a failed assertion. */
static char *captured;

/* Restores stderr and returns what was written meanwhile (owned by the capture). */
static char *capture_end(struct capture *c)
{
    fflush(stderr);
    dup2(c->saved_fd, STDERR_FILENO);
    close(c->saved_fd);
    FILE *f = fopen(c->path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    char *out = malloc((size_t)len + 1);
    assert_non_null(out);
    assert_int_equal(fread(out, 1, (size_t)len, f), (size_t)len);
    out[len] = '\0';
    fclose(f);
    unlink(c->path);
    free(captured);
    captured = out;
    return out;
}

/* Splits out into lines in place; returns how many there are. */
static int split_lines(char *out, char **lines, int max)
{
    int n = 0;
    for (char *p = out, *nl; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl)
            fail_msg("an unterminated line: %s", p);
        *nl = '\0';
        if (n < max)
            lines[n] = p;
        n++;
    }
    return n;
}

static int count_lines(const char *out)
{
    int n = 0;
    for (; *out; out++)
        n += *out == '\n';
    return n;
}

/* Asserts that line is "<level> <time> <component>: <text>", written at wall_ms, and that text
 * is want_text. Any run of blanks may separate the fields (the level is padded to a column). */
static void assert_log_line(const char *line, int64_t wall_ms, const char *level,
                            const char *component, const char *want_text)
{
    char lv[16], ts[32], comp[128];
    int off = -1;
    if (sscanf(line, "%15s %31s %127[^:]: %n", lv, ts, comp, &off) != 3 || off < 0)
        fail_msg("not a log line: %s", line);
    if (strcmp(lv, level) != 0 || strcmp(comp, component) != 0 || strcmp(line + off, want_text))
        fail_msg("log line %s, want level %s component %s text %s", line, level, component,
                 want_text);
    char want_ts[25];
    weir_clock_iso8601(wall_ms, want_ts);
    assert_string_equal(ts, want_ts);
}

static int log_setup(void **state)
{
    weir_clock_fake(T0_MS, W0_MS);
    weir_log_set_level(WEIR_LOG_INFO);
    return 0;
}

static int log_teardown(void **state)
{
    free(captured);
    captured = NULL;
    weir_clock_real();
    weir_log_set_level(WEIR_LOG_INFO);
    return 0;
}

#define LOG_TEST(f) cmocka_unit_test_setup_teardown(f, log_setup, log_teardown)

/* The limiter remembers places across tests: each test logs from places of its own. */
static void flood_place_a(const char *component, int i)
{
    weir_log_limited(WEIR_LOG_WARN, component, "receive failed attempt=%d", i);
}

static void flood_place_b(const char *component, int i)
{
    weir_log_limited(WEIR_LOG_WARN, component, "receive failed attempt=%d", i);
}

static void other_place_b(const char *component, int i)
{
    weir_log_limited(WEIR_LOG_WARN, component, "receive failed attempt=%d", i);
}

static void flood_place_c(const char *component, int i)
{
    weir_log_limited(WEIR_LOG_ERROR, component, "invoke failed status=%d", 500 + i);
}

static void flood_place_d(const char *component, int i)
{
    weir_log_limited(WEIR_LOG_WARN, component, "settle failed n=%d", i);
}

static void log_line_is_level_time_component_then_text_with_key_values(void **state)
{
    struct capture c;
    capture_begin(&c);
    weir_log(WEIR_LOG_INFO, "mapping/orders", "batch submitted lane=%u records=%d", 3u, 10);
    weir_warn(NULL, "config reloaded path=%s", "/etc/weir.yaml");
    weir_error("function/resize", "invoke failed status=%d", 502);
    weir_debug("mapping/orders", "below the level: not written");
    weir_log_set_level(WEIR_LOG_OFF);
    weir_error("mapping/orders", "logging is off: not written");
    char *out = capture_end(&c);
    char *lines[4];
    assert_int_equal(split_lines(out, lines, 4), 3);
    assert_log_line(lines[0], W0_MS, "info", "mapping/orders", "batch submitted lane=3 records=10");
    assert_log_line(lines[1], W0_MS, "warn", "weir", "config reloaded path=/etc/weir.yaml");
    assert_log_line(lines[2], W0_MS, "error", "function/resize", "invoke failed status=502");
    assert_non_null(strstr(lines[0], " 2025-03-04T10:11:02.118Z mapping/orders: batch"));
    assert_int_equal(strncmp(lines[0], "info ", 5), 0);
}

static void log_limited_prints_one_line_per_place_and_component_per_window(void **state)
{
    struct capture c;
    capture_begin(&c);
    for (int i = 0; i < 1000; i++) {
        flood_place_a("mapping/orders", i);
        if (i == 500)
            weir_clock_step(9999); /* the window is 10 s from the printed line */
    }
    char *out = capture_end(&c);
    char *lines[2];
    assert_int_equal(split_lines(out, lines, 2), 1);
    assert_log_line(lines[0], W0_MS, "warn", "mapping/orders", "receive failed attempt=0");
}

static void log_limited_does_not_suppress_another_place_or_component(void **state)
{
    struct capture c;
    capture_begin(&c);
    for (int i = 0; i < 1000; i++)
        flood_place_b("mapping/orders", i);
    other_place_b("mapping/orders", 1);  /* same text shape, another line of code */
    flood_place_b("mapping/refunds", 2); /* same place, another component */
    flood_place_b(NULL, 3);              /* and without one */
    flood_place_b("mapping/orders", 4);
    flood_place_b("mapping/refunds", 5);
    other_place_b("mapping/orders", 6);
    char *out = capture_end(&c);
    char *lines[5];
    assert_int_equal(split_lines(out, lines, 5), 4);
    assert_log_line(lines[0], W0_MS, "warn", "mapping/orders", "receive failed attempt=0");
    assert_log_line(lines[1], W0_MS, "warn", "mapping/orders", "receive failed attempt=1");
    assert_log_line(lines[2], W0_MS, "warn", "mapping/refunds", "receive failed attempt=2");
    assert_log_line(lines[3], W0_MS, "warn", "weir", "receive failed attempt=3");
}

/* One call site, as the dispatcher's lines about each mapping of a function. */
static void flood_for(const char *mapping, int attempt)
{
    weir_log_limited_for(WEIR_LOG_WARN, "function/resize", mapping, "throttled mapping=%s n=%d",
                         mapping, attempt);
}

static void log_limited_for_limits_each_who_apart(void **state)
{
    struct capture c;
    capture_begin(&c);
    for (int i = 0; i < 100; i++)
        flood_for("orders", i);
    flood_for("refunds", 100); /* a flood about orders does not hide refunds */
    flood_for("refunds", 101);
    char *out = capture_end(&c);
    char *lines[4];
    assert_int_equal(split_lines(out, lines, 4), 2);
    assert_log_line(lines[0], W0_MS, "warn", "function/resize", "throttled mapping=orders n=0");
    assert_log_line(lines[1], W0_MS, "warn", "function/resize", "throttled mapping=refunds n=100");
}

static void log_limited_reports_exactly_the_suppressed_count_after_the_window(void **state)
{
    struct capture c;
    capture_begin(&c);
    for (int i = 0; i < 1000; i++)
        flood_place_c("function/resize", i); /* 1 printed, 999 counted */
    weir_clock_step(9999);
    flood_place_c("function/resize", 1000); /* still inside: 1000 counted */
    weir_clock_step(1);
    flood_place_c("function/resize", 1001); /* the window is over */
    flood_place_c("function/resize", 1002); /* a new window: 1 counted */
    weir_clock_step(10000);
    flood_place_c("function/resize", 1003);
    weir_clock_step(60000);
    flood_place_c("function/resize", 1004); /* nothing was counted: no suppressed= */
    char *out = capture_end(&c);
    char *lines[5];
    assert_int_equal(split_lines(out, lines, 5), 4);
    assert_log_line(lines[0], W0_MS, "error", "function/resize", "invoke failed status=500");
    assert_log_line(lines[1], W0_MS + 10000, "error", "function/resize",
                    "invoke failed status=1501 suppressed=1000");
    assert_log_line(lines[2], W0_MS + 20000, "error", "function/resize",
                    "invoke failed status=1503 suppressed=1");
    assert_log_line(lines[3], W0_MS + 80000, "error", "function/resize",
                    "invoke failed status=1504");
}

static void log_limited_limits_a_component_longer_than_the_limiter_keeps(void **state)
{
    char comp[200];
    memset(comp, 'x', sizeof(comp) - 1);
    memcpy(comp, "mapping/", 8);
    comp[sizeof(comp) - 1] = '\0';
    struct capture c;
    capture_begin(&c);
    for (int i = 0; i < 100; i++)
        flood_place_d(comp, i);
    weir_clock_step(10000);
    flood_place_d(comp, 100);
    char *out = capture_end(&c);
    assert_int_equal(count_lines(out), 2);
    assert_non_null(strstr(out, "settle failed n=0\n"));
    assert_non_null(strstr(out, "settle failed n=100 suppressed=99\n"));
}

static void log_unlimited_is_never_suppressed(void **state)
{
    struct capture c;
    capture_begin(&c);
    for (int i = 0; i < 1000; i++)
        weir_log(WEIR_LOG_WARN, "mapping/orders", "receive failed attempt=%d", i);
    char *out = capture_end(&c);
    static char *lines[1000];
    assert_int_equal(split_lines(out, lines, 1000), 1000);
    for (int i = 0; i < 1000; i++) {
        char want[64];
        snprintf(want, sizeof(want), "receive failed attempt=%d", i);
        assert_log_line(lines[i], W0_MS, "warn", "mapping/orders", want);
    }
}

/* ---- the u32 -> pointer map (core/u32map.c) ---- */

/* The map under test; teardown frees it, also after a failed assertion. */
static struct weir_u32map um;

static int map_setup(void **state)
{
    weir_u32map_init(&um);
    return 0;
}

static int map_teardown(void **state)
{
    weir_u32map_deinit(&um);
    return 0;
}

#define MAP_TEST(f) cmocka_unit_test_setup_teardown(f, map_setup, map_teardown)

/* A distinct non-NULL value for every key below UINT32_MAX on a 64-bit build. */
static void *val_of(uint32_t key)
{
    return (void *)((uintptr_t)key + 1);
}

/* xorshift32: a permutation of the non-zero u32s, so its first 2^32-1 outputs are distinct. */
static uint32_t xorshift32(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/* Iterates as the header says and checks that the live slots are exactly m->n, each holding its
 * key's value. */
static void assert_map_consistent(const struct weir_u32map *m)
{
    size_t live = 0;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->vals[i])
            continue;
        live++;
        if (m->vals[i] != val_of(m->keys[i]))
            fail_msg("slot %zu holds key %u with another key's value", i, m->keys[i]);
    }
    assert_int_equal(live, m->n);
    if (m->cap) {
        assert_int_equal(m->cap & (m->cap - 1), 0);
        assert_true(m->n * 4 <= m->cap * 3);
    }
}

static void u32map_puts_gets_replaces_and_deletes(void **state)
{
    int a, b, c;
    assert_null(weir_u32map_get(&um, 1)); /* no table yet */
    assert_null(weir_u32map_del(&um, 1));
    weir_u32map_put(&um, 1, &a);
    weir_u32map_put(&um, 2, &b);
    assert_ptr_equal(weir_u32map_get(&um, 1), &a);
    assert_ptr_equal(weir_u32map_get(&um, 2), &b);
    assert_null(weir_u32map_get(&um, 3));
    assert_int_equal(um.n, 2);
    weir_u32map_put(&um, 1, &c);
    assert_ptr_equal(weir_u32map_get(&um, 1), &c);
    assert_int_equal(um.n, 2);
    assert_ptr_equal(weir_u32map_del(&um, 1), &c);
    assert_null(weir_u32map_get(&um, 1));
    assert_null(weir_u32map_del(&um, 1));
    assert_null(weir_u32map_del(&um, 3));
    assert_ptr_equal(weir_u32map_get(&um, 2), &b);
    assert_int_equal(um.n, 1);
    weir_u32map_put(&um, 1, &a);
    assert_ptr_equal(weir_u32map_get(&um, 1), &a);
    assert_int_equal(um.n, 2);
}

static void u32map_keys_zero_and_uint32_max_are_ordinary_keys(void **state)
{
    int zero, max, one;
    weir_u32map_put(&um, 0, &zero);
    assert_null(weir_u32map_get(&um, UINT32_MAX));
    weir_u32map_put(&um, UINT32_MAX, &max);
    weir_u32map_put(&um, 1, &one);
    assert_ptr_equal(weir_u32map_get(&um, 0), &zero);
    assert_ptr_equal(weir_u32map_get(&um, UINT32_MAX), &max);
    assert_ptr_equal(weir_u32map_get(&um, 1), &one);
    assert_ptr_equal(weir_u32map_del(&um, 0), &zero);
    assert_null(weir_u32map_get(&um, 0));
    assert_ptr_equal(weir_u32map_get(&um, UINT32_MAX), &max);
    assert_ptr_equal(weir_u32map_del(&um, UINT32_MAX), &max);
    assert_null(weir_u32map_get(&um, UINT32_MAX));
    assert_ptr_equal(weir_u32map_get(&um, 1), &one);
    assert_int_equal(um.n, 1);
}

enum { BIG = 100000 };

static void u32map_grows_to_100000_sequential_and_random_keys(void **state)
{
    for (uint32_t k = 0; k < BIG; k++) {
        weir_u32map_put(&um, k, val_of(k));
        if (k % 9973 == 0) /* every key so far, at a few sizes on the way */
            for (uint32_t j = 0; j <= k; j++)
                assert_ptr_equal(weir_u32map_get(&um, j), val_of(j));
    }
    assert_int_equal(um.n, BIG);
    for (uint32_t k = 0; k < BIG; k++)
        assert_ptr_equal(weir_u32map_get(&um, k), val_of(k));
    for (uint32_t k = BIG; k < 2 * BIG; k++)
        assert_null(weir_u32map_get(&um, k));
    assert_map_consistent(&um);
    weir_u32map_deinit(&um);

    uint32_t seed = 2463534242u;
    for (int i = 0; i < BIG; i++) {
        uint32_t k = xorshift32(&seed);
        weir_u32map_put(&um, k, val_of(k));
    }
    assert_int_equal(um.n, BIG);
    seed = 2463534242u;
    for (int i = 0; i < BIG; i++) {
        uint32_t k = xorshift32(&seed);
        assert_ptr_equal(weir_u32map_get(&um, k), val_of(k));
    }
    for (int i = 0; i < BIG; i++) { /* the next outputs of the permutation were never put */
        uint32_t k = xorshift32(&seed);
        assert_null(weir_u32map_get(&um, k));
    }
    assert_map_consistent(&um);
}

/* Fills the map with keys[0..n), deletes every k-th, and checks that every other key is still
 * found (a backward shift that moved an entry before its home slot, or left a hole inside a run,
 * would lose some), that deleted ones are gone, and that they can come back. */
static void delete_every_kth(const uint32_t *keys, size_t n, size_t k)
{
    weir_u32map_deinit(&um);
    for (size_t i = 0; i < n; i++)
        weir_u32map_put(&um, keys[i], val_of(keys[i]));
    assert_int_equal(um.n, n);
    for (size_t i = 0; i < n; i += k)
        assert_ptr_equal(weir_u32map_del(&um, keys[i]), val_of(keys[i]));
    assert_int_equal(um.n, n - (n + k - 1) / k);
    for (size_t i = 0; i < n; i++) {
        void *got = weir_u32map_get(&um, keys[i]);
        if (i % k == 0 && got)
            fail_msg("k=%zu: deleted key %u (#%zu) is still there", k, keys[i], i);
        if (i % k != 0 && got != val_of(keys[i]))
            fail_msg("k=%zu: key %u (#%zu) lost after deletions", k, keys[i], i);
    }
    assert_map_consistent(&um);
    for (size_t i = 0; i < n; i += k)
        weir_u32map_put(&um, keys[i], val_of(keys[i]));
    assert_int_equal(um.n, n);
    for (size_t i = 0; i < n; i++)
        assert_ptr_equal(weir_u32map_get(&um, keys[i]), val_of(keys[i]));
    /* Then everything, from the back, looking up a survivor now and then. */
    for (size_t i = n; i-- > 0;) {
        assert_ptr_equal(weir_u32map_del(&um, keys[i]), val_of(keys[i]));
        if (i % 1024 == 0 && i > 0)
            assert_ptr_equal(weir_u32map_get(&um, keys[i / 2]), val_of(keys[i / 2]));
    }
    assert_int_equal(um.n, 0);
    assert_map_consistent(&um);
}

static void u32map_deleting_every_kth_key_keeps_every_other_key_findable(void **state)
{
    static uint32_t keys[BIG];
    /* Random keys fill 100000 of 131072 slots: long runs. Of the first few seeds, take one whose
     * table has a run across its end, so deletions also shift entries back around the wrap. */
    bool wraps = false;
    for (uint32_t seed0 = 88172645u; !wraps && seed0 < 88172645u + 16; seed0++) {
        uint32_t seed = seed0;
        for (size_t i = 0; i < BIG; i++)
            keys[i] = xorshift32(&seed);
        weir_u32map_deinit(&um);
        for (size_t i = 0; i < BIG; i++)
            weir_u32map_put(&um, keys[i], val_of(keys[i]));
        wraps = um.vals[0] && um.vals[um.cap - 1];
    }
    assert_true(wraps);
    for (size_t k = 2; k <= 7; k++)
        delete_every_kth(keys, BIG, k);
    delete_every_kth(keys, BIG, 1000);

    /* Sequential keys, and keys that differ only above bit 16: a few long collision chains. */
    for (size_t i = 0; i < BIG; i++)
        keys[i] = (uint32_t)i;
    delete_every_kth(keys, BIG, 3);
    for (size_t i = 0; i < 3000; i++)
        keys[i] = ((uint32_t)(i / 3) << 16) | (uint32_t)(i % 3);
    for (size_t k = 2; k <= 5; k++)
        delete_every_kth(keys, 3000, k);
}

static void u32map_iteration_sees_exactly_the_live_entries(void **state)
{
    enum { N = 1000 };
    static unsigned char seen[N];
    for (uint32_t k = 0; k < N; k++)
        weir_u32map_put(&um, k * 7919u, val_of(k * 7919u));
    for (uint32_t k = 0; k < N; k += 3)
        weir_u32map_del(&um, k * 7919u);
    weir_u32map_put(&um, 7919u, val_of(7919u)); /* a replacement is one entry still */
    memset(seen, 0, sizeof(seen));
    size_t live = 0;
    for (size_t i = 0; i < um.cap; i++) {
        if (!um.vals[i])
            continue;
        live++;
        uint32_t k = um.keys[i] / 7919u;
        assert_int_equal(um.keys[i] % 7919u, 0);
        assert_true(k < N);
        assert_int_not_equal(k % 3, 0);
        assert_int_equal(seen[k], 0);
        seen[k] = 1;
        assert_ptr_equal(um.vals[i], val_of(um.keys[i]));
    }
    assert_int_equal(live, um.n);
    for (uint32_t k = 0; k < N; k++)
        assert_int_equal(seen[k], k % 3 != 0);
}

static void u32map_can_be_reused_after_deinit(void **state)
{
    weir_u32map_deinit(&um); /* never used */
    for (uint32_t k = 0; k < 1000; k++)
        weir_u32map_put(&um, k, val_of(k));
    weir_u32map_deinit(&um);
    assert_int_equal(um.n, 0);
    assert_int_equal(um.cap, 0);
    assert_null(um.vals);
    assert_null(weir_u32map_get(&um, 5));
    assert_null(weir_u32map_del(&um, 5));
    for (uint32_t k = 500; k < 600; k++)
        weir_u32map_put(&um, k, val_of(k));
    assert_int_equal(um.n, 100);
    assert_null(weir_u32map_get(&um, 5));
    for (uint32_t k = 500; k < 600; k++)
        assert_ptr_equal(weir_u32map_get(&um, k), val_of(k));
    assert_map_consistent(&um);
}

/* ---- the intrusive list (core/list.h) ---- */

struct item {
    int v;
    struct weir_list link;
};

static int item_v(struct weir_list *l)
{
    return weir_list_entry(l, struct item, link)->v;
}

/* Asserts head holds exactly the values want[0..n), in order, both ways round. */
static void assert_list(struct weir_list *head, const int *want, size_t n)
{
    assert_int_equal(weir_list_count(head), n);
    assert_int_equal(weir_list_empty(head), n == 0);
    size_t i = 0;
    for (struct weir_list *l = head->next; l != head; l = l->next, i++) {
        assert_int_equal(item_v(l), want[i]);
        assert_ptr_equal(l->next->prev, l);
    }
    for (struct weir_list *l = head->prev; l != head; l = l->prev)
        assert_int_equal(item_v(l), want[--i]);
}

static void list_push_back_push_front_and_pop_front_keep_order(void **state)
{
    struct weir_list head = WEIR_LIST_HEAD_INIT(head);
    struct item it[5] = {{.v = 0}, {.v = 1}, {.v = 2}, {.v = 3}, {.v = 4}};
    assert_null(weir_list_first(&head));
    assert_null(weir_list_pop_front(&head));
    weir_list_push_back(&head, &it[2].link);
    weir_list_push_back(&head, &it[3].link);
    weir_list_push_front(&head, &it[1].link);
    weir_list_push_back(&head, &it[4].link);
    weir_list_push_front(&head, &it[0].link);
    static const int want[] = {0, 1, 2, 3, 4};
    assert_list(&head, want, 5);
    assert_ptr_equal(weir_list_first(&head), &it[0].link);
    for (int v = 0; v < 5; v++) {
        struct weir_list *l = weir_list_pop_front(&head);
        assert_non_null(l);
        assert_int_equal(item_v(l), v);
        assert_false(weir_list_linked(l));
    }
    assert_null(weir_list_pop_front(&head));
    assert_true(weir_list_empty(&head));
}

static void list_remove_unlinks_a_middle_node(void **state)
{
    struct weir_list head;
    weir_list_init(&head);
    struct item it[3] = {{.v = 1}, {.v = 2}, {.v = 3}};
    for (int i = 0; i < 3; i++)
        weir_list_push_back(&head, &it[i].link);
    assert_true(weir_list_linked(&it[1].link));
    weir_list_remove(&it[1].link);
    assert_false(weir_list_linked(&it[1].link));
    assert_ptr_equal(it[1].link.next, &it[1].link);
    static const int want[] = {1, 3};
    assert_list(&head, want, 2);
    weir_list_remove(&it[1].link); /* twice is a no-op */
    assert_list(&head, want, 2);
    weir_list_push_front(&head, &it[1].link); /* and it can be linked again */
    static const int again[] = {2, 1, 3};
    assert_list(&head, again, 3);
}

static void list_remove_of_an_unlinked_or_zeroed_node_is_a_noop(void **state)
{
    struct weir_list head = WEIR_LIST_HEAD_INIT(head);
    struct item in = {.v = 7}, unlinked = {.v = 8}, zeroed;
    memset(&zeroed, 0, sizeof(zeroed));
    weir_list_init(&unlinked.link);
    weir_list_push_back(&head, &in.link);
    assert_false(weir_list_linked(&unlinked.link));
    assert_false(weir_list_linked(&zeroed.link));
    weir_list_remove(&unlinked.link);
    weir_list_remove(&zeroed.link);
    assert_ptr_equal(unlinked.link.next, &unlinked.link);
    assert_null(zeroed.link.next); /* untouched */
    assert_null(zeroed.link.prev);
    static const int want[] = {7};
    assert_list(&head, want, 1);
    weir_list_push_back(&head, &zeroed.link); /* a zeroed node links without an init */
    static const int both[] = {7, 0};
    assert_list(&head, both, 2);
}

static void list_count_counts_the_linked_nodes(void **state)
{
    struct weir_list head = WEIR_LIST_HEAD_INIT(head);
    struct item it[5] = {{0}};
    assert_int_equal(weir_list_count(&head), 0);
    for (size_t i = 0; i < 5; i++) {
        weir_list_push_back(&head, &it[i].link);
        assert_int_equal(weir_list_count(&head), i + 1);
    }
    weir_list_remove(&it[0].link);
    weir_list_remove(&it[4].link);
    assert_int_equal(weir_list_count(&head), 3);
}

static void list_foreach_safe_may_remove_and_free_the_current_node(void **state)
{
    struct weir_list head = WEIR_LIST_HEAD_INIT(head);
    for (int v = 0; v < 10; v++) {
        struct item *it = calloc(1, sizeof(*it));
        assert_non_null(it);
        it->v = v;
        weir_list_push_back(&head, &it->link);
    }
    struct weir_list *l, *tmp;
    int visited = 0;
    weir_list_foreach_safe(l, tmp, &head)
    {
        struct item *it = weir_list_entry(l, struct item, link);
        assert_int_equal(it->v, visited++);
        if (it->v % 2 == 0) {
            weir_list_remove(l);
            free(it); /* ASan would see a later read of it */
        }
    }
    assert_int_equal(visited, 10);
    static const int odd[] = {1, 3, 5, 7, 9};
    assert_list(&head, odd, 5);
    weir_list_foreach_safe(l, tmp, &head)
    {
        weir_list_remove(l);
        free(weir_list_entry(l, struct item, link));
    }
    assert_true(weir_list_empty(&head));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_string_escapes_what_json_requires),
        cmocka_unit_test(json_string_keeps_utf8_and_replaces_invalid_bytes),
        cmocka_unit_test(json_string_appends_after_existing_bytes),
        cmocka_unit_test(base64_matches_rfc4648_vectors),
        cmocka_unit_test(base64_of_every_twelve_bits_matches_the_bitwise_encoding),
        cmocka_unit_test(
            base64_of_random_bytes_at_every_length_and_start_matches_the_bitwise_encoding),
        cmocka_unit_test(number_writers_write_every_digit_and_the_sign),
        cmocka_unit_test(md5_matches_rfc1321_test_suite),
        cmocka_unit_test(md5_of_a_million_a_in_uneven_pieces),
        cmocka_unit_test(md5x8_lanes_match_one_stream_md5),
        cmocka_unit_test(md5_in_pieces_equals_md5_at_once),
        cmocka_unit_test(uuid4_has_the_version_4_format_and_does_not_repeat),
        cmocka_unit_test(redact_uri_hides_the_password_only),
        cmocka_unit_test(redact_uri_truncates_and_terminates),
        LOOP_TEST(timer_waits_for_the_fake_clock_and_fires_once_when_stepped_to_it),
        LOOP_TEST(timers_made_due_by_one_step_fire_in_due_order),
        LOOP_TEST(a_rearmed_timer_fires_only_at_its_new_time),
        LOOP_TEST(stopping_a_timer_made_due_by_a_step_before_the_loop_runs_prevents_it_firing),
        LOOP_TEST(a_timer_stopped_by_an_earlier_timers_callback_does_not_fire),
        LOOP_TEST(timer_set_for_now_or_the_past_fires_on_the_next_turn_without_a_step),
        LOOP_TEST(freeing_an_armed_or_due_timer_is_safe),
        LOOP_TEST(timer_armed_and_due_report_its_state),
        LOOP_TEST(a_callback_may_rearm_its_own_timer),
        LOOP_TEST(switching_to_the_real_clock_rearms_pending_fake_timers_on_real_time),
        LOOP_TEST(real_clock_timer_fires_no_earlier_than_its_delay),
        LOG_TEST(log_line_is_level_time_component_then_text_with_key_values),
        LOG_TEST(log_limited_prints_one_line_per_place_and_component_per_window),
        LOG_TEST(log_limited_does_not_suppress_another_place_or_component),
        LOG_TEST(log_limited_for_limits_each_who_apart),
        LOG_TEST(log_limited_reports_exactly_the_suppressed_count_after_the_window),
        LOG_TEST(log_limited_limits_a_component_longer_than_the_limiter_keeps),
        LOG_TEST(log_unlimited_is_never_suppressed),
        MAP_TEST(u32map_puts_gets_replaces_and_deletes),
        MAP_TEST(u32map_keys_zero_and_uint32_max_are_ordinary_keys),
        MAP_TEST(u32map_grows_to_100000_sequential_and_random_keys),
        MAP_TEST(u32map_deleting_every_kth_key_keeps_every_other_key_findable),
        MAP_TEST(u32map_iteration_sees_exactly_the_live_entries),
        MAP_TEST(u32map_can_be_reused_after_deinit),
        cmocka_unit_test(list_push_back_push_front_and_pop_front_keep_order),
        cmocka_unit_test(list_remove_unlinks_a_middle_node),
        cmocka_unit_test(list_remove_of_an_unlinked_or_zeroed_node_is_a_noop),
        cmocka_unit_test(list_count_counts_the_linked_nodes),
        cmocka_unit_test(list_foreach_safe_may_remove_and_free_the_current_node),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
