/* The SQS event format, whole: the encoder (records -> {"Records":[...]} exactly as Lambda
 * delivers them from SQS, reference section 4.3, with md5OfBody and the message-attribute
 * digest), the record shape filter patterns see, and how producer attributes become SQS
 * messageAttributes. It writes bytes only; it must never talk to a server or decide a verdict.
 * The per-record path runs for every message, so it touches jansson only for attributes. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/hash.h"
#include "core/log.h"
#include "core/mem.h"
#include "model/event.h"

/* SQS fills SenderId with the IAM identity of the producer. A Redis producer has none, so every
 * message carries this fixed, IAM-shaped (AIDA + 16) identity; docs/events.md says so. */
#define SQS_SENDER_ID "AIDAWEIRLOCALSENDER0"

/* Transport type bytes of the SQS attribute digest: String and Number (and their custom
 * subtypes such as "Number.float") hash as 1, Binary as 2. */
#define SQS_TRANSPORT_STRING 1
#define SQS_TRANSPORT_BINARY 2

/* Appends v as a quoted decimal string: every SQS attribute value is a string. snprintf would
 * parse a format for each of the four numbers of every record. */
static void append_num_str(struct weir_buf *out, uint64_t v, int negative)
{
    char tmp[24];
    char *p = tmp + sizeof(tmp);
    *--p = '"';
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (negative)
        *--p = '-';
    *--p = '"';
    weir_buf_append(out, p, (size_t)(tmp + sizeof(tmp) - p));
}

static void append_u64_str(struct weir_buf *out, uint64_t v)
{
    append_num_str(out, v, 0);
}

/* No source produces a negative time, but the string stays valid if one does. */
static void append_i64_str(struct weir_buf *out, int64_t v)
{
    if (v < 0)
        append_num_str(out, (uint64_t)0 - (uint64_t)v, 1);
    else
        append_num_str(out, (uint64_t)v, 0);
}

static void append_cstr(struct weir_buf *out, const char *s)
{
    if (!s)
        s = "";
    weir_buf_append_json_str(out, s, strlen(s));
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Decodes base64 (standard or URL alphabet); padding, whitespace and stray bytes are skipped, so
 * a sloppy producer still gets a digest over the bytes it meant. */
static void b64_decode(struct weir_buf *out, const char *s, size_t len)
{
    uint32_t acc = 0;
    int bits = 0;
    weir_buf_reserve(out, len / 4 * 3 + 3);
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0)
            continue;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            weir_buf_append_char(out, (char)((acc >> bits) & 0xFF));
        }
    }
}

static void md5_len_bytes(struct weir_md5 *md5, const void *data, size_t len)
{
    unsigned char be[4] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16),
                           (unsigned char)(len >> 8), (unsigned char)len};
    weir_md5_update(md5, be, 4);
    weir_md5_update(md5, data, len);
}

static const char *str_member(const json_t *obj, const char *key, size_t *len)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_string(v)) {
        *len = 0;
        return "";
    }
    *len = json_string_length(v);
    return json_string_value(v);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The SQS message-attribute digest: for each attribute in name order, length-prefixed name,
 * length-prefixed dataType, one transport byte, length-prefixed value (binary values decoded).
 * Names compare by byte, which for UTF-8 is code-point order; SQS names are ASCII in practice.
 * A member missing from an attribute hashes as empty, so the digest shows the damage. */
static void attrs_md5_hex(const json_t *attrs, char hex[33])
{
    size_t n = json_object_size(attrs);
    const char **names = weir_malloc(n * sizeof(*names));
    size_t i = 0;
    const char *name;
    const json_t *val;
    json_object_foreach((json_t *)attrs, name, val)
    {
        names[i++] = name;
    }
    qsort(names, n, sizeof(*names), cmp_names);

    struct weir_md5 md5;
    struct weir_buf bin;
    weir_buf_init(&bin);
    weir_md5_init(&md5);
    for (i = 0; i < n; i++) {
        const json_t *a = json_object_get(attrs, names[i]);
        size_t type_len, value_len;
        const char *type = str_member(a, "dataType", &type_len);
        md5_len_bytes(&md5, names[i], strlen(names[i]));
        md5_len_bytes(&md5, type, type_len);
        if (strncmp(type, "Binary", 6) == 0) {
            const char *b64 = str_member(a, "binaryValue", &value_len);
            unsigned char t = SQS_TRANSPORT_BINARY;
            weir_buf_reset(&bin);
            b64_decode(&bin, b64, value_len);
            weir_md5_update(&md5, &t, 1);
            md5_len_bytes(&md5, bin.data, bin.len);
        } else {
            const char *s = str_member(a, "stringValue", &value_len);
            unsigned char t = SQS_TRANSPORT_STRING;
            weir_md5_update(&md5, &t, 1);
            md5_len_bytes(&md5, s, value_len);
        }
    }
    weir_buf_deinit(&bin);
    free(names);

    unsigned char d[16];
    weir_md5_final(&md5, d);
    weir_md5_digest_hex(d, hex);
}

