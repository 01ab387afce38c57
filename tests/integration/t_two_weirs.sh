#!/usr/bin/env bash
# Two weir processes on one list share the work: while a lease holds, no message is handed to
# both, and none is lost.
source "$(dirname "$0")/lib.sh"

QUEUE=shared
start_redis
start_fn_http --record "$T/rec1"
URL1=$FN_URL
start_fn_http --record "$T/rec2"
URL2=$FN_URL

config() {
    cat <<YAML
functions:
  - name: echo
    url: $1
    timeout: 5
mappings:
  - name: shared
    source: redis://127.0.0.1:$REDIS_PORT/0/$QUEUE
    function: echo
    batch_size: 10
    maximum_batching_window_in_seconds: 0
    scaling_config: {maximum_concurrency: 4}
    visibility_timeout: 30
YAML
}
config "$URL1" >"$T/weir1.yaml"
config "$URL2" >"$T/weir2.yaml"

start_weir "$T/weir1.yaml"
W1=$WEIR_PID
start_weir "$T/weir2.yaml"
W2=$WEIR_PID
# Both must be polling before the push, or the first one alone may drain the list.
wait_connected "$W1"
wait_connected "$W2"

push 5000 m
wait_until '[[ $(count_unique_bodies "$T/rec1" "$T/rec2") -ge 5000 ]]' 90 ||
    fail "$(count_unique_bodies "$T/rec1" "$T/rec2") of 5000 bodies received"
expect_all_bodies 5000 m "$T/rec1" "$T/rec2"
ok "all 5000 bodies received"

wait_until nothing_left 20 ||
    fail "left behind: LLEN=$(llen "$QUEUE") inflight=$(inflight "$QUEUE")"
ok "queue and inflight empty"

n1=$(count_records "$T/rec1")
n2=$(count_records "$T/rec2")
dups=$(count_duplicate_bodies "$T/rec1" "$T/rec2")
[[ $dups == 0 && $((n1 + n2)) == 5000 ]] ||
    fail "$dups bodies delivered more than once ($n1 + $n2 records for 5000 bodies)"
ok "no body delivered twice"
[[ $n1 -gt 0 && $n2 -gt 0 ]] || fail "one process did all the work: $n1 / $n2"
ok "both processes delivered: $n1 and $n2 records"

stop_weir "$W1"
stop_weir "$W2"
pass
