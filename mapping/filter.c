/* The filter: a strict JSON reader for patterns (offsets kept, so every refusal points into the
 * pattern), the compiler from patterns to a match tree, a validating reader that turns an event's
 * JSON into a reusable token tape, and the matcher that walks the tree over the tape. It owns the
 * EventBridge grammar as Lambda applies it (docs/filtering.md). It must never do I/O, log, read
 * the clock, or allocate per record once its scratch space has grown to the records' size. */
#define _GNU_SOURCE /* memmem */
#include "mapping/filter.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/mem.h"
#include "core/text.h"

/* Pattern texts are at most 4096 characters; nesting deeper than this is not a filter. */
#define MAX_DEPTH 64
/* EventBridge's numeric matching works on numbers in this range, to 6 decimal places; a bound
 * outside it is refused as AWS refuses it, and an event number outside it matches no range. */
#define NUMERIC_LIMIT    5e9
#define NUMERIC_DECIMALS 6

/* ==== the pattern reader ===================================================================== */

enum ptype { P_OBJ, P_ARR, P_STR, P_NUM, P_TRUE, P_FALSE, P_NULL };

struct pnode;

struct pmember {
    char *key; /* objects only; decoded, NUL-terminated */
    size_t key_len;
    size_t key_off;
    struct pnode *v;
};

struct pnode {
    enum ptype t;
    size_t off; /* byte offset of the value's first character */
    char *s;    /* strings: decoded UTF-8; numbers: their text. NUL-terminated */
    size_t len;
    struct pmember *m; /* objects: members (a duplicate key replaced the earlier one) */
    size_t n;          /* arrays: elements, key NULL */
};

struct reader {
    const char *s;
    size_t len;
    size_t pos;
    int depth;
    struct weir_filter_error *err;
    bool failed;
};

static void set_err(struct weir_filter_error *err, size_t off, const char *path, const char *fmt,
                    va_list ap)
{
    if (!err)
        return;
    err->offset = off;
    snprintf(err->path, sizeof(err->path), "%s", path);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
}

static void rd_fail(struct reader *rd, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void rd_fail(struct reader *rd, size_t off, const char *fmt, ...)
{
    if (rd->failed)
        return;
    rd->failed = true;
    va_list ap;
    va_start(ap, fmt);
    set_err(rd->err, off, "", fmt, ap);
    va_end(ap);
}

static void pnode_free(struct pnode *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++) {
        free(p->m[i].key);
        pnode_free(p->m[i].v);
    }
    free(p->m);
    free(p->s);
    free(p);
}

static void skip_ws(struct reader *rd)
{
    while (rd->pos < rd->len) {
        char c = rd->s[rd->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        rd->pos++;
    }
}

/* What is at pos, for "expected X, got Y". */
static const char *seen(const struct reader *rd, char *out, size_t out_len)
{
    if (rd->pos >= rd->len)
        return "the end of the pattern";
    unsigned char c = (unsigned char)rd->s[rd->pos];
    if (c >= 0x20 && c < 0x7f)
        snprintf(out, out_len, "'%c'", c);
    else
        snprintf(out, out_len, "byte 0x%02x", c);
    return out;
}

/* Reads a string at pos (which holds '"') into a fresh buffer; NULL after failing. */
static char *read_string(struct reader *rd, size_t *out_len)
{
    struct weir_buf b;
    size_t start = rd->pos;
    weir_buf_init(&b);
    weir_buf_reserve(&b, 16);
    rd->pos++;
    for (;;) {
        if (rd->pos >= rd->len) {
            rd_fail(rd, start, "not valid JSON: this string is never closed");
            goto fail;
        }
        unsigned char c = (unsigned char)rd->s[rd->pos];
        if (c == '"') {
            rd->pos++;
            break;
        }
        if (c < 0x20) {
            rd_fail(rd, rd->pos,
                    "not valid JSON: control character 0x%02x inside a string (write it as "
                    "\\u%04x)",
                    c, c);
            goto fail;
        }
        if (c != '\\') {
            uint32_t cp;
            size_t n =
                weir_utf8_len((const unsigned char *)rd->s + rd->pos, rd->len - rd->pos, &cp);
            if (!n) {
                rd_fail(rd, rd->pos, "not valid UTF-8 (byte 0x%02x)", c);
                goto fail;
            }
            weir_buf_append(&b, rd->s + rd->pos, n);
            rd->pos += n;
            continue;
        }
        size_t esc = rd->pos;
        if (rd->pos + 1 >= rd->len) {
            rd_fail(rd, esc, "not valid JSON: a backslash ends the pattern");
            goto fail;
        }
        char e = rd->s[rd->pos + 1];
        rd->pos += 2;
        switch (e) {
        case '"':
        case '\\':
        case '/':
            weir_buf_append_char(&b, e);
            break;
        case 'b':
            weir_buf_append_char(&b, '\b');
            break;
        case 'f':
            weir_buf_append_char(&b, '\f');
            break;
        case 'n':
            weir_buf_append_char(&b, '\n');
            break;
        case 'r':
            weir_buf_append_char(&b, '\r');
            break;
        case 't':
            weir_buf_append_char(&b, '\t');
            break;
        case 'u': {
            int v = weir_hex4(rd->s + rd->pos, rd->len - rd->pos);
            if (v < 0) {
                rd_fail(rd, esc, "not valid JSON: \\u needs four hex digits");
                goto fail;
            }
            rd->pos += 4;
            uint32_t cp = (uint32_t)v;
            if (cp >= 0xdc00 && cp <= 0xdfff) {
                rd_fail(rd, esc, "not valid JSON: \\u%04x is a low surrogate without a high one",
                        v);
                goto fail;
            }
            if (cp >= 0xd800 && cp <= 0xdbff) {
                int lo = -1;
                if (rd->pos + 1 < rd->len && rd->s[rd->pos] == '\\' && rd->s[rd->pos + 1] == 'u')
                    lo = weir_hex4(rd->s + rd->pos + 2, rd->len - rd->pos - 2);
                if (lo < 0xdc00 || lo > 0xdfff) {
                    rd_fail(rd, esc,
                            "not valid JSON: \\u%04x is a high surrogate without a low one", v);
                    goto fail;
                }
                rd->pos += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + ((uint32_t)lo - 0xdc00);
            }
            weir_utf8_put(&b, cp);
            break;
        }
        default:
            rd_fail(rd, esc, "not valid JSON: unknown escape \\%c", e);
            goto fail;
        }
    }
    weir_buf_append(&b, "", 0); /* NUL-terminates an empty string too */
    return weir_buf_take(&b, out_len);
fail:
    weir_buf_deinit(&b);
    return NULL;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* JSON's number grammar, exactly: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool read_number(struct reader *rd, struct pnode *p)
{
    size_t start = rd->pos, i = rd->pos;
    const char *s = rd->s;
    if (i < rd->len && s[i] == '-')
        i++;
    if (i >= rd->len || !is_digit(s[i]))
        goto bad;
    if (s[i] == '0') {
        i++;
    } else {
        while (i < rd->len && is_digit(s[i]))
            i++;
    }
    if (i < rd->len && s[i] == '.') {
        i++;
        if (i >= rd->len || !is_digit(s[i]))
            goto bad;
        while (i < rd->len && is_digit(s[i]))
            i++;
    }
    if (i < rd->len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < rd->len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= rd->len || !is_digit(s[i]))
            goto bad;
        while (i < rd->len && is_digit(s[i]))
            i++;
    }
    p->s = weir_strndup(s + start, i - start);
    p->len = i - start;
    rd->pos = i;
    return true;
bad:
    rd_fail(rd, start, "not valid JSON: malformed number (a digit is missing near offset %zu)", i);
    return false;
}

static struct pnode *read_value(struct reader *rd);

static void add_member(struct pnode *obj, char *key, size_t key_len, size_t key_off,
                       struct pnode *v)
{
    /* Lambda's documented rule for duplicate keys: the last one wins. */
    for (size_t i = 0; key && i < obj->n; i++) {
        if (obj->m[i].key_len == key_len && !memcmp(obj->m[i].key, key, key_len)) {
            free(obj->m[i].key);
            pnode_free(obj->m[i].v);
            obj->m[i] = (struct pmember){key, key_len, key_off, v};
            return;
        }
    }
    obj->m = weir_realloc(obj->m, (obj->n + 1) * sizeof(*obj->m));
    obj->m[obj->n++] = (struct pmember){key, key_len, key_off, v};
}

static bool read_container(struct reader *rd, struct pnode *p)
{
    char got[32];
    bool obj = p->t == P_OBJ;
    char close = obj ? '}' : ']';
    if (++rd->depth > MAX_DEPTH) {
        rd_fail(rd, rd->pos, "nested deeper than %d levels", MAX_DEPTH);
        return false;
    }
    rd->pos++;
    skip_ws(rd);
    if (rd->pos < rd->len && rd->s[rd->pos] == close) {
        rd->pos++;
        rd->depth--;
        return true;
    }
    for (;;) {
        char *key = NULL;
        size_t key_len = 0, key_off = 0;
        skip_ws(rd);
        if (obj) {
            if (rd->pos >= rd->len || rd->s[rd->pos] != '"') {
                rd_fail(rd, rd->pos, "not valid JSON: expected a key in double quotes, got %s",
                        seen(rd, got, sizeof(got)));
                return false;
            }
            key_off = rd->pos;
            key = read_string(rd, &key_len);
            if (!key)
                return false;
            skip_ws(rd);
            if (rd->pos >= rd->len || rd->s[rd->pos] != ':') {
                rd_fail(rd, rd->pos, "not valid JSON: expected ':' after the key, got %s",
                        seen(rd, got, sizeof(got)));
                free(key);
                return false;
            }
            rd->pos++;
        }
        struct pnode *v = read_value(rd);
        if (!v) {
            free(key);
            return false;
        }
        add_member(p, key, key_len, key_off, v);
        skip_ws(rd);
        if (rd->pos < rd->len && rd->s[rd->pos] == ',') {
            rd->pos++;
            continue;
        }
        if (rd->pos < rd->len && rd->s[rd->pos] == close) {
            rd->pos++;
            rd->depth--;
            return true;
        }
        rd_fail(rd, rd->pos, "not valid JSON: expected ',' or '%c', got %s", close,
                seen(rd, got, sizeof(got)));
        return false;
    }
}

static struct pnode *read_value(struct reader *rd)
{
    char got[32];
    skip_ws(rd);
    struct pnode *p = weir_calloc(1, sizeof(*p));
    p->off = rd->pos;
    if (rd->pos >= rd->len) {
        rd_fail(rd, rd->pos, "not valid JSON: the pattern ends where a value was expected");
        goto fail;
    }
    char c = rd->s[rd->pos];
    static const struct {
        const char *word;
        enum ptype t;
    } words[] = {{"true", P_TRUE}, {"false", P_FALSE}, {"null", P_NULL}};
    switch (c) {
    case '{':
    case '[':
        p->t = c == '{' ? P_OBJ : P_ARR;
        if (!read_container(rd, p))
            goto fail;
        return p;
    case '"':
        p->t = P_STR;
        p->s = read_string(rd, &p->len);
        if (!p->s)
            goto fail;
        return p;
    default:
        break;
    }
    if (c == '-' || is_digit(c)) {
        p->t = P_NUM;
        if (!read_number(rd, p))
            goto fail;
        return p;
    }
    for (size_t i = 0; i < sizeof(words) / sizeof(*words); i++) {
        size_t n = strlen(words[i].word);
        if (rd->len - rd->pos >= n && !memcmp(rd->s + rd->pos, words[i].word, n)) {
            p->t = words[i].t;
            rd->pos += n;
            return p;
        }
    }
    rd_fail(rd, rd->pos, "not valid JSON: unexpected %s", seen(rd, got, sizeof(got)));
fail:
    pnode_free(p);
    return NULL;
}

static struct pnode *read_pattern(const char *s, size_t len, struct weir_filter_error *err)
{
    struct reader rd = {.s = s, .len = len, .err = err};
    struct pnode *p = read_value(&rd);
    if (!p)
        return NULL;
    skip_ws(&rd);
    if (rd.pos < len) {
        rd_fail(&rd, rd.pos, "not valid JSON: text after the end of the pattern");
        pnode_free(p);
        return NULL;
    }
    return p;
}

/* ==== the compiled tree ====================================================================== */

enum mop {
    M_EQ_STR,    /* str[]: equal to one of them */
    M_EQ_NUM,    /* num[]: numerically equal to one of them */
    M_EQ_LIT,    /* lit: true, false or null */
    M_PREFIX,    /* str[] */
    M_SUFFIX,    /* str[] */
    M_EQ_CI,     /* ci[] */
    M_PREFIX_CI, /* ci[] */
    M_SUFFIX_CI, /* ci[] */
    M_WILDCARD,  /* wild[] */
    M_NUMERIC,   /* range */
    M_CIDR,      /* cidr */
};

struct cstr {
    char *s;
    size_t len;
};

/* A case-insensitive operand, as folded code points: compared without decoding it again. */
struct ci {
    uint32_t *cp;
    size_t n;
};

struct num {
    double d;
    long long i;
    bool is_int; /* written without fraction or exponent and fits in a long long */
};

/* A wildcard split at its unescaped '*': seg[0] * seg[1] * ... * seg[n-1]. */
struct wild {
    struct cstr *seg;
    size_t n;
};

struct range {
    bool has_lo, lo_incl, has_hi, hi_incl;
    double lo, hi;
};

struct cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    int bits;
};

