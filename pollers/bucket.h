/* The bucket source's settings and the rules it applies to names, exposed for its tests: which
 * keys are objects (temporary files, names that are not UTF-8), and which event names a
 * notification configuration matches. The poller itself is pollers/bucket.c. */
#ifndef WEIR_BUCKET_H
#define WEIR_BUCKET_H

#include <stdbool.h>
#include <stddef.h>

/* A bucket mapping's own keys (its row's table). */
struct weir_bucket_settings {
    char *bucket_name; /* S3 bucket name; NULL: the directory's name */
    char **events;     /* S3 event types with wildcards; NULL: s3:ObjectCreated:* */
    size_t n_events;
    char *prefix;          /* the notification's prefix filter rule, or NULL */
    char *suffix;          /* its suffix filter rule, or NULL */
    bool ignore_temporary; /* skip hidden names and .tmp/.part/~ files; default true */
};

/* What weir announces. */
#define WEIR_S3_CREATED "ObjectCreated:Put"
#define WEIR_S3_REMOVED "ObjectRemoved:Delete"

/* S3's limit on a key's length, in bytes. */
#define WEIR_S3_KEY_MAX 1024

/* Whether name (one path component) is a file editors and uploaders write before the real one:
 * hidden (".name", which also covers vim's .swp and rsync's .name.XXXXXX), or ending in .tmp,
 * .part, .crdownload or ~. */
bool weir_bucket_is_temporary(const char *name);

/* Whether key can be an S3 key: 1..1024 bytes of valid UTF-8 without control characters. When
 * not, why says so (for the log). */
bool weir_bucket_key_ok(const char *key, const char **why);

/* Whether the notification's event types (s3:ObjectCreated:*, s3:ObjectRemoved:Delete, ...)
 * take the event named name (WEIR_S3_CREATED or WEIR_S3_REMOVED). No types: ObjectCreated. */
bool weir_bucket_event_wanted(char *const *types, size_t n, const char *name);

/* Whether type is an S3 event type a bucket can be configured with (ObjectCreated and
 * ObjectRemoved, a subtype or *). */
bool weir_bucket_event_type_known(const char *type);

#endif
