#!/usr/bin/env bash
# The asynchronous queue's retry policy against a real function and real Redis destinations:
# an event the function fails is attempted exactly maximum_retry_attempts + 1 times, the retries
# after the configured delays, then its invocation record (RetriesExhausted) goes to on_failure
# and the raw event with RequestID/ErrorCode/ErrorMessage to the dead-letter list; an event it
# takes goes to on_success with the function's response payload.
source "$(dirname "$0")/lib.sh"

start_redis
start_fn_http --record "$T/rec" --mode error --fail-match fail --any-event

cat >"$T/weir.yaml" <<YAML
functions:
  - name: worker
    url: $FN_URL
    async:
      maximum_retry_attempts: 2
      retry_delays_in_seconds: [1, 2]
      destination_config:
        on_success: {destination: "redis://127.0.0.1:$REDIS_PORT/0/successes"}
        on_failure: {destination: "redis://127.0.0.1:$REDIS_PORT/0/failures"}
    dead_letter_config: {target_arn: "redis://127.0.0.1:$REDIS_PORT/0/dead-letters"}
api: {listen: 127.0.0.1:0}
state_dir: $T/state
YAML
start_weir "$T/weir.yaml"
api_port

attempts() { records "$T/rec" | cut -f1 | grep -cx "$1" || true; }

out=$(lambda invoke --function-name worker --invocation-type Event \
    --cli-binary-format raw-in-base64-out --payload '{"id":"fail-1"}' "$T/o1")
[[ $(jq -r .StatusCode <<<"$out") == 202 ]] || fail "Event: $out"
wait_until '[[ $(attempts fail-1) -ge 3 ]]' 30 || fail "fail-1 attempted $(attempts fail-1) times"
# The function's own times of receipt (the record line's last field), in seconds apart.
read -r gap1 gap2 < <(records "$T/rec" | awk -F'\t' '$1 == "fail-1" { t[n++] = $9 }
    END { printf "%.3f %.3f\n", (t[1] - t[0]) / 1000, (t[2] - t[1]) / 1000 }')
lt 0.999 "$gap1" && lt "$gap1" 10 || fail "the first retry came after ${gap1}s (delay 1 s)"
lt 1.999 "$gap2" && lt "$gap2" 10 || fail "the second retry came after ${gap2}s (delay 2 s)"
ok "retries after ${gap1}s and ${gap2}s (delays 1 s and 2 s)"

wait_until '[[ $(rcli LLEN failures) -ge 1 && $(rcli LLEN dead-letters) -ge 1 ]]' 30 ||
    fail "failures=$(rcli LLEN failures) dead-letters=$(rcli LLEN dead-letters)"
rec=$(rcli LINDEX failures 0)
[[ $(jq -r .requestContext.condition <<<"$rec") == RetriesExhausted ]] || fail "record: $rec"
[[ $(jq -r .requestContext.approximateInvokeCount <<<"$rec") == 3 ]] || fail "record: $rec"
[[ $(jq -r .requestPayload.id <<<"$rec") == fail-1 ]] || fail "record: $rec"
[[ $(jq -r .responseContext.functionError <<<"$rec") == Unhandled ]] || fail "record: $rec"
[[ $(jq -r .responsePayload.errorMessage <<<"$rec") == boom ]] || fail "record: $rec"
ok "on_failure got the RetriesExhausted record after 3 attempts"

dl=$(rcli LINDEX dead-letters 0)
rid=$(jq -r .requestContext.requestId <<<"$rec")
[[ $(jq -r .body <<<"$dl") == '{"id":"fail-1"}' ]] || fail "dead letter: $dl"
[[ $(jq -r .attributes.RequestID.stringValue <<<"$dl") == "$rid" ]] || fail "dead letter: $dl"
[[ $(jq -r .attributes.ErrorCode.stringValue <<<"$dl") == 200 ]] || fail "dead letter: $dl"
[[ $(jq -r .attributes.ErrorMessage.stringValue <<<"$dl") == boom ]] || fail "dead letter: $dl"
ok "the dead-letter list got the raw event with RequestID, ErrorCode and ErrorMessage"

out=$(lambda invoke --function-name worker --invocation-type Event \
    --cli-binary-format raw-in-base64-out --payload '{"id":"fine-1"}' "$T/o2")
wait_until '[[ $(rcli LLEN successes) -ge 1 ]]' 30 || fail "no success record"
rec=$(rcli LINDEX successes 0)
[[ $(jq -r .requestContext.condition <<<"$rec") == Success ]] || fail "record: $rec"
[[ $(jq -c .responsePayload <<<"$rec") == '{}' ]] || fail "record: $rec"
[[ $(jq -r .requestPayload.id <<<"$rec") == fine-1 ]] || fail "record: $rec"

# Nothing more happens to either: no fourth attempt, no second record.
sleep 3
[[ $(attempts fail-1) == 3 ]] || fail "fail-1 attempted $(attempts fail-1) times (want 3)"
[[ $(attempts fine-1) == 1 ]] || fail "fine-1 invoked $(attempts fine-1) times"
[[ $(rcli LLEN failures) == 1 && $(rcli LLEN successes) == 1 && $(rcli LLEN dead-letters) == 1 ]] ||
    fail "records written more than once"
ok "exactly 3 attempts, one record each; the success record carries the response payload"

stop_weir
pass
