#!/usr/bin/env bash
# A Postgres mapping's bad settings: `weir check` refuses each with file:line:col, the rule broken
# and exit 2, never printing the URI's password: URIs libpq refuses, replication= in the URI,
# table names that are not table or schema.table, slot names that are not slot names, an unknown
# stream_view_type, AT_TIMESTAMP, no tables for the publication weir is to create; `weir run`
# refuses such a file before starting anything. At run time, against a real server, what only the
# server can tell: a table that does not exist (CREATE PUBLICATION fails), a slot of another
# plugin, no slot with create_slot false: weir logs an error naming the problem and its fix,
# keeps running and retrying (the server sees the attempts), and once the problem is fixed it
# streams, without a restart, every row written after.
source "$(dirname "$0")/lib.sh"

PASSWORD=s3cretPW
CONFIG_SECRET=$PASSWORD # config_expect_error: an output showing it is a bug

# A valid file, one setting a line, so that each variant's error has a known position.
base() {
    cat <<YAML
functions:
  - name: fn
    url: http://127.0.0.1:9
mappings:
  - name: orders
    source: postgres://weir:$PASSWORD@127.0.0.1:5432/shop
    function: fn
    tables: [orders, sales.invoices]
    slot_name: weir_orders_1
    publication_name: weir_orders_pub
    stream_view_type: NEW_AND_OLD_IMAGES
    starting_position: TRIM_HORIZON
    create_publication: true
YAML
}

config_variant base 0 ""
config_check base
[[ $RC == 0 ]] || fail "the base file is refused ($RC): $OUT"
ok "the base file passes: ${OUT#"$T/"}"

# ---- the URI ---------------------------------------------------------------------------------
URI="postgres://weir:$PASSWORD@127.0.0.1:5432/shop"
config_variant uri_param 6 "    source: $URI?no_such_param=1"
config_expect_error uri_param 6 "5|13" "not a Postgres connection URI" "no_such_param"
config_variant uri_host 6 "    source: postgres://weir:$PASSWORD@[::1/shop"
config_expect_error uri_host 6 "5|13" "not a Postgres connection URI" "IPv6"
config_variant uri_escape 6 "    source: postgres://weir:$PASSWORD%zz@127.0.0.1:5432/shop"
config_expect_error uri_escape 6 "5|13" "not a Postgres connection URI" "percent-encoded"
config_variant uri_replication 6 "    source: $URI?replication=database"
config_expect_error uri_replication 6 "5|13" "replication=" "weir opens its own replication connection"
config_variant uri_replication_true 6 "    source: $URI?sslmode=disable&replication=true"
config_expect_error uri_replication_true 6 "5|13" "replication="

# ---- tables ----------------------------------------------------------------------------------
config_variant table_abc 8 "    tables: [orders, a.b.c]"
config_expect_error table_abc 8 "5|13|22" '"a.b.c"' "table or schema.table"
config_variant table_dot 8 "    tables: [sales.]"
config_expect_error table_dot 8 "5|13" '"sales."' "table or schema.table"
config_variant table_long 8 "    tables: [$(printf 't%.0s' {1..64})]"
config_expect_error table_long 8 "5|13" "is not table or schema.table" "63 bytes"
# No tables, and weir is to create the publication (by default, or said so): the mapping (line 5),
# its source (line 6) or create_publication (line 12) is named, with both ways out.
config_variant no_tables 8 "-"
sed -i '/create_publication/d' "$T/no_tables.yaml"
config_expect_error no_tables "(5|6)" "5" "names its tables" "create_publication: false"
config_variant no_tables_create 8 "-"
config_expect_error no_tables_create "(5|6|12)" "5" "names its tables"
# The documented range of tables is 1..100 names: an empty list is the key at fault.
config_variant empty_tables 8 "    tables: []"
config_check empty_tables
if [[ $RC != 2 ]]; then
    bug "empty_tables: 'tables: []' is accepted (exit $RC): $OUT"
elif ! grep -qE "^$T/empty_tables.yaml:8:(5|13): .*tables" <<<"$OUT"; then
    bug "empty_tables: 'tables: []' is not refused at its line 8 but: $(sed "s|^$T/||" <<<"$OUT" | head -1)"
else
    ok "empty_tables: exit 2 at line 8"
fi
# An existing publication may stand for the tables.
config_variant reuse_pub 8 "-"
sed -i 's/create_publication: true/create_publication: false/' "$T/reuse_pub.yaml"
config_check reuse_pub
[[ $RC == 0 ]] || fail "reuse_pub: no tables with create_publication false is refused ($RC): $OUT"
ok "reuse_pub: no tables with an existing publication (create_publication: false) passes"

