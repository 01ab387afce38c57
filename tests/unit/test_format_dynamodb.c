/* The DynamoDB Streams format (reference section 4.4), record element by record element: every
 * value kind as its attribute type, JSON read digit for digit, arrays as lists or sets, the images
 * each view type and operation carries, TOASTed values that were not sent, the TRUNCATE marker,
 * escaping, the eventID, the creation time and SizeBytes; the DDBStreamBatchInfo of a failure
 * record (section 1.6); and filter patterns on a shape without a payload key. Every event a test
 * makes is parsed with jansson and checked against section 4.4's shape. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/buf.h"
#include "core/mem.h"
#include "mapping/filter.h"
#include "model/event.h"
#include "model/record.h"
#include "model/row.h"
#include "tests/unit/json_asserts.h"

#define LEN(a) (sizeof(a) / sizeof(*(a)))

#define SENT_MS    1741083062118LL
#define SENT_ISO   "2025-03-04T10:11:02.118Z"
#define LABEL      "2025-03-01T00:00:00.000"
#define ORDERS_ARN "arn:aws:dynamodb:eu-west-1:000000000000:table/orders/stream/" LABEL
/* A SequenceNumber as the Postgres poller makes it: the commit LSN (20 digits) and the change's
 * place in its transaction (10 digits). */
#define SEQ "000000000000000016780000000003"

/* ==== building rows and records =============================================================== */

/* One column of a test row. len 0: strlen(value). */
struct colspec {
    const char *name;
    enum weir_value_kind kind;
    const char *value;
    bool key;
    enum weir_value_kind elem_kind;
    size_t len;
};

#define COL_S(n, v)                                                                                \
    {                                                                                              \
        n, WEIR_VALUE_STRING, v, false, 0, 0                                                       \
    }
#define COL_N(n, v)                                                                                \
    {                                                                                              \
        n, WEIR_VALUE_NUMBER, v, false, 0, 0                                                       \
    }
#define COL_BOOL(n, v)                                                                             \
    {                                                                                              \
        n, WEIR_VALUE_BOOL, v, false, 0, 0                                                         \
    }
#define COL_JSON(n, v)                                                                             \
    {                                                                                              \
        n, WEIR_VALUE_JSON, v, false, 0, 0                                                         \
    }
#define COL_NULL(n)                                                                                \
    {                                                                                              \
        n, WEIR_VALUE_NULL, NULL, false, 0, 0                                                      \
    }
#define COL_UNCH(n)                                                                                \
    {                                                                                              \
        n, WEIR_VALUE_UNCHANGED, NULL, false, 0, 0                                                 \
    }
#define COL_LIST(n, e, v)                                                                          \
    {                                                                                              \
        n, WEIR_VALUE_LIST, v, false, e, 0                                                         \
    }
#define KEY_S(n, v)                                                                                \
    {                                                                                              \
        n, WEIR_VALUE_STRING, v, true, 0, 0                                                        \
    }
#define KEY_N(n, v)                                                                                \
    {                                                                                              \
        n, WEIR_VALUE_NUMBER, v, true, 0, 0                                                        \
    }

static struct weir_tuple *tuple_of(const struct colspec *c, size_t n)
{
    struct weir_tuple *t = weir_tuple_new(n);
    for (size_t i = 0; i < n; i++) {
        size_t len = c[i].len ? c[i].len : c[i].value ? strlen(c[i].value) : 0;
        weir_tuple_set(t, i, c[i].name, c[i].kind, c[i].value, len);
        t->cols[i].key = c[i].key;
        t->cols[i].elem_kind = c[i].elem_kind;
    }
    return t;
}

#define TUPLE(...)                                                                                 \
    tuple_of((const struct colspec[]){__VA_ARGS__},                                                \
             sizeof((const struct colspec[]){__VA_ARGS__}) / sizeof(struct colspec))

/* A record as the Postgres poller makes it; takes the tuples. */
static struct weir_record *rec(enum weir_row_op op, const char *table, const char *seq,
                               struct weir_tuple *new_row, struct weir_tuple *old_row)
{
    struct weir_record *r = weir_record_new();
    r->id = weir_strdup(seq);
    r->stream = weir_strdup(table);
    r->data = weir_strdup("");
    r->sent_ms = SENT_MS;
    r->row = weir_row_new(op);
    r->row->new_row = new_row;
    r->row->old_row = old_row;
    r->row->old_full = old_row != NULL;
    return r;
}

static struct weir_event_ctx ctx_of(const char *view, bool sets)
{
    return (struct weir_event_ctx){
        .source_arn = ORDERS_ARN,
        .region = "eu-west-1",
        .stream_label = LABEL,
        .stream_view_type = view,
        .arrays_as_sets = sets,
    };
}

/* ==== checking events against section 4.4 ===================================================== */

static const char *const view_types[] = {"KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE",
                                         "NEW_AND_OLD_IMAGES"};

static const char *const record_order[] = {"eventID",        "eventName",    "eventVersion",
                                           "eventSource",    "awsRegion",    "dynamodb",
                                           "eventSourceARN", "userIdentity", NULL};
static const char *const ddb_order[] = {"ApproximateCreationDateTime",
                                        "Keys",
                                        "NewImage",
                                        "OldImage",
                                        "SequenceNumber",
                                        "SizeBytes",
                                        "StreamViewType",
                                        NULL};

static size_t index_of(const char *const *list, const char *key)
{
    for (size_t i = 0; list[i]; i++)
        if (!strcmp(list[i], key))
            return i;
    fail_msg("unexpected member \"%s\"", key);
    return 0;
}

/* obj's members are among `order`, in that order; `required` are all there. */
static void check_members(json_t *obj, const char *const *order, const char *const *required)
{
    assert_true(json_is_object(obj));
    size_t last = 0;
    bool any = false;
    for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
        size_t at = index_of(order, json_object_iter_key(it));
        if (any && at <= last)
            fail_msg("member \"%s\" is out of order", json_object_iter_key(it));
        last = at;
        any = true;
    }
    for (size_t i = 0; required[i]; i++)
        if (!json_object_get(obj, required[i]))
            fail_msg("member \"%s\" is missing", required[i]);
}

/* obj's members are exactly keys, in this order. */
static void assert_members(json_t *obj, const char *const *keys)
{
    check_members(obj, keys, keys);
    size_t n = 0;
    while (keys[n])
        n++;
    assert_int_equal(json_object_size(obj), n);
}

static void check_attrs(json_t *item);

/* One attribute value: an object of exactly one type member, its value of that type's form. */
static void check_attr(json_t *v)
{
    if (!json_is_object(v) || json_object_size(v) != 1)
        fail_msg("an attribute value is not an object of one member");
    void *it = json_object_iter(v);
    const char *type = json_object_iter_key(it);
    json_t *x = json_object_iter_value(it);
    if (!strcmp(type, "S") || !strcmp(type, "B") || !strcmp(type, "N")) {
        assert_true(json_is_string(x));
    } else if (!strcmp(type, "BOOL")) {
        assert_true(json_is_boolean(x));
    } else if (!strcmp(type, "NULL")) {
        assert_true(json_is_true(x));
    } else if (!strcmp(type, "M")) {
        check_attrs(x);
    } else if (!strcmp(type, "L")) {
        assert_true(json_is_array(x));
        for (size_t i = 0; i < json_array_size(x); i++)
            check_attr(json_array_get(x, i));
    } else if (!strcmp(type, "SS") || !strcmp(type, "NS") || !strcmp(type, "BS")) {
        assert_true(json_is_array(x));
        assert_true(json_array_size(x) > 0);
        for (size_t i = 0; i < json_array_size(x); i++) {
            json_t *a = json_array_get(x, i);
            assert_true(json_is_string(a));
            for (size_t k = 0; k < i; k++)
                assert_false(json_equal(a, json_array_get(x, k)));
        }
    } else {
        fail_msg("unknown attribute type \"%s\"", type);
    }
}

static void check_attrs(json_t *item)
{
    assert_true(json_is_object(item));
    for (void *it = json_object_iter(item); it; it = json_object_iter_next(item, it))
        check_attr(json_object_iter_value(it));
}

static bool is_lower_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* One Records[] element against section 4.4: members, order, types and the images its
 * eventName allows. */
