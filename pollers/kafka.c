/* The Kafka source (kafka://host:port,host:port/topic): a librdkafka high-level consumer in the
 * mapping's consumer group (consumer_group_id, default weir-<mapping>). Records of a partition
 * are its lane, in order; the mapping and the stream policy do the rest. Offsets are stored only
 * when the mapping says every record below them is done (checkpoint), and committed by
 * librdkafka after (every second, on a revoke and at stop). Each assigned partition has its own
 * queue, read only while the mapping has room for it: a partition it holds enough of is not read
 * (librdkafka stops fetching it once its queue is full, and weir wakes its fetcher once it has read
 * the queue empty) while the consumer keeps polling, so the group never evicts weir. Messages are
 * taken on the loop and made into records on a thread of the poller's own (convert), handed back in
 * order; the records go back to that thread to be freed. Rebalances drop what was read of a revoked
 * partition and not yet sent. librdkafka's queue event fd wakes the loop; a one-second timer polls
 * the consumer besides, for the group's sake. A broker that is down is reconnected by librdkafka:
 * weir logs it and loses nothing. Must never know functions, HTTP or retries. */
#define _GNU_SOURCE /* pipe2 */
#include "pollers/kafka.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/u32map.h"
#include "core/worker.h"
#include "pollers/poller.h"

/* Records handed over in one turn of the loop at most; the next turn goes on. */
#define DRAIN_MAX 10000
/* Records given back that wait at most for a read to carry them to the converting thread: a turn
 * of draining that finds this many, or the keepalive tick, sends them on a job of their own. */
#define GIVEN_BACK_MAX 1024
/* Messages one job of the converting thread carries at most: a turn's worth, so a partition's
 * read is one job and its records reach the mapping (and a zero window's flush) together. */
#define CONVERT_MAX DRAIN_MAX
/* While partitions are paused, the consumer is polled this often (max.poll.interval.ms is far
 * longer), so it stays in its group. */
#define KEEPALIVE_MS 1000
/* What librdkafka fetches ahead per partition at most, before weir reads it. */
#define PARTITION_PREFETCH_KB       "2048"
#define PARTITION_PREFETCH_MESSAGES "10000"
/* How long a broker may hold a fetch that finds nothing new (see kafka_new). */
#define FETCH_WAIT_MAX_MS "100"
/* Blocking calls librdkafka has no other form of (committed offsets and offsets for times, on an
 * assignment with AT_TIMESTAMP; the last commit at stop) wait at most this long. */
#define BLOCKING_CALL_MS 10000

enum start_at { START_TRIM_HORIZON, START_LATEST, START_AT_TIMESTAMP };

#define NO_PARTITION (-1)

/* An assigned partition: its own queue, read while the mapping has room for it. */
struct part {
    int32_t id;
    uint64_t generation; /* which assignment of the partition this is: a job knows its own */
    rd_kafka_queue_t *queue;
    size_t converting; /* messages read and on the converting thread, not yet handed over */
    bool held;         /* the mapping paused it: not read until resumed */
    /* Whether librdkafka has stopped fetching it (see wake_fetcher), told from what weir reads:
     * the queue as it was when a fetch last filled it, and what weir expects left in it. */
    int64_t next_offset; /* after the last message read; -1 before any */
    size_t fill_messages;
    size_t fill_bytes; /* of the messages of that fill read so far: a lower bound of its size */
    size_t expected_left;
};

/* The home of the records the converting thread makes (model/record.h): records done with come
 * back here, on the loop, and ride the next job to the thread, which frees them. Made on one
 * thread and freed on another, a record took a lock of the allocator on both sides (its arena's)
 * and its free was a seventh of the loop's time. It outlives its poller while records are out. */
struct record_home {
    struct weir_record_home home;
    struct weir_poller *p; /* NULL once the poller is freed: records are then freed on return */
    size_t out;            /* records delivered with this home and not back yet */
    struct weir_record **given_back; /* waiting for a job to the thread */
    size_t given_back_n, given_back_cap;
};

/* Messages read from a partition on the loop, made into records on the converting thread. The
 * copying and freeing (librdkafka parses a message's headers with an allocation even when it
 * has none, and frees each message into its fetching thread's heap) was a quarter of the loop's
 * time per record; the loop keeps what orders and bounds the reading. */
struct convert_job {
    struct weir_worker_job job;
    struct weir_poller *p;
    int32_t part; /* NO_PARTITION: a job that only carries records given back */
    uint64_t generation;
    /* Records done with, to be freed on the thread before it converts (the array is the
     * loop's: it frees it when the job is back). */
    struct weir_record **given_back;
    size_t given_back_n;
    size_t n;
    /* The messages, then (on the thread, one by one in place) the records made of them. */
    void *items[];
};

struct weir_poller {
    const struct weir_mapping_cfg *mc;
    const struct weir_kafka_settings *ks;
    struct weir_sink sink;
    struct event_base *base;
    char comp[96];
    char *servers;
    char *topic;
    size_t topic_len;
    char *group;
    enum start_at start_at;
    struct weir_source_info info;
    char *arn;

    rd_kafka_t *rk;
    rd_kafka_queue_t *queue; /* the consumer's, where everything arrives */
    int wake[2];             /* librdkafka writes to [1] when the queue turns non-empty */
    struct event *wake_ev;
    struct event *drain_ev;       /* another turn of draining */
    struct weir_timer *keepalive; /* polls the consumer at least once a second */
    /* Makes records of messages off the loop; NULL: the loop does it (no thread could start). */
    struct weir_worker *converter;
    struct record_home *home; /* of the records the converting thread makes */
    size_t converting;        /* messages of every partition on the converting thread */
    uint64_t next_generation; /* of the next partition assigned */
    bool handed_over;         /* records went to the mapping since its last read_done */
    bool freeing;             /* kafka_free: converted records are dropped, nothing more read */
    rd_kafka_topic_partition_list_t *assigned;
    struct weir_u32map parts; /* partition -> struct part, while assigned */
    /* librdkafka's thresholds (queued.min.messages, queued.max.messages.kbytes): a partition's
     * queue holding this much is not fetched until its broker's thread looks again. */
    size_t full_messages, full_bytes;
    uint64_t fetcher_wakes;
    bool started, stopping;
    bool broker_down; /* an outage was reported; its end will be too */
    /* Stopping: the consumer closes on a thread of its own. Its callbacks, called there, touch
     * nothing of the loop's while closing is set. */
    bool closing;
    struct weir_worker *closer;
    struct weir_worker_job close_job;
    rd_kafka_resp_err_t last_commit;
    void (*stop_done)(void *arg);
    void *stop_arg;
    uint64_t records;
};

static const struct weir_kafka_settings default_settings;

/* ---- names ------------------------------------------------------------------------------- */

