#!/usr/bin/env bash
# Builds a libFuzzer target with clang (AddressSanitizer + UBSan) and runs it for a bounded time;
# any crash, leak, sanitizer report or abort fails the run. Registered as a ctest test
# (fuzz.<target>) by CMakeLists.txt.
#   tests/fuzz/run.sh TARGET OUTDIR [SECONDS]      e.g. tests/fuzz/run.sh filter build/fuzz 30
# Needs clang and its libFuzzer runtime (Debian: clang, libclang-rt-14-dev; scripts/setup.sh
# installs them). The corpus it grows is kept in OUTDIR/corpus-TARGET for the next run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TARGET=${1:?usage: run.sh TARGET OUTDIR [SECONDS]}
OUT=${2:?usage: run.sh TARGET OUTDIR [SECONDS]}
SECS=${3:-30}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

case $TARGET in
filter)
    SOURCES=(tests/fuzz/fuzz_filter.c mapping/filter.c mapping/format_sqs.c model/record.c
        model/row.c core/buf.c core/mem.c core/hash.c core/log.c core/clock.c core/status.c
        core/text.c)
    ;;
pgoutput)
    SOURCES=(tests/fuzz/fuzz_pgoutput.c pollers/pgoutput.c model/row.c core/buf.c core/mem.c
        core/u32map.c core/text.c)
    # The staleness check below reads only the mapping/, model/ and core/ headers.
    for h in pollers/pgoutput.h tests/unit/pgoutput_captured.h; do
        [[ $ROOT/$h -nt $OUT/fuzz_$TARGET ]] && rm -f "$OUT/fuzz_$TARGET"
    done
    # The target writes its seeds (the captured messages) into the seed directory itself.
    export WEIR_FUZZ_SEED_DIR=$OUT/seeds-$TARGET
    ;;
http_response)
    SOURCES=(tests/fuzz/fuzz_http_response.c connectors/http_response.c connectors/http_shared.c
        core/buf.c core/mem.c core/status.c core/text.c)
    for h in connectors/http_response.h connectors/http_shared.h; do
        [[ $ROOT/$h -nt $OUT/fuzz_$TARGET ]] && rm -f "$OUT/fuzz_$TARGET"
    done
    # The target writes its seeds (real answers) into the seed directory itself.
    export WEIR_FUZZ_SEED_DIR=$OUT/seeds-$TARGET
    ;;
*)
    echo "FAIL: run.sh: unknown fuzz target '$TARGET'" >&2
    exit 2
    ;;
esac

CLANG=
for c in clang clang-14; do
    if command -v "$c" >/dev/null; then
        CLANG=$c
        break
    fi
done
if [[ -z $CLANG ]]; then
    echo "FAIL: fuzz.$TARGET: clang is not installed (scripts/setup.sh installs clang and" \
        "libclang-rt-14-dev)"
    exit 1
fi