/* Writes messageAttributes (and md5OfMessageAttributes when there are any). attrs_json is
 * copied verbatim once jansson has accepted it as an object: a record that reached the encoder
 * with broken attributes must not break the event of the whole batch. */
static void append_msg_attrs(struct weir_buf *out, const struct weir_record *r, char md5_hex[33])
{
    md5_hex[0] = '\0';
    if (!r->attrs_json) {
        weir_buf_append(out, "{}", 2);
        return;
    }
    json_error_t jerr;
    json_t *attrs = json_loads(r->attrs_json, 0, &jerr);
    if (!json_is_object(attrs)) {
        weir_log_limited(WEIR_LOG_WARN, "format.sqs",
                         "message attributes dropped: not a JSON object message_id=%s error=\"%s\"",
                         r->id, attrs ? "not an object" : jerr.text);
        weir_buf_append(out, "{}", 2);
        json_decref(attrs);
        return;
    }
    weir_buf_append_str(out, r->attrs_json);
    if (json_object_size(attrs))
        attrs_md5_hex(attrs, md5_hex);
    json_decref(attrs);
}

static void sqs_open(struct weir_buf *out, const struct weir_event_ctx *ctx,
                     const struct weir_record *first)
{
    weir_buf_append(out, "{\"Records\":[", 12);
}

static void sqs_append(struct weir_buf *out, const struct weir_event_ctx *ctx,
                       const struct weir_record *r, int first)
{
    char body_md5[33];
    char attrs_md5[33];

    if (!first)
        weir_buf_append_char(out, ',');
    weir_buf_reserve(out, r->data_len + 512);
    weir_buf_append_str(out, "{\"messageId\":");
    append_cstr(out, r->id);
    weir_buf_append_str(out, ",\"receiptHandle\":");
    append_cstr(out, r->handle);
    weir_buf_append_str(out, ",\"body\":");
    weir_buf_append_json_str(out, r->data, r->data_len);

    weir_buf_append_str(out, ",\"attributes\":{\"ApproximateReceiveCount\":");
    append_u64_str(out, r->receive_count);
    weir_buf_append_str(out, ",\"SentTimestamp\":");
    append_i64_str(out, r->sent_ms);
    weir_buf_append_str(out, ",\"SenderId\":\"" SQS_SENDER_ID
                             "\",\"ApproximateFirstReceiveTimestamp\":");
    append_i64_str(out, r->first_receive_ms);
    if (r->group_id) {
        weir_buf_append_str(out, ",\"MessageGroupId\":");
        append_cstr(out, r->group_id);
    }
    if (r->dedup_id) {
        weir_buf_append_str(out, ",\"MessageDeduplicationId\":");
        append_cstr(out, r->dedup_id);
    }
    if (r->fifo_seq) {
        /* Only a FIFO queue numbers its messages. */
        weir_buf_append_str(out, ",\"SequenceNumber\":");
        append_u64_str(out, r->fifo_seq);
    }

    weir_buf_append_str(out, "},\"messageAttributes\":");
    append_msg_attrs(out, r, attrs_md5);

    weir_md5_hex(r->data, r->data_len, body_md5);
    weir_buf_append_str(out, ",\"md5OfBody\":\"");
    weir_buf_append(out, body_md5, 32);
    if (attrs_md5[0]) {
        weir_buf_append_str(out, "\",\"md5OfMessageAttributes\":\"");
        weir_buf_append(out, attrs_md5, 32);
    }
    weir_buf_append_str(out, "\",\"eventSource\":\"aws:sqs\",\"eventSourceARN\":");
    append_cstr(out, ctx->source_arn);
    weir_buf_append_str(out, ",\"awsRegion\":");
    append_cstr(out, ctx->region);
    weir_buf_append_char(out, '}');
}

