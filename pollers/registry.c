/* The registry of sources: one row per source, each describing itself (pollers/poller.h).
 * Adding a source is one new file in pollers/ and one row here; this file must never hold a
 * source's own code or rules. */
#include <stddef.h>

#include "pollers/poller.h"

extern const struct weir_source weir_source_redis;
extern const struct weir_source weir_source_bucket;
extern const struct weir_source weir_source_kafka;
extern const struct weir_source weir_source_postgres;

const struct weir_source *const weir_sources[] = {
    &weir_source_redis, &weir_source_bucket, &weir_source_kafka, &weir_source_postgres, NULL,
};

const struct weir_source *weir_source_of(const struct weir_cfg_source *cs)
{
    for (size_t i = 0; weir_sources[i]; i++)
        if (&weir_sources[i]->config == cs)
            return weir_sources[i];
    return NULL;
}
