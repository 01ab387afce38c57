#!/usr/bin/env bash
# A poison record among 500 in one partition (reference 1.4-1.6, 2.2). With
# bisect_batch_on_function_error and maximum_retry_attempts 2 the function (failing any request
# that holds it) sees every other record succeed, the poison bisected down to itself and invoked
# alone exactly 3 times, then one failure record (RetryAttemptsExhausted, KafkaBatchInfo of that
# offset alone) in the directory destination, and the partition moving on. With
# ReportBatchItemFailures and no bisect the function names the poison: the records before it are
# done, from it on the batch is retried, and after the budget the failure record covers from the
# poison to the batch's end. The partition blocks meanwhile; a restart reads nothing again.
source "$(dirname "$0")/lib.sh"

N=500
POISON_AT=237 # the 237th record: offset 236
P=$((POISON_AT - 1))

start_kafka bisect:1 partial:1
start_fn_http --record "$T/rec.bisect" --mode error --fail-match POISON
FN_BISECT=$FN_URL
start_fn_http --record "$T/rec.partial" --mode partial --fail-match POISON
FN_PARTIAL=$FN_URL

cat >"$T/weir.yaml" <<YAML
state_dir: $T/state
functions:
  - name: fails-whole
    url: $FN_BISECT
  - name: reports-items
    url: $FN_PARTIAL
mappings:
  - name: bisect
    source: kafka://$KAFKA_BOOTSTRAP/bisect
    function: fails-whole
    batch_size: 100
    maximum_retry_attempts: 2
    bisect_batch_on_function_error: true
    destination_config: {on_failure: {destination: "file://$T/failures.bisect"}}
    kafka_config: {session.timeout.ms: "6000"}
  - name: partial
    source: kafka://$KAFKA_BOOTSTRAP/partial
    function: reports-items
    batch_size: 100
    maximum_retry_attempts: 2
    function_response_types: [ReportBatchItemFailures]
    destination_config: {on_failure: {destination: "file://$T/failures.partial"}}
    kafka_config: {session.timeout.ms: "6000"}
YAML

awk -v n=$N -v p=$POISON_AT 'BEGIN { for (i = 1; i <= n; i++)
    printf "k%02d\tv-%06d%s\n", i % 7, i, i == p ? "-POISON" : "" }' >"$T/input"
kafka_produce bisect <"$T/input"
kafka_produce partial <"$T/input"
POISON_VALUE=$(printf 'v-%06d-POISON' $POISON_AT)
start_weir "$T/weir.yaml"

# lines TOPIC FILE: the record lines of that topic as "offset<TAB>value<TAB>pid.seq<TAB>records".
lines() {
    records "$2" | awk -F'\t' -v t="$1" '{ split($1, a, ":") }
        a[1] == t "-0" { print a[2] "\t" $3 "\t" $4 "." $5 "\t" $6 }'
}
# failure_files DIR: the failure records written there (dest_dir's renamed files only).
failure_files() { find "$1" -maxdepth 1 -type f -name '*.json' 2>/dev/null | sort; }

wait_until '[[ $(lines bisect "$T/rec.bisect" | cut -f1 | sort -u | wc -l) -ge $N &&
    $(failure_files "$T/failures.bisect" | wc -l) -ge 1 &&
    $(lines partial "$T/rec.partial" | cut -f1 | sort -u | wc -l) -ge $N &&
    $(failure_files "$T/failures.partial" | wc -l) -ge 1 ]]' 60 ||
    fail "not done: bisect $(lines bisect "$T/rec.bisect" | cut -f1 | sort -u | wc -l) of $N" \
        "offsets, $(failure_files "$T/failures.bisect" | wc -l) failure records; partial" \
        "$(lines partial "$T/rec.partial" | cut -f1 | sort -u | wc -l) of $N offsets," \
        "$(failure_files "$T/failures.partial" | wc -l) failure records"
sleep 1.5 # a late retry or a second failure record would show by now

# ---- bisect ------------------------------------------------------------------------------------
lines bisect "$T/rec.bisect" >"$T/bisect"
# Requests that held the poison failed; every other one succeeded.
awk -F'\t' -v v="$POISON_VALUE" '$2 == v { print $3 }' "$T/bisect" | sort -u >"$T/bisect.failed"
[[ $(awk -F'\t' -v v="$POISON_VALUE" '$2 == v' "$T/bisect" | head -1 | cut -f1) == "$P" ]] ||
    fail "the poison value did not come at offset $P"
ok_values=$(awk -F'\t' 'NR == FNR { bad[$1] = 1; next } !($3 in bad) { print $2 }' \
    "$T/bisect.failed" "$T/bisect" | sort -u | wc -l)
