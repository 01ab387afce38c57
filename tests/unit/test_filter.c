/* Filter unit tests: the conformance table (filter_cases.inc) over plain EventBridge documents and
 * SQS records, every refusal with its place in the pattern, the limits, the configuration's
 * positions inside a pattern, the mapping's handling of filtered-out records (fake poller, fake
 * target), and a seeded mutation run over the pattern reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/sources.h"
#include "config/config.h"
#include "pollers/redis.h"

/* The Redis source's own settings of a mapping. */
#define RS(mc) ((struct weir_redis_settings *)(mc)->settings)
#include "core/buf.h"
#include "core/mem.h"
#include "dispatcher/dispatcher.h"
#include "mapping/filter.h"
#include "mapping/mapping.h"
#include "pollers/poller.h"
#include "tests/unit/fake_poller.h"
#include "tests/unit/fake_target.h"

#include "tests/unit/filter_cases.inc"

#define LEN(a) (sizeof(a) / sizeof(*(a)))

/* The table writes ' for ": swap them back. */
static char *dq(const char *s)
{
    char *o = weir_strdup(s);
    for (char *p = o; *p; p++)
        if (*p == '\'')
            *p = '"';
    return o;
}

static struct weir_filter *compile1(const char *pattern, const struct weir_filter_shape *shape,
                                    struct weir_filter_error *err)
{
    size_t len = strlen(pattern), bad;
    return weir_filter_new(&pattern, &len, 1, shape, &bad, err);
}

/* ---- SQS records ---- */

static const struct weir_event_ctx sqs_ctx = {
    .source_arn = "arn:aws:sqs:us-east-1:000000000000:orders",
    .region = "us-east-1",
};

static struct weir_record *sqs_record(const char *body, size_t len)
{
    struct weir_record *r = weir_record_new();
    r->id = weir_strdup("m-1");
    r->handle = weir_strdup("h-1");
    r->data = weir_malloc(len + 1);
    memcpy(r->data, body, len);
    r->data[len] = '\0';
    r->data_len = len;
    r->receive_count = 1;
    r->sent_ms = 1741083062118;
    r->first_receive_ms = 1741083062131;
    r->attrs_json = weir_strdup("{\"tenant\":{\"stringValue\":\"acme\",\"stringListValues\":[],"
                                "\"binaryListValues\":[],\"dataType\":\"String\"}}");
    return r;
}

/* ---- the conformance table ---- */

static void event_table_matches_documented_semantics(void **state)
{
    size_t wrong = 0;
    for (size_t i = 0; i < LEN(event_cases); i++) {
        const struct filter_case *c = &event_cases[i];
        char *pattern = dq(c->pattern), *event = dq(c->event);
        struct weir_filter_error err;
        struct weir_filter *f = compile1(pattern, NULL, &err);
        if (!f) {
            printf("event case %zu (%s): pattern refused: at %s offset %zu: %s\n", i, c->why,
                   err.path, err.offset, err.msg);
            wrong++;
        } else if (weir_filter_match_text(f, event, strlen(event)) != c->expected) {
            printf("event case %zu (%s): expected %s\n  pattern %s\n  event   %s\n", i, c->why,
                   c->expected ? "a match" : "no match", pattern, event);
            wrong++;
        }
        weir_filter_free(f);
        free(pattern);
        free(event);
    }
    printf("event cases: %zu, wrong: %zu\n", LEN(event_cases), wrong);
    assert_int_equal(wrong, 0);
}

static void sqs_table_matches_documented_semantics(void **state)
{
    size_t wrong = 0;
    for (size_t i = 0; i < LEN(sqs_cases); i++) {
        const struct filter_case *c = &sqs_cases[i];
        char *pattern = dq(c->pattern), *body = dq(c->event);
        struct weir_filter_error err;
        struct weir_filter *f = compile1(pattern, weir_format_sqs.filter_shape, &err);
        struct weir_record *r = sqs_record(body, strlen(body));
        if (!f) {
            printf("sqs case %zu (%s): pattern refused: at %s offset %zu: %s\n", i, c->why,
                   err.path, err.offset, err.msg);
            wrong++;
        } else if (weir_filter_match(f, r, weir_format_sqs.encoder, &sqs_ctx) != c->expected) {
            printf("sqs case %zu (%s): expected %s\n  pattern %s\n  body    %s\n", i, c->why,
                   c->expected ? "a match" : "no match", pattern, body);
            wrong++;
        }
        weir_record_free(r);
        weir_filter_free(f);
        free(pattern);
        free(body);
    }
    printf("sqs cases: %zu, wrong: %zu\n", LEN(sqs_cases), wrong);
    assert_int_equal(wrong, 0);
}

static void table_holds_at_least_150_cases(void **state)
{
    assert_true(LEN(event_cases) + LEN(sqs_cases) >= 150);
}

/* ---- refusals ---- */

struct refusal {
    const char *pattern;
    const char *at;   /* the error's offset is where this text first occurs in the pattern */
    const char *path; /* the key path reported */
    const char *says; /* a fragment of the message */
};

