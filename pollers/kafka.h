/* The Kafka source's settings and the parsing of its URI, exposed for its tests. The poller
 * itself is pollers/kafka.c. */
#ifndef WEIR_KAFKA_H
#define WEIR_KAFKA_H

#include <stdbool.h>
#include <stddef.h>

/* A Kafka mapping's own keys (its row's table). */
struct weir_kafka_settings {
    char *consumer_group_id;         /* NULL: weir-<mapping> */
    char *starting_position;         /* TRIM_HORIZON (default), LATEST or AT_TIMESTAMP */
    int starting_position_timestamp; /* epoch seconds, with AT_TIMESTAMP */
    char *event_format;              /* SelfManagedKafka (default) or Kinesis */
    char **kafka_config;             /* librdkafka properties: name, value, ... */
    size_t n_kafka_config;
};

/* Kafka's rules for a topic name: 1..249 of [a-zA-Z0-9._-], not "." or "..". */
bool weir_kafka_topic_ok(const char *topic);

/* Splits kafka://host:port[,host:port...]/topic[?properties] into its bootstrap servers and
 * topic (new strings; the properties are left out). false with why filled when uri is not of
 * that form. */
bool weir_kafka_uri_parse(const char *uri, char **servers, char **topic, char *why, size_t why_len);

#endif
