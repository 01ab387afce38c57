#!/usr/bin/env bash
# Two weir processes with the same mapping (same name, so the same publication and slot; only the
# function's endpoint differs, so that the record lines tell who delivered): one streams the slot,
# the other logs that the slot is streamed by another process (naming the WAL sender the slot
# shows) and waits. 2000 changes reach the function exactly once, all through the streaming weir.
# Then, while a writer keeps committing and batches are with the function (100 ms a request), the
# streaming weir is killed with SIGKILL with records delivered past the slot's confirmed position:
# the waiting one takes the slot over (the time from the kill is measured and must stay under
# 10 s, the slot's WAL sender having to notice the dead client first), and every change Postgres
# decoded (a slot of the test's own on the same publication) reaches the function, in item order,
# the slot confirmed to the last commit.
source "$(dirname "$0")/lib.sh"

MAPPING=pgtwo
SLOT=weir_$MAPPING
PUB=weir_$MAPPING
N1=2000
TAKEOVER_MAX=10

start_postgres
start_fn_http --record "$T/rec" --delay-ms 100
FN_A=$FN_URL
FNPID_A=$FN_PID
start_fn_http --record "$T/rec" --delay-ms 100
FN_B=$FN_URL
FNPID_B=$FN_PID

pg_sql >/dev/null <<SQL
create table pgtwo_items (id int primary key, ord bigint not null, note text);
create sequence pgtwo_ord;
create table pgtwo_log (txn int generated always as identity primary key, changes int);
create table pgtwo_stop (x int);
SQL

# config URL: the same mapping for both weirs; only the function's endpoint differs.
config() {
    cat <<YAML
functions:
  - name: sink
    url: $1
    timeout: 10
mappings:
  - name: $MAPPING
    source: $PG_URI
    function: sink
    tables: [pgtwo_items]
    batch_size: 100
    parallelization_factor: 2
YAML
}
config "$FN_A" >"$T/a.yaml"
config "$FN_B" >"$T/b.yaml"

STREAMING="mapping/$MAPPING: streaming slot=$SLOT "
WAITING="mapping/$MAPPING: slot $SLOT is streamed by another process \(pid [0-9]+\); waiting to take over"

start_weir "$T/a.yaml"
WEIR_A=$WEIR_PID
LOG_A=$WEIR_LOG
pg_wait_slot_active "$SLOT" 30 || fail "weir A never streamed slot $SLOT"
wait_until 'grep -q "$STREAMING" "$LOG_A"' 30 || fail "weir A did not log that it streams"
pg_sql "select pg_create_logical_replication_slot('pgtwo_shadow', 'pgoutput')" >/dev/null
start_weir "$T/b.yaml"
WEIR_B=$WEIR_PID
LOG_B=$WEIR_LOG
wait_until 'grep -qE "$WAITING" "$LOG_B"' 30 || fail "weir B did not log that it waits for the slot"
holder=$(grep -oE "$WAITING" "$LOG_B" | head -n 1 | sed 's/.*(pid \([0-9]*\)).*/\1/')
active_pid=$(pg_sql -v s="$SLOT" "select active_pid from pg_replication_slots where slot_name = :'s'")
[[ $holder == "$active_pid" ]] ||
    fail "weir B names pid $holder as the slot's holder; the slot's WAL sender is $active_pid"
ok "weir A streams slot $SLOT (WAL sender $active_pid); weir B logged that it waits to take over"

# by PID: the record lines delivered through that fn_http.
by() { records "$T/rec" | awk -F'\t' -v p="$1" '$4 == p' | wc -l; }

# ---- both running: one streams, every change once ----------------------------------------------
pg_sql "do \$\$ begin
    for t in 1..100 loop
        insert into pgtwo_items select g, nextval('pgtwo_ord'), 'a'
            from generate_series(t * 20 - 19, t * 20) g;
        insert into pgtwo_log (changes) values (20);
        commit;
    end loop; end \$\$"
wait_until '[[ $(count_records "$T/rec") -ge $N1 ]]' 60 ||
    fail "$(count_records "$T/rec") of $N1 changes received"
sleep 1.5 # a second delivery would show by now
[[ $(records "$T/rec" | cut -f1 | sort -u | wc -l) == "$N1" && $(count_records "$T/rec") == "$N1" ]] ||
    fail "$(count_records "$T/rec") deliveries of $(records "$T/rec" | cut -f1 | sort -u | wc -l)" \
        "distinct records for $N1 changes"
[[ $(by "$FNPID_A") == "$N1" && $(by "$FNPID_B") == 0 ]] ||
    fail "weir A delivered $(by "$FNPID_A"), weir B $(by "$FNPID_B"): only the one streaming may"
