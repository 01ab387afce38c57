#!/usr/bin/env bash
# A Kafka topic as a stream's on-failure destination: a poison record, given up after its
# retries, lands there as itself (key, value and headers kept, plus headers naming its origin);
# the partition moves on; `weir redrive --from kafka://…/failed` puts it back into the topic it
# came from (origin headers dropped), where the stream reads it again. A destination equal to the
# source topic is refused.
source "$(dirname "$0")/lib.sh"

start_kafka orders:2 orders-failed:1
start_fn_http --record "$T/rec" --mode error --fail-match poison

cat >"$T/weir.yaml" <<YAML
state_dir: $T/state
functions:
  - name: consumer
    url: $FN_URL
mappings:
  - name: orders
    source: kafka://$KAFKA_BOOTSTRAP/orders
    function: consumer
    batch_size: 10
    maximum_batching_window_in_seconds: 0
    maximum_retry_attempts: 1
    bisect_batch_on_function_error: true
    destination_config:
      on_failure:
        destination: kafka://$KAFKA_BOOTSTRAP/orders-failed
    kafka_config: {session.timeout.ms: "6000"}
YAML

# A destination that is the source topic itself is refused before anything starts.
sed 's|/orders-failed$|/orders|' "$T/weir.yaml" >"$T/loop.yaml"
if "$WEIR" check -c "$T/loop.yaml" >"$T/loop.out" 2>&1; then
    fail "a destination equal to the source topic was accepted"
fi
grep -q "the on_failure destination is the source topic 'orders' itself" "$T/loop.out" ||
    fail "unexpected message: $(cat "$T/loop.out")"
ok "a destination equal to the source topic is refused: $(head -1 "$T/loop.out")"

{
    for i in $(seq 1 40); do printf 'k%d\t{"n":%d}\n' $((i % 3)) "$i"; done
    printf 'kp\t{"n":"poison"}\n'
    for i in $(seq 41 80); do printf 'k%d\t{"n":%d}\n' $((i % 3)) "$i"; done
} >"$T/input"
kafka_produce orders <"$T/input"
start_weir "$T/weir.yaml"

wait_until '[[ $(records "$T/rec" | grep -vc poison) -ge 80 ]]' 60 ||
    fail "$(records "$T/rec" | grep -vc poison) of 80 good records received"
wait_until '[[ $(kafka_count orders-failed) -ge 1 ]]' 30 || fail "nothing reached orders-failed"
sleep 1
[[ $(kafka_count orders-failed) == 1 ]] || fail "$(kafka_count orders-failed) records in orders-failed, not 1"
# Bisected down to itself, then tried once more (maximum_retry_attempts: 1).
alone=$(records "$T/rec" | awk -F'\t' '$3 ~ /poison/ && $6 == 1' | wc -l)
[[ $alone == 2 ]] || fail "the poison record was invoked alone $alone times, not 2"
ok "the poison record alone: invoked twice, then given up; the 80 others delivered"

kcat -b "$KAFKA_BOOTSTRAP" -C -e -q -t orders-failed \
    -f '%k\t%s\t%h\n' >"$T/failed" 2>/dev/null
IFS=$'\t' read -r key value headers <"$T/failed"
[[ $key == kp && $value == '{"n":"poison"}' ]] || fail "failed record: key '$key' value '$value'"
for h in weir-source-topic=orders weir-source-partition= weir-source-offset= \
    weir-condition=RetryAttemptsExhausted weir-error=; do
    [[ $headers == *"$h"* ]] || fail "header $h missing: $headers"
done
ok "orders-failed holds the record itself: key and value kept, headers $headers"

# The partition moved on: a restart reads nothing again.
stop_weir
before=$(count_records "$T/rec")
start_fn_http --record "$T/rec2"
sed "s|url: .*|url: $FN_URL|" "$T/weir.yaml" >"$T/weir2.yaml"
start_weir "$T/weir2.yaml"
wait_until 'grep -q "partitions assigned topic=orders" "$WEIR_LOG"' 30 || fail "no assignment"
sleep 2
[[ $(count_records "$T/rec2") == 0 ]] || fail "$(count_records "$T/rec2") records delivered again after the restart"
ok "the committed offsets are past the poison record"

# Redrive: the record goes back to orders, without weir's headers, and is read again.
"$WEIR" redrive -c "$T/weir2.yaml" --from "kafka://$KAFKA_BOOTSTRAP/orders-failed" --rate 0 \
    >"$T/redrive.out" 2>&1 || fail "weir redrive failed: $(cat "$T/redrive.out")"
grep -q "1 moved back into their topics" "$T/redrive.out" || fail "redrive said: $(cat "$T/redrive.out")"
wait_until '[[ $(count_records "$T/rec2") -ge 1 ]]' 30 || fail "the redriven record never arrived"
records "$T/rec2" | awk -F'\t' '$3 ~ /poison/ && $7 == "kp"' | grep -q . ||
    fail "the redriven record arrived changed: $(records "$T/rec2")"
back=$(kcat -b "$KAFKA_BOOTSTRAP" -C -e -q -t orders -f '%k %h\n' 2>/dev/null | awk '$1 == "kp"' | tail -1)
[[ $back != *weir-* ]] || fail "the redriven copy kept weir's headers: $back"
ok "weir redrive moved it back into orders; the function got it again with its key"

# A second redrive finds nothing: the redrive group's offset moved past it.
"$WEIR" redrive -c "$T/weir2.yaml" --from "kafka://$KAFKA_BOOTSTRAP/orders-failed" --rate 0 \
    >"$T/redrive2.out" 2>&1 || fail "second redrive failed: $(cat "$T/redrive2.out")"
grep -q " 0 moved back" "$T/redrive2.out" || fail "second redrive said: $(cat "$T/redrive2.out")"
ok "a second redrive moves nothing"
stop_weir
pass
