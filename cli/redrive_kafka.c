/* `weir redrive --from kafka://host:port/failed-topic`: moves a stream's failed records (what a
 * Kafka topic destination holds: each failed record itself, with weir-source-* headers naming
 * where it came from) back into the topic each came from, on the same cluster, so the stream
 * reads them again. Key, value and the record's own headers are kept; weir's origin headers are
 * dropped. Every partition of the failed topic is read from the offset committed for the group
 * weir-redrive-<failed topic> (assigned, not subscribed: no group join to wait for), and that
 * offset moves only past records whose copy the cluster acknowledged (acks=all), so a redrive
 * stopped midway loses nothing (the record in hand may be sent twice); one at a time, at a
 * bounded rate, with a count, until every partition is read to its end. Blocking: a command, not
 * the loop. */
#include "cli/redrive.h"

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/mem.h"
#include "pollers/kafka.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE   2
#define CALL_MS      10000

static const char ORIGIN_TOPIC[] = "weir-source-topic";
static const char ORIGIN_PARTITION[] = "weir-source-partition";
static const char ORIGIN_PREFIX[] = "weir-";

struct kredrive {
    char *servers, *topic;
    rd_kafka_t *consumer, *producer;
    long moved;
    bool delivered, delivery_failed;
    char delivery_error[256];
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct kredrive *kr = opaque;
    kr->delivered = true;
    if (m->err) {
        kr->delivery_failed = true;
        snprintf(kr->delivery_error, sizeof(kr->delivery_error), "%s", rd_kafka_err2str(m->err));
    }
}

static rd_kafka_t *client(struct kredrive *kr, rd_kafka_type_t type)
{
    char why[512], group[300];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    snprintf(group, sizeof(group), "weir-redrive-%s", kr->topic);
    rd_kafka_conf_set(conf, "bootstrap.servers", kr->servers, why, sizeof(why));
    if (type == RD_KAFKA_CONSUMER) {
        rd_kafka_conf_set(conf, "group.id", group, why, sizeof(why));
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", why, sizeof(why));
        rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", why, sizeof(why));
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", why, sizeof(why));
    } else {
        rd_kafka_conf_set(conf, "acks", "all", why, sizeof(why));
        rd_kafka_conf_set(conf, "enable.idempotence", "true", why, sizeof(why));
        rd_kafka_conf_set(conf, "message.timeout.ms", "30000", why, sizeof(why));
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    }
    rd_kafka_conf_set_opaque(conf, kr);
    rd_kafka_t *rk = rd_kafka_new(type, conf, why, sizeof(why));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "weir redrive: kafka client: %s\n", why);
    }
    return rk;
}

