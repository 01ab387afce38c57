#!/usr/bin/env bash
# A weir exec function for the quickstart: the S3 event (reference section 4.5) arrives on stdin,
# the result goes to stdout, stderr to weir's log. For each object created it writes a thumbnail
# at most 200 pixels wide or high, as PNG, into the thumbnails directory, with vipsthumbnail
# (Debian's libvips-tools). A file it cannot read as an image makes it fail: weir retries, then
# writes the failure record to the on_failure directory.
#   thumbnail.sh PHOTOS_DIR THUMBNAILS_DIR
set -euo pipefail
photos=$1
thumbs=$2

# S3 writes keys form-URL-encoded: "+" is a space, "%XX" a byte.
form_decode() {
    local s=${1//+/ }
    printf '%b' "${s//%/\\x}"
}

event=$(cat)
made=0
while IFS= read -r key; do
    path=$(form_decode "$key")
    out="$thumbs/${path%.*}.png"
    mkdir -p "$(dirname "$out")"
    vipsthumbnail "$photos/$path" --size 200 -o "$out"
    echo "thumbnail.sh: $path -> thumbnails/${path%.*}.png" >&2
    made=$((made + 1))
done < <(jq -r '.Records[] | select(.eventName | startswith("ObjectCreated")) | .s3.object.key' \
    <<<"$event")
printf '{"thumbnails":%d}\n' "$made"
