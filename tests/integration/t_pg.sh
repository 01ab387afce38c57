#!/usr/bin/env bash
# Postgres as a DynamoDB stream, record by record: inserts, updates, deletes and a TRUNCATE across
# the column types, on tables with REPLICA IDENTITY FULL, DEFAULT (an unchanged TOASTed column
# left out) and USING INDEX, with one- and two-column primary keys, reach the function as exactly
# the DynamoDB Streams records docs/postgres.md describes: eventName, Keys, NewImage/OldImage per
# stream_view_type (NEW_AND_OLD_IMAGES, NEW_IMAGE, KEYS_ONLY), typed attribute values, one
# SequenceNumber per record (the commit's LSN and the place in the transaction) increasing in
# commit order, eventID, SizeBytes, the stream ARN; every event checked against reference 4.4. A
# filtered-out record is done: the slot's confirmed position passes it. Once everything read is
# done, the slot reaches the server's position from its keepalives. On ten lanes a TRUNCATE's
# marker still comes after every change committed before it.
source "$(dirname "$0")/lib.sh"


REGION=eu-west-1
ARN_PREFIX="arn:aws:dynamodb:$REGION:000000000000:table"

start_postgres
pg_sql >/dev/null <<'SQL'
create table pg_full (
    id int primary key, t text, vc varchar(20), i integer, b bigint, n numeric, r real,
    d double precision, bo boolean, by bytea, j json, jb jsonb, ta text[], ia int[],
    ts timestamp, tz timestamptz, dt date, u uuid, big text);
alter table pg_full replica identity full;
alter table pg_full alter column big set storage external;
create table pg_dflt (id int primary key, v text, big text);
alter table pg_dflt alter column big set storage external;
create schema sales;
create table sales.pg_two (region text, n int, qty int, primary key (region, n));
alter table sales.pg_two replica identity full;
create table pg_uidx (code text not null, v int);
create unique index pg_uidx_code on pg_uidx (code);
alter table pg_uidx replica identity using index pg_uidx_code;
create table pg_orders (id int primary key, status text);
create table pg_quiet (id int primary key);
create table pg_other (id int);
create table pg_trunc (id int primary key);
SQL
ok "tables: pg_full (FULL), pg_dflt (DEFAULT, TOASTed column), sales.pg_two (FULL, two-column" \
    "key), pg_uidx (USING INDEX, no primary key), pg_orders (filtered), pg_quiet, pg_other," \
    "pg_trunc"

# One function per mapping, each writing every event it receives.
declare -A FN_OF
for m in all new keys filt; do
    start_fn_http --record "$T/rec.$m" --events "$T/events.$m"
    FN_OF[$m]=$FN_URL
done
start_fn_http --record "$T/rec.slow" --delay-ms 1500
FN_OF[slow]=$FN_URL
start_fn_http --record "$T/rec.trunc" --delay-ms 20
FN_OF[trunc]=$FN_URL
TABLES="[pg_full, pg_dflt, sales.pg_two, pg_uidx]"
cat >"$T/weir.yaml" <<YAML
region: $REGION
functions:
  - {name: fn_all, url: "${FN_OF[all]}"}
  - {name: fn_new, url: "${FN_OF[new]}"}
  - {name: fn_keys, url: "${FN_OF[keys]}"}
  - {name: fn_filt, url: "${FN_OF[filt]}"}
  - {name: fn_slow, url: "${FN_OF[slow]}"}
  - {name: fn_trunc, url: "${FN_OF[trunc]}"}
mappings:
  - name: m_all
    source: $PG_URI
    function: fn_all
    tables: $TABLES
    stream_view_type: NEW_AND_OLD_IMAGES
    batch_size: 7
  - name: m_new
    source: $PG_URI
    function: fn_new
    tables: $TABLES
    slot_name: pg_new_slot
    publication_name: pg_new_pub
    stream_view_type: NEW_IMAGE
  - name: m_keys
    source: $PG_URI
    function: fn_keys
    tables: $TABLES
    slot_name: pg_keys_slot
    stream_view_type: KEYS_ONLY
    batch_size: 3
    parallelization_factor: 4
  - name: m_filt
    source: $PG_URI
    function: fn_filt
    tables: [pg_orders]
    filter_criteria:
      filters:
        - pattern: '{"eventName": ["INSERT"]}'
        - pattern: '{"dynamodb": {"NewImage": {"status": {"S": ["PAID"]}}}}'
  - name: m_slow
    source: $PG_URI
    function: fn_slow
    tables: [pg_quiet]
    stream_view_type: KEYS_ONLY
  - name: m_trunc
    source: $PG_URI
    function: fn_trunc
    tables: [pg_trunc]
    stream_view_type: KEYS_ONLY
    parallelization_factor: 10
    batch_size: 1