bool weir_kafka_topic_ok(const char *topic)
{
    size_t n = strlen(topic);
    if (n < 1 || n > 249 || !strcmp(topic, ".") || !strcmp(topic, ".."))
        return false;
    for (const char *c = topic; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '.' || *c == '_' || *c == '-'))
            return false;
    return true;
}

bool weir_kafka_uri_parse(const char *uri, char **servers, char **topic, char *why, size_t why_len)
{
    static const char scheme[] = "kafka://";
    if (strncmp(uri, scheme, sizeof(scheme) - 1) != 0) {
        snprintf(why, why_len, "a Kafka topic is kafka://host:port[,host:port...]/topic");
        return false;
    }
    const char *hosts = uri + sizeof(scheme) - 1;
    const char *slash = strchr(hosts, '/');
    if (!slash) {
        snprintf(why, why_len, "no topic: kafka://host:port[,host:port...]/topic");
        return false;
    }
    if (slash == hosts) {
        snprintf(why, why_len, "no bootstrap servers: kafka://host:port[,host:port...]/topic");
        return false;
    }
    if (!slash[1]) {
        snprintf(why, why_len,
                 "no topic after the servers: kafka://host:port[,host:port...]/topic");
        return false;
    }
    /* A destination's URI may carry producer properties after '?': they are not the topic. */
    const char *name = slash + 1;
    size_t name_len = strcspn(name, "?");
    char topic_name[256];
    if (name_len >= sizeof(topic_name) || memchr(name, '/', name_len) ||
        memchr(name, '#', name_len)) {
        snprintf(why, why_len, "\"%.64s\" is not a Kafka topic name (1..249 of a-z A-Z 0-9 . _ -)",
                 name);
        return false;
    }
    memcpy(topic_name, name, name_len);
    topic_name[name_len] = '\0';
    if (!weir_kafka_topic_ok(topic_name)) {
        snprintf(why, why_len, "\"%.64s\" is not a Kafka topic name (1..249 of a-z A-Z 0-9 . _ -)",
                 topic_name);
        return false;
    }
    /* Each server is host:port with a port. */
    const char *at = hosts;
    while (at < slash) {
        const char *end = memchr(at, ',', (size_t)(slash - at));
        if (!end)
            end = slash;
        const char *colon = NULL;
        for (const char *c = at; c < end; c++)
            if (*c == ':')
                colon = c;
        if (!colon || colon == at || colon + 1 == end) {
            snprintf(why, why_len, "bootstrap server \"%.*s\" is not host:port", (int)(end - at),
                     at);
            return false;
        }
        for (const char *c = colon + 1; c < end; c++)
            if (*c < '0' || *c > '9') {
                snprintf(why, why_len, "bootstrap server \"%.*s\" has a bad port", (int)(end - at),
                         at);
                return false;
            }
        at = end + 1;
    }
    *servers = weir_strndup(hosts, (size_t)(slash - hosts));
    *topic = weir_strdup(topic_name);
    return true;
}

/* ---- reading --------------------------------------------------------------------------------- */

static struct weir_record *record_of(struct weir_poller *p, const rd_kafka_message_t *m)
{
    /* One allocation for the record, its value, id, topic and key: one per message counts. */
    size_t len = m->payload ? m->len : 0;
    struct weir_record *r =
        weir_record_new_packed(len, 20, p->topic_len, m->key != NULL, m->key ? m->key_len : 0);
    if (m->payload)
        memcpy(r->data, m->payload, len);
    else
        r->data_null = true;
    if (m->key)
        memcpy(r->key, m->key, m->key_len);
    rd_kafka_headers_t *headers = NULL;
    if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR && headers) {
        const char *name;
        const void *value;
        size_t size;
        for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) ==
                           RD_KAFKA_RESP_ERR_NO_ERROR;
             i++)
            weir_headers_add(&r->headers, &r->headers_len, name, strlen(name), value, size);
    }
    memcpy(r->stream, p->topic, p->topic_len);
    r->partition = m->partition;
    r->lane = (uint32_t)m->partition;
    r->seq = (uint64_t)m->offset;
    weir_put_digits(r->id, (uint64_t)m->offset, 20); /* a message's offset is never negative */
    rd_kafka_timestamp_type_t type;
    int64_t ts = rd_kafka_message_timestamp(m, &type);
    r->sent_ms = ts >= 0 ? ts : weir_clock_wall_ms();
    r->time_type =
        type == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME ? WEIR_TIME_LOG_APPEND : WEIR_TIME_CREATE;
    return r;
}

static void keepalive_arm(struct weir_poller *p)
{
    if (!p->stopping && !weir_timer_armed(p->keepalive))
        weir_timer_after(p->keepalive, KEEPALIVE_MS);
}

static void on_message_error(struct weir_poller *p, const rd_kafka_message_t *m)
{
    switch (m->err) {
    case RD_KAFKA_RESP_ERR__PARTITION_EOF:
        return;
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__RESOLVE:
        p->broker_down = true;
        weir_log_limited(WEIR_LOG_WARN, p->comp,
                         "broker unreachable; librdkafka reconnects, nothing is lost "
                         "servers=%s why=\"%s\"",
                         p->servers, rd_kafka_err2str(m->err));
        return;
    default:
        weir_log_limited(WEIR_LOG_ERROR, p->comp, "consumer error topic=%s why=\"%s\"", p->topic,
                         rd_kafka_err2str(m->err));
    }
}

/* A record arrived: an outage reported before is over. */
static void note_reading(struct weir_poller *p)
{
    if (p->broker_down) {
        p->broker_down = false;
        weir_info(p->comp, "reading again servers=%s", p->servers);
    }
}

/* Hands one message over (or reports it, when it is an error); takes it. */
static void take(struct weir_poller *p, rd_kafka_message_t *m)
{
    if (m->err) {
        on_message_error(p, m);
        rd_kafka_message_destroy(m);
        return;
    }
    note_reading(p);
    struct weir_record *r = record_of(p, m);
    rd_kafka_message_destroy(m);
    p->records++;
    p->handed_over = true;
    p->sink.ops->deliver(p->sink.ctx, r);
}

/* ---- the records' home ------------------------------------------------------------------ */

static void home_destroy_given_back(struct record_home *h)
{
    for (size_t i = 0; i < h->given_back_n; i++)
        weir_record_destroy(h->given_back[i]);
    h->given_back_n = 0;
}

/* A home whose poller is gone goes with its last record. */
static void home_free_when_unused(struct record_home *h)
{
    if (!h->p && h->out == 0) {
        free(h->given_back);
        free(h);
    }
}

/* A record done with: it waits for a job to the converting thread, or is freed here when there
 * is no thread (stopped, or none could start) or no poller any more. */
