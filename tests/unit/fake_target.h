/* A fake function target for unit tests of the layers above the connectors: it records each
 * invocation and lets the test complete it with any answer. Header-only so each test executable
 * gets its own copy. Include it after cmocka.h. */
#ifndef WEIR_TEST_FAKE_TARGET_H
#define WEIR_TEST_FAKE_TARGET_H

#include <stdlib.h>

#include "connectors/target.h"
#include "core/mem.h"

struct weir_target {
    size_t endpoint;
};

struct weir_invocation {
    struct weir_target *t;
    weir_invoke_done_fn done;
    void *arg;
    int active;
    const char *payload; /* borrowed: valid while active */
    size_t len;
};

#define MAX_INV 256
static struct weir_invocation invs[MAX_INV];
static size_t n_invs;
static size_t cancelled;

static struct weir_target *fake_new(const struct weir_function_cfg *fc, size_t endpoint,
                                    struct event_base *base, struct weir_err *err)
{
    struct weir_target *t = weir_calloc(1, sizeof(*t));
    t->endpoint = endpoint;
    return t;
}

static struct weir_invocation *fake_invoke(struct weir_target *t, const char *payload, size_t len,
                                           int64_t timeout_ms, weir_invoke_done_fn done, void *arg)
{
    assert_true(n_invs < MAX_INV);
    struct weir_invocation *inv = &invs[n_invs++];
    *inv = (struct weir_invocation){
        .t = t, .done = done, .arg = arg, .active = 1, .payload = payload, .len = len};
    return inv;
}

static void fake_cancel(struct weir_invocation *inv)
{
    inv->active = 0;
    cancelled++;
}

static void fake_free(struct weir_target *t)
{
    free(t);
}

static const struct weir_target_ops fake_ops = {
    .name = "fake",
    .new = fake_new,
    .invoke = fake_invoke,
    .cancel = fake_cancel,
    .free = fake_free,
};

static inline size_t active_on_endpoint(size_t endpoint)
{
    size_t n = 0;
    for (size_t i = 0; i < n_invs; i++)
        n += invs[i].active && invs[i].t->endpoint == endpoint;
    return n;
}

/* Completes invocation i with an HTTP-like answer. */
static inline void complete(size_t i, enum weir_transport transport, long status, const char *body)
{
    struct weir_invocation *inv = &invs[i];
    assert_true(inv->active);
    inv->active = 0;
    struct weir_invoke_result res;
    weir_invoke_result_init(&res);
    res.transport = transport;
    res.status = status;
    if (body)
        weir_buf_append_str(&res.body, body);
    inv->done(inv->arg, &res);
    weir_invoke_result_deinit(&res);
}

#endif
