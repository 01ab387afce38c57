/* fn_http: a test function behind HTTP, standing in for a Lambda container (Invoke API or the
 * Runtime Interface Emulator). It reads the SQS event, records each record it saw to a file and
 * answers as --mode says, so tests can count deliveries and provoke every failure a function can.
 * A test tool: it must never be needed by weir itself. See docs/functions.md for the flags. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "core/buf.h"
#include "core/list.h"
#include "tests/functions/fn_event.h"
#include "core/mem.h"

#define BIG_ERROR_BYTES (2 * 1024 * 1024)
#define HUGE_BYTES      (7 * 1024 * 1024)

enum mode {
    MODE_OK,
    MODE_PARTIAL,
    MODE_ERROR,
    MODE_ERROR_TYPE,
    MODE_RIE_ERROR,
    MODE_HANG,
    MODE_GARBAGE,
    MODE_BIG_ERROR,
    MODE_HUGE,
    MODE_TIMEOUT_TEXT,
    MODE_CRASH,
    MODE_STATUS_429,
    MODE_STATUS_503,
    MODE_STATUS_404,
};

static const struct {
    const char *name;
    enum mode mode;
} modes[] = {
    {"ok", MODE_OK},
    {"partial", MODE_PARTIAL},
    {"error", MODE_ERROR},
    {"error-type", MODE_ERROR_TYPE},
    {"rie-error", MODE_RIE_ERROR},
    {"hang", MODE_HANG},
    {"garbage", MODE_GARBAGE},
    {"big-error", MODE_BIG_ERROR},
    {"huge", MODE_HUGE},
    {"timeout-text", MODE_TIMEOUT_TEXT},
    {"crash", MODE_CRASH},
    {"status-429", MODE_STATUS_429},
    {"status-503", MODE_STATUS_503},
    {"status-404", MODE_STATUS_404},
};

static const char ERROR_BODY[] =
    "{\"errorMessage\":\"boom\",\"errorType\":\"Error\",\"stackTrace\":[]}";

/* The whole program's state: one process, one loop. */
static struct {
    struct event_base *base;
    enum mode mode;
    struct fn_fail_rule rule;
    long delay_ms;
    bool single_flight;
    bool log_path;
    bool any_event;           /* --any-event: an event without Records is one record */
    int record_fd;            /* -1: no --record */
    int events_fd;            /* -1: no --events */
    json_t *groups_in_flight; /* message group -> requests holding it */
    long seq;                 /* requests received */
    int in_flight;            /* requests received and not answered yet */
    char *big_error;
    char *huge;
    struct weir_list delayed; /* answers waiting out --delay-ms, freed at exit if unsent */
} g = {.record_fd = -1, .events_fd = -1};

/* One answer, possibly sent later (--delay-ms). */
struct answer {
    struct evhttp_request *req;
    enum { SEND, HANG, CRASH } action;
    int status;
    const char *header_name; /* one extra header, or NULL */
    const char *header_value;
    const char *content_type;
    struct weir_buf body;
    const char *ref; /* a static body sent by reference instead of body */
    size_t ref_len;
    json_t *groups;        /* the message groups of its records, in flight until it is answered */
    struct event *delay;   /* --delay-ms: fires when it is sent */
    struct weir_list link; /* in g.delayed while its delay runs */
};

static void usage(void)
{
    fprintf(stderr,
            "usage: fn_http --listen HOST:PORT [--record FILE] [--mode M]\n"
            "               [--fail-match S] [--fail-receives K] [--fail-fifo] [--delay-ms N]\n"
            "               [--single-flight] [--log-path] [--any-event] [--events FILE]\n");
    exit(2);
}

/* One write(2) on an O_APPEND fd, so processes sharing the file never interleave lines. */
static void fd_write(int fd, const char *data, size_t len)
{
    while (fd >= 0 && len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            perror("fn_http: write record");
            return;
        }
        data += n;
        len -= (size_t)n;
    }
}

static void record_write(const char *data, size_t len)
{
    fd_write(g.record_fd, data, len);
}

/* A FIFO queue never has two batches of one message group at the function at once, across every
 * weir on the queue: a request holding a group another request still holds is recorded as
 * `OVERLAP\t<group>`. */
