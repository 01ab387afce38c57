/* The configuration schema, as tables of data, and the walk that checks a parsed tree against
 * it: fills plain structs, applies AWS's defaults, and reports every broken rule as
 * file:line:col in file order. Also owns the error report. Must never start, connect to or
 * open anything but the one file it is asked to read. */
#include "config/config.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/cfgtree.h"
#include "core/list.h"
#include "core/log.h"
#include "core/mem.h"

/* A configuration is a screenful, not a data set; anything this large is the wrong file. */
#define MAX_FILE_BYTES (16u << 20)
#define MAX_NAME       64
/* AWS's batch_size ceiling for every source, used while the source itself is unknown. */
#define AWS_MAX_BATCH 10000
/* AWS allows 5 filters per mapping by default and up to 10 with a raised quota; weir takes 10
 * (mapping/filter.h says the same to the filter). */
#define MAX_FILTERS 10
/* Records buffered and in flight per mapping, counted raw and encoded (about twice the payload):
 * room for about five full 6 MB events. */
#define DEFAULT_BUFFERED_MIB 64
/* Relative to the directory weir runs in. */
#define DEFAULT_STATE_DIR "weir-state"
/* Loopback only: the Invoke API checks no signature, so it is not for other hosts by default. */
#define DEFAULT_API_PORT    9070
#define DEFAULT_API_LISTEN  "127.0.0.1:9070"
#define WEIR_CFG_WHY_MAX    256
#define AWS_DEFAULT_FILTERS 5

/* ---- the report -------------------------------------------------------------------------- */

void weir_cfg_report_init(struct weir_cfg_report *rep)
{
    rep->errors = NULL;
    rep->n = 0;
}

void weir_cfg_report_deinit(struct weir_cfg_report *rep)
{
    for (size_t i = 0; i < rep->n; i++)
        free(rep->errors[i]);
    free(rep->errors);
    weir_cfg_report_init(rep);
}

static void report_take(struct weir_cfg_report *rep, char *msg)
{
    rep->errors = weir_realloc(rep->errors, (rep->n + 1) * sizeof(*rep->errors));
    rep->errors[rep->n++] = msg;
}

/* A position with line 0 stands for the whole file ("cannot read") and prints as "FILE: ". */
void weir_cfg_report_add(struct weir_cfg_report *rep, struct weir_cfg_pos pos, const char *fmt, ...)
{
    const char *file = pos.file ? pos.file : "(config)";
    char head[64];
    if (pos.line > 0)
        snprintf(head, sizeof(head), ":%d:%d: ", pos.line, pos.col);
    else
        snprintf(head, sizeof(head), ": ");
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    assert(n >= 0);
    size_t flen = strlen(file), hlen = strlen(head);
    char *msg = weir_malloc(flen + hlen + (size_t)n + 1);
    memcpy(msg, file, flen);
    memcpy(msg + flen, head, hlen);
    va_start(ap, fmt);
    vsnprintf(msg + flen + hlen, (size_t)n + 1, fmt, ap);
    va_end(ap);
    report_take(rep, msg);
}

struct sorted {
    long line, col;
    size_t idx;
    char *msg;
};

static int sorted_cmp(const void *a, const void *b)
{
    const struct sorted *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Rules that combine fields are checked after the walk (and the poller adds its own through
 * weir_cfg_report_add), so errors arrive out of file order. Every entry of `found` starts with
 * file, then ":LINE:COL: " or ": "; sorting on that, stably, restores the order a reader
 * expects. Moves the messages into rep and leaves found empty. */
static void report_move_sorted(struct weir_cfg_report *rep, struct weir_cfg_report *found,
                               const char *file)
{
    size_t flen = strlen(file);
    struct sorted *s = weir_calloc(found->n, sizeof(*s));
    for (size_t i = 0; i < found->n; i++) {
        const char *p = found->errors[i] + flen;
        s[i].idx = i;
        s[i].msg = found->errors[i];
        if (p[0] == ':' && isdigit((unsigned char)p[1])) {
            char *end;
            s[i].line = strtol(p + 1, &end, 10);
            if (*end == ':')
                s[i].col = strtol(end + 1, NULL, 10);
        }
    }
    qsort(s, found->n, sizeof(*s), sorted_cmp);
    for (size_t i = 0; i < found->n; i++)
        report_take(rep, s[i].msg);
    free(s);
    free(found->errors);
    weir_cfg_report_init(found);
}

/* ---- the walk's state and messages ------------------------------------------------------- */

struct source_schema;

struct load {
    struct weir_config *cfg;
    struct weir_cfg_report *rep;
    const struct weir_cfg_env *env;
    const char *kind; /* "function" or "mapping" while walking one; NULL at the top level */
    char place[96];   /* "mapping 'orders'" (or "mapping #2" until its name is known) */
    const struct weir_cfg_source *src; /* the current mapping's source, once known */
    const struct weir_mapping_cfg *mc; /* the mapping being read */
    struct weir_cfg_keypos **keys;     /* where the current object's key positions go */
    size_t *n_keys;
    bool *fn_bad;     /* per function: it had errors, so its values may be stand-ins */
    char **claims;    /* per mapping: what it claims alone, when it checked cleanly; else NULL */
    const char *text; /* the configuration text, to place errors inside a filter pattern */
    size_t text_len;
    struct weir_list schemas; /* the sources' keys as schemas (struct source_schema), built once */
};

struct field;
typedef void (*setter)(struct load *ld, const struct field *f, const struct weir_cfgnode *v,
                       const char *path, void *obj);

/* One key of an object: how to read it and where in the object its value goes. */
struct field {
    const char *key;
    setter set;
    bool required;
    int min, max;             /* integers: the range; strings: the least length */
    bool max_from_source;     /* integers: the upper bound is the source's (batch_size) */
    size_t off;               /* the value's offset in the object */
    size_t off_n;             /* lists: their length's offset */
    const struct schema *sub; /* nested objects: their keys (stored in the same object) */
};

struct schema {
    const struct field *fields;
    size_t n;
};

static void err_line(struct load *ld, int line, int col, bool with_place, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void err_line(struct load *ld, int line, int col, bool with_place, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct weir_cfg_pos pos = {.file = ld->cfg->file, .line = line, .col = col};
    if (with_place && ld->place[0])
        weir_cfg_report_add(ld->rep, pos, "%s: %s", ld->place, msg);
    else
        weir_cfg_report_add(ld->rep, pos, "%s", msg);
}

#define err_at(ld, node, ...) err_line(ld, (node)->line, (node)->col, true, __VA_ARGS__)
#define err_pos(ld, pos, ...) err_line(ld, (pos).line, (pos).col, true, __VA_ARGS__)

/* Copies text for a message: quotes and control characters escaped, long text cut short. */
static const char *show(const char *s, size_t len, char *out, size_t out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 8 < out_len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i == 40) {
            o += (size_t)snprintf(out + o, out_len - o, "...");
            break;
        }
        if (c == '"' || c == '\\')
            o += (size_t)snprintf(out + o, out_len - o, "\\%c", c);
        else if (c == '\n')
            o += (size_t)snprintf(out + o, out_len - o, "\\n");
        else if (c < 0x20 || c == 0x7f)
            o += (size_t)snprintf(out + o, out_len - o, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    out[o] = '\0';
    return out;
}

/* Decimal only, optional sign. Values past +-10^12 saturate there: every range weir checks is
 * far inside int, so a saturated value is reported as out of range with the text as written. */
static bool parse_int(const char *s, long long *out)
{
    long long v = 0;
    bool neg = false;
    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    if (!*s)
        return false;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s))
            return false;
        if (v < 1000000000000LL)
            v = v * 10 + (*s - '0');
    }
    *out = neg ? -v : v;
    return true;
}

static bool is_true(const char *s)
{
    return !strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE");
}

static bool is_false(const char *s)
{
    return !strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE");
}

/* 1.5, -2e3: named "number" in messages so "must be an integer" reads right. Not "nan" or "inf",
 * which strtod takes but a reader would call words. */
static bool looks_number(const char *s)
{
    char *end;
    if (!*s || !strchr("+-.0123456789", *s))
        return false;
    strtod(s, &end);
    return *end == '\0';
}

/* What a value is, for "must be X, got Y". */
static const char *describe(const struct weir_cfgnode *v, char *out, size_t out_len)
{
    char text[256];
    long long i;
    if (v->kind == WEIR_CFGNODE_MAP)
        return "a mapping";
    if (v->kind == WEIR_CFGNODE_SEQ)
        return "a sequence";
    if (weir_cfgtree_is_null(v))
        return "null";
    show(v->str, v->len, text, sizeof(text));
    if (!v->quoted && parse_int(v->str, &i)) {
        snprintf(out, out_len, "integer %s", text);
    } else if (!v->quoted && (is_true(v->str) || is_false(v->str))) {
        snprintf(out, out_len, "boolean %s", text);
    } else if (!v->quoted && looks_number(v->str)) {
        snprintf(out, out_len, "number %s", text);
    } else {
        snprintf(out, out_len, "string \"%s\"", text);
    }
    return out;
}

