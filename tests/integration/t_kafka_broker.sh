#!/usr/bin/env bash
# The Kafka test cluster itself (tests/tools/kafka_broker through lib.sh's start_kafka): two
# brokers, a topic of four partitions; keyed messages spread over every partition and read back
# whole, by offset and by a consumer group; every broker down refuses producers, and back up it
# has kept every message and the group's offsets; SIGTERM ends it with status 0.
source "$(dirname "$0")/lib.sh"

GROUP=t-kafka-broker
# group_read: what the consumer group GROUP has not read yet, "key<TAB>value" a line. A member
# rejoining after another left waits session.timeout.ms - 1 s in the mock: 6 s, not 45.
group_read() {
    timeout 120 kcat -b "$KAFKA_BOOTSTRAP" -C -e -q -G "$GROUP" t \
        -X auto.offset.reset=earliest -X session.timeout.ms=6000 -f '%k\t%s\n' 2>"$T/group.err"
}

start_kafka --brokers 2 t:4
[[ $KAFKA_BOOTSTRAP =~ ^127\.0\.0\.1:[0-9]+,127\.0\.0\.1:[0-9]+$ ]] ||
    fail "bootstrap is not two loopback brokers: $KAFKA_BOOTSTRAP"
ok "two brokers at $KAFKA_BOOTSTRAP"

awk 'BEGIN { for (i = 1; i <= 2000; i++) printf "key-%04d\tvalue-%04d\n", i, i }' >"$T/sent"
kafka_produce t <"$T/sent"
n=$(kafka_count t)
[[ $n == 2000 ]] || fail "the topic holds $n messages, not 2000"
sum=0
for p in 0 1 2 3; do
    c=$(kafka_count t "$p")
    [[ $c -gt 0 ]] || fail "partition $p got no message"
    sum=$((sum + c))
done
[[ $sum == 2000 ]] || fail "the partitions hold $sum messages together, not 2000"
ok "2000 keyed messages produced, every partition got some"

kafka_read t >"$T/read"
diff <(cut -f3,4 "$T/read" | sort) <(sort "$T/sent") >/dev/null ||
    fail "what was read by offset is not what was sent"
[[ $(cut -f1,3 "$T/read" | sort -u | cut -f2 | sort | uniq -d | wc -l) == 0 ]] ||
    fail "one key in two partitions"
ok "read back by offset: every key and value as sent, each key in one partition"

t0=$(now)
group_read >"$T/group.1"
diff <(sort "$T/group.1") <(sort "$T/sent") >/dev/null ||
    fail "the consumer group read $(wc -l <"$T/group.1") lines, not the 2000 sent"
ok "the consumer group read all 2000 in $(since "$t0") s"

kafka_down
if echo $'down\tnot-delivered' | kafka_produce t 2>/dev/null; then
    fail "a message was delivered with every broker down"
fi
if timeout 30 kcat -b "$KAFKA_BOOTSTRAP" -L -m 3 >/dev/null 2>&1; then
    fail "metadata was served with every broker down"
fi
ok "brokers down: producing and metadata fail"

kafka_up
awk 'BEGIN { for (i = 1; i <= 100; i++) printf "after-%03d\tvalue-%03d\n", i, i }' >"$T/sent.2"
kafka_produce t <"$T/sent.2"
n=$(kafka_count t)
[[ $n == 2100 ]] || fail "after the brokers came back the topic holds $n messages, not 2100"
ok "brokers up: the 2000 kept, 100 more produced"

t0=$(now)
group_read >"$T/group.2"
diff <(sort "$T/group.2") <(sort "$T/sent.2") >/dev/null ||
    fail "the group read $(wc -l <"$T/group.2") lines after the brokers came back, not the 100 new"
ok "the group's offsets survived: it read just the 100 new ones ($(since "$t0") s)"

stop_kafka
pass