static json_t *groups_enter(json_t *records)
{
    json_t *mine = json_object();
    size_t i;
    json_t *r;
    json_array_foreach(records, i, r)
    {
        const char *group = fn_record_group(r);
        if (!group || json_object_get(mine, group))
            continue;
        json_object_set_new(mine, group, json_true());
        json_t *held = json_object_get(g.groups_in_flight, group);
        if (held) {
            struct weir_buf line;
            weir_buf_init(&line);
            weir_buf_append_str(&line, "OVERLAP\t");
            fn_append_clean(&line, group);
            weir_buf_append_char(&line, '\n');
            record_write(line.data, line.len);
            weir_buf_deinit(&line);
        }
        json_object_set_new(g.groups_in_flight, group,
                            json_integer(held ? json_integer_value(held) + 1 : 1));
    }
    return mine;
}

static void groups_leave(json_t *mine)
{
    const char *group;
    json_t *v;
    json_object_foreach(mine, group, v)
    {
        json_t *held = json_object_get(g.groups_in_flight, group);
        if (held && json_integer_value(held) > 1)
            json_object_set_new(g.groups_in_flight, group,
                                json_integer(json_integer_value(held) - 1));
        else
            json_object_del(g.groups_in_flight, group);
    }
}

static void answer_send(struct answer *a)
{
    struct evhttp_request *req = a->req;
    if (a->action == HANG)
        return; /* keep the connection open, never answer */
    g.in_flight--;
    groups_leave(a->groups);
    if (a->action == CRASH) {
        /* Close without a response, like a container that died: shut the socket down, then
         * let evhttp's own failed write free the connection and the request. */
        struct evhttp_connection *conn = evhttp_request_get_connection(req);
        struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;
        if (bev)
            shutdown(bufferevent_getfd(bev), SHUT_RDWR);
        evhttp_send_reply(req, 500, "Crashed", NULL);
        return;
    }
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    evhttp_add_header(headers, "Content-Type",
                      a->content_type ? a->content_type : "application/json");
    if (a->header_name)
        evhttp_add_header(headers, a->header_name, a->header_value);
    struct evbuffer *out = evbuffer_new();
    if (a->ref)
        evbuffer_add_reference(out, a->ref, a->ref_len, NULL, NULL);
    else
        evbuffer_add(out, a->body.data ? a->body.data : "", a->body.len);
    evhttp_send_reply(req, a->status, NULL, out);
    evbuffer_free(out);
}

static void answer_free(struct answer *a)
{
    if (a->delay) {
        weir_list_remove(&a->link);
        event_free(a->delay);
    }
    json_decref(a->groups);
    weir_buf_deinit(&a->body);
    free(a);
}

static void on_delay(evutil_socket_t fd, short what, void *arg)
{
    struct answer *a = arg;
    answer_send(a);
    answer_free(a);
}

static void set_body(struct answer *a, int status, const char *text)
{
    a->status = status;
    weir_buf_reset(&a->body);
    weir_buf_append_str(&a->body, text);
}

/* Fills a for a request whose records were read; failing lists the messageIds that fail. */
static void decide(struct answer *a, json_t *failing, bool request_fails)
{
    set_body(a, 200, "{}");
    if (g.mode == MODE_OK)
        return;
    if (g.mode == MODE_PARTIAL) {
        if (json_array_size(failing) == 0)
            return;
        json_t *items = json_array();
        size_t i;
        json_t *id;
        json_array_foreach(failing, i, id)
        {
            json_array_append_new(items, json_pack("{s:O}", "itemIdentifier", id));
        }
        json_t *resp = json_pack("{s:o}", "batchItemFailures", items);
        char *text = json_dumps(resp, JSON_COMPACT);
        set_body(a, 200, text);
        free(text);
        json_decref(resp);
        return;
    }
    if (!request_fails)
        return;
    switch (g.mode) {
    case MODE_ERROR:
        set_body(a, 200, ERROR_BODY);
        a->header_name = "X-Amz-Function-Error";
        a->header_value = "Unhandled";
        break;
    case MODE_ERROR_TYPE:
        set_body(a, 200, ERROR_BODY);
        a->header_name = "Error-Type";
        a->header_value = "Function.Unhandled";
        break;
    case MODE_RIE_ERROR:
        set_body(a, 200, ERROR_BODY);
        break;
    case MODE_HANG:
        a->action = HANG;
        break;
    case MODE_GARBAGE:
        set_body(a, 200, "this is not json <<<");
        a->content_type = "text/plain";
        break;
    case MODE_BIG_ERROR:
        a->status = 500;
        a->ref = g.big_error;
        a->ref_len = BIG_ERROR_BYTES;
        a->content_type = "text/html";
        break;
    case MODE_HUGE:
        a->ref = g.huge;
        a->ref_len = HUGE_BYTES;
        break;
    case MODE_TIMEOUT_TEXT:
        set_body(a, 200, "Task timed out after 3.00 seconds");
        a->content_type = "text/plain";
        break;
    case MODE_CRASH:
        a->action = CRASH;
        break;
    case MODE_STATUS_429:
        set_body(a, 429,
                 "{\"Reason\":\"ConcurrentInvocationLimitExceeded\","
                 "\"Type\":\"User\",\"message\":\"Rate Exceeded.\"}");
        break;
    case MODE_STATUS_503:
        set_body(a, 503, "{\"message\":\"Service Unavailable\"}");
        break;
    case MODE_STATUS_404:
        set_body(a, 404, "{\"Type\":\"User\",\"message\":\"Function not found\"}");
        break;
    default:
        break;
    }
}

