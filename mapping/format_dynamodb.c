/* The DynamoDB Streams event format of a table's row changes (reference section 4.4): the encoder
 * (row changes -> {"Records":[{"eventID":...,"dynamodb":{"Keys":...,"NewImage":...}}]}, neutral
 * column values typed as DynamoDB attribute values, JSON read digit for digit), the record shape
 * filter patterns see (the record's metadata: there is no payload) and the DDBStreamBatchInfo of
 * a failure record (section 1.6). It writes bytes only; it must never talk to a database or
 * decide a verdict. */
#include <assert.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/mem.h"
#include "core/text.h"
#include "mapping/format_common.h"
#include "model/event.h"

/* How deep a JSON value (a json or jsonb column, an array) may nest before it is written as the
 * S of its text instead. Each level becomes two in the event ({"M":{...}}), so 256 keeps an
 * event within the nesting a function's JSON parser takes (Python's stops near 1,000, jansson and
 * weir's own filter reader at 2,048); DynamoDB itself stops at 32. */
#define JSON_MAX_DEPTH 256

/* Lambda's stream ARNs name an account; weir's is the fixed one of every ARN it writes. */
#define DDB_ACCOUNT "000000000000"

/* weir's choice for a TRUNCATE, which DynamoDB has no word for: one REMOVE record per truncated
 * table, naming no item, marked by this principal in the userIdentity AWS gives a TTL deletion
 * ("dynamodb.amazonaws.com" there), so a function tells it from a row's deletion. */
#define TRUNCATE_PRINCIPAL "weir.truncate"

/* A string literal, its length known when compiling: the encoder writes many per record. */
#define append_lit(out, lit) weir_buf_append((out), "" lit, sizeof(lit) - 1)

/* ---- the record's identity and place ---- */

/* eventID: the SequenceNumber's decimal value as one 128-bit number, in 32 lowercase hex digits
 * (AWS's eventIDs are 32 opaque hex digits). A SequenceNumber is unique in its stream and the
 * same each time its record is delivered again, so the eventID is too; 38 digits always fit
 * (10^38 < 2^128). An id that is not such a number (the Postgres poller never makes one) is
 * hashed instead (FNV-1a, 128 bits): still stable, unique but for a hash collision. */
static void append_event_id(struct weir_buf *out, const char *id)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned __int128 max = ~(unsigned __int128)0;
    unsigned __int128 v = 0;
    size_t len = strlen(id);
    bool number = len > 0;
    for (size_t i = 0; i < len && number; i++) {
        unsigned d = (unsigned)(id[i] - '0');
        if (id[i] < '0' || id[i] > '9' || v > (max - d) / 10)
            number = false;
        else
            v = v * 10 + d;
    }
    if (!number) {
        const unsigned __int128 prime = ((unsigned __int128)1 << 88) | 0x13b;
        v = ((unsigned __int128)0x6c62272e07bb0142u << 64) | 0x62b821756295c58du;
        for (size_t i = 0; i < len; i++) {
            v ^= (unsigned char)id[i];
            v *= prime;
        }
    }
    char text[34];
    text[0] = text[33] = '"';
    for (int i = 32; i >= 1; i--, v >>= 4)
        text[i] = hex[(unsigned)(v & 15)];
    weir_buf_append(out, text, sizeof(text));
}

/* Epoch seconds, rounded down: a commit at 10:11:02.118 was made in second 1741083062. */
static int64_t floor_seconds(int64_t ms)
{
    int64_t s = ms / 1000;
    return ms % 1000 < 0 ? s - 1 : s;
}

/* A table's stream ARN, quoted: arn:aws:dynamodb:<region>:<account>:table/<table>/stream/<label>.
 * tmp is scratch space. */
static bool plain_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f || *s == '"' || *s == '\\')
            return false;
    return true;
}

