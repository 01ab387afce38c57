/* `weir redrive`: moves what a failure destination holds back into the asynchronous queue — each
 * invocation record's requestPayload (or a dead letter's body) sent to its function as an Event
 * through the running weir's Invoke API, then removed from the destination. One at a time,
 * at a bounded rate, with a count as it goes; a record is removed only after the API answered
 * 202, so a redrive stopped midway loses nothing (the one in hand may be sent twice). It must
 * never write to the state store itself: the weir that owns it does. */
#include "cli/redrive.h"

#include <curl/curl.h>
#include <dirent.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/sources.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/mem.h"
#include "core/redis_uri.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE   2

struct redrive {
    const struct weir_config *cfg;
    const char *from;
    const char *function; /* --function: overrides the record's */
    const char *endpoint; /* --endpoint-url, else the configuration's api.listen */
    double rate;          /* per second; 0: as fast as the API takes them */
    long limit;           /* at most this many; 0: all */
    /* a directory */
    char *dir;
    char **files;
    size_t n_files, next_file;
    /* a Redis list */
    redisContext *redis;
    struct weir_redis_uri uri;
    CURL *curl;
    long moved, total;
    bool read_failed; /* next_message ended on an error, not on the end */
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- the destination, read ---------------------------------------------------------------- */

static int open_dir(struct redrive *rd)
{
    const char *path = rd->from + strlen("file://");
    rd->dir = weir_strdup(path);
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "weir redrive: cannot read %s: %m\n", path);
        return -1;
    }
    struct dirent *de;
    size_t cap = 0;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        /* Whole files only: a writer's temporary file starts with a dot. */
        if (de->d_name[0] == '.' || n < 6 || strcmp(de->d_name + n - 5, ".json") != 0)
            continue;
        if (rd->n_files == cap) {
            cap = cap ? cap * 2 : 64;
            rd->files = weir_realloc(rd->files, cap * sizeof(*rd->files));
        }
        rd->files[rd->n_files++] = weir_strdup(de->d_name);
    }
    closedir(d);
    /* Names start with the time they were written: oldest first. */
    qsort(rd->files, rd->n_files, sizeof(*rd->files), cmp_str);
    rd->total = (long)rd->n_files;
    return 0;
}

static int open_redis(struct redrive *rd)
{
    struct weir_err err = {{0}};
    if (weir_redis_uri_parse(rd->from, &rd->uri, &err) != WEIR_OK) {
        fprintf(stderr, "weir redrive: %s\n", err.msg);
        return -1;
    }
    struct timeval tv = {.tv_sec = 5};
    rd->redis = redisConnectWithTimeout(rd->uri.host, rd->uri.port, tv);
    if (!rd->redis || rd->redis->err) {
        fprintf(stderr, "weir redrive: cannot connect to redis %s:%d: %s\n", rd->uri.host,
                rd->uri.port, rd->redis ? rd->redis->errstr : "out of memory");
        return -1;
    }
    redisReply *r = NULL;
    if (rd->uri.password)
        r = rd->uri.user ? redisCommand(rd->redis, "AUTH %s %s", rd->uri.user, rd->uri.password)
                         : redisCommand(rd->redis, "AUTH %s", rd->uri.password);
    if (rd->uri.password && (!r || r->type == REDIS_REPLY_ERROR)) {
        fprintf(stderr, "weir redrive: AUTH refused: %s\n", r ? r->str : rd->redis->errstr);
        freeReplyObject(r);
        return -1;
    }
    freeReplyObject(r);
    r = redisCommand(rd->redis, "SELECT %d", rd->uri.db);
    bool ok = r && r->type != REDIS_REPLY_ERROR;
    if (!ok)
        fprintf(stderr, "weir redrive: SELECT %d refused: %s\n", rd->uri.db,
                r ? r->str : rd->redis->errstr);
    freeReplyObject(r);
    if (!ok)
        return -1;
    r = redisCommand(rd->redis, "LLEN %s", rd->uri.key);
    rd->total = r && r->type == REDIS_REPLY_INTEGER ? (long)r->integer : 0;
    freeReplyObject(r);
    return 0;
}

/* The next message's text (the caller frees it), NULL when there is none left; where says where
 * it was, for messages. */