static void reply_now(struct evhttp_request *req, int status, const char *body)
{
    struct evbuffer *out = evbuffer_new();
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evbuffer_add(out, body, strlen(body));
    evhttp_send_reply(req, status, NULL, out);
    evbuffer_free(out);
}

static void log_path(struct evhttp_request *req)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    char *addr = NULL;
    ev_uint16_t port = 0;
    if (conn)
        evhttp_connection_get_peer(conn, &addr, &port);
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *ct = evhttp_find_header(in, "Content-Type");
    const char *it = evhttp_find_header(in, "X-Amz-Invocation-Type");
    const char *host = evhttp_find_header(in, "Host");
    const char *ua = evhttp_find_header(in, "User-Agent");
    struct weir_buf line;
    weir_buf_init(&line);
    weir_buf_printf(&line, "PATH\t%s\t%u\t%s\t%s\t%s\t%s\n", evhttp_request_get_uri(req),
                    (unsigned)port, ct ? ct : "-", it ? it : "-", host ? host : "-", ua ? ua : "-");
    record_write(line.data, line.len);
    weir_buf_deinit(&line);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    long seq = ++g.seq;
    if (g.log_path)
        log_path(req);
    if (g.single_flight && g.in_flight > 0) {
        record_write("CONCURRENT\n", 11);
        reply_now(req, 400, "{\"errorMessage\":\"concurrent invocation\",\"errorType\":\"Busy\"}");
        return;
    }

    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *data = (const char *)evbuffer_pullup(in, -1);
    json_error_t jerr;
    if (g.events_fd >= 0 && len) {
        /* The event as it came, one line (weir writes events without newlines). */
        char *line = weir_malloc(len + 1);
        memcpy(line, data, len);
        line[len] = '\n';
        fd_write(g.events_fd, line, len + 1);
        free(line);
    }
    json_t *event = json_loadb(data ? data : "", len,
                               JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &jerr);
    json_t *records = event ? fn_event_records(event, g.any_event) : NULL;
    if (!records) {
        json_decref(event);
        record_write("BADREQUEST\n", 11);
        reply_now(req, 400,
                  "{\"errorMessage\":\"not an event with Records\","
                  "\"errorType\":\"InvalidRequestContentException\"}");
        return;
    }

    struct weir_buf lines;
    weir_buf_init(&lines);
    json_t *failing = json_array();
    /* Without --fail-match every invocation fails in the failure modes (subject to K). */
    bool request_fails = fn_event_scan(records, &g.rule, seq, g.in_flight, &lines, failing);
    record_write(lines.data ? lines.data : "", lines.len);
    weir_buf_deinit(&lines);

    struct answer *a = weir_calloc(1, sizeof(*a));
    a->req = req;
    a->action = SEND;
    a->groups = groups_enter(records);
    weir_buf_init(&a->body);
    decide(a, failing, request_fails);
    json_decref(failing);
    json_decref(records);
    json_decref(event);

    g.in_flight++;
    if (g.delay_ms > 0 && a->action != HANG) {
        struct timeval tv = {.tv_sec = g.delay_ms / 1000, .tv_usec = (g.delay_ms % 1000) * 1000};
        a->delay = evtimer_new(g.base, on_delay, a);
        weir_list_push_back(&g.delayed, &a->link);
        evtimer_add(a->delay, &tv);
        return;
    }
    answer_send(a);
    answer_free(a);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    event_base_loopexit(g.base, NULL);
}

