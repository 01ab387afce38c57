#!/usr/bin/env bash
# weir redrive: failure records written to a directory and to a Redis list (and dead letters on
# another list) go back into the asynchronous queue through the running weir's Invoke API: each
# payload reaches the function named, unchanged, and the destination is emptied. A record that
# cannot be sent (an unknown function) stops the redrive without removing it.
source "$(dirname "$0")/lib.sh"

start_redis
start_fn_http --record "$T/rec_broken" --mode error --any-event
BROKEN_URL=$FN_URL
start_fn_http --record "$T/rec_fixed" --events "$T/events_fixed" --any-event
FIXED_URL=$FN_URL

cat >"$T/weir.yaml" <<YAML
functions:
  - name: broken
    url: $BROKEN_URL
    async:
      maximum_retry_attempts: 0
      destination_config:
        on_failure: {destination: "file://$T/failed"}
  - name: broken-too
    url: $BROKEN_URL
    async:
      maximum_retry_attempts: 0
      destination_config:
        on_failure: {destination: "redis://127.0.0.1:$REDIS_PORT/0/failed"}
    dead_letter_config: {target_arn: "redis://127.0.0.1:$REDIS_PORT/0/dead"}
  - name: fixed
    url: $FIXED_URL
api: {listen: 127.0.0.1:0}
state_dir: $T/state
YAML
start_weir "$T/weir.yaml"
api_port
post_events broken 20 d 4
post_events broken-too 15 r 4
# Payloads a re-encoding would change: a float, a large integer, a string, a NUL escape.
for payload in '{"id":"x-1","price":0.1,"big":123456789012345678901234}' '"just a string"' \
    '{"id":"x-2","s":"a\u0000b"}'; do
    lambda invoke --function-name broken --invocation-type Event \
        --cli-binary-format raw-in-base64-out --payload "$payload" "$T/o" >/dev/null
done
wait_until '[[ $(ls "$T/failed" 2>/dev/null | wc -l) -ge 23 && $(rcli LLEN failed) -ge 15 &&
    $(rcli LLEN dead) -ge 15 ]]' 60 || fail "the failures did not all reach their destinations"
ok "23 failure records in a directory, 15 on a Redis list, 15 dead letters"

fixed_got() { records "$T/rec_fixed" | cut -f1 | grep -c "^$1-" || true; }

"$WEIR" redrive -c "$T/weir.yaml" --endpoint-url "http://127.0.0.1:$API_PORT" --from "file://$T/failed" --function fixed --rate 0 \
    2>"$T/redrive.1" || fail "redrive from the directory: $(cat "$T/redrive.1")"
note "$(tail -1 "$T/redrive.1")"
[[ $(ls "$T/failed" | wc -l) == 0 ]] || fail "records left in the directory"
wait_until '[[ $(fixed_got d) -ge 20 ]]' 30 || fail "$(fixed_got d) of 20 redriven events reached 'fixed'"
expect_all=$(comm -3 <(bodies 20 d | sort) <(records "$T/rec_fixed" | cut -f1 | grep '^d-' | sort -u))
[[ -z $expect_all ]] || fail "redriven payloads differ: $expect_all"
# Byte for byte, as they were first accepted (the function's log of the bodies it got).
wait_until '[[ $(wc -l <"$T/events_fixed") -ge 23 ]]' 30 || fail "not every redriven event arrived"
for payload in '{"id":"x-1","price":0.1,"big":123456789012345678901234}' '"just a string"' \
    '{"id":"x-2","s":"a\u0000b"}'; do
    grep -qxF -- "$payload" "$T/events_fixed" || fail "redriven payload changed: $payload"
done
ok "the directory's 23 records redriven to 'fixed': each payload arrived byte for byte"


"$WEIR" redrive -c "$T/weir.yaml" --endpoint-url "http://127.0.0.1:$API_PORT" --from "redis://127.0.0.1:$REDIS_PORT/0/failed" \
    --function fixed --rate 50 2>"$T/redrive.2" || fail "redrive from redis: $(cat "$T/redrive.2")"
"$WEIR" redrive -c "$T/weir.yaml" --endpoint-url "http://127.0.0.1:$API_PORT" --from "redis://127.0.0.1:$REDIS_PORT/0/dead" \
    --function fixed --limit 5 2>"$T/redrive.3" || fail "redrive of dead letters: $(cat "$T/redrive.3")"
note "$(tail -1 "$T/redrive.2")"
[[ $(rcli LLEN failed) == 0 && $(rcli LLEN dead) == 10 ]] ||
    fail "left: failed=$(rcli LLEN failed) dead=$(rcli LLEN dead) (want 0 and 10)"
# Each r-* payload twice: once from its failure record, once from its dead letter (5 of them).
wait_until '[[ $(fixed_got r) -ge 20 ]]' 30 || fail "$(fixed_got r) of 20 redriven events reached 'fixed'"
ok "a Redis list of records and 5 dead letters (--limit) redriven; the rest left"

# Without --function a record goes back to the function that failed it; a dead letter names
# none, and an unknown function is refused before anything is sent.
"$WEIR" redrive -c "$T/weir.yaml" --endpoint-url "http://127.0.0.1:$API_PORT" --from "redis://127.0.0.1:$REDIS_PORT/0/dead" \
    2>"$T/redrive.4" && fail "a dead letter without --function was redriven"
grep -q 'give --function' "$T/redrive.4" || fail "unclear error: $(cat "$T/redrive.4")"
"$WEIR" redrive -c "$T/weir.yaml" --endpoint-url "http://127.0.0.1:$API_PORT" --from "redis://127.0.0.1:$REDIS_PORT/0/dead" \
    --function nope 2>"$T/redrive.5" && fail "redrive to an unknown function succeeded"
grep -q "no function named 'nope'" "$T/redrive.5" || fail "unclear error: $(cat "$T/redrive.5")"
[[ $(rcli LLEN dead) == 10 ]] || fail "a refused redrive removed dead letters"
ok "refused: a dead letter without --function, an unknown function; nothing removed"

stop_weir
pass
