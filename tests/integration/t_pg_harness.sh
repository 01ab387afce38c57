#!/usr/bin/env bash
# The Postgres test cluster itself (lib.sh's start_postgres and pg_* helpers), before any weir
# test relies on it: a new cluster with wal_level=logical on a loopback port, run as a user other
# than root; a publication and pgoutput slots whose changes decode through the SQL functions and
# through pg_recvlogical (streaming, acknowledged); the slot helpers; restarts (fast, and
# immediate like a crash) that keep the data and the slots; pg_sql failing the test on an SQL
# error wherever it runs; the LSN and DynamoDB record-file helpers on known input.
source "$(dirname "$0")/lib.sh"

RECV=$PG_BIN/pg_recvlogical
PUB=weir_pub

# decode SLOT FN: the slot's pending changes through FN (pg_logical_slot_peek_binary_changes or
# pg_logical_slot_get_binary_changes), "<kind><TAB><data in hex>" a line in stream order.
decode() {
    pg_sql -v slot="$1" -v pub="$PUB" "
        select chr(get_byte(data, 0)), encode(data, 'hex')
        from $2(:'slot', null, null, 'proto_version', '1', 'publication_names', :'pub')
            with ordinality as c(lsn, xid, data, n)
        order by n"
}
# kinds: the message kinds of decode's lines without the Relation messages (sent once per
# relation per decoding session, so their places vary).
kinds() { cut -f1 | tr -d 'R\n'; }
hex() { printf %s "$1" | od -An -tx1 | tr -d ' \n'; }
# tuple V...: a pgoutput tuple of text columns in hex: the column count (2 bytes), then per
# column 't', its length (4 bytes) and its bytes.
tuple() {
    local v
    printf '%04x' $#
    for v in "$@"; do
        printf '74%08x%s' "${#v}" "$(hex "$v")"
    done
}
# holds FILE KIND TEXT: how many messages of KIND in FILE (decode's lines) hold TEXT.
holds() { awk -F'\t' -v k="$2" -v h="$(hex "$3")" '$1 == k && index($2, h)' "$1" | wc -l; }

# ---- start -----------------------------------------------------------------------------------
start_postgres
[[ $PG_URI == "postgres://postgres@127.0.0.1:$PG_PORT/postgres" ]] || fail "PG_URI is $PG_URI"
[[ $(pg_sql "show port") == "$PG_PORT" ]] || fail "the server does not report port $PG_PORT"
for setting in wal_level=logical max_replication_slots=10 max_wal_senders=10 fsync=off \
    listen_addresses=127.0.0.1; do
    got=$(pg_sql "show ${setting%%=*}")
    [[ $got == "${setting#*=}" ]] || fail "${setting%%=*} is $got, not ${setting#*=}"
done
user=$(ps -o user= -p "$PG_PID")
[[ -n $user && $user != root ]] || fail "the server runs as '$user'"
[[ $(pg_sql "select current_user") == postgres ]] || fail "not connected as postgres"
ok "cluster ready in ${PG_START_SECS}s at $PG_URI: wal_level=logical, 10 slots and senders," \
    "fsync off, run as $user"

# pg_sql's variables are quoted literals: a quote in a value is data, not SQL.
pg_sql "create table notes (note text)"
pg_sql -v n="it's'); drop table notes; --" "insert into notes values (:'n')"
[[ $(pg_sql "select note from notes") == "it's'); drop table notes; --" ]] ||
    fail "a -v value did not arrive as a literal"
pg_sql >/dev/null <<SQL
create table items (id int primary key, name text not null, qty int);
alter table items replica identity full;
create publication $PUB for table items;
select pg_create_logical_replication_slot('s_sql', 'pgoutput');
select pg_create_logical_replication_slot('s_recv', 'pgoutput');
SQL
slots=$(pg_slots | cut -f1-3 | tr '\t\n' ' ')
[[ $slots == "s_recv pgoutput f s_sql pgoutput f " ]] || fail "pg_slots: $slots"
ok "table, publication and two pgoutput slots; -v values are literals"

# ---- logical decoding ------------------------------------------------------------------------
lsn0=$(pg_slot_confirmed s_sql)
pg_sql "insert into items select g, 'item-' || g, g from generate_series(1, 5) g"
pg_sql "update items set qty = 100 where id = 3"
pg_sql "delete from items where id = 5"
end=$(pg_current_lsn)
(($(pg_lsn_diff "$end" "$lsn0") > 0)) || fail "the WAL did not move: $lsn0 to $end"

decode s_sql pg_logical_slot_peek_binary_changes >"$T/peek"
[[ $(kinds <"$T/peek") == BIIIIICBUCBDC ]] ||
    fail "peeked kinds $(kinds <"$T/peek"), not one insert transaction of 5, an update, a delete"
