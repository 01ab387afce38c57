#!/usr/bin/env bash
# filter_criteria: a mapping with three patterns (a JSON body pattern, a plain-string prefix, a
# message attribute) receives exactly the matching messages, JSON and plain alike; every other
# message is settled (deleted), nothing is left in the queue or leased, nothing comes back after
# the visibility timeout, and weir's log counts the filtered ones. `weir check` places a bad
# pattern's error inside the pattern.
source "$(dirname "$0")/lib.sh"

QUEUE=filter
start_redis
start_fn_http --record "$T/rec"

cat >"$T/weir.yaml" <<YAML
functions:
  - name: fn
    url: $FN_URL
    timeout: 3
mappings:
  - name: filtered
    source: redis://127.0.0.1:$REDIS_PORT/0/$QUEUE
    function: fn
    batch_size: 10
    maximum_batching_window_in_seconds: 0
    visibility_timeout: 3
    filter_criteria:
      filters:
        - pattern: '{"body": {"status": ["PAID"], "total": [{"numeric": [">", 100]}]}}'
        - pattern: '{"body": [{"prefix": "ping-"}]}'
        - pattern: |
            {"messageAttributes": {"tenant": {"stringValue": ["acme"]}}}
YAML

"$WEIR" check -c "$T/weir.yaml" >"$T/check.out" 2>&1 || fail "weir check refused: $(cat "$T/check.out")"
ok "weir check accepts the filters"

# Messages, and which of them match:
#   120 JSON orders, PAID every third, total 10*i: PAID with total > 100 matches (37)
#   40 plain ping-..., matched by the prefix; 40 plain pong-..., matched by nothing
#   10 JSON bodies holding "ping-...": a plain pattern never matches a JSON body
#   20 envelopes with a tenant attribute, acme for odd ones: 10 match
awk 'BEGIN {
    for (i = 1; i <= 120; i++)
        printf "{\"order\":\"j-%06d\",\"status\":\"%s\",\"total\":%d}\n", i, (i % 3 ? "NEW" : "PAID"), i * 10
    for (i = 1; i <= 40; i++) printf "ping-%06d\n", i
    for (i = 1; i <= 40; i++) printf "pong-%06d\n", i
    for (i = 1; i <= 10; i++) printf "{\"msg\":\"ping-json-%06d\"}\n", i
    for (i = 1; i <= 20; i++)
        printf "{\"weir\":1,\"body\":\"env-%06d\",\"attributes\":{\"tenant\":\"%s\"}}\n", i, (i % 2 ? "acme" : "other")
}' >"$T/messages"
awk 'BEGIN {
    for (i = 1; i <= 120; i++)
        if (i % 3 == 0 && i * 10 > 100)
            printf "{\"order\":\"j-%06d\",\"status\":\"PAID\",\"total\":%d}\n", i, i * 10
    for (i = 1; i <= 40; i++) printf "ping-%06d\n", i
    for (i = 1; i <= 20; i += 2) printf "env-%06d\n", i
}' | sort >"$T/expected"
TOTAL=$(wc -l <"$T/messages")
WANT=$(wc -l <"$T/expected")
FILTERED=$((TOTAL - WANT))
note "$TOTAL messages, $WANT match a pattern, $FILTERED do not"

WEIR_LOG_LEVEL=debug start_weir "$T/weir.yaml"
push_lines <"$T/messages"

wait_until '[[ $(count_unique_bodies "$T/rec") -ge $WANT ]]' 60 ||
    fail "$(count_unique_bodies "$T/rec") of $WANT matching messages received"
wait_until nothing_left 20 ||
    fail "left behind: LLEN=$(llen "$QUEUE") inflight=$(inflight "$QUEUE")"
ok "the $WANT matching messages were received; queue and inflight are empty"

records "$T/rec" | cut -f3 | sort -u >"$T/got"
extra=$(comm -13 "$T/expected" "$T/got" | head -n 5)
missing=$(comm -23 "$T/expected" "$T/got" | head -n 5)
[[ -z $extra ]] || fail "received messages no pattern matches, e.g.: $(echo $extra)"
[[ -z $missing ]] || fail "matching messages never received, e.g.: $(echo $missing)"
ok "the function received exactly the matching messages (JSON bodies, plain bodies, attributes)"

# A filtered message left leased would come back when its 3 s visibility timeout ends.
sleep 4
[[ $(count_records "$T/rec") == "$WANT" ]] ||
    fail "$(count_records "$T/rec") records for $WANT messages: something was delivered twice"
nothing_left || fail "after 4 s: LLEN=$(llen "$QUEUE") inflight=$(inflight "$QUEUE")"
ok "nothing came back after the visibility timeout; each match delivered once"

stop_weir
grep -q "mapping/filtered: stopped records_in=$TOTAL .*filtered=$FILTERED " "$WEIR_LOG" ||
    fail "weir's stop line does not count $FILTERED filtered of $TOTAL: $(grep 'stopped records_in' "$WEIR_LOG")"
logged=$(sed -n 's/.*mapping\/filtered: filtered out records=\([0-9]*\).*/\1/p' "$WEIR_LOG" |
    awk '{ n += $1 } END { print n + 0 }')
[[ $logged == "$FILTERED" ]] || fail "debug lines count $logged filtered records, expected $FILTERED"
ok "weir's log counts $FILTERED filtered records (stop line and debug lines)"

# A bad pattern: `weir check` exits 2 and points at the value inside the pattern (line 14, the
# quoted "100" starting at column 79).
sed 's/\[">", 100\]/[">", "100"]/' "$T/weir.yaml" >"$T/bad.yaml"
rc=0
"$WEIR" check -c "$T/bad.yaml" >"$T/bad.out" 2>&1 || rc=$?
[[ $rc == 2 ]] || fail "weir check on a bad pattern exited $rc, expected 2: $(cat "$T/bad.out")"
grep -qF "$T/bad.yaml:14:79: mapping 'filtered': filter_criteria.filters[0].pattern: at body.total: numeric: the bound after \">\" must be a number, got a string" "$T/bad.out" ||
    fail "weir check did not place the error inside the pattern: $(cat "$T/bad.out")"
ok "weir check names $(basename "$T")/bad.yaml:14:79 inside the pattern"

pass