static void check_record(json_t *e)
{
    static const char *const record_required[] = {"eventID",        "eventName", "eventVersion",
                                                  "eventSource",    "awsRegion", "dynamodb",
                                                  "eventSourceARN", NULL};
    static const char *const ddb_required[] = {"ApproximateCreationDateTime",
                                               "Keys",
                                               "SequenceNumber",
                                               "SizeBytes",
                                               "StreamViewType",
                                               NULL};
    check_members(e, record_order, record_required);
    assert_true(is_lower_hex(str_at(e, "eventID"), 32));
    const char *name = str_at(e, "eventName");
    assert_true(!strcmp(name, "INSERT") || !strcmp(name, "MODIFY") || !strcmp(name, "REMOVE"));
    assert_string_equal(str_at(e, "eventVersion"), "1.1");
    assert_string_equal(str_at(e, "eventSource"), "aws:dynamodb");
    str_at(e, "awsRegion");
    assert_true(!strncmp(str_at(e, "eventSourceARN"), "arn:aws:dynamodb:", 17));
    json_t *who = json_object_get(e, "userIdentity");
    if (who) {
        static const char *const who_keys[] = {"type", "principalId", NULL};
        assert_members(who, who_keys);
        assert_string_equal(str_at(who, "type"), "Service");
        str_at(who, "principalId");
        assert_string_equal(name, "REMOVE");
    }

    json_t *d = json_object_get(e, "dynamodb");
    check_members(d, ddb_order, ddb_required);
    int_at(d, "ApproximateCreationDateTime");
    check_attrs(json_object_get(d, "Keys"));
    if (json_object_get(d, "NewImage"))
        check_attrs(json_object_get(d, "NewImage"));
    if (json_object_get(d, "OldImage"))
        check_attrs(json_object_get(d, "OldImage"));
    if (!strcmp(name, "INSERT"))
        assert_null(json_object_get(d, "OldImage"));
    if (!strcmp(name, "REMOVE"))
        assert_null(json_object_get(d, "NewImage"));
    str_at(d, "SequenceNumber");
    assert_true(int_at(d, "SizeBytes") >= 9); /* "Keys":{} */
    const char *view = str_at(d, "StreamViewType");
    bool known = false;
    for (size_t i = 0; i < LEN(view_types); i++)
        known |= !strcmp(view, view_types[i]);
    assert_true(known);
}

static json_t *parse(const char *text, size_t len, size_t flags)
{
    json_error_t jerr;
    json_t *j = json_loadb(text, len, flags | JSON_ALLOW_NUL, &jerr);
    if (!j)
        fail_msg("not JSON: %s at %d: %.400s", jerr.text, jerr.position, text);
    return j;
}

static json_t *parse_str(const char *text)
{
    return parse(text, strlen(text), 0);
}

/* Encodes the records as one event, as the batcher does (opened with the first record, close_len
 * checked), into out. */
static void encode_into(struct weir_buf *out, struct weir_record *const *rs, size_t n,
                        const struct weir_event_ctx *c)
{
    const struct weir_encoder *enc = weir_format_dynamodb.encoder;
    enc->open(out, c, rs[0]);
    for (size_t i = 0; i < n; i++)
        enc->append(out, c, rs[i], i == 0);
    size_t before = out->len;
    enc->close(out, c);
    assert_int_equal(out->len - before, enc->close_len);
}

/* The event of the records, parsed and checked against section 4.4. flags: jansson's (a test of
 * JSON columns with a key written twice leaves out JSON_REJECT_DUPLICATES). */
static json_t *encode_flags(struct weir_record *const *rs, size_t n, const struct weir_event_ctx *c,
                            size_t flags)
{
    struct weir_buf out;
    weir_buf_init(&out);
    encode_into(&out, rs, n, c);
    json_t *ev = parse(out.data, out.len, flags);
    weir_buf_deinit(&out);
    assert_true(json_is_object(ev));
    assert_int_equal(json_object_size(ev), 1);
    json_t *arr = json_object_get(ev, "Records");
    assert_true(json_is_array(arr));
    assert_int_equal(json_array_size(arr), n);
    for (size_t i = 0; i < n; i++)
        check_record(json_array_get(arr, i));
    return ev;
}

static json_t *encode(struct weir_record *const *rs, size_t n, const struct weir_event_ctx *c)
{
    return encode_flags(rs, n, c, JSON_REJECT_DUPLICATES);
}

/* The one record of an event (a new reference; the record is freed). */
static json_t *encode1(struct weir_record *r, const struct weir_event_ctx *c)
{
    json_t *ev = encode(&r, 1, c);
    json_t *e = json_incref(json_array_get(json_object_get(ev, "Records"), 0));
    json_decref(ev);
    weir_record_free(r);
    return e;
}

/* The record element's text alone, as the filter reads it. */
static char *element_text(struct weir_record *r, const struct weir_event_ctx *c)
{
    struct weir_buf out;
    weir_buf_init(&out);
    weir_format_dynamodb.encoder->append(&out, c, r, 1);
    return weir_buf_take(&out, NULL);
}

static json_t *ddb(json_t *e)
{
    json_t *d = json_object_get(e, "dynamodb");
    assert_true(json_is_object(d));
    return d;
}

static json_t *image(json_t *e, const char *which)
{
    json_t *img = json_object_get(ddb(e), which);
    if (!json_is_object(img))
        fail_msg("%s is missing", which);
    return img;
}

/* item[name] is the attribute value written as the JSON text want. */
static void assert_attr(json_t *item, const char *name, const char *want)
{
    json_t *got = json_object_get(item, name);
    if (!got)
        fail_msg("attribute \"%s\" is missing", name);
    json_t *w = parse_str(want);
    if (!json_equal(got, w)) {
        char *text = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
        fail_msg("attribute \"%s\" is %s, want %s", name, text, want);
    }
    json_decref(w);
}

/* item[name] is {"S": the len bytes of want}. */
static void assert_s(json_t *item, const char *name, const char *want, size_t len)
{
    json_t *v = json_object_get(item, name);
    if (!json_is_object(v) || json_object_size(v) != 1)
        fail_msg("attribute \"%s\" is missing", name);
    json_t *s = json_object_get(v, "S");
    if (!json_is_string(s))
        fail_msg("attribute \"%s\" is not an S", name);
    assert_int_equal(json_string_length(s), len);
    assert_memory_equal(json_string_value(s), want, len);
}

/* ==== the record element ====================================================================== */

/* The reference's own example (section 4.4), built from a Postgres row change. */
static struct weir_record *reference_modify(void)
{
    return rec(
        WEIR_ROW_UPDATE, "orders", SEQ,
        TUPLE(KEY_S("pk", "order#o-17"), COL_N("total", "42.50"), COL_BOOL("paid", "true"),
              COL_NULL("note"), COL_JSON("lines", "[{\"sku\":\"A1\",\"qty\":2}]"),
              COL_LIST("tags", WEIR_VALUE_STRING, "[\"gift\",\"express\"]"),
              COL_LIST("sizes", WEIR_VALUE_NUMBER, "[\"1\",\"2\"]"),
              {"blob", WEIR_VALUE_BYTES, "\x00\x01\x02", false, 0, 3}),
        TUPLE(KEY_S("pk", "order#o-17"), COL_N("total", "42.50"), COL_BOOL("paid", "false")));
}

static void record_is_the_reference_record_member_by_member_in_order(void **state)
{
    struct weir_event_ctx c = ctx_of("NEW_AND_OLD_IMAGES", true);
    json_t *e = encode1(reference_modify(), &c);
    static const char *const rkeys[] = {"eventID",   "eventName", "eventVersion",   "eventSource",
                                        "awsRegion", "dynamodb",  "eventSourceARN", NULL};
    assert_members(e, rkeys);
    assert_string_equal(str_at(e, "eventID"), "000000000000000000000f42e5f07803");
    assert_string_equal(str_at(e, "eventName"), "MODIFY");
    assert_string_equal(str_at(e, "eventVersion"), "1.1");
    assert_string_equal(str_at(e, "eventSource"), "aws:dynamodb");
    assert_string_equal(str_at(e, "awsRegion"), "eu-west-1");
    assert_string_equal(str_at(e, "eventSourceARN"), ORDERS_ARN);

    json_t *d = ddb(e);
    assert_members(d, ddb_order);
    assert_int_equal(int_at(d, "ApproximateCreationDateTime"), 1741083062);
    assert_string_equal(str_at(d, "SequenceNumber"), SEQ);
    assert_string_equal(str_at(d, "StreamViewType"), "NEW_AND_OLD_IMAGES");

    json_t *want =
        parse_str("{\"Keys\":{\"pk\":{\"S\":\"order#o-17\"}},"
                  "\"NewImage\":{\"pk\":{\"S\":\"order#o-17\"},\"total\":{\"N\":\"42.50\"},"
                  "\"paid\":{\"BOOL\":true},\"note\":{\"NULL\":true},"
                  "\"lines\":{\"L\":[{\"M\":{\"sku\":{\"S\":\"A1\"},\"qty\":{\"N\":\"2\"}}}]},"
                  "\"tags\":{\"SS\":[\"gift\",\"express\"]},"
                  "\"sizes\":{\"NS\":[\"1\",\"2\"]},\"blob\":{\"B\":\"AAEC\"}},"
                  "\"OldImage\":{\"pk\":{\"S\":\"order#o-17\"},\"total\":{\"N\":\"42.50\"},"
                  "\"paid\":{\"BOOL\":false}}}");
    const char *items[] = {"Keys", "NewImage", "OldImage"};
    for (size_t i = 0; i < LEN(items); i++)
        assert_true(json_equal(json_object_get(d, items[i]), json_object_get(want, items[i])));
    /* Columns keep the table's order. */
    static const char *const cols[] = {"pk",   "total", "paid", "note", "lines",
                                       "tags", "sizes", "blob", NULL};
    assert_members(image(e, "NewImage"), cols);
    json_decref(want);
    json_decref(e);
}