for i in 1 2 3 4 5; do
    [[ $(holds "$T/peek" I "item-$i") == 1 ]] ||
        fail "no single insert message holds item-$i"
done
# REPLICA IDENTITY FULL: the update carries the old row (qty 3) and the new one (qty 100).
update=$(grep '^U' "$T/peek")
[[ $update == *"4f$(tuple 3 item-3 3)4e$(tuple 3 item-3 100)" ]] ||
    fail "the update message lacks the old or the new row: $update"
[[ $(grep '^D' "$T/peek") == *"4f$(tuple 5 item-5 5)" ]] ||
    fail "the delete message lacks the old row: $(grep '^D' "$T/peek")"
[[ $(pg_slot_confirmed s_sql) == "$lsn0" ]] || fail "peeking moved the slot"
ok "pgoutput through SQL: 5 inserts in one transaction, the update and the delete with the old row"

decode s_sql pg_logical_slot_get_binary_changes >"$T/get"
cmp -s "$T/peek" "$T/get" || fail "getting decoded other changes than peeking"
confirmed=$(pg_slot_confirmed s_sql)
(($(pg_lsn_diff "$confirmed" "$end") >= 0)) ||
    fail "after consuming, s_sql is confirmed at $confirmed, before $end"
pg_wait_confirmed s_sql "$end" 5 || fail "pg_wait_confirmed did not see $confirmed >= $end"
! pg_wait_confirmed s_sql "$(printf "%X/0" $((16#${end%%/*} + 1)))" 0.3 ||
    fail "pg_wait_confirmed held for a position the slot never reached"
[[ -z $(decode s_sql pg_logical_slot_get_binary_changes) ]] || fail "consumed changes came again"
ok "consuming moves s_sql to $confirmed (>= $end) and nothing comes twice"

# pg_recvlogical streams the other slot up to the end position, acknowledges, and exits 0.
timeout "$HANG_SECS" "$RECV" -d "$PG_URI" -S s_recv --start -o proto_version=1 \
    -o publication_names="$PUB" -E "$end" --no-loop -f "$T/recv" 2>"$T/recv.err" ||
    fail "pg_recvlogical up to $end: $(tail -n 3 "$T/recv.err")"
got=$(grep -a -o 'item-[0-9]' "$T/recv" | sort | uniq -c | awk '{ printf "%s:%s ", $2, $1 }')
[[ $got == "item-1:1 item-2:1 item-3:3 item-4:1 item-5:2 " ]] ||
    fail "pg_recvlogical read $got (item-3: insert, old and new row; item-5: insert, delete)"
pg_wait_slot_inactive s_recv 30 || fail "s_recv still active after pg_recvlogical exited"
pg_wait_confirmed s_recv "$end" 30 ||
    fail "pg_recvlogical left s_recv at $(pg_slot_confirmed s_recv), before $end"
ok "pg_recvlogical streamed the same changes from s_recv and acknowledged them"

# A live consumer: the slot is active while it streams, a new row reaches it, and the slot is
# inactive once it is gone.
"$RECV" -d "$PG_URI" -S s_recv --start -o proto_version=1 -o publication_names="$PUB" \
    --no-loop -F 0 -f "$T/live" 2>"$T/live.err" &
live=$!
pg_wait_slot_active s_recv 30 ||
    fail "s_recv never active under pg_recvlogical: $(cat "$T/live.err")"
pg_sql "insert into items values (6, 'live-6', 6)"
wait_until 'grep -a -q live-6 "$T/live"' 30 || fail "the live consumer never got live-6"
kill -TERM "$live"
wait "$live" || true
pg_wait_slot_inactive s_recv 30 || fail "s_recv still active after its consumer ended"
! pg_wait_slot_active no_such_slot 0.3 || fail "pg_wait_slot_active held for a missing slot"
! pg_slot_confirmed no_such_slot >/dev/null || fail "pg_slot_confirmed found a missing slot"
ok "a streaming consumer holds s_recv active, gets a new row at once, and lets it go"

# ---- restarts --------------------------------------------------------------------------------
old_pid=$PG_PID
old_start=$(pg_sql "select pg_postmaster_start_time()")
rows=$(pg_sql "select string_agg(id || ':' || name || ':' || qty, ',' order by id) from items")
[[ $rows == 1:item-1:1,2:item-2:2,3:item-3:100,4:item-4:4,6:live-6:6 ]] || fail "rows: $rows"
t0=$(now)
pg_restart
restart_secs=$(since "$t0")
[[ $PG_PID != "$old_pid" && $(pg_sql "select pg_postmaster_start_time()") != "$old_start" ]] ||
    fail "pg_restart did not start a new server"
