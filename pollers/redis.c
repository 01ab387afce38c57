/* Redis list as SQS: a reliable queue on a list, with leases, receive counts and redrive.
 * Owns the Redis protocol for one mapping; must never know functions, HTTP or retries.
 * (Work in progress: the poller itself lands with the redis poller change.) */
#include <stddef.h>

#include "config/config.h"
#include "pollers/poller.h"

static void redis_validate(const struct weir_mapping_cfg *mc, struct weir_cfg_report *rep)
{
    /* AWS refuses a function timeout longer than the queue's visibility timeout. */
    if (mc->fn && mc->fn->timeout > mc->visibility_timeout)
        weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "visibility_timeout"),
                            "visibility_timeout (%d s) is shorter than the timeout of function "
                            "'%s' (%d s): messages would come back while still being processed",
                            mc->visibility_timeout, mc->fn->name, mc->fn->timeout);
    if (mc->max_receive_count > 0 && !mc->dead_letter_target)
        weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "redrive_policy"),
                            "redrive_policy.max_receive_count needs "
                            "redrive_policy.dead_letter_target");
    if (mc->dead_letter_target && mc->max_receive_count <= 0)
        weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "redrive_policy"),
                            "redrive_policy.dead_letter_target needs "
                            "redrive_policy.max_receive_count (1..1000)");
}

const struct weir_poller_ops weir_poller_redis = {
    .name = "redis",
    .scheme = "redis",
    .encoder = &weir_encoder_sqs,
    .semantics = WEIR_SEMANTICS_QUEUE,
    .default_batch_size = 10,
    .max_batch_size = 10000,
    .default_window_s = 0,
    .validate = redis_validate,
};
