#!/usr/bin/env bash
# A bucket loses nothing to SIGKILL: weir is killed twice while 6,000 files are being written,
# announced and invoked, and restarted; every file reaches the function (at least once: what was in flight
# may come again), the store's queue ends empty, and the catalog holds every file.
source "$(dirname "$0")/lib.sh"

tmpfs_dir SHM
B=$SHM/photos
mkdir -p "$B"
# A function slow enough that announcements pile up in the queue.
start_fn_http --record "$T/rec" --delay-ms 2

cat >"$T/weir.yaml" <<YAML
functions:
  - name: thumbs
    url: $FN_URL
    reserved_concurrency: 4
mappings:
  - name: photos
    source: file://$B
    function: thumbs
state_dir: $T/state
YAML
db() { sqlite3 "$T/state/weir.db" "$1" 2>/dev/null || echo '?'; }
got() { announced ObjectCreated:Put "$T/rec" | sort -u | wc -l; }

start_weir "$T/weir.yaml"
wait_caught_up
# Files keep coming (100 every 50 ms) while weir is killed: some are written while no weir
# watches, some announced and not yet in the catalog, some queued, some being invoked.
(for i in $(seq -w 1 6000); do
    echo "$i" >"$B/f$i.jpg"
    [[ $i == *00 ]] && sleep 0.05
done) &
WRITER=$!
for at in 1000 3000; do
    wait_until '[[ $(got) -ge '"$at"' ]]' 120 || fail "only $(got) files reached the function"
    kill9_weir
    note "killed at $(got) files delivered; queue=$(db 'SELECT count(*) FROM async_events') catalog=$(db 'SELECT count(*) FROM bucket_objects')"
    start_weir "$T/weir.yaml"
done
wait "$WRITER"
wait_until '[[ $(got) -ge 6000 ]]' 180 || fail "$(got) of 6000 files reached the function"
ok "all 6000 files reached the function ($(count_records "$T/rec") deliveries)"
wait_until '[[ $(db "SELECT count(*) FROM async_events") == 0 &&
    $(db "SELECT count(*) FROM bucket_objects") == 6000 ]]' 60 ||
    fail "queue=$(db 'SELECT count(*) FROM async_events') catalog=$(db 'SELECT count(*) FROM bucket_objects')"
ok "the queue is empty and the catalog holds all 6000"
stop_weir
pass