/* ---- key positions ----------------------------------------------------------------------- */

static const struct weir_cfg_keypos *keypos_find(const struct weir_cfg_keypos *keys, size_t n,
                                                 const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(keys[i].key, key))
            return &keys[i];
    return NULL;
}

struct weir_cfg_pos weir_mapping_cfg_pos(const struct weir_mapping_cfg *mc, const char *key)
{
    const struct weir_cfg_keypos *kp = keypos_find(mc->keys, mc->n_keys, key);
    return kp ? kp->pos : mc->pos;
}

bool weir_mapping_cfg_has(const struct weir_mapping_cfg *mc, const char *key)
{
    return keypos_find(mc->keys, mc->n_keys, key) != NULL;
}

struct weir_cfg_pos weir_function_cfg_pos(const struct weir_function_cfg *fc, const char *key)
{
    const struct weir_cfg_keypos *kp = keypos_find(fc->keys, fc->n_keys, key);
    return kp ? kp->pos : fc->pos;
}

static void keypos_add(struct load *ld, const char *path, const struct weir_cfgnode *k)
{
    if (!ld->keys)
        return;
    *ld->keys = weir_realloc(*ld->keys, (*ld->n_keys + 1) * sizeof(**ld->keys));
    (*ld->keys)[(*ld->n_keys)++] = (struct weir_cfg_keypos){
        .key = weir_strdup(path),
        .pos = {.file = ld->cfg->file, .line = k->line, .col = k->col},
    };
}

/* ---- value readers ----------------------------------------------------------------------- */

/* A copy of a scalar as a string, or NULL after reporting why it is not one. Any scalar is a
 * string (port: 6379 is "6379"), but a YAML null is not. */
static char *want_string(struct load *ld, const struct weir_cfgnode *v, const char *path,
                         size_t min_len)
{
    char got[320];
    if (v->kind == WEIR_CFGNODE_BAD)
        return NULL;
    if (v->kind != WEIR_CFGNODE_SCALAR || weir_cfgtree_is_null(v)) {
        err_at(ld, v, "%s must be a string, got %s", path, describe(v, got, sizeof(got)));
        return NULL;
    }
    if (memchr(v->str, '\0', v->len)) {
        err_at(ld, v, "%s must not contain a NUL character", path);
        return NULL;
    }
    if (v->len < min_len) {
        err_at(ld, v, "%s must not be empty", path);
        return NULL;
    }
    return weir_strndup(v->str, v->len);
}

static void set_string(struct load *ld, const struct field *f, const struct weir_cfgnode *v,
                       const char *path, void *obj)
{
    char *s = want_string(ld, v, path, (size_t)f->min);
    if (s)
        *(char **)((char *)obj + f->off) = s;
}

static void set_int(struct load *ld, const struct field *f, const struct weir_cfgnode *v,
                    const char *path, void *obj)
{
    char got[320];
    long long i;
    int max = f->max;
    if (f->max_from_source)
        max = ld->src ? ld->src->max_batch_size : AWS_MAX_BATCH;
    if (v->kind == WEIR_CFGNODE_BAD)
        return;
    if (v->kind == WEIR_CFGNODE_SCALAR && !v->quoted && parse_int(v->str, &i)) {
        if (i < f->min || i > max)
            err_at(ld, v, "%s %s is out of range %d..%d", path, show(v->str, v->len, got, 64),
                   f->min, max);
        else
            *(int *)((char *)obj + f->off) = (int)i;
        return;
    }
    if (v->kind == WEIR_CFGNODE_SCALAR && v->quoted && parse_int(v->str, &i))
        err_at(ld, v, "%s must be an integer, got %s (write it without quotes)", path,
               describe(v, got, sizeof(got)));
    else
        err_at(ld, v, "%s must be an integer, got %s", path, describe(v, got, sizeof(got)));
}

static void set_bool(struct load *ld, const struct field *f, const struct weir_cfgnode *v,
                     const char *path, void *obj)
{
    static const char *const yaml11[] = {"yes", "no", "on", "off", "y", "n"};
    char got[320];
    if (v->kind == WEIR_CFGNODE_BAD)
        return;
    if (v->kind == WEIR_CFGNODE_SCALAR && !v->quoted) {
        if (is_true(v->str) || is_false(v->str)) {
            *(bool *)((char *)obj + f->off) = is_true(v->str);
            return;
        }
        /* YAML 1.1 read these as booleans and YAML 1.2 as strings; either guess would surprise
         * someone, so neither is made. */
        for (size_t i = 0; i < sizeof(yaml11) / sizeof(*yaml11); i++)
            if (!strcasecmp(v->str, yaml11[i])) {
                err_at(ld, v, "%s must be true or false, got '%s': write true or false", path,
                       v->str);
                return;
            }
    }
    err_at(ld, v, "%s must be true or false, got %s", path, describe(v, got, sizeof(got)));
}

static void set_name(struct load *ld, const struct field *f, const struct weir_cfgnode *v,
                     const char *path, void *obj)
{
    char shown[128];
    char *s = want_string(ld, v, path, 1);
    if (!s)
        return;
    size_t len = strlen(s);
    bool ok = len <= MAX_NAME;
    for (size_t i = 0; ok && i < len; i++)
        ok = isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '-';
    if (!ok) {
        err_at(ld, v, "name \"%s\" must be 1..%d characters of A-Z a-z 0-9 _ -",
               show(s, len, shown, sizeof(shown)), MAX_NAME);
        free(s);
        return;
    }
    *(char **)((char *)obj + f->off) = s;
    snprintf(ld->place, sizeof(ld->place), "%s '%s'", ld->kind, s);
}

static void strv_free(char **v);

/* Gives each key of a source its default in settings (strings: none). */
static void settings_defaults(const struct weir_cfg_key *keys, size_t n, void *settings)
{
    for (size_t i = 0; i < n; i++) {
        const struct weir_cfg_key *k = &keys[i];
        char *at = (char *)settings + k->offset;
        if (k->type == WEIR_CFG_INT)
            *(int *)at = k->def;
        else if (k->type == WEIR_CFG_BOOL)
            *(bool *)at = k->def != 0;
        else if (k->type == WEIR_CFG_OBJECT)
            settings_defaults(k->sub, k->n_sub, settings);
    }
}

static void settings_free(const struct weir_cfg_key *keys, size_t n, void *settings)
{
    for (size_t i = 0; i < n; i++) {
        const struct weir_cfg_key *k = &keys[i];
        if (k->type == WEIR_CFG_STRING)
            free(*(char **)((char *)settings + k->offset));
        else if (k->type == WEIR_CFG_STRINGS || k->type == WEIR_CFG_MAP)
            strv_free(*(char ***)((char *)settings + k->offset));
        else if (k->type == WEIR_CFG_OBJECT)
            settings_free(k->sub, k->n_sub, settings);
    }
}

const struct weir_cfg_source *weir_cfg_source_find(const struct weir_cfg_env *env, const char *uri)
{
    const char *sep = strstr(uri, "://");
    if (!sep || !env)
        return NULL;
    size_t n = (size_t)(sep - uri);
    for (size_t i = 0; env->sources[i]; i++) {
        const char *scheme = env->sources[i]->scheme;
        if (strlen(scheme) == n && strncmp(uri, scheme, n) == 0)
            return env->sources[i];
    }
    return NULL;
}

static void set_source(struct load *ld, const struct field *f, const struct weir_cfgnode *v,
                       const char *path, void *obj)
{
    char known[256] = "", safe[256];
    struct weir_mapping_cfg *mc = obj;
    char *s = want_string(ld, v, path, 1);
    if (!s)
        return;
    mc->source = s;
    /* The URI may carry a password: only its scheme, or a redacted copy, goes in a message. */
    const char *sep = strstr(s, "://");
    const struct weir_cfg_source *first = ld->env->sources[0];
    if (!sep || sep == s) {
        weir_log_redact_uri(s, safe, sizeof(safe));
        if (first)
            err_at(ld, v, "source must be a URI scheme://..., e.g. %s; got \"%s\"",
                   first->example_uri, safe);
        else
            err_at(ld, v, "source must be a URI scheme://...; got \"%s\"", safe);
        return;
    }
    ld->src = weir_cfg_source_find(ld->env, s);
    if (ld->src) {
        mc->src = ld->src;
        mc->settings = weir_calloc(1, ld->src->settings_size ? ld->src->settings_size : 1);
        settings_defaults(ld->src->keys, ld->src->n_keys, mc->settings);
        return;
    }
    for (size_t i = 0; ld->env->sources[i]; i++) {
        size_t o = strlen(known);
        snprintf(known + o, sizeof(known) - o, "%s%s://", i ? ", " : "",
                 ld->env->sources[i]->scheme);
    }
    if (known[0])
        err_at(ld, v, "source has an unknown scheme '%.*s'; known schemes: %s", (int)(sep - s), s,
               known);
    else
        err_at(ld, v, "source has an unknown scheme '%.*s'; no sources are known", (int)(sep - s),
               s);
}