YAML
"$WEIR" check -c "$T/weir.yaml" >"$T/check.out" 2>&1 || fail "weir check refused: $(cat "$T/check.out")"
declare -A SLOT=([all]=weir_m_all [new]=pg_new_slot [keys]=pg_keys_slot [filt]=weir_m_filt
    [slow]=weir_m_slow [trunc]=weir_m_trunc)
declare -A VIEW=([all]=NEW_AND_OLD_IMAGES [new]=NEW_IMAGE [keys]=KEYS_ONLY [filt]=NEW_AND_OLD_IMAGES)

start_weir "$T/weir.yaml"
for m in all new keys filt slow trunc; do
    wait_until 'grep -q "mapping/m_'$m': streaming slot='"${SLOT[$m]}"'" "$WEIR_LOG"' 60 ||
        fail "m_$m never streamed slot ${SLOT[$m]}"
done
for m in all new keys filt slow trunc; do
    [[ $(pg_slots | awk -F'\t' -v s="${SLOT[$m]}" '$1 == s { print $2 " " $3 }') == "pgoutput t" ]] ||
        fail "slot ${SLOT[$m]} is not an active pgoutput slot: $(pg_slots)"
done
ok "six mappings stream their own pgoutput slots, created by weir"

# ---- the workload ----------------------------------------------------------------------------
# Each transaction below is numbered (x in the expected records): its records share the commit's
# LSN in their SequenceNumber.
BIGX=$(printf 'x%.0s' {1..10000})
BIGY=$(printf 'y%.0s' {1..10000})
LSN0=$(pg_current_lsn)
T0=$(date +%s)
pg_sql -v bigx="$BIGX" -v bigy="$BIGY" >/dev/null <<'SQL'
insert into pg_full values (1, 'héllo "q" \ back', E'line1\nline2\ttab', -5, 9223372036854775807,
    123456789012345678901234567890.123456789, 3.25, 1.5e300, true, '\x00ff10',
    '{"a": {"b": [1, 2.50, 12345678901234567890123, -1.5e-7]}, "c": null, "d": "s p", "e": [true, false, {}], "g": []}',
    '{"a": {"b": [1, 2.50, 12345678901234567890123, -1.5e-7]}, "c": null, "d": "s p", "e": [true, false, {}], "g": []}',
    '{"x y", NULL, "a,b", "q\"uote", ""}', '{{1,2},{3,NULL}}', '2026-12-01 16:04:26.123456',
    '2026-12-01 16:04:26.123+02', '2026-12-01', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', :'bigx');
begin;
insert into pg_full (id) values (2);
insert into pg_full values (3, '', null, 0, -9223372036854775808, 'NaN', 'NaN', '-Infinity', false,
    '\x', '"just a string"', '12.0', '{}', '{}', 'infinity', '-infinity', 'infinity', null, 'small');
update pg_full set t = 'now set', n = -0.000000000000000000000000000001, r = 'Infinity' where id = 2;
commit;
update pg_full set i = 6, ta = array['only'] where id = 1;
delete from pg_full where id = 3;
update pg_full set id = 20 where id = 2;
delete from pg_full where id = 1;
insert into pg_dflt values (1, 'a', :'bigx'), (3, 'c', 'short');
begin;
update pg_dflt set v = 'b' where id = 1;
update pg_dflt set v = 'd' where id = 3;
commit;
update pg_dflt set big = :'bigy' where id = 1;
update pg_dflt set id = 2 where id = 1;
delete from pg_dflt where id = 2;
insert into sales.pg_two values ('eu', 1, 10), ('us', 1, 20), ('eu', 2, 30);
update sales.pg_two set qty = 11 where region = 'eu' and n = 1;
delete from sales.pg_two where region = 'us' and n = 1;
insert into pg_uidx values ('c1', 1);
update pg_uidx set v = 2 where code = 'c1';
delete from pg_uidx where code = 'c1';
truncate pg_full, sales.pg_two;
insert into pg_full (id) values (99);
SQL
# pg_orders last: its final transactions are all filtered out for m_filt.
pg_sql >/dev/null <<'SQL'
insert into pg_orders values (1, 'NEW'), (2, 'NEW');
update pg_orders set status = 'PAID' where id = 1;
update pg_orders set status = 'CANCELLED' where id = 2;
update pg_orders set status = 'SHIPPED' where id = 1;
delete from pg_orders where id = 2;
SQL
LSN_END=$(pg_current_lsn)
T1=$(date +%s)
note "workload from $LSN0 to $LSN_END"

# ---- what each function must get -------------------------------------------------------------
# The images, as docs/postgres.md types them. A text value with a backslash, quotes and a
# non-ASCII letter; control characters; numbers with all their digits (bigint's bounds, numeric
# beyond double, -0.(30 zeros)1); NaN and infinities as S; bytea as base64 (empty too); json kept
# digit for digit and jsonb as Postgres normalises it (-1.5e-7 is -0.00000015 there); arrays with
# NULL elements, quoted elements, an empty string, two dimensions, none; timestamps in ISO-8601
# (timestamptz in UTC with Z; infinity as written); uuid as Postgres prints it.
J='{"M":{"a":{"M":{"b":{"L":[{"N":"1"},{"N":"2.50"},{"N":"12345678901234567890123"},{"N":"-1.5e-7"}]}}},"c":{"NULL":true},"d":{"S":"s p"},"e":{"L":[{"BOOL":true},{"BOOL":false},{"M":{}}]},"g":{"L":[]}}}'
JB=${J/-1.5e-7/-0.00000015}
NUL='{"NULL":true}'
F1='{"id":{"N":"1"},"t":{"S":"héllo \"q\" \\ back"},"vc":{"S":"line1\nline2\ttab"},"i":{"N":"-5"},
 "b":{"N":"9223372036854775807"},"n":{"N":"123456789012345678901234567890.123456789"},
 "r":{"N":"3.25"},"d":{"N":"1.5e+300"},"bo":{"BOOL":true},"by":{"B":"AP8Q"},"j":'$J',"jb":'$JB',
 "ta":{"L":[{"S":"x y"},{"NULL":true},{"S":"a,b"},{"S":"q\"uote"},{"S":""}]},
 "ia":{"L":[{"L":[{"N":"1"},{"N":"2"}]},{"L":[{"N":"3"},{"NULL":true}]}]},
 "ts":{"S":"2026-12-01T16:04:26.123456"},"tz":{"S":"2026-12-01T14:04:26.123Z"},
 "dt":{"S":"2026-12-01"},"u":{"S":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},"big":{"S":"'$BIGX'"}}'
