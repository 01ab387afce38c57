#!/usr/bin/env bash
# An SQS FIFO queue on a Redis list read by two weir processes: 200 message groups of 50
# messages each. Every group reaches the function in push order, never two batches of one group
# at the function at once (across both weirs), groups go on side by side, and a message whose
# dedup id was already accepted is dropped.
source "$(dirname "$0")/lib.sh"

QUEUE=orders.fifo
GROUPS_N=200
PER_GROUP=50
TOTAL=$((GROUPS_N * PER_GROUP))
start_redis
# A little time at the function, so batches overlap and a second batch of a group would show.
start_fn_http --record "$T/rec" --delay-ms 3

cat >"$T/weir.yaml" <<YAML
functions:
  - name: ordered
    url: $FN_URL
    timeout: 5
mappings:
  - name: fifo
    source: redis://127.0.0.1:$REDIS_PORT/0/$QUEUE
    function: ordered
    batch_size: 10
    scaling_config: {maximum_concurrency: 20}
    visibility_timeout: 30
YAML

fifo_envelopes "$GROUPS_N" "$PER_GROUP" | push_lines "$QUEUE"
# Duplicates: the same dedup ids again, within SQS's 5-minute interval.
fifo_envelopes 3 5 | push_lines "$QUEUE"
start_weir "$T/weir.yaml"
first=$WEIR_PID
start_weir "$T/weir.yaml"
second=$WEIR_PID

wait_until '[[ $(count_unique_bodies "$T/rec") -ge '"$TOTAL"' ]]' 120 ||
    fail "$(count_unique_bodies "$T/rec") of $TOTAL bodies received"
wait_until nothing_left 30 || fail "left behind: LLEN=$(llen "$QUEUE") inflight=$(inflight "$QUEUE")"
check_weirs_alive
ok "all $TOTAL messages delivered; queue and leases empty"

total=$(count_records "$T/rec")
[[ $total == "$TOTAL" ]] || fail "$total deliveries for $TOTAL messages: duplicates were delivered"
ok "exactly $TOTAL deliveries: the 15 duplicate dedup ids were dropped"

gaps=$(fifo_gaps "$T/rec")
[[ ${gaps##*gaps=} == 0 ]] || fail "order broken: $(head -n 5 <<<"$gaps")"
ok "every group in push order, in every request"

overlaps=$(count_overlaps "$T/rec")
[[ $overlaps == 0 ]] || fail "$overlaps requests held a group another request held"
ok "never two batches of one group at the function at once"

inflight_max=$(max_in_flight "$T/rec")
[[ $inflight_max -ge 2 ]] || fail "at most $inflight_max request in flight: groups did not go on side by side"
ok "up to $inflight_max requests in flight at once (groups side by side)"

# Many small groups (fewer messages than a batch each): claims come back short although more
# groups are ready, which must not be taken for an empty queue (a wait of a second each time:
# 3000 groups, 20 a claim from each of two weirs, would take over a minute).
t0=$(now)
fifo_envelopes 3000 2 s | push_lines "$QUEUE"
wait_until '[[ $(count_prefix s "$T/rec") -ge 6000 ]]' 30 ||
    fail "small groups: $(count_prefix s "$T/rec") of 6000 after $(since "$t0") s (short claims taken for an empty queue?)"
ok "3000 small groups drained in $(since "$t0") s"
gaps=$(fifo_gaps "$T/rec")
[[ ${gaps##*gaps=} == 0 ]] || fail "order broken: $(head -n 5 <<<"$gaps")"

stop_weir "$first"
stop_weir "$second"
# Both weirs took part: each one's stop line counts the records it read.
for log in "$T/weir.1.log" "$T/weir.2.log"; do
    n=$(sed -n 's/.*mapping\/fifo: stopped records_in=\([0-9]*\).*/\1/p' "$log")
    [[ ${n:-0} -gt 0 ]] || fail "$log: this weir read no records"
    note "$(basename "$log"): $n records"
done
ok "both weirs read from the queue"
pass
