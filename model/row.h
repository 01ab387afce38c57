/* Row changes: the words for a change to a table row as it travels from a replication source to
 * an encoder (DynamoDB stream records). Values are neutral: already out of the source's wire and
 * text forms (no Postgres OIDs, no array literals, no hex bytea), not yet in an event's typed
 * form (no {"S": ...}). Plain data; must never know a source protocol or an event format. */
#ifndef WEIR_ROW_H
#define WEIR_ROW_H

#include <stdbool.h>
#include <stddef.h>

/* What a column's value is, and how its text (struct weir_column.value) is to be read. */
enum weir_value_kind {
    WEIR_VALUE_NULL,      /* SQL NULL: no value */
    WEIR_VALUE_UNCHANGED, /* not sent: an unchanged value stored out of line (TOAST); unknown */
    WEIR_VALUE_STRING,    /* UTF-8 text (timestamps already ISO-8601) */
    WEIR_VALUE_NUMBER,    /* a decimal number's exact digits: "-12.50", "1e+30" (never NaN) */
    WEIR_VALUE_BOOL,      /* "true" or "false" */
    WEIR_VALUE_BYTES,     /* raw bytes */
    WEIR_VALUE_JSON,      /* a JSON text (json, jsonb) */
    WEIR_VALUE_LIST,      /* a JSON array: each element a JSON string holding a value of
                             elem_kind (STRING, NUMBER, BOOL, BYTES as base64, JSON as its text),
                             null, or a nested array (a multi-dimensional array) */
};

struct weir_column {
    char *name;                     /* owned */
    enum weir_value_kind kind;      /* NULL and UNCHANGED have no value */
    enum weir_value_kind elem_kind; /* LIST: its elements' kind */
    bool key;                       /* part of the row's key (DynamoDB Keys) */
    char *value;                    /* owned; NUL-terminated, value_len bytes before the NUL */
    size_t value_len;
};

enum weir_row_op { WEIR_ROW_INSERT, WEIR_ROW_UPDATE, WEIR_ROW_DELETE, WEIR_ROW_TRUNCATE };

/* A table row as it was after (new) or before (old) a change. */
struct weir_tuple {
    struct weir_column *cols; /* owned */
    size_t n;
    /* The tuple was made by weir_tuple_pack: it, its columns, names and values are this one
     * allocation (a row change is made per record, so one allocation instead of two per column
     * counts). weir_tuple_set may not be used on it. */
    bool packed;
};

struct weir_row {
    enum weir_row_op op;
    /* INSERT and UPDATE: the row after. NULL for DELETE and TRUNCATE. */
    struct weir_tuple *new_row;
    /* UPDATE and DELETE: the row before, as the table's replica identity gives it: every column
     * (old_full), or only the key's columns; UPDATE: NULL when the key did not change and the
     * identity is not FULL. NULL for INSERT and TRUNCATE. */
    struct weir_tuple *old_row;
    bool old_full;
};

struct weir_tuple *weir_tuple_new(size_t n);
/* NULL is a no-op. */
void weir_tuple_free(struct weir_tuple *t);
/* Sets column i: name copied, value copied (len bytes, NUL added; NULL for no value). */
void weir_tuple_set(struct weir_tuple *t, size_t i, const char *name, enum weir_value_kind kind,
                    const char *value, size_t len);
/* A packed tuple (see struct weir_tuple) holding copies of cols[0..n): each column's name, kind,
 * elem_kind, key flag and value (value_len bytes; NULL for none). */
struct weir_tuple *weir_tuple_pack(const struct weir_column *cols, size_t n);
/* The column named name, or NULL. */
const struct weir_column *weir_tuple_find(const struct weir_tuple *t, const char *name);

struct weir_row *weir_row_new(enum weir_row_op op);
/* Frees the row and its tuples. NULL is a no-op. */
void weir_row_free(struct weir_row *row);

#endif
