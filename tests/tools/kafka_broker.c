/* kafka_broker: a Kafka-protocol cluster on loopback for the tests, librdkafka's mock cluster in a
 * process of its own. It owns the brokers, their topics and the bootstrap file; SIGUSR1 takes every
 * broker down and SIGUSR2 brings them back with their data (which lives only in this process'
 * memory), SIGTERM/SIGINT stop it. A test tool: it must never be needed by weir itself.
 *
 *   kafka_broker [--brokers N] [--topic NAME:PARTITIONS]... [--bootstrap-file PATH] [--debug CTX]
 *
 * The mock picks its own ports, so the bootstrap string ("127.0.0.1:port,...") goes to stdout and,
 * once every topic exists, to PATH (written to a temporary file and renamed, so a reader never
 * sees half of it). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "core/log.h"

#define COMPONENT  "kafka_broker"
#define MAX_TOPICS 64

struct topic_arg {
    char *name;
    int partitions;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: kafka_broker [--brokers N] [--topic NAME:PARTITIONS]... "
               "[--bootstrap-file PATH] [--debug CONTEXTS]\n");
}

/* "NAME:PARTITIONS" into t; the name is copied. */
static int parse_topic(const char *arg, struct topic_arg *t)
{
    const char *colon = strrchr(arg, ':');
    if (!colon || colon == arg)
        return -1;
    char *end;
    errno = 0;
    long n = strtol(colon + 1, &end, 10);
    if (errno || *end || n < 1 || n > 10000)
        return -1;
    t->name = strndup(arg, (size_t)(colon - arg));
    t->partitions = (int)n;
    return t->name ? 0 : -1;
}

static int write_bootstrap(const char *path, const char *bootstrap)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp))
        return -1;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    int bad = fprintf(f, "%s\n", bootstrap) < 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* The mock's handle logs through here, so its lines look like the tool's own. The handle has no
 * bootstrap.servers of its own (it only hosts the cluster), which it warns about: not news. */
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    if (!strcmp(fac, "CONFWARN") && strstr(buf, "bootstrap.servers"))
        return;
    weir_log(level <= 3   ? WEIR_LOG_ERROR
             : level <= 4 ? WEIR_LOG_WARN
                          : WEIR_LOG_INFO,
             COMPONENT, "librdkafka %s: %s", fac, buf);
}

int main(int argc, char **argv)
{
    int n_brokers = 1, n_topics = 0, rc = 1;
    const char *bootstrap_file = NULL, *debug = NULL;
    struct topic_arg topics[MAX_TOPICS];
    rd_kafka_t *rk = NULL;
    rd_kafka_mock_cluster_t *mcluster = NULL;
    char errstr[512];

    for (int i = 1; i < argc; i++) {
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--brokers") && next) {
            char *end;
            long n = strtol(next, &end, 10);
            if (*end || n < 1 || n > 32) {
                fprintf(stderr, "kafka_broker: --brokers takes 1..32, not %s\n", next);
                goto out;
            }
            n_brokers = (int)n;
            i++;
        } else if (!strcmp(argv[i], "--topic") && next) {
            if (n_topics == MAX_TOPICS || parse_topic(next, &topics[n_topics]) != 0) {
                fprintf(stderr, "kafka_broker: --topic takes NAME:PARTITIONS (1..10000), not %s\n",
                        next);
                goto out;
            }
            n_topics++;
            i++;
        } else if (!strcmp(argv[i], "--bootstrap-file") && next) {
            bootstrap_file = next;
            i++;
        } else if (!strcmp(argv[i], "--debug") && next) {
            debug = next;
            i++;
        } else {
            usage(stderr);
            goto out;
        }
    }

    /* Every thread librdkafka starts inherits this mask, so the signals reach sigwaitinfo below
     * and nothing else. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGUSR1);
    sigaddset(&sigs, SIGUSR2);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    /* The mock cluster lives inside a client handle; this one never talks to it. */
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, on_log);
    if (debug &&
        rd_kafka_conf_set(conf, "debug", debug, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        weir_error(COMPONENT, "bad --debug error=\"%s\"", errstr);
        rd_kafka_conf_destroy(conf);
        goto out;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        weir_error(COMPONENT, "cannot create a client handle error=\"%s\"", errstr);
        rd_kafka_conf_destroy(conf);
        goto out;
    }
    mcluster = rd_kafka_mock_cluster_new(rk, n_brokers);
    if (!mcluster) {
        weir_error(COMPONENT, "cannot create the mock cluster brokers=%d", n_brokers);
        goto out;
    }
    int replication = n_brokers < 3 ? n_brokers : 3;
    for (int i = 0; i < n_topics; i++) {
        rd_kafka_resp_err_t err =
            rd_kafka_mock_topic_create(mcluster, topics[i].name, topics[i].partitions, replication);
        if (err) {
            weir_error(COMPONENT, "cannot create topic=%s partitions=%d error=\"%s\"",
                       topics[i].name, topics[i].partitions, rd_kafka_err2str(err));
            goto out;
        }
        weir_info(COMPONENT, "topic created topic=%s partitions=%d replication=%d", topics[i].name,
                  topics[i].partitions, replication);
    }

    const char *bootstrap = rd_kafka_mock_cluster_bootstraps(mcluster);
    if (bootstrap_file && write_bootstrap(bootstrap_file, bootstrap) != 0) {
        weir_error(COMPONENT, "cannot write the bootstrap file path=%s error=\"%s\"",
                   bootstrap_file, strerror(errno));
        goto out;
    }
    printf("%s\n", bootstrap);
    fflush(stdout);
    weir_info(COMPONENT, "ready brokers=%d bootstrap=%s pid=%ld", n_brokers, bootstrap,
              (long)getpid());

    for (;;) {
        int sig = sigwaitinfo(&sigs, NULL);
        if (sig < 0) {
            if (errno == EINTR)
                continue;
            weir_error(COMPONENT, "sigwaitinfo error=\"%s\"", strerror(errno));
            goto out;
        }
        if (sig == SIGUSR1 || sig == SIGUSR2) {
            bool up = sig == SIGUSR2;
            rd_kafka_resp_err_t err = up ? rd_kafka_mock_broker_set_up(mcluster, -1)
                                         : rd_kafka_mock_broker_set_down(mcluster, -1);
            if (err)
                weir_error(COMPONENT, "cannot set brokers %s error=\"%s\"", up ? "up" : "down",
                           rd_kafka_err2str(err));
            else
                weir_info(COMPONENT, "brokers %s", up ? "up" : "down");
            continue;
        }
        weir_info(COMPONENT, "stopping signal=%s", strsignal(sig));
        break;
    }
    rc = 0;

out:
    if (mcluster)
        rd_kafka_mock_cluster_destroy(mcluster);
    if (rk)
        rd_kafka_destroy(rk);
    for (int i = 0; i < n_topics; i++)
        free(topics[i].name);
    return rc;
}