struct matcher {
    enum mop op;
    bool negate; /* anything-but: a value matches when the operator does not */
    int lit;     /* M_EQ_LIT: T_TRUE, T_FALSE or T_NULL */
    struct cstr *str;
    struct ci *ci;
    struct num *num;
    struct wild *wild;
    size_t n; /* entries in whichever list the operator uses */
    struct range range;
    struct cidr cidr;
};

struct cleaf {
    struct matcher *m;
    size_t n;
    bool exists_true, exists_false;
};

struct cnode;

struct cfield {
    char *key;
    size_t key_len;
    int kind;          /* top-level fields of a shaped record: enum weir_filter_key_kind; else -1 */
    struct cnode *obj; /* exactly one of obj and leaf */
    struct cleaf *leaf;
};

struct cnode {
    struct cfield *f;
    size_t n;
    struct cnode **alt; /* $or: at least two alternatives, each ANDed with f */
    size_t n_alt;
    bool top; /* its keys are the record's top-level keys */
};

/* The event reader's tape (below): a JSON text read once into a flat list of tokens. */
enum ttype { T_OBJ, T_ARR, T_STR, T_NUM, T_TRUE, T_FALSE, T_NULL };

struct tok {
    uint32_t start; /* strings: first byte after the quote; others: first byte */
    uint32_t len;   /* strings: bytes between the quotes; numbers: the text's length */
    uint32_t next;  /* the index of the token after this value and everything inside it */
    uint8_t type;
    uint8_t esc; /* strings: hold a backslash escape */
};

struct weir_filter_doc {
    const char *s; /* borrowed */
    size_t len;
    struct tok *t;
    size_t n, cap;
    int depth;
};

struct weir_filter {
    const struct weir_filter_shape *shape;
    struct cnode **pat;
    size_t n;
    bool reads_data, reads_meta;
    /* Scratch kept from record to record, so matching allocates nothing once warm. */
    struct weir_filter_doc data_doc; /* the payload's tape */
    struct weir_filter_doc meta_doc; /* the record element's tape */
    struct weir_buf element;         /* the record element, when metadata is named */
    struct weir_buf strbuf;          /* a string value with escapes, decoded */
    struct weir_buf keybuf;          /* a key with escapes, decoded */
};

static void matcher_deinit(struct matcher *m)
{
    for (size_t i = 0; m->str && i < m->n; i++)
        free(m->str[i].s);
    for (size_t i = 0; m->ci && i < m->n; i++)
        free(m->ci[i].cp);
    for (size_t i = 0; m->wild && i < m->n; i++) {
        for (size_t j = 0; j < m->wild[i].n; j++)
            free(m->wild[i].seg[j].s);
        free(m->wild[i].seg);
    }
    free(m->str);
    free(m->ci);
    free(m->num);
    free(m->wild);
}

static void leaf_free(struct cleaf *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        matcher_deinit(&l->m[i]);
    free(l->m);
    free(l);
}

static void cnode_free(struct cnode *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->f[i].key);
        cnode_free(c->f[i].obj);
        leaf_free(c->f[i].leaf);
    }
    free(c->f);
    for (size_t i = 0; i < c->n_alt; i++)
        cnode_free(c->alt[i]);
    free(c->alt);
    free(c);
}

/* ==== case folding =========================================================================== */

/* Simple one-to-one lower-case folding for the scripts people write in identifiers and names:
 * ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic and fullwidth Latin. docs/filtering.md says
 * where this stops. */
static uint32_t fold(uint32_t c)
{
    if (c < 0x80)
        return c >= 'A' && c <= 'Z' ? c + 32 : c;
    if (c >= 0xc0 && c <= 0xde && c != 0xd7)
        return c + 32;
    if (c == 0x178)
        return 0xff;
    if (c >= 0x100 && c <= 0x17f) {
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e))
            return (c & 1) ? c + 1 : c;
        if (c == 0x130 || c == 0x131 || c == 0x138 || c == 0x149 || c == 0x17f)
            return c;
        return (c & 1) ? c : c + 1;
    }
    if (c >= 0x391 && c <= 0x3a9 && c != 0x3a2)
        return c + 32;
    if (c >= 0x410 && c <= 0x42f)
        return c + 32;
    if (c >= 0x400 && c <= 0x40f)
        return c + 80;
    if (c >= 0xff21 && c <= 0xff3a)
        return c + 32;
    return c;
}