static void append_stream_arn(struct weir_buf *out, struct weir_buf *tmp,
                              const struct weir_event_ctx *ctx, const struct weir_record *r)
{
    const char *region = ctx->region ? ctx->region : "", *table = r->stream ? r->stream : "",
               *label = ctx->stream_label ? ctx->stream_label : "";
    /* The usual case needs no escaping, so no copy to escape. */
    if (plain_ascii(region) && plain_ascii(table) && plain_ascii(label)) {
        append_lit(out, "\"arn:aws:dynamodb:");
        weir_buf_append_str(out, region);
        append_lit(out, ":" DDB_ACCOUNT ":table/");
        weir_buf_append_str(out, table);
        append_lit(out, "/stream/");
        weir_buf_append_str(out, label);
        weir_buf_append_char(out, '"');
        return;
    }
    weir_buf_reset(tmp);
    append_lit(tmp, "arn:aws:dynamodb:");
    weir_buf_append_str(tmp, ctx->region ? ctx->region : "");
    append_lit(tmp, ":" DDB_ACCOUNT ":table/");
    weir_buf_append_str(tmp, r->stream ? r->stream : "");
    append_lit(tmp, "/stream/");
    weir_buf_append_str(tmp, ctx->stream_label ? ctx->stream_label : "");
    weir_buf_append_json_str(out, tmp->data, tmp->len);
}

/* ---- the stream's view type ---- */

enum view { VIEW_KEYS_ONLY, VIEW_NEW_IMAGE, VIEW_OLD_IMAGE, VIEW_NEW_AND_OLD_IMAGES };

static const char *const view_names[] = {
    [VIEW_KEYS_ONLY] = "KEYS_ONLY",
    [VIEW_NEW_IMAGE] = "NEW_IMAGE",
    [VIEW_OLD_IMAGE] = "OLD_IMAGE",
    [VIEW_NEW_AND_OLD_IMAGES] = "NEW_AND_OLD_IMAGES",
};

/* NULL is DynamoDB's fullest view and weir's default. The configuration refuses any other name;
 * should one get through, the event still says which images it carries. */
static enum view view_of(const char *name)
{
    /* Asked for every record: the default first, then the one name a first letter leaves. */
    if (!name || !strcmp(name, "NEW_AND_OLD_IMAGES"))
        return VIEW_NEW_AND_OLD_IMAGES;
    for (size_t v = 0; v < sizeof(view_names) / sizeof(*view_names); v++)
        if (name[0] == view_names[v][0] && !strcmp(name, view_names[v]))
            return (enum view)v;
    return VIEW_NEW_AND_OLD_IMAGES;
}

/* ---- JSON texts, read digit for digit ---- */

/* A JSON text (a json column, an array's text) is read once into a tape of tokens that point
 * into it, and written from the tape. Reading checks the text as strictly as jansson does (UTF-8,
 * escapes, surrogate pairs, the number grammar), so a text is either written whole or is not
 * JSON; numbers keep their digits because they are never converted. */

enum jtype { J_OBJ, J_ARR, J_STR, J_NUM, J_TRUE, J_FALSE, J_NULL };

struct jtok {
    enum jtype type;
    bool esc;     /* J_STR: holds a backslash escape, so its bytes are not its value */
    size_t start; /* J_STR: the byte after the opening quote; others: the first byte */
    size_t len;   /* J_STR: the bytes between the quotes; J_NUM: the literal's */
    size_t next;  /* the token after this value and everything inside it */
};

struct jdoc {
    const char *s;
    size_t len;
    size_t pos;
    struct jtok *t;
    size_t n, cap;
};

static void jdoc_deinit(struct jdoc *d)
{
    free(d->t);
}

static size_t jpush(struct jdoc *d, enum jtype type, size_t start)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 32;
        d->t = weir_realloc(d->t, d->cap * sizeof(*d->t));
    }
    d->t[d->n] = (struct jtok){.type = type, .start = start};
    return d->n++;
}

