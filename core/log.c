/* Logging to stderr, one line per event. Owns the level and the repeat limiter; must never
 * allocate on the hot path. */
#include "core/log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/clock.h"

static enum weir_log_level current_level = WEIR_LOG_INFO;

static const char *const level_names[] = {"trace", "debug", "info", "warn", "error", "off"};

void weir_log_set_level(enum weir_log_level level)
{
    current_level = level;
}

enum weir_log_level weir_log_get_level(void)
{
    return current_level;
}

int weir_log_parse_level(const char *name, enum weir_log_level *level)
{
    for (int i = WEIR_LOG_TRACE; i <= WEIR_LOG_OFF; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *level = (enum weir_log_level)i;
            return 0;
        }
    }
    return -1;
}

static void write_line(enum weir_log_level level, const char *component, const char *text,
                       unsigned long suppressed)
{
    char ts[25];
    weir_clock_iso8601(weir_clock_wall_ms(), ts);
    if (suppressed)
        fprintf(stderr, "%-5s %s %s: %s suppressed=%lu\n", level_names[level], ts,
                component ? component : "weir", text, suppressed);
    else
        fprintf(stderr, "%-5s %s %s: %s\n", level_names[level], ts, component ? component : "weir",
                text);
}

void weir_log(enum weir_log_level level, const char *component, const char *fmt, ...)
{
    if (!weir_log_enabled(level) || level >= WEIR_LOG_OFF)
        return;
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    write_line(level, component, text, 0);
}

/* The limiter remembers the last few places that logged; a place seen again within the window
 * is only counted. A small table is enough: the point is to stop one failure flooding the log,
 * and a flood comes from few places. */
#define LIMIT_SLOTS     32
#define LIMIT_WINDOW_MS 10000

struct limited_place {
    const char *file; /* __FILE__: a string literal, compared by address */
    int line;
    char component[160]; /* "component|who", truncated: a longer one is matched on this much */
    int64_t last_ms;
    unsigned long suppressed;
    bool used;
};

static struct limited_place limited[LIMIT_SLOTS];

void weir_log_limited_at(const char *file, int line, enum weir_log_level level,
                         const char *component, const char *who, const char *fmt, ...)
{
    if (!weir_log_enabled(level) || level >= WEIR_LOG_OFF)
        return;
    char key[sizeof(limited[0].component)];
    snprintf(key, sizeof(key), "%s%s%s", component ? component : "", who ? "|" : "",
             who ? who : "");
    const char *comp = key;
    int64_t now = weir_clock_mono_ms();
    struct limited_place *slot = NULL, *oldest = &limited[0];
    for (int i = 0; i < LIMIT_SLOTS && !slot; i++) {
        struct limited_place *l = &limited[i];
        if (l->used && l->file == file && l->line == line &&
            !strncmp(l->component, comp, sizeof(l->component) - 1))
            slot = l;
        else if (!l->used || (oldest->used && l->last_ms < oldest->last_ms))
            oldest = l;
    }
    if (slot && now - slot->last_ms < LIMIT_WINDOW_MS) {
        slot->suppressed++;
        return;
    }
    unsigned long suppressed = slot ? slot->suppressed : 0;
    if (!slot) {
        slot = oldest;
        slot->used = true;
        slot->file = file;
        slot->line = line;
        snprintf(slot->component, sizeof(slot->component), "%s", comp);
    }
    slot->last_ms = now;
    slot->suppressed = 0;
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    write_line(level, component, text, suppressed);
}

void weir_log_redact_uri(const char *uri, char *out, size_t out_len)
{
    if (!out_len)
        return;
    const char *scheme_end = strstr(uri, "://");
    const char *auth = scheme_end ? scheme_end + 3 : uri;
    const char *host_end = auth + strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *c = auth; c < host_end; c++)
        if (*c == '@')
            at = c;
    const char *colon = NULL;
    if (at)
        for (const char *c = auth; c < at; c++)
            if (*c == ':') {
                colon = c;
                break;
            }
    if (at) {
        /* redis://:secret@host has no user name: the whole userinfo is the password. */
        const char *pw_start = colon ? colon + 1 : auth;
        snprintf(out, out_len, "%.*s***%s", (int)(pw_start - uri), uri, at);
    } else {
        snprintf(out, out_len, "%s", uri);
    }
}
