/* libFuzzer target for the pgoutput decoder (pollers/pgoutput.c). An input is a sequence of
 * records, each a tag byte then a 2-byte big-endian length then that many bytes (fewer at the
 * end of the input): tag 0x00-0x7f, a message for one decoder that lives for the whole input (so
 * Relation and Type messages reach the changes after them); tag 0x80-0xff, a column value's text
 * for weir_pgo_value, of the type the tag's low bits choose. Every record is copied into a buffer
 * of exactly its size. It checks what the unit tests cannot enumerate: no crash, leak, read past
 * a message or undefined behaviour; every refusal names an offset inside the message and leaves
 * the message empty; every row fits its relation; every LIST is a JSON array.
 * Seeds: with WEIR_FUZZ_SEED_DIR set (tests/fuzz/run.sh sets it), LLVMFuzzerInitialize writes
 * the captured messages of tests/unit/pgoutput_captured.h there as inputs, before libFuzzer reads
 * the directory. Run by tests/fuzz/run.sh. */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "model/row.h"
#include "pollers/pgoutput.h"

#include "../unit/pgoutput_captured.h"

#define LEN(a) (sizeof(a) / sizeof(*(a)))

/* The types a value record chooses from: every type the decoder reads other than as STRING, some
 * that it reads as STRING, and the captured custom types (an enum, a domain over int4, an array
 * of the enum), which every input's decoder knows from the start. */
static const uint32_t oids[] = {
    16,   17,   20,   21,   23,   26,   114,  700,  701,   1114,  1184,  1700,  3802, 143,
    199,  651,  791,  1000, 1001, 1002, 1003, 1005, 1007,  1009,  1014,  1015,  1016, 1021,
    1022, 1028, 1040, 1041, 1115, 1182, 1183, 1185, 1187,  1231,  1270,  1561,  1563, 2951,
    3807, 25,   1043, 1082, 1083, 2950, 790,  1020, 16384, 16385, 16392, 99999,
};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put_record(FILE *f, uint8_t tag, const void *data, size_t len)
{
    uint8_t head[3] = {tag, (uint8_t)(len >> 8), (uint8_t)len};
    fwrite(head, 1, sizeof(head), f);
    fwrite(data, 1, len, f);
}

static bool is_schema(const struct cap_msg *c)
{
    return c->data[0] == 'R' || c->data[0] == 'Y';
}

/* One seed per captured message: every Relation and Type message before it, then it. */
static void write_seeds(const char *dir)
{
    char path[4096];
    for (size_t i = 0; i < LEN(cap_session); i++) {
        snprintf(path, sizeof(path), "%s/captured-%02zu-%s", dir, i, cap_session[i].name);
        FILE *f = fopen(path, "wb");
        if (!f)
            return;
        for (size_t j = 0; j < i; j++)
            if (is_schema(&cap_session[j]))
                put_record(f, 0, cap_session[j].data, cap_session[j].len);
        put_record(f, 0, cap_session[i].data, cap_session[i].len);
        fclose(f);
    }
    static const struct {
        uint32_t oid;
        const char *text;
    } values[] = {
        {1007, "[0:1][1:2]={{1,NULL},{\"3\",-4}}"},
        {1001, "{\"\\\\x0a0b\",NULL,\"\\\\x\"}"},
        {1184, "2026-12-01 16:04:26.123+05:30"},
        {1115, "{\"2026-12-01 16:04:26.5\",infinity}"},
        {1700, "-12345678901234567890.0123456789e-5"},
        {1009, "{\"a \\\"b\\\"\",NULL,\"NULL\",x\\,y}"},
        {16384, "{happy,\"so so\"}"},
        {3807, "{\"{\\\"a\\\": [1]}\",null}"},
    };
    snprintf(path, sizeof(path), "%s/values", dir);
    FILE *f = fopen(path, "wb");
    if (!f)
        return;
    for (size_t i = 0; i < LEN(values); i++)
        for (size_t k = 0; k < LEN(oids); k++)
            if (oids[k] == values[i].oid)
                put_record(f, (uint8_t)(0x80 | k), values[i].text, strlen(values[i].text));
    fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *dir = getenv("WEIR_FUZZ_SEED_DIR");
    if (dir && *dir)
        write_seeds(dir);
    return 0;
}

static void check_json_array(const char *s, size_t len)
{
    json_error_t e;
    json_t *j = json_loadb(s, len, JSON_ALLOW_NUL, &e);
    if (!json_is_array(j))
        abort(); /* a LIST that is no JSON array */
    json_decref(j);
}