static const struct refusal refusals[] = {
    {"", "", "", "ends where a value was expected"},
    {"{", "", "", "expected a key"},
    {"{'body':['x'],}", "}", "", "expected a key in double quotes"},
    {"{'body' ['x']}", "['x']", "", "expected ':'"},
    {"{'body':['a']} zz", "zz", "", "text after the end"},
    {"{'body':['x\\q']}", "\\q", "", "unknown escape \\q"},
    {"{'body':['\\ud800']}", "\\ud800", "", "high surrogate without a low one"},
    {"{'body':['\\udc00']}", "\\udc00", "", "low surrogate"},
    {"{'body':['a\tb']}", "\tb", "", "control character 0x09"},
    {"{'body':['\xff']}", "\xff", "", "not valid UTF-8"},
    {"{'body':{'n':[01]}}", "1]", "", "expected ',' or ']', got '1'"},
    {"{'body':{'n':[1.]}}", "1.", "", "malformed number"},
    {"{'body':[tru]}", "tru", "", "unexpected 't'"},
    {"['x']", "['x']", "", "a pattern is a JSON object, got an array"},
    {"{}", "{}", "", "an empty object matches nothing"},
    {"{'body':{}}", "{}", "body", "an empty object matches nothing"},
    {"{'Body':['x']}", "'Body'", "Body", "an SQS record has no key \"Body\""},
    {"{'body':'x'}", "'x'", "body", "must be a list of values"},
    {"{'body':[]}", "[]", "body", "an empty list matches nothing"},
    {"{'body':[['x']]}", "['x']]", "body", "cannot hold a list"},
    {"{'body':{'a':[{'contains':'x'}]}}", "'contains'", "body.a", "unknown operator \"contains\""},
    {"{'body':{'a':[{}]}}", "{}", "body.a", "an empty object in a value list"},
    {"{'body':{'a':[{'prefix':'x','suffix':'y'}]}}", "'suffix'", "body.a", "exactly one operator"},
    {"{'body':{'p':[{'numeric':['>','10']}]}}", "'10'", "body.p",
     "must be a number, got a string (write 10 without quotes)"},
    {"{'body':{'p':[{'numeric':['=>',10]}]}}", "'=>'", "body.p", "unknown operator \"=>\""},
    {"{'body':{'p':[{'numeric':['>',1,'>',2]}]}}", "'>',2", "body.p", "lower bound"},
    {"{'body':{'p':[{'numeric':['<',5,'>',2]}]}}", "'>',2", "body.p", "lower bound"},
    {"{'body':{'p':[{'numeric':['<',5,'<=',2]}]}}", "'<=',2", "body.p", "one upper bound"},
    {"{'body':{'p':[{'numeric':['=',5,'<',9]}]}}", "'='", "body.p", "\"=\" stands alone"},
    {"{'body':{'p':[{'numeric':['>']}]}}", "'>'", "body.p", "needs a number after it"},
    {"{'body':{'p':[{'numeric':['>',6e9]}]}}", "6e9", "body.p", "outside -5e9..5e9"},
    {"{'body':{'p':[{'numeric':['>',0.1234567]}]}}", "0.1234567", "body.p",
     "more than 6 decimal places"},
    {"{'body':{'p':[{'numeric':['>',5,'<',5]}]}}", "['>',5", "body.p", "below the upper bound"},
    {"{'body':{'p':[{'numeric':'>5'}]}}", "'>5'", "body.p", "numeric takes a list"},
    {"{'body':{'p':[{'numeric':[]}]}}", "[]", "body.p", "an empty list"},
    {"{'body':{'p':[{'numeric':[5]}]}}", "5", "body.p", "expected an operator"},
    {"{'body':{'p':[{'exists':'yes'}]}}", "'yes'", "body.p", "exists takes true or false"},
    {"{'body':{'p':[{'prefix':5}]}}", "5", "body.p", "prefix takes a string, got a number"},
    {"{'body':{'p':[{'prefix':['a']}]}}", "['a']", "body.p", "prefix takes a string, got an array"},
    {"{'body':{'p':[{'prefix':{'equals-ignore-case':5}}]}}", "5", "body.p",
     "prefix takes a string"},
    {"{'body':{'p':[{'prefix':{'foo':'x'}}]}}", "{'foo'", "body.p",
     "{\"equals-ignore-case\": \"...\"}"},
    {"{'body':{'p':[{'equals-ignore-case':['a']}]}}", "['a']", "body.p",
     "equals-ignore-case takes a string"},
    {"{'body':{'p':[{'anything-but':[]}]}}", "[]", "body.p", "anything-but: the list is empty"},
    {"{'body':{'p':[{'anything-but':['a',1]}]}}", "1]", "body.p", "only strings or only numbers"},
    {"{'body':{'p':[{'anything-but':null}]}}", "null", "body.p", "takes strings or numbers"},
    {"{'body':{'p':[{'anything-but':[true]}]}}", "true", "body.p", "takes strings or numbers"},
    {"{'body':{'p':[{'anything-but':{'prefix':''}}]}}", "''", "body.p",
     "an empty string is not allowed"},
    {"{'body':{'p':[{'anything-but':{'numeric':['>',1]}}]}}", "'numeric'", "body.p",
     "anything-but does not take \"numeric\""},
    {"{'body':{'p':[{'anything-but':{'prefix':'a','suffix':'b'}}]}}", "{'prefix'", "body.p",
     "got 2 keys"},
    {"{'body':{'p':[{'anything-but':[7e9]}]}}", "7e9", "body.p", "outside -5e9..5e9"},
    {"{'body':{'p':[{'wildcard':'a**b'}]}}", "'a**b'", "body.p", "consecutive '*'"},
    {"{'body':{'p':[{'wildcard':'a\\\\xb'}]}}", "'a\\\\xb'", "body.p", "a backslash escapes only"},
    {"{'body':{'p':[{'wildcard':5}]}}", "5", "body.p", "wildcard takes a string"},
    {"{'body':{'ip':[{'cidr':'10.0.0.0'}]}}", "'10.0.0.0'", "body.ip", "not an IP range"},
    {"{'body':{'ip':[{'cidr':'10.0.0.0/33'}]}}", "'10.0.0.0/33'", "body.ip", "not an IP range"},
    {"{'body':{'ip':[{'cidr':'fe80::/129'}]}}", "'fe80::/129'", "body.ip", "not an IP range"},
    {"{'body':{'ip':[{'cidr':'x/8'}]}}", "'x/8'", "body.ip", "not an IP range"},
    {"{'body':{'ip':[{'cidr':'10.0.0.0/-1'}]}}", "'10.0.0.0/-1'", "body.ip", "not an IP range"},
    {"{'body':{'ip':[{'cidr':24}]}}", "24", "body.ip", "cidr takes a string"},
    {"{'$or':[{'body':['x']}]}", "[{'body'", "$or", "at least two patterns, got a list of one"},
    {"{'$or':{'body':['x']}}", "{'body'", "$or", "at least two patterns, got an object"},
    {"{'$or':[{'body':['x']},['y']]}", "['y']", "$or[1]", "alternative is a pattern object"},
    {"{'$or':[{'body':['x']},{'Body':['y']}]}", "'Body'", "$or[1].Body", "no key \"Body\""},
    {"{'body':{'$or':[{'prefix':['x']},{'a':['y']}]}}", "'prefix'", "body.$or[0].prefix",
     "is an operator and cannot be a key inside $or"},
    {"{'messageId':{'x':['y']}}", "{'x'", "messageId", "\"messageId\" is a string"},
    {"{'attributes':['x']}", "['x']", "attributes", "\"attributes\" is an object"},
    {"{'messageAttributes':[{'exists':true}]}", "[{", "messageAttributes", "is an object"},
    {"{'body':{'a':{'b':{'c':'d'}}}}", "'d'", "body.a.b.c", "must be a list of values"},
};