static void set_funcref(struct load *ld, const struct field *f, const struct weir_cfgnode *v,
                        const char *path, void *obj)
{
    char shown[128];
    struct weir_mapping_cfg *mc = obj;
    char *s = want_string(ld, v, path, 1);
    if (!s)
        return;
    mc->function = s;
    for (size_t i = 0; i < ld->cfg->n_functions; i++) {
        const struct weir_function_cfg *fc = &ld->cfg->functions[i];
        if (fc->name && !strcmp(fc->name, s)) {
            mc->fn = fc;
            return;
        }
    }
    err_at(ld, v, "no function named '%s'", show(s, strlen(s), shown, sizeof(shown)));
}

/* Reads a sequence of strings into a NULL-terminated array at f->off and its length at
 * f->off_n. Entries that fail are reported and left out. */
static void store_strings(struct load *ld, const struct field *f, const struct weir_cfgnode *v,
                          const char *path, void *obj, bool is_url)
{
    char elem[128], safe[256];
    char **list = weir_calloc(v->n + 1, sizeof(*list));
    size_t n = 0;
    for (size_t i = 0; i < v->n; i++) {
        snprintf(elem, sizeof(elem), "%s[%zu]", path, i);
        const char *name = v->kind == WEIR_CFGNODE_SEQ ? elem : path;
        /* argv[0] names the program; later arguments may well be empty strings. */
        char *s = want_string(ld, v->vals[i], name, is_url || i == 0 ? 1 : 0);
        if (!s)
            continue;
        if (is_url && strncmp(s, "http://", 7) && strncmp(s, "https://", 8)) {
            weir_log_redact_uri(s, safe, sizeof(safe));
            err_at(ld, v->vals[i], "%s must start with http:// or https://, got \"%s\"", name,
                   safe);
            free(s);
            continue;
        }
        list[n++] = s;
    }
    *(char ***)((char *)obj + f->off) = list;
    *(size_t *)((char *)obj + f->off_n) = n;
}

static void set_urls(struct load *ld, const struct field *f, const struct weir_cfgnode *v,
                     const char *path, void *obj)
{
    char got[320];
    if (v->kind == WEIR_CFGNODE_BAD)
        return;
    if (v->kind == WEIR_CFGNODE_SCALAR && !weir_cfgtree_is_null(v)) {
        /* One endpoint written as a string is a pool of one. */
        const struct weir_cfgnode *one[] = {v};
        struct weir_cfgnode seq = {.kind = WEIR_CFGNODE_SCALAR,
                                   .vals = (struct weir_cfgnode **)one,
                                   .n = 1,
                                   .line = v->line,
                                   .col = v->col};
        store_strings(ld, f, &seq, path, obj, true);
        return;
    }
    if (v->kind != WEIR_CFGNODE_SEQ) {
        err_at(ld, v, "%s must be a URL or a sequence of URLs, got %s", path,
               describe(v, got, sizeof(got)));
        return;
    }
    if (v->n == 0) {
        err_at(ld, v, "%s must list at least one URL", path);
        return;
    }
    store_strings(ld, f, v, path, obj, true);
}

static void set_argv(struct load *ld, const struct field *f, const struct weir_cfgnode *v,
                     const char *path, void *obj)
{
    char got[320];
    if (v->kind == WEIR_CFGNODE_BAD)
        return;
    if (v->kind != WEIR_CFGNODE_SEQ) {
        err_at(ld, v,
               "%s must be a sequence of strings (the program, then its arguments; no shell), "
               "got %s",
               path, describe(v, got, sizeof(got)));
        return;
    }
    if (v->n == 0) {
        err_at(ld, v, "%s must name at least the program to run", path);
        return;
    }
    store_strings(ld, f, v, path, obj, false);
}

/* A sequence of strings, each at least f->min long, at most f->max of them (0: any number). */
static void set_strings(struct load *ld, const struct field *f, const struct weir_cfgnode *v,
                        const char *path, void *obj)
{
    char got[320], elem[160];
    if (v->kind == WEIR_CFGNODE_BAD)
        return;
    if (v->kind != WEIR_CFGNODE_SEQ) {
        err_at(ld, v, "%s must be a sequence of strings, got %s", path,
               describe(v, got, sizeof(got)));
        return;
    }
    if (f->max > 0 && v->n > (size_t)f->max) {
        err_at(ld, v, "%s takes at most %d entries, got %zu", path, f->max, v->n);
        return;
    }
    char **list = weir_calloc(v->n + 1, sizeof(*list));
    size_t n = 0;
    for (size_t i = 0; i < v->n; i++) {
        snprintf(elem, sizeof(elem), "%s[%zu]", path, i);
        char *s = want_string(ld, v->vals[i], elem, (size_t)f->min);
        if (s)
            list[n++] = s;
    }
    strv_free(*(char ***)((char *)obj + f->off));
    *(char ***)((char *)obj + f->off) = list;
    *(size_t *)((char *)obj + f->off_n) = n;
}

static void set_response_types(struct load *ld, const struct field *f, const struct weir_cfgnode *v,
                               const char *path, void *obj)
{
    char got[320], elem[128], shown[128];
    if (v->kind == WEIR_CFGNODE_BAD)
        return;
    if (v->kind != WEIR_CFGNODE_SEQ) {
        err_at(ld, v, "%s must be a sequence, e.g. [ReportBatchItemFailures], got %s", path,
               describe(v, got, sizeof(got)));
        return;
    }
    if (v->n > 1)
        err_at(ld, v, "%s takes at most 1 entry, got %zu", path, v->n);
    for (size_t i = 0; i < v->n; i++) {
        snprintf(elem, sizeof(elem), "%s[%zu]", path, i);
        char *s = want_string(ld, v->vals[i], elem, 1);
        if (!s)
            continue;
        if (!strcmp(s, "ReportBatchItemFailures"))
            *(bool *)((char *)obj + f->off) = true;
        else
            err_at(ld, v->vals[i],
                   "%s: unknown value \"%s\"; the only one is "
                   "ReportBatchItemFailures",
                   path, show(s, strlen(s), shown, sizeof(shown)));
        free(s);
    }
}

static void walk(struct load *ld, const struct schema *s, const struct weir_cfgnode *map,
                 const char *prefix, void *obj);

/* A mapping of scalars, kept as written (numbers and booleans as their text): key, value, ... */
static void set_string_map(struct load *ld, const struct field *f, const struct weir_cfgnode *v,
                           const char *path, void *obj)
{
    char got[320], elem[256];
    if (v->kind == WEIR_CFGNODE_BAD || weir_cfgtree_is_null(v))
        return;
    if (v->kind != WEIR_CFGNODE_MAP) {
        err_at(ld, v, "%s must be a mapping of names to values, got %s", path,
               describe(v, got, sizeof(got)));
        return;
    }
    char **pairs = weir_calloc(2 * v->n + 1, sizeof(*pairs));
    size_t n = 0;
    for (size_t i = 0; i < v->n; i++) {
        snprintf(elem, sizeof(elem), "%s.%.*s", path,
                 (int)(v->keys[i]->len < 128 ? v->keys[i]->len : 128), v->keys[i]->str);
        char *value = want_string(ld, v->vals[i], elem, 0);
        if (!value)
            continue;
        pairs[2 * n] = weir_strndup(v->keys[i]->str, v->keys[i]->len);
        pairs[2 * n + 1] = value;
        n++;
    }
    *(char ***)((char *)obj + f->off) = pairs;
    *(size_t *)((char *)obj + f->off_n) = n;
}

static void set_object(struct load *ld, const struct field *f, const struct weir_cfgnode *v,
                       const char *path, void *obj)
{
    char got[320], prefix[128];
    if (v->kind == WEIR_CFGNODE_BAD)
        return;
    if (v->kind != WEIR_CFGNODE_MAP) {
        err_at(ld, v, "%s must be a mapping, got %s", path, describe(v, got, sizeof(got)));
        return;
    }
    snprintf(prefix, sizeof(prefix), "%s.", path);
    walk(ld, f->sub, v, prefix, obj);
}

/* ---- destinations, delays, the API's address ----------------------------------------------- */