BIN=$OUT/fuzz_$TARGET
rebuild=0
[[ -x $BIN ]] || rebuild=1
for s in "${SOURCES[@]}" mapping/*.h model/*.h core/*.h; do
    [[ $ROOT/$s -nt $BIN ]] && rebuild=1
done
if ((rebuild)); then
    echo "==> building $BIN with $CLANG"
    srcs=()
    for s in "${SOURCES[@]}"; do srcs+=("$ROOT/$s"); done
    # shellcheck disable=SC2046
    if ! "$CLANG" -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined \
        -fno-sanitize-recover=all -fno-omit-frame-pointer -Wall -Wextra -Werror \
        -Wno-unused-parameter -I"$ROOT" $(pkg-config --cflags jansson libevent libcurl) "${srcs[@]}" \
        $(pkg-config --libs jansson libevent libcurl) -lm -o "$BIN.tmp" 2>"$OUT/build-$TARGET.log"; then
        cat "$OUT/build-$TARGET.log"
        echo "FAIL: fuzz.$TARGET: the fuzzer did not build (is libclang-rt-14-dev installed?)"
        exit 1
    fi
    mv "$BIN.tmp" "$BIN"
fi

CORPUS=$OUT/corpus-$TARGET
SEEDS=$OUT/seeds-$TARGET
DICT=$OUT/$TARGET.dict
mkdir -p "$CORPUS"
rm -rf "$SEEDS"
mkdir -p "$SEEDS"

# Seeds and a dictionary per input language; fuzz_http_response and fuzz_pgoutput also write
# seeds of their own into $SEEDS when they start.
if [[ $TARGET == http_response ]]; then
    cat >"$DICT" <<'DICT'
"HTTP/1.1 "
"HTTP/1.0 "
"\x0d\x0a"
"\x0d\x0a\x0d\x0a"
"Content-Length: "
"Transfer-Encoding: chunked"
"Connection: close"
"Connection: keep-alive"
"X-Amz-Function-Error: "
"Error-Type: "
"100 Continue"
";ext=1"
"0\x0d\x0a\x0d\x0a"
DICT
else
# Filter patterns of every operator. The first byte chooses the record shape: 0x00 a plain
# EventBridge event, 0x01 an SQS record.
i=0
while IFS= read -r line; do
    [[ -z $line ]] && continue
    i=$((i + 1))
    printf '\x01%s' "$line" >"$SEEDS/sqs-$i"
    printf '\x00%s' "$line" >"$SEEDS/event-$i"
done <<'PATTERNS'
{"body": {"status": ["PAID", "SHIPPED"], "price": [{"numeric": [">", 10, "<=", 20]}]}}
{"body": [{"prefix": "ping"}, {"suffix": {"equals-ignore-case": ".PNG"}}]}
{"body": {"ip": [{"cidr": "10.0.0.0/24"}, {"cidr": "2001:db8::/32"}]}}
{"body": {"name": [{"equals-ignore-case": "alice"}, {"wildcard": "a*b\\*c*"}]}}
{"body": {"state": [{"anything-but": ["stopped", "overloaded"]}, {"anything-but": {"prefix": "init"}}]}}
{"body": {"x": [{"anything-but": [100, 200]}, {"anything-but": {"equals-ignore-case": ["a", "b"]}}]}}
{"$or": [{"messageId": ["m-1"]}, {"attributes": {"SenderId": [{"exists": true}]}}]}
{"body": {"$or": [{"a": [null]}, {"b": [true, false, ""]}, {"c": {"d": [{"exists": false}]}}]}}
{"messageAttributes": {"t": {"stringValue": [{"anything-but": {"wildcard": "*x*"}}]}}, "awsRegion": ["us-east-1"]}
{"body": {"city": ["Z\u00fcrich", "\ud83d\ude00"], "n": [300, 3e2, -0.5, 123456789012]}}
PATTERNS
cat >"$DICT" <<'DICT'
"\"prefix\""
"\"suffix\""
"\"equals-ignore-case\""
"\"anything-but\""
"\"numeric\""
"\"exists\""
"\"cidr\""
"\"wildcard\""
"\"$or\""
"\"body\""
"\"messageId\""
"\"attributes\""
"\"messageAttributes\""
"\">=\""
"\"<\""
"\"=\""
"true"
"false"
"null"
"\\u00"
"\\ud83d\\ude00"
"/24"
"::"
"1e9"
"-0.000001"
DICT
fi


echo "==> fuzzing $TARGET for ${SECS}s (corpus $CORPUS)"
set +e
"$BIN" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=4200 \
    -dict="$DICT" -print_final_stats=1 -artifact_prefix="$OUT/crash-$TARGET-" \
    "$CORPUS" "$SEEDS" >"$OUT/fuzz-$TARGET.log" 2>&1
rc=$?
set -e
grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "$OUT/fuzz-$TARGET.log" || true
if ((rc != 0)); then
    tail -n 60 "$OUT/fuzz-$TARGET.log"
    echo "FAIL: fuzz.$TARGET: the fuzzer stopped with status $rc (artifacts: $OUT/crash-$TARGET-*)"
    exit 1
fi
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$OUT/fuzz-$TARGET.log")
if [[ -z $runs || $runs -lt 1000 ]]; then
    tail -n 20 "$OUT/fuzz-$TARGET.log"
    echo "FAIL: fuzz.$TARGET: only ${runs:-0} inputs ran"
    exit 1
fi
echo "PASS: fuzz.$TARGET: $runs inputs in ${SECS}s, no crash, leak or sanitizer report"
