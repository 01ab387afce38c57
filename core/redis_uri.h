/* Redis URIs, as sources and destinations name a list: redis://[[user]:password@]host[:port]
 * [/db]/<list-key>. Parsing only; must never connect. */
#ifndef WEIR_REDIS_URI_H
#define WEIR_REDIS_URI_H

#include "core/status.h"

struct weir_redis_uri {
    char *host;
    int port;       /* default 6379 */
    int db;         /* default 0 */
    char *user;     /* NULL when not given */
    char *password; /* NULL when not given */
    char *key;      /* the list, percent-decoded */
};

/* Parses uri into u (owned strings; weir_redis_uri_deinit frees them). On failure err says what
 * is wrong (without the password) and u holds nothing. */
weir_status weir_redis_uri_parse(const char *uri, struct weir_redis_uri *u, struct weir_err *err);
/* Frees u's strings (the password wiped first). */
void weir_redis_uri_deinit(struct weir_redis_uri *u);

#endif
