#!/usr/bin/env bash
# A tiny weir exec function. The event (SQS shape: {"Records": [...]}) arrives on stdin and the
# result goes to stdout; stderr is passed through to weir's own.
# It prints one line per message, and reports the messages whose body contains "fail" as failed
# (a partial batch response), so they come back and end in the dead-letter list.
set -euo pipefail

event=$(cat)
jq -r '.Records[] |
    "function.sh: message \(.messageId) receive #\(.attributes.ApproximateReceiveCount): \(.body)"' \
    <<<"$event" >&2
jq -c '{batchItemFailures: [.Records[] | select(.body | contains("fail"))
    | {itemIdentifier: .messageId}]}' <<<"$event"
