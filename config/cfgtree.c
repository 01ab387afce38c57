/* Turns configuration text into a tree of positioned nodes with libyaml's event parser, which
 * reads JSON as YAML flow style, so both formats share one parser and one set of positions.
 * Owns the YAML subset weir accepts (no anchors, aliases, tags, duplicate keys or extra
 * documents); must never know the schema: which keys exist is config.c's business. */
#include "config/cfgtree.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/mem.h"

/* Bounds the tree's depth so that freeing and walking it may recurse; weir's schema is three
 * levels deep, anything near this is a mistake or an attack. */
#define MAX_DEPTH 64

struct frame {
    struct weir_cfgnode *node;
    bool want_value;          /* maps: the next child is the value of the pending key */
    struct weir_cfgnode *key; /* maps: the pending key; NULL when its value is to be dropped */
};

struct builder {
    const char *file;
    struct weir_cfg_report *rep;
    struct frame stack[MAX_DEPTH];
    int depth;
    struct weir_cfgnode *root;
};

static void err_at(struct builder *bd, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void err_at(struct builder *bd, int line, int col, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct weir_cfg_pos pos = {.file = bd->file, .line = line, .col = col};
    weir_cfg_report_add(bd->rep, pos, "%s", msg);
}

static struct weir_cfgnode *node_new(enum weir_cfgnode_kind kind, yaml_mark_t mark)
{
    struct weir_cfgnode *node = weir_calloc(1, sizeof(*node));
    node->kind = kind;
    node->line = (int)mark.line + 1;
    node->col = (int)mark.column + 1;
    return node;
}

void weir_cfgtree_free(struct weir_cfgnode *node)
{
    if (!node)
        return;
    for (size_t i = 0; i < node->n; i++) {
        if (node->keys)
            weir_cfgtree_free(node->keys[i]);
        weir_cfgtree_free(node->vals[i]);
    }
    free(node->keys);
    free(node->vals);
    free(node->str);
    free(node);
}

bool weir_cfgtree_is_null(const struct weir_cfgnode *node)
{
    if (node->kind != WEIR_CFGNODE_SCALAR || node->quoted)
        return false;
    const char *s = node->str;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static void append(struct weir_cfgnode *parent, struct weir_cfgnode *key, struct weir_cfgnode *val)
{
    parent->vals = weir_realloc(parent->vals, (parent->n + 1) * sizeof(*parent->vals));
    if (parent->kind == WEIR_CFGNODE_MAP) {
        parent->keys = weir_realloc(parent->keys, (parent->n + 1) * sizeof(*parent->keys));
        parent->keys[parent->n] = key;
    }
    parent->vals[parent->n++] = val;
}

/* Attaches a finished node to the collection being built, or makes it the document's root. */
static void add_child(struct builder *bd, struct weir_cfgnode *child)
{
    if (bd->depth == 0) {
        bd->root = child;
        return;
    }
    struct frame *f = &bd->stack[bd->depth - 1];
    if (f->node->kind == WEIR_CFGNODE_SEQ) {
        append(f->node, NULL, child);
        return;
    }
    if (f->want_value) {
        f->want_value = false;
        if (f->key)
            append(f->node, f->key, child);
        else
            weir_cfgtree_free(child);
        f->key = NULL;
        return;
    }
    f->want_value = true;
    f->key = NULL;
    if (child->kind == WEIR_CFGNODE_BAD) {
        weir_cfgtree_free(child);
        return;
    }
    if (child->kind != WEIR_CFGNODE_SCALAR) {
        err_at(bd, child->line, child->col, "a key must be a plain name, not a %s",
               child->kind == WEIR_CFGNODE_MAP ? "mapping" : "sequence");
        weir_cfgtree_free(child);
        return;
    }
    for (size_t i = 0; i < f->node->n; i++) {
        const struct weir_cfgnode *k = f->node->keys[i];
        if (k->len == child->len && !memcmp(k->str, child->str, k->len)) {
            err_at(bd, child->line, child->col, "duplicate key '%s' (first written at line %d)",
                   child->str, k->line);
            weir_cfgtree_free(child);
            return;
        }
    }
    f->key = child;
}

/* Anchors and aliases would let one value appear in two places with one position; a config
 * short enough to read does not need them, and refusing them keeps every error pointable. */
static void check_props(struct builder *bd, const yaml_event_t *ev, const yaml_char_t *anchor,
                        const yaml_char_t *tag)
{
    int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
    if (anchor)
        err_at(bd, line, col, "anchors (&%s) are not supported: write the value out",
               (const char *)anchor);
    if (tag)
        err_at(bd, line, col, "tags (%s) are not supported: quote a value to make it a string",
               (const char *)tag);
}

static void report_syntax(struct builder *bd, const yaml_parser_t *parser, const char *text,
                          size_t len)
{
    if (parser->error == YAML_MEMORY_ERROR) {
        err_at(bd, 1, 1, "out of memory while parsing");
        return;
    }
    if (parser->error == YAML_READER_ERROR) {
        /* The reader reports a byte offset, not a mark: count lines up to it. */
        int line = 1, col = 1;
        for (size_t i = 0; i < parser->problem_offset && i < len; i++) {
            if (text[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        if (parser->problem_value >= 0)
            err_at(bd, line, col, "%s (byte 0x%02X at offset %zu)", parser->problem,
                   (unsigned)parser->problem_value, parser->problem_offset);
        else
            err_at(bd, line, col, "%s (at offset %zu)", parser->problem, parser->problem_offset);
        return;
    }
    int line = (int)parser->problem_mark.line + 1, col = (int)parser->problem_mark.column + 1;
    const char *problem = parser->problem ? parser->problem : "syntax error";
    if (parser->context)
        err_at(bd, line, col, "%s (%s at %d:%d)", problem, parser->context,
               (int)parser->context_mark.line + 1, (int)parser->context_mark.column + 1);
    else
        err_at(bd, line, col, "%s", problem);
}

struct weir_cfgnode *weir_cfgtree_parse(const char *file, const char *text, size_t len,
                                        struct weir_cfg_report *rep)
{
    struct builder bd = {.file = file, .rep = rep};
    yaml_parser_t parser;
    yaml_event_t ev;
    bool fatal = false;
    int docs = 0;

    if (!yaml_parser_initialize(&parser)) {
        err_at(&bd, 1, 1, "out of memory while parsing");
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    for (;;) {
        if (!yaml_parser_parse(&parser, &ev)) {
            report_syntax(&bd, &parser, text, len);
            fatal = true;
            break;
        }
        bool stop = false;
        int line = (int)ev.start_mark.line + 1, col = (int)ev.start_mark.column + 1;
        struct weir_cfgnode *node;
        switch (ev.type) {
        case YAML_DOCUMENT_START_EVENT:
            if (docs++ > 0) {
                err_at(&bd, line, col,
                       "a second document starts here; a configuration is one document");
                stop = true;
            }
            break;
        case YAML_ALIAS_EVENT:
            err_at(&bd, line, col, "aliases (*%s) are not supported: write the value out",
                   (const char *)ev.data.alias.anchor);
            add_child(&bd, node_new(WEIR_CFGNODE_BAD, ev.start_mark));
            break;
        case YAML_SCALAR_EVENT:
            check_props(&bd, &ev, ev.data.scalar.anchor, ev.data.scalar.tag);
            if (ev.data.scalar.tag) {
                add_child(&bd, node_new(WEIR_CFGNODE_BAD, ev.start_mark));
                break;
            }
            node = node_new(WEIR_CFGNODE_SCALAR, ev.start_mark);
            node->str = weir_strndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
            node->len = ev.data.scalar.length;
            node->quoted = ev.data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
            add_child(&bd, node);
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (ev.type == YAML_SEQUENCE_START_EVENT)
                check_props(&bd, &ev, ev.data.sequence_start.anchor, ev.data.sequence_start.tag);
            else
                check_props(&bd, &ev, ev.data.mapping_start.anchor, ev.data.mapping_start.tag);
            if (bd.depth == MAX_DEPTH) {
                err_at(&bd, line, col, "nested deeper than %d levels", MAX_DEPTH);
                fatal = stop = true;
                break;
            }
            bd.stack[bd.depth++] = (struct frame){
                .node = node_new(ev.type == YAML_SEQUENCE_START_EVENT ? WEIR_CFGNODE_SEQ
                                                                      : WEIR_CFGNODE_MAP,
                                 ev.start_mark),
            };
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            node = bd.stack[--bd.depth].node;
            weir_cfgtree_free(bd.stack[bd.depth].key);
            add_child(&bd, node);
            break;
        case YAML_STREAM_END_EVENT:
            stop = true;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
        if (stop)
            break;
    }
    yaml_parser_delete(&parser);

    /* A syntax error leaves collections open on the stack; they are not attached yet. */
    while (bd.depth > 0) {
        bd.depth--;
        weir_cfgtree_free(bd.stack[bd.depth].key);
        weir_cfgtree_free(bd.stack[bd.depth].node);
    }
    if (fatal)
        goto fail;
    if (!bd.root || weir_cfgtree_is_null(bd.root)) {
        err_at(&bd, bd.root ? bd.root->line : 1, bd.root ? bd.root->col : 1,
               "the configuration is empty: expected a mapping with at least 'functions'");
        goto fail;
    }
    if (bd.root->kind != WEIR_CFGNODE_MAP) {
        if (bd.root->kind != WEIR_CFGNODE_BAD)
            err_at(&bd, bd.root->line, bd.root->col,
                   "the top level must be a mapping (key: value pairs), not a %s",
                   bd.root->kind == WEIR_CFGNODE_SEQ ? "sequence" : "single value");
        goto fail;
    }
    return bd.root;

fail:
    weir_cfgtree_free(bd.root);
    return NULL;
}
