#!/usr/bin/env bash
# Builds weir optimised (RelWithDebInfo: -O2 -g) and runs a source's benchmark, with every other
# argument passed through (see docs/benchmarks.md). Each figure is printed beside the same work
# done without weir, measured in the same run.
#   scripts/bench.sh [redis] [ARGS]   bench_redis: a Redis list as SQS
#     batch 1 (maximum_concurrency 16 unless --concurrency): beside a plain HTTP client's POST
#       rate to the same null function at the same concurrency;
#     batch 10 and 100: beside the claim and delete scripts driven by a plain Redis client;
#     a FIFO queue (batch 10, 1,000 groups; --no-fifo skips it, --fifo-groups N): beside the FIFO
#       claim and delete scripts, with every group checked for order and exclusivity.
#     scripts/bench.sh                      # the full run: 1,000,000 messages
#     scripts/bench.sh --messages 100000    # a quick run
#   scripts/bench.sh bucket [ARGS]    bench_bucket: a directory as an S3 bucket, files through
#     the durable asynchronous queue, beside the raw inotify rate of the same writes; then the
#     Invoke API's Event accepts per second.
#     scripts/bench.sh bucket --files 50000 --size 65536
#   scripts/bench.sh kafka [ARGS]     bench_kafka: a Kafka topic (the test broker, kafka_broker,
#     librdkafka's mock cluster, 64 partitions) through weir at batch 100 and 1000, beside a raw
#     librdkafka consumer and kcat reading the same topic; then latency at a steady produce rate.
#     scripts/bench.sh kafka                      # the full run: 1,000,000 records of 100 bytes
#     scripts/bench.sh kafka --records 200000     # a quick run
#   scripts/bench.sh postgres [ARGS]  bench_postgres: a table's changes (a Postgres 15 cluster of
#     its own, initdb in a temporary directory, wal_level=logical, fsync=off) read as a backlog by
#     weir at batch 100 and 1000, beside pg_recvlogical and a bare libpq reader of the same WAL;
#     then latency at a steady rate of one-row transactions. Needs postgresql-15 (scripts/setup.sh).
#     scripts/bench.sh postgres                          # 100,000 rows in one transaction, and
#                                                        # 10,000 one-row transactions
#     scripts/bench.sh postgres --rows 20000 --txns 2000 # a quick run
# The build is scripts/setup.sh's (build/); BUILD_DIR=dir builds only weir and the benchmark
# there instead, also RelWithDebInfo. Build output goes to stderr; stdout carries only figures.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=bench_redis
case ${1:-} in
redis) shift ;;
bucket)
    BENCH=bench_bucket
    shift
    ;;
kafka)
    BENCH=bench_kafka
    shift
    ;;
postgres)
    BENCH=bench_postgres
    shift
    ;;
esac
# bench_kafka starts the test broker built beside it.
TARGETS=(weir "$BENCH")
if [[ $BENCH == bench_kafka ]]; then
    TARGETS+=(kafka_broker)
fi

if [[ -z ${BUILD_DIR:-} && -x $ROOT/scripts/setup.sh ]]; then
    "$ROOT/scripts/setup.sh" >&2
    build=$ROOT/build
else
    build=${BUILD_DIR:-$ROOT/build-bench}
    # A Debug or sanitizer build would measure the wrong program.
    cmake -S "$ROOT" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEIR_SANITIZE=OFF >&2
    cmake --build "$build" -j"$(nproc)" --target "${TARGETS[@]}" >&2
fi

exec "$build/$BENCH" --weir "$build/weir" "$@"
