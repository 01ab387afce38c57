#!/usr/bin/env bash
# Builds weir optimised (RelWithDebInfo: -O2 -g) and runs the Redis source benchmark,
# bench_redis, with every argument passed through (see docs/benchmarks.md). Each figure is printed
# beside the same work done without weir, measured in the same run:
#   batch 1 (maximum_concurrency 16 unless --concurrency): beside a plain HTTP client's POST rate
#     to the same null function at the same concurrency;
#   batch 10 and 100: beside the claim and delete scripts driven by a plain Redis client;
#   a FIFO queue (batch 10, 1,000 groups; --no-fifo skips it, --fifo-groups N): beside the FIFO
#     claim and delete scripts, with every group checked for order and exclusivity.
#   scripts/bench.sh                      # the full run: 1,000,000 messages, batch 1, 10, 100, FIFO
#   scripts/bench.sh --messages 100000    # a quick run
#   scripts/bench.sh --batch-sizes 100 --no-fifo
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
