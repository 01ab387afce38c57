/* Unit tests for config/: YAML and JSON load to the same structs, and every rule of the schema
 * is refused with the exact file:line:col and a message that names the rule. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/sources.h"
#include "config/config.h"
#include "pollers/postgres.h"
#include "pollers/redis.h"

/* The Redis source's own settings of a mapping. */
#define RS(mc) ((struct weir_redis_settings *)(mc)->settings)

/* The smallest valid configuration, in two parts so tests can add lines to either.
 * Lines 1-3: one function. */
#define FN_HEAD                                                                                    \
    "functions:\n"                                                                                 \
    "  - name: a\n"                                                                                \
    "    url: http://127.0.0.1:9000\n"
/* Four lines: one mapping. */
#define MAP_HEAD                                                                                   \
    "mappings:\n"                                                                                  \
    "  - name: m\n"                                                                                \
    "    source: redis://127.0.0.1:6379/0/q\n"                                                     \
    "    function: a\n"

static struct weir_config *load_in(const struct weir_cfg_env *env, const char *text,
                                   struct weir_cfg_report *rep)
{
    weir_cfg_report_init(rep);
    return weir_config_load_buffer("t.yaml", text, strlen(text), env, rep);
}

/* Against the real registry of sources. */
static struct weir_config *load(const char *text, struct weir_cfg_report *rep)
{
    return load_in(weir_cli_cfg_env(), text, rep);
}

