#!/usr/bin/env bash
# Kafka as a stream: keyed records across 4 partitions reach the function once each (no
# failures), in offset order per partition with parallelization_factor 1 and in order per key
# with parallelization_factor 4, in SelfManagedKafka events; a restart reads nothing twice (the
# committed offsets hold).
source "$(dirname "$0")/lib.sh"

start_kafka orders:4 orders_pf:4
start_fn_http --record "$T/rec" --events "$T/events" --delay-ms 5

cat >"$T/weir.yaml" <<YAML
state_dir: $T/state
functions:
  - name: consumer
    url: $FN_URL
mappings:
  - name: by-partition
    source: kafka://$KAFKA_BOOTSTRAP/orders
    function: consumer
    batch_size: 50
    kafka_config: {session.timeout.ms: "6000"}
  - name: by-key
    source: kafka://$KAFKA_BOOTSTRAP/orders_pf
    function: consumer
    batch_size: 20
    parallelization_factor: 4
    kafka_config: {session.timeout.ms: "6000"}
YAML

N=3000
awk -v n=$N 'BEGIN { for (i = 1; i <= n; i++) printf "k%03d\t{\"n\":%d,\"key\":\"k%03d\"}\n", i % 97, i, i % 97 }' >"$T/input"
kafka_produce orders <"$T/input"
kafka_produce orders_pf <"$T/input"
start_weir "$T/weir.yaml"

# Record lines: id ("<topic>-<partition>:<offset>"), receives, body, pid, request, records, key.
wait_until '[[ $(count_records "$T/rec") -ge $((2 * N)) ]]' 60 ||
    fail "$(count_records "$T/rec") of $((2 * N)) records received"
sleep 1.5 # a record delivered twice would show by now
[[ $(count_records "$T/rec") == $((2 * N)) ]] ||
    fail "$(count_records "$T/rec") deliveries for $((2 * N)) records"
[[ $(records "$T/rec" | cut -f1 | sort -u | wc -l) == $((2 * N)) ]] ||
    fail "some record was delivered twice: $(records "$T/rec" | cut -f1 | sort | uniq -d | head -3)"
ok "each of the $((2 * N)) records received exactly once"

for topic in orders orders_pf; do
    got=$(records "$T/rec" | awk -F'\t' -v t="$topic" '{ sub(/-[0-9]+:[0-9]+$/, "", $1) } $1 == t' |
        cut -f3 | sort -u | wc -l)
    [[ $got == "$N" ]] || fail "topic $topic: $got of $N bodies arrived"
done

# Per partition (PF 1): offsets arrive in increasing order, one batch at a time.
bad=$(records "$T/rec" | awk -F'\t' '$1 ~ /^orders-/ { split($1, a, ":"); p = a[1]; o = a[2] + 0;
    if (p in last && o <= last[p]) { print $1 " after offset " last[p]; exit } last[p] = o }')
[[ -z $bad ]] || fail "partition order broken: $bad"
ok "topic orders (parallelization_factor 1): offsets in order in every partition"

# Per key (PF 4): each key's values arrive in increasing order.
bad=$(records "$T/rec" | awk -F'\t' '$1 ~ /^orders_pf-/ { split($1, a, ":"); o = a[2] + 0;
    if ($7 in last && o <= last[$7]) { print "key " $7 ": offset " o " after " last[$7]; exit } last[$7] = o }')
[[ -z $bad ]] || fail "key order broken: $bad"
overlap=$(records "$T/rec" | awk -F'\t' '$1 ~ /^orders_pf-/ { print $8 }' | sort -n | tail -1)
ok "topic orders_pf (parallelization_factor 4): each key's offsets in order (most requests in flight at the function: $((overlap + 1)))"

# Every event is one partition's SelfManagedKafka event, as reference 4.2 shows it.
bad=$(jq -c 'select(.eventSource != "SelfManagedKafka" or .bootstrapServers != "'"$KAFKA_BOOTSTRAP"'"
    or (.records | length) != 1
    or ([.records[][] | select((.topic | type) != "string" or (.partition | type) != "number"
        or (.offset | type) != "number" or (.timestamp | type) != "number"
        or .timestampType != "CREATE_TIME" or (.key | type) != "string"
        or (.value | @base64d | fromjson | .key) != (.key | @base64d)
        or (.headers | type) != "array")] | length) > 0)' "$T/events" | head -1)
[[ -z $bad ]] || fail "an event not shaped as reference 4.2: ${bad:0:300}"
ok "$(wc -l <"$T/events") events shaped as reference 4.2 (keys and values decode to what was produced)"

# The offsets are committed: a new weir in the same groups reads nothing again.
stop_weir
before=$(count_records "$T/rec")
start_weir "$T/weir.yaml"
wait_until 'grep -q "partitions assigned topic=orders_pf" "$WEIR_LOG" && grep -q "partitions assigned topic=orders " "$WEIR_LOG"' 30 ||
    fail "the restarted weir was assigned no partitions"
sleep 2
[[ $(count_records "$T/rec") == "$before" ]] ||
    fail "the restarted weir delivered $(($(count_records "$T/rec") - before)) records again"
ok "after a restart nothing is delivered again: the offsets were committed"
stop_weir
pass
