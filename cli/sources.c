/* The registry of sources handed to config/: each row's configuration view, and filter patterns
 * checked against the row's event format. The CLI is the one place that knows every layer. */
#include "cli/sources.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "mapping/filter.h"
#include "pollers/poller.h"

/* Far more than the registry holds; a registry that outgrows it stops weir at once. */
#define MAX_SOURCES 16

static bool check_pattern(const struct weir_cfg_source *cs, const char *text, size_t len,
                          struct weir_cfg_pattern_error *err)
{
    const struct weir_source *src = weir_source_of(cs);
    const struct weir_filter_shape *shape = src ? src->format->filter_shape : NULL;
    if (!shape) {
        err->offset = 0;
        err->path[0] = '\0';
        snprintf(err->msg, sizeof(err->msg), "the %s source cannot filter records", cs->name);
        return false;
    }
    struct weir_filter_error ferr;
    if (weir_filter_check(text, len, shape, &ferr))
        return true;
    err->offset = ferr.offset;
    snprintf(err->path, sizeof(err->path), "%s", ferr.path);
    snprintf(err->msg, sizeof(err->msg), "%s", ferr.msg);
    return false;
}

const struct weir_cfg_env *weir_cli_cfg_env(void)
{
    static const struct weir_cfg_source *rows[MAX_SOURCES + 1];
    static struct weir_cfg_env env;
    if (!env.sources) {
        size_t n = 0;
        for (; weir_sources[n]; n++) {
            assert(n < MAX_SOURCES);
            rows[n] = &weir_sources[n]->config;
        }
        rows[n] = NULL;
        env.sources = rows;
        env.check_pattern = check_pattern;
    }
    return &env;
}