static void home_take_back(struct weir_record_home *wh, struct weir_record *r)
{
    struct record_home *h = weir_list_entry(wh, struct record_home, home);
    h->out--;
    if (!h->p || !h->p->converter) {
        weir_record_destroy(r);
        home_free_when_unused(h);
        return;
    }
    if (h->given_back_n == h->given_back_cap) {
        h->given_back_cap = h->given_back_cap ? 2 * h->given_back_cap : 256;
        h->given_back = weir_realloc(h->given_back, h->given_back_cap * sizeof(h->given_back[0]));
    }
    h->given_back[h->given_back_n++] = r;
}

/* The poller goes: what is back is freed, and the home itself once the last record is. */
static void home_release(struct record_home *h)
{
    if (!h)
        return;
    home_destroy_given_back(h);
    h->p = NULL;
    home_free_when_unused(h);
}

/* On the converting thread: the records given back are freed, then each job's messages become
 * records; the messages are destroyed. It reads only what never changes after kafka_new (the
 * topic, the home), and the wall clock for a message without a timestamp. */
static void convert(void *ctx, struct weir_worker_job **jobs, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        struct convert_job *job = weir_list_entry(jobs[j], struct convert_job, job);
        for (size_t i = 0; i < job->given_back_n; i++)
            weir_record_destroy(job->given_back[i]);
        for (size_t i = 0; i < job->n; i++) {
            rd_kafka_message_t *m = job->items[i];
            struct weir_record *r = record_of(job->p, m);
            r->home = &job->p->home->home;
            job->items[i] = r;
            rd_kafka_message_destroy(m);
        }
    }
}

/* Back on the loop: the records go to the mapping in the order they were read, unless their
 * partition was revoked since (dropped, as what librdkafka had fetched of it) or the poller
 * stops (read again from the last commit at the next start). */
static void on_converted(struct weir_worker_job *wj)
{
    struct convert_job *job = weir_list_entry(wj, struct convert_job, job);
    struct weir_poller *p = job->p;
    struct part *pt = weir_u32map_get(&p->parts, (uint32_t)job->part);
    bool current = pt && pt->generation == job->generation;
    p->converting -= job->n;
    if (current)
        pt->converting -= job->n;
    if (!wj->ran) {
        for (size_t i = 0; i < job->given_back_n; i++)
            weir_record_destroy(job->given_back[i]);
        for (size_t i = 0; i < job->n; i++)
            rd_kafka_message_destroy(job->items[i]);
    } else if (!current || p->stopping || p->freeing) {
        for (size_t i = 0; i < job->n; i++)
            weir_record_destroy(job->items[i]);
    } else {
        /* Counted out first: the mapping may be done with one before the last is delivered
         * (a filter's run of records settled), and give it back. */
        p->home->out += job->n;
        for (size_t i = 0; i < job->n; i++)
            p->sink.ops->deliver(p->sink.ctx, job->items[i]);
        p->records += job->n;
        p->handed_over = true;
    }
    bool read = job->n > 0;
    free(job->given_back);
    free(job);
    /* librdkafka wakes the loop only when a queue turns non-empty: what is left in this one,
     * and the read_done of what went over, wait for a turn of draining. */
    if (read && !p->stopping && !p->freeing)
        event_active(p->drain_ev, EV_TIMEOUT, 0);
}

/* Every job takes the records given back so far along to the thread. */
static void convert_submit(struct weir_poller *p, struct convert_job *job)
{
    struct record_home *h = p->home;
    job->given_back = h->given_back;
    job->given_back_n = h->given_back_n;
    h->given_back = NULL;
    h->given_back_n = h->given_back_cap = 0;
    job->job.done = on_converted;
    if (p->converter) {
        weir_worker_submit(p->converter, &job->job);
        return;
    }
    job->job.ran = true;
    convert(p, (struct weir_worker_job *[]){&job->job}, 1);
    on_converted(&job->job);
}

/* Records given back go to the thread on a job of their own, when no read takes them. */
static void send_given_back(struct weir_poller *p)
{
    if (!p->home->given_back_n || !p->converter)
        return;
    struct convert_job *job = weir_calloc(1, sizeof(*job));
    job->p = p;
    job->part = NO_PARTITION;
    convert_submit(p, job);
}

static size_t less(size_t a, size_t b)
{
    return a > b ? a - b : 0;
}

/* librdkafka (2.0.2) leaves a partition out of its fetches once its queue holds
 * queued.min.messages or queued.max.messages.kbytes, and looks at it again only when its broker's
 * thread wakes: when a fetch of that broker comes back, an order reaches it, or after a second
 * with nothing to do (2.2's fetch.queue.backoff.ms waits the same second by default). When every
 * partition of a broker is full at once, no fetch is under way: read empty, they waited up to that
 * second (a benchmark run in six stalled so, 0.4 s at a time, and queues of 5 messages gave 5
 * records a second). A seek is what wakes that thread from outside (pausing and resuming is served
 * on another thread and did not); to the offset after the last message read, with the queue empty,
 * it moves nothing. Its cost: a fetch of the partition under way meanwhile is dropped by
 * librdkafka and made again. It cannot help with queued.min.messages 1: the barrier a seek puts in
 * the queue is one entry, and the queue is full again when that thread looks. */
static void wake_fetcher(struct weir_poller *p, struct part *pt)
{
    rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(one, p->topic, pt->id)->offset = pt->next_offset;
    rd_kafka_error_t *error = rd_kafka_seek_partitions(p->rk, one, 0);
    rd_kafka_resp_err_t err = error ? rd_kafka_error_code(error) : one->elems[0].err;
    if (err && err != RD_KAFKA_RESP_ERR__IN_PROGRESS) {
        weir_debug(p->comp, "could not wake the fetcher partition=%d why=\"%s\"", pt->id,
                   rd_kafka_err2str(err));
    } else {
        p->fetcher_wakes++;
        weir_trace(p->comp, "fetcher woken partition=%d offset=%lld queue_filled_to=%zu", pt->id,
                   (long long)pt->next_offset, pt->fill_messages);
    }
    if (error)
        rd_kafka_error_destroy(error);
    rd_kafka_topic_partition_list_destroy(one);
}

/* Reads what a partition's queue holds, as far as the mapping has room for it (less what is
 * being converted already), and sends it to be converted; returns how many messages it took. A
 * partition the mapping has no room for is simply not read: librdkafka stops fetching it once
 * its queue holds queued.max.messages.kbytes, and nothing it prefetched is thrown away (a pause
 * would, and cost a fetch round to resume). A queue read empty that had filled to librdkafka's
 * threshold has its fetcher woken. */
