#!/usr/bin/env bash
# SIGTERM with batches in flight: weir stops claiming, finishes or gives back what it holds,
# and exits 0 without waiting out a timeout; after a restart everything is delivered.
source "$(dirname "$0")/lib.sh"

QUEUE=shutdown
start_redis
start_fn_http --record "$T/rec" --delay-ms 500

# A batch in flight is answered within 500 ms; the function timeout (20 s) and the lease (120 s)
# are far longer, so a weir that waits one of them out on SIGTERM is told from one that stops
# promptly whatever the load: the stop is allowed STOP_SECS_MAX, generous next to the half
# second it needs, and short of the function timeout. A lease left behind is seen directly
# (inflight after the stop), and would not end within the time the restart below is given.
STOP_SECS_MAX=15
cat >"$T/weir.yaml" <<YAML
functions:
  - name: slow
    url: $FN_URL
    timeout: 20
mappings:
  - name: graceful
    source: redis://127.0.0.1:$REDIS_PORT/0/$QUEUE
    function: slow
    batch_size: 10
    maximum_batching_window_in_seconds: 0
    scaling_config: {maximum_concurrency: 4}
    visibility_timeout: 120
YAML

# 500 messages take weir about 6 s (4 batches of 10 per 500 ms): time for the test, slowed by
# load, to see it get going and stop it before the queue runs dry.
push 500 m
start_weir "$T/weir.yaml"
wait_until '[[ $(count_records "$T/rec") -ge 40 ]]' 60 || fail "weir did not get going"
wait_until '[[ $(inflight "$QUEUE") -gt 0 ]]' 30 || fail "no batch in flight to interrupt"
note "SIGTERM with $(inflight "$QUEUE") messages leased, $(count_records "$T/rec") received"
stop_weir "$WEIR_PID" "$STOP_SECS_MAX"
ok "weir exited 0 in ${STOP_SECS}s with batches in flight (allowed ${STOP_SECS_MAX} s)"

n=$(inflight "$QUEUE")
[[ $n == 0 ]] || fail "weir exited leaving $n messages leased"
ok "no lease left behind: everything in flight was finished or given back"
stopped_at=$(count_records "$T/rec")
left=$(llen "$QUEUE")
[[ $left -gt 0 ]] || fail "the queue was drained before SIGTERM: nothing was tested"
ok "$left messages still queued after the stop ($stopped_at received)"

start_weir "$T/weir.yaml"
wait_until '[[ $(count_unique_bodies "$T/rec") -ge 500 ]]' 60 ||
    fail "$(count_unique_bodies "$T/rec") of 500 bodies received after the restart"
expect_all_bodies 500 m "$T/rec"
ok "all 500 bodies received after the restart ($(count_records "$T/rec") deliveries)"

wait_until nothing_left 30 ||
    fail "left behind: LLEN=$(llen "$QUEUE") inflight=$(inflight "$QUEUE")"
ok "queue and inflight empty"

stop_weir
pass
