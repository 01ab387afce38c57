/* The bucket source's catalog: for each object of a bucket, what weir last announced of it (size,
 * modification time, inode, eTag, sequencer), so a scan can tell what changed while weir was not
 * looking. On weir's SQLite database (table bucket_objects); every operation is a store job, its
 * done called on the loop. Must never decide what is announced. */
#ifndef WEIR_CATALOG_H
#define WEIR_CATALOG_H

#include <stdint.h>

#include "core/list.h"
#include "core/status.h"

struct weir_store;

struct weir_catalog_entry {
    char *key; /* owned */
    int64_t size;
    int64_t mtime_ns;
    uint64_t ino;
    char etag[33];
    uint64_t sequencer;
    struct weir_list link;
};

struct weir_catalog_entry *weir_catalog_entry_new(const char *key);
/* NULL is a no-op. */
void weir_catalog_entry_free(struct weir_catalog_entry *e);

typedef void (*weir_catalog_done_fn)(void *arg, weir_status st, const char *error);
/* entries: every object of the bucket, the caller's to free. */
typedef void (*weir_catalog_load_fn)(void *arg, weir_status st, const char *error,
                                     struct weir_list *entries);

/* Reads every entry of bucket (the directory's path). bucket is copied. */
void weir_catalog_load(struct weir_store *s, const char *bucket, weir_catalog_load_fn done,
                       void *arg);
/* Records e (copied) as announced. */
void weir_catalog_put(struct weir_store *s, const char *bucket, const struct weir_catalog_entry *e,
                      weir_catalog_done_fn done, void *arg);
/* Forgets key. */
void weir_catalog_remove(struct weir_store *s, const char *bucket, const char *key,
                         weir_catalog_done_fn done, void *arg);

#endif
