#!/usr/bin/env bash
# A function that answers nonsense (garbage instead of a batch response) or a huge error body:
# nothing is lost (messages come back, and past max_receive_count land in the dead-letter list
# intact), weir keeps running, and its log names the function and the reason.
source "$(dirname "$0")/lib.sh"

start_redis
start_fn_http --record "$T/garbage.rec" --mode garbage
URL_GARBAGE=$FN_URL
start_fn_http --record "$T/bigerr.rec" --mode big-error
URL_BIGERR=$FN_URL

mapping() {
    cat <<YAML
  - name: $1
    source: redis://127.0.0.1:$REDIS_PORT/0/$1_q
    function: $2
    batch_size: 5
    maximum_batching_window_in_seconds: 0
    function_response_types: [ReportBatchItemFailures]
    visibility_timeout: 1
    redrive_policy: {max_receive_count: 2, dead_letter_target: $1_dlq}
YAML
}
{
    cat <<YAML
functions:
  - name: garbled
    url: $URL_GARBAGE
    timeout: 1
  - name: shouty
    url: $URL_BIGERR
    timeout: 1
mappings:
YAML
    mapping garbage garbled
    mapping bigerr shouty
} >"$T/weir.yaml"

start_weir "$T/weir.yaml"
push 20 g garbage_q
push 20 b bigerr_q

for m in garbage bigerr; do
    wait_until '[[ $(llen '"$m"'_dlq) -ge 20 ]]' 60 ||
        fail "$m: $(llen "${m}_dlq") of 20 messages in the dead-letter list"
    wait_until 'nothing_left '"$m"'_q' 20 ||
        fail "$m: left behind: LLEN=$(llen "${m}_q") inflight=$(inflight "${m}_q")"
    ok "$m: all 20 messages in ${m}_dlq, queue and inflight empty"
done
sleep 1.5
for m in garbage bigerr; do
    p=${m:0:1}
    n=$(llen "${m}_dlq")
    [[ $n == 20 ]] || fail "$m: ${m}_dlq holds $n entries, expected 20"
    got=$(rcli LRANGE "${m}_dlq" 0 -1 | jq -r .body | sort)
    [[ $got == "$(bodies 20 "$p" | sort)" ]] || fail "$m: DLQ bodies differ from what was pushed"
    ok "$m: every DLQ entry carries its original body"
    per=$(records "$T/$m.rec" | cut -f3 | sort | uniq -c | awk '{ print $1 }' | sort -u | tr '\n' ' ')
    [[ $per == "2 " ]] || fail "$m: times each message was received: $per (expected 2)"
    ok "$m: each message received exactly twice before the redrive"
done

check_weirs_alive
line=$(grep -E 'function/garbled' "$WEIR_LOG" | grep -E 'mapping=garbage' | grep -i -m1 'json' || true)
[[ -n $line ]] || fail "no log line names function garbled and the unreadable response"
ok "logged: $line"
line=$(grep -E 'function/shouty' "$WEIR_LOG" | grep -E 'mapping=bigerr' | grep -i -m1 'error' || true)
[[ -n $line ]] || fail "no log line names function shouty and its error"
[[ ${#line} -le 2000 ]] || fail "a function error filled a ${#line}-character log line"
ok "logged: ${line:0:300}"

stop_weir
pass