F1=$(jq -c . <<<"$F1")
F1b=$(jq -c '.i = {"N":"6"} | .ta = {"L":[{"S":"only"}]}' <<<"$F1")
F2=$(jq -c -n --argjson n "$NUL" '{id:{"N":"2"}} + ([
    "t","vc","i","b","n","r","d","bo","by","j","jb","ta","ia","ts","tz","dt","u","big"]
    | map({(.): $n}) | add)')
F2b=$(jq -c '.t = {"S":"now set"} | .n = {"N":"-0.000000000000000000000000000001"}
    | .r = {"S":"Infinity"}' <<<"$F2")
F20=$(jq -c '.id = {"N":"20"}' <<<"$F2b")
F3='{"id":{"N":"3"},"t":{"S":""},"vc":'$NUL',"i":{"N":"0"},"b":{"N":"-9223372036854775808"},
 "n":{"S":"NaN"},"r":{"S":"NaN"},"d":{"S":"-Infinity"},"bo":{"BOOL":false},"by":{"B":""},
 "j":{"S":"just a string"},"jb":{"N":"12.0"},"ta":{"L":[]},"ia":{"L":[]},"ts":{"S":"infinity"},
 "tz":{"S":"-infinity"},"dt":{"S":"infinity"},"u":'$NUL',"big":{"S":"small"}}'
F3=$(jq -c . <<<"$F3")
F99=$(jq -c '.id = {"N":"99"}' <<<"$F2")
K() { printf '{"id":{"N":"%s"}}' "$1"; }
K2() { printf '{"region":{"S":"%s"},"n":{"N":"%s"}}' "$1" "$2"; }
P() { printf '{"region":{"S":"%s"},"n":{"N":"%s"},"qty":{"N":"%s"}}' "$1" "$2" "$3"; }
TRUNC='"u":{"type":"Service","principalId":"weir.truncate"}'

