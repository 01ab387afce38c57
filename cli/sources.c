/* The registry of sources handed to config/: each row's configuration view, filter patterns
 * checked against the row's event format, destination URIs checked by their rows. The CLI is the
 * one place that knows every layer; this file must never hold a source's own rules, which live in
 * its row. */
#include "cli/sources.h"

#include <stdio.h>
#include <string.h>

#include "connectors/destination.h"
#include "core/mem.h"
#include "mapping/filter.h"
#include "pollers/poller.h"

static bool check_pattern(const struct weir_mapping_cfg *mc, const char *text, size_t len,
                          struct weir_cfg_pattern_error *err)
{
    const struct weir_source *src = weir_source_of(mc->src);
    const struct weir_event_format *format = src && src->format_of ? src->format_of(mc)
                                             : src                 ? src->format
                                                                   : NULL;
    const struct weir_filter_shape *shape = format ? format->filter_shape : NULL;
    if (!shape) {
        err->offset = 0;
        err->path[0] = '\0';
        snprintf(err->msg, sizeof(err->msg), "the %s source cannot filter records", mc->src->name);
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

static bool check_destination(const char *uri, char *why, size_t len)
{
    struct weir_err err = {{0}};
    if (weir_destination_check(uri, &err) == WEIR_OK)
        return true;
    snprintf(why, len, "%s", err.msg);
    return false;
}

const struct weir_cfg_env *weir_cli_cfg_env(void)
{
    static struct weir_cfg_env env;
    if (!env.sources) {
        /* Made once and kept for the process' life, sized to the registry. */
        size_t n = 0;
        while (weir_sources[n])
            n++;
        const struct weir_cfg_source **rows = weir_calloc(n + 1, sizeof(*rows));
        for (size_t i = 0; i < n; i++)
            rows[i] = &weir_sources[i]->config;
        env.sources = rows;
        env.check_pattern = check_pattern;
        env.check_destination = check_destination;
    }
    return &env;
}