static void every_value_kind_becomes_its_attribute_type(void **state)
{
    struct weir_event_ctx c = ctx_of("NEW_IMAGE", false);
    json_t *e = encode1(
        rec(WEIR_ROW_INSERT, "orders", SEQ,
            TUPLE(KEY_N("id", "7"), COL_S("s", "hello"), COL_S("s_empty", ""),
                  {"s_nul", WEIR_VALUE_STRING, "a\0b", false, 0, 3}, COL_N("n_neg", "-12.50"),
                  COL_N("n_exp", "1e+30"), COL_N("n_big", "12345678901234567890.123456789"),
                  COL_BOOL("b_t", "true"), COL_BOOL("b_f", "false"), COL_BOOL("b_odd", "t"),
                  COL_NULL("nul"), {"bytes", WEIR_VALUE_BYTES, "\x00\xff\x80z", false, 0, 4},
                  {"bytes_empty", WEIR_VALUE_BYTES, "", false, 0, 0}, COL_JSON("j", "{\"a\":1}"),
                  COL_LIST("l", WEIR_VALUE_STRING, "[\"x\"]")),
            NULL),
        &c);
    json_t *img = image(e, "NewImage");
    assert_int_equal(json_object_size(img), 15);
    assert_attr(img, "id", "{\"N\":\"7\"}");
    assert_attr(img, "s", "{\"S\":\"hello\"}");
    assert_attr(img, "s_empty", "{\"S\":\"\"}");
    assert_s(img, "s_nul", "a\0b", 3);
    assert_attr(img, "n_neg", "{\"N\":\"-12.50\"}");
    assert_attr(img, "n_exp", "{\"N\":\"1e+30\"}");
    assert_attr(img, "n_big", "{\"N\":\"12345678901234567890.123456789\"}");
    assert_attr(img, "b_t", "{\"BOOL\":true}");
    assert_attr(img, "b_f", "{\"BOOL\":false}");
    /* A BOOL whose text is neither word is not guessed at. */
    assert_attr(img, "b_odd", "{\"S\":\"t\"}");
    assert_attr(img, "nul", "{\"NULL\":true}");
    assert_attr(img, "bytes", "{\"B\":\"AP+Aeg==\"}");
    assert_attr(img, "bytes_empty", "{\"B\":\"\"}");
    assert_attr(img, "j", "{\"M\":{\"a\":{\"N\":\"1\"}}}");
    assert_attr(img, "l", "{\"L\":[{\"S\":\"x\"}]}");
    json_t *keys = json_object_get(ddb(e), "Keys");
    assert_int_equal(json_object_size(keys), 1);
    assert_attr(keys, "id", "{\"N\":\"7\"}");
    json_decref(e);
}

/* ==== JSON values ============================================================================= */

static json_t *json_column(const char *text, size_t len)
{
    struct weir_event_ctx c = ctx_of("NEW_IMAGE", false);
    return encode1(rec(WEIR_ROW_INSERT, "orders", SEQ,
                       TUPLE({"j", WEIR_VALUE_JSON, text, false, 0, len ? len : strlen(text)}),
                       NULL),
                   &c);
}

static void json_nests_as_maps_and_lists_with_each_number_s_own_digits(void **state)
{
    static const char text[] =
        " {\"a\" : [1, 2.50, {\"b\": null}],\n\t\"big\":12345678901234567890.123456789,"
        "\"e\":-1.5E+300, \"t\":true,\"f\":false,"
        "\"s\":\"q\\\"\\\\\\/\\u00e9\\ud83d\\ude00\\n\\u0000\",\"\":{},\"z\":[],"
        "\"zero\":-0.0e-0} \r\n";
    struct weir_event_ctx c = ctx_of("NEW_IMAGE", false);
    struct weir_record *r =
        rec(WEIR_ROW_INSERT, "orders", SEQ, TUPLE(KEY_S("pk", "p"), COL_JSON("j", text)), NULL);
    struct weir_buf out;
    weir_buf_init(&out);
    encode_into(&out, &r, 1, &c);
    /* Numbers are copied, never converted: not one digit is lost or added. */
    assert_non_null(strstr(out.data, "{\"N\":\"12345678901234567890.123456789\"}"));
    assert_non_null(strstr(out.data, "{\"N\":\"2.50\"}"));
    assert_non_null(strstr(out.data, "{\"N\":\"-1.5E+300\"}"));
    assert_non_null(strstr(out.data, "{\"N\":\"-0.0e-0\"}"));
    weir_buf_deinit(&out);
    weir_record_free(r);

    json_t *e = json_column(text, 0);
    json_t *img = image(e, "NewImage");
    assert_attr(
        img, "j",
        "{\"M\":{\"a\":{\"L\":[{\"N\":\"1\"},{\"N\":\"2.50\"},{\"M\":{\"b\":{\"NULL\":true}}}]},"
        "\"big\":{\"N\":\"12345678901234567890.123456789\"},\"e\":{\"N\":\"-1.5E+300\"},"
        "\"t\":{\"BOOL\":true},\"f\":{\"BOOL\":false},"
        "\"s\":{\"S\":\"q\\\"\\\\/\\u00e9\\ud83d\\ude00\\n\\u0000\"},"
        "\"\":{\"M\":{}},\"z\":{\"L\":[]},\"zero\":{\"N\":\"-0.0e-0\"}}}");
    /* Members keep the text's order. */
    json_t *m = json_object_get(json_object_get(img, "j"), "M");
    static const char *const order[] = {"a", "big", "e", "t", "f", "s", "", "z", "zero", NULL};
    assert_members(m, order);
    json_decref(e);

    /* A text of one scalar is that scalar. */
    static const struct {
        const char *text, *want;
    } scalars[] = {
        {"42", "{\"N\":\"42\"}"},
        {" \"hi\" ", "{\"S\":\"hi\"}"},
        {"null", "{\"NULL\":true}"},
        {"true", "{\"BOOL\":true}"},
        {"false", "{\"BOOL\":false}"},
        {"-7e-3", "{\"N\":\"-7e-3\"}"},
        {"[]", "{\"L\":[]}"},
        {"{}", "{\"M\":{}}"},
        {"[[[\"deep\"]]]", "{\"L\":[{\"L\":[{\"L\":[{\"S\":\"deep\"}]}]}]}"},
    };
    for (size_t i = 0; i < LEN(scalars); i++) {
        e = json_column(scalars[i].text, 0);
        assert_attr(image(e, "NewImage"), "j", scalars[i].want);
        json_decref(e);
    }
}

static void json_keys_written_twice_are_kept_as_written(void **state)
{
    /* A json (not jsonb) column keeps a key written twice; so does the event, and a reader keeps
     * the last, as jsonb would have. */
    struct weir_event_ctx c = ctx_of("NEW_IMAGE", false);
    struct weir_record *r =
        rec(WEIR_ROW_INSERT, "orders", SEQ, TUPLE(COL_JSON("j", "{\"a\":1,\"a\":2}")), NULL);
    json_t *ev = encode_flags(&r, 1, &c, 0);
    json_t *e = json_array_get(json_object_get(ev, "Records"), 0);
    assert_attr(image(e, "NewImage"), "j", "{\"M\":{\"a\":{\"N\":\"2\"}}}");
    json_decref(ev);
    weir_record_free(r);
}

static void json_text_that_is_not_json_is_the_string_of_its_text(void **state)
{
    static const char *const bad[] = {
        "",
        " ",
        "{",
        "}",
        "{\"a\":1,}",
        "[1,]",
        "[1 2]",
        "01",
        "1.",
        ".5",
        "+1",
        "-",
        "1e",
        "1e+",
        "tru",
        "nul",
        "True",
        "\"abc",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "\"a\tb\"",
        "{} {}",
        "[1]x",
        "NaN",
        "Infinity",
        "{\"a\" 1}",
        "{a:1}",
        "'a'",
        "[\"a\\",
    };
    for (size_t i = 0; i < LEN(bad); i++) {
        json_t *e = json_column(bad[i], strlen(bad[i]));
        assert_s(image(e, "NewImage"), "j", bad[i], strlen(bad[i]));
        json_decref(e);
    }
    /* A byte that is not UTF-8 makes the text no JSON; the string shows each such byte as
     * U+FFFD: a stray byte, an overlong '/', a surrogate written as UTF-8. */
    static const struct {
        const char *text, *shown;
    } not_utf8[] = {
        {"\"a\xff\"", "\"a\xef\xbf\xbd\""},
        {"\"\xc0\xaf\"", "\"\xef\xbf\xbd\xef\xbf\xbd\""},
        {"\"\xed\xa0\x80\"", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""},
    };
    json_t *e;
    for (size_t i = 0; i < LEN(not_utf8); i++) {
        e = json_column(not_utf8[i].text, 0);
        assert_s(image(e, "NewImage"), "j", not_utf8[i].shown, strlen(not_utf8[i].shown));
        json_decref(e);
    }
    /* A NUL byte inside the text: not JSON either. */
    e = json_column("[1]\0", 4);
    assert_s(image(e, "NewImage"), "j", "[1]\0", 4);
    json_decref(e);
}

static char *nested(size_t depth, const char *inner)
{
    struct weir_buf b;
    weir_buf_init(&b);
    for (size_t i = 0; i < depth; i++)
        weir_buf_append_char(&b, '[');
    weir_buf_append_str(&b, inner);
    for (size_t i = 0; i < depth; i++)
        weir_buf_append_char(&b, ']');
    return weir_buf_take(&b, NULL);
}