# ---- names, view types, positions -----------------------------------------------------------
config_variant slot_upper 9 "    slot_name: Weir_Orders"
config_expect_error slot_upper 9 "5|16" '"Weir_Orders"' "a-z 0-9 _"
config_variant slot_long 9 "    slot_name: $(printf 's%.0s' {1..64})"
config_expect_error slot_long 9 "5|16" "is not a replication slot name" "1..63"
config_variant slot_dash 9 "    slot_name: weir-orders"
config_expect_error slot_dash 9 "5|16" '"weir-orders"' "a-z 0-9 _"
config_variant slot_63 9 "    slot_name: $(printf 's%.0s' {1..63})"
config_check slot_63
[[ $RC == 0 ]] || fail "slot_63: a slot name of 63 characters is refused ($RC): $OUT"
ok "slot_63: a slot name of 63 characters passes"
config_variant pub_long 10 "    publication_name: $(printf 'p%.0s' {1..64})"
config_expect_error pub_long 10 "5|23" "publication_name" "63 bytes"
config_variant view 11 "    stream_view_type: NEW_AND_OLD"
config_expect_error view 11 "5|23" '"NEW_AND_OLD"' KEYS_ONLY NEW_IMAGE OLD_IMAGE NEW_AND_OLD_IMAGES
config_variant position 12 "    starting_position: AT_TIMESTAMP"
config_expect_error position 12 "5|24" '"AT_TIMESTAMP"' TRIM_HORIZON LATEST
config_variant timestamp 12 "    starting_position: LATEST
    starting_position_timestamp: 1700000000"
config_expect_error timestamp 13 "5" "starting_position_timestamp" "kafka://"

# Every error of a file, in file order.
base | awk 'NR == 9 { print "    slot_name: Bad"; next } NR == 11 { print "    stream_view_type: ALL"; next }
    NR == 12 { print "    starting_position: AT_TIMESTAMP"; next } { print }' >"$T/three.yaml"
config_check three
[[ $RC == 2 ]] || fail "three: weir check exited $RC; output: $OUT"
got=$(grep -oE "^$T/three.yaml:[0-9]+:" <<<"$OUT" | sed "s|^$T/three.yaml:||" | paste -sd' ')
[[ $got == "9: 11: 12:" ]] || fail "three: errors at lines '$got', expected 9, 11 and 12 in order: $OUT"
ok "three: all three errors reported, in file order (lines 9, 11, 12)"

# weir run refuses a bad file the same way, before starting anything.
RC=0
OUT=$(timeout "$HANG_SECS" "$WEIR" run -c "$T/uri_replication.yaml" 2>&1) || RC=$?
[[ $RC == 2 ]] || fail "weir run on a bad file exited $RC, expected 2: $OUT"
grep -qE "^$T/uri_replication.yaml:6:(5|13): .*replication=" <<<"$OUT" ||
    fail "weir run does not name the error: $OUT"
grep -q "nothing was started" <<<"$OUT" || fail "weir run does not say nothing was started: $OUT"
ok "weir run refuses the same file with exit 2 before starting anything"

# ---- at run time: what only the server can tell ----------------------------------------------
start_postgres
# Every statement in the server's log: weir's attempts show there.
pg_sql "alter system set log_statement = 'all'" >/dev/null
pg_sql "select pg_reload_conf()" >/dev/null
pg_sql >/dev/null <<'SQL'
create table pg_td (id int primary key, v text);
create table pg_ns (id int primary key, v text);
create table pg_noid (id int, v text);
insert into pg_noid values (1, 'noid-before');
select pg_create_logical_replication_slot('pg_td_slot', 'test_decoding');
SQL
start_fn_http --record "$T/rec"
# The password means nothing to the test cluster (trust), but weir must not log it.
SRC="postgres://postgres:$PASSWORD@127.0.0.1:$PG_PORT/postgres"
cat >"$T/weir.yaml" <<YAML
functions: [{name: fn, url: "$FN_URL"}]
mappings:
  - {name: m_missing, source: "$SRC", function: fn, tables: [pg_missing]}
  - {name: m_td, source: "$SRC", function: fn, tables: [pg_td], slot_name: pg_td_slot}
  - {name: m_ns, source: "$SRC", function: fn, tables: [pg_ns], slot_name: pg_ns_slot,
     create_slot: false}
  - {name: m_noid, source: "$SRC", function: fn, tables: [pg_noid]}
YAML
"$WEIR" check -c "$T/weir.yaml" >/dev/null 2>&1 || fail "weir check refuses the run-time file"
start_weir "$T/weir.yaml"

