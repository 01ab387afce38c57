/* The URL rule shared by the HTTP function targets (http_target.c, curl_target.c): which URL an
 * endpoint is POSTed to, and the Host header a request names it with.
 * Owns nothing; must never open a connection. */
#ifndef WEIR_HTTP_URL_H
#define WEIR_HTTP_URL_H

#include "core/status.h"

struct weir_function_cfg;

/* The URL an invocation of fc is POSTed to: raw as written when it has a path (the emulator's
 * fixed path, a webhook) or fc->raw_url is set; a bare base URL ("http://host:port", or with
 * "/") gets the Lambda Invoke API path for the function. log_url is raw with any password
 * hidden, for the error. NULL with err filled when raw does not parse; the caller frees the
 * result. */
char *weir_http_function_url(const struct weir_function_cfg *fc, const char *raw,
                             const char *log_url, struct weir_err *err);

/* "Host: host[:port]" for url, as libcurl would write it (no port when it is the scheme's
 * default). NULL when url does not parse; the caller frees the result. */
char *weir_http_host_header(const char *url);

#endif
