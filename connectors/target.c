/* Helpers shared by every function target: the invocation result's lifetime.
 * Owns no target state; must never know a transport's details. */
#include "connectors/target.h"

#include <string.h>

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
