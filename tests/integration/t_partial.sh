#!/usr/bin/env bash
# ReportBatchItemFailures: only the records the function names as failed come back, after the
# visibility timeout, with ApproximateReceiveCount raised; the others are deleted at once.
source "$(dirname "$0")/lib.sh"

QUEUE=partial
start_redis
start_fn_http --record "$T/rec" --mode partial --fail-match bad --fail-receives 1

cat >"$T/weir.yaml" <<YAML
functions:
  - name: picky
    url: $FN_URL
    timeout: 2
mappings:
  - name: partial
    source: redis://127.0.0.1:$REDIS_PORT/0/$QUEUE
    function: picky
    batch_size: 10
    maximum_batching_window_in_seconds: 0
    function_response_types: [ReportBatchItemFailures]
    visibility_timeout: 2
YAML

start_weir "$T/weir.yaml"
wait_connected

# 100 messages, every tenth one "bad", so that most batches mix good and bad records.
t0=$(now)
awk 'BEGIN { for (i = 1; i <= 100; i++) printf "%s-%06d\n", (i % 10 == 5 ? "bad" : "good"), i }' |
    push_lines

good_lines() { records "$T/rec" | awk -F'\t' 'index($3, "good-") == 1'; }
bad_lines() { records "$T/rec" | awk -F'\t' 'index($3, "bad-") == 1'; }
bad_retries() { bad_lines | awk -F'\t' '$2 == 2' | wc -l; }

# A failed record is invisible until its lease (2 s from the claim, which came after t0) ends.
# Polled from the push on, the first retry is seen at or after the moment it happened, so a
# time seen under 1.8 s means weir handed a failed record back early; load can only make the
# time seen later, never earlier.
wait_until '[[ $(bad_retries) -ge 1 ]]' 60 ||
    fail "no bad record came back (ApproximateReceiveCount 2)"
first=$(since "$t0")
lt 1.8 "$first" || fail "a failed record came back after ${first}s (visibility_timeout is 2 s)"
ok "the first failed record came back after ${first}s, not before its 2 s lease ended"

wait_until '[[ $(good_lines | cut -f3 | sort -u | wc -l) -ge 90 ]]' 60 ||
    fail "$(good_lines | cut -f3 | sort -u | wc -l) of 90 good bodies received"
ok "all 90 good bodies received"

wait_until '[[ $(bad_retries) -ge 10 ]]' 60 || fail "only $(bad_retries) of 10 bad records came back"
took=$(since "$t0")
ok "10 bad records received a second time (ApproximateReceiveCount 2) by ${took}s"

wait_until nothing_left 20 ||
    fail "left behind: LLEN=$(llen "$QUEUE") inflight=$(inflight "$QUEUE")"
ok "queue and inflight empty"

n=$(good_lines | wc -l)
[[ $n == 90 ]] || fail "good records received $n times for 90 bodies: some were redelivered"
[[ $(good_lines | cut -f2 | sort -u) == 1 ]] || fail "a good record had ApproximateReceiveCount > 1"
ok "each good body received exactly once, with ApproximateReceiveCount 1"

per_bad=$(bad_lines | awk -F'\t' '{ c[$3] = c[$3] $2 } END { for (b in c) print c[b] }' | sort | uniq -c |
    awk '{ print $2 "x" $1 }' | tr '\n' ' ')
[[ $per_bad == "12x10 " ]] ||
    fail "bad bodies: receive counts per body (count sequence x bodies): $per_bad; expected 12x10"
ok "each bad body received twice, with counts 1 then 2"

stop_weir
pass
