/* core/: JSON string escaping and base64 (core/buf.c), MD5 against RFC 1321's test suite and
 * the UUID format (core/hash.c), and URI redaction for logs (core/log.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/buf.h"
#include "core/hash.h"
#include "core/log.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_string_escapes_what_json_requires),
        cmocka_unit_test(json_string_keeps_utf8_and_replaces_invalid_bytes),
        cmocka_unit_test(json_string_appends_after_existing_bytes),
        cmocka_unit_test(base64_matches_rfc4648_vectors),
        cmocka_unit_test(md5_matches_rfc1321_test_suite),
        cmocka_unit_test(md5_of_a_million_a_in_uneven_pieces),
        cmocka_unit_test(md5_in_pieces_equals_md5_at_once),
        cmocka_unit_test(uuid4_has_the_version_4_format_and_does_not_repeat),
        cmocka_unit_test(redact_uri_hides_the_password_only),
        cmocka_unit_test(redact_uri_truncates_and_terminates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
