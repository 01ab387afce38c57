#!/usr/bin/env bash
# Two weir processes with the same mapping (same name, so the same consumer group) on a topic of
# 6 partitions: the group shares the partitions between them, each partition read by one weir.
# Records produced once both are assigned and the group has settled are delivered once each,
# every one of them, each weir delivering some (told apart by the pid of its own fn_http).
source "$(dirname "$0")/lib.sh"

N=6000
start_kafka shared:6
start_fn_http --record "$T/rec"
FN_A=$FN_URL
PID_A=$FN_PID
start_fn_http --record "$T/rec"
FN_B=$FN_URL
PID_B=$FN_PID

# config URL: the same mapping for both weirs; only the function's endpoint differs.
config() {
    cat <<YAML
state_dir: $T/state.$2
functions:
  - name: consumer
    url: $1
mappings:
  - name: shared
    source: kafka://$KAFKA_BOOTSTRAP/shared
    function: consumer
    batch_size: 100
    kafka_config: {session.timeout.ms: "6000"}
YAML
}
config "$FN_A" a >"$T/a.yaml"
config "$FN_B" b >"$T/b.yaml"

start_weir "$T/a.yaml"
WEIR_A=$WEIR_PID
LOG_A=$WEIR_LOG
wait_until 'grep -q "partitions assigned topic=shared " "$LOG_A"' 30 || fail "weir A was assigned nothing"
start_weir "$T/b.yaml"
WEIR_B=$WEIR_PID
LOG_B=$WEIR_LOG

# assigned LOG: the partitions that weir holds now, by its log (the last assignment after the
# last revocation), one a line; empty while it holds none.
assigned() {
    awk '/partitions assigned topic=shared / { sub(/.*partitions=/, ""); n = split($1, a, ",");
            for (i = 1; i <= n; i++) held[a[i]] = 1 }
        /partitions revoked topic=shared / { sub(/.*partitions=/, ""); n = split($1, a, ",");
            for (i = 1; i <= n; i++) delete held[a[i]] }
        END { for (p in held) print p }' "$1" | sort -n
}
settled() {
    local a b
    a=$(assigned "$LOG_A")
    b=$(assigned "$LOG_B")
    [[ -n $a && -n $b ]] || return 1
    [[ $(printf '%s\n%s\n' "$a" "$b" | sort -n | paste -sd,) == 0,1,2,3,4,5 ]]
}
wait_until settled 60 || fail "the group did not share the 6 partitions: A holds" \
    "$(assigned "$LOG_A" | paste -sd,), B holds $(assigned "$LOG_B" | paste -sd,)"
# Settled means no further rebalance for 2 s.
events() { cat "$LOG_A" "$LOG_B" | grep -c "partitions \(assigned\|revoked\)"; }
snapshot=$(events)
t_settled=$(now)
wait_until '[[ $(events) != "$snapshot" ]] || ! lt "$(since "$t_settled")" 2' 10
[[ $(events) == "$snapshot" ]] || fail "the group rebalanced again after it had shared the partitions"
settled || fail "the assignment changed after it had settled"
ok "the group shares the partitions: weir A holds $(assigned "$LOG_A" | paste -sd,), weir B holds $(assigned "$LOG_B" | paste -sd,)"

awk -v n=$N 'BEGIN { for (i = 1; i <= n; i++) printf "k%03d\tv-%06d\n", i % 307, i }' |
    kafka_produce shared
wait_until '[[ $(count_unique_bodies "$T/rec") -ge $N ]]' 60 ||
    fail "$(count_unique_bodies "$T/rec") of $N records received"
sleep 1.5 # a second delivery would show by now
expect_all_bodies $N v "$T/rec"
[[ $(count_records "$T/rec") == "$N" ]] ||
    fail "$(count_records "$T/rec") deliveries for $N records: $(count_duplicate_bodies "$T/rec") delivered twice"
ok "each of the $N records delivered exactly once"

by_a=$(records "$T/rec" | awk -F'\t' -v p="$PID_A" '$4 == p' | wc -l)
by_b=$(records "$T/rec" | awk -F'\t' -v p="$PID_B" '$4 == p' | wc -l)
[[ $by_a -gt 0 && $by_b -gt 0 && $((by_a + by_b)) == "$N" ]] ||
    fail "deliveries by weir A: $by_a, by weir B: $by_b (both must deliver, $N in all)"
# Each partition went through one weir only, the one the group gave it to.
for w in A B; do
    pid_var=PID_$w log_var=LOG_$w
    got=$(records "$T/rec" | awk -F'\t' -v p="${!pid_var}" '$4 == p { split($1, a, ":"); sub(/.*-/, "", a[1]); print a[1] }' |
        sort -un | paste -sd,)
    want=$(assigned "${!log_var}" | paste -sd,)
    [[ $got == "$want" ]] || fail "weir $w delivered partitions $got but holds $want"
done
ok "weir A delivered $by_a records, weir B $by_b, each from the partitions it holds only"

# Both stopped one right after the other (the second leaves during the rebalance the first
# caused): their offsets are committed, so one weir started again delivers only what is new.
stop_weir "$WEIR_B"
stop_weir "$WEIR_A"
start_weir "$T/a.yaml"
wait_until '[[ $(assigned "$WEIR_LOG" | paste -sd,) == 0,1,2,3,4,5 ]]' 60 ||
    fail "the restarted weir does not hold the 6 partitions"
for p in 0 1 2 3 4 5; do
    printf 'after-%s\n' "$p" | kcat -b "$KAFKA_BOOTSTRAP" -P -t shared -p "$p" 2>"$T/kcat.err" ||
        fail "producing to partition $p failed: $(cat "$T/kcat.err")"
done
wait_until '[[ $(count_prefix after- "$T/rec") -ge 6 ]]' 30 ||
    fail "the restarted weir delivered $(count_prefix after- "$T/rec") of the 6 new records"
sleep 0.5
again=$(($(count_records "$T/rec") - N - 6))
[[ $again == 0 ]] || fail "after both stopped and one restarted, $again records were delivered again" \
    "(offsets not committed at stop): $(grep -h COMMITFAIL "$LOG_A" "$LOG_B" | head -2)"
ok "after both stopped and one restarted, only the 6 new records were delivered"
stop_weir
pass