static size_t offset_of(const char *pattern, const char *at)
{
    const char *p = strstr(pattern, at);
    assert_non_null(p);
    return (size_t)(p - pattern);
}

static void every_refusal_names_its_place_in_the_pattern(void **state)
{
    size_t wrong = 0;
    for (size_t i = 0; i < LEN(refusals); i++) {
        const struct refusal *rf = &refusals[i];
        char *pattern = dq(rf->pattern), *at = dq(rf->at);
        struct weir_filter_error err;
        memset(&err, 0, sizeof(err));
        size_t want = rf->at[0] ? offset_of(pattern, at) : strlen(pattern);
        bool ok = weir_filter_check(pattern, strlen(pattern), weir_format_sqs.filter_shape, &err);
        if (ok || err.offset != want || strcmp(err.path, rf->path) || !strstr(err.msg, rf->says)) {
            printf("refusal %zu: %s\n  pattern %s\n  want offset %zu path '%s' saying '%s'\n"
                   "  got  offset %zu path '%s': %s\n",
                   i, ok ? "ACCEPTED" : "differs", pattern, want, rf->path, rf->says, err.offset,
                   err.path, err.msg);
            wrong++;
        }
        free(pattern);
        free(at);
    }
    assert_int_equal(wrong, 0);
}

static void plain_pattern_on_the_data_key_is_refused_for_a_json_only_source(void **state)
{
    static const struct weir_filter_key keys[] = {{"data", WEIR_FILTER_KEY_DATA},
                                                  {"partitionKey", WEIR_FILTER_KEY_STRING}};
    static const struct weir_filter_shape kinesis = {"Kinesis", keys, 2, false};
    struct weir_filter_error err;
    const char *plain = "{\"data\": [\"x\"]}";
    assert_false(weir_filter_check(plain, strlen(plain), &kinesis, &err));
    assert_string_equal(err.path, "data");
    assert_non_null(strstr(err.msg, "matched as JSON"));
    assert_int_equal(err.offset, 9);
    const char *json = "{\"data\": {\"k\": [\"x\"]}, \"partitionKey\": [\"1\"]}";
    assert_true(weir_filter_check(json, strlen(json), &kinesis, &err));
}

/* ---- the event reader agrees with jansson on what is JSON ---- */

/* jansson as weir's other readers call it, with integers past 64 bits read as reals. */
static bool jansson_says_json(const char *s, size_t len)
{
    json_error_t e;
    json_t *j = json_loadb(s, len, JSON_ALLOW_NUL, &e);
    if (!j && json_error_code(&e) == json_error_numeric_overflow)
        j = json_loadb(s, len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &e);
    json_decref(j);
    return j != NULL;
}

static void the_event_reader_agrees_with_jansson_on_what_is_json(void **state)
{
    static const char *const texts[] = {
        "{}",
        "[]",
        " {\"a\":1} ",
        "{\"a\":1}x",
        "{\"a\":1,}",
        "[1,]",
        "[01]",
        "[1.]",
        "[.5]",
        "[-]",
        "[+1]",
        "[1e]",
        "[1e+]",
        "[1E5]",
        "[-0.0e-0]",
        "[1e400]",
        "[-1e400]",
        "[1e-400]",
        "[123456789012345678901234567890]",
        "[tru]",
        "[true]",
        "[truex]",
        "[nul]",
        "[null ]",
        "{\"a\" 1}",
        "{a:1}",
        "{'a':1}",
        "[\"\\q\"]",
        "[\"\\u12\"]",
        "[\"\\ud800\"]",
        "[\"\\udc00\"]",
        "[\"\\ud83d\\ude00\"]",
        "[\"\\ud83d\\u0041\"]",
        "[\"\\u0000\"]",
        "{\"\\u0000\":1}",
        "[\"\t\"]",
        "[\"\x01\"]",
        "[\"\xff\"]",
        "[\"\xc0\xaf\"]",
        "[\"\xed\xa0\x80\"]",
        "[\"\xf4\x90\x80\x80\"]",
        "[\"\xe2\x82\xac\"]",
        "[\"\xe2\x82\"]",
        "42",
        "\"str\"",
        "true",
        "",
        "   ",
        "[",
        "{\"a\":",
        "[1 2]",
        "{\"a\":1 \"b\":2}",
        "[\"a\"\"b\"]",
        "[[[[[]]]]]",
        "\xef\xbb\xbf{}",
        "[1]\n\r\t ",
        "[1]\f",
        "{\"a\":{\"b\":[{\"c\":null}]}}",
        "[\"\\/\\b\\f\\n\\r\\t\"]",
    };
    size_t wrong = 0;
    for (size_t i = 0; i < LEN(texts); i++) {
        struct weir_filter_doc *d = weir_filter_doc_new(texts[i], strlen(texts[i]));
        if ((d != NULL) != jansson_says_json(texts[i], strlen(texts[i]))) {
            printf("reader and jansson disagree on text %zu: %s (reader says %s)\n", i, texts[i],
                   d ? "JSON" : "not JSON");
            wrong++;
        }
        weir_filter_doc_free(d);
    }
    /* Nesting: jansson stops at 2048 levels. */
    for (size_t depth = 2047; depth <= 2049; depth++) {
        char *t = weir_malloc(2 * depth + 1);
        memset(t, '[', depth);
        memset(t + depth, ']', depth);
        t[2 * depth] = '\0';
        struct weir_filter_doc *d = weir_filter_doc_new(t, 2 * depth);
        if ((d != NULL) != jansson_says_json(t, 2 * depth)) {
            printf("reader and jansson disagree at depth %zu\n", depth);
            wrong++;
        }
        weir_filter_doc_free(d);
        free(t);
    }
    assert_int_equal(wrong, 0);
}