/* Next code point of s (len bytes) at *i; a byte that is not valid UTF-8 reads as a value no
 * character folds to, so it only ever equals itself. */
static uint32_t next_cp(const char *s, size_t len, size_t *i)
{
    uint32_t cp;
    size_t n = weir_utf8_len((const unsigned char *)s + *i, len - *i, &cp);
    if (!n) {
        cp = 0x110000u + (unsigned char)s[*i];
        n = 1;
    }
    *i += n;
    return cp;
}

static size_t count_cp(const char *s, size_t len)
{
    size_t i = 0, n = 0;
    while (i < len) {
        next_cp(s, len, &i);
        n++;
    }
    return n;
}

static void ci_make(struct ci *ci, const char *s, size_t len)
{
    size_t i = 0;
    ci->cp = weir_malloc((len ? len : 1) * sizeof(*ci->cp));
    ci->n = 0;
    while (i < len)
        ci->cp[ci->n++] = fold(next_cp(s, len, &i));
}

/* Compares folded code points of s from byte i with ci; *i advances. */
static bool ci_run(const struct ci *ci, const char *s, size_t len, size_t *i)
{
    for (size_t k = 0; k < ci->n; k++) {
        if (*i >= len || fold(next_cp(s, len, i)) != ci->cp[k])
            return false;
    }
    return true;
}

static bool ci_equal(const struct ci *ci, const char *s, size_t len)
{
    size_t i = 0;
    return ci_run(ci, s, len, &i) && i == len;
}

static bool ci_prefix(const struct ci *ci, const char *s, size_t len)
{
    size_t i = 0;
    return ci_run(ci, s, len, &i);
}

static bool ci_suffix(const struct ci *ci, const char *s, size_t len)
{
    size_t total = count_cp(s, len), i = 0;
    if (total < ci->n)
        return false;
    for (size_t k = 0; k < total - ci->n; k++)
        next_cp(s, len, &i);
    return ci_run(ci, s, len, &i);
}

/* ==== the compiler =========================================================================== */

struct comp {
    const struct weir_filter_shape *shape;
    struct weir_filter_error *err;
    char path[160];
    size_t plen;
    bool failed;
    bool reads_data, reads_meta;
};