static void json_nested_past_256_levels_is_a_string(void **state)
{
    char *ok = nested(256, "1"), *deep = nested(257, "1");
    json_t *e = json_column(ok, 0);
    json_t *v = json_object_get(image(e, "NewImage"), "j");
    for (size_t i = 0; i < 256; i++) {
        json_t *l = json_object_get(v, "L");
        if (!json_is_array(l) || json_array_size(l) != 1)
            fail_msg("level %zu is not a list of one", i);
        v = json_array_get(l, 0);
    }
    assert_string_equal(str_at(v, "N"), "1");
    json_decref(e);
    e = json_column(deep, 0);
    assert_s(image(e, "NewImage"), "j", deep, strlen(deep));
    json_decref(e);
    free(ok);
    free(deep);
}

/* ==== arrays ================================================================================== */

static json_t *list_column(enum weir_value_kind elem_kind, const char *text, bool sets)
{
    struct weir_event_ctx c = ctx_of("NEW_IMAGE", sets);
    json_t *e = encode1(
        rec(WEIR_ROW_INSERT, "orders", SEQ, TUPLE(COL_LIST("a", elem_kind, text)), NULL), &c);
    json_t *v = json_incref(json_object_get(image(e, "NewImage"), "a"));
    json_decref(e);
    return v;
}

static void assert_list(enum weir_value_kind elem_kind, const char *text, bool sets,
                        const char *want)
{
    json_t *v = list_column(elem_kind, text, sets);
    json_t *w = parse_str(want);
    if (!json_equal(v, w)) {
        char *got = json_dumps(v, JSON_COMPACT);
        fail_msg("%s (sets %d): %s, want %s", text, sets, got, want);
    }
    json_decref(w);
    json_decref(v);
}

static void arrays_are_lists_typed_by_their_element_kind(void **state)
{
    for (int sets = 0; sets < 2; sets++) {
        assert_list(
            WEIR_VALUE_STRING, "[\"a\",\"b\\\"c\",null,\"\\u00e9\"]", sets,
            "{\"L\":[{\"S\":\"a\"},{\"S\":\"b\\\"c\"},{\"NULL\":true},{\"S\":\"\\u00e9\"}]}");
        assert_list(WEIR_VALUE_BOOL, "[\"true\",\"false\",null]", sets,
                    "{\"L\":[{\"BOOL\":true},{\"BOOL\":false},{\"NULL\":true}]}");
        assert_list(WEIR_VALUE_JSON,
                    "[\"{\\\"k\\\":[1,\\\"x\\\"]}\",\"oops{\",\"12.0\",null,"
                    "\"123456789012345678901234567890.5\"]",
                    sets,
                    "{\"L\":[{\"M\":{\"k\":{\"L\":[{\"N\":\"1\"},{\"S\":\"x\"}]}}},"
                    "{\"S\":\"oops{\"},{\"N\":\"12.0\"},{\"NULL\":true},"
                    "{\"N\":\"123456789012345678901234567890.5\"}]}");
        assert_list(WEIR_VALUE_STRING, "[[\"a\",\"b\"],[\"c\",null]]", sets,
                    "{\"L\":[{\"L\":[{\"S\":\"a\"},{\"S\":\"b\"}]},"
                    "{\"L\":[{\"S\":\"c\"},{\"NULL\":true}]}]}");
        assert_list(WEIR_VALUE_NUMBER, "[[\"1\",\"2\"],[\"3\",\"4\"]]", sets,
                    "{\"L\":[{\"L\":[{\"N\":\"1\"},{\"N\":\"2\"}]},"
                    "{\"L\":[{\"N\":\"3\"},{\"N\":\"4\"}]}]}");
        assert_list(WEIR_VALUE_STRING, "[]", sets, "{\"L\":[]}");
        assert_list(WEIR_VALUE_NUMBER, " [ ] ", sets, "{\"L\":[]}");
        /* An element that is not a string is written for what it is. */
        assert_list(WEIR_VALUE_STRING, "[1,true]", sets, "{\"L\":[{\"N\":\"1\"},{\"BOOL\":true}]}");
        /* A text that is not an array is the string of its text. */
        assert_list(WEIR_VALUE_STRING, "[\"a\",", sets, "{\"S\":\"[\\\"a\\\",\"}");
        assert_list(WEIR_VALUE_STRING, "{\"a\":1}", sets, "{\"S\":\"{\\\"a\\\":1}\"}");
        assert_list(WEIR_VALUE_STRING, "\"a\"", sets, "{\"S\":\"\\\"a\\\"\"}");
    }
    /* Without arrays_as_sets, arrays that could be sets stay lists. */
    assert_list(WEIR_VALUE_NUMBER, "[\"1\",\"-2.50\",\"1e+30\"]", false,
                "{\"L\":[{\"N\":\"1\"},{\"N\":\"-2.50\"},{\"N\":\"1e+30\"}]}");
    assert_list(WEIR_VALUE_BYTES, "[\"AAEC\",\"\"]", false,
                "{\"L\":[{\"B\":\"AAEC\"},{\"B\":\"\"}]}");
    assert_list(WEIR_VALUE_STRING, "[\"gift\",\"express\"]", false,
                "{\"L\":[{\"S\":\"gift\"},{\"S\":\"express\"}]}");
}

static void arrays_become_sets_only_when_they_can(void **state)
{
    static const struct {
        enum weir_value_kind kind;
        const char *text, *want;
    } cases[] = {
        {WEIR_VALUE_STRING, "[\"gift\",\"express\"]", "{\"SS\":[\"gift\",\"express\"]}"},
        {WEIR_VALUE_STRING, "[\"A\",\"a\"]", "{\"SS\":[\"A\",\"a\"]}"},
        {WEIR_VALUE_STRING, "[\"\"]", "{\"SS\":[\"\"]}"},
        {WEIR_VALUE_NUMBER, "[\"1\",\"2\",\"10\",\"-0.5\"]",
         "{\"NS\":[\"1\",\"2\",\"10\",\"-0.5\"]}"},
        {WEIR_VALUE_NUMBER, "[\"12\",\"1.2\",\"0.12\"]", "{\"NS\":[\"12\",\"1.2\",\"0.12\"]}"},
        {WEIR_VALUE_NUMBER, "[\"1e2\",\"1e3\"]", "{\"NS\":[\"1e2\",\"1e3\"]}"},
        {WEIR_VALUE_BYTES, "[\"AAEC\",\"AQ==\"]", "{\"BS\":[\"AAEC\",\"AQ==\"]}"},
        /* Duplicates: a set would lose one. */
        {WEIR_VALUE_STRING, "[\"a\",\"a\"]", "{\"L\":[{\"S\":\"a\"},{\"S\":\"a\"}]}"},
        {WEIR_VALUE_STRING, "[\"a\",\"b\",\"a\"]",
         "{\"L\":[{\"S\":\"a\"},{\"S\":\"b\"},{\"S\":\"a\"}]}"},
        {WEIR_VALUE_STRING, "[\"\\u0061\",\"a\"]", "{\"L\":[{\"S\":\"a\"},{\"S\":\"a\"}]}"},
        {WEIR_VALUE_BYTES, "[\"AQ==\",\"AQ==\"]", "{\"L\":[{\"B\":\"AQ==\"},{\"B\":\"AQ==\"}]}"},
        /* Numbers are one when their values are. */
        {WEIR_VALUE_NUMBER, "[\"1\",\"1.0\"]", "{\"L\":[{\"N\":\"1\"},{\"N\":\"1.0\"}]}"},
        {WEIR_VALUE_NUMBER, "[\"100\",\"1e2\"]", "{\"L\":[{\"N\":\"100\"},{\"N\":\"1e2\"}]}"},
        {WEIR_VALUE_NUMBER, "[\"0\",\"-0\"]", "{\"L\":[{\"N\":\"0\"},{\"N\":\"-0\"}]}"},
        {WEIR_VALUE_NUMBER, "[\"0.10\",\"00.1\"]", "{\"L\":[{\"N\":\"0.10\"},{\"N\":\"00.1\"}]}"},
        {WEIR_VALUE_NUMBER, "[\"-5E-1\",\"-0.5\"]", "{\"L\":[{\"N\":\"-5E-1\"},{\"N\":\"-0.5\"}]}"},
        /* Not a number: no NS. */
        {WEIR_VALUE_NUMBER, "[\"NaN\",\"1\"]", "{\"L\":[{\"N\":\"NaN\"},{\"N\":\"1\"}]}"},
        /* A null, no element, a second dimension: no set. */
        {WEIR_VALUE_STRING, "[\"a\",null]", "{\"L\":[{\"S\":\"a\"},{\"NULL\":true}]}"},
        {WEIR_VALUE_NUMBER, "[null]", "{\"L\":[{\"NULL\":true}]}"},
        {WEIR_VALUE_STRING, "[]", "{\"L\":[]}"},
        {WEIR_VALUE_STRING, "[[\"a\"],[\"b\"]]",
         "{\"L\":[{\"L\":[{\"S\":\"a\"}]},{\"L\":[{\"S\":\"b\"}]}]}"},
        /* Kinds DynamoDB has no sets of. */
        {WEIR_VALUE_BOOL, "[\"true\",\"false\"]", "{\"L\":[{\"BOOL\":true},{\"BOOL\":false}]}"},
        {WEIR_VALUE_JSON, "[\"1\",\"2\"]", "{\"L\":[{\"N\":\"1\"},{\"N\":\"2\"}]}"},
    };
    for (size_t i = 0; i < LEN(cases); i++)
        assert_list(cases[i].kind, cases[i].text, true, cases[i].want);
}

