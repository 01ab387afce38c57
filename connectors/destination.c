/* The destinations' registry and what they share: finding a row by scheme, and the one way a
 * message becomes bytes. Must never know a destination's protocol. */
#include "connectors/destination.h"

#include <stdio.h>
#include <string.h>

static const struct weir_destination_ops *const rows[] = {
    &weir_dest_redis, &weir_dest_dir, &weir_dest_http, &weir_dest_https, &weir_dest_kafka,
};

const struct weir_destination_ops *weir_destination_find(const char *uri)
{
    const char *colon = strstr(uri, "://");
    if (!colon)
        return NULL;
    size_t len = (size_t)(colon - uri);
    for (size_t i = 0; i < sizeof(rows) / sizeof(*rows); i++)
        if (strlen(rows[i]->scheme) == len && !strncasecmp(uri, rows[i]->scheme, len))
            return rows[i];
    return NULL;
}

weir_status weir_destination_check(const char *uri, struct weir_err *err)
{
    const struct weir_destination_ops *ops = weir_destination_find(uri);
    if (ops)
        return ops->check(uri, err);
    char known[256] = "";
    size_t at = 0;
    for (size_t i = 0; i < sizeof(rows) / sizeof(*rows) && at < sizeof(known); i++)
        at += (size_t)snprintf(known + at, sizeof(known) - at, "%s%s", i ? ", " : "",
                               rows[i]->example);
    return weir_err_set(err, "not a destination weir knows; write one of: %s", known);
}

struct weir_destination *weir_destination_new(const char *uri, struct event_base *base,
                                              struct weir_err *err)
{
    const struct weir_destination_ops *ops = weir_destination_find(uri);
    if (!ops) {
        weir_destination_check(uri, err);
        return NULL;
    }
    return ops->new (uri, base, err);
}

void weir_destination_free(struct weir_destination *d)
{
    if (d)
        d->ops->free(d);
}

void weir_message_render(const struct weir_message *msg, struct weir_buf *out)
{
    if (!msg->attrs_json) {
        weir_buf_append(out, msg->body, msg->body_len);
        return;
    }
    weir_buf_append_str(out, "{\"weir\":1,\"id\":");
    weir_buf_append_json_str(out, msg->id, strlen(msg->id));
    weir_buf_append_str(out, ",\"body\":");
    weir_buf_append_json_str(out, msg->body, msg->body_len);
    weir_buf_append_str(out, ",\"attributes\":");
    weir_buf_append_str(out, msg->attrs_json);
    weir_buf_append_char(out, '}');
}