grep -q "$STREAMING" "$LOG_B" && fail "weir B streamed the slot while weir A held it"
# Streaming WAL senders (weir B's setup connections, once a second, are WAL senders too, in
# state startup).
senders() {
    pg_sql "select count(*) from pg_stat_replication
            where application_name = 'weir' and state in ('catchup', 'streaming')"
}
[[ $(senders) == 1 ]] || fail "$(senders) WAL senders stream to weir"
ok "each of the $N1 changes delivered exactly once, all by weir A; weir B still waits"

# ---- the streaming weir dies -------------------------------------------------------------------
# The writer: transactions of 1 to 40 upserts and deletes on 200 keys until pgtwo_stop has a row.
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
    >"$T/writer.out" 2>&1 <<'SQL' &
select setseed(0.23);
do $w$
declare n int; j int; k int; c int; total int;
begin
    loop
        exit when exists (select 1 from pgtwo_stop);
        n := 1 + floor(random() * 40);
        total := 0;
        for j in 1..n loop
            k := 1 + floor(random() * 200)::int;
            if random() < 0.15 then
                delete from pgtwo_items where id = k;
            else
                insert into pgtwo_items values (k, nextval('pgtwo_ord'), 'w')
                    on conflict (id) do update set ord = excluded.ord, note = 'u';
            end if;
            get diagnostics c = row_count;
            total := total + c;
        end loop;
        insert into pgtwo_log (changes) values (total);
        commit;
        perform pg_sleep(0.02);
    end loop;
end $w$;
SQL
WRITER=$!
_register "$WRITER" psql
_LOGS+=("$T/writer.out")

wait_until '[[ $(by "$FNPID_A") -ge $((N1 + 1000)) ]]' 60 ||
    fail "weir A delivered only $(($(by "$FNPID_A") - N1)) of the writer's changes before the kill"
t0=$(now)
kill9_weir "$WEIR_A"
# What weir A had delivered past the slot's confirmed position: weir B must deliver it again.
c=$(printf '%020d' "$(pg_lsn_num "$(pg_slot_confirmed "$SLOT")")")
ahead=$(records "$T/rec" | awk -F'\t' -v c="$c" 'substr($1, 1, 20) >= c' | wc -l)
[[ $ahead -gt 0 ]] || fail "weir A was killed with nothing delivered past the slot: nothing tested"
wait_until 'grep -q "$STREAMING" "$LOG_B"' 60 || fail "weir B never took the slot over"
takeover=$(since "$t0")
wait_until '[[ $(by "$FNPID_B") -gt 0 ]]' 60 || fail "weir B streams but delivered nothing"
first_delivery=$(since "$t0")
lt "$takeover" "$TAKEOVER_MAX" ||
    fail "weir B took the slot over ${takeover}s after weir A was killed (at most ${TAKEOVER_MAX}s)"
ok "weir A killed with $ahead delivered records not yet confirmed: weir B streamed the slot" \
    "${takeover}s later and delivered ${first_delivery}s after the kill"
wait_until '[[ $(by "$FNPID_B") -ge 1000 ]]' 60 ||
    fail "weir B delivered only $(by "$FNPID_B") records after taking over"
pg_sql "insert into pgtwo_stop values (1)"
wait "$WRITER" || fail "the writer failed: $(tail -n 3 "$T/writer.out")"
read -r txns changes < <(pg_sql "select count(*), sum(changes) from pgtwo_log")

pg_decoded_seqs pgtwo_shadow "$PUB" | sort -u >"$T/expected"
last_end=$(pg_decoded_last_end pgtwo_shadow "$PUB")
n=$(wc -l <"$T/expected")
[[ $n == "$changes" ]] ||
    fail "the shadow slot decoded $n changes; the writers committed $changes in $txns transactions"

ids() { records "$T/rec" | cut -f1 | sort -u; }
got() { comm -12 "$T/expected" <(ids) | wc -l; }
wait_until '[[ $(got) -ge $n ]]' 60 || fail "$(got) of the $n changes received"
sleep 1 # a late redelivery would show by now
extra=$(comm -13 "$T/expected" <(ids) | head -3 | paste -sd' ')
[[ -z $extra ]] || fail "records that are no change of the writers': $extra"
total=$(count_records "$T/rec")
ok "all $n changes of $txns transactions received: weir A delivered $(by "$FNPID_A"), weir B" \
    "$(by "$FNPID_B"); $((total - n)) delivered twice (in flight or unconfirmed at the kill)"
errs=$(ddb_order_errors "$T/rec")
[[ $(tail -n 1 <<<"$errs") == errors=0 ]] ||
    fail "item order broken: $(head -n 3 <<<"$errs" | paste -sd' ')"
ok "every item's changes first delivered in commit order across the takeover"
wait_until '(($(pg_lsn_num "$(pg_slot_confirmed "$SLOT")") >= last_end))' 30 ||
    fail "the slot is confirmed at $(pg_slot_confirmed "$SLOT"), short of the last commit's end"
ok "weir B confirmed the slot up to the last commit"

stop_weir "$WEIR_B"
pass