static void set_destination(struct load *ld, const struct field *f, const struct weir_cfgnode *v,
                            const char *path, void *obj)
{
    char safe[256], why[WEIR_CFG_WHY_MAX];
    char *s = want_string(ld, v, path, 1);
    if (!s)
        return;
    *(char **)((char *)obj + f->off) = s;
    if (ld->env->check_destination && !ld->env->check_destination(s, why, sizeof(why))) {
        weir_log_redact_uri(s, safe, sizeof(safe));
        err_at(ld, v, "%s \"%s\": %s", path, safe, why);
    }
}

/* A sequence of one or two delays in seconds: the first retry's, then the second's (a single
 * value is used for both). */
static void set_delays(struct load *ld, const struct field *f, const struct weir_cfgnode *v,
                       const char *path, void *obj)
{
    char got[320], elem[160];
    int *delays = (int *)((char *)obj + f->off);
    if (v->kind == WEIR_CFGNODE_BAD)
        return;
    if (v->kind != WEIR_CFGNODE_SEQ || v->n < 1 || v->n > 2) {
        err_at(ld, v,
               "%s must be a sequence of 1 or 2 integers (seconds before the first and "
               "the second retry), got %s",
               path, describe(v, got, sizeof(got)));
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        struct field one = {
            .key = f->key, .min = f->min, .max = f->max, .off = f->off + i * sizeof(int)};
        snprintf(elem, sizeof(elem), "%s[%zu]", path, i);
        set_int(ld, &one, v->vals[i], elem, obj);
    }
    if (v->n == 1)
        delays[1] = delays[0];
}

/* "host:port", "[v6]:port" or ":port" (loopback). */
static void set_listen(struct load *ld, const struct field *f, const struct weir_cfgnode *v,
                       const char *path, void *obj)
{
    struct weir_api_cfg *api = &((struct weir_config *)obj)->api;
    char *s = want_string(ld, v, path, 1);
    if (!s)
        return;
    free(api->listen);
    api->listen = s;
    const char *colon = strrchr(s, ':');
    const char *host = s, *host_end = colon;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':') {
            err_at(ld, v, "%s \"%s\" must be host:port, [ipv6]:port or :port", path, s);
            return;
        }
        host = s + 1;
        host_end = close;
        colon = close + 1;
    }
    long long port;
    if (!colon || !parse_int(colon + 1, &port) || port < 0 || port > 65535) {
        err_at(ld, v, "%s \"%s\" must be host:port with a port 0..65535 (0: any free port)", path,
               s);
        return;
    }
    free(api->host);
    api->host =
        host == host_end ? weir_strdup("127.0.0.1") : weir_strndup(host, (size_t)(host_end - host));
    api->port = (int)port;
}

/* ---- filter_criteria --------------------------------------------------------------------- */

/* Byte offset in the text of the character at (line, col), both 1-based; col counts characters
 * as libyaml does. Returns false when the text has no such place. */
static bool text_index(const struct load *ld, int line, int col, size_t *out)
{
    size_t i = 0;
    for (int l = 1; l < line; l++) {
        const char *nl = memchr(ld->text + i, '\n', ld->text_len - i);
        if (!nl)
            return false;
        i = (size_t)(nl - ld->text) + 1;
    }
    for (int c = 1; c < col; c++) {
        if (i >= ld->text_len || ld->text[i] == '\n')
            return false;
        i++;
        while (i < ld->text_len && ((unsigned char)ld->text[i] & 0xc0) == 0x80)
            i++;
    }
    *out = i;
    return true;
}

/* Where byte `off` of the value of scalar v was written. Told for a quoted scalar on one line
 * (escapes that stand for one character: '' \" \\ \/) and for a literal block (|); for other
 * forms returns false and the caller names the offset instead. */
static bool scalar_pos(const struct load *ld, const struct weir_cfgnode *v, size_t off, int *line,
                       int *col)
{
    size_t i, k = 0;
    if (!ld->text || !text_index(ld, v->line, v->col, &i) || i >= ld->text_len)
        return false;
    const char *t = ld->text;
    char q = t[i];
    *line = v->line;
    *col = v->col;
    if (q == '\'' || q == '"') {
        i++;
        (*col)++;
        while (k < off) {
            if (i >= ld->text_len || t[i] == '\n' || t[i] == '\r')
                return false;
            size_t raw = 1;
            if (q == '\'' && t[i] == '\'') {
                if (i + 1 >= ld->text_len || t[i + 1] != '\'' || v->str[k] != '\'')
                    return false;
                raw = 2;
            } else if (q == '"' && t[i] == '\\') {
                if (i + 1 >= ld->text_len || !t[i + 1] || !strchr("\"\\/", t[i + 1]) ||
                    v->str[k] != t[i + 1])
                    return false;
                raw = 2;
            } else if (t[i] != v->str[k]) {
                return false;
            }
            if (((unsigned char)t[i] & 0xc0) != 0x80)
                (*col)++;
            if (raw == 2)
                (*col)++;
            i += raw;
            k++;
        }
        return true;
    }
    if (q != '|')
        return false;
    /* Chomping indicators are fine; an explicit indentation digit is not followed here. */
    for (i++; i < ld->text_len && t[i] != '\n'; i++)
        if (t[i] != '-' && t[i] != '+' && t[i] != ' ')
            return false;
    size_t indent = 0;
    for (size_t j = i + 1; j < ld->text_len;) {
        size_t sp = 0;
        while (j + sp < ld->text_len && t[j + sp] == ' ')
            sp++;
        if (j + sp < ld->text_len && t[j + sp] != '\n') {
            indent = sp;
            break;
        }
        j += sp + 1;
    }
    if (!indent)
        return false;
    /* i is at the newline ending the indicator line: every value line starts after one. */
    for (;;) {
        if (i >= ld->text_len || t[i] != '\n')
            return false;
        i++;
        (*line)++;
        size_t sp = 0;
        while (sp < indent && i + sp < ld->text_len && t[i + sp] == ' ')
            sp++;
        if (sp == indent) {
            i += sp;
            *col = (int)indent + 1;
        } else {
            *col = 1;
            if (i + sp < ld->text_len && t[i + sp] != '\n')
                return false;
            i += sp;
        }
        while (k < off && v->str[k] != '\n') {
            if (i >= ld->text_len || t[i] != v->str[k] || t[i] == '\r')
                return false;
            if (((unsigned char)t[i] & 0xc0) != 0x80)
                (*col)++;
            i++;
            k++;
        }
        if (k == off)
            return true;
        k++; /* the value's newline: the raw text's end of line */
        while (i < ld->text_len && t[i] != '\n')
            if (t[i++] != ' ')
                return false;
    }
}

static void set_pattern(struct load *ld, const struct field *f, const struct weir_cfgnode *v,
                        const char *path, void *obj)
{
    struct weir_filter_cfg *fc = obj;
    struct weir_cfg_pattern_error ferr;
    char where[256];
    int line, col;
    if (v->kind == WEIR_CFGNODE_MAP || v->kind == WEIR_CFGNODE_SEQ) {
        /* Unquoted JSON in YAML reads as a mapping: AWS's Pattern is a string. */
        err_at(ld, v,
               "%s must be the pattern's JSON text as a string: quote it, e.g. pattern: "
               "'{\"body\": {\"status\": [\"PAID\"]}}'",
               path);
        return;
    }
    char *s = want_string(ld, v, path, 1);
    if (!s)
        return;
    fc->pattern = s;
    fc->pattern_len = v->len;
    /* Without a known source there is nothing to check the pattern against; the unknown
     * source is reported already. */
    if (!ld->src || !ld->env->check_pattern)
        return;
    memset(&ferr, 0, sizeof(ferr));
    if (ld->env->check_pattern(ld->mc, s, v->len, &ferr))
        return;
    bool placed = scalar_pos(ld, v, ferr.offset, &line, &col);
    if (!placed) {
        line = v->line;
        col = v->col;
    }
    if (ferr.path[0] && placed)
        snprintf(where, sizeof(where), "at %s: ", ferr.path);
    else if (ferr.path[0])
        snprintf(where, sizeof(where), "at %s (offset %zu in the pattern): ", ferr.path,
                 ferr.offset);
    else if (!placed)
        snprintf(where, sizeof(where), "at offset %zu in the pattern: ", ferr.offset);
    else
        where[0] = '\0';
    err_line(ld, line, col, true, "%s: %s%s", path, where, ferr.msg);
}

static void walk(struct load *ld, const struct schema *s, const struct weir_cfgnode *map,
                 const char *prefix, void *obj);

static const struct field filter_fields[] = {
    {.key = "pattern", .set = set_pattern, .required = true},
};
static const struct schema filter_schema = {filter_fields,
                                            sizeof(filter_fields) / sizeof(*filter_fields)};

