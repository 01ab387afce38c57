#!/usr/bin/env bash
# SIGTERM with batches in flight: weir stops claiming, finishes or gives back what it holds,
# and exits 0 within a few seconds; after a restart everything is delivered.
source "$(dirname "$0")/lib.sh"

QUEUE=shutdown
start_redis
start_fn_http --record "$T/rec" --delay-ms 500

# visibility_timeout 30: if weir left leases behind, the restart below would have to wait 30 s
# for them, and the test would see it.
cat >"$T/weir.yaml" <<YAML
functions:
  - name: slow
    url: $FN_URL
    timeout: 5
mappings:
  - name: graceful
    source: redis://127.0.0.1:$REDIS_PORT/0/$QUEUE
    function: slow
    batch_size: 10
    maximum_batching_window_in_seconds: 0
    scaling_config: {maximum_concurrency: 4}
    visibility_timeout: 30
YAML

push 300 m
start_weir "$T/weir.yaml"
wait_until '[[ $(count_records "$T/rec") -ge 40 ]]' 30 || fail "weir did not get going"
wait_until '[[ $(inflight "$QUEUE") -gt 0 ]]' 5 || fail "no batch in flight to interrupt"
note "SIGTERM with $(inflight "$QUEUE") messages leased, $(count_records "$T/rec") received"
stop_weir "$WEIR_PID" 10
lt "$STOP_SECS" 5 || fail "weir took ${STOP_SECS}s to stop"
ok "weir exited 0 in ${STOP_SECS}s with batches in flight"

n=$(inflight "$QUEUE")
[[ $n == 0 ]] || fail "weir exited leaving $n messages leased"
ok "no lease left behind: everything in flight was finished or given back"
stopped_at=$(count_records "$T/rec")
left=$(llen "$QUEUE")
[[ $left -gt 0 ]] || fail "the queue was drained before SIGTERM: nothing was tested"
ok "$left messages still queued after the stop ($stopped_at received)"

start_weir "$T/weir.yaml"
wait_until '[[ $(count_unique_bodies "$T/rec") -ge 300 ]]' 30 ||
    fail "$(count_unique_bodies "$T/rec") of 300 bodies received after the restart"
expect_all_bodies 300 m "$T/rec"
ok "all 300 bodies received after the restart ($(count_records "$T/rec") deliveries)"

wait_until nothing_left 20 ||
    fail "left behind: LLEN=$(llen "$QUEUE") inflight=$(inflight "$QUEUE")"
ok "queue and inflight empty"

stop_weir
pass
