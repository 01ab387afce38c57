/* The HTTP server and the Invoke API's contract (reference 3.6 and 5.3): the route, the function
 * name in any of AWS's forms, X-Amz-Invocation-Type, the payload limits, and every answer in the
 * shape the AWS CLI and SDKs read (status, X-Amzn-ErrorType, x-amzn-RequestId, a JSON body with
 * Type and message). A request whose client goes away is still carried out; only its answer is
 * dropped. Must never decide how a function is invoked or retried. */
#include "api/api.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/hash.h"
#include "core/list.h"
#include "core/log.h"
#include "core/mem.h"
#include "dispatcher/dispatcher.h"

#define COMPONENT "api"
/* Lambda's payload limits: 6 MB for a synchronous invocation, 1 MB for an asynchronous one. */
#define SYNC_PAYLOAD_MAX  (6 * 1024 * 1024)
#define ASYNC_PAYLOAD_MAX (1024 * 1024)
/* Bodies up to this are read and answered in AWS's shape; a larger one gets evhttp's own 413. */
#define BODY_READ_MAX (16 * 1024 * 1024)
#define INVOKE_PREFIX "/2015-03-31/functions/"
#define INVOKE_SUFFIX "/invocations"
#define MAX_NAME      64
/* Stopping, answers still being written after this long go to clients that left. */
#define FLUSH_GRACE_S 1

struct weir_api {
    const struct weir_api_cfg *cfg;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *sock;
    int port;
    struct weir_function *const *fns;
    size_t n_fns;
    const char *region;
    struct weir_list calls; /* requests being carried out */
    bool stopping;
    void (*stopped)(void *arg);
    void *stopped_arg;
    struct event *flush_timer;
};

/* One request being carried out. evhttp reads nothing more from its connection until it is
 * answered, so req stays valid until then; a client that left is found out by the answer's
 * write, and evhttp frees the request then. A call ends when its answer has been written (so a
 * stop waits for answers to reach their clients), or, while stopping, a grace period after it
 * was answered when the write never finishes (the client went away). */
struct call {
    struct weir_api *api;
    struct evhttp_request *req; /* NULL once answered */
    char request_id[37];
    char function[MAX_NAME + 1];
    struct weir_list link;
};

static void stop_done(struct weir_api *api)
{
    void (*done)(void *) = api->stopped;
    api->stopped = NULL;
    if (api->flush_timer)
        event_del(api->flush_timer);
    done(api->stopped_arg);
}

static void on_flush_grace(evutil_socket_t fd, short what, void *arg)
{
    struct weir_api *api = arg;
    if (api->stopped)
        stop_done(api); /* what is still being written goes to clients that left */
}

static void check_stopped(struct weir_api *api)
{
    if (!api->stopped)
        return;
    if (weir_list_empty(&api->calls)) {
        stop_done(api);
        return;
    }
    struct weir_list *node;
    for (node = api->calls.next; node != &api->calls; node = node->next)
        if (weir_list_entry(node, struct call, link)->req)
            return; /* still being carried out */
    /* Every call is answered; the answers are being written. */
    if (!api->flush_timer)
        api->flush_timer = evtimer_new(api->base, on_flush_grace, api);
    if (!evtimer_pending(api->flush_timer, NULL)) {
        struct timeval tv = {.tv_sec = FLUSH_GRACE_S};
        evtimer_add(api->flush_timer, &tv);
    }
}

static struct call *call_new(struct weir_api *api, struct evhttp_request *req)
{
    struct call *c = weir_calloc(1, sizeof(*c));
    c->api = api;
    c->req = req;
    weir_uuid4(c->request_id);
    weir_list_push_back(&api->calls, &c->link);
    return c;
}

static void call_free(struct call *c)
{
    struct weir_api *api = c->api;
    weir_list_remove(&c->link);
    free(c);
    check_stopped(api);
}

static void on_sent(struct evhttp_request *req, void *arg)
{
    call_free(arg);
}

/* The call is answered (what reply writes next): it ends once the answer is written. */
static struct evhttp_request *answering(struct call *c)
{
    struct evhttp_request *req = c->req;
    c->req = NULL;
    evhttp_request_set_on_complete_cb(req, on_sent, c);
    return req;
}

