#!/usr/bin/env bash
# Every message reaches an exec function (event on stdin, result on stdout) exactly once.
source "$(dirname "$0")/lib.sh"

need "$FN_EXEC"
QUEUE=deliver_exec
start_redis

cat >"$T/weir.yaml" <<YAML
functions:
  - name: local
    command: ["$FN_EXEC"]
    timeout: 10
mappings:
  - name: deliver
    source: redis://127.0.0.1:$REDIS_PORT/0/$QUEUE
    function: local
    batch_size: 10
    maximum_batching_window_in_seconds: 0
    visibility_timeout: 30
YAML

push 200 x
# The command inherits weir's environment: that is how fn_exec learns where to record.
FN_RECORD=$T/rec FN_MODE=ok start_weir "$T/weir.yaml"

wait_until '[[ $(count_unique_bodies "$T/rec") -ge 200 ]]' 60 ||
    fail "$(count_unique_bodies "$T/rec") of 200 bodies received"
expect_all_bodies 200 x "$T/rec"
ok "all 200 bodies received by the command"

wait_until nothing_left 20 ||
    fail "left behind: LLEN=$(llen "$QUEUE") inflight=$(inflight "$QUEUE")"
ok "queue and inflight empty"

[[ $(count_records "$T/rec") == 200 ]] ||
    fail "$(count_records "$T/rec") records for 200 bodies (duplicates: $(count_duplicate_bodies "$T/rec"))"
ok "each body received exactly once"

max=$(max_request_size "$T/rec")
[[ $max -le 10 ]] || fail "an invocation carried $max records (batch_size 10)"
ok "largest invocation: $max records; $(count_requests "$T/rec") command runs"

stop_weir
pass
