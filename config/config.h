/* Configuration: YAML or JSON text -> validated plain structs. One schema for both formats.
 * Every error names file:line:col and the rule broken. Must never start anything. */
#ifndef WEIR_CONFIG_H
#define WEIR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

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

struct weir_function_cfg {
    char *name;
    char **urls; /* HTTP endpoints (a pool); NULL-terminated; NULL when `command` is used */
    size_t n_urls;
    char **command; /* argv of a local command; NULL-terminated; NULL when `url` is used */
    size_t n_command;
    int timeout;              /* seconds, 1..900, default 3 */
    int reserved_concurrency; /* -1 = unset, else 0..1000 */
    bool single_flight;       /* each endpoint takes one invocation at a time (Lambda RIE) */
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

struct weir_mapping_cfg {
    char *name;
    char *source;                           /* URI; its scheme selects the poller */
    char *function;                         /* name of a function in the same config */
    const struct weir_function_cfg *fn;     /* resolved `function`, borrowed */
    int batch_size;                         /* after loading: the value or the source's default */
    int maximum_batching_window_in_seconds; /* 0..300, default the source's */
    bool report_batch_item_failures;        /* function_response_types: [ReportBatchItemFailures] */
    int maximum_concurrency; /* scaling_config.maximum_concurrency, 2..1000; 0 = unset */
    bool enabled;            /* default true */
    /* The queue's own settings (Redis as SQS). */
    int visibility_timeout;   /* seconds, 0..43200, default 30 */
    int max_receive_count;    /* redrive_policy.max_receive_count, 1..1000; 0 = no redrive */
    char *dead_letter_target; /* redrive_policy.dead_letter_target: a list key on the same server */
    /* filter_criteria.filters: a record is delivered when one pattern matches (n_filters 0: no
     * filtering). Each pattern was compiled for the source's records when the file was loaded. */
    struct weir_filter_cfg *filters;
    size_t n_filters;
    struct weir_cfg_pos pos;
    struct weir_cfg_keypos *keys;
    size_t n_keys;
};

struct weir_config {
    char *file;   /* the name errors are reported against */
    char *region; /* awsRegion in events and ARNs, default "us-east-1" */
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

void weir_cfg_report_init(struct weir_cfg_report *rep);
void weir_cfg_report_deinit(struct weir_cfg_report *rep);
void weir_cfg_report_add(struct weir_cfg_report *rep, struct weir_cfg_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Loads and validates a file (YAML or JSON, told apart by content). Returns NULL when rep->n > 0;
 * the caller frees the result with weir_config_free. */
struct weir_config *weir_config_load_file(const char *path, struct weir_cfg_report *rep);
/* Same, from memory; name is used in error positions. */
struct weir_config *weir_config_load_buffer(const char *name, const char *text, size_t len,
                                            struct weir_cfg_report *rep);
void weir_config_free(struct weir_config *cfg);

/* Where key was written in the mapping (or the mapping itself when the key was defaulted). */
struct weir_cfg_pos weir_mapping_cfg_pos(const struct weir_mapping_cfg *mc, const char *key);
struct weir_cfg_pos weir_function_cfg_pos(const struct weir_function_cfg *fc, const char *key);

#endif
