#!/usr/bin/env bash
# Try weir in one command: builds it (scripts/setup.sh), starts a private redis-server on a free
# loopback port, writes a config from examples/quickstart.yaml, pushes a few messages, and runs
# `weir run` in the foreground. Ctrl-C stops weir; the script then stops redis and cleans up.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

if [[ -t 1 ]]; then
    say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
else
    say() { printf '\n==> %s\n' "$*"; }
fi

say "Installing what is missing and building weir into build/ (this takes a minute the first time)"
bash scripts/setup.sh

WORK=$(mktemp -d "${TMPDIR:-/tmp}/weir-quickstart.XXXXXX")
REDIS_PID=

cleanup() {
    if [[ -n $REDIS_PID ]] && kill -0 "$REDIS_PID" 2>/dev/null; then
        say "Stopping the private redis-server (pid $REDIS_PID) and removing $WORK"
        kill -TERM "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "Starting a private redis-server on a free loopback port (its files in $WORK)"
PORT=
for attempt in $(seq 30); do
    p=$((20000 + RANDOM % 12000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue # something listens there
    # Its own session, so the Ctrl-C meant for weir does not stop redis before the summary.
    setsid redis-server --port "$p" --bind 127.0.0.1 --dir "$WORK" --save "" --appendonly no \
        --daemonize no --logfile "$WORK/redis.log" </dev/null >/dev/null 2>&1 &
    REDIS_PID=$!
    for i in $(seq 50); do
        kill -0 "$REDIS_PID" 2>/dev/null || break
        if [[ $(redis-cli -p "$p" PING 2>/dev/null) == PONG ]]; then
            PORT=$p
            break 2
        fi
        sleep 0.1
    done
    kill "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
    REDIS_PID=
done
[[ -n $PORT ]] || { echo "could not start redis-server: see $WORK/redis.log" >&2; exit 1; }
echo "redis-server pid $REDIS_PID listening on 127.0.0.1:$PORT"

say "Writing the configuration $WORK/weir.yaml from examples/quickstart.yaml"
sed -e "s|@REDIS_PORT@|$PORT|g" -e "s|@FUNCTION@|$ROOT/examples/function.sh|g" \
    examples/quickstart.yaml >"$WORK/weir.yaml"
grep -v '^\s*#' "$WORK/weir.yaml" | sed '/^$/d'
build/weir check -c "$WORK/weir.yaml"

say "Pushing 5 messages onto the list 'orders' (a producer only needs RPUSH)"
for body in '{"order": 1, "item": "coffee"}' '{"order": 2, "item": "tea"}' \
    '{"order": 3, "item": "cake"}' '{"order": 4, "item": "scone"}' \
    'this message will fail: it is retried, then moved to orders-dlq'; do
    redis-cli -p "$PORT" RPUSH orders "$body" >/dev/null
    echo "  RPUSH orders '$body'"
done

say "Running weir (Ctrl-C to stop)"
cat <<TXT
weir claims the messages, batches them (up to 10, or 1 s), and runs examples/function.sh with
the batch as an SQS event on stdin. The function prints a line per message; the message whose
body contains "fail" is reported failed, comes back every 5 s, and after 3 receives lands in
the list orders-dlq. Push more from another terminal:
  redis-cli -p $PORT RPUSH orders 'hello weir'
  redis-cli -p $PORT LRANGE orders-dlq 0 -1

TXT
# weir handles Ctrl-C itself (it stops cleanly); the script carries on to report and clean up.
trap true INT
rc=0
build/weir run -c "$WORK/weir.yaml" || rc=$?
say "weir exited with status $rc"
echo "left in orders: $(redis-cli -p "$PORT" LLEN orders), in orders-dlq: $(redis-cli -p "$PORT" LLEN orders-dlq)"
exit "$rc"
