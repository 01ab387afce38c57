#!/usr/bin/env bash
# A weir exec function for the quickstart: the S3 event (reference section 4.5) arrives on stdin,
# the result goes to stdout, stderr to weir's log. For each object created it writes a thumbnail
# at most 200 pixels wide or high, as PNG, into the thumbnails directory, with libvips (Debian's
# libvips-tools). A file it cannot read as an image makes it fail: weir retries, then writes the
# failure record to the on_failure directory.
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
# Read before the loop, so a bad event fails the function rather than making no thumbnail.
keys=$(jq -r '.Records[] | select(.eventName | startswith("ObjectCreated")) | .s3.object.key' \
    <<<"$event")
made=0
while IFS= read -r key; do
    [[ -n $key ]] || continue
    path=$(form_decode "$key")
    # A key names a file below the bucket; an event that says otherwise is refused.
    case "/$path/" in
    */../* | */./* | //*)
        echo "thumbnail.sh: refusing key '$path': not a path below the bucket" >&2
        exit 1
        ;;
    esac
    out="$thumbs/${path%.*}.png"
    mkdir -p "$(dirname "$out")"
    # `vips thumbnail` writes to exactly the name given (vipsthumbnail's -o is a template).
    vips thumbnail "$photos/$path" "$out" 200
    echo "thumbnail.sh: $path -> thumbnails/${path%.*}.png" >&2
    made=$((made + 1))
done <<<"$keys"
printf '{"thumbnails":%d}\n' "$made"
