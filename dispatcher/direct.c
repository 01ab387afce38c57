/* The direct row: one synchronous invocation whose answer goes back to the caller as it is (the
 * Invoke API's RequestResponse). No retry, no verdict beyond "answered": what to make of a
 * function error is the caller's. Must never keep a batch after its answer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "dispatcher/policy.h"

struct direct_call {
    weir_disp_answer_fn answer;
    void *arg;
};

static const struct weir_disp_policy direct_policy = {
    .delivery = WEIR_DELIVERY_QUEUE, /* unused: the row is given */
    .report_batch_item_failures = false,
    .mapping_name = "invoke-api",
};

static enum weir_policy_next direct_judge(struct weir_attempt *at, struct weir_batch *b,
                                          const struct weir_classified *c, int64_t *delay_ms)
{
    weir_batch_set_verdicts(b, WEIR_VERDICT_DONE);
    return WEIR_POLICY_FINISH;
}

const struct weir_policy weir_policy_direct = {
    .name = "direct",
    .keeps_response = true,
    .judge = direct_judge,
};

static void on_answered(void *arg, struct weir_batch *b)
{
    struct direct_call *call = arg;
    if (b->invocations == 0 && !b->response.status) {
        /* Never sent (refused before a slot came). */
        b->response.status = 429;
        snprintf(b->response.why, sizeof(b->response.why), "the function was not invoked");
    }
    call->answer(call->arg, &b->response);
    weir_batch_free(b);
    free(call);
}

void weir_disp_invoke(struct weir_function *fn, const char *payload, size_t len,
                      weir_disp_answer_fn answer, void *arg)
{
    struct direct_call *call = weir_calloc(1, sizeof(*call));
    call->answer = answer;
    call->arg = arg;
    struct weir_batch *b = weir_batch_new(0);
    struct weir_record *r = weir_record_new();
    r->id = weir_strdup("invoke");
    r->data = weir_strdup("");
    weir_batch_take(b, r);
    weir_buf_append(&b->event, payload, len);
    if (weir_function_free_slots(fn) == 0) {
        /* AWS answers TooManyRequests at once rather than queueing a synchronous call. */
        b->response.status = 429;
        snprintf(b->response.why, sizeof(b->response.why),
                 "the function is at its concurrency limit");
        weir_disp_finish_later(fn, b, &direct_policy, on_answered, call);
        return;
    }
    weir_disp_submit_row(fn, b, &direct_policy, &weir_policy_direct, on_answered, call);
}