static void fail_at(struct comp *c, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail_at(struct comp *c, size_t off, const char *fmt, ...)
{
    if (c->failed)
        return;
    c->failed = true;
    va_list ap;
    va_start(ap, fmt);
    set_err(c->err, off, c->path, fmt, ap);
    va_end(ap);
}

/* Appends ".key" (or "key" at the top) to the path; returns the length to restore. */
static size_t path_push(struct comp *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static size_t path_push(struct comp *c, const char *fmt, ...)
{
    size_t was = c->plen;
    char part[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(part, sizeof(part), fmt, ap);
    va_end(ap);
    int n =
        snprintf(c->path + c->plen, sizeof(c->path) - c->plen, "%s%s", c->plen ? "." : "", part);
    if (n > 0)
        c->plen = c->plen + (size_t)n < sizeof(c->path) ? c->plen + (size_t)n : sizeof(c->path) - 1;
    return was;
}

static void path_pop(struct comp *c, size_t was)
{
    c->plen = was;
    c->path[was] = '\0';
}

static const char *type_name(const struct pnode *p)
{
    switch (p->t) {
    case P_OBJ:
        return "an object";
    case P_ARR:
        return "an array";
    case P_STR:
        return "a string";
    case P_NUM:
        return "a number";
    case P_TRUE:
    case P_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

static const char *const operators[] = {"prefix",       "suffix",  "equals-ignore-case",
                                        "anything-but", "numeric", "exists",
                                        "cidr",         "wildcard"};

static bool is_operator(const char *key)
{
    for (size_t i = 0; i < sizeof(operators) / sizeof(*operators); i++)
        if (!strcmp(key, operators[i]))
            return true;
    return false;
}

static struct matcher *leaf_add(struct cleaf *l, enum mop op, bool negate)
{
    l->m = weir_realloc(l->m, (l->n + 1) * sizeof(*l->m));
    struct matcher *m = &l->m[l->n++];
    memset(m, 0, sizeof(*m));
    m->op = op;
    m->negate = negate;
    return m;
}

static void num_make(struct num *n, const char *text)
{
    n->d = strtod(text, NULL);
    n->is_int = !strpbrk(text, ".eE");
    if (n->is_int) {
        errno = 0;
        n->i = strtoll(text, NULL, 10);
        if (errno == ERANGE)
            n->is_int = false;
    }
}

/* Decimal places the number's text carries once trailing zeros go: "1.50" 1, "15e-3" 3. */
static long decimals(const char *text)
{
    const char *dot = strchr(text, '.'), *e = strpbrk(text, "eE");
    long frac = 0;
    if (dot) {
        const char *end = e ? e : text + strlen(text);
        while (end > dot + 1 && end[-1] == '0')
            end--;
        frac = (long)(end - dot - 1);
    }
    long exp = e ? strtol(e + 1, NULL, 10) : 0;
    if (exp > 100000 || exp < -100000)
        return exp > 0 ? 0 : 100000;
    return frac - exp > 0 ? frac - exp : 0;
}

/* A number EventBridge can use for numeric matching (and so for anything-but on numbers). */
static bool numeric_operand(struct comp *c, const struct pnode *p, const char *what, double *out)
{
    if (p->t != P_NUM) {
        if (p->t == P_STR)
            fail_at(c, p->off, "%s must be a number, got a string (write %s without quotes)", what,
                    p->s);
        else
            fail_at(c, p->off, "%s must be a number, got %s", what, type_name(p));
        return false;
    }
    double d = strtod(p->s, NULL);
    if (!(fabs(d) <= NUMERIC_LIMIT)) {
        fail_at(c, p->off, "%s %s is outside -5e9..5e9, the range of AWS's numeric matching", what,
                p->s);
        return false;
    }
    if (decimals(p->s) > NUMERIC_DECIMALS) {
        fail_at(c, p->off,
                "%s %s has more than %d decimal places; AWS's numeric matching compares to %d",
                what, p->s, NUMERIC_DECIMALS, NUMERIC_DECIMALS);
        return false;
    }
    *out = d;
    return true;
}

static bool wild_make(struct comp *c, const struct pnode *p, struct wild *w)
{
    struct weir_buf seg;
    weir_buf_init(&seg);
    weir_buf_reserve(&seg, p->len + 1);
    w->seg = weir_calloc(p->len + 2, sizeof(*w->seg));
    w->n = 0;
    bool star_before = false;
    for (size_t i = 0; i < p->len; i++) {
        char ch = p->s[i];
        if (ch == '*') {
            if (star_before) {
                fail_at(c, p->off,
                        "wildcard \"%s\": consecutive '*' are not allowed (one matches "
                        "any run already)",
                        p->s);
                goto fail;
            }
            w->seg[w->n].len = seg.len;
            w->seg[w->n++].s = weir_strndup(seg.data ? seg.data : "", seg.len);
            weir_buf_reset(&seg);
            star_before = true;
            continue;
        }
        star_before = false;
        if (ch == '\\') {
            if (i + 1 >= p->len || (p->s[i + 1] != '*' && p->s[i + 1] != '\\')) {
                fail_at(c, p->off,
                        "wildcard \"%s\": a backslash escapes only '*' or a backslash "
                        "(write \\\\* in JSON for a literal '*')",
                        p->s);
                goto fail;
            }
            ch = p->s[++i];
        }
        weir_buf_append_char(&seg, ch);
    }
    w->seg[w->n].len = seg.len;
    w->seg[w->n++].s = weir_strndup(seg.data ? seg.data : "", seg.len);
    weir_buf_deinit(&seg);
    return true;
fail:
    weir_buf_deinit(&seg);
    for (size_t i = 0; i < w->n; i++)
        free(w->seg[i].s);
    free(w->seg);
    w->seg = NULL;
    w->n = 0;
    return false;
}

static bool cidr_make(struct comp *c, const struct pnode *p, struct cidr *out)
{
    char addr[64];
    const char *slash = strrchr(p->s, '/');
    if (!slash || (size_t)(slash - p->s) >= sizeof(addr) || !slash[1])
        goto bad;
    memcpy(addr, p->s, (size_t)(slash - p->s));
    addr[slash - p->s] = '\0';
    long bits = 0;
    for (const char *q = slash + 1; *q; q++) {
        if (!is_digit(*q) || bits > 1000)
            goto bad;
        bits = bits * 10 + (*q - '0');
    }
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, addr, out->addr) == 1) {
        out->family = AF_INET;
        if (bits > 32)
            goto bad;
    } else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
        out->family = AF_INET6;
        if (bits > 128)
            goto bad;
    } else {
        goto bad;
    }
    out->bits = (int)bits;
    /* Host bits written in the range (10.0.0.7/24) do not narrow it. */
    for (int b = out->bits; b < 128; b++)
        out->addr[b / 8] &= (unsigned char)~(0x80u >> (b % 8));
    return true;
bad:
    fail_at(c, p->off,
            "cidr \"%s\" is not an IP range: write ADDRESS/BITS, e.g. \"10.0.0.0/24\" or "
            "\"2001:db8::/32\"",
            p->s);
    return false;
}

/* Strings of an operator that takes one string or (inside anything-but) a list of them. */
static bool strings_of(struct comp *c, const struct pnode *v, const char *op, bool list_ok,
                       bool empty_ok, const struct pnode **one, const struct pnode ***items,
                       size_t *n)
{
    if (v->t == P_STR) {
        one[0] = v;
        *items = one;
        *n = 1;
    } else if (list_ok && v->t == P_ARR) {
        if (!v->n) {
            fail_at(c, v->off, "%s: the list is empty", op);
            return false;
        }
        *items = weir_malloc(v->n * sizeof(**items));
        for (size_t i = 0; i < v->n; i++) {
            if (v->m[i].v->t != P_STR) {
                fail_at(c, v->m[i].v->off, "%s takes strings, got %s", op, type_name(v->m[i].v));
                free(*items);
                return false;
            }
            (*items)[i] = v->m[i].v;
        }
        *n = v->n;
    } else {
        fail_at(c, v->off, "%s takes a string%s, got %s", op,
                list_ok ? " or a list of strings" : "", type_name(v));
        return false;
    }
    for (size_t i = 0; !empty_ok && i < *n; i++) {
        if (!(*items)[i]->len) {
            fail_at(c, (*items)[i]->off, "%s: an empty string is not allowed here", op);
            if (*items != one)
                free(*items);
            return false;
        }
    }
    return true;
}

/* Fills m with the string operator op (M_PREFIX, M_EQ_CI, ...) over items. */
static bool string_op(struct comp *c, struct matcher *m, const struct pnode **items, size_t n)
{
    m->n = n;
    if (m->op == M_EQ_CI || m->op == M_PREFIX_CI || m->op == M_SUFFIX_CI) {
        m->ci = weir_calloc(n, sizeof(*m->ci));
        for (size_t i = 0; i < n; i++)
            ci_make(&m->ci[i], items[i]->s, items[i]->len);
    } else if (m->op == M_WILDCARD) {
        m->wild = weir_calloc(n, sizeof(*m->wild));
        for (size_t i = 0; i < n; i++)
            if (!wild_make(c, items[i], &m->wild[i]))
                return false;
    } else {
        m->str = weir_calloc(n, sizeof(*m->str));
        for (size_t i = 0; i < n; i++) {
            m->str[i].s = weir_strndup(items[i]->s, items[i]->len);
            m->str[i].len = items[i]->len;
        }
    }
    return true;
}

/* {"prefix": ...} and the other operators that test a string. ci_form: the operand may be
 * {"equals-ignore-case": "..."} (prefix and suffix), turning op into its _CI form. */
static bool compile_string_op(struct comp *c, struct cleaf *l, const char *name,
                              const struct pnode *v, enum mop op, enum mop ci_op, bool negate)
{
    const struct pnode **items = NULL, *one[1];
    size_t n = 0;
    bool list_ok = negate;
    bool empty_ok = !negate || (op != M_PREFIX && op != M_SUFFIX);
    if (v->t == P_OBJ && ci_op != op) {
        if (v->n != 1 || strcmp(v->m[0].key, "equals-ignore-case")) {
            fail_at(c, v->off, "%s takes a string or {\"equals-ignore-case\": \"...\"}", name);
            return false;
        }
        v = v->m[0].v;
        op = ci_op;
        list_ok = false;
    }
    if (!strings_of(c, v, name, list_ok, empty_ok, one, &items, &n))
        return false;
    struct matcher *m = leaf_add(l, op, negate);
    bool ok = string_op(c, m, items, n);
    if (v->t == P_ARR)
        free(items);
    return ok;
}

static bool compile_anything_but(struct comp *c, struct cleaf *l, const struct pnode *v)
{
    if (v->t == P_OBJ) {
        static const struct {
            const char *key;
            enum mop op;
        } inner[] = {{"prefix", M_PREFIX},
                     {"suffix", M_SUFFIX},
                     {"equals-ignore-case", M_EQ_CI},
                     {"wildcard", M_WILDCARD}};
        if (v->n != 1) {
            fail_at(c, v->off,
                    "anything-but takes one of prefix, suffix, equals-ignore-case or wildcard "
                    "inside an object, got %zu keys",
                    v->n);
            return false;
        }
        for (size_t i = 0; i < sizeof(inner) / sizeof(*inner); i++) {
            if (strcmp(v->m[0].key, inner[i].key))
                continue;
            char name[64];
            snprintf(name, sizeof(name), "anything-but %s", inner[i].key);
            return compile_string_op(c, l, name, v->m[0].v, inner[i].op, inner[i].op, true);
        }
        fail_at(c, v->m[0].key_off,
                "anything-but does not take \"%s\"; it takes a value, a list of values, or one of "
                "prefix, suffix, equals-ignore-case, wildcard",
                v->m[0].key);
        return false;
    }
    const struct pnode *const *items = NULL;
    const struct pnode *single[1] = {v};
    size_t n;
    if (v->t == P_ARR) {
        if (!v->n) {
            fail_at(c, v->off, "anything-but: the list is empty");
            return false;
        }
        n = v->n;
    } else {
        items = single;
        n = 1;
    }
    enum ptype t = v->t == P_ARR ? v->m[0].v->t : v->t;
    for (size_t i = 0; i < n; i++) {
        const struct pnode *e = items ? items[i] : v->m[i].v;
        if (e->t != P_STR && e->t != P_NUM) {
            fail_at(c, e->off,
                    "anything-but takes strings or numbers (a value or a list), got %s; use "
                    "{\"exists\": false} to match a missing field",
                    type_name(e));
            return false;
        }
        if (e->t != t) {
            fail_at(c, e->off, "anything-but: a list holds only strings or only numbers, not both");
            return false;
        }
    }
    struct matcher *m = leaf_add(l, t == P_STR ? M_EQ_STR : M_EQ_NUM, true);
    if (t == P_STR)
        m->str = weir_calloc(n, sizeof(*m->str));
    else
        m->num = weir_calloc(n, sizeof(*m->num));
    for (size_t i = 0; i < n; i++) {
        const struct pnode *e = items ? items[i] : v->m[i].v;
        m->n++;
        if (t == P_STR) {
            m->str[i].s = weir_strndup(e->s, e->len);
            m->str[i].len = e->len;
        } else {
            double unused;
            if (!numeric_operand(c, e, "anything-but number", &unused))
                return false;
            num_make(&m->num[i], e->s);
        }
    }
    return true;
}

static bool compile_numeric(struct comp *c, struct cleaf *l, const struct pnode *v)
{
    if (v->t != P_ARR || v->n == 0) {
        fail_at(c, v->off,
                "numeric takes a list like [\">\", 0, \"<=\", 5] or [\"=\", 100], got %s",
                v->t == P_ARR ? "an empty list" : type_name(v));
        return false;
    }
    struct range r = {0};
    size_t i = 0;
    while (i < v->n) {
        const struct pnode *op = v->m[i].v;
        if (op->t != P_STR) {
            fail_at(c, op->off,
                    "numeric: expected an operator (=, <, <=, >, >=) at position %zu, got %s", i,
                    type_name(op));
            return false;
        }
        const char *o = op->s;
        bool lower = !strcmp(o, ">") || !strcmp(o, ">=");
        bool upper = !strcmp(o, "<") || !strcmp(o, "<=");
        bool eq = !strcmp(o, "=");
        if (!lower && !upper && !eq) {
            fail_at(c, op->off,
                    "numeric: unknown operator \"%s\"; the operators are =, <, <=, >, >=", o);
            return false;
        }
        if (i + 1 >= v->n) {
            fail_at(c, op->off, "numeric: \"%s\" needs a number after it", o);
            return false;
        }
        char what[64];
        snprintf(what, sizeof(what), "numeric: the bound after \"%s\"", o);
        double x;
        if (!numeric_operand(c, v->m[i + 1].v, what, &x))
            return false;
        if (eq && (i > 0 || v->n > 2)) {
            fail_at(c, op->off, "numeric: \"=\" stands alone: [\"=\", %s]", v->m[i + 1].v->s);
            return false;
        }
        if (eq) {
            r = (struct range){true, true, true, true, x, x};
        } else if (lower) {
            if (r.has_lo || r.has_hi) {
                fail_at(c, op->off,
                        "numeric: the lower bound (> or >=) comes first and only once, e.g. "
                        "[\">\", 0, \"<=\", 5]");
                return false;
            }
            r.has_lo = true;
            r.lo_incl = o[1] == '=';
            r.lo = x;
        } else {
            if (r.has_hi) {
                fail_at(c, op->off, "numeric: at most one upper bound (< or <=)");
                return false;
            }
            r.has_hi = true;
            r.hi_incl = o[1] == '=';
            r.hi = x;
        }
        i += 2;
    }
    if (r.has_lo && r.has_hi && !(r.lo < r.hi) && !(r.lo == r.hi && r.lo_incl && r.hi_incl)) {
        fail_at(c, v->off, "numeric: the lower bound must be below the upper bound");
        return false;
    }
    struct matcher *m = leaf_add(l, M_NUMERIC, false);
    m->range = r;
    return true;
}

static bool compile_operator(struct comp *c, struct cleaf *l, const struct pnode *obj)
{
    if (obj->n != 1) {
        if (!obj->n)
            fail_at(c, obj->off,
                    "an empty object in a value list matches nothing; write an "
                    "operator such as {\"prefix\": \"...\"}");
        else
            fail_at(c, obj->m[1].key_off,
                    "an operator object holds exactly one operator, got %zu keys (\"%s\", "
                    "\"%s\"...)",
                    obj->n, obj->m[0].key, obj->m[1].key);
        return false;
    }
    const char *op = obj->m[0].key;
    const struct pnode *v = obj->m[0].v;
    if (!strcmp(op, "prefix"))
        return compile_string_op(c, l, op, v, M_PREFIX, M_PREFIX_CI, false);
    if (!strcmp(op, "suffix"))
        return compile_string_op(c, l, op, v, M_SUFFIX, M_SUFFIX_CI, false);
    if (!strcmp(op, "equals-ignore-case"))
        return compile_string_op(c, l, op, v, M_EQ_CI, M_EQ_CI, false);
    if (!strcmp(op, "wildcard"))
        return compile_string_op(c, l, op, v, M_WILDCARD, M_WILDCARD, false);
    if (!strcmp(op, "anything-but"))
        return compile_anything_but(c, l, v);
    if (!strcmp(op, "numeric"))
        return compile_numeric(c, l, v);
    if (!strcmp(op, "cidr")) {
        if (v->t != P_STR) {
            fail_at(c, v->off, "cidr takes a string such as \"10.0.0.0/24\", got %s", type_name(v));
            return false;
        }
        struct cidr r;
        if (!cidr_make(c, v, &r))
            return false;
        leaf_add(l, M_CIDR, false)->cidr = r;
        return true;
    }
    if (!strcmp(op, "exists")) {
        if (v->t != P_TRUE && v->t != P_FALSE) {
            fail_at(c, v->off, "exists takes true or false, got %s", type_name(v));
            return false;
        }
        if (v->t == P_TRUE)
            l->exists_true = true;
        else
            l->exists_false = true;
        return true;
    }
    fail_at(c, obj->m[0].key_off,
            "unknown operator \"%s\"; the operators are prefix, suffix, equals-ignore-case, "
            "anything-but, numeric, exists, cidr, wildcard",
            op);
    return false;
}

static struct cleaf *compile_leaf(struct comp *c, const struct pnode *arr)
{
    struct cleaf *l = weir_calloc(1, sizeof(*l));
    if (!arr->n) {
        fail_at(c, arr->off, "an empty list matches nothing; list at least one value");
        goto fail;
    }
    for (size_t i = 0; i < arr->n; i++) {
        const struct pnode *v = arr->m[i].v;
        struct matcher *m;
        switch (v->t) {
        case P_STR:
            m = leaf_add(l, M_EQ_STR, false);
            m->str = weir_calloc(1, sizeof(*m->str));
            m->str[0].s = weir_strndup(v->s, v->len);
            m->str[0].len = v->len;
            m->n = 1;
            break;
        case P_NUM:
            m = leaf_add(l, M_EQ_NUM, false);
            m->num = weir_calloc(1, sizeof(*m->num));
            num_make(&m->num[0], v->s);
            m->n = 1;
            break;
        case P_TRUE:
        case P_FALSE:
        case P_NULL:
            m = leaf_add(l, M_EQ_LIT, false);
            m->lit = v->t == P_TRUE ? T_TRUE : v->t == P_FALSE ? T_FALSE : T_NULL;
            break;
        case P_OBJ:
            if (!compile_operator(c, l, v))
                goto fail;
            break;
        case P_ARR:
            fail_at(c, v->off,
                    "a list of values cannot hold a list; list the values (strings, numbers, "
                    "true, false, null or operators) directly");
            goto fail;
        }
    }
    return l;
fail:
    leaf_free(l);
    return NULL;
}

static void known_keys(const struct weir_filter_shape *s, char *out, size_t out_len)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < s->n_keys && o < out_len; i++) {
        int n = snprintf(out + o, out_len - o, "%s%s", i ? ", " : "", s->keys[i].name);
        if (n < 0)
            break;
        o += (size_t)n;
    }
}

