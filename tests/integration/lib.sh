# Integration test harness: every tests/integration/t_*.sh sources this file.
# It owns the servers a test starts (redis-server, kafka_broker, postgres, fn_http, weir), their
# temp dir, and the cleanup that stops them; it must never touch a server or a file it did not
# create.
#
# Environment:
#   WEIR_BUILD_DIR   build dir whose weir, fn_http, fn_exec and kafka_broker are used
#                    (default: <repo>/build)
#   WEIR_SOURCE_DIR  the repository (default: two levels above this file)
#   WEIR_LOG_LEVEL   level passed to `weir run` (default: info)
#   WEIR_KEEP_TMP=1  keep the test's temp dir even when it passes
#   WEIR_TEST_PIDS   a directory where every started process is registered, so that
#                    scripts/test.sh can stop what a killed test left behind

set -Eeuo pipefail
# Decimal points in $EPOCHREALTIME, byte-wise sort and awk lengths, whatever the caller's locale.
export LC_ALL=C

WEIR_SOURCE_DIR=${WEIR_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
WEIR_BUILD_DIR=${WEIR_BUILD_DIR:-$WEIR_SOURCE_DIR/build}
WEIR=$WEIR_BUILD_DIR/weir
FN_HTTP=$WEIR_BUILD_DIR/fn_http
FN_EXEC=$WEIR_BUILD_DIR/fn_exec
TEST_NAME=$(basename "$0" .sh)

T=$(mktemp -d "${TMPDIR:-/tmp}/weir-$TEST_NAME.XXXXXX")
T_START=$EPOCHREALTIME

declare -a _PIDS=()      # every process this test started, for cleanup
declare -A _WEIRS=()     # weir pid -> its log, for the ones expected to be running
declare -a _LOGS=()      # logs to show when the test fails
declare -a _FNS=()       # fn_http pids, stopped and checked by pass
_FAILED=0
_PASSED=0
_N_WEIR=0
_N_FN=0

REDIS_PORT=
REDIS_PID=
REDIS_DIR=
FN_PORT=
FN_PID=
FN_URL=
WEIR_PID=
WEIR_LOG=
KAFKA_BROKER=$WEIR_BUILD_DIR/kafka_broker
KAFKA_BOOTSTRAP=
KAFKA_PID=
KAFKA_LOG=
_N_KAFKA=0

# need FILE...: the programs a test uses must have been built.
need() {
    local bin
    for bin in "$@"; do
        if [[ ! -x $bin ]]; then
            echo "FAIL: $TEST_NAME: $bin is missing (build first: cmake --build $WEIR_BUILD_DIR)"
            exit 1
        fi
    done
}
need "$WEIR"

# ---- reporting -----------------------------------------------------------------------------

now() { printf '%s' "$EPOCHREALTIME"; }

# Seconds (with decimals) since the given $EPOCHREALTIME value.
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }

# True when the decimal number $1 is less than $2.
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

# deadline SECS: the $EPOCHREALTIME value SECS seconds from now (compare with lt).
deadline() { awk -v t="$EPOCHREALTIME" -v d="$1" 'BEGIN { printf "%.3f", t + d }'; }

# How long a process the test started (redis-server, fn_http, weir) may take to start or to stop
# before the test calls it hung. Normally well under a second; the margin is for a busy machine
# and the sanitizer build, so that only a real hang fails a test here.
HANG_SECS=30

note() { echo "  .. $*"; }

# One checked statement: printed when it holds.
ok() { echo "  ok $*"; }

# Fails the test with a message, showing the end of every log the test produced.
fail() {
    _FAILED=1
    echo "FAIL: $TEST_NAME: $*"
    local f
    for f in "${_LOGS[@]}"; do
        [[ -s $f ]] || continue
        echo "---- last lines of $f"
        if [[ $f == *redis.log ]]; then tail -n 10 "$f"; else tail -n 60 "$f"; fi
    done
    echo "---- temp dir kept: $T"
    exit 1
}

# What a sanitizer report looks like in a process' stderr.
SANITIZER_REPORT='[0-9]+:[0-9]+: runtime error: |ERROR: [A-Za-z]+Sanitizer|SUMMARY: [A-Za-z]+Sanitizer'

# Ends a passing test. Every weir still running must exit 0 on SIGTERM (stop_weir) and every
# fn_http and kafka_broker too, and postgres on a fast shutdown: under the sanitizers a report
# makes that status non-zero, so a report from a process the test did not stop itself fails the
# test as well. Then no log may hold a sanitizer report: a process whose exit status nobody
# checks (fn_exec, run by weir, writes to weir's log) may have written one, and UBSan always
# writes to stderr (GCC's libubsan is a runtime of its own, which ignores UBSAN_OPTIONS'
# log_path).
pass() {
    local pid f
    for pid in "${!_WEIRS[@]}"; do
        stop_weir "$pid"
    done
    for pid in "${_FNS[@]}"; do
        _stop_checked "$pid" fn_http
    done
    if [[ -n $KAFKA_PID ]]; then
        stop_kafka
    fi
    if [[ -n $PG_PID ]]; then
        pg_stop fast
    fi
    for f in "${_LOGS[@]}"; do
        if [[ -f $f ]] && grep -qE "$SANITIZER_REPORT" "$f"; then
            fail "sanitizer report in $f: $(grep -m1 -E "$SANITIZER_REPORT" "$f")"
        fi
    done
    _PASSED=1
    echo "PASS: $TEST_NAME ($(since "$T_START") s)"
    exit 0
}

_on_err() {
    local rc=$? line=$1 cmd=$2
    [[ $_FAILED == 1 ]] && return
    fail "command failed (rc=$rc) at line $line: $cmd"
}
trap '_on_err "$LINENO" "$BASH_COMMAND"' ERR

# ---- process bookkeeping -------------------------------------------------------------------

_register() {
    local pid=$1 name=$2
    _PIDS+=("$pid")
    if [[ -n ${WEIR_TEST_PIDS:-} && -d ${WEIR_TEST_PIDS:-} ]]; then
        printf '%s %s\n' "$pid" "$name" >>"$WEIR_TEST_PIDS/$TEST_NAME.$$"
    fi
}

# The test script itself comes first in that list: if ctest dies and leaves it running, SIGTERM
# to it runs the cleanup below, which stops what it started.
if [[ -n ${WEIR_TEST_PIDS:-} && -d ${WEIR_TEST_PIDS:-} ]]; then
    printf '%s %s\n' "$$" "$(cat /proc/$$/comm)" >>"$WEIR_TEST_PIDS/$TEST_NAME.$$"
fi

