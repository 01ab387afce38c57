#!/usr/bin/env bash
# A Kafka topic read as a Kinesis stream (event_format: Kinesis): every event is shaped as
# reference 4.1, each record naming its partition as the shard, its offset as the 20-digit
# sequence number, its key and its value as produced; a partial batch response naming a
# sequenceNumber retries from that record, and the failure record after the budget is a
# KinesisBatchInfo of that record to the batch's end. Then where a mapping starts (reference
# 1.3): LATEST delivers only what is produced once weir reads, not what was there before; with
# AT_TIMESTAMP a consumer group's committed offsets win over the timestamp.
source "$(dirname "$0")/lib.sh"

REGION=eu-west-1
N=400
start_kafka kin:2 kpart:1 latest:1 attime:1
start_fn_http --record "$T/rec" --events "$T/events"
FN_OK=$FN_URL
start_fn_http --record "$T/rec.partial" --mode partial --fail-match RETRY
FN_PARTIAL=$FN_URL

# Keyed records; each value names its key, so an event can be checked against itself too.
t_produced=$(date +%s)
awk -v n=$N 'BEGIN { for (i = 1; i <= n; i++) printf "key-%02d\t{\"n\":%d,\"key\":\"key-%02d\"}\n", i % 13, i, i % 13 }' \
    >"$T/input"
kafka_produce kin <"$T/input"
awk 'BEGIN { for (i = 1; i <= 100; i++) printf "p\tpart-%03d%s\n", i, i == 40 ? "-RETRY" : "" }' |
    kafka_produce kpart

# LATEST: a run produced before weir starts.
awk 'BEGIN { for (i = 1; i <= 50; i++) printf "l\tbefore-%03d\n", i }' | kafka_produce latest

# AT_TIMESTAMP: run A, read to its end by the group (kcat commits as it leaves), then run B from
# a later second on; the mapping's timestamp falls between the two.
awk 'BEGIN { for (i = 1; i <= 20; i++) printf "a\trun-a-%03d\n", i }' | kafka_produce attime
timeout 60 kcat -b "$KAFKA_BOOTSTRAP" -C -e -q -G g-attime attime -X auto.offset.reset=earliest \
    -X session.timeout.ms=6000 -f '%s\n' >"$T/attime.read" 2>"$T/attime.err" ||
    fail "kcat could not read topic attime as group g-attime: $(tail -3 "$T/attime.err")"
[[ $(wc -l <"$T/attime.read") == 20 ]] || fail "the group read $(wc -l <"$T/attime.read") records of run A, not 20"
TS=$(($(date +%s) + 1))
wait_until '[[ $(date +%s) -gt $TS ]]' 5
awk 'BEGIN { for (i = 1; i <= 20; i++) printf "b\trun-b-%03d\n", i }' | kafka_produce attime

cat >"$T/weir.yaml" <<YAML
region: $REGION
state_dir: $T/state
functions:
  - name: reader
    url: $FN_OK
  - name: reports-items
    url: $FN_PARTIAL
mappings:
  - name: kin
    source: kafka://$KAFKA_BOOTSTRAP/kin
    function: reader
    batch_size: 50
    event_format: Kinesis
    kafka_config: {session.timeout.ms: "6000"}
  - name: kpart
    source: kafka://$KAFKA_BOOTSTRAP/kpart
    function: reports-items
    batch_size: 100
    event_format: Kinesis
    function_response_types: [ReportBatchItemFailures]
    maximum_retry_attempts: 1
    destination_config: {on_failure: {destination: "file://$T/failures"}}
    kafka_config: {session.timeout.ms: "6000"}
  - name: latest
    source: kafka://$KAFKA_BOOTSTRAP/latest
    function: reader
    starting_position: LATEST
    kafka_config: {session.timeout.ms: "6000"}
  - name: attime
    source: kafka://$KAFKA_BOOTSTRAP/attime
    function: reader
    starting_position: AT_TIMESTAMP
    starting_position_timestamp: $TS
    consumer_group_id: g-attime
    kafka_config: {session.timeout.ms: "6000"}
YAML
start_weir "$T/weir.yaml"

# LATEST: once the partition is assigned, probes go in until one comes out (records produced while
# the mapping starts may be missed, as AWS warns); then run 2.
wait_until 'grep -q "partitions assigned topic=latest " "$WEIR_LOG"' 30 || fail "latest: no partition assigned"
probes=0
wait_until 'if [[ $(count_prefix probe- "$T/rec") -ge 1 ]]; then true; else
    probes=$((probes + 1)); printf "l\tprobe-%03d\n" $probes | kafka_produce latest; false; fi' 30 ||
    fail "latest: none of $probes probes produced after the assignment was delivered"
