/* Configuration: YAML or JSON text -> validated plain structs. One schema for both formats.
 * Every error names file:line:col and the rule broken. Must never start anything. */
#ifndef WEIR_CONFIG_H
#define WEIR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct weir_cfg_pos {
    const char *file; /* borrowed from the owning weir_config */
    int line;         /* 1-based */
    int col;          /* 1-based */
};

/* Where one key of an object was written, so later checks can point at it. */
struct weir_cfg_keypos {
    char *key; /* dotted path below the object: "visibility_timeout",
                  "redrive_policy.max_receive_count" */
    struct weir_cfg_pos pos;
};

/* A function's asynchronous invocation settings: AWS's event invoke config, and the delays
 * before its retries (AWS's are about 1 and 2 minutes; tests shorten them). */
struct weir_async_cfg {
    int maximum_retry_attempts;       /* 0..2, default 2 */
    int maximum_event_age_in_seconds; /* 60..21600, default 21600 */
    int retry_delays_in_seconds[2];   /* before the first and the second retry; 60, 120 */
    char *on_success;                 /* destination_config.on_success.destination, or NULL */
    char *on_failure;                 /* destination_config.on_failure.destination, or NULL */
};

struct weir_function_cfg {
    char *name;
    char **urls; /* HTTP endpoints (a pool); NULL-terminated; NULL when `command` is used */
    size_t n_urls;
    char **command; /* argv of a local command; NULL-terminated; NULL when `url` is used */
    size_t n_command;
    int timeout;              /* seconds, 1..900, default 3 */
    int reserved_concurrency; /* -1 = unset, else 0..1000 */
    bool single_flight;       /* each endpoint takes one invocation at a time (Lambda RIE) */
    struct weir_async_cfg async;
    char *dead_letter_target; /* dead_letter_config.target_arn: a destination URI, or NULL */
    bool raw_url; /* never from a file: POST to the URL as written, even a bare one (an HTTP
                     destination built in code), instead of adding the Invoke path */
    struct weir_cfg_pos pos;
    struct weir_cfg_keypos *keys;
    size_t n_keys;
};

/* One filter_criteria.filters[] entry (AWS FilterCriteria.Filters[].Pattern). */
struct weir_filter_cfg {
    char *pattern;           /* the pattern's JSON text, as written */
    size_t pattern_len;      /* its length in bytes */
    struct weir_cfg_pos pos; /* where the pattern's value starts in the file */
};

struct weir_cfg_source;

/* What a mapping of a stream source (Kafka, Postgres) does with a failing batch: AWS's stream
 * error-handling knobs (reference 1.4). */
struct weir_stream_cfg {
    int maximum_retry_attempts;          /* -1..10000, default -1 (infinite) */
    int maximum_record_age_in_seconds;   /* -1 or 60..604800, default -1 (infinite) */
    bool bisect_batch_on_function_error; /* default false */
    int parallelization_factor;          /* 1..10, default 1 */
    char *on_failure;                    /* destination_config.on_failure.destination, or NULL */
    /* Never from a file: the fewest records a partition may hold before it is paused (0: the
     * mapping's default); tests lower it to see pauses with a few records. */
    int partition_held_min;
};

struct weir_mapping_cfg {
    char *name;
    char *source;                           /* URI; its scheme selects the source */
    const struct weir_cfg_source *src;      /* the source it selects, borrowed from the registry */
    void *settings;                         /* the source's own keys: a src->settings_size struct */
    char *function;                         /* name of a function in the same config */
    const struct weir_function_cfg *fn;     /* resolved `function`, borrowed */
    int batch_size;                         /* after loading: the value or the source's default */
    int maximum_batching_window_in_seconds; /* 0..300, default the source's */
    int batching_window_ms; /* the window in ms: the key's value, or the source's default */
    bool report_batch_item_failures; /* function_response_types: [ReportBatchItemFailures] */
    int maximum_concurrency;         /* scaling_config.maximum_concurrency, 2..1000; 0 = unset */
    int maximum_buffered_mib; /* bytes of records buffered and in flight, in MiB; default 64 */
    bool enabled;             /* default true */
    /* filter_criteria.filters: a record is delivered when one pattern matches (n_filters 0: no
     * filtering). Each pattern was compiled for the source's records when the file was loaded. */
    struct weir_filter_cfg *filters;
    size_t n_filters;
    struct weir_stream_cfg stream; /* set when the source is a stream (src->stream) */
    struct weir_cfg_pos pos;
    struct weir_cfg_keypos *keys;
    size_t n_keys;
};