static struct cnode *compile_object(struct comp *c, const struct pnode *obj, bool top, bool in_or);

/* One key of a pattern object; top: the key is a top-level key of the record. */
static bool compile_field(struct comp *c, struct cnode *node, const struct pmember *mb, bool top,
                          bool in_or)
{
    struct cfield f = {.kind = -1};
    char keys[400];
    if (in_or && is_operator(mb->key)) {
        fail_at(c, mb->key_off,
                "\"%s\" is an operator and cannot be a key inside $or; put it in a value list: "
                "\"key\": [{\"%s\": ...}]",
                mb->key, mb->key);
        return false;
    }
    if (top && c->shape) {
        for (size_t i = 0; i < c->shape->n_keys; i++)
            if (!strcmp(c->shape->keys[i].name, mb->key))
                f.kind = (int)c->shape->keys[i].kind;
        if (f.kind < 0) {
            known_keys(c->shape, keys, sizeof(keys));
            fail_at(c, mb->key_off, "an %s record has no key \"%s\"; its keys are %s",
                    c->shape->name, mb->key, keys);
            return false;
        }
    }
    const struct pnode *v = mb->v;
    if (v->t != P_OBJ && v->t != P_ARR) {
        fail_at(c, v->off,
                "\"%s\" must be a list of values ([\"...\"]) or an object of keys, got %s", mb->key,
                type_name(v));
        return false;
    }
    if (f.kind == WEIR_FILTER_KEY_STRING && v->t == P_OBJ) {
        fail_at(c, v->off,
                "\"%s\" is a string in an %s record: match it with a list of values, "
                "e.g. \"%s\": [{\"prefix\": \"...\"}]",
                mb->key, c->shape->name, mb->key);
        return false;
    }
    if (f.kind == WEIR_FILTER_KEY_OBJECT && v->t == P_ARR) {
        fail_at(c, v->off,
                "\"%s\" is an object in an %s record: name the keys to match inside it, "
                "e.g. \"%s\": {\"NAME\": [\"...\"]}",
                mb->key, c->shape->name, mb->key);
        return false;
    }
    if (f.kind == WEIR_FILTER_KEY_DATA && v->t == P_ARR && !c->shape->plain_data) {
        fail_at(c, v->off,
                "the %s payload \"%s\" is matched as JSON: name the keys to match inside it, e.g. "
                "\"%s\": {\"status\": [\"...\"]}",
                c->shape->name, mb->key, mb->key);
        return false;
    }
    if (f.kind == WEIR_FILTER_KEY_DATA)
        c->reads_data = true;
    else if (f.kind >= 0)
        c->reads_meta = true;
    f.key = weir_strndup(mb->key, mb->key_len);
    f.key_len = mb->key_len;
    if (v->t == P_OBJ)
        f.obj = compile_object(c, v, false, in_or);
    else
        f.leaf = compile_leaf(c, v);
    node->f = weir_realloc(node->f, (node->n + 1) * sizeof(*node->f));
    node->f[node->n++] = f;
    return f.obj || f.leaf;
}

static struct cnode *compile_object(struct comp *c, const struct pnode *obj, bool top, bool in_or)
{
    struct cnode *node = weir_calloc(1, sizeof(*node));
    node->top = top;
    if (!obj->n) {
        fail_at(c, obj->off, "an empty object matches nothing; name at least one key");
        goto fail;
    }
    for (size_t i = 0; i < obj->n; i++) {
        const struct pmember *mb = &obj->m[i];
        size_t was = path_push(c, "%s", mb->key);
        if (strcmp(mb->key, "$or")) {
            bool ok = compile_field(c, node, mb, top, in_or);
            path_pop(c, was);
            if (!ok)
                goto fail;
            continue;
        }
        const struct pnode *v = mb->v;
        if (v->t != P_ARR || v->n < 2) {
            fail_at(c, v->off, "$or takes a list of at least two patterns, got %s",
                    v->t == P_ARR ? "a list of one" : type_name(v));
            goto fail;
        }
        path_pop(c, was);
        node->alt = weir_calloc(v->n, sizeof(*node->alt));
        for (size_t k = 0; k < v->n; k++) {
            size_t w2 = path_push(c, "$or[%zu]", k);
            const struct pnode *alt = v->m[k].v;
            if (alt->t != P_OBJ) {
                fail_at(c, alt->off, "each $or alternative is a pattern object, got %s",
                        type_name(alt));
                goto fail;
            }
            node->alt[node->n_alt] = compile_object(c, alt, top, true);
            if (!node->alt[node->n_alt++])
                goto fail;
            path_pop(c, w2);
        }
    }
    return node;
fail:
    cnode_free(node);
    return NULL;
}

