#!/usr/bin/env bash
# A partition whose queue filled is fetched again as soon as weir has read it empty. librdkafka
# stops fetching a partition whose queue holds queued.min.messages (or .kbytes) and looks at it
# again only when its broker's thread wakes: on a fetch of another partition coming back, or
# after a second idle (2.0.2; 2.2's fetch.queue.backoff.ms defaults to that second too). When
# every partition of a broker is full at once, nothing is fetched until then. Queues of 5
# messages, records produced in sets of 5 and a 5 ms function make every partition full after
# each fetch: without weir's wake, 2 partitions deliver about 10 records a second (1185 of 3000
# in two minutes, measured); with it, 3000 take 5 - 11 s after the group join. weir says it woke
# the fetcher; each record still arrives exactly once, in offset order per partition, and the
# committed offsets hold over a restart.
source "$(dirname "$0")/lib.sh"

N=3000
LIMIT=60 # seconds for them all: about 8 times what they take, a quarter of it without the wake

start_kafka events:2
start_fn_http --record "$T/rec" --delay-ms 5

cat >"$T/weir.yaml" <<YAML
state_dir: $T/state
functions:
  - name: consumer
    url: $FN_URL
mappings:
  - name: small-queues
    source: kafka://$KAFKA_BOOTSTRAP/events
    function: consumer
    batch_size: 10
    maximum_batching_window_in_seconds: 0
    kafka_config:
      session.timeout.ms: "6000"
      queued.min.messages: "5"
      queued.max.messages.kbytes: "1"
YAML

awk -v n=$N 'BEGIN { for (i = 1; i <= n; i++) printf "k%02d\tv-%06d\n", i % 10, i }' >"$T/input"
# Sets of 5 messages: a fetch brings whole sets, so a queue holds at least 5 after each.
_kafka_produce events -K $'\t' -X batch.num.messages=5 -X linger.ms=0 <"$T/input"
[[ $(kafka_count events 0) -gt 0 && $(kafka_count events 1) -gt 0 ]] ||
    fail "the records did not spread over both partitions"

started=$(now)
start_weir "$T/weir.yaml"
wait_until '[[ $(count_records "$T/rec") -ge $N ]]' $LIMIT ||
    fail "$(count_records "$T/rec") of $N records received in ${LIMIT}s: full partitions were not fetched again"
ok "$N records received in $(since "$started")s (limit ${LIMIT}s, the weir start and group join included)"

# Record lines: id ("<topic>-<partition>:<offset>"), receives, body, pid, request, records, key.
sleep 1.5 # a record delivered twice would show by now
[[ $(count_records "$T/rec") == "$N" ]] || fail "$(count_records "$T/rec") deliveries for $N records"
[[ $(count_unique_bodies "$T/rec") == "$N" ]] ||
    fail "$(count_unique_bodies "$T/rec") of $N values received"
bad=$(records "$T/rec" | awk -F'\t' '{ split($1, a, ":"); p = a[1]; o = a[2] + 0;
    if (p in last && o != last[p] + 1) { print $1 " after offset " last[p]; exit } last[p] = o }')
[[ -z $bad ]] || fail "a partition's offsets did not follow one another: $bad"
ok "each record exactly once, every partition's offsets one after another"

stop_weir
wakes=$(sed -n 's/.*consumer closed topic=events .*fetcher_wakes=\([0-9]*\).*/\1/p' "$WEIR_LOG")
[[ ${wakes:-0} -gt 0 ]] || fail "weir did not say it woke the fetcher (fetcher_wakes=${wakes:-missing})"
ok "weir woke librdkafka's fetcher $wakes times"

start_weir "$T/weir.yaml"
wait_until 'grep -q "partitions assigned topic=events " "$WEIR_LOG"' 30 ||
    fail "the restarted weir was assigned no partitions"
sleep 2
[[ $(count_records "$T/rec") == "$N" ]] ||
    fail "the restarted weir delivered $(($(count_records "$T/rec") - N)) records again"
ok "after a restart nothing is delivered again: the offsets were committed"
stop_weir
pass
