/* The SQS encoder: the event shape of reference section 4.3, key by key, the body and attribute
 * digests against published values, and bodies that would break naive JSON writing. */
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
#include "core/mem.h"
#include "model/event.h"
#include "model/record.h"
#include "tests/unit/json_asserts.h"

static const struct weir_event_ctx ctx = {
    .source_arn = "arn:aws:sqs:eu-west-1:000000000000:orders",
    .region = "eu-west-1",
};

static struct weir_record *rec(const char *id, const char *body, size_t len)
{
    struct weir_record *r = weir_record_new();
    r->id = weir_strdup(id);
    r->handle = weir_strdup("lease-1f2e");
    r->data = weir_malloc(len + 1);
    memcpy(r->data, body, len);
    r->data[len] = '\0';
    r->data_len = len;
    r->receive_count = 1;
    r->sent_ms = 1741083062118;
    r->first_receive_ms = 1741083062131;
    return r;
}

static struct weir_record *rec_str(const char *id, const char *body)
{
    return rec(id, body, strlen(body));
}

/* Encodes the records as one event and parses it; fails the test if it is not JSON. */
static json_t *encode(struct weir_record **rs, size_t n, const struct weir_event_ctx *c)
{
    struct weir_buf out;
    weir_buf_init(&out);
    weir_format_sqs.encoder->open(&out, c, NULL);
    for (size_t i = 0; i < n; i++)
        weir_format_sqs.encoder->append(&out, c, rs[i], i == 0);
    size_t before = out.len;
    weir_format_sqs.encoder->close(&out, c);
    assert_int_equal(out.len - before, weir_format_sqs.encoder->close_len);
    json_error_t jerr;
    json_t *ev = json_loadb(out.data, out.len, JSON_ALLOW_NUL, &jerr);
    if (!ev)
        fail_msg("event is not JSON: %s at %d: %.200s", jerr.text, jerr.position, out.data);
    weir_buf_deinit(&out);
    assert_true(json_is_object(ev));
    assert_int_equal(json_object_size(ev), 1);
    assert_true(json_is_array(json_object_get(ev, "Records")));
    assert_int_equal(json_array_size(json_object_get(ev, "Records")), n);
    return ev;
}

static json_t *encode_one(struct weir_record *r)
{
    json_t *ev = encode(&r, 1, &ctx);
    weir_record_free(r);
    return ev;
}

static json_t *first_record(json_t *ev)
{
    return json_array_get(json_object_get(ev, "Records"), 0);
}

static const char *const record_keys[] = {
    "messageId", "receiptHandle", "body",           "attributes", "messageAttributes",
    "md5OfBody", "eventSource",   "eventSourceARN", "awsRegion",  NULL};
static const char *const record_keys_with_attrs[] = {
    "messageId", "receiptHandle",          "body",        "attributes",     "messageAttributes",
    "md5OfBody", "md5OfMessageAttributes", "eventSource", "eventSourceARN", "awsRegion",
    NULL};
static const char *const standard_attr_keys[] = {"ApproximateReceiveCount", "SentTimestamp",
                                                 "SenderId", "ApproximateFirstReceiveTimestamp",
                                                 NULL};

static void assert_all_strings(json_t *obj)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        if (!json_is_string(v))
            fail_msg("attributes.%s is not a string", k);
    }
}

static void plain_message_has_exactly_the_sqs_keys_and_types(void **state)
{
    json_t *ev = encode_one(rec_str("59a6b3d1-44f2-4f8e-9c43-2b1d0e6a7b10",
                                    "{\"orderId\":\"o-17\",\"status\":\"PAID\"}"));
    json_t *r = first_record(ev);
    assert_keys(r, record_keys);
    assert_string_equal(str_at(r, "messageId"), "59a6b3d1-44f2-4f8e-9c43-2b1d0e6a7b10");
    assert_string_equal(str_at(r, "receiptHandle"), "lease-1f2e");
    assert_string_equal(str_at(r, "body"), "{\"orderId\":\"o-17\",\"status\":\"PAID\"}");
    assert_string_equal(str_at(r, "eventSource"), "aws:sqs");

    json_t *a = json_object_get(r, "attributes");
    assert_true(json_is_object(a));
    assert_keys(a, standard_attr_keys);
    assert_all_strings(a);
    assert_string_equal(str_at(a, "ApproximateReceiveCount"), "1");
    assert_string_equal(str_at(a, "SentTimestamp"), "1741083062118");
    assert_string_equal(str_at(a, "SenderId"), "AIDAWEIRLOCALSENDER0");
    assert_string_equal(str_at(a, "ApproximateFirstReceiveTimestamp"), "1741083062131");

    json_t *ma = json_object_get(r, "messageAttributes");
    assert_true(json_is_object(ma));
    assert_int_equal(json_object_size(ma), 0);
    json_decref(ev);
}