static char *next_message(struct redrive *rd, char *where, size_t where_len)
{
    if (rd->dir) {
        if (rd->next_file >= rd->n_files)
            return NULL;
        const char *name = rd->files[rd->next_file];
        snprintf(where, where_len, "%s/%s", rd->dir, name);
        FILE *f = fopen(where, "rb");
        if (!f) {
            fprintf(stderr, "weir redrive: cannot read %s: %m\n", where);
            rd->read_failed = true;
            return NULL;
        }
        struct weir_buf b;
        weir_buf_init(&b);
        char chunk[65536];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
            weir_buf_append(&b, chunk, n);
        fclose(f);
        if (!b.data)
            weir_buf_append(&b, "", 0);
        return weir_buf_take(&b, NULL);
    }
    redisReply *r = redisCommand(rd->redis, "LINDEX %s 0", rd->uri.key);
    char *text = NULL;
    if (r && r->type == REDIS_REPLY_STRING)
        text = weir_strndup(r->str, r->len);
    else if (!r || r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "weir redrive: LINDEX failed: %s\n", r ? r->str : rd->redis->errstr);
        rd->read_failed = true;
    }
    freeReplyObject(r);
    snprintf(where, where_len, "the head of %s", rd->uri.key);
    return text;
}

/* Removes the message next_message gave (it reached the queue). */
static int drop_message(struct redrive *rd, const char *where, const char *text)
{
    if (rd->dir) {
        rd->next_file++;
        if (unlink(where) != 0) {
            fprintf(stderr, "weir redrive: sent, but cannot remove %s: %m\n", where);
            return -1;
        }
        return 0;
    }
    /* Exactly what was sent, wherever it is now, in one command: another reader of the list
     * may have taken the head meanwhile. */
    redisReply *r = redisCommand(rd->redis, "LREM %s 1 %b", rd->uri.key, text, strlen(text));
    bool removed = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    if (!removed)
        fprintf(stderr, "weir redrive: sent, but %s: %s; stopping\n",
                r && r->type == REDIS_REPLY_INTEGER ? "someone else took it from the list"
                                                    : "cannot remove it from the list",
                r && r->type == REDIS_REPLY_ERROR ? r->str : rd->redis->errstr);
    freeReplyObject(r);
    return removed ? 0 : -1;
}

/* ---- what to send -------------------------------------------------------------------------- */

/* The end of the JSON value that starts at p (after any blanks), or NULL when there is none: a
 * string (its escapes skipped), an object or an array (nesting counted, strings inside skipped),
 * or a scalar up to the next , } ] or blank. */
static const char *json_value_end(const char *p)
{
    p += strspn(p, " \t\r\n");
    int depth = 0;
    bool in_string = false;
    for (const char *c = p; *c; c++) {
        if (in_string) {
            if (*c == '\\' && c[1])
                c++;
            else if (*c == '"') {
                in_string = false;
                if (depth == 0)
                    return c + 1;
            }
        } else if (*c == '"') {
            in_string = true;
        } else if (*c == '{' || *c == '[') {
            depth++;
        } else if (*c == '}' || *c == ']') {
            if (--depth == 0)
                return c + 1;
            if (depth < 0)
                return c == p ? NULL : c;
        } else if (depth == 0 &&
                   (*c == ',' || *c == ' ' || *c == '\n' || *c == '\r' || *c == '\t')) {
            return c == p ? NULL : c;
        }
    }
    return depth == 0 && !in_string && *p ? p + strlen(p) : NULL;
}

/* The bytes of the record's requestPayload exactly as weir wrote them (its records hold the
 * payload as it was accepted), or NULL when the text is not laid out as weir writes records. */
static char *raw_request_payload(const char *text)
{
    static const char member[] = "\"requestPayload\":";
    const char *at = strstr(text, member);
    if (!at)
        return NULL;
    const char *start = at + strlen(member);
    start += strspn(start, " \t\r\n");
    const char *end = json_value_end(start);
    return end ? weir_strndup(start, (size_t)(end - start)) : NULL;
}

/* The payload and the function of one message: an invocation record (its requestPayload, to the
 * function of its functionArn) or a dead letter in weir's envelope (its body, to --function). */
