#!/usr/bin/env bash
# `weir check` names every configuration error as file:line:col with the rule broken and exits
# 2; a valid file passes with exit 0; `weir run` refuses a bad file before starting anything.
source "$(dirname "$0")/lib.sh"

start_redis

# A valid configuration, one setting a line, so errors have known positions:
#   line 4: timeout (value at col 14); line 9: batch_size (key col 5, value col 17);
#   line 11: visibility_timeout (key col 5, value col 25).
base() {
    cat <<YAML
functions:
  - name: fn
    url: http://127.0.0.1:9
    timeout: 3
mappings:
  - name: orders
    source: redis://127.0.0.1:$REDIS_PORT/0/orders
    function: fn
    batch_size: 10
    maximum_batching_window_in_seconds: 0
    visibility_timeout: 30
YAML
}



config_variant syntax 4 "    timeout: 3: 4"
config_expect_error syntax 4 15 "mapping values are not allowed"

config_variant unknown_key 9 "    batchsize: 10"
config_expect_error unknown_key 9 5 "unknown key 'batchsize'"

config_variant wrong_type 9 "    batch_size: ten"
config_expect_error wrong_type 9 17 "batch_size" "must be an integer"

config_variant out_of_range 11 "    visibility_timeout: 50000"
config_expect_error out_of_range 11 25 "visibility_timeout" "50000" "out of range" "43200"

config_variant big_batch_no_window 9 "    batch_size: 11"
config_expect_error big_batch_no_window 9 "5|17" "batch_size 11" "maximum_batching_window_in_seconds"

config_variant timeout_over_visibility 4 "    timeout: 60"
config_expect_error timeout_over_visibility 11 "5|25" "visibility_timeout" "'fn'" "60"

# Every error is reported, not only the first, in file order.
base | awk 'NR == 4 { print "    timeout: 0"; next } NR == 9 { print "    batchsize: 10"; next }
    { print }' >"$T/two_errors.yaml"
config_check two_errors
[[ $RC == 2 ]] || fail "two_errors: weir check exited $RC; output: $OUT"
lines=$(grep -cE "^$T/two_errors.yaml:[0-9]+:[0-9]+: " <<<"$OUT" || true)
[[ $lines == 2 ]] || fail "two_errors: $lines error lines, expected 2; output: $OUT"
first=$(grep -E "^$T/two_errors.yaml:" <<<"$OUT" | head -n 1)
[[ $first == "$T/two_errors.yaml:4:"* ]] || fail "two_errors: errors not in file order: $OUT"
ok "two_errors: both errors reported (lines 4 and 9)"

# A file that cannot be read.
RC=0
OUT=$("$WEIR" check -c "$T/absent.yaml" 2>&1) || RC=$?
[[ $RC == 2 ]] || fail "absent file: weir check exited $RC, expected 2; output: $OUT"
grep -qF "$T/absent.yaml" <<<"$OUT" || fail "absent file: the error does not name the file: $OUT"
ok "absent file: exit 2, named"

# Valid files pass, in YAML and in JSON.
base >"$T/valid.yaml"
config_check valid
[[ $RC == 0 ]] || fail "valid: weir check exited $RC; output: $OUT"
grep -qi ok <<<"$OUT" || fail "valid: no OK line; output: $OUT"
ok "valid YAML: exit 0: $OUT"
cat >"$T/valid_json.yaml" <<JSON
{"functions": [{"name": "fn", "url": "http://127.0.0.1:9", "timeout": 3}],
 "mappings": [{"name": "orders", "source": "redis://127.0.0.1:$REDIS_PORT/0/orders",
               "function": "fn", "batch_size": 10, "visibility_timeout": 30}]}
JSON
config_check valid_json
[[ $RC == 0 ]] || fail "valid JSON: weir check exited $RC; output: $OUT"
ok "valid JSON: exit 0"

# `weir run` on a bad file exits 2 and never connects to the source.
before=$(rcli INFO stats | awk -F: '/^total_connections_received/ { print $2 + 0 }')
RC=0
# It exits at once; the timeout only stops a weir that ran instead of refusing (exit 124 then).
timeout "$HANG_SECS" "$WEIR" run -c "$T/timeout_over_visibility.yaml" >"$T/run.log" 2>&1 || RC=$?
after=$(rcli INFO stats | awk -F: '/^total_connections_received/ { print $2 + 0 }')
[[ $RC == 2 ]] || fail "weir run on a bad config exited $RC, expected 2: $(cat "$T/run.log")"
grep -qE "^$T/timeout_over_visibility.yaml:11:" "$T/run.log" ||
    fail "weir run did not print the error: $(cat "$T/run.log")"
# The only connection between the two readings is the first INFO itself.
[[ $((after - before)) == 1 ]] || fail "weir run connected to redis ($((after - before - 1)) connections)"
ok "weir run on a bad config: exit 2, error printed, no connection made"

pass