static void reply(const struct weir_api *api, struct evhttp_request *req, const char *request_id,
                  int code, const char *why, const char *body, size_t len)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "x-amzn-RequestId", request_id);
    /* Stopping: every answer closes its connection, so kept-alive clients go away. */
    if (api->stopping)
        evhttp_add_header(h, "Connection", "close");
    if (len)
        evhttp_add_header(h, "Content-Type", "application/json");
    struct evbuffer *out = evbuffer_new();
    if (len)
        evbuffer_add(out, body, len);
    evhttp_send_reply(req, code, why, out);
    evbuffer_free(out);
}

/* Answers with an AWS error (reference 5.3). Both spellings of the message key, as botocore
 * reads either and the exceptions differ. */
static void reply_error(const struct weir_api *api, struct evhttp_request *req,
                        const char *request_id, int code, const char *exception, const char *type,
                        const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static void reply_error(const struct weir_api *api, struct evhttp_request *req,
                        const char *request_id, int code, const char *exception, const char *type,
                        const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct weir_buf b;
    weir_buf_init(&b);
    weir_buf_printf(&b, "{\"Type\":\"%s\",\"Message\":", type);
    weir_buf_append_json_str(&b, msg, strlen(msg));
    weir_buf_append_str(&b, ",\"message\":");
    weir_buf_append_json_str(&b, msg, strlen(msg));
    if (code == 429)
        weir_buf_append_str(&b,
                            ",\"Reason\":\"ReservedFunctionConcurrentInvocationLimitExceeded\"");
    weir_buf_append_char(&b, '}');
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "X-Amzn-ErrorType", exception);
    if (code == 429)
        evhttp_add_header(h, "Retry-After", "1");
    reply(api, req, request_id, code, exception, b.data, b.len);
    weir_buf_deinit(&b);
}

static struct weir_function *find_function(const struct weir_api *api, const char *name)
{
    for (size_t i = 0; i < api->n_fns; i++)
        if (!strcmp(weir_function_name(api->fns[i]), name))
            return api->fns[i];
    return NULL;
}

/* The function name and qualifier out of any of AWS's forms: name, name:qualifier,
 * arn:aws:lambda:region:account:function:name[:qualifier], account:function:name. */
static void split_name(const char *raw, char *name, size_t name_len, char *qual, size_t qual_len)
{
    const char *n = strstr(raw, ":function:");
    n = n ? n + strlen(":function:") : raw;
    const char *colon = strchr(n, ':');
    size_t len = colon ? (size_t)(colon - n) : strlen(n);
    snprintf(name, name_len, "%.*s", (int)len, n);
    snprintf(qual, qual_len, "%s", colon ? colon + 1 : "");
}

static bool valid_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > MAX_NAME)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '_' && name[i] != '-')
            return false;
    return true;
}

/* ---- RequestResponse ---------------------------------------------------------------------- */

static void on_answer(void *arg, const struct weir_response *resp)
{
    struct call *c = arg;
    struct weir_api *api = c->api;
    weir_debug(COMPONENT, "invoked request_id=%s function=%s status=%ld function_error=%s",
               c->request_id, c->function, resp->status,
               resp->function_error[0] ? resp->function_error : "-");
    /* c is not touched once the answer is sent: it ends when the answer is written. */
    char request_id[37];
    memcpy(request_id, c->request_id, sizeof(request_id));
    struct evhttp_request *req = answering(c);
    if (!resp->ran && resp->status == 429) {
        reply_error(api, req, request_id, 429, "TooManyRequestsException", "User",
                    "Rate Exceeded. (%s)", resp->why);
    } else if (!resp->ran) {
        reply_error(api, req, request_id, 502, "ResourceNotReadyException", "Service",
                    "The function could not be reached: %s", resp->why);
    } else {
        struct evkeyvalq *h = evhttp_request_get_output_headers(req);
        evhttp_add_header(h, "X-Amz-Executed-Version", "$LATEST");
        struct weir_buf body;
        weir_buf_init(&body);
        if (resp->function_error[0]) {
            evhttp_add_header(h, "X-Amz-Function-Error", resp->function_error);
            if (!resp->payload.len) {
                /* Nothing came back (a timeout, a crash): an error object as the runtime would
                 * write one. */
                weir_buf_append_str(&body, "{\"errorType\":\"Runtime.Unknown\",\"errorMessage\":");
                weir_buf_append_json_str(&body, resp->why, strlen(resp->why));
                weir_buf_append_char(&body, '}');
            }
        }
        if (body.len)
            reply(api, req, request_id, 200, "OK", body.data, body.len);
        else
            reply(api, req, request_id, 200, "OK", resp->payload.data ? resp->payload.data : "",
                  resp->payload.len);
        weir_buf_deinit(&body);
    }
    check_stopped(api);
}

