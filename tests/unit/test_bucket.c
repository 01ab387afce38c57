/* The bucket source (pollers/bucket.c) on a real directory under TMPDIR with real inotify and
 * a real state store, through a stand-in sink; its name rules; the S3 event format
 * (mapping/format_s3.c) against reference section 4.5; the string map it keeps objects in
 * (core/strmap.c). Files a test makes before a start get an old modification time, so a scan
 * announces them without waiting out the settle time. */
#define _GNU_SOURCE /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/mem.h"
#include "core/strmap.h"
#include "model/event.h"
#include "pollers/bucket.h"
#include "pollers/poller.h"
#include "store/store.h"

extern const struct weir_source weir_source_bucket;

/* ---- names -------------------------------------------------------------------------------- */

static void temporary_names_are_what_editors_and_uploaders_write_first(void **state)
{
    assert_true(weir_bucket_is_temporary(".hidden.jpg"));
    assert_true(weir_bucket_is_temporary(".cat.jpg.swp"));
    assert_true(weir_bucket_is_temporary("cat.jpg.tmp"));
    assert_true(weir_bucket_is_temporary("cat.jpg.part"));
    assert_true(weir_bucket_is_temporary("cat.jpg.crdownload"));
    assert_true(weir_bucket_is_temporary("cat.jpg~"));
    assert_false(weir_bucket_is_temporary("cat.jpg"));
    assert_false(weir_bucket_is_temporary("tmp"));
    assert_false(weir_bucket_is_temporary("part.jpg"));
}

static void keys_must_be_utf8_without_control_characters(void **state)
{
    const char *why = NULL;
    assert_true(weir_bucket_key_ok("photos/red flower.jpg", &why));
    assert_true(weir_bucket_key_ok("caf\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x98\x80.jpg", &why));
    assert_false(weir_bucket_key_ok("bad\xff.jpg", &why));
    assert_non_null(strstr(why, "not UTF-8"));
    assert_false(weir_bucket_key_ok("overlong\xc0\xaf", &why));
    assert_false(weir_bucket_key_ok("surrogate\xed\xa0\x80", &why));
    assert_false(weir_bucket_key_ok("cut\xe2\x82", &why));
    assert_false(weir_bucket_key_ok("tab\tname", &why));
    assert_non_null(strstr(why, "control"));
    char long_key[1030];
    memset(long_key, 'k', 1025);
    long_key[1025] = '\0';
    assert_false(weir_bucket_key_ok(long_key, &why));
    long_key[1024] = '\0';
    assert_true(weir_bucket_key_ok(long_key, &why));
}

static void event_types_match_with_wildcards(void **state)
{
    char *created[] = {"s3:ObjectCreated:*"};
    char *put[] = {"s3:ObjectCreated:Put"};
    char *both[] = {"s3:ObjectCreated:*", "s3:ObjectRemoved:Delete"};
    assert_true(weir_bucket_event_wanted(created, 1, WEIR_S3_CREATED));
    assert_false(weir_bucket_event_wanted(created, 1, WEIR_S3_REMOVED));
    assert_true(weir_bucket_event_wanted(put, 1, WEIR_S3_CREATED));
    assert_true(weir_bucket_event_wanted(both, 2, WEIR_S3_REMOVED));
    /* None configured: creations only. */
    assert_true(weir_bucket_event_wanted(NULL, 0, WEIR_S3_CREATED));
    assert_false(weir_bucket_event_wanted(NULL, 0, WEIR_S3_REMOVED));
    assert_true(weir_bucket_event_type_known("s3:ObjectRemoved:*"));
    assert_true(weir_bucket_event_type_known("s3:ObjectCreated:CompleteMultipartUpload"));
    assert_false(weir_bucket_event_type_known("s3:ObjectRestore:*"));
    assert_false(weir_bucket_event_type_known("ObjectCreated:*"));
}

/* ---- the S3 event ------------------------------------------------------------------------- */

static json_t *encode(const struct weir_record *r)
{
    const struct weir_event_ctx ctx = {.source_arn = "arn:aws:s3:::photos",
                                       .region = "eu-west-1",
                                       .mapping_name = "thumbs-on-upload"};
    const struct weir_encoder *enc = weir_format_s3.encoder;
    struct weir_buf b;
    weir_buf_init(&b);
    enc->open(&b, &ctx, NULL);
    enc->append(&b, &ctx, r, 1);
    enc->close(&b, &ctx);
    json_error_t jerr;
    json_t *j = json_loadb(b.data, b.len, 0, &jerr);
    if (!j)
        fail_msg("not JSON (%s): %s", jerr.text, b.data);
    weir_buf_deinit(&b);
    return j;
}