/* ---- limits ---- */

static void ten_patterns_are_taken_and_eleven_refused(void **state)
{
    const char *p[11];
    size_t lens[11], bad = 99;
    struct weir_filter_error err;
    for (size_t i = 0; i < 11; i++) {
        p[i] = "{\"body\": [\"x\"]}";
        lens[i] = strlen(p[i]);
    }
    struct weir_filter *f = weir_filter_new(p, lens, 10, weir_format_sqs.filter_shape, &bad, &err);
    assert_non_null(f);
    weir_filter_free(f);
    assert_null(weir_filter_new(p, lens, 11, weir_format_sqs.filter_shape, &bad, &err));
    assert_non_null(strstr(err.msg, "1 to 10"));
}

static void the_refused_pattern_is_named_by_its_index(void **state)
{
    const char *p[3] = {"{\"body\": [\"x\"]}", "{\"body\": [\"y\"]}",
                        "{\"body\": [{\"nope\": 1}]}"};
    size_t lens[3] = {strlen(p[0]), strlen(p[1]), strlen(p[2])}, bad = 99;
    struct weir_filter_error err;
    assert_null(weir_filter_new(p, lens, 3, weir_format_sqs.filter_shape, &bad, &err));
    assert_int_equal(bad, 2);
    assert_int_equal(err.offset, strstr(p[2], "\"nope\"") - p[2]);
}

/* A pattern of exactly n characters: {"body":["xxx...é..."]} with 2-byte characters inside. */
static char *pattern_of_chars(size_t n)
{
    struct weir_buf b;
    weir_buf_init(&b);
    weir_buf_append_str(&b, "{\"body\":[\"");
    size_t chars = 10 + 3;
    while (chars < n)
        weir_buf_append_str(&b, chars++ % 2 ? "\xc3\xa9" : "x");
    weir_buf_append_str(&b, "\"]}");
    return weir_buf_take(&b, NULL);
}

static void a_pattern_of_4096_characters_is_taken_and_4097_refused(void **state)
{
    struct weir_filter_error err;
    char *ok = pattern_of_chars(4096), *big = pattern_of_chars(4097);
    assert_true(strlen(ok) > 4096); /* bytes: the limit counts characters */
    assert_true(weir_filter_check(ok, strlen(ok), weir_format_sqs.filter_shape, &err));
    assert_false(weir_filter_check(big, strlen(big), weir_format_sqs.filter_shape, &err));
    assert_non_null(strstr(err.msg, "4096 characters"));
    free(ok);
    free(big);
}

static void nesting_deeper_than_64_levels_is_refused(void **state)
{
    struct weir_buf b;
    struct weir_filter_error err;
    weir_buf_init(&b);
    for (int i = 0; i < 70; i++)
        weir_buf_append_str(&b, "{\"a\":");
    weir_buf_append_str(&b, "[1]");
    for (int i = 0; i < 70; i++)
        weir_buf_append_char(&b, '}');
    assert_false(weir_filter_check(b.data, b.len, NULL, &err));
    assert_non_null(strstr(err.msg, "nested deeper than 64"));
    weir_buf_deinit(&b);
}

/* ---- matching behaviour beyond the table ---- */

static void a_record_passes_when_any_pattern_matches(void **state)
{
    const char *p[2] = {"{\"body\": {\"s\": [\"PAID\"]}}", "{\"body\": [{\"prefix\": \"ping\"}]}"};
    size_t lens[2] = {strlen(p[0]), strlen(p[1])}, bad;
    struct weir_filter_error err;
    struct weir_filter *f = weir_filter_new(p, lens, 2, weir_format_sqs.filter_shape, &bad, &err);
    assert_non_null(f);
    const char *bodies[] = {"{\"s\":\"PAID\"}", "ping 1", "{\"s\":\"NEW\"}", "pong"};
    const bool want[] = {true, true, false, false};
    for (size_t i = 0; i < 4; i++) {
        struct weir_record *r = sqs_record(bodies[i], strlen(bodies[i]));
        assert_int_equal(weir_filter_match(f, r, weir_format_sqs.encoder, &sqs_ctx), want[i]);
        weir_record_free(r);
    }
    weir_filter_free(f);
}

static void very_long_values_match_to_their_last_byte(void **state)
{
    size_t n = 1 << 20;
    struct weir_buf b;
    weir_buf_init(&b);
    weir_buf_append_str(&b, "{\"k\":\"");
    for (size_t i = 0; i < n; i++)
        weir_buf_append_char(&b, (char)('a' + i % 26));
    weir_buf_append_str(&b, "\"}");
    /* The value ends with the letter at index n-1. */
    char last[2] = {(char)('a' + (n - 1) % 26), '\0'}, other[2] = {last[0] == 'a' ? 'b' : 'a', 0};
    char pat[128];
    struct weir_filter_error err;
    snprintf(pat, sizeof(pat), "{\"body\": {\"k\": [{\"suffix\": \"%s\"}]}}", last);
    struct weir_filter *f = compile1(pat, weir_format_sqs.filter_shape, &err);
    struct weir_record *r = sqs_record(b.data, b.len);
    assert_true(weir_filter_match(f, r, weir_format_sqs.encoder, &sqs_ctx));
    weir_filter_free(f);
    snprintf(pat, sizeof(pat), "{\"body\": {\"k\": [{\"wildcard\": \"abc*%s\"}]}}", other);
    f = compile1(pat, weir_format_sqs.filter_shape, &err);
    assert_false(weir_filter_match(f, r, weir_format_sqs.encoder, &sqs_ctx));
    weir_filter_free(f);
    weir_record_free(r);
    /* The same megabyte as a plain body. */
    r = sqs_record(b.data + 6, n);
    snprintf(pat, sizeof(pat), "{\"body\": [{\"wildcard\": \"abc*%s\"}]}", last);
    f = compile1(pat, weir_format_sqs.filter_shape, &err);
    assert_true(weir_filter_match(f, r, weir_format_sqs.encoder, &sqs_ctx));
    weir_filter_free(f);
    weir_record_free(r);
    weir_buf_deinit(&b);
}