# True while pid is a live process (a zombie child that has not been waited for counts as dead).
alive() {
    local st
    st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $st && $st != Z && $st != X ]]
}

# Waits up to $2 seconds for pid $1 to end. Returns 0 when it ended.
_wait_gone() {
    local pid=$1 end
    end=$(deadline "$2")
    while alive "$pid"; do
        lt "$EPOCHREALTIME" "$end" || return 1
        sleep 0.05
    done
    return 0
}

_cleanup() {
    local rc=$? pid
    trap - ERR
    set +e
    # Only pass ends a test with status 0: an early `exit 0` or falling off the end is a failure.
    if [[ $rc == 0 && $_PASSED != 1 ]]; then
        echo "FAIL: $TEST_NAME: ended with status 0 without reaching pass"
        rc=1
        _FAILED=1
    fi
    for pid in "${_PIDS[@]}"; do
        alive "$pid" && kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${_PIDS[@]}"; do
        if ! _wait_gone "$pid" 5; then
            kill -KILL "$pid" 2>/dev/null
            _wait_gone "$pid" 5
        fi
        wait "$pid" 2>/dev/null
    done
    _pg_cleanup "$rc"
    if [[ -n ${WEIR_TEST_PIDS:-} ]]; then
        rm -f "$WEIR_TEST_PIDS/$TEST_NAME.$$"
    fi
    if [[ $rc == 0 && $_FAILED == 0 && ${WEIR_KEEP_TMP:-0} != 1 ]]; then
        rm -rf "$T"
        [[ -n $_SHM ]] && rm -rf "$_SHM"
    elif [[ -n $_SHM && $_SHM != "$T"/* ]]; then
        echo "---- tmpfs dir kept: $_SHM"
    fi
    rmdir "$T" 2>/dev/null # nothing in it to look at
    exit "$rc"
}
trap _cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# ---- polling -------------------------------------------------------------------------------

# wait_until CMD TIMEOUT: evaluates CMD until it succeeds; returns 1 after TIMEOUT seconds.
# A weir that was expected to run and exited fails the test at once, naming its exit code.
# Wait on the condition with this rather than sleeping and then asserting it: TIMEOUT is only a
# hang detector, so make it generous (many times what a loaded machine needs); a test that
# measures time takes the time it returned at (since) and checks that.
wait_until() {
    local cmd=$1 timeout=$2 end
    end=$(deadline "$timeout")
    while true; do
        if eval "$cmd"; then
            return 0
        fi
        check_weirs_alive
        lt "$EPOCHREALTIME" "$end" || return 1
        sleep 0.1
    done
}

# ---- redis ---------------------------------------------------------------------------------

# True when something accepts connections on 127.0.0.1:$1.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }

_redis_launch() {
    local port=$1
    redis-server --port "$port" --bind 127.0.0.1 --dir "$REDIS_DIR" \
        --save "" --appendonly yes --appendfsync always \
        --daemonize no --logfile "$REDIS_DIR/redis.log" \
        </dev/null >/dev/null 2>&1 &
    REDIS_PID=$!
    _register "$REDIS_PID" redis-server
    local end
    end=$(deadline "$HANG_SECS")
    while lt "$EPOCHREALTIME" "$end"; do
        if ! alive "$REDIS_PID"; then
            wait "$REDIS_PID" 2>/dev/null || true
            return 1
        fi
        # The server answering must be ours: another may have taken the port since the probe.
        local info
        info=$(redis-cli -h 127.0.0.1 -p "$port" INFO server 2>/dev/null) || info=
        if [[ $info == *$'\n'"process_id:$REDIS_PID"$'\r'* ]] &&
            [[ $(redis-cli -h 127.0.0.1 -p "$port" PING 2>/dev/null) == PONG ]]; then
            REDIS_PORT=$port
            return 0
        fi
        sleep 0.05
    done
    kill -KILL "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
    return 1
}

# Starts a loopback redis-server on a free port with its data in the test's temp dir. AOF with
# fsync on every write, so that restart_redis keeps every acknowledged write.
start_redis() {
    REDIS_DIR=$T/redis
    mkdir -p "$REDIS_DIR"
    _LOGS+=("$REDIS_DIR/redis.log")
    local attempt port
    for ((attempt = 0; attempt < 30; attempt++)); do
        port=$((20000 + RANDOM % 12000))
        port_busy "$port" && continue
        if _redis_launch "$port"; then
            note "redis-server pid $REDIS_PID on 127.0.0.1:$REDIS_PORT"
            return 0
        fi
    done
    fail "could not start redis-server on a free port"
}

# Shuts redis down cleanly and starts it again on the same port and directory.
# $1: seconds to stay down (default 1), so clients see the connection refused.
restart_redis() {
    local down=${1:-1} old=$REDIS_PID
    rcli SHUTDOWN >/dev/null 2>&1 || true
    _wait_gone "$old" "$HANG_SECS" || fail "redis-server $old did not stop on SHUTDOWN"
    wait "$old" 2>/dev/null || true
    note "redis-server stopped; down for ${down}s"
    sleep "$down"
    local attempt
    for ((attempt = 0; attempt < 20; attempt++)); do
        if _redis_launch "$REDIS_PORT"; then
            note "redis-server restarted, pid $REDIS_PID on 127.0.0.1:$REDIS_PORT"
            return 0
        fi
        sleep 0.25
    done
    fail "could not restart redis-server on port $REDIS_PORT"
}

# push_lines [KEY]: RPUSHes every line of stdin, as one body each, onto KEY (default $QUEUE),
# in one redis-cli --pipe stream.
push_lines() {
    local key=${1:-$QUEUE} out n
    # LC_ALL=C: RESP lengths are bytes, not characters.
    out=$(LC_ALL=C awk -v k="$key" -v cnt="$T/.push.n" '{
        printf "*3\r\n$5\r\nRPUSH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length($0), $0
        n++
    } END { print n + 0 > cnt }' |
        redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --pipe 2>&1) || fail "redis-cli --pipe failed: $out"
    n=$(cat "$T/.push.n")
    grep -q "errors: 0, replies: $n\$" <<<"$out" || fail "pushing $n messages: $out"
}

# bodies N PREFIX: prints PREFIX-000001 .. PREFIX-N, one a line.
bodies() { awk -v n="$1" -v p="$2" 'BEGIN { for (i = 1; i <= n; i++) printf "%s-%06d\n", p, i }'; }

# push N PREFIX [KEY]: pushes bodies PREFIX-000001 .. PREFIX-N.
push() { bodies "$1" "$2" | push_lines "${3:-$QUEUE}"; }

# push_body BODY [KEY]: one message with exactly this body.
push_body() {
    local r
    r=$(rcli RPUSH "${2:-$QUEUE}" "$1") || fail "RPUSH failed: $r"
}

llen() { rcli LLEN "$1"; }
inflight() { rcli HLEN "$1:weir:inflight"; }

# True when nothing is left of queue $1: no element waiting and none leased.
nothing_left() {
    local key=${1:-$QUEUE}
    [[ $(llen "$key") == 0 && $(inflight "$key") == 0 ]]
}

# ---- kafka ---------------------------------------------------------------------------------
# A Kafka-protocol cluster on loopback: tests/tools/kafka_broker, librdkafka's mock cluster in a
# process of its own. It keeps its data in memory only, so "the broker down and back" is
# kafka_down / kafka_up (its brokers refuse connections, then accept them again, data kept), never
# a restart. It picks its own ports. Facts about it (librdkafka 2.0.2) in docs/testing.md: it keeps
# only about 5 MiB per partition, a first group join takes ~3 s, and a member rejoining a group
# another member left waits session.timeout.ms - 1 s (give consumers session.timeout.ms=6000).

# start_kafka [--brokers N] TOPIC:PARTITIONS...: starts kafka_broker with N brokers (default 1)
# and those topics (replication min(N, 3)); waits (up to HANG_SECS) for its bootstrap file. Sets
# KAFKA_BOOTSTRAP ("127.0.0.1:port,..."), KAFKA_PID and KAFKA_LOG. One cluster per test.
start_kafka() {
    need "$KAFKA_BROKER"
    command -v kcat >/dev/null || fail "kcat is missing (scripts/setup.sh installs it)"
    [[ -z $KAFKA_PID ]] || fail "start_kafka: kafka_broker pid $KAFKA_PID is already running"
    local brokers=1 args=() topic end boot=$T/kafka.bootstrap
    if [[ ${1:-} == --brokers ]]; then
        brokers=$2
        shift 2
    fi
    for topic in "$@"; do
        args+=(--topic "$topic")
    done
    _N_KAFKA=$((_N_KAFKA + 1))
    KAFKA_LOG=$T/kafka.$_N_KAFKA.log
    rm -f "$boot"
    "$KAFKA_BROKER" --brokers "$brokers" "${args[@]}" --bootstrap-file "$boot" \
        </dev/null >/dev/null 2>"$KAFKA_LOG" &
    KAFKA_PID=$!
    _register "$KAFKA_PID" kafka_broker
    _LOGS+=("$KAFKA_LOG")
    end=$(deadline "$HANG_SECS")
    while lt "$EPOCHREALTIME" "$end"; do
        # Written with a rename: present means complete.
        if [[ -s $boot ]]; then
            KAFKA_BOOTSTRAP=$(cat "$boot")
            note "kafka_broker pid $KAFKA_PID, $brokers brokers at $KAFKA_BOOTSTRAP ($*)"
            return 0
        fi
        if ! alive "$KAFKA_PID"; then
            wait "$KAFKA_PID" 2>/dev/null || true
            KAFKA_PID=
            fail "kafka_broker exited before it was ready"
        fi
        sleep 0.05
    done
    fail "kafka_broker did not write its bootstrap file within ${HANG_SECS}s"
}

# _kafka_signal SIG WORD: sends SIG and waits until the broker has logged "brokers WORD" once more.
_kafka_signal() {
    local sig=$1 word=$2 before
    [[ -n $KAFKA_PID ]] || fail "kafka_broker is not running"
    before=$(grep -c "kafka_broker: brokers $word" "$KAFKA_LOG" || true)
    kill "-$sig" "$KAFKA_PID"
    wait_until '[[ $(grep -c "kafka_broker: brokers '"$word"'" "$KAFKA_LOG") -gt '"$before"' ]]' \
        "$HANG_SECS" || fail "kafka_broker did not log \"brokers $word\" after SIG$sig"
}

# kafka_down: every broker drops its connections and refuses new ones; the data stays.
kafka_down() {
    _kafka_signal USR1 down
    note "kafka brokers down"
}

# kafka_up: the brokers accept connections again, with the data they had.
kafka_up() {
    _kafka_signal USR2 up
    note "kafka brokers up"
}

# stop_kafka: SIGTERM; kafka_broker must exit 0 within HANG_SECS (under the sanitizers a report
# makes that status non-zero). pass calls it when the cluster is still running.
stop_kafka() {
    [[ -n $KAFKA_PID ]] || fail "kafka_broker is not running"
    local pid=$KAFKA_PID
    KAFKA_PID=
    _stop_checked "$pid" kafka_broker
    note "kafka_broker pid $pid stopped with status 0"
}

# kafka_produce TOPIC: produces every line of stdin, "key<TAB>value", with kcat, one message
# each, partitioned by key; kafka_produce_values TOPIC: lines are values, without keys (spread
# over the partitions). kcat waits for every delivery report before it exits (acks=all); the
# status is non-zero, and kcat's last words printed, when one was not delivered (no broker for
# HANG_SECS, or every broker down: kcat gives up at once then). Unchecked, that fails the test.
kafka_produce() { _kafka_produce "$1" -K $'\t'; }
kafka_produce_values() { _kafka_produce "$1"; }

_kafka_produce() {
    local topic=$1 rc=0
    shift
    [[ -n $KAFKA_BOOTSTRAP ]] || fail "kafka_produce: no cluster (start_kafka first)"
    timeout "$((HANG_SECS + 15))" kcat -b "$KAFKA_BOOTSTRAP" -P -t "$topic" "$@" \
        -X message.timeout.ms=$((HANG_SECS * 1000)) 2>"$T/kcat.err" || rc=$?
    if [[ $rc != 0 ]]; then
        echo "  .. kcat -P -t $topic exited with status $rc: $(tail -n 3 "$T/kcat.err")" >&2
        return "$rc"
    fi
}

# kafka_count TOPIC [PARTITION]: how many messages the topic (or one partition) holds now, read
# from the beginning to the end with kcat, within HANG_SECS.
kafka_count() {
    local topic=$1 part=()
    [[ -n ${2:-} ]] && part=(-p "$2")
    timeout "$HANG_SECS" kcat -b "$KAFKA_BOOTSTRAP" -C -e -q -t "$topic" "${part[@]}" \
        -f '%o\n' 2>"$T/kcat.err" | wc -l
}

# kafka_read TOPIC: every message the topic holds now, "partition<TAB>offset<TAB>key<TAB>value"
# a line (values and keys must not hold newlines), within HANG_SECS.
kafka_read() {
    timeout "$HANG_SECS" kcat -b "$KAFKA_BOOTSTRAP" -C -e -q -t "$1" \
        -f '%p\t%o\t%k\t%s\n' 2>"$T/kcat.err"
}

# ---- postgres ------------------------------------------------------------------------------
# A Postgres 15 cluster of the test's own (Debian's postgresql-15, which scripts/setup.sh installs
# without Debian's default cluster): initdb in a new directory, wal_level=logical, listening on
# 127.0.0.1 on a free port and on a socket in that directory. One cluster per test. Postgres
# refuses to run as root: under root, initdb and the server run as the user postgres, in a
# directory under /tmp that user owns ($T may sit below directories only root can enter), linked
# from $T/pg; otherwise as the test's user, in $T/pg.

PG_BIN=/usr/lib/postgresql/15/bin
PG_PORT=
PG_DIR=
PG_DATA=
PG_URI=
PG_PID=
PG_LOG=
PG_START_SECS=
_PG_TMP= # the cluster's directory when it is outside $T

# What runs a program as the cluster's user: a prefix of a simple command, never a function,
# so that a background job's $! is the program's own pid (setpriv execs it).
_PG_AS=()
if [[ $EUID == 0 ]]; then
    _PG_AS=(setpriv --reuid=postgres --regid=postgres --init-groups --)
fi

# _pg_psql ARGS...: psql against the test cluster, reading SQL from stdin: no psqlrc, quiet,
# tuples only, unaligned, fields separated by tabs, stopping at the first error. ARGS go before
# (e.g. -v name=value, which SQL from stdin reads as :'name').
_pg_psql() {
    "$PG_BIN/psql" -X -q -At -F $'\t' -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres \
        -d postgres "$@"
}

# The server writes "ready" on line 8 of postmaster.pid once it accepts connections.
_pg_ready() {
    local -a lines
    { mapfile -t lines <"$PG_DATA/postmaster.pid"; } 2>/dev/null || return 1
    [[ ${lines[0]:-} == "$PG_PID" && ${lines[7]:-} == ready* ]]
}

# _pg_launch PORT: starts the server on PORT and waits (up to HANG_SECS) until it accepts
# connections and is ours. False when it exited (the port was taken) or never became ready.
_pg_launch() {
    local port=$1 end
    # fsync=off: a test's cluster never has to survive a power cut, only killed processes (what
    # was written is in the page cache), and commits, checkpoints and shutdowns are much faster.
    "${_PG_AS[@]}" "$PG_BIN/postgres" -D "$PG_DATA" -c listen_addresses=127.0.0.1 -c port="$port" \
        -c unix_socket_directories="$PG_DIR" -c wal_level=logical -c max_replication_slots=10 \
        -c max_wal_senders=10 -c fsync=off </dev/null >>"$PG_LOG" 2>&1 &
    PG_PID=$!
    # Not in _PIDS: the generic cleanup's SIGTERM is a smart shutdown, which waits for clients,
    # and a SIGKILLed postmaster leaves its backends behind. _pg_cleanup stops it instead.
    if [[ -n ${WEIR_TEST_PIDS:-} && -d ${WEIR_TEST_PIDS:-} ]]; then
        printf '%s %s\n' "$PG_PID" postgres >>"$WEIR_TEST_PIDS/$TEST_NAME.$$"
    fi
    end=$(deadline "$HANG_SECS")
    while lt "$EPOCHREALTIME" "$end"; do
        if ! alive "$PG_PID"; then
            wait "$PG_PID" 2>/dev/null || true
            PG_PID=
            return 1
        fi
        if _pg_ready; then
            # Ours: another server on that port would not name our socket directory.
            PG_PORT=$port
            [[ $(_pg_psql <<<"show unix_socket_directories" 2>/dev/null) == "$PG_DIR" ]] &&
                return 0
            break
        fi
        sleep 0.02
    done
    kill -QUIT "$PG_PID" 2>/dev/null || true
    _wait_gone "$PG_PID" "$HANG_SECS" || kill -KILL "$PG_PID" 2>/dev/null || true
    wait "$PG_PID" 2>/dev/null || true
    PG_PID=
    return 1
}

# start_postgres: a new cluster (initdb -A trust, superuser postgres, UTF8, locale C) started on
# a free loopback port with wal_level=logical, max_replication_slots=10, max_wal_senders=10 and
# fsync=off; waits (up to HANG_SECS) until it accepts connections. Sets and exports PG_PORT,
# PG_DIR (its socket directory and log), PG_DATA, PG_URI (postgres://postgres@127.0.0.1:PORT/
# postgres), PG_PID, PG_LOG; PG_START_SECS is how long it took. Stopped (immediate shutdown) and
# removed when the test ends; kept, and named, when it fails.
start_postgres() {
    [[ -z $PG_PID ]] || fail "start_postgres: postgres pid $PG_PID is already running"
    local bin t0 attempt port
    for bin in initdb postgres psql pg_recvlogical; do
        [[ -x $PG_BIN/$bin ]] ||
            fail "$PG_BIN/$bin is missing (scripts/setup.sh installs postgresql-15)"
    done
    t0=$EPOCHREALTIME
    if [[ $EUID == 0 ]]; then
        getent passwd postgres >/dev/null ||
            fail "no user postgres to run the server as (scripts/setup.sh installs postgresql-15)"
        _PG_TMP=$(mktemp -d "/tmp/weir-pg-$TEST_NAME.XXXXXX")
        chown postgres:postgres "$_PG_TMP"
        ln -s "$_PG_TMP" "$T/pg"
        PG_DIR=$_PG_TMP
    else
        PG_DIR=$T/pg
        mkdir -m 700 "$PG_DIR"
    fi
    PG_DATA=$PG_DIR/data
    PG_LOG=$PG_DIR/postgres.log
    _LOGS+=("$PG_LOG")
    "${_PG_AS[@]}" "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -A trust -E UTF8 --locale=C \
        --no-sync --no-instructions </dev/null >"$PG_DIR/initdb.log" 2>&1 ||
        fail "initdb failed: $(tail -n 5 "$PG_DIR/initdb.log")"
    for ((attempt = 0; attempt < 30; attempt++)); do
        port=$((20000 + RANDOM % 12000))
        port_busy "$port" && continue
        if _pg_launch "$port"; then
            PG_URI=postgres://postgres@127.0.0.1:$PG_PORT/postgres
            export PG_PORT PG_DIR PG_DATA PG_URI
            PG_START_SECS=$(since "$t0")
            note "postgres pid $PG_PID on 127.0.0.1:$PG_PORT, data $PG_DATA (${PG_START_SECS}s)"
            return 0
        fi
    done
    fail "could not start postgres on a free port"
}

# pg_stop [fast|immediate|smart]: shuts the server down (default fast: clients disconnected,
# a checkpoint written) and waits until it is gone; it must exit 0. `immediate` is a crash as far
# as the data goes: the next start replays the WAL, and replication slots come back as the last
# checkpoint saved them (a slot's confirmed_flush_lsn may go back: changes are decoded again).
pg_stop() {
    local mode=${1:-fast} sig pid=$PG_PID rc=0
    [[ -n $pid ]] || fail "pg_stop: postgres is not running"
    case $mode in
    fast) sig=INT ;;
    immediate) sig=QUIT ;;
    smart) sig=TERM ;;
    *) fail "pg_stop: unknown mode $mode" ;;
    esac
    kill "-$sig" "$pid" 2>/dev/null || true
    if ! _wait_gone "$pid" "$HANG_SECS"; then
        kill -QUIT "$pid" 2>/dev/null || true
        fail "postgres pid $pid did not stop within ${HANG_SECS}s of SIG$sig ($mode shutdown)"
    fi
    wait "$pid" 2>/dev/null || rc=$?
    PG_PID=
    [[ $rc == 0 ]] || fail "postgres pid $pid exited with status $rc after SIG$sig ($mode)"
    note "postgres pid $pid stopped ($mode)"
}

# pg_start: starts the stopped server again on its port and data (retried for a few seconds
# while the port is not free again); waits until it accepts connections.
pg_start() {
    [[ -n $PG_PORT && -d $PG_DATA ]] || fail "pg_start: no cluster (start_postgres first)"
    [[ -z $PG_PID ]] || fail "pg_start: postgres pid $PG_PID is already running"
    local attempt
    for ((attempt = 0; attempt < 20; attempt++)); do
        if _pg_launch "$PG_PORT"; then
            note "postgres started again, pid $PG_PID on 127.0.0.1:$PG_PORT"
            return 0
        fi
        sleep 0.25
    done
    fail "could not start postgres again on port $PG_PORT"
}

# pg_restart [SECS]: pg_stop (fast), down SECS seconds (default 0), pg_start: same port, same data.
pg_restart() {
    pg_stop fast
    [[ ${1:-0} == 0 ]] || sleep "$1"
    pg_start
}

# Immediate shutdown at the end of the test (after the generic cleanup stopped weir and the rest),
# then the directory outside $T removed with it, or kept and named.
_pg_cleanup() {
    local rc=$1
    if [[ -n $PG_PID ]]; then
        kill -QUIT "$PG_PID" 2>/dev/null
        if ! _wait_gone "$PG_PID" 10; then
            kill -KILL "$PG_PID" 2>/dev/null
            _wait_gone "$PG_PID" 5
        fi
        wait "$PG_PID" 2>/dev/null
        PG_PID=
    fi
    if [[ -n $_PG_TMP ]]; then
        if [[ $rc == 0 && $_FAILED == 0 && ${WEIR_KEEP_TMP:-0} != 1 ]]; then
            rm -rf "$_PG_TMP"
        else
            echo "---- postgres dir kept: $_PG_TMP"
        fi
    fi
}

# pg_sql [-v NAME=VALUE]... [SQL]: runs SQL (without it, stdin) against the test cluster with
# psql and prints the rows, one a line, fields separated by tabs. Statements run one by one
# (autocommit) and the first error stops it: the test fails, also when pg_sql ran in a command
# substitution or a wait_until condition. Variables are read in SQL as :'NAME' (a quoted
# literal) or :"NAME" (an identifier).
pg_sql() {
    [[ -n $PG_PORT ]] || fail "pg_sql: no cluster (start_postgres first)"
    local -a vars=()
    while [[ ${1:-} == -v ]]; do
        vars+=(-v "$2")
        shift 2
    done
    local err=$T/.pg_sql.$BASHPID.err rc=0
    if (($#)); then
        _pg_psql "${vars[@]}" <<<"$1" 2>"$err" || rc=$?
    else
        _pg_psql "${vars[@]}" 2>"$err" || rc=$?
    fi
    if [[ $rc != 0 ]]; then
        { tr -s '\n ' '  ' <"$err" | cut -c1-500; } >"$T/.pg_sql.failed"
        rm -f "$err"
        echo "  .. pg_sql failed (psql status $rc): $(cat "$T/.pg_sql.failed")" >&2
        if [[ $BASHPID != "$$" ]]; then
            # A subshell: failing here would only end the subshell. The test's shell fails on
            # the signal as soon as the command it runs returns.
            kill -USR1 "$$"
            exit 1
        fi
        fail "pg_sql: psql status $rc: $(cat "$T/.pg_sql.failed")"
    fi
    rm -f "$err"
}
trap 'fail "pg_sql: $(cat "$T/.pg_sql.failed" 2>/dev/null)"' USR1

# pg_slot_confirmed SLOT: prints the logical slot's confirmed_flush_lsn (e.g. 0/1A2B3C8); false,
# printing nothing, when there is no such slot.
pg_slot_confirmed() {
    local lsn
    lsn=$(pg_sql -v slot="$1" \
        "select confirmed_flush_lsn from pg_replication_slots where slot_name = :'slot'")
    [[ -n $lsn ]] || return 1
    printf '%s\n' "$lsn"
}

# pg_slot_active SLOT: prints t while a client streams from the slot, f otherwise; false,
# printing nothing, when there is no such slot.
pg_slot_active() {
    local a
    a=$(pg_sql -v slot="$1" "select active from pg_replication_slots where slot_name = :'slot'")
    [[ -n $a ]] || return 1
    printf '%s\n' "$a"
}

# pg_slots: every replication slot, "name<TAB>plugin<TAB>active<TAB>confirmed_flush_lsn" a line.
pg_slots() {
    pg_sql "select slot_name, plugin, active, confirmed_flush_lsn from pg_replication_slots
            order by slot_name"
}

# pg_wait_slot_active SLOT [TIMEOUT], pg_wait_slot_inactive SLOT [TIMEOUT]: waits (default 60 s)
# until a client streams from the slot (weir's poller connected to it) / none does (the slot
# exists and its walsender has gone, e.g. after weir was killed). False after TIMEOUT.
pg_wait_slot_active() {
    wait_until '[[ $(pg_slot_active "'"$1"'" || true) == t ]]' "${2:-60}"
}
pg_wait_slot_inactive() {
    wait_until '[[ $(pg_slot_active "'"$1"'" || true) == f ]]' "${2:-60}"
}

# pg_current_lsn: the server's current WAL write position.
pg_current_lsn() { pg_sql "select pg_current_wal_lsn()"; }

# pg_lsn_num LSN: the LSN "HI/LO" (hex) as a decimal byte position.
pg_lsn_num() {
    [[ $1 =~ ^([0-9A-Fa-f]+)/([0-9A-Fa-f]+)$ ]] || fail "pg_lsn_num: not an LSN: '$1'"
    echo $(((16#${BASH_REMATCH[1]} << 32) + 16#${BASH_REMATCH[2]}))
}

# pg_lsn_diff A B: A - B in bytes (negative when A comes before B). No server needed.
pg_lsn_diff() { echo $(($(pg_lsn_num "$1") - $(pg_lsn_num "$2"))); }

# pg_wait_confirmed SLOT LSN [TIMEOUT]: waits (default 60 s) until the slot's confirmed_flush_lsn
# is at or past LSN: its consumer acknowledged everything before it. False after TIMEOUT.
pg_wait_confirmed() {
    wait_until '_pg_confirmed_past "'"$1"'" "'"$2"'"' "${3:-60}"
}
_pg_confirmed_past() {
    local c
    c=$(pg_slot_confirmed "$1") || return 1
    (($(pg_lsn_diff "$c" "$2") >= 0))
}

# pg_decoded_seqs SLOT PUBLICATION: what Postgres decodes for the publication through SLOT (a
# shadow slot the test made beside weir's), numbered as weir numbers it: the commit record's LSN
# (the Begin message's final_lsn) in 20 digits, then the change's place in its transaction in 10;
# one per insert, update and delete, in decoding order. Peeks: the slot keeps its place.
pg_decoded_seqs() {
    pg_sql -v s="$1" -v p="$2" "
        with m as (
            select n, get_byte(data, 0) as kind,
                case when get_byte(data, 0) = 66
                    then ('x' || encode(substr(data, 2, 8), 'hex'))::bit(64)::bigint end
                    as commit_lsn
            from pg_logical_slot_peek_binary_changes(:'s', null, null, 'proto_version', '1',
                'publication_names', :'p') with ordinality as c(lsn, xid, data, n)
        ), t as (select n, kind, max(commit_lsn) over (order by n) as txn from m)
        select lpad(txn::text, 20, '0') ||
            lpad((row_number() over (partition by txn order by n))::text, 10, '0')
        from t where kind in (73, 85, 68)"
}

# pg_decoded_last_end SLOT PUBLICATION: the end LSN (a decimal byte position) of the last
# transaction SLOT decodes for the publication. Peeks.
pg_decoded_last_end() {
    pg_sql -v s="$1" -v p="$2" "
        select max(('x' || encode(substr(data, 11, 8), 'hex'))::bit(64)::bigint)
        from pg_logical_slot_peek_binary_changes(:'s', null, null, 'proto_version', '1',
            'publication_names', :'p') where get_byte(data, 0) = 67"
}

# ---- bugs, reported together ---------------------------------------------------------------
# A check that found a bug in weir says so with `bug` and the test goes on; `no_bugs`, at the end,
# fails with all of them.
BUGS=()
bug() {
    BUGS+=("$*")
    echo "  BUG $*"
}
no_bugs() {
    [[ ${#BUGS[@]} == 0 ]] || fail "${#BUGS[@]} check(s) found a bug in weir: ${BUGS[*]}"
}

# ---- configuration files: `weir check` on variants of one file -------------------------------
# The test defines base(), which writes its valid configuration to stdout.

# config_variant NAME LINE TEXT: $T/NAME.yaml, the base file with line LINE replaced by TEXT
# (which may be two lines, or none: "-" deletes the line).
config_variant() {
    base | awk -v n="$2" -v t="$3" 'NR == n { if (t != "-") print t; next } { print }' >"$T/$1.yaml"
}

# config_check NAME: runs `weir check` on $T/NAME.yaml; sets RC and OUT (stdout and stderr).
config_check() {
    RC=0
    OUT=$("$WEIR" check -c "$T/$1.yaml" 2>&1) || RC=$?
}

# config_expect_error NAME LINE COLS TEXT...: exit 2, and a line "<file>:LINE:COL: ..." (COL one
# of COLS, a regex alternation: the key's column or its value's) holding every TEXT. With
# CONFIG_SECRET set, an output that shows it is a bug.
config_expect_error() {
    local name=$1 line=$2 cols=$3 file=$T/$1.yaml hit t
    shift 3
    config_check "$name"
    [[ $RC == 2 ]] || fail "$name: weir check exited $RC, expected 2; output: $OUT"
    hit=$(grep -E "^$file:$line:($cols): " <<<"$OUT" || true)
    [[ -n $hit ]] || fail "$name: no error at $file:$line:($cols); output: $OUT"
    for t in "$@"; do
        grep -qF -- "$t" <<<"$hit" || fail "$name: the error does not say '$t': $hit"
    done
    if [[ -n ${CONFIG_SECRET:-} ]] && grep -qF -- "$CONFIG_SECRET" <<<"$OUT"; then
        bug "$name: the secret is printed: ${hit#"$T/"}"
    else
        ok "$name: exit 2, ${hit#"$T/"}"
    fi
}

# ---- test functions ------------------------------------------------------------------------

# start_fn_http ARGS...: starts fn_http on a free loopback port; sets FN_PORT, FN_PID, FN_URL.
start_fn_http() {
    need "$FN_HTTP"
    _N_FN=$((_N_FN + 1))
    local out=$T/fn_http.$_N_FN.out err=$T/fn_http.$_N_FN.err end
    # Created here: the background child opens them only some time after the fork.
    : >"$out"
    : >"$err"
    "$FN_HTTP" --listen 127.0.0.1:0 "$@" </dev/null >"$out" 2>"$err" &
    FN_PID=$!
    _register "$FN_PID" fn_http
    _FNS+=("$FN_PID")
    _LOGS+=("$err")
    end=$(deadline "$HANG_SECS")
    while lt "$EPOCHREALTIME" "$end"; do
        # Only a complete first line (newline written) counts: a partial one has a partial port.
        FN_PORT=
        if [[ $(wc -l <"$out") -ge 1 ]]; then
            FN_PORT=$(sed -n '1s/^PORT=\([0-9][0-9]*\)$/\1/p' "$out")
        fi
        if [[ -n $FN_PORT ]]; then
            FN_URL=http://127.0.0.1:$FN_PORT
            note "fn_http pid $FN_PID on $FN_URL ($*)"
            return 0
        fi
        alive "$FN_PID" || break
        sleep 0.05
    done
    fail "fn_http $* did not print PORT= within ${HANG_SECS}s"
}

# ---- weir ----------------------------------------------------------------------------------

# start_weir CONFIG: runs `weir run` in the background; sets WEIR_PID and WEIR_LOG.
start_weir() {
    local config=$1
    _N_WEIR=$((_N_WEIR + 1))
    WEIR_LOG=$T/weir.$_N_WEIR.log
    "$WEIR" run -c "$config" --log-level "${WEIR_LOG_LEVEL:-info}" </dev/null >"$WEIR_LOG" 2>&1 &
    WEIR_PID=$!
    _register "$WEIR_PID" weir
    _WEIRS[$WEIR_PID]=$WEIR_LOG
    _LOGS+=("$WEIR_LOG")
    note "weir pid $WEIR_PID started (log $WEIR_LOG)"
}

# Fails the test when a weir that should be running has exited.
check_weirs_alive() {
    local pid rc
    for pid in "${!_WEIRS[@]}"; do
        if ! alive "$pid"; then
            rc=0
            wait "$pid" 2>/dev/null || rc=$?
            unset "_WEIRS[$pid]"
            fail "weir pid $pid exited unexpectedly with status $rc"
        fi
    done
}

# stop_weir [PID] [TIMEOUT]: SIGTERM, then the process must exit 0 within TIMEOUT seconds
# (default HANG_SECS). Sets STOP_SECS to how long it took. Under the sanitizers a report makes the
# exit status non-zero, which fails the test here.
stop_weir() {
    local pid=${1:-$WEIR_PID} timeout=${2:-$HANG_SECS} t0 rc=0
    t0=$EPOCHREALTIME
    unset "_WEIRS[$pid]"
    kill -TERM "$pid" 2>/dev/null || true
    if ! _wait_gone "$pid" "$timeout"; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        fail "weir pid $pid did not exit within ${timeout}s of SIGTERM"
    fi
    wait "$pid" 2>/dev/null || rc=$?
    STOP_SECS=$(since "$t0")
    [[ $rc == 0 ]] || fail "weir pid $pid exited with status $rc after SIGTERM (expected 0)"
    note "weir pid $pid stopped on SIGTERM with status 0 in ${STOP_SECS}s"
}

# _stop_checked PID NAME: SIGTERM; the process must exit 0 within HANG_SECS.
_stop_checked() {
    local pid=$1 name=$2 rc=0
    kill -TERM "$pid" 2>/dev/null || true
    if ! _wait_gone "$pid" "$HANG_SECS"; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        fail "$name pid $pid did not exit within ${HANG_SECS}s of SIGTERM"
    fi
    wait "$pid" 2>/dev/null || rc=$?
    [[ $rc == 0 ]] || fail "$name pid $pid exited with status $rc after SIGTERM (expected 0)"
}

# wait_connected [PID] [TIMEOUT]: waits until weir PID (default: the last started) has logged its
# first Redis connection, so that a test's timing starts from a weir that is ready. TIMEOUT
# (default 60 s) only catches a weir that never connects.
wait_connected() {
    local pid=${1:-$WEIR_PID} timeout=${2:-60} log
    log=${_WEIRS[$pid]:-}
    [[ -n $log ]] || fail "wait_connected: weir pid $pid is not running"
    wait_until 'grep -q "redis: connected" "$log"' "$timeout" ||
        fail "weir pid $pid did not connect to redis within ${timeout}s"
}

# ---- buckets -------------------------------------------------------------------------------

_SHM=
# tmpfs_dir VAR: sets VAR to a directory on tmpfs (/dev/shm) for this test, removed with the
# test's temp dir: many-file tests run there, since ext4 slows down after mass deletes. Falls back
# to $T. It assigns rather than prints: called as $(tmpfs_dir), it made its directory in a subshell
# that the cleanup never saw, and every such directory stayed behind in /dev/shm.
tmpfs_dir() {
    if [[ -z $_SHM ]]; then
        if [[ -d /dev/shm && -w /dev/shm ]]; then
            _SHM=$(mktemp -d "/dev/shm/weir-$TEST_NAME.XXXXXX")
        else
            _SHM=$T/shm
            mkdir -p "$_SHM"
        fi
    fi
    printf -v "$1" '%s' "$_SHM"
}

# wait_caught_up [PID]: waits until that weir's bucket mappings have scanned their buckets.
wait_caught_up() {
    local pid=${1:-$WEIR_PID} log
    log=${_WEIRS[$pid]:-}
    [[ -n $log ]] || fail "wait_caught_up: weir pid $pid is not running"
    wait_until 'grep -q "bucket: caught up" "$log"' 60 || fail "weir pid $pid never caught up"
}

# announced EVENT FILE...: the keys the functions got EVENT (ObjectCreated:Put, ...) for, one
# line per announcement.
announced() {
    local ev=$1
    shift
    records "$@" | awk -F'\t' -v e="$ev" '$3 == e { print $1 }'
}

# ---- the Invoke API ------------------------------------------------------------------------

INVOKE_LOAD=$WEIR_BUILD_DIR/invoke_load
# The real AWS CLI v2 (Debian's awscli), not whatever `aws` comes first on PATH.
AWS_CLI=/usr/bin/aws
API_PORT=

# api_port [PID]: waits until weir PID (default: the last started) listens for the Invoke API
# and sets API_PORT to the port it took (configs use listen: 127.0.0.1:0).
api_port() {
    local pid=${1:-$WEIR_PID} log
    log=${_WEIRS[$pid]:-}
    [[ -n $log ]] || fail "api_port: weir pid $pid is not running"
    wait_until 'grep -q "api: listening" "$log"' 60 || fail "weir pid $pid never listened"
    API_PORT=$(sed -n 's/.*api: listening address=[^ ]*:\([0-9][0-9]*\) .*/\1/p' "$log" | tail -1)
    [[ -n $API_PORT ]] || fail "no port in weir pid $pid's listening line"
}

# lambda ARGS...: the AWS CLI's `aws lambda ARGS` against weir's API, with throwaway
# credentials (weir does not check signatures) and no retries, so an error shows as it came.
lambda() {
    need "$AWS_CLI"
    AWS_ACCESS_KEY_ID=weir AWS_SECRET_ACCESS_KEY=weir AWS_DEFAULT_REGION=us-east-1 \
        AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_PAGER= \
        AWS_MAX_ATTEMPTS=1 AWS_RETRY_MODE=standard \
        "$AWS_CLI" lambda --endpoint-url "http://127.0.0.1:$API_PORT" "$@"
}

# post_events FUNCTION N PREFIX [CONCURRENCY]: N Event invocations, bodies {"id":"PREFIX-000001"}
# and on; every one must be accepted (202).
post_events() {
    need "$INVOKE_LOAD"
    local out
    out=$("$INVOKE_LOAD" --port "$API_PORT" --function "$1" --count "$2" --prefix "$3" \
        --concurrency "${4:-8}") || fail "invoke_load: $out"
    note "posted $2 events: $out"
}

# kill9_at_records CONFIG RECORDS AT...: for each AT, waits until the record file holds AT
# records, kills the last weir started with SIGKILL and starts a new one on CONFIG. At least one
# kill must hit messages leased on $QUEUE, or the test found nothing to test and fails.
kill9_at_records() {
    local config=$1 rec=$2 at n hits=0 kills=0
    shift 2
    for at in "$@"; do
        wait_until '[[ $(count_records "'"$rec"'") -ge '"$at"' ]]' 60 ||
            fail "only $(count_records "$rec") records before the kill at $at"
        kill9_weir
        kills=$((kills + 1))
        n=$(inflight "$QUEUE")
        note "killed after $(count_records "$rec") records; $n messages were leased"
        [[ $n -gt 0 ]] && hits=$((hits + 1))
        start_weir "$config"
    done
    [[ $hits -gt 0 ]] || fail "no kill happened while messages were leased: nothing was tested"
    ok "$hits of $kills kills hit messages in flight"
}

kill9_weir() {
    local pid=${1:-$WEIR_PID}
    unset "_WEIRS[$pid]"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    note "weir pid $pid killed with SIGKILL"
}

# ---- what the functions recorded ------------------------------------------------------------
# A record file has one line per received record:
#   messageId <TAB> receiveCount <TAB> body <TAB> pid <TAB> request-seq <TAB> records-in-request
# and a line CONCURRENT whenever a --single-flight fn_http saw overlapping requests.

records() { { cat -- "$@" 2>/dev/null || true; } | awk -F'\t' 'NF >= 6'; }
count_records() { records "$@" | wc -l; }
count_unique_bodies() { records "$@" | cut -f3 | sort -u | wc -l; }
# Bodies received more than once.
count_duplicate_bodies() { records "$@" | cut -f3 | sort | uniq -d | wc -l; }
# How many times one body was received.
count_body() {
    local body=$1
    shift
    records "$@" | awk -F'\t' -v b="$body" '$3 == b' | wc -l
}
# The largest records-in-this-request seen.
max_request_size() { records "$@" | awk -F'\t' 'BEGIN { m = 0 } $6 > m { m = $6 } END { print m }'; }
# How many distinct requests (pid, request-seq) were made.
count_requests() { records "$@" | awk -F'\t' '{ print $4 "." $5 }' | sort -u | wc -l; }

# expect_all_bodies N PREFIX FILE...: every body PREFIX-000001..N was received at least once,
# and nothing else with that prefix.
expect_all_bodies() {
    local n=$1 prefix=$2 missing
    shift 2
    missing=$(comm -23 <(bodies "$n" "$prefix" | sort) \
        <(records "$@" | cut -f3 | sort -u) | awk 'NR <= 5')
    [[ -z $missing ]] || fail "bodies never received, e.g.: $(echo $missing)"
}

# count_prefix PREFIX FILE...: records whose body starts with PREFIX.
count_prefix() {
    local prefix=$1
    shift
    records "$@" | awk -F'\t' -v p="$prefix" 'index($3, p) == 1 { n++ } END { print n + 0 }'
}

# ---- FIFO queues ---------------------------------------------------------------------------

# fifo_envelopes GROUPS N [PREFIX]: prints N messages for each of GROUPS message groups, the groups
# interleaved (message 1 of every group, then message 2, ...), as FIFO envelopes: body
# "<PREFIX>NNN-IIIIII", group "<PREFIX>NNN", a dedup id equal to the body.
fifo_envelopes() {
    awk -v G="$1" -v n="$2" -v p="${3:-g}" 'BEGIN {
        for (i = 1; i <= n; i++)
            for (g = 1; g <= G; g++) {
                b = sprintf("%s%03d-%06d", p, g, i)
                printf "{\"weir\":1,\"body\":\"%s\",\"group\":\"%s%03d\",\"dedup\":\"%s\"}\n", b, p, g, b
            }
    }'
}

# fifo_gaps FILE...: prints every delivery that came before an earlier message of its group had
# been delivered at least once, or out of order inside one request, and the count last
# ("gaps=N"). Redelivery of earlier messages (after a failure or a kill) is not a gap.
fifo_gaps() {
    records "$@" | awk -F'\t' '
        NF >= 8 && $7 != "-" {
            idx = $3; sub(/.*-/, "", idx); idx += 0
            if (idx > max[$7] + 1) { print "gap: " $3 " delivered before " $7 "-" max[$7] + 1; gaps++ }
            if (idx > max[$7]) max[$7] = idx
            req = $4 "." $5 "." $7
            if ((req in last) && idx != last[req] + 1) {
                print "out of order in one request: " $3 " after " last[req]; gaps++
            }
            last[req] = idx
        }
        END { print "gaps=" gaps + 0 }'
}

# count_overlaps FILE: requests that held a message group another request still held.
count_overlaps() { { grep -c '^OVERLAP' "$@" 2>/dev/null || true; } | awk '{ s += $1 } END { print s + 0 }'; }

# max_in_flight FILE...: the most requests fn_http had in flight when one arrived, plus it.
max_in_flight() { records "$@" | awk -F'\t' 'NF >= 8 && $8 + 1 > m { m = $8 + 1 } END { print m + 0 }'; }

# ---- DynamoDB Streams records ---------------------------------------------------------------
# The functions' line for a DynamoDB Streams record (docs/functions.md): messageId is the
# record's SequenceNumber, the body "<eventName> <Keys> <NewImage|-> <OldImage|->" (compact
# JSON, keys sorted, no spaces: a space in a string is \u0020), the group its Keys.

# ddb_order_errors FILE...: prints every first delivery of a record that came after a record of
# the same item key with a higher SequenceNumber had been delivered, and the count last
# ("errors=N"). Redelivery (after a failure or a kill) is not an error. Sequence numbers compare
# as decimals of any length.
ddb_order_errors() {
    records "$@" | awk -F'\t' '
        function after(a, b) {
            sub(/^0+/, "", a)
            sub(/^0+/, "", b)
            return length(a) > length(b) || (length(a) == length(b) && a "" > b "")
        }
        NF >= 8 {
            if (($7 SUBSEP $1) in seen) next
            seen[$7, $1] = 1
            if (($7 in max) && after(max[$7], $1)) {
                print "out of order: " $1 " of " $7 " after " max[$7]; errors++
            }
            if (!($7 in max) || after($1, max[$7])) max[$7] = $1
        }
        END { print "errors=" errors + 0 }'
}
