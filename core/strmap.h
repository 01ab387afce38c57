/* A hash map from strings to pointers (open addressing, linear probing, backward-shift
 * deletion), for sets keyed by name: a bucket's objects by key. The keys are borrowed: each must
 * stay valid, unchanged, while it is in the map (usually it lives in the value). Owns its table,
 * neither keys nor values. */
#ifndef WEIR_STRMAP_H
#define WEIR_STRMAP_H

#include <stddef.h>
#include <stdint.h>

struct weir_strmap {
    const char **keys;
    uint64_t *hashes;
    void **vals; /* NULL marks an empty slot */
    size_t cap;  /* a power of two, or 0 before the first put */
    size_t n;
};

void weir_strmap_init(struct weir_strmap *m);
void weir_strmap_deinit(struct weir_strmap *m);
/* The value under key, or NULL. */
void *weir_strmap_get(const struct weir_strmap *m, const char *key);
/* Sets key to val (not NULL), replacing any value (and key pointer) it had. */
void weir_strmap_put(struct weir_strmap *m, const char *key, void *val);
/* Removes key; returns the value it had, or NULL. */
void *weir_strmap_del(struct weir_strmap *m, const char *key);

/* Iteration: for (size_t i = 0; i < m->cap; i++) if (m->vals[i]) ... (no put or del inside). */

#endif