static void a_large_set_is_checked_for_duplicates(void **state)
{
    struct weir_buf b;
    weir_buf_init(&b);
    weir_buf_append_char(&b, '[');
    for (int i = 0; i < 5000; i++)
        weir_buf_printf(&b, "%s\"%d\"", i ? "," : "", i);
    weir_buf_append_char(&b, ']');
    json_t *v = list_column(WEIR_VALUE_NUMBER, b.data, true);
    assert_int_equal(json_array_size(json_object_get(v, "NS")), 5000);
    json_decref(v);
    /* The same with one value written again, differently, at the end. */
    b.len--;
    weir_buf_append_str(&b, ",\"2.5e3\"]");
    v = list_column(WEIR_VALUE_NUMBER, b.data, true);
    assert_int_equal(json_array_size(json_object_get(v, "L")), 5001);
    json_decref(v);
    weir_buf_deinit(&b);
}

/* ==== images, view types and operations ======================================================= */

static struct weir_record *row_change(enum weir_row_op op)
{
    struct weir_tuple *nw = NULL, *old = NULL;
    if (op == WEIR_ROW_INSERT || op == WEIR_ROW_UPDATE)
        nw = TUPLE(KEY_S("pk", "o-1"), COL_S("status", "PAID"));
    if (op == WEIR_ROW_UPDATE || op == WEIR_ROW_DELETE)
        old = TUPLE(KEY_S("pk", "o-1"), COL_S("status", "NEW"));
    return rec(op, "orders", SEQ, nw, old);
}

static void each_view_type_and_operation_carries_its_images(void **state)
{
    static const char *const views[] = {NULL,        "KEYS_ONLY",          "NEW_IMAGE",
                                        "OLD_IMAGE", "NEW_AND_OLD_IMAGES", "NO_SUCH_VIEW"};
    static const enum weir_row_op ops[] = {WEIR_ROW_INSERT, WEIR_ROW_UPDATE, WEIR_ROW_DELETE,
                                           WEIR_ROW_TRUNCATE};
    static const char *const names[] = {"INSERT", "MODIFY", "REMOVE", "REMOVE"};
    for (size_t v = 0; v < LEN(views); v++) {
        /* Unset, and a name the configuration would have refused: the fullest view. */
        const char *view = v == 0 || v == LEN(views) - 1 ? "NEW_AND_OLD_IMAGES" : views[v];
        bool new_view = !strcmp(view, "NEW_IMAGE") || !strcmp(view, "NEW_AND_OLD_IMAGES");
        bool old_view = !strcmp(view, "OLD_IMAGE") || !strcmp(view, "NEW_AND_OLD_IMAGES");
        for (size_t o = 0; o < LEN(ops); o++) {
            struct weir_event_ctx c = ctx_of(views[v], false);
            json_t *e = encode1(row_change(ops[o]), &c);
            json_t *d = ddb(e);
            bool has_new = new_view && (ops[o] == WEIR_ROW_INSERT || ops[o] == WEIR_ROW_UPDATE);
            bool has_old = old_view && (ops[o] == WEIR_ROW_UPDATE || ops[o] == WEIR_ROW_DELETE);
            assert_string_equal(str_at(e, "eventName"), names[o]);
            assert_string_equal(str_at(d, "StreamViewType"), view);
            if (has_new != (json_object_get(d, "NewImage") != NULL) ||
                has_old != (json_object_get(d, "OldImage") != NULL))
                fail_msg("view %s, %s: NewImage %d OldImage %d, want %d %d",
                         views[v] ? views[v] : "(unset)", names[o],
                         json_object_get(d, "NewImage") != NULL,
                         json_object_get(d, "OldImage") != NULL, has_new, has_old);
            json_t *keys = json_object_get(d, "Keys");
            if (ops[o] == WEIR_ROW_TRUNCATE) {
                assert_int_equal(json_object_size(keys), 0);
            } else {
                assert_int_equal(json_object_size(keys), 1);
                assert_attr(keys, "pk", "{\"S\":\"o-1\"}");
            }
            if (has_new)
                assert_attr(image(e, "NewImage"), "status", "{\"S\":\"PAID\"}");
            if (has_old)
                assert_attr(image(e, "OldImage"), "status", "{\"S\":\"NEW\"}");
            assert_int_equal(json_object_get(e, "userIdentity") != NULL,
                             ops[o] == WEIR_ROW_TRUNCATE);
            json_decref(e);
        }
    }
}

static void old_image_is_what_the_replica_identity_gave(void **state)
{
    struct weir_event_ctx c = ctx_of("NEW_AND_OLD_IMAGES", false);
    /* An UPDATE that kept its key under a default identity: no old row, no OldImage. */
    json_t *e = encode1(rec(WEIR_ROW_UPDATE, "orders", SEQ,
                            TUPLE(KEY_S("pk", "o-1"), COL_S("status", "PAID")), NULL),
                        &c);
    assert_null(json_object_get(ddb(e), "OldImage"));
    assert_attr(image(e, "NewImage"), "status", "{\"S\":\"PAID\"}");
    json_decref(e);

    /* A DELETE under a default identity: the old row is the key, and so is the OldImage. */
    struct weir_record *r = rec(WEIR_ROW_DELETE, "orders", SEQ, NULL, TUPLE(KEY_S("pk", "o-1")));
    r->row->old_full = false;
    e = encode1(r, &c);
    static const char *const pk[] = {"pk", NULL};
    assert_members(image(e, "OldImage"), pk);
    assert_members(json_object_get(ddb(e), "Keys"), pk);
    json_decref(e);
}

static void keys_are_the_key_columns_of_the_row_in_column_order(void **state)
{
    struct weir_event_ctx c = ctx_of("NEW_AND_OLD_IMAGES", false);
    static const char *const k2k1[] = {"k2", "k1", NULL};
    json_t *e = encode1(
        rec(WEIR_ROW_INSERT, "orders", SEQ,
            TUPLE(COL_S("a", "x"), KEY_N("k2", "2"), COL_S("b", "y"), KEY_S("k1", "one")), NULL),
        &c);
    json_t *keys = json_object_get(ddb(e), "Keys");
    assert_members(keys, k2k1);
    assert_attr(keys, "k2", "{\"N\":\"2\"}");
    assert_attr(keys, "k1", "{\"S\":\"one\"}");
    json_decref(e);

    /* An UPDATE that changed the key: Keys names the row as it is now. */
    e = encode1(rec(WEIR_ROW_UPDATE, "orders", SEQ, TUPLE(KEY_S("pk", "o-2"), COL_S("s", "x")),
                    TUPLE(KEY_S("pk", "o-1"), COL_S("s", "x"))),
                &c);
    assert_attr(json_object_get(ddb(e), "Keys"), "pk", "{\"S\":\"o-2\"}");
    assert_attr(image(e, "OldImage"), "pk", "{\"S\":\"o-1\"}");
    json_decref(e);

    /* A DELETE: the old row's key; without an old row, the new row's. */
    e = encode1(
        rec(WEIR_ROW_DELETE, "orders", SEQ, NULL, TUPLE(COL_S("a", "x"), KEY_S("pk", "o-3"))), &c);
    assert_attr(json_object_get(ddb(e), "Keys"), "pk", "{\"S\":\"o-3\"}");
    json_decref(e);
    e = encode1(rec(WEIR_ROW_DELETE, "orders", SEQ, TUPLE(KEY_S("pk", "o-4")), NULL), &c);
    assert_attr(json_object_get(ddb(e), "Keys"), "pk", "{\"S\":\"o-4\"}");
    assert_null(json_object_get(ddb(e), "OldImage"));
    assert_null(json_object_get(ddb(e), "NewImage"));
    json_decref(e);

    /* A table without a key: Keys is there, empty. */
    e = encode1(rec(WEIR_ROW_INSERT, "orders", SEQ, TUPLE(COL_S("a", "x")), NULL), &c);
    assert_int_equal(json_object_size(json_object_get(ddb(e), "Keys")), 0);
    json_decref(e);
}