static void jws(struct jdoc *d)
{
    while (d->pos < d->len) {
        char c = d->s[d->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        d->pos++;
    }
}

static bool jstring(struct jdoc *d)
{
    size_t k = jpush(d, J_STR, ++d->pos);
    bool esc = false;
    while (d->pos < d->len) {
        unsigned char c = (unsigned char)d->s[d->pos];
        if (c == '"') {
            d->t[k].esc = esc;
            d->t[k].len = d->pos - d->t[k].start;
            d->t[k].next = d->n;
            d->pos++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c != '\\') {
            size_t n = weir_utf8_len((const unsigned char *)d->s + d->pos, d->len - d->pos, NULL);
            if (!n)
                return false;
            d->pos += n;
            continue;
        }
        esc = true;
        if (d->pos + 1 >= d->len)
            return false;
        char e = d->s[d->pos + 1];
        d->pos += 2;
        if (e == 'u') {
            int v = weir_hex4(d->s + d->pos, d->len - d->pos);
            if (v < 0 || (v >= 0xdc00 && v <= 0xdfff))
                return false;
            d->pos += 4;
            if (v >= 0xd800 && v <= 0xdbff) {
                int lo = -1;
                if (d->pos + 1 < d->len && d->s[d->pos] == '\\' && d->s[d->pos + 1] == 'u')
                    lo = weir_hex4(d->s + d->pos + 2, d->len - d->pos - 2);
                if (lo < 0xdc00 || lo > 0xdfff)
                    return false;
                d->pos += 6;
            }
        } else if (e == '\0' || !strchr("\"\\/bfnrt", e)) {
            return false;
        }
    }
    return false;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* JSON's number grammar, exactly: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool jnumber(struct jdoc *d)
{
    const char *s = d->s;
    size_t i = d->pos, n = d->len;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n || !is_digit(s[i]))
        return false;
    if (s[i] == '0')
        i++;
    else
        while (i < n && is_digit(s[i]))
            i++;
    if (i < n && s[i] == '.') {
        if (++i >= n || !is_digit(s[i]))
            return false;
        while (i < n && is_digit(s[i]))
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || !is_digit(s[i]))
            return false;
        while (i < n && is_digit(s[i]))
            i++;
    }
    size_t k = jpush(d, J_NUM, d->pos);
    d->t[k].len = i - d->pos;
    d->t[k].next = d->n;
    d->pos = i;
    return true;
}

static bool jword(struct jdoc *d, const char *word, enum jtype type)
{
    size_t n = strlen(word);
    if (d->len - d->pos < n || memcmp(d->s + d->pos, word, n))
        return false;
    size_t k = jpush(d, type, d->pos);
    d->t[k].len = n;
    d->t[k].next = d->n;
    d->pos += n;
    return true;
}

static bool jvalue(struct jdoc *d, int depth);

/* An object or an array at pos; depth: how many more levels may open. */
static bool jcontainer(struct jdoc *d, int depth)
{
    bool obj = d->s[d->pos] == '{';
    char close = obj ? '}' : ']';
    if (depth <= 0)
        return false;
    size_t k = jpush(d, obj ? J_OBJ : J_ARR, d->pos);
    d->pos++;
    jws(d);
    if (d->pos < d->len && d->s[d->pos] == close) {
        d->pos++;
        d->t[k].next = d->n;
        return true;
    }
    for (;;) {
        if (obj) {
            if (d->pos >= d->len || d->s[d->pos] != '"' || !jstring(d))
                return false;
            jws(d);
            if (d->pos >= d->len || d->s[d->pos] != ':')
                return false;
            d->pos++;
        }
        if (!jvalue(d, depth - 1))
            return false;
        jws(d);
        if (d->pos >= d->len)
            return false;
        char c = d->s[d->pos++];
        if (c == close)
            break;
        if (c != ',')
            return false;
        jws(d);
    }
    d->t[k].next = d->n;
    return true;
}

static bool jvalue(struct jdoc *d, int depth)
{
    jws(d);
    if (d->pos >= d->len)
        return false;
    switch (d->s[d->pos]) {
    case '{':
    case '[':
        return jcontainer(d, depth);
    case '"':
        return jstring(d);
    case 't':
        return jword(d, "true", J_TRUE);
    case 'f':
        return jword(d, "false", J_FALSE);
    case 'n':
        return jword(d, "null", J_NULL);
    default:
        return jnumber(d);
    }
}

/* Reads text into d (its tape reused); false when it is not one JSON value, or nests deeper than
 * depth levels. */
static bool jread(struct jdoc *d, const char *text, size_t len, int depth)
{
    d->s = text;
    d->len = len;
    d->pos = 0;
    d->n = 0;
    if (!jvalue(d, depth))
        return false;
    jws(d);
    return d->pos == d->len;
}

