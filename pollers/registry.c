/* The registry of sources: one row per poller, selected by the source URI's scheme.
 * Adding a source is one new file in pollers/ and one row here. */
#include <string.h>

#include "pollers/poller.h"

extern const struct weir_poller_ops weir_poller_redis;

const struct weir_poller_ops *const weir_pollers[] = {
    &weir_poller_redis,
    NULL,
};

const struct weir_poller_ops *weir_poller_find(const char *uri)
{
    const char *sep = strstr(uri, "://");
    if (!sep)
        return NULL;
    size_t n = (size_t)(sep - uri);
    for (size_t i = 0; weir_pollers[i]; i++) {
        const char *scheme = weir_pollers[i]->scheme;
        if (strlen(scheme) == n && strncmp(uri, scheme, n) == 0)
            return weir_pollers[i];
    }
    return NULL;
}
