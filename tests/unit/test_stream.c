/* Stream semantics (dispatcher/stream.c, mapping/positions.c and the mapping's positional mode),
 * against reference sections 1.4, 1.5, 1.6 and 2.2: a fake stream source that records every
 * checkpoint and pause, a fake function whose every answer the test gives, a real directory as
 * the on_failure destination, and weir's clock stepped. Records are built as pollers/kafka.c
 * builds them. The rules each have a test of their own; a property test drives many seeds of
 * random failures through parallelization_factor 10 and checks per-key order, the checkpoint's
 * soundness and the bound on batches in flight per partition. */
#define _GNU_SOURCE /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <event2/event.h>
#include <ftw.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "connectors/target.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "dispatcher/dispatcher.h"
#include "mapping/mapping.h"
#include "mapping/positions.h"
#include "model/event.h"
#include "pollers/poller.h"

#define TOPIC      "orders"
#define MAX_PARTS  8
#define KAFKA_ARN  "arn:aws:kafka:us-east-1:000000000000:topic/weir/orders"
#define STREAM_ARN "arn:aws:kinesis:us-east-1:000000000000:stream/orders"
#define SERVERS    "broker-1:9092"
#define FN_ARN     "arn:aws:lambda:us-east-1:000000000000:function:fn"

/* ==== the fake stream source ================================================================= */

struct ckpt {
    uint32_t part;
    uint64_t below;
};

struct weir_poller {
    struct weir_sink sink;
    struct weir_source_info info;
    bool started;
    bool paused[MAX_PARTS]; /* as the mapping asked, partition by partition */
    size_t pauses, resumes;
    size_t settled[WEIR_VERDICT_COUNT];
    struct ckpt *ckpts; /* every checkpoint call, in order */
    size_t n_ckpts, cap_ckpts;
    uint64_t at[MAX_PARTS]; /* the last checkpoint of each partition */
    bool has_at[MAX_PARTS];
    size_t backwards; /* checkpoints not above their partition's last one */
    bool stop_called;
    void (*stop_done)(void *arg);
    void *stop_arg;
};

static struct weir_poller src;
/* Set while the test hands the mapping a record, to catch what comes back from inside it. */
static bool in_deliver;
static size_t back_inside_deliver;
/* Called on every checkpoint after it is recorded (the property test checks it). */
static void (*checkpoint_hook)(uint32_t part, uint64_t below);

static struct weir_poller *src_new(const struct weir_poller_args *args, struct weir_err *err)
{
    src.sink = args->sink;
    src.info.source_arn = args->format == &weir_format_kinesis ? STREAM_ARN : KAFKA_ARN;
    src.info.endpoint = SERVERS;
    src.info.ordered_lanes = true;
    return &src;
}

static const struct weir_source_info *src_info(const struct weir_poller *p)
{
    return &p->info;
}

static weir_status src_start(struct weir_poller *p)
{
    p->started = true;
    return WEIR_OK;
}

static void src_pause(struct weir_poller *p, uint32_t lane)
{
    assert_true(lane < MAX_PARTS); /* a partition, never a lane of one */
    p->pauses++;
    p->paused[lane] = true;
}

static void src_resume(struct weir_poller *p, uint32_t lane)
{
    p->resumes++;
    if (lane != WEIR_LANE_ANY) {
        assert_true(lane < MAX_PARTS);
        p->paused[lane] = false;
    }
}

static void src_settle(struct weir_poller *p, const struct weir_batch *b)
{
    back_inside_deliver += in_deliver;
    for (size_t i = 0; i < b->n; i++)
        p->settled[b->records[i]->verdict]++;
}

static void src_checkpoint(struct weir_poller *p, uint32_t lane, uint64_t done_below)
{
    assert_true(lane < MAX_PARTS);
    if (p->n_ckpts == p->cap_ckpts) {
        p->cap_ckpts = p->cap_ckpts ? p->cap_ckpts * 2 : 64;
        p->ckpts = weir_realloc(p->ckpts, p->cap_ckpts * sizeof(*p->ckpts));
    }
    p->ckpts[p->n_ckpts++] = (struct ckpt){lane, done_below};
    if (p->has_at[lane] && done_below <= p->at[lane])
        p->backwards++;
    p->at[lane] = done_below;
    p->has_at[lane] = true;
    if (checkpoint_hook)
        checkpoint_hook(lane, done_below);
}

static void src_stop(struct weir_poller *p, void (*done)(void *arg), void *arg)
{
    p->stop_called = true;
    p->stop_done = done;
    p->stop_arg = arg;
}

static void src_free(struct weir_poller *p)
{
}

static const struct weir_poller_ops src_ops = {
    .new = src_new,
    .info = src_info,
    .start = src_start,
    .pause = src_pause,
    .resume = src_resume,
    .settle = src_settle,
    .checkpoint = src_checkpoint,
    .stop = src_stop,
    .free = src_free,
};

/* Not const: the Kinesis test gives it the Kinesis format. */
static struct weir_source stream_source = {
    .config =
        {
            .name = "fakestream",
            .scheme = "fakestream",
            .example_uri = "fakestream://orders",
            .default_batch_size = 100,
            .max_batch_size = 10000,
            .stream = true,
        },
    .format = &weir_format_kafka,
    .delivery = WEIR_DELIVERY_STREAM,
    .ops = &src_ops,
};

/* A record as pollers/kafka.c's record_of builds it. key NULL: a record without a key. */
static struct weir_record *record_at(int32_t part, uint64_t off, const char *key, const char *value,
                                     size_t value_len, int64_t ts)
{
    struct weir_record *r = weir_record_new();
    char id[24];
    r->data = weir_malloc(value_len + 1);
    memcpy(r->data, value, value_len);
    r->data[value_len] = '\0';
    r->data_len = value_len;
    if (key) {
        r->key = weir_strdup(key);
        r->key_len = strlen(key);
    }
    r->stream = weir_strdup(TOPIC);
    r->partition = part;
    r->lane = (uint32_t)part;
    r->seq = off;
    snprintf(id, sizeof(id), "%020" PRIu64, off);
    r->id = weir_strdup(id);
    r->sent_ms = ts;
    r->time_type = WEIR_TIME_CREATE;
    return r;
}

/* The value every plain record carries: {"n":<offset>}. */
static void deliver_at(int32_t part, uint64_t off, int64_t ts)
{
    char value[64];
    int n = snprintf(value, sizeof(value), "{\"n\":%" PRIu64 "}", off);
    in_deliver = true;
    src.sink.ops->deliver(src.sink.ctx, record_at(part, off, "k", value, (size_t)n, ts));
    in_deliver = false;
}

/* Records [from, from + n) of part, sent a second ago. */
static void deliver(int32_t part, uint64_t from, size_t n)
{
    for (size_t i = 0; i < n; i++)
        deliver_at(part, from + i, weir_clock_wall_ms() - 1000);
}

static void deliver_value(int32_t part, uint64_t off, const char *value)
{
    src.sink.ops->deliver(
        src.sink.ctx, record_at(part, off, "k", value, strlen(value), weir_clock_wall_ms() - 1000));
}

static void read_done(void)
{
    src.sink.ops->read_done(src.sink.ctx);
}

static size_t room(uint32_t lane)
{
    return src.sink.ops->room(src.sink.ctx, lane);
}

/* ==== the fake function ======================================================================
 * Every invocation is kept, with the records its event carried (parsed from the event JSON), and
 * stays open until the test answers it. */

struct weir_target {
    size_t endpoint;
};

struct weir_invocation {
    weir_invoke_done_fn done;
    void *arg;
    bool active;
    int32_t part;  /* of its records: one partition per event */
    int64_t at_ms; /* weir's wall clock when it was invoked */
    uint64_t *offs;
    size_t n;
};

static struct weir_invocation **calls;
static size_t n_calls, cap_calls, cancelled;
/* Called on every invocation once it is recorded (the property test checks it). */
static void (*invoke_hook)(struct weir_invocation *inv);

static void parse_kafka(struct weir_invocation *inv, json_t *ev)
{
    json_t *records = json_object_get(ev, "records");
    assert_true(json_is_object(records));
    assert_int_equal(json_object_size(records), 1); /* one partition per event */
    const char *tp;
    json_t *arr;
    json_object_foreach(records, tp, arr)
    {
        inv->n = json_array_size(arr);
        inv->offs = weir_calloc(inv->n ? inv->n : 1, sizeof(*inv->offs));
        for (size_t i = 0; i < inv->n; i++) {
            json_t *r = json_array_get(arr, i);
            inv->offs[i] = (uint64_t)json_integer_value(json_object_get(r, "offset"));
            inv->part = (int32_t)json_integer_value(json_object_get(r, "partition"));
            assert_string_equal(json_string_value(json_object_get(r, "topic")), TOPIC);
        }
        char want[64];
        snprintf(want, sizeof(want), TOPIC "-%d", inv->part);
        assert_string_equal(tp, want);
    }
}

static void parse_kinesis(struct weir_invocation *inv, json_t *ev)
{
    json_t *arr = json_object_get(ev, "Records");
    assert_true(json_is_array(arr));
    inv->n = json_array_size(arr);
    inv->offs = weir_calloc(inv->n ? inv->n : 1, sizeof(*inv->offs));
    for (size_t i = 0; i < inv->n; i++) {
        json_t *r = json_array_get(arr, i);
        const char *seq =
            json_string_value(json_object_get(json_object_get(r, "kinesis"), "sequenceNumber"));
        const char *id = json_string_value(json_object_get(r, "eventID"));
        assert_non_null(seq);
        assert_non_null(id);
        inv->offs[i] = strtoull(seq, NULL, 10);
        assert_int_equal(strncmp(id, "shardId-", 8), 0);
        inv->part = (int32_t)strtol(id + 8, NULL, 10);
    }
}

static struct weir_target *target_new(const struct weir_function_cfg *fc, size_t endpoint,
                                      struct event_base *b, struct weir_err *err)
{
    struct weir_target *t = weir_calloc(1, sizeof(*t));
    t->endpoint = endpoint;
    return t;
}