/* Appends the value of string token k (checked when read) to b. */
static void jdecode(const struct jdoc *d, size_t k, struct weir_buf *b)
{
    const char *s = d->s + d->t[k].start;
    size_t len = d->t[k].len;
    if (!d->t[k].esc) {
        weir_buf_append(b, s, len);
        return;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '\\') {
            weir_buf_append_char(b, s[i]);
            continue;
        }
        char e = s[++i];
        static const char from[] = "bfnrt", to[] = "\b\f\n\r\t";
        const char *m = strchr(from, e);
        if (e != 'u') {
            weir_buf_append_char(b, m ? to[m - from] : e);
            continue;
        }
        uint32_t cp = (uint32_t)weir_hex4(s + i + 1, 4);
        i += 4;
        if (cp >= 0xd800 && cp <= 0xdbff) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + ((uint32_t)weir_hex4(s + i + 3, 4) - 0xdc00);
            i += 6;
        }
        weir_utf8_put(b, cp);
    }
}

/* ---- attribute values ---- */

/* Scratch space of one record element, reused from column to column. */
struct conv {
    struct jdoc doc;      /* a column's JSON text */
    struct jdoc inner;    /* a JSON element of an array column */
    struct weir_buf text; /* decoded strings, a set's members */
    bool arrays_as_sets;
};

/* String token k as it was written: valid JSON, and the same value. */
static void put_raw_str(struct weir_buf *out, const struct jdoc *d, size_t k)
{
    weir_buf_append_char(out, '"');
    weir_buf_append(out, d->s + d->t[k].start, d->t[k].len);
    weir_buf_append_char(out, '"');
}

static void put_typed_str(struct weir_buf *out, const char *type, const char *s, size_t len)
{
    weir_buf_append_str(out, type);
    weir_buf_append_json_str(out, s, len);
    weir_buf_append_char(out, '}');
}

/* A BOOL's text: "true" or "false". Anything else is not invented into either: it stays a
 * string. */
static void put_bool_text(struct weir_buf *out, const char *s, size_t len)
{
    if (len == 4 && !memcmp(s, "true", 4))
        append_lit(out, "{\"BOOL\":true}");
    else if (len == 5 && !memcmp(s, "false", 5))
        append_lit(out, "{\"BOOL\":false}");
    else
        put_typed_str(out, "{\"S\":", s, len);
}

/* The JSON value at token k: objects M, arrays L, strings S, numbers N with the literal's own
 * digits, true/false BOOL, null NULL. */
static void put_jvalue(struct weir_buf *out, const struct jdoc *d, size_t k)
{
    const struct jtok *t = &d->t[k];
    switch (t->type) {
    case J_OBJ:
        append_lit(out, "{\"M\":{");
        for (size_t m = k + 1; m < t->next; m = d->t[m + 1].next) {
            if (m > k + 1)
                weir_buf_append_char(out, ',');
            put_raw_str(out, d, m);
            weir_buf_append_char(out, ':');
            put_jvalue(out, d, m + 1);
        }
        append_lit(out, "}}");
        break;
    case J_ARR:
        append_lit(out, "{\"L\":[");
        for (size_t e = k + 1; e < t->next; e = d->t[e].next) {
            if (e > k + 1)
                weir_buf_append_char(out, ',');
            put_jvalue(out, d, e);
        }
        append_lit(out, "]}");
        break;
    case J_STR:
        append_lit(out, "{\"S\":");
        put_raw_str(out, d, k);
        weir_buf_append_char(out, '}');
        break;
    case J_NUM:
        /* The grammar leaves nothing to escape in a number. */
        append_lit(out, "{\"N\":\"");
        weir_buf_append(out, d->s + t->start, t->len);
        append_lit(out, "\"}");
        break;
    case J_TRUE:
        append_lit(out, "{\"BOOL\":true}");
        break;
    case J_FALSE:
        append_lit(out, "{\"BOOL\":false}");
        break;
    case J_NULL:
        append_lit(out, "{\"NULL\":true}");
        break;
    }
}

/* A JSON text as an attribute value; a text that is not JSON (or nests deeper than depth) is
 * the S of its text. d: a tape free for this text. */
static void put_json_text(struct weir_buf *out, struct jdoc *d, const char *text, size_t len,
                          int depth)
{
    if (jread(d, text, len, depth))
        put_jvalue(out, d, 0);
    else
        put_typed_str(out, "{\"S\":", text, len);
}