WHERE="127.0.0.1:$PG_PORT/postgres"
declare -A ERR=(
    [m_missing]="checking the tables failed on $WHERE; retrying why=\"ERROR:  relation \"public.pg_missing\" does not exist\""
    [m_td]="slot pg_td_slot on $WHERE is not a logical pgoutput slot of this database (logical test_decoding); name another slot_name"
    [m_ns]="slot pg_ns_slot does not exist on $WHERE and create_slot is false; create it (SELECT pg_create_logical_replication_slot('pg_ns_slot', 'pgoutput'))"
    [m_noid]="not creating publication weir_m_noid: pg_noid has no primary key and no replica identity, and Postgres refuses UPDATE and DELETE on a published table without one"
)
# What the server logs of each attempt.
declare -A ATTEMPT=(
    [m_missing]='STATEMENT:  SELECT c.oid::regclass::text, c.relreplident'
    [m_td]="slot_name = 'pg_td_slot'"
    [m_ns]="slot_name = 'pg_ns_slot'"
    [m_noid]="'\"public\".\"pg_noid\"'::regclass"
)
attempts() { grep -cF -- "${ATTEMPT[$1]}" "$PG_LOG" || true; }
for m in m_missing m_td m_ns m_noid; do
    wait_until 'grep -qF -- "mapping/'$m': ${ERR['$m']}" "$WEIR_LOG"' 30 ||
        fail "$m: no error '${ERR[$m]}' in weir's log: $(grep "mapping/$m" "$WEIR_LOG")"
    grep -F -- "mapping/$m: ${ERR[$m]}" "$WEIR_LOG" | grep -q '^error ' ||
        fail "$m: the error is not logged at level error"
done
for m in m_missing m_td m_ns m_noid; do
    wait_until '[[ $(attempts '$m') -ge 2 ]]' 30 || fail "$m: $(attempts $m) attempt(s) seen by the server"
done
[[ -z $(pg_sql "select pubname from pg_publication where pubname = 'weir_m_noid'") ]] ||
    fail "m_noid: a publication was made for a table without a replica identity"
pg_sql "update pg_noid set v = 'noid-updated' where id = 1" >/dev/null
ok "no publication for a table without a replica identity: the application's UPDATE still works"
! grep -q "streaming slot" "$WEIR_LOG" || fail "a mapping streams: $(grep 'streaming slot' "$WEIR_LOG")"
[[ $(pg_slots | cut -f1 | paste -sd' ') == pg_td_slot ]] || fail "slots: $(pg_slots)"
ok "each logs its error, naming the problem and the fix, keeps running and retrying (attempts:" \
    "m_missing $(attempts m_missing), m_td $(attempts m_td), m_ns $(attempts m_ns)," \
    "m_noid $(attempts m_noid)); no slot created"

# Fixed while weir runs: the table created, the other plugin's slot dropped, the slot created.
pg_sql >/dev/null <<'SQL'
create table pg_missing (id int primary key, v text);
select pg_drop_replication_slot('pg_td_slot');
select pg_create_logical_replication_slot('pg_ns_slot', 'pgoutput');
insert into pg_ns values (1, 'ns-before-streaming');
alter table pg_noid add primary key (id);
SQL
t0=$(now)
for m in m_missing m_td m_ns m_noid; do
    wait_until 'grep -q "mapping/'$m': streaming slot=" "$WEIR_LOG"' 40 ||
        fail "$m does not stream $(since "$t0")s after its problem was fixed"
done
ok "all four stream within $(since "$t0")s of the fixes, without a restart"
pg_sql >/dev/null <<'SQL'
insert into pg_missing values (1, 'missing-1'), (2, 'missing-2');
insert into pg_td values (1, 'td-1');
update pg_td set v = 'td-2' where id = 1;
insert into pg_ns values (2, 'ns-2');
insert into pg_noid values (2, 'noid-2');
SQL
want="INSERT missing-1,INSERT missing-2,INSERT noid-2,INSERT ns-2,INSERT ns-before-streaming,INSERT td-1,MODIFY td-2"
got() {
    records "$T/rec" | awk -F'\t' '{ split($3, w, " "); print w[1] "\t" w[3] }' |
        jq -R -r 'split("\t") | "\(.[0]) \(.[1] | fromjson | .v.S)"' | sort | paste -sd,
}
wait_until '[[ $(count_records "$T/rec") -ge 7 ]]' 30 || fail "received only: $(got)"
sleep 1 # a record delivered twice would show by now
[[ $(got) == "$want" ]] || fail "received $(got), not $want"
ok "every row written after the fixes arrives once (m_ns's too, written before it streamed)"

! grep -qF "$PASSWORD" "$WEIR_LOG" || fail "weir logged the password: $(grep -m1 -F "$PASSWORD" "$WEIR_LOG")"
ok "the password never reached weir's log"

no_bugs
pass