static void sqs_close(struct weir_buf *out, const struct weir_event_ctx *ctx)
{
    weir_buf_append(out, "]}", 2);
}

static const struct weir_encoder sqs_encoder = {
    .name = "sqs",
    .open = sqs_open,
    .append = sqs_append,
    .close = sqs_close,
    .close_len = 2,
};

/* ---- what filter patterns see ---- */

static const struct weir_filter_key sqs_keys[] = {
    {"messageId", WEIR_FILTER_KEY_STRING},
    {"receiptHandle", WEIR_FILTER_KEY_STRING},
    {"body", WEIR_FILTER_KEY_DATA},
    {"attributes", WEIR_FILTER_KEY_OBJECT},
    {"messageAttributes", WEIR_FILTER_KEY_OBJECT},
    {"md5OfBody", WEIR_FILTER_KEY_STRING},
    {"md5OfMessageAttributes", WEIR_FILTER_KEY_STRING},
    {"eventSource", WEIR_FILTER_KEY_STRING},
    {"eventSourceARN", WEIR_FILTER_KEY_STRING},
    {"awsRegion", WEIR_FILTER_KEY_STRING},
};

static const struct weir_filter_shape sqs_shape = {
    .name = "SQS",
    .keys = sqs_keys,
    .n_keys = sizeof(sqs_keys) / sizeof(*sqs_keys),
    .plain_data = true,
};

/* ---- producer attributes -> messageAttributes ---- */

static void append_attr(struct weir_buf *out, const char *name, const char *value, size_t len,
                        const char *type, bool binary, bool first)
{
    if (!first)
        weir_buf_append_char(out, ',');
    weir_buf_append_json_str(out, name, strlen(name));
    weir_buf_append_str(out, binary ? ":{\"binaryValue\":" : ":{\"stringValue\":");
    weir_buf_append_json_str(out, value, len);
    weir_buf_append_str(out, ",\"stringListValues\":[],\"binaryListValues\":[],\"dataType\":");
    weir_buf_append_json_str(out, type, strlen(type));
    weir_buf_append_char(out, '}');
}

/* A string is a String attribute; an object names its dataType (String, Number or Binary, with
 * custom subtypes such as Number.float) and carries stringValue or binaryValue. */
static weir_status sqs_render_attrs(const struct json_t *in, char **out, struct weir_err *err)
{
    json_t *attrs = (json_t *)in;
    if (!json_is_object(attrs))
        return weir_err_set(err, "\"attributes\" is not an object");
    struct weir_buf b;
    weir_buf_init(&b);
    weir_buf_append_char(&b, '{');
    const char *name;
    json_t *v;
    bool first = true;
    json_object_foreach(attrs, name, v)
    {
        if (json_is_string(v)) {
            append_attr(&b, name, json_string_value(v), json_string_length(v), "String", false,
                        first);
            first = false;
            continue;
        }
        json_t *dt = json_object_get(v, "dataType");
        if (!json_is_object(v) || !json_is_string(dt)) {
            weir_err_set(err, "attribute \"%s\" is neither a string nor an object with a dataType",
                         name);
            goto fail;
        }
        const char *type = json_string_value(dt);
        bool binary = strncmp(type, "Binary", 6) == 0;
        if (!binary && strncmp(type, "String", 6) != 0 && strncmp(type, "Number", 6) != 0) {
            weir_err_set(err, "attribute \"%s\" has dataType \"%s\" (String, Number or Binary)",
                         name, type);
            goto fail;
        }
        json_t *val = json_object_get(v, binary ? "binaryValue" : "stringValue");
        if (!json_is_string(val)) {
            weir_err_set(err, "attribute \"%s\" of type %s needs a string \"%s\"", name, type,
                         binary ? "binaryValue" : "stringValue");
            goto fail;
        }
        append_attr(&b, name, json_string_value(val), json_string_length(val), type, binary, first);
        first = false;
    }
    weir_buf_append_char(&b, '}');
    *out = first ? NULL : weir_buf_take(&b, NULL);
    weir_buf_deinit(&b);
    return WEIR_OK;
fail:
    weir_buf_deinit(&b);
    return WEIR_ERR;
}

const struct weir_event_format weir_format_sqs = {
    .name = "SQS",
    .encoder = &sqs_encoder,
    .filter_shape = &sqs_shape,
    .render_attrs = sqs_render_attrs,
};
