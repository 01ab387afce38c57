#!/usr/bin/env bash
# maximum_batching_window_in_seconds: a few messages wait for the window and travel together;
# a burst fills batches of batch_size (never more), the rest goes when the window ends.
source "$(dirname "$0")/lib.sh"

QUEUE=batch_window
start_redis
start_fn_http --record "$T/rec"

cat >"$T/weir.yaml" <<YAML
functions:
  - name: echo
    url: $FN_URL
    timeout: 5
mappings:
  - name: windowed
    source: redis://127.0.0.1:$REDIS_PORT/0/$QUEUE
    function: echo
    batch_size: 100
    maximum_batching_window_in_seconds: 1
    visibility_timeout: 30
YAML

start_weir "$T/weir.yaml"
wait_connected

# Prefix-filtered views of the record file.
recs_of() { records "$T/rec" | awk -F'\t' -v p="$1-" 'index($3, p) == 1'; }
unique_of() { recs_of "$1" | cut -f3 | sort -u | wc -l; }
requests_of() { recs_of "$1" | awk -F'\t' '{ print $4 "." $5 }' | sort -u | wc -l; }
max_of() { recs_of "$1" | awk -F'\t' 'BEGIN { m = 0 } $6 > m { m = $6 } END { print m }'; }

# 1. Five messages: nothing is invoked before the window ends, then one request carries all.
t0=$(now)
push 5 few
wait_until '[[ $(unique_of few) -ge 5 ]]' 20 || fail "$(unique_of few) of 5 bodies received"
took=$(since "$t0")
lt 0.7 "$took" || fail "5 messages arrived after ${took}s: the 1 s window was not waited for"
lt "$took" 5 || fail "5 messages arrived only after ${took}s (window is 1 s)"
[[ $(requests_of few) == 1 ]] || fail "5 messages came in $(requests_of few) requests, expected 1"
ok "5 messages arrived together in 1 request after ${took}s (window 1 s)"

# 2. A burst of 250: batches of at most 100; full batches do not wait for the window.
t0=$(now)
push 250 burst
# The first full batch is seen at or after it arrives: seen before the 1 s window could have
# ended, it did not wait for the window.
wait_until '[[ $(unique_of burst) -ge 100 ]]' 20 || fail "$(unique_of burst) of 250 bodies received"
full=$(since "$t0")
lt "$full" 0.9 ||
    fail "the first 100 burst messages arrived after ${full}s: a full batch waited for the window"
ok "a full batch of the burst arrived after ${full}s, without waiting for the window"
wait_until '[[ $(unique_of burst) -ge 250 ]]' 30 || fail "$(unique_of burst) of 250 bodies received"
took=$(since "$t0")
expect_all_bodies 250 burst "$T/rec"
ok "all 250 burst bodies received in ${took}s"
max=$(max_of burst)
n=$(requests_of burst)
sizes=$(recs_of burst | awk -F'\t' '{ print $4 "." $5, $6 }' | sort -u | awk '{ print $2 }' | tr '\n' ' ')
[[ $max -le 100 ]] || fail "a request carried $max records (batch_size 100); sizes: $sizes"
[[ $max == 100 ]] || fail "no request was full (sizes: $sizes): a burst of 250 should fill batches"
[[ $n -le 4 ]] || fail "250 messages took $n requests (sizes: $sizes); expected about 100,100,50"
ok "request sizes: $sizes(at most 100 each, $n requests)"

wait_until nothing_left 20 ||
    fail "left behind: LLEN=$(llen "$QUEUE") inflight=$(inflight "$QUEUE")"
ok "queue and inflight empty"

stop_weir
pass
