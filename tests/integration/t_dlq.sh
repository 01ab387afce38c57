#!/usr/bin/env bash
# redrive_policy: a message that keeps failing is received max_receive_count times, then moved
# to the dead-letter list with its body intact; the other messages are delivered meanwhile.
source "$(dirname "$0")/lib.sh"

QUEUE=dlq_src
DLQ=dlq_dead
start_redis
start_fn_http --record "$T/rec" --mode error --fail-match poison

# batch_size 1: with mode error a whole request fails, so a good message sharing a batch with
# the poison would fail with it; one record per request keeps each message's fate its own.
cat >"$T/weir.yaml" <<YAML
functions:
  - name: strict
    url: $FN_URL
    timeout: 1
mappings:
  - name: redrive
    source: redis://127.0.0.1:$REDIS_PORT/0/$QUEUE
    function: strict
    batch_size: 1
    maximum_batching_window_in_seconds: 0
    scaling_config: {maximum_concurrency: 5}
    visibility_timeout: 1
    redrive_policy: {max_receive_count: 3, dead_letter_target: $DLQ}
YAML

POISON='poison-pill {"quoted": "json-like"} and spaces'
push_body "$POISON"
push 50 good
start_weir "$T/weir.yaml"

wait_until '[[ $(llen "$DLQ") -ge 1 ]]' 60 ||
    fail "the poison message never reached $DLQ (received $(count_body "$POISON" "$T/rec") times)"
ok "a message arrived in the dead-letter list $DLQ"

wait_until '[[ $(count_unique_bodies "$T/rec") -ge 51 ]]' 60 ||
    fail "$(count_unique_bodies "$T/rec") of 51 bodies received"
expect_all_bodies 50 good "$T/rec"
ok "all 50 good bodies received"

wait_until nothing_left 20 ||
    fail "left behind: LLEN=$(llen "$QUEUE") inflight=$(inflight "$QUEUE")"
ok "queue and inflight empty"

# Past the point where a fourth receive would have happened.
sleep 1.5
seq=$(records "$T/rec" | awk -F'\t' -v b="$POISON" '$3 == b { printf "%s ", $2 }')
[[ $seq == "1 2 3 " ]] || fail "poison receive counts: '$seq' (expected 1 2 3)"
ok "poison received exactly 3 times, ApproximateReceiveCount 1, 2, 3"

[[ $(llen "$DLQ") == 1 ]] || fail "$DLQ holds $(llen "$DLQ") entries, expected 1"
entry=$(rcli LINDEX "$DLQ" 0)
jq -e . >/dev/null 2>&1 <<<"$entry" || fail "DLQ entry is not JSON: $entry"
[[ $(jq -r .weir <<<"$entry") == 1 ]] || fail "DLQ entry has no \"weir\":1: $entry"
body=$(jq -r .body <<<"$entry")
[[ $body == "$POISON" ]] || fail "DLQ entry body '$body' differs from the original '$POISON'"
ok "DLQ entry is a weir envelope with the original body intact"

dups=$(records "$T/rec" | awk -F'\t' 'index($3, "good-") == 1' | wc -l)
[[ $dups == 50 ]] || fail "good bodies received $dups times for 50 bodies"
ok "each good body received exactly once"

stop_weir
pass
