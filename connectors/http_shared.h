/* What the two HTTP function targets (http_target.c, curl_target.c) share: which URL an endpoint
 * is POSTed to, the Host header a request names it with, and reading a response's headers.
 * Owns nothing; must never open a connection. */
#ifndef WEIR_HTTP_SHARED_H
#define WEIR_HTTP_SHARED_H

#include <stdbool.h>
#include <stddef.h>

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

/* Whether the header line (n bytes, no line end) is header `name` (any case); *value and
 * *value_len are then what follows the colon, untrimmed. */
bool weir_http_header_is(const char *line, size_t n, const char *name, const char **value,
                         size_t *value_len);

/* Copies a header's value (n bytes), blanks and line ends trimmed, into out (cut to fit). */
void weir_http_header_value(const char *v, size_t n, char *out, size_t out_len);

#endif