awk 'BEGIN { for (i = 1; i <= 50; i++) printf "l\tafter-%03d\n", i }' | kafka_produce latest

kin_values() { records "$T/rec" | cut -f3 | grep -c '^{"n":' || true; }
wait_until '[[ $(kin_values) -ge $N && $(count_prefix after- "$T/rec") -ge 50 &&
    $(count_prefix run-b- "$T/rec") -ge 20 &&
    $(find "$T/failures" -maxdepth 1 -name "*.json" 2>/dev/null | wc -l) -ge 1 ]]' 60 ||
    fail "not all delivered: kin $(kin_values) of $N, latest $(count_prefix after- "$T/rec") of 50," \
        "attime $(count_prefix run-b- "$T/rec") of 20, $(find "$T/failures" -name "*.json" 2>/dev/null | wc -l) failure records"
sleep 1 # a late delivery would show by now

# ---- Kinesis events, as reference 4.1 -----------------------------------------------------------
ARN=arn:aws:kinesis:$REGION:000000000000:stream/kin
jq -c --arg arn "$ARN" 'select(.Records[0].eventSourceARN == $arn)' "$T/events" >"$T/kin.events"
[[ -s $T/kin.events ]] || fail "no event of stream $ARN"
now_s=$(date +%s)
bad=$(jq -c --arg arn "$ARN" --arg region "$REGION" --argjson lo $((t_produced - 5)) \
    --argjson hi $((now_s + 5)) '
    def ok_record: (keys == ["awsRegion","eventID","eventName","eventSource","eventSourceARN",
            "eventVersion","invokeIdentityArn","kinesis"])
        and (.kinesis | keys) == ["approximateArrivalTimestamp","data","kinesisSchemaVersion",
            "partitionKey","sequenceNumber"]
        and .kinesis.kinesisSchemaVersion == "1.0"
        and (.kinesis.sequenceNumber | type == "string" and test("^[0-9]{20}$"))
        and (.kinesis.data | type == "string")
        and (.kinesis.data | @base64d | fromjson | .key) == .kinesis.partitionKey
        and (.kinesis.approximateArrivalTimestamp | type == "number" and . >= $lo and . <= $hi)
        and .eventSource == "aws:kinesis" and .eventVersion == "1.0"
        and (.eventID | test("^shardId-[0-9]{12}:[0-9]{20}$"))
        and (.kinesis.sequenceNumber as $s | .eventID | endswith(":" + $s))
        and .eventName == "aws:kinesis:record"
        and (.invokeIdentityArn | type == "string" and startswith("arn:aws:iam::"))
        and .awsRegion == $region and .eventSourceARN == $arn;
    select((keys != ["Records"]) or (.Records | length) == 0
        or ([.Records[] | select(ok_record | not)] | length) > 0
        or ([.Records[].eventID | split(":")[0]] | unique | length) != 1)' "$T/kin.events" 2>&1 | head -1)
[[ -z $bad ]] || fail "an event not shaped as reference 4.1: ${bad:0:400}"
ok "$(wc -l <"$T/kin.events") Kinesis events shaped as reference 4.1, one shard each"

# Every record as produced: partition as the shard, offset as the sequence number, key, value.
kafka_read kin | awk -F'\t' '{ printf "shardId-%012d:%020d\t%s\t%s\n", $1, $2, $3, $4 }' | sort >"$T/kin.want"
jq -r '.Records[] | [.eventID, .kinesis.partitionKey, (.kinesis.data | @base64d)] | @tsv' \
    "$T/kin.events" | sort -u >"$T/kin.got"
[[ $(wc -l <"$T/kin.want") == "$N" ]] || fail "the topic holds $(wc -l <"$T/kin.want") records, not $N"
diff "$T/kin.want" "$T/kin.got" >"$T/kin.diff" ||
    fail "records not as produced (- produced, + delivered): $(head -4 "$T/kin.diff" | tr '\n' ' ')"
[[ $(jq '.Records | length' "$T/kin.events" | awk '{ s += $1 } END { print s }') == "$N" ]] ||
    fail "the Kinesis events hold $(jq '.Records | length' "$T/kin.events" | awk '{ s += $1 } END { print s }') records, not $N once each"
ok "all $N records once each: shardId-<partition>, sequenceNumber the 20-digit offset, partitionKey and data as produced"

# ---- a partial batch response names a sequenceNumber --------------------------------------------
# Record lines of the Kinesis mapping: id is the sequence number.
records "$T/rec.partial" | awk -F'\t' '{ print $1 + 0 "\t" $3 "\t" $4 "." $5 }' >"$T/kpart"
P=39 # part-040-RETRY
first_req=$(awk -F'\t' '$2 ~ /RETRY/ { print $3; exit }' "$T/kpart")
[[ -n $first_req ]] || fail "kpart: the RETRY record never reached the function"
[[ $(awk -F'\t' '$2 ~ /RETRY/ { print $1; exit }' "$T/kpart") == "$P" ]] ||
    fail "kpart: the RETRY record's sequence number is not its offset $P"
b_lo=$(awk -F'\t' -v r="$first_req" '$3 == r { print $1 }' "$T/kpart" | sort -n | head -1)
b_hi=$(awk -F'\t' -v r="$first_req" '$3 == r { print $1 }' "$T/kpart" | sort -n | tail -1)
[[ $b_lo -lt $P && $b_hi -gt $P ]] ||
    fail "kpart: the RETRY record (offset $P) is at an end of its batch ($b_lo..$b_hi): nothing to test"
mapfile -t reqs < <(awk -F'\t' '$2 ~ /RETRY/ { print $3 }' "$T/kpart")
[[ ${#reqs[@]} == 2 ]] || fail "kpart: the RETRY record was in ${#reqs[@]} requests, expected 2 (maximum_retry_attempts 1)"
got=$(awk -F'\t' -v r="${reqs[1]}" '$3 == r { print $1 }' "$T/kpart" | paste -sd' ')
[[ $got == "$(seq -s' ' "$P" "$b_hi")" ]] ||
    fail "kpart: the retry held sequence numbers ${got:0:100}..., expected $P..$b_hi"
again=$(awk -F'\t' -v lo="$b_lo" -v p="$P" '$1 >= lo && $1 < p { n[$1]++ } END { for (o in n) if (n[o] != 1) print o }' "$T/kpart")
[[ -z $again ]] || fail "kpart: records before the reported one were delivered again: $again"
ok "kpart: the response named sequenceNumber $(printf '%020d' $P); the retry held it to the batch's end ($P..$b_hi), nothing before it"

mapfile -t files < <(find "$T/failures" -maxdepth 1 -name '*.json' | sort)
[[ ${#files[@]} == 1 ]] || fail "kpart: ${#files[@]} failure records, expected 1"
jq -e --arg start "$(printf '%020d' $P)" --arg last "$(printf '%020d' "$b_hi")" \
    --argjson n $((b_hi - P + 1)) --arg arn "arn:aws:kinesis:$REGION:000000000000:stream/kpart" '
    .requestContext.condition == "RetryAttemptsExhausted"
    and .requestContext.approximateInvokeCount == 2
    and .KinesisBatchInfo.shardId == "shardId-000000000000"
    and .KinesisBatchInfo.startSequenceNumber == $start
    and .KinesisBatchInfo.endSequenceNumber == $last
    and .KinesisBatchInfo.batchSize == $n and .KinesisBatchInfo.streamArn == $arn
    and (.KinesisBatchInfo.approximateArrivalOfFirstRecord | test("^[0-9-]+T[0-9:.]+Z$"))' \
    "${files[0]}" >/dev/null || fail "kpart: the failure record is not as expected: $(cat "${files[0]}")"
ok "kpart: one failure record, KinesisBatchInfo of sequence numbers $P..$b_hi (batchSize $((b_hi - P + 1)))"
missing=$(comm -23 <(seq $((b_hi + 1)) 99 | sort) <(cut -f1 "$T/kpart" | sort -u) | head -3)
[[ -z $missing ]] || fail "kpart: records after the batch never delivered: $missing"

# ---- LATEST -------------------------------------------------------------------------------------
[[ $(count_prefix before- "$T/rec") == 0 ]] ||
    fail "latest: $(count_prefix before- "$T/rec") records produced before weir started were delivered"
for i in $(seq 1 50); do
    [[ $(count_body "$(printf 'after-%03d' "$i")" "$T/rec") -ge 1 ]] || fail "latest: after-$i never delivered"
done
ok "latest: none of the 50 records produced before weir started, all 50 produced after ($(count_prefix probe- "$T/rec") of $probes probes produced once it was assigned were delivered)"

# ---- AT_TIMESTAMP with committed offsets ---------------------------------------------------------
[[ $(count_prefix run-a- "$T/rec") == 0 ]] ||
    fail "attime: $(count_prefix run-a- "$T/rec") records of run A (committed by the group) delivered again"
[[ $(count_prefix run-b- "$T/rec") == 20 ]] || fail "attime: $(count_prefix run-b- "$T/rec") deliveries of run B's 20"
ok "attime: the group's committed offset won over AT_TIMESTAMP: run B only, once each"

stop_weir
pass