/* Writes a number's value in a form equal for equal numbers (1, 1.0, 10e-1 and +1.000 are one):
 * its sign, its significant digits and a power of ten ("-15e-1"). false when s is not a decimal
 * number ([+-]digits[.digits][e[+-]digits], a digit on at least one side of the point). An
 * exponent too large to hold is cut, which may make two numbers look alike, never apart. */
static bool canon_number(const char *s, size_t len, struct weir_buf *out)
{
    size_t i = 0, first = out->len;
    bool neg = false, any = false;
    int64_t exp = 0;
    if (i < len && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    weir_buf_append_char(out, neg ? '-' : '+');
    size_t digits = out->len;
    for (bool frac = false; i < len; i++) {
        if (s[i] == '.' && !frac) {
            frac = true;
            continue;
        }
        if (!is_digit(s[i]))
            break;
        any = true;
        if (frac)
            exp--;
        if (s[i] != '0' || out->len > digits)
            weir_buf_append_char(out, s[i]);
    }
    if (!any)
        return false;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        int64_t e = 0, sign = 1;
        if (++i < len && (s[i] == '+' || s[i] == '-'))
            sign = s[i++] == '-' ? -1 : 1;
        if (i >= len || !is_digit(s[i]))
            return false;
        for (; i < len && is_digit(s[i]); i++)
            e = e < 1000000000000 ? e * 10 + (s[i] - '0') : e;
        exp += sign * e;
    }
    if (i != len)
        return false;
    while (out->len > digits && out->data[out->len - 1] == '0') {
        out->len--;
        exp++;
    }
    if (out->len == digits) {
        out->len = first; /* zero has no sign */
        append_lit(out, "0");
        return true;
    }
    out->data[out->len] = '\0';
    weir_buf_printf(out, "e%" PRId64, exp);
    return true;
}

/* A set member as compared: its offset and length in conv.text, then its bytes. */
struct member {
    size_t off, len;
    const char *s;
};

