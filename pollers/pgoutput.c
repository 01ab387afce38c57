/* The pgoutput wire decoder: one logical replication message (protocol version 1) at a time into
 * a decoded message, and each text value into its neutral form. Owns the relation and type caches
 * a replication connection builds up. Must never do I/O, and never read a byte past a message's
 * length: every read goes through the reader below, which checks it first. */
#include "pollers/pgoutput.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/mem.h"
#include "core/text.h"
#include "core/u32map.h"

/* Microseconds from the Unix epoch to 2000-01-01, the epoch of pgoutput's timestamps. */
#define PG_EPOCH_US 946684800000000LL
/* Postgres' MAXDIM: an array literal nested deeper is no array Postgres wrote. */
#define MAX_DIMS 6

struct type_ent {
    struct weir_pgo_type pub;
    const struct builtin *as; /* the builtin type it names (a domain's base type), or NULL */
};

/* Scratch buffers larger than this are given back after the row that grew them. */
#define SCRATCH_KEEP_MAX (1024 * 1024)

struct weir_pgo {
    struct weir_u32map rels;  /* relation id -> struct weir_pgo_relation */
    struct weir_u32map types; /* type OID -> struct type_ent */
    struct weir_buf val;      /* one converted value at a time */
    /* A tuple being decoded: its columns (names borrowed from the relation) and their values. */
    struct weir_column *cols;
    size_t cols_cap;
    struct weir_buf arena;
};

/* ---- value conversion ---- */

/* How a type's text is read. Types not in the table below are read as STRING. */
enum cat { C_STRING, C_BOOL, C_NUMBER, C_BYTEA, C_JSON, C_TS, C_TSTZ };

struct builtin {
    uint32_t oid;
    const char *name; /* pg_catalog's name: how a Type message names a domain's base type */
    enum cat cat;
    uint32_t elem; /* an array type: its element type's OID; 0 otherwise */
};

/* The builtin types weir reads other than as STRING, and the builtin arrays of comma-separated
 * elements (box[] separates by ';', so it is left out and read as STRING). */
static const struct builtin builtins[] = {
    {16, "bool", C_BOOL, 0},
    {17, "bytea", C_BYTEA, 0},
    {20, "int8", C_NUMBER, 0},
    {21, "int2", C_NUMBER, 0},
    {23, "int4", C_NUMBER, 0},
    {26, "oid", C_NUMBER, 0},
    {114, "json", C_JSON, 0},
    {700, "float4", C_NUMBER, 0},
    {701, "float8", C_NUMBER, 0},
    {1114, "timestamp", C_TS, 0},
    {1184, "timestamptz", C_TSTZ, 0},
    {1700, "numeric", C_NUMBER, 0},
    {3802, "jsonb", C_JSON, 0},
    {143, "_xml", C_STRING, 142},
    {199, "_json", C_STRING, 114},
    {651, "_cidr", C_STRING, 650},
    {791, "_money", C_STRING, 790},
    {1000, "_bool", C_STRING, 16},
    {1001, "_bytea", C_STRING, 17},
    {1002, "_char", C_STRING, 18},
    {1003, "_name", C_STRING, 19},
    {1005, "_int2", C_STRING, 21},
    {1007, "_int4", C_STRING, 23},
    {1009, "_text", C_STRING, 25},
    {1014, "_bpchar", C_STRING, 1042},
    {1015, "_varchar", C_STRING, 1043},
    {1016, "_int8", C_STRING, 20},
    {1021, "_float4", C_STRING, 700},
    {1022, "_float8", C_STRING, 701},
    {1028, "_oid", C_STRING, 26},
    {1040, "_macaddr", C_STRING, 829},
    {1041, "_inet", C_STRING, 869},
    {1115, "_timestamp", C_STRING, 1114},
    {1182, "_date", C_STRING, 1082},
    {1183, "_time", C_STRING, 1083},
    {1185, "_timestamptz", C_STRING, 1184},
    {1187, "_interval", C_STRING, 1186},
    {1231, "_numeric", C_STRING, 1700},
    {1270, "_timetz", C_STRING, 1266},
    {1561, "_bit", C_STRING, 1560},
    {1563, "_varbit", C_STRING, 1562},
    {2951, "_uuid", C_STRING, 2950},
    {3807, "_jsonb", C_STRING, 3802},
};

static const struct builtin *builtin_by_oid(uint32_t oid)
{
    for (size_t i = 0; i < sizeof(builtins) / sizeof(*builtins); i++)
        if (builtins[i].oid == oid)
            return &builtins[i];
    return NULL;
}