static struct weir_invocation *target_invoke(struct weir_target *t, const char *payload, size_t len,
                                             int64_t timeout_ms, weir_invoke_done_fn done,
                                             void *arg)
{
    struct weir_invocation *inv = weir_calloc(1, sizeof(*inv));
    inv->done = done;
    inv->arg = arg;
    inv->active = true;
    inv->at_ms = weir_clock_wall_ms();
    assert_true(len <= WEIR_INVOKE_PAYLOAD_MAX);
    json_error_t jerr;
    json_t *ev = json_loadb(payload, len, 0, &jerr);
    if (!ev)
        fail_msg("the event is not JSON: %s", jerr.text);
    if (json_object_get(ev, "Records"))
        parse_kinesis(inv, ev);
    else
        parse_kafka(inv, ev);
    json_decref(ev);
    if (n_calls == cap_calls) {
        cap_calls = cap_calls ? cap_calls * 2 : 64;
        calls = weir_realloc(calls, cap_calls * sizeof(*calls));
    }
    calls[n_calls++] = inv;
    if (invoke_hook)
        invoke_hook(inv);
    return inv;
}

static void target_cancel(struct weir_invocation *inv)
{
    inv->active = false;
    cancelled++;
}

static void target_free(struct weir_target *t)
{
    free(t);
}

static const struct weir_target_ops target_ops = {
    .name = "fake-stream-fn",
    .new = target_new,
    .invoke = target_invoke,
    .cancel = target_cancel,
    .free = target_free,
};

static void free_calls(void)
{
    for (size_t i = 0; i < n_calls; i++) {
        free(calls[i]->offs);
        free(calls[i]);
    }
    free(calls);
    calls = NULL;
    n_calls = cap_calls = 0;
}

static const char ERROR_BODY[] = "{\"errorMessage\":\"boom\",\"errorType\":\"ValueError\"}";

static void answer(size_t i, enum weir_transport transport, long status, const char *fn_error,
                   const char *body)
{
    assert_true(i < n_calls);
    struct weir_invocation *inv = calls[i];
    assert_true(inv->active);
    inv->active = false;
    struct weir_invoke_result res;
    weir_invoke_result_init(&res);
    res.transport = transport;
    res.status = status;
    snprintf(res.function_error, sizeof(res.function_error), "%s", fn_error);
    if (body)
        weir_buf_append_str(&res.body, body);
    inv->done(inv->arg, &res);
    weir_invoke_result_deinit(&res);
}

static void ok(size_t i)
{
    answer(i, WEIR_TRANSPORT_OK, 200, "", "{}");
}

/* The function ran and failed (X-Amz-Function-Error: Unhandled). */
static void fn_error(size_t i)
{
    answer(i, WEIR_TRANSPORT_OK, 200, "Unhandled", ERROR_BODY);
}

static void throttle(size_t i)
{
    answer(i, WEIR_TRANSPORT_OK, 429, "",
           "{\"Type\":\"TooManyRequestsException\",\"Message\":\"Rate exceeded\"}");
}

static void refuse(size_t i)
{
    answer(i, WEIR_TRANSPORT_REFUSED, 0, "", NULL);
}

/* A partial batch response in Kafka's form naming offset off of the call's partition. */
static void partial(size_t i, uint64_t off)
{
    char body[200];
    snprintf(body, sizeof(body),
             "{\"batchItemFailures\":[{\"itemIdentifier\":{\"topic-partition\":\"" TOPIC
             "-%d\",\"offset\":%" PRIu64 "}}]}",
             calls[i]->part, off);
    answer(i, WEIR_TRANSPORT_OK, 200, "", body);
}

/* "0,1,2": the offsets invocation i carried. */
static const char *offs_of(size_t i)
{
    static char out[2048];
    size_t o = 0;
    out[0] = '\0';
    assert_true(i < n_calls);
    for (size_t k = 0; k < calls[i]->n && o < sizeof(out) - 24; k++)
        o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%" PRIu64, k ? "," : "",
                              calls[i]->offs[k]);
    return out;
}

static size_t active_calls(void)
{
    size_t n = 0;
    for (size_t i = 0; i < n_calls; i++)
        n += calls[i]->active;
    return n;
}

/* ==== fixtures ================================================================================ */

static struct event_base *base;
static char dir[256], fail_dir[300], fail_uri[320];
static struct weir_function_cfg fcfg;
static struct weir_mapping_cfg mcfg;
static struct weir_filter_cfg filter;
static struct weir_function *fn;
static struct weir_mapping *m;
static char *urls1[] = {"http://fn", NULL};
static int stopped;

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void on_stopped(void *arg)
{
    stopped++;
}

static int setup(void **state)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/weir-stream-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
    snprintf(fail_dir, sizeof(fail_dir), "%s/failed", dir);
    snprintf(fail_uri, sizeof(fail_uri), "file://%s", fail_dir);
    weir_clock_fake(1000000, 1700000000000);
    base = event_base_new();
    memset(&src, 0, sizeof(src));
    stream_source.format = &weir_format_kafka;
    checkpoint_hook = NULL;
    invoke_hook = NULL;
    in_deliver = false;
    back_inside_deliver = 0;
    cancelled = 0;
    stopped = 0;
    memset(&fcfg, 0, sizeof(fcfg));
    fcfg.name = "fn";
    fcfg.urls = urls1;
    fcfg.n_urls = 1;
    fcfg.timeout = 3;
    fcfg.reserved_concurrency = -1;
    memset(&mcfg, 0, sizeof(mcfg));
    mcfg.name = "m";
    mcfg.source = "fakestream://orders";
    mcfg.function = "fn";
    mcfg.fn = &fcfg;
    mcfg.batch_size = 10;
    mcfg.maximum_batching_window_in_seconds = 0;
    mcfg.maximum_buffered_mib = 64;
    mcfg.enabled = true;
    mcfg.report_batch_item_failures = true;
    mcfg.stream.maximum_retry_attempts = -1;
    mcfg.stream.maximum_record_age_in_seconds = -1;
    mcfg.stream.bisect_batch_on_function_error = false;
    mcfg.stream.parallelization_factor = 1;
    mcfg.stream.on_failure = NULL;
    return 0;
}

static void stop_all(void)
{
    weir_mapping_free(m);
    m = NULL;
    weir_function_free(fn);
    fn = NULL;
}

static int teardown(void **state)
{
    stop_all();
    event_base_free(base);
    weir_clock_real();
    free_calls();
    free(src.ckpts);
    src.ckpts = NULL;
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static void start(void)
{
    struct weir_err err = {{0}};
    fn = weir_function_new_with(&fcfg, &target_ops, base, &err);
    assert_non_null(fn);
    m = weir_mapping_new_with(&mcfg, &stream_source, "us-east-1", fn, base, NULL, &err);
    if (!m)
        fail_msg("mapping: %s", err.msg);
    assert_int_equal(weir_mapping_start(m), WEIR_OK);
    assert_true(src.started);
}

static void with_destination(void)
{
    mcfg.stream.on_failure = fail_uri;
}

static void with_filter(const char *pattern)
{
    filter.pattern = (char *)pattern;
    filter.pattern_len = strlen(pattern);
    mcfg.filters = &filter;
    mcfg.n_filters = 1;
}

static void spin(void)
{
    event_base_loop(base, EVLOOP_NONBLOCK);
}

/* Steps weir's clock and runs what became due: timers fire from the loop, on stepped time. */
static void step_ms(int64_t ms)
{
    weir_clock_step(ms);
    spin();
}

/* Steps the clock 100 ms at a time until there are n invocations, for at most a minute of
 * weir's time: the retry backoff is the code's to choose, the test only waits it out. */
static void step_until_calls(size_t n)
{
    for (int i = 0; i < 600 && n_calls < n; i++)
        step_ms(100);
    assert_int_equal(n_calls, n);
}

static bool guard_fired;

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
    guard_fired = true;
}

/* Runs the loop until cond holds: the directory destination writes on its own thread and answers
 * through a pipe, so this blocks on the loop (no sleep), with ten seconds of real time as a bound
 * so a lost answer fails the test instead of hanging it. weir's clock does not move. */
