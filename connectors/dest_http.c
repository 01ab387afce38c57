/* HTTP destination (http://host/path, https://…): each message POSTed to the URL as written,
 * through the function targets (weir's own HTTP client for plain http://, libcurl for the rest,
 * chosen as for a function: connectors/target.h). Any 2xx answer is delivered; anything else is
 * not. Must never retry on its own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "connectors/destination.h"
#include "connectors/target.h"
#include "core/list.h"
#include "core/log.h"
#include "core/mem.h"

/* A destination that takes longer than this is counted as failed (and written again later). */
#define POST_TIMEOUT_MS 10000

struct http_dest {
    struct weir_destination base;
    struct weir_function_cfg fc; /* what the HTTP target is made from: one URL, as written */
    char *urls[2];
    char safe[256];
    const struct weir_target_ops *target_ops;
    struct weir_target *t;
    struct weir_list posts;
};

struct post {
    struct http_dest *d;
    struct weir_buf data;
    struct weir_invocation *inv;
    weir_dest_done_fn done;
    void *arg;
    struct weir_list link;
};

static weir_status http_check(const char *uri, struct weir_err *err)
{
    const char *host = strstr(uri, "://") + 3;
    if (!*host || *host == '/')
        return weir_err_set(err, "an HTTP destination needs a host: http://host[:port]/path");
    return WEIR_OK;
}

static void post_free(struct post *p)
{
    weir_list_remove(&p->link);
    weir_buf_deinit(&p->data);
    free(p);
}

static void on_posted(void *arg, struct weir_invoke_result *res)
{
    struct post *p = arg;
    char why[600];
    weir_status st = WEIR_ERR;
    if (res->transport == WEIR_TRANSPORT_OK && res->status >= 200 && res->status < 300)
        st = WEIR_OK;
    else if (res->transport == WEIR_TRANSPORT_OK)
        snprintf(why, sizeof(why), "%s answered HTTP %ld", p->d->safe, res->status);
    else
        snprintf(why, sizeof(why), "%s: %s", p->d->safe,
                 res->detail[0]                             ? res->detail
                 : res->transport == WEIR_TRANSPORT_TIMEOUT ? "no answer in time"
                                                            : "not reachable");
    weir_dest_done_fn done = p->done;
    void *done_arg = p->arg;
    post_free(p);
    done(done_arg, st, st == WEIR_OK ? NULL : why);
}

static void http_put(struct weir_destination *base, const struct weir_message *msg,
                     weir_dest_done_fn done, void *arg)
{
    struct http_dest *d = (struct http_dest *)base;
    struct post *p = weir_calloc(1, sizeof(*p));
    p->d = d;
    p->done = done;
    p->arg = arg;
    weir_buf_init(&p->data);
    weir_message_render(msg, &p->data);
    weir_list_push_back(&d->posts, &p->link);
    p->inv = d->target_ops->invoke(d->t, p->data.data, p->data.len, POST_TIMEOUT_MS, on_posted, p);
}

static void http_free(struct weir_destination *base)
{
    struct http_dest *d = (struct http_dest *)base;
    if (!d)
        return;
    struct weir_list *node;
    while ((node = weir_list_first(&d->posts))) {
        struct post *p = weir_list_entry(node, struct post, link);
        d->target_ops->cancel(p->inv);
        post_free(p);
    }
    if (d->t)
        d->target_ops->free(d->t);
    free(d->urls[0]);
    free(d);
}

static struct weir_destination *http_new(const char *uri, struct event_base *base,
                                         struct weir_err *err)
{
    if (http_check(uri, err) != WEIR_OK)
        return NULL;
    struct http_dest *d = weir_calloc(1, sizeof(*d));
    d->base.ops = !strncasecmp(uri, "https", 5) ? &weir_dest_https : &weir_dest_http;
    weir_list_init(&d->posts);
    weir_log_redact_uri(uri, d->safe, sizeof(d->safe));
    d->urls[0] = weir_strdup(uri);
    d->fc.name = "destination";
    d->fc.urls = d->urls;
    d->fc.n_urls = 1;
    d->fc.timeout = POST_TIMEOUT_MS / 1000;
    d->fc.reserved_concurrency = -1;
    d->fc.raw_url = true;
    d->target_ops = weir_target_for(&d->fc);
    d->t = d->target_ops->new (&d->fc, 0, base, err);
    if (!d->t) {
        http_free(&d->base);
        return NULL;
    }
    return &d->base;
}

const struct weir_destination_ops weir_dest_http = {
    .scheme = "http",
    .example = "http://127.0.0.1:8080/failures",
    .check = http_check,
    .new = http_new,
    .put = http_put,
    .free = http_free,
};

const struct weir_destination_ops weir_dest_https = {
    .scheme = "https",
    .example = "https://hooks.example.com/failures",
    .check = http_check,
    .new = http_new,
    .put = http_put,
    .free = http_free,
};