static size_t read_partition(struct weir_poller *p, struct part *pt, size_t budget)
{
    size_t n = 0;
    bool emptied = false;
    while (n < budget && !pt->held) {
        size_t room = less(p->sink.ops->room(p->sink.ctx, (uint32_t)pt->id), pt->converting);
        size_t any = less(p->sink.ops->room(p->sink.ctx, WEIR_LANE_ANY), p->converting);
        size_t want = room < any ? room : any;
        if (want > budget - n)
            want = budget - n;
        if (want > CONVERT_MAX)
            want = CONVERT_MAX;
        if (want == 0)
            break;
        size_t queued = rd_kafka_queue_length(pt->queue);
        if (queued == 0) {
            emptied = true;
            break;
        }
        /* More than the last read left: a fetch came back since, and this is the queue as it
         * left it (unless only what is not a message came: a seek's barrier, messages it made
         * stale). */
        bool fresh = queued > pt->expected_left;
        size_t bytes = 0;
        struct convert_job *job = weir_malloc(sizeof(*job) + want * sizeof(job->items[0]));
        ssize_t got =
            rd_kafka_consume_batch_queue(pt->queue, 0, (rd_kafka_message_t **)job->items, want);
        size_t kept = 0;
        for (ssize_t i = 0; i < got; i++) {
            rd_kafka_message_t *m = job->items[i];
            if (m->err) {
                on_message_error(p, m);
                rd_kafka_message_destroy(m);
            } else {
                pt->next_offset = m->offset + 1;
                bytes += m->len;
                job->items[kept++] = m;
            }
        }
        if (!kept) {
            free(job);
        } else {
            note_reading(p);
            job->p = p;
            job->part = pt->id;
            job->generation = pt->generation;
            job->n = kept;
            pt->converting += kept;
            p->converting += kept;
            convert_submit(p, job);
        }
        if (got <= 0)
            break;
        if (fresh) {
            pt->fill_messages = queued;
            pt->fill_bytes = 0;
        }
        pt->fill_bytes += bytes;
        pt->expected_left = less(queued, (size_t)got);
        n += (size_t)got;
        if ((size_t)got < want) {
            emptied = true; /* taken without waiting: the queue had no more */
            break;
        }
    }
    if (emptied) {
        bool was_full = pt->fill_messages >= p->full_messages || pt->fill_bytes >= p->full_bytes;
        if (was_full && pt->next_offset >= 0)
            wake_fetcher(p, pt);
        pt->fill_messages = pt->fill_bytes = pt->expected_left = 0;
    }
    return n;
}

/* Serves the consumer's queue (rebalances, errors; polling it is what keeps weir in its group,
 * max.poll.interval.ms) and reads every partition with room, at most DRAIN_MAX records a turn.
 * librdkafka signals the wake fd only when a queue turns non-empty, so a turn that stops with
 * records left (no room, or the turn's share) relies on resume or the next turn to read on. */
static void drain(struct weir_poller *p)
{
    size_t n = 0;
    rd_kafka_message_t *m;
    while (!p->stopping && (m = rd_kafka_consumer_poll(p->rk, 0))) {
        take(p, m); /* a message before its partition's queue was split off */
        n++;
    }
    for (size_t i = 0; i < p->parts.cap && !p->stopping; i++) {
        struct part *pt = p->parts.vals[i];
        if (pt && n < DRAIN_MAX)
            n += read_partition(p, pt, DRAIN_MAX - n);
    }
    if (n >= DRAIN_MAX && !p->stopping)
        event_active(p->drain_ev, EV_TIMEOUT, 0);
    if (p->home->given_back_n >= GIVEN_BACK_MAX && !p->stopping)
        send_given_back(p);
    if (p->handed_over) {
        p->handed_over = false;
        p->sink.ops->read_done(p->sink.ctx);
    }
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    char buf[256];
    while (read(fd, buf, sizeof(buf)) > 0) {
    }
    drain(arg);
}

static void on_drain(evutil_socket_t fd, short what, void *arg)
{
    drain(arg);
}

/* Polls the consumer at least once a second, also while nothing arrives and while the mapping
 * reads nothing: that keeps weir in its group. */
static void on_keepalive(void *arg)
{
    struct weir_poller *p = arg;
    if (p->stopping)
        return;
    drain(p);
    send_given_back(p);
    keepalive_arm(p);
}

/* A partition's own queue: split off from the consumer's, so each partition is read only when
 * the mapping has room for it; its wake goes to the same fd. */
static void part_open(struct weir_poller *p, int32_t id)
{
    if (weir_u32map_get(&p->parts, (uint32_t)id))
        return;
    rd_kafka_queue_t *queue = rd_kafka_queue_get_partition(p->rk, p->topic, id);
    if (!queue) {
        /* Its records then come through the consumer's queue, read whatever the room. */
        weir_warn(p->comp, "no queue of its own for partition=%d", id);
        return;
    }
    struct part *pt = weir_calloc(1, sizeof(*pt));
    pt->id = id;
    pt->generation = ++p->next_generation;
    pt->queue = queue;
    pt->next_offset = -1;
    rd_kafka_queue_forward(pt->queue, NULL);
    rd_kafka_queue_io_event_enable(pt->queue, p->wake[1], "1", 1);
    weir_u32map_put(&p->parts, (uint32_t)id, pt);
}

static void part_close(struct weir_poller *p, int32_t id)
{
    struct part *pt = weir_u32map_del(&p->parts, (uint32_t)id);
    if (!pt)
        return;
    rd_kafka_queue_io_event_enable(pt->queue, -1, NULL, 0);
    rd_kafka_queue_destroy(pt->queue);
    free(pt);
}

/* ---- the group ---------------------------------------------------------------------------- */

/* AT_TIMESTAMP: a partition without a committed offset starts at the first record at or after
 * the timestamp; one with a committed offset keeps it, as AWS. These calls block (bounded). */
static void apply_timestamp(struct weir_poller *p, rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_resp_err_t err = rd_kafka_committed(p->rk, parts, BLOCKING_CALL_MS);
    if (err) {
        weir_error(p->comp, "could not read committed offsets; AT_TIMESTAMP not applied why=\"%s\"",
                   rd_kafka_err2str(err));
        return;
    }
    rd_kafka_topic_partition_list_t *by_time = rd_kafka_topic_partition_list_new(parts->cnt);
    for (int i = 0; i < parts->cnt; i++)
        if (parts->elems[i].offset < 0)
            rd_kafka_topic_partition_list_add(by_time, parts->elems[i].topic,
                                              parts->elems[i].partition)
                ->offset = (int64_t)p->ks->starting_position_timestamp * 1000;
    if (by_time->cnt) {
        err = rd_kafka_offsets_for_times(p->rk, by_time, BLOCKING_CALL_MS);
        if (err)
            weir_error(p->comp,
                       "offsets for AT_TIMESTAMP failed; reading from the start why=\"%s\"",
                       rd_kafka_err2str(err));
        for (int i = 0; i < by_time->cnt; i++) {
            rd_kafka_topic_partition_t *t = rd_kafka_topic_partition_list_find(
                parts, by_time->elems[i].topic, by_time->elems[i].partition);
            t->offset =
                err || by_time->elems[i].err ? RD_KAFKA_OFFSET_BEGINNING : by_time->elems[i].offset;
        }
    }
    for (int i = 0; i < parts->cnt; i++)
        if (parts->elems[i].offset < 0 && parts->elems[i].offset != RD_KAFKA_OFFSET_BEGINNING &&
            parts->elems[i].offset != RD_KAFKA_OFFSET_END)
            parts->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
    rd_kafka_topic_partition_list_destroy(by_time);
}