static const char *str(json_t *j, const char *path)
{
    char copy[256];
    snprintf(copy, sizeof(copy), "%s", path);
    json_t *v = j;
    for (char *part = strtok(copy, "."); part && v; part = strtok(NULL, "."))
        v = json_object_get(v, part);
    return json_string_value(v);
}

static void s3_event_has_the_shape_of_section_4_5(void **state)
{
    struct weir_record r = {
        .id = "holiday/red flower+1.jpg",
        .event_name = "ObjectCreated:Put",
        .etag = "5eb63bbbe01eeed093cb22bb8f5acdc3",
        .object_size = 20480,
        .seq = 0x67C6D1B61D3F4AULL,
        .sent_ms = 1741083062118,
    };
    json_t *ev = encode(&r);
    json_t *records = json_object_get(ev, "Records");
    assert_int_equal(json_array_size(records), 1);
    json_t *rec = json_array_get(records, 0);
    assert_string_equal(str(rec, "eventVersion"), "2.1");
    assert_string_equal(str(rec, "eventSource"), "aws:s3");
    assert_string_equal(str(rec, "awsRegion"), "eu-west-1");
    assert_string_equal(str(rec, "eventTime"), "2025-03-04T10:11:02.118Z");
    assert_string_equal(str(rec, "eventName"), "ObjectCreated:Put");
    assert_non_null(str(rec, "userIdentity.principalId"));
    assert_non_null(str(rec, "requestParameters.sourceIPAddress"));
    assert_int_equal(strlen(str(rec, "responseElements.x-amz-request-id")), 16);
    assert_non_null(str(rec, "responseElements.x-amz-id-2"));
    assert_string_equal(str(rec, "s3.s3SchemaVersion"), "1.0");
    assert_string_equal(str(rec, "s3.configurationId"), "thumbs-on-upload");
    assert_string_equal(str(rec, "s3.bucket.name"), "photos");
    assert_string_equal(str(rec, "s3.bucket.arn"), "arn:aws:s3:::photos");
    assert_non_null(str(rec, "s3.bucket.ownerIdentity.principalId"));
    /* Form-URL-encoded: a space is +, a + is %2B, / stays. */
    assert_string_equal(str(rec, "s3.object.key"), "holiday/red+flower%2B1.jpg");
    json_t *obj = json_object_get(json_object_get(rec, "s3"), "object");
    assert_int_equal(json_integer_value(json_object_get(obj, "size")), 20480);
    assert_string_equal(str(obj, "eTag"), "5eb63bbbe01eeed093cb22bb8f5acdc3");
    assert_string_equal(str(obj, "sequencer"), "0067C6D1B61D3F4A");
    json_decref(ev);
}

static void s3_delete_carries_key_and_sequencer_only(void **state)
{
    struct weir_record r = {
        .id = "caf\xc3\xa9.jpg",
        .event_name = "ObjectRemoved:Delete",
        .seq = 2,
        .sent_ms = 1741083062118,
    };
    json_t *ev = encode(&r);
    json_t *obj = json_object_get(
        json_object_get(json_array_get(json_object_get(ev, "Records"), 0), "s3"), "object");
    assert_string_equal(str(obj, "key"), "caf%C3%A9.jpg");
    assert_string_equal(str(obj, "sequencer"), "0000000000000002");
    assert_null(json_object_get(obj, "size"));
    assert_null(json_object_get(obj, "eTag"));
    json_decref(ev);
}

/* ---- the string map ----------------------------------------------------------------------- */

static void strmap_puts_gets_and_deletes_through_growth(void **state)
{
    struct weir_strmap m;
    weir_strmap_init(&m);
    char *keys[3000];
    for (int i = 0; i < 3000; i++) {
        char k[32];
        snprintf(k, sizeof(k), "dir/%d.jpg", i);
        keys[i] = weir_strdup(k);
        weir_strmap_put(&m, keys[i], keys[i]);
    }
    assert_int_equal(m.n, 3000);
    for (int i = 0; i < 3000; i += 2)
        assert_ptr_equal(weir_strmap_del(&m, keys[i]), keys[i]);
    assert_int_equal(m.n, 1500);
    for (int i = 0; i < 3000; i++) {
        char k[32];
        snprintf(k, sizeof(k), "dir/%d.jpg", i);
        if (i % 2)
            assert_ptr_equal(weir_strmap_get(&m, k), keys[i]);
        else
            assert_null(weir_strmap_get(&m, k));
    }
    assert_null(weir_strmap_del(&m, "absent"));
    weir_strmap_deinit(&m);
    for (int i = 0; i < 3000; i++)
        free(keys[i]);
}