static size_t count_chars(const char *s, size_t len, size_t stop_at, size_t *stop_off)
{
    size_t i = 0, n = 0;
    while (i < len) {
        if (n == stop_at)
            *stop_off = i;
        next_cp(s, len, &i);
        n++;
    }
    return n;
}

static struct cnode *compile(const char *text, size_t len, const struct weir_filter_shape *shape,
                             struct weir_filter_error *err, bool *reads_data, bool *reads_meta)
{
    size_t cut = 0;
    if (count_chars(text, len, WEIR_FILTER_MAX_PATTERN_CHAR, &cut) > WEIR_FILTER_MAX_PATTERN_CHAR) {
        if (err) {
            err->offset = cut;
            err->path[0] = '\0';
            snprintf(err->msg, sizeof(err->msg),
                     "longer than %d characters, AWS's limit for one pattern",
                     WEIR_FILTER_MAX_PATTERN_CHAR);
        }
        return NULL;
    }
    struct pnode *p = read_pattern(text, len, err);
    if (!p)
        return NULL;
    struct comp c = {.shape = shape, .err = err};
    struct cnode *root = NULL;
    if (p->t != P_OBJ)
        fail_at(&c, p->off, "a pattern is a JSON object, got %s", type_name(p));
    else
        root = compile_object(&c, p, true, false);
    pnode_free(p);
    if (root) {
        *reads_data |= c.reads_data;
        *reads_meta |= c.reads_meta;
    }
    return root;
}

/* ==== the event reader ======================================================================= */

/* A JSON text read once into a flat list of tokens (a tape), without copying or decoding it:
 * matching then walks the tape. Reading validates the text as strictly as jansson does, so a
 * payload counts as JSON exactly when it is JSON. The tape's memory is kept from record to
 * record; a record allocates nothing once the tape is as large as the records need. */

/* jansson's nesting limit: deeper texts are not JSON to it either. */
#define DOC_MAX_DEPTH 2048
/* A tape grown past this many tokens by one huge record is given back after it. */
#define DOC_KEEP_TOKENS 65536
#define NONE            ((size_t)-1)

static size_t doc_push(struct weir_filter_doc *d, enum ttype type, size_t start)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 64;
        d->t = weir_realloc(d->t, d->cap * sizeof(*d->t));
    }
    d->t[d->n] = (struct tok){.start = (uint32_t)start, .type = (uint8_t)type};
    return d->n++;
}

static void doc_ws(const struct weir_filter_doc *d, size_t *i)
{
    while (*i < d->len) {
        char c = d->s[*i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            return;
        (*i)++;
    }
}

/* A key may not hold \u0000 (jansson refuses it even where values may). */
static bool doc_string(struct weir_filter_doc *d, size_t *i, bool key)
{
    const char *s = d->s;
    size_t p = *i + 1, k = doc_push(d, T_STR, p);
    for (;;) {
        if (p >= d->len)
            return false;
        unsigned char c = (unsigned char)s[p];
        if (c == '"')
            break;
        if (c < 0x20)
            return false;
        if (c < 0x80 && c != '\\') {
            p++;
            continue;
        }
        if (c >= 0x80) {
            uint32_t cp;
            size_t n = weir_utf8_len((const unsigned char *)s + p, d->len - p, &cp);
            if (!n)
                return false;
            p += n;
            continue;
        }
        d->t[k].esc = 1;
        if (p + 1 >= d->len)
            return false;
        char e = s[p + 1];
        if (e != 'u') {
            if (!strchr("\"\\/bfnrt", e) || !e)
                return false;
            p += 2;
            continue;
        }
        int v = weir_hex4(s + p + 2, d->len - p - 2);
        if (v < 0 || (v >= 0xdc00 && v <= 0xdfff) || (key && v == 0))
            return false;
        p += 6;
        if (v >= 0xd800 && v <= 0xdbff) {
            if (p + 1 >= d->len || s[p] != '\\' || s[p + 1] != 'u')
                return false;
            int lo = weir_hex4(s + p + 2, d->len - p - 2);
            if (lo < 0xdc00 || lo > 0xdfff)
                return false;
            p += 6;
        }
    }
    d->t[k].len = (uint32_t)(p - d->t[k].start);
    d->t[k].next = (uint32_t)d->n;
    *i = p + 1;
    return true;
}

/* Parses a validated number's text. */
static void num_text(const char *s, size_t len, double *dv, long long *iv, bool *is_int)
{
    char small[64];
    char *t = len < sizeof(small) ? small : weir_malloc(len + 1);
    memcpy(t, s, len);
    t[len] = '\0';
    *is_int = !memchr(s, '.', len) && !memchr(s, 'e', len) && !memchr(s, 'E', len);
    if (*is_int) {
        errno = 0;
        *iv = strtoll(t, NULL, 10);
        if (errno == ERANGE)
            *is_int = false; /* past 64 bits: a real, as jansson reads it with INT_AS_REAL */
    }
    *dv = *is_int ? (double)*iv : strtod(t, NULL);
    if (t != small)
        free(t);
}

static bool doc_number(struct weir_filter_doc *d, size_t *i)
{
    const char *s = d->s;
    size_t p = *i, start = p;
    bool exp = false;
    if (p < d->len && s[p] == '-')
        p++;
    if (p >= d->len || !is_digit(s[p]))
        return false;
    if (s[p] == '0')
        p++;
    else
        while (p < d->len && is_digit(s[p]))
            p++;
    if (p < d->len && s[p] == '.') {
        p++;
        if (p >= d->len || !is_digit(s[p]))
            return false;
        while (p < d->len && is_digit(s[p]))
            p++;
    }
    if (p < d->len && (s[p] == 'e' || s[p] == 'E')) {
        exp = true;
        p++;
        if (p < d->len && (s[p] == '+' || s[p] == '-'))
            p++;
        if (p >= d->len || !is_digit(s[p]))
            return false;
        while (p < d->len && is_digit(s[p]))
            p++;
    }
    /* jansson refuses a real that overflows a double; only an exponent or a very long
     * mantissa can. */
    if (exp || p - start > 300) {
        double dv;
        long long iv;
        bool is_int;
        num_text(s + start, p - start, &dv, &iv, &is_int);
        if (isinf(dv))
            return false;
    }
    size_t k = doc_push(d, T_NUM, start);
    d->t[k].len = (uint32_t)(p - start);
    d->t[k].next = (uint32_t)d->n;
    *i = p;
    return true;
}

static bool doc_value(struct weir_filter_doc *d, size_t *i);

static bool doc_container(struct weir_filter_doc *d, size_t *i)
{
    bool obj = d->s[*i] == '{';
    char close = obj ? '}' : ']';
    size_t k = doc_push(d, obj ? T_OBJ : T_ARR, *i);
    if (++d->depth > DOC_MAX_DEPTH)
        return false;
    (*i)++;
    doc_ws(d, i);
    if (*i < d->len && d->s[*i] == close) {
        (*i)++;
    } else {
        for (;;) {
            doc_ws(d, i);
            if (obj) {
                if (*i >= d->len || d->s[*i] != '"' || !doc_string(d, i, true))
                    return false;
                doc_ws(d, i);
                if (*i >= d->len || d->s[*i] != ':')
                    return false;
                (*i)++;
            }
            if (!doc_value(d, i))
                return false;
            d->t[k].len++;
            doc_ws(d, i);
            if (*i < d->len && d->s[*i] == ',') {
                (*i)++;
                continue;
            }
            if (*i < d->len && d->s[*i] == close) {
                (*i)++;
                break;
            }
            return false;
        }
    }
    d->depth--;
    d->t[k].next = (uint32_t)d->n;
    return true;
}

static bool doc_word(struct weir_filter_doc *d, size_t *i, const char *w, enum ttype type)
{
    size_t n = strlen(w);
    if (d->len - *i < n || memcmp(d->s + *i, w, n))
        return false;
    size_t k = doc_push(d, type, *i);
    d->t[k].len = (uint32_t)n;
    d->t[k].next = (uint32_t)d->n;
    *i += n;
    return true;
}

static bool doc_value(struct weir_filter_doc *d, size_t *i)
{
    doc_ws(d, i);
    if (*i >= d->len)
        return false;
    switch (d->s[*i]) {
    case '{':
    case '[':
        return doc_container(d, i);
    case '"':
        return doc_string(d, i, false);
    case 't':
        return doc_word(d, i, "true", T_TRUE);
    case 'f':
        return doc_word(d, i, "false", T_FALSE);
    case 'n':
        return doc_word(d, i, "null", T_NULL);
    default:
        return doc_number(d, i);
    }
}

/* Reads text into d (its tape reused). Only an object or an array at the top makes the text
 * JSON (jansson's default too): a payload "42" or "true" is the plain string a producer wrote. */
static bool doc_read(struct weir_filter_doc *d, const char *text, size_t len)
{
    size_t i = 0;
    d->s = text;
    d->len = len;
    d->n = 0;
    d->depth = 0;
    if (len > UINT32_MAX)
        return false;
    doc_ws(d, &i);
    if (i >= len || (text[i] != '{' && text[i] != '['))
        return false;
    if (!doc_value(d, &i))
        return false;
    doc_ws(d, &i);
    return i == len;
}

static void doc_trim(struct weir_filter_doc *d)
{
    if (d->cap > DOC_KEEP_TOKENS) {
        free(d->t);
        d->t = NULL;
        d->n = d->cap = 0;
    }
}

/* A string token's bytes, decoded into buf when it holds escapes. */
static const char *tok_str(const struct weir_filter_doc *d, size_t k, struct weir_buf *buf,
                           size_t *len)
{
    const struct tok *t = &d->t[k];
    const char *s = d->s + t->start;
    if (!t->esc) {
        *len = t->len;
        return s;
    }
    weir_buf_reset(buf);
    weir_buf_reserve(buf, t->len);
    for (size_t i = 0; i < t->len; i++) {
        if (s[i] != '\\') {
            weir_buf_append_char(buf, s[i]);
            continue;
        }
        char e = s[++i];
        switch (e) {
        case 'b':
            weir_buf_append_char(buf, '\b');
            break;
        case 'f':
            weir_buf_append_char(buf, '\f');
            break;
        case 'n':
            weir_buf_append_char(buf, '\n');
            break;
        case 'r':
            weir_buf_append_char(buf, '\r');
            break;
        case 't':
            weir_buf_append_char(buf, '\t');
            break;
        case 'u': {
            uint32_t cp = (uint32_t)weir_hex4(s + i + 1, 4);
            i += 4;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                uint32_t lo = (uint32_t)weir_hex4(s + i + 3, 4);
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                i += 6;
            }
            weir_utf8_put(buf, cp);
            break;
        }
        default:
            weir_buf_append_char(buf, e);
            break;
        }
    }
    *len = buf->len;
    return buf->data;
}

