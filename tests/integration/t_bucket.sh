#!/usr/bin/env bash
# A directory as an S3 bucket, through the asynchronous queue to a real function: 10,000 files
# created -> 10,000 ObjectCreated:Put events, one each, every one the shape of reference
# section 4.5 (its eTag the file's MD5); a burst inside brand-new subdirectories, nothing missed;
# temporary files and a name that is not UTF-8 not announced (the latter logged, weir running
# on); deletes -> ObjectRemoved:Delete, one per file, also for every file of a directory moved
# out; a second mapping on the same directory (deletes only) gets exactly the deletes. The
# bucket is on tmpfs.
source "$(dirname "$0")/lib.sh"

tmpfs_dir SHM
B=$SHM/photos
mkdir -p "$B"
start_fn_http --record "$T/rec_deletes"
DELETES_URL=$FN_URL
start_fn_http --record "$T/rec" --events "$T/events"

cat >"$T/weir.yaml" <<YAML
functions:
  - name: thumbs
    url: $FN_URL
    timeout: 10
  - name: deletes
    url: $DELETES_URL
mappings:
  - name: photos
    source: file://$B
    function: thumbs
    events: ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
  - name: deletes
    source: file://$B
    function: deletes
    events: ["s3:ObjectRemoved:*"]
state_dir: $T/state
YAML
start_weir "$T/weir.yaml"
wait_caught_up

created() { announced ObjectCreated:Put "$T/rec" | grep -c "^$1" || true; }

t0=$(now)
for i in $(seq -w 1 10000); do echo "photo $i" >"$B/p$i.jpg"; done
note "10,000 files written in $(since "$t0")s"
wait_until '[[ $(created p) -ge 10000 ]]' 180 || fail "$(created p) of 10000 announced"
note "all announced $(since "$t0")s after the first was written"
sleep 1
[[ $(created p) == 10000 ]] || fail "$(created p) announcements for 10000 files"
[[ $(announced ObjectCreated:Put "$T/rec" | sort -u | grep -c '^p') == 10000 ]] ||
    fail "not every file announced"
ok "10,000 files: 10,000 ObjectCreated:Put events, one per file"

