/* core/resolve.c on a real libevent loop and the machine's own resolver configuration: numeric
 * addresses pass through without DNS, "localhost" comes from /etc/hosts, a name under .invalid
 * fails naming the host, a lookup of every address gives them all, and cancelled lookups (or those
 * of a freed resolver) call nothing and leak nothing (LeakSanitizer in the sanitizer build). Never
 * from inside weir_resolve_start. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "core/resolve.h"

/* evdns gives up on a silent nameserver after about 6 s; this only bounds a broken test. */
#define WAIT_MS 30000

struct outcome {
    int calls;
    bool ok;
    char addr[80];
    char err[WEIR_ERR_MAX];
};

struct fixture {
    struct event_base *base;
    struct weir_resolver *rs;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_result(const char *addr, const struct weir_err *err, void *arg)
{
    struct outcome *o = arg;
    o->calls++;
    /* Exactly one of the two, every time. */
    assert_true((addr == NULL) != (err == NULL));
    o->ok = addr != NULL;
    if (addr)
        snprintf(o->addr, sizeof(o->addr), "%s", addr);
    else
        snprintf(o->err, sizeof(o->err), "%s", err->msg);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
}

/* Drives the loop until o has been called or ms have passed; a tick keeps the loop waking up so
 * the deadline holds even when nothing else fires. */
static void run_until_called(struct event_base *base, const struct outcome *o, int64_t ms)
{
    struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {0, 50 * 1000};
    event_add(tick, &tv);
    int64_t deadline = now_ms() + ms;
    while (o->calls == 0 && now_ms() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(tick);
}

/* Fds and timers armed on the loop (evdns arms a timer per query, and its socket). libevent's
 * "added" count also counts each activation, hence the difference. */
static int armed(struct event_base *base)
{
    return event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED) -
           event_base_get_num_events(base, EVENT_BASE_COUNT_ACTIVE);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->base = event_base_new();
    struct weir_err err = {{0}};
    f->rs = weir_resolver_new(f->base, &err);
    if (!f->rs)
        fail_msg("weir_resolver_new: %s", err.msg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    weir_resolver_free(f->rs);
    /* What the header asks of a caller: one more pass, for evdns's hand-backs. */
    event_base_loop(f->base, EVLOOP_NONBLOCK);
    event_base_free(f->base);
    free(f);
    return 0;
}

/* Starts host, checks nothing was reported from inside the call and no query was sent, then
 * waits for the one answer. */
static void expect_address_without_dns(struct fixture *f, const char *host, const char *want)
{
    struct outcome o = {0};
    assert_non_null(weir_resolve_start(f->rs, host, 6379, on_result, &o));
    assert_int_equal(o.calls, 0);
    assert_int_equal(armed(f->base), 0);
    run_until_called(f->base, &o, WAIT_MS);
    assert_int_equal(o.calls, 1);
    if (!o.ok)
        fail_msg("%s: %s", host, o.err);
    assert_string_equal(o.addr, want);
}

static void numeric_ipv4_passes_through_unchanged_and_later(void **state)
{
    struct fixture *f = *state;
    expect_address_without_dns(f, "127.0.0.1", "127.0.0.1");
    expect_address_without_dns(f, "10.20.30.40", "10.20.30.40");
    expect_address_without_dns(f, "[192.0.2.7]", "192.0.2.7");
}

static void ipv6_with_or_without_brackets_gives_the_bare_address(void **state)
{
    struct fixture *f = *state;
    expect_address_without_dns(f, "[::1]", "::1");
    expect_address_without_dns(f, "::1", "::1");
    expect_address_without_dns(f, "[2001:db8::5]", "2001:db8::5");
    /* A zone stays: a link-local address is useless without it, and getaddrinfo parses it. */
    expect_address_without_dns(f, "[fe80::1%lo]", "fe80::1%lo");
}

static void localhost_resolves_from_etc_hosts_without_a_query(void **state)
{
    struct fixture *f = *state;
    struct outcome o = {0};
    weir_resolve_start(f->rs, "localhost", 6379, on_result, &o);
    /* evdns answers a hosts-file name inside its own call; that must not reach the caller. */
    assert_int_equal(o.calls, 0);
    assert_int_equal(armed(f->base), 0);
    run_until_called(f->base, &o, WAIT_MS);
    assert_int_equal(o.calls, 1);
    if (!o.ok)
        fail_msg("localhost: %s", o.err);
    if (strcmp(o.addr, "127.0.0.1") != 0 && strcmp(o.addr, "::1") != 0)
        fail_msg("localhost resolved to %s", o.addr);
}

/* weir_resolve_all_start's outcome: the first address (o.addr) and how many came (n); the
 * callback checks that each is a numeric address. */
struct all_outcome {
    struct outcome o;
    size_t n;
};

static void on_all(const char *const *addrs, size_t n, const struct weir_err *err, void *arg)
{
    struct all_outcome *a = arg;
    a->o.calls++;
    assert_true((addrs == NULL) != (err == NULL));
    assert_true((n == 0) == (addrs == NULL));
    assert_true(n <= WEIR_RESOLVE_ADDRS_MAX);
    a->o.ok = addrs != NULL;
    a->n = n;
    if (addrs)
        snprintf(a->o.addr, sizeof(a->o.addr), "%s", addrs[0]);
    else
        snprintf(a->o.err, sizeof(a->o.err), "%s", err->msg);
    for (size_t i = 0; i < n; i++)
        assert_true(strchr(addrs[i], '.') || strchr(addrs[i], ':'));
}

static void every_address_comes_back_when_asked_for(void **state)
{
    struct fixture *f = *state;
    struct all_outcome numeric = {0}, hosts = {0}, none = {0};
    weir_resolve_all_start(f->rs, "[::1]", 80, on_all, &numeric);
    weir_resolve_all_start(f->rs, "localhost", 80, on_all, &hosts);
    weir_resolve_all_start(f->rs, "no-such-host.weir-test.invalid", 80, on_all, &none);
    assert_int_equal(numeric.o.calls + hosts.o.calls + none.o.calls, 0);
    run_until_called(f->base, &numeric.o, WAIT_MS);
    run_until_called(f->base, &hosts.o, WAIT_MS);
    run_until_called(f->base, &none.o, WAIT_MS);
    assert_true(numeric.o.ok);
    assert_int_equal(numeric.n, 1);
    assert_string_equal(numeric.o.addr, "::1");
    if (!hosts.o.ok)
        fail_msg("localhost: %s", hosts.o.err);
    assert_true(hosts.n >= 1);
    assert_false(none.o.ok);
    assert_non_null(strstr(none.o.err, "no-such-host.weir-test.invalid"));
}

static void a_name_under_invalid_fails_naming_the_host(void **state)
{
    struct fixture *f = *state;
    struct outcome o = {0};
    int64_t t0 = now_ms();
    weir_resolve_start(f->rs, "no-such-host.weir-test.invalid", 6379, on_result, &o);
    /* Started, not waited for: whether a nameserver answers NXDOMAIN or never answers at all. */
    assert_true(now_ms() - t0 < 500);
    assert_int_equal(o.calls, 0);
    run_until_called(f->base, &o, WAIT_MS);
    assert_int_equal(o.calls, 1);
    if (o.ok)
        fail_msg("a .invalid name resolved to %s", o.addr);
    print_message("error: %s\n", o.err);
    assert_non_null(strstr(o.err, "\"no-such-host.weir-test.invalid\""));
    /* evdns's own text is kept after the host (NXDOMAIN, a timeout, or no nameserver). */
    const char *tail = strstr(o.err, "\": ");
    assert_non_null(tail);
    assert_true(strlen(tail) > 4);
}

static void an_empty_host_is_an_error_through_the_callback(void **state)
{
    struct fixture *f = *state;
    struct outcome o = {0};
    weir_resolve_start(f->rs, "[]", 6379, on_result, &o);
    assert_int_equal(o.calls, 0);
    run_until_called(f->base, &o, WAIT_MS);
    assert_int_equal(o.calls, 1);
    assert_false(o.ok);
    assert_non_null(strstr(o.err, "empty host"));
}

static void a_cancelled_lookup_never_calls_back(void **state)
{
    struct fixture *f = *state;
    struct outcome by_dns = {0}, numeric = {0}, hosts = {0}, control = {0};
    struct weir_resolve *q =
        weir_resolve_start(f->rs, "cancelled.weir-test.invalid", 6379, on_result, &by_dns);
    assert_true(armed(f->base) > 0); /* it is with evdns: a query is out */
    weir_resolve_cancel(q);
    /* Those whose outcome is already waiting on the loop. */
    weir_resolve_cancel(weir_resolve_start(f->rs, "127.0.0.1", 6379, on_result, &numeric));
    weir_resolve_cancel(weir_resolve_start(f->rs, "localhost", 6379, on_result, &hosts));
    weir_resolve_cancel(NULL);
    /* A lookup started after the cancelled one, to the same nameserver: once it has its answer,
     * the cancelled one would have had its own. */
    weir_resolve_start(f->rs, "control.weir-test.invalid", 6379, on_result, &control);
    run_until_called(f->base, &control, WAIT_MS);
    assert_int_equal(control.calls, 1);
    event_base_loop(f->base, EVLOOP_NONBLOCK);
    assert_int_equal(by_dns.calls, 0);
    assert_int_equal(numeric.calls, 0);
    assert_int_equal(hosts.calls, 0);
}

static void freeing_the_resolver_with_lookups_pending_calls_nothing(void **state)
{
    struct fixture *f = *state;
    struct outcome a = {0}, b = {0}, c = {0}, d = {0};
    weir_resolve_start(f->rs, "pending-a.weir-test.invalid", 6379, on_result, &a);
    weir_resolve_start(f->rs, "pending-b.weir-test.invalid", 6379, on_result, &b);
    assert_true(armed(f->base) > 0);
    /* Cancelled but not yet handed back by evdns when the resolver goes: the resolver (and its
     * evdns_base, which evdns's hand-back reads) must outlive it. */
    weir_resolve_cancel(
        weir_resolve_start(f->rs, "pending-c.weir-test.invalid", 6379, on_result, &c));
    weir_resolve_start(f->rs, "::1", 6379, on_result, &d);
    weir_resolver_free(f->rs);
    f->rs = NULL;
    /* Until nothing is left: evdns's sockets and timers go with the resolver. */
    event_base_dispatch(f->base);
    assert_int_equal(armed(f->base), 0);
    assert_int_equal(a.calls + b.calls + c.calls + d.calls, 0);
}

struct self_freeing {
    struct fixture *f;
    struct outcome o;
};

static void on_result_free_resolver(const char *addr, const struct weir_err *err, void *arg)
{
    struct self_freeing *s = arg;
    on_result(addr, err, &s->o);
    weir_resolver_free(s->f->rs);
    s->f->rs = NULL;
}

static void a_callback_may_free_the_resolver(void **state)
{
    struct fixture *f = *state;
    struct self_freeing s = {.f = f};
    struct outcome later = {0};
    weir_resolve_start(f->rs, "127.0.0.1", 6379, on_result_free_resolver, &s);
    weir_resolve_start(f->rs, "later.weir-test.invalid", 6379, on_result, &later);
    event_base_dispatch(f->base);
    assert_int_equal(s.o.calls, 1);
    assert_string_equal(s.o.addr, "127.0.0.1");
    assert_int_equal(later.calls, 0);
    assert_int_equal(armed(f->base), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(numeric_ipv4_passes_through_unchanged_and_later, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(ipv6_with_or_without_brackets_gives_the_bare_address, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(localhost_resolves_from_etc_hosts_without_a_query, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(every_address_comes_back_when_asked_for, setup, teardown),
        cmocka_unit_test_setup_teardown(a_name_under_invalid_fails_naming_the_host, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(an_empty_host_is_an_error_through_the_callback, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_cancelled_lookup_never_calls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(freeing_the_resolver_with_lookups_pending_calls_nothing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_callback_may_free_the_resolver, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
