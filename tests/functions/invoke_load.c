/* invoke_load: posts N invocations to a Lambda Invoke API endpoint (weir's, or any) over C
 * kept-alive connections, each body {"id":"<prefix>-<n>"}, and prints how many were accepted and
 * how fast; with --accepted, writes the id of each one accepted, so a test that kills the server
 * midway knows exactly what it owes. Integration tests queue thousands of events with it (the AWS
 * CLI takes half a second each); the benchmark measures accepts per second with it. A test tool:
 * weir never needs it. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

struct conn {
    struct evhttp_connection *evcon;
    long sent_at_ns;
    long n; /* the event in flight on it */
};

static struct {
    struct event_base *base;
    const char *host;
    int port;
    char path[512];
    const char *type;
    const char *prefix;
    long count, next, accepted, failed, done;
    int want_status;
    long *latency_us;
    size_t n_latency;
    FILE *accepted_ids; /* --accepted: the id of every event answered as wanted */
} g;

static long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static void send_next(struct conn *c);

static void on_response(struct evhttp_request *req, void *arg)
{
    struct conn *c = arg;
    g.done++;
    int status = req ? evhttp_request_get_response_code(req) : 0;
    if (status == g.want_status) {
        g.accepted++;
        g.latency_us[g.n_latency++] = (now_ns() - c->sent_at_ns) / 1000;
        if (g.accepted_ids)
            fprintf(g.accepted_ids, "%s-%06ld\n", g.prefix, c->n);
    } else {
        g.failed++;
        if (g.failed <= 5)
            fprintf(stderr, "invoke_load: answer %d (want %d)\n", status, g.want_status);
    }
    if (g.done == g.count) {
        event_base_loopexit(g.base, NULL);
        return;
    }
    send_next(c);
}

static void send_next(struct conn *c)
{
    if (g.next >= g.count)
        return;
    long n = ++g.next;
    c->n = n;
    struct evhttp_request *req = evhttp_request_new(on_response, c);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    char host[300];
    snprintf(host, sizeof(host), "%s:%d", g.host, g.port);
    evhttp_add_header(h, "Host", host);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "X-Amz-Invocation-Type", g.type);
    evbuffer_add_printf(evhttp_request_get_output_buffer(req), "{\"id\":\"%s-%06ld\"}", g.prefix,
                        n);
    c->sent_at_ns = now_ns();
    if (evhttp_make_request(c->evcon, req, EVHTTP_REQ_POST, g.path) != 0) {
        fprintf(stderr, "invoke_load: cannot send\n");
        exit(1);
    }
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

static void usage(void)
{
    fprintf(stderr, "usage: invoke_load --port PORT --function NAME --count N [--concurrency C]\n"
                    "                   [--prefix P] [--type Event|RequestResponse] [--host H]\n"
                    "                   [--accepted FILE]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *function = NULL, *accepted = NULL;
    int concurrency = 8;
    g.host = "127.0.0.1";
    g.type = "Event";
    g.prefix = "ev";
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--port"))
            g.port = atoi(v);
        else if (!strcmp(a, "--host"))
            g.host = v;
        else if (!strcmp(a, "--function"))
            function = v;
        else if (!strcmp(a, "--count"))
            g.count = atol(v);
        else if (!strcmp(a, "--concurrency"))
            concurrency = atoi(v);
        else if (!strcmp(a, "--prefix"))
            g.prefix = v;
        else if (!strcmp(a, "--type"))
            g.type = v;
        else if (!strcmp(a, "--accepted"))
            accepted = v;
        else
            usage();
    }
    if (!function || g.port <= 0 || g.count <= 0 || concurrency <= 0)
        usage();
    if (accepted && !(g.accepted_ids = fopen(accepted, "w"))) {
        perror(accepted);
        return 2;
    }
    g.want_status = !strcmp(g.type, "Event") ? 202 : !strcmp(g.type, "DryRun") ? 204 : 200;
    snprintf(g.path, sizeof(g.path), "/2015-03-31/functions/%s/invocations", function);
    g.latency_us = calloc((size_t)g.count, sizeof(*g.latency_us));
    g.base = event_base_new();
    struct conn *conns = calloc((size_t)concurrency, sizeof(*conns));
    long t0 = now_ns();
    for (int i = 0; i < concurrency; i++) {
        conns[i].evcon = evhttp_connection_base_new(g.base, NULL, g.host, (unsigned short)g.port);
        evhttp_connection_set_timeout(conns[i].evcon, 60);
        send_next(&conns[i]);
    }
    event_base_dispatch(g.base);
    double secs = (double)(now_ns() - t0) / 1e9;
    qsort(g.latency_us, g.n_latency, sizeof(*g.latency_us), cmp_long);
    long p50 = g.n_latency ? g.latency_us[g.n_latency / 2] : 0;
    long p99 = g.n_latency ? g.latency_us[(g.n_latency * 99) / 100] : 0;
    printf("accepted=%ld failed=%ld seconds=%.3f rate=%.0f p50_us=%ld p99_us=%ld\n", g.accepted,
           g.failed, secs, secs > 0 ? (double)g.accepted / secs : 0.0, p50, p99);
    for (int i = 0; i < concurrency; i++)
        evhttp_connection_free(conns[i].evcon);
    free(conns);
    free(g.latency_us);
    if (g.accepted_ids)
        fclose(g.accepted_ids);
    event_base_free(g.base);
    return g.failed ? 1 : 0;
}