/* An encoder that counts how often the filter asks for the record element. */
static size_t element_builds;

static void counting_append(struct weir_buf *out, const struct weir_event_ctx *ctx,
                            const struct weir_record *r, int first)
{
    element_builds++;
    weir_format_sqs.encoder->append(out, ctx, r, first);
}

static const struct weir_encoder counting_encoder = {
    .name = "counting",
    .append = counting_append,
};

static void a_body_filter_never_builds_the_record_element(void **state)
{
    struct weir_filter_error err;
    struct weir_filter *f =
        compile1("{\"body\": {\"s\": [\"PAID\"]}}", weir_format_sqs.filter_shape, &err);
    assert_true(weir_filter_reads_data(f));
    assert_false(weir_filter_reads_metadata(f));
    element_builds = 0;
    struct weir_record *r = sqs_record("{\"s\":\"PAID\"}", 12);
    for (int i = 0; i < 100; i++)
        assert_true(weir_filter_match(f, r, &counting_encoder, &sqs_ctx));
    assert_int_equal(element_builds, 0);
    weir_record_free(r);
    weir_filter_free(f);
}

static void a_metadata_filter_builds_the_element_once_per_record(void **state)
{
    struct weir_filter_error err;
    struct weir_filter *f = compile1(
        "{\"$or\": [{\"messageId\": [\"nope\"]}, {\"attributes\": {\"SenderId\": [{\"prefix\": "
        "\"AIDA\"}]}, \"awsRegion\": [\"us-east-1\"]}]}",
        weir_format_sqs.filter_shape, &err);
    assert_non_null(f);
    assert_false(weir_filter_reads_data(f));
    assert_true(weir_filter_reads_metadata(f));
    element_builds = 0;
    struct weir_record *r = sqs_record("x", 1);
    assert_true(weir_filter_match(f, r, &counting_encoder, &sqs_ctx));
    assert_int_equal(element_builds, 1);
    weir_record_free(r);
    weir_filter_free(f);
}

/* ---- the pattern reader under a seeded mutation run ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void mutated_patterns_never_crash_and_refusals_point_inside(void **state)
{
    static const char alphabet[] = "{}[]\":,\\*-.0123456789eEtrufalsn $or \xc3\xa9\xff\t\n";
    const char *dict[] = {
        "\"prefix\"",   "\"numeric\"", "\"anything-but\"", "\"$or\"", "\"exists\"", "\"cidr\"",
        "\"wildcard\"", "\"body\"",    "[\">\", 1]",       "\\u00",   "true",       "{\"a\":[1]}"};
    size_t runs = 20000, accepted = 0;
    struct weir_buf b;
    weir_buf_init(&b);
    for (size_t it = 0; it < runs; it++) {
        const struct filter_case *seed = &event_cases[next_rand() % LEN(event_cases)];
        char *base = dq(seed->pattern);
        weir_buf_reset(&b);
        weir_buf_append_str(&b, base);
        int edits = 1 + (int)(next_rand() % 4);
        for (int e = 0; e < edits && b.len; e++) {
            size_t at = next_rand() % b.len;
            switch (next_rand() % 4) {
            case 0: /* replace a byte */
                b.data[at] = alphabet[next_rand() % (sizeof(alphabet) - 1)];
                break;
            case 1: /* delete a run */
            {
                size_t n = 1 + next_rand() % 8;
                if (at + n > b.len)
                    n = b.len - at;
                memmove(b.data + at, b.data + at + n, b.len - at - n);
                b.len -= n;
                b.data[b.len] = '\0';
                break;
            }
            case 2: /* insert a token */
            {
                const char *tok = dict[next_rand() % LEN(dict)];
                size_t n = strlen(tok);
                weir_buf_reserve(&b, n);
                memmove(b.data + at + n, b.data + at, b.len - at + 1);
                memcpy(b.data + at, tok, n);
                b.len += n;
                break;
            }
            default: /* truncate */
                b.len = at;
                b.data[at] = '\0';
                break;
            }
        }
        struct weir_filter_error err;
        size_t len = b.len;
        const char *text = b.data ? b.data : "";
        struct weir_filter *f = compile1(text, NULL, &err);
        if (f) {
            accepted++;
            char *event = dq(seed->event);
            weir_filter_match_text(f, event, strlen(event));
            struct weir_record *r = sqs_record(event, strlen(event));
            weir_filter_match(f, r, weir_format_sqs.encoder, &sqs_ctx);
            weir_record_free(r);
            free(event);
            weir_filter_free(f);
        } else {
            assert_true(err.offset <= len);
            assert_true(err.msg[0] != '\0');
        }
        free(base);
    }
    weir_buf_deinit(&b);
    printf("mutation run: %zu patterns, %zu still valid\n", runs, accepted);
    /* Both sides were exercised: some mutants stay valid, most are refused. */
    assert_true(accepted > 100 && accepted < runs);
}

/* ---- the configuration ---- */