static int decode(const struct redrive *rd, const char *text, const char *where, char **payload,
                  char *function, size_t function_len)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &jerr);
    if (!json_is_object(j)) {
        fprintf(stderr, "weir redrive: %s is not a record weir wrote (not a JSON object: %s)\n",
                where, jerr.text);
        json_decref(j);
        return -1;
    }
    json_t *req = json_object_get(j, "requestPayload");
    json_t *body = json_object_get(j, "body");
    const char *arn =
        json_string_value(json_object_get(json_object_get(j, "requestContext"), "functionArn"));
    int rc = 0;
    if (req) {
        /* The bytes as accepted; re-encoding would change numbers (0.1 comes back as
         * 0.10000000000000001) and drop nothing else, so only a record not laid out as weir
         * writes them is re-encoded. */
        *payload = raw_request_payload(text);
        if (!*payload)
            *payload = json_dumps(req, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
    } else if (json_is_string(body) && json_object_get(j, "weir")) {
        *payload = weir_strdup(json_string_value(body));
    } else {
        fprintf(stderr,
                "weir redrive: %s is neither an invocation record (requestPayload) nor a dead "
                "letter (weir's envelope with a body)\n",
                where);
        rc = -1;
    }
    function[0] = '\0';
    if (rd->function) {
        snprintf(function, function_len, "%s", rd->function);
    } else if (arn && strstr(arn, ":function:")) {
        const char *name = strstr(arn, ":function:") + strlen(":function:");
        snprintf(function, function_len, "%.*s", (int)strcspn(name, ":"), name);
    } else if (rc == 0) {
        fprintf(stderr,
                "weir redrive: %s names no function (a dead letter does not): give --function\n",
                where);
        rc = -1;
    }
    json_decref(j);
    return rc;
}

static size_t discard(char *data, size_t size, size_t n, void *arg)
{
    struct weir_buf *b = arg;
    weir_buf_append(b, data, size * n);
    return size * n;
}

