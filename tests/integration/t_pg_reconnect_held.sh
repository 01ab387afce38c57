#!/usr/bin/env bash
# The connection is cut while weir holds as much of the stream as it may (the partition paused:
# weir reads no more of the socket until the function catches up). The mapping forgets what it
# held, and its pause with it; the new connection must read again and deliver everything.
# 3,000 rows in one transaction against a bound of 1,000 held records and a function that takes
# 100 ms a batch of 100: the cut comes while reading is paused; every row must still arrive and
# the slot reach the end of the WAL. (Here weir notices the cut when reading resumes; noticing it
# while still paused — a status update failing — must also clear the pause: pollers/postgres.c
# lost().)
source "$(dirname "$0")/lib.sh"

ROWS=3000
start_postgres
start_fn_http --record "$T/rec" --delay-ms 100

pg_sql >/dev/null <<SQL
create table pgheld_items (id int primary key, note text);
SQL
cat >"$T/weir.yaml" <<YAML
functions:
  - name: fn
    url: $FN_URL
    timeout: 10
mappings:
  - name: pgheld
    source: $PG_URI
    function: fn
    tables: [pgheld_items]
    batch_size: 100
YAML
WEIR_LOG_LEVEL=debug start_weir "$T/weir.yaml"
wait_until 'grep -q "mapping/pgheld: streaming slot=weir_pgheld" "$WEIR_LOG"' 30 ||
    fail "weir does not stream: $(tail -5 "$WEIR_LOG")"

pg_sql "insert into pgheld_items select g, 'row-' || g from generate_series(1, $ROWS) g" >/dev/null
END_LSN=$(pg_current_lsn)
ids() { awk -F'\t' 'NF >= 8 { print $1 }' "$T/rec" | sort -u; }

paused() { grep -c "mapping/pgheld: reading paused" "$WEIR_LOG" || true; }
resumed() { grep -c "mapping/pgheld: reading resumed" "$WEIR_LOG" || true; }
wait_until '[[ $(paused) -gt $(resumed) ]]' 30 || fail "weir never paused reading: nothing tested"
[[ $(ids | wc -l) -lt $ROWS ]] || fail "every row arrived before the cut: nothing tested"
again='mapping/pgheld: streaming slot=weir_pgheld from 127.0.0.1:[0-9]+/postgres again'
[[ $(pg_sql "select pg_terminate_backend(active_pid) from pg_replication_slots
             where slot_name = 'weir_pgheld'") == t ]] || fail "no WAL sender to terminate"
at_cut=$(ids | wc -l)
[[ $(paused) -gt $(resumed) ]] || fail "reading resumed before the cut: nothing tested"
wait_until 'grep -qE "$again" "$WEIR_LOG"' 30 || fail "weir did not stream again after the cut"
ok "connection cut while reading was paused, with $at_cut of $ROWS rows at the function"

wait_until '[[ $(ids | wc -l) -ge $ROWS ]]' 60 ||
    fail "$(ids | wc -l) of $ROWS rows received after the cut ($at_cut at the cut): the stream" \
        "stalled; last log lines: $(tail -3 "$WEIR_LOG")"
wait_until '[[ $(pg_lsn_diff "$(pg_slot_confirmed weir_pgheld)" "$END_LSN") -ge 0 ]]' 15 ||
    fail "the slot stays at $(pg_slot_confirmed weir_pgheld), not at the WAL end $END_LSN"
ok "all $ROWS rows received ($(count_records "$T/rec") deliveries) and the slot at the WAL end"

check_weirs_alive
stop_weir
pass
