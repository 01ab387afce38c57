/* The pgoutput wire decoder (pollers/pgoutput.c): every message kind and every column type as a
 * real Postgres 15 server sent them (tests/unit/pgoutput_captured.h says how they were captured),
 * the relation and type caches, malformed and truncated messages (each copied into a buffer of
 * exactly its size, so the sanitizer build catches any read past it), and the conversion of
 * column text into neutral values, array literals included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "model/row.h"
#include "pollers/pgoutput.h"

#include "pgoutput_captured.h"

#define LEN(a) (sizeof(a) / sizeof(*(a)))

/* The relation ids and type OIDs the captured session holds. */
#define REL_SCALARS 16394
#define REL_ARRAYS  16401
#define REL_KEYED   16423
#define REL_FULL    16416
#define REL_TOASTY  16408
#define REL_TRUNC_A 16431
#define REL_TRUNC_B 16437
#define OID_MOOD    16385
#define OID_POSINT  16392
#define OID_MOODS   16384

/* 2026-12-01 16:08:11.658020 UTC, the first transaction's commit, in Unix microseconds. */
#define COMMIT_741_US 1796141291658020LL

static const char *const kind_names[] = {"NULL", "UNCHANGED", "STRING", "NUMBER",
                                         "BOOL", "BYTES",     "JSON",   "LIST"};

/* Decodes len bytes from a heap buffer of exactly that size. */
static weir_status decode(struct weir_pgo *d, const uint8_t *data, size_t len,
                          struct weir_pgo_msg *m, char *why, size_t why_len)
{
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, data, len);
    weir_status st = weir_pgo_decode(d, len ? copy : NULL, len, m, why, why_len);
    free(copy);
    return st;
}

static void decode_ok(struct weir_pgo *d, const uint8_t *data, size_t len, struct weir_pgo_msg *m)
{
    char why[256];
    if (decode(d, data, len, m, why, sizeof(why)) != WEIR_OK)
        fail_msg("decode failed: %s", why);
}

#define DECODE_OK(d, cap, m) decode_ok(d, cap, sizeof(cap), m)

/* A decoder fed every captured message before the one named stop (NULL: all of them). */
static struct weir_pgo *session_until(const char *stop)
{
    struct weir_pgo *d = weir_pgo_new();
    for (size_t i = 0; i < LEN(cap_session) && (!stop || strcmp(cap_session[i].name, stop)); i++) {
        struct weir_pgo_msg m;
        decode_ok(d, cap_session[i].data, cap_session[i].len, &m);
        weir_pgo_msg_clear(&m);
    }
    return d;
}

static void col_is(const struct weir_tuple *t, const char *name, enum weir_value_kind kind,
                   const char *value)
{
    const struct weir_column *c = weir_tuple_find(t, name);
    if (!c)
        fail_msg("no column %s", name);
    if (c->kind != kind)
        fail_msg("column %s is %s, want %s", name, kind_names[c->kind], kind_names[kind]);
    if (!value) {
        assert_null(c->value);
        return;
    }
    assert_non_null(c->value);
    if (c->value_len != strlen(value) || memcmp(c->value, value, c->value_len))
        fail_msg("column %s is %.*s, want %s", name, (int)c->value_len, c->value, value);
}

static void list_is(const struct weir_tuple *t, const char *name, enum weir_value_kind elem,
                    const char *json)
{
    col_is(t, name, WEIR_VALUE_LIST, json);
    const struct weir_column *c = weir_tuple_find(t, name);
    if (c->elem_kind != elem)
        fail_msg("column %s's elements are %s, want %s", name, kind_names[c->elem_kind],
                 kind_names[elem]);
}

/* The value of text (copied into a buffer of exactly its length, no NUL) of type oid. */
static void value_is(const struct weir_pgo *d, uint32_t oid, const char *text,
                     enum weir_value_kind kind, enum weir_value_kind elem, const void *want,
                     size_t want_len)
{
    size_t len = strlen(text);
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, text, len);
    struct weir_buf out;
    weir_buf_init(&out);
    enum weir_value_kind k, ek;
    weir_pgo_value(d, oid, copy, len, &k, &ek, &out);
    free(copy);
    if (k != kind || ek != elem)
        fail_msg("type %u \"%s\" is %s of %s, want %s of %s", oid, text, kind_names[k],
                 kind_names[ek], kind_names[kind], kind_names[elem]);
    if (out.len != want_len || memcmp(out.data, want, want_len))
        fail_msg("type %u \"%s\" is %.*s, want %.*s", oid, text, (int)out.len, out.data,
                 (int)want_len, (const char *)want);
    weir_buf_deinit(&out);
}

