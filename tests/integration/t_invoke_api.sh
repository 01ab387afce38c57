#!/usr/bin/env bash
# The Invoke API with the real AWS CLI (Debian's awscli v2): Event queues the event durably and
# answers 202, and the function gets it, with the success record at on_success; RequestResponse
# answers 200 with the function's payload, and X-Amz-Function-Error when it failed; DryRun 204;
# the function named by ARN or with $LATEST; and bad requests get AWS's errors: an unknown
# function or qualifier, a payload that is not JSON, one over the 1 MB / 6 MB limits, a path with
# "..", an unknown invocation type. weir serves on and stops cleanly afterwards.
source "$(dirname "$0")/lib.sh"

start_fn_http --record "$T/rec" --any-event
OK_URL=$FN_URL
start_fn_http --record "$T/rec_broken" --mode error --any-event
BROKEN_URL=$FN_URL
# An HTTP endpoint as a destination: it records each record POSTed to it.
start_fn_http --record "$T/rec_hook" --any-event
HOOK_URL=$FN_URL

cat >"$T/weir.yaml" <<YAML
functions:
  - name: hello
    url: $OK_URL
    async:
      destination_config:
        on_success: {destination: "file://$T/ok"}
  - name: hooked
    url: $OK_URL
    async:
      destination_config:
        on_success: {destination: "$HOOK_URL/weir/success"}
  - name: broken
    url: $BROKEN_URL
    async:
      maximum_retry_attempts: 0
      destination_config:
        on_failure: {destination: "file://$T/failed"}
api:
  listen: 127.0.0.1:0
state_dir: $T/state
YAML
start_weir "$T/weir.yaml"
api_port
note "Invoke API on port $API_PORT"

# ---- Event ----
out=$(lambda invoke --function-name hello --invocation-type Event \
    --cli-binary-format raw-in-base64-out --payload '{"id":"ev-1","size":3}' "$T/ev.out")
[[ $(jq -r .StatusCode <<<"$out") == 202 ]] || fail "Event: $out"
wait_until '[[ $(records "$T/rec" | cut -f1 | grep -cx ev-1) -ge 1 ]]' 30 ||
    fail "the function never got the Event invocation"
wait_until '[[ $(ls "$T/ok" 2>/dev/null | wc -l) -ge 1 ]]' 30 ||
    fail "no success record in $T/ok"