static void unchanged_values_come_from_the_old_row_or_are_left_out(void **state)
{
    struct weir_event_ctx c = ctx_of("NEW_AND_OLD_IMAGES", false);
    static const char *const new_cols[] = {"pk", "doc", "note", NULL};
    static const char *const old_cols[] = {"pk", "doc", "note", NULL};
    json_t *e = encode1(rec(WEIR_ROW_UPDATE, "orders", SEQ,
                            TUPLE(KEY_S("pk", "p"), COL_UNCH("doc"), COL_S("note", "n"),
                                  COL_UNCH("blob"), COL_UNCH("gone")),
                            TUPLE(KEY_S("pk", "p"), COL_JSON("doc", "{\"a\":1}"),
                                  COL_S("note", "old"), COL_UNCH("blob"))),
                        &c);
    json_t *nw = image(e, "NewImage"), *old = image(e, "OldImage");
    assert_members(nw, new_cols);
    assert_attr(nw, "doc", "{\"M\":{\"a\":{\"N\":\"1\"}}}");
    assert_attr(nw, "note", "{\"S\":\"n\"}");
    assert_members(old, old_cols);
    assert_attr(old, "note", "{\"S\":\"old\"}");
    json_decref(e);

    /* Without an old row nothing is known of it. */
    static const char *const known[] = {"pk", "note", NULL};
    e = encode1(rec(WEIR_ROW_UPDATE, "orders", SEQ,
                    TUPLE(KEY_S("pk", "p"), COL_UNCH("doc"), COL_S("note", "n")), NULL),
                &c);
    assert_members(image(e, "NewImage"), known);
    json_decref(e);

    /* An old row of the key only does not know the value either; an old NULL is known. */
    e = encode1(rec(WEIR_ROW_UPDATE, "orders", SEQ,
                    TUPLE(KEY_S("pk", "p"), COL_UNCH("doc"), COL_UNCH("n")),
                    TUPLE(KEY_S("pk", "p"), COL_NULL("n"))),
                &c);
    static const char *const pk_n[] = {"pk", "n", NULL};
    assert_members(image(e, "NewImage"), pk_n);
    assert_attr(image(e, "NewImage"), "n", "{\"NULL\":true}");
    json_decref(e);

    /* A key column not sent is taken from the old row too, in Keys as in the image. */
    struct weir_tuple *nt = TUPLE(KEY_S("pk", "x"), COL_S("s", "v"));
    weir_tuple_set(nt, 0, "pk", WEIR_VALUE_UNCHANGED, NULL, 0);
    e = encode1(rec(WEIR_ROW_UPDATE, "orders", SEQ, nt, TUPLE(KEY_S("pk", "long-key"))), &c);
    assert_attr(json_object_get(ddb(e), "Keys"), "pk", "{\"S\":\"long-key\"}");
    assert_attr(image(e, "NewImage"), "pk", "{\"S\":\"long-key\"}");
    json_decref(e);
}

static void truncate_is_one_remove_marker_without_keys_or_images(void **state)
{
    struct weir_event_ctx c = ctx_of("NEW_AND_OLD_IMAGES", false);
    struct weir_record *r = rec(WEIR_ROW_TRUNCATE, "sales.orders", SEQ, NULL, NULL);
    char *text = element_text(r, &c);
    /* userIdentity ends the element, after eventSourceARN. */
    static const char tail[] =
        "\"eventSourceARN\":\"arn:aws:dynamodb:eu-west-1:000000000000:table/sales.orders/"
        "stream/" LABEL
        "\",\"userIdentity\":{\"type\":\"Service\",\"principalId\":\"weir.truncate\"}}";
    size_t len = strlen(text);
    assert_true(len > strlen(tail));
    assert_string_equal(text + len - strlen(tail), tail);
    free(text);

    json_t *e = encode1(r, &c);
    static const char *const rkeys[] = {"eventID",        "eventName",    "eventVersion",
                                        "eventSource",    "awsRegion",    "dynamodb",
                                        "eventSourceARN", "userIdentity", NULL};
    assert_members(e, rkeys);
    assert_string_equal(str_at(e, "eventName"), "REMOVE");
    static const char *const dkeys[] = {"ApproximateCreationDateTime",
                                        "Keys",
                                        "SequenceNumber",
                                        "SizeBytes",
                                        "StreamViewType",
                                        NULL};
    assert_members(ddb(e), dkeys);
    assert_int_equal(json_object_size(json_object_get(ddb(e), "Keys")), 0);
    assert_int_equal(int_at(ddb(e), "SizeBytes"), 9); /* "Keys":{} */
    json_t *who = json_object_get(e, "userIdentity");
    assert_string_equal(str_at(who, "type"), "Service");
    assert_string_equal(str_at(who, "principalId"), "weir.truncate");
    json_decref(e);
}

/* ==== escaping ================================================================================ */

static void odd_names_and_bytes_that_are_not_utf8_stay_json(void **state)
{
    struct weir_event_ctx c = ctx_of("NEW_AND_OLD_IMAGES", false);
    c.region = "eu\"west\\1";
    c.stream_label = "lab\nel";
    struct weir_record *r =
        rec(WEIR_ROW_INSERT, "we\"ird\\.t\xffz", SEQ,
            TUPLE(KEY_S("k\"ey", "v\"al"), COL_S("back\\slash", "a\\b"), COL_S("new\nline", "x\ty"),
                  COL_S("ctl\x01", "\x01\x1f\x7f"), COL_S("caf\xc3\xa9", "\xe2\x80\xa8"),
                  COL_S("bad\xff", "bad\xfe"
                                   "byte"),
                  COL_S("", "empty name"), COL_JSON("j\"", "{\"k\\\"\":\"\\u2028\"}")),
            NULL);
    json_t *e = encode1(r, &c);
    assert_string_equal(str_at(e, "awsRegion"), "eu\"west\\1");
    assert_string_equal(str_at(e, "eventSourceARN"),
                        "arn:aws:dynamodb:eu\"west\\1:000000000000:table/we\"ird\\.t\xef\xbf\xbdz"
                        "/stream/lab\nel");
    assert_attr(json_object_get(ddb(e), "Keys"), "k\"ey", "{\"S\":\"v\\\"al\"}");
    json_t *img = image(e, "NewImage");
    assert_int_equal(json_object_size(img), 8);
    assert_attr(img, "back\\slash", "{\"S\":\"a\\\\b\"}");
    assert_attr(img, "new\nline", "{\"S\":\"x\\ty\"}");
    assert_attr(img, "ctl\x01", "{\"S\":\"\\u0001\\u001f\\u007f\"}");
    assert_attr(img, "caf\xc3\xa9", "{\"S\":\"\\u2028\"}");
    assert_attr(img, "bad\xef\xbf\xbd", "{\"S\":\"bad\\ufffdbyte\"}");
    assert_attr(img, "", "{\"S\":\"empty name\"}");
    assert_attr(img, "j\"", "{\"M\":{\"k\\\"\":{\"S\":\"\\u2028\"}}}");
    json_decref(e);
}

/* A tiny deterministic generator for the byte soup below. */
static uint64_t rnd_state = 0x9e3779b97f4a7c15u;

static uint32_t rnd(uint32_t n)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return (uint32_t)(rnd_state % n);
}

static void rnd_bytes(struct weir_buf *b, size_t max)
{
    static const char soup[] = "a\"\\\n\x01\xff\xc3\xa9\xe2\x80\xa8{}[],:0-.eE\x7f u";
    size_t n = rnd((uint32_t)max + 1);
    for (size_t i = 0; i < n; i++)
        weir_buf_append_char(b, soup[rnd(sizeof(soup) - 1)]);
}

/* A JSON text, a little broken now and then. */
static void rnd_json(struct weir_buf *b)
{
    static const char *const texts[] = {
        "{\"a\":[1,2.5e-3,{\"b\":null}],\"s\":\"x\\\"\\u00e9\"}",
        "[\"a\",\"b\",null,[\"c\"]]",
        "[\"1\",\"2\",\"3\"]",
        "\"str\"",
        "-0.5E+10",
        "[\"{\\\"k\\\":1}\",\"true\"]",
        "[\"AAEC\",\"AQ==\"]",
    };
    weir_buf_append_str(b, texts[rnd(LEN(texts))]);
    for (uint32_t k = rnd(4); k > 0 && b->len > 0; k--) {
        size_t at = rnd((uint32_t)b->len);
        static const char edits[] = "\"\\[]{},:\xff\x01 0eu";
        b->data[at] = edits[rnd(sizeof(edits) - 1)];
    }
}

static void any_row_becomes_valid_json_the_filter_reads_too(void **state)
{
    static const char *const views[] = {"KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE",
                                        "NEW_AND_OLD_IMAGES"};
    const char *pattern = "{\"eventSource\":[\"aws:dynamodb\"]}";
    size_t plen = strlen(pattern), bad;
    struct weir_filter_error ferr;
    struct weir_filter *f =
        weir_filter_new(&pattern, &plen, 1, weir_format_dynamodb.filter_shape, &bad, &ferr);
    assert_non_null(f);
    struct weir_buf name, value;
    weir_buf_init(&name);
    weir_buf_init(&value);
    for (int round = 0; round < 2000; round++) {
        struct weir_tuple *t[2];
        for (int w = 0; w < 2; w++) {
            size_t n = rnd(6);
            t[w] = weir_tuple_new(n);
            for (size_t i = 0; i < n; i++) {
                enum weir_value_kind kind = (enum weir_value_kind)rnd(WEIR_VALUE_LIST + 1);
                weir_buf_reset(&name);
                weir_buf_reset(&value);
                rnd_bytes(&name, 6);
                if (kind == WEIR_VALUE_JSON || kind == WEIR_VALUE_LIST)
                    rnd_json(&value);
                else
                    rnd_bytes(&value, 12);
                weir_buf_append(&name, "", 0);
                weir_tuple_set(t[w], i, name.data, kind,
                               kind == WEIR_VALUE_NULL || kind == WEIR_VALUE_UNCHANGED ? NULL
                               : value.data                                            ? value.data
                                                                                       : "",
                               value.len);
                t[w]->cols[i].key = rnd(3) == 0;
                t[w]->cols[i].elem_kind = (enum weir_value_kind)(WEIR_VALUE_STRING + rnd(5));
            }
        }
        enum weir_row_op op = (enum weir_row_op)rnd(4);
        struct weir_event_ctx c = ctx_of(views[rnd(LEN(views))], rnd(2));
        struct weir_record *r =
            rec(op, "t", "42", op == WEIR_ROW_DELETE || op == WEIR_ROW_TRUNCATE ? NULL : t[0],
                op == WEIR_ROW_UPDATE || op == WEIR_ROW_DELETE ? t[1] : NULL);
        if (op == WEIR_ROW_DELETE || op == WEIR_ROW_TRUNCATE)
            weir_tuple_free(t[0]);
        if (op == WEIR_ROW_INSERT || op == WEIR_ROW_TRUNCATE)
            weir_tuple_free(t[1]);
        json_t *ev = encode_flags(&r, 1, &c, 0);
        json_decref(ev);
        if (!weir_filter_match(f, r, weir_format_dynamodb.encoder, &c))
            fail_msg("round %d: the filter could not read the element", round);
        weir_record_free(r);
    }
    weir_buf_deinit(&name);
    weir_buf_deinit(&value);
    weir_filter_free(f);
}