static void set_filters(struct load *ld, const struct field *f, const struct weir_cfgnode *v,
                        const char *path, void *obj)
{
    struct weir_mapping_cfg *mc = obj;
    char got[320], prefix[160];
    if (v->kind == WEIR_CFGNODE_BAD || weir_cfgtree_is_null(v))
        return;
    if (v->kind != WEIR_CFGNODE_SEQ) {
        err_at(ld, v, "%s must be a sequence of {pattern: '...'}, got %s", path,
               describe(v, got, sizeof(got)));
        return;
    }
    if (v->n > MAX_FILTERS) {
        err_at(ld, v,
               "%s has %zu filters; weir takes at most %d (AWS's default quota is %d, raised "
               "quotas allow %d)",
               path, v->n, MAX_FILTERS, AWS_DEFAULT_FILTERS, MAX_FILTERS);
        return;
    }
    mc->filters = weir_calloc(v->n ? v->n : 1, sizeof(*mc->filters));
    for (size_t i = 0; i < v->n; i++) {
        const struct weir_cfgnode *node = v->vals[i];
        struct weir_filter_cfg *fc = &mc->filters[mc->n_filters++];
        fc->pos =
            (struct weir_cfg_pos){.file = ld->cfg->file, .line = node->line, .col = node->col};
        snprintf(prefix, sizeof(prefix), "%s[%zu].", path, i);
        if (node->kind == WEIR_CFGNODE_MAP)
            walk(ld, &filter_schema, node, prefix, fc);
        else if (node->kind != WEIR_CFGNODE_BAD)
            err_at(ld, node, "%s[%zu] must be a mapping {pattern: '...'}, got %s", path, i,
                   describe(node, got, sizeof(got)));
    }
}

static const struct field criteria_fields[] = {
    {.key = "filters", .set = set_filters},
};
static const struct schema criteria_schema = {criteria_fields,
                                              sizeof(criteria_fields) / sizeof(*criteria_fields)};

/* filter_criteria: {filters: [...]}; an empty one (AWS's '{}') means no filtering. */
static void set_filter_criteria(struct load *ld, const struct field *f,
                                const struct weir_cfgnode *v, const char *path, void *obj)
{
    char got[320], prefix[128];
    if (v->kind == WEIR_CFGNODE_BAD || weir_cfgtree_is_null(v))
        return;
    if (v->kind != WEIR_CFGNODE_MAP) {
        err_at(ld, v, "%s must be a mapping {filters: [...]}, got %s", path,
               describe(v, got, sizeof(got)));
        return;
    }
    snprintf(prefix, sizeof(prefix), "%s.", path);
    walk(ld, &criteria_schema, v, prefix, obj);
}

/* ---- the schema -------------------------------------------------------------------------- */

#define FN(m)  offsetof(struct weir_function_cfg, m)
#define MC(m)  offsetof(struct weir_mapping_cfg, m)
#define LEN(a) (sizeof(a) / sizeof(*(a)))
/* An integer key: its offset in the object and its range, inclusive. */
#define INT(k, o, lo, hi)                                                                          \
    {                                                                                              \
        .key = k, .set = set_int, .min = lo, .max = hi, .off = o                                   \
    }

static const struct field on_success_fields[] = {
    {.key = "destination", .set = set_destination, .required = true, .off = FN(async.on_success)},
};
static const struct schema on_success_schema = {on_success_fields, LEN(on_success_fields)};
static const struct field on_failure_fields[] = {
    {.key = "destination", .set = set_destination, .required = true, .off = FN(async.on_failure)},
};
static const struct schema on_failure_schema = {on_failure_fields, LEN(on_failure_fields)};
static const struct field destination_config_fields[] = {
    {.key = "on_success", .set = set_object, .sub = &on_success_schema},
    {.key = "on_failure", .set = set_object, .sub = &on_failure_schema},
};
static const struct schema destination_config_schema = {destination_config_fields,
                                                        LEN(destination_config_fields)};
static const struct field async_fields[] = {
    INT("maximum_retry_attempts", FN(async.maximum_retry_attempts), 0, 2),
    INT("maximum_event_age_in_seconds", FN(async.maximum_event_age_in_seconds), 60, 21600),
    {.key = "retry_delays_in_seconds",
     .set = set_delays,
     .min = 0,
     .max = 3600,
     .off = FN(async.retry_delays_in_seconds)},
    {.key = "destination_config", .set = set_object, .sub = &destination_config_schema},
};
static const struct schema async_schema = {async_fields, LEN(async_fields)};
static const struct field dead_letter_fields[] = {
    {.key = "target_arn", .set = set_destination, .required = true, .off = FN(dead_letter_target)},
};
static const struct schema dead_letter_schema = {dead_letter_fields, LEN(dead_letter_fields)};

static const struct field function_fields[] = {
    {.key = "name", .set = set_name, .required = true, .off = FN(name)},
    {.key = "url", .set = set_urls, .off = FN(urls), .off_n = FN(n_urls)},
    {.key = "command", .set = set_argv, .off = FN(command), .off_n = FN(n_command)},
    INT("timeout", FN(timeout), 1, 900),
    INT("reserved_concurrency", FN(reserved_concurrency), 0, 1000),
    {.key = "single_flight", .set = set_bool, .off = FN(single_flight)},
    {.key = "async", .set = set_object, .sub = &async_schema},
    {.key = "dead_letter_config", .set = set_object, .sub = &dead_letter_schema},
};
static const struct schema function_schema = {function_fields, LEN(function_fields)};

/* The stream keys (reference 1.4), read for sources whose row says they are streams. */
static const struct field stream_on_failure_fields[] = {
    {.key = "destination", .set = set_destination, .required = true, .off = MC(stream.on_failure)},
};
static const struct schema stream_on_failure_schema = {stream_on_failure_fields,
                                                       LEN(stream_on_failure_fields)};
static const struct field stream_destination_fields[] = {
    {.key = "on_failure", .set = set_object, .sub = &stream_on_failure_schema},
};
static const struct schema stream_destination_schema = {stream_destination_fields,
                                                        LEN(stream_destination_fields)};
static const struct field stream_fields[] = {
    INT("maximum_retry_attempts", MC(stream.maximum_retry_attempts), -1, 10000),
    INT("maximum_record_age_in_seconds", MC(stream.maximum_record_age_in_seconds), -1, 604800),
    {.key = "bisect_batch_on_function_error",
     .set = set_bool,
     .off = MC(stream.bisect_batch_on_function_error)},
    INT("parallelization_factor", MC(stream.parallelization_factor), 1, 10),
    {.key = "destination_config", .set = set_object, .sub = &stream_destination_schema},
};
static const struct schema stream_schema = {stream_fields, LEN(stream_fields)};

static const struct field scaling_fields[] = {
    INT("maximum_concurrency", MC(maximum_concurrency), 2, 1000),
};
static const struct schema scaling_schema = {scaling_fields, LEN(scaling_fields)};

/* Order matters: source before batch_size (its bound comes from the source) and before
 * filter_criteria (patterns are checked for its records), and the top-level functions before
 * mappings (a mapping's function is looked up as it is read). The source's own keys are read
 * after these (its row's table). */
static const struct field mapping_fields[] = {
    {.key = "name", .set = set_name, .required = true, .off = MC(name)},
    {.key = "source", .set = set_source, .required = true},
    {.key = "function", .set = set_funcref, .required = true},
    {.key = "batch_size",
     .set = set_int,
     .min = 1,
     .max = AWS_MAX_BATCH,
     .max_from_source = true,
     .off = MC(batch_size)},
    INT("maximum_batching_window_in_seconds", MC(maximum_batching_window_in_seconds), 0, 300),
    {.key = "function_response_types",
     .set = set_response_types,
     .off = MC(report_batch_item_failures)},
    {.key = "scaling_config", .set = set_object, .sub = &scaling_schema},
    {.key = "enabled", .set = set_bool, .off = MC(enabled)},
    INT("maximum_buffered_mib", MC(maximum_buffered_mib), 1, 1048576),
};
static const struct schema mapping_schema = {mapping_fields, LEN(mapping_fields)};
/* Read after the source's own keys: patterns are checked against the event format the mapping
 * chose (a Kafka mapping's event_format). */
static const struct field criteria_key_fields[] = {
    {.key = "filter_criteria", .set = set_filter_criteria},
};
static const struct schema criteria_key_schema = {criteria_key_fields, LEN(criteria_key_fields)};

static void set_functions(struct load *ld, const struct field *f, const struct weir_cfgnode *v,
                          const char *path, void *obj);
static void set_mappings(struct load *ld, const struct field *f, const struct weir_cfgnode *v,
                         const char *path, void *obj);

static void set_api(struct load *ld, const struct field *f, const struct weir_cfgnode *v,
                    const char *path, void *obj);