/* Sends payload to function as an Event; 0 when the API answered 202. */
static int send_event(struct redrive *rd, const char *function, const char *payload)
{
    const struct weir_api_cfg *api = &rd->cfg->api;
    char url[768];
    if (rd->endpoint) {
        size_t n = strlen(rd->endpoint);
        while (n && rd->endpoint[n - 1] == '/')
            n--;
        snprintf(url, sizeof(url), "%.*s/2015-03-31/functions/%s/invocations", (int)n, rd->endpoint,
                 function);
    } else {
        bool v6 = strchr(api->host, ':') != NULL;
        snprintf(url, sizeof(url), "http://%s%s%s:%d/2015-03-31/functions/%s/invocations",
                 v6 ? "[" : "", api->host, v6 ? "]" : "", api->port, function);
    }
    struct curl_slist *headers = NULL;
    headers = curl_slist_append(headers, "X-Amz-Invocation-Type: Event");
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Expect:");
    struct weir_buf answer;
    weir_buf_init(&answer);
    curl_easy_reset(rd->curl);
    curl_easy_setopt(rd->curl, CURLOPT_URL, url);
    curl_easy_setopt(rd->curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(rd->curl, CURLOPT_POSTFIELDS, payload);
    curl_easy_setopt(rd->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(payload));
    curl_easy_setopt(rd->curl, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(rd->curl, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(rd->curl, CURLOPT_WRITEDATA, &answer);
    CURLcode cc = curl_easy_perform(rd->curl);
    long status = 0;
    curl_easy_getinfo(rd->curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    int rc = 0;
    if (cc != CURLE_OK) {
        fprintf(stderr, "weir redrive: %s: %s (is weir running with this configuration?)\n", url,
                curl_easy_strerror(cc));
        rc = -1;
    } else if (status != 202) {
        fprintf(stderr, "weir redrive: %s answered %ld: %s\n", url, status,
                answer.data ? answer.data : "");
        rc = -1;
    }
    weir_buf_deinit(&answer);
    return rc;
}

static void progress(const struct redrive *rd, bool last)
{
    fprintf(stderr, "weir redrive: %ld of %ld moved back into the queue%s\n", rd->moved,
            rd->limit && rd->limit < rd->total ? rd->limit : rd->total, last ? "" : " ...");
}

static int run(struct redrive *rd)
{
    int64_t started = weir_clock_mono_ms(), shown = started;
    char where[1024], function[128];
    char *text;
    while ((!rd->limit || rd->moved < rd->limit) &&
           (text = next_message(rd, where, sizeof(where)))) {
        char *payload = NULL;
        if (decode(rd, text, where, &payload, function, sizeof(function)) != 0 ||
            send_event(rd, function, payload) != 0 || drop_message(rd, where, text) != 0) {
            free(text);
            free(payload);
            progress(rd, true);
            return EXIT_RUNTIME;
        }
        free(text);
        free(payload);
        rd->moved++;
        int64_t now = weir_clock_mono_ms();
        if (now - shown >= 1000) {
            progress(rd, false);
            shown = now;
        }
        if (rd->rate > 0) {
            /* The n-th message leaves no sooner than n / rate seconds after the first. */
            int64_t due = started + (int64_t)((double)rd->moved * 1000.0 / rd->rate);
            if (due > now)
                usleep((useconds_t)((due - now) * 1000));
        }
    }
    progress(rd, true);
    return rd->read_failed ? EXIT_RUNTIME : 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: weir redrive -c FILE --from URI [--function NAME] [--rate N] [--limit N]\n"
            "                   [--endpoint-url URL]\n"
            "  --from URI       a failure destination: file:///dir or redis://host:port/db/list,\n"
            "                   or a Kafka topic of failed stream records:\n"
            "                   kafka://host:port/topic (each goes back to its own topic)\n"
            "  --function NAME  send to NAME (dead letters name no function; records do)\n"
            "  --rate N         events per second (default 10; 0: no limit)\n"
            "  --limit N        at most N\n"
            "  --endpoint-url URL  the running weir's API (default: the configuration's\n"
            "                   api.listen)\n"
            "Sends each through the running weir's Invoke API (the configuration's api section)\n"
            "as an Event, then removes it from the destination.\n");
}

int weir_redrive_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},       {"from", required_argument, NULL, 'f'},
        {"function", required_argument, NULL, 'n'},     {"rate", required_argument, NULL, 'r'},
        {"limit", required_argument, NULL, 'm'},        {"help", no_argument, NULL, 'h'},
        {"endpoint-url", required_argument, NULL, 'e'}, {NULL, 0, NULL, 0},
    };
    struct redrive rd = {.rate = 10};
    const char *config = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'f':
            rd.from = optarg;
            break;
        case 'n':
            rd.function = optarg;
            break;
        case 'r':
            rd.rate = strtod(optarg, NULL);
            break;
        case 'm':
            rd.limit = strtol(optarg, NULL, 10);
            break;
        case 'e':
            rd.endpoint = optarg;
            break;
        case 'h':
            usage();
            return 0;
        default:
            usage();
            return EXIT_USAGE;
        }
    }
    if (!config || !rd.from || rd.rate < 0 || rd.limit < 0 || optind < argc) {
        usage();
        return EXIT_USAGE;
    }
    struct weir_cfg_report rep;
    weir_cfg_report_init(&rep);
    struct weir_config *cfg = weir_config_load_file(config, weir_cli_cfg_env(), &rep);
    for (size_t i = 0; i < rep.n; i++)
        fprintf(stderr, "%s\n", rep.errors[i]);
    weir_cfg_report_deinit(&rep);
    if (!cfg)
        return EXIT_USAGE;
    int code = EXIT_USAGE;
    rd.cfg = cfg;
    if (!strncmp(rd.from, "kafka://", 8)) {
        /* A stream's failed records go back to their topic, not through the API. */
        if (rd.function) {
            fprintf(stderr, "weir redrive: --function does not apply to a Kafka topic: each record "
                            "goes back to the topic it came from\n");
            goto out;
        }
        code = weir_redrive_kafka(rd.from, rd.rate, rd.limit);
        goto out;
    }
    if (!cfg->api.enabled) {
        fprintf(stderr,
                "weir redrive: %s has no api section: redrive sends events through the "
                "running weir's Invoke API\n",
                config);
        goto out;
    }
    if (!rd.endpoint && cfg->api.port == 0) {
        fprintf(stderr,
                "weir redrive: %s's api listens on port 0 (any free one): give "
                "--endpoint-url with the port weir logged\n",
                config);
        goto out;
    }
    bool known_function = !rd.function;
    for (size_t i = 0; rd.function && i < cfg->n_functions; i++)
        known_function = known_function || !strcmp(cfg->functions[i].name, rd.function);
    if (!known_function) {
        fprintf(stderr, "weir redrive: %s has no function named '%s'\n", config, rd.function);
        goto out;
    }
    int opened;
    if (!strncmp(rd.from, "file://", 7)) {
        opened = open_dir(&rd);
    } else if (!strncmp(rd.from, "redis://", 8)) {
        opened = open_redis(&rd);
    } else {
        fprintf(stderr, "weir redrive: --from is file:///dir, redis://host:port/db/list or "
                        "kafka://host:port/topic\n");
        goto out;
    }
    code = EXIT_RUNTIME;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rd.curl = curl_easy_init();
    if (opened == 0 && rd.curl)
        code = run(&rd);
    curl_easy_cleanup(rd.curl);
    curl_global_cleanup();
out:
    for (size_t i = 0; i < rd.n_files; i++)
        free(rd.files[i]);
    free(rd.files);
    free(rd.dir);
    if (rd.redis)
        redisFree(rd.redis);
    weir_redis_uri_deinit(&rd.uri);
    weir_config_free(cfg);
    return code;
}