/* ---- Event -------------------------------------------------------------------------------- */

static void on_accepted(void *arg, weir_status st, const char *error, const char *request_id)
{
    struct call *c = arg;
    struct weir_api *api = c->api;
    char own_id[37];
    memcpy(own_id, c->request_id, sizeof(own_id));
    struct evhttp_request *req = answering(c);
    if (st == WEIR_OK)
        reply(api, req, request_id, 202, "Accepted", NULL, 0);
    else
        reply_error(api, req, own_id, 500, "ServiceException", "Service",
                    "The event could not be stored: %s", error);
    check_stopped(api);
}

/* ---- the route ---------------------------------------------------------------------------- */

static void on_invoke(struct weir_api *api, struct evhttp_request *req, const char *raw_name)
{
    char request_id[37], name[256], qual[256];
    weir_uuid4(request_id);
    char *decoded = evhttp_uridecode(raw_name, 0, NULL);
    split_name(decoded ? decoded : raw_name, name, sizeof(name), qual, sizeof(qual));
    free(decoded);

    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    struct evkeyvalq query;
    TAILQ_INIT(&query);
    if (evhttp_uri_get_query(uri))
        evhttp_parse_query_str(evhttp_uri_get_query(uri), &query);
    const char *q = evhttp_find_header(&query, "Qualifier");
    if (q && !qual[0])
        snprintf(qual, sizeof(qual), "%s", q);
    evhttp_clear_headers(&query);

    if (!valid_name(name)) {
        reply_error(api, req, request_id, 400, "InvalidParameterValueException", "User",
                    "1 validation error detected: Value '%s' at 'functionName' failed to satisfy "
                    "constraint: Member must be 1..64 characters of A-Z a-z 0-9 _ -",
                    name);
        return;
    }
    struct weir_function *fn = find_function(api, name);
    if (!fn || (qual[0] && strcmp(qual, "$LATEST") != 0)) {
        reply_error(api, req, request_id, 404, "ResourceNotFoundException", "User",
                    "Function not found: arn:aws:lambda:%s:000000000000:function:%s%s%s",
                    api->region, name, qual[0] ? ":" : "", qual);
        return;
    }

    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *type = evhttp_find_header(in, "X-Amz-Invocation-Type");
    if (!type)
        type = "RequestResponse";
    bool is_event = !strcmp(type, "Event"), is_dry = !strcmp(type, "DryRun");
    if (!is_event && !is_dry && strcmp(type, "RequestResponse") != 0) {
        reply_error(api, req, request_id, 400, "InvalidParameterValueException", "User",
                    "1 validation error detected: Value '%s' at 'invocationType' failed to "
                    "satisfy constraint: Member must satisfy enum value set: [Event, "
                    "RequestResponse, DryRun]",
                    type);
        return;
    }
    struct evbuffer *body = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(body);
    size_t limit = is_event ? ASYNC_PAYLOAD_MAX : SYNC_PAYLOAD_MAX;
    if (len > limit) {
        reply_error(api, req, request_id, 413, "RequestTooLargeException", "User",
                    "Request must be smaller than %zu bytes for the InvokeFunction operation",
                    limit);
        return;
    }
    const char *payload = len ? (const char *)evbuffer_pullup(body, -1) : "{}";
    if (!len)
        len = 2; /* no payload: the function gets an empty object */
    json_error_t jerr;
    json_t *parsed =
        json_loadb(payload, len, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &jerr);
    if (!parsed) {
        reply_error(api, req, request_id, 400, "InvalidRequestContentException", "User",
                    "Could not parse request body into json: %s (at byte %d)", jerr.text,
                    jerr.position);
        return;
    }
    json_decref(parsed);
    if (is_dry) {
        reply(api, req, request_id, 204, "No Content", NULL, 0);
        return;
    }
    struct call *c = call_new(api, req);
    snprintf(c->request_id, sizeof(c->request_id), "%s", request_id);
    snprintf(c->function, sizeof(c->function), "%.64s", name);
    if (is_event)
        weir_async_accept(fn, "api", payload, len, on_accepted, c);
    else
        weir_disp_invoke(fn, payload, len, on_answer, c);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct weir_api *api = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    char request_id[37];
    if (!path)
        path = "/";
    if (api->stopping) {
        /* A kept-alive client's next request after the stop began: not taken, so nothing starts
         * that the stop would not wait for. The client may send it again elsewhere. */
        weir_uuid4(request_id);
        reply_error(api, req, request_id, 503, "ServiceException", "Service",
                    "weir is stopping; send the request again");
        return;
    }
    if (!strcmp(path, "/healthz") && cmd == EVHTTP_REQ_GET) {
        struct evbuffer *out = evbuffer_new();
        evbuffer_add_printf(out, "ok\n");
        evhttp_send_reply(req, 200, "OK", out);
        evbuffer_free(out);
        return;
    }
    size_t plen = strlen(path), pre = strlen(INVOKE_PREFIX), suf = strlen(INVOKE_SUFFIX);
    /* Old clients end the path with a slash. */
    if (plen > 1 && path[plen - 1] == '/')
        plen--;
    if (cmd == EVHTTP_REQ_POST && plen > pre + suf && !strncmp(path, INVOKE_PREFIX, pre) &&
        !strncmp(path + plen - suf, INVOKE_SUFFIX, suf)) {
        char raw[768];
        size_t nlen = plen - pre - suf;
        if (nlen < sizeof(raw) && !memchr(path + pre, '/', nlen)) {
            memcpy(raw, path + pre, nlen);
            raw[nlen] = '\0';
            on_invoke(api, req, raw);
            return;
        }
    }
    weir_uuid4(request_id);
    reply_error(api, req, request_id, 404, "UnknownOperationException", "User",
                "weir serves POST " INVOKE_PREFIX "{FunctionName}" INVOKE_SUFFIX
                " and GET /healthz; not %s %s",
                cmd == EVHTTP_REQ_GET    ? "GET"
                : cmd == EVHTTP_REQ_POST ? "POST"
                                         : "this method",
                path);
}

