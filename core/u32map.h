/* A hash map from 32-bit keys to pointers (open addressing, linear probing, backward-shift
 * deletion): lanes by id, in O(1) however many there are. Owns its table, not the values. */
#ifndef WEIR_U32MAP_H
#define WEIR_U32MAP_H

#include <stddef.h>
#include <stdint.h>

struct weir_u32map {
    uint32_t *keys;
    void **vals; /* NULL marks an empty slot */
    size_t cap;  /* a power of two, or 0 before the first put */
    size_t n;
};

void weir_u32map_init(struct weir_u32map *m);
void weir_u32map_deinit(struct weir_u32map *m);
/* The value under key, or NULL. */
void *weir_u32map_get(const struct weir_u32map *m, uint32_t key);
/* Sets key to val (not NULL), replacing any value it had. */
void weir_u32map_put(struct weir_u32map *m, uint32_t key, void *val);
/* Removes key; returns the value it had, or NULL. */
void *weir_u32map_del(struct weir_u32map *m, uint32_t key);

/* Iteration: for (size_t i = 0; i < m->cap; i++) if (m->vals[i]) ... (no put or del inside). */

#endif