/* The control plane's HTTP server (the Invoke API). */
struct weir_api_cfg {
    bool enabled; /* the file has an `api` section */
    char *listen; /* "host:port" as written, default "127.0.0.1:9070" */
    char *host;   /* its host part, brackets removed */
    int port;     /* 0..65535; 0 takes a free port (the log says which) */
};

struct weir_config {
    char *file;      /* the name errors are reported against */
    char *region;    /* awsRegion in events and ARNs, default "us-east-1" */
    char *state_dir; /* durable state (the asynchronous queue, catalogs), default "weir-state" */
    struct weir_api_cfg api;
    struct weir_function_cfg *functions;
    size_t n_functions;
    struct weir_mapping_cfg *mappings;
    size_t n_mappings;
};

/* Every problem found, in file order, each "file:line:col: message". */
struct weir_cfg_report {
    char **errors;
    size_t n;
};

/* ---- what config/ knows of a source --------------------------------------------------------
 * The CLI hands config/ the registry of sources; each row describes its own keys, defaults,
 * ranges and rules, so config/ knows no source by name. */

enum weir_cfg_type {
    WEIR_CFG_INT,
    WEIR_CFG_BOOL,
    WEIR_CFG_STRING,
    WEIR_CFG_STRINGS, /* a sequence of strings: char ** (NULL-terminated) and its length */
    WEIR_CFG_OBJECT,
    WEIR_CFG_MAP /* free-form scalar values by key (librdkafka properties): char ** holding
                    key, value, key, value, ... NULL-terminated, and the number of pairs */
};

/* One configuration key of a source (Fluent Bit's config_map): its value goes at `offset` in the
 * source's own settings struct. An OBJECT is a nested mapping whose keys fill the same struct. */
struct weir_cfg_key {
    const char *name;
    enum weir_cfg_type type;
    size_t offset;
    size_t offset_n;                /* STRINGS: where the length goes (a size_t) */
    int min, max;                   /* INT: the range, inclusive; STRING(S): the least length;
                                       STRINGS: max is the most entries (0: no limit) */
    int def;                        /* INT and BOOL: the default (STRING: none, NULL) */
    const struct weir_cfg_key *sub; /* OBJECT: its keys */
    size_t n_sub;
};

#define WEIR_CFG_KEY_INT(k, st, member, lo, hi, dflt)                                              \
    {                                                                                              \
        .name = k, .type = WEIR_CFG_INT, .offset = offsetof(st, member), .min = lo, .max = hi,     \
        .def = dflt                                                                                \
    }
#define WEIR_CFG_KEY_BOOL(k, st, member, dflt)                                                     \
    {                                                                                              \
        .name = k, .type = WEIR_CFG_BOOL, .offset = offsetof(st, member), .def = dflt              \
    }
#define WEIR_CFG_KEY_STRING(k, st, member, min_len)                                                \
    {                                                                                              \
        .name = k, .type = WEIR_CFG_STRING, .offset = offsetof(st, member), .min = min_len         \
    }
#define WEIR_CFG_KEY_STRINGS(k, st, member, member_n, min_len, most)                               \
    {                                                                                              \
        .name = k, .type = WEIR_CFG_STRINGS, .offset = offsetof(st, member),                       \
        .offset_n = offsetof(st, member_n), .min = min_len, .max = most                            \
    }
#define WEIR_CFG_KEY_MAP(k, st, member, member_n)                                                  \
    {                                                                                              \
        .name = k, .type = WEIR_CFG_MAP, .offset = offsetof(st, member),                           \
        .offset_n = offsetof(st, member_n)                                                         \
    }
#define WEIR_CFG_KEY_OBJECT(k, keys)                                                               \
    {                                                                                              \
        .name = k, .type = WEIR_CFG_OBJECT, .sub = keys, .n_sub = sizeof(keys) / sizeof(*(keys))   \
    }

