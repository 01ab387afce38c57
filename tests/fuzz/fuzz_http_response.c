/* libFuzzer target for the HTTP response reader (connectors/http_response.c), which reads what a
 * function's server answers. Every input after its first byte is an answer; it is read twice:
 * whole in one piece, and in pieces whose sizes the first byte seeds (a server's writes and TCP
 * split answers anywhere). Both readings must agree on everything — the result, the status, both
 * error headers, keep-alive and the body — and the body never passes the limit (kept small here,
 * so TOO_LARGE is reached). It checks what the unit tests cannot enumerate: no crash, leak or
 * undefined behaviour for any bytes, and nothing that depends on where the reads split.
 *
 * Seeds: with WEIR_FUZZ_SEED_DIR set (tests/fuzz/run.sh sets it), LLVMFuzzerInitialize writes a
 * few real answers there (Content-Length, chunked with extensions and trailers, 100 Continue,
 * HTTP/1.0 up to the close, bare line feeds, the emulator's error headers) before libFuzzer reads
 * the directory. Run by tests/fuzz/run.sh. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/http_response.h"
#include "core/buf.h"

#define BODY_MAX 1000

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const seeds[] = {
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Amz-Function-Error: Unhandled\r\n\r\n"
     "5\r\nhello\r\n6;name=value\r\n world\r\n0\r\nTrailer-Field: x\r\n\r\n"),
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n",
    "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nup to the close",
    "HTTP/1.1 500 Internal Server Error\nContent-Length: 5\nError-Type: Runtime.ExitError\n\nboom!",
    "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
    "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabcextra",
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *dir = getenv("WEIR_FUZZ_SEED_DIR");
    if (!dir || !*dir)
        return 0;
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/http-%zu", dir, i);
        FILE *f = fopen(path, "wb");
        if (!f)
            continue;
        fputc((int)(i * 37 + 1), f); /* the split seed */
        fputs(seeds[i], f);
        fclose(f);
    }
    return 0;
}

struct reading {
    struct weir_buf body;
    struct weir_http_response r;
    enum weir_http_parsed result;
};

/* Feeds one piece, as the client does: nothing more after BAD or TOO_LARGE. */
static void feed(struct reading *x, const char *data, size_t n)
{
    if (x->result == WEIR_HTTP_BAD || x->result == WEIR_HTTP_TOO_LARGE)
        return;
    x->result = weir_http_response_feed(&x->r, data, n);
}

/* The connection ends after the last piece. */
static void end(struct reading *x)
{
    if (x->result == WEIR_HTTP_MORE && weir_http_response_closed(&x->r))
        x->result = WEIR_HTTP_DONE;
}

static void reading_init(struct reading *x)
{
    weir_buf_init(&x->body);
    weir_http_response_init(&x->r, &x->body, BODY_MAX);
    x->result = WEIR_HTTP_MORE;
}

static void reading_deinit(struct reading *x)
{
    weir_http_response_deinit(&x->r);
    weir_buf_deinit(&x->body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint32_t seed = data[0] * 2654435761u + 1;
    const char *answer = (const char *)data + 1;
    size_t len = size - 1;

    struct reading whole, pieces;
    reading_init(&whole);
    reading_init(&pieces);
    feed(&whole, answer, len);
    end(&whole);
    for (size_t at = 0; at < len;) {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        size_t n = 1 + seed % 23;
        if (n > len - at)
            n = len - at;
        feed(&pieces, answer + at, n);
        at += n;
    }
    end(&pieces);

    if (whole.result != pieces.result)
        abort();
    if (whole.body.len > BODY_MAX || pieces.body.len > BODY_MAX)
        abort();
    if (whole.result == WEIR_HTTP_DONE || whole.result == WEIR_HTTP_TOO_LARGE) {
        if (whole.body.len != pieces.body.len ||
            (whole.body.len && memcmp(whole.body.data, pieces.body.data, whole.body.len) != 0))
            abort();
        if (whole.r.status != pieces.r.status || whole.r.status < 200 || whole.r.status > 599)
            abort();
        if (strcmp(whole.r.function_error, pieces.r.function_error) != 0 ||
            strcmp(whole.r.error_type, pieces.r.error_type) != 0)
            abort();
    }
    if (whole.result == WEIR_HTTP_DONE &&
        (whole.r.keep_alive != pieces.r.keep_alive || !whole.r.done || !pieces.r.done))
        abort();
    if ((whole.result == WEIR_HTTP_BAD || whole.result == WEIR_HTTP_TOO_LARGE) &&
        (!whole.r.error[0] || !pieces.r.error[0] || whole.r.keep_alive || pieces.r.keep_alive))
        abort();
    reading_deinit(&whole);
    reading_deinit(&pieces);
    return 0;
}
