#!/usr/bin/env bash
# The test command: installs and builds (scripts/setup.sh --asan), checks formatting, builds the
# other build types (Release, MinSizeRel), then runs every ctest test (unit and integration,
# against real servers; two at a time, WEIR_TEST_JOBS) in build/, and again in build-asan/ under
# AddressSanitizer and UBSan, where any sanitizer report fails the run.
# Ends with "weir tests: N passed, N failed" (every ctest test of both builds, plus the format
# check, the build-type check and the sanitizer-report check) and a non-zero exit on any failure.
# Stops every server the tests started, also when a test is killed or the run is interrupted.
# The tests must end within WEIR_TEST_BUDGET seconds (default 1140) of the start, setup included,
# so that CI (20 minutes) always gets the closing line: ctest kills what runs past it, and tests
# it never started count as failed.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
T0=$SECONDS
DEADLINE=$((T0 + ${WEIR_TEST_BUDGET:-1140}))
# Tests at once: most of a test's time is waiting (group joins, leases, windows, delays), so two
# fill the run's gaps; every test has its own servers, ports and directories.
JOBS=${WEIR_TEST_JOBS:-2}

PASSED=0
FAILED=0
PROBLEMS=()

RUN=$(mktemp -d "${TMPDIR:-/tmp}/weir-testrun.XXXXXX")
mkdir -p "$RUN/tmp" "$RUN/pids"

# Processes a test registered (pid and command name) and did not clean up itself, e.g. because
# ctest killed it on a timeout (ctest kills the test script, not what the script started). The
# name check keeps a recycled pid from being hit; a zombie (already dead) is left alone.
# signal_leftovers SIG: sends SIG to each (0: none, only looks); false when none is alive.
signal_leftovers() {
    local f pid name st found=1
    for f in "$RUN"/pids/*; do
        [[ -f $f ]] || continue
        while read -r pid name; do
            [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]] || continue
            st=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)
            [[ -n $st && $st != Z && $st != X ]] || continue
            found=0
            [[ $1 == 0 ]] && continue
            echo "test.sh: stopping leftover $name (pid $pid) with SIG$1"
            kill -"$1" "$pid" 2>/dev/null
        done <"$f"
    done
    return $found
}

stop_leftovers() {
    local sig i
    for sig in TERM KILL; do
        signal_leftovers "$sig" || break
        for ((i = 0; i < 50; i++)); do
            signal_leftovers 0 || break
            sleep 0.1
        done
    done
    rm -f "$RUN"/pids/*
}

cleanup() {
    stop_leftovers
    # A failing test's temp dir (its logs, record files, redis data) is worth keeping.
    if [[ ${WEIR_KEEP_TMP:-0} == 1 ]] || ((FAILED > 0 || ${#PROBLEMS[@]} > 0)); then
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
    FAILED=$((FAILED + 1))
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
if ((${#cfiles[@]} == 0)); then
    PROBLEMS+=("the format check found no C files")
    FAILED=$((FAILED + 1))
elif ((${#unformatted[@]})); then
    echo "not clang-formatted (run clang-format -i): ${unformatted[*]}"
    PROBLEMS+=("${#unformatted[@]} files not clang-formatted: ${unformatted[*]}")
    FAILED=$((FAILED + 1))
else
    echo "all ${#cfiles[@]} C files formatted"
    PASSED=$((PASSED + 1))
fi

# Every standard build type builds the whole tree (weir, tests, benchmarks): optimisation levels
# warn differently (-O3 finds maybe-uninitialized paths -O2 does not), and warnings are errors.
# Debug (build-asan/) and RelWithDebInfo (build/) were built by setup.sh above.
echo "==> every build type builds"
types_failed=()
for type in Release MinSizeRel; do
    dir=build-$(tr '[:upper:]' '[:lower:]' <<<"$type")
    if ! { cmake -S "$ROOT" -B "$ROOT/$dir" -DCMAKE_BUILD_TYPE="$type" >/dev/null &&
        cmake --build "$ROOT/$dir" -j"$(nproc)" >"$RUN/build.$type.log" 2>&1; }; then
        echo "the $type build failed:"
        grep -E 'error|warning' "$RUN/build.$type.log" | head -n 20
        types_failed+=("$type")
    fi
done
if ((${#types_failed[@]})); then
    PROBLEMS+=("build types that do not build: ${types_failed[*]}")
    FAILED=$((FAILED + 1))
else
    echo "Release and MinSizeRel build (Debug and RelWithDebInfo above)"
    PASSED=$((PASSED + 1))
fi

# run_ctest DIR [VAR=VALUE...]: ctest in DIR with those variables; adds to PASSED and FAILED.
# Tests ctest did not run (it crashed, or the time budget ended first) count as failed.
# Returns 1 when ctest reported no results at all.
run_ctest() {
    local dir=$1 log=$RUN/ctest.$1.log rc=0 line listed ran failed left
    shift
    listed=$(cd "$ROOT/$dir" && ctest -N | sed -n 's/^Total Tests: \([0-9][0-9]*\)$/\1/p')
    if [[ -z $listed || $listed == 0 ]]; then
        PROBLEMS+=("ctest in $dir/ lists no tests")
        FAILED=$((FAILED + 1))
        return 1
    fi
    left=$((DEADLINE - SECONDS))
    if ((left < 30)); then
        PROBLEMS+=("no time left for the $listed tests in $dir/ (WEIR_TEST_BUDGET)")
        FAILED=$((FAILED + listed))
        return 1
    fi
    echo "==> ctest in $dir/ $* ($listed tests, ${left}s left)"
    # --stop-time: ctest kills a test still running then and starts no more; a time of day past
    # midnight is taken as tomorrow's.
    (cd "$ROOT/$dir" && env "$@" TMPDIR="$RUN/tmp" WEIR_TEST_PIDS="$RUN/pids" \
        ctest --output-on-failure --no-tests=error -j "$JOBS" \
        --stop-time "$(date -d "+$left seconds" +%H:%M:%S)") 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    stop_leftovers
    if grep -q 'The stop time has been passed' "$log"; then
        PROBLEMS+=("ctest in $dir/ ran out of time (WEIR_TEST_BUDGET)")
    fi
    line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1)
    if [[ -z $line ]]; then
        PROBLEMS+=("ctest in $dir/ did not report results (exit $rc)")
        FAILED=$((FAILED + listed))
        return 1
    fi
    ran=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
    failed=$(sed -E 's/.*, ([0-9]+) tests? failed.*/\1/' <<<"$line")
    PASSED=$((PASSED + ran - failed))
    FAILED=$((FAILED + failed))
    if ((ran < listed)); then
        PROBLEMS+=("ctest in $dir/: $((listed - ran)) of $listed tests never ran")
        FAILED=$((FAILED + listed - ran))
    fi
    ((failed == 0 && rc == 0)) || PROBLEMS+=("ctest in $dir/: $failed of $ran failed (exit $rc)")
    return 0
}