static const struct field api_fields[] = {
    {.key = "listen", .set = set_listen},
};
static const struct schema api_schema = {api_fields, LEN(api_fields)};

static const struct field root_fields[] = {
    {.key = "region", .set = set_string, .min = 1, .off = offsetof(struct weir_config, region)},
    {.key = "state_dir",
     .set = set_string,
     .min = 1,
     .off = offsetof(struct weir_config, state_dir)},
    {.key = "api", .set = set_api},
    {.key = "functions", .set = set_functions, .required = true},
    {.key = "mappings", .set = set_mappings},
};
static const struct schema root_schema = {root_fields, LEN(root_fields)};

/* `api:` turns the Invoke API on; `api: {}` or an empty `api:` takes the default address. */
static void set_api(struct load *ld, const struct field *f, const struct weir_cfgnode *v,
                    const char *path, void *obj)
{
    char got[320];
    struct weir_config *cfg = obj;
    if (v->kind == WEIR_CFGNODE_BAD)
        return;
    cfg->api.enabled = true;
    if (weir_cfgtree_is_null(v))
        return;
    if (v->kind != WEIR_CFGNODE_MAP) {
        err_at(ld, v, "%s must be a mapping ({listen: \"127.0.0.1:9070\"}), got %s", path,
               describe(v, got, sizeof(got)));
        return;
    }
    walk(ld, &api_schema, v, "api.", obj);
}

/* ---- the walk ---------------------------------------------------------------------------- */

/* Optimal string alignment distance (an adjacent swap costs 1), for "did you mean". */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t d[MAX_NAME + 1][MAX_NAME + 1];
    if (la > MAX_NAME || lb > MAX_NAME)
        return (size_t)-1;
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = d[i - 1][j - 1] + cost;
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 &&
                tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == tolower((unsigned char)b[j - 1]) &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

/* Lower case without separators, so AWS's MaximumBatchingWindowInSeconds matches too. */
static void squash(const char *s, char *out, size_t out_len)
{
    size_t o = 0;
    for (; *s && o + 1 < out_len; s++)
        if (*s != '_' && *s != '-')
            out[o++] = (char)tolower((unsigned char)*s);
    out[o] = '\0';
}

/* The known key closest to key (AWS's CamelCase spelling included), or NULL. */
static const char *suggest(const struct schema *const *schemas, size_t n_schemas, const char *key)
{
    char a[128], b[128];
    const char *best = NULL;
    size_t best_d = 3;
    squash(key, a, sizeof(a));
    for (size_t k = 0; k < n_schemas; k++) {
        const struct schema *s = schemas[k];
        for (size_t i = 0; s && i < s->n; i++) {
            squash(s->fields[i].key, b, sizeof(b));
            size_t d = strcmp(a, b) ? distance(key, s->fields[i].key) : 0;
            if (d < best_d) {
                best_d = d;
                best = s->fields[i].key;
            }
        }
    }
    return best;
}

/* The first source (other than the current one) that has a top-level key named k, or NULL. */
static const struct weir_cfg_source *source_with_key(const struct load *ld,
                                                     const struct weir_cfgnode *k)
{
    for (size_t i = 0; ld->env->sources[i]; i++) {
        const struct weir_cfg_source *src = ld->env->sources[i];
        if (src == ld->src)
            continue;
        for (size_t j = 0; j < src->n_keys; j++)
            if (strlen(src->keys[j].name) == k->len && !memcmp(src->keys[j].name, k->str, k->len))
                return src;
    }
    return NULL;
}

static bool schema_has(const struct schema *s, const struct weir_cfgnode *k)
{
    for (size_t i = 0; i < s->n; i++)
        if (strlen(s->fields[i].key) == k->len && !memcmp(s->fields[i].key, k->str, k->len))
            return true;
    return false;
}

static void report_unknown(struct load *ld, const struct schema *const *schemas, size_t n_schemas,
                           const struct weir_cfgnode *k, const char *prefix)
{
    char shown[128], where[192];
    const char *hint = suggest(schemas, n_schemas, k->str);
    size_t plen = strlen(prefix);
    if (plen && ld->place[0])
        snprintf(where, sizeof(where), "in %.*s of %s", (int)(plen - 1), prefix, ld->place);
    else if (plen)
        snprintf(where, sizeof(where), "in %.*s", (int)(plen - 1), prefix);
    else if (ld->place[0])
        snprintf(where, sizeof(where), "in %s", ld->place);
    else
        snprintf(where, sizeof(where), "at the top level");
    show(k->str, k->len, shown, sizeof(shown));
    const struct weir_cfg_source *other =
        ld->kind && !strcmp(ld->kind, "mapping") && !plen ? source_with_key(ld, k) : NULL;
    if (ld->src && !ld->src->stream && ld->kind && !strcmp(ld->kind, "mapping") && !plen &&
        schema_has(&stream_schema, k))
        err_line(ld, k->line, k->col, false,
                 "key '%s' %s applies only to stream sources (Kafka, Postgres; reference 1.4), "
                 "and this mapping's source is %s://",
                 shown, where, ld->src->scheme);
    else if (other && ld->src)
        err_line(ld, k->line, k->col, false,
                 "unknown key '%s' %s: it is a key of %s:// sources, and this mapping's source "
                 "is %s://",
                 shown, where, other->scheme, ld->src->scheme);
    else if (hint)
        err_line(ld, k->line, k->col, false, "unknown key '%s' %s; did you mean '%s'?", shown,
                 where, hint);
    else
        err_line(ld, k->line, k->col, false, "unknown key '%s' %s", shown, where);
}

/* Reads the keys of map that schema s knows into obj, its fields in the table's order whatever
 * the file's order (see mapping_fields), and marks each key read in claimed[] (map->n long). */
static void walk_fields(struct load *ld, const struct schema *s, const struct weir_cfgnode *map,
                        const char *prefix, void *obj, bool *claimed)
{
    char path[256];
    for (size_t j = 0; j < s->n; j++) {
        const struct field *f = &s->fields[j];
        const struct weir_cfgnode *val = NULL;
        snprintf(path, sizeof(path), "%s%s", prefix, f->key);
        for (size_t i = 0; i < map->n && !val; i++) {
            const struct weir_cfgnode *k = map->keys[i];
            if (strlen(f->key) == k->len && !memcmp(f->key, k->str, k->len)) {
                val = map->vals[i];
                claimed[i] = true;
                keypos_add(ld, path, k);
            }
        }
        if (val)
            f->set(ld, f, val, path, obj);
        else if (f->required)
            err_at(ld, map, "missing required key '%s'", path);
    }
}

/* Reports every key of map no schema claimed. Last, so messages can use the object's name. */
static void report_unclaimed(struct load *ld, const struct schema *const *schemas, size_t n_schemas,
                             const struct weir_cfgnode *map, const char *prefix,
                             const bool *claimed)
{
    for (size_t i = 0; i < map->n; i++)
        if (!claimed[i])
            report_unknown(ld, schemas, n_schemas, map->keys[i], prefix);
}

/* Reads one mapping node into obj through schema s. */
static void walk(struct load *ld, const struct schema *s, const struct weir_cfgnode *map,
                 const char *prefix, void *obj)
{
    bool *claimed = weir_calloc(map->n ? map->n : 1, sizeof(*claimed));
    walk_fields(ld, s, map, prefix, obj, claimed);
    report_unclaimed(ld, &s, 1, map, prefix, claimed);
    free(claimed);
}

/* ---- a source's keys as a schema --------------------------------------------------------- */

/* A source's key table turned into the walk's fields, once per load. */
struct source_schema {
    const struct weir_cfg_key *keys; /* what it was built from */
    struct schema schema;
    struct source_schema *subs; /* its OBJECT keys' schemas, in key order */
    size_t n_subs;
    struct weir_list link; /* in the load's list (top-level ones only) */
};

static void set_string(struct load *ld, const struct field *f, const struct weir_cfgnode *v,
                       const char *path, void *obj);
static void set_strings(struct load *ld, const struct field *f, const struct weir_cfgnode *v,
                        const char *path, void *obj);
static void set_int(struct load *ld, const struct field *f, const struct weir_cfgnode *v,
                    const char *path, void *obj);
static void set_bool(struct load *ld, const struct field *f, const struct weir_cfgnode *v,
                     const char *path, void *obj);
static void set_object(struct load *ld, const struct field *f, const struct weir_cfgnode *v,
                       const char *path, void *obj);