/* ---- the poller --------------------------------------------------------------------------- */

#define GOT_MAX 256

struct rig {
    struct event_base *base;
    char dir[256], bucket[300], uri[320], state_dir[300];
    struct weir_store *store;
    struct weir_bucket_settings bs;
    struct weir_mapping_cfg mc;
    struct weir_poller *p;
    struct weir_record *got[GOT_MAX];
    size_t n_got;
};

static struct rig g;

static size_t sink_room(void *ctx, uint32_t lane)
{
    return 1000;
}

static void sink_deliver(void *ctx, struct weir_record *r)
{
    assert_true(g.n_got < GOT_MAX);
    g.got[g.n_got++] = r;
}

static void sink_read_done(void *ctx)
{
}

static const struct weir_sink_ops sink_ops = {
    .room = sink_room, .deliver = sink_deliver, .read_done = sink_read_done};

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void poller_start(void)
{
    struct weir_err err = {{0}};
    if (weir_store_open(g.state_dir, g.base, &g.store, &err) != WEIR_OK)
        fail_msg("store: %s", err.msg);
    struct weir_poller_args args = {
        .mc = &g.mc,
        .region = "us-east-1",
        .component = "mapping/photos",
        .base = g.base,
        .sink = {.ops = &sink_ops, .ctx = &g},
        .format = &weir_format_s3,
        .store = g.store,
    };
    g.p = weir_source_bucket.ops->new (&args, &err);
    if (!g.p)
        fail_msg("poller: %s", err.msg);
    assert_int_equal(weir_source_bucket.ops->start(g.p), WEIR_OK);
}

static int stopped;

static void on_stopped(void *arg)
{
    stopped = 1;
}

static void run_for_ms(int ms)
{
    int64_t end = weir_clock_mono_ms() + ms;
    while (weir_clock_mono_ms() < end) {
        event_base_loop(g.base, EVLOOP_NONBLOCK);
        usleep(1000);
    }
}

/* Runs the loop until n records came (or a few seconds passed). */
static void wait_got(size_t n)
{
    int64_t end = weir_clock_mono_ms() + 10000;
    while (g.n_got < n && weir_clock_mono_ms() < end) {
        event_base_loop(g.base, EVLOOP_NONBLOCK);
        usleep(1000);
    }
    if (g.n_got < n)
        fail_msg("%zu records, want %zu", g.n_got, n);
}

/* Settles every record received with verdict v, and forgets them. */
static void settle_all(enum weir_verdict v)
{
    struct weir_batch *b = weir_batch_new(0);
    for (size_t i = 0; i < g.n_got; i++) {
        g.got[i]->verdict = v;
        weir_batch_take(b, g.got[i]);
    }
    weir_source_bucket.ops->settle(g.p, b);
    weir_batch_free(b);
    g.n_got = 0;
}

static void poller_stop(void)
{
    stopped = 0;
    weir_source_bucket.ops->stop(g.p, on_stopped, NULL);
    int64_t end = weir_clock_mono_ms() + 10000;
    while (!stopped && weir_clock_mono_ms() < end) {
        event_base_loop(g.base, EVLOOP_NONBLOCK);
        usleep(1000);
    }
    assert_true(stopped);
    weir_source_bucket.ops->free(g.p);
    g.p = NULL;
    weir_store_free(g.store);
    g.store = NULL;
}

static void write_file(const char *rel, const char *content, bool old)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/%s", g.bucket, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
    if (old) {
        struct timespec times[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
        assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
    }
}

static const struct weir_record *got_key(const char *key, const char *event)
{
    for (size_t i = 0; i < g.n_got; i++)
        if (!strcmp(g.got[i]->id, key) && !strcmp(g.got[i]->event_name, event))
            return g.got[i];
    return NULL;
}

