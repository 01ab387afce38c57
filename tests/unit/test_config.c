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

static struct weir_config *load(const char *text, struct weir_cfg_report *rep)
{
    weir_cfg_report_init(rep);
    return weir_config_load_buffer("t.yaml", text, strlen(text), weir_cli_cfg_env(), rep);
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

/* Loading text fails with exactly one error, at `where` ("t.yaml:8:17:"), containing `part`. */
static void expect_one(const char *text, const char *where, const char *part)
{
    struct weir_cfg_report rep;
    struct weir_config *cfg = load(text, &rep);
    if (cfg || rep.n != 1 || !has_prefix(rep.errors[0], where) || !strstr(rep.errors[0], part)) {
        print_message("expected one error at %s containing \"%s\"; got %zu:\n", where, part, rep.n);
        dump(&rep);
        weir_config_free(cfg);
        weir_cfg_report_deinit(&rep);
        fail();
    }
    weir_cfg_report_deinit(&rep);
}

/* Loading text succeeds with no error. */
static struct weir_config *expect_ok(const char *text)
{
    struct weir_cfg_report rep;
    struct weir_config *cfg = load(text, &rep);
    if (!cfg || rep.n) {
        dump(&rep);
        weir_cfg_report_deinit(&rep);
        fail_msg("expected the configuration to load");
    }
    weir_cfg_report_deinit(&rep);
    return cfg;
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
    expect_one(FN_HEAD "mappings:\n  - name: m\n    source: kafka://u:pw@h:9092/t\n"
                       "    function: a\n",
               "t.yaml:6:13: ",
               "mapping 'm': source has an unknown scheme 'kafka'; known schemes: redis://");
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
    assert_string_equal(rep.errors[2], "t.yaml:6:13: mapping 'm': source has an unknown scheme "
                                       "'sqs'; known schemes: redis://");
    assert_string_equal(rep.errors[3], "t.yaml:7:15: mapping 'm': no function named 'nope'");
    assert_string_equal(rep.errors[4],
                        "t.yaml:8:17: mapping 'm': batch_size 0 is out of range 1..10000");
    assert_string_equal(rep.errors[5], "t.yaml:12:14: mapping 'n': enabled must be true or "
                                       "false, got 'no': write true or false");
    weir_cfg_report_deinit(&rep);
}

static void load_file_reads_a_file_and_names_it_in_errors(void **state)
{
    char path[] = "/tmp/weir-test-config-XXXXXX";
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
    char want[128];
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