/* ==== eventID, time and size ================================================================== */

static const char *event_id_of(const char *seq, char out[33])
{
    struct weir_event_ctx c = ctx_of(NULL, false);
    json_t *e = encode1(rec(WEIR_ROW_INSERT, "orders", seq, TUPLE(KEY_S("pk", "p")), NULL), &c);
    snprintf(out, 33, "%s", str_at(e, "eventID"));
    json_decref(e);
    return out;
}

static void event_id_is_the_sequence_number_as_a_128_bit_number_in_hex(void **state)
{
    static const struct {
        const char *seq, *id;
    } cases[] = {
        {"0", "00000000000000000000000000000000"},
        {"1", "00000000000000000000000000000001"},
        {"255", "000000000000000000000000000000ff"},
        {SEQ, "000000000000000000000f42e5f07803"},
        {"000000000000000016780000000004", "000000000000000000000f42e5f07804"},
        {"18446744073709551616", "00000000000000010000000000000000"},
        {"99999999999999999999999999999999999999", "4b3b4ca85a86c47a098a223fffffffff"},
        {"340282366920938463463374607431768211455", "ffffffffffffffffffffffffffffffff"},
    };
    char a[33], b[33];
    for (size_t i = 0; i < LEN(cases); i++)
        assert_string_equal(event_id_of(cases[i].seq, a), cases[i].id);
    /* Delivered again, the same record has the same eventID. */
    assert_string_equal(event_id_of(SEQ, a), event_id_of(SEQ, b));
    /* Past 128 bits, or not a number: still 32 hex digits, stable, apart from the others. */
    static const char *const odd[] = {"340282366920938463463374607431768211456", "", "abc", "abd",
                                      "12a"};
    for (size_t i = 0; i < LEN(odd); i++) {
        assert_string_equal(event_id_of(odd[i], a), event_id_of(odd[i], b));
        assert_string_not_equal(a, "00000000000000000000000000000000");
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal(a, event_id_of(odd[k], b));
    }
}

static void creation_time_is_whole_epoch_seconds_rounded_down(void **state)
{
    static const struct {
        int64_t ms, s;
    } cases[] = {
        {SENT_MS, 1741083062},
        {1741083062999LL, 1741083062},
        {1741083063000LL, 1741083063},
        {999, 0},
        {0, 0},
        {-1, -1},
        {-1000, -1},
        {-1001, -2},
    };
    struct weir_event_ctx c = ctx_of(NULL, false);
    for (size_t i = 0; i < LEN(cases); i++) {
        struct weir_record *r = rec(WEIR_ROW_INSERT, "orders", SEQ, TUPLE(KEY_S("pk", "p")), NULL);
        r->sent_ms = cases[i].ms;
        json_t *e = encode1(r, &c);
        assert_int_equal(int_at(ddb(e), "ApproximateCreationDateTime"), cases[i].s);
        json_decref(e);
    }
}

/* SizeBytes against the element's text: from "Keys" to the end of the last image. */
static void size_bytes_counts_the_item_members_as_written(void **state)
{
    for (size_t v = 0; v < LEN(view_types); v++) {
        struct weir_event_ctx c = ctx_of(view_types[v], true);
        struct weir_record *r = reference_modify();
        char *text = element_text(r, &c);
        const char *from = strstr(text, "\"Keys\":");
        const char *to = strstr(text, ",\"SequenceNumber\":\"" SEQ "\"");
        assert_non_null(from);
        assert_non_null(to);
        json_t *e = encode1(r, &c);
        assert_int_equal(int_at(ddb(e), "SizeBytes"), to - from);
        json_decref(e);
        free(text);
    }
    struct weir_event_ctx c = ctx_of("KEYS_ONLY", false);
    json_t *e = encode1(reference_modify(), &c);
    assert_int_equal(int_at(ddb(e), "SizeBytes"),
                     strlen("\"Keys\":{\"pk\":{\"S\":\"order#o-17\"}}"));
    json_decref(e);
}

static void records_of_one_event_follow_each_other(void **state)
{
    struct weir_event_ctx c = ctx_of(NULL, true);
    struct weir_record *rs[] = {
        row_change(WEIR_ROW_INSERT),
        row_change(WEIR_ROW_UPDATE),
        row_change(WEIR_ROW_DELETE),
        rec(WEIR_ROW_TRUNCATE, "orders", "000000000000000016790000000000", NULL, NULL),
    };
    free(rs[1]->id);
    rs[1]->id = weir_strdup("000000000000000016780000000004");
    free(rs[2]->id);
    rs[2]->id = weir_strdup("000000000000000016780000000005");
    json_t *ev = encode(rs, LEN(rs), &c);
    json_t *arr = json_object_get(ev, "Records");
    static const char *const names[] = {"INSERT", "MODIFY", "REMOVE", "REMOVE"};
    for (size_t i = 0; i < LEN(rs); i++) {
        json_t *e = json_array_get(arr, i);
        assert_string_equal(str_at(e, "eventName"), names[i]);
        assert_string_equal(str_at(ddb(e), "SequenceNumber"), rs[i]->id);
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal(str_at(e, "eventID"),
                                    str_at(json_array_get(arr, k), "eventID"));
        weir_record_free(rs[i]);
    }
    json_decref(ev);
}

static void opening_is_the_same_with_or_without_a_record(void **state)
{
    struct weir_event_ctx c = ctx_of(NULL, false);
    struct weir_record *r = row_change(WEIR_ROW_INSERT);
    struct weir_buf a, b;
    weir_buf_init(&a);
    weir_buf_init(&b);
    weir_format_dynamodb.encoder->open(&a, &c, NULL);
    weir_format_dynamodb.encoder->open(&b, &c, r);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    weir_format_dynamodb.encoder->close(&a, &c);
    json_t *ev = parse(a.data, a.len, 0);
    assert_int_equal(json_array_size(json_object_get(ev, "Records")), 0);
    json_decref(ev);
    weir_buf_deinit(&a);
    weir_buf_deinit(&b);
    weir_record_free(r);
}

/* ==== the format row: batch info, item identifier, filter shape =============================== */

static void batch_info_is_the_ddb_stream_batch_info(void **state)
{
    struct weir_event_ctx c = ctx_of(NULL, false);
    struct weir_record *rs[] = {
        rec(WEIR_ROW_INSERT, "sales.orders", "000000000000000016780000000000",
            TUPLE(KEY_S("pk", "a")), NULL),
        rec(WEIR_ROW_INSERT, "sales.orders", "000000000000000016780000000001",
            TUPLE(KEY_S("pk", "b")), NULL),
        rec(WEIR_ROW_INSERT, "sales.orders", "000000000000000016800000000000",
            TUPLE(KEY_S("pk", "c")), NULL),
    };
    rs[2]->sent_ms = SENT_MS + 886;
    struct weir_buf out;
    weir_buf_init(&out);
    weir_buf_append_char(&out, '{');
    weir_format_dynamodb.batch_info(&out, &c, rs, LEN(rs));
    weir_buf_append_char(&out, '}');
    json_t *doc = parse(out.data, out.len, JSON_REJECT_DUPLICATES);
    assert_int_equal(json_object_size(doc), 1);
    json_t *info = json_object_get(doc, "DDBStreamBatchInfo");
    static const char *const keys[] = {"shardId",
                                       "startSequenceNumber",
                                       "endSequenceNumber",
                                       "approximateArrivalOfFirstRecord",
                                       "approximateArrivalOfLastRecord",
                                       "batchSize",
                                       "streamArn",
                                       NULL};
    assert_members(info, keys);
    assert_string_equal(str_at(info, "shardId"), "shardId-000000000000");
    assert_string_equal(str_at(info, "startSequenceNumber"), "000000000000000016780000000000");
    assert_string_equal(str_at(info, "endSequenceNumber"), "000000000000000016800000000000");
    assert_string_equal(str_at(info, "approximateArrivalOfFirstRecord"), SENT_ISO);
    assert_string_equal(str_at(info, "approximateArrivalOfLastRecord"), "2025-03-04T10:11:03.004Z");
    assert_int_equal(int_at(info, "batchSize"), 3);
    assert_string_equal(str_at(info, "streamArn"),
                        "arn:aws:dynamodb:eu-west-1:000000000000:table/sales.orders/stream/" LABEL);
    json_decref(doc);

    /* One record: first and last are the same. */
    weir_buf_reset(&out);
    weir_buf_append_char(&out, '{');
    weir_format_dynamodb.batch_info(&out, &c, rs + 1, 1);
    weir_buf_append_char(&out, '}');
    doc = parse(out.data, out.len, JSON_REJECT_DUPLICATES);
    info = json_object_get(doc, "DDBStreamBatchInfo");
    assert_string_equal(str_at(info, "startSequenceNumber"), str_at(info, "endSequenceNumber"));
    assert_int_equal(int_at(info, "batchSize"), 1);
    json_decref(doc);
    weir_buf_deinit(&out);
    for (size_t i = 0; i < LEN(rs); i++)
        weir_record_free(rs[i]);
}