static int setup(void **state)
{
    memset(&g, 0, sizeof(g));
    const char *tmp = getenv("TMPDIR");
    snprintf(g.dir, sizeof(g.dir), "%s/weir-bucket-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(g.dir));
    snprintf(g.bucket, sizeof(g.bucket), "%s/photos", g.dir);
    snprintf(g.uri, sizeof(g.uri), "file://%s", g.bucket);
    snprintf(g.state_dir, sizeof(g.state_dir), "%s/state", g.dir);
    assert_int_equal(mkdir(g.bucket, 0755), 0);
    g.base = event_base_new();
    static char *both[] = {"s3:ObjectCreated:*", "s3:ObjectRemoved:*"};
    g.bs.events = both;
    g.bs.n_events = 2;
    g.bs.ignore_temporary = true;
    g.mc.name = "photos";
    g.mc.source = g.uri;
    g.mc.batch_size = 1;
    g.mc.settings = &g.bs;
    g.mc.enabled = true;
    return 0;
}

static int teardown(void **state)
{
    if (g.p)
        poller_stop();
    for (size_t i = 0; i < g.n_got; i++)
        weir_record_free(g.got[i]);
    event_base_free(g.base);
    nftw(g.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static void bucket_announces_files_there_at_start_and_written_later(void **state)
{
    write_file("old.jpg", "hello world", true);
    poller_start();
    wait_got(1);
    const struct weir_record *r = got_key("old.jpg", WEIR_S3_CREATED);
    assert_non_null(r);
    assert_string_equal(r->etag, "5eb63bbbe01eeed093cb22bb8f5acdc3"); /* MD5("hello world") */
    assert_int_equal(r->object_size, 11);
    assert_string_equal(r->event_name, "ObjectCreated:Put");
    settle_all(WEIR_VERDICT_DONE);

    write_file("new.jpg", "x", false);
    wait_got(1);
    assert_non_null(got_key("new.jpg", WEIR_S3_CREATED));
    uint64_t first_seq = g.got[0]->seq;
    settle_all(WEIR_VERDICT_DONE);
    /* Rewritten: announced again, with a larger sequencer. */
    write_file("new.jpg", "xy", false);
    wait_got(1);
    assert_true(g.got[0]->seq > first_seq);
    assert_int_equal(g.got[0]->object_size, 2);
    settle_all(WEIR_VERDICT_DONE);

    char path[600];
    snprintf(path, sizeof(path), "%s/new.jpg", g.bucket);
    assert_int_equal(unlink(path), 0);
    wait_got(1);
    r = got_key("new.jpg", WEIR_S3_REMOVED);
    assert_non_null(r);
    assert_null(r->etag);
    settle_all(WEIR_VERDICT_DONE);
    run_for_ms(100);
    assert_int_equal(g.n_got, 0);
}

static void bucket_skips_temporary_files_symlinks_and_names_that_are_not_utf8(void **state)
{
    poller_start();
    run_for_ms(50);
    write_file(".hidden.jpg", "h", false);
    write_file("upload.jpg.part", "p", false);
    write_file("bad\xff.jpg", "b", false);
    char target[600], link[600];
    snprintf(target, sizeof(target), "/etc/hostname");
    snprintf(link, sizeof(link), "%s/outside.jpg", g.bucket);
    assert_int_equal(symlink(target, link), 0);
    write_file("good.jpg", "g", false);
    wait_got(1);
    run_for_ms(200);
    assert_int_equal(g.n_got, 1);
    assert_string_equal(g.got[0]->id, "good.jpg");
    settle_all(WEIR_VERDICT_DONE);
}

static void bucket_finds_a_burst_inside_a_new_directory(void **state)
{
    poller_start();
    run_for_ms(50);
    /* Files made before the new directory's watch exists: the scan after the watch finds them,
     * old enough not to wait out the settle time. */
    char sub[600];
    snprintf(sub, sizeof(sub), "%s/new", g.bucket);
    assert_int_equal(mkdir(sub, 0755), 0);
    snprintf(sub, sizeof(sub), "%s/new/deeper", g.bucket);
    assert_int_equal(mkdir(sub, 0755), 0);
    for (int i = 0; i < 50; i++) {
        char rel[64];
        snprintf(rel, sizeof(rel), "new/deeper/f%02d.jpg", i);
        write_file(rel, "z", true);
    }
    wait_got(50);
    run_for_ms(200);
    assert_int_equal(g.n_got, 50);
    for (int i = 0; i < 50; i++) {
        char rel[64];
        snprintf(rel, sizeof(rel), "new/deeper/f%02d.jpg", i);
        assert_non_null(got_key(rel, WEIR_S3_CREATED));
    }
    settle_all(WEIR_VERDICT_DONE);
}

static void bucket_catches_up_on_what_changed_while_stopped(void **state)
{
    write_file("kept.jpg", "k", true);
    write_file("changed.jpg", "c", true);
    write_file("removed.jpg", "r", true);
    poller_start();
    wait_got(3);
    settle_all(WEIR_VERDICT_DONE);
    run_for_ms(50);
    poller_stop();

    /* While nobody watches. */
    write_file("changed.jpg", "changed", true);
    char path[600];
    snprintf(path, sizeof(path), "%s/removed.jpg", g.bucket);
    assert_int_equal(unlink(path), 0);
    write_file("added.jpg", "a", true);

    poller_start();
    wait_got(3);
    run_for_ms(200);
    assert_int_equal(g.n_got, 3);
    assert_non_null(got_key("changed.jpg", WEIR_S3_CREATED));
    assert_non_null(got_key("added.jpg", WEIR_S3_CREATED));
    assert_non_null(got_key("removed.jpg", WEIR_S3_REMOVED));
    assert_null(got_key("kept.jpg", WEIR_S3_CREATED));
    settle_all(WEIR_VERDICT_DONE);
}

static void bucket_announces_again_what_was_not_taken(void **state)
{
    write_file("a.jpg", "a", true);
    poller_start();
    wait_got(1);
    /* The async queue could not store it: it comes again (after a second). */
    settle_all(WEIR_VERDICT_RETRY);
    wait_got(1);
    assert_non_null(got_key("a.jpg", WEIR_S3_CREATED));
    /* Never settled done: the catalog does not have it, so the next start announces it. */
    for (size_t i = 0; i < g.n_got; i++)
        weir_record_free(g.got[i]);
    g.n_got = 0;
    poller_stop();
    poller_start();
    wait_got(1);
    assert_non_null(got_key("a.jpg", WEIR_S3_CREATED));
    settle_all(WEIR_VERDICT_DONE);
}

static void bucket_row_refuses_what_s3_refuses(void **state)
{
    /* Through the registry, as weir check does. */
    extern const struct weir_cfg_env *weir_cli_cfg_env(void);
    const char *text = "functions: [{name: f, url: 'http://127.0.0.1:1'}]\n"
                       "mappings:\n"
                       "  - name: p\n"
                       "    source: file://relative/dir\n"
                       "    function: f\n"
                       "    bucket_name: Not_A_Bucket\n"
                       "    events: ['s3:ObjectRestore:*']\n"
                       "    batch_size: 2\n";
    struct weir_cfg_report rep;
    weir_cfg_report_init(&rep);
    assert_null(weir_config_load_buffer("t.yaml", text, strlen(text), weir_cli_cfg_env(), &rep));
    assert_int_equal(rep.n, 1);
    assert_non_null(strstr(rep.errors[0], "batch_size 2 is out of range 1..1"));
    weir_cfg_report_deinit(&rep);
    const char *text2 = "functions: [{name: f, url: 'http://127.0.0.1:1'}]\n"
                        "mappings:\n"
                        "  - name: p\n"
                        "    source: file://relative/dir\n"
                        "    function: f\n"
                        "    bucket_name: Not_A_Bucket\n"
                        "    events: ['s3:ObjectRestore:*']\n";
    weir_cfg_report_init(&rep);
    assert_null(weir_config_load_buffer("t.yaml", text2, strlen(text2), weir_cli_cfg_env(), &rep));
    assert_int_equal(rep.n, 3);
    assert_non_null(strstr(rep.errors[0], "t.yaml:4:5: mapping 'p': a bucket is file:///"));
    assert_non_null(strstr(rep.errors[1], "t.yaml:6:5: mapping 'p': bucket_name"));
    assert_non_null(strstr(rep.errors[2], "t.yaml:7:5: mapping 'p': events: \"s3:ObjectRestore"));
    weir_cfg_report_deinit(&rep);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(temporary_names_are_what_editors_and_uploaders_write_first),
        cmocka_unit_test(keys_must_be_utf8_without_control_characters),
        cmocka_unit_test(event_types_match_with_wildcards),
        cmocka_unit_test(s3_event_has_the_shape_of_section_4_5),
        cmocka_unit_test(s3_delete_carries_key_and_sequencer_only),
        cmocka_unit_test(strmap_puts_gets_and_deletes_through_growth),
        T(bucket_announces_files_there_at_start_and_written_later),
        T(bucket_skips_temporary_files_symlinks_and_names_that_are_not_utf8),
        T(bucket_finds_a_burst_inside_a_new_directory),
        T(bucket_catches_up_on_what_changed_while_stopped),
        T(bucket_announces_again_what_was_not_taken),
        T(bucket_row_refuses_what_s3_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