static char *load_errors(const char *name, const char *text, struct weir_config **out)
{
    struct weir_cfg_report rep;
    weir_cfg_report_init(&rep);
    struct weir_config *cfg =
        weir_config_load_buffer(name, text, strlen(text), weir_cli_cfg_env(), &rep);
    struct weir_buf b;
    weir_buf_init(&b);
    for (size_t i = 0; i < rep.n; i++) {
        weir_buf_append_str(&b, rep.errors[i]);
        weir_buf_append_char(&b, '\n');
    }
    weir_cfg_report_deinit(&rep);
    if (out)
        *out = cfg;
    else
        weir_config_free(cfg);
    if (!b.len)
        weir_buf_append_str(&b, "");
    return weir_buf_take(&b, NULL);
}

#define YAML_HEAD                                                                                  \
    "functions:\n"                                                                                 \
    "  - name: fn\n"                                                                               \
    "    url: http://127.0.0.1:9\n"                                                                \
    "mappings:\n"                                                                                  \
    "  - name: orders\n"                                                                           \
    "    source: redis://127.0.0.1:6379/0/orders\n"                                                \
    "    function: fn\n"

static void config_reads_filter_criteria(void **state)
{
    struct weir_config *cfg;
    char *errs = load_errors("t.yaml",
                             YAML_HEAD "    filter_criteria:\n"
                                       "      filters:\n"
                                       "        - pattern: '{\"body\": {\"s\": [\"PAID\"]}}'\n"
                                       "        - pattern: |\n"
                                       "            {\"body\": [{\"prefix\": \"ping\"}]}\n",
                             &cfg);
    assert_string_equal(errs, "");
    assert_non_null(cfg);
    assert_int_equal(cfg->mappings[0].n_filters, 2);
    assert_string_equal(cfg->mappings[0].filters[0].pattern, "{\"body\": {\"s\": [\"PAID\"]}}");
    assert_int_equal(cfg->mappings[0].filters[0].pattern_len, 25);
    assert_string_equal(cfg->mappings[0].filters[1].pattern,
                        "{\"body\": [{\"prefix\": \"ping\"}]}\n");
    weir_config_free(cfg);
    free(errs);
}

static void config_without_filters_or_with_empty_criteria_has_none(void **state)
{
    struct weir_config *cfg;
    char *errs = load_errors("t.yaml", YAML_HEAD "    filter_criteria: {}\n", &cfg);
    assert_string_equal(errs, "");
    assert_int_equal(cfg->mappings[0].n_filters, 0);
    weir_config_free(cfg);
    free(errs);
}

struct cfg_refusal {
    const char *text; /* after YAML_HEAD */
    const char *want; /* the whole report */
};

static const struct cfg_refusal cfg_refusals[] = {
    /* single-quoted: the column of the offending key inside the pattern */
    {"    filter_criteria:\n"
     "      filters:\n"
     "        - pattern: '{\"body\": {\"price\": [{\"numeric\": [\">\", \"10\"]}]}}'\n",
     "t.yaml:10:59: mapping 'orders': filter_criteria.filters[0].pattern: at body.price: numeric: "
     "the bound after \">\" must be a number, got a string (write 10 without quotes)\n"},
    /* the second filter, an unknown operator */
    {"    filter_criteria:\n"
     "      filters:\n"
     "        - pattern: '{\"body\": [\"x\"]}'\n"
     "        - pattern: '{\"body\": {\"a\": [{\"contains\": \"x\"}]}}'\n",
     "t.yaml:11:38: mapping 'orders': filter_criteria.filters[1].pattern: at body.a: unknown "
     "operator \"contains\"; the operators are prefix, suffix, equals-ignore-case, anything-but, "
     "numeric, exists, cidr, wildcard\n"},
    /* '' inside a single-quoted YAML string stands for one quote */
    {"    filter_criteria:\n"
     "      filters:\n"
     "        - pattern: '{\"body\": [\"it''s\"], \"Body\": [\"x\"]}'\n",
     "t.yaml:10:41: mapping 'orders': filter_criteria.filters[0].pattern: at Body: an SQS record "
     "has no key \"Body\"; its keys are messageId, receiptHandle, body, attributes, "
     "messageAttributes, md5OfBody, md5OfMessageAttributes, eventSource, eventSourceARN, "
     "awsRegion\n"},
    /* a literal block: line and column inside the block */
    {"    filter_criteria:\n"
     "      filters:\n"
     "        - pattern: |\n"
     "            {\"body\": {\n"
     "               \"ip\": [{\"cidr\": \"10.0.0.0/33\"}]}}\n",
     "t.yaml:12:32: mapping 'orders': filter_criteria.filters[0].pattern: at body.ip: cidr "
     "\"10.0.0.0/33\" is not an IP range: write ADDRESS/BITS, e.g. \"10.0.0.0/24\" or "
     "\"2001:db8::/32\"\n"},
    /* a folded block cannot be followed back: the pattern's start and the offset */
    {"    filter_criteria:\n"
     "      filters:\n"
     "        - pattern: >\n"
     "            {\"body\": [\"x\"],\n"
     "             \"body\": [{\"exists\": 1}]}\n",
     "t.yaml:10:20: mapping 'orders': filter_criteria.filters[0].pattern: at body (offset 37 in "
     "the pattern): exists takes true or false, got a number\n"},
    /* not JSON at all */
    {"    filter_criteria:\n"
     "      filters:\n"
     "        - pattern: '{\"body\": [\"x\"}'\n",
     "t.yaml:10:34: mapping 'orders': filter_criteria.filters[0].pattern: not valid JSON: "
     "expected ',' or ']', got '}'\n"},
    /* unquoted JSON is a YAML mapping */
    {"    filter_criteria:\n"
     "      filters:\n"
     "        - pattern: {\"body\": [\"x\"]}\n",
     "t.yaml:10:20: mapping 'orders': filter_criteria.filters[0].pattern must be the pattern's "
     "JSON text as a string: quote it, e.g. pattern: '{\"body\": {\"status\": [\"PAID\"]}}'\n"},
    {"    filter_criteria:\n"
     "      filters:\n"
     "        - {}\n",
     "t.yaml:10:11: mapping 'orders': missing required key "
     "'filter_criteria.filters[0].pattern'\n"},
    {"    filter_criteria:\n"
     "      Filters: []\n",
     "t.yaml:9:7: unknown key 'Filters' in filter_criteria of mapping 'orders'; did you mean "
     "'filters'?\n"},
    {"    filter_criteria:\n"
     "      filters: '{\"body\": [\"x\"]}'\n",
     "t.yaml:9:16: mapping 'orders': filter_criteria.filters must be a sequence of {pattern: "
     "'...'}, got string \"{\\\"body\\\": [\\\"x\\\"]}\"\n"},
    {"    filter_criteria: [x]\n",
     "t.yaml:8:22: mapping 'orders': filter_criteria must be a mapping {filters: [...]}, got a "
     "sequence\n"},
    {"    filter_criteria:\n"
     "      filters: [{pattern: '{\"body\":[1]}'}, {pattern: '{\"body\":[2]}'},\n"
     "        {pattern: '{\"body\":[3]}'}, {pattern: '{\"body\":[4]}'},\n"
     "        {pattern: '{\"body\":[5]}'}, {pattern: '{\"body\":[6]}'},\n"
     "        {pattern: '{\"body\":[7]}'}, {pattern: '{\"body\":[8]}'},\n"
     "        {pattern: '{\"body\":[9]}'}, {pattern: '{\"body\":[10]}'},\n"
     "        {pattern: '{\"body\":[11]}'}]\n",
     "t.yaml:9:16: mapping 'orders': filter_criteria.filters has 11 filters; weir takes at most 10 "
     "(AWS's default quota is 5, raised quotas allow 10)\n"},
};

