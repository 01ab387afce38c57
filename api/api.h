/* The control plane's HTTP server (libevent's evhttp): the Lambda Invoke API, so the AWS CLI and
 * SDKs, pointed at weir with --endpoint-url, invoke weir's functions; and /healthz. Signatures
 * are accepted, not verified: it listens on loopback unless told otherwise. Must never invoke or
 * queue anything itself: the dispatcher does. */
#ifndef WEIR_API_H
#define WEIR_API_H

#include <stddef.h>

#include "core/status.h"

struct event_base;
struct weir_api_cfg;
struct weir_function;
struct weir_api;

/* Listens on cfg's address. fns (n of them) are the functions it serves, borrowed; they and
 * cfg must outlive the server. region: for ARNs in error messages. NULL with err on failure (the
 * address cannot be bound). */
struct weir_api *weir_api_new(const struct weir_api_cfg *cfg, struct event_base *base,
                              struct weir_function *const *fns, size_t n, const char *region,
                              struct weir_err *err);
/* The port it listens on (the one picked when cfg asked for 0). */
int weir_api_port(const struct weir_api *api);
/* Stops listening; requests already in progress are answered. done(arg) follows once the last
 * is. */
void weir_api_stop(struct weir_api *api, void (*done)(void *arg), void *arg);
/* NULL is a no-op. */
void weir_api_free(struct weir_api *api);

#endif
