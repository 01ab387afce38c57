/* The Redis URI parser: scheme, credentials (percent-decoded), host (IPv6 in brackets), port, db
 * and the list key. Must never print a password. */
#include "core/redis_uri.h"

#include <ctype.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/text.h"

/* Percent-decodes s[0..len) into a new string; NULL when an escape is broken or decodes to NUL
 * (a key or password with a NUL byte cannot be passed on). */
static char *pct_decode(const char *s, size_t len)
{
    char *out = weir_malloc(len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            out[n++] = s[i];
            continue;
        }
        int hi = i + 2 < len ? weir_hex_digit(s[i + 1]) : -1;
        int lo = i + 2 < len ? weir_hex_digit(s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            return NULL;
        }
        out[n++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[n] = '\0';
    return out;
}

static bool all_digits(const char *s, size_t len)
{
    if (!len)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* Parses a decimal in [lo, hi]; -1 when it is not one. */
static long parse_range(const char *s, size_t len, long lo, long hi)
{
    if (!all_digits(s, len) || len > 10)
        return -1;
    long v = 0;
    for (size_t i = 0; i < len; i++)
        v = v * 10 + (s[i] - '0');
    return v < lo || v > hi ? -1 : v;
}

weir_status weir_redis_uri_parse(const char *uri, struct weir_redis_uri *u, struct weir_err *err)
{
    static const char scheme[] = "redis://";
    memset(u, 0, sizeof(*u));
    u->port = 6379;
    if (strncmp(uri, scheme, sizeof(scheme) - 1) != 0)
        return weir_err_set(err, "a redis URI starts with redis://");
    const char *a = uri + sizeof(scheme) - 1;
    if (strpbrk(a, "?#"))
        return weir_err_set(err, "query parameters and fragments are not supported in a redis URI "
                                 "(redis://[[user]:password@]host[:port][/db]/key)");
    const char *slash = strchr(a, '/');
    if (!slash || !slash[1])
        return weir_err_set(err, "missing list key: write "
                                 "redis://[[user]:password@]host[:port][/db]/<list-key>");
    const char *at = NULL;
    for (const char *c = a; c < slash; c++)
        if (*c == '@')
            at = c;
    const char *hp = a;
    if (at) {
        const char *colon = memchr(a, ':', (size_t)(at - a));
        if (!colon) {
            weir_err_set(err, "a user name needs a password in a redis URI (user:password@host)");
            goto fail;
        }
        if (colon > a)
            u->user = pct_decode(a, (size_t)(colon - a));
        u->password = pct_decode(colon + 1, (size_t)(at - colon - 1));
        if ((colon > a && !u->user) || !u->password) {
            weir_err_set(err, "bad percent-escape in the user or password of the redis URI");
            goto fail;
        }
        hp = at + 1;
    }
    const char *host = hp, *host_end, *port = NULL;
    if (*hp == '[') {
        host = hp + 1;
        host_end = memchr(host, ']', (size_t)(slash - host));
        if (!host_end) {
            weir_err_set(err, "unterminated [ in the host of the redis URI");
            goto fail;
        }
        if (host_end + 1 < slash) {
            if (host_end[1] != ':') {
                weir_err_set(err, "unexpected text after ] in the host of the redis URI");
                goto fail;
            }
            port = host_end + 2;
        }
    } else {
        host_end = memchr(hp, ':', (size_t)(slash - hp));
        if (host_end)
            port = host_end + 1;
        else
            host_end = slash;
    }
    if (host_end == host) {
        weir_err_set(err, "missing host in the redis URI");
        goto fail;
    }
    u->host = weir_strndup(host, (size_t)(host_end - host));
    if (port) {
        long v = parse_range(port, (size_t)(slash - port), 1, 65535);
        if (v < 0) {
            weir_err_set(err, "bad port '%.*s' in the redis URI (1..65535)", (int)(slash - port),
                         port);
            goto fail;
        }
        u->port = (int)v;
    }
    const char *path = slash + 1;
    const char *seg_end = strchr(path, '/');
    if (seg_end && all_digits(path, (size_t)(seg_end - path))) {
        long v = parse_range(path, (size_t)(seg_end - path), 0, INT_MAX);
        if (v < 0) {
            weir_err_set(err, "bad db '%.*s' in the redis URI (a database number)",
                         (int)(seg_end - path), path);
            goto fail;
        }
        u->db = (int)v;
        path = seg_end + 1;
    } else if (!seg_end && all_digits(path, strlen(path))) {
        /* redis://host/3 names a database, not a queue: almost surely a forgotten key. */
        weir_err_set(err,
                     "missing list key after db %s: write "
                     "redis://host[:port]/<db>/<list-key>",
                     path);
        goto fail;
    }
    if (!*path) {
        weir_err_set(err, "missing list key: write "
                          "redis://[[user]:password@]host[:port][/db]/<list-key>");
        goto fail;
    }
    u->key = pct_decode(path, strlen(path));
    if (!u->key) {
        weir_err_set(err, "bad percent-escape in the list key of the redis URI");
        goto fail;
    }
    return WEIR_OK;
fail:
    weir_redis_uri_deinit(u);
    return WEIR_ERR;
}

void weir_redis_uri_deinit(struct weir_redis_uri *u)
{
    free(u->host);
    free(u->user);
    if (u->password)
        memset(u->password, 0, strlen(u->password));
    free(u->password);
    free(u->key);
    memset(u, 0, sizeof(*u));
}