# x: the transaction; a: the table; e, k, n, o: eventName, Keys, NewImage, OldImage.
cat >"$T/expected.raw" <<EOF
{"x":1,"a":"pg_full","e":"INSERT","k":$(K 1),"n":$F1}
{"x":2,"a":"pg_full","e":"INSERT","k":$(K 2),"n":$F2}
{"x":2,"a":"pg_full","e":"INSERT","k":$(K 3),"n":$F3}
{"x":2,"a":"pg_full","e":"MODIFY","k":$(K 2),"n":$F2b,"o":$F2}
{"x":3,"a":"pg_full","e":"MODIFY","k":$(K 1),"n":$F1b,"o":$F1}
{"x":4,"a":"pg_full","e":"REMOVE","k":$(K 3),"o":$F3}
{"x":5,"a":"pg_full","e":"MODIFY","k":$(K 20),"n":$F20,"o":$F2b}
{"x":6,"a":"pg_full","e":"REMOVE","k":$(K 1),"o":$F1b}
{"x":7,"a":"pg_dflt","e":"INSERT","k":$(K 1),"n":{"id":{"N":"1"},"v":{"S":"a"},"big":{"S":"$BIGX"}}}
{"x":7,"a":"pg_dflt","e":"INSERT","k":$(K 3),"n":{"id":{"N":"3"},"v":{"S":"c"},"big":{"S":"short"}}}
{"x":8,"a":"pg_dflt","e":"MODIFY","k":$(K 1),"n":{"id":{"N":"1"},"v":{"S":"b"}}}
{"x":8,"a":"pg_dflt","e":"MODIFY","k":$(K 3),"n":{"id":{"N":"3"},"v":{"S":"d"},"big":{"S":"short"}}}
{"x":9,"a":"pg_dflt","e":"MODIFY","k":$(K 1),"n":{"id":{"N":"1"},"v":{"S":"b"},"big":{"S":"$BIGY"}}}
{"x":10,"a":"pg_dflt","e":"MODIFY","k":$(K 2),"n":{"id":{"N":"2"},"v":{"S":"b"}},"o":$(K 1)}
{"x":11,"a":"pg_dflt","e":"REMOVE","k":$(K 2),"o":$(K 2)}
{"x":12,"a":"sales.pg_two","e":"INSERT","k":$(K2 eu 1),"n":$(P eu 1 10)}
{"x":12,"a":"sales.pg_two","e":"INSERT","k":$(K2 us 1),"n":$(P us 1 20)}
{"x":12,"a":"sales.pg_two","e":"INSERT","k":$(K2 eu 2),"n":$(P eu 2 30)}
{"x":13,"a":"sales.pg_two","e":"MODIFY","k":$(K2 eu 1),"n":$(P eu 1 11),"o":$(P eu 1 10)}
{"x":14,"a":"sales.pg_two","e":"REMOVE","k":$(K2 us 1),"o":$(P us 1 20)}
{"x":15,"a":"pg_uidx","e":"INSERT","k":{"code":{"S":"c1"}},"n":{"code":{"S":"c1"},"v":{"N":"1"}}}
{"x":16,"a":"pg_uidx","e":"MODIFY","k":{"code":{"S":"c1"}},"n":{"code":{"S":"c1"},"v":{"N":"2"}}}
{"x":17,"a":"pg_uidx","e":"REMOVE","k":{"code":{"S":"c1"}},"o":{"code":{"S":"c1"}}}
{"x":18,"a":"pg_full","e":"REMOVE","k":{},$TRUNC}
{"x":18,"a":"sales.pg_two","e":"REMOVE","k":{},$TRUNC}
{"x":19,"a":"pg_full","e":"INSERT","k":$(K 99),"n":$F99}
EOF
cat >"$T/expected.filt.raw" <<EOF
{"x":1,"a":"pg_orders","e":"INSERT","k":$(K 1),"n":{"id":{"N":"1"},"status":{"S":"NEW"}}}
{"x":1,"a":"pg_orders","e":"INSERT","k":$(K 2),"n":{"id":{"N":"2"},"status":{"S":"NEW"}}}
{"x":2,"a":"pg_orders","e":"MODIFY","k":$(K 1),"n":{"id":{"N":"1"},"status":{"S":"PAID"}}}
EOF
# expected M: mapping M's records, as project prints them: the ARN names its slot; NEW_IMAGE has
# no OldImage, KEYS_ONLY no image at all.
expected() {
    local raw=$T/expected.raw
    [[ $1 == filt ]] && raw=$T/expected.filt.raw
    jq -c -S --arg p "$ARN_PREFIX" --arg s "${SLOT[$1]}" --arg v "${VIEW[$1]}" '
        del(.x) | .a = "\($p)/\(.a)/stream/\($s)"
        | if $v == "NEW_IMAGE" then del(.o) elif $v == "KEYS_ONLY" then del(.n, .o) else . end' \
        "$raw"
}
# project FILE: every record of the events, as received, in the expected lines' form.
project() {
    jq -c -S '.Records[] | {a: .eventSourceARN, e: .eventName, k: .dynamodb.Keys,
        n: .dynamodb.NewImage, o: .dynamodb.OldImage, u: .userIdentity}
        | with_entries(select(.value != null))' "$1"
}
N_ALL=$(wc -l <"$T/expected.raw")
N_FILT=$(wc -l <"$T/expected.filt.raw")
N_FILTERED=3 # pg_orders: to CANCELLED, to SHIPPED, the delete
declare -A WANT=([all]=$N_ALL [new]=$N_ALL [keys]=$N_ALL [filt]=$N_FILT)

