#!/usr/bin/env bash
# A big transaction through the Postgres source: one INSERT of 100,000 rows, then 1,000 one-row
# UPDATE transactions (ten per item on 100 items), on four lanes with batches of 1000. The
# function gets every record exactly once (a run without failures), each item's records in commit
# order with the values of its updates in order, one SequenceNumber per record (the 100,000 of the
# big transaction on one commit LSN, numbered 1..100,000), and at the end the slot is confirmed up
# to the server's WAL position after the workload; the slot never passes the big transaction
# before its records are done.
source "$(dirname "$0")/lib.sh"

ROWS=100000
UPDATES=1000
ITEMS=100 # the updates' items: each updated UPDATES / ITEMS times
TOTAL=$((ROWS + UPDATES))
SLOT=weir_big

start_postgres
pg_sql "create table big_t (id int primary key, v int not null)"
start_fn_http --record "$T/rec"
cat >"$T/weir.yaml" <<YAML
functions: [{name: fn, url: "$FN_URL"}]
mappings:
  - name: big
    source: $PG_URI
    function: fn
    tables: [big_t]
    stream_view_type: NEW_IMAGE
    batch_size: 1000
    parallelization_factor: 4
YAML
start_weir "$T/weir.yaml"
wait_until 'grep -q "mapping/big: streaming slot=$SLOT" "$WEIR_LOG"' 60 || fail "weir never streamed"

LSN0=$(pg_current_lsn)
t0=$(now)
pg_sql "insert into big_t select g, 0 from generate_series(1, $ROWS) g"
# One transaction each (psql autocommits every statement): item (i % ITEMS) + 1 gets v = i.
awk -v n=$UPDATES -v k=$ITEMS 'BEGIN {
    for (i = 1; i <= n; i++) printf "update big_t set v = %d where id = %d;\n", i, i % k + 1 }' |
    pg_sql
LSN_END=$(pg_current_lsn)
note "workload written in $(since "$t0")s: WAL $LSN0 to $LSN_END"

# While records arrive, the slot's confirmed position is sampled, then the count received: a
# position past the big transaction's commit seen while fewer than ROWS records had arrived was
# confirmed before its records were done.
sample() {
    local c
    c=$(pg_slot_confirmed "$SLOT") || return 1
    printf '%s %s\n' "$(pg_lsn_num "$c")" "$(count_records "$T/rec")" >>"$T/samples"
    [[ $(tail -n 1 "$T/samples" | cut -d' ' -f2) -ge $TOTAL ]]
}
wait_until sample 240 || fail "$(count_records "$T/rec") of $TOTAL records received"
secs=$(since "$t0")
pg_wait_confirmed "$SLOT" "$LSN_END" 60 ||
    fail "slot $SLOT confirmed at $(pg_slot_confirmed "$SLOT"), not at $LSN_END"
ok "$TOTAL records at the function ${secs}s after the workload began; slot confirmed up to" \
    "$LSN_END after $(since "$t0")s"
sleep 1.5 # a record delivered twice would show by now

# Record lines: SequenceNumber, 0, "<eventName> <Keys> <NewImage> -", pid, request, records, Keys.
n=$(count_records "$T/rec")
distinct=$(records "$T/rec" | cut -f1 | sort -u | wc -l)
[[ $n == "$TOTAL" && $distinct == "$TOTAL" ]] ||
    fail "$n deliveries, $distinct distinct SequenceNumbers, for $TOTAL records;" \
        "twice: $(records "$T/rec" | cut -f1 | sort | uniq -d | head -3 | paste -sd' ')"
inserts=$(records "$T/rec" | awk -F'\t' '$3 ~ /^INSERT / { print $7 }' | sort -u | wc -l)
modifies=$(records "$T/rec" | awk -F'\t' '$3 ~ /^MODIFY / { n++ } END { print n + 0 }')
[[ $inserts == "$ROWS" && $modifies == "$UPDATES" ]] ||
    fail "$inserts distinct INSERT keys (want $ROWS), $modifies MODIFY records (want $UPDATES)"
