#!/usr/bin/env bash
# weir killed with SIGKILL mid-run, three times: leases of the killed process end, their
# messages come back, and every message is delivered at least once; nothing is lost.
source "$(dirname "$0")/lib.sh"

QUEUE=sigkill
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

push 10000 m
start_weir "$T/weir.yaml"

kill9_at_records "$T/weir.yaml" "$T/rec" 1000 4000 7000

wait_until '[[ $(count_unique_bodies "$T/rec") -ge 10000 ]]' 120 ||
    fail "$(count_unique_bodies "$T/rec") of 10000 bodies received"
expect_all_bodies 10000 m "$T/rec"
ok "all 10000 bodies received at least once"

wait_until nothing_left 30 ||
    fail "left behind: LLEN=$(llen "$QUEUE") inflight=$(inflight "$QUEUE")"
ok "queue and inflight empty"

total=$(count_records "$T/rec")
ok "$(count_duplicate_bodies "$T/rec") bodies delivered more than once ($total deliveries for 10000)"

stop_weir
pass
