/* An HTTP/1.x response read as it arrives (see http_response.h). The head is parsed in place when
 * one read holds it whole, as it nearly always does; only a head, chunk-size or trailer line split
 * across reads is gathered. Must never touch a socket. */
#include "connectors/http_response.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "connectors/http_shared.h"

enum state {
    READ_HEAD,       /* status line and headers, gathered in line until the blank line */
    READ_BODY,       /* `remaining` bytes of a Content-Length body */
    READ_CHUNK_SIZE, /* a chunk-size line */
    READ_CHUNK_DATA, /* `remaining` bytes of a chunk */
    READ_CHUNK_END,  /* the line end after a chunk */
    READ_TRAILER,    /* trailer lines after the last chunk, until a blank one */
    READ_TO_CLOSE,   /* a body without a length: it ends when the server closes */
    READ_DONE,
    READ_FAILED,
};

void weir_http_response_init(struct weir_http_response *r, struct weir_buf *body, size_t max_body)
{
    memset(r, 0, sizeof(*r));
    r->body = body;
    r->max_body = max_body;
    weir_buf_init(&r->line);
    r->state = READ_HEAD;
}

void weir_http_response_reset(struct weir_http_response *r)
{
    struct weir_buf *body = r->body;
    size_t max_body = r->max_body;
    weir_buf_deinit(&r->line);
    weir_http_response_init(r, body, max_body);
    weir_buf_reset(body);
}

void weir_http_response_deinit(struct weir_http_response *r)
{
    weir_buf_deinit(&r->line);
}

