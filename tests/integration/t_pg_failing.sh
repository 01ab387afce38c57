#!/usr/bin/env bash
# A failing function on a Postgres stream (reference 1.4-1.6). Two mappings in one weir, each
# with its table, slot, function and directory destination; maximum_retry_attempts 2.
#
# pgfail: parallelization_factor 4 over 40 items a writer keeps updating; one update sets item
# 7's note to POISON and the function (fn_http --mode error --fail-match POISON, 300 ms a
# request) fails every request that holds it. The poison's batch is invoked exactly 3 times; its
# lane is blocked meanwhile (nothing later of the items in that batch goes out before the last
# attempt), while other lanes deliver records committed after it; then one failure record
# (RetryAttemptsExhausted, DDBStreamBatchInfo of the last attempt's records) lands in the
# destination, the lane goes on (item 7's later changes arrive), everything else arrives, and the
# slot is confirmed past the given-up transaction and up to the last commit. The poison is a value,
# not the item: item 7's later changes must succeed, which is how the lane is seen to go on (and
# the view is NEW_IMAGE, so that the next change's OldImage does not carry it). The condition is
# AWS's for streams, RetryAttemptsExhausted (RetriesExhausted is the asynchronous invocation's).
#
# pgpart: ReportBatchItemFailures, one lane. A transaction of 30 inserts, the 12th a POISON row;
# the function (fn_http --mode partial --fail-match POISON) names it by its SequenceNumber: the
# records before it are done after the first answer and never sent again, from it to the batch's
# end the batch is retried twice, then given up in one failure record covering exactly that run;
# the next transaction arrives and the slot moves past both.
source "$(dirname "$0")/lib.sh"

start_postgres
start_fn_http --record "$T/rec.fail" --mode error --fail-match POISON --delay-ms 300
FN_FAIL=$FN_URL
start_fn_http --record "$T/rec.part" --mode partial --fail-match POISON
FN_PART=$FN_URL

pg_sql >/dev/null <<SQL
create table pgfail_items (id int primary key, ord bigint not null, note text);
insert into pgfail_items select g, 0, 'w' from generate_series(1, 40) g;
create sequence pgfail_ord;
create table pgpart_items (id int primary key, note text);
SQL

cat >"$T/weir.yaml" <<YAML
functions:
  - name: fails-poison
    url: $FN_FAIL
    timeout: 10
  - name: reports-items
    url: $FN_PART
    timeout: 10
mappings:
  - name: pgfail
    source: $PG_URI
    function: fails-poison
    tables: [pgfail_items]
    stream_view_type: NEW_IMAGE
    batch_size: 100
    parallelization_factor: 4
    maximum_retry_attempts: 2
    destination_config: {on_failure: {destination: "file://$T/failures.fail"}}
  - name: pgpart
    source: $PG_URI
    function: reports-items
    tables: [pgpart_items]
    stream_view_type: NEW_IMAGE
    batch_size: 100
    function_response_types: [ReportBatchItemFailures]
    maximum_retry_attempts: 2
    destination_config: {on_failure: {destination: "file://$T/failures.part"}}
YAML

start_weir "$T/weir.yaml"
pg_wait_slot_active weir_pgfail 30 || fail "weir never streamed slot weir_pgfail"
pg_wait_slot_active weir_pgpart 30 || fail "weir never streamed slot weir_pgpart"
# The test's own slot on pgfail's publication: what Postgres decodes for it, to count against.
pg_sql "select pg_create_logical_replication_slot('pgfail_shadow', 'pgoutput')" >/dev/null

# lines FILE: the record lines as "seq<TAB>body<TAB>request<TAB>records<TAB>key<TAB>ms". Sequence
# numbers are 30 digits: awk compares them as strings ($1 ""), never as (inexact) numbers.
lines() { records "$1" | awk -F'\t' '{ print $1 "\t" $3 "\t" $4 "." $5 "\t" $6 "\t" $7 "\t" $9 }'; }
# failure_files DIR: the failure records written there.
failure_files() { find "$1" -maxdepth 1 -type f -name '*.json' 2>/dev/null | sort; }
confirmed_num() { pg_lsn_num "$(pg_slot_confirmed "$1")"; }

# ---- the writes ----------------------------------------------------------------------------------
# pgfail: 26 transactions 200 ms apart, each updating two items (and item 7 every 5th); the 6th
# only sets item 7's note to POISON. The 4 s of writes after it give the other lanes something to
# deliver while the poison is retried.
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
    >"$T/writer.out" 2>&1 <<'SQL' &
