#!/usr/bin/env bash
# maximum_event_age_in_seconds is checked before every attempt: an event older than it ends as
# EventAgeExceeded at on_failure without reaching the function, with no response in its record.
# The event waits while the function is unreachable; weir stops; its acceptance time is moved an
# hour back in the store (sqlite3, on weir's own table), as if it had waited that long; weir
# starts again with the function reachable, and must not invoke it.
source "$(dirname "$0")/lib.sh"

start_fn_http --record "$T/rec" --any-event

config() { # config URL
    cat >"$T/weir.yaml" <<YAML
functions:
  - name: worker
    url: $1
    async:
      maximum_event_age_in_seconds: 3600
      destination_config:
        on_failure: {destination: "file://$T/failed"}
api: {listen: 127.0.0.1:0}
state_dir: $T/state
YAML
}

# Nothing listens on the first URL: every attempt is refused (a throttle: no retry used up).
config "http://127.0.0.1:1"
start_weir "$T/weir.yaml"
api_port
out=$(lambda invoke --function-name worker --invocation-type Event \
    --cli-binary-format raw-in-base64-out --payload '{"id":"old-1"}' "$T/o1")
[[ $(jq -r .StatusCode <<<"$out") == 202 ]] || fail "Event: $out"
wait_until 'grep -q "target refused" "$WEIR_LOG"' 30 || fail "no attempt was made"
stop_weir

n=$(sqlite3 "$T/state/weir.db" \
    'UPDATE async_events SET accepted_ms = accepted_ms - 3601000, due_ms = 0; SELECT changes();')
[[ $n == 1 ]] || fail "expected one waiting event, found $n"

config "$FN_URL"
start_weir "$T/weir.yaml"
wait_until '[[ $(ls "$T/failed" 2>/dev/null | wc -l) -ge 1 ]]' 30 || fail "no failure record"
rec=$(cat "$T"/failed/*.json)
[[ $(jq -r .requestContext.condition <<<"$rec") == EventAgeExceeded ]] || fail "record: $rec"
[[ $(jq -r .requestPayload.id <<<"$rec") == old-1 ]] || fail "record: $rec"
[[ $(jq -r 'has("responseContext") or has("responsePayload")' <<<"$rec") == false ]] ||
    fail "a record of an event the function never ran has a response: $rec"
sleep 1
[[ $(count_records "$T/rec") == 0 ]] || fail "the function was invoked with an event past its age"
ok "EventAgeExceeded at on_failure, the function never invoked, no response in the record"

stop_weir
pass
