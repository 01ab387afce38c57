#!/usr/bin/env bash
# The Kafka cluster goes down while weir consumes: the function gets what weir had already read,
# then nothing; weir says the broker is unreachable and keeps running; the brokers come back, more
# records are produced, and every record of both runs reaches the function: nothing lost.
source "$(dirname "$0")/lib.sh"

N1=600
N2=200
start_kafka outage:2
start_fn_http --record "$T/rec" --delay-ms 1000

# Reconnects at least every second and heartbeats every second: once the brokers are back, the
# group hears from weir well within session.timeout.ms (10 s), so the outage of about 7 s costs no
# rebalance (which would redeliver, and take time).
cat >"$T/weir.yaml" <<YAML
state_dir: $T/state
functions:
  - name: consumer
    url: $FN_URL
mappings:
  - name: outage
    source: kafka://$KAFKA_BOOTSTRAP/outage
    function: consumer
    batch_size: 100
    kafka_config: {session.timeout.ms: "10000", heartbeat.interval.ms: "1000",
        reconnect.backoff.max.ms: "1000"}
YAML

start_weir "$T/weir.yaml"
wait_until 'grep -q "partitions assigned topic=outage " "$WEIR_LOG"' 30 ||
    fail "weir was assigned no partitions"
awk -v n=$N1 'BEGIN { for (i = 1; i <= n; i++) printf "k%02d\ta-%06d\n", i % 37, i }' |
    kafka_produce outage
unique() { records "$T/rec" | cut -f3 | sort -u | wc -l; }

# The brokers go down while the function holds the first batches (1 s each) and weir has read
# the rest of the run (its partitions' read-ahead) to hand over next.
wait_until '[[ $(count_records "$T/rec") -ge 100 ]]' 60 ||
    fail "no batch reached the function ($(count_records "$T/rec") records delivered)"
at_down=$(count_records "$T/rec")
log_at_down=$(wc -l <"$WEIR_LOG")
kafka_down
t_down=$(now)

# What weir had read still reaches the function, a batch per partition each second; then nothing,
# for as long as the brokers are down: the count holds still for 2.5 s, well over the gap between
# two of the function's answers however slow the machine is.
last=-1
stable_since=$(now)
wait_until 'n=$(count_records "$T/rec"); if [[ $n != "$last" ]]; then last=$n; stable_since=$(now); fi
    lt 2.5 "$(since "$stable_since")"' 30 || fail "deliveries went on with the brokers down"
during=$(count_records "$T/rec")
# weir reads a partition ahead of its batches (librdkafka fetches ahead too), so the whole run may
# be in its memory by now; the brokers went down while the function still had records to get.
[[ $at_down -lt $N1 ]] || fail "every record had arrived before the outage: nothing was tested"
[[ $during -gt $at_down ]] ||
    fail "the records weir had read ahead did not reach the function while the brokers were down"
# What weir logged since the brokers went down: its own warning, or librdkafka's connection errors.
UNREACHABLE='broker unreachable|librdkafka .*(Connection refused|Disconnected|brokers are down|transport failure)'
since_down() { tail -n +$((log_at_down + 1)) "$WEIR_LOG"; }
wait_until 'since_down | grep -qE "$UNREACHABLE"' 30 ||
    fail "weir did not log that the broker is unreachable"
ok "brokers down: the function got $((during - at_down)) records weir had read, then nothing; weir logged: $(since_down | grep -m1 -oE "($UNREACHABLE).{0,50}")"
# About 7 s down in all (less than session.timeout.ms, so the group keeps weir).
wait_until 'lt 7 "$(since "$t_down")"' 30
[[ $(count_records "$T/rec") == "$during" ]] || fail "deliveries resumed with the brokers down"
check_weirs_alive
note "brokers down for $(since "$t_down") s"

kafka_up
awk -v n=$N2 'BEGIN { for (i = 1; i <= n; i++) printf "k%02d\tb-%06d\n", i % 37, i }' |
    kafka_produce outage
wait_until '[[ $(unique) -ge $((N1 + N2)) ]]' 90 ||
    fail "$(unique) of $((N1 + N2)) records received after the brokers came back"
sleep 1 # a late redelivery would show by now
expect_all_bodies $N1 a "$T/rec"
expect_all_bodies $N2 b "$T/rec"
check_weirs_alive
dups=$(count_duplicate_bodies "$T/rec")
ok "brokers up: all $((N1 + N2)) records received ($dups delivered more than once), weir still running"
# An outage weir reported, it reports over.
if grep -q "broker unreachable" "$WEIR_LOG"; then
    grep -A1000000 "broker unreachable" "$WEIR_LOG" | grep -q "reading again" ||
        fail "weir logged the broker unreachable but never that it reads again"
    ok "weir logged that it reads again: $(grep -m1 -o 'reading again.*' "$WEIR_LOG")"
fi
stop_weir
pass