static void md5_of_body_matches_the_reference_example(void **state)
{
    json_t *ev = encode_one(rec_str("m1", "{\"orderId\":\"o-17\",\"status\":\"PAID\"}"));
    assert_string_equal(str_at(first_record(ev), "md5OfBody"), "508ac07b1fc8e661673c48057599f23b");
    json_decref(ev);
}

static const char tenant_attrs[] = "{\"tenant\":{\"stringValue\":\"acme\",\"stringListValues\":[],"
                                   "\"binaryListValues\":[],\"dataType\":\"String\"}}";

static void message_attributes_are_copied_verbatim_with_their_md5(void **state)
{
    struct weir_record *r = rec_str("m1", "hello");
    r->attrs_json = weir_strdup(tenant_attrs);
    r->receive_count = 3;
    json_t *ev = encode_one(r);
    json_t *jr = first_record(ev);
    assert_keys(jr, record_keys_with_attrs);
    assert_keys(json_object_get(jr, "attributes"), standard_attr_keys);
    assert_string_equal(str_at(json_object_get(jr, "attributes"), "ApproximateReceiveCount"), "3");

    json_error_t jerr;
    json_t *want = json_loads(tenant_attrs, 0, &jerr);
    assert_true(json_equal(json_object_get(jr, "messageAttributes"), want));
    json_decref(want);

    /* By hand, from the algorithm: len(name) name len(type) type transport len(value) value. */
    static const unsigned char raw[] = "\0\0\0\x06tenant\0\0\0\x06String\x01\0\0\0\x04"
                                       "acme";
    char hand[33];
    weir_md5_hex(raw, sizeof(raw) - 1, hand);
    assert_string_equal(hand, "c52f727da6769fcbc66f3f8555ce234a");
    assert_string_equal(str_at(jr, "md5OfMessageAttributes"), hand);
    json_decref(ev);
}

