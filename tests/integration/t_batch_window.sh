#!/usr/bin/env bash
# maximum_batching_window_in_seconds: a few messages wait for the window and travel together;
# a burst fills batches of batch_size (never more) without waiting, the rest goes when the
# window ends.
source "$(dirname "$0")/lib.sh"

QUEUE=batch_window
BURST=batch_window_burst
# The burst's mapping has a long window, so that "a full batch did not wait for the window" is
# told from "it did" by a margin no load can blur: a full batch normally arrives in well under a
# second, one that waited takes BURST_WINDOW seconds at least.
BURST_WINDOW=10
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
  - name: burst
    source: redis://127.0.0.1:$REDIS_PORT/0/$BURST
    function: echo
    batch_size: 100
    maximum_batching_window_in_seconds: $BURST_WINDOW
    visibility_timeout: 30
YAML

start_weir "$T/weir.yaml"
wait_connected
wait_until 'grep -q "mapping/burst: redis: connected" "$WEIR_LOG"' 60 ||
    fail "mapping burst did not connect to redis"

# Prefix-filtered views of the record file.
recs_of() { records "$T/rec" | awk -F'\t' -v p="$1-" 'index($3, p) == 1'; }
unique_of() { recs_of "$1" | cut -f3 | sort -u | wc -l; }
requests_of() { recs_of "$1" | awk -F'\t' '{ print $4 "." $5 }' | sort -u | wc -l; }
max_of() { recs_of "$1" | awk -F'\t' 'BEGIN { m = 0 } $6 > m { m = $6 } END { print m }'; }

# Timing: t0 is taken before the push, and a time is read when the test sees the records, which
# is at or after they arrived. A window runs from its batch's first record, claimed after t0, so a
# batch that waited for its window is always seen at least that long after t0, whatever the load:
# those lower bounds are strict. Load only makes the times seen later, so every upper bound is
# either the logical limit (less than the window: it did not wait) or generous.

# 1. Five messages: nothing is invoked before the window ends, then one request carries all.
t0=$(now)
push 5 few
wait_until '[[ $(unique_of few) -ge 5 ]]' 60 || fail "$(unique_of few) of 5 bodies received"
took=$(since "$t0")
lt 0.7 "$took" || fail "5 messages arrived after ${took}s: the 1 s window was not waited for"
# Generous: only catches a batch held far past its window (e.g. until the 30 s visibility
# timeout, or until more records come); a loaded machine adds seconds, not tens of seconds.
lt "$took" 15 || fail "5 messages arrived only after ${took}s (window is 1 s)"
[[ $(requests_of few) == 1 ]] || fail "5 messages came in $(requests_of few) requests, expected 1"
ok "5 messages arrived together in 1 request after ${took}s (window 1 s)"

# 2. A burst of 250 with batch_size 100: two full batches go at once, the last 50 wait for the
# window.
t0=$(now)
push 250 burst "$BURST"
wait_until '[[ $(unique_of burst) -ge 100 ]]' 60 || fail "$(unique_of burst) of 250 bodies received"
full=$(since "$t0")
# Seen before the window could have ended: the first full batch did not wait for it.
lt "$full" "$BURST_WINDOW" ||
    fail "the first 100 burst messages arrived after ${full}s: a full batch waited for the window"
ok "a full batch of the burst arrived after ${full}s, before the ${BURST_WINDOW} s window could end"
wait_until '[[ $(unique_of burst) -ge 250 ]]' $((BURST_WINDOW + 60)) ||
    fail "$(unique_of burst) of 250 bodies received"
took=$(since "$t0")
expect_all_bodies 250 burst "$T/rec"
# The last, partial batch is still bound by the window.
lt "$((BURST_WINDOW - 1)).5" "$took" ||
    fail "all 250 burst messages arrived after ${took}s: the last 50 did not wait for the window"
ok "all 250 burst bodies received in ${took}s, the last ones after the ${BURST_WINDOW} s window"
max=$(max_of burst)
n=$(requests_of burst)
sizes=$(recs_of burst | awk -F'\t' '{ print $4 "." $5, $6 }' | sort -u | awk '{ print $2 }' | tr '\n' ' ')
[[ $max -le 100 ]] || fail "a request carried $max records (batch_size 100); sizes: $sizes"
[[ $max == 100 ]] || fail "no request was full (sizes: $sizes): a burst of 250 should fill batches"
[[ $n -le 4 ]] || fail "250 messages took $n requests (sizes: $sizes); expected about 100,100,50"
ok "request sizes: $sizes(at most 100 each, $n requests)"

wait_until nothing_left 30 ||
    fail "left behind: LLEN=$(llen "$QUEUE") inflight=$(inflight "$QUEUE")"
wait_until 'nothing_left "$BURST"' 30 ||
    fail "left behind: LLEN=$(llen "$BURST") inflight=$(inflight "$BURST")"
ok "queues and inflight empty"

stop_weir
pass