do $w$
declare i int;
begin
    for i in 1..26 loop
        if i = 6 then
            update pgfail_items set ord = nextval('pgfail_ord'), note = 'POISON' where id = 7;
        else
            update pgfail_items set ord = nextval('pgfail_ord'), note = 'w'
                where id in ((i * 7) % 40 + 1, (i * 13) % 40 + 1);
            if i % 5 = 0 then
                update pgfail_items set ord = nextval('pgfail_ord'), note = 'w' where id = 7;
            end if;
        end if;
        commit;
        perform pg_sleep(0.2);
    end loop;
end $w$;
SQL
WRITER=$!
_register "$WRITER" psql
_LOGS+=("$T/writer.out")

# pgpart: 30 rows in one transaction, the 12th the poison; then, once it is given up, 5 more.
pg_sql "insert into pgpart_items select g, case when g = 12 then 'POISON' else 'w' end
        from generate_series(1, 30) g"

# ---- pgfail ----------------------------------------------------------------------------------
wait "$WRITER" || fail "the writer failed: $(tail -n 3 "$T/writer.out")"
pg_decoded_seqs pgfail_shadow weir_pgfail | sort -u >"$T/expected"
last_end=$(pg_decoded_last_end pgfail_shadow weir_pgfail)
n=$(wc -l <"$T/expected")
[[ $n -ge 50 ]] || fail "the shadow slot decoded only $n changes"

got() { comm -12 "$T/expected" <(lines "$T/rec.fail" | cut -f1 | sort -u) | wc -l; }
wait_until '[[ $(got) -ge $n && $(failure_files "$T/failures.fail" | wc -l) -ge 1 ]]' 60 ||
    fail "pgfail: $(got) of $n changes received, $(failure_files "$T/failures.fail" | wc -l) failure records"
sleep 1.5 # a late retry or a second failure record would show by now
lines "$T/rec.fail" >"$T/fail"