/* Copies m to the topic its weir-source-topic header names and waits for the cluster's ack. */
static int move_one(struct kredrive *kr, const rd_kafka_message_t *m)
{
    rd_kafka_headers_t *in = NULL;
    const void *value;
    size_t size;
    char origin[256];
    if (rd_kafka_message_headers(m, &in) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(in, ORIGIN_TOPIC, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        !value || size == 0 || size >= sizeof(origin)) {
        fprintf(stderr,
                "weir redrive: %s [%d] offset %lld has no %s header: not a failed record weir "
                "wrote; stopping\n",
                kr->topic, m->partition, (long long)m->offset, ORIGIN_TOPIC);
        return -1;
    }
    memcpy(origin, value, size);
    origin[size] = '\0';
    /* Back into the partition it came from, so it keeps its place among its key's records. */
    int32_t partition = RD_KAFKA_PARTITION_UA;
    char num[16];
    if (rd_kafka_header_get_last(in, ORIGIN_PARTITION, &value, &size) == 0 && value && size > 0 &&
        size < sizeof(num)) {
        memcpy(num, value, size);
        num[size] = '\0';
        char *end;
        long p = strtol(num, &end, 10);
        if (*end == '\0' && p >= 0 && p <= INT32_MAX)
            partition = (int32_t)p;
    }
    if (!weir_kafka_topic_ok(origin) || !strcmp(origin, kr->topic)) {
        fprintf(stderr,
                "weir redrive: %s [%d] offset %lld names topic \"%s\", which cannot take "
                "it back; stopping\n",
                kr->topic, m->partition, (long long)m->offset, origin);
        return -1;
    }
    rd_kafka_headers_t *out = rd_kafka_headers_new(8);
    const char *name;
    for (size_t i = 0; rd_kafka_header_get_all(in, i, &name, &value, &size) == 0; i++)
        if (strncmp(name, ORIGIN_PREFIX, sizeof(ORIGIN_PREFIX) - 1) != 0)
            rd_kafka_header_add(out, name, -1, value, (ssize_t)size);
    kr->delivered = kr->delivery_failed = false;
    rd_kafka_resp_err_t err = rd_kafka_producev(
        kr->producer, RD_KAFKA_V_TOPIC(origin), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(m->payload, m->len),
        RD_KAFKA_V_HEADERS(out), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (err) {
        rd_kafka_headers_destroy(out);
        fprintf(stderr, "weir redrive: cannot produce to %s: %s\n", origin, rd_kafka_err2str(err));
        return -1;
    }
    while (!kr->delivered)
        rd_kafka_poll(kr->producer, 100);
    if (kr->delivery_failed) {
        fprintf(stderr, "weir redrive: %s did not take the record back: %s\n", origin,
                kr->delivery_error);
        return -1;
    }
    /* Past it only now that its copy is acknowledged. */
    rd_kafka_topic_partition_list_t *at = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(at, kr->topic, m->partition)->offset = m->offset + 1;
    err = rd_kafka_commit(kr->consumer, at, 0);
    rd_kafka_topic_partition_list_destroy(at);
    if (err) {
        fprintf(stderr, "weir redrive: cannot commit past %s [%d] offset %lld: %s\n", kr->topic,
                m->partition, (long long)m->offset, rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

/* Assigns every partition of the failed topic at the group's committed offset (the start when
 * none); returns how many, or -1. */
static int assign_all(struct kredrive *kr)
{
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *t = rd_kafka_topic_new(kr->consumer, kr->topic, NULL);
    rd_kafka_resp_err_t err = rd_kafka_metadata(kr->consumer, 0, t, &md, CALL_MS);
    rd_kafka_topic_destroy(t);
    if (err || md->topic_cnt != 1 || md->topics[0].err) {
        fprintf(stderr, "weir redrive: cannot read %s: %s\n", kr->topic,
                rd_kafka_err2str(err             ? err
                                 : md->topic_cnt ? md->topics[0].err
                                                 : err));
        if (md)
            rd_kafka_metadata_destroy(md);
        return -1;
    }
    int n = md->topics[0].partition_cnt;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(parts, kr->topic, md->topics[0].partitions[i].id);
    rd_kafka_metadata_destroy(md);
    err = rd_kafka_committed(kr->consumer, parts, CALL_MS);
    if (!err) {
        for (int i = 0; i < n; i++)
            if (parts->elems[i].offset < 0)
                parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
        err = rd_kafka_assign(kr->consumer, parts);
    }
    rd_kafka_topic_partition_list_destroy(parts);
    if (err) {
        fprintf(stderr, "weir redrive: cannot read %s from its committed offsets: %s\n", kr->topic,
                rd_kafka_err2str(err));
        return -1;
    }
    return n;
}

int weir_redrive_kafka(const char *from, double rate, long limit)
{
    struct kredrive kr = {0};
    char why[256];
    int code = EXIT_RUNTIME;
    if (!weir_kafka_uri_parse(from, &kr.servers, &kr.topic, why, sizeof(why))) {
        fprintf(stderr, "weir redrive: --from %s: %s\n", from, why);
        return EXIT_USAGE;
    }
    kr.consumer = client(&kr, RD_KAFKA_CONSUMER);
    kr.producer = client(&kr, RD_KAFKA_PRODUCER);
    if (!kr.consumer || !kr.producer)
        goto out;
    rd_kafka_poll_set_consumer(kr.consumer);
    int partitions = assign_all(&kr);
    if (partitions <= 0)
        goto out;
    int64_t started = weir_clock_mono_ms(), shown = started;
    /* Partitions at their end now; one that gets a record again is not. */
    rd_kafka_topic_partition_list_t *ended = rd_kafka_topic_partition_list_new(partitions);
    int at_end = 0;
    code = 0;
    while ((!limit || kr.moved < limit) && at_end < partitions) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(kr.consumer, 200);
        int64_t now = weir_clock_mono_ms();
        if (!m)
            continue;
        if (!m->err && rd_kafka_topic_partition_list_del(ended, kr.topic, m->partition))
            at_end--;
        if (m->err) {
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF &&
                !rd_kafka_topic_partition_list_find(ended, kr.topic, m->partition)) {
                rd_kafka_topic_partition_list_add(ended, kr.topic, m->partition);
                at_end++;
            } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                fprintf(stderr, "weir redrive: reading %s: %s\n", kr.topic,
                        rd_kafka_err2str(m->err));
            rd_kafka_message_destroy(m);
            continue;
        }
        int moved = move_one(&kr, m);
        rd_kafka_message_destroy(m);
        if (moved != 0) {
            code = EXIT_RUNTIME;
            break;
        }
        kr.moved++;
        if (now - shown >= 1000) {
            fprintf(stderr, "weir redrive: %ld moved back into their topics ...\n", kr.moved);
            shown = now;
        }
        if (rate > 0) {
            int64_t due = started + (int64_t)((double)kr.moved * 1000.0 / rate);
            if (due > now)
                usleep((useconds_t)((due - now) * 1000));
        }
    }
    rd_kafka_topic_partition_list_destroy(ended);
    fprintf(stderr, "weir redrive: %ld moved back into their topics\n", kr.moved);
out:
    if (kr.consumer) {
        rd_kafka_assign(kr.consumer, NULL);
        rd_kafka_consumer_close(kr.consumer);
        rd_kafka_destroy(kr.consumer);
    }
    if (kr.producer) {
        rd_kafka_flush(kr.producer, CALL_MS);
        rd_kafka_destroy(kr.producer);
    }
    free(kr.servers);
    free(kr.topic);
    return code;
}
