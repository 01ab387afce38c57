#!/usr/bin/env bash
# Builds weir optimised (RelWithDebInfo: -O2 -g) and runs the Redis source benchmark,
# bench_redis, with every argument passed through (see docs/benchmarks.md).
#   scripts/bench.sh                      # the full run: 1,000,000 messages, batch 10 and 100
#   scripts/bench.sh --messages 100000    # a quick run
# The build is scripts/setup.sh's (build/); BUILD_DIR=dir builds only weir and bench_redis there
# instead, also RelWithDebInfo. Build output goes to stderr; stdout carries only the figures.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [[ -z ${BUILD_DIR:-} && -x $ROOT/scripts/setup.sh ]]; then
    "$ROOT/scripts/setup.sh" >&2
    build=$ROOT/build
else
    build=${BUILD_DIR:-$ROOT/build-bench}
    # A Debug or sanitizer build would measure the wrong program.
    cmake -S "$ROOT" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEIR_SANITIZE=OFF >&2
    cmake --build "$build" -j"$(nproc)" --target weir bench_redis >&2
fi

exec "$build/bench_redis" --weir "$build/weir" "$@"
