#!/usr/bin/env bash
# SIGTERM while kept-alive clients keep invoking (RequestResponse to a slow function at its
# concurrency limit, and Events): weir stops taking requests, answers or refuses (503) each one,
# finishes what it started, and exits 0 within the shutdown bound, with nothing leaked or used
# after it was freed (the sanitizer build fails on either). Every event it answered 202 for is
# delivered after a restart.
source "$(dirname "$0")/lib.sh"

start_fn_http --record "$T/rec_slow" --delay-ms 200 --any-event
SLOW_URL=$FN_URL
start_fn_http --record "$T/rec" --any-event

cat >"$T/weir.yaml" <<YAML
functions:
  - name: slow
    url: $SLOW_URL
    timeout: 3
    reserved_concurrency: 4
  - name: fast
    url: $FN_URL
api: {listen: 127.0.0.1:0}
state_dir: $T/state
YAML
start_weir "$T/weir.yaml"
api_port
need "$INVOKE_LOAD"

"$INVOKE_LOAD" --port "$API_PORT" --function slow --count 3000 --prefix sync --concurrency 4 \
    --type RequestResponse >"$T/load.sync" 2>&1 &
SYNC=$!
_register "$SYNC" invoke_load
"$INVOKE_LOAD" --port "$API_PORT" --function fast --count 20000 --prefix ev --concurrency 8 \
    --accepted "$T/accepted" >"$T/load.ev" 2>&1 &
EV=$!
_register "$EV" invoke_load

wait_until '[[ $(count_records "$T/rec_slow") -ge 4 && $(count_records "$T/rec") -ge 100 ]]' 60 ||
    fail "the functions got nothing"
stop_weir "$WEIR_PID" 10
ok "weir exited 0 in ${STOP_SECS}s with clients still sending"
wait "$SYNC" || true
wait "$EV" || true
note "RequestResponse: $(tail -1 "$T/load.sync")"
sync_ok=$(sed -n 's/^accepted=\([0-9]*\) .*/\1/p' "$T/load.sync")
[[ $sync_ok -ge 4 && $sync_ok -lt 3000 ]] ||
    fail "$sync_ok RequestResponse calls answered 200: the stop did not come while they ran"
note "Event: $(tail -1 "$T/load.ev")"
! grep -q 'shutdown did not complete' "$WEIR_LOG" || fail "weir gave up on its shutdown"
accepted=$(wc -l <"$T/accepted")
[[ $accepted -gt 0 && $accepted -lt 20000 ]] || fail "$accepted events accepted: the stop came too late"

start_weir "$T/weir.yaml"
api_port # running (and stoppable) before anything is checked: the first may have delivered all
wait_until '[[ $(comm -23 <(sort -u "$T/accepted") <(records "$T/rec" | cut -f1 | sort -u) | wc -l) == 0 ]]' 120 ||
    fail "accepted events never delivered: $(comm -23 <(sort -u "$T/accepted") \
        <(records "$T/rec" | cut -f1 | sort -u) | wc -l)"
ok "all $accepted accepted events delivered after the restart"
stop_weir
pass