static enum weir_http_parsed bad(struct weir_http_response *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static enum weir_http_parsed bad(struct weir_http_response *r, const char *fmt, ...)
{
    int k = snprintf(r->error, sizeof(r->error), "malformed HTTP response: ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error + k, sizeof(r->error) - (size_t)k, fmt, ap);
    va_end(ap);
    r->state = READ_FAILED;
    r->keep_alive = false;
    return WEIR_HTTP_BAD;
}

/* Appends body bytes, up to max_body: past it, what fits is kept and the response is too large. */
static enum weir_http_parsed body_append(struct weir_http_response *r, const char *data, size_t n)
{
    struct weir_buf *body = r->body;
    if (body->len + n > r->max_body) {
        weir_buf_append(body, data, r->max_body - body->len);
        snprintf(r->error, sizeof(r->error), "response larger than %zu bytes", r->max_body);
        r->state = READ_FAILED;
        r->keep_alive = false;
        return WEIR_HTTP_TOO_LARGE;
    }
    weir_buf_append(body, data, n);
    return WEIR_HTTP_MORE;
}

/* Whether the comma-separated header value v holds token (any case). */
static bool value_has(const char *v, size_t n, const char *token)
{
    size_t k = strlen(token);
    for (size_t i = 0; i + k <= n; i++)
        if (strncasecmp(v + i, token, k) == 0)
            return true;
    return false;
}

/* A decimal Content-Length, digits only (blanks around it trimmed); false when it is not one. */
static bool parse_length(const char *v, size_t n, uint64_t *out)
{
    char digits[24];
    weir_http_header_value(v, n, digits, sizeof(digits));
    if (digits[0] < '0' || digits[0] > '9')
        return false;
    char *stop;
    errno = 0;
    unsigned long long parsed = strtoull(digits, &stop, 10);
    if (*stop || errno)
        return false;
    *out = parsed;
    return true;
}

/* Reads the status line and headers of head (len bytes, through the blank line) and sets what
 * the body is. */
static enum weir_http_parsed parse_head(struct weir_http_response *r, const char *head, size_t len)
{
    const char *end = head + len;
    const char *eol = memchr(head, '\n', len);
    /* "HTTP/1.x NNN reason" */
    if (len < 12 || memcmp(head, "HTTP/1.", 7) != 0 || (head[7] != '0' && head[7] != '1') ||
        head[8] != ' ' || head[9] < '1' || head[9] > '5' || head[10] < '0' || head[10] > '9' ||
        head[11] < '0' || head[11] > '9') {
        size_t show = eol ? (size_t)(eol - head) : len;
        return bad(r, "status line \"%.*s\"", (int)(show > 60 ? 60 : show), head);
    }
    bool http10 = head[7] == '0';
    long status = (head[9] - '0') * 100 + (head[10] - '0') * 10 + (head[11] - '0');
    bool chunked = false, close = http10, has_length = false;
    uint64_t length = 0;
    char fn_error[64] = "", error_type[64] = "";
    for (const char *line = eol + 1; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t n = (size_t)(nl - line);
        if (n > 0 && line[n - 1] == '\r')
            n--;
        const char *v;
        size_t vn;
        uint64_t value;
        if (n == 0) {
            break;
        } else if (weir_http_header_is(line, n, "Content-Length", &v, &vn)) {
            /* Two that disagree leave the body's end unknown: a smuggling attempt or a bug. */
            if (!parse_length(v, vn, &value) || (has_length && value != length))
                return bad(r, "Content-Length \"%.*s\"", (int)(vn > 30 ? 30 : vn), v);
            has_length = true;
            length = value;
        } else if (weir_http_header_is(line, n, "Transfer-Encoding", &v, &vn)) {
            chunked = value_has(v, vn, "chunked");
        } else if (weir_http_header_is(line, n, "Connection", &v, &vn)) {
            if (value_has(v, vn, "close"))
                close = true;
            else if (value_has(v, vn, "keep-alive"))
                close = false;
        } else if (weir_http_header_is(line, n, "X-Amz-Function-Error", &v, &vn)) {
            weir_http_header_value(v, vn, fn_error, sizeof(fn_error));
        } else if (weir_http_header_is(line, n, "Error-Type", &v, &vn)) {
            weir_http_header_value(v, vn, error_type, sizeof(error_type));
        }
        line = nl + 1;
    }
    if (status < 200) {
        if (status == 101)
            return bad(r, "101 Switching Protocols to a POST");
        /* An interim response (100 Continue): the final one follows. */
        return WEIR_HTTP_MORE;
    }
    r->status = status;
    memcpy(r->function_error, fn_error, sizeof(fn_error));
    memcpy(r->error_type, error_type, sizeof(error_type));
    r->keep_alive = !close;
    if (status == 204 || status == 304) {
        r->state = READ_DONE;
    } else if (chunked) {
        r->state = READ_CHUNK_SIZE;
    } else if (has_length) {
        r->remaining = length;
        r->state = length ? READ_BODY : READ_DONE;
        weir_buf_reserve(r->body, length > r->max_body ? r->max_body : (size_t)length);
    } else {
        r->state = READ_TO_CLOSE;
        r->keep_alive = false;
    }
    return WEIR_HTTP_MORE;
}

/* The length of the head at data, through its blank line (CR LF or a bare LF, as libcurl takes
 * too); 0 while the blank line has not come. */
static size_t head_end(const char *data, size_t n)
{
    for (const char *nl = memchr(data, '\n', n); nl;
         nl = memchr(nl + 1, '\n', n - (size_t)(nl + 1 - data))) {
        size_t rest = n - (size_t)(nl + 1 - data);
        if (rest >= 1 && nl[1] == '\n')
            return (size_t)(nl + 2 - data);
        if (rest >= 2 && nl[1] == '\r' && nl[2] == '\n')
            return (size_t)(nl + 3 - data);
    }
    return 0;
}

/* Gathers one line ending in LF into r->line; true once it is whole (its line end removed). */
static bool take_line(struct weir_http_response *r, const char **data, size_t *n)
{
    const char *nl = memchr(*data, '\n', *n);
    size_t take = nl ? (size_t)(nl - *data) + 1 : *n;
    weir_buf_append(&r->line, *data, take);
    *data += take;
    *n -= take;
    if (!nl)
        return false;
    r->line.len--;
    if (r->line.len > 0 && r->line.data[r->line.len - 1] == '\r')
        r->line.len--;
    r->line.data[r->line.len] = '\0';
    return true;
}

/* Whether the line gathered so far is past WEIR_HTTP_LINE_MAX. Part of a line may end in the CR
 * of its line end, which a whole one has lost: one byte more is allowed until it is whole, so a
 * line is refused the same wherever the reads split it. */
static bool line_too_long(const struct weir_http_response *r, bool whole)
{
    return r->line.len > WEIR_HTTP_LINE_MAX + (whole ? 0 : 1);
}

/* A chunk-size line: hex digits, then blanks or a ";extension" (ignored). */
static bool parse_chunk_size(const char *line, uint64_t *out)
{
    uint64_t size = 0;
    size_t digits = 0, zeros = 0;
    while (line[zeros] == '0' && line[zeros + 1] == '0')
        zeros++; /* padding: "0000a" is 10 */
    line += zeros;
    for (; line[digits]; digits++) {
        char c = line[digits];
        int v = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (v < 0)
            break;
        if (digits == 15) /* past 2^60 bytes: nobody's chunk */
            return false;
        size = size * 16 + (uint64_t)v;
    }
    const char *rest = line + digits;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    if (!digits || (*rest && *rest != ';'))
        return false;
    *out = size;
    return true;
}

enum weir_http_parsed weir_http_response_feed(struct weir_http_response *r, const char *data,
                                              size_t n)
{
    while (n > 0 || r->state == READ_DONE) {
        switch (r->state) {
        case READ_HEAD: {
            struct weir_buf *line = &r->line;
            size_t before = line->len;
            const char *head = data;
            size_t head_len = before == 0 ? head_end(data, n) : 0;
            if (!head_len) {
                weir_buf_append(line, data, n);
                /* The blank line may have begun in what was gathered before. */
                size_t from = before > 2 ? before - 2 : 0;
                size_t end = head_end(line->data + from, line->len - from);
                if (!end) {
                    if (line->len > WEIR_HTTP_HEAD_MAX)
                        return bad(r, "status line and headers longer than %d bytes",
                                   WEIR_HTTP_HEAD_MAX);
                    return WEIR_HTTP_MORE;
                }
                head = line->data;
                head_len = from + end;
            }
            /* Checked whole too, so that where the reads split never decides. */
            if (head_len > WEIR_HTTP_HEAD_MAX)
                return bad(r, "status line and headers longer than %d bytes", WEIR_HTTP_HEAD_MAX);
            size_t used = head_len - before;
            enum weir_http_parsed p = parse_head(r, head, head_len);
            weir_buf_reset(line);
            if (p != WEIR_HTTP_MORE)
                return p;
            data += used;
            n -= used;
            break;
        }
        case READ_BODY:
        case READ_CHUNK_DATA: {
            size_t take = n < r->remaining ? n : (size_t)r->remaining;
            if (body_append(r, data, take) == WEIR_HTTP_TOO_LARGE)
                return WEIR_HTTP_TOO_LARGE;
            data += take;
            n -= take;
            r->remaining -= take;
            if (r->remaining == 0)
                r->state = r->state == READ_BODY ? READ_DONE : READ_CHUNK_END;
            break;
        }
        case READ_CHUNK_SIZE: {
            bool whole = take_line(r, &data, &n);
            if (line_too_long(r, whole))
                return bad(r, "chunk-size line longer than %d bytes", WEIR_HTTP_LINE_MAX);
            if (!whole)
                break;
            uint64_t size;
            if (!parse_chunk_size(r->line.data, &size))
                return bad(r, "chunk size \"%.30s\"", r->line.data);
            weir_buf_reset(&r->line);
            r->remaining = size;
            r->state = size ? READ_CHUNK_DATA : READ_TRAILER;
            break;
        }
        case READ_CHUNK_END: {
            bool whole = take_line(r, &data, &n);
            if (line_too_long(r, whole))
                return bad(r, "no line end after a chunk");
            if (!whole)
                break;
            if (r->line.len != 0)
                return bad(r, "no line end after a chunk");
            r->state = READ_CHUNK_SIZE;
            break;
        }
        case READ_TRAILER: {
            bool whole = take_line(r, &data, &n);
            if (line_too_long(r, whole))
                return bad(r, "trailer line longer than %d bytes", WEIR_HTTP_LINE_MAX);
            if (!whole)
                break;
            if (r->line.len == 0)
                r->state = READ_DONE;
            weir_buf_reset(&r->line);
            break;
        }
        case READ_TO_CLOSE:
            if (body_append(r, data, n) == WEIR_HTTP_TOO_LARGE)
                return WEIR_HTTP_TOO_LARGE;
            n = 0;
            break;
        case READ_DONE:
            r->done = true;
            /* Bytes past the response: the connection cannot be trusted with another. */
            if (n > 0)
                r->keep_alive = false;
            return WEIR_HTTP_DONE;
        default: /* READ_FAILED: the caller was told */
            return WEIR_HTTP_BAD;
        }
    }
    return WEIR_HTTP_MORE;
}

bool weir_http_response_closed(struct weir_http_response *r)
{
    if (r->state != READ_TO_CLOSE)
        return false;
    r->state = READ_DONE;
    r->done = true;
    return true;
}