static void config_refusals_point_into_the_pattern(void **state)
{
    size_t wrong = 0;
    for (size_t i = 0; i < LEN(cfg_refusals); i++) {
        struct weir_buf text;
        weir_buf_init(&text);
        weir_buf_append_str(&text, YAML_HEAD);
        weir_buf_append_str(&text, cfg_refusals[i].text);
        char *errs = load_errors("t.yaml", text.data, NULL);
        if (strcmp(errs, cfg_refusals[i].want)) {
            printf("config refusal %zu:\n  want %s  got  %s", i, cfg_refusals[i].want, errs);
            wrong++;
        }
        free(errs);
        weir_buf_deinit(&text);
    }
    assert_int_equal(wrong, 0);
}

static void json_config_points_into_an_escaped_pattern(void **state)
{
    const char *text =
        "{\"functions\": [{\"name\": \"fn\", \"url\": \"http://127.0.0.1:9\"}],\n"
        " \"mappings\": [{\"name\": \"orders\", \"source\": \"redis://127.0.0.1:6379/0/q\",\n"
        "   \"function\": \"fn\",\n"
        "   \"filter_criteria\": {\"filters\": [\n"
        "     {\"pattern\": \"{\\\"body\\\": {\\\"n\\\": [{\\\"numeric\\\": [\\\">\\\", "
        "6e9]}]}}\"}]}}]}\n";
    char *errs = load_errors("t.json", text, NULL);
    assert_string_equal(
        errs, "t.json:5:61: mapping 'orders': filter_criteria.filters[0].pattern: at "
              "body.n: numeric: the bound after \">\" 6e9 is outside -5e9..5e9, the range "
              "of AWS's numeric matching\n");
    free(errs);
}

/* ---- the mapping: filtered-out records are settled, never invoked ---- */

static struct event_base *base;
static struct weir_function_cfg fcfg;
static struct weir_mapping_cfg mcfg;
static struct weir_filter_cfg filters[1];
static struct weir_function *fn;
static struct weir_mapping *m;
static char *urls1[] = {"http://a", NULL};

static int mapping_setup(void **state)
{
    fake_source_reset();
    base = event_base_new();
    n_invs = 0;
    memset(&fcfg, 0, sizeof(fcfg));
    fcfg.name = "fn";
    fcfg.urls = urls1;
    fcfg.n_urls = 1;
    fcfg.timeout = 3;
    fcfg.reserved_concurrency = -1;
    memset(&mcfg, 0, sizeof(mcfg));
    mcfg.name = "orders";
    mcfg.source = "fake://q";
    mcfg.function = "fn";
    mcfg.fn = &fcfg;
    mcfg.batch_size = 10;
    mcfg.enabled = true;
    filters[0].pattern = "{\"body\": {\"status\": [\"PAID\"]}}";
    filters[0].pattern_len = strlen(filters[0].pattern);
    mcfg.filters = filters;
    mcfg.n_filters = 1;
    fn = weir_function_new_with(&fcfg, &fake_ops, base, NULL);
    return 0;
}

static int mapping_teardown(void **state)
{
    weir_mapping_free(m);
    m = NULL;
    weir_function_free(fn);
    event_base_free(base);
    return 0;
}

static void start_mapping(void)
{
    struct weir_err err;
    m = weir_mapping_new_with(&mcfg, &fake_source, "us-east-1", fn, base, NULL, &err);
    assert_non_null(m);
    assert_int_equal(weir_mapping_start(m), WEIR_OK);
}

/* Delivers n records; every `every`-th (counting from 1) is PAID, the rest NEW. */
static void deliver(int n, int every)
{
    for (int i = 1; i <= n; i++) {
        char id[16], body[64];
        snprintf(id, sizeof(id), "id-%d", i);
        snprintf(body, sizeof(body), "{\"status\":\"%s\",\"n\":%d}",
                 every && i % every == 0 ? "PAID" : "NEW", i);
        struct weir_record *r = sqs_record(body, strlen(body));
        free(r->id);
        free(r->handle);
        r->id = weir_strdup(id);
        r->handle = weir_strdup(id);
        fake_deliver(r);
    }
}