static void check_tuple(const struct weir_tuple *t, const struct weir_pgo_relation *rel)
{
    if (t->n > rel->n_cols)
        abort();
    for (size_t i = 0; i < t->n; i++) {
        const struct weir_column *c = &t->cols[i];
        bool has_value = c->kind != WEIR_VALUE_NULL && c->kind != WEIR_VALUE_UNCHANGED;
        if (!c->name || (c->value != NULL) != has_value || c->kind > WEIR_VALUE_LIST)
            abort();
        if (c->kind == WEIR_VALUE_LIST)
            check_json_array(c->value, c->value_len);
    }
}

static void check_msg(const struct weir_pgo *d, const struct weir_pgo_msg *m)
{
    switch (m->kind) {
    case WEIR_PGO_RELATION:
        if (m->rel != weir_pgo_relation(d, m->rel->id))
            abort();
        break;
    case WEIR_PGO_INSERT:
    case WEIR_PGO_UPDATE:
    case WEIR_PGO_DELETE:
        if (!m->rel || !m->row || (m->kind != WEIR_PGO_DELETE) != (m->row->new_row != NULL))
            abort();
        if (m->row->new_row && m->row->new_row->n != m->rel->n_cols)
            abort();
        if (m->kind == WEIR_PGO_INSERT && m->row->old_row)
            abort();
        if (m->kind == WEIR_PGO_DELETE && !m->row->old_row)
            abort();
        if (m->row->new_row)
            check_tuple(m->row->new_row, m->rel);
        if (m->row->old_row)
            check_tuple(m->row->old_row, m->rel);
        break;
    case WEIR_PGO_TRUNCATE:
        if ((m->relids == NULL) != (m->n_relids == 0))
            abort();
        break;
    case WEIR_PGO_ORIGIN:
        if (!m->origin_name)
            abort();
        break;
    default:
        break;
    }
}

static void check_refusal(const struct weir_pgo_msg *m, const char *why, size_t len)
{
    static const struct weir_pgo_msg empty;
    if (memcmp(m, &empty, sizeof(empty)))
        abort(); /* a refused message must own nothing */
    const char *at = strstr(why, ", offset ");
    if (strncmp(why, "pgoutput ", 9) || !at || strtoull(at + 9, NULL, 10) > len)
        abort();
}

static void one_value(const struct weir_pgo *d, uint8_t tag, const uint8_t *text, size_t len,
                      struct weir_buf *out)
{
    uint32_t oid = oids[(tag & 0x7f) % LEN(oids)];
    enum weir_value_kind kind, elem_kind;
    weir_pgo_value(d, oid, (const char *)text, len, &kind, &elem_kind, out);
    if (kind == WEIR_VALUE_NULL || kind == WEIR_VALUE_UNCHANGED || kind > WEIR_VALUE_LIST)
        abort(); /* text always has a value */
    if ((kind == WEIR_VALUE_LIST) != (elem_kind != WEIR_VALUE_NULL))
        abort();
    if (kind == WEIR_VALUE_LIST)
        check_json_array(out->data, out->len);
    if (kind == WEIR_VALUE_BOOL && strcmp(out->data, "true") && strcmp(out->data, "false"))
        abort();
    if ((kind == WEIR_VALUE_JSON || (kind == WEIR_VALUE_STRING && oid == 25)) &&
        (out->len != len || memcmp(out->data, text, len)))
        abort(); /* json and text pass as they are */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct weir_pgo *d = weir_pgo_new();
    struct weir_buf out;
    weir_buf_init(&out);
    char why[256];
    /* The custom types every input's values may name. */
    const struct cap_msg types[] = {
        {"type_mood", cap_type_mood, sizeof(cap_type_mood)},
        {"type_posint", cap_type_posint, sizeof(cap_type_posint)},
        {"type_mood_array", cap_type_mood_array, sizeof(cap_type_mood_array)},
    };
    for (size_t i = 0; i < LEN(types); i++) {
        struct weir_pgo_msg m;
        if (weir_pgo_decode(d, types[i].data, types[i].len, &m, why, sizeof(why)) != WEIR_OK ||
            m.kind != WEIR_PGO_TYPE)
            abort();
        weir_pgo_msg_clear(&m);
    }
    size_t i = 0;
    while (i < size) {
        uint8_t tag = data[i++];
        size_t len = 0;
        if (size - i >= 2) {
            len = (size_t)data[i] << 8 | data[i + 1];
            i += 2;
        } else {
            i = size;
        }
        if (len > size - i)
            len = size - i;
        uint8_t *copy = malloc(len ? len : 1);
        if (!copy)
            abort();
        memcpy(copy, data + i, len);
        i += len;
        if (tag & 0x80) {
            one_value(d, tag, copy, len, &out);
        } else {
            struct weir_pgo_msg m;
            if (weir_pgo_decode(d, copy, len, &m, why, sizeof(why)) == WEIR_OK)
                check_msg(d, &m);
            else
                check_refusal(&m, why, len);
            weir_pgo_msg_clear(&m);
        }
        free(copy);
    }
    weir_buf_deinit(&out);
    weir_pgo_free(d);
    return 0;
}
