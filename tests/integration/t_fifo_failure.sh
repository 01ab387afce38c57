#!/usr/bin/env bash
# A failing message blocks its message group only, as in SQS FIFO: every retry of it happens
# before any newer message of its group; other groups go on meanwhile. Past max_receive_count it
# goes to the dead-letter list, and its group goes on.
source "$(dirname "$0")/lib.sh"

QUEUE=jobs.fifo
DLQ=jobs-dlq.fifo
POISON=g007-000004
start_redis
start_fn_http --record "$T/rec" --mode error --fail-match "$POISON"

cat >"$T/weir.yaml" <<YAML
functions:
  - name: picky
    url: $FN_URL
    timeout: 1
mappings:
  - name: jobs
    source: redis://127.0.0.1:$REDIS_PORT/0/$QUEUE
    function: picky
    batch_size: 1
    scaling_config: {maximum_concurrency: 10}
    visibility_timeout: 2
    redrive_policy: {max_receive_count: 3, dead_letter_target: $DLQ}
YAML

fifo_envelopes 20 10 | push_lines "$QUEUE"
start_weir "$T/weir.yaml"

wait_until '[[ $(llen "$DLQ") -ge 1 ]]' 60 || fail "the failing message never reached $DLQ"
wait_until '[[ $(count_unique_bodies "$T/rec") -ge 200 ]]' 60 ||
    fail "$(count_unique_bodies "$T/rec") of 200 bodies received"
wait_until nothing_left 30 || fail "left behind: LLEN=$(llen "$QUEUE") inflight=$(inflight "$QUEUE")"
check_weirs_alive

receives=$(count_body "$POISON" "$T/rec")
[[ $receives == 3 ]] || fail "$POISON was received $receives times, expected 3 (max_receive_count)"
ok "$POISON received 3 times, then dead-lettered"
dead=$(rcli LINDEX "$DLQ" 0)
jq -e --arg b "$POISON" '.body == $b and .group == "g007" and .rc == 3' <<<"$dead" >/dev/null ||
    fail "dead-letter entry is not the message: $dead"
ok "dead-letter entry keeps body and group: $(jq -c '{body, group, rc}' <<<"$dead")"

# Line numbers in the record file are the order the function saw requests in. (awk reads to the
# end: an early exit would end the pipe under the reader, which pipefail reports as a failure.)
line_of() { records "$T/rec" | awk -F'\t' -v b="$1" -v k="$2" '$3 == b && ++n == k { print NR }'; }
third=$(line_of "$POISON" 3)
next_in_group=$(line_of g007-000005 1)
[[ -n $next_in_group && $next_in_group -gt $third ]] ||
    fail "g007-000005 (line ${next_in_group:-none}) reached the function before the last retry of $POISON (line $third)"
ok "every retry of $POISON came before any newer message of its group"

gaps=$(fifo_gaps "$T/rec")
[[ ${gaps##*gaps=} == 0 ]] || fail "order broken: $(head -n 5 <<<"$gaps")"
ok "every group in push order"

# The other groups were not blocked: each finished before the failing message's last retry.
for g in $(seq -f 'g%03g' 1 20); do
    [[ $g == g007 ]] && continue
    last=$(line_of "$g-000010" 1)
    [[ -n $last && $last -lt $third ]] || fail "$g finished at line ${last:-never}, after $POISON's last retry (line $third): it was blocked"
done
ok "the 19 other groups finished while $POISON was retried"

[[ $(count_overlaps "$T/rec") == 0 ]] || fail "two batches of one group at the function at once"
stop_weir
pass