static void filtered_records_are_settled_done_at_the_end_of_the_read(void **state)
{
    start_mapping();
    deliver(6, 3); /* id-3 and id-6 match */
    assert_int_equal(poller.settles, 0);
    fake_read_done();
    assert_int_equal(poller.settles, 1);
    assert_int_equal(poller.last_settle_n, 4);
    assert_int_equal(poller.settled[WEIR_VERDICT_DONE], 4);
    assert_string_equal(poller.seen[0], "id-1");
    assert_string_equal(poller.seen[3], "id-5");
    assert_int_equal(weir_mapping_stats(m)->records_filtered, 4);
    assert_int_equal(weir_mapping_stats(m)->records_in, 6);
    /* The two matching records went to the function as one batch. */
    assert_int_equal(n_invs, 1);
    assert_int_equal(weir_mapping_stats(m)->batches, 1);
    complete(0, WEIR_TRANSPORT_OK, 200, "{}");
    assert_int_equal(poller.settles, 2);
    assert_int_equal(poller.last_settle_n, 2);
    assert_string_equal(poller.seen[4], "id-3");
    assert_string_equal(poller.seen[5], "id-6");
    assert_int_equal(weir_mapping_stats(m)->records_done, 2);
}

static void a_read_with_every_record_filtered_invokes_nothing(void **state)
{
    start_mapping();
    size_t want = fake_room();
    deliver(7, 0);
    fake_read_done();
    assert_int_equal(n_invs, 0);
    assert_int_equal(weir_mapping_stats(m)->batches, 0);
    assert_int_equal(poller.settled[WEIR_VERDICT_DONE], 7);
    assert_int_equal(poller.settled[WEIR_VERDICT_RETRY], 0);
    assert_int_equal(weir_mapping_stats(m)->records_filtered, 7);
    /* Filtered records take no room in a batch: the mapping wants as many as before. */
    assert_int_equal(fake_room(), want);
}

static void a_large_read_settles_filtered_records_in_runs(void **state)
{
    mcfg.batch_size = 10000;
    mcfg.maximum_batching_window_in_seconds = 1;
    start_mapping();
    deliver(1200, 0);
    assert_int_equal(poller.settles, 2); /* 500 and 500 during the read */
    assert_int_equal(poller.last_settle_n, 500);
    fake_read_done();
    assert_int_equal(poller.settles, 3);
    assert_int_equal(poller.last_settle_n, 200);
    assert_int_equal(weir_mapping_stats(m)->records_filtered, 1200);
}

static void a_mapping_without_filters_filters_nothing(void **state)
{
    mcfg.n_filters = 0;
    start_mapping();
    deliver(3, 0);
    fake_read_done();
    assert_int_equal(n_invs, 1);
    assert_int_equal(weir_mapping_stats(m)->records_filtered, 0);
    assert_int_equal(poller.settles, 0);
}

static void a_source_that_cannot_filter_refuses_the_mapping(void **state)
{
    struct weir_err err;
    fake_format.filter_shape = NULL;
    m = weir_mapping_new_with(&mcfg, &fake_source, "us-east-1", fn, base, NULL, &err);
    fake_format.filter_shape = weir_format_sqs.filter_shape;
    assert_null(m);
    assert_non_null(strstr(err.msg, "cannot filter"));
}

static void a_bad_pattern_that_skipped_the_config_check_is_refused(void **state)
{
    struct weir_err err;
    filters[0].pattern = "{\"body\": [{\"nope\": 1}]}";
    filters[0].pattern_len = strlen(filters[0].pattern);
    m = weir_mapping_new_with(&mcfg, &fake_source, "us-east-1", fn, base, NULL, &err);
    assert_null(m);
    assert_non_null(strstr(err.msg, "filter_criteria.filters[0].pattern"));
    assert_non_null(strstr(err.msg, "unknown operator \"nope\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(event_table_matches_documented_semantics),
        cmocka_unit_test(sqs_table_matches_documented_semantics),
        cmocka_unit_test(table_holds_at_least_150_cases),
        cmocka_unit_test(every_refusal_names_its_place_in_the_pattern),
        cmocka_unit_test(plain_pattern_on_the_data_key_is_refused_for_a_json_only_source),
        cmocka_unit_test(the_event_reader_agrees_with_jansson_on_what_is_json),
        cmocka_unit_test(ten_patterns_are_taken_and_eleven_refused),
        cmocka_unit_test(the_refused_pattern_is_named_by_its_index),
        cmocka_unit_test(a_pattern_of_4096_characters_is_taken_and_4097_refused),
        cmocka_unit_test(nesting_deeper_than_64_levels_is_refused),
        cmocka_unit_test(a_record_passes_when_any_pattern_matches),
        cmocka_unit_test(very_long_values_match_to_their_last_byte),
        cmocka_unit_test(a_body_filter_never_builds_the_record_element),
        cmocka_unit_test(a_metadata_filter_builds_the_element_once_per_record),
        cmocka_unit_test(mutated_patterns_never_crash_and_refusals_point_inside),
        cmocka_unit_test(config_reads_filter_criteria),
        cmocka_unit_test(config_without_filters_or_with_empty_criteria_has_none),
        cmocka_unit_test(config_refusals_point_into_the_pattern),
        cmocka_unit_test(json_config_points_into_an_escaped_pattern),
        cmocka_unit_test_setup_teardown(filtered_records_are_settled_done_at_the_end_of_the_read,
                                        mapping_setup, mapping_teardown),
        cmocka_unit_test_setup_teardown(a_read_with_every_record_filtered_invokes_nothing,
                                        mapping_setup, mapping_teardown),
        cmocka_unit_test_setup_teardown(a_large_read_settles_filtered_records_in_runs,
                                        mapping_setup, mapping_teardown),
        cmocka_unit_test_setup_teardown(a_mapping_without_filters_filters_nothing, mapping_setup,
                                        mapping_teardown),
        cmocka_unit_test_setup_teardown(a_source_that_cannot_filter_refuses_the_mapping,
                                        mapping_setup, mapping_teardown),
        cmocka_unit_test_setup_teardown(a_bad_pattern_that_skipped_the_config_check_is_refused,
                                        mapping_setup, mapping_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