static void list_names(const rd_kafka_topic_partition_list_t *parts, char *out, size_t len)
{
    size_t at = 0;
    out[0] = '\0';
    for (int i = 0; i < parts->cnt && at + 16 < len; i++)
        at += (size_t)snprintf(out + at, len - at, "%s%d", i ? "," : "", parts->elems[i].partition);
}

/* Takes parts in (assign) or out of the assignment, by the group's protocol: the cooperative one
 * moves only these partitions, the eager one replaces the whole assignment. */
static rd_kafka_resp_err_t change_assignment(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts,
                                             bool assign)
{
    if (strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") != 0)
        return rd_kafka_assign(rk, assign ? parts : NULL);
    rd_kafka_error_t *e =
        assign ? rd_kafka_incremental_assign(rk, parts) : rd_kafka_incremental_unassign(rk, parts);
    rd_kafka_resp_err_t code = e ? rd_kafka_error_code(e) : RD_KAFKA_RESP_ERR_NO_ERROR;
    if (e)
        rd_kafka_error_destroy(e);
    return code;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct weir_poller *p = opaque;
    char names[256];
    /* While the consumer closes (on the closing thread, or in kafka_free) a rebalance still
     * outstanding is served there, an assignment too: it touches nothing of the loop's and
     * assigns nothing (librdkafka takes any assignment during a close as an unassignment). */
    if (p->closing) {
        change_assignment(rk, parts, false);
        return;
    }
    list_names(parts, names, sizeof(names));
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (p->start_at == START_AT_TIMESTAMP)
            apply_timestamp(p, parts);
        weir_info(p->comp, "partitions assigned topic=%s partitions=%s", p->topic, names);
        rd_kafka_resp_err_t assigned = change_assignment(rk, parts, true);
        if (assigned) {
            weir_error(p->comp, "assigning partitions failed why=\"%s\"",
                       rd_kafka_err2str(assigned));
            return;
        }
        if (!p->assigned)
            p->assigned = rd_kafka_topic_partition_list_new(parts->cnt);
        for (int i = 0; i < parts->cnt; i++)
            if (!rd_kafka_topic_partition_list_find(p->assigned, p->topic,
                                                    parts->elems[i].partition))
                rd_kafka_topic_partition_list_add(p->assigned, p->topic, parts->elems[i].partition);
        for (int i = 0; i < parts->cnt; i++)
            part_open(p, parts->elems[i].partition);
        if (!p->stopping)
            event_active(p->drain_ev, EV_TIMEOUT, 0);
        return;
    }
    /* Revoked (or lost): what was read of these and not sent is dropped, and their batches are
     * handed back without more attempts; their checkpoints are no longer stored. librdkafka
     * commits the offsets stored so far as it unassigns them (enable.auto.commit). */
    weir_info(p->comp, "partitions %s topic=%s partitions=%s",
              rd_kafka_assignment_lost(rk) ? "lost" : "revoked", p->topic, names);
    for (int i = 0; i < parts->cnt; i++) {
        int32_t part = parts->elems[i].partition;
        if (p->sink.ops->forget)
            p->sink.ops->forget(p->sink.ctx, (uint32_t)part);
        if (p->assigned)
            rd_kafka_topic_partition_list_del(p->assigned, p->topic, part);
        part_close(p, part);
    }
    rd_kafka_resp_err_t unassigned = change_assignment(rk, parts, false);
    if (unassigned)
        weir_warn(p->comp, "unassigning partitions failed why=\"%s\"",
                  rd_kafka_err2str(unassigned));
}

/* librdkafka's own log lines come through the consumer's queue, so on the loop. */
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    struct weir_poller *p = rd_kafka_opaque(rk);
    if (p && p->closing)
        return; /* on the closing thread: weir's log is the loop's */
    enum weir_log_level lvl = level <= 3   ? WEIR_LOG_ERROR
                              : level <= 4 ? WEIR_LOG_WARN
                              : level <= 6 ? WEIR_LOG_INFO
                                           : WEIR_LOG_DEBUG;
    /* Connection failures repeat while a broker is down: one line in a while of each kind. */
    weir_log_limited_for(lvl, p ? p->comp : "kafka", fac, "librdkafka %s: %s", fac, buf);
}

/* Errors librdkafka reports beside messages: a broker unreachable, all of them down. It goes on
 * reconnecting by itself; weir says so, once in a while. */
static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct weir_poller *p = opaque;
    rd_kafka_resp_err_t code = (rd_kafka_resp_err_t)err;
    if (p->closing)
        return; /* on the closing thread */
    if (code == RD_KAFKA_RESP_ERR__TRANSPORT || code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ||
        code == RD_KAFKA_RESP_ERR__RESOLVE) {
        p->broker_down = true;
        weir_log_limited_for(WEIR_LOG_WARN, p->comp, rd_kafka_err2name(code),
                             "broker unreachable; librdkafka reconnects, nothing is lost "
                             "servers=%s why=\"%s\"",
                             p->servers, reason);
        return;
    }
    weir_log_limited_for(rd_kafka_fatal_error(rk, NULL, 0) ? WEIR_LOG_ERROR : WEIR_LOG_WARN,
                         p->comp, rd_kafka_err2name(code), "kafka error %s why=\"%s\"",
                         rd_kafka_err2name(code), reason);
}

/* ---- the poller ------------------------------------------------------------------------------ */

static bool conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                     struct weir_err *err)
{
    char why[256];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        weir_err_set(err, "kafka_config.%s: %s", name, why);
        return false;
    }
    return true;
}

/* A numeric property's value as set (every one weir reads has a default), times unit. */
static size_t conf_size(rd_kafka_conf_t *conf, const char *name, size_t unit)
{
    char value[32];
    size_t len = sizeof(value);
    if (rd_kafka_conf_get(conf, name, value, &len) != RD_KAFKA_CONF_OK)
        return SIZE_MAX;
    return (size_t)strtoull(value, NULL, 10) * unit;
}