[[ $ok_values == $((N - 1)) ]] ||
    fail "bisect: $ok_values of the $((N - 1)) other records were in a request that succeeded"
ok "bisect: each of the $((N - 1)) other records was delivered in a request that succeeded"

alone=$(awk -F'\t' -v v="$POISON_VALUE" '$2 == v && $4 == 1' "$T/bisect" | wc -l)
with_others=$(awk -F'\t' -v v="$POISON_VALUE" '$2 == v && $4 > 1 { print $4 }' "$T/bisect" |
    paste -sd' ')
[[ $alone == 3 ]] ||
    fail "bisect: the poison was invoked alone $alone times, expected 3 (1 + maximum_retry_attempts 2)"
[[ -n $with_others ]] || fail "bisect: the poison was never in a batch with other records"
# Each bisection halves: the sizes of the requests that held it shrink.
sorted=$(tr ' ' '\n' <<<"$with_others" | sort -rn | paste -sd' ')
[[ $sorted == "$with_others" ]] || fail "bisect: sizes of the poison's requests grew: $with_others"
ok "bisect: the poison came in requests of $with_others records, then alone 3 times"

mapfile -t files < <(failure_files "$T/failures.bisect")
[[ ${#files[@]} == 1 ]] || fail "bisect: ${#files[@]} failure records, expected 1"
f=${files[0]}
jq -e --arg tp bisect-0 --arg off "$P" --arg boot "$KAFKA_BOOTSTRAP" '
    .version == "1.0" and .requestContext.condition == "RetryAttemptsExhausted"
    and (.requestContext.functionArn | endswith(":function:fails-whole"))
    and .responseContext.functionError == "Unhandled"
    and .KafkaBatchInfo.batchSize == 1 and .KafkaBatchInfo.bootstrapServers == $boot
    and (.KafkaBatchInfo.recordsInfo | keys) == [$tp]
    and .KafkaBatchInfo.recordsInfo[$tp].firstRecordOffset == $off
    and .KafkaBatchInfo.recordsInfo[$tp].lastRecordOffset == $off' "$f" >/dev/null ||
    fail "bisect: the failure record is not RetryAttemptsExhausted for offset $P alone: $(cat "$f")"
count=$(jq .requestContext.approximateInvokeCount "$f")
ok "bisect: one failure record, RetryAttemptsExhausted, KafkaBatchInfo of offset $P alone (approximateInvokeCount $count)"
[[ $count -ge 3 ]] || fail "bisect: approximateInvokeCount $count, but the record alone was invoked 3 times"

# Blocking: no record after the poison's batch reached the function before the poison was given
# up (the lane waits for its batch).
last_poison=$(awk -F'\t' -v v="$POISON_VALUE" '$2 == v { split($3, a, "."); print a[2] }' \
    "$T/bisect" | sort -n | tail -1)
first_req=$(awk -F'\t' -v v="$POISON_VALUE" '$2 == v { print $3; exit }' "$T/bisect")
batch_end=$(awk -F'\t' -v r="$first_req" '$3 == r { print $1 }' "$T/bisect" | sort -n | tail -1)
early=$(awk -F'\t' -v e="$batch_end" -v s="$last_poison" '$1 > e { split($3, a, "."); if (a[2] < s) print $1 }' \
    "$T/bisect" | head -3 | tr '\n' ' ')
[[ -z $early ]] || fail "bisect: offsets after the poison's batch (ends at $batch_end) went out before it was given up: $early"
[[ $batch_end -lt $((N - 1)) ]] || fail "bisect: the poison's batch reached the end; nothing after it to test"
ok "bisect: the partition blocked on the poison's batch (it ended at offset $batch_end) and then moved on to offset $((N - 1))"

# ---- partial -----------------------------------------------------------------------------------
lines partial "$T/rec.partial" >"$T/partial"
first_req=$(awk -F'\t' -v v="$POISON_VALUE" '$2 == v { print $3; exit }' "$T/partial")
awk -F'\t' -v r="$first_req" '$3 == r { print $1 }' "$T/partial" | sort -n >"$T/partial.batch"
b_lo=$(head -1 "$T/partial.batch")
b_hi=$(tail -1 "$T/partial.batch")
note "partial: the poison's batch is offsets $b_lo..$b_hi"
[[ $b_lo -lt $P && $b_hi -gt $P ]] ||
    fail "partial: the poison (offset $P) is at an end of its batch ($b_lo..$b_hi): nothing to test"
[[ $(wc -l <"$T/partial.batch") == $((b_hi - b_lo + 1)) ]] ||
    fail "partial: the poison's first request is not a contiguous run of offsets"
# The requests that held the poison: the first one, then two retries of exactly P..b_hi.
mapfile -t reqs < <(awk -F'\t' -v v="$POISON_VALUE" '$2 == v { print $3 }' "$T/partial")
[[ ${#reqs[@]} == 3 ]] ||
    fail "partial: the poison was in ${#reqs[@]} requests, expected 3 (1 + maximum_retry_attempts 2)"
for r in "${reqs[@]:1}"; do
    got=$(awk -F'\t' -v r="$r" '$3 == r { print $1 }' "$T/partial" | sort -n | tr '\n' ' ')
    want=$(seq "$P" "$b_hi" | tr '\n' ' ')
    [[ $got == "$want" ]] || fail "partial: a retry held offsets ${got:0:80}..., expected $P..$b_hi"
done
ok "partial: the poison's batch was retried twice from the poison to its end ($P..$b_hi)"
# Before the poison: done after the first answer, never delivered again.
again=$(awk -F'\t' -v lo="$b_lo" -v p="$P" '$1 >= lo && $1 < p { n[$1]++ }
    END { for (o in n) if (n[o] != 1) print o }' "$T/partial" | head -3 | tr '\n' ' ')
[[ -z $again ]] || fail "partial: offsets before the poison delivered more than once: $again"
ok "partial: offsets $b_lo..$((P - 1)), before the poison, delivered once each"

mapfile -t files < <(failure_files "$T/failures.partial")
[[ ${#files[@]} == 1 ]] || fail "partial: ${#files[@]} failure records, expected 1"
f=${files[0]}
jq -e --arg tp partial-0 --arg lo "$P" --arg hi "$b_hi" --argjson n $((b_hi - P + 1)) '
    .requestContext.condition == "RetryAttemptsExhausted"
    and (.requestContext.functionArn | endswith(":function:reports-items"))
    and .KafkaBatchInfo.batchSize == $n
    and (.KafkaBatchInfo.recordsInfo | keys) == [$tp]
    and .KafkaBatchInfo.recordsInfo[$tp].firstRecordOffset == $lo
    and .KafkaBatchInfo.recordsInfo[$tp].lastRecordOffset == $hi' "$f" >/dev/null ||
    fail "partial: the failure record does not cover $P..$b_hi: $(cat "$f")"
ok "partial: one failure record, RetryAttemptsExhausted, offsets $P..$b_hi (batchSize $((b_hi - P + 1)))"
missing=$(comm -23 <(seq $((b_hi + 1)) $((N - 1)) | sort) <(cut -f1 "$T/partial" | sort -u) | head -3)
[[ -z $missing ]] || fail "partial: offsets after the poison's batch never delivered: $missing"
ok "partial: the partition moved on: offsets $((b_hi + 1))..$((N - 1)) delivered"

# ---- committed ---------------------------------------------------------------------------------
# A new weir in the same groups reads from the committed offsets: one record produced now to
# each topic is all it delivers (an offset committed short of the end would bring back older
# records before it, the poison first of all).
stop_weir
before_b=$(count_records "$T/rec.bisect")
before_p=$(count_records "$T/rec.partial")
start_weir "$T/weir.yaml"
wait_until 'grep -q "partitions assigned topic=bisect " "$WEIR_LOG" &&
    grep -q "partitions assigned topic=partial " "$WEIR_LOG"' 30 ||
    fail "the restarted weir was assigned no partitions"
printf 'k\tafter-restart\n' | kafka_produce bisect
printf 'k\tafter-restart\n' | kafka_produce partial
wait_until '[[ $(count_body after-restart "$T/rec.bisect") -ge 1 &&
    $(count_body after-restart "$T/rec.partial") -ge 1 ]]' 30 ||
    fail "the restarted weir did not deliver the record produced after it started"
sleep 0.5
[[ $(count_records "$T/rec.bisect") == $((before_b + 1)) && $(count_records "$T/rec.partial") == $((before_p + 1)) ]] ||
    fail "after a restart weir delivered again: bisect $(($(count_records "$T/rec.bisect") - before_b))," \
        "partial $(($(count_records "$T/rec.partial") - before_p)) records (1 new each expected)"
[[ $(failure_files "$T/failures.bisect" | wc -l) == 1 && $(failure_files "$T/failures.partial" | wc -l) == 1 ]] ||
    fail "after a restart more failure records were written"
ok "after a restart only the new record is delivered: both partitions were committed at their end ($N)"
stop_weir
pass