static int member_cmp(const void *a, const void *b)
{
    const struct member *x = a, *y = b;
    int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Whether the array at token 0 of d can be a set of elem_kind: one-dimensional, not empty, no
 * nulls, every element distinct (numbers by value: 1 and 1.0 are one number, as DynamoDB and
 * the SDKs that read NS into a set of decimals see them). */
static bool is_set(struct conv *cv, const struct jdoc *d, enum weir_value_kind elem_kind)
{
    const struct jtok *arr = &d->t[0];
    size_t n = arr->next - 1;
    if (arr->type != J_ARR || n == 0)
        return false;
    if (elem_kind != WEIR_VALUE_STRING && elem_kind != WEIR_VALUE_NUMBER &&
        elem_kind != WEIR_VALUE_BYTES)
        return false;
    for (size_t e = 1; e < arr->next; e++)
        if (d->t[e].type != J_STR) /* a null, a nested array, or something that is no element */
            return false;
    struct member *m = weir_calloc(n, sizeof(*m));
    struct weir_buf num;
    bool ok = true;
    weir_buf_init(&num);
    weir_buf_reset(&cv->text);
    for (size_t e = 1; e < arr->next && ok; e++) {
        struct member *x = &m[e - 1];
        x->off = cv->text.len;
        if (elem_kind == WEIR_VALUE_NUMBER) {
            weir_buf_reset(&num);
            jdecode(d, e, &num);
            ok = canon_number(num.data ? num.data : "", num.len, &cv->text);
        } else {
            jdecode(d, e, &cv->text);
        }
        x->len = cv->text.len - x->off;
    }
    /* Pointers only now: the text may have moved while it grew. */
    for (size_t i = 0; i < n && ok; i++)
        m[i].s = cv->text.data ? cv->text.data + m[i].off : "";
    if (ok) {
        qsort(m, n, sizeof(*m), member_cmp);
        for (size_t i = 1; i < n && ok; i++)
            ok = member_cmp(&m[i - 1], &m[i]) != 0;
    }
    weir_buf_deinit(&num);
    free(m);
    return ok;
}

/* Array element token k of d, a string holding a value of elem_kind, a null or a nested array. */
static void put_element(struct conv *cv, struct weir_buf *out, const struct jdoc *d, size_t k,
                        enum weir_value_kind elem_kind, int depth)
{
    const struct jtok *t = &d->t[k];
    if (t->type == J_ARR) {
        append_lit(out, "{\"L\":[");
        for (size_t e = k + 1; e < t->next; e = d->t[e].next) {
            if (e > k + 1)
                weir_buf_append_char(out, ',');
            put_element(cv, out, d, e, elem_kind, depth - 1);
        }
        append_lit(out, "]}");
        return;
    }
    if (t->type != J_STR) {
        put_jvalue(out, d, k); /* null; anything else is written for what it is */
        return;
    }
    switch (elem_kind) {
    case WEIR_VALUE_NUMBER:
        append_lit(out, "{\"N\":");
        break;
    case WEIR_VALUE_BYTES: /* already base64 */
        append_lit(out, "{\"B\":");
        break;
    case WEIR_VALUE_BOOL:
    case WEIR_VALUE_JSON:
        weir_buf_reset(&cv->text);
        jdecode(d, k, &cv->text);
        if (elem_kind == WEIR_VALUE_BOOL)
            put_bool_text(out, cv->text.data ? cv->text.data : "", cv->text.len);
        else
            put_json_text(out, &cv->inner, cv->text.data ? cv->text.data : "", cv->text.len, depth);
        return;
    default:
        append_lit(out, "{\"S\":");
        break;
    }
    put_raw_str(out, d, k);
    weir_buf_append_char(out, '}');
}

/* An array column: L of its elements, or with arrays_as_sets SS, NS or BS where it can be a set.
 * A text that is not a JSON array is the S of its text. */
static void put_list(struct conv *cv, struct weir_buf *out, const struct weir_column *c,
                     const char *text, size_t len)
{
    struct jdoc *d = &cv->doc;
    if (!jread(d, text, len, JSON_MAX_DEPTH) || d->t[0].type != J_ARR) {
        put_typed_str(out, "{\"S\":", text, len);
        return;
    }
    if (cv->arrays_as_sets && is_set(cv, d, c->elem_kind)) {
        weir_buf_append_str(out, c->elem_kind == WEIR_VALUE_STRING   ? "{\"SS\":["
                                 : c->elem_kind == WEIR_VALUE_NUMBER ? "{\"NS\":["
                                                                     : "{\"BS\":[");
        for (size_t e = 1; e < d->t[0].next; e++) {
            if (e > 1)
                weir_buf_append_char(out, ',');
            put_raw_str(out, d, e);
        }
        append_lit(out, "]}");
        return;
    }
    /* The array's own level was counted when it was read. */
    put_element(cv, out, d, 0, c->elem_kind, JSON_MAX_DEPTH);
}

/* Column c's value as a DynamoDB attribute value. c has a value (not UNCHANGED). */
static void put_value(struct conv *cv, struct weir_buf *out, const struct weir_column *c)
{
    const char *v = c->value ? c->value : "";
    size_t len = c->value ? c->value_len : 0;
    switch (c->kind) {
    case WEIR_VALUE_STRING:
        put_typed_str(out, "{\"S\":", v, len);
        break;
    case WEIR_VALUE_NUMBER:
        put_typed_str(out, "{\"N\":", v, len);
        break;
    case WEIR_VALUE_BOOL:
        put_bool_text(out, v, len);
        break;
    case WEIR_VALUE_BYTES:
        append_lit(out, "{\"B\":\"");
        weir_buf_append_base64(out, v, len);
        append_lit(out, "\"}");
        break;
    case WEIR_VALUE_JSON:
        put_json_text(out, &cv->doc, v, len, JSON_MAX_DEPTH);
        break;
    case WEIR_VALUE_LIST:
        put_list(cv, out, c, v, len);
        break;
    case WEIR_VALUE_UNCHANGED:
        assert(!"an unchanged value has nothing to write");
        /* fall through */
    case WEIR_VALUE_NULL:
        append_lit(out, "{\"NULL\":true}");
        break;
    }
}

/* An item's attributes, {"name":value,...}: the columns of t (only its key's when keys_only) in
 * their order. An unchanged value (TOAST not sent) is old's column of that name when old knows
 * it, else left out: never invented. */
static void put_item(struct conv *cv, struct weir_buf *out, const struct weir_tuple *t,
                     const struct weir_tuple *old, bool keys_only)
{
    bool first = true;
    weir_buf_append_char(out, '{');
    for (size_t i = 0; t && i < t->n; i++) {
        const struct weir_column *c = &t->cols[i], *v = c;
        if (keys_only && !c->key)
            continue;
        if (c->kind == WEIR_VALUE_UNCHANGED) {
            v = weir_tuple_find(old, c->name);
            if (!v || v->kind == WEIR_VALUE_UNCHANGED)
                continue;
        }
        if (!first)
            weir_buf_append_char(out, ',');
        first = false;
        weir_format_cstr(out, c->name);
        weir_buf_append_char(out, ':');
        put_value(cv, out, v);
    }
    weir_buf_append_char(out, '}');
}

/* ---- the encoder ---- */

static void ddb_open(struct weir_buf *out, const struct weir_event_ctx *ctx,
                     const struct weir_record *first)
{
    weir_buf_append(out, "{\"Records\":[", 12);
}

static size_t row_bytes(const struct weir_tuple *t)
{
    size_t n = 0;
    for (size_t i = 0; t && i < t->n; i++)
        n += t->cols[i].value_len + strlen(t->cols[i].name) + 16;
    return n;
}

static void ddb_append(struct weir_buf *out, const struct weir_event_ctx *ctx,
                       const struct weir_record *r, int first)
{
    static const char *const event_names[] = {
        [WEIR_ROW_INSERT] = "INSERT",
        [WEIR_ROW_UPDATE] = "MODIFY",
        [WEIR_ROW_DELETE] = "REMOVE",
        [WEIR_ROW_TRUNCATE] = "REMOVE",
    };
    struct conv cv = {.arrays_as_sets = ctx->arrays_as_sets};
    const struct weir_row *row = r->row;
    assert(row); /* the Postgres poller makes every record of this format from a row change */
    enum view view = view_of(ctx->stream_view_type);
    bool with_new = view == VIEW_NEW_IMAGE || view == VIEW_NEW_AND_OLD_IMAGES;
    bool with_old = view == VIEW_OLD_IMAGE || view == VIEW_NEW_AND_OLD_IMAGES;

    weir_buf_init(&cv.text);
    if (!first)
        weir_buf_append_char(out, ',');
    weir_buf_reserve(out, 2 * (row_bytes(row->new_row) + row_bytes(row->old_row)) + 640);
    append_lit(out, "{\"eventID\":");
    append_event_id(out, r->id ? r->id : "");
    append_lit(out, ",\"eventName\":\"");
    weir_buf_append_str(out, event_names[row->op]);
    append_lit(out, "\",\"eventVersion\":\"1.1\",\"eventSource\":\"aws:dynamodb\","
                    "\"awsRegion\":");
    weir_format_cstr(out, ctx->region);
    append_lit(out, ",\"dynamodb\":{\"ApproximateCreationDateTime\":");
    weir_buf_append_i64(out, floor_seconds(r->sent_ms));
    weir_buf_append_char(out, ',');

    /* SizeBytes is weir's approximation of DynamoDB's item size: the bytes of the Keys, NewImage
     * and OldImage members exactly as written here, names and separating commas included. */
    size_t items = out->len;
    append_lit(out, "\"Keys\":");
    if (row->op == WEIR_ROW_INSERT || row->op == WEIR_ROW_UPDATE)
        put_item(&cv, out, row->new_row, row->old_row, true);
    else if (row->op == WEIR_ROW_DELETE)
        put_item(&cv, out, row->old_row ? row->old_row : row->new_row, NULL, true);
    else
        append_lit(out, "{}"); /* a TRUNCATE's marker names no item */
    if (with_new && row->new_row && (row->op == WEIR_ROW_INSERT || row->op == WEIR_ROW_UPDATE)) {
        append_lit(out, ",\"NewImage\":");
        put_item(&cv, out, row->new_row, row->old_row, false);
    }
    if (with_old && row->old_row && (row->op == WEIR_ROW_UPDATE || row->op == WEIR_ROW_DELETE)) {
        append_lit(out, ",\"OldImage\":");
        put_item(&cv, out, row->old_row, NULL, false);
    }
    size_t size_bytes = out->len - items;

    append_lit(out, ",\"SequenceNumber\":");
    weir_format_cstr(out, r->id);
    append_lit(out, ",\"SizeBytes\":");
    weir_format_u64(out, size_bytes);
    append_lit(out, ",\"StreamViewType\":\"");
    weir_buf_append_str(out, view_names[view]);
    append_lit(out, "\"},\"eventSourceARN\":");
    append_stream_arn(out, &cv.text, ctx, r);
    if (row->op == WEIR_ROW_TRUNCATE)
        append_lit(out,
                   ",\"userIdentity\":{\"type\":\"Service\",\"principalId\":\"" TRUNCATE_PRINCIPAL
                   "\"}");
    weir_buf_append_char(out, '}');

    jdoc_deinit(&cv.doc);
    jdoc_deinit(&cv.inner);
    weir_buf_deinit(&cv.text);
}

static void ddb_close(struct weir_buf *out, const struct weir_event_ctx *ctx)
{
    weir_buf_append(out, "]}", 2);
}

static const struct weir_encoder ddb_encoder = {
    .name = "dynamodb",
    .open = ddb_open,
    .append = ddb_append,
    .close = ddb_close,
    .close_len = 2,
};

/* ---- what filter patterns see ---- */

/* Lambda filters DynamoDB records on their metadata; the item is inside `dynamodb`
 * ({"dynamodb":{"NewImage":{"status":{"S":["PAID"]}}}}). There is no payload key: every key is
 * read from the record element written above. */
static const struct weir_filter_key ddb_keys[] = {
    {"eventID", WEIR_FILTER_KEY_STRING},        {"eventName", WEIR_FILTER_KEY_STRING},
    {"eventVersion", WEIR_FILTER_KEY_STRING},   {"eventSource", WEIR_FILTER_KEY_STRING},
    {"awsRegion", WEIR_FILTER_KEY_STRING},      {"dynamodb", WEIR_FILTER_KEY_OBJECT},
    {"eventSourceARN", WEIR_FILTER_KEY_STRING}, {"userIdentity", WEIR_FILTER_KEY_OBJECT},
};

static const struct weir_filter_shape ddb_shape = {
    .name = "DynamoDB",
    .keys = ddb_keys,
    .n_keys = sizeof(ddb_keys) / sizeof(*ddb_keys),
    .plain_data = false,
};

/* ---- the failure record's DDBStreamBatchInfo ---- */

/* The Kinesis batch info's seven members (reference 1.6); the arrival times are the commits'. */
static void ddb_batch_info(struct weir_buf *out, const struct weir_event_ctx *ctx,
                           struct weir_record *const *records, size_t n)
{
    assert(n > 0);
    const struct weir_record *first = records[0], *last = records[n - 1];
    struct weir_buf tmp;
    char shard[32];
    weir_buf_init(&tmp);
    weir_format_shard_id(first->partition, shard);
    append_lit(out, "\"DDBStreamBatchInfo\":{\"shardId\":\"");
    weir_buf_append_str(out, shard);
    append_lit(out, "\",\"startSequenceNumber\":");
    weir_format_cstr(out, first->id);
    append_lit(out, ",\"endSequenceNumber\":");
    weir_format_cstr(out, last->id);
    append_lit(out, ",\"approximateArrivalOfFirstRecord\":");
    weir_format_time_str(out, first->sent_ms);
    append_lit(out, ",\"approximateArrivalOfLastRecord\":");
    weir_format_time_str(out, last->sent_ms);
    append_lit(out, ",\"batchSize\":");
    weir_format_u64(out, n);
    append_lit(out, ",\"streamArn\":");
    append_stream_arn(out, &tmp, ctx, first);
    weir_buf_append_char(out, '}');
    weir_buf_deinit(&tmp);
}

/* A function names a failed record by its dynamodb.SequenceNumber, a string equal to r->id: the
 * default lookup, so no find_item. */
const struct weir_event_format weir_format_dynamodb = {
    .name = "DynamoDB",
    .encoder = &ddb_encoder,
    .filter_shape = &ddb_shape,
    .batch_info = ddb_batch_info,
};
