#!/usr/bin/env bash
# An accepted event is never lost: weir is killed with SIGKILL twice — once while events are
# still being posted to the Invoke API and invoked, once with more than 5000 waiting in the
# queue — and restarted; every event the API answered 202 for reaches the function.
source "$(dirname "$0")/lib.sh"

# A slow function, so that a backlog builds up in the queue.
start_fn_http --record "$T/rec" --delay-ms 1 --any-event

cat >"$T/weir.yaml" <<YAML
functions:
  - name: worker
    url: $FN_URL
    reserved_concurrency: 4
api: {listen: 127.0.0.1:0}
state_dir: $T/state
YAML

# waiting: events in the store right now (weir's own table, read with the sqlite3 CLI).
waiting() { sqlite3 "$T/state/weir.db" 'SELECT count(*) FROM async_events' 2>/dev/null || echo '?'; }
delivered() { records "$T/rec" | cut -f1 | sort -u | wc -l; }

start_weir "$T/weir.yaml"
api_port
need "$INVOKE_LOAD"
# Posting while weir is killed: the events answered 202 are the ones owed.
"$INVOKE_LOAD" --port "$API_PORT" --function worker --count 20000 --prefix a --concurrency 2 \
    --accepted "$T/accepted.a" >"$T/load.a" 2>&1 &
LOAD=$!
_register "$LOAD" invoke_load
wait_until '[[ $(count_records "$T/rec") -ge 300 ]]' 60 || fail "nothing invoked"
kill9_weir
note "killed while posting: $(count_records "$T/rec") records delivered, $(waiting) events waiting"
wait "$LOAD" || true
note "first load: $(tail -1 "$T/load.a")"
accepted_a=$(wc -l <"$T/accepted.a")
[[ $accepted_a -ge 300 && $accepted_a -lt 20000 ]] ||
    fail "$accepted_a of 20000 events accepted: the kill did not come while posting"

# The function is stopped (SIGSTOP) while the next 8000 are posted: weir holds at most its 4
# invocations open and every other event waits in the queue, however fast this machine posts
# compared with how fast the function answers.
kill -STOP "$FN_PID"
start_weir "$T/weir.yaml"
api_port
post_events worker 8000 b 8
# Killed again with more than 5000 of them waiting in the queue.
left=$(waiting)
kill9_weir
kill -CONT "$FN_PID"
note "killed with $left events waiting in the queue"
[[ $left != '?' && $left -ge 5000 ]] || fail "the second kill found only $left events waiting"

start_weir "$T/weir.yaml"
owed=$((accepted_a + 8000))
wait_until '[[ $(delivered) -ge $owed ]]' 180 || true
missing=$(comm -23 <(sort -u "$T/accepted.a" <(bodies 8000 b)) \
    <(records "$T/rec" | cut -f1 | sort -u) | wc -l)
[[ $missing == 0 ]] || fail "$missing accepted events never reached the function"
ok "all $owed accepted events delivered ($(count_records "$T/rec") deliveries, duplicates from the kills allowed)"
wait_until '[[ $(waiting) == 0 ]]' 60 || fail "$(waiting) events left in the store"
ok "the store is empty"

stop_weir
pass
