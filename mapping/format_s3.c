/* The S3 event notification format (reference section 4.5): one record per event, the object
 * key form-URL-encoded as S3 writes it, eTag and size for a created object, a sequencer that
 * orders the events of one key. S3 notifications have no FilterCriteria (their own prefix and
 * suffix rules are the source's), so the format has no filter shape. It writes bytes only; it
 * must never touch a file or decide a verdict. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/hash.h"
#include "model/event.h"

/* Who S3 says made the request and owns the bucket. A directory has no IAM identity; these are
 * fixed and IAM-shaped, as docs/events.md says. */
#define S3_PRINCIPAL       "AWS:AIDAWEIRLOCALWRITER0"
#define S3_OWNER_PRINCIPAL "A3WEIRLOCALOWNER"
#define S3_SOURCE_IP       "127.0.0.1"

/* The bucket's name: what follows "arn:aws:s3:::" in its ARN. */
static const char *bucket_name(const struct weir_event_ctx *ctx)
{
    const char *arn = ctx->source_arn ? ctx->source_arn : "";
    const char *colons = strstr(arn, ":::");
    return colons ? colons + 3 : arn;
}

/* application/x-www-form-urlencoded, as S3 writes keys in notifications: unreserved characters
 * and "/" as they are, a space as "+", every other byte as %XX. */
static void append_form_encoded(struct weir_buf *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    weir_buf_append_char(out, '"');
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
            *c == '-' || *c == '_' || *c == '.' || *c == '~' || *c == '/') {
            weir_buf_append_char(out, (char)*c);
        } else if (*c == ' ') {
            weir_buf_append_char(out, '+');
        } else {
            char esc[3] = {'%', hex[*c >> 4], hex[*c & 15]};
            weir_buf_append(out, esc, 3);
        }
    }
    weir_buf_append_char(out, '"');
}

static void s3_open(struct weir_buf *out, const struct weir_event_ctx *ctx,
                    const struct weir_record *first)
{
    weir_buf_append_str(out, "{\"Records\":[");
}

static void s3_append(struct weir_buf *out, const struct weir_event_ctx *ctx,
                      const struct weir_record *r, int first)
{
    char when[25];
    const char *bucket = bucket_name(ctx);
    if (!first)
        weir_buf_append_char(out, ',');
    weir_clock_iso8601(r->sent_ms, when);
    weir_buf_printf(out, "{\"eventVersion\":\"2.1\",\"eventSource\":\"aws:s3\",\"awsRegion\":");
    weir_buf_append_json_str(out, ctx->region, strlen(ctx->region));
    weir_buf_printf(out, ",\"eventTime\":\"%s\",\"eventName\":", when);
    weir_buf_append_json_str(out, r->event_name, strlen(r->event_name));
    /* The request id S3 would give: derived from the key and the sequencer, so an event read
     * again (after a restart) says the same. */
    uint64_t rid = weir_hash_fnv1a64(r->id, strlen(r->id)) ^ r->seq;
    weir_buf_printf(out,
                    ",\"userIdentity\":{\"principalId\":\"" S3_PRINCIPAL
                    "\"},\"requestParameters\":{\"sourceIPAddress\":\"" S3_SOURCE_IP
                    "\"},\"responseElements\":{\"x-amz-request-id\":\"%016llX\","
                    "\"x-amz-id-2\":\"weir/%016llX\"},",
                    (unsigned long long)rid, (unsigned long long)r->seq);
    weir_buf_append_str(out, "\"s3\":{\"s3SchemaVersion\":\"1.0\",\"configurationId\":");
    const char *config_id = ctx->mapping_name ? ctx->mapping_name : "";
    weir_buf_append_json_str(out, config_id, strlen(config_id));
    weir_buf_append_str(out, ",\"bucket\":{\"name\":");
    weir_buf_append_json_str(out, bucket, strlen(bucket));
    weir_buf_append_str(out,
                        ",\"ownerIdentity\":{\"principalId\":\"" S3_OWNER_PRINCIPAL "\"},\"arn\":");
    weir_buf_append_json_str(out, ctx->source_arn, strlen(ctx->source_arn));
    weir_buf_append_str(out, "},\"object\":{\"key\":");
    append_form_encoded(out, r->id);
    /* A delete carries the key and the sequencer only, as S3's do. */
    if (r->etag) {
        weir_buf_printf(out, ",\"size\":%lld,\"eTag\":\"%s\"", (long long)r->object_size, r->etag);
    }
    weir_buf_printf(out, ",\"sequencer\":\"%016llX\"}}}", (unsigned long long)r->seq);
}

static void s3_close(struct weir_buf *out, const struct weir_event_ctx *ctx)
{
    weir_buf_append(out, "]}", 2);
}

static const struct weir_encoder s3_encoder = {
    .name = "s3",
    .open = s3_open,
    .append = s3_append,
    .close = s3_close,
    .close_len = 2,
};

const struct weir_event_format weir_format_s3 = {
    .name = "S3",
    .encoder = &s3_encoder,
};
