/* Logging: one line per event, level first, component named, key=value details after the text.
 * Owns the log level and the stderr writer; must never log payload bytes above trace level. */
#ifndef WEIR_LOG_H
#define WEIR_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum weir_log_level {
    WEIR_LOG_TRACE,
    WEIR_LOG_DEBUG,
    WEIR_LOG_INFO,
    WEIR_LOG_WARN,
    WEIR_LOG_ERROR,
    WEIR_LOG_OFF
};

void weir_log_set_level(enum weir_log_level level);
enum weir_log_level weir_log_get_level(void);

/* Parses "trace".."error"/"off" into *level. Returns 0 on success, -1 on an unknown name. */
int weir_log_parse_level(const char *name, enum weir_log_level *level);

static inline bool weir_log_enabled(enum weir_log_level level)
{
    return level >= weir_log_get_level();
}

/* Writes "LEVEL time component: text" to stderr. component may be NULL. */
void weir_log(enum weir_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like weir_log, but the same line again within 10 s is counted instead of printed: "the same"
 * is the same place in the code (file and line, hence the same message shape) for the same
 * component, whatever numbers or names the text carries this time. The count goes out with the
 * next line from there that gets through, as suppressed=N. */
#define weir_log_limited(level, component, ...)                                                    \
    weir_log_limited_at(__FILE__, __LINE__, level, component, NULL, __VA_ARGS__)
/* The same, limited separately for each `who` too: one function's line about each of its
 * mappings (a flood from one must not hide the others). */
#define weir_log_limited_for(level, component, who, ...)                                           \
    weir_log_limited_at(__FILE__, __LINE__, level, component, who, __VA_ARGS__)
void weir_log_limited_at(const char *file, int line, enum weir_log_level level,
                         const char *component, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

#define weir_trace(c, ...)                                                                         \
    do {                                                                                           \
        if (weir_log_enabled(WEIR_LOG_TRACE))                                                      \
            weir_log(WEIR_LOG_TRACE, c, __VA_ARGS__);                                              \
    } while (0)
#define weir_debug(c, ...)                                                                         \
    do {                                                                                           \
        if (weir_log_enabled(WEIR_LOG_DEBUG))                                                      \
            weir_log(WEIR_LOG_DEBUG, c, __VA_ARGS__);                                              \
    } while (0)
#define weir_info(c, ...)  weir_log(WEIR_LOG_INFO, c, __VA_ARGS__)
#define weir_warn(c, ...)  weir_log(WEIR_LOG_WARN, c, __VA_ARGS__)
#define weir_error(c, ...) weir_log(WEIR_LOG_ERROR, c, __VA_ARGS__)

/* Copies uri into out with any password (user:PASS@) replaced by "***", so URIs can be logged.
 * Always NUL-terminates; truncates to out_len. */
void weir_log_redact_uri(const char *uri, char *out, size_t out_len);

#endif