/* Destroys the poller's queue handles: librdkafka wants them gone before the consumer closes. */
static void queues_destroy(struct weir_poller *p)
{
    while (p->parts.n) {
        for (size_t i = 0; i < p->parts.cap; i++) {
            if (p->parts.vals[i]) {
                part_close(p, ((struct part *)p->parts.vals[i])->id);
                break; /* the table changed: walk it again */
            }
        }
    }
    if (p->queue) {
        rd_kafka_queue_io_event_enable(p->queue, -1, NULL, 0);
        rd_kafka_queue_destroy(p->queue);
        p->queue = NULL;
    }
}

static void kafka_free(struct weir_poller *p)
{
    if (!p)
        return;
    weir_worker_free(p->closer); /* joins the closing thread */
    /* Every message on the converting thread is destroyed before the consumer is. */
    p->freeing = true;
    weir_worker_free(p->converter);
    p->converter = NULL;
    home_release(p->home);
    /* The consumer closes (when stop never did) before the events it could wake are freed. */
    queues_destroy(p);
    if (p->rk) {
        if (!p->stopping && p->started) {
            p->stopping = true;
            p->closing = true;
            rd_kafka_consumer_close(p->rk);
        }
        rd_kafka_destroy(p->rk);
    }
    if (p->wake_ev)
        event_free(p->wake_ev);
    if (p->drain_ev)
        event_free(p->drain_ev);
    weir_timer_free(p->keepalive);
    if (p->assigned)
        rd_kafka_topic_partition_list_destroy(p->assigned);
    weir_u32map_deinit(&p->parts);
    if (p->wake[0] >= 0)
        close(p->wake[0]);
    if (p->wake[1] >= 0)
        close(p->wake[1]);
    free(p->servers);
    free(p->topic);
    free(p->group);
    free(p->arn);
    free(p);
}