t_workload=$(now)
for m in all new keys filt; do
    wait_until '[[ $(count_records "$T/rec.'$m'") -ge '"${WANT[$m]}"' ]]' 60 ||
        fail "m_$m: $(count_records "$T/rec.$m") of ${WANT[$m]} records received"
done
t_records=$(since "$t_workload")
# Filtered-out records are done: every slot, m_filt's too (whose last three records were filtered
# out), is confirmed up to the server's position after the workload.
for m in all new keys filt; do
    pg_wait_confirmed "${SLOT[$m]}" "$LSN_END" 60 ||
        fail "slot ${SLOT[$m]} confirmed at $(pg_slot_confirmed "${SLOT[$m]}"), not at $LSN_END"
done
ok "every slot confirmed up to $LSN_END, m_filt's past its filtered-out records (records in" \
    "${t_records}s, confirmed in $(since "$t_workload")s)"
sleep 1.5 # a record delivered twice would show by now
for m in all new keys filt; do
    [[ $(count_records "$T/rec.$m") == "${WANT[$m]}" ]] ||
        fail "m_$m: $(count_records "$T/rec.$m") deliveries for ${WANT[$m]} records"
done

# ---- the records ---------------------------------------------------------------------------
# One lane: exactly the expected records, in commit order.
for m in all new filt; do
    expected $m >"$T/want.$m"
    project "$T/events.$m" >"$T/got.$m"
    if ! cmp -s "$T/want.$m" "$T/got.$m"; then
        diff "$T/want.$m" "$T/got.$m" | cut -c1-400 | head -20
        fail "m_$m (${VIEW[$m]}): the records differ from the expected ones (< expected, > got)"
    fi
done
ok "m_all (NEW_AND_OLD_IMAGES): the $N_ALL records exactly, in commit order: types, Keys (FULL" \
    "and two-column keys too), OldImage only from FULL tables and of a changed key, the unchanged" \
    "TOASTed column left out on pg_dflt and taken from the old row on pg_full, TRUNCATE markers"
ok "m_new (NEW_IMAGE): the same records without OldImage"
ok "m_filt: only the INSERTs and the MODIFY to PAID of pg_orders (the other $N_FILTERED filtered out)"

# Four lanes: the same records without images, each item's in commit order.
per_key() { jq -r -c '"\(.a) \(.k | tojson)\t\(.)"' | awk -F'\t' '{ print $1 "\t" ++n[$1] "\t" $2 }' | sort; }
expected keys | per_key >"$T/want.keys"
project "$T/events.keys" | per_key >"$T/got.keys"
if ! cmp -s "$T/want.keys" "$T/got.keys"; then
    diff "$T/want.keys" "$T/got.keys" | head -20
    fail "m_keys (KEYS_ONLY, 4 lanes): the records per key differ from the expected ones"
fi
# (ddb_order_errors groups by Keys alone; here items of different tables share Keys.)
bad=$(jq -r '.Records[] | "\(.eventSourceARN) \(.dynamodb.Keys | tojson)\t\(.dynamodb.SequenceNumber)"' \
    "$T/events.keys" | awk -F'\t' '($1 in last) && !($2 "" > last[$1] "") { print; exit } { last[$1] = $2 }')
[[ -z $bad ]] || fail "m_keys: an item's SequenceNumbers not increasing as received: $bad"
ok "m_keys (KEYS_ONLY, parallelization_factor 4): the $N_ALL records with Keys only, each" \
    "item's in commit order"

