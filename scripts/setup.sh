#!/usr/bin/env bash
# Installs what weir needs on Debian 12 and builds it. Idempotent: packages already present are
# left alone (apt-get update runs only when something is missing), builds are incremental.
#   scripts/setup.sh          build/       (RelWithDebInfo)
#   scripts/setup.sh --asan   build/ and build-asan/ (Debug, AddressSanitizer + UBSan)
# Installing redis-server may start Debian's own redis service on port 6379; nothing in weir's
# scripts or tests uses it: they start their own redis-server on a free loopback port. Postgres
# is installed without Debian's default cluster (see no_main_cluster): the tests initialise
# clusters of their own.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

ASAN=0
case ${1:-} in
'') ;;
--asan | asan) ASAN=1 ;;
*)
    echo "usage: $0 [--asan]" >&2
    exit 2
    ;;
esac

# Build: compiler, CMake, and the libraries CMakeLists.txt asks pkg-config for.
# Tests: redis-server and redis-cli (real servers), jq (reading dead-letter envelopes),
# clang-format (the format check), clang and its libFuzzer runtime (the bounded fuzz runs).
# awscli (the AWS CLI v2, a real client of the Invoke API) and sqlite3 (reading and ageing the
# state store's rows). The quickstart's thumbnail function: libvips-tools (vipsthumbnail).
# Kafka, Postgres and inotify tools for the other sources; the Postgres server and its clients
# (initdb, postgres, psql, pg_recvlogical under /usr/lib/postgresql/15/bin) for the harness'
# clusters.
PACKAGES=(
    build-essential cmake pkg-config clang-format clang libclang-rt-14-dev
    libevent-dev libhiredis-dev libcurl4-openssl-dev libssl-dev libjansson-dev libyaml-dev
    libsqlite3-dev libjemalloc-dev
    libcmocka-dev librdkafka-dev libpq-dev
    redis-server redis-tools jq kcat inotify-tools awscli sqlite3 libvips-tools
    postgresql-15 postgresql-client-15
)

# Installing postgresql-15 creates a cluster 15/main and starts it on port 5432 unless
# createcluster.conf says create_main_cluster = false. Nothing of weir's uses that cluster, so
# say it before installing: written alone when postgresql-common is not installed yet (its
# postinst keeps a file already there, with UCF_FORCE_CONFFOLD below), or the one setting changed
# in the file it installed. A cluster that already exists is left alone.
no_main_cluster() {
    local conf=/etc/postgresql-common/createcluster.conf s='[[:space:]]*'
    if [[ -f $conf ]] && grep -Eq "^${s}create_main_cluster$s=$s(false|off|no|0)$s\$" "$conf"; then
        return 0
    fi
    echo "==> no default Postgres cluster: create_main_cluster = false in $conf"
    mkdir -p "$(dirname "$conf")"
    if [[ -f $conf ]]; then
        sed -i "/^${s}create_main_cluster$s=/d" "$conf"
    fi
    echo "create_main_cluster = false" >>"$conf"
}

missing=()
for p in "${PACKAGES[@]}"; do
    if [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true) != "install ok installed" ]]; then
        missing+=("$p")
    fi
done

if ((${#missing[@]})); then
    echo "==> installing: ${missing[*]}"
    if [[ $(id -u) != 0 ]]; then
        echo "setup.sh: these packages are missing and installing them needs root:" >&2
        echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive UCF_FORCE_CONFFOLD=1
    if [[ " ${missing[*]} " == *" postgresql-15 "* ]]; then
        no_main_cluster
    fi
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    echo "==> packages: all present"
fi

JOBS=$(nproc)

build() {
    local dir=$1
    shift
    echo "==> building $dir/ ($*)"
    cmake -S "$ROOT" -B "$ROOT/$dir" "$@" >/dev/null
    cmake --build "$ROOT/$dir" -j"$JOBS"
}

build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
if ((ASAN)); then
    build build-asan -DCMAKE_BUILD_TYPE=Debug -DWEIR_SANITIZE=ON
fi
echo "==> build done"
