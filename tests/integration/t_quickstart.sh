#!/usr/bin/env bash
# The README's run command, as a newcomer uses it: scripts/quickstart.sh (here with the build
# under test) makes the bucket, runs weir, and the welcome photo gets its thumbnail; a photo
# copied in gets one too; a file that is no image is retried, then its failure record lands in
# failed/; Ctrl-C stops weir, which exits 0, and so does the script.
source "$(dirname "$0")/lib.sh"

QS="$T/quick start" # a space, as a home directory may have
bash "$WEIR_SOURCE_DIR/scripts/quickstart.sh" --dir "$QS" --weir "$WEIR" >"$T/quickstart.out" 2>&1 &
SCRIPT=$!
_register "$SCRIPT" bash
_LOGS+=("$T/quickstart.out")

wait_until '[[ -s $QS/thumbnails/welcome.png ]]' 60 || fail "no thumbnail of the welcome photo"
ok "the welcome photo got its thumbnail"
cp "$QS/sample.jpg" "$QS/photos/my holiday.jpg"
wait_until '[[ -s "$QS/thumbnails/my holiday.png" ]]' 30 || fail "no thumbnail of a photo copied in"
[[ $(vipsheader -f width "$QS/thumbnails/my holiday.png") -le 200 ]] || fail "the thumbnail is too big"
ok "a photo copied in (a name with a space) got a thumbnail at most 200 pixels wide"

echo 'not a photo' >"$QS/photos/broken.jpg"
wait_until '[[ $(ls "$QS/failed" 2>/dev/null | wc -l) -ge 1 ]]' 60 || fail "no failure record"
rec=$(cat "$QS"/failed/*.json)
[[ $(jq -r .requestContext.condition <<<"$rec") == RetriesExhausted &&
    $(jq -r .requestContext.approximateInvokeCount <<<"$rec") == 2 ]] || fail "record: $rec"
[[ $(jq -r '.requestPayload.Records[0].s3.object.key' <<<"$rec") == broken.jpg ]] || fail "record: $rec"
ok "a file that is no image: retried once, then its RetriesExhausted record in failed/"

WEIR_RUN=$(pgrep -f -- "weir run -c $QS/weir.yaml") || fail "weir is not running"
kill -INT "$WEIR_RUN"
rc=0
wait "$SCRIPT" || rc=$?
[[ $rc == 0 ]] || fail "quickstart.sh exited $rc after Ctrl-C"
grep -q 'weir exited with status 0' "$T/quickstart.out" || fail "weir did not exit 0"
ok "Ctrl-C: weir and the script exit 0"
pass