static struct weir_poller *kafka_new(const struct weir_poller_args *args, struct weir_err *err)
{
    const struct weir_mapping_cfg *mc = args->mc;
    struct weir_poller *p = weir_calloc(1, sizeof(*p));
    char why[256], arn[600];
    p->mc = mc;
    p->ks = mc->settings ? mc->settings : &default_settings;
    p->sink = args->sink;
    p->base = args->base;
    p->wake[0] = p->wake[1] = -1;
    p->home = weir_calloc(1, sizeof(*p->home));
    p->home->home.take_back = home_take_back;
    p->home->p = p;
    snprintf(p->comp, sizeof(p->comp), "%s", args->component);
    if (!weir_kafka_uri_parse(mc->source, &p->servers, &p->topic, why, sizeof(why))) {
        weir_err_set(err, "source: %s", why);
        goto fail;
    }
    p->topic_len = strlen(p->topic);
    const char *sp = p->ks->starting_position ? p->ks->starting_position : "TRIM_HORIZON";
    p->start_at = !strcmp(sp, "LATEST")         ? START_LATEST
                  : !strcmp(sp, "AT_TIMESTAMP") ? START_AT_TIMESTAMP
                                                : START_TRIM_HORIZON;
    if (p->ks->consumer_group_id) {
        p->group = weir_strdup(p->ks->consumer_group_id);
    } else {
        size_t n = strlen(mc->name) + 6;
        p->group = weir_malloc(n);
        snprintf(p->group, n, "weir-%s", mc->name);
    }
    if (args->format == &weir_format_kinesis)
        snprintf(arn, sizeof(arn), "arn:aws:kinesis:%s:000000000000:stream/%s", args->region,
                 p->topic);
    else
        snprintf(arn, sizeof(arn), "arn:aws:kafka:%s:000000000000:topic/weir/%s", args->region,
                 p->topic);
    p->arn = weir_strdup(arn);
    p->info.source_arn = p->arn;
    p->info.endpoint = p->servers;
    p->info.ordered_lanes = true;

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* Offsets are stored by weir when records are done, and committed by librdkafka after. */
    if (!conf_set(conf, "bootstrap.servers", p->servers, err) ||
        !conf_set(conf, "group.id", p->group, err) ||
        !conf_set(conf, "enable.auto.offset.store", "false", err) ||
        !conf_set(conf, "enable.auto.commit", "true", err) ||
        !conf_set(conf, "auto.commit.interval.ms", "1000", err) ||
        !conf_set(conf, "auto.offset.reset", p->start_at == START_LATEST ? "latest" : "earliest",
                  err) ||
        !conf_set(conf, "enable.partition.eof", "false", err) ||
        /* With a queue per partition these bound each partition's prefetch, not the consumer's
         * (librdkafka's 64 MiB each would let 64 partitions hold 4 GiB); kafka_config may
         * change them. */
        !conf_set(conf, "queued.max.messages.kbytes", PARTITION_PREFETCH_KB, err) ||
        !conf_set(conf, "queued.min.messages", PARTITION_PREFETCH_MESSAGES, err) ||
        /* Set, or librdkafka lowers it to queued.max.messages.kbytes: a fetch response holds
         * every partition of a broker. Its own default. */
        !conf_set(conf, "fetch.max.bytes", "52428800", err) ||
        /* A partition whose queue is full is left out of fetches; once read, it waits for the
         * fetch under way for the others, which a broker holds this long when they have nothing
         * new (with librdkafka's 500 ms, the last partitions of some of the Kafka benchmark's
         * drains waited up to 0.5 s). Idle, it is a fetch every 100 ms per broker; kafka_config
         * may change it. */
        !conf_set(conf, "fetch.wait.max.ms", FETCH_WAIT_MAX_MS, err) ||
        !conf_set(conf, "log.queue", "true", err)) {
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    for (size_t i = 0; i < p->ks->n_kafka_config; i++) {
        if (!conf_set(conf, p->ks->kafka_config[2 * i], p->ks->kafka_config[2 * i + 1], err)) {
            rd_kafka_conf_destroy(conf);
            goto fail;
        }
    }
    p->full_messages = conf_size(conf, "queued.min.messages", 1);
    p->full_bytes = conf_size(conf, "queued.max.messages.kbytes", 1000); /* as librdkafka */
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_error_cb(conf, on_error);
    p->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (!p->rk) {
        rd_kafka_conf_destroy(conf);
        weir_err_set(err, "kafka consumer: %s", why);
        goto fail;
    }
    rd_kafka_set_log_queue(p->rk, NULL);
    rd_kafka_poll_set_consumer(p->rk);
    p->queue = rd_kafka_queue_get_consumer(p->rk);
    if (pipe2(p->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
        weir_err_set(err, "pipe: %s", strerror(errno));
        goto fail;
    }
    rd_kafka_queue_io_event_enable(p->queue, p->wake[1], "1", 1);
    p->wake_ev = event_new(p->base, p->wake[0], EV_READ | EV_PERSIST, on_wake, p);
    p->drain_ev = event_new(p->base, -1, 0, on_drain, p);
    p->keepalive = weir_timer_new(p->base, on_keepalive, p);
    weir_u32map_init(&p->parts);
    struct weir_err thread_err;
    p->converter = weir_worker_new(p->base, "kafka-convert", convert, p, &thread_err);
    if (!p->converter)
        weir_warn(p->comp, "no converting thread (%s): messages are converted on the loop",
                  thread_err.msg);
    return p;
fail:
    kafka_free(p);
    return NULL;
}

static const struct weir_source_info *kafka_info(const struct weir_poller *p)
{
    return &p->info;
}

static weir_status kafka_start(struct weir_poller *p)
{
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, p->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(p->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err) {
        weir_error(p->comp, "cannot subscribe topic=%s why=\"%s\"", p->topic,
                   rd_kafka_err2str(err));
        return WEIR_ERR;
    }
    p->started = true;
    event_add(p->wake_ev, NULL);
    weir_info(p->comp,
              "consuming topic=%s servers=%s group=%s starting_position=%s (an existing group's "
              "committed offsets win)",
              p->topic, p->servers, p->group,
              p->start_at == START_LATEST         ? "LATEST"
              : p->start_at == START_AT_TIMESTAMP ? "AT_TIMESTAMP"
                                                  : "TRIM_HORIZON");
    /* Whatever is queued already woke nobody. */
    event_active(p->drain_ev, EV_TIMEOUT, 0);
    keepalive_arm(p);
    return WEIR_OK;
}

/* The mapping holds enough of the partition: it is not read until resumed. The consumer goes on
 * polling, and librdkafka stops fetching it once its queue is full. */
static void kafka_pause(struct weir_poller *p, uint32_t lane)
{
    struct part *pt = weir_u32map_get(&p->parts, lane);
    if (!pt || pt->held)
        return;
    pt->held = true;
    weir_debug(p->comp, "partition paused partition=%d", pt->id);
}

static void kafka_resume(struct weir_poller *p, uint32_t lane)
{
    if (p->stopping)
        return;
    struct part *pt = lane == WEIR_LANE_ANY ? NULL : weir_u32map_get(&p->parts, lane);
    if (pt && pt->held) {
        pt->held = false;
        weir_debug(p->comp, "partition resumed partition=%d", pt->id);
    }
    /* What waits in the queues woke nobody: read it now. */
    if (p->started)
        event_active(p->drain_ev, EV_TIMEOUT, 0);
}

/* Records are settled by position (kafka_checkpoint); a record never goes back to the topic. */
static void kafka_settle(struct weir_poller *p, const struct weir_batch *b)
{
}

static void kafka_checkpoint(struct weir_poller *p, uint32_t lane, uint64_t done_below)
{
    int32_t part = (int32_t)lane;
    if (!p->assigned || !rd_kafka_topic_partition_list_find(p->assigned, p->topic, part))
        return; /* revoked: another consumer reads it from its last commit */
    rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(one, p->topic, part)->offset = (int64_t)done_below;
    rd_kafka_resp_err_t err = rd_kafka_offsets_store(p->rk, one);
    rd_kafka_topic_partition_list_destroy(one);
    if (err)
        weir_debug(p->comp, "offset not stored partition=%d offset=%llu why=\"%s\"", part,
                   (unsigned long long)done_below, rd_kafka_err2str(err));
    else
        weir_trace(p->comp, "offset stored partition=%d offset=%llu", part,
                   (unsigned long long)done_below);
}

/* On the closing thread: the last stored offsets committed, the group left. Both block (for
 * long when the brokers are down), so not on the loop. */
static void run_close(void *ctx, struct weir_worker_job **jobs, size_t n)
{
    struct weir_poller *p = ctx;
    p->last_commit = rd_kafka_commit(p->rk, NULL, 0);
    rd_kafka_consumer_close(p->rk);
}

static void on_closed(struct weir_worker_job *job)
{
    struct weir_poller *p = weir_list_entry(job, struct weir_poller, close_job);
    if (p->last_commit && p->last_commit != RD_KAFKA_RESP_ERR__NO_OFFSET)
        weir_warn(p->comp,
                  "last commit failed; the next start reads again from the one before why=\"%s\"",
                  rd_kafka_err2str(p->last_commit));
    weir_info(p->comp, "consumer closed topic=%s records=%llu fetcher_wakes=%llu", p->topic,
              (unsigned long long)p->records, (unsigned long long)p->fetcher_wakes);
    p->stop_done(p->stop_arg);
}

/* The mapping calls this once nothing of it is in flight. The consumer is closed on a thread of
 * its own; the loop goes on meanwhile. */
static void kafka_stop(struct weir_poller *p, void (*done)(void *arg), void *arg)
{
    struct weir_err err;
    p->stopping = true;
    if (p->wake_ev)
        event_del(p->wake_ev);
    if (p->drain_ev)
        event_del(p->drain_ev);
    weir_timer_stop(p->keepalive);
    /* What is on the converting thread is dropped (read again from the last commit); records
     * are freed on the loop from now on. */
    weir_worker_free(p->converter);
    p->converter = NULL;
    home_destroy_given_back(p->home);
    /* The queues go before the close, which unassigns the partitions. */
    queues_destroy(p);
    if (!p->rk || !p->started) {
        done(arg);
        return;
    }
    p->stop_done = done;
    p->stop_arg = arg;
    p->closing = true; /* before the thread starts: its callbacks read it */
    p->closer = weir_worker_new(p->base, "kafka-close", run_close, p, &err);
    if (!p->closer) {
        weir_warn(p->comp, "no closing thread (%s): closing on the loop", err.msg);
        run_close(p, NULL, 0);
        p->close_job.done = on_closed;
        on_closed(&p->close_job);
        return;
    }
    p->close_job.done = on_closed;
    weir_worker_submit(p->closer, &p->close_job);
}

static const struct weir_poller_ops kafka_ops = {
    .new = kafka_new,
    .info = kafka_info,
    .start = kafka_start,
    .pause = kafka_pause,
    .resume = kafka_resume,
    .settle = kafka_settle,
    .checkpoint = kafka_checkpoint,
    .stop = kafka_stop,
    .free = kafka_free,
};

/* ---- the row ------------------------------------------------------------------------------ */

static const struct weir_cfg_key kafka_keys[] = {
    WEIR_CFG_KEY_STRING("consumer_group_id", struct weir_kafka_settings, consumer_group_id, 1),
    WEIR_CFG_KEY_STRING("starting_position", struct weir_kafka_settings, starting_position, 1),
    WEIR_CFG_KEY_INT("starting_position_timestamp", struct weir_kafka_settings,
                     starting_position_timestamp, 0, INT32_MAX, 0),
    WEIR_CFG_KEY_STRING("event_format", struct weir_kafka_settings, event_format, 1),
    WEIR_CFG_KEY_MAP("kafka_config", struct weir_kafka_settings, kafka_config, n_kafka_config),
};

static const struct weir_event_format *kafka_format_of(const struct weir_mapping_cfg *mc)
{
    const struct weir_kafka_settings *ks = mc->settings;
    if (ks && ks->event_format && !strcmp(ks->event_format, "Kinesis"))
        return &weir_format_kinesis;
    return &weir_format_kafka;
}

static void kafka_validate(const struct weir_mapping_cfg *mc, struct weir_cfg_report *rep)
{
    const struct weir_kafka_settings *ks = mc->settings;
    const char *name = mc->name ? mc->name : "?";
    char why[256], *servers = NULL, *topic = NULL;
    if (!weir_kafka_uri_parse(mc->source, &servers, &topic, why, sizeof(why)))
        weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "source"), "mapping '%s': %s", name, why);
    else if (strchr(mc->source, '?'))
        weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "source"),
                            "mapping '%s': a Kafka source takes its librdkafka properties in "
                            "kafka_config, not after '?' in its URI",
                            name);
    const char *sp = ks->starting_position;
    if (sp && strcmp(sp, "TRIM_HORIZON") && strcmp(sp, "LATEST") && strcmp(sp, "AT_TIMESTAMP"))
        weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "starting_position"),
                            "mapping '%s': starting_position \"%s\" is not TRIM_HORIZON, LATEST or "
                            "AT_TIMESTAMP",
                            name, sp);
    bool at_time = sp && !strcmp(sp, "AT_TIMESTAMP");
    bool has_ts = weir_mapping_cfg_has(mc, "starting_position_timestamp");
    if (at_time && !has_ts)
        weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "starting_position"),
                            "mapping '%s': AT_TIMESTAMP needs starting_position_timestamp (epoch "
                            "seconds)",
                            name);
    if (has_ts && !at_time)
        weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "starting_position_timestamp"),
                            "mapping '%s': starting_position_timestamp is only read with "
                            "starting_position: AT_TIMESTAMP",
                            name);
    if (has_ts && (int64_t)ks->starting_position_timestamp * 1000 > weir_clock_wall_ms())
        weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "starting_position_timestamp"),
                            "mapping '%s': starting_position_timestamp is in the future (AWS "
                            "refuses it)",
                            name);
    if (ks->event_format && strcmp(ks->event_format, "SelfManagedKafka") &&
        strcmp(ks->event_format, "Kinesis"))
        weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "event_format"),
                            "mapping '%s': event_format \"%s\" is not SelfManagedKafka or Kinesis",
                            name, ks->event_format);
    if (ks->consumer_group_id && strlen(ks->consumer_group_id) > 200)
        weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "consumer_group_id"),
                            "mapping '%s': consumer_group_id is longer than 200 characters", name);
    /* Each property is tried on a configuration of its own: a name or value librdkafka refuses
     * is reported here, not when the mapping starts. */
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    for (size_t i = 0; i < ks->n_kafka_config; i++) {
        const char *k = ks->kafka_config[2 * i], *v = ks->kafka_config[2 * i + 1];
        if (!strcmp(k, "enable.auto.offset.store") || !strcmp(k, "enable.auto.commit") ||
            !strcmp(k, "group.id") || !strcmp(k, "bootstrap.servers") ||
            !strcmp(k, "auto.offset.reset") || !strcmp(k, "log.queue"))
            weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "kafka_config"),
                                "mapping '%s': kafka_config.%s is weir's to set (offsets are "
                                "stored only when records are done; servers, group and "
                                "starting_position have keys of their own; librdkafka's logs go "
                                "through weir's loop)",
                                name, k);
        else if (rd_kafka_conf_set(conf, k, v, why, sizeof(why)) != RD_KAFKA_CONF_OK)
            weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "kafka_config"),
                                "mapping '%s': kafka_config.%s: %s", name, k, why);
    }
    rd_kafka_conf_destroy(conf);
    /* A failed record written back to the topic it came from would come back forever. */
    char *dservers = NULL, *dtopic = NULL;
    if (topic && mc->stream.on_failure &&
        weir_kafka_uri_parse(mc->stream.on_failure, &dservers, &dtopic, why, sizeof(why)) &&
        !strcmp(dtopic, topic))
        weir_cfg_report_add(rep,
                            weir_mapping_cfg_pos(mc, "destination_config.on_failure.destination"),
                            "mapping '%s': the on_failure destination is the source topic '%s' "
                            "itself (AWS refuses it: failed records would come back forever)",
                            name, topic);
    free(dservers);
    free(dtopic);
    free(servers);
    free(topic);
    if (mc->fn && mc->fn->timeout > 14 * 60)
        weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "function"),
                            "mapping '%s': a Kafka mapping's function may run at most 14 minutes "
                            "(AWS's rule); its timeout is %d s",
                            name, mc->fn->timeout);
}

