/* Host names to numeric addresses without blocking the loop: libevent's evdns instead of the
 * getaddrinfo that hiredis (or anyone) would call for a name. A caller connects to the address it
 * is given, which getaddrinfo parses without any I/O.
 * Owns one evdns_base and the lookups started on it; never calls back from inside its own calls. */
#ifndef WEIR_RESOLVE_H
#define WEIR_RESOLVE_H

#include <stddef.h>

#include "core/status.h"

struct event_base;
struct weir_resolver;
struct weir_resolve;

/* The outcome of one lookup: called exactly once, from the loop, unless the lookup is cancelled
 * or its resolver freed first.
 * addr: on success, the first address found as a numeric string ("127.0.0.1", "::1",
 *   "fe80::1%eth0"); err is then NULL.
 * err: on failure, why, naming the host and keeping evdns's own error text; addr is then NULL.
 * Both are borrowed for the call. The lookup's handle is already freed when this runs: do not
 * cancel it. The callback may start lookups and may free the resolver. */
typedef void (*weir_resolve_fn)(const char *addr, const struct weir_err *err, void *arg);

/* A resolver on base, configured like the system: nameservers, search domains and options from
 * /etc/resolv.conf, names from /etc/hosts (so "localhost" needs no network). With no resolv.conf,
 * or no nameserver in it, it asks 127.0.0.1 as libc would, and logs a warning. A nameserver that
 * never answers fails a lookup after about 6 s (3 s timeout, 2 attempts) unless resolv.conf's
 * "options timeout: attempts:" say otherwise. An idle resolver keeps nothing armed on the loop.
 * base: borrowed; must outlive the resolver.
 * Returns a resolver the caller frees with weir_resolver_free, or NULL with err filled. */
struct weir_resolver *weir_resolver_new(struct event_base *base, struct weir_err *err);

/* Cancels every pending lookup without calling its callback, and frees the resolver. NULL is a
 * no-op. libevent hands lookups already sent to a nameserver back through the loop, so with such
 * lookups pending the last of the memory (the resolver's included) is released on the loop's next
 * pass: run the loop once more (event_base_loop(base, EVLOOP_NONBLOCK) is enough) before
 * event_base_free, or that memory leaks. */
void weir_resolver_free(struct weir_resolver *rs);

/* Starts resolving host to one numeric address; cb(addr, err, arg) reports it later from the
 * loop, never from inside this call.
 * host: copied. A name, or a numeric IPv4 or IPv6 address with or without the brackets of a URI
 *   ("[::1]"); a numeric address comes back as written, brackets removed, without any DNS work.
 * port: for the log line only; the answer is an address, good for any port.
 * Returns the lookup's handle, owned by the resolver and valid until cb runs, the lookup is
 * cancelled or the resolver is freed. Never NULL: every failure is reported through cb. */
struct weir_resolve *weir_resolve_start(struct weir_resolver *rs, const char *host, int port,
                                        weir_resolve_fn cb, void *arg);

/* At most this many addresses of one name are kept. */
#define WEIR_RESOLVE_ADDRS_MAX 8

/* The outcome of a lookup of every address, as weir_resolve_fn's: addrs[0..n) on success, in the
 * resolver's order (IPv4 first), n > 0 and err NULL; on failure addrs NULL, n 0 and err set. */
typedef void (*weir_resolve_all_fn)(const char *const *addrs, size_t n, const struct weir_err *err,
                                    void *arg);

/* As weir_resolve_start, for a caller that tries each address in turn (a function listening on
 * "localhost" only on ::1, a name with one host down). */
struct weir_resolve *weir_resolve_all_start(struct weir_resolver *rs, const char *host, int port,
                                            weir_resolve_all_fn cb, void *arg);

/* Cancels a pending lookup and frees its handle; its callback is never called. NULL is a no-op.
 * Not for a lookup whose callback has run: that handle is already gone. */
void weir_resolve_cancel(struct weir_resolve *q);

#endif
