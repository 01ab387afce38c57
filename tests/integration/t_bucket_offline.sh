#!/usr/bin/env bash
# Nothing missed, nothing twice: files changed, deleted and created while weir is stopped are
# announced at the next start, each exactly once, and nothing else is; an inotify queue overflow
# (forced: weir held with SIGSTOP while 20,000 files are made, more events than the kernel's
# 16,384) is followed by a rescan that announces every missed file, once.
source "$(dirname "$0")/lib.sh"

tmpfs_dir SHM
B=$SHM/photos
mkdir -p "$B"
start_fn_http --record "$T/rec"

cat >"$T/weir.yaml" <<YAML
functions:
  - name: thumbs
    url: $FN_URL
mappings:
  - name: photos
    source: file://$B
    function: thumbs
    events: ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
state_dir: $T/state
YAML

count() { announced "$1" "$T/rec" | grep -c "$2" || true; }

for i in $(seq -w 1 100); do echo "a $i" >"$B/a$i.jpg"; done
start_weir "$T/weir.yaml"
wait_until '[[ $(count ObjectCreated:Put ^a) -ge 100 ]]' 60 || fail "the first 100 not announced"
stop_weir

# While weir is stopped: 10 rewritten, 10 deleted, 50 new.
for i in $(seq -w 1 10); do echo "a $i changed" >"$B/a0$i.jpg"; done
for i in $(seq -w 11 20); do rm "$B/a0$i.jpg"; done
for i in $(seq -w 1 50); do echo "b $i" >"$B/b$i.jpg"; done
start_weir "$T/weir.yaml"
wait_until '[[ $(count ObjectCreated:Put ^b) -ge 50 && $(count ObjectRemoved:Delete ^a) -ge 10 &&
    $(count ObjectCreated:Put ^a) -ge 110 ]]' 60 ||
    fail "after the restart: b=$(count ObjectCreated:Put ^b) deletes=$(count ObjectRemoved:Delete ^a) a=$(count ObjectCreated:Put ^a)"
sleep 2
[[ $(count ObjectCreated:Put ^b) == 50 ]] || fail "$(count ObjectCreated:Put ^b) announcements of 50 new files"
[[ $(count ObjectRemoved:Delete ^a) == 10 ]] || fail "$(count ObjectRemoved:Delete ^a) deletes of 10"
[[ $(count ObjectCreated:Put ^a) == 110 ]] ||
    fail "$(count ObjectCreated:Put ^a) announcements of a*: the 90 unchanged were announced again"
for i in $(seq -w 1 10); do
    [[ $(count ObjectCreated:Put "^a0$i.jpg") == 2 ]] || fail "a0$i.jpg rewritten offline: not announced again"
done
ok "offline: 10 rewritten, 10 deleted, 50 new -> exactly those 70 announcements at the start"

# The overflow. Held, weir reads nothing while the kernel queue fills past its limit.
kill -STOP "$WEIR_PID"
for i in $(seq -w 1 20000); do : >"$B/c$i.jpg"; done
kill -CONT "$WEIR_PID"
wait_until 'grep -q "inotify queue overflowed" "$WEIR_LOG"' 30 || fail "no overflow was seen"
wait_until '[[ $(count ObjectCreated:Put ^c) -ge 20000 ]]' 180 ||
    fail "$(count ObjectCreated:Put ^c) of 20000 files announced after the overflow"
sleep 2
[[ $(count ObjectCreated:Put ^c) == 20000 ]] ||
    fail "$(count ObjectCreated:Put ^c) announcements for 20000 files: some twice"
ok "inotify overflow: the rescan announced every one of 20,000 files, once"

stop_weir
pass