/* A consumer group is a Kafka mapping's alone (AWS wants it unique across a user's Kafka
 * mappings): two mappings in one group would each get part of the partitions. Its cluster is
 * the bootstrap servers as the URI writes them. */
static bool kafka_claim(const struct weir_mapping_cfg *mc, char *out, size_t len, const char **key)
{
    const struct weir_kafka_settings *ks = mc->settings;
    char *servers = NULL, *topic = NULL, why[256];
    if (!weir_kafka_uri_parse(mc->source, &servers, &topic, why, sizeof(why)))
        return false;
    if (ks && ks->consumer_group_id)
        snprintf(out, len, "consumer group \"%s\" of %s", ks->consumer_group_id, servers);
    else
        snprintf(out, len, "consumer group \"weir-%s\" of %s", mc->name, servers);
    free(servers);
    free(topic);
    *key = "consumer_group_id";
    return true;
}

const struct weir_source weir_source_kafka = {
    .config =
        {
            .name = "kafka",
            .scheme = "kafka",
            .example_uri = "kafka://127.0.0.1:9092/orders",
            .keys = kafka_keys,
            .n_keys = sizeof(kafka_keys) / sizeof(*kafka_keys),
            .settings_size = sizeof(struct weir_kafka_settings),
            .default_batch_size = 100,
            .max_batch_size = 10000,
            .default_window_ms = 500,
            .stream = true,
            .validate = kafka_validate,
            .claim = kafka_claim,
        },
    .format = &weir_format_kafka,
    .format_of = kafka_format_of,
    .delivery = WEIR_DELIVERY_STREAM,
    .ops = &kafka_ops,
};