rec=$(cat "$T"/ok/*.json)
[[ $(jq -r .requestContext.condition <<<"$rec") == Success ]] || fail "record: $rec"
[[ $(jq -r .requestPayload.id <<<"$rec") == ev-1 ]] || fail "requestPayload: $rec"
[[ $(jq -r .requestContext.functionArn <<<"$rec") == \
    'arn:aws:lambda:us-east-1:000000000000:function:hello:$LATEST' ]] || fail "functionArn: $rec"
[[ $(jq -c .responsePayload <<<"$rec") == '{}' ]] || fail "responsePayload: $rec"
ok "Event: 202, invoked once, success record with the request and response payloads"

# An HTTP destination gets the record POSTed to the URL as written.
out=$(lambda invoke --function-name hooked --invocation-type Event \
    --cli-binary-format raw-in-base64-out --payload '{"id":"ev-hook"}' "$T/hook.out")
[[ $(jq -r .StatusCode <<<"$out") == 202 ]] || fail "Event to hooked: $out"
wait_until '[[ $(count_records "$T/rec_hook") -ge 1 ]]' 30 || fail "the HTTP destination got nothing"
rec=$(records "$T/rec_hook" | cut -f3)
[[ $(jq -r .requestContext.condition <<<"$rec") == Success ]] || fail "HTTP destination got: $rec"
[[ $(jq -r .requestPayload.id <<<"$rec") == ev-hook ]] || fail "HTTP destination got: $rec"
ok "an HTTP on_success destination got the success record"

# ---- RequestResponse ----
out=$(lambda invoke --function-name hello --cli-binary-format raw-in-base64-out \
    --payload '{"id":"rr-1"}' "$T/rr.out")
[[ $(jq -r .StatusCode <<<"$out") == 200 && $(jq -r .ExecutedVersion <<<"$out") == '$LATEST' ]] ||
    fail "RequestResponse: $out"
[[ $(jq -r '.FunctionError // "none"' <<<"$out") == none ]] || fail "RequestResponse: $out"
[[ $(cat "$T/rr.out") == '{}' ]] || fail "RequestResponse payload: $(cat "$T/rr.out")"
[[ $(records "$T/rec" | cut -f1 | grep -cx rr-1) == 1 ]] || fail "rr-1 not invoked exactly once"
ok "RequestResponse: 200 with the function's payload"

# No payload at all: the function gets an empty object.
out=$(lambda invoke --function-name hello "$T/empty.out")
[[ $(jq -r .StatusCode <<<"$out") == 200 ]] || fail "no payload: $out"

out=$(lambda invoke --function-name broken --cli-binary-format raw-in-base64-out \
    --payload '{"id":"rr-2"}' "$T/rr2.out")
[[ $(jq -r .StatusCode <<<"$out") == 200 && $(jq -r .FunctionError <<<"$out") == Unhandled ]] ||
    fail "a failing function: $out"
[[ $(jq -r .errorMessage "$T/rr2.out") == boom ]] || fail "error payload: $(cat "$T/rr2.out")"
ok "RequestResponse of a failing function: 200, FunctionError Unhandled, its error object"

# ---- names, DryRun ----
out=$(lambda invoke --function-name arn:aws:lambda:us-east-1:000000000000:function:hello \
    --qualifier '$LATEST' --invocation-type DryRun "$T/dry.out")
[[ $(jq -r .StatusCode <<<"$out") == 204 ]] || fail "DryRun by ARN: $out"
ok "DryRun by ARN and \$LATEST: 204"

# expect_error EXCEPTION ARGS...: `aws lambda invoke ARGS` fails with EXCEPTION.
expect_error() {
    local want=$1 err rc=0
    shift
    err=$(lambda invoke "$@" "$T/err.out" 2>&1 >/dev/null) || rc=$?
    [[ $rc != 0 ]] || fail "expected $want from: $*"
    [[ $err == *"($want)"* ]] || fail "expected $want from: $*; got: $err"
    note "$(tr -d '\n' <<<"$err")"
}
expect_error ResourceNotFoundException --function-name nope
expect_error ResourceNotFoundException --function-name hello --qualifier 7
expect_error InvalidRequestContentException --function-name hello --invocation-type Event \
    --cli-binary-format raw-in-base64-out --payload 'not json at all'
# 1 MB + 1 is too large for Event, and fine for RequestResponse; 6 MB + 1 is too large for both.
# json_of_size N FILE: a JSON object of N bytes.
json_of_size() { { printf '{"pad":"'; head -c $(($1 - 10)) /dev/zero | tr '\0' x; printf '"}'; } >"$2"; }
json_of_size 1048577 "$T/1m.json"
[[ $(stat -c %s "$T/1m.json") -gt 1048576 ]] || fail "1m.json is not over 1 MB"
expect_error RequestTooLargeException --function-name hello --invocation-type Event \
    --payload "fileb://$T/1m.json"
out=$(lambda invoke --function-name hello --payload "fileb://$T/1m.json" "$T/big.out")
[[ $(jq -r .StatusCode <<<"$out") == 200 ]] || fail "1 MB RequestResponse: $out"
json_of_size 6291457 "$T/6m.json"
expect_error RequestTooLargeException --function-name hello --payload "fileb://$T/6m.json"
ok "unknown function and qualifier, a payload that is not JSON, payloads over the limits: AWS's errors"

# raw_post PATH HEADER: the status line and body of a raw POST, past anything a client would fix.
raw_post() {
    exec 3<>"/dev/tcp/127.0.0.1/$API_PORT"
    printf 'POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Length: 2\r\nConnection: close\r\n\r\n{}' \
        "$1" "$2" >&3
    cat <&3
    exec 3<&-
}
resp=$(raw_post /2015-03-31/functions/../invocations '')
[[ $resp == "HTTP/1.1 400"* && $resp == *"InvalidParameterValueException"* ]] ||
    fail "a name of '..': $resp"
resp=$(raw_post /2015-03-31/functions/a/../../b/invocations '')
[[ $resp == "HTTP/1.1 404"* && $resp == *"UnknownOperationException"* ]] ||
    fail "a path with ..: $resp"
resp=$(raw_post /2015-03-31/functions/hello/invocations $'X-Amz-Invocation-Type: Later\r\n')
[[ $resp == "HTTP/1.1 400"* && $resp == *"invocationType"* ]] || fail "unknown type: $resp"
ok "paths with .., an unknown invocation type: 400/404 with the error named"

# ---- Event to a failing function ----
out=$(lambda invoke --function-name broken --invocation-type Event \
    --cli-binary-format raw-in-base64-out --payload '{"id":"ev-2"}' "$T/ev2.out")
[[ $(jq -r .StatusCode <<<"$out") == 202 ]] || fail "Event to broken: $out"
wait_until '[[ $(ls "$T/failed" 2>/dev/null | wc -l) -ge 1 ]]' 30 ||
    fail "no failure record in $T/failed"
rec=$(cat "$T"/failed/*.json)
[[ $(jq -r .requestContext.condition <<<"$rec") == RetriesExhausted ]] || fail "record: $rec"
[[ $(jq -r .requestContext.approximateInvokeCount <<<"$rec") == 1 ]] || fail "record: $rec"
[[ $(jq -r .responseContext.functionError <<<"$rec") == Unhandled ]] || fail "record: $rec"
[[ $(jq -r .responsePayload.errorMessage <<<"$rec") == boom ]] || fail "record: $rec"
ok "Event to a failing function with maximum_retry_attempts 0: one attempt, RetriesExhausted record"

exec 3<>"/dev/tcp/127.0.0.1/$API_PORT"
printf 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
[[ $(cat <&3) == "HTTP/1.1 200"*"ok"* ]] || fail "/healthz"
exec 3<&-

stop_weir
pass
