/* Row changes: constructors and lookups for the plain data of model/row.h. Must never grow
 * behaviour beyond them. */
#include "model/row.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

struct weir_tuple *weir_tuple_new(size_t n)
{
    struct weir_tuple *t = weir_calloc(1, sizeof(*t));
    t->cols = n ? weir_calloc(n, sizeof(*t->cols)) : NULL;
    t->n = n;
    return t;
}

struct weir_tuple *weir_tuple_pack(const struct weir_column *cols, size_t n)
{
    size_t bytes = sizeof(struct weir_tuple) + n * sizeof(struct weir_column);
    for (size_t i = 0; i < n; i++)
        bytes += strlen(cols[i].name) + 1 + (cols[i].value ? cols[i].value_len + 1 : 0);
    char *block = weir_malloc(bytes);
    struct weir_tuple *t = (struct weir_tuple *)block;
    t->cols = (struct weir_column *)(block + sizeof(*t));
    t->n = n;
    t->packed = true;
    char *at = (char *)(t->cols + n);
    for (size_t i = 0; i < n; i++) {
        struct weir_column *c = &t->cols[i];
        *c = cols[i];
        size_t name_len = strlen(cols[i].name) + 1;
        c->name = memcpy(at, cols[i].name, name_len);
        at += name_len;
        if (cols[i].value) {
            c->value = memcpy(at, cols[i].value, cols[i].value_len);
            c->value[cols[i].value_len] = '\0';
            at += cols[i].value_len + 1;
        }
    }
    return t;
}

void weir_tuple_free(struct weir_tuple *t)
{
    if (!t)
        return;
    if (t->packed) {
        free(t);
        return;
    }
    for (size_t i = 0; i < t->n; i++) {
        free(t->cols[i].name);
        free(t->cols[i].value);
    }
    free(t->cols);
    free(t);
}

void weir_tuple_set(struct weir_tuple *t, size_t i, const char *name, enum weir_value_kind kind,
                    const char *value, size_t len)
{
    assert(!t->packed);
    struct weir_column *c = &t->cols[i];
    free(c->name);
    free(c->value);
    c->name = weir_strdup(name);
    c->kind = kind;
    c->value = NULL;
    c->value_len = 0;
    if (value) {
        c->value = weir_malloc(len + 1);
        memcpy(c->value, value, len);
        c->value[len] = '\0';
        c->value_len = len;
    }
}

const struct weir_column *weir_tuple_find(const struct weir_tuple *t, const char *name)
{
    for (size_t i = 0; t && i < t->n; i++)
        if (!strcmp(t->cols[i].name, name))
            return &t->cols[i];
    return NULL;
}

struct weir_row *weir_row_new(enum weir_row_op op)
{
    struct weir_row *row = weir_calloc(1, sizeof(*row));
    row->op = op;
    return row;
}

void weir_row_free(struct weir_row *row)
{
    if (!row)
        return;
    weir_tuple_free(row->new_row);
    weir_tuple_free(row->old_row);
    free(row);
}