static void md5_of_message_attributes_matches_published_examples(void **state)
{
    static const struct {
        const char *attrs;
        const char *md5;
    } cases[] = {
        /* The AWS SDK's samples (as carried in ydb's SQS tests): two strings, given out of
         * order, and one binary. */
        {"{\"test_attribute_name_2\":{\"dataType\":\"String\",\"stringValue\":"
         "\"test_attribute_value_2\"},\"test_attribute_name_1\":{\"dataType\":\"String\","
         "\"stringValue\":\"test_attribute_value_1\"}}",
         "d53f3b558fe951154770f25cb63dbba9"},
        {"{\"test_attribute_name\":{\"dataType\":\"Binary\",\"binaryValue\":"
         "\"dGVzdF9hdHRyaWJ1dGVfdmFsdWU=\"}}",
         "23f6bd27ea87aab7dfeadcc9aebee495"},
        /* npm aws-md5-of-message-attributes: string, custom Number type, binary, all three. */
        {"{\"attribName1\":{\"dataType\":\"String\",\"stringValue\":\"attribValue 1\"}}",
         "19e27d4e946b072f3f58da80d94fd778"},
        {"{\"customNumberTypeAttrib\":{\"dataType\":\"Number.float\",\"stringValue\":"
         "\"4563442423554324324264524243.32543234\"}}",
         "9fe1b90bbd9965bdf77bac517c7d2495"},
        {"{\"binaryAttribute\":{\"dataType\":\"Binary\",\"binaryValue\":"
         "\"SGVsbG8gYmluYXJ5IHdvcmxkIQ==\"}}",
         "31a92b15d92f8db860eda32aceb656c3"},
        {"{\"attribName1\":{\"dataType\":\"String\",\"stringValue\":\"attribValue 1\"},"
         "\"customNumberTypeAttrib\":{\"dataType\":\"Number.float\",\"stringValue\":"
         "\"4563442423554324324264524243.32543234\"},\"binaryAttribute\":{\"dataType\":"
         "\"Binary\",\"binaryValue\":\"SGVsbG8gYmluYXJ5IHdvcmxkIQ==\"}}",
         "c932db14a896c663f83c260297d594ff"},
        /* A JavaScript SQS client's test: one String attribute. */
        {"{\"SellerName\":{\"dataType\":\"String\",\"stringValue\":\"Example Store\"}}",
         "cd28f3b68aeee4b2eac9c66f2f694b58"},
        /* sqslite's test: Number and String. */
        {"{\"ordinal\":{\"dataType\":\"Number\",\"stringValue\":\"1\"},\"category\":{"
         "\"dataType\":\"String\",\"stringValue\":\"test\"}}",
         "d21ae90c49061e927f57df5f5d72be1f"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct weir_record *r = rec_str("m", "b");
        r->attrs_json = weir_strdup(cases[i].attrs);
        json_t *ev = encode_one(r);
        const char *got = str_at(first_record(ev), "md5OfMessageAttributes");
        if (strcmp(got, cases[i].md5) != 0)
            fail_msg("case %zu: md5OfMessageAttributes %s, want %s", i, got, cases[i].md5);
        json_decref(ev);
    }
}

static void empty_or_broken_attributes_give_an_empty_object_and_no_md5(void **state)
{
    static const char *const bad[] = {"{}", "not json", "[1,2]", "{\"a\":", "{} trailing"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct weir_record *r = rec_str("m", "b");
        r->attrs_json = weir_strdup(bad[i]);
        json_t *ev = encode_one(r);
        json_t *jr = first_record(ev);
        assert_keys(jr, record_keys);
        assert_int_equal(json_object_size(json_object_get(jr, "messageAttributes")), 0);
        json_decref(ev);
    }
}

static void fifo_fields_appear_only_for_fifo_messages(void **state)
{
    struct weir_record *rs[3];
    rs[0] = rec_str("std", "a");
    rs[0]->seq = 41;
    rs[1] = rec_str("fifo", "b");
    rs[1]->group_id = weir_strdup("customer-9");
    rs[1]->dedup_id = weir_strdup("dedup-77");
    rs[1]->seq = 5;
    rs[1]->fifo_seq = 18446744073709551615ULL;
    /* A standard queue's message may carry a group (SQS fair queues): no SequenceNumber. */
    rs[2] = rec_str("fair", "c");
    rs[2]->group_id = weir_strdup("tenant-1");
    rs[2]->seq = 6;
    json_t *ev = encode(rs, 3, &ctx);
    json_t *recs = json_object_get(ev, "Records");

    json_t *std = json_object_get(json_array_get(recs, 0), "attributes");
    assert_keys(std, standard_attr_keys);

    json_t *fifo = json_object_get(json_array_get(recs, 1), "attributes");
    static const char *const fifo_keys[] = {"ApproximateReceiveCount",
                                            "SentTimestamp",
                                            "SenderId",
                                            "ApproximateFirstReceiveTimestamp",
                                            "MessageGroupId",
                                            "MessageDeduplicationId",
                                            "SequenceNumber",
                                            NULL};
    assert_keys(fifo, fifo_keys);
    assert_all_strings(fifo);
    assert_string_equal(str_at(fifo, "MessageGroupId"), "customer-9");
    assert_string_equal(str_at(fifo, "MessageDeduplicationId"), "dedup-77");
    assert_string_equal(str_at(fifo, "SequenceNumber"), "18446744073709551615");
    assert_string_equal(str_at(json_array_get(recs, 0), "messageId"), "std");
    assert_string_equal(str_at(json_array_get(recs, 1), "messageId"), "fifo");
    json_t *fair = json_object_get(json_array_get(recs, 2), "attributes");
    assert_string_equal(str_at(fair, "MessageGroupId"), "tenant-1");
    assert_null(json_object_get(fair, "SequenceNumber"));
    json_decref(ev);
    weir_record_free(rs[0]);
    weir_record_free(rs[1]);
    weir_record_free(rs[2]);
}

static void hostile_body_round_trips_as_valid_json(void **state)
{
    /* Quotes, backslash, newline, tab, control bytes, NUL, a lone 0xff, a truncated sequence,
     * and valid two- and four-byte UTF-8. */
    static const char body[] =
        "q\"b\\s\nn\tt\x01\x1f\x7f z\0z \xff x\xe2\x82 \xc3\xa9 \xf0\x9f\x98\x80";
    static const char want[] =
        "q\"b\\s\nn\tt\x01\x1f\x7f z\0z \xef\xbf\xbd x\xef\xbf\xbd\xef\xbf\xbd"
        " \xc3\xa9 \xf0\x9f\x98\x80";
    struct weir_record *r = rec("m", body, sizeof(body) - 1);
    char raw_md5[33];
    weir_md5_hex(body, sizeof(body) - 1, raw_md5);
    json_t *ev = encode_one(r);
    json_t *jb = json_object_get(first_record(ev), "body");
    assert_true(json_is_string(jb));
    assert_int_equal(json_string_length(jb), sizeof(want) - 1);
    assert_memory_equal(json_string_value(jb), want, sizeof(want) - 1);
    /* The digest is of the bytes the producer sent (docs/events.md). */
    assert_string_equal(str_at(first_record(ev), "md5OfBody"), raw_md5);
    json_decref(ev);
}

static void hostile_ids_and_handles_stay_valid_json(void **state)
{
    struct weir_record *r = rec_str("id\"with\nquote", "b");
    free(r->handle);
    r->handle = NULL; /* a poller without settle handles still yields a string */
    json_t *ev = encode_one(r);
    assert_string_equal(str_at(first_record(ev), "messageId"), "id\"with\nquote");
    assert_string_equal(str_at(first_record(ev), "receiptHandle"), "");
    json_decref(ev);
}

static void event_source_arn_and_region_come_from_the_context(void **state)
{
    const struct weir_event_ctx other = {.source_arn = "arn:aws:sqs:ap-south-2:123456789012:jobs",
                                         .region = "ap-south-2"};
    struct weir_record *r = rec_str("m", "b");
    json_t *ev = encode(&r, 1, &other);
    assert_string_equal(str_at(first_record(ev), "eventSourceARN"),
                        "arn:aws:sqs:ap-south-2:123456789012:jobs");
    assert_string_equal(str_at(first_record(ev), "awsRegion"), "ap-south-2");
    json_decref(ev);
    weir_record_free(r);
}

static void many_records_keep_their_order(void **state)
{
    enum { N = 50 };
    struct weir_record *rs[N];
    for (int i = 0; i < N; i++) {
        char id[16];
        snprintf(id, sizeof(id), "m-%d", i);
        rs[i] = rec_str(id, id);
        rs[i]->receive_count = (uint32_t)i + 1;
    }
    json_t *ev = encode(rs, N, &ctx);
    for (int i = 0; i < N; i++) {
        json_t *jr = json_array_get(json_object_get(ev, "Records"), (size_t)i);
        assert_string_equal(str_at(jr, "messageId"), rs[i]->id);
        char n[16];
        snprintf(n, sizeof(n), "%d", i + 1);
        assert_string_equal(str_at(json_object_get(jr, "attributes"), "ApproximateReceiveCount"),
                            n);
        weir_record_free(rs[i]);
    }
    json_decref(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_message_has_exactly_the_sqs_keys_and_types),
        cmocka_unit_test(md5_of_body_matches_the_reference_example),
        cmocka_unit_test(message_attributes_are_copied_verbatim_with_their_md5),
        cmocka_unit_test(md5_of_message_attributes_matches_published_examples),
        cmocka_unit_test(empty_or_broken_attributes_give_an_empty_object_and_no_md5),
        cmocka_unit_test(fifo_fields_appear_only_for_fifo_messages),
        cmocka_unit_test(hostile_body_round_trips_as_valid_json),
        cmocka_unit_test(hostile_ids_and_handles_stay_valid_json),
        cmocka_unit_test(event_source_arn_and_region_come_from_the_context),
        cmocka_unit_test(many_records_keep_their_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
