#!/usr/bin/env bash
# A function that hangs on one message: weir gives up at the function's timeout, the message
# comes back after its visibility timeout and is delivered, and the other messages are not held
# up behind the hung invocation.
source "$(dirname "$0")/lib.sh"

QUEUE=hang
start_redis
start_fn_http --record "$T/rec" --mode hang --fail-match slow --fail-receives 1

# batch_size 1 so that only the slow message is in the hung request. The function timeout is
# long next to the time the other 50 messages need (well under a second, a few seconds on a busy
# machine), so that "not held up" is told from "delivered after the hung call timed out" by a wide
# margin; the visibility timeout, which the retry waits for, must be at least the function's.
TIMEOUT=10
VISIBILITY=12
cat >"$T/weir.yaml" <<YAML
functions:
  - name: sticky
    url: $FN_URL
    timeout: $TIMEOUT
mappings:
  - name: hanging
    source: redis://127.0.0.1:$REDIS_PORT/0/$QUEUE
    function: sticky
    batch_size: 1
    maximum_batching_window_in_seconds: 0
    scaling_config: {maximum_concurrency: 5}
    visibility_timeout: $VISIBILITY
YAML

start_weir "$T/weir.yaml"
wait_connected

# Times are taken from t0, before the push, and read when the test sees the records (at or after
# they arrived), so load can only make them later. The hung call started after t0 and ends at its
# timeout: others seen less than TIMEOUT s after t0 arrived while it still hung. The slow
# message's lease started after t0 too: a retry seen before VISIBILITY s came back early.
t0=$(now)
push_body slow-one
push 50 other

wait_until '[[ $(count_body slow-one "$T/rec") -ge 1 ]]' 60 ||
    fail "the slow message was never received"
wait_until '[[ $(count_prefix other- "$T/rec") -ge 50 ]]' 60 ||
    fail "$(count_prefix other- "$T/rec") of 50 other messages received"
took=$(since "$t0")
expect_all_bodies 50 other "$T/rec"
lt "$took" "$TIMEOUT" ||
    fail "the other 50 messages took ${took}s: held up behind the hung invocation (${TIMEOUT} s)"
ok "the other 50 messages arrived in ${took}s while the slow one hung (timeout ${TIMEOUT} s)"

wait_until '[[ $(count_body slow-one "$T/rec") -ge 2 ]]' $((VISIBILITY + 60)) ||
    fail "the slow message was never retried"
retry_at=$(since "$t0")
lt "$((VISIBILITY - 1)).5" "$retry_at" ||
    fail "the slow message came back after ${retry_at}s, before its ${VISIBILITY} s lease ended"
ok "the slow message was received again after ${retry_at}s (visibility_timeout ${VISIBILITY} s)"

# Its second receive is answered, so it is deleted.
wait_until nothing_left 30 ||
    fail "left behind: LLEN=$(llen "$QUEUE") inflight=$(inflight "$QUEUE")"
ok "queue and inflight empty: the retry succeeded"

order=$(records "$T/rec" | awk -F'\t' '$3 == "slow-one" && $2 == 2 { print NR; exit }')
last_other=$(records "$T/rec" | awk -F'\t' 'index($3, "other-") == 1 { n = NR } END { print n }')
[[ $last_other -lt $order ]] || fail "some other message arrived after the slow one's retry"
ok "every other message arrived before the slow one's retry"
seq=$(records "$T/rec" | awk -F'\t' '$3 == "slow-one" { printf "%s ", $2 }')
[[ $seq == "1 2 " ]] || fail "slow message receive counts: '$seq' (expected 1 2)"
ok "the slow message was received twice (counts $seq)"

grep -Eiq 'function/sticky.*time(d)? ?out' "$WEIR_LOG" || fail "weir's log does not report the timeout"
ok "weir logged: $(grep -Ei -m1 'function/sticky.*time(d)? ?out' "$WEIR_LOG")"

stop_weir
pass
