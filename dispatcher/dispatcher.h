/* The dispatcher: drives a batch to its final outcome. It owns functions (their endpoint pools
 * and concurrency), invocations, classification, and the delivery policies that turn an outcome
 * into a verdict per record (dispatcher/policy.h). It must never parse a source protocol. */
#ifndef WEIR_DISPATCHER_H
#define WEIR_DISPATCHER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/status.h"
#include "model/record.h"

struct event_base;
struct weir_function_cfg;
struct weir_function;
struct weir_target_ops;

/* How one mapping wants its batches driven. */
struct weir_disp_policy {
    enum weir_delivery delivery; /* the policy row (dispatcher/policy.h) */
    bool report_batch_item_failures;
    const char *mapping_name; /* for logs; borrowed */
};

/* Called once per submitted batch when every record has a verdict; ownership of b returns. */
typedef void (*weir_disp_done_fn)(void *arg, struct weir_batch *b);

/* Builds the function's targets (one per endpoint, or one command). cfg is borrowed. */
struct weir_function *weir_function_new(const struct weir_function_cfg *cfg,
                                        struct event_base *base, struct weir_err *err);
/* The same with the target protocol given: tests drive the dispatcher with a fake target. */
struct weir_function *weir_function_new_with(const struct weir_function_cfg *cfg,
                                             const struct weir_target_ops *ops,
                                             struct event_base *base, struct weir_err *err);
/* Cancels whatever is still running (its batches are not called back). NULL is a no-op. */
void weir_function_free(struct weir_function *fn);
const char *weir_function_name(const struct weir_function *fn);

/* How many more invocations the function could start now (bounded by reserved concurrency and
 * single-flight endpoints; a large number when unbounded). */
size_t weir_function_free_slots(const struct weir_function *fn);
/* Registers cb(arg) to be called whenever a slot frees; the same (cb, arg) is kept once. */
void weir_function_watch(struct weir_function *fn, void (*cb)(void *arg), void *arg);
void weir_function_unwatch(struct weir_function *fn, void (*cb)(void *arg), void *arg);

/* Takes b and drives it by pol's policy row; done(arg, b) gives it back with verdicts. pol is
 * borrowed for as long as the batch is in flight. */
void weir_disp_submit(struct weir_function *fn, struct weir_batch *b,
                      const struct weir_disp_policy *pol, weir_disp_done_fn done, void *arg);
/* Shutdown past its bound: abort every invocation and waiting batch of fn; each comes back through
 * its done callback. Records of an aborted invocation are RETRY (the function may have run them);
 * records never sent (waiting, or backing off after a throttle) are RELEASE. */
void weir_disp_abort(struct weir_function *fn);

#endif
