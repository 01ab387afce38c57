#!/usr/bin/env bash
# A FIFO queue read by two weir processes, one of them killed with SIGKILL three times mid-run,
# then the Redis server restarted: every message is delivered at least once, and no message of a
# group reaches the function before every earlier message of its group has (a killed weir's
# messages come back first; the groups, their locks and leases survive the restart).
source "$(dirname "$0")/lib.sh"

QUEUE=events.fifo
GROUPS_N=200
PER_GROUP=50
TOTAL=$((GROUPS_N * PER_GROUP))
start_redis
start_fn_http --record "$T/rec" --delay-ms 5

cat >"$T/weir.yaml" <<YAML
functions:
  - name: steady
    url: $FN_URL
    timeout: 1
mappings:
  - name: events
    source: redis://127.0.0.1:$REDIS_PORT/0/$QUEUE
    function: steady
    batch_size: 10
    scaling_config: {maximum_concurrency: 4}
    visibility_timeout: 2
YAML

fifo_envelopes "$GROUPS_N" "$PER_GROUP" | push_lines "$QUEUE"
start_weir "$T/weir.yaml"
steady=$WEIR_PID
start_weir "$T/weir.yaml"

kill9_at_records "$T/weir.yaml" "$T/rec" 1500 4000 6500

wait_until '[[ $(count_records "$T/rec") -ge 7500 ]]' 60 ||
    fail "only $(count_records "$T/rec") records before the redis restart"
left=$((TOTAL - $(count_unique_bodies "$T/rec")))
[[ $left -gt 0 ]] || fail "nothing left when redis restarted: nothing was tested"
restart_redis 1
ok "redis restarted with $left messages never yet delivered"

wait_until '[[ $(count_unique_bodies "$T/rec") -ge '"$TOTAL"' ]]' 120 ||
    fail "$(count_unique_bodies "$T/rec") of $TOTAL bodies received"
wait_until nothing_left 30 || fail "left behind: LLEN=$(llen "$QUEUE") inflight=$(inflight "$QUEUE")"
ok "all $TOTAL messages delivered at least once; queue and leases empty"

gaps=$(fifo_gaps "$T/rec")
[[ ${gaps##*gaps=} == 0 ]] || fail "order broken: $(head -n 5 <<<"$gaps")"
ok "no message reached the function before an earlier one of its group"
ok "$(count_duplicate_bodies "$T/rec") messages delivered more than once ($(count_records "$T/rec") deliveries)"

stop_weir "$steady"
stop_weir
pass
