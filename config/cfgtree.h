/* The configuration text as a tree of mappings, sequences and scalars, each with its position.
 * Internal to config/: the schema walk in config.c reads it, nothing else should. */
#ifndef WEIR_CFGTREE_H
#define WEIR_CFGTREE_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

enum weir_cfgnode_kind {
    WEIR_CFGNODE_MAP,
    WEIR_CFGNODE_SEQ,
    WEIR_CFGNODE_SCALAR,
    /* Stands in for something already reported (an alias, a tagged scalar): the schema walk
     * accepts it without a second error and without a value. */
    WEIR_CFGNODE_BAD,
};

struct weir_cfgnode {
    enum weir_cfgnode_kind kind;
    int line; /* 1-based */
    int col;  /* 1-based */
    /* Scalars: the text (NUL-terminated; len counts any embedded NUL) and whether it was quoted
     * or a block scalar, which makes it a string whatever it looks like. */
    char *str;
    size_t len;
    bool quoted;
    /* Mappings: keys[i] (always scalars, no duplicates) maps to vals[i], in file order.
     * Sequences: vals[i]; keys is NULL. */
    struct weir_cfgnode **keys;
    struct weir_cfgnode **vals;
    size_t n;
};

/* Parses YAML or JSON (JSON is YAML flow style) into a tree whose top level is a mapping.
 * Errors go to rep against file, in the order found. Syntax errors, an empty text and a top
 * level that is not a mapping return NULL; duplicate keys, anchors, aliases, tags and extra
 * documents are reported but the tree is still returned (without the offending parts), so the
 * schema walk can report the rest. The caller frees the tree with weir_cfgtree_free. */
struct weir_cfgnode *weir_cfgtree_parse(const char *file, const char *text, size_t len,
                                        struct weir_cfg_report *rep);
/* NULL is a no-op. */
void weir_cfgtree_free(struct weir_cfgnode *node);

/* True for a plain null scalar: empty, "~", "null", "Null" or "NULL". */
bool weir_cfgtree_is_null(const struct weir_cfgnode *node);

#endif
