#!/usr/bin/env bash
# weir killed with SIGKILL four times while a writer keeps committing transactions (1 to 200 row
# changes each: upserts and deletes on 300 keys) and batches are with the function, restarted
# each time on the same slot. The function takes 250 ms a request, so while a lane's batch is
# there what weir reads for that lane waits, read but not sent. After each kill, and at samples
# every 0.3 s while it runs, the slot never stands ahead of the function: every transaction whose
# commit LSN is below the slot's confirmed_flush_lsn has all its records in the record file (a
# weir that confirmed what it had read rather than what was done fails here). At the end every
# row change (the set Postgres itself decodes, through a second slot of the test's own on the same
# publication) was received at least once, each item's changes were first delivered in commit
# order, and the slot is confirmed up to the last commit.
source "$(dirname "$0")/lib.sh"

KILLS=4
MAPPING=pgkill
SLOT=weir_$MAPPING
PUB=weir_$MAPPING
SHADOW=pgkill_shadow

start_postgres
start_fn_http --record "$T/rec" --delay-ms 250

pg_sql >/dev/null <<SQL
create table pgkill_items (id int primary key, ord bigint not null, note text);
alter table pgkill_items replica identity full;
create sequence pgkill_ord;
-- What the writer did, outside the publication: one row per transaction.
create table pgkill_log (txn int primary key, changes int not null);
create table pgkill_stop (x int);
SQL

cat >"$T/weir.yaml" <<YAML
functions:
  - name: sink
    url: $FN_URL
    timeout: 10
mappings:
  - name: $MAPPING
    source: $PG_URI
    function: sink
    tables: [pgkill_items]
    batch_size: 100
    parallelization_factor: 4
YAML

start_weir "$T/weir.yaml"
pg_wait_slot_active "$SLOT" 30 || fail "weir never streamed slot $SLOT"
# The test's own slot on weir's publication, made before the first write: what it decodes is
# exactly what weir's slot holds from here on.
pg_sql -v s="$SHADOW" "select pg_create_logical_replication_slot(:'s', 'pgoutput')" >/dev/null

# The writer: one session committing transactions until pgkill_stop has a row. Sizes are mixed
# (60% 1-5 changes, 30% 6-50, 10% 51-200); each change is an upsert (a new ordinal) or a delete
# of one of 300 keys. Fixed seed: the same run every time.
cat >"$T/writer.sql" <<'SQL'
select setseed(0.31);
do $w$
declare
    t int := 0; n int; j int; k int; r float8; c int; total int;
begin
    loop
        exit when exists (select 1 from pgkill_stop);
        t := t + 1;
        r := random();
        n := case when r < 0.6 then 1 + floor(random() * 5)
                  when r < 0.9 then 6 + floor(random() * 45)
                  else 51 + floor(random() * 150) end;
        total := 0;
        for j in 1..n loop
            k := 1 + floor(random() * 300)::int;
            if random() < 0.15 then
                delete from pgkill_items where id = k;
            else
                insert into pgkill_items values (k, nextval('pgkill_ord'), 'w')
                    on conflict (id) do update set ord = excluded.ord, note = 'u';
            end if;
            get diagnostics c = row_count;
            total := total + c;
        end loop;
        insert into pgkill_log values (t, total);
        commit;
        perform pg_sleep(0.03);
    end loop;
end $w$;
SQL
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
    -f "$T/writer.sql" >"$T/writer.out" 2>&1 &
WRITER=$!
_register "$WRITER" psql
_LOGS+=("$T/writer.out")
writer_alive() { alive "$WRITER" || fail "the writer ended early: $(tail -n 3 "$T/writer.out")"; }

# sample [TAG]: the slot's confirmed position, then the record file's size at that moment (read
# in that order, so a correct weir always passes the check below), one "lsn<TAB>bytes<TAB>tag" a
# line (tag "kill" right after a kill, "run" otherwise).
sample() {
    local c
    c=$(pg_slot_confirmed "$SLOT") || fail "slot $SLOT is gone"
    printf '%s\t%s\t%s\n' "$(pg_lsn_num "$c")" "$(stat -c %s "$T/rec")" "${1:-run}" >>"$T/samples"
}
# Samples at most every 0.3 s, from inside a wait_until condition.
last_sample=0
sample_now() {
    if lt 0.3 "$(since "$last_sample")"; then
        sample
        last_sample=$(now)
    fi
}

# ids [BYTES]: the SequenceNumbers in the record file (its first BYTES only), unique, sorted.
ids() {
    if [[ -n ${1:-} ]]; then head -c "$1" "$T/rec"; else cat "$T/rec"; fi |
        awk -F'\t' 'NF >= 8 { print $1 }' | sort -u
}

# confirmed_num: the slot's confirmed position as a byte number.
confirmed_num() { pg_lsn_num "$(pg_slot_confirmed "$SLOT")"; }

