/* The string -> pointer map: FNV-1a hashes kept beside the keys, so probing compares strings only
 * on a full hash match; the table doubles past 3/4 full. Must never copy or free a key. */
#include "core/strmap.h"

#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/mem.h"

void weir_strmap_init(struct weir_strmap *m)
{
    memset(m, 0, sizeof(*m));
}

void weir_strmap_deinit(struct weir_strmap *m)
{
    free(m->keys);
    free(m->hashes);
    free(m->vals);
    weir_strmap_init(m);
}

static uint64_t hash_of(const char *key)
{
    return weir_hash_fnv1a64(key, strlen(key));
}

static size_t find(const struct weir_strmap *m, const char *key, uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask)
        if (!m->vals[i] || (m->hashes[i] == h && !strcmp(m->keys[i], key)))
            return i;
}

void *weir_strmap_get(const struct weir_strmap *m, const char *key)
{
    return m->cap ? m->vals[find(m, key, hash_of(key))] : NULL;
}

static void grow(struct weir_strmap *m)
{
    struct weir_strmap old = *m;
    m->cap = old.cap ? old.cap * 2 : 16;
    m->keys = weir_calloc(m->cap, sizeof(*m->keys));
    m->hashes = weir_calloc(m->cap, sizeof(*m->hashes));
    m->vals = weir_calloc(m->cap, sizeof(*m->vals));
    m->n = 0;
    for (size_t i = 0; i < old.cap; i++) {
        if (!old.vals[i])
            continue;
        size_t j = find(m, old.keys[i], old.hashes[i]);
        m->keys[j] = old.keys[i];
        m->hashes[j] = old.hashes[i];
        m->vals[j] = old.vals[i];
        m->n++;
    }
    free(old.keys);
    free(old.hashes);
    free(old.vals);
}

void weir_strmap_put(struct weir_strmap *m, const char *key, void *val)
{
    if ((m->n + 1) * 4 > m->cap * 3)
        grow(m);
    uint64_t h = hash_of(key);
    size_t i = find(m, key, h);
    if (!m->vals[i])
        m->n++;
    m->keys[i] = key;
    m->hashes[i] = h;
    m->vals[i] = val;
}

void *weir_strmap_del(struct weir_strmap *m, const char *key)
{
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1, i = find(m, key, hash_of(key));
    void *val = m->vals[i];
    if (!val)
        return NULL;
    m->vals[i] = NULL;
    m->n--;
    /* Backward shift, as in core/u32map.c: no hole is left inside a probe run. */
    for (size_t j = (i + 1) & mask; m->vals[j]; j = (j + 1) & mask) {
        size_t home = m->hashes[j] & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->keys[i] = m->keys[j];
            m->hashes[i] = m->hashes[j];
            m->vals[i] = m->vals[j];
            m->vals[j] = NULL;
            i = j;
        }
    }
    return val;
}