static const struct builtin *builtin_by_name(const char *name)
{
    for (size_t i = 0; i < sizeof(builtins) / sizeof(*builtins); i++)
        if (!strcmp(builtins[i].name, name))
            return &builtins[i];
    return NULL;
}

static enum cat cat_of(uint32_t oid)
{
    const struct builtin *bt = builtin_by_oid(oid);
    return bt && !bt->elem ? bt->cat : C_STRING;
}

static enum weir_value_kind kind_of(enum cat c)
{
    switch (c) {
    case C_BOOL:
        return WEIR_VALUE_BOOL;
    case C_NUMBER:
        return WEIR_VALUE_NUMBER;
    case C_BYTEA:
        return WEIR_VALUE_BYTES;
    case C_JSON:
        return WEIR_VALUE_JSON;
    default:
        return WEIR_VALUE_STRING;
    }
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Skips at least one digit; false when there is none. */
static bool digits(const char *s, size_t n, size_t *i)
{
    size_t start = *i;
    while (*i < n && is_digit(s[*i]))
        (*i)++;
    return *i > start;
}

/* A decimal number as Postgres writes one: "-12.50", "1.5e-07", "1e+300". Not NaN, Infinity. */
static bool is_number(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (!digits(s, n, &i))
        return false;
    if (i < n && s[i] == '.') {
        i++;
        if (!digits(s, n, &i))
            return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (!digits(s, n, &i))
            return false;
    }
    return i == n;
}

/* bytea_output=hex: "\x0a0b" into its bytes. */
static bool unhex(const char *s, size_t n, struct weir_buf *out)
{
    if (n < 2 || s[0] != '\\' || s[1] != 'x' || (n - 2) % 2)
        return false;
    for (size_t i = 2; i < n; i++)
        if (weir_hex_digit(s[i]) < 0)
            return false;
    weir_buf_reserve(out, (n - 2) / 2);
    for (size_t i = 2; i < n; i += 2)
        weir_buf_append_char(out, (char)(weir_hex_digit(s[i]) << 4 | weir_hex_digit(s[i + 1])));
    return true;
}

/* Exactly k digits at s[*i]. */
static bool fixed_digits(const char *s, size_t n, size_t *i, size_t k)
{
    for (size_t j = 0; j < k; j++)
        if (*i + j >= n || !is_digit(s[*i + j]))
            return false;
    *i += k;
    return true;
}

static bool expect(const char *s, size_t n, size_t *i, char c)
{
    if (*i >= n || s[*i] != c)
        return false;
    (*i)++;
    return true;
}

/* DateStyle=ISO: "2026-12-01 16:04:26.123456" into "2026-12-01T16:04:26.123456"; with tz,
 * "...+00" into "...Z" and "...+05:30" or "...+05" into "...+05:30", "...+05:00". false for
 * anything else ("infinity", "... BC", an offset with seconds), leaving out as it was. */
static bool iso_time(const char *s, size_t n, bool tz, struct weir_buf *out)
{
    size_t i = 0;
    if (!digits(s, n, &i) || i < 4 || !expect(s, n, &i, '-') || !fixed_digits(s, n, &i, 2) ||
        !expect(s, n, &i, '-') || !fixed_digits(s, n, &i, 2))
        return false;
    size_t date_end = i;
    if (!expect(s, n, &i, ' ') || !fixed_digits(s, n, &i, 2) || !expect(s, n, &i, ':') ||
        !fixed_digits(s, n, &i, 2) || !expect(s, n, &i, ':') || !fixed_digits(s, n, &i, 2))
        return false;
    if (i < n && s[i] == '.') {
        i++;
        if (!digits(s, n, &i))
            return false;
    }
    size_t time_end = i;
    const char *hh = NULL, *mm = "00";
    char sign = 0;
    if (tz) {
        if (i >= n || (s[i] != '+' && s[i] != '-'))
            return false;
        sign = s[i++];
        hh = s + i;
        if (!fixed_digits(s, n, &i, 2))
            return false;
        if (i < n) {
            mm = s + i + 1;
            if (!expect(s, n, &i, ':') || !fixed_digits(s, n, &i, 2))
                return false;
        }
    }
    if (i != n)
        return false;
    weir_buf_append(out, s, date_end);
    weir_buf_append_char(out, 'T');
    weir_buf_append(out, s + date_end + 1, time_end - date_end - 1);
    if (!tz)
        return true;
    if (!memcmp(hh, "00", 2) && !memcmp(mm, "00", 2)) {
        weir_buf_append_char(out, 'Z');
        return true;
    }
    weir_buf_append_char(out, sign);
    weir_buf_append(out, hh, 2);
    weir_buf_append_char(out, ':');
    weir_buf_append(out, mm, 2);
    return true;
}

/* Appends the value of a scalar read as c; returns its kind. Text it cannot read is a STRING. */
static enum weir_value_kind scalar(enum cat c, const char *s, size_t n, struct weir_buf *out)
{
    switch (c) {
    case C_BOOL:
        if (n == 1 && (s[0] == 't' || s[0] == 'f')) {
            weir_buf_append_str(out, s[0] == 't' ? "true" : "false");
            return WEIR_VALUE_BOOL;
        }
        break;
    case C_NUMBER:
        if (is_number(s, n)) {
            weir_buf_append(out, s, n);
            return WEIR_VALUE_NUMBER;
        }
        break;
    case C_BYTEA:
        if (unhex(s, n, out))
            return WEIR_VALUE_BYTES;
        break;
    case C_JSON:
        weir_buf_append(out, s, n);
        return WEIR_VALUE_JSON;
    case C_TS:
    case C_TSTZ:
        if (iso_time(s, n, c == C_TSTZ, out))
            return WEIR_VALUE_STRING;
        break;
    case C_STRING:
        break;
    }
    weir_buf_append(out, s, n);
    return WEIR_VALUE_STRING;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static void skip_space(const char *s, size_t n, size_t *i)
{
    while (*i < n && is_space(s[*i]))
        (*i)++;
}

/* One element of an array literal at s[*i] (not at a space), unquoted and unescaped into el;
 * *null when it is an unquoted NULL. */
static bool array_elem(const char *s, size_t n, size_t *i, struct weir_buf *el, bool *null)
{
    weir_buf_reset(el);
    *null = false;
    if (s[*i] == '"') {
        for ((*i)++;; (*i)++) {
            if (*i >= n)
                return false;
            if (s[*i] == '"')
                break;
            if (s[*i] == '\\' && ++(*i) >= n)
                return false;
            weir_buf_append_char(el, s[*i]);
        }
        (*i)++;
        return true;
    }
    size_t keep = 0; /* el's length without trailing unescaped spaces */
    bool escaped = false;
    for (; *i < n && s[*i] != ',' && s[*i] != '}'; (*i)++) {
        if (s[*i] == '{' || s[*i] == '"')
            return false;
        if (s[*i] == '\\') {
            if (++(*i) >= n)
                return false;
            escaped = true;
            weir_buf_append_char(el, s[*i]);
            keep = el->len;
            continue;
        }
        weir_buf_append_char(el, s[*i]);
        if (!is_space(s[*i]))
            keep = el->len;
    }
    el->len = keep;
    el->data[keep] = '\0';
    if (!keep)
        return false;
    *null = !escaped && keep == 4 && !strncasecmp(el->data, "NULL", 4);
    return true;
}

/* Skips an array literal's dimensions, "[1:2][0:1]=", when it has them. */
static bool array_dims(const char *s, size_t n, size_t *i)
{
    if (*i >= n || s[*i] != '[')
        return true;
    while (*i < n && s[*i] == '[') {
        (*i)++;
        for (int part = 0; part < 2; part++) {
            if (*i < n && s[*i] == '-')
                (*i)++;
            if (!digits(s, n, i))
                return false;
            if (part == 0 && !expect(s, n, i, ':'))
                return false;
        }
        if (!expect(s, n, i, ']'))
            return false;
    }
    skip_space(s, n, i);
    return expect(s, n, i, '=');
}

/* Appends the JSON array a Postgres array literal holds: each element converted as ec into a
 * JSON string (BYTES as base64), null, or a nested array. raw: each element's text as it is.
 * false when s is no array literal, or (*mismatch) when an element is not of kind want. */
static bool array(enum cat ec, enum weir_value_kind want, bool raw, const char *s, size_t n,
                  struct weir_buf *out, bool *mismatch)
{
    struct weir_buf el, conv;
    weir_buf_init(&el);
    weir_buf_init(&conv);
    weir_buf_reserve(&el, 32);
    weir_buf_reserve(&conv, 32);
    size_t count[MAX_DIMS]; /* elements so far at each open level */
    size_t i = 0, depth = 0;
    bool ok = false, after = false; /* after: an element or a nested array just ended */
    skip_space(s, n, &i);
    if (!array_dims(s, n, &i))
        goto done;
    skip_space(s, n, &i);
    if (!expect(s, n, &i, '{'))
        goto done;
    weir_buf_append_char(out, '[');
    count[depth++] = 0;
    while (depth > 0) {
        skip_space(s, n, &i);
        if (i >= n)
            goto done;
        if (s[i] == '}' && (after || !count[depth - 1])) {
            i++;
            weir_buf_append_char(out, ']');
            depth--;
            after = true;
            continue;
        }
        if (after) {
            if (s[i] != ',')
                goto done;
            i++;
            after = false;
            continue;
        }
        if (count[depth - 1]++)
            weir_buf_append_char(out, ',');
        if (s[i] == '{') {
            if (depth == MAX_DIMS)
                goto done;
            i++;
            weir_buf_append_char(out, '[');
            count[depth++] = 0;
            continue;
        }
        bool null;
        if (!array_elem(s, n, &i, &el, &null))
            goto done;
        after = true;
        if (null) {
            weir_buf_append_str(out, "null");
        } else if (raw) {
            weir_buf_append_json_str(out, el.data, el.len);
        } else {
            weir_buf_reset(&conv);
            if (scalar(ec, el.data, el.len, &conv) != want) {
                *mismatch = true;
                goto done;
            }
            if (want == WEIR_VALUE_BYTES) {
                weir_buf_append_char(out, '"');
                weir_buf_append_base64(out, conv.data, conv.len);
                weir_buf_append_char(out, '"');
            } else {
                weir_buf_append_json_str(out, conv.data, conv.len);
            }
        }
    }
    skip_space(s, n, &i);
    ok = i == n;
done:
    weir_buf_deinit(&el);
    weir_buf_deinit(&conv);
    return ok;
}

/* An array value: LIST of kind want, or LIST of STRING when an element is not of that kind, or
 * STRING when text is no array literal. */
static void array_value(enum cat ec, const char *text, size_t len, enum weir_value_kind *kind,
                        enum weir_value_kind *elem_kind, struct weir_buf *out)
{
    enum weir_value_kind want = kind_of(ec);
    bool mismatch = false;
    *kind = WEIR_VALUE_LIST;
    *elem_kind = want;
    if (array(ec, want, false, text, len, out, &mismatch))
        return;
    weir_buf_reset(out);
    *elem_kind = WEIR_VALUE_STRING;
    if (mismatch && array(C_STRING, WEIR_VALUE_STRING, true, text, len, out, &mismatch))
        return;
    weir_buf_reset(out);
    weir_buf_append(out, text, len);
    *kind = WEIR_VALUE_STRING;
    *elem_kind = WEIR_VALUE_NULL;
}

void weir_pgo_value(const struct weir_pgo *d, uint32_t type_oid, const char *text, size_t len,
                    enum weir_value_kind *kind, enum weir_value_kind *elem_kind,
                    struct weir_buf *out)
{
    weir_buf_reset(out);
    weir_buf_reserve(out, len);
    *elem_kind = WEIR_VALUE_NULL;
    const struct builtin *bt = builtin_by_oid(type_oid);
    if (!bt && d) {
        const struct type_ent *te = weir_u32map_get(&d->types, type_oid);
        if (te && te->as) {
            bt = te->as;
        } else if (te && te->pub.name[0] == '_') {
            array_value(C_STRING, text, len, kind, elem_kind, out);
            return;
        }
    }
    if (bt && bt->elem) {
        array_value(cat_of(bt->elem), text, len, kind, elem_kind, out);
        return;
    }
    *kind = scalar(bt ? bt->cat : C_STRING, text, len, out);
}

/* ---- the reader ---- */

/* One message being read: every read checks that its bytes are there first. */
struct rd {
    const uint8_t *p;
    size_t len, off;
    const char *name; /* the message kind's, for why */
    char *why;
    size_t why_len;
};

static bool bad(struct rd *r, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fills why: "pgoutput <kind> message, offset <at>: <fmt>". Returns false. */
static bool bad(struct rd *r, size_t at, const char *fmt, ...)
{
    if (!r->why_len)
        return false;
    int n = snprintf(r->why, r->why_len, "pgoutput %s%smessage, offset %zu: ", r->name,
                     r->name[0] ? " " : "", at);
    if (n >= 0 && (size_t)n < r->why_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->why + n, r->why_len - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return false;
}

static bool need(struct rd *r, size_t n, const char *what)
{
    if (r->len - r->off >= n)
        return true;
    return bad(r, r->off, "truncated: %s needs %zu byte%s, %zu left", what, n, n == 1 ? "" : "s",
               r->len - r->off);
}

static bool rd_u8(struct rd *r, const char *what, uint8_t *v)
{
    if (!need(r, 1, what))
        return false;
    *v = r->p[r->off++];
    return true;
}

static bool rd_u16(struct rd *r, const char *what, uint16_t *v)
{
    if (!need(r, 2, what))
        return false;
    *v = (uint16_t)(r->p[r->off] << 8 | r->p[r->off + 1]);
    r->off += 2;
    return true;
}

static bool rd_u32(struct rd *r, const char *what, uint32_t *v)
{
    if (!need(r, 4, what))
        return false;
    const uint8_t *p = r->p + r->off;
    *v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    r->off += 4;
    return true;
}

static bool rd_u64(struct rd *r, const char *what, uint64_t *v)
{
    uint32_t hi, lo;
    if (!need(r, 8, what) || !rd_u32(r, what, &hi) || !rd_u32(r, what, &lo))
        return false;
    *v = (uint64_t)hi << 32 | lo;
    return true;
}

/* A NUL-terminated string; *s points into the message. */
static bool rd_str(struct rd *r, const char *what, const char **s)
{
    if (!need(r, 1, what))
        return false;
    const uint8_t *z = memchr(r->p + r->off, '\0', r->len - r->off);
    if (!z)
        return bad(r, r->off, "truncated: %s has no terminating NUL", what);
    *s = (const char *)r->p + r->off;
    r->off = (size_t)(z - r->p) + 1;
    return true;
}

static bool at_end(struct rd *r)
{
    if (r->off == r->len)
        return true;
    size_t n = r->len - r->off;
    return bad(r, r->off, "%zu byte%s after the end of the message", n, n == 1 ? "" : "s");
}

static char printable(uint8_t c)
{
    return c >= 0x20 && c < 0x7f ? (char)c : '?';
}

static int32_t s32(uint32_t v)
{
    return v <= INT32_MAX ? (int32_t)v : (int32_t)(v - 0x80000000u) + INT32_MIN;
}

/* pgoutput's microseconds since 2000-01-01 as microseconds since 1970-01-01 (saturating: a
 * commit time is never near the ends of the range). */
static int64_t unix_us(uint64_t pg)
{
    int64_t v = pg <= INT64_MAX ? (int64_t)pg : -(int64_t)(~pg) - 1;
    return v > INT64_MAX - PG_EPOCH_US ? INT64_MAX : v + PG_EPOCH_US;
}

/* ---- the caches ---- */

static void rel_free(struct weir_pgo_relation *rel)
{
    if (!rel)
        return;
    for (size_t i = 0; i < rel->n_cols; i++)
        free(rel->cols[i].name);
    free(rel->cols);
    free(rel->schema);
    free(rel->table);
    free(rel);
}

static void type_free(struct type_ent *te)
{
    if (!te)
        return;
    free(te->pub.schema);
    free(te->pub.name);
    free(te);
}

struct weir_pgo *weir_pgo_new(void)
{
    struct weir_pgo *d = weir_calloc(1, sizeof(*d));
    weir_u32map_init(&d->rels);
    weir_u32map_init(&d->types);
    weir_buf_init(&d->val);
    weir_buf_init(&d->arena);
    return d;
}

void weir_pgo_free(struct weir_pgo *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->rels.cap; i++)
        rel_free(d->rels.vals[i]);
    for (size_t i = 0; i < d->types.cap; i++)
        type_free(d->types.vals[i]);
    weir_u32map_deinit(&d->rels);
    weir_u32map_deinit(&d->types);
    weir_buf_deinit(&d->val);
    weir_buf_deinit(&d->arena);
    free(d->cols);
    free(d);
}

const struct weir_pgo_relation *weir_pgo_relation(const struct weir_pgo *d, uint32_t relid)
{
    return weir_u32map_get(&d->rels, relid);
}

/* ---- the messages ---- */

static bool dec_begin(struct rd *r, struct weir_pgo_msg *msg)
{
    uint64_t ts;
    if (!rd_u64(r, "the final LSN", &msg->final_lsn) || !rd_u64(r, "the commit time", &ts) ||
        !rd_u32(r, "the xid", &msg->xid))
        return false;
    msg->commit_time_us = unix_us(ts);
    return at_end(r);
}

static bool dec_commit(struct rd *r, struct weir_pgo_msg *msg)
{
    uint8_t flags;
    uint64_t ts;
    if (!rd_u8(r, "the flags", &flags) || !rd_u64(r, "the commit LSN", &msg->commit_lsn) ||
        !rd_u64(r, "the end LSN", &msg->end_lsn) || !rd_u64(r, "the commit time", &ts))
        return false;
    msg->commit_time_us = unix_us(ts);
    return at_end(r);
}

static bool dec_origin(struct rd *r, struct weir_pgo_msg *msg)
{
    const char *name;
    if (!rd_u64(r, "the origin LSN", &msg->origin_lsn) || !rd_str(r, "the origin name", &name) ||
        !at_end(r))
        return false;
    msg->origin_name = weir_strdup(name);
    return true;
}

static bool dec_message(struct rd *r)
{
    uint8_t flags;
    uint64_t lsn;
    uint32_t n;
    const char *prefix;
    if (!rd_u8(r, "the flags", &flags) || !rd_u64(r, "the LSN", &lsn) ||
        !rd_str(r, "the prefix", &prefix) || !rd_u32(r, "the content's length", &n) ||
        !need(r, n, "the content"))
        return false;
    r->off += n;
    return at_end(r);
}

static bool dec_relation(struct weir_pgo *d, struct rd *r, struct weir_pgo_msg *msg)
{
    uint32_t id;
    const char *schema, *table;
    uint8_t ident;
    uint16_t n;
    if (!rd_u32(r, "the relation id", &id) || !rd_str(r, "the namespace", &schema) ||
        !rd_str(r, "the relation name", &table) || !rd_u8(r, "the replica identity", &ident))
        return false;
    size_t at = r->off;
    if (!rd_u16(r, "the column count", &n))
        return false;
    if (n > INT16_MAX)
        return bad(r, at, "negative column count %d", (int)n - 0x10000);
    /* A column takes at least 10 bytes: a count the message cannot hold is refused before
     * anything is allocated for it. */
    if ((size_t)n * 10 > r->len - r->off)
        return bad(r, r->off, "truncated: %u columns need at least %zu bytes, %zu left", n,
                   (size_t)n * 10, r->len - r->off);
    struct weir_pgo_relation *rel = weir_calloc(1, sizeof(*rel));
    rel->id = id;
    rel->schema = weir_strdup(schema);
    rel->table = weir_strdup(table);
    rel->replica_identity = (char)ident;
    rel->cols = n ? weir_calloc(n, sizeof(*rel->cols)) : NULL;
    rel->n_cols = n;
    for (size_t i = 0; i < n; i++) {
        struct weir_pgo_column *col = &rel->cols[i];
        uint8_t flags;
        const char *name;
        uint32_t typmod;
        if (!rd_u8(r, "a column's flags", &flags) || !rd_str(r, "a column's name", &name) ||
            !rd_u32(r, "a column's type OID", &col->type_oid) ||
            !rd_u32(r, "a column's type modifier", &typmod))
            goto fail;
        col->name = weir_strdup(name);
        col->typmod = s32(typmod);
        col->key = flags & 1;
    }
    if (!at_end(r))
        goto fail;
    struct weir_pgo_relation *old = weir_u32map_get(&d->rels, id);
    weir_u32map_put(&d->rels, id, rel);
    rel_free(old);
    msg->rel = rel;
    return true;
fail:
    rel_free(rel);
    return false;
}

static bool dec_type(struct weir_pgo *d, struct rd *r, struct weir_pgo_msg *msg)
{
    uint32_t oid;
    const char *schema, *name;
    if (!rd_u32(r, "the type OID", &oid) || !rd_str(r, "the namespace", &schema) ||
        !rd_str(r, "the type name", &name) || !at_end(r))
        return false;
    struct type_ent *te = weir_calloc(1, sizeof(*te));
    te->pub.oid = oid;
    te->pub.schema = weir_strdup(schema);
    te->pub.name = weir_strdup(name);
    te->as = schema[0] ? NULL : builtin_by_name(name);
    type_free(weir_u32map_get(&d->types, oid));
    weir_u32map_put(&d->types, oid, te);
    msg->type = &te->pub;
    return true;
}

/* TupleData of rel into *out. keys_only (an old key, 'K'): only the columns of the replica
 * identity, and any other the server gave a value. */
static bool dec_tuple(struct weir_pgo *d, struct rd *r, const struct weir_pgo_relation *rel,
                      bool keys_only, struct weir_tuple **out)
{
    size_t at = r->off;
    uint16_t n;
    if (!rd_u16(r, "the tuple's column count", &n))
        return false;
    if (n != rel->n_cols)
        return bad(r, at, "the tuple has %u columns, relation %s.%s (id %u) has %zu", n,
                   rel->schema, rel->table, rel->id, rel->n_cols);
    /* The columns are gathered here, their values one after another in d->arena (value holds
     * an offset until the arena stops growing), then copied into one packed tuple. */
    if (n > d->cols_cap) {
        d->cols = weir_realloc(d->cols, n * sizeof(*d->cols));
        d->cols_cap = n;
    }
    weir_buf_reset(&d->arena);
    weir_buf_reserve(&d->arena, 256); /* allocated: an empty value's offset must point in it */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const struct weir_pgo_column *col = &rel->cols[i];
        struct weir_column *c = &d->cols[m];
        *c = (struct weir_column){.name = col->name, .key = col->key};
        uint8_t k;
        uint32_t vlen;
        at = r->off;
        if (!rd_u8(r, "a column's kind", &k))
            return false;
        switch (k) {
        case 'n':
            c->kind = WEIR_VALUE_NULL;
            break;
        case 'u':
            c->kind = WEIR_VALUE_UNCHANGED;
            break;
        case 't': {
            if (!rd_u32(r, "a text value's length", &vlen))
                return false;
            if (vlen > INT32_MAX)
                return bad(r, r->off - 4, "negative length %d of column %s's value", s32(vlen),
                           col->name);
            if (!need(r, vlen, "a text value"))
                return false;
            weir_pgo_value(d, col->type_oid, (const char *)r->p + r->off, vlen, &c->kind,
                           &c->elem_kind, &d->val);
            r->off += vlen;
            c->value = (char *)(uintptr_t)(d->arena.len + 1); /* an offset, 1-based */
            c->value_len = d->val.len;
            weir_buf_append(&d->arena, d->val.data, d->val.len);
            break;
        }
        case 'b':
            return bad(r, at, "column %s's value is binary: weir asks for text values", col->name);
        default:
            return bad(r, at, "unknown kind '%c' (0x%02x) of column %s's value", printable(k), k,
                       col->name);
        }
        /* An old key ('K') sends NULL for every column outside the identity: left out. */
        if (!keys_only || c->key || c->kind != WEIR_VALUE_NULL)
            m++;
    }
    for (size_t i = 0; i < m; i++)
        if (d->cols[i].value)
            d->cols[i].value = d->arena.data + ((uintptr_t)d->cols[i].value - 1);
    *out = weir_tuple_pack(d->cols, m);
    /* One huge row must not pin its size for the rest of the stream. */
    if (d->arena.cap > SCRATCH_KEEP_MAX)
        weir_buf_deinit(&d->arena);
    if (d->val.cap > SCRATCH_KEEP_MAX)
        weir_buf_deinit(&d->val);
    return true;
}

/* INSERT ('N'), UPDATE (optional 'K' or 'O', then 'N') and DELETE ('K' or 'O'). */
static bool dec_change(struct weir_pgo *d, struct rd *r, struct weir_pgo_msg *msg)
{
    size_t at = r->off;
    uint32_t relid;
    if (!rd_u32(r, "the relation id", &relid))
        return false;
    const struct weir_pgo_relation *rel = weir_u32map_get(&d->rels, relid);
    if (!rel)
        return bad(r, at, "no Relation message for relation id %u", relid);
    msg->rel = rel;
    msg->row = weir_row_new(msg->kind == WEIR_PGO_INSERT   ? WEIR_ROW_INSERT
                            : msg->kind == WEIR_PGO_UPDATE ? WEIR_ROW_UPDATE
                                                           : WEIR_ROW_DELETE);
    const char *expected = msg->kind == WEIR_PGO_INSERT   ? "'N'"
                           : msg->kind == WEIR_PGO_UPDATE ? "'K', 'O' or 'N'"
                                                          : "'K' or 'O'";
    uint8_t m;
    at = r->off;
    if (!rd_u8(r, "the tuple's marker", &m))
        return false;
    if (msg->kind != WEIR_PGO_INSERT && (m == 'K' || m == 'O')) {
        msg->row->old_full = m == 'O';
        if (!dec_tuple(d, r, rel, m == 'K', &msg->row->old_row))
            return false;
        if (msg->kind == WEIR_PGO_DELETE)
            return at_end(r);
        expected = "'N'";
        at = r->off;
        if (!rd_u8(r, "the new tuple's marker", &m))
            return false;
    }
    if (m != 'N' || msg->kind == WEIR_PGO_DELETE)
        return bad(r, at, "tuple marker '%c' (0x%02x) where %s belongs", printable(m), m, expected);
    if (!dec_tuple(d, r, rel, false, &msg->row->new_row))
        return false;
    return at_end(r);
}

static bool dec_truncate(struct rd *r, struct weir_pgo_msg *msg)
{
    uint32_t n;
    if (!rd_u32(r, "the relation count", &n) || !rd_u8(r, "the options", &msg->truncate_flags) ||
        !need(r, (size_t)n * 4, "the list of relation ids"))
        return false;
    msg->relids = n ? weir_malloc((size_t)n * sizeof(*msg->relids)) : NULL;
    msg->n_relids = n;
    for (size_t i = 0; i < n; i++)
        rd_u32(r, "a relation id", &msg->relids[i]);
    return at_end(r);
}

const char *weir_pgo_kind_name(enum weir_pgo_kind kind)
{
    switch (kind) {
    case WEIR_PGO_BEGIN:
        return "Begin";
    case WEIR_PGO_COMMIT:
        return "Commit";
    case WEIR_PGO_ORIGIN:
        return "Origin";
    case WEIR_PGO_RELATION:
        return "Relation";
    case WEIR_PGO_TYPE:
        return "Type";
    case WEIR_PGO_INSERT:
        return "Insert";
    case WEIR_PGO_UPDATE:
        return "Update";
    case WEIR_PGO_DELETE:
        return "Delete";
    case WEIR_PGO_TRUNCATE:
        return "Truncate";
    case WEIR_PGO_MESSAGE:
        return "Message";
    }
    return "unknown";
}

weir_status weir_pgo_decode(struct weir_pgo *d, const void *data, size_t len,
                            struct weir_pgo_msg *msg, char *why, size_t why_len)
{
    memset(msg, 0, sizeof(*msg));
    if (why_len)
        why[0] = '\0';
    struct rd r = {.p = data, .len = len, .name = "", .why = why, .why_len = why_len};
    uint8_t type;
    if (!rd_u8(&r, "the message type", &type))
        return WEIR_ERR;
    switch (type) {
    case 'B':
        msg->kind = WEIR_PGO_BEGIN;
        break;
    case 'C':
        msg->kind = WEIR_PGO_COMMIT;
        break;
    case 'O':
        msg->kind = WEIR_PGO_ORIGIN;
        break;
    case 'R':
        msg->kind = WEIR_PGO_RELATION;
        break;
    case 'Y':
        msg->kind = WEIR_PGO_TYPE;
        break;
    case 'I':
        msg->kind = WEIR_PGO_INSERT;
        break;
    case 'U':
        msg->kind = WEIR_PGO_UPDATE;
        break;
    case 'D':
        msg->kind = WEIR_PGO_DELETE;
        break;
    case 'T':
        msg->kind = WEIR_PGO_TRUNCATE;
        break;
    case 'M':
        msg->kind = WEIR_PGO_MESSAGE;
        break;
    case 'S':
    case 'E':
    case 'c':
    case 'A':
        bad(&r, 0,
            "message type '%c' belongs to a streamed transaction: streamed transactions "
            "need proto_version 2; weir asks for 1",
            type);
        return WEIR_ERR;
    case 'b':
    case 'P':
    case 'K':
    case 'r':
    case 's':
        bad(&r, 0,
            "message type '%c' belongs to a two-phase transaction: two-phase "
            "transactions need proto_version 3; weir asks for 1",
            type);
        return WEIR_ERR;
    default:
        bad(&r, 0, "unknown message type '%c' (0x%02x)", printable(type), type);
        return WEIR_ERR;
    }
    r.name = weir_pgo_kind_name(msg->kind);
    bool ok = false;
    switch (msg->kind) {
    case WEIR_PGO_BEGIN:
        ok = dec_begin(&r, msg);
        break;
    case WEIR_PGO_COMMIT:
        ok = dec_commit(&r, msg);
        break;
    case WEIR_PGO_ORIGIN:
        ok = dec_origin(&r, msg);
        break;
    case WEIR_PGO_RELATION:
        ok = dec_relation(d, &r, msg);
        break;
    case WEIR_PGO_TYPE:
        ok = dec_type(d, &r, msg);
        break;
    case WEIR_PGO_INSERT:
    case WEIR_PGO_UPDATE:
    case WEIR_PGO_DELETE:
        ok = dec_change(d, &r, msg);
        break;
    case WEIR_PGO_TRUNCATE:
        ok = dec_truncate(&r, msg);
        break;
    case WEIR_PGO_MESSAGE:
        ok = dec_message(&r);
        break;
    }
    if (ok)
        return WEIR_OK;
    weir_pgo_msg_clear(msg);
    return WEIR_ERR;
}

void weir_pgo_msg_clear(struct weir_pgo_msg *msg)
{
    weir_row_free(msg->row);
    free(msg->relids);
    free(msg->origin_name);
    memset(msg, 0, sizeof(*msg));
}