#define RUN_UNTIL(cond)                                                                            \
    do {                                                                                           \
        struct event *guard_ = evtimer_new(base, on_guard, NULL);                                  \
        struct timeval tv_ = {10, 0};                                                              \
        guard_fired = false;                                                                       \
        evtimer_add(guard_, &tv_);                                                                 \
        while (!(cond) && !guard_fired)                                                            \
            event_base_loop(base, EVLOOP_ONCE);                                                    \
        event_free(guard_);                                                                        \
        if (!(cond))                                                                               \
            fail_msg("timed out waiting for: %s", #cond);                                          \
    } while (0)

/* ---- the failure destination ---- */

static size_t files_in(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Every failure record written, parsed, in no particular order. */
static json_t *failure_records(void)
{
    json_t *all = json_array();
    DIR *d = opendir(fail_dir);
    if (!d)
        return all;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char file[600];
        snprintf(file, sizeof(file), "%s/%s", fail_dir, e->d_name);
        json_error_t jerr;
        json_t *j = json_load_file(file, 0, &jerr);
        if (!j)
            fail_msg("%s: %s", file, jerr.text);
        json_array_append_new(all, j);
    }
    closedir(d);
    return all;
}

/* The one failure record. */
static json_t *only_failure(void)
{
    json_t *all = failure_records();
    assert_int_equal(json_array_size(all), 1);
    json_t *r = json_incref(json_array_get(all, 0));
    json_decref(all);
    return r;
}

static json_t *at2(json_t *j, const char *a, const char *b)
{
    json_t *v = json_object_get(j, a);
    return b ? json_object_get(v, b) : v;
}

static const char *str2(json_t *j, const char *a, const char *b)
{
    return json_string_value(at2(j, a, b));
}

static json_int_t int2(json_t *j, const char *a, const char *b)
{
    json_t *v = at2(j, a, b);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

/* Checks a failure record's envelope and KafkaBatchInfo (reference 1.6): what it says of the
 * records given up (first..last of partition 0, n of them) and why. */
static void check_failure(json_t *r, const char *condition, json_int_t invokes, const char *first,
                          const char *last, json_int_t n)
{
    assert_string_equal(str2(r, "version", NULL), "1.0");
    assert_non_null(str2(r, "timestamp", NULL));
    assert_int_equal(strlen(str2(r, "timestamp", NULL)), 24);
    assert_string_equal(str2(r, "requestContext", "condition"), condition);
    assert_string_equal(str2(r, "requestContext", "functionArn"), FN_ARN);
    assert_int_equal(strlen(str2(r, "requestContext", "requestId")), 36);
    assert_int_equal(int2(r, "requestContext", "approximateInvokeCount"), invokes);
    json_t *info = json_object_get(r, "KafkaBatchInfo");
    assert_non_null(info);
    assert_int_equal(int2(r, "KafkaBatchInfo", "batchSize"), n);
    assert_string_equal(str2(info, "eventSourceArn", NULL), KAFKA_ARN);
    assert_string_equal(str2(info, "bootstrapServers", NULL), SERVERS);
    json_t *ri = json_object_get(json_object_get(info, "recordsInfo"), TOPIC "-0");
    assert_non_null(ri);
    assert_string_equal(str2(ri, "firstRecordOffset", NULL), first);
    assert_string_equal(str2(ri, "lastRecordOffset", NULL), last);
    assert_non_null(str2(ri, "firstRecordTimestamp", NULL));
    assert_non_null(str2(ri, "lastRecordTimestamp", NULL));
}

/* The function ran and failed: responseContext as reference 1.6 shows it. */
static void check_response_context(json_t *r)
{
    json_t *rc = json_object_get(r, "responseContext");
    assert_true(json_is_object(rc));
    assert_int_equal(int2(rc, "statusCode", NULL), 200);
    assert_string_equal(str2(rc, "executedVersion", NULL), "$LATEST");
    assert_string_equal(str2(rc, "functionError", NULL), "Unhandled");
}

/* Never invoked: no response to tell of. */
static void check_no_response_context(json_t *r)
{
    json_t *rc = json_object_get(r, "responseContext");
    assert_true(rc == NULL || json_is_null(rc));
}

/* The partition's last checkpoint is below, and no checkpoint ever moved back. The mapping may
 * tell the source every step of the way (poller.h: "called as the point moves"), so the tests
 * look at where it is, not at how many calls took it there. */
static void assert_at(uint32_t part, uint64_t below)
{
    assert_int_equal(src.backwards, 0);
    assert_true(src.has_at[part]);
    assert_int_equal(src.at[part], below);
}

/* ==== a good batch ============================================================================ */

static void a_good_batch_is_invoked_once_and_checkpointed_past_its_last_record(void **state)
{
    start();
    deliver(0, 0, 5);
    read_done();
    assert_int_equal(n_calls, 1);
    assert_string_equal(offs_of(0), "0,1,2,3,4");
    assert_int_equal(calls[0]->part, 0);
    assert_int_equal(src.n_ckpts, 0); /* not before the function answered */
    ok(0);
    assert_at(0, 5);
    assert_int_equal(src.settled[WEIR_VERDICT_DONE], 5);
    /* Done with: it is never invoked again. */
    step_ms(60000);
    assert_int_equal(n_calls, 1);
    assert_int_equal(weir_mapping_stats(m)->bytes, 0);
}

static void partitions_are_batched_and_checkpointed_apart(void **state)
{
    start();
    deliver(0, 10, 2);
    deliver(1, 40, 3);
    read_done();
    assert_int_equal(n_calls, 2);
    size_t p1 = calls[0]->part == 1 ? 0 : 1;
    assert_string_equal(offs_of(p1), "40,41,42");
    assert_string_equal(offs_of(1 - p1), "10,11");
    ok(p1);
    assert_at(1, 43);
    assert_false(src.has_at[0]);
    ok(1 - p1);
    assert_at(0, 12);
}

static void filtered_out_records_move_the_checkpoint_too(void **state)
{
    with_filter("{\"value\":{\"keep\":[true]}}");
    start();
    deliver_value(0, 0, "{\"keep\":true}");
    deliver_value(0, 1, "{\"keep\":true}");
    deliver_value(0, 2, "{\"keep\":false}");
    deliver_value(0, 3, "{\"keep\":false}");
    read_done();
    assert_int_equal(n_calls, 1);
    assert_string_equal(offs_of(0), "0,1");
    /* The filtered records are done, but the batch before them is not: the checkpoint waits. */
    assert_int_equal(src.n_ckpts, 0);
    ok(0);
    /* Then it passes the filtered records as well. */
    assert_at(0, 4);
    /* A read of nothing but filtered records moves it with no invocation at all. */
    deliver_value(0, 4, "{\"keep\":false}");
    deliver_value(0, 5, "{\"other\":1}");
    deliver_value(0, 6, "not json");
    read_done();
    assert_int_equal(n_calls, 1);
    assert_at(0, 7);
}

/* ==== function errors and the retry budget ==================================================== */

static void function_errors_are_retried_max_retries_times_then_given_up(void **state)
{
    mcfg.batch_size = 3;
    mcfg.stream.maximum_retry_attempts = 2;
    with_destination();
    start();
    deliver(0, 0, 6); /* [0,1,2] goes out, [3,4,5] waits behind it in the partition */
    read_done();
    assert_int_equal(n_calls, 1);
    assert_string_equal(offs_of(0), "0,1,2");
    fn_error(0);
    step_until_calls(2);
    assert_string_equal(offs_of(1), "0,1,2");
    fn_error(1);
    step_until_calls(3);
    assert_string_equal(offs_of(2), "0,1,2");
    /* Blocking: nothing later in the partition moves while the batch is retried. */
    assert_int_equal(src.n_ckpts, 0);
    fn_error(2);
    /* maximum_retry_attempts 2: three invocations, then the failure record, then the
     * checkpoint passes the batch and the next batch goes. */
    RUN_UNTIL(n_calls == 4);
    assert_string_equal(offs_of(3), "3,4,5");
    assert_at(0, 3);
    json_t *r = only_failure();
    check_failure(r, "RetryAttemptsExhausted", 3, "0", "2", 3);
    check_response_context(r);
    json_decref(r);
    ok(3);
    assert_at(0, 6);
    step_ms(60000);
    assert_int_equal(n_calls, 4);
    assert_int_equal(files_in(fail_dir), 1);
}

static void zero_retries_gives_up_after_the_first_error(void **state)
{
    mcfg.stream.maximum_retry_attempts = 0;
    with_destination();
    start();
    deliver(0, 7, 2);
    read_done();
    fn_error(0);
    RUN_UNTIL(src.at[0] == 9);
    assert_at(0, 9);
    json_t *r = only_failure();
    check_failure(r, "RetryAttemptsExhausted", 1, "7", "8", 2);
    check_response_context(r);
    json_decref(r);
    step_ms(60000);
    assert_int_equal(n_calls, 1);
}

static void a_timeout_is_a_function_error_and_spends_a_retry(void **state)
{
    mcfg.stream.maximum_retry_attempts = 1;
    with_destination();
    start();
    deliver(0, 0, 2);
    read_done();
    answer(0, WEIR_TRANSPORT_TIMEOUT, 0, "", NULL);
    step_until_calls(2);
    answer(1, WEIR_TRANSPORT_TIMEOUT, 0, "", NULL);
    RUN_UNTIL(src.at[0] == 2);
    json_t *r = only_failure();
    check_failure(r, "RetryAttemptsExhausted", 2, "0", "1", 2);
    json_decref(r);
}

static void infinite_retries_with_a_destination_are_capped_at_ten(void **state)
{
    mcfg.stream.maximum_retry_attempts = -1;
    with_destination();
    start();
    deliver(0, 0, 2);
    read_done();
    for (size_t i = 0; i < 11; i++) {
        step_until_calls(i + 1);
        fn_error(i);
    }
    RUN_UNTIL(src.at[0] == 2);
    assert_at(0, 2);
    json_t *r = only_failure();
    check_failure(r, "RetryAttemptsExhausted", 11, "0", "1", 2);
    json_decref(r);
    step_ms(60000);
    assert_int_equal(n_calls, 11);
}

static void infinite_retries_without_a_destination_never_give_up(void **state)
{
    start();
    deliver(0, 0, 2);
    read_done();
    for (size_t i = 0; i < 30; i++) {
        step_until_calls(i + 1);
        assert_string_equal(offs_of(i), "0,1");
        fn_error(i);
    }
    assert_int_equal(src.n_ckpts, 0);
    step_until_calls(31);
    ok(30);
    assert_at(0, 2);
}

/* ==== throttles =============================================================================== */

static void throttles_do_not_spend_the_retry_budget(void **state)
{
    mcfg.stream.maximum_retry_attempts = 0;
    with_destination();
    start();
    deliver(0, 0, 3);
    read_done();
    for (size_t i = 0; i < 5; i++) {
        step_until_calls(i + 1);
        assert_string_equal(offs_of(i), "0,1,2");
        if (i % 2)
            refuse(i); /* nothing listening: the function never ran */
        else
            throttle(i);
    }
    step_until_calls(6);
    assert_string_equal(offs_of(5), "0,1,2");
    ok(5);
    assert_at(0, 3);
    spin();
    assert_int_equal(files_in(fail_dir), 0);
}

static void throttled_attempts_are_not_counted_as_invocations(void **state)
{
    mcfg.stream.maximum_retry_attempts = 0;
    with_destination();
    start();
    deliver(0, 0, 1);
    read_done();
    for (size_t i = 0; i < 3; i++) {
        step_until_calls(i + 1);
        throttle(i);
    }
    step_until_calls(4);
    fn_error(3); /* the budget is 0: the first function error gives up */
    RUN_UNTIL(src.at[0] == 1);
    json_t *r = only_failure();
    check_failure(r, "RetryAttemptsExhausted", 1, "0", "0", 1);
    check_response_context(r);
    json_decref(r);
}

/* ==== record age ============================================================================== */

static void records_older_than_the_maximum_age_are_given_up_without_an_invocation(void **state)
{
    mcfg.stream.maximum_record_age_in_seconds = 60;
    with_destination();
    start();
    int64_t now = weir_clock_wall_ms();
    deliver_at(0, 0, now - 61000);
    deliver_at(0, 1, now - 60500);
    deliver_at(0, 2, now - 59000);
    deliver_at(0, 3, now - 1000);
    read_done();
    /* The old ones go to the destination; the others are invoked without them. */
    RUN_UNTIL(files_in(fail_dir) == 1 && n_calls == 1);
    assert_string_equal(offs_of(0), "2,3");
    json_t *r = only_failure();
    check_failure(r, "RecordAgeExceeded", 0, "0", "1", 2);
    check_no_response_context(r);
    json_decref(r);
    /* Given up is done: the checkpoint passes them while the rest is with the function. */
    assert_at(0, 2);
    ok(0);
    assert_at(0, 4);
}

static void records_throttled_until_they_age_out_are_given_up(void **state)
{
    mcfg.stream.maximum_record_age_in_seconds = 60;
    mcfg.stream.maximum_retry_attempts = 0;
    with_destination();
    start();
    int64_t sent = weir_clock_wall_ms() - 50000, ages_out = sent + 60000;
    deliver_at(0, 0, sent);
    deliver_at(0, 1, sent);
    read_done();
    /* Throttled again and again, well past the moment the records are 60 s old: no retry is
     * spent, and they are never invoked once too old. */
    size_t answered = 0;
    while (weir_clock_wall_ms() < ages_out + 10000) {
        for (; answered < n_calls; answered++)
            throttle(answered);
        step_ms(100);
    }
    assert_true(answered >= 3);
    for (size_t i = 0; i < n_calls; i++)
        if (calls[i]->at_ms > ages_out)
            fail_msg("invocation %zu at %lld ms, %lld ms after its records aged out", i,
                     (long long)calls[i]->at_ms, (long long)(calls[i]->at_ms - ages_out));
    RUN_UNTIL(src.at[0] == 2);
    assert_at(0, 2);
    json_t *r = only_failure();
    check_failure(r, "RecordAgeExceeded", 0, "0", "1", 2);
    check_no_response_context(r); /* the function never ran */
    json_decref(r);
}

static void records_that_age_out_between_retries_are_given_up_with_the_last_error(void **state)
{
    mcfg.stream.maximum_record_age_in_seconds = 60;
    with_destination();
    start();
    int64_t now = weir_clock_wall_ms();
    deliver_at(0, 0, now - 59950);
    deliver_at(0, 1, now - 1000);
    read_done();
    fn_error(0);
    /* The retry comes after the first record turned 60 s old: it is given up, not invoked. */
    step_ms(6000);
    RUN_UNTIL(n_calls == 2);
    assert_string_equal(offs_of(1), "1");
    json_t *r = only_failure();
    check_failure(r, "RecordAgeExceeded", 1, "0", "0", 1);
    check_response_context(r); /* the error that kept it until it aged out */
    json_decref(r);
    ok(1);
    assert_at(0, 2);
}

static void records_too_old_with_no_destination_are_dropped_and_passed(void **state)
{
    mcfg.stream.maximum_record_age_in_seconds = 60;
    start();
    int64_t now = weir_clock_wall_ms();
    deliver_at(0, 0, now - 70000);
    deliver_at(0, 1, now - 70000);
    read_done();
    spin();
    assert_int_equal(n_calls, 0);
    assert_at(0, 2);
    assert_int_equal(weir_mapping_stats(m)->bytes, 0);
    assert_int_equal(weir_mapping_stats(m)->inflight, 0);
    /* The partition reads on. */
    deliver(0, 2, 1);
    read_done();
    assert_int_equal(n_calls, 1);
    assert_string_equal(offs_of(0), "2");
}

static void a_batch_given_up_at_once_comes_back_from_the_loop(void **state)
{
    mcfg.batch_size = 1;
    mcfg.stream.maximum_record_age_in_seconds = 60;
    start();
    /* Full at once: closed, submitted and, too old, given up (no destination: dropped). */
    deliver_at(0, 0, weir_clock_wall_ms() - 70000);
    /* As every batch, and as stream.c itself defers a record too large for any event ("with no
     * destination the batch would be handed back from inside the submit"): the mapping gets it
     * back on a later turn of the loop, not from inside the weir_disp_submit of the read that
     * closed it. */
    assert_int_equal(back_inside_deliver, 0);
    spin();
    assert_at(0, 1);
    assert_int_equal(weir_mapping_stats(m)->bytes, 0);
}

/* ==== bisect ================================================================================== */

static bool has_off(size_t i, uint64_t off)
{
    for (size_t k = 0; k < calls[i]->n; k++)
        if (calls[i]->offs[k] == off)
            return true;
    return false;
}

static void bisect_halves_down_to_the_poison_record(void **state)
{
    enum { POISON = 5, RETRIES = 2 };
    mcfg.batch_size = 8;
    mcfg.stream.maximum_retry_attempts = RETRIES;
    mcfg.stream.bisect_batch_on_function_error = true;
    with_destination();
    start();
    deliver(0, 0, 8);
    read_done();
    /* The function fails whenever its event holds the poison record. */
    size_t answered = 0, alone = 0;
    bool succeeded[8] = {false};
    for (int i = 0; i < 600 && alone < RETRIES + 1; i++) {
        for (; answered < n_calls; answered++) {
            if (has_off(answered, POISON)) {
                alone += calls[answered]->n == 1;
                fn_error(answered);
            } else {
                for (size_t k = 0; k < calls[answered]->n; k++)
                    succeeded[calls[answered]->offs[k]] = true;
                ok(answered);
            }
        }
        if (alone < RETRIES + 1)
            step_ms(100);
    }
    assert_int_equal(alone, RETRIES + 1);
    /* Given up: the failure record is written, then the rest of the batch goes on. */
    RUN_UNTIL(n_calls > answered);
    for (int i = 0; i < 600 && src.at[0] != 8; i++) {
        for (; answered < n_calls; answered++) {
            assert_false(has_off(answered, POISON));
            for (size_t k = 0; k < calls[answered]->n; k++)
                succeeded[calls[answered]->offs[k]] = true;
            ok(answered);
        }
        if (src.at[0] != 8)
            step_ms(100);
    }
    assert_at(0, 8);
    /* Every other record reached the function and succeeded, once. */
    size_t ok_calls_per_off[8] = {0};
    for (size_t i = 0; i < n_calls; i++)
        if (!has_off(i, POISON))
            for (size_t k = 0; k < calls[i]->n; k++)
                ok_calls_per_off[calls[i]->offs[k]]++;
    for (uint64_t off = 0; off < 8; off++) {
        if (off == POISON)
            continue;
        assert_true(succeeded[off]);
        assert_int_equal(ok_calls_per_off[off], 1);
    }
    /* The poison record's invocations halve (8, 4, 2, 1), then it alone is retried: splitting
     * spent none of the budget, so it gets its 1 + 2 attempts alone. */
    size_t sizes[16], n_sizes = 0;
    for (size_t i = 0; i < n_calls && n_sizes < 16; i++)
        if (has_off(i, POISON))
            sizes[n_sizes++] = calls[i]->n;
    assert_int_equal(n_sizes, 6);
    assert_int_equal(sizes[0], 8);
    assert_int_equal(sizes[1], 4);
    assert_int_equal(sizes[2], 2);
    assert_int_equal(sizes[3], 1);
    assert_int_equal(sizes[4], 1);
    assert_int_equal(sizes[5], 1);
    /* The failure record names the poison record alone. */
    json_t *r = only_failure();
    check_failure(r, "RetryAttemptsExhausted", RETRIES + 1, "5", "5", 1);
    check_response_context(r);
    json_decref(r);
}

static void bisect_invokes_the_older_half_first(void **state)
{
    mcfg.batch_size = 4;
    mcfg.stream.bisect_batch_on_function_error = true;
    start();
    deliver(0, 0, 4);
    read_done();
    fn_error(0);
    step_until_calls(2);
    assert_string_equal(offs_of(1), "0,1");
    ok(1);
    step_until_calls(3);
    assert_string_equal(offs_of(2), "2,3");
    assert_at(0, 2); /* the older half is done: the checkpoint passes it */
    ok(2);
    assert_at(0, 4);
}

/* ==== partial batch responses ================================================================= */

static void a_partial_response_resumes_from_the_reported_record(void **state)
{
    mcfg.stream.maximum_retry_attempts = 3;
    with_destination();
    start();
    deliver(0, 0, 6);
    read_done();
    partial(0, 3);
    step_until_calls(2);
    /* From 3 on, everything again: 4 and 5 too, though only 3 was reported. */
    assert_string_equal(offs_of(1), "3,4,5");
    ok(1);
    assert_at(0, 6);
    assert_int_equal(files_in(fail_dir), 0);
    step_ms(60000);
    assert_int_equal(n_calls, 2);
}

static void a_partial_response_moves_the_checkpoint_to_the_reported_record(void **state)
{
    start();
    deliver(0, 0, 6);
    read_done();
    partial(0, 3);
    /* Reference 1.5 and 2.2: the checkpoint moves to just before the lowest reported record, so
     * what was done before it is not read again should weir stop while 3.. is retried. */
    assert_at(0, 3);
    step_until_calls(2);
    ok(1);
    assert_at(0, 6);
}

static void the_lowest_reported_record_wins(void **state)
{
    start();
    deliver(0, 0, 6);
    read_done();
    answer(0, WEIR_TRANSPORT_OK, 200, "",
           "{\"batchItemFailures\":[{\"itemIdentifier\":{\"topic-partition\":\"orders-0\","
           "\"offset\":4}},{\"itemIdentifier\":{\"topic-partition\":\"orders-0\",\"offset\":\"2\"}}"
           "]}");
    step_until_calls(2);
    assert_string_equal(offs_of(1), "2,3,4,5");
    ok(1);
    assert_at(0, 6);
}

static void a_partial_response_counts_as_a_retry(void **state)
{
    mcfg.stream.maximum_retry_attempts = 1;
    with_destination();
    start();
    deliver(0, 0, 6);
    read_done();
    partial(0, 3); /* the first retry */
    step_until_calls(2);
    assert_string_equal(offs_of(1), "3,4,5");
    partial(1, 4); /* the second: over the budget, 4 and 5 are given up */
    RUN_UNTIL(src.at[0] == 6);
    assert_int_equal(n_calls, 2);
    json_t *r = only_failure();
    check_failure(r, "RetryAttemptsExhausted", 2, "4", "5", 2);
    json_decref(r);
    step_ms(60000);
    assert_int_equal(n_calls, 2);
}

static void a_partial_response_naming_what_is_not_in_the_batch_fails_it_whole(void **state)
{
    static const char *const bad[] = {
        /* an offset not in the batch */
        "{\"batchItemFailures\":[{\"itemIdentifier\":{\"topic-partition\":\"orders-0\","
        "\"offset\":99}}]}",
        /* another partition */
        "{\"batchItemFailures\":[{\"itemIdentifier\":{\"topic-partition\":\"orders-1\","
        "\"offset\":1}}]}",
        /* another topic */
        "{\"batchItemFailures\":[{\"itemIdentifier\":{\"topic-partition\":\"payments-0\","
        "\"offset\":1}}]}",
        /* empty, null, a plain string, a misspelt key */
        "{\"batchItemFailures\":[{\"itemIdentifier\":\"\"}]}",
        "{\"batchItemFailures\":[{\"itemIdentifier\":null}]}",
        "{\"batchItemFailures\":[{\"itemIdentifier\":\"00000000000000000001\"}]}",
        "{\"batchItemFailures\":[{\"itemIdentifer\":{\"topic-partition\":\"orders-0\","
        "\"offset\":1}}]}",
        /* one good entry does not save a bad one */
        "{\"batchItemFailures\":[{\"itemIdentifier\":{\"topic-partition\":\"orders-0\","
        "\"offset\":2}},{\"itemIdentifier\":{\"topic-partition\":\"orders-0\",\"offset\":7}}]}",
    };
    size_t n_bad = sizeof(bad) / sizeof(*bad);
    start();
    deliver(0, 0, 3);
    read_done();
    for (size_t i = 0; i < n_bad; i++) {
        step_until_calls(i + 1);
        /* The whole batch each time: the bad answer before failed it all. */
        assert_string_equal(offs_of(i), "0,1,2");
        answer(i, WEIR_TRANSPORT_OK, 200, "", bad[i]);
        assert_int_equal(src.n_ckpts, 0);
    }
    step_until_calls(n_bad + 1);
    assert_string_equal(offs_of(n_bad), "0,1,2");
    ok(n_bad);
    assert_at(0, 3);
}

static void a_bad_partial_response_spends_a_retry(void **state)
{
    mcfg.stream.maximum_retry_attempts = 0;
    with_destination();
    start();
    deliver(0, 0, 3);
    read_done();
    answer(0, WEIR_TRANSPORT_OK, 200, "",
           "{\"batchItemFailures\":[{\"itemIdentifier\":{\"topic-partition\":\"orders-0\","
           "\"offset\":99}}]}");
    RUN_UNTIL(src.at[0] == 3);
    json_t *r = only_failure();
    check_failure(r, "RetryAttemptsExhausted", 1, "0", "2", 3);
    json_decref(r);
}

static void kinesis_records_are_named_by_their_sequence_number(void **state)
{
    stream_source.format = &weir_format_kinesis;
    mcfg.stream.maximum_retry_attempts = 0;
    with_destination();
    start();
    deliver(0, 0, 5);
    read_done();
    assert_string_equal(offs_of(0), "0,1,2,3,4");
    /* A partial response over the budget of 0: 2.. given up, 0 and 1 done. */
    answer(0, WEIR_TRANSPORT_OK, 200, "",
           "{\"batchItemFailures\":[{\"itemIdentifier\":\"00000000000000000002\"}]}");
    RUN_UNTIL(src.at[0] == 5);
    assert_at(0, 5);
    json_t *r = only_failure();
    assert_string_equal(str2(r, "requestContext", "condition"), "RetryAttemptsExhausted");
    json_t *info = json_object_get(r, "KinesisBatchInfo");
    assert_non_null(info);
    assert_string_equal(str2(info, "shardId", NULL), "shardId-000000000000");
    assert_string_equal(str2(info, "startSequenceNumber", NULL), "00000000000000000002");
    assert_string_equal(str2(info, "endSequenceNumber", NULL), "00000000000000000004");
    assert_int_equal(int2(info, "batchSize", NULL), 3);
    assert_string_equal(str2(info, "streamArn", NULL), STREAM_ARN);
    assert_null(json_object_get(r, "KafkaBatchInfo"));
    json_decref(r);
    assert_int_equal(n_calls, 1);
}

static void a_kinesis_partial_response_retries_from_the_sequence_number(void **state)
{
    stream_source.format = &weir_format_kinesis;
    start();
    deliver(0, 10, 4);
    read_done();
    answer(0, WEIR_TRANSPORT_OK, 200, "",
           "{\"batchItemFailures\":[{\"itemIdentifier\":\"00000000000000000012\"}]}");
    step_until_calls(2);
    assert_string_equal(offs_of(1), "12,13");
    /* A sequence number that is not in the batch fails the batch whole. */
    answer(1, WEIR_TRANSPORT_OK, 200, "",
           "{\"batchItemFailures\":[{\"itemIdentifier\":\"00000000000000000010\"}]}");
    step_until_calls(3);
    assert_string_equal(offs_of(2), "12,13");
    ok(2);
    assert_at(0, 14);
}

static void a_partial_response_naming_the_first_record_retries_the_whole_batch(void **state)
{
    mcfg.stream.maximum_retry_attempts = 1;
    with_destination();
    start();
    deliver(0, 0, 3);
    read_done();
    partial(0, 0);
    step_until_calls(2);
    assert_string_equal(offs_of(1), "0,1,2");
    partial(1, 0); /* the second retry: over the budget of 1 */
    RUN_UNTIL(src.at[0] == 3);
    json_t *r = only_failure();
    check_failure(r, "RetryAttemptsExhausted", 2, "0", "2", 3);
    json_decref(r);
}

/* ==== a failure destination that fails ======================================================== */

/* One turn of the loop: what is due now, or else the next event (the destination's thread
 * answering), waited for with a bound. */
static void run_once(void)
{
    struct event *guard = evtimer_new(base, on_guard, NULL);
    struct timeval tv = {10, 0};
    guard_fired = false;
    evtimer_add(guard, &tv);
    event_base_loop(base, EVLOOP_ONCE);
    event_free(guard);
    assert_false(guard_fired);
}

static void a_failing_destination_is_tried_again_and_the_partition_waits(void **state)
{
    mcfg.stream.maximum_retry_attempts = 0;
    with_destination();
    /* A file where the directory should be: every write fails until it is removed. */
    FILE *f = fopen(fail_dir, "w");
    assert_non_null(f);
    fclose(f);
    start();
    deliver(0, 0, 2);
    read_done();
    fn_error(0);
    /* The loop has nothing else to do: its next event is the destination's refusal. */
    run_once();
    assert_false(src.has_at[0]);
    /* Its next try, whenever the code chooses (at most 5 minutes on): the timer's turn puts the
     * record out again, the next turn is the refusal. */
    weir_clock_step(5 * 60 * 1000);
    run_once();
    run_once();
    assert_false(src.has_at[0]);
    /* The partition waits; the function is not invoked again for records given up. */
    deliver(0, 2, 1);
    read_done();
    assert_int_equal(n_calls, 1);
    assert_int_equal(remove(fail_dir), 0);
    weir_clock_step(5 * 60 * 1000);
    RUN_UNTIL(src.at[0] == 2 && n_calls == 2);
    json_t *r = only_failure();
    check_failure(r, "RetryAttemptsExhausted", 1, "0", "1", 2);
    json_decref(r);
    assert_string_equal(offs_of(1), "2");
    ok(1);
    assert_at(0, 3);
}

/* ==== records no event can hold =============================================================== */

static void a_record_too_large_for_any_event_is_given_up_and_the_others_delivered(void **state)
{
    with_destination();
    start();
    size_t big = WEIR_INVOKE_PAYLOAD_MAX + 1024;
    char *value = weir_malloc(big);
    memset(value, 'x', big);
    deliver(0, 0, 1);
    src.sink.ops->deliver(src.sink.ctx,
                          record_at(0, 1, "k", value, big, weir_clock_wall_ms() - 1000));
    free(value);
    deliver(0, 2, 1);
    read_done();
    /* It takes its turn in the lane: after 0, before 2. */
    RUN_UNTIL(n_calls == 1);
    assert_string_equal(offs_of(0), "0");
    assert_int_equal(files_in(fail_dir), 0);
    ok(0);
    RUN_UNTIL(files_in(fail_dir) == 1 && n_calls == 2);
    assert_string_equal(offs_of(1), "2");
    json_t *r = only_failure();
    check_failure(r, "MaximumPayloadSizeExceeded", 0, "1", "1", 1);
    check_no_response_context(r);
    json_decref(r);
    ok(1);
    assert_at(0, 3);
    assert_int_equal(weir_mapping_stats(m)->bytes, 0);
}

/* ==== per-key order with parallelization_factor 10: a property over many seeds ================ */

#define PROP_SEEDS   50
#define PROP_PARTS   3
#define PROP_RECORDS 120 /* per partition */
#define PROP_KEYS    12
#define PROP_PF      10

enum prop_mode { PROP_RETRY, PROP_BISECT, PROP_PARTIAL, PROP_MODES };

struct prop {
    uint64_t rng;
    enum prop_mode mode;
    int key[PROP_PARTS][PROP_RECORDS]; /* -1: no key */
    bool drop[PROP_PARTS][PROP_RECORDS];
    bool succeeded[PROP_PARTS][PROP_RECORDS];
    int64_t last_ok[PROP_PARTS][PROP_KEYS + 1]; /* per key (the last: records without one) */
    uint64_t next_read[PROP_PARTS];
    uint64_t sound_below[PROP_PARTS]; /* checked up to here */
    size_t max_part_inflight;
    /* Violations, with the first one described. */
    size_t order, unsound, filtered_invoked, key_overlap, inflight_over;
    char first[256];
};

static struct prop P;

static uint64_t rnd(void)
{
    P.rng ^= P.rng << 13;
    P.rng ^= P.rng >> 7;
    P.rng ^= P.rng << 17;
    return P.rng;
}

static void violation(size_t *count, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void violation(size_t *count, const char *fmt, ...)
{
    if (!P.order && !P.unsound && !P.filtered_invoked && !P.key_overlap && !P.inflight_over) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(P.first, sizeof(P.first), fmt, ap);
        va_end(ap);
    }
    (*count)++;
}

static int prop_key(int32_t part, uint64_t off)
{
    int k = P.key[part][off];
    return k < 0 ? PROP_KEYS : k;
}

/* Every checkpoint is sound: every record below it succeeded or was filtered out. */
static void prop_on_checkpoint(uint32_t part, uint64_t below)
{
    assert_true(part < PROP_PARTS && below <= PROP_RECORDS);
    for (uint64_t off = P.sound_below[part]; off < below; off++)
        if (!P.succeeded[part][off] && !P.drop[part][off])
            violation(&P.unsound,
                      "checkpoint %" PRIu64 " of partition %u passes offset %" PRIu64
                      ", which never succeeded",
                      below, part, off);
    if (below > P.sound_below[part])
        P.sound_below[part] = below;
}

/* At most parallelization_factor batches of a partition at once, never two with one key, never
 * a filtered record. */
static void prop_on_invoke(struct weir_invocation *inv)
{
    size_t same_part = 0;
    for (size_t i = 0; i < n_calls; i++)
        if (calls[i]->active && calls[i]->part == inv->part)
            same_part++;
    if (same_part > P.max_part_inflight)
        P.max_part_inflight = same_part;
    if (same_part > PROP_PF)
        violation(&P.inflight_over, "%zu batches of partition %d in flight", same_part, inv->part);
    for (size_t k = 0; k < inv->n; k++) {
        uint64_t off = inv->offs[k];
        if (P.drop[inv->part][off])
            violation(&P.filtered_invoked, "filtered offset %" PRIu64 " invoked", off);
        int key = prop_key(inv->part, off);
        for (size_t i = 0; i + 1 < n_calls; i++) {
            struct weir_invocation *o = calls[i];
            if (!o->active || o->part != inv->part)
                continue;
            for (size_t j = 0; j < o->n; j++)
                if (prop_key(o->part, o->offs[j]) == key) {
                    violation(&P.key_overlap,
                              "key %d of partition %d in two batches in flight (offsets %" PRIu64
                              " and %" PRIu64 ")",
                              key, inv->part, o->offs[j], off);
                    return;
                }
        }
    }
}

/* Records [0, upto) of invocation i succeeded, in the order the event gave them. */
static void prop_succeed(size_t i, size_t upto)
{
    struct weir_invocation *inv = calls[i];
    for (size_t k = 0; k < upto; k++) {
        uint64_t off = inv->offs[k];
        if (P.succeeded[inv->part][off])
            continue;
        P.succeeded[inv->part][off] = true;
        int key = prop_key(inv->part, off);
        if ((int64_t)off <= P.last_ok[inv->part][key])
            violation(&P.order,
                      "key %d of partition %d: offset %" PRIu64 " succeeded after %" PRId64, key,
                      inv->part, off, P.last_ok[inv->part][key]);
        P.last_ok[inv->part][key] = (int64_t)off;
    }
}

/* One answer, at random: success, a function error, a throttle, or (in the partial mode) a
 * partial response naming a record at random. */
static void prop_answer(size_t i)
{
    uint64_t r = rnd() % 100;
    struct weir_invocation *inv = calls[i];
    if (r < 10) {
        throttle(i);
        return;
    }
    if (P.mode == PROP_PARTIAL && r < 35) {
        size_t k = (size_t)(rnd() % inv->n);
        prop_succeed(i, k);
        partial(i, inv->offs[k]);
        return;
    }
    if (r < 35) {
        fn_error(i);
        return;
    }
    prop_succeed(i, inv->n);
    ok(i);
}

/* The source reads: round robin over the partitions it was not asked to pause, a few records of
 * one at a time, while the mapping has room. */
static void prop_read(void)
{
    size_t n = 0;
    for (int round = 0; round < 8; round++) {
        for (int32_t part = 0; part < PROP_PARTS; part++) {
            size_t chunk = 1 + (size_t)(rnd() % 6);
            for (size_t c = 0; c < chunk; c++) {
                if (src.paused[part] || P.next_read[part] >= PROP_RECORDS ||
                    room(WEIR_LANE_ANY) == 0)
                    break;
                uint64_t off = P.next_read[part]++;
                char key[16], value[64];
                int k = P.key[part][off];
                snprintf(key, sizeof(key), "key-%d", k);
                int len = snprintf(value, sizeof(value), "{\"drop\":%s,\"n\":%" PRIu64 "}",
                                   P.drop[part][off] ? "true" : "false", off);
                src.sink.ops->deliver(src.sink.ctx,
                                      record_at(part, off, k < 0 ? NULL : key, value, (size_t)len,
                                                weir_clock_wall_ms() - 1000));
                n++;
            }
        }
    }
    if (n)
        read_done();
}

static bool prop_finished(void)
{
    for (int part = 0; part < PROP_PARTS; part++)
        if (!src.has_at[part] || src.at[part] != PROP_RECORDS)
            return false;
    return active_calls() == 0;
}

static void prop_run(unsigned seed, size_t *max_inflight_seen)
{
    memset(&P, 0, sizeof(P));
    P.rng = 0x9e3779b97f4a7c15ull * seed + 1;
    P.mode = (enum prop_mode)(seed % PROP_MODES);
    for (int part = 0; part < PROP_PARTS; part++) {
        for (int key = 0; key <= PROP_KEYS; key++)
            P.last_ok[part][key] = -1;
        for (int off = 0; off < PROP_RECORDS; off++) {
            uint64_t r = rnd() % 100;
            P.key[part][off] = r < 5 ? -1 : (int)(rnd() % PROP_KEYS);
            P.drop[part][off] = rnd() % 100 < 10;
        }
    }
    free(src.ckpts);
    memset(&src, 0, sizeof(src));
    free_calls();
    mcfg.batch_size = 1 + (int)(seed % 7);
    mcfg.stream.maximum_retry_attempts = -1; /* without a destination: nothing is dropped */
    mcfg.stream.bisect_batch_on_function_error = P.mode == PROP_BISECT;
    mcfg.stream.parallelization_factor = PROP_PF;
    mcfg.report_batch_item_failures = P.mode == PROP_PARTIAL;
    with_filter("{\"value\":{\"drop\":[false]}}");
    checkpoint_hook = prop_on_checkpoint;
    invoke_hook = prop_on_invoke;
    start();
    int iter;
    for (iter = 0; iter < 5000 && !prop_finished(); iter++) {
        prop_read();
        size_t open = n_calls;
        for (size_t i = 0; i < open; i++)
            if (calls[i]->active)
                prop_answer(i);
        step_ms(100);
    }
    checkpoint_hook = NULL;
    invoke_hook = NULL;
    if (!prop_finished())
        fail_msg("seed %u (mode %d): not finished after %d rounds; checkpoints %" PRIu64 "/%" PRIu64
                 "/%" PRIu64 " of %d, %zu invocations in flight",
                 seed, P.mode, iter, src.at[0], src.at[1], src.at[2], PROP_RECORDS, active_calls());
    if (P.order || P.unsound || P.filtered_invoked || P.key_overlap || P.inflight_over)
        fail_msg("seed %u (mode %d): order %zu, unsound checkpoints %zu, filtered invoked %zu, "
                 "key in two batches %zu, over PF %zu; first: %s",
                 seed, P.mode, P.order, P.unsound, P.filtered_invoked, P.key_overlap,
                 P.inflight_over, P.first);
    for (int part = 0; part < PROP_PARTS; part++)
        for (int off = 0; off < PROP_RECORDS; off++)
            if (!P.drop[part][off] && !P.succeeded[part][off])
                fail_msg("seed %u: offset %d of partition %d never succeeded", seed, off, part);
    if (src.backwards)
        fail_msg("seed %u: a checkpoint moved back", seed);
    if (P.max_part_inflight > *max_inflight_seen)
        *max_inflight_seen = P.max_part_inflight;
    stop_all();
}

static void per_key_order_holds_under_random_failures_with_parallelization(void **state)
{
    enum weir_log_level level = weir_log_get_level();
    weir_log_set_level(WEIR_LOG_ERROR); /* thousands of retries: their warnings are expected */
    size_t max_inflight_seen = 0;
    for (unsigned seed = 1; seed <= PROP_SEEDS; seed++)
        prop_run(seed, &max_inflight_seen);
    weir_log_set_level(level);
    /* The lanes did run side by side: a partition had several batches in flight at once. */
    assert_true(max_inflight_seen > 1);
}

/* ==== positions =============================================================================== */

static void positions_checkpoint_is_the_lowest_position_not_done(void **state)
{
    struct weir_positions p;
    uint64_t below = 0;
    weir_positions_init(&p);
    for (uint64_t s = 10; s < 15; s++)
        assert_true(weir_positions_add(&p, 3, s));
    assert_int_equal(weir_positions_held(&p, 3), 5);
    assert_int_equal(weir_positions_held(&p, 4), 0);
    /* Done out of order: nothing moves until the lowest is done. */
    assert_false(weir_positions_done(&p, 3, 12, &below));
    assert_false(weir_positions_done(&p, 3, 14, &below));
    assert_true(weir_positions_done(&p, 3, 10, &below));
    assert_int_equal(below, 11);
    assert_true(weir_positions_done(&p, 3, 11, &below));
    assert_int_equal(below, 13); /* past 12, done before */
    assert_int_equal(weir_positions_held(&p, 3), 2);
    assert_true(weir_positions_done(&p, 3, 13, &below));
    assert_int_equal(below, 15); /* all done: the last read, plus one */
    assert_int_equal(weir_positions_held(&p, 3), 0);
    /* Gaps (a compacted topic, transaction markers): the checkpoint is the next one held. */
    assert_true(weir_positions_add(&p, 3, 20));
    assert_true(weir_positions_add(&p, 3, 25));
    assert_true(weir_positions_add(&p, 3, 31));
    assert_true(weir_positions_done(&p, 3, 20, &below));
    assert_int_equal(below, 25);
    assert_false(weir_positions_done(&p, 3, 31, &below));
    assert_true(weir_positions_done(&p, 3, 25, &below));
    assert_int_equal(below, 32);
    weir_positions_deinit(&p);
}

static void positions_ignore_what_they_do_not_hold(void **state)
{
    struct weir_positions p;
    uint64_t below = 77;
    weir_positions_init(&p);
    assert_false(weir_positions_done(&p, 1, 0, &below)); /* no such partition */
    weir_positions_add(&p, 1, 5);
    weir_positions_add(&p, 1, 7);
    assert_false(weir_positions_done(&p, 1, 6, &below)); /* not read */
    assert_false(weir_positions_done(&p, 1, 4, &below));
    assert_false(weir_positions_done(&p, 1, 8, &below));
    assert_false(weir_positions_done(&p, 2, 5, &below)); /* another partition */
    assert_true(weir_positions_done(&p, 1, 5, &below));
    assert_int_equal(below, 7);
    assert_false(weir_positions_done(&p, 1, 5, &below)); /* done twice */
    assert_int_equal(weir_positions_held(&p, 1), 1);
    weir_positions_deinit(&p);
}

static void positions_forget_a_partition(void **state)
{
    struct weir_positions p;
    uint64_t below = 0;
    weir_positions_init(&p);
    for (uint64_t s = 0; s < 4; s++) {
        weir_positions_add(&p, 0, s);
        weir_positions_add(&p, 1, s);
    }
    weir_positions_forget(&p, 0);
    assert_int_equal(weir_positions_held(&p, 0), 0);
    assert_int_equal(weir_positions_held(&p, 1), 4);
    /* Batches of it still in flight finish: what they settle is ignored. */
    assert_false(weir_positions_done(&p, 0, 0, &below));
    assert_false(weir_positions_done(&p, 0, 1, &below));
    /* The other partition is untouched. */
    assert_true(weir_positions_done(&p, 1, 0, &below));
    assert_int_equal(below, 1);
    /* Assigned again later, from where it was committed. */
    assert_true(weir_positions_add(&p, 0, 2));
    assert_true(weir_positions_done(&p, 0, 2, &below));
    assert_int_equal(below, 3);
    weir_positions_forget(&p, 9); /* never held: nothing happens */
    weir_positions_deinit(&p);
}

static void positions_start_over_when_the_source_goes_back(void **state)
{
    struct weir_positions p;
    uint64_t below = 0;
    weir_positions_init(&p);
    for (uint64_t s = 10; s < 13; s++)
        weir_positions_add(&p, 0, s);
    assert_true(weir_positions_done(&p, 0, 10, &below));
    assert_int_equal(below, 11);
    /* The source reads 11 again (a rebalance gave it back from its commit). */
    assert_false(weir_positions_add(&p, 0, 11));
    assert_int_equal(weir_positions_held(&p, 0), 1);
    assert_true(weir_positions_add(&p, 0, 12));
    /* The earlier 12, done now, is the same record: its position is held again. */
    assert_false(weir_positions_done(&p, 0, 12, &below));
    assert_true(weir_positions_done(&p, 0, 11, &below));
    assert_int_equal(below, 13);
    /* The same position twice is going back too. */
    weir_positions_add(&p, 0, 13);
    assert_false(weir_positions_add(&p, 0, 13));
    assert_int_equal(weir_positions_held(&p, 0), 1);
    weir_positions_deinit(&p);
}

/* A model of the rule against the ring: many positions with gaps, a window of them outstanding
 * (so the ring grows and wraps), done in random order. */
static void positions_match_a_model_through_growth_and_wraparound(void **state)
{
    enum { N = 5000, WINDOW = 300 };
    static uint64_t seqs[N];
    static bool done[N];
    struct weir_positions p;
    weir_positions_init(&p);
    uint64_t rng = 12345, seq = 1000, told = 0;
    size_t added = 0, low = 0, n_done = 0, moves = 0;
    memset(done, 0, sizeof(done));
    while (n_done < N) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        if (added < N && (added - low < WINDOW / 3 || (rng % 3 == 0 && added - low < WINDOW))) {
            seq += 1 + rng % 3;
            seqs[added] = seq;
            assert_true(weir_positions_add(&p, 7, seq));
            added++;
            continue;
        }
        size_t pending = 0;
        for (size_t i = low; i < added; i++)
            pending += !done[i];
        if (!pending)
            continue;
        size_t pick = (size_t)(rng >> 8) % pending, i = low;
        for (;; i++)
            if (!done[i] && pick-- == 0)
                break;
        done[i] = true;
        n_done++;
        size_t new_low = low;
        while (new_low < added && done[new_low])
            new_low++;
        uint64_t want = new_low < added ? seqs[new_low] : seqs[added - 1] + 1;
        uint64_t below = 0;
        bool moved = weir_positions_done(&p, 7, seqs[i], &below);
        if (new_low != low) {
            assert_true(moved);
            assert_int_equal(below, want);
            assert_true(below > told);
            told = below;
            moves++;
        } else {
            assert_false(moved);
        }
        low = new_low;
        assert_int_equal(weir_positions_held(&p, 7), added - low);
    }
    assert_int_equal(told, seqs[N - 1] + 1);
    assert_true(moves > 100);
    weir_positions_deinit(&p);
}

/* ==== parallelization: partitions spread over lanes, paused by the partition ===================
 */

static void a_failing_key_does_not_block_the_other_keys_of_its_partition(void **state)
{
    mcfg.stream.parallelization_factor = 10;
    mcfg.batch_size = 10;
    start();
    /* Two keys that land in different lanes of the partition. */
    char a[16] = "key-0", b[16];
    for (int i = 1;; i++) {
        snprintf(b, sizeof(b), "key-%d", i);
        if (weir_lane_of(a, strlen(a)) % 10 != weir_lane_of(b, strlen(b)) % 10)
            break;
    }
    int64_t ts = weir_clock_wall_ms() - 1000;
    src.sink.ops->deliver(src.sink.ctx, record_at(0, 0, a, "{}", 2, ts));
    src.sink.ops->deliver(src.sink.ctx, record_at(0, 1, b, "{}", 2, ts));
    src.sink.ops->deliver(src.sink.ctx, record_at(0, 2, a, "{}", 2, ts));
    src.sink.ops->deliver(src.sink.ctx, record_at(0, 3, b, "{}", 2, ts));
    read_done();
    /* One batch per key's lane, side by side. */
    assert_int_equal(n_calls, 2);
    size_t ia = calls[0]->offs[0] == 0 ? 0 : 1;
    assert_string_equal(offs_of(ia), "0,2");
    assert_string_equal(offs_of(1 - ia), "1,3");
    fn_error(ia);
    ok(1 - ia);
    /* b's records are done, but a's 0 is not: the checkpoint stays below it. */
    assert_int_equal(src.n_ckpts, 0);
    src.sink.ops->deliver(src.sink.ctx, record_at(0, 4, b, "{}", 2, ts));
    read_done();
    assert_int_equal(n_calls, 3); /* b goes on while a retries */
    assert_string_equal(offs_of(2), "4");
    ok(2);
    assert_int_equal(src.n_ckpts, 0);
    step_until_calls(4);
    assert_string_equal(offs_of(3), "0,2");
    ok(3);
    assert_at(0, 5);
}

static void a_partition_is_paused_when_it_holds_enough_and_resumed_after(void **state)
{
    mcfg.stream.partition_held_min = 1; /* two batches per lane, as the test counts */
    mcfg.batch_size = 2;
    start();
    /* One lane: a batch in flight and one waiting, then the partition is paused. */
    assert_int_equal(room(0), 4);
    deliver(0, 0, 2);
    assert_false(src.paused[0]);
    deliver(0, 2, 2);
    assert_true(src.paused[0]);
    assert_int_equal(room(0), 0);
    /* The others read on. */
    assert_int_equal(room(1), 4);
    assert_false(src.paused[1]);
    read_done();
    assert_int_equal(n_calls, 1);
    ok(0);
    assert_false(src.paused[0]);
    assert_int_equal(room(0), 2);
}

static void a_partition_stays_paused_while_a_blocked_lane_holds_its_checkpoint(void **state)
{
    mcfg.stream.partition_held_min = 1; /* two batches per lane, as the test counts */
    mcfg.batch_size = 1;
    mcfg.stream.parallelization_factor = 2;
    start();
    char a[16] = "key-0", b[16];
    for (int i = 1;; i++) {
        snprintf(b, sizeof(b), "key-%d", i);
        if (weir_lane_of(a, strlen(a)) % 2 != weir_lane_of(b, strlen(b)) % 2)
            break;
    }
    int64_t ts = weir_clock_wall_ms() - 1000;
    /* a's first record fails and holds the checkpoint; b runs ahead up to the partition's bound
     * (two batches per lane, two lanes: 4 records held). */
    src.sink.ops->deliver(src.sink.ctx, record_at(0, 0, a, "{}", 2, ts));
    read_done();
    fn_error(0);
    uint64_t off = 1;
    for (size_t i = 1; off < 10 && !src.paused[0]; off++) {
        src.sink.ops->deliver(src.sink.ctx, record_at(0, off, b, "{}", 2, ts));
        read_done();
        while (i < n_calls)
            ok(i++);
    }
    assert_true(src.paused[0]);
    assert_int_equal(off, 4); /* 0..3 held */
    assert_int_equal(src.n_ckpts, 0);
    /* a succeeds: the checkpoint passes everything, and the partition reads again. */
    for (int i = 0; i < 600 && src.at[0] != 4; i++) {
        step_ms(100);
        for (size_t k = 0; k < n_calls; k++)
            if (calls[k]->active)
                ok(k);
    }
    assert_at(0, 4);
    assert_false(src.paused[0]);
}

/* ==== a partition revoked ===================================================================== */

static void a_revoked_partition_is_dropped_and_its_late_checkpoints_ignored(void **state)
{
    mcfg.stream.partition_held_min = 1; /* two batches per lane, as the test counts */
    mcfg.batch_size = 2;
    mcfg.maximum_batching_window_in_seconds = 5;
    start();
    deliver(0, 0, 2); /* full: in flight */
    deliver(0, 2, 2); /* full: waits behind it */
    deliver(0, 4, 1); /* open, in the window */
    deliver(1, 0, 2); /* another partition: in flight */
    assert_int_equal(n_calls, 2);
    size_t p0 = calls[0]->part == 0 ? 0 : 1;
    assert_true(src.paused[0]);
    src.sink.ops->forget(src.sink.ctx, 0);
    src.paused[0] = false; /* the source forgets its pause of a partition it no longer has */
    /* What was not sent of it is dropped, not settled, never invoked. */
    size_t settled = 0;
    for (int v = 0; v < WEIR_VERDICT_COUNT; v++)
        settled += src.settled[v];
    assert_int_equal(settled, 0);
    /* The batch in flight finishes; its checkpoint is not the source's to store any more. */
    ok(p0);
    assert_false(src.has_at[0]);
    step_ms(10000);
    assert_int_equal(n_calls, 2);
    ok(1 - p0);
    assert_at(1, 2);
    assert_int_equal(weir_mapping_stats(m)->bytes, 0);
    /* Assigned back: read again from its commit, and checkpointed as new. */
    assert_int_equal(room(0), 4);
    deliver(0, 0, 3);
    read_done();
    assert_int_equal(n_calls, 3);
    assert_string_equal(offs_of(2), "0,1");
    step_ms(5000); /* [2] closes with its window and waits behind [0,1] */
    assert_int_equal(n_calls, 3);
    ok(2);
    assert_at(0, 2);
    assert_int_equal(n_calls, 4);
    assert_string_equal(offs_of(3), "2");
    ok(3);
    assert_at(0, 3);
}

static void a_partition_revoked_while_its_batch_retries_checkpoints_nothing(void **state)
{
    start();
    deliver(0, 0, 3);
    read_done();
    fn_error(0);
    /* Revoked while waiting to retry: the batch comes back, not done, and is not tried again by
     * a consumer that no longer owns it (the new owner reads it from the checkpoint). */
    src.sink.ops->forget(src.sink.ctx, 0);
    step_ms(30000);
    assert_int_equal(n_calls, 1);
    assert_int_equal(src.n_ckpts, 0);
    assert_int_equal(weir_mapping_stats(m)->inflight, 0);
}

/* ==== shutdown ================================================================================ */

static void stopping_while_a_batch_waits_to_retry_gives_it_back_not_done(void **state)
{
    mcfg.batch_size = 3;
    start();
    deliver(0, 0, 4); /* [0,1,2] goes, [3] waits */
    read_done();
    fn_error(0);
    /* Stopping: [3] was never sent and goes back; the failing batch comes back too, not done,
     * without waiting for the shutdown bound. */
    weir_mapping_stop(m, on_stopped, NULL);
    assert_int_equal(src.settled[WEIR_VERDICT_RETRY] + src.settled[WEIR_VERDICT_RELEASE], 4);
    assert_int_equal(src.settled[WEIR_VERDICT_DONE], 0);
    assert_false(src.has_at[0]);
    assert_true(src.stop_called);
    src.stop_done(src.stop_arg);
    spin();
    assert_int_equal(stopped, 1);
    /* Nothing more is invoked. */
    step_ms(60000);
    assert_int_equal(n_calls, 1);
    assert_false(src.has_at[0]);
}

static void a_batch_failing_while_the_mapping_stops_comes_back_instead_of_retrying(void **state)
{
    start();
    deliver(0, 0, 3);
    deliver(1, 0, 3);
    read_done();
    assert_int_equal(n_calls, 2);
    weir_mapping_stop(m, on_stopped, NULL);
    assert_false(src.stop_called); /* both in flight: the mapping waits */
    size_t p0 = calls[0]->part == 0 ? 0 : 1;
    fn_error(p0);
    assert_int_equal(src.settled[WEIR_VERDICT_RETRY] + src.settled[WEIR_VERDICT_RELEASE], 3);
    assert_false(src.has_at[0]);
    /* The other finishes as it would: done, checkpointed. */
    ok(1 - p0);
    assert_at(1, 3);
    assert_true(src.stop_called);
    step_ms(60000);
    assert_int_equal(n_calls, 2);
}

static void a_batch_throttled_while_the_mapping_stops_comes_back(void **state)
{
    start();
    deliver(0, 0, 3);
    read_done();
    weir_mapping_stop(m, on_stopped, NULL);
    throttle(0);
    spin();
    assert_true(src.stop_called);
    assert_int_equal(src.settled[WEIR_VERDICT_DONE], 0);
    step_ms(60000);
    assert_int_equal(n_calls, 1);
}

static void stopping_while_a_batch_waits_out_a_throttle_gives_it_back_at_once(void **state)
{
    start();
    deliver(0, 0, 3);
    read_done();
    throttle(0); /* backing off before it tries again */
    weir_mapping_stop(m, on_stopped, NULL);
    /* As a batch waiting to retry after an error: back at once, not invoked again. */
    assert_true(src.stop_called);
    assert_int_equal(src.settled[WEIR_VERDICT_DONE], 0);
    step_ms(60000);
    assert_int_equal(n_calls, 1);
}

static void stopping_after_a_partial_response_checkpoints_what_is_done(void **state)
{
    start();
    deliver(0, 0, 6);
    read_done();
    partial(0, 3); /* 0..2 done; 3.. waits to be retried */
    weir_mapping_stop(m, on_stopped, NULL);
    assert_int_equal(src.settled[WEIR_VERDICT_DONE], 3);
    assert_int_equal(src.settled[WEIR_VERDICT_RETRY] + src.settled[WEIR_VERDICT_RELEASE], 3);
    assert_at(0, 3);
    assert_true(src.stop_called);
}

static void a_batch_succeeding_while_the_mapping_stops_is_checkpointed(void **state)
{
    start();
    deliver(0, 0, 3);
    read_done();
    weir_mapping_stop(m, on_stopped, NULL);
    assert_false(src.stop_called);
    ok(0);
    assert_at(0, 3);
    assert_true(src.stop_called);
}

static void shutdown_during_an_invocation_aborts_it_and_keeps_the_checkpoint(void **state)
{
    start();
    deliver(0, 0, 3);
    read_done();
    weir_mapping_stop(m, on_stopped, NULL);
    assert_false(src.stop_called);
    weir_disp_abort(fn);
    assert_int_equal(cancelled, 1);
    assert_int_equal(src.settled[WEIR_VERDICT_DONE], 0);
    assert_int_equal(src.settled[WEIR_VERDICT_RETRY] + src.settled[WEIR_VERDICT_RELEASE], 3);
    assert_int_equal(src.n_ckpts, 0);
    assert_true(src.stop_called);
    step_ms(60000);
    assert_int_equal(n_calls, 1);
}

static void records_of_an_aborted_first_invocation_come_back_as_retry(void **state)
{
    start();
    deliver(0, 0, 3);
    read_done();
    weir_mapping_stop(m, on_stopped, NULL);
    weir_disp_abort(fn);
    /* dispatcher.h: records of an aborted invocation are RETRY, the function may have run them;
     * RELEASE is for records never sent. */
    assert_int_equal(src.settled[WEIR_VERDICT_RETRY], 3);
    assert_int_equal(src.settled[WEIR_VERDICT_RELEASE], 0);
}

static void aborting_the_retry_after_a_partial_response_checkpoints_what_is_done(void **state)
{
    start();
    deliver(0, 0, 6);
    read_done();
    partial(0, 3);
    step_until_calls(2); /* 3,4,5 again, in flight */
    weir_mapping_stop(m, on_stopped, NULL);
    weir_disp_abort(fn);
    assert_int_equal(src.settled[WEIR_VERDICT_DONE], 3);
    assert_int_equal(src.settled[WEIR_VERDICT_RETRY], 3);
    assert_at(0, 3);
    assert_true(src.stop_called);
}

static void shutdown_while_a_failure_record_is_written_invokes_nothing_more(void **state)
{
    mcfg.stream.maximum_record_age_in_seconds = 60;
    with_destination();
    start();
    int64_t now = weir_clock_wall_ms();
    deliver_at(0, 0, now - 61000); /* too old: to the destination at once */
    deliver_at(0, 1, now - 1000);
    read_done();
    /* The write is out on the destination's thread: stop, and abort at the bound (the longest
     * function timeout). weir_disp_abort: every batch comes back; nothing is invoked after it. */
    weir_mapping_stop(m, on_stopped, NULL);
    weir_disp_abort(fn);
    RUN_UNTIL(src.stop_called || n_calls > 0);
    spin();
    /* The batch came back without invoking record 1 after the abort. */
    assert_int_equal(n_calls, 0);
    assert_true(src.stop_called);
    assert_int_equal(src.settled[WEIR_VERDICT_DONE] + src.settled[WEIR_VERDICT_RETRY] +
                         src.settled[WEIR_VERDICT_RELEASE],
                     2);
    /* At most the record given up is passed; record 1 is not. */
    assert_true(src.at[0] <= 1);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(a_good_batch_is_invoked_once_and_checkpointed_past_its_last_record),
        T(partitions_are_batched_and_checkpointed_apart),
        T(filtered_out_records_move_the_checkpoint_too),
        T(function_errors_are_retried_max_retries_times_then_given_up),
        T(zero_retries_gives_up_after_the_first_error),
        T(a_timeout_is_a_function_error_and_spends_a_retry),
        T(infinite_retries_with_a_destination_are_capped_at_ten),
        T(infinite_retries_without_a_destination_never_give_up),
        T(throttles_do_not_spend_the_retry_budget),
        T(throttled_attempts_are_not_counted_as_invocations),
        T(records_older_than_the_maximum_age_are_given_up_without_an_invocation),
        T(records_throttled_until_they_age_out_are_given_up),
        T(records_that_age_out_between_retries_are_given_up_with_the_last_error),
        T(records_too_old_with_no_destination_are_dropped_and_passed),
        T(a_batch_given_up_at_once_comes_back_from_the_loop),
        T(bisect_halves_down_to_the_poison_record),
        T(bisect_invokes_the_older_half_first),
        T(a_partial_response_resumes_from_the_reported_record),
        T(a_partial_response_moves_the_checkpoint_to_the_reported_record),
        T(the_lowest_reported_record_wins),
        T(a_partial_response_counts_as_a_retry),
        T(a_partial_response_naming_what_is_not_in_the_batch_fails_it_whole),
        T(a_bad_partial_response_spends_a_retry),
        T(kinesis_records_are_named_by_their_sequence_number),
        T(a_kinesis_partial_response_retries_from_the_sequence_number),
        T(a_partial_response_naming_the_first_record_retries_the_whole_batch),
        T(a_failing_destination_is_tried_again_and_the_partition_waits),
        T(a_record_too_large_for_any_event_is_given_up_and_the_others_delivered),
        T(per_key_order_holds_under_random_failures_with_parallelization),
        T(positions_checkpoint_is_the_lowest_position_not_done),
        T(positions_ignore_what_they_do_not_hold),
        T(positions_forget_a_partition),
        T(positions_start_over_when_the_source_goes_back),
        T(positions_match_a_model_through_growth_and_wraparound),
        T(a_failing_key_does_not_block_the_other_keys_of_its_partition),
        T(a_partition_is_paused_when_it_holds_enough_and_resumed_after),
        T(a_partition_stays_paused_while_a_blocked_lane_holds_its_checkpoint),
        T(a_revoked_partition_is_dropped_and_its_late_checkpoints_ignored),
        T(a_partition_revoked_while_its_batch_retries_checkpoints_nothing),
        T(stopping_while_a_batch_waits_to_retry_gives_it_back_not_done),
        T(a_batch_failing_while_the_mapping_stops_comes_back_instead_of_retrying),
        T(a_batch_throttled_while_the_mapping_stops_comes_back),
        T(stopping_while_a_batch_waits_out_a_throttle_gives_it_back_at_once),
        T(stopping_after_a_partial_response_checkpoints_what_is_done),
        T(a_batch_succeeding_while_the_mapping_stops_is_checkpointed),
        T(shutdown_during_an_invocation_aborts_it_and_keeps_the_checkpoint),
        T(records_of_an_aborted_first_invocation_come_back_as_retry),
        T(aborting_the_retry_after_a_partial_response_checkpoints_what_is_done),
        T(shutdown_while_a_failure_record_is_written_invokes_nothing_more),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