#define VALUE_IS(d, oid, text, kind, want)                                                         \
    value_is(d, oid, text, WEIR_VALUE_##kind, WEIR_VALUE_NULL, want, strlen(want))
#define LIST_IS(d, oid, text, elem, want)                                                          \
    value_is(d, oid, text, WEIR_VALUE_LIST, WEIR_VALUE_##elem, want, strlen(want))
/* Text that is not what its type says stays the text, as a STRING. */
#define STAYS_TEXT(d, oid, text) VALUE_IS(d, oid, text, STRING, text)

/* ---- the captured session ---- */

static void session_decodes_every_message_in_order_with_its_kind(void **state)
{
    static const struct {
        char type;
        enum weir_pgo_kind kind;
    } kinds[] = {
        {'B', WEIR_PGO_BEGIN},    {'C', WEIR_PGO_COMMIT}, {'O', WEIR_PGO_ORIGIN},
        {'R', WEIR_PGO_RELATION}, {'Y', WEIR_PGO_TYPE},   {'I', WEIR_PGO_INSERT},
        {'U', WEIR_PGO_UPDATE},   {'D', WEIR_PGO_DELETE}, {'T', WEIR_PGO_TRUNCATE},
        {'M', WEIR_PGO_MESSAGE},
    };
    bool seen[LEN(kinds)] = {false};
    struct weir_pgo *d = weir_pgo_new();
    for (size_t i = 0; i < LEN(cap_session); i++) {
        struct weir_pgo_msg m;
        decode_ok(d, cap_session[i].data, cap_session[i].len, &m);
        size_t k = 0;
        while (k < LEN(kinds) && kinds[k].type != (char)cap_session[i].data[0])
            k++;
        assert_true(k < LEN(kinds));
        if (m.kind != kinds[k].kind)
            fail_msg("%s decoded as %s", cap_session[i].name, weir_pgo_kind_name(m.kind));
        seen[k] = true;
        weir_pgo_msg_clear(&m);
    }
    for (size_t k = 0; k < LEN(kinds); k++)
        if (!seen[k])
            fail_msg("the session holds no '%c' message", kinds[k].type);
    weir_pgo_free(d);
}

static void begin_gives_the_final_lsn_the_xid_and_the_commit_time_since_the_unix_epoch(void **s)
{
    struct weir_pgo *d = weir_pgo_new();
    struct weir_pgo_msg m;
    DECODE_OK(d, cap_begin_741, &m);
    assert_int_equal(m.kind, WEIR_PGO_BEGIN);
    assert_int_equal(m.final_lsn, 0x15537C8);
    assert_int_equal(m.xid, 741);
    assert_int_equal(m.commit_time_us, COMMIT_741_US);
    weir_pgo_msg_clear(&m);
    /* A transaction from an origin carries the origin's commit time. */
    DECODE_OK(d, cap_begin_759, &m);
    assert_int_equal(m.xid, 759);
    assert_int_equal(m.commit_time_us, 1796141066000000LL); /* 2026-12-01 16:04:26+00 */
    weir_pgo_msg_clear(&m);
    weir_pgo_free(d);
}

static void commit_gives_the_commit_and_end_lsns_and_the_begins_commit_time(void **state)
{
    struct weir_pgo *d = weir_pgo_new();
    struct weir_pgo_msg m;
    DECODE_OK(d, cap_commit_741, &m);
    assert_int_equal(m.kind, WEIR_PGO_COMMIT);
    assert_int_equal(m.commit_lsn, 0x15537C8);
    assert_int_equal(m.end_lsn, 0x15537F8);
    assert_int_equal(m.commit_time_us, COMMIT_741_US);
    weir_pgo_msg_clear(&m);
    weir_pgo_free(d);
}

static void origin_gives_the_origins_name_and_its_commit_lsn(void **state)
{
    struct weir_pgo *d = weir_pgo_new();
    struct weir_pgo_msg m;
    DECODE_OK(d, cap_origin, &m);
    assert_int_equal(m.kind, WEIR_PGO_ORIGIN);
    assert_string_equal(m.origin_name, "upstream");
    assert_int_equal(m.origin_lsn, 0xABCDEF);
    weir_pgo_msg_clear(&m);
    assert_null(m.origin_name);
    weir_pgo_free(d);
}

static void logical_decoding_message_decodes_to_a_kind_callers_ignore(void **state)
{
    struct weir_pgo *d = weir_pgo_new();
    struct weir_pgo_msg m;
    DECODE_OK(d, cap_message, &m);
    assert_int_equal(m.kind, WEIR_PGO_MESSAGE);
    assert_null(m.row);
    assert_null(m.rel);
    weir_pgo_msg_clear(&m);
    weir_pgo_free(d);
}

static void type_message_names_a_custom_type_and_a_domain_by_its_base_type(void **state)
{
    struct weir_pgo *d = weir_pgo_new();
    struct weir_pgo_msg m;
    DECODE_OK(d, cap_type_mood, &m);
    assert_int_equal(m.kind, WEIR_PGO_TYPE);
    assert_int_equal(m.type->oid, OID_MOOD);
    assert_string_equal(m.type->schema, "public");
    assert_string_equal(m.type->name, "mood");
    weir_pgo_msg_clear(&m);
    /* pgoutput names a domain after its base type, in pg_catalog (sent as ""). */
    DECODE_OK(d, cap_type_posint, &m);
    assert_int_equal(m.type->oid, OID_POSINT);
    assert_string_equal(m.type->schema, "");
    assert_string_equal(m.type->name, "int4");
    weir_pgo_msg_clear(&m);
    DECODE_OK(d, cap_type_mood_array, &m);
    assert_int_equal(m.type->oid, OID_MOODS);
    assert_string_equal(m.type->name, "_mood");
    weir_pgo_msg_clear(&m);
    weir_pgo_free(d);
}

static void relation_message_caches_columns_types_typmods_and_replica_identity(void **state)
{
    struct weir_pgo *d = weir_pgo_new();
    struct weir_pgo_msg m;
    assert_null(weir_pgo_relation(d, REL_SCALARS));
    DECODE_OK(d, cap_relation_scalars, &m);
    assert_int_equal(m.kind, WEIR_PGO_RELATION);
    const struct weir_pgo_relation *rel = weir_pgo_relation(d, REL_SCALARS);
    assert_ptr_equal(m.rel, rel);
    assert_int_equal(rel->id, REL_SCALARS);
    assert_string_equal(rel->schema, "public");
    assert_string_equal(rel->table, "scalars");
    assert_int_equal(rel->replica_identity, 'd');
    assert_int_equal(rel->n_cols, 25);
    assert_string_equal(rel->cols[0].name, "id");
    assert_true(rel->cols[0].key);
    assert_int_equal(rel->cols[0].type_oid, 23);
    assert_int_equal(rel->cols[0].typmod, -1);
    assert_string_equal(rel->cols[19].name, "vc"); /* varchar(10) */
    assert_false(rel->cols[19].key);
    assert_int_equal(rel->cols[19].type_oid, 1043);
    assert_int_equal(rel->cols[19].typmod, 14);
    assert_string_equal(rel->cols[23].name, "e");
    assert_int_equal(rel->cols[23].type_oid, OID_MOOD);
    weir_pgo_msg_clear(&m);
    /* FULL identity: every column is flagged as part of it. */
    DECODE_OK(d, cap_relation_full_ident, &m);
    assert_int_equal(m.rel->replica_identity, 'f');
    for (size_t i = 0; i < m.rel->n_cols; i++)
        assert_true(m.rel->cols[i].key);
    weir_pgo_msg_clear(&m);
    weir_pgo_free(d);
}

static void insert_converts_every_scalar_type(void **state)
{
    struct weir_pgo *d = session_until("insert_scalars_1");
    struct weir_pgo_msg m;
    DECODE_OK(d, cap_insert_scalars_1, &m);
    assert_int_equal(m.kind, WEIR_PGO_INSERT);
    assert_ptr_equal(m.rel, weir_pgo_relation(d, REL_SCALARS));
    assert_int_equal(m.row->op, WEIR_ROW_INSERT);
    assert_null(m.row->old_row);
    const struct weir_tuple *t = m.row->new_row;
    assert_int_equal(t->n, 25);
    col_is(t, "id", WEIR_VALUE_NUMBER, "1");
    assert_true(weir_tuple_find(t, "id")->key);
    assert_false(weir_tuple_find(t, "b")->key);
    col_is(t, "b", WEIR_VALUE_BOOL, "true");
    col_is(t, "i2", WEIR_VALUE_NUMBER, "-32768");
    col_is(t, "i4", WEIR_VALUE_NUMBER, "2147483647");
    col_is(t, "i8", WEIR_VALUE_NUMBER, "-9223372036854775808");
    col_is(t, "o", WEIR_VALUE_NUMBER, "4294967295");
    col_is(t, "n", WEIR_VALUE_NUMBER, "-12345678901234567890.0123456789");
    col_is(t, "f4", WEIR_VALUE_NUMBER, "1.5e-07");
    col_is(t, "f8", WEIR_VALUE_NUMBER, "3.141592653589793");
    col_is(t, "m", WEIR_VALUE_STRING, "$1,234.56");
    const struct weir_column *by = weir_tuple_find(t, "by");
    assert_int_equal(by->kind, WEIR_VALUE_BYTES);
    assert_int_equal(by->value_len, 4);
    assert_memory_equal(by->value, "\x0a\x0b\x00\xff", 4);
    col_is(t, "j", WEIR_VALUE_JSON, "{\"a\": [1, 2.50, \"x\"]}");
    col_is(t, "jb", WEIR_VALUE_JSON, "{\"a\": 1, \"b\": {\"c\": null}}");
    col_is(t, "ts", WEIR_VALUE_STRING, "2026-12-01T16:04:26.123456");
    col_is(t, "tstz", WEIR_VALUE_STRING, "2026-12-01T16:04:26.123Z");
    col_is(t, "d", WEIR_VALUE_STRING, "2026-12-01");
    col_is(t, "tm", WEIR_VALUE_STRING, "16:04:26.5");
    col_is(t, "u", WEIR_VALUE_STRING, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    col_is(t, "tx", WEIR_VALUE_STRING, "line1\nline2 \"q\" \\ \xc3\xa9");
    col_is(t, "vc", WEIR_VALUE_STRING, "short");
    col_is(t, "bp", WEIR_VALUE_STRING, "ab   ");
    col_is(t, "nm", WEIR_VALUE_STRING, "pg_class");
    col_is(t, "ch", WEIR_VALUE_STRING, "x");
    col_is(t, "e", WEIR_VALUE_STRING, "happy");
    /* A domain is read as its base type, which its Type message names. */
    col_is(t, "dom", WEIR_VALUE_NUMBER, "7");
    weir_pgo_msg_clear(&m);
    weir_pgo_free(d);
}

static void nan_infinity_bc_and_empty_values_stay_text_and_nulls_have_no_value(void **state)
{
    struct weir_pgo *d = session_until("insert_scalars_2");
    struct weir_pgo_msg m;
    DECODE_OK(d, cap_insert_scalars_2, &m);
    const struct weir_tuple *t = m.row->new_row;
    col_is(t, "b", WEIR_VALUE_BOOL, "false");
    col_is(t, "i8", WEIR_VALUE_NUMBER, "0");
    col_is(t, "n", WEIR_VALUE_STRING, "NaN");
    col_is(t, "f4", WEIR_VALUE_STRING, "Infinity");
    col_is(t, "f8", WEIR_VALUE_STRING, "-Infinity");
    col_is(t, "m", WEIR_VALUE_STRING, "-$0.50");
    col_is(t, "by", WEIR_VALUE_BYTES, ""); /* empty, not absent */
    col_is(t, "j", WEIR_VALUE_JSON, "null");
    col_is(t, "jb", WEIR_VALUE_JSON, "[]");
    col_is(t, "ts", WEIR_VALUE_STRING, "infinity");
    col_is(t, "tstz", WEIR_VALUE_STRING, "-infinity");
    col_is(t, "d", WEIR_VALUE_STRING, "0044-03-15 BC");
    col_is(t, "u", WEIR_VALUE_NULL, NULL);
    col_is(t, "tx", WEIR_VALUE_STRING, "");
    col_is(t, "dom", WEIR_VALUE_NULL, NULL);
    weir_pgo_msg_clear(&m);
    DECODE_OK(d, cap_insert_scalars_3, &m);
    t = m.row->new_row;
    col_is(t, "n", WEIR_VALUE_STRING, "Infinity");
    col_is(t, "f8", WEIR_VALUE_STRING, "NaN");
    col_is(t, "ts", WEIR_VALUE_STRING, "0044-03-15 10:00:00 BC");
    col_is(t, "tstz", WEIR_VALUE_STRING, "10000-01-01T00:00:00Z");
    col_is(t, "b", WEIR_VALUE_NULL, NULL);
    weir_pgo_msg_clear(&m);
    weir_pgo_free(d);
}

static void insert_converts_every_array_type_into_a_json_array_of_strings(void **state)
{
    struct weir_pgo *d = session_until("insert_arrays_1");
    struct weir_pgo_msg m;
    DECODE_OK(d, cap_insert_arrays_1, &m);
    const struct weir_tuple *t = m.row->new_row;
    list_is(t, "a_bool", WEIR_VALUE_BOOL, "[\"true\",\"false\",null]");
    list_is(t, "a_bytea", WEIR_VALUE_BYTES, "[\"Cgs=\",null,\"\"]");
    list_is(t, "a_char", WEIR_VALUE_STRING, "[\"a\",\"\\\"\",\",\"]");
    list_is(t, "a_name", WEIR_VALUE_STRING, "[\"pg_class\",\"a b\"]");
    list_is(t, "a_i2", WEIR_VALUE_NUMBER, "[\"1\",\"-2\"]");
    list_is(t, "a_i4", WEIR_VALUE_NUMBER, "[[\"1\",\"2\"],[\"3\",null]]");
    /* Quoted "NULL" is the text NULL; unquoted NULL is a null. */
    list_is(t, "a_text", WEIR_VALUE_STRING,
            "[\"a \\\"b\\\"\",\"NULL\",null,\"\",\"x\\\\y\",\"{}\"]");
    list_is(t, "a_bpchar", WEIR_VALUE_STRING, "[\"ab \",\"c  \"]");
    list_is(t, "a_varchar", WEIR_VALUE_STRING, "[\"a,b\",\"c\"]");
    list_is(t, "a_i8", WEIR_VALUE_NUMBER, "[\"9223372036854775807\"]");
    list_is(t, "a_f4", WEIR_VALUE_NUMBER, "[\"1.5\",\"-0\"]");
    list_is(t, "a_f8", WEIR_VALUE_NUMBER, "[\"3.141592653589793\",\"1e+300\"]");
    list_is(t, "a_oid", WEIR_VALUE_NUMBER, "[\"26\"]");
    list_is(t, "a_ts", WEIR_VALUE_STRING, "[\"2026-12-01T16:04:26.123456\"]");
    list_is(t, "a_date", WEIR_VALUE_STRING, "[\"2026-12-01\",\"infinity\"]");
    list_is(t, "a_time", WEIR_VALUE_STRING, "[\"16:04:26\"]");
    list_is(t, "a_tstz", WEIR_VALUE_STRING, "[\"2026-12-01T16:04:26.123Z\"]");
    list_is(t, "a_num", WEIR_VALUE_NUMBER, "[\"1.10\",\"-2\"]");
    list_is(t, "a_uuid", WEIR_VALUE_STRING, "[\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"]");
    list_is(t, "a_json", WEIR_VALUE_JSON, "[\"{\\\"a\\\":1}\",\"[1, 2]\"]");
    list_is(t, "a_jsonb", WEIR_VALUE_JSON, "[\"{\\\"a\\\": \\\"x,y\\\"}\",\"null\"]");
    /* An array of an enum: its type is named "_mood" by a Type message. */
    list_is(t, "a_mood", WEIR_VALUE_STRING, "[\"happy\",\"sad\"]");
    weir_pgo_msg_clear(&m);
    weir_pgo_free(d);
}

static void array_bounds_prefix_is_dropped_and_nan_elements_make_string_elements(void **state)
{
    struct weir_pgo *d = session_until("insert_arrays_2");
    struct weir_pgo_msg m;
    DECODE_OK(d, cap_insert_arrays_2, &m);
    const struct weir_tuple *t = m.row->new_row;
    list_is(t, "a_i4", WEIR_VALUE_NUMBER, "[\"7\",\"8\"]"); /* '[0:1]={7,8}' */
    list_is(t, "a_f8", WEIR_VALUE_STRING, "[\"1\",\"NaN\",\"Infinity\"]");
    list_is(t, "a_num", WEIR_VALUE_STRING, "[\"NaN\",\"1\"]");
    list_is(t, "a_text", WEIR_VALUE_STRING, "[]");
    col_is(t, "a_bool", WEIR_VALUE_NULL, NULL);
    weir_pgo_msg_clear(&m);
    weir_pgo_free(d);
}

static void update_without_an_old_tuple_has_only_the_new_row(void **state)
{
    struct weir_pgo *d = session_until("update_keyed_no_old");
    struct weir_pgo_msg m;
    DECODE_OK(d, cap_update_keyed_no_old, &m);
    assert_int_equal(m.kind, WEIR_PGO_UPDATE);
    assert_int_equal(m.row->op, WEIR_ROW_UPDATE);
    assert_null(m.row->old_row);
    assert_false(m.row->old_full);
    assert_int_equal(m.row->new_row->n, 2);
    col_is(m.row->new_row, "id", WEIR_VALUE_NUMBER, "1");
    col_is(m.row->new_row, "name", WEIR_VALUE_STRING, "uno");
    weir_pgo_msg_clear(&m);
    weir_pgo_free(d);
}

static void update_of_the_key_gives_the_old_key_columns_only(void **state)
{
    struct weir_pgo *d = session_until("update_keyed_k");
    struct weir_pgo_msg m;
    DECODE_OK(d, cap_update_keyed_k, &m);
    assert_false(m.row->old_full);
    assert_int_equal(m.row->old_row->n, 1);
    col_is(m.row->old_row, "id", WEIR_VALUE_NUMBER, "1");
    assert_true(m.row->old_row->cols[0].key);
    col_is(m.row->new_row, "id", WEIR_VALUE_NUMBER, "10");
    col_is(m.row->new_row, "name", WEIR_VALUE_STRING, "uno");
    weir_pgo_msg_clear(&m);
    weir_pgo_free(d);
}

static void delete_with_the_default_identity_gives_the_old_key(void **state)
{
    struct weir_pgo *d = session_until("delete_keyed_k");
    struct weir_pgo_msg m;
    DECODE_OK(d, cap_delete_keyed_k, &m);
    assert_int_equal(m.kind, WEIR_PGO_DELETE);
    assert_int_equal(m.row->op, WEIR_ROW_DELETE);
    assert_null(m.row->new_row);
    assert_false(m.row->old_full);
    assert_int_equal(m.row->old_row->n, 1);
    col_is(m.row->old_row, "id", WEIR_VALUE_NUMBER, "10");
    weir_pgo_msg_clear(&m);
    weir_pgo_free(d);
}

static void full_identity_update_and_delete_give_the_whole_old_row(void **state)
{
    struct weir_pgo *d = session_until("update_full_ident_o");
    struct weir_pgo_msg m;
    DECODE_OK(d, cap_update_full_ident_o, &m);
    assert_true(m.row->old_full);
    assert_int_equal(m.row->old_row->n, 3);
    col_is(m.row->old_row, "id", WEIR_VALUE_NUMBER, "1");
    col_is(m.row->old_row, "name", WEIR_VALUE_STRING, "a");
    col_is(m.row->old_row, "qty", WEIR_VALUE_NUMBER, "5");
    col_is(m.row->new_row, "qty", WEIR_VALUE_NUMBER, "6");
    for (size_t i = 0; i < 3; i++)
        assert_true(m.row->new_row->cols[i].key); /* FULL: the poller picks the primary key */
    weir_pgo_msg_clear(&m);
    DECODE_OK(d, cap_delete_full_ident_o, &m);
    assert_int_equal(m.row->op, WEIR_ROW_DELETE);
    assert_true(m.row->old_full);
    assert_null(m.row->new_row);
    assert_int_equal(m.row->old_row->n, 3);
    col_is(m.row->old_row, "qty", WEIR_VALUE_NUMBER, "6");
    weir_pgo_msg_clear(&m);
    weir_pgo_free(d);
}

static void unchanged_toast_column_is_unchanged_and_has_no_value(void **state)
{
    struct weir_pgo *d = session_until("update_toasty_u");
    struct weir_pgo_msg m;
    DECODE_OK(d, cap_update_toasty_u, &m);
    assert_null(m.row->old_row);
    col_is(m.row->new_row, "id", WEIR_VALUE_NUMBER, "1");
    col_is(m.row->new_row, "big", WEIR_VALUE_UNCHANGED, NULL);
    col_is(m.row->new_row, "small", WEIR_VALUE_NUMBER, "2");
    weir_pgo_msg_clear(&m);
    weir_pgo_free(d);
}

static void truncate_gives_the_relation_ids_and_its_options(void **state)
{
    struct weir_pgo *d = weir_pgo_new();
    struct weir_pgo_msg m;
    DECODE_OK(d, cap_truncate_cascade, &m);
    assert_int_equal(m.kind, WEIR_PGO_TRUNCATE);
    assert_int_equal(m.truncate_flags,
                     WEIR_PGO_TRUNCATE_CASCADE | WEIR_PGO_TRUNCATE_RESTART_IDENTITY);
    assert_int_equal(m.n_relids, 2);
    assert_int_equal(m.relids[0], REL_TRUNC_A);
    assert_int_equal(m.relids[1], REL_TRUNC_B);
    assert_null(m.row);
    weir_pgo_msg_clear(&m);
    DECODE_OK(d, cap_truncate_plain, &m);
    assert_int_equal(m.truncate_flags, 0);
    assert_int_equal(m.n_relids, 1);
    assert_int_equal(m.relids[0], REL_TRUNC_B);
    weir_pgo_msg_clear(&m);
    weir_pgo_free(d);
}

static void a_later_relation_message_replaces_the_cached_relation(void **state)
{
    struct weir_pgo *d = session_until("relation_keyed_note");
    assert_int_equal(weir_pgo_relation(d, REL_KEYED)->n_cols, 2);
    struct weir_pgo_msg m;
    DECODE_OK(d, cap_relation_keyed_note, &m);
    assert_ptr_equal(weir_pgo_relation(d, REL_KEYED), m.rel);
    assert_int_equal(m.rel->n_cols, 3);
    weir_pgo_msg_clear(&m);
    DECODE_OK(d, cap_insert_keyed_3, &m);
    col_is(m.row->new_row, "note", WEIR_VALUE_STRING, "n");
    weir_pgo_msg_clear(&m);
    /* A change in the old shape no longer fits. */
    char why[256];
    assert_int_equal(
        decode(d, cap_insert_keyed_1, sizeof(cap_insert_keyed_1), &m, why, sizeof(why)), WEIR_ERR);
    assert_non_null(strstr(why, "the tuple has 2 columns, relation public.keyed (id 16423) has 3"));
    assert_null(m.row);
    weir_pgo_free(d);
}

static void relations_stay_cached_across_a_reconnect_and_unknown_ones_are_an_error(void **state)
{
    struct weir_pgo *d = weir_pgo_new();
    struct weir_pgo_msg m;
    char why[256];
    assert_int_equal(
        decode(d, cap_insert_keyed_1, sizeof(cap_insert_keyed_1), &m, why, sizeof(why)), WEIR_ERR);
    assert_string_equal(why, "pgoutput Insert message, offset 1: no Relation message for "
                             "relation id 16423");
    assert_null(m.row);
    assert_null(m.rel);
    DECODE_OK(d, cap_relation_keyed, &m);
    weir_pgo_msg_clear(&m);
    /* The next connection's first messages: no Relation yet, the cache still has it. */
    DECODE_OK(d, cap_begin_747, &m);
    weir_pgo_msg_clear(&m);
    DECODE_OK(d, cap_update_keyed_no_old, &m);
    assert_ptr_equal(m.rel, weir_pgo_relation(d, REL_KEYED));
    weir_pgo_msg_clear(&m);
    weir_pgo_free(d);
}

static void the_caller_may_take_the_row_from_the_message(void **state)
{
    struct weir_pgo *d = session_until("insert_keyed_1");
    struct weir_pgo_msg m;
    DECODE_OK(d, cap_insert_keyed_1, &m);
    struct weir_row *row = m.row;
    m.row = NULL;
    weir_pgo_msg_clear(&m);
    weir_pgo_free(d); /* the row does not borrow from the decoder */
    col_is(row->new_row, "name", WEIR_VALUE_STRING, "one");
    weir_row_free(row);
}

/* ---- malformed messages ---- */

/* The name a message's kind has in the decoder's errors. */
static const char *type_name(const struct cap_msg *c)
{
    switch (c->data[0]) {
    case 'B':
        return "Begin";
    case 'C':
        return "Commit";
    case 'O':
        return "Origin";
    case 'R':
        return "Relation";
    case 'Y':
        return "Type";
    case 'I':
        return "Insert";
    case 'U':
        return "Update";
    case 'D':
        return "Delete";
    case 'T':
        return "Truncate";
    case 'M':
        return "Message";
    }
    return "?";
}

static void every_truncation_of_every_captured_message_is_an_error_within_it(void **state)
{
    struct weir_pgo *d = weir_pgo_new();
    char why[256];
    for (size_t i = 0; i < LEN(cap_session); i++) {
        const struct cap_msg *c = &cap_session[i];
        for (size_t k = 0; k < c->len; k++) {
            struct weir_pgo_msg m;
            memset(&m, 0xa5, sizeof(m)); /* decode must not trust what msg held */
            if (decode(d, c->data, k, &m, why, sizeof(why)) != WEIR_ERR)
                fail_msg("%s cut to %zu of %zu bytes decoded", c->name, k, c->len);
            assert_null(m.row);
            assert_null(m.relids);
            assert_null(m.origin_name);
            if (!strstr(why, "truncated"))
                fail_msg("%s cut to %zu bytes: %s", c->name, k, why);
            const char *at = strstr(why, "offset ");
            assert_non_null(at);
            if (strtoul(at + 7, NULL, 10) > k)
                fail_msg("%s cut to %zu bytes: an offset past the end: %s", c->name, k, why);
            char kind[64];
            snprintf(kind, sizeof(kind), "pgoutput %s%smessage, offset ", k ? type_name(c) : "",
                     k ? " " : "");
            if (strncmp(why, kind, strlen(kind)))
                fail_msg("%s cut to %zu bytes: %s does not name the message", c->name, k, why);
        }
        /* The cache is what it was: the whole message still decodes in its place. */
        struct weir_pgo_msg m;
        decode_ok(d, c->data, c->len, &m);
        weir_pgo_msg_clear(&m);
    }
    weir_pgo_free(d);
}

/* A hand-made message, for what a server never sends. */
struct msgb {
    uint8_t b[512];
    size_t n;
};

static void put8(struct msgb *m, uint8_t v)
{
    assert_true(m->n < sizeof(m->b));
    m->b[m->n++] = v;
}

static void put16(struct msgb *m, uint16_t v)
{
    put8(m, (uint8_t)(v >> 8));
    put8(m, (uint8_t)v);
}

static void put32(struct msgb *m, uint32_t v)
{
    put16(m, (uint16_t)(v >> 16));
    put16(m, (uint16_t)v);
}

static void putstr(struct msgb *m, const char *s)
{
    for (size_t i = 0; i <= strlen(s); i++)
        put8(m, (uint8_t)s[i]);
}

/* 'I' for keyed (id int4 key, name text): the marker and the tuple's column count. */
static struct msgb insert_head(uint8_t marker, uint16_t ncols)
{
    struct msgb m = {.n = 0};
    put8(&m, 'I');
    put32(&m, REL_KEYED);
    put8(&m, marker);
    put16(&m, ncols);
    return m;
}

static void put_text(struct msgb *m, const char *s)
{
    put8(m, 't');
    put32(m, (uint32_t)strlen(s));
    for (size_t i = 0; i < strlen(s); i++)
        put8(m, (uint8_t)s[i]);
}

/* Decodes m with d and checks the error is exactly want. */
static void refused(struct weir_pgo *d, const struct msgb *m, const char *want)
{
    struct weir_pgo_msg msg;
    char why[256];
    memset(&msg, 0, sizeof(msg));
    assert_int_equal(decode(d, m->b, m->n, &msg, why, sizeof(why)), WEIR_ERR);
    assert_string_equal(why, want);
    assert_null(msg.row);
    assert_null(msg.relids);
    assert_null(msg.origin_name);
}

static void streamed_and_two_phase_messages_are_refused_naming_the_protocol_version(void **s)
{
    struct weir_pgo *d = weir_pgo_new();
    char buf[160];
    for (const char *t = "SEcA"; *t; t++) {
        struct msgb m = {.n = 0};
        put8(&m, (uint8_t)*t);
        put32(&m, 741);
        snprintf(buf, sizeof(buf),
                 "pgoutput message, offset 0: message type '%c' belongs to a streamed "
                 "transaction: streamed transactions need proto_version 2; weir asks for 1",
                 *t);
        refused(d, &m, buf);
    }
    for (const char *t = "bPKrs"; *t; t++) {
        struct msgb m = {.n = 0};
        put8(&m, (uint8_t)*t);
        snprintf(buf, sizeof(buf),
                 "pgoutput message, offset 0: message type '%c' belongs to a two-phase "
                 "transaction: two-phase transactions need proto_version 3; weir asks for 1",
                 *t);
        refused(d, &m, buf);
    }
    struct msgb m = {.n = 0};
    put8(&m, 0x01);
    refused(d, &m, "pgoutput message, offset 0: unknown message type '?' (0x01)");
    m.n = 0;
    refused(d, &m, "pgoutput message, offset 0: truncated: the message type needs 1 byte, 0 left");
    weir_pgo_free(d);
}

static void bytes_after_the_end_of_a_message_are_an_error(void **state)
{
    struct weir_pgo *d = session_until("relation_keyed_note");
    struct msgb m = {.n = 0};
    memcpy(m.b, cap_relation_keyed_note, sizeof(cap_relation_keyed_note));
    m.n = sizeof(cap_relation_keyed_note);
    put8(&m, 0);
    char want[128];
    snprintf(want, sizeof(want),
             "pgoutput Relation message, offset %zu: 1 byte after the end of the message",
             sizeof(cap_relation_keyed_note));
    refused(d, &m, want);
    /* The refused Relation did not replace the cached one. */
    assert_int_equal(weir_pgo_relation(d, REL_KEYED)->n_cols, 2);
    memcpy(m.b, cap_begin_741, sizeof(cap_begin_741));
    m.n = sizeof(cap_begin_741);
    put16(&m, 0);
    refused(d, &m, "pgoutput Begin message, offset 21: 2 bytes after the end of the message");
    weir_pgo_free(d);
}

static void binary_unknown_and_negative_length_values_are_errors(void **state)
{
    struct weir_pgo *d = session_until("insert_keyed_1");
    struct msgb m = insert_head('N', 2);
    put_text(&m, "1");
    put8(&m, 'b');
    put32(&m, 1);
    put8(&m, 'x');
    refused(d, &m,
            "pgoutput Insert message, offset 14: column name's value is binary: weir asks for "
            "text values");
    m = insert_head('N', 2);
    put_text(&m, "1");
    put8(&m, 'x');
    refused(d, &m,
            "pgoutput Insert message, offset 14: unknown kind 'x' (0x78) of column name's "
            "value");
    m = insert_head('N', 2);
    put8(&m, 't');
    put32(&m, 0xffffffffu);
    refused(d, &m, "pgoutput Insert message, offset 9: negative length -1 of column id's value");
    m = insert_head('N', 2);
    put8(&m, 't');
    put32(&m, 0x7fffffff);
    put8(&m, '1');
    refused(d, &m,
            "pgoutput Insert message, offset 13: truncated: a text value needs "
            "2147483647 bytes, 1 left");
    weir_pgo_free(d);
}

static void tuple_markers_out_of_place_and_wrong_column_counts_are_errors(void **state)
{
    struct weir_pgo *d = session_until("insert_keyed_1");
    struct msgb m = insert_head('K', 2);
    refused(d, &m, "pgoutput Insert message, offset 5: tuple marker 'K' (0x4b) where 'N' belongs");
    m = insert_head('N', 3);
    refused(d, &m,
            "pgoutput Insert message, offset 6: the tuple has 3 columns, relation "
            "public.keyed (id 16423) has 2");
    /* An Update's old key must be followed by the new row. */
    m = insert_head('K', 2);
    m.b[0] = 'U';
    put_text(&m, "1");
    put8(&m, 'n');
    put8(&m, 'K');
    refused(d, &m, "pgoutput Update message, offset 15: tuple marker 'K' (0x4b) where 'N' belongs");
    m = insert_head('Z', 2);
    m.b[0] = 'U';
    refused(d, &m,
            "pgoutput Update message, offset 5: tuple marker 'Z' (0x5a) where 'K', 'O' or 'N' "
            "belongs");
    m = insert_head('N', 2);
    m.b[0] = 'D';
    refused(d, &m,
            "pgoutput Delete message, offset 5: tuple marker 'N' (0x4e) where 'K' or 'O' belongs");
    weir_pgo_free(d);
}

static void counts_the_message_cannot_hold_are_refused_before_allocating(void **state)
{
    struct weir_pgo *d = weir_pgo_new();
    struct msgb m = {.n = 0};
    put8(&m, 'R');
    put32(&m, 7);
    putstr(&m, "public");
    putstr(&m, "t");
    put8(&m, 'd');
    size_t at = m.n;
    put16(&m, 0xffff);
    refused(d, &m, "pgoutput Relation message, offset 15: negative column count -1");
    m.n = at;
    put16(&m, 0x7fff);
    refused(d, &m,
            "pgoutput Relation message, offset 17: truncated: 32767 columns need at "
            "least 327670 bytes, 0 left");
    assert_null(weir_pgo_relation(d, 7));
    m.n = 0;
    put8(&m, 'T');
    put32(&m, 0xffffffffu);
    put8(&m, 0);
    put32(&m, 1);
    refused(d, &m,
            "pgoutput Truncate message, offset 6: truncated: the list of relation ids needs "
            "17179869180 bytes, 4 left");
    m.n = 0;
    put8(&m, 'M');
    put8(&m, 1);
    put32(&m, 0);
    put32(&m, 0);
    putstr(&m, "weir");
    put32(&m, 0x7fffffff);
    refused(d, &m,
            "pgoutput Message message, offset 19: truncated: the content needs "
            "2147483647 bytes, 0 left");
    m.n = 0;
    put8(&m, 'Y');
    put32(&m, 16385);
    put8(&m, 'p');
    refused(d, &m,
            "pgoutput Type message, offset 5: truncated: the namespace has no "
            "terminating NUL");
    weir_pgo_free(d);
}

static void why_is_cut_to_its_buffer_and_may_be_left_out(void **state)
{
    struct weir_pgo *d = weir_pgo_new();
    struct weir_pgo_msg m;
    char why[12];
    memset(why, 'x', sizeof(why));
    assert_int_equal(decode(d, cap_insert_keyed_1, sizeof(cap_insert_keyed_1), &m, why, 9),
                     WEIR_ERR);
    assert_string_equal(why, "pgoutput");
    assert_int_equal(why[9], 'x');
    assert_int_equal(
        weir_pgo_decode(d, cap_insert_keyed_1, sizeof(cap_insert_keyed_1), &m, NULL, 0), WEIR_ERR);
    weir_pgo_free(d);
}

/* ---- values ---- */

static void bool_is_true_or_false(void **state)
{
    VALUE_IS(NULL, 16, "t", BOOL, "true");
    VALUE_IS(NULL, 16, "f", BOOL, "false");
    STAYS_TEXT(NULL, 16, "true");
    STAYS_TEXT(NULL, 16, "");
}

static void numbers_keep_their_exact_text_and_nan_and_infinity_are_strings(void **state)
{
    VALUE_IS(NULL, 21, "-32768", NUMBER, "-32768");
    VALUE_IS(NULL, 23, "0", NUMBER, "0");
    VALUE_IS(NULL, 20, "9223372036854775807", NUMBER, "9223372036854775807");
    VALUE_IS(NULL, 26, "4294967295", NUMBER, "4294967295");
    VALUE_IS(NULL, 1700, "-12.50", NUMBER, "-12.50");
    VALUE_IS(NULL, 1700, "123456789012345678901234567890.000000000000000000001", NUMBER,
             "123456789012345678901234567890.000000000000000000001");
    VALUE_IS(NULL, 700, "1e+30", NUMBER, "1e+30");
    VALUE_IS(NULL, 701, "-1.2345678901234567e-300", NUMBER, "-1.2345678901234567e-300");
    VALUE_IS(NULL, 701, "-0", NUMBER, "-0");
    STAYS_TEXT(NULL, 701, "NaN");
    STAYS_TEXT(NULL, 701, "Infinity");
    STAYS_TEXT(NULL, 700, "-Infinity");
    STAYS_TEXT(NULL, 1700, "NaN");
    STAYS_TEXT(NULL, 1700, "Infinity");
    STAYS_TEXT(NULL, 1700, "-Infinity");
    STAYS_TEXT(NULL, 1700, "");
    STAYS_TEXT(NULL, 1700, "-");
    STAYS_TEXT(NULL, 1700, "1.");
    STAYS_TEXT(NULL, 1700, ".5");
    STAYS_TEXT(NULL, 1700, "1e");
    STAYS_TEXT(NULL, 1700, "1.2.3");
    STAYS_TEXT(NULL, 1700, "+1");
    STAYS_TEXT(NULL, 1700, " 1");
    STAYS_TEXT(NULL, 790, "$1,234.56"); /* money */
}

static void bytea_hex_is_bytes_and_anything_else_stays_text(void **state)
{
    value_is(NULL, 17, "\\x00ff0A", WEIR_VALUE_BYTES, WEIR_VALUE_NULL, "\x00\xff\x0a", 3);
    value_is(NULL, 17, "\\x", WEIR_VALUE_BYTES, WEIR_VALUE_NULL, "", 0);
    STAYS_TEXT(NULL, 17, "\\x0");
    STAYS_TEXT(NULL, 17, "\\x0g");
    STAYS_TEXT(NULL, 17, "\\000abc"); /* bytea_output=escape */
    STAYS_TEXT(NULL, 17, "\\");
    STAYS_TEXT(NULL, 17, "");
}

static void json_and_jsonb_are_json_as_sent(void **state)
{
    VALUE_IS(NULL, 114, "{\"a\" : [1,2]}", JSON, "{\"a\" : [1,2]}");
    VALUE_IS(NULL, 3802, "\"x\"", JSON, "\"x\"");
}

static void timestamps_are_iso_8601_with_z_or_their_offset(void **state)
{
    VALUE_IS(NULL, 1114, "2026-12-01 16:04:26", STRING, "2026-12-01T16:04:26");
    VALUE_IS(NULL, 1114, "2026-12-01 16:04:26.000001", STRING, "2026-12-01T16:04:26.000001");
    VALUE_IS(NULL, 1184, "2026-12-01 16:04:26+00", STRING, "2026-12-01T16:04:26Z");
    VALUE_IS(NULL, 1184, "2026-12-01 16:04:26.5+05:30", STRING, "2026-12-01T16:04:26.5+05:30");
    VALUE_IS(NULL, 1184, "2026-12-01 16:04:26+05", STRING, "2026-12-01T16:04:26+05:00");
    VALUE_IS(NULL, 1184, "2026-12-01 16:04:26-03", STRING, "2026-12-01T16:04:26-03:00");
    VALUE_IS(NULL, 1184, "12026-12-01 16:04:26+00", STRING, "12026-12-01T16:04:26Z");
    STAYS_TEXT(NULL, 1184, "2026-12-01 16:04:26+05:53:28"); /* LMT: no ISO offset has seconds */
    STAYS_TEXT(NULL, 1184, "2026-12-01 16:04:26+00 BC");
    STAYS_TEXT(NULL, 1184, "2026-12-01 16:04:26");    /* no offset */
    STAYS_TEXT(NULL, 1114, "2026-12-01 16:04:26+00"); /* an offset on a timestamp */
    STAYS_TEXT(NULL, 1114, "2026-12-01 16:04:26 BC");
    STAYS_TEXT(NULL, 1114, "infinity");
    STAYS_TEXT(NULL, 1114, "-infinity");
    STAYS_TEXT(NULL, 1114, "2026-12-01");
    STAYS_TEXT(NULL, 1114, "2026-12-01 16:04:26.");
    STAYS_TEXT(NULL, 1114, "26-12-01 16:04:26");
    STAYS_TEXT(NULL, 1114, "");
    STAYS_TEXT(NULL, 1082, "2026-12-01"); /* date */
    STAYS_TEXT(NULL, 1083, "16:04:26");   /* time */
}

static void text_like_and_unknown_types_are_strings(void **state)
{
    STAYS_TEXT(NULL, 25, "t");
    STAYS_TEXT(NULL, 1043, "1");
    STAYS_TEXT(NULL, 1042, "ab   ");
    STAYS_TEXT(NULL, 2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    STAYS_TEXT(NULL, 18, "x");
    STAYS_TEXT(NULL, 19, "pg_class");
    STAYS_TEXT(NULL, 1186, "1 day 02:00:00");          /* interval */
    STAYS_TEXT(NULL, 22, "1 2 3");                     /* int2vector is no array literal */
    STAYS_TEXT(NULL, 1020, "(1,1),(0,0);(2,2),(1,1)"); /* box[] separates by ';' */
    STAYS_TEXT(NULL, 99999, "{1,2}");                  /* a type no Type message named */
}

static void array_literals_become_json_arrays_of_converted_strings(void **state)
{
    LIST_IS(NULL, 1007, "{1,2,NULL}", NUMBER, "[\"1\",\"2\",null]");
    LIST_IS(NULL, 1007, "{}", NUMBER, "[]");
    LIST_IS(NULL, 1007, "[1:2][3:4]={{1,2},{3,4}}", NUMBER, "[[\"1\",\"2\"],[\"3\",\"4\"]]");
    LIST_IS(NULL, 1007, "[-2:-1]={7,8}", NUMBER, "[\"7\",\"8\"]");
    LIST_IS(NULL, 1007, " { 1 , 2 } ", NUMBER, "[\"1\",\"2\"]");
    LIST_IS(NULL, 1009, "{\"a \\\"b\",\"\\\\\",null,\"NULL\",NULLx,a\\,b, c d }", STRING,
            "[\"a \\\"b\",\"\\\\\",null,\"NULL\",\"NULLx\",\"a,b\",\"c d\"]");
    LIST_IS(NULL, 1009, "{\\NULL,NUL\\L,\" \"}", STRING, "[\"NULL\",\"NULL\",\" \"]");
    LIST_IS(NULL, 1009, "{{{{{{a}}}}}}", STRING, "[[[[[[\"a\"]]]]]]");
    LIST_IS(NULL, 1009, "{\"\xc3\xa9\n\"}", STRING, "[\"\xc3\xa9\\n\"]");
    LIST_IS(NULL, 1000, "{t,f}", BOOL, "[\"true\",\"false\"]");
    LIST_IS(NULL, 1001, "{\"\\\\x00ff\",\"\\\\x\"}", BYTES, "[\"AP8=\",\"\"]");
    LIST_IS(NULL, 1022, "{1.5,-1e-300}", NUMBER, "[\"1.5\",\"-1e-300\"]");
    LIST_IS(NULL, 1231, "{1,-Infinity}", STRING, "[\"1\",\"-Infinity\"]");
    LIST_IS(NULL, 1115, "{\"2026-12-01 16:04:26\",infinity}", STRING,
            "[\"2026-12-01T16:04:26\",\"infinity\"]");
    LIST_IS(NULL, 1185, "{\"2026-12-01 16:04:26+05:30\"}", STRING,
            "[\"2026-12-01T16:04:26+05:30\"]");
    LIST_IS(NULL, 3807, "{\"{\\\"a\\\": 1}\",\"[]\"}", JSON, "[\"{\\\"a\\\": 1}\",\"[]\"]");
    LIST_IS(NULL, 199, "{NULL}", JSON, "[null]");
    LIST_IS(NULL, 2951, "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}", STRING,
            "[\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"]");
    LIST_IS(NULL, 1182, "{2026-12-01}", STRING, "[\"2026-12-01\"]");
    LIST_IS(NULL, 1183, "{16:04:26}", STRING, "[\"16:04:26\"]");
    LIST_IS(NULL, 1002, "{a,\"\\\"\"}", STRING, "[\"a\",\"\\\"\"]");
    LIST_IS(NULL, 1003, "{pg_class}", STRING, "[\"pg_class\"]");
    LIST_IS(NULL, 1005, "{-1}", NUMBER, "[\"-1\"]");
    LIST_IS(NULL, 1014, "{\"a  \"}", STRING, "[\"a  \"]");
    LIST_IS(NULL, 1015, "{x}", STRING, "[\"x\"]");
    LIST_IS(NULL, 1016, "{-9223372036854775808}", NUMBER, "[\"-9223372036854775808\"]");
    LIST_IS(NULL, 1021, "{1e+30}", NUMBER, "[\"1e+30\"]");
    LIST_IS(NULL, 1028, "{0}", NUMBER, "[\"0\"]");
}

static void an_element_not_of_its_type_makes_every_element_its_text(void **state)
{
    /* Each element keeps its text: "t" is not turned into "true" beside a "maybe". */
    LIST_IS(NULL, 1000, "{t,maybe}", STRING, "[\"t\",\"maybe\"]");
    LIST_IS(NULL, 1001, "{\"\\\\x00\",\"\\\\xzz\"}", STRING, "[\"\\\\x00\",\"\\\\xzz\"]");
    LIST_IS(NULL, 1021, "{NaN,NULL}", STRING, "[\"NaN\",null]");
}

static void text_that_is_no_array_literal_stays_text(void **state)
{
    static const char *const bad[] = {
        "",         "{",
        "}",        "{1,2",
        "{1,,2}",   "{1,}",
        "{,1}",     "{1}x",
        "x{1}",     "{\"a}",
        "{\"a\"b}", "{a\"b\"}",
        "{a{b}}",   "{1}}",
        "{{1}",     "{\\",
        "{a\\}",    "[1:2]{1}",
        "[1]={1}",  "[a:b]={1}",
        "[1:2]=",   "{{{{{{{a}}}}}}}", /* deeper than Postgres' 6 dimensions */
    };
    for (size_t i = 0; i < LEN(bad); i++) {
        STAYS_TEXT(NULL, 1007, bad[i]);
        STAYS_TEXT(NULL, 1009, bad[i]);
    }
}

static void types_named_by_type_messages_are_read_by_their_names(void **state)
{
    struct weir_pgo *d = session_until("relation_arrays");
    /* An enum and an array of it, both in public. */
    STAYS_TEXT(d, OID_MOOD, "happy");
    LIST_IS(d, OID_MOODS, "{happy,\"so so\",NULL}", STRING, "[\"happy\",\"so so\",null]");
    STAYS_TEXT(d, OID_MOODS, "{happy"); /* not an array literal */
    /* A domain over int4: pgoutput names its base type. */
    VALUE_IS(d, OID_POSINT, "42", NUMBER, "42");
    STAYS_TEXT(d, OID_POSINT, "NaN");
    /* A domain over a builtin array type is read as that array. */
    struct weir_pgo_msg m;
    struct msgb b = {.n = 0};
    put8(&b, 'Y');
    put32(&b, 16500);
    putstr(&b, "");
    putstr(&b, "_int4");
    decode_ok(d, b.b, b.n, &m);
    weir_pgo_msg_clear(&m);
    LIST_IS(d, 16500, "{1,2}", NUMBER, "[\"1\",\"2\"]");
    /* A type of the same name outside pg_catalog is not the builtin one. */
    b.n = 0;
    put8(&b, 'Y');
    put32(&b, 16501);
    putstr(&b, "public");
    putstr(&b, "int4");
    decode_ok(d, b.b, b.n, &m);
    weir_pgo_msg_clear(&m);
    STAYS_TEXT(d, 16501, "42");
    /* A later Type message for the same OID replaces the name. */
    b.n = 0;
    put8(&b, 'Y');
    put32(&b, OID_MOOD);
    putstr(&b, "public");
    putstr(&b, "_mood2");
    decode_ok(d, b.b, b.n, &m);
    assert_string_equal(m.type->name, "_mood2");
    weir_pgo_msg_clear(&m);
    LIST_IS(d, OID_MOOD, "{ok}", STRING, "[\"ok\"]");
    /* Without the decoder, they are unknown. */
    STAYS_TEXT(NULL, OID_MOODS, "{happy}");
    weir_pgo_free(d);
}

static void value_replaces_what_out_held(void **state)
{
    struct weir_buf out;
    weir_buf_init(&out);
    weir_buf_append_str(&out, "leftover");
    enum weir_value_kind k, ek;
    weir_pgo_value(NULL, 23, "12", 2, &k, &ek, &out);
    assert_int_equal(k, WEIR_VALUE_NUMBER);
    assert_int_equal(ek, WEIR_VALUE_NULL);
    assert_string_equal(out.data, "12");
    weir_pgo_value(NULL, 25, "", 0, &k, &ek, &out);
    assert_int_equal(k, WEIR_VALUE_STRING);
    assert_int_equal(out.len, 0);
    assert_non_null(out.data);
    weir_buf_deinit(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(session_decodes_every_message_in_order_with_its_kind),
        cmocka_unit_test(
            begin_gives_the_final_lsn_the_xid_and_the_commit_time_since_the_unix_epoch),
        cmocka_unit_test(commit_gives_the_commit_and_end_lsns_and_the_begins_commit_time),
        cmocka_unit_test(origin_gives_the_origins_name_and_its_commit_lsn),
        cmocka_unit_test(logical_decoding_message_decodes_to_a_kind_callers_ignore),
        cmocka_unit_test(type_message_names_a_custom_type_and_a_domain_by_its_base_type),
        cmocka_unit_test(relation_message_caches_columns_types_typmods_and_replica_identity),
        cmocka_unit_test(insert_converts_every_scalar_type),
        cmocka_unit_test(nan_infinity_bc_and_empty_values_stay_text_and_nulls_have_no_value),
        cmocka_unit_test(insert_converts_every_array_type_into_a_json_array_of_strings),
        cmocka_unit_test(array_bounds_prefix_is_dropped_and_nan_elements_make_string_elements),
        cmocka_unit_test(update_without_an_old_tuple_has_only_the_new_row),
        cmocka_unit_test(update_of_the_key_gives_the_old_key_columns_only),
        cmocka_unit_test(delete_with_the_default_identity_gives_the_old_key),
        cmocka_unit_test(full_identity_update_and_delete_give_the_whole_old_row),
        cmocka_unit_test(unchanged_toast_column_is_unchanged_and_has_no_value),
        cmocka_unit_test(truncate_gives_the_relation_ids_and_its_options),
        cmocka_unit_test(a_later_relation_message_replaces_the_cached_relation),
        cmocka_unit_test(relations_stay_cached_across_a_reconnect_and_unknown_ones_are_an_error),
        cmocka_unit_test(the_caller_may_take_the_row_from_the_message),
        cmocka_unit_test(every_truncation_of_every_captured_message_is_an_error_within_it),
        cmocka_unit_test(streamed_and_two_phase_messages_are_refused_naming_the_protocol_version),
        cmocka_unit_test(bytes_after_the_end_of_a_message_are_an_error),
        cmocka_unit_test(binary_unknown_and_negative_length_values_are_errors),
        cmocka_unit_test(tuple_markers_out_of_place_and_wrong_column_counts_are_errors),
        cmocka_unit_test(counts_the_message_cannot_hold_are_refused_before_allocating),
        cmocka_unit_test(why_is_cut_to_its_buffer_and_may_be_left_out),
        cmocka_unit_test(bool_is_true_or_false),
        cmocka_unit_test(numbers_keep_their_exact_text_and_nan_and_infinity_are_strings),
        cmocka_unit_test(bytea_hex_is_bytes_and_anything_else_stays_text),
        cmocka_unit_test(json_and_jsonb_are_json_as_sent),
        cmocka_unit_test(timestamps_are_iso_8601_with_z_or_their_offset),
        cmocka_unit_test(text_like_and_unknown_types_are_strings),
        cmocka_unit_test(array_literals_become_json_arrays_of_converted_strings),
        cmocka_unit_test(an_element_not_of_its_type_makes_every_element_its_text),
        cmocka_unit_test(text_that_is_no_array_literal_stays_text),
        cmocka_unit_test(types_named_by_type_messages_are_read_by_their_names),
        cmocka_unit_test(value_replaces_what_out_held),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