static void source_schema_build(struct source_schema *ss, const struct weir_cfg_key *keys, size_t n)
{
    struct field *fields = weir_calloc(n ? n : 1, sizeof(*fields));
    size_t n_obj = 0;
    for (size_t i = 0; i < n; i++)
        n_obj += keys[i].type == WEIR_CFG_OBJECT;
    ss->keys = keys;
    ss->subs = n_obj ? weir_calloc(n_obj, sizeof(*ss->subs)) : NULL;
    for (size_t i = 0; i < n; i++) {
        const struct weir_cfg_key *k = &keys[i];
        struct field *f = &fields[i];
        f->key = k->name;
        f->off = k->offset;
        f->min = k->min;
        f->max = k->max;
        switch (k->type) {
        case WEIR_CFG_INT:
            f->set = set_int;
            break;
        case WEIR_CFG_BOOL:
            f->set = set_bool;
            break;
        case WEIR_CFG_STRING:
            f->set = set_string;
            break;
        case WEIR_CFG_STRINGS:
            f->set = set_strings;
            f->off_n = k->offset_n;
            break;
        case WEIR_CFG_MAP:
            f->set = set_string_map;
            f->off_n = k->offset_n;
            break;
        case WEIR_CFG_OBJECT: {
            struct source_schema *sub = &ss->subs[ss->n_subs++];
            source_schema_build(sub, k->sub, k->n_sub);
            f->set = set_object;
            f->sub = &sub->schema;
            break;
        }
        }
    }
    ss->schema.fields = fields;
    ss->schema.n = n;
}

static void source_schema_deinit(struct source_schema *ss)
{
    for (size_t i = 0; i < ss->n_subs; i++)
        source_schema_deinit(&ss->subs[i]);
    free(ss->subs);
    free((void *)ss->schema.fields);
}

/* The schema of src's own keys, built on first use. */
static const struct schema *source_schema_of(struct load *ld, const struct weir_cfg_source *src)
{
    struct weir_list *node, *tmp;
    weir_list_foreach_safe(node, tmp, &ld->schemas)
    {
        struct source_schema *ss = weir_list_entry(node, struct source_schema, link);
        if (ss->keys == src->keys)
            return &ss->schema;
    }
    struct source_schema *ss = weir_calloc(1, sizeof(*ss));
    source_schema_build(ss, src->keys, src->n_keys);
    weir_list_push_back(&ld->schemas, &ss->link);
    return &ss->schema;
}

static void source_schemas_free(struct load *ld)
{
    struct weir_list *node;
    while ((node = weir_list_pop_front(&ld->schemas))) {
        struct source_schema *ss = weir_list_entry(node, struct source_schema, link);
        source_schema_deinit(ss);
        free(ss);
    }
}

static void function_check(struct load *ld, const struct weir_function_cfg *fc)
{
    const struct weir_cfg_keypos *url = keypos_find(fc->keys, fc->n_keys, "url");
    const struct weir_cfg_keypos *cmd = keypos_find(fc->keys, fc->n_keys, "command");
    if (url && cmd) {
        struct weir_cfg_pos later =
            url->pos.line > cmd->pos.line ||
                    (url->pos.line == cmd->pos.line && url->pos.col > cmd->pos.col)
                ? url->pos
                : cmd->pos;
        err_pos(ld, later, "give either url or command, not both");
    } else if (!url && !cmd) {
        err_pos(ld, fc->pos, "needs url (HTTP endpoints) or command (a local program to run)");
    }
}

static void set_functions(struct load *ld, const struct field *f, const struct weir_cfgnode *v,
                          const char *path, void *obj)
{
    char got[320];
    struct weir_config *cfg = ld->cfg;
    if (v->kind == WEIR_CFGNODE_BAD)
        return;
    if (v->kind != WEIR_CFGNODE_SEQ) {
        err_at(ld, v, "%s must be a sequence of functions, got %s", path,
               describe(v, got, sizeof(got)));
        return;
    }
    if (v->n == 0) {
        err_at(ld, v, "%s must list at least one function", path);
        return;
    }
    cfg->functions = weir_calloc(v->n, sizeof(*cfg->functions));
    cfg->n_functions = v->n;
    ld->fn_bad = weir_calloc(v->n, sizeof(*ld->fn_bad));
    for (size_t i = 0; i < v->n; i++) {
        struct weir_function_cfg *fc = &cfg->functions[i];
        const struct weir_cfgnode *node = v->vals[i];
        size_t errors = ld->rep->n;
        fc->timeout = 3;
        fc->reserved_concurrency = -1;
        fc->async.maximum_retry_attempts = 2;
        fc->async.maximum_event_age_in_seconds = 21600;
        fc->async.retry_delays_in_seconds[0] = 60;
        fc->async.retry_delays_in_seconds[1] = 120;
        fc->pos = (struct weir_cfg_pos){.file = cfg->file, .line = node->line, .col = node->col};
        ld->kind = "function";
        snprintf(ld->place, sizeof(ld->place), "function #%zu", i + 1);
        if (node->kind == WEIR_CFGNODE_MAP) {
            ld->keys = &fc->keys;
            ld->n_keys = &fc->n_keys;
            walk(ld, &function_schema, node, "", fc);
            function_check(ld, fc);
            ld->keys = NULL;
            ld->n_keys = NULL;
        } else if (node->kind != WEIR_CFGNODE_BAD) {
            err_at(ld, node, "must be a mapping (name: ..., url: ...), got %s",
                   describe(node, got, sizeof(got)));
        }
        for (size_t j = 0; j < i && fc->name; j++)
            if (cfg->functions[j].name && !strcmp(cfg->functions[j].name, fc->name)) {
                err_pos(ld, weir_function_cfg_pos(fc, "name"),
                        "duplicate function name (first defined at line %d)",
                        cfg->functions[j].pos.line);
                break;
            }
        ld->fn_bad[i] = ld->rep->n != errors;
        ld->place[0] = '\0';
        ld->kind = NULL;
    }
}

/* Whether an error from index `from` on was reported at pos. */
static bool reported_at(const struct load *ld, size_t from, struct weir_cfg_pos pos)
{
    char head[64];
    int n = snprintf(head, sizeof(head), ":%d:%d: ", pos.line, pos.col);
    size_t flen = strlen(ld->cfg->file);
    for (size_t i = from; i < ld->rep->n; i++)
        if (!strncmp(ld->rep->errors[i] + flen, head, (size_t)n))
            return true;
    return false;
}

/* A mapping: every mapping's keys, then those of its source (known once `source` is read). */
static void walk_mapping(struct load *ld, const struct weir_cfgnode *map,
                         struct weir_mapping_cfg *mc)
{
    bool *claimed = weir_calloc(map->n ? map->n : 1, sizeof(*claimed));
    const struct schema *schemas[4] = {&mapping_schema, &criteria_key_schema, NULL, NULL};
    size_t n_schemas = 2;
    walk_fields(ld, &mapping_schema, map, "", mc, claimed);
    if (ld->src && ld->src->stream) {
        schemas[n_schemas++] = &stream_schema;
        walk_fields(ld, &stream_schema, map, "", mc, claimed);
    }
    if (ld->src) {
        schemas[n_schemas] = source_schema_of(ld, ld->src);
        walk_fields(ld, schemas[n_schemas++], map, "", mc->settings, claimed);
    }
    walk_fields(ld, &criteria_key_schema, map, "", mc, claimed);
    report_unclaimed(ld, schemas, n_schemas, map, "", claimed);
    free(claimed);
}

/* A mapping whose source claims something for it alone (a replication slot, a consumer group)
 * must not claim what an earlier mapping of the same source did: two readers of one slot would
 * leave one waiting forever, two mappings in one consumer group would each get part of the
 * partitions (AWS wants a Kafka mapping's group unique). Only mappings that checked cleanly are
 * compared: a default standing in for a bad value claims nothing. */
static void claim_check(struct load *ld, const struct weir_mapping_cfg *mc)
{
    const struct weir_cfg_source *p = mc->src;
    char mine[512];
    const char *key = NULL;
    if (!p || !p->claim || !mc->name || !p->claim(mc, mine, sizeof(mine), &key))
        return;
    for (const struct weir_mapping_cfg *o = ld->cfg->mappings; o < mc; o++) {
        const char *theirs = ld->claims[o - ld->cfg->mappings];
        if (!theirs || o->src != p || strcmp(mine, theirs) != 0)
            continue;
        err_pos(ld,
                weir_mapping_cfg_has(mc, key) ? weir_mapping_cfg_pos(mc, key)
                                              : weir_mapping_cfg_pos(mc, "source"),
                "%s is already used by mapping '%s' (line %d); each mapping needs its own: "
                "set another %s",
                mine, o->name, o->pos.line, key);
        return;
    }
    ld->claims[mc - ld->cfg->mappings] = weir_strdup(mine);
}