int main(int argc, char **argv)
{
    const char *listen = NULL, *record = NULL, *events = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--single-flight") == 0) {
            g.single_flight = true;
            continue;
        }
        if (strcmp(a, "--log-path") == 0) {
            g.log_path = true;
            continue;
        }
        if (strcmp(a, "--any-event") == 0) {
            g.any_event = true;
            continue;
        }
        if (strcmp(a, "--fail-fifo") == 0) {
            g.rule.fifo = true;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (strcmp(a, "--listen") == 0) {
            listen = v;
        } else if (strcmp(a, "--record") == 0) {
            record = v;
        } else if (strcmp(a, "--events") == 0) {
            events = v;
        } else if (strcmp(a, "--mode") == 0) {
            size_t k;
            for (k = 0; k < sizeof(modes) / sizeof(modes[0]); k++)
                if (strcmp(modes[k].name, v) == 0)
                    break;
            if (k == sizeof(modes) / sizeof(modes[0])) {
                fprintf(stderr, "fn_http: unknown mode %s\n", v);
                usage();
            }
            g.mode = modes[k].mode;
        } else if (strcmp(a, "--fail-match") == 0) {
            g.rule.match = v;
        } else if (strcmp(a, "--fail-receives") == 0) {
            g.rule.receives = strtol(v, NULL, 10);
        } else if (strcmp(a, "--delay-ms") == 0) {
            g.delay_ms = strtol(v, NULL, 10);
        } else {
            usage();
        }
    }
    if (!g.rule.match && getenv("FN_FAIL_MATCH") && *getenv("FN_FAIL_MATCH"))
        g.rule.match = getenv("FN_FAIL_MATCH");
    if (g.rule.receives == 0 && getenv("FN_FAIL_RECEIVES"))
        g.rule.receives = strtol(getenv("FN_FAIL_RECEIVES"), NULL, 10);
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    if (!colon)
        usage();
    char host[256];
    snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
    long port = strtol(colon + 1, NULL, 10);

    /* A client that hangs up must not kill the function with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    if (record) {
        g.record_fd = open(record, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (g.record_fd < 0) {
            fprintf(stderr, "fn_http: %s: %s\n", record, strerror(errno));
            return 1;
        }
    }
    if (events) {
        g.events_fd = open(events, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (g.events_fd < 0) {
            fprintf(stderr, "fn_http: %s: %s\n", events, strerror(errno));
            return 1;
        }
    }
    g.big_error = weir_malloc(BIG_ERROR_BYTES);
    memset(g.big_error, 'x', BIG_ERROR_BYTES);
    memcpy(g.big_error, "<html><body><pre>", 17);
    memcpy(g.big_error + BIG_ERROR_BYTES - 21, "</pre></body></html>\n", 21);
    g.huge = weir_malloc(HUGE_BYTES);
    memset(g.huge, ' ', HUGE_BYTES);
    memcpy(g.huge, "{\"pad\":\"", 8);
    memset(g.huge + 8, 'y', HUGE_BYTES - 10);
    memcpy(g.huge + HUGE_BYTES - 2, "\"}", 2);

    g.groups_in_flight = json_object();
    g.base = event_base_new();
    weir_list_init(&g.delayed);
    struct evhttp *http = evhttp_new(g.base);
    /* Long enough that a keep-alive connection is never closed under a test or benchmark. */
    evhttp_set_timeout(http, 3600);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_GET);
    evhttp_set_gencb(http, on_request, NULL);
    struct evhttp_bound_socket *bound =
        evhttp_bind_socket_with_handle(http, host, (ev_uint16_t)port);
    if (!bound) {
        fprintf(stderr, "fn_http: cannot listen on %s: %s\n", listen, strerror(errno));
        return 1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss, &sl);
    int bound_port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                              : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    printf("PORT=%d\n", bound_port);
    fflush(stdout);

    struct event *term = evsignal_new(g.base, SIGTERM, on_signal, NULL);
    struct event *intr = evsignal_new(g.base, SIGINT, on_signal, NULL);
    evsignal_add(term, NULL);
    evsignal_add(intr, NULL);
    event_base_dispatch(g.base);
    /* Answers still waiting out their delay are never sent: stopped mid-request. */
    struct weir_list *node;
    while ((node = weir_list_first(&g.delayed)))
        answer_free(weir_list_entry(node, struct answer, link));

    printf("REQUESTS=%ld\n", g.seq);
    fflush(stdout);
    event_free(term);
    event_free(intr);
    evhttp_free(http);
    event_base_free(g.base);
    json_decref(g.groups_in_flight);
    free(g.big_error);
    free(g.huge);
    if (g.record_fd >= 0)
        close(g.record_fd);
    if (g.events_fd >= 0)
        close(g.events_fd);
    return 0;
}
