#!/usr/bin/env bash
# The test command: installs and builds (scripts/setup.sh --asan), checks formatting, then runs
# every ctest test (unit and integration, against real servers) in build/, and again in
# build-asan/ under AddressSanitizer and UBSan, where any sanitizer report fails the run.
# Ends with "weir tests: N passed, N failed" and a non-zero exit on any failure.
# Stops every server the tests started, also when a test is killed or the run is interrupted.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
T0=$SECONDS

PASSED=0
FAILED=0
PROBLEMS=()

RUN=$(mktemp -d "${TMPDIR:-/tmp}/weir-testrun.XXXXXX")
mkdir -p "$RUN/tmp" "$RUN/pids"

# Processes a test registered (pid and command name) and did not clean up itself, e.g. because
# ctest killed it on a timeout. The name check keeps a recycled pid from being hit.
stop_leftovers() {
    local f pid name sig
    for sig in TERM KILL; do
        for f in "$RUN"/pids/*; do
            [[ -f $f ]] || continue
            while read -r pid name; do
                if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]]; then
                    [[ $sig == TERM ]] && echo "test.sh: stopping leftover $name (pid $pid)"
                    kill -"$sig" "$pid" 2>/dev/null
                fi
            done <"$f"
        done
        [[ $sig == TERM ]] && sleep 1
    done
}

cleanup() {
    stop_leftovers
    if [[ ${WEIR_KEEP_TMP:-0} == 1 ]]; then
        echo "test.sh: temp files kept in $RUN"
    else
        rm -rf "$RUN"
    fi
}
trap cleanup EXIT
trap 'echo "test.sh: interrupted"; exit 130' INT
trap 'exit 143' TERM HUP

summary() {
    echo
    echo "elapsed: $((SECONDS - T0)) s"
    local p
    for p in "${PROBLEMS[@]}"; do
        echo "problem: $p"
    done
    echo "weir tests: $PASSED passed, $FAILED failed"
}

if ! bash scripts/setup.sh --asan; then
    PROBLEMS+=("setup or build failed")
    summary
    exit 1
fi

# Formatting, as STYLE.md asks: every C file of weir's own passes clang-format unchanged.
echo "==> clang-format check"
mapfile -t cfiles < <(find core config pollers mapping dispatcher connectors cli tests bench \
    -name '*.[ch]' 2>/dev/null | sort)
unformatted=()
for f in "${cfiles[@]}"; do
    [[ -f $f ]] || continue
    clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || unformatted+=("$f")
done
if ((${#unformatted[@]})); then
    echo "not clang-formatted (run clang-format -i): ${unformatted[*]}"
    PROBLEMS+=("${#unformatted[@]} files not clang-formatted: ${unformatted[*]}")
else
    echo "all ${#cfiles[@]} C files formatted"
fi

# run_ctest DIR [VAR=VALUE...]: ctest in DIR with those variables; adds to PASSED and FAILED.
run_ctest() {
    local dir=$1 log=$RUN/ctest.$1.log rc=0 line total failed
    shift
    echo "==> ctest in $dir/ $*"
    (cd "$ROOT/$dir" && env "$@" TMPDIR="$RUN/tmp" WEIR_TEST_PIDS="$RUN/pids" \
        ctest --output-on-failure --no-tests=error) 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    stop_leftovers
    line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1)
    if [[ -z $line ]]; then
        PROBLEMS+=("ctest in $dir/ did not report results (exit $rc)")
        FAILED=$((FAILED + 1))
        return
    fi
    total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
    failed=$(sed -E 's/.*, ([0-9]+) tests? failed.*/\1/' <<<"$line")
    PASSED=$((PASSED + total - failed))
    FAILED=$((FAILED + failed))
    ((failed == 0 && rc == 0)) || PROBLEMS+=("ctest in $dir/: $failed of $total failed (exit $rc)")
}

run_ctest build

SAN=$ROOT/build-asan/sanitizer-logs
rm -rf "$SAN"
mkdir -p "$SAN"
run_ctest build-asan \
    ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:log_path=$SAN/asan" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$SAN/ubsan"

reports=("$SAN"/asan.* "$SAN"/ubsan.*)
nreports=0
for f in "${reports[@]}"; do
    [[ -f $f ]] || continue
    nreports=$((nreports + 1))
    echo "==== sanitizer report $f"
    cat "$f"
done
((nreports == 0)) || PROBLEMS+=("$nreports sanitizer reports (printed above, kept in $SAN)")

summary
((${#PROBLEMS[@]} == 0 && FAILED == 0))