mapfile -t poison < <(awk -F'\t' 'index($2, "POISON") { print $1 }' "$T/fail" | sort -u)
[[ ${#poison[@]} == 1 ]] || fail "pgfail: ${#poison[@]} distinct poison records: ${poison[*]}"
P=${poison[0]}
# The requests that held the poison, in the order they came.
mapfile -t reqs < <(awk -F'\t' -v p="$P" '$1 "" == p { print $3 }' "$T/fail")
[[ ${#reqs[@]} == 3 ]] ||
    fail "pgfail: the poison was in ${#reqs[@]} requests, expected 3 (1 + maximum_retry_attempts 2)"
req_time() { awk -F'\t' -v r="$1" '$3 == r { print $6; exit }' "$T/fail"; }
t_first=$(req_time "${reqs[0]}")
t_last=$(req_time "${reqs[2]}")
# Its batch: the records of its first request.
awk -F'\t' -v r="${reqs[0]}" '$3 == r { print $1 }' "$T/fail" | sort >"$T/batch"
# The poison's lane: a batch is one lane's, so every item that came in a request with item 7.
awk -F'\t' 'NR == FNR { if ($5 == "{\"id\":{\"N\":\"7\"}}") with7[$3] = 1; next }
    $3 in with7 { print $5 }' "$T/fail" "$T/fail" | sort -u >"$T/lane_keys"
batch_end=$(tail -n 1 "$T/batch")
for r in "${reqs[@]:1}"; do
    awk -F'\t' -v r="$r" '$3 == r { print $1 }' "$T/fail" | sort | cmp -s - "$T/batch" ||
        fail "pgfail: retry $r did not hold the poison's batch: $(for q in "${reqs[@]}"; do
            printf 'request %s: %s; ' "$q" "$(awk -F'\t' -v r="$q" '$3 == r { print $1 }' \
                "$T/fail" | paste -sd' ')"; done)"
done
ok "pgfail: the poison's batch ($(wc -l <"$T/batch") records) invoked 3 times over" \
    "$((t_last - t_first)) ms; its lane holds items $(tr -dc '0-9\n' <"$T/lane_keys" | sort -n |
        paste -sd' ')"

mapfile -t files < <(failure_files "$T/failures.fail")
[[ ${#files[@]} == 1 ]] || fail "pgfail: ${#files[@]} failure records, expected 1"
f=${files[0]}
# When weir gave the batch up, by the clock fn_http reads too (epoch ms).
t_gone=$(date -d "$(jq -r .timestamp "$f")" +%s%3N)

# first_times: every record's first delivery, "seq<TAB>key<TAB>ms".
awk -F'\t' '!seen[$1]++ { print $1 "\t" $5 "\t" $6 }' "$T/fail" >"$T/first"
# The lane was blocked: no later change of an item of the poison's lane went out before the
# batch was given up.
early=$(awk -F'\t' -v e="$batch_end" -v t="$t_gone" 'NR == FNR { lane[$1] = 1; next }
    ($2 in lane) && $1 "" > e && $3 < t { print $1 }' "$T/lane_keys" "$T/first" | head -3 | paste -sd' ')
[[ -z $early ]] || fail "pgfail: later changes of the poison's lane went out before it was given up: $early"
ok "pgfail: the poison's lane held its later changes until the batch was given up" \
    "($((t_gone - t_last)) ms after the last attempt came)"
# The other lanes went on: records committed after the poison's batch, of other items, first
# delivered while the poison was still being retried.
during=$(awk -F'\t' -v e="$batch_end" -v t0="$t_first" -v t1="$t_last" 'NR == FNR { lane[$1] = 1; next }
    !($2 in lane) && $1 "" > e && $3 > t0 && $3 < t1' "$T/lane_keys" "$T/first" | wc -l)
[[ $during -gt 0 ]] ||
    fail "pgfail: no record of another lane committed after the poison's batch arrived while it was retried"
ok "pgfail: meanwhile other lanes delivered $during records committed after the poison's batch"

jq -e --arg lo "$(head -n 1 "$T/batch")" --arg hi "$batch_end" --argjson n "$(wc -l <"$T/batch")" '
    .version == "1.0" and .requestContext.condition == "RetryAttemptsExhausted"
    and .requestContext.approximateInvokeCount == 3
    and (.requestContext.functionArn | endswith(":function:fails-poison"))
    and .responseContext.functionError == "Unhandled"
    and .DDBStreamBatchInfo.shardId == "shardId-000000000000"
    and .DDBStreamBatchInfo.startSequenceNumber == $lo
    and .DDBStreamBatchInfo.endSequenceNumber == $hi
    and .DDBStreamBatchInfo.batchSize == $n
    and .DDBStreamBatchInfo.streamArn == "arn:aws:dynamodb:us-east-1:000000000000:table/pgfail_items/stream/weir_pgfail"
    and (.DDBStreamBatchInfo.approximateArrivalOfFirstRecord | test("^20[0-9-]+T[0-9:.]+Z$"))
    and (.DDBStreamBatchInfo.approximateArrivalOfLastRecord | test("^20[0-9-]+T[0-9:.]+Z$"))' \
    "$f" >/dev/null || fail "pgfail: the failure record is not RetryAttemptsExhausted for the" \
    "poison's batch ($(head -n 1 "$T/batch")..$batch_end): $(cat "$f")"
ok "pgfail: one failure record, RetryAttemptsExhausted after 3 invocations, DDBStreamBatchInfo" \
    "of the batch ($(head -n 1 "$T/batch")..$batch_end)"

after7=$(awk -F'\t' -v p="$P" '$2 == "{\"id\":{\"N\":\"7\"}}" && $1 "" > p' "$T/first" | wc -l)
[[ $after7 -gt 0 ]] || fail "pgfail: no change of item 7 after the poison arrived"
missing=$(comm -23 "$T/expected" <(cut -f1 "$T/first" | sort) | head -3 | paste -sd' ')
[[ -z $missing ]] || fail "pgfail: changes never received: $missing"
[[ $(awk -F'\t' -v p="$P" '$1 "" == p' "$T/fail" | wc -l) == 3 ]] ||
    fail "pgfail: the poison was delivered again after it was given up"
errs=$(ddb_order_errors "$T/rec.fail")
[[ $(tail -n 1 <<<"$errs") == errors=0 ]] || fail "pgfail: item order broken: $(head -n 3 <<<"$errs")"
ok "pgfail: the lane went on ($after7 later changes of item 7); all $n changes received, in" \
    "item order, the poison never again"

wait_until '(($(confirmed_num weir_pgfail) >= last_end))' 30 ||
    fail "pgfail: the slot is confirmed at $(pg_slot_confirmed weir_pgfail), short of the last" \
        "commit's end (byte $last_end)"
ok "pgfail: the slot is confirmed past the given-up transaction and up to the last commit"

# ---- pgpart ----------------------------------------------------------------------------------
wait_until '[[ $(failure_files "$T/failures.part" | wc -l) -ge 1 ]]' 60 ||
    fail "pgpart: no failure record ($(count_records "$T/rec.part") deliveries)"
pg_sql "insert into pgpart_items select g, 'after' from generate_series(31, 35) g"
after_lsn=$(pg_current_lsn)
wait_until '[[ $(count_prefix INSERT "$T/rec.part") -ge 35 ]] &&
    (($(pg_lsn_diff "$(pg_slot_confirmed weir_pgpart)" "$after_lsn") >= 0))' 30 ||
    fail "pgpart: after the failure, $(count_records "$T/rec.part") deliveries, slot at" \
        "$(pg_slot_confirmed weir_pgpart) (the next transaction ends at $after_lsn)"
sleep 1 # a late retry would show by now
lines "$T/rec.part" >"$T/part"
[[ $(cut -f1 "$T/part" | sort -u | wc -l) == 35 ]] ||
    fail "pgpart: $(cut -f1 "$T/part" | sort -u | wc -l) distinct records, expected 35"
P=$(awk -F'\t' 'index($2, "POISON") { print $1; exit }' "$T/part")
first_req=$(awk -F'\t' -v p="$P" '$1 "" == p { print $3; exit }' "$T/part")
awk -F'\t' -v r="$first_req" '$3 == r { print $1 }' "$T/part" >"$T/part.batch"
b_lo=$(head -n 1 "$T/part.batch")
b_hi=$(tail -n 1 "$T/part.batch")
note "pgpart: the poison ${P: -2} came in a batch of $(wc -l <"$T/part.batch") (${b_lo: -2}..${b_hi: -2})"
[[ $b_lo < $P && $P < $b_hi ]] ||
    fail "pgpart: the poison $P is at an end of its batch ($b_lo..$b_hi): nothing to test"
# The requests that held it: the first, then two retries of exactly P..b_hi.
mapfile -t reqs < <(awk -F'\t' -v p="$P" '$1 "" == p { print $3 }' "$T/part")
[[ ${#reqs[@]} == 3 ]] ||
    fail "pgpart: the poison was in ${#reqs[@]} requests, expected 3 (1 + maximum_retry_attempts 2)"
awk -v p="$P" '$1 "" >= p' "$T/part.batch" >"$T/part.retried"
for r in "${reqs[@]:1}"; do
    awk -F'\t' -v r="$r" '$3 == r { print $1 }' "$T/part" | cmp -s - "$T/part.retried" ||
        fail "pgpart: retry $r held $(awk -F'\t' -v r="$r" '$3 == r' "$T/part" | wc -l) records," \
            "not the $(wc -l <"$T/part.retried") from the poison to the batch's end, in order"
done
ok "pgpart: the batch was retried twice from the poison to its end ($(wc -l <"$T/part.retried") records)"
again=$(awk -F'\t' -v p="$P" -v lo="$b_lo" '$1 "" >= lo && $1 "" < p { n[$1]++ }
    END { for (s in n) if (n[s] != 1) print s }' "$T/part" | head -3 | paste -sd' ')
[[ -z $again ]] || fail "pgpart: records before the poison delivered more than once: $again"
ok "pgpart: the $(awk -v p="$P" '$1 "" < p' "$T/part.batch" | wc -l) records before the poison" \
    "were delivered once each"
mapfile -t files < <(failure_files "$T/failures.part")
[[ ${#files[@]} == 1 ]] || fail "pgpart: ${#files[@]} failure records, expected 1"
f=${files[0]}
jq -e --arg lo "$P" --arg hi "$b_hi" --argjson n "$(wc -l <"$T/part.retried")" '
    .requestContext.condition == "RetryAttemptsExhausted"
    and (.requestContext.functionArn | endswith(":function:reports-items"))
    and .DDBStreamBatchInfo.startSequenceNumber == $lo
    and .DDBStreamBatchInfo.endSequenceNumber == $hi
    and .DDBStreamBatchInfo.batchSize == $n
    and .DDBStreamBatchInfo.streamArn == "arn:aws:dynamodb:us-east-1:000000000000:table/pgpart_items/stream/weir_pgpart"' \
    "$f" >/dev/null || fail "pgpart: the failure record does not cover $P..$b_hi: $(cat "$f")"
ok "pgpart: one failure record, RetryAttemptsExhausted, from the poison to the batch's end;" \
    "the next transaction arrived and the slot moved past it"

stop_weir
pass
