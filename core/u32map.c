/* The u32 -> pointer map. Keys spread by a multiplicative hash, so sequential lane numbers
 * (partitions 0, 1, 2 ...) do not cluster; the table doubles past 3/4 full and never shrinks
 * below what it once held, which is what a set of lanes needs. Must never call out. */
#include "core/u32map.h"

#include <stdlib.h>

#include "core/mem.h"

void weir_u32map_init(struct weir_u32map *m)
{
    m->keys = NULL;
    m->vals = NULL;
    m->cap = 0;
    m->n = 0;
}

void weir_u32map_deinit(struct weir_u32map *m)
{
    free(m->keys);
    free(m->vals);
    weir_u32map_init(m);
}

/* Fibonacci hashing: the product's high bits, which every bit of the key reaches. */
static size_t slot_of(uint32_t key, size_t cap)
{
    unsigned bits = (unsigned)__builtin_ctzl((unsigned long)cap);
    return bits ? (size_t)((uint32_t)(key * 2654435769u) >> (32 - bits)) : 0;
}

void *weir_u32map_get(const struct weir_u32map *m, uint32_t key)
{
    if (!m->cap)
        return NULL;
    for (size_t i = slot_of(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (!m->vals[i])
            return NULL;
        if (m->keys[i] == key)
            return m->vals[i];
    }
}

static void grow(struct weir_u32map *m)
{
    struct weir_u32map old = *m;
    m->cap = old.cap ? old.cap * 2 : 16;
    m->keys = weir_calloc(m->cap, sizeof(*m->keys));
    m->vals = weir_calloc(m->cap, sizeof(*m->vals));
    m->n = 0;
    for (size_t i = 0; i < old.cap; i++)
        if (old.vals[i])
            weir_u32map_put(m, old.keys[i], old.vals[i]);
    free(old.keys);
    free(old.vals);
}

void weir_u32map_put(struct weir_u32map *m, uint32_t key, void *val)
{
    if ((m->n + 1) * 4 > m->cap * 3)
        grow(m);
    for (size_t i = slot_of(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (!m->vals[i]) {
            m->keys[i] = key;
            m->vals[i] = val;
            m->n++;
            return;
        }
        if (m->keys[i] == key) {
            m->vals[i] = val;
            return;
        }
    }
}

void *weir_u32map_del(struct weir_u32map *m, uint32_t key)
{
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1, i = slot_of(key, m->cap);
    while (m->vals[i] && m->keys[i] != key)
        i = (i + 1) & mask;
    void *val = m->vals[i];
    if (!val)
        return NULL;
    m->vals[i] = NULL;
    m->n--;
    /* Backward shift: pull later entries of the run into the hole when their home slot is at or
     * before it, so lookups never stop at a hole inside a run. */
    for (size_t j = (i + 1) & mask; m->vals[j]; j = (j + 1) & mask) {
        size_t home = slot_of(m->keys[j], m->cap);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            m->vals[j] = NULL;
            i = j;
        }
    }
    return val;
}