# ---- every event as reference 4.4 has it -------------------------------------------------------
# An attribute value: one type member of the right JSON type, M and L recursively. Prints the
# line number of every event that breaks a rule.
cat >"$T/shape.jq" <<'JQ'
def attr: type == "object" and length == 1 and (
    (has("S") and (.S | type) == "string")
    or (has("N") and (.N | type) == "string" and (.N | test("^-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?$")))
    or (has("B") and (.B | type) == "string"
        and (.B | test("^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")))
    or (has("BOOL") and (.BOOL | type) == "boolean")
    or (has("NULL") and .NULL == true)
    or (has("M") and (.M | type) == "object" and all(.M[]; attr))
    or (has("L") and (.L | type) == "array" and all(.L[]; attr)));
def item: type == "object" and all(.[]; attr);
def bad_record: . as $r | (keys - ["eventID", "eventName", "eventVersion", "eventSource",
        "awsRegion", "dynamodb", "eventSourceARN", "userIdentity"]) != []
    or (.eventID | type) != "string" or (.eventID | test("^[0-9a-f]{32}$") | not)
    or (.eventName | IN("INSERT", "MODIFY", "REMOVE") | not)
    or .eventVersion != "1.1" or .eventSource != "aws:dynamodb" or .awsRegion != $region
    or (.eventSourceARN | type) != "string"
    or (.eventSourceARN | (startswith($arn) and endswith($slot)) | not)
    or (.dynamodb | type) != "object"
    or (.dynamodb | keys - ["ApproximateCreationDateTime", "Keys", "NewImage", "OldImage",
        "SequenceNumber", "SizeBytes", "StreamViewType"]) != []
    or (.dynamodb.ApproximateCreationDateTime | type) != "number"
    or .dynamodb.ApproximateCreationDateTime < $t0 or .dynamodb.ApproximateCreationDateTime > $t1
    or (.dynamodb.SizeBytes | type) != "number" or .dynamodb.SizeBytes <= 0
    or (.dynamodb.SequenceNumber | type) != "string"
    or (.dynamodb.SequenceNumber | test("^[0-9]{30}$") | not)
    or .dynamodb.StreamViewType != $view
    or (.dynamodb.Keys | item | not)
    or ((.dynamodb | has("NewImage")) and (.dynamodb.NewImage | item | not))
    or ((.dynamodb | has("OldImage")) and (.dynamodb.OldImage | item | not))
    or (.eventName == "INSERT" and (.dynamodb | has("OldImage")))
    or (.eventName == "REMOVE" and (.dynamodb | has("NewImage")))
    or (($view == "KEYS_ONLY" or $view == "OLD_IMAGE") and (.dynamodb | has("NewImage")))
    or (($view == "KEYS_ONLY" or $view == "NEW_IMAGE") and (.dynamodb | has("OldImage")))
    or (.eventName != "REMOVE" and ($view | test("NEW")) and (.dynamodb | has("NewImage") | not))
    or (has("userIdentity") and .userIdentity != {"type": "Service", "principalId": "weir.truncate"});
select(type != "object" or keys != ["Records"] or (.Records | type) != "array"
    or (.Records | length) == 0 or any(.Records[]; bad_record)) | input_line_number
JQ
for m in all new keys filt; do
    bad=$(jq --arg region "$REGION" --arg arn "$ARN_PREFIX/" --arg slot "/stream/${SLOT[$m]}" \
        --arg view "${VIEW[$m]}" --argjson t0 "$T0" --argjson t1 "$T1" -f "$T/shape.jq" \
        "$T/events.$m" | head -3)
    [[ -z $bad ]] || fail "m_$m: events at lines $(paste -sd" " <<<"$bad") of $T/events.$m are not shaped as" \
        "reference 4.4: $(sed -n "${bad%%$'\n'*}p" "$T/events.$m" | cut -c1-600)"
done
ok "every event as reference 4.4: members and their types, eventVersion 1.1, aws:dynamodb," \
    "awsRegion $REGION, the ARN of the table and slot, commit times within the workload, typed" \
    "attribute values, images per view type"

# SizeBytes: the bytes of Keys, NewImage and OldImage as written (docs/postgres.md).
bad=$(jq -c '.Records[] | .dynamodb | select(.SizeBytes != ("\"Keys\":\(.Keys | tojson)"
    + (if has("NewImage") then ",\"NewImage\":\(.NewImage | tojson)" else "" end)
    + (if has("OldImage") then ",\"OldImage\":\(.OldImage | tojson)" else "" end) | utf8bytelength))
    | {SequenceNumber, SizeBytes}' "$T"/events.* | head -3)
[[ -z $bad ]] || fail "SizeBytes is not the bytes of Keys and the images: $bad"
ok "SizeBytes: the bytes of the Keys and images as written"