static int bound_port(struct evhttp_bound_socket *sock)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

struct weir_api *weir_api_new(const struct weir_api_cfg *cfg, struct event_base *base,
                              struct weir_function *const *fns, size_t n, const char *region,
                              struct weir_err *err)
{
    struct weir_api *api = weir_calloc(1, sizeof(*api));
    api->cfg = cfg;
    api->base = base;
    api->fns = fns;
    api->n_fns = n;
    api->region = region;
    weir_list_init(&api->calls);
    api->http = evhttp_new(base);
    if (!api->http) {
        weir_err_set(err, "api: cannot create the HTTP server");
        goto fail;
    }
    evhttp_set_max_body_size(api->http, BODY_READ_MAX);
    evhttp_set_allowed_methods(api->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
    evhttp_set_gencb(api->http, on_request, api);
    api->sock = evhttp_bind_socket_with_handle(api->http, cfg->host, (ev_uint16_t)cfg->port);
    if (!api->sock) {
        weir_err_set(err,
                     "api: cannot listen on %s (the port is in use, or the address is not "
                     "this host's): %s",
                     cfg->listen, strerror(errno));
        goto fail;
    }
    api->port = bound_port(api->sock);
    weir_info(COMPONENT, "listening address=%s:%d functions=%zu", cfg->host, api->port, n);
    return api;
fail:
    weir_api_free(api);
    return NULL;
}

int weir_api_port(const struct weir_api *api)
{
    return api->port;
}

void weir_api_stop(struct weir_api *api, void (*done)(void *arg), void *arg)
{
    api->stopping = true;
    if (api->sock) {
        evhttp_del_accept_socket(api->http, api->sock);
        api->sock = NULL;
    }
    api->stopped = done;
    api->stopped_arg = arg;
    check_stopped(api);
}

void weir_api_free(struct weir_api *api)
{
    if (!api)
        return;
    /* Calls still out (a shutdown that gave up) are never answered: the runtime frees what
     * would call them back (the store, the functions) first. */
    struct weir_list *node;
    while ((node = weir_list_pop_front(&api->calls)))
        free(weir_list_entry(node, struct call, link));
    if (api->flush_timer)
        event_free(api->flush_timer);
    if (api->http)
        evhttp_free(api->http);
    free(api);
}