run_ctest build

SAN=$ROOT/build-asan/sanitizer-logs
rm -rf "$SAN"
mkdir -p "$SAN"
asan_ran=1
run_ctest build-asan \
    ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:log_path=$SAN/asan" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$SAN/ubsan" || asan_ran=0

reports=("$SAN"/asan.* "$SAN"/ubsan.*)
nreports=0
for f in "${reports[@]}"; do
    [[ -f $f ]] || continue
    nreports=$((nreports + 1))
    echo "==== sanitizer report $f"
    cat "$f"
done
# UBSan ignores log_path here (GCC's libubsan is a runtime of its own beside libasan) and writes
# to stderr. ctest keeps the output of every test, passed or failed, in LastTest.log; the
# integration tests look through the logs of the processes they started themselves (lib.sh).
LAST=$ROOT/build-asan/Testing/Temporary/LastTest.log
SANITIZER_REPORT='[0-9]+:[0-9]+: runtime error: |ERROR: [A-Za-z]+Sanitizer|SUMMARY: [A-Za-z]+Sanitizer'
if ((asan_ran)) && [[ -f $LAST ]] && grep -qE "$SANITIZER_REPORT" "$LAST"; then
    nreports=$((nreports + 1))
    echo "==== sanitizer reports in the output of the tests ($LAST)"
    grep -E -B2 -A12 "$SANITIZER_REPORT" "$LAST" | head -n 200
fi
if ((nreports == 0 && asan_ran)); then
    PASSED=$((PASSED + 1))
elif ((nreports == 0)); then
    PROBLEMS+=("no sanitizer check: the tests did not run in build-asan/")
    FAILED=$((FAILED + 1))
else
    PROBLEMS+=("$nreports sanitizer reports (printed above, kept in $SAN)")
    FAILED=$((FAILED + 1))
fi

summary
((${#PROBLEMS[@]} == 0 && FAILED == 0))