# SequenceNumber: 20 digits of the commit's LSN, then 10 of the place in the transaction; strictly
# increasing in the order received on one lane; records of one transaction share the LSN and
# count 1, 2, ...; the LSN lies within the workload. eventID: the SequenceNumber in 32 hex digits.
jq -r '.Records[] | "\(.dynamodb.SequenceNumber) \(.eventID)"' "$T/events.all" >"$T/seq.all"
jq -r '.x' "$T/expected.raw" | paste -d' ' "$T/seq.all" - >"$T/seq.x"
bad=$(awk -v lo="$(pg_lsn_num "$LSN0")" -v hi="$(pg_lsn_num "$LSN_END")" '
    function hex(d,    q, r, i, c, out) { # a decimal string in 32 lowercase hex digits
        out = ""
        while (d != "" && d != "0") {
            q = ""; r = 0
            for (i = 1; i <= length(d); i++) {
                c = r * 10 + substr(d, i, 1)
                q = q int(c / 16); r = c % 16
            }
            sub(/^0+/, "", q); out = substr("0123456789abcdef", r + 1, 1) out; d = q
        }
        while (length(out) < 32) out = "0" out
        return out
    }
    {
        seq = $1; lsn = substr(seq, 1, 20); pos = substr(seq, 21) + 0
        if (NR > 1 && !(seq "" > last "")) { print "not increasing: " seq " after " last; exit }
        if ($2 != hex(seq)) { print "eventID " $2 " of " seq " is not " hex(seq); exit }
        if (lsn + 0 <= lo || lsn + 0 > hi) { print "LSN of " seq " outside " lo ".." hi; exit }
        if ($3 == lastx) {
            if (lsn != lastlsn || pos != lastpos + 1) { print "transaction " $3 ": " seq " after " last; exit }
        } else if (lsn == lastlsn || pos != 1) { print "transaction " $3 " starts with " seq " after " last; exit }
        last = seq; lastlsn = lsn; lastpos = pos; lastx = $3
    }' "$T/seq.x")
[[ -z $bad ]] || fail "m_all's SequenceNumbers: $bad"
for m in new keys filt; do
    dup=$(jq -r '.Records[].dynamodb.SequenceNumber' "$T/events.$m" | sort | uniq -d | head -1)
    [[ -z $dup ]] || fail "m_$m: SequenceNumber $dup given to two records"
done
[[ $(max_request_size "$T/rec.all") -le 7 && $(max_request_size "$T/rec.keys") -le 3 ]] ||
    fail "a batch larger than batch_size: m_all $(max_request_size "$T/rec.all"), m_keys" \
        "$(max_request_size "$T/rec.keys")"
ok "SequenceNumbers: the commit's LSN (within the workload) and the place in the transaction," \
    "strictly increasing as received, unique; eventIDs their hex; batches within batch_size"

# ---- the server's position, once everything read is done --------------------------------------
# docs/postgres.md: "When everything read is done, the server's own position (from its
# keepalives) is confirmed too". m_slow's function holds its one record 1.5 s; meanwhile a table
# in no publication is written, and the server tells weir its new position in a keepalive (weir
# reports it back as written). Once the record is done (the slot passes its commit) nothing is
# left: the slot must reach the server's position within 5 s, while the server writes nothing
# else. If it does write (its running-transactions record, every 15 s), a new keepalive comes and
# the check decides nothing: it is made again.
verdict=
for attempt in 1 2 3; do
    pg_sql "insert into pg_quiet values ($attempt)"
    wait_until '[[ $(count_records "$T/rec.slow") -ge '$attempt' ]]' 30 ||
        fail "m_slow's function never got record $attempt"
    commit=$(records "$T/rec.slow" | awk -F'\t' -v n=$attempt 'NR == n { print substr($1, 1, 20) + 0 }')
    pg_sql "insert into pg_other values ($attempt)"
    LQ=$(pg_current_lsn)
    wait_until '(($(pg_lsn_num "$(pg_slot_confirmed weir_m_slow)") > commit))' 30 ||
        fail "m_slow's record (commit at $commit) never confirmed"
    t_done=$(now)
    while true; do
        IFS=$'\t' read -r conf cur wrote < <(pg_sql "select s.confirmed_flush_lsn,
            pg_current_wal_lsn(), r.write_lsn from pg_replication_slots s
            left join pg_stat_replication r on r.pid = s.active_pid where s.slot_name = 'weir_m_slow'")
        if [[ $cur != "$LQ" ]]; then
            verdict=moved
        elif (($(pg_lsn_diff "$conf" "$LQ") >= 0)); then
            verdict=ok
        elif ! lt "$(since "$t_done")" 5; then
            verdict="the slot stays at $conf, the commit's end, 5 s after its record was done,"
            verdict+=" although weir reports the server's position $wrote as received and the server"
            verdict+=" wrote nothing since ($LQ)"
        fi
        [[ -z $verdict ]] || break
        sleep 0.1
    done
    [[ $verdict == moved ]] || break
    note "attempt $attempt: the server wrote WAL of its own meanwhile; again"
    verdict=
done
if [[ $verdict == ok ]]; then
    ok "m_slow: once its record is done, the slot is confirmed up to the server's position from" \
        "its keepalive ($LQ), within $(since "$t_done")s"
else
    bug "m_slow: ${verdict:-no attempt decided}"
fi

# ---- TRUNCATE on many lanes ------------------------------------------------------------------
# The marker says every item of the table is gone: a change to every item, so it must reach the
# function after every change to the table committed before it, whichever lane that change took
# ("changes to one item stay in order"). m_trunc spreads pg_trunc over 10 lanes, one record a
# batch, 20 ms a batch: twice, 100 rows inserted, then the table truncated.
for _ in 1 2; do
    pg_sql "insert into pg_trunc select g from generate_series(1, 100) g"
    pg_sql "truncate pg_trunc"
done
wait_until '[[ $(count_records "$T/rec.trunc") -ge 202 ]]' 60 ||
    fail "m_trunc: $(count_records "$T/rec.trunc") of 202 records received"
# Record lines: SequenceNumber, 0, "<eventName> <Keys> - -", ...; SequenceNumbers compare as
# strings of 30 digits.
late=$(records "$T/rec.trunc" | awk -F'\t' '
    $3 == "REMOVE {} - -" { markers++; last = $1; next }
    last != "" && $1 "" < last "" { n++; if (!first) first = $1 " " $3 " after the marker " last }
    END { if (markers != 2) print markers + 0 " markers"
          if (n) print n " records committed before a TRUNCATE delivered after its marker, e.g. " first }')
if [[ -n $late ]]; then
    bug "m_trunc (parallelization_factor 10): $late"
else
    ok "m_trunc (parallelization_factor 10): each TRUNCATE's marker after every change to the" \
        "table committed before it"
fi

[[ $(count_records "$T/rec.trunc") == 202 && $(count_records "$T/rec.slow") == "$attempt" ]] ||
    fail "m_trunc: $(count_records "$T/rec.trunc") deliveries of 202 records, m_slow:" \
        "$(count_records "$T/rec.slow") of $attempt"

# ---- the log ---------------------------------------------------------------------------------
# The view types that want old images warn once per table whose identity is not FULL, naming the
# fix; the others do not.
for w in "mapping/m_all: .*public.pg_dflt has REPLICA IDENTITY DEFAULT.*ALTER TABLE public.pg_dflt REPLICA IDENTITY FULL" \
    "mapping/m_all: .*public.pg_uidx has REPLICA IDENTITY USING INDEX.*ALTER TABLE public.pg_uidx REPLICA IDENTITY FULL" \
    "mapping/m_filt: .*public.pg_orders has REPLICA IDENTITY DEFAULT"; do
    [[ $(grep -c "^warn .*$w" "$WEIR_LOG") == 1 ]] || fail "not one warning '$w': $(grep -i identity "$WEIR_LOG")"
done
! grep -E "mapping/m_(new|keys): .*REPLICA IDENTITY" "$WEIR_LOG" ||
    fail "a mapping whose view type has no OldImage warned about the replica identity"
! grep -iE "REPLICA IDENTITY [A-Z]+.*(pg_full|pg_two)" "$WEIR_LOG" ||
    fail "a warning about a table with REPLICA IDENTITY FULL"
ok "one replica identity warning per DEFAULT / USING INDEX table, only where old images are wanted"
! grep -q '^error' "$WEIR_LOG" || fail "weir logged an error: $(grep -m1 '^error' "$WEIR_LOG")"

stop_weir
grep -qE "mapping/m_filt: stopped records_in=$((N_FILT + N_FILTERED)) .*filtered=$N_FILTERED( |$)" \
    "$WEIR_LOG" || fail "m_filt's counts: $(grep 'mapping/m_filt: stopped' "$WEIR_LOG")"
ok "m_filt counted $((N_FILT + N_FILTERED)) records in, $N_FILTERED filtered"

no_bugs
pass
