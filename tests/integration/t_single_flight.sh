#!/usr/bin/env bash
# single_flight with a pool of endpoints (like Lambda RIE containers, each serving one
# invocation at a time): every endpoint gets work, no endpoint ever sees two requests at once.
source "$(dirname "$0")/lib.sh"

QUEUE=single_flight
start_redis
start_fn_http --record "$T/rec1" --single-flight --delay-ms 5
URL1=$FN_URL
start_fn_http --record "$T/rec2" --single-flight --delay-ms 5
URL2=$FN_URL

cat >"$T/weir.yaml" <<YAML
functions:
  - name: rie
    url: [$URL1, $URL2]
    timeout: 5
    single_flight: true
mappings:
  - name: pooled
    source: redis://127.0.0.1:$REDIS_PORT/0/$QUEUE
    function: rie
    batch_size: 5
    maximum_batching_window_in_seconds: 0
    scaling_config: {maximum_concurrency: 10}
    visibility_timeout: 30
YAML

start_weir "$T/weir.yaml"
push 500 m

wait_until '[[ $(count_unique_bodies "$T/rec1" "$T/rec2") -ge 500 ]]' 60 ||
    fail "$(count_unique_bodies "$T/rec1" "$T/rec2") of 500 bodies received"
expect_all_bodies 500 m "$T/rec1" "$T/rec2"
ok "all 500 bodies received"

wait_until nothing_left 20 ||
    fail "left behind: LLEN=$(llen "$QUEUE") inflight=$(inflight "$QUEUE")"
ok "queue and inflight empty"

conc=$(cat "$T/rec1" "$T/rec2" | grep -c '^CONCURRENT' || true)
[[ $conc == 0 ]] || fail "an endpoint saw concurrent requests $conc times"
ok "no endpoint ever served two requests at once"

n1=$(count_requests "$T/rec1")
n2=$(count_requests "$T/rec2")
[[ $n1 -gt 0 && $n2 -gt 0 ]] || fail "one endpoint did all the work: $n1 / $n2 requests"
ok "both endpoints used: $n1 and $n2 requests"

[[ $(count_duplicate_bodies "$T/rec1" "$T/rec2") == 0 ]] || fail "some bodies were delivered twice"
ok "each body received exactly once"

stop_weir
pass