/* ==== the matcher ============================================================================ */

enum svt { SV_STR, SV_INT, SV_REAL, SV_LIT };

/* One scalar value of an event, whatever it was read from. */
struct sv {
    enum svt t;
    const char *s; /* strings */
    size_t len;
    long long i;    /* SV_INT */
    double d;       /* SV_INT and SV_REAL */
    enum ttype lit; /* SV_LIT: T_TRUE, T_FALSE, T_NULL */
};

struct mctx {
    struct weir_filter *f;
    const struct weir_record *r;
    const struct weir_encoder *enc;
    const struct weir_event_ctx *ectx;
    int data_state; /* 0 not looked at, 1 JSON (data), 2 plain */
    const struct weir_filter_doc *data;
    bool meta_done;
    const struct weir_filter_doc *meta; /* NULL when the element could not be read */
};

static bool sv_from_tok(struct mctx *mc, const struct weir_filter_doc *d, size_t k, struct sv *v)
{
    const struct tok *t = &d->t[k];
    switch (t->type) {
    case T_STR:
        v->t = SV_STR;
        v->s = tok_str(d, k, &mc->f->strbuf, &v->len);
        return true;
    case T_NUM: {
        bool is_int;
        num_text(d->s + t->start, t->len, &v->d, &v->i, &is_int);
        v->t = is_int ? SV_INT : SV_REAL;
        return true;
    }
    case T_TRUE:
    case T_FALSE:
    case T_NULL:
        v->t = SV_LIT;
        v->lit = (enum ttype)t->type;
        return true;
    default:
        return false;
    }
}

static bool num_equal(const struct num *n, const struct sv *v)
{
    if (v->t == SV_INT && n->is_int)
        return v->i == n->i;
    return v->d == n->d;
}

static bool has_prefix(const char *s, size_t len, const struct cstr *p)
{
    return len >= p->len && !memcmp(s, p->s, p->len);
}

static bool has_suffix(const char *s, size_t len, const struct cstr *p)
{
    return len >= p->len && !memcmp(s + len - p->len, p->s, p->len);
}

static bool wild_match(const struct wild *w, const char *s, size_t len)
{
    const struct cstr *first = &w->seg[0], *last = &w->seg[w->n - 1];
    if (w->n == 1)
        return len == first->len && !memcmp(s, first->s, len);
    if (len < first->len + last->len || !has_prefix(s, len, first) || !has_suffix(s, len, last))
        return false;
    /* With '*' the only metacharacter, taking each middle piece at its leftmost place never
     * loses a match. */
    size_t pos = first->len, end = len - last->len;
    for (size_t k = 1; k + 1 < w->n; k++) {
        const struct cstr *seg = &w->seg[k];
        if (!seg->len)
            continue;
        const char *hit =
            end - pos >= seg->len ? memmem(s + pos, end - pos, seg->s, seg->len) : NULL;
        if (!hit)
            return false;
        pos = (size_t)(hit - s) + seg->len;
    }
    return true;
}

static bool cidr_match(const struct cidr *r, const char *s, size_t len)
{
    char text[64];
    unsigned char a[16];
    if (len == 0 || len >= sizeof(text) || memchr(s, '\0', len))
        return false;
    memcpy(text, s, len);
    text[len] = '\0';
    if (inet_pton(r->family, text, a) != 1)
        return false;
    int full = r->bits / 8, rest = r->bits % 8;
    if (memcmp(a, r->addr, (size_t)full))
        return false;
    if (rest) {
        unsigned char mask = (unsigned char)(0xffu << (8 - rest));
        if ((a[full] & mask) != r->addr[full])
            return false;
    }
    return true;
}

/* Whether the operator (before anything-but's negation) holds for v. */
static bool op_holds(const struct matcher *m, const struct sv *v)
{
    switch (m->op) {
    case M_EQ_LIT:
        return v->t == SV_LIT && (int)v->lit == m->lit;
    case M_EQ_NUM:
        if (v->t != SV_INT && v->t != SV_REAL)
            return false;
        for (size_t i = 0; i < m->n; i++)
            if (num_equal(&m->num[i], v))
                return true;
        return false;
    case M_NUMERIC: {
        if (v->t != SV_INT && v->t != SV_REAL)
            return false;
        double d = v->d;
        const struct range *r = &m->range;
        if (!(fabs(d) <= NUMERIC_LIMIT))
            return false;
        if (r->has_lo && (r->lo_incl ? d < r->lo : d <= r->lo))
            return false;
        if (r->has_hi && (r->hi_incl ? d > r->hi : d >= r->hi))
            return false;
        return true;
    }
    default:
        break;
    }
    if (v->t != SV_STR)
        return false;
    for (size_t i = 0; i < (m->op == M_CIDR ? 1 : m->n); i++) {
        bool hit = false;
        switch (m->op) {
        case M_EQ_STR:
            hit = v->len == m->str[i].len && !memcmp(v->s, m->str[i].s, v->len);
            break;
        case M_PREFIX:
            hit = has_prefix(v->s, v->len, &m->str[i]);
            break;
        case M_SUFFIX:
            hit = has_suffix(v->s, v->len, &m->str[i]);
            break;
        case M_EQ_CI:
            hit = ci_equal(&m->ci[i], v->s, v->len);
            break;
        case M_PREFIX_CI:
            hit = ci_prefix(&m->ci[i], v->s, v->len);
            break;
        case M_SUFFIX_CI:
            hit = ci_suffix(&m->ci[i], v->s, v->len);
            break;
        case M_WILDCARD:
            hit = wild_match(&m->wild[i], v->s, v->len);
            break;
        case M_CIDR:
            hit = cidr_match(&m->cidr, v->s, v->len);
            break;
        default:
            break;
        }
        if (hit)
            return true;
    }
    return false;
}

static bool leaf_scalar(const struct cleaf *l, const struct sv *v)
{
    for (size_t i = 0; i < l->n; i++)
        if (op_holds(&l->m[i], v) != l->m[i].negate)
            return true;
    return false;
}

/* Tries every scalar at token k (array elements flattened, objects skipped: they are not
 * leaves); counts them in *seen. */