struct weir_cfg_source {
    const char *name;                /* "redis" */
    const char *scheme;              /* the URI scheme that selects it: "redis" */
    const char *example_uri;         /* for messages: "redis://127.0.0.1:6379/0/orders" */
    const struct weir_cfg_key *keys; /* its own keys, beside every mapping's */
    size_t n_keys;
    size_t settings_size; /* the struct its keys fill, one per mapping (mc->settings) */
    int default_batch_size;
    int max_batch_size;
    int default_window_ms; /* when maximum_batching_window_in_seconds is not written */
    /* Its mappings take the stream keys (struct weir_stream_cfg): records are ordered per
     * partition and a failing batch blocks it. */
    bool stream;
    /* Its rules across keys (its own and the mapping's), each broken one reported through
     * weir_cfg_report_add with the position of the key at fault (weir_mapping_cfg_pos). Runs
     * only when every key of the mapping and its function read cleanly. NULL: none. */
    void (*validate)(const struct weir_mapping_cfg *mc, struct weir_cfg_report *rep);
    /* What a mapping of this source must have to itself (a replication slot of one server, a
     * Kafka consumer group of one cluster): described into out, with the key that chooses it.
     * Two mappings whose claims are equal are refused at load, the later one blamed. Runs when
     * validate found nothing. NULL, or false: the mapping claims nothing. */
    bool (*claim)(const struct weir_mapping_cfg *mc, char *out, size_t len, const char **key);
};

/* Why a filter pattern was refused, and where inside it. */
struct weir_cfg_pattern_error {
    size_t offset;  /* byte offset in the pattern text of the value at fault */
    char path[160]; /* key path down to it: "body.price"; "" at the top */
    char msg[320];
};

/* What the CLI hands config/: the sources, and how a filter pattern is checked for a source's
 * records (that lives in mapping/, which config/ does not know). */
struct weir_cfg_env {
    const struct weir_cfg_source *const *sources; /* NULL-terminated */
    /* True when text is a valid pattern for src's records; otherwise fills err. NULL: patterns
     * are kept unchecked (the mapping refuses them when it starts). */
    bool (*check_pattern)(const struct weir_mapping_cfg *mc, const char *text, size_t len,
                          struct weir_cfg_pattern_error *err);
    /* Whether uri names a destination weir can write to (a Redis list, a directory, an HTTP
     * endpoint); fills err.msg when not. NULL: destinations are kept unchecked. */
    bool (*check_destination)(const char *uri, char *err, size_t err_len);
};

/* The row whose scheme matches uri's, or NULL. */
const struct weir_cfg_source *weir_cfg_source_find(const struct weir_cfg_env *env, const char *uri);

void weir_cfg_report_init(struct weir_cfg_report *rep);
void weir_cfg_report_deinit(struct weir_cfg_report *rep);
void weir_cfg_report_add(struct weir_cfg_report *rep, struct weir_cfg_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Loads and validates a file (YAML or JSON, told apart by content) against the sources of env
 * (borrowed; it must outlive the result). Returns NULL when rep->n > 0; the caller frees the
 * result with weir_config_free. */
struct weir_config *weir_config_load_file(const char *path, const struct weir_cfg_env *env,
                                          struct weir_cfg_report *rep);
/* Same, from memory; name is used in error positions. */
struct weir_config *weir_config_load_buffer(const char *name, const char *text, size_t len,
                                            const struct weir_cfg_env *env,
                                            struct weir_cfg_report *rep);
void weir_config_free(struct weir_config *cfg);

/* Where key was written in the mapping (or the mapping itself when the key was defaulted). */
struct weir_cfg_pos weir_mapping_cfg_pos(const struct weir_mapping_cfg *mc, const char *key);
/* Whether key (a dotted path: "redrive_policy.max_receive_count") was written in the mapping. */
bool weir_mapping_cfg_has(const struct weir_mapping_cfg *mc, const char *key);
struct weir_cfg_pos weir_function_cfg_pos(const struct weir_function_cfg *fc, const char *key);

#endif
