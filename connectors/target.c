/* Helpers shared by every function target: which target a function uses, the invocation
 * result's lifetime. Owns no target state; must never know a transport's details. */
#include "connectors/target.h"

#include <string.h>

#include "config/config.h"

const struct weir_target_ops *weir_target_for(const struct weir_function_cfg *fc)
{
    if (!fc->n_urls)
        return &weir_target_exec;
    for (size_t i = 0; i < fc->n_urls; i++)
        if (!weir_http_target_takes(fc->urls[i]))
            return &weir_target_curl;
    return &weir_target_http;
}

void weir_invoke_result_init(struct weir_invoke_result *res)
{
    memset(res, 0, sizeof(*res));
    res->transport = WEIR_TRANSPORT_OK;
    weir_buf_init(&res->body);
}

void weir_invoke_result_deinit(struct weir_invoke_result *res)
{
    weir_buf_deinit(&res->body);
}
