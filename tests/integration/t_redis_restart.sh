#!/usr/bin/env bash
# Redis restarts mid-run: weir reconnects by itself and nothing is lost.
source "$(dirname "$0")/lib.sh"

QUEUE=restart
start_redis
start_fn_http --record "$T/rec" --delay-ms 5

cat >"$T/weir.yaml" <<YAML
functions:
  - name: slowish
    url: $FN_URL
    timeout: 2
mappings:
  - name: survivor
    source: redis://127.0.0.1:$REDIS_PORT/0/$QUEUE
    function: slowish
    batch_size: 10
    maximum_batching_window_in_seconds: 0
    scaling_config: {maximum_concurrency: 2}
    visibility_timeout: 2
YAML

push 3000 m
start_weir "$T/weir.yaml"

# Early in the run, so that the test, slowed by load while weir keeps draining, still restarts
# redis with most of the 3000 messages waiting (the check below fails rather than passes if not).
wait_until '[[ $(count_records "$T/rec") -ge 500 ]]' 60 ||
    fail "only $(count_records "$T/rec") records before the restart"
note "restarting redis after $(count_records "$T/rec") records"
restart_redis 1
remaining=$(($(llen "$QUEUE") + $(inflight "$QUEUE")))
[[ $remaining -gt 0 ]] || fail "everything was delivered before the restart: nothing was tested"
ok "redis restarted with $remaining messages still waiting or leased"

wait_until '[[ $(count_unique_bodies "$T/rec") -ge 3000 ]]' 90 ||
    fail "$(count_unique_bodies "$T/rec") of 3000 bodies received after the restart"
expect_all_bodies 3000 m "$T/rec"
ok "all 3000 bodies received at least once ($(count_records "$T/rec") deliveries)"

wait_until nothing_left 30 ||
    fail "left behind: LLEN=$(llen "$QUEUE") inflight=$(inflight "$QUEUE")"
ok "queue and inflight empty"

grep -qi reconnected "$WEIR_LOG" || fail "weir's log does not report reconnecting to redis"
ok "weir logged: $(grep -i -m1 reconnected "$WEIR_LOG")"

stop_weir
pass