static void format_row_names_the_sequence_number_and_the_metadata_keys(void **state)
{
    const struct weir_event_format *fmt = &weir_format_dynamodb;
    assert_string_equal(fmt->name, "DynamoDB");
    assert_null(fmt->find_item); /* itemIdentifier: the SequenceNumber, r->id */
    assert_null(fmt->render_attrs);
    assert_non_null(fmt->batch_info);
    const struct weir_filter_shape *s = fmt->filter_shape;
    assert_non_null(s);
    assert_string_equal(s->name, "DynamoDB");
    assert_false(s->plain_data);
    static const struct weir_filter_key want[] = {
        {"eventID", WEIR_FILTER_KEY_STRING},      {"eventName", WEIR_FILTER_KEY_STRING},
        {"eventVersion", WEIR_FILTER_KEY_STRING}, {"eventSource", WEIR_FILTER_KEY_STRING},
        {"awsRegion", WEIR_FILTER_KEY_STRING},    {"eventSourceARN", WEIR_FILTER_KEY_STRING},
        {"dynamodb", WEIR_FILTER_KEY_OBJECT},     {"userIdentity", WEIR_FILTER_KEY_OBJECT},
    };
    assert_int_equal(s->n_keys, LEN(want));
    for (size_t i = 0; i < LEN(want); i++) {
        bool found = false;
        for (size_t k = 0; k < s->n_keys; k++)
            if (!strcmp(s->keys[k].name, want[i].name)) {
                assert_int_equal(s->keys[k].kind, want[i].kind);
                found = true;
            }
        if (!found)
            fail_msg("the shape has no key %s", want[i].name);
    }
    for (size_t k = 0; k < s->n_keys; k++)
        assert_int_not_equal(s->keys[k].kind, WEIR_FILTER_KEY_DATA);
}

static struct weir_filter *compile1(const char *pattern)
{
    size_t len = strlen(pattern), bad;
    struct weir_filter_error err;
    return weir_filter_new(&pattern, &len, 1, weir_format_dynamodb.filter_shape, &bad, &err);
}

static bool matches(const char *pattern, struct weir_record *r, const struct weir_event_ctx *c)
{
    struct weir_filter *f = compile1(pattern);
    if (!f)
        fail_msg("pattern refused: %s", pattern);
    assert_false(weir_filter_reads_data(f));
    assert_true(weir_filter_reads_metadata(f));
    bool hit = weir_filter_match(f, r, weir_format_dynamodb.encoder, c);
    weir_filter_free(f);
    weir_record_free(r);
    return hit;
}

static struct weir_record *order(enum weir_row_op op, const char *status)
{
    struct weir_tuple *t =
        TUPLE(KEY_S("pk", "order#o-17"), COL_S("status", status), COL_N("total", "42.50"));
    if (op == WEIR_ROW_DELETE)
        return rec(op, "orders", SEQ, NULL, t);
    if (op == WEIR_ROW_UPDATE)
        return rec(op, "orders", SEQ, t, TUPLE(KEY_S("pk", "order#o-17"), COL_S("status", "NEW")));
    return rec(op, "orders", SEQ, t, NULL);
}

static void filter_reads_the_record_element_without_a_payload_key(void **state)
{
    struct weir_event_ctx c = ctx_of(NULL, false);
    const char *insert = "{\"eventName\":[\"INSERT\"]}";
    assert_true(matches(insert, order(WEIR_ROW_INSERT, "PAID"), &c));
    assert_false(matches(insert, order(WEIR_ROW_UPDATE, "PAID"), &c));
    assert_false(matches(insert, order(WEIR_ROW_DELETE, "PAID"), &c));
    assert_false(matches(insert, rec(WEIR_ROW_TRUNCATE, "orders", SEQ, NULL, NULL), &c));

    const char *paid = "{\"dynamodb\":{\"NewImage\":{\"status\":{\"S\":[\"PAID\"]}}}}";
    assert_true(matches(paid, order(WEIR_ROW_INSERT, "PAID"), &c));
    assert_true(matches(paid, order(WEIR_ROW_UPDATE, "PAID"), &c));
    assert_false(matches(paid, order(WEIR_ROW_INSERT, "NEW"), &c));
    assert_false(matches(paid, order(WEIR_ROW_DELETE, "PAID"), &c)); /* no NewImage */
    struct weir_event_ctx keys_only = ctx_of("KEYS_ONLY", false);
    assert_false(matches(paid, order(WEIR_ROW_INSERT, "PAID"), &keys_only));

    /* More of what patterns on DynamoDB records say. */
    assert_true(matches("{\"eventName\":[\"MODIFY\"],\"dynamodb\":{\"OldImage\":{\"status\":{\"S\":"
                        "[\"NEW\"]}}}}",
                        order(WEIR_ROW_UPDATE, "PAID"), &c));
    assert_true(matches("{\"dynamodb\":{\"Keys\":{\"pk\":{\"S\":[{\"prefix\":\"order#\"}]}}}}",
                        order(WEIR_ROW_DELETE, "PAID"), &c));
    assert_true(matches("{\"dynamodb\":{\"NewImage\":{\"total\":{\"N\":[\"42.50\"]}}}}",
                        order(WEIR_ROW_INSERT, "PAID"), &c));
    assert_true(matches("{\"userIdentity\":{\"principalId\":[\"weir.truncate\"]}}",
                        rec(WEIR_ROW_TRUNCATE, "orders", SEQ, NULL, NULL), &c));
    assert_false(matches("{\"userIdentity\":{\"principalId\":[\"weir.truncate\"]}}",
                         order(WEIR_ROW_DELETE, "PAID"), &c));
    assert_true(matches("{\"eventSourceARN\":[{\"suffix\":\"table/orders/stream/" LABEL "\"}]}",
                        order(WEIR_ROW_INSERT, "PAID"), &c));
    assert_true(matches("{\"awsRegion\":[\"eu-west-1\"],\"eventSource\":[\"aws:dynamodb\"]}",
                        order(WEIR_ROW_INSERT, "PAID"), &c));

    /* The shape's keys and their kinds are checked when a pattern is compiled. */
    assert_null(compile1("{\"data\":{\"status\":[\"PAID\"]}}"));
    assert_null(compile1("{\"NewImage\":{\"status\":{\"S\":[\"PAID\"]}}}"));
    assert_null(compile1("{\"eventName\":{\"x\":[\"INSERT\"]}}"));
    assert_null(compile1("{\"dynamodb\":[\"x\"]}"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(record_is_the_reference_record_member_by_member_in_order),
        cmocka_unit_test(every_value_kind_becomes_its_attribute_type),
        cmocka_unit_test(json_nests_as_maps_and_lists_with_each_number_s_own_digits),
        cmocka_unit_test(json_keys_written_twice_are_kept_as_written),
        cmocka_unit_test(json_text_that_is_not_json_is_the_string_of_its_text),
        cmocka_unit_test(json_nested_past_256_levels_is_a_string),
        cmocka_unit_test(arrays_are_lists_typed_by_their_element_kind),
        cmocka_unit_test(arrays_become_sets_only_when_they_can),
        cmocka_unit_test(a_large_set_is_checked_for_duplicates),
        cmocka_unit_test(each_view_type_and_operation_carries_its_images),
        cmocka_unit_test(old_image_is_what_the_replica_identity_gave),
        cmocka_unit_test(keys_are_the_key_columns_of_the_row_in_column_order),
        cmocka_unit_test(unchanged_values_come_from_the_old_row_or_are_left_out),
        cmocka_unit_test(truncate_is_one_remove_marker_without_keys_or_images),
        cmocka_unit_test(odd_names_and_bytes_that_are_not_utf8_stay_json),
        cmocka_unit_test(any_row_becomes_valid_json_the_filter_reads_too),
        cmocka_unit_test(event_id_is_the_sequence_number_as_a_128_bit_number_in_hex),
        cmocka_unit_test(creation_time_is_whole_epoch_seconds_rounded_down),
        cmocka_unit_test(size_bytes_counts_the_item_members_as_written),
        cmocka_unit_test(records_of_one_event_follow_each_other),
        cmocka_unit_test(opening_is_the_same_with_or_without_a_record),
        cmocka_unit_test(batch_info_is_the_ddb_stream_batch_info),
        cmocka_unit_test(format_row_names_the_sequence_number_and_the_metadata_keys),
        cmocka_unit_test(filter_reads_the_record_element_without_a_payload_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