[[ $(pg_sql "show port") == "$PG_PORT" ]] || fail "the port changed across the restart"
[[ $(pg_sql "select string_agg(id || ':' || name || ':' || qty, ',' order by id) from items") == \
    "$rows" ]] || fail "rows changed across the restart"
[[ $(pg_slot_confirmed s_sql) == "$confirmed" ]] ||
    fail "s_sql is at $(pg_slot_confirmed s_sql) after the restart, not $confirmed"
pg_sql "insert into items values (7, 'after-restart', 7)"
decode s_sql pg_logical_slot_get_binary_changes >"$T/after"
[[ $(kinds <"$T/after") == BICBIC && $(holds "$T/after" I live-6) == 1 &&
    $(holds "$T/after" I after-restart) == 1 ]] ||
    fail "s_sql after the restart decoded: $(kinds <"$T/after")"
ok "pg_restart in ${restart_secs}s: new server, same port, rows and slot position kept," \
    "decoding goes on from there"

pg_stop
! port_busy "$PG_PORT" || fail "port $PG_PORT still accepts connections with the server stopped"
! "$PG_BIN/psql" -X -h 127.0.0.1 -p "$PG_PORT" -U postgres -c 'select 1' >/dev/null 2>&1 ||
    fail "psql got an answer with the server stopped"
pg_start
[[ $(pg_sql "select count(*) from items") == 6 ]] || fail "rows lost across pg_stop / pg_start"
ok "pg_stop: nothing listens on $PG_PORT; pg_start: the same data again"

# Immediate shutdown, a crash for the data: the committed row survives through WAL replay.
pg_sql "insert into items values (8, 'before-crash', 8)"
pg_stop immediate
pg_start
grep -q 'not properly shut down' "$PG_LOG" || fail "no crash recovery after the immediate stop"
[[ $(pg_sql "select name from items where id = 8") == before-crash ]] ||
    fail "a committed row was lost in the immediate stop"
[[ -n $(pg_slot_confirmed s_sql) && -n $(pg_slot_confirmed s_recv) ]] ||
    fail "a slot was lost in the immediate stop"
ok "pg_stop immediate then pg_start: recovered, committed rows and slots kept"

# ---- pg_sql fails the test on an SQL error, wherever it runs -----------------------------------
cat >"$T/nested.sh" <<'EOF'
source "$WEIR_SOURCE_DIR/tests/integration/lib.sh"
PG_PORT=$1
case $2 in
direct) pg_sql "select * from no_such_table" ;;
substitution) x=$(pg_sql "select * from no_such_table") ;;
condition) [[ $(pg_sql "select * from no_such_table") == 1 ]] || true ;;
fine) pg_sql "select 1" >/dev/null ;;
esac
pass
EOF
for how in direct substitution condition fine; do
    rc=0
    out=$(env -u WEIR_TEST_PIDS TMPDIR="$T" WEIR_SOURCE_DIR="$WEIR_SOURCE_DIR" \
        WEIR_BUILD_DIR="$WEIR_BUILD_DIR" bash "$T/nested.sh" "$PG_PORT" "$how" 2>&1) || rc=$?
    if [[ $how == fine ]]; then
        [[ $rc == 0 && $out == *PASS* ]] || fail "a script whose pg_sql works did not pass: $out"
    else
        [[ $rc != 0 && $out == *FAIL:*no_such_table* && $out != *PASS* ]] ||
            fail "pg_sql's error in a $how did not fail the test (status $rc): $out"
    fi
done
ok "an SQL error fails the test directly, in a command substitution and in a condition"

# ---- helpers on known input ------------------------------------------------------------------
[[ $(pg_lsn_diff 1/0 0/FFFFFFFF) == 1 && $(pg_lsn_diff 0/10 0/20) == -16 &&
    $(pg_lsn_num 2/A) == 8589934602 ]] || fail "LSN arithmetic"
# Record-file lines of DynamoDB records: key a in order, redelivered after a failure; key b
# out of order (seq 4 first delivered after 5); key c across a digit: 9 then 10 is in order.
line() { printf '%s\t0\t%s {} - -\t1\t1\t1\t%s\t0\t0\n' "$1" "$2" "$3"; }
{
    line 00000000000000000001 INSERT a
    line 00000000000000000002 MODIFY a
    line 5 INSERT b
    line 00000000000000000003 MODIFY a
    line 00000000000000000002 MODIFY a
    line 00000000000000000003 MODIFY a
    line 4 INSERT b
    line 9 INSERT c
    line 10 MODIFY c
} >"$T/ddb.rec"
errs=$(ddb_order_errors "$T/ddb.rec")
[[ $(tail -n 1 <<<"$errs") == errors=1 && $errs == *"out of order: 4 of b after 5"* ]] ||
    fail "ddb_order_errors: $errs"
ok "pg_lsn_diff, pg_lsn_num and ddb_order_errors on known input"

pass