# Each kill comes once 1000 more records have arrived since the last start and this weir has
# moved the slot (so that the check below has confirmed transactions to look at).
hits=0
prev=$(confirmed_num)
for ((k = 1; k <= KILLS; k++)); do
    base=$(count_records "$T/rec")
    wait_until 'sample_now; writer_alive; [[ $(count_records "$T/rec") -ge $((base + 1000)) ]] &&
        (($(confirmed_num) > prev))' 60 ||
        fail "before kill $k: $(($(count_records "$T/rec") - base)) records since the last" \
            "start, the slot at $(pg_slot_confirmed "$SLOT") (byte $prev at the last kill)"
    kill9_weir
    sample kill
    read -r c_num size _ < <(tail -n 1 "$T/samples")
    # Delivered but not confirmed: what the kill caught in flight, to come again.
    ahead=$(head -c "$size" "$T/rec" |
        awk -F'\t' -v c="$(printf '%020d' "$c_num")" 'NF >= 8 && substr($1, 1, 20) >= c' | wc -l)
    [[ $ahead -gt 0 ]] && hits=$((hits + 1))
    prev=$c_num
    note "kill $k after $(count_records "$T/rec") deliveries; slot confirmed at byte $c_num," \
        "$ahead delivered records at or past it"
    start_weir "$T/weir.yaml"
done
[[ $hits -gt 0 ]] || fail "no kill caught a delivered record the slot had not confirmed: nothing tested"
ok "$KILLS kills, $hits of them with delivered records not yet confirmed"

# More after the last restart, then the writer stops.
base=$(count_records "$T/rec")
wait_until 'sample_now; writer_alive; [[ $(count_records "$T/rec") -ge $((base + 1000)) ]]' 60 ||
    fail "only $(($(count_records "$T/rec") - base)) records after the last restart"
pg_sql "insert into pgkill_stop values (1)"
wait "$WRITER" || fail "the writer failed: $(tail -n 3 "$T/writer.out")"
read -r txns changes < <(pg_sql "select count(*), sum(changes) from pgkill_log")

# What Postgres decodes for the publication, as weir numbers it: the commit record's LSN (the
# Begin message's final_lsn) in 20 digits, then the change's place in its transaction in 10.
pg_decoded_seqs "$SHADOW" "$PUB" | sort >"$T/expected"
last_end=$(pg_decoded_last_end "$SHADOW" "$PUB")
n=$(wc -l <"$T/expected")
[[ $n == "$changes" ]] ||
    fail "the shadow slot decoded $n changes; the writer made $changes in $txns transactions"
[[ $(sort -u "$T/expected" | wc -l) == "$n" ]] || fail "the decoded sequence numbers are not unique"
note "the writer committed $txns transactions, $changes row changes"

# The slot never stood ahead of the function.
checked=0
at_kills=
while IFS=$'\t' read -r c_num size tag; do
    awk -v c="$(printf '%020d' "$c_num")" 'substr($0, 1, 20) < c' "$T/expected" >"$T/below"
    missing=$(comm -23 "$T/below" <(ids "$size") | head -3 | paste -sd' ')
    [[ -z $missing ]] || fail "the slot was confirmed at byte $c_num ($tag sample) while records" \
        "of transactions committed before it had not reached the function: $missing"
    checked=$((checked + 1))
    if [[ $tag == kill ]]; then
        below=$(wc -l <"$T/below")
        [[ $below -gt 0 ]] || fail "a kill came with nothing confirmed: nothing was checked"
        at_kills+=" $below"
    fi
done <"$T/samples"
ok "at $checked samples every transaction committed below the slot's confirmed position had" \
    "all its records at the function; right after the kills, changes below it:$at_kills"

got() { comm -12 "$T/expected" <(ids) | wc -l; }
wait_until '[[ $(got) -ge $n ]]' 60 || fail "$(got) of the $n row changes received"
sleep 1 # a late redelivery would show by now
extra=$(comm -13 "$T/expected" <(ids) | head -3 | paste -sd' ')
[[ -z $extra ]] || fail "records that are no change of the writer's: $extra"
total=$(count_records "$T/rec")
ok "all $n row changes of $txns transactions received after $KILLS kills:" \
    "$total deliveries, $((total - n)) redelivered"

errs=$(ddb_order_errors "$T/rec")
[[ $(tail -n 1 <<<"$errs") == errors=0 ]] ||
    fail "item order broken: $(head -n 3 <<<"$errs" | paste -sd' ')"
ok "every item's changes first delivered in commit order"

wait_until '(($(pg_lsn_num "$(pg_slot_confirmed "$SLOT")") >= last_end))' 30 ||
    fail "the slot is confirmed at $(pg_slot_confirmed "$SLOT"), short of the last commit's end" \
        "(byte $last_end)"
ok "the slot is confirmed past the last commit ($(pg_slot_confirmed "$SLOT"))"

stop_weir
pass
