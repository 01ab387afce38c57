#!/usr/bin/env bash
# Try weir in one command, with no server: builds it (scripts/setup.sh), makes a bucket directory
# ./quickstart/photos, writes a config from examples/quickstart.yaml (the bucket, a thumbnail
# function, its asynchronous queue in SQLite), drops a sample photo in, and runs `weir run` in the
# foreground. Photos copied into quickstart/photos get thumbnails in quickstart/thumbnails.
# Ctrl-C stops weir.
#   scripts/quickstart.sh [--dir DIR]   the bucket example (DIR default: ./quickstart)
#   scripts/quickstart.sh --redis       the Redis list (SQS) example: a private redis-server
#   --weir PATH                          use this weir binary, without installing or building
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

if [[ -t 1 ]]; then
    say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
else
    say() { printf '\n==> %s\n' "$*"; }
fi

EXAMPLE=bucket
DIR=$ROOT/quickstart
WEIR=
while (($#)); do
    case $1 in
    --redis) EXAMPLE=redis ;;
    --dir)
        DIR=$(realpath -m "${2:?--dir needs a directory}")
        shift
        ;;
    --weir)
        WEIR=$(realpath "${2:?--weir needs a path}")
        shift
        ;;
    *)
        echo "usage: $0 [--dir DIR | --redis] [--weir PATH]" >&2
        exit 2
        ;;
    esac
    shift
done

if [[ -z $WEIR ]]; then
    say "Installing what is missing and building weir into build/ (this takes a minute the first time)"
    bash scripts/setup.sh
    WEIR=$ROOT/build/weir
fi

if [[ $EXAMPLE == bucket ]]; then
    # The paths go into YAML (single-quoted) through sed: keep to what both take as it is.
    for path in "$DIR" "$ROOT"; do
        if [[ ! $path =~ ^[A-Za-z0-9/._\ +-]+$ ]]; then
            echo "quickstart.sh: '$path': use a directory whose path has only letters, digits," >&2
            echo "spaces and / . _ + -" >&2
            exit 2
        fi
    done
    say "Making the bucket $DIR/photos (thumbnails go to $DIR/thumbnails)"
    mkdir -p "$DIR/photos" "$DIR/thumbnails"
    sed -e "s|@DIR@|$DIR|g" -e "s|@EXAMPLES@|$ROOT/examples|g" examples/quickstart.yaml \
        >"$DIR/weir.yaml"
    grep -v '^\s*#' "$DIR/weir.yaml" | sed -e 's/ *#.*//' -e '/^\s*$/d'
    "$WEIR" check -c "$DIR/weir.yaml"
    # A sample photo: a gradient, made with libvips (no image is kept in the repository).
    if [[ ! -e $DIR/sample.jpg ]]; then
        vips grey "$DIR/.sample.v" 1200 800
        vips linear "$DIR/.sample.v" "$DIR/sample.jpg" 255 0 --uchar
        rm -f "$DIR/.sample.v"
    fi
    cp "$DIR/sample.jpg" "$DIR/photos/welcome.jpg"
    say "Running weir (Ctrl-C to stop)"
    q() { printf '%q' "$1"; }
    cat <<TXT
weir watches $DIR/photos as the S3 bucket "photos": every .jpg closed there becomes an
ObjectCreated:Put event in the function's asynchronous queue, and examples/thumbnail.sh makes
its thumbnail. welcome.jpg is there already. From another terminal:
  cp $(q "$DIR/sample.jpg") $(q "$DIR/photos/mine.jpg")
  ls $(q "$DIR/thumbnails")
A file that is no image fails: it is retried after 5 s, then its record lands in $(q "$DIR/failed"):
  echo 'not a photo' > $(q "$DIR/photos/broken.jpg")

TXT
    trap true INT
    rc=0
    "$WEIR" run -c "$DIR/weir.yaml" || rc=$?
    say "weir exited with status $rc"
    echo "thumbnails: $(find "$DIR/thumbnails" -type f | wc -l), failure records: $(find "$DIR/failed" -type f 2>/dev/null | wc -l)"
    exit "$rc"
fi

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

say "Writing the configuration $WORK/weir.yaml from examples/quickstart-redis.yaml"
sed -e "s|@REDIS_PORT@|$PORT|g" -e "s|@FUNCTION@|$ROOT/examples/function.sh|g" \
    examples/quickstart-redis.yaml >"$WORK/weir.yaml"
grep -v '^\s*#' "$WORK/weir.yaml" | sed '/^$/d'
"$WEIR" check -c "$WORK/weir.yaml"

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
"$WEIR" run -c "$WORK/weir.yaml" || rc=$?
say "weir exited with status $rc"
echo "left in orders: $(redis-cli -p "$PORT" LLEN orders), in orders-dlq: $(redis-cli -p "$PORT" LLEN orders-dlq)"
exit "$rc"