static void mapping_check(struct load *ld, struct weir_mapping_cfg *mc, bool bad)
{
    const struct weir_cfg_source *p = ld->src;
    if (mc->batch_size == 0)
        mc->batch_size = p ? p->default_batch_size : 10;
    if (mc->maximum_batching_window_in_seconds < 0) {
        mc->batching_window_ms = p ? p->default_window_ms : 0;
        mc->maximum_batching_window_in_seconds = mc->batching_window_ms / 1000;
    } else {
        mc->batching_window_ms = mc->maximum_batching_window_in_seconds * 1000;
    }
    /* Rules across fields run only when every field read cleanly: otherwise a default standing
     * in for a bad value would be blamed for a second, misleading error. */
    if (bad)
        return;
    /* The source's rules first: when one of them refuses batch_size (a FIFO queue takes at most
     * 10), advice to add a batching window for a larger one would only mislead. */
    size_t before = ld->rep->n;
    if (mc->fn && p && p->validate && !ld->fn_bad[mc->fn - ld->cfg->functions])
        p->validate(mc, ld->rep);
    if (ld->rep->n == before)
        claim_check(ld, mc);
    if (mc->stream.maximum_record_age_in_seconds >= 0 &&
        mc->stream.maximum_record_age_in_seconds < 60)
        err_pos(ld, weir_mapping_cfg_pos(mc, "maximum_record_age_in_seconds"),
                "maximum_record_age_in_seconds %d: AWS takes -1 (records never age out) or "
                "60..604800",
                mc->stream.maximum_record_age_in_seconds);
    /* AWS documents the rule for streams too, but its own stream defaults (Kinesis and DynamoDB:
     * batch 100, no window) break it, and the API enforces it only for SQS. */
    if (mc->batch_size > 10 && mc->batching_window_ms < 1000 && !(p && p->stream) &&
        !reported_at(ld, before, weir_mapping_cfg_pos(mc, "batch_size")))
        err_pos(ld, weir_mapping_cfg_pos(mc, "batch_size"),
                "batch_size %d needs maximum_batching_window_in_seconds >= 1 (AWS allows "
                "batches above 10 only with a batching window)",
                mc->batch_size);
}

static void set_mappings(struct load *ld, const struct field *f, const struct weir_cfgnode *v,
                         const char *path, void *obj)
{
    char got[320];
    struct weir_config *cfg = ld->cfg;
    if (v->kind == WEIR_CFGNODE_BAD || weir_cfgtree_is_null(v))
        return; /* `mappings:` with every entry commented out: none, as when absent */
    if (v->kind != WEIR_CFGNODE_SEQ) {
        err_at(ld, v, "%s must be a sequence of mappings, got %s", path,
               describe(v, got, sizeof(got)));
        return;
    }
    cfg->mappings = weir_calloc(v->n, sizeof(*cfg->mappings));
    cfg->n_mappings = v->n;
    ld->claims = weir_calloc(v->n, sizeof(*ld->claims));
    for (size_t i = 0; i < v->n; i++) {
        struct weir_mapping_cfg *mc = &cfg->mappings[i];
        const struct weir_cfgnode *node = v->vals[i];
        size_t errors = ld->rep->n;
        mc->enabled = true;
        mc->maximum_buffered_mib = DEFAULT_BUFFERED_MIB;
        mc->maximum_batching_window_in_seconds = -1;
        mc->stream.maximum_retry_attempts = -1;
        mc->stream.maximum_record_age_in_seconds = -1;
        mc->stream.parallelization_factor = 1;
        ld->mc = mc;
        mc->pos = (struct weir_cfg_pos){.file = cfg->file, .line = node->line, .col = node->col};
        ld->kind = "mapping";
        ld->src = NULL;
        snprintf(ld->place, sizeof(ld->place), "mapping #%zu", i + 1);
        if (node->kind == WEIR_CFGNODE_MAP) {
            ld->keys = &mc->keys;
            ld->n_keys = &mc->n_keys;
            walk_mapping(ld, node, mc);
            ld->keys = NULL;
            ld->n_keys = NULL;
        } else if (node->kind != WEIR_CFGNODE_BAD) {
            err_at(ld, node, "must be a mapping (name: ..., source: ..., function: ...), got %s",
                   describe(node, got, sizeof(got)));
        }
        for (size_t j = 0; j < i && mc->name; j++)
            if (cfg->mappings[j].name && !strcmp(cfg->mappings[j].name, mc->name)) {
                err_pos(ld, weir_mapping_cfg_pos(mc, "name"),
                        "duplicate mapping name (first defined at line %d)",
                        cfg->mappings[j].pos.line);
                break;
            }
        mapping_check(ld, mc, ld->rep->n != errors || node->kind != WEIR_CFGNODE_MAP);
        ld->place[0] = '\0';
        ld->kind = NULL;
        ld->src = NULL;
    }
}

/* ---- loading and freeing ----------------------------------------------------------------- */

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static void keys_free(struct weir_cfg_keypos *keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(keys[i].key);
    free(keys);
}

void weir_config_free(struct weir_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_functions; i++) {
        struct weir_function_cfg *fc = &cfg->functions[i];
        free(fc->name);
        strv_free(fc->urls);
        strv_free(fc->command);
        free(fc->async.on_success);
        free(fc->async.on_failure);
        free(fc->dead_letter_target);
        keys_free(fc->keys, fc->n_keys);
    }
    free(cfg->functions);
    for (size_t i = 0; i < cfg->n_mappings; i++) {
        struct weir_mapping_cfg *mc = &cfg->mappings[i];
        free(mc->name);
        free(mc->source);
        free(mc->function);
        if (mc->src && mc->settings)
            settings_free(mc->src->keys, mc->src->n_keys, mc->settings);
        free(mc->settings);
        for (size_t j = 0; j < mc->n_filters; j++)
            free(mc->filters[j].pattern);
        free(mc->filters);
        free(mc->stream.on_failure);
        keys_free(mc->keys, mc->n_keys);
    }
    free(cfg->mappings);
    free(cfg->region);
    free(cfg->state_dir);
    free(cfg->api.listen);
    free(cfg->api.host);
    free(cfg->file);
    free(cfg);
}

struct weir_config *weir_config_load_buffer(const char *name, const char *text, size_t len,
                                            const struct weir_cfg_env *env,
                                            struct weir_cfg_report *rep)
{
    struct weir_cfg_report found;
    struct weir_config *cfg = weir_calloc(1, sizeof(*cfg));
    cfg->file = weir_strdup(name);
    weir_cfg_report_init(&found);

    struct weir_cfgnode *root = weir_cfgtree_parse(cfg->file, text, len, &found);
    if (root) {
        static const struct weir_cfg_source *const no_sources[] = {NULL};
        static const struct weir_cfg_env no_env = {.sources = no_sources};
        struct load ld = {
            .cfg = cfg, .rep = &found, .env = env ? env : &no_env, .text = text, .text_len = len};
        weir_list_init(&ld.schemas);
        walk(&ld, &root_schema, root, "", cfg);
        free(ld.fn_bad);
        for (size_t i = 0; ld.claims && i < cfg->n_mappings; i++)
            free(ld.claims[i]);
        free(ld.claims);
        source_schemas_free(&ld);
        if (!cfg->region)
            cfg->region = weir_strdup("us-east-1");
        if (!cfg->state_dir)
            cfg->state_dir = weir_strdup(DEFAULT_STATE_DIR);
        if (cfg->api.enabled && !cfg->api.listen) {
            cfg->api.listen = weir_strdup(DEFAULT_API_LISTEN);
            cfg->api.host = weir_strdup("127.0.0.1");
            cfg->api.port = DEFAULT_API_PORT;
        }
    }
    weir_cfgtree_free(root);

    bool ok = found.n == 0;
    report_move_sorted(rep, &found, cfg->file);
    if (!ok) {
        weir_config_free(cfg);
        return NULL;
    }
    return cfg;
}

struct weir_config *weir_config_load_file(const char *path, const struct weir_cfg_env *env,
                                          struct weir_cfg_report *rep)
{
    struct weir_cfg_pos whole = {.file = path, .line = 0, .col = 0};
    struct weir_config *cfg = NULL;
    size_t len = 0, cap = 4096;
    char *text = weir_malloc(cap);
    FILE *f = fopen(path, "rb");
    if (!f)
        goto unreadable;
    for (;;) {
        if (len == cap) {
            if (cap >= MAX_FILE_BYTES) {
                weir_cfg_report_add(rep, whole, "larger than %u MiB; is this the configuration?",
                                    MAX_FILE_BYTES >> 20);
                goto done;
            }
            cap *= 2;
            text = weir_realloc(text, cap);
        }
        size_t got = fread(text + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f))
                goto unreadable;
            break;
        }
    }
    cfg = weir_config_load_buffer(path, text, len, env, rep);
    goto done;

unreadable:
    weir_cfg_report_add(rep, whole, "cannot read: %s", strerror(errno));
done:
    if (f)
        fclose(f);
    free(text);
    return cfg;
}