[[ $(max_request_size "$T/rec") -le 1000 ]] || fail "a batch of $(max_request_size "$T/rec") records"
ok "every record exactly once: $TOTAL distinct SequenceNumbers, $ROWS INSERT keys, $UPDATES MODIFY," \
    "$(count_requests "$T/rec") batches of at most 1000"

errs=$(ddb_order_errors "$T/rec")
[[ $(tail -n 1 <<<"$errs") == errors=0 ]] || fail "an item's records out of order: $(head -3 <<<"$errs")"
# Each item's INSERT (v 0) first, then its updates' values increasing, the last the table's.
records "$T/rec" | awk -F'\t' '{ split($3, w, " "); print $7 "\t" w[1] "\t" w[3] }' |
    jq -R -r 'split("\t") | "\(.[0] | fromjson | .id.N)\t\(.[1])\t\(.[2] | fromjson | .v.N)"' \
        >"$T/values"
bad=$(awk -F'\t' '
    $2 == "INSERT" { if (($1 in last) || $3 != 0) { print "INSERT of " $1 " with v " $3 " after v " last[$1]; exit } }
    $2 == "MODIFY" { if (!($1 in last) || $3 <= last[$1]) { print "v " $3 " of " $1 " after v " last[$1]; exit } }
    { last[$1] = $3 }' "$T/values")
[[ -z $bad ]] || fail "values out of order: $bad"
got=$(awk -F'\t' '$2 == "MODIFY" { last[$1] = $3 } END { for (k in last) print k "\t" last[k] }' \
    "$T/values" | sort -n)
want=$(pg_sql "select id, v from big_t where v > 0 order by id")
[[ $got == "$want" && $(wc -l <<<"$want") == "$ITEMS" ]] ||
    fail "the last values received are not the table's: $(diff <(echo "$want") <(echo "$got") | head -5)"
ok "each item's records in commit order: its INSERT, then its $((UPDATES / ITEMS)) updates' values" \
    "increasing, the last the table's"

big_lsn=$(records "$T/rec" | awk -F'\t' '$3 ~ /^INSERT / && !n++ { print substr($1, 1, 20) + 0 }')
early=$(awk -v big="$big_lsn" -v rows=$ROWS '$2 < rows && $1 > big' "$T/samples" | head -1)
[[ -z $early ]] || fail "the slot was confirmed at $early (position, records received) past the" \
    "big transaction's commit at $big_lsn before its $ROWS records had reached the function"
ok "the slot never passed the big transaction's commit before its records were done" \
    "($(awk -v rows=$ROWS '$2 < rows' "$T/samples" | wc -l) samples while they arrived)"

# SequenceNumbers: the big transaction's on one commit LSN, places 1..ROWS; each update its own.
bad=$(records "$T/rec" | awk -F'\t' -v rows=$ROWS '
    $3 ~ /^INSERT / { lsn[substr($1, 1, 20)]++; pos[substr($1, 21) + 0]++ }
    $3 ~ /^MODIFY / { if (substr($1, 21) + 0 != 1) { print "update " $1 " is not first in its transaction"; exit }
        ulsn[substr($1, 1, 20)]++ }
    END { if (length(lsn) != 1) print length(lsn) " commit LSNs for the big transaction"
        for (p = 1; p <= rows; p++) if (pos[p] != 1) { print "place " p " seen " pos[p] + 0 " times"; break }
        for (l in ulsn) if (l in lsn || ulsn[l] != 1) { print "update LSN " l " shared"; break }
        if (length(ulsn) != '"$UPDATES"') print length(ulsn) " update LSNs" }')
[[ -z $bad ]] || fail "SequenceNumbers: $bad"
ok "SequenceNumbers: one commit LSN and places 1..$ROWS for the big transaction, one LSN per update"

stop_weir
grep -qE "mapping/big: stopped records_in=$TOTAL done=$TOTAL " "$WEIR_LOG" ||
    fail "weir's counts: $(grep 'mapping/big: stopped' "$WEIR_LOG")"
! grep -q '^error' "$WEIR_LOG" || fail "weir logged an error: $(grep -m1 '^error' "$WEIR_LOG")"
ok "weir counted $TOTAL records in and done, and logged no error"
pass
