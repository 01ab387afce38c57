/* Function targets: the outward protocols that invoke a function (HTTP Invoke API, local command).
 * A target reports what happened; it must never decide policy (retry, verdicts). */
#ifndef WEIR_TARGET_H
#define WEIR_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/status.h"

struct event_base;
struct weir_function_cfg;

/* Lambda's synchronous response limit: 6 MiB + 100 bytes. Larger responses are cut and flagged. */
#define WEIR_RESPONSE_MAX (6 * 1024 * 1024 + 100)

enum weir_transport {
    WEIR_TRANSPORT_OK,      /* a response arrived (any HTTP status; exec: the child exited) */
    WEIR_TRANSPORT_TIMEOUT, /* the function's timeout passed; the request was aborted/killed */
    WEIR_TRANSPORT_REFUSED, /* nothing listening / could not start: the function never ran */
    WEIR_TRANSPORT_FAILED,  /* broken mid-way (reset, crash by signal); the function may have run */
    WEIR_TRANSPORT_TOO_LARGE, /* the response passed WEIR_RESPONSE_MAX */
};

struct weir_invoke_result {
    enum weir_transport transport;
    long status;             /* HTTP status; exec: 200 when the child exited 0, else 0 */
    int exit_code;           /* exec: exit status, -1 if killed by a signal */
    char function_error[64]; /* X-Amz-Function-Error or Error-Type header; exec: "Unhandled" on a
                                non-zero exit; "" when none */
    struct weir_buf body;    /* response bytes (stdout for exec) */
    char detail[256];        /* the library's or OS's own error text, for logs */
    int64_t elapsed_us;
};

/* Called exactly once per invocation, always from the event loop and never from inside invoke.
 * res is valid only during the call. */
typedef void (*weir_invoke_done_fn)(void *arg, struct weir_invoke_result *res);

struct weir_target;
struct weir_invocation;

struct weir_target_ops {
    const char *name;
    /* A target for endpoint `endpoint` of fc (an index into fc->urls; 0 for a command). */
    struct weir_target *(*new)(const struct weir_function_cfg *fc, size_t endpoint,
                               struct event_base *base, struct weir_err *err);
    /* Starts one invocation. payload is borrowed until done is called or the invocation is
     * cancelled. Never fails synchronously: errors are reported through done. */
    struct weir_invocation *(*invoke)(struct weir_target *t, const char *payload, size_t len,
                                      int64_t timeout_ms, weir_invoke_done_fn done, void *arg);
    /* Aborts an invocation; done is not called afterwards. */
    void (*cancel)(struct weir_invocation *inv);
    /* Frees the target; invocations still running are cancelled. NULL is a no-op. */
    void (*free)(struct weir_target *t);
};

/* weir's own HTTP/1.1 client, for plain http:// URLs (http_target.c). */
extern const struct weir_target_ops weir_target_http;
/* libcurl, for any other URL: https, credentials in the URL, a proxy (curl_target.c). */
extern const struct weir_target_ops weir_target_curl;
/* A local command (exec_target.c). */
extern const struct weir_target_ops weir_target_exec;

/* Whether weir's own HTTP client takes url: plain http://, no user or password in it, no proxy in
 * the environment (http_proxy, all_proxy and their upper-case forms), and WEIR_HTTP_CLIENT is not
 * "libcurl". */
bool weir_http_target_takes(const char *url);

/* The target a function is invoked through: exec for a command; http when weir's own client takes
 * every one of its URLs; else curl. */
const struct weir_target_ops *weir_target_for(const struct weir_function_cfg *fc);

void weir_invoke_result_init(struct weir_invoke_result *res);
void weir_invoke_result_deinit(struct weir_invoke_result *res);

#endif
