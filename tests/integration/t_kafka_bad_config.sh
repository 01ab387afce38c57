#!/usr/bin/env bash
# `weir check` refuses a Kafka mapping's bad settings with file:line:col and the rule broken, and
# exits 2: the stream keys' ranges (reference 1.1), the Kafka keys' values, a kafka:// URI without
# a topic or a port, a kafka_config property librdkafka refuses (or one weir sets itself), an
# on_failure destination that is the source topic, a stream key on a redis:// mapping. Every
# error of a file is reported, and `weir run` refuses such a file before starting anything.
source "$(dirname "$0")/lib.sh"

# A valid file, one setting a line, so that each variant's error has a known position.
base() {
    cat <<YAML
functions:
  - name: fn
    url: http://127.0.0.1:9
mappings:
  - name: orders
    source: kafka://127.0.0.1:9092/orders
    function: fn
    maximum_retry_attempts: 2
    maximum_record_age_in_seconds: 60
    parallelization_factor: 2
    starting_position: TRIM_HORIZON
    event_format: SelfManagedKafka
    kafka_config: {session.timeout.ms: "6000"}
    destination_config: {on_failure: {destination: "file://$T/failures"}}
  - name: queue
    source: redis://127.0.0.1:6379/0/q
    function: fn
    batch_size: 10
YAML
}

config_variant base 0 ""
config_check base
[[ $RC == 0 ]] || fail "the base file is refused ($RC): $OUT"
ok "the base file passes: $OUT"

config_variant age 9 "    maximum_record_age_in_seconds: 30"
config_expect_error age 9 "5|36" "maximum_record_age_in_seconds 30" "-1" "60..604800"

config_variant pf 10 "    parallelization_factor: 11"
config_expect_error pf 10 "5|29" "parallelization_factor 11" "1..10"

config_variant retries 8 "    maximum_retry_attempts: -2"
config_expect_error retries 8 "5|29" "maximum_retry_attempts -2" "-1..10000"

config_variant position 11 "    starting_position: FOO"
config_expect_error position 11 "5|24" '"FOO"' TRIM_HORIZON LATEST AT_TIMESTAMP

config_variant no_timestamp 11 "    starting_position: AT_TIMESTAMP"
config_expect_error no_timestamp 11 "5|24" AT_TIMESTAMP starting_position_timestamp

config_variant future 11 "    starting_position: AT_TIMESTAMP
    starting_position_timestamp: 2147483000"
config_expect_error future 12 "5|34" starting_position_timestamp "in the future"

config_variant format 12 "    event_format: Kinesiss"
config_expect_error format 12 "5|19" '"Kinesiss"' SelfManagedKafka Kinesis

config_variant no_port 6 "    source: kafka://127.0.0.1/orders"
config_expect_error no_port 6 "5|13" '"127.0.0.1"' "host:port"

config_variant empty_topic 6 "    source: kafka://127.0.0.1:9092/"
config_expect_error empty_topic 6 "5|13" "topic"

config_variant no_topic 6 "    source: kafka://127.0.0.1:9092"
config_expect_error no_topic 6 "5|13" "topic"
grep -q "no bootstrap servers" <<<"$OUT" &&
    bug "no_topic: kafka://127.0.0.1:9092 (servers given, topic missing) is refused as having" \
        "no bootstrap servers: $(grep -m1 "no_topic.yaml" <<<"$OUT" | sed "s|^$T/||")"

config_variant bad_property 13 '    kafka_config: {session.timeout.ms: "6000", no.such.property: "1"}'
config_expect_error bad_property 13 "5|19" "kafka_config.no.such.property" "No such configuration property"

config_variant bad_value 13 '    kafka_config: {session.timeout.ms: "soon"}'
config_expect_error bad_value 13 "5|19" "kafka_config.session.timeout.ms" "Invalid value"

config_variant weirs_own 13 '    kafka_config: {enable.auto.offset.store: "true"}'
config_expect_error weirs_own 13 "5|19" "kafka_config.enable.auto.offset.store" "weir's to set"

# A failed record written back to the topic it came from would come back forever.
config_variant same_topic 14 '    destination_config: {on_failure: {destination: "kafka://127.0.0.1:9092/orders"}}'
config_expect_error same_topic 14 "5|39|52" "on_failure destination is the source topic 'orders'"
config_variant other_topic 14 '    destination_config: {on_failure: {destination: "kafka://127.0.0.1:9092/orders-failed"}}'
config_check other_topic
[[ $RC == 0 ]] || fail "other_topic: a kafka:// destination on another topic is refused ($RC): $OUT"
ok "other_topic: a kafka:// destination on another topic passes"

config_variant redis_stream_key 18 "    maximum_retry_attempts: 2"
config_expect_error redis_stream_key 18 "5|29" "maximum_retry_attempts" "applies only to stream sources" "redis://"

# Every error of a file, in file order (a mapping's source rules, such as event_format's values, run
# only once its keys read cleanly: docs/configuration.md).
base | awk 'NR == 8 { print "    maximum_retry_attempts: -2"; next }
    NR == 10 { print "    parallelization_factor: 0"; next }
    NR == 18 { print "    parallelization_factor: 3"; next } { print }' >"$T/three.yaml"
config_check three
[[ $RC == 2 ]] || fail "three: weir check exited $RC; output: $OUT"
got=$(grep -oE "^$T/three.yaml:[0-9]+:" <<<"$OUT" | sed "s|^$T/three.yaml:||" | paste -sd' ')
[[ $got == "8: 10: 18:" ]] || fail "three: errors at lines '$got', expected 8, 10 and 18 in order: $OUT"
ok "three: all three errors reported, in file order (lines 8, 10, 18)"

# weir run refuses a bad file the same way, before starting anything.
RC=0
OUT=$(timeout "$HANG_SECS" "$WEIR" run -c "$T/pf.yaml" 2>&1) || RC=$?
[[ $RC == 2 ]] || fail "weir run on a bad file exited $RC, expected 2: $OUT"
grep -qE "^$T/pf.yaml:10:(5|29): .*parallelization_factor 11" <<<"$OUT" ||
    fail "weir run does not name the error: $OUT"
grep -q "nothing was started" <<<"$OUT" || fail "weir run does not say nothing was started: $OUT"
ok "weir run refuses the same file with exit 2 before starting anything"

no_bugs
pass