static void dump(const struct weir_cfg_report *rep)
{
    for (size_t i = 0; i < rep->n; i++)
        print_message("  report[%zu]: %s\n", i, rep->errors[i]);
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Loading text in env fails with exactly one error, at `where` ("t.yaml:8:17:"), containing
 * `part`. */
static void expect_one_in(const struct weir_cfg_env *env, const char *text, const char *where,
                          const char *part)
{
    struct weir_cfg_report rep;
    struct weir_config *cfg = load_in(env, text, &rep);
    if (cfg || rep.n != 1 || !has_prefix(rep.errors[0], where) || !strstr(rep.errors[0], part)) {
        print_message("expected one error at %s containing \"%s\"; got %zu:\n", where, part, rep.n);
        dump(&rep);
        weir_config_free(cfg);
        weir_cfg_report_deinit(&rep);
        fail();
    }
    weir_cfg_report_deinit(&rep);
}

static void expect_one(const char *text, const char *where, const char *part)
{
    expect_one_in(weir_cli_cfg_env(), text, where, part);
}

/* Loading text in env fails with exactly the n errors of want, whole and in order. */
static void expect_errors_in(const struct weir_cfg_env *env, const char *text,
                             const char *const *want, size_t n)
{
    struct weir_cfg_report rep;
    struct weir_config *cfg = load_in(env, text, &rep);
    bool same = !cfg && rep.n == n;
    for (size_t i = 0; same && i < n; i++)
        same = !strcmp(rep.errors[i], want[i]);
    if (!same) {
        print_message("expected %zu errors:\n", n);
        for (size_t i = 0; i < n; i++)
            print_message("  want[%zu]:   %s\n", i, want[i]);
        print_message("got %zu:\n", rep.n);
        dump(&rep);
        weir_config_free(cfg);
        weir_cfg_report_deinit(&rep);
        fail();
    }
    weir_cfg_report_deinit(&rep);
}

/* Loading text in env succeeds with no error. */
static struct weir_config *expect_ok_in(const struct weir_cfg_env *env, const char *text)
{
    struct weir_cfg_report rep;
    struct weir_config *cfg = load_in(env, text, &rep);
    if (!cfg || rep.n) {
        dump(&rep);
        weir_cfg_report_deinit(&rep);
        fail_msg("expected the configuration to load");
    }
    weir_cfg_report_deinit(&rep);
    return cfg;
}

static struct weir_config *expect_ok(const char *text)
{
    return expect_ok_in(weir_cli_cfg_env(), text);
}

static const char full_yaml[] =
    "# weir configuration\n"
    "region: eu-west-1\n"
    "functions:\n"
    "  - name: resize\n"
    "    url:\n"
    "      - http://127.0.0.1:9001/2015-03-31/functions/function/invocations\n"
    "      - https://fn.example:9002/2015-03-31/functions/function/invocations\n"
    "    timeout: 30\n"
    "    reserved_concurrency: 4\n"
    "    single_flight: true\n"
    "  - name: audit_2\n"
    "    command: [/usr/bin/env, python3, \"\", '--flag']\n"
    "mappings:\n"
    "  - name: orders\n"
    "    source: redis://127.0.0.1:6379/0/orders\n"
    "    function: resize\n"
    "    batch_size: 100\n"
    "    maximum_batching_window_in_seconds: 5\n"
    "    function_response_types: [ReportBatchItemFailures]\n"
    "    scaling_config:\n"
    "      maximum_concurrency: 5\n"
    "    enabled: false\n"
    "    visibility_timeout: 180\n"
    "    redrive_policy:\n"
    "      max_receive_count: 5\n"
    "      dead_letter_target: orders-dlq\n"
    "  - name: audit-log\n"
    "    source: redis://127.0.0.1:6379/0/audit\n"
    "    function: audit_2\n";

static const char full_json[] =
    "{\n"
    "  \"region\": \"eu-west-1\",\n"
    "  \"functions\": [\n"
    "    {\"name\": \"resize\",\n"
    "     \"url\": [\"http://127.0.0.1:9001/2015-03-31/functions/function/invocations\",\n"
    "             \"https://fn.example:9002/2015-03-31/functions/function/invocations\"],\n"
    "     \"timeout\": 30, \"reserved_concurrency\": 4, \"single_flight\": true},\n"
    "    {\"name\":\"audit_2\",\"command\":[\"\\/usr\\/bin\\/env\",\"python3\",\"\",\"--flag\"]}\n"
    "  ],\n"
    "  \"mappings\": [\n"
    "    {\"name\": \"orders\", \"source\": \"redis://127.0.0.1:6379/0/orders\",\n"
    "     \"function\": \"resize\", \"batch_size\": 100,\n"
    "     \"maximum_batching_window_in_seconds\": 5,\n"
    "     \"function_response_types\": [\"ReportBatchItemFailures\"],\n"
    "     \"scaling_config\": {\"maximum_concurrency\": 5},\n"
    "     \"enabled\": false, \"visibility_timeout\": 180,\n"
    "     \"redrive_policy\": {\"max_receive_count\": 5, \"dead_letter_target\": "
    "\"orders-dlq\"}},\n"
    "    {\"name\": \"audit-log\", \"source\": \"redis://127.0.0.1:6379/0/audit\",\n"
    "     \"function\": \"audit_2\"}\n"
    "  ]\n"
    "}\n";

/* Every field of the full example, set and defaulted. */
static void check_full(const struct weir_config *cfg)
{
    assert_string_equal(cfg->file, "t.yaml");
    assert_string_equal(cfg->region, "eu-west-1");
    assert_int_equal(cfg->n_functions, 2);

    const struct weir_function_cfg *resize = &cfg->functions[0];
    assert_string_equal(resize->name, "resize");
    assert_int_equal(resize->n_urls, 2);
    assert_string_equal(resize->urls[0],
                        "http://127.0.0.1:9001/2015-03-31/functions/function/invocations");
    assert_string_equal(resize->urls[1],
                        "https://fn.example:9002/2015-03-31/functions/function/invocations");
    assert_null(resize->urls[2]);
    assert_null(resize->command);
    assert_int_equal(resize->n_command, 0);
    assert_int_equal(resize->timeout, 30);
    assert_int_equal(resize->reserved_concurrency, 4);
    assert_true(resize->single_flight);
    assert_ptr_equal(resize->pos.file, cfg->file);

    const struct weir_function_cfg *audit = &cfg->functions[1];
    assert_string_equal(audit->name, "audit_2");
    assert_null(audit->urls);
    assert_int_equal(audit->n_urls, 0);
    assert_int_equal(audit->n_command, 4);
    assert_string_equal(audit->command[0], "/usr/bin/env");
    assert_string_equal(audit->command[1], "python3");
    assert_string_equal(audit->command[2], "");
    assert_string_equal(audit->command[3], "--flag");
    assert_null(audit->command[4]);
    assert_int_equal(audit->timeout, 3);
    assert_int_equal(audit->reserved_concurrency, -1);
    assert_false(audit->single_flight);

    assert_int_equal(cfg->n_mappings, 2);
    const struct weir_mapping_cfg *orders = &cfg->mappings[0];
    assert_string_equal(orders->name, "orders");
    assert_string_equal(orders->source, "redis://127.0.0.1:6379/0/orders");
    assert_string_equal(orders->function, "resize");
    assert_ptr_equal(orders->fn, resize);
    assert_int_equal(orders->batch_size, 100);
    assert_int_equal(orders->maximum_batching_window_in_seconds, 5);
    assert_true(orders->report_batch_item_failures);
    assert_int_equal(orders->maximum_concurrency, 5);
    assert_false(orders->enabled);
    assert_int_equal(RS(orders)->visibility_timeout, 180);
    assert_int_equal(RS(orders)->max_receive_count, 5);
    assert_string_equal(RS(orders)->dead_letter_target, "orders-dlq");

    /* Everything defaulted: the redis source's batch defaults, AWS's for the rest. */
    const struct weir_mapping_cfg *log = &cfg->mappings[1];
    assert_string_equal(log->name, "audit-log");
    assert_string_equal(log->source, "redis://127.0.0.1:6379/0/audit");
    assert_string_equal(log->function, "audit_2");
    assert_ptr_equal(log->fn, audit);
    assert_int_equal(log->batch_size, 10);
    assert_int_equal(log->maximum_batching_window_in_seconds, 0);
    assert_false(log->report_batch_item_failures);
    assert_int_equal(log->maximum_concurrency, 0);
    assert_true(log->enabled);
    assert_int_equal(RS(log)->visibility_timeout, 30);
    assert_int_equal(RS(log)->max_receive_count, 0);
    assert_null(RS(log)->dead_letter_target);
}

static void yaml_loads_every_field_and_default(void **state)
{
    struct weir_config *cfg = expect_ok(full_yaml);
    check_full(cfg);
    weir_config_free(cfg);
}

static void json_loads_to_the_same_structs_as_yaml(void **state)
{
    struct weir_config *cfg = expect_ok(full_json);
    check_full(cfg);
    weir_config_free(cfg);
}

static void region_and_mappings_may_be_left_out(void **state)
{
    struct weir_config *cfg = expect_ok(FN_HEAD);
    assert_string_equal(cfg->region, "us-east-1");
    assert_int_equal(cfg->n_mappings, 0);
    assert_string_equal(cfg->functions[0].urls[0], "http://127.0.0.1:9000");
    assert_int_equal(cfg->functions[0].n_urls, 1);
    assert_null(cfg->functions[0].urls[1]);
    weir_config_free(cfg);

    cfg = expect_ok(FN_HEAD "mappings: []\n");
    assert_int_equal(cfg->n_mappings, 0);
    weir_config_free(cfg);
}

static void ranges_accept_their_bounds(void **state)
{
    struct weir_config *cfg =
        expect_ok("functions:\n"
                  "  - name: a\n"
                  "    command: [x]\n"
                  "    timeout: 1\n"
                  "    reserved_concurrency: 0\n" MAP_HEAD "    batch_size: 1\n"
                  "    maximum_batching_window_in_seconds: 0\n"
                  "    visibility_timeout: 1\n"
                  "    scaling_config: {maximum_concurrency: 2}\n"
                  "    redrive_policy:\n"
                  "      max_receive_count: 1\n"
                  "      dead_letter_target: d\n");
    assert_int_equal(cfg->functions[0].timeout, 1);
    assert_int_equal(cfg->functions[0].reserved_concurrency, 0);
    assert_int_equal(cfg->mappings[0].batch_size, 1);
    assert_int_equal(RS(&cfg->mappings[0])->visibility_timeout, 1);
    assert_int_equal(cfg->mappings[0].maximum_concurrency, 2);
    assert_int_equal(RS(&cfg->mappings[0])->max_receive_count, 1);
    weir_config_free(cfg);

    cfg = expect_ok("functions:\n"
                    "  - name: a\n"
                    "    command: [x]\n"
                    "    timeout: 900\n"
                    "    reserved_concurrency: 1000\n" MAP_HEAD "    batch_size: 10000\n"
                    "    maximum_batching_window_in_seconds: 300\n"
                    "    visibility_timeout: 43200\n"
                    "    scaling_config: {maximum_concurrency: 1000}\n"
                    "    redrive_policy: {max_receive_count: 1000, dead_letter_target: d}\n");
    assert_int_equal(cfg->functions[0].timeout, 900);
    assert_int_equal(cfg->functions[0].reserved_concurrency, 1000);
    assert_int_equal(cfg->mappings[0].batch_size, 10000);
    assert_int_equal(cfg->mappings[0].maximum_batching_window_in_seconds, 300);
    assert_int_equal(RS(&cfg->mappings[0])->visibility_timeout, 43200);
    assert_int_equal(cfg->mappings[0].maximum_concurrency, 1000);
    assert_int_equal(RS(&cfg->mappings[0])->max_receive_count, 1000);
    weir_config_free(cfg);
}

static void key_positions_point_at_the_key_or_the_object(void **state)
{
    struct weir_config *cfg = expect_ok(full_yaml);
    const struct weir_mapping_cfg *orders = &cfg->mappings[0];
    struct weir_cfg_pos pos = weir_mapping_cfg_pos(orders, "redrive_policy.max_receive_count");
    assert_ptr_equal(pos.file, cfg->file);
    assert_int_equal(pos.line, 25);
    assert_int_equal(pos.col, 7);
    pos = weir_mapping_cfg_pos(orders, "visibility_timeout");
    assert_int_equal(pos.line, 23);
    assert_int_equal(pos.col, 5);
    pos = weir_mapping_cfg_pos(orders, "scaling_config.maximum_concurrency");
    assert_int_equal(pos.line, 21);
    /* Defaulted key: the mapping itself (its first key, where libyaml starts the mapping). */
    pos = weir_mapping_cfg_pos(&cfg->mappings[1], "visibility_timeout");
    assert_int_equal(pos.line, 27);
    assert_int_equal(pos.col, 5);
    pos = weir_function_cfg_pos(&cfg->functions[0], "timeout");
    assert_int_equal(pos.line, 8);
    assert_int_equal(pos.col, 5);
    pos = weir_function_cfg_pos(&cfg->functions[1], "timeout");
    assert_int_equal(pos.line, 11);
    weir_config_free(cfg);
}

static void malformed_yaml_keeps_libyamls_message_and_position(void **state)
{
    expect_one("functions:\n  - name: a\n    url: http://x\n   timeout: 3\n", "t.yaml:4:4: ",
               "did not find expected '-' indicator (while parsing a block collection at 2:3)");
    expect_one("region: a\n bad: 2\n",
               "t.yaml:2:5: ", "mapping values are not allowed in this context");
    expect_one("{\"functions\": [1,\n", "t.yaml:2:1: ",
               "did not find expected node content (while parsing a flow node at 2:1)");
    expect_one("region: \"a\xff\"\n", "t.yaml:1:11: ", "invalid leading UTF-8 octet (byte 0xFF");
}

static void unknown_key_names_it_and_suggests_a_close_one(void **state)
{
    expect_one(FN_HEAD MAP_HEAD "    batchsize: 10\n", "t.yaml:8:5: ",
               "unknown key 'batchsize' in mapping 'm'; did you mean 'batch_size'?");
    /* AWS's own spelling is recognised too. */
    expect_one(FN_HEAD MAP_HEAD "    MaximumBatchingWindowInSeconds: 1\n", "t.yaml:8:5: ",
               "unknown key 'MaximumBatchingWindowInSeconds' in mapping 'm'; did you mean "
               "'maximum_batching_window_in_seconds'?");
    expect_one(FN_HEAD MAP_HEAD "    redrive_policy: {max_recieve_count: 3}\n", "t.yaml:8:22: ",
               "unknown key 'max_recieve_count' in redrive_policy of mapping 'm'; did you mean "
               "'max_receive_count'?");
    expect_one(FN_HEAD "    tmeout: 3\n",
               "t.yaml:4:5: ", "unknown key 'tmeout' in function 'a'; did you mean 'timeout'?");

    struct weir_cfg_report rep;
    assert_null(load("colour: blue\n" FN_HEAD, &rep));
    assert_int_equal(rep.n, 1);
    assert_string_equal(rep.errors[0], "t.yaml:1:1: unknown key 'colour' at the top level");
    weir_cfg_report_deinit(&rep);
}

static void wrong_types_say_what_was_expected_and_what_was_found(void **state)
{
    /* string for an integer */
    expect_one(FN_HEAD MAP_HEAD "    batch_size: ten\n",
               "t.yaml:8:17: ", "mapping 'm': batch_size must be an integer, got string \"ten\"");
    expect_one(FN_HEAD MAP_HEAD "    batch_size: \"10\"\n", "t.yaml:8:17: ",
               "batch_size must be an integer, got string \"10\" (write it without quotes)");
    expect_one(FN_HEAD MAP_HEAD "    batch_size: 1.5\n",
               "t.yaml:8:17: ", "batch_size must be an integer, got number 1.5");
    /* an integer for a string that must be a URI */
    expect_one(FN_HEAD "mappings:\n  - name: m\n    source: 6379\n    function: a\n",
               "t.yaml:6:13: ", "mapping 'm': source must be a URI scheme://...");
    /* a mapping for a sequence */
    expect_one("functions:\n  - name: a\n    command: {prog: x}\n", "t.yaml:3:14: ",
               "function 'a': command must be a sequence of strings (the program, then its "
               "arguments; no shell), got a mapping");
    expect_one("functions: {name: a}\n",
               "t.yaml:1:12: ", "functions must be a sequence of functions, got a mapping");
    /* a sequence, and null, for a string */
    expect_one("functions:\n  - name: [a]\n    url: http://x\n",
               "t.yaml:2:11: ", "function #1: name must be a string, got a sequence");
    expect_one(FN_HEAD "region: ~\n", "t.yaml:4:9: ", "region must be a string, got null");
    /* a string for a boolean */
    expect_one(FN_HEAD MAP_HEAD "    enabled: \"true\"\n",
               "t.yaml:8:14: ", "enabled must be true or false, got string \"true\"");
    /* a scalar where a mapping belongs */
    expect_one(FN_HEAD MAP_HEAD "    scaling_config: 5\n",
               "t.yaml:8:21: ", "scaling_config must be a mapping, got integer 5");
    expect_one(FN_HEAD "mappings:\n  - m\n", "t.yaml:5:5: ",
               "mapping #1: must be a mapping (name: ..., source: ..., function: ...), got "
               "string \"m\"");
}

struct range_case {
    const char *fn_lines;  /* added to the function */
    const char *map_lines; /* added to the mapping */
    const char *where;
    const char *message;
};

static void every_ranged_field_refuses_below_and_above(void **state)
{
    static const struct range_case cases[] = {
        {"    timeout: 0\n", "", "t.yaml:4:14: ", "function 'a': timeout 0 is out of range 1..900"},
        {"    timeout: 901\n", "", "t.yaml:4:14: ", "timeout 901 is out of range 1..900"},
        {"    reserved_concurrency: -1\n", "",
         "t.yaml:4:27: ", "function 'a': reserved_concurrency -1 is out of range 0..1000"},
        {"    reserved_concurrency: 1001\n", "",
         "t.yaml:4:27: ", "reserved_concurrency 1001 is out of range 0..1000"},
        {"", "    batch_size: 0\n",
         "t.yaml:8:17: ", "mapping 'm': batch_size 0 is out of range 1..10000"},
        {"", "    batch_size: 10001\n    maximum_batching_window_in_seconds: 1\n",
         "t.yaml:8:17: ", "batch_size 10001 is out of range 1..10000"},
        {"", "    batch_size: 99999999999999999999\n",
         "t.yaml:8:17: ", "batch_size 99999999999999999999 is out of range 1..10000"},
        {"", "    maximum_batching_window_in_seconds: -1\n",
         "t.yaml:8:41: ", "maximum_batching_window_in_seconds -1 is out of range 0..300"},
        {"", "    maximum_batching_window_in_seconds: 301\n",
         "t.yaml:8:41: ", "maximum_batching_window_in_seconds 301 is out of range 0..300"},
        {"", "    visibility_timeout: -1\n",
         "t.yaml:8:25: ", "visibility_timeout -1 is out of range 0..43200"},
        {"", "    visibility_timeout: 43201\n",
         "t.yaml:8:25: ", "visibility_timeout 43201 is out of range 0..43200"},
        {"", "    scaling_config:\n      maximum_concurrency: 1\n", "t.yaml:9:28: ",
         "mapping 'm': scaling_config.maximum_concurrency 1 is out of range 2..1000"},
        {"", "    scaling_config:\n      maximum_concurrency: 1001\n",
         "t.yaml:9:28: ", "scaling_config.maximum_concurrency 1001 is out of range 2..1000"},
        {"", "    redrive_policy:\n      max_receive_count: 0\n      dead_letter_target: d\n",
         "t.yaml:9:26: ", "redrive_policy.max_receive_count 0 is out of range 1..1000"},
        {"", "    redrive_policy:\n      max_receive_count: 1001\n      dead_letter_target: d\n",
         "t.yaml:9:26: ", "redrive_policy.max_receive_count 1001 is out of range 1..1000"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        char text[1024];
        snprintf(text, sizeof(text), "%s%s%s%s", FN_HEAD, cases[i].fn_lines, MAP_HEAD,
                 cases[i].map_lines);
        expect_one(text, cases[i].where, cases[i].message);
    }
}

static void missing_required_keys_are_reported_at_their_object(void **state)
{
    expect_one("region: x\n", "t.yaml:1:1: ", "missing required key 'functions'");
    expect_one("functions: []\n", "t.yaml:1:12: ", "functions must list at least one function");
    expect_one("functions:\n  - url: http://x\n",
               "t.yaml:2:5: ", "function #1: missing required key 'name'");
    expect_one(FN_HEAD "mappings:\n  - name: m\n    function: a\n",
               "t.yaml:5:5: ", "mapping 'm': missing required key 'source'");
    expect_one(FN_HEAD "mappings:\n  - name: m\n    source: redis://h/0/q\n",
               "t.yaml:5:5: ", "mapping 'm': missing required key 'function'");
    expect_one(FN_HEAD "mappings:\n  - source: redis://h/0/q\n    function: a\n",
               "t.yaml:5:5: ", "mapping #1: missing required key 'name'");
}

static void function_needs_exactly_one_of_url_and_command(void **state)
{
    expect_one("functions:\n  - name: a\n    url: http://x\n    command: [x]\n",
               "t.yaml:4:5: ", "function 'a': give either url or command, not both");
    expect_one("functions:\n  - name: a\n    timeout: 3\n",
               "t.yaml:2:5: ", "function 'a': needs url (HTTP endpoints) or command");
    expect_one("functions:\n  - name: a\n    url: 127.0.0.1:9000\n", "t.yaml:3:10: ",
               "function 'a': url must start with http:// or https://, got \"127.0.0.1:9000\"");
    expect_one(
        "functions:\n  - name: a\n    url: [http://x, 'ftp://u:secret@h/']\n",
        "t.yaml:3:21: ", "url[1] must start with http:// or https://, got \"ftp://u:***@h/\"");
    expect_one("functions:\n  - name: a\n    url: []\n",
               "t.yaml:3:10: ", "url must list at least one URL");
    expect_one("functions:\n  - name: a\n    command: ['', x]\n",
               "t.yaml:3:15: ", "command[0] must not be empty");
}

static void names_follow_the_charset_and_are_unique(void **state)
{
    expect_one("functions:\n  - name: my fn\n    url: http://x\n", "t.yaml:2:11: ",
               "function #1: name \"my fn\" must be 1..64 characters of A-Z a-z 0-9 _ -");
    expect_one("functions:\n  - name: "
               "a1234567890123456789012345678901234567890123456789012345678901234\n"
               "    url: http://x\n",
               "t.yaml:2:11: ", "must be 1..64 characters");
    expect_one(FN_HEAD "  - name: a\n    command: [x]\n",
               "t.yaml:4:5: ", "function 'a': duplicate function name (first defined at line 2)");
    expect_one(FN_HEAD MAP_HEAD "  - name: m\n    source: redis://h/0/r\n    function: a\n",
               "t.yaml:8:5: ", "mapping 'm': duplicate mapping name (first defined at line 5)");
}

static void mapping_must_name_a_known_function_and_source(void **state)
{
    expect_one(FN_HEAD "mappings:\n  - name: m\n    source: redis://h/0/q\n    function: b\n",
               "t.yaml:7:15: ", "mapping 'm': no function named 'b'");
    expect_one(FN_HEAD "mappings:\n  - name: m\n    source: amqp://u:pw@h:9092/t\n"
                       "    function: a\n",
               "t.yaml:6:13: ",
               "mapping 'm': source has an unknown scheme 'amqp'; known schemes: redis://");
    /* The password in a URI never reaches a message. */
    struct weir_cfg_report rep;
    assert_null(load(FN_HEAD "mappings:\n  - name: m\n    source: u:pw@h:9092/t\n"
                             "    function: a\n",
                     &rep));
    assert_int_equal(rep.n, 1);
    assert_null(strstr(rep.errors[0], "pw"));
    weir_cfg_report_deinit(&rep);
}

static void function_response_types_takes_only_report_batch_item_failures(void **state)
{
    expect_one(FN_HEAD MAP_HEAD "    function_response_types: [ReportItemFailures]\n",
               "t.yaml:8:31: ",
               "function_response_types: unknown value \"ReportItemFailures\"; the only one is "
               "ReportBatchItemFailures");
    expect_one(FN_HEAD MAP_HEAD
               "    function_response_types: [ReportBatchItemFailures, ReportBatchItemFailures]\n",
               "t.yaml:8:30: ", "function_response_types takes at most 1 entry, got 2");
    struct weir_config *cfg = expect_ok(FN_HEAD MAP_HEAD "    function_response_types: []\n");
    assert_false(cfg->mappings[0].report_batch_item_failures);
    weir_config_free(cfg);
}

static void batch_size_above_10_needs_a_batching_window(void **state)
{
    expect_one(FN_HEAD MAP_HEAD "    batch_size: 11\n", "t.yaml:8:5: ",
               "mapping 'm': batch_size 11 needs maximum_batching_window_in_seconds >= 1");
    expect_one(FN_HEAD MAP_HEAD "    batch_size: 11\n    maximum_batching_window_in_seconds: 0\n",
               "t.yaml:8:5: ", "needs maximum_batching_window_in_seconds >= 1");
    struct weir_config *cfg = expect_ok(
        FN_HEAD MAP_HEAD "    batch_size: 11\n    maximum_batching_window_in_seconds: 1\n");
    assert_int_equal(cfg->mappings[0].batch_size, 11);
    weir_config_free(cfg);
}

static void redis_refuses_a_function_timeout_above_the_visibility_timeout(void **state)
{
    expect_one("functions:\n  - name: a\n    url: http://x\n    timeout: 60\n" MAP_HEAD
               "    visibility_timeout: 59\n",
               "t.yaml:9:5: ",
               "visibility_timeout (59 s) is shorter than the timeout of function 'a' (60 s)");
    /* Defaulted visibility timeout (30 s): the error points at the mapping. */
    expect_one("functions:\n  - name: a\n    url: http://x\n    timeout: 31\n" MAP_HEAD,
               "t.yaml:6:5: ", "visibility_timeout (30 s) is shorter than the timeout");
    struct weir_config *cfg =
        expect_ok("functions:\n  - name: a\n    url: http://x\n    timeout: 60\n" MAP_HEAD
                  "    visibility_timeout: 60\n");
    weir_config_free(cfg);
}

static void redis_redrive_policy_needs_both_halves(void **state)
{
    expect_one(FN_HEAD MAP_HEAD "    redrive_policy:\n      max_receive_count: 5\n", "t.yaml:8:5: ",
               "redrive_policy.max_receive_count needs redrive_policy.dead_letter_target");
    expect_one(FN_HEAD MAP_HEAD "    redrive_policy: {dead_letter_target: dlq}\n", "t.yaml:8:5: ",
               "redrive_policy.dead_letter_target needs redrive_policy.max_receive_count");
    expect_one(FN_HEAD MAP_HEAD
               "    redrive_policy: {max_receive_count: 5, dead_letter_target: ''}\n",
               "t.yaml:8:64: ", "redrive_policy.dead_letter_target must not be empty");
}

static void yaml_1_1_booleans_are_refused(void **state)
{
    expect_one(FN_HEAD MAP_HEAD "    enabled: yes\n", "t.yaml:8:14: ",
               "mapping 'm': enabled must be true or false, got 'yes': write true or false");
    expect_one(
        "functions:\n  - name: a\n    url: http://x\n    single_flight: On\n",
        "t.yaml:4:20: ", "single_flight must be true or false, got 'On': write true or false");
    struct weir_config *cfg = expect_ok(FN_HEAD MAP_HEAD "    enabled: False\n");
    assert_false(cfg->mappings[0].enabled);
    weir_config_free(cfg);
}

static void duplicate_keys_are_refused(void **state)
{
    expect_one(FN_HEAD MAP_HEAD "    batch_size: 5\n    batch_size: 6\n",
               "t.yaml:9:5: ", "duplicate key 'batch_size' (first written at line 8)");
    expect_one("{\"functions\": [{\"name\": \"a\", \"url\": \"http://x\", \"name\": \"b\"}]}",
               "t.yaml:1:49: ", "duplicate key 'name' (first written at line 1)");
}

static void anchors_aliases_tags_and_extra_documents_are_refused(void **state)
{
    struct weir_cfg_report rep;
    assert_null(load("functions:\n  - &f {name: a, url: http://x}\n  - *f\n", &rep));
    assert_int_equal(rep.n, 2);
    assert_string_equal(rep.errors[0], "t.yaml:2:5: anchors (&f) are not supported: write the "
                                       "value out");
    assert_string_equal(rep.errors[1], "t.yaml:3:5: aliases (*f) are not supported: write the "
                                       "value out");
    weir_cfg_report_deinit(&rep);

    expect_one(FN_HEAD MAP_HEAD "    batch_size: !!str 5\n",
               "t.yaml:8:17: ", "tags (tag:yaml.org,2002:str) are not supported");
    expect_one(FN_HEAD "---\nregion: x\n",
               "t.yaml:4:1: ", "a second document starts here; a configuration is one document");
}

static void empty_or_non_mapping_text_is_refused(void **state)
{
    expect_one("", "t.yaml:1:1: ", "the configuration is empty");
    expect_one("# nothing yet\n\n", "t.yaml:1:1: ", "the configuration is empty");
    expect_one("---\n", "t.yaml:2:1: ", "the configuration is empty");
    expect_one("- functions\n", "t.yaml:1:1: ",
               "the top level must be a mapping (key: value pairs), not a sequence");
    expect_one("[]", "t.yaml:1:1: ", "the top level must be a mapping");
}

static void every_error_is_reported_in_file_order(void **state)
{
    /* Found in another order: the function's missing url/command after its unknown key, and the
     * first mapping's scheme after the second mapping's range. */
    struct weir_cfg_report rep;
    assert_null(load("functions:\n"
                     "  - name: a\n"
                     "    tmeout: 5\n"
                     "mappings:\n"
                     "  - name: m\n"
                     "    source: sqs://q\n"
                     "    function: nope\n"
                     "    batch_size: 0\n"
                     "  - name: n\n"
                     "    source: redis://h/0/q\n"
                     "    function: a\n"
                     "    enabled: no\n",
                     &rep));
    assert_int_equal(rep.n, 6);
    assert_string_equal(rep.errors[0],
                        "t.yaml:2:5: function 'a': needs url (HTTP endpoints) or command (a local "
                        "program to run)");
    assert_string_equal(rep.errors[1], "t.yaml:3:5: unknown key 'tmeout' in function 'a'; did "
                                       "you mean 'timeout'?");
    assert_string_equal(rep.errors[2],
                        "t.yaml:6:13: mapping 'm': source has an unknown scheme "
                        "'sqs'; known schemes: redis://, file://, kafka://, postgres://");
    assert_string_equal(rep.errors[3], "t.yaml:7:15: mapping 'm': no function named 'nope'");
    assert_string_equal(rep.errors[4],
                        "t.yaml:8:17: mapping 'm': batch_size 0 is out of range 1..10000");
    assert_string_equal(rep.errors[5], "t.yaml:12:14: mapping 'n': enabled must be true or "
                                       "false, got 'no': write true or false");
    weir_cfg_report_deinit(&rep);
}

static void load_file_reads_a_file_and_names_it_in_errors(void **state)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof(path), "%s/weir-test-config-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char text[] = FN_HEAD MAP_HEAD "    batch_size: 7\n";
    assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
    close(fd);

    struct weir_cfg_report rep;
    weir_cfg_report_init(&rep);
    struct weir_config *cfg = weir_config_load_file(path, weir_cli_cfg_env(), &rep);
    assert_non_null(cfg);
    assert_int_equal(rep.n, 0);
    assert_string_equal(cfg->file, path);
    assert_int_equal(cfg->mappings[0].batch_size, 7);
    assert_ptr_equal(cfg->mappings[0].pos.file, cfg->file);
    weir_config_free(cfg);

    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    const char bad[] = FN_HEAD MAP_HEAD "    batch_size: 0\n";
    assert_int_equal(write(fd, bad, sizeof(bad) - 1), (ssize_t)(sizeof(bad) - 1));
    close(fd);
    assert_null(weir_config_load_file(path, weir_cli_cfg_env(), &rep));
    assert_int_equal(rep.n, 1);
    char want[4200];
    snprintf(want, sizeof(want), "%s:8:17: mapping 'm': batch_size 0 is out of range", path);
    assert_true(has_prefix(rep.errors[0], want));
    weir_cfg_report_deinit(&rep);
    unlink(path);
}

static void load_file_reports_a_missing_file(void **state)
{
    struct weir_cfg_report rep;
    weir_cfg_report_init(&rep);
    assert_null(weir_config_load_file("/nonexistent/weir.yaml", weir_cli_cfg_env(), &rep));
    assert_int_equal(rep.n, 1);
    assert_string_equal(rep.errors[0],
                        "/nonexistent/weir.yaml: cannot read: No such file or directory");
    weir_cfg_report_deinit(&rep);

    weir_cfg_report_init(&rep);
    assert_null(weir_config_load_file("/tmp", weir_cli_cfg_env(), &rep));
    assert_int_equal(rep.n, 1);
    assert_string_equal(rep.errors[0], "/tmp: cannot read: Is a directory");
    weir_cfg_report_deinit(&rep);
    weir_config_free(NULL);
}

/* ---- sources of the tests' own: config/ knows of a source only what its row says ---- */

/* More keys than a schema once had room for (MAX_FIELDS 16, guarded by an assert that release
 * builds compiled out): 20 of its own at the top level, and an object of 4 more in the middle
 * of the table so that the keys after it must still land at their own offsets. */
struct wide_settings {
    int port, retries, backoff_ms, window, depth, partitions, weight, priority;
    bool compress, verify, ordered, replay, trace, pinned;
    char *user, *group, *topic, *label, *tag, *prefix;
    int limits_lo, limits_hi;
    bool limits_strict;
    char *limits_note;
};

#define WS         struct wide_settings
#define WIDE(mc)   ((struct wide_settings *)(mc)->settings)
#define N_ROWS(ks) (sizeof(ks) / sizeof(*(ks)))

static const struct weir_cfg_key wide_limits_keys[] = {
    WEIR_CFG_KEY_INT("lo", WS, limits_lo, 0, 1000, 10),
    WEIR_CFG_KEY_INT("hi", WS, limits_hi, 0, 1000, 900),
    WEIR_CFG_KEY_BOOL("strict", WS, limits_strict, 1),
    WEIR_CFG_KEY_STRING("note", WS, limits_note, 1),
};

static const struct weir_cfg_key wide_keys[] = {
    WEIR_CFG_KEY_INT("port", WS, port, 1, 65535, 5000),
    WEIR_CFG_KEY_INT("retries", WS, retries, 0, 10, 3),
    WEIR_CFG_KEY_INT("backoff_ms", WS, backoff_ms, 1, 60000, 100),
    WEIR_CFG_KEY_INT("window", WS, window, 0, 300, 0),
    WEIR_CFG_KEY_INT("depth", WS, depth, 1, 1000, 16),
    WEIR_CFG_KEY_INT("partitions", WS, partitions, 1, 64, 1),
    WEIR_CFG_KEY_INT("weight", WS, weight, -100, 100, -7),
    WEIR_CFG_KEY_INT("priority", WS, priority, 0, 9, 5),
    WEIR_CFG_KEY_OBJECT("limits", wide_limits_keys),
    WEIR_CFG_KEY_BOOL("compress", WS, compress, 1),
    WEIR_CFG_KEY_BOOL("verify", WS, verify, 1),
    WEIR_CFG_KEY_BOOL("ordered", WS, ordered, 0),
    WEIR_CFG_KEY_BOOL("replay", WS, replay, 0),
    WEIR_CFG_KEY_BOOL("trace", WS, trace, 0),
    WEIR_CFG_KEY_BOOL("pinned", WS, pinned, 1),
    WEIR_CFG_KEY_STRING("user", WS, user, 1),
    WEIR_CFG_KEY_STRING("group", WS, group, 1),
    WEIR_CFG_KEY_STRING("topic", WS, topic, 1),
    WEIR_CFG_KEY_STRING("label", WS, label, 0),
    WEIR_CFG_KEY_STRING("tag", WS, tag, 1),
    WEIR_CFG_KEY_STRING("prefix", WS, prefix, 0),
};

static const struct weir_cfg_source wide_source = {
    .name = "wide",
    .scheme = "wide",
    .example_uri = "wide://h/x",
    .keys = wide_keys,
    .n_keys = N_ROWS(wide_keys),
    .settings_size = sizeof(struct wide_settings),
    .default_batch_size = 7,
    .max_batch_size = 50,
    .default_window_ms = 2000,
};

struct alpha_settings {
    int prefetch;
    char *consumer_group;
};

static const struct weir_cfg_key alpha_keys[] = {
    WEIR_CFG_KEY_INT("prefetch", struct alpha_settings, prefetch, 1, 100, 10),
    WEIR_CFG_KEY_STRING("consumer_group", struct alpha_settings, consumer_group, 1),
};

static const struct weir_cfg_source alpha_source = {
    .name = "alpha",
    .scheme = "alpha",
    .example_uri = "alpha://h/q",
    .keys = alpha_keys,
    .n_keys = N_ROWS(alpha_keys),
    .settings_size = sizeof(struct alpha_settings),
    .default_batch_size = 10,
    .max_batch_size = 100,
};

struct beta_settings {
    int partition;
    bool from_beginning;
    char *ca_file;
};

static const struct weir_cfg_key beta_tls_keys[] = {
    WEIR_CFG_KEY_STRING("ca_file", struct beta_settings, ca_file, 1),
};

static const struct weir_cfg_key beta_keys[] = {
    WEIR_CFG_KEY_INT("partition", struct beta_settings, partition, 0, 1023, 0),
    WEIR_CFG_KEY_BOOL("from_beginning", struct beta_settings, from_beginning, 0),
    WEIR_CFG_KEY_OBJECT("tls", beta_tls_keys),
};

static const struct weir_cfg_source beta_source = {
    .name = "beta",
    .scheme = "beta",
    .example_uri = "beta://h/t",
    .keys = beta_keys,
    .n_keys = N_ROWS(beta_keys),
    .settings_size = sizeof(struct beta_settings),
    .default_batch_size = 100,
    .max_batch_size = 10000,
    .default_window_ms = 1000,
};

/* No check_pattern: filter patterns are kept as written. */
static const struct weir_cfg_source *const test_rows[] = {&wide_source, &alpha_source, &beta_source,
                                                          NULL};
static const struct weir_cfg_env test_env = {.sources = test_rows};

/* Lines 4-7: one mapping of each test source. */
#define WIDE_HEAD                                                                                  \
    "mappings:\n"                                                                                  \
    "  - name: w\n"                                                                                \
    "    source: wide://h/x\n"                                                                     \
    "    function: a\n"
#define ALPHA_HEAD                                                                                 \
    "mappings:\n"                                                                                  \
    "  - name: m\n"                                                                                \
    "    source: alpha://h/q\n"                                                                    \
    "    function: a\n"
#define BETA_HEAD                                                                                  \
    "mappings:\n"                                                                                  \
    "  - name: m\n"                                                                                \
    "    source: beta://h/t\n"                                                                     \
    "    function: a\n"

static void source_with_more_than_16_keys_reads_each_into_its_own_offset(void **state)
{
    /* Written in another order than the table's: the walk goes by the table. */
    struct weir_config *cfg = expect_ok_in(&test_env, FN_HEAD WIDE_HEAD "    pinned: false\n"
                                                                        "    limits:\n"
                                                                        "      note: keep\n"
                                                                        "      strict: false\n"
                                                                        "      hi: 800\n"
                                                                        "      lo: 0\n"
                                                                        "    port: 6000\n"
                                                                        "    retries: 0\n"
                                                                        "    backoff_ms: 60000\n"
                                                                        "    window: 300\n"
                                                                        "    depth: 2\n"
                                                                        "    partitions: 64\n"
                                                                        "    weight: -100\n"
                                                                        "    priority: 9\n"
                                                                        "    compress: false\n"
                                                                        "    verify: false\n"
                                                                        "    ordered: true\n"
                                                                        "    replay: true\n"
                                                                        "    trace: true\n"
                                                                        "    user: alice\n"
                                                                        "    group: g\n"
                                                                        "    topic: events\n"
                                                                        "    label: \"\"\n"
                                                                        "    tag: v1\n"
                                                                        "    prefix: p-\n"
                                                                        "    filter_criteria:\n"
                                                                        "      filters: [{pattern: "
                                                                        "'not JSON at all'}]\n");
    const struct weir_mapping_cfg *mc = &cfg->mappings[0];
    const struct wide_settings *ws = WIDE(mc);
    assert_ptr_equal(mc->src, &wide_source);
    assert_int_equal(ws->port, 6000);
    assert_int_equal(ws->retries, 0);
    assert_int_equal(ws->backoff_ms, 60000);
    assert_int_equal(ws->window, 300);
    assert_int_equal(ws->depth, 2);
    assert_int_equal(ws->partitions, 64);
    assert_int_equal(ws->weight, -100);
    assert_int_equal(ws->priority, 9);
    assert_int_equal(ws->limits_lo, 0);
    assert_int_equal(ws->limits_hi, 800);
    assert_false(ws->limits_strict);
    assert_string_equal(ws->limits_note, "keep");
    assert_false(ws->compress);
    assert_false(ws->verify);
    assert_true(ws->ordered);
    assert_true(ws->replay);
    assert_true(ws->trace);
    assert_false(ws->pinned);
    assert_string_equal(ws->user, "alice");
    assert_string_equal(ws->group, "g");
    assert_string_equal(ws->topic, "events");
    assert_string_equal(ws->label, "");
    assert_string_equal(ws->tag, "v1");
    assert_string_equal(ws->prefix, "p-");
    /* The mapping's own keys take the source's defaults and weir's. */
    assert_int_equal(mc->batch_size, 7);
    assert_int_equal(mc->maximum_batching_window_in_seconds, 2);
    assert_int_equal(mc->maximum_buffered_mib, 64);
    /* Without check_pattern the pattern is kept as written, unchecked. */
    assert_int_equal(mc->n_filters, 1);
    assert_string_equal(mc->filters[0].pattern, "not JSON at all");

    /* Nested keys are placed by their dotted path; the object by its own name. */
    struct weir_cfg_pos pos = weir_mapping_cfg_pos(mc, "limits.hi");
    assert_ptr_equal(pos.file, cfg->file);
    assert_int_equal(pos.line, 12);
    assert_int_equal(pos.col, 7);
    pos = weir_mapping_cfg_pos(mc, "limits.note");
    assert_int_equal(pos.line, 10);
    assert_int_equal(pos.col, 7);
    pos = weir_mapping_cfg_pos(mc, "limits");
    assert_int_equal(pos.line, 9);
    assert_int_equal(pos.col, 5);
    pos = weir_mapping_cfg_pos(mc, "prefix");
    assert_int_equal(pos.line, 32);
    assert_int_equal(pos.col, 5);
    assert_true(weir_mapping_cfg_has(mc, "limits.lo"));
    assert_false(weir_mapping_cfg_has(mc, "lo"));
    /* Seven strings of the source's are now the configuration's: LeakSanitizer checks that
     * weir_config_free frees each. */
    weir_config_free(cfg);
}

static void source_keys_left_out_take_their_defaults_nested_ones_too(void **state)
{
    struct weir_config *cfg = expect_ok_in(&test_env, FN_HEAD WIDE_HEAD "    port: 6001\n"
                                                                        "    limits: {hi: 5}\n"
                                                                        "  - name: bare\n"
                                                                        "    source: wide://h/y\n"
                                                                        "    function: a\n");
    const struct weir_mapping_cfg *mc = &cfg->mappings[0];
    const struct wide_settings *ws = WIDE(mc);
    assert_int_equal(ws->port, 6001);
    assert_int_equal(ws->limits_hi, 5);
    assert_int_equal(ws->retries, 3);
    assert_int_equal(ws->backoff_ms, 100);
    assert_int_equal(ws->window, 0);
    assert_int_equal(ws->depth, 16);
    assert_int_equal(ws->partitions, 1);
    assert_int_equal(ws->weight, -7);
    assert_int_equal(ws->priority, 5);
    assert_int_equal(ws->limits_lo, 10);
    assert_true(ws->limits_strict);
    assert_null(ws->limits_note);
    assert_true(ws->compress);
    assert_true(ws->verify);
    assert_false(ws->ordered);
    assert_false(ws->replay);
    assert_false(ws->trace);
    assert_true(ws->pinned);
    assert_null(ws->user);
    assert_null(ws->group);
    assert_null(ws->topic);
    assert_null(ws->label);
    assert_null(ws->tag);
    assert_null(ws->prefix);
    assert_true(weir_mapping_cfg_has(mc, "limits.hi"));
    assert_false(weir_mapping_cfg_has(mc, "limits.lo"));
    /* A defaulted key is placed at its mapping. */
    struct weir_cfg_pos pos = weir_mapping_cfg_pos(mc, "limits.lo");
    assert_int_equal(pos.line, 5);
    assert_int_equal(pos.col, 5);

    const struct wide_settings *bare = WIDE(&cfg->mappings[1]);
    assert_int_equal(bare->port, 5000);
    assert_int_equal(bare->limits_hi, 900);
    assert_int_equal(bare->weight, -7);
    assert_true(bare->pinned);
    assert_null(bare->user);
    weir_config_free(cfg);
}

struct source_case {
    const char *lines; /* added to the mapping */
    const char *where;
    const char *message;
};

static void source_keys_refuse_bad_values_at_the_value(void **state)
{
    static const struct source_case cases[] = {
        {"    port: 0\n", "t.yaml:8:11: ", "mapping 'w': port 0 is out of range 1..65535"},
        {"    port: 65536\n", "t.yaml:8:11: ", "mapping 'w': port 65536 is out of range 1..65535"},
        {"    weight: -101\n",
         "t.yaml:8:13: ", "mapping 'w': weight -101 is out of range -100..100"},
        {"    priority: 10\n", "t.yaml:8:15: ", "mapping 'w': priority 10 is out of range 0..9"},
        {"    limits:\n      hi: 1001\n",
         "t.yaml:9:11: ", "mapping 'w': limits.hi 1001 is out of range 0..1000"},
        {"    limits: {lo: -1}\n",
         "t.yaml:8:18: ", "mapping 'w': limits.lo -1 is out of range 0..1000"},
        {"    depth: many\n",
         "t.yaml:8:12: ", "mapping 'w': depth must be an integer, got string \"many\""},
        {"    verify: yes\n", "t.yaml:8:13: ",
         "mapping 'w': verify must be true or false, got 'yes': write true or false"},
        {"    user: ''\n", "t.yaml:8:11: ", "mapping 'w': user must not be empty"},
        {"    limits: {note: ''}\n", "t.yaml:8:20: ", "mapping 'w': limits.note must not be empty"},
        {"    limits: 5\n",
         "t.yaml:8:13: ", "mapping 'w': limits must be a mapping, got integer 5"},
        {"    limits: {stirct: true}\n",
         "t.yaml:8:14: ", "unknown key 'stirct' in limits of mapping 'w'; did you mean 'strict'?"},
        /* batch_size's bound is the source's maximum. */
        {"    batch_size: 51\n",
         "t.yaml:8:17: ", "mapping 'w': batch_size 51 is out of range 1..50"},
        /* Strings already read when the mapping fails are freed with it (LeakSanitizer). */
        {"    user: bob\n    tag: x\n    limits: {note: n, lo: -1}\n",
         "t.yaml:10:27: ", "mapping 'w': limits.lo -1 is out of range 0..1000"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        char text[1024];
        snprintf(text, sizeof(text), "%s%s%s", FN_HEAD, WIDE_HEAD, cases[i].lines);
        expect_one_in(&test_env, text, cases[i].where, cases[i].message);
    }
}

static void key_of_another_source_is_refused_naming_that_source(void **state)
{
    static const char *const from_beta[] = {
        "t.yaml:8:5: unknown key 'from_beginning' in mapping 'm': it is a key of beta:// sources, "
        "and this mapping's source is alpha://",
        "t.yaml:9:5: unknown key 'tls' in mapping 'm': it is a key of beta:// sources, and this "
        "mapping's source is alpha://",
    };
    expect_errors_in(&test_env,
                     FN_HEAD ALPHA_HEAD "    from_beginning: true\n    tls: {ca_file: /ca.pem}\n",
                     from_beta, 2);
    static const char *const from_alpha[] = {
        "t.yaml:8:5: unknown key 'prefetch' in mapping 'm': it is a key of alpha:// sources, and "
        "this mapping's source is beta://",
    };
    expect_errors_in(&test_env, FN_HEAD BETA_HEAD "    prefetch: 5\n", from_alpha, 1);

    /* Each source's own keys load. */
    struct weir_config *cfg = expect_ok_in(
        &test_env, FN_HEAD ALPHA_HEAD "    prefetch: 20\n    consumer_group: g1\n"
                                      "  - name: n\n    source: beta://h/t\n    function: a\n"
                                      "    from_beginning: true\n    tls: {ca_file: /ca.pem}\n");
    const struct alpha_settings *as = cfg->mappings[0].settings;
    assert_int_equal(as->prefetch, 20);
    assert_string_equal(as->consumer_group, "g1");
    const struct beta_settings *bs = cfg->mappings[1].settings;
    assert_int_equal(bs->partition, 0);
    assert_true(bs->from_beginning);
    assert_string_equal(bs->ca_file, "/ca.pem");
    assert_int_equal(cfg->mappings[1].batch_size, 100);
    assert_int_equal(cfg->mappings[1].maximum_batching_window_in_seconds, 1);
    weir_config_free(cfg);
}

static void typo_of_a_source_key_suggests_the_sources_own_key(void **state)
{
    static const char *const typos[] = {
        "t.yaml:8:5: unknown key 'prefech' in mapping 'm'; did you mean 'prefetch'?",
        "t.yaml:9:5: unknown key 'consumer_grop' in mapping 'm'; did you mean 'consumer_group'?",
        "t.yaml:10:5: unknown key 'batch_sise' in mapping 'm'; did you mean 'batch_size'?",
    };
    expect_errors_in(&test_env,
                     FN_HEAD ALPHA_HEAD "    prefech: 5\n    consumer_grop: g\n    batch_sise: 5\n",
                     typos, 3);
    /* The scheme picks the source, and an unknown one lists the env's. */
    expect_one_in(&test_env,
                  FN_HEAD "mappings:\n  - name: m\n    source: gamma://h\n    function: a\n",
                  "t.yaml:6:13: ",
                  "mapping 'm': source has an unknown scheme 'gamma'; known schemes: wide://, "
                  "alpha://, beta://");
}

/* Lines 4-7: a mapping of a Redis list named like an SQS FIFO queue. */
#define FIFO_HEAD                                                                                  \
    "mappings:\n"                                                                                  \
    "  - name: m\n"                                                                                \
    "    source: redis://127.0.0.1:6379/0/orders.fifo\n"                                           \
    "    function: a\n"
#define ORDERS_HEAD                                                                                \
    "mappings:\n"                                                                                  \
    "  - name: m\n"                                                                                \
    "    source: redis://127.0.0.1:6379/0/orders\n"                                                \
    "    function: a\n"

static void redis_only_keys_load_for_a_redis_mapping(void **state)
{
    struct weir_config *cfg =
        expect_ok(FN_HEAD FIFO_HEAD "    visibility_timeout: 60\n"
                                    "    redrive_policy:\n"
                                    "      max_receive_count: 3\n"
                                    "      dead_letter_target: orders-dlq.fifo\n"
                                    "    fifo: true\n");
    const struct weir_mapping_cfg *mc = &cfg->mappings[0];
    assert_int_equal(RS(mc)->visibility_timeout, 60);
    assert_int_equal(RS(mc)->max_receive_count, 3);
    assert_string_equal(RS(mc)->dead_letter_target, "orders-dlq.fifo");
    assert_true(RS(mc)->fifo);
    struct weir_cfg_pos pos = weir_mapping_cfg_pos(mc, "redrive_policy.dead_letter_target");
    assert_int_equal(pos.line, 11);
    assert_int_equal(pos.col, 7);
    weir_config_free(cfg);
}

static void redis_only_keys_are_refused_for_another_source_naming_redis(void **state)
{
    const struct weir_cfg_source *rows[] = {
        weir_cfg_source_find(weir_cli_cfg_env(), "redis://h/0/q"), &alpha_source, NULL};
    assert_non_null(rows[0]);
    const struct weir_cfg_env env = {.sources = rows};
    static const char *const want[] = {
        "t.yaml:8:5: unknown key 'visibility_timeout' in mapping 'm': it is a key of redis:// "
        "sources, and this mapping's source is alpha://",
        "t.yaml:9:5: unknown key 'redrive_policy' in mapping 'm': it is a key of redis:// "
        "sources, and this mapping's source is alpha://",
        "t.yaml:10:5: unknown key 'fifo' in mapping 'm': it is a key of redis:// sources, and "
        "this mapping's source is alpha://",
    };
    expect_errors_in(&env,
                     FN_HEAD ALPHA_HEAD "    visibility_timeout: 60\n"
                                        "    redrive_policy: {max_receive_count: 3, "
                                        "dead_letter_target: dlq}\n"
                                        "    fifo: true\n",
                     want, 3);
    /* The same keys in the same env, for redis: */
    struct weir_config *cfg =
        expect_ok_in(&env, FN_HEAD MAP_HEAD "    visibility_timeout: 60\n    fifo: false\n");
    assert_int_equal(RS(&cfg->mappings[0])->visibility_timeout, 60);
    weir_config_free(cfg);
}

static void redis_fifo_list_takes_batch_size_1_to_10_and_no_batching_window(void **state)
{
    struct weir_config *cfg =
        expect_ok(FN_HEAD FIFO_HEAD "    batch_size: 10\n"
                                    "    maximum_batching_window_in_seconds: 0\n");
    assert_int_equal(cfg->mappings[0].batch_size, 10);
    weir_config_free(cfg);

    static const char *const both[] = {
        "t.yaml:8:5: mapping 'm': batch_size 11 is out of range 1..10 for a FIFO queue (as AWS)",
        "t.yaml:9:5: mapping 'm': a FIFO queue takes no batching window (AWS does not support "
        "one for FIFO queues); remove maximum_batching_window_in_seconds",
    };
    expect_errors_in(weir_cli_cfg_env(),
                     FN_HEAD FIFO_HEAD "    batch_size: 11\n"
                                       "    maximum_batching_window_in_seconds: 1\n",
                     both, 2);
    static const char *const window[] = {
        "t.yaml:9:5: mapping 'm': a FIFO queue takes no batching window (AWS does not support "
        "one for FIFO queues); remove maximum_batching_window_in_seconds",
    };
    expect_errors_in(weir_cli_cfg_env(),
                     FN_HEAD FIFO_HEAD "    batch_size: 5\n"
                                       "    maximum_batching_window_in_seconds: 1\n",
                     window, 1);

    /* Only the FIFO rule: advice to add a window for a batch above 10 would only mislead. */
    static const char *const batch_only[] = {
        "t.yaml:8:5: mapping 'm': batch_size 11 is out of range 1..10 for a FIFO queue (as AWS)",
    };
    expect_errors_in(weir_cli_cfg_env(), FN_HEAD FIFO_HEAD "    batch_size: 11\n", batch_only, 1);

    /* A standard queue takes both. */
    cfg = expect_ok(FN_HEAD ORDERS_HEAD "    batch_size: 11\n"
                                        "    maximum_batching_window_in_seconds: 1\n");
    assert_int_equal(cfg->mappings[0].batch_size, 11);
    weir_config_free(cfg);
}

static void redis_fifo_key_must_agree_with_the_lists_name(void **state)
{
    static const char *const true_on_standard[] = {
        "t.yaml:9:5: mapping 'm': fifo: true, but the list 'orders' is not named like a FIFO "
        "queue: its name must end in .fifo, as SQS's do",
    };
    expect_errors_in(weir_cli_cfg_env(), FN_HEAD ORDERS_HEAD "    batch_size: 5\n    fifo: true\n",
                     true_on_standard, 1);
    static const char *const false_on_fifo[] = {
        "t.yaml:9:5: mapping 'm': fifo: false, but the list 'orders.fifo' is named like a FIFO "
        "queue (its name ends in .fifo)",
    };
    expect_errors_in(weir_cli_cfg_env(), FN_HEAD FIFO_HEAD "    batch_size: 5\n    fifo: false\n",
                     false_on_fifo, 1);

    struct weir_config *cfg = expect_ok(FN_HEAD FIFO_HEAD "    fifo: true\n");
    assert_true(RS(&cfg->mappings[0])->fifo);
    weir_config_free(cfg);
    cfg = expect_ok(FN_HEAD ORDERS_HEAD "    fifo: false\n");
    assert_false(RS(&cfg->mappings[0])->fifo);
    weir_config_free(cfg);
}

static void maximum_buffered_mib_defaults_to_64_and_takes_1_to_1048576(void **state)
{
    struct weir_config *cfg = expect_ok(FN_HEAD MAP_HEAD);
    assert_int_equal(cfg->mappings[0].maximum_buffered_mib, 64);
    weir_config_free(cfg);
    cfg = expect_ok(FN_HEAD MAP_HEAD "    maximum_buffered_mib: 1\n");
    assert_int_equal(cfg->mappings[0].maximum_buffered_mib, 1);
    weir_config_free(cfg);
    cfg = expect_ok(FN_HEAD MAP_HEAD "    maximum_buffered_mib: 1048576\n");
    assert_int_equal(cfg->mappings[0].maximum_buffered_mib, 1048576);
    weir_config_free(cfg);
    expect_one(FN_HEAD MAP_HEAD "    maximum_buffered_mib: 0\n",
               "t.yaml:8:27: ", "mapping 'm': maximum_buffered_mib 0 is out of range 1..1048576");
    expect_one(FN_HEAD MAP_HEAD "    maximum_buffered_mib: 1048577\n", "t.yaml:8:27: ",
               "mapping 'm': maximum_buffered_mib 1048577 is out of range 1..1048576");
}

static void async_settings_default_to_aws_and_read_every_key(void **state)
{
    struct weir_config *cfg = expect_ok(FN_HEAD);
    const struct weir_function_cfg *fc = &cfg->functions[0];
    assert_int_equal(fc->async.maximum_retry_attempts, 2);
    assert_int_equal(fc->async.maximum_event_age_in_seconds, 21600);
    assert_int_equal(fc->async.retry_delays_in_seconds[0], 60);
    assert_int_equal(fc->async.retry_delays_in_seconds[1], 120);
    assert_null(fc->async.on_success);
    assert_null(fc->async.on_failure);
    assert_null(fc->dead_letter_target);
    assert_string_equal(cfg->state_dir, "weir-state");
    assert_false(cfg->api.enabled);
    weir_config_free(cfg);

    cfg = expect_ok(FN_HEAD "    async:\n"
                            "      maximum_retry_attempts: 0\n"
                            "      maximum_event_age_in_seconds: 60\n"
                            "      retry_delays_in_seconds: [1, 2]\n"
                            "      destination_config:\n"
                            "        on_success: {destination: 'redis://127.0.0.1:6379/0/ok'}\n"
                            "        on_failure: {destination: 'file:///var/lib/weir/failed'}\n"
                            "    dead_letter_config: {target_arn: 'http://127.0.0.1:8080/dlq'}\n"
                            "state_dir: /var/lib/weir\n");
    fc = &cfg->functions[0];
    assert_int_equal(fc->async.maximum_retry_attempts, 0);
    assert_int_equal(fc->async.maximum_event_age_in_seconds, 60);
    assert_int_equal(fc->async.retry_delays_in_seconds[0], 1);
    assert_int_equal(fc->async.retry_delays_in_seconds[1], 2);
    assert_string_equal(fc->async.on_success, "redis://127.0.0.1:6379/0/ok");
    assert_string_equal(fc->async.on_failure, "file:///var/lib/weir/failed");
    assert_string_equal(fc->dead_letter_target, "http://127.0.0.1:8080/dlq");
    assert_string_equal(cfg->state_dir, "/var/lib/weir");
    weir_config_free(cfg);

    /* One delay is used for both retries. */
    cfg = expect_ok(FN_HEAD "    async: {retry_delays_in_seconds: [5]}\n");
    assert_int_equal(cfg->functions[0].async.retry_delays_in_seconds[0], 5);
    assert_int_equal(cfg->functions[0].async.retry_delays_in_seconds[1], 5);
    weir_config_free(cfg);
}

static void async_settings_refuse_what_aws_refuses(void **state)
{
    expect_one(FN_HEAD "    async: {maximum_retry_attempts: 3}\n", "t.yaml:4:37: ",
               "function 'a': async.maximum_retry_attempts 3 is out of range 0..2");
    expect_one(FN_HEAD "    async: {maximum_event_age_in_seconds: 59}\n",
               "t.yaml:4:43: ", "async.maximum_event_age_in_seconds 59 is out of range 60..21600");
    expect_one(FN_HEAD "    async: {maximum_event_age_in_seconds: 21601}\n",
               "t.yaml:4:43: ", "out of range 60..21600");
    expect_one(FN_HEAD "    async: {retry_delays_in_seconds: [1, 2, 3]}\n", "t.yaml:4:38: ",
               "async.retry_delays_in_seconds must be a sequence of 1 or 2 integers");
    expect_one(FN_HEAD "    async: {retry_delays_in_seconds: [1, 3601]}\n",
               "t.yaml:4:42: ", "async.retry_delays_in_seconds[1] 3601 is out of range 0..3600");
    expect_one(FN_HEAD "    async: {destination_config: {on_failure: {}}}\n", "t.yaml:4:46: ",
               "missing required key 'async.destination_config.on_failure.destination'");
    expect_one(FN_HEAD "    async: {destination_config: {on_falure: {destination: x}}}\n",
               "t.yaml:4:34: ", "did you mean 'on_failure'?");
    expect_one(FN_HEAD "    dead_letter_config: {}\n",
               "t.yaml:4:25: ", "missing required key 'dead_letter_config.target_arn'");
}

static void destinations_are_checked_by_their_scheme(void **state)
{
    expect_one(FN_HEAD "    dead_letter_config: {target_arn: 'sqs://queue'}\n", "t.yaml:4:38: ",
               "dead_letter_config.target_arn \"sqs://queue\": not a destination weir knows; "
               "write one of: redis://");
    expect_one(FN_HEAD "    dead_letter_config: {target_arn: 'redis://127.0.0.1:6379/0/'}\n",
               "t.yaml:4:38: ", "missing list key");
    expect_one(FN_HEAD "    dead_letter_config: {target_arn: 'file://relative/dir'}\n",
               "t.yaml:4:38: ", "file:///absolute/path");
    expect_one(FN_HEAD "    dead_letter_config: {target_arn: 'http:///nohost'}\n",
               "t.yaml:4:38: ", "needs a host");
    /* A password in a destination never reaches a message. */
    expect_one(FN_HEAD "    dead_letter_config: {target_arn: 'redis://:s3cret@h/0/'}\n",
               "t.yaml:4:38: ", "redis://:***@h/0/");
}

static void api_section_turns_the_invoke_api_on(void **state)
{
    struct weir_config *cfg = expect_ok(FN_HEAD "api:\n");
    assert_true(cfg->api.enabled);
    assert_string_equal(cfg->api.listen, "127.0.0.1:9070");
    assert_string_equal(cfg->api.host, "127.0.0.1");
    assert_int_equal(cfg->api.port, 9070);
    weir_config_free(cfg);
    cfg = expect_ok(FN_HEAD "api: {listen: '[::1]:0'}\n");
    assert_string_equal(cfg->api.host, "::1");
    assert_int_equal(cfg->api.port, 0);
    weir_config_free(cfg);
    cfg = expect_ok(FN_HEAD "api: {listen: ':8000'}\n");
    assert_string_equal(cfg->api.host, "127.0.0.1");
    assert_int_equal(cfg->api.port, 8000);
    weir_config_free(cfg);
    expect_one(FN_HEAD "api: {listen: 'localhost'}\n",
               "t.yaml:4:15: ", "api.listen \"localhost\" must be host:port");
    expect_one(FN_HEAD "api: {listen: '127.0.0.1:65536'}\n", "t.yaml:4:15: ", "port 0..65535");
    expect_one(FN_HEAD "api: {port: 1}\n", "t.yaml:4:7: ", "unknown key 'port' in api");
    expect_one(FN_HEAD "api: 9070\n", "t.yaml:4:6: ", "api must be a mapping");
}

static void source_defaults_apply_when_a_mapping_writes_none_of_its_keys(void **state)
{
    struct weir_config *cfg = expect_ok(FN_HEAD MAP_HEAD);
    const struct weir_mapping_cfg *mc = &cfg->mappings[0];
    assert_int_equal(RS(mc)->visibility_timeout, 30);
    assert_int_equal(RS(mc)->max_receive_count, 0);
    assert_null(RS(mc)->dead_letter_target);
    assert_false(RS(mc)->fifo);
    assert_false(weir_mapping_cfg_has(mc, "visibility_timeout"));
    weir_config_free(cfg);

    cfg = expect_ok_in(&test_env, FN_HEAD WIDE_HEAD);
    const struct wide_settings *ws = WIDE(&cfg->mappings[0]);
    assert_int_equal(ws->port, 5000);
    assert_int_equal(ws->backoff_ms, 100);
    assert_int_equal(ws->weight, -7);
    assert_int_equal(ws->limits_lo, 10);
    assert_int_equal(ws->limits_hi, 900);
    assert_true(ws->limits_strict);
    assert_true(ws->compress);
    assert_true(ws->pinned);
    assert_null(ws->user);
    assert_null(ws->limits_note);
    weir_config_free(cfg);
}

static void without_an_env_every_source_is_an_unknown_scheme(void **state)
{
    struct weir_cfg_report rep;
    assert_null(load_in(NULL,
                        FN_HEAD MAP_HEAD "    visibility_timeout: 60\n"
                                         "    filter_criteria: {filters: [{pattern: '{}'}]}\n",
                        &rep));
    if (rep.n != 2 ||
        !has_prefix(rep.errors[0],
                    "t.yaml:6:13: mapping 'm': source has an unknown scheme 'redis'") ||
        strcmp(rep.errors[1], "t.yaml:8:5: unknown key 'visibility_timeout' in mapping 'm'")) {
        dump(&rep);
        weir_cfg_report_deinit(&rep);
        fail();
    }
    weir_cfg_report_deinit(&rep);

    /* Functions alone need no source. */
    struct weir_config *cfg = expect_ok_in(NULL, FN_HEAD);
    assert_int_equal(cfg->n_mappings, 0);
    weir_config_free(cfg);
    assert_null(weir_cfg_source_find(NULL, "redis://h/0/q"));
}

/* Six lines: one Kafka mapping. */
#define KAFKA_HEAD                                                                                 \
    "mappings:\n"                                                                                  \
    "  - name: k\n"                                                                                \
    "    source: kafka://127.0.0.1:9092/orders\n"                                                  \
    "    function: a\n"

static void stream_keys_take_aws_defaults_and_ranges(void **state)
{
    struct weir_cfg_report rep;
    struct weir_config *cfg = load(FN_HEAD KAFKA_HEAD, &rep);
    dump(&rep);
    assert_non_null(cfg);
    const struct weir_mapping_cfg *mc = &cfg->mappings[0];
    assert_int_equal(mc->batch_size, 100);
    assert_int_equal(mc->batching_window_ms, 500); /* Kafka's default window, as AWS */
    assert_int_equal(mc->stream.maximum_retry_attempts, -1);
    assert_int_equal(mc->stream.maximum_record_age_in_seconds, -1);
    assert_int_equal(mc->stream.parallelization_factor, 1);
    assert_false(mc->stream.bisect_batch_on_function_error);
    assert_null(mc->stream.on_failure);
    weir_config_free(cfg);

    cfg = load(FN_HEAD KAFKA_HEAD "    maximum_retry_attempts: 3\n"
                                  "    maximum_record_age_in_seconds: 60\n"
                                  "    bisect_batch_on_function_error: true\n"
                                  "    parallelization_factor: 10\n"
                                  "    maximum_batching_window_in_seconds: 0\n"
                                  "    destination_config:\n"
                                  "      on_failure:\n"
                                  "        destination: file:///tmp/failures\n",
               &rep);
    dump(&rep);
    assert_non_null(cfg);
    mc = &cfg->mappings[0];
    assert_int_equal(mc->stream.maximum_retry_attempts, 3);
    assert_int_equal(mc->stream.maximum_record_age_in_seconds, 60);
    assert_true(mc->stream.bisect_batch_on_function_error);
    assert_int_equal(mc->stream.parallelization_factor, 10);
    assert_int_equal(mc->batching_window_ms, 0);
    assert_string_equal(mc->stream.on_failure, "file:///tmp/failures");
    weir_config_free(cfg);

    expect_one(FN_HEAD KAFKA_HEAD "    maximum_record_age_in_seconds: 59\n", "t.yaml:",
               "maximum_record_age_in_seconds 59: AWS takes -1 (records never age out) or "
               "60..604800");
    expect_one(FN_HEAD KAFKA_HEAD "    maximum_record_age_in_seconds: 604801\n",
               "t.yaml:8:36: ", "out of range -1..604800");
    expect_one(FN_HEAD KAFKA_HEAD "    maximum_retry_attempts: -2\n",
               "t.yaml:8:29: ", "maximum_retry_attempts -2 is out of range -1..10000");
    expect_one(FN_HEAD KAFKA_HEAD "    parallelization_factor: 11\n",
               "t.yaml:8:29: ", "parallelization_factor 11 is out of range 1..10");
}

static void kafka_filters_are_checked_against_the_chosen_event_format(void **state)
{
    struct weir_cfg_report rep;
    struct weir_config *cfg =
        load(FN_HEAD KAFKA_HEAD "    filter_criteria:\n"
                                "      filters: [{pattern: '{\"value\": {\"s\": [\"PAID\"]}}'}]\n",
             &rep);
    dump(&rep);
    assert_non_null(cfg);
    weir_config_free(cfg);
    /* Written before event_format: patterns are checked once the format is known. */
    cfg = load(FN_HEAD KAFKA_HEAD "    filter_criteria:\n"
                                  "      filters: [{pattern: '{\"data\": {\"s\": [\"PAID\"]}}'}]\n"
                                  "    event_format: Kinesis\n",
               &rep);
    dump(&rep);
    assert_non_null(cfg);
    weir_config_free(cfg);
    expect_one(FN_HEAD KAFKA_HEAD
               "    event_format: Kinesis\n"
               "    filter_criteria:\n"
               "      filters: [{pattern: '{\"value\": {\"s\": [\"PAID\"]}}'}]\n",
               "t.yaml:", "value");
}

static void stream_keys_are_refused_on_a_queue(void **state)
{
    expect_one(FN_HEAD MAP_HEAD "    maximum_retry_attempts: 2\n", "t.yaml:8:5: ",
               "key 'maximum_retry_attempts' in mapping 'm' applies only to stream sources");
    expect_one(FN_HEAD MAP_HEAD "    bisect_batch_on_function_error: true\n", "t.yaml:8:5: ",
               "applies only to stream sources (Kafka, Postgres; reference 1.4), and this "
               "mapping's source is redis://");
}

static void kafka_keys_are_checked(void **state)
{
    expect_one(FN_HEAD KAFKA_HEAD "    starting_position: FOO\n",
               "t.yaml:", "starting_position \"FOO\" is not TRIM_HORIZON, LATEST or AT_TIMESTAMP");
    expect_one(FN_HEAD KAFKA_HEAD "    starting_position: AT_TIMESTAMP\n",
               "t.yaml:", "AT_TIMESTAMP needs starting_position_timestamp");
    expect_one(FN_HEAD KAFKA_HEAD "    starting_position_timestamp: 1700000000\n",
               "t.yaml:", "only read with starting_position: AT_TIMESTAMP");
    expect_one(FN_HEAD KAFKA_HEAD "    event_format: Kinesiss\n",
               "t.yaml:", "event_format \"Kinesiss\" is not SelfManagedKafka or Kinesis");
    expect_one(FN_HEAD KAFKA_HEAD "    kafka_config: {no.such.property: x}\n",
               "t.yaml:", "kafka_config.no.such.property: No such configuration property");
    expect_one(FN_HEAD KAFKA_HEAD "    kafka_config: {enable.auto.commit: \"false\"}\n",
               "t.yaml:", "kafka_config.enable.auto.commit is weir's to set");
    expect_one(FN_HEAD "mappings:\n  - name: k\n    source: kafka://127.0.0.1/orders\n"
                       "    function: a\n",
               "t.yaml:6:5: ", "bootstrap server \"127.0.0.1\" is not host:port");
    expect_one(FN_HEAD "mappings:\n  - name: k\n    source: kafka://127.0.0.1:9092/a/b\n"
                       "    function: a\n",
               "t.yaml:6:5: ", "is not a Kafka topic name");
    struct weir_cfg_report rep;
    struct weir_config *cfg =
        load(FN_HEAD KAFKA_HEAD "    starting_position: AT_TIMESTAMP\n"
                                "    starting_position_timestamp: 1700000000\n"
                                "    event_format: Kinesis\n"
                                "    consumer_group_id: billing\n"
                                "    kafka_config: {session.timeout.ms: 6000, client.id: weir-a}\n",
             &rep);
    dump(&rep);
    assert_non_null(cfg);
    weir_config_free(cfg);
}

#define PG_HEAD                                                                                    \
    "mappings:\n"                                                                                  \
    "  - name: p\n"                                                                                \
    "    source: postgres://weir@127.0.0.1:5432/shop\n"                                            \
    "    function: a\n"

static void postgres_keys_are_checked(void **state)
{
    expect_one(FN_HEAD PG_HEAD "    tables: [orders]\n    stream_view_type: FULL\n", "t.yaml:",
               "stream_view_type \"FULL\" is not KEYS_ONLY, NEW_IMAGE, OLD_IMAGE or "
               "NEW_AND_OLD_IMAGES");
    expect_one(FN_HEAD PG_HEAD "    tables: [orders]\n    starting_position: AT_TIMESTAMP\n",
               "t.yaml:", "starting_position \"AT_TIMESTAMP\" is not TRIM_HORIZON or LATEST");
    expect_one(FN_HEAD PG_HEAD "    tables: [a.b.c]\n",
               "t.yaml:8:5: ", "table \"a.b.c\" is not table or schema.table");
    expect_one(FN_HEAD PG_HEAD "    tables: [orders]\n    slot_name: Orders\n",
               "t.yaml:9:5: ", "slot_name \"Orders\" is not a replication slot name");
    expect_one(FN_HEAD PG_HEAD, "t.yaml:6:5: ", "a Postgres mapping names its tables");
    expect_one(FN_HEAD "mappings:\n  - name: p\n"
                       "    source: postgres://weir@127.0.0.1/shop?replication=database\n"
                       "    function: a\n    tables: [orders]\n",
               "t.yaml:6:5: ", "the source URI sets replication=");
    expect_one(FN_HEAD "mappings:\n  - name: p\n"
                       "    source: postgres://weir@127.0.0.1/shop?no_such=1\n"
                       "    function: a\n    tables: [orders]\n",
               "t.yaml:6:5: ", "not a Postgres connection URI");
    /* A stream takes batches above 10 without a window; an existing publication needs no
     * tables. */
    struct weir_cfg_report rep;
    struct weir_config *cfg =
        load(FN_HEAD PG_HEAD "    batch_size: 1000\n    publication_name: shop_pub\n"
                             "    create_publication: false\n    slot_name: shop_1\n"
                             "    stream_view_type: KEYS_ONLY\n    arrays_as_sets: true\n"
                             "    parallelization_factor: 4\n",
             &rep);
    dump(&rep);
    assert_non_null(cfg);
    weir_config_free(cfg);
}

/* Two mappings may not read one replication slot, nor share one Kafka consumer group; the later
 * one is blamed, at the key that chose it. */
static void mappings_do_not_share_a_slot_or_a_group(void **state)
{
    /* Named alike, in two databases of one server: a slot's name is the server's. */
    expect_one(FN_HEAD PG_HEAD "    tables: [orders]\n    slot_name: shop\n"
                               "  - name: q\n"
                               "    source: postgres://other@127.0.0.1:5432/billing\n"
                               "    function: a\n    tables: [items]\n    slot_name: shop\n",
               "t.yaml:14:5: ",
               "mapping 'q': replication slot \"shop\" on 127.0.0.1:5432 is already used by "
               "mapping 'p' (line 5); each mapping needs its own: set another slot_name");
    /* Two mapping names whose default slots are one: the source's place is blamed. */
    expect_one(FN_HEAD "mappings:\n  - name: Orders-EU\n"
                       "    source: postgres://weir@127.0.0.1/shop\n"
                       "    function: a\n    tables: [orders]\n"
                       "  - name: orders_eu\n"
                       "    source: postgres://weir@127.0.0.1/shop\n"
                       "    function: a\n    tables: [orders]\n",
               "t.yaml:10:5: ", "replication slot \"weir_orders_eu\" on 127.0.0.1:5432");
    /* One consumer group in one cluster, set or by default. */
    expect_one(FN_HEAD KAFKA_HEAD "  - name: k2\n"
                                  "    source: kafka://127.0.0.1:9092/payments\n"
                                  "    function: a\n    consumer_group_id: weir-k\n",
               "t.yaml:11:5: ",
               "mapping 'k2': consumer group \"weir-k\" of 127.0.0.1:9092 is already used by "
               "mapping 'k' (line 5); each mapping needs its own: set another "
               "consumer_group_id");
    /* A mapping with an error of its own claims nothing: the default standing in for its bad
     * slot_name (weir_p) is not held against the next mapping. */
    expect_one(FN_HEAD PG_HEAD "    tables: [orders]\n    slot_name: [shop]\n"
                               "  - name: q\n"
                               "    source: postgres://weir@127.0.0.1:5432/shop\n"
                               "    function: a\n    tables: [items]\n    slot_name: weir_p\n",
               "t.yaml:9:16: ", "slot_name must be a string");
    /* Another server, another slot, another cluster: no claim is shared. */
    struct weir_cfg_report rep;
    struct weir_config *cfg =
        load(FN_HEAD PG_HEAD "    tables: [orders]\n    slot_name: shop\n"
                             "  - name: q\n"
                             "    source: postgres://weir@127.0.0.1:5433/shop\n"
                             "    function: a\n    tables: [items]\n    slot_name: shop\n"
                             "  - name: r\n"
                             "    source: postgres://weir@127.0.0.1:5432/shop\n"
                             "    function: a\n    tables: [items]\n"
                             "  - name: k\n"
                             "    source: kafka://127.0.0.1:9092/orders\n"
                             "    function: a\n"
                             "  - name: k2\n"
                             "    source: kafka://127.0.0.1:9093/orders\n"
                             "    function: a\n    consumer_group_id: weir-k\n",
             &rep);
    dump(&rep);
    assert_non_null(cfg);
    weir_config_free(cfg);
}

static void postgres_names_follow_postgres_rules(void **state)
{
    char name[64], schema[64], table[64];
    weir_pg_default_name("Orders-EU.1", name);
    assert_string_equal(name, "weir_orders_eu_1");
    weir_pg_default_name("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                         name);
    assert_int_equal(strlen(name), 63);
    assert_true(weir_pg_slot_name_ok(name));
    assert_false(weir_pg_slot_name_ok(""));
    assert_false(weir_pg_slot_name_ok("a-b"));
    assert_true(weir_pg_table_split("orders", schema, table));
    assert_string_equal(schema, "public");
    assert_string_equal(table, "orders");
    assert_true(weir_pg_table_split("billing.invoices", schema, table));
    assert_string_equal(schema, "billing");
    assert_string_equal(table, "invoices");
    assert_false(weir_pg_table_split(".orders", schema, table));
    assert_false(weir_pg_table_split("billing.", schema, table));
    assert_false(weir_pg_table_split("a.b.c", schema, table));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(yaml_loads_every_field_and_default),
        cmocka_unit_test(json_loads_to_the_same_structs_as_yaml),
        cmocka_unit_test(region_and_mappings_may_be_left_out),
        cmocka_unit_test(ranges_accept_their_bounds),
        cmocka_unit_test(key_positions_point_at_the_key_or_the_object),
        cmocka_unit_test(malformed_yaml_keeps_libyamls_message_and_position),
        cmocka_unit_test(unknown_key_names_it_and_suggests_a_close_one),
        cmocka_unit_test(wrong_types_say_what_was_expected_and_what_was_found),
        cmocka_unit_test(every_ranged_field_refuses_below_and_above),
        cmocka_unit_test(missing_required_keys_are_reported_at_their_object),
        cmocka_unit_test(function_needs_exactly_one_of_url_and_command),
        cmocka_unit_test(names_follow_the_charset_and_are_unique),
        cmocka_unit_test(mapping_must_name_a_known_function_and_source),
        cmocka_unit_test(function_response_types_takes_only_report_batch_item_failures),
        cmocka_unit_test(batch_size_above_10_needs_a_batching_window),
        cmocka_unit_test(redis_refuses_a_function_timeout_above_the_visibility_timeout),
        cmocka_unit_test(redis_redrive_policy_needs_both_halves),
        cmocka_unit_test(yaml_1_1_booleans_are_refused),
        cmocka_unit_test(duplicate_keys_are_refused),
        cmocka_unit_test(anchors_aliases_tags_and_extra_documents_are_refused),
        cmocka_unit_test(empty_or_non_mapping_text_is_refused),
        cmocka_unit_test(every_error_is_reported_in_file_order),
        cmocka_unit_test(load_file_reads_a_file_and_names_it_in_errors),
        cmocka_unit_test(load_file_reports_a_missing_file),
        cmocka_unit_test(source_with_more_than_16_keys_reads_each_into_its_own_offset),
        cmocka_unit_test(source_keys_left_out_take_their_defaults_nested_ones_too),
        cmocka_unit_test(source_keys_refuse_bad_values_at_the_value),
        cmocka_unit_test(key_of_another_source_is_refused_naming_that_source),
        cmocka_unit_test(typo_of_a_source_key_suggests_the_sources_own_key),
        cmocka_unit_test(redis_only_keys_load_for_a_redis_mapping),
        cmocka_unit_test(redis_only_keys_are_refused_for_another_source_naming_redis),
        cmocka_unit_test(redis_fifo_list_takes_batch_size_1_to_10_and_no_batching_window),
        cmocka_unit_test(redis_fifo_key_must_agree_with_the_lists_name),
        cmocka_unit_test(maximum_buffered_mib_defaults_to_64_and_takes_1_to_1048576),
        cmocka_unit_test(source_defaults_apply_when_a_mapping_writes_none_of_its_keys),
        cmocka_unit_test(without_an_env_every_source_is_an_unknown_scheme),
        cmocka_unit_test(async_settings_default_to_aws_and_read_every_key),
        cmocka_unit_test(async_settings_refuse_what_aws_refuses),
        cmocka_unit_test(destinations_are_checked_by_their_scheme),
        cmocka_unit_test(api_section_turns_the_invoke_api_on),
        cmocka_unit_test(stream_keys_take_aws_defaults_and_ranges),
        cmocka_unit_test(stream_keys_are_refused_on_a_queue),
        cmocka_unit_test(kafka_filters_are_checked_against_the_chosen_event_format),
        cmocka_unit_test(kafka_keys_are_checked),
        cmocka_unit_test(postgres_keys_are_checked),
        cmocka_unit_test(mappings_do_not_share_a_slot_or_a_group),
        cmocka_unit_test(postgres_names_follow_postgres_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