# Every event whole, as section 4.5 has it: one record, the fields and their types.
bad=$(jq -c 'select(
    (.Records | length) != 1 or
    (.Records[0] | .eventVersion != "2.1" or .eventSource != "aws:s3" or .awsRegion != "us-east-1"
        or (.eventTime | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$") | not)
        or (.eventName | IN("ObjectCreated:Put", "ObjectRemoved:Delete") | not)
        or (.userIdentity.principalId | type) != "string"
        or (.requestParameters.sourceIPAddress | type) != "string"
        or (.responseElements["x-amz-request-id"] | type) != "string"
        or (.responseElements["x-amz-id-2"] | type) != "string"
        or .s3.s3SchemaVersion != "1.0" or .s3.configurationId != "photos"
        or .s3.bucket.name != "photos" or .s3.bucket.arn != "arn:aws:s3:::photos"
        or (.s3.bucket.ownerIdentity.principalId | type) != "string"
        or (.s3.object.key | type) != "string"
        or (.s3.object.sequencer | test("^[0-9A-F]{16}$") | not)
        or (.eventName == "ObjectCreated:Put" and
            ((.s3.object.size | type) != "number" or (.s3.object.eTag | test("^[0-9a-f]{32}$") | not)))))' \
    "$T/events" | head -3)
[[ -z $bad ]] || fail "events not in the S3 shape: $bad"
etag=$(jq -r 'select(.Records[0].s3.object.key == "p00042.jpg") | .Records[0].s3.object.eTag' \
    "$T/events" | head -1)
[[ $etag == $(md5sum <"$B/p00042.jpg" | cut -d' ' -f1) ]] || fail "eTag $etag is not the file's MD5"
size=$(jq -r 'select(.Records[0].s3.object.key == "p00042.jpg") | .Records[0].s3.object.size' \
    "$T/events" | head -1)
[[ $size == $(stat -c %s "$B/p00042.jpg") ]] || fail "size $size is not the file's"
ok "every event has the S3 notification's shape; eTag and size are the file's"

# Files of every size around MD5's 64-byte blocks and the hashing threads' 64 KiB reads, moved in
# together (written beside the bucket first), so that a thread takes several at once: eight are
# hashed side by side, the last alone, each finished on its own. Every eTag is the file's MD5, as
# md5sum computes it.
stage=$(dirname "$B")/stage
mkdir -p "$stage" "$B/sizes"
sizes=(0 1 55 56 63 64 65 127 128 1000 4095 4096 65535 65536 65537 131072 200001 1048576 1048583 3000000)
for k in 1 2; do
    for s in "${sizes[@]}"; do head -c "$s" /dev/urandom >"$stage/s$k-$s.bin"; done
done
mv "$stage"/*.bin "$B/sizes/"
want_sizes=$((2 * ${#sizes[@]}))
wait_until '[[ $(created sizes/) -ge '"$want_sizes"' ]]' 60 ||
    fail "$(created sizes/) of $want_sizes files of many sizes announced"
sleep 0.5
(cd "$B" && md5sum sizes/*.bin | awk '{ print $2 "\t" $1 }' | sort) >"$T/sizes.md5"
jq -r 'select(.Records[0].s3.object.key | startswith("sizes/")) |
       .Records[0].s3.object | "\(.key)\t\(.eTag)"' "$T/events" | sort -u >"$T/sizes.etag"
[[ $(wc -l <"$T/sizes.etag") == "$want_sizes" ]] ||
    fail "$(wc -l <"$T/sizes.etag") eTags for $want_sizes files"
diff "$T/sizes.md5" "$T/sizes.etag" >&2 || fail "an eTag is not its file's MD5 (above)"
ok "$want_sizes files of 0 B to 3 MB moved in together: every eTag is the file's MD5"

# A burst inside directories made just now.
mkdir -p "$B/burst/a/b"
for i in $(seq -w 1 500); do echo "$i" >"$B/burst/a/b/q$i.jpg"; done
wait_until '[[ $(created burst/a/b/q) -ge 500 ]]' 60 ||
    fail "$(created burst/a/b/q) of 500 files in a new directory announced"
sleep 2
[[ $(created burst/a/b/q) == 500 ]] || fail "$(created burst/a/b/q) announcements of 500 files"
ok "a burst of 500 files in brand-new subdirectories: each announced once"

# Not objects: temporary files; a name that is not UTF-8 (said so in the log).
echo t >"$B/.upload.jpg"
echo t >"$B/big.jpg.part"
echo t >"$B/bad$(printf '\xff').jpg"
echo t >"$B/after.jpg"
wait_until '[[ $(created after.jpg) -ge 1 ]]' 30 || fail "after.jpg not announced"
wait_until 'grep -q "not UTF-8" "$WEIR_LOG"' 10 || fail "the name that is not UTF-8 was not reported"
[[ $(announced ObjectCreated:Put "$T/rec" | grep -c 'upload\|\.part\|bad') == 0 ]] ||
    fail "a temporary file or a bad name was announced"
ok "temporary files ignored; a name that is not UTF-8 reported, not announced"

removed() { announced ObjectRemoved:Delete "$1" | grep -c "^$2" || true; }
rm "$B"/p0000*.jpg
wait_until '[[ $(removed "$T/rec" p0000) -ge 9 ]]' 30 || fail "deletes not announced"

# A directory of 300 files moved out of the bucket: a delete for each.
mkdir "$B/album"
for i in $(seq -w 1 300); do echo "$i" >"$B/album/r$i.jpg"; done
wait_until '[[ $(created album/r) -ge 300 ]]' 60 || fail "the album was not announced"
mv "$B/album" "$SHM/album-elsewhere"
wait_until '[[ $(removed "$T/rec" album/r) -ge 300 ]]' 30 ||
    fail "$(removed "$T/rec" album/r) of 300 deletes for a directory moved out"
sleep 2
[[ $(removed "$T/rec" p0000) == 9 && $(removed "$T/rec" album/r) == 300 ]] ||
    fail "deletes announced more than once: $(removed "$T/rec" p0000) and $(removed "$T/rec" album/r)"
ok "9 files deleted and a directory of 300 moved out: one ObjectRemoved:Delete each"

# The mapping that takes only deletes on the same directory got exactly those, no creates.
wait_until '[[ $(removed "$T/rec_deletes" album/r) -ge 300 ]]' 30 || fail "the deletes mapping lags"
[[ $(removed "$T/rec_deletes" p0000) == 9 && $(removed "$T/rec_deletes" album/r) == 300 &&
    $(announced ObjectCreated:Put "$T/rec_deletes" | wc -l) == 0 ]] ||
    fail "the deletes mapping got: $(records "$T/rec_deletes" | cut -f3 | sort | uniq -c)"
ok "a second mapping on the directory, deletes only: exactly the 309 deletes"

stop_weir
pass
