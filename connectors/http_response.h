/* An HTTP/1.x response read as it arrives, a piece at a time: the status, the two headers that
 * carry a function's error, whether the connection may carry another request, and the body — with
 * a Content-Length, chunked, or up to the close. weir's own HTTP client (http_target.c) feeds it
 * what it reads. Owns its line buffer; the body goes where the caller says. Must never touch a
 * socket. */
#ifndef WEIR_HTTP_RESPONSE_H
#define WEIR_HTTP_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* A response's status line and headers together; more is not a function's answer. */
#define WEIR_HTTP_HEAD_MAX (64 * 1024)
/* A chunk-size or trailer line. */
#define WEIR_HTTP_LINE_MAX 4096

enum weir_http_parsed {
    WEIR_HTTP_MORE,      /* not whole yet: feed what comes next */
    WEIR_HTTP_DONE,      /* whole: status, headers and body are final */
    WEIR_HTTP_BAD,       /* not HTTP, or a length or chunk that makes no sense: error says what */
    WEIR_HTTP_TOO_LARGE, /* the body passed max_body; body holds its first max_body bytes */
};

struct weir_http_response {
    /* What was read; final once done. Only the final response's, after any 1xx. */
    long status;
    char function_error[64]; /* X-Amz-Function-Error, "" when none */
    char error_type[64];     /* Error-Type (the emulator's newer concurrency mode), "" when none */
    bool keep_alive;         /* the connection may carry another request after this response */
    bool done;
    struct weir_buf *body; /* borrowed: where the body goes */
    size_t max_body;
    char error[160]; /* after WEIR_HTTP_BAD or WEIR_HTTP_TOO_LARGE: why */
    /* The parser's own. */
    int state;
    struct weir_buf line; /* the head, or a chunk-size or trailer line, until it is whole */
    uint64_t remaining;
};

/* Ready to read a response whose body goes to body (appended), up to max_body bytes. */
void weir_http_response_init(struct weir_http_response *r, struct weir_buf *body, size_t max_body);
/* Ready to read a response again from its first byte (the request sent again); body emptied. */
void weir_http_response_reset(struct weir_http_response *r);
void weir_http_response_deinit(struct weir_http_response *r);

/* Reads the next n bytes. After DONE, bytes fed are past the response: keep_alive becomes
 * false (the connection cannot be trusted with another request) and DONE is returned again.
 * After BAD or TOO_LARGE, nothing more may be fed. */
enum weir_http_parsed weir_http_response_feed(struct weir_http_response *r, const char *data,
                                              size_t n);

/* The server closed the connection: true when that ends the response (a body without a length),
 * which is then done; false when the response was cut short (or was already done). */
bool weir_http_response_closed(struct weir_http_response *r);

#endif
