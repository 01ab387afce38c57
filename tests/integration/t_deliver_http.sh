#!/usr/bin/env bash
# Every message pushed to a Redis list reaches an HTTP function exactly once, in batches of at
# most batch_size, and nothing is left in the queue or leased afterwards.
source "$(dirname "$0")/lib.sh"

QUEUE=deliver_http
start_redis
start_fn_http --record "$T/rec"

cat >"$T/weir.yaml" <<YAML
region: us-east-1
functions:
  - name: echo
    url: $FN_URL
    timeout: 5
mappings:
  - name: deliver
    source: redis://127.0.0.1:$REDIS_PORT/0/$QUEUE
    function: echo
    batch_size: 10
    maximum_batching_window_in_seconds: 0
    visibility_timeout: 30
YAML

# Half before weir starts (a backlog), half while it runs (new arrivals must wake it up).
push 500 early
start_weir "$T/weir.yaml"
wait_until '[[ $(count_unique_bodies "$T/rec") -ge 500 ]]' 60 ||
    fail "backlog: $(count_unique_bodies "$T/rec") of 500 bodies received"
push 500 late

wait_until '[[ $(count_unique_bodies "$T/rec") -ge 1000 ]]' 60 ||
    fail "$(count_unique_bodies "$T/rec") of 1000 bodies received"
expect_all_bodies 500 early "$T/rec"
expect_all_bodies 500 late "$T/rec"
ok "all 1000 bodies received"

wait_until nothing_left 20 ||
    fail "left behind: LLEN=$(llen "$QUEUE") inflight=$(inflight "$QUEUE")"
ok "queue and inflight empty"

dups=$(count_duplicate_bodies "$T/rec")
[[ $dups == 0 ]] || fail "$dups bodies received more than once"
[[ $(count_records "$T/rec") == 1000 ]] || fail "$(count_records "$T/rec") records for 1000 bodies"
ok "each body received exactly once"

max=$(max_request_size "$T/rec")
[[ $max -le 10 ]] || fail "a request carried $max records (batch_size 10)"
ok "largest request: $max records (<= 10), $(count_requests "$T/rec") requests"

counts=$(records "$T/rec" | cut -f2 | sort -u | tr '\n' ' ')
[[ $counts == "1 " ]] || fail "ApproximateReceiveCount values seen: $counts (expected only 1)"
ok "every ApproximateReceiveCount is 1"

stop_weir
pass