static bool leaf_scan(struct mctx *mc, const struct cleaf *l, const struct weir_filter_doc *d,
                      size_t k, size_t *seen)
{
    if (d->t[k].type == T_ARR) {
        for (size_t e = k + 1; e < d->t[k].next; e = d->t[e].next)
            if (leaf_scan(mc, l, d, e, seen))
                return true;
        return false;
    }
    struct sv v;
    if (!sv_from_tok(mc, d, k, &v))
        return false;
    (*seen)++;
    return leaf_scalar(l, &v);
}

/* A leaf condition on token k of d (NONE: the key is missing). exists only looks at leaves: a
 * key holding an object, or only objects and empty arrays, does not "exist" for it
 * (EventBridge). */
static bool leaf_match(struct mctx *mc, const struct cleaf *l, const struct weir_filter_doc *d,
                       size_t k)
{
    size_t seen = 0;
    if (k != NONE && leaf_scan(mc, l, d, k, &seen))
        return true;
    return seen ? l->exists_true : l->exists_false;
}

/* The value of key in the object at token k, or NONE. A key written twice: the last one, as a
 * JSON reader keeps it. */
static size_t obj_get(struct mctx *mc, const struct weir_filter_doc *d, size_t k, const char *key,
                      size_t key_len)
{
    size_t found = NONE;
    if (k == NONE || d->t[k].type != T_OBJ)
        return NONE;
    for (size_t m = k + 1; m < d->t[k].next; m = d->t[m + 1].next) {
        const struct tok *kt = &d->t[m];
        if (!kt->esc) {
            if (kt->len == key_len && !memcmp(d->s + kt->start, key, key_len))
                found = m + 1;
        } else {
            size_t len;
            const char *s = tok_str(d, m, &mc->f->keybuf, &len);
            if (len == key_len && !memcmp(s, key, key_len))
                found = m + 1;
        }
    }
    return found;
}

static bool load_data(struct mctx *mc)
{
    if (!mc->data_state) {
        struct weir_filter_doc *d = &mc->f->data_doc;
        mc->data = doc_read(d, mc->r->data, mc->r->data_len) ? d : NULL;
        mc->data_state = mc->data ? 1 : 2;
    }
    return mc->data_state == 1;
}

static const struct weir_filter_doc *load_meta(struct mctx *mc)
{
    if (!mc->meta_done) {
        mc->meta_done = true;
        if (mc->enc) {
            struct weir_buf *b = &mc->f->element;
            weir_buf_reset(b);
            mc->enc->append(b, mc->ectx, mc->r, 1);
            if (doc_read(&mc->f->meta_doc, b->data, b->len))
                mc->meta = &mc->f->meta_doc;
        }
    }
    return mc->meta;
}

static bool node_match(struct mctx *mc, const struct cnode *n, const struct weir_filter_doc *d,
                       size_t k);

static bool field_match(struct mctx *mc, const struct cfield *f, const struct weir_filter_doc *d,
                        size_t k)
{
    return f->obj ? node_match(mc, f->obj, d, k) : leaf_match(mc, f->leaf, d, k);
}

/* A top-level field of a shaped record. */
static bool top_field(struct mctx *mc, const struct cfield *f)
{
    if (f->kind != WEIR_FILTER_KEY_DATA) {
        const struct weir_filter_doc *m = load_meta(mc);
        return field_match(mc, f, m, m ? obj_get(mc, m, 0, f->key, f->key_len) : NONE);
    }
    bool json = load_data(mc);
    /* Lambda drops a record whose payload and pattern disagree on being JSON. */
    if (f->obj)
        return json && node_match(mc, f->obj, mc->data, 0);
    if (json)
        return false;
    struct sv v = {.t = SV_STR, .s = mc->r->data, .len = mc->r->data_len};
    return leaf_scalar(f->leaf, &v) || f->leaf->exists_true;
}

static bool node_match(struct mctx *mc, const struct cnode *n, const struct weir_filter_doc *d,
                       size_t k)
{
    if (k != NONE && d->t[k].type == T_ARR && !n->top) {
        for (size_t e = k + 1; e < d->t[k].next; e = d->t[e].next)
            if (node_match(mc, n, d, e))
                return true;
        if (d->t[k].len)
            return false;
        k = NONE; /* an empty array holds none of the keys */
    }
    for (size_t i = 0; i < n->n; i++) {
        const struct cfield *f = &n->f[i];
        bool ok;
        if (n->top && mc->r)
            ok = top_field(mc, f);
        else
            ok = field_match(mc, f, d, obj_get(mc, d, k, f->key, f->key_len));
        if (!ok)
            return false;
    }
    if (!n->n_alt)
        return true;
    for (size_t i = 0; i < n->n_alt; i++)
        if (node_match(mc, n->alt[i], d, k))
            return true;
    return false;
}

/* A buffer grown past this by one huge record is given back after it. */
#define BUF_KEEP_BYTES (1u << 20)

static void buf_trim(struct weir_buf *b)
{
    if (b->cap > BUF_KEEP_BYTES)
        weir_buf_deinit(b);
}

static bool match_all(struct mctx *mc, const struct weir_filter_doc *d, size_t k)
{
    bool hit = false;
    for (size_t i = 0; i < mc->f->n && !hit; i++)
        hit = node_match(mc, mc->f->pat[i], d, k);
    doc_trim(&mc->f->data_doc);
    doc_trim(&mc->f->meta_doc);
    buf_trim(&mc->f->element);
    buf_trim(&mc->f->strbuf);
    buf_trim(&mc->f->keybuf);
    return hit;
}

/* ==== the interface ========================================================================== */

bool weir_filter_check(const char *pattern, size_t len, const struct weir_filter_shape *shape,
                       struct weir_filter_error *err)
{
    bool d = false, m = false;
    struct cnode *root = compile(pattern, len, shape, err, &d, &m);
    cnode_free(root);
    return root != NULL;
}

struct weir_filter *weir_filter_new(const char *const *patterns, const size_t *lens, size_t n,
                                    const struct weir_filter_shape *shape, size_t *bad,
                                    struct weir_filter_error *err)
{
    if (n == 0 || n > WEIR_FILTER_MAX_PATTERNS) {
        if (bad)
            *bad = n;
        if (err) {
            err->offset = 0;
            err->path[0] = '\0';
            snprintf(err->msg, sizeof(err->msg), "%zu patterns; a filter takes 1 to %d", n,
                     WEIR_FILTER_MAX_PATTERNS);
        }
        return NULL;
    }
    struct weir_filter *f = weir_calloc(1, sizeof(*f));
    f->shape = shape;
    f->pat = weir_calloc(n, sizeof(*f->pat));
    weir_buf_init(&f->element);
    weir_buf_init(&f->strbuf);
    weir_buf_init(&f->keybuf);
    for (size_t i = 0; i < n; i++) {
        f->pat[i] = compile(patterns[i], lens[i], shape, err, &f->reads_data, &f->reads_meta);
        if (!f->pat[i]) {
            if (bad)
                *bad = i;
            weir_filter_free(f);
            return NULL;
        }
        f->n++;
    }
    return f;
}

void weir_filter_free(struct weir_filter *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++)
        cnode_free(f->pat[i]);
    free(f->pat);
    weir_buf_deinit(&f->element);
    weir_buf_deinit(&f->strbuf);
    weir_buf_deinit(&f->keybuf);
    free(f->data_doc.t);
    free(f->meta_doc.t);
    free(f);
}

bool weir_filter_match(struct weir_filter *f, const struct weir_record *r,
                       const struct weir_encoder *enc, const struct weir_event_ctx *ctx)
{
    struct mctx mc = {.f = f, .r = r, .enc = enc, .ectx = ctx};
    return match_all(&mc, NULL, NONE);
}

struct weir_filter_doc *weir_filter_doc_new(const char *text, size_t len)
{
    struct weir_filter_doc *d = weir_calloc(1, sizeof(*d));
    if (doc_read(d, text, len))
        return d;
    weir_filter_doc_free(d);
    return NULL;
}

void weir_filter_doc_free(struct weir_filter_doc *d)
{
    if (!d)
        return;
    free(d->t);
    free(d);
}

bool weir_filter_match_doc(struct weir_filter *f, const struct weir_record *r,
                           const struct weir_filter_doc *body, const struct weir_encoder *enc,
                           const struct weir_event_ctx *ctx)
{
    struct mctx mc = {.f = f, .r = r, .enc = enc, .ectx = ctx, .data = body};
    mc.data_state = body ? 1 : 2;
    return match_all(&mc, NULL, NONE);
}

bool weir_filter_match_text(struct weir_filter *f, const char *text, size_t len)
{
    struct mctx mc = {.f = f};
    if (!doc_read(&f->data_doc, text, len)) {
        doc_trim(&f->data_doc);
        return false;
    }
    return match_all(&mc, &f->data_doc, 0);
}

bool weir_filter_reads_data(const struct weir_filter *f)
{
    return f->reads_data;
}

bool weir_filter_reads_metadata(const struct weir_filter *f)
{
    return f->reads_meta;
}
