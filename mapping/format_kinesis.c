/* The Kinesis event format of a Kafka partition (reference section 4.1): the encoder (records ->
 * {"Records":[{"kinesis":{...},...}]}, the partition as the shard, the offset's sequence number),
 * the record shape filter patterns see (`data` only) and the KinesisBatchInfo of a failure
 * record (section 1.6). It writes bytes only; it must never talk to a broker or decide a
 * verdict. */
#include <assert.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "mapping/format_common.h"
#include "model/event.h"

/* Lambda names the function's execution role here. weir runs functions under no IAM role, so
 * every record carries this fixed, IAM-shaped ARN (account 000000000000, as in the stream ARN);
 * docs/events.md says so. */
#define KINESIS_INVOKE_IDENTITY_ARN "arn:aws:iam::000000000000:role/weir"

/* Epoch seconds with a millisecond fraction, a JSON number: 1741083062.118. Kafka writes -1 for
 * a record without a timestamp; that stays a valid number (-0.001). */
static void append_seconds(struct weir_buf *out, int64_t ms)
{
    uint64_t abs = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    char frac[4] = {'.', (char)('0' + abs % 1000 / 100), (char)('0' + abs % 100 / 10),
                    (char)('0' + abs % 10)};
    if (ms < 0)
        weir_buf_append_char(out, '-');
    weir_format_u64(out, abs / 1000);
    weir_buf_append(out, frac, 4);
}

/* eventID: "<shardId>:<sequenceNumber>", one JSON string. The shard id needs no escaping; the
 * sequence number's string is written after it without its opening '"'. */
static void append_event_id(struct weir_buf *out, const struct weir_record *r)
{
    char shard[32];
    const char *seq = r->id ? r->id : "";
    int n = weir_format_shard_id(r->partition, shard);
    weir_buf_append_char(out, '"');
    weir_buf_append(out, shard, (size_t)n);
    weir_buf_append_char(out, ':');
    size_t at = out->len;
    weir_buf_append_json_str(out, seq, strlen(seq));
    memmove(out->data + at, out->data + at + 1, out->len - at); /* with the NUL */
    out->len--;
}

static void kinesis_open(struct weir_buf *out, const struct weir_event_ctx *ctx,
                         const struct weir_record *first)
{
    weir_buf_append(out, "{\"Records\":[", 12);
}

static void kinesis_append(struct weir_buf *out, const struct weir_event_ctx *ctx,
                           const struct weir_record *r, int first)
{
    if (!first)
        weir_buf_append_char(out, ',');
    weir_buf_reserve(out, r->data_len / 3 * 4 + r->key_len * 3 + 512);
    weir_buf_append_str(out, "{\"kinesis\":{\"kinesisSchemaVersion\":\"1.0\",\"partitionKey\":");
    /* A Kafka key is bytes, a Kinesis partition key text: the key's bytes as a JSON string
     * (invalid UTF-8 as U+FFFD), "" for a record without a key. */
    weir_buf_append_json_str(out, r->key ? r->key : "", r->key ? r->key_len : 0);
    weir_buf_append_str(out, ",\"sequenceNumber\":");
    weir_format_cstr(out, r->id);
    weir_buf_append_str(out, ",\"data\":\"");
    weir_buf_append_base64(out, r->data, r->data_len);
    weir_buf_append_str(out, "\",\"approximateArrivalTimestamp\":");
    append_seconds(out, r->sent_ms);
    weir_buf_append_str(out, "},\"eventSource\":\"aws:kinesis\",\"eventVersion\":\"1.0\","
                             "\"eventID\":");
    append_event_id(out, r);
    weir_buf_append_str(out,
                        ",\"eventName\":\"aws:kinesis:record\","
                        "\"invokeIdentityArn\":\"" KINESIS_INVOKE_IDENTITY_ARN "\",\"awsRegion\":");
    weir_format_cstr(out, ctx->region);
    weir_buf_append_str(out, ",\"eventSourceARN\":");
    weir_format_cstr(out, ctx->source_arn);
    weir_buf_append_char(out, '}');
}

static void kinesis_close(struct weir_buf *out, const struct weir_event_ctx *ctx)
{
    weir_buf_append(out, "]}", 2);
}

static const struct weir_encoder kinesis_encoder = {
    .name = "kinesis",
    .open = kinesis_open,
    .append = kinesis_append,
    .close = kinesis_close,
    .close_len = 2,
};

/* ---- what filter patterns see ---- */

/* Lambda filters Kinesis records on `data` alone, decoded from base64 and read as JSON; the
 * filter reads r->data, the bytes before base64. */
static const struct weir_filter_key kinesis_keys[] = {
    {"data", WEIR_FILTER_KEY_DATA},
};

static const struct weir_filter_shape kinesis_shape = {
    .name = "Kinesis",
    .keys = kinesis_keys,
    .n_keys = sizeof(kinesis_keys) / sizeof(*kinesis_keys),
    .plain_data = false,
};

/* ---- the failure record's KinesisBatchInfo ---- */

static void kinesis_batch_info(struct weir_buf *out, const struct weir_event_ctx *ctx,
                               struct weir_record *const *records, size_t n)
{
    assert(n > 0);
    const struct weir_record *first = records[0], *last = records[n - 1];
    char shard[32];
    weir_format_shard_id(first->partition, shard);
    weir_buf_append_str(out, "\"KinesisBatchInfo\":{\"shardId\":\"");
    weir_buf_append_str(out, shard);
    weir_buf_append_str(out, "\",\"startSequenceNumber\":");
    weir_format_cstr(out, first->id);
    weir_buf_append_str(out, ",\"endSequenceNumber\":");
    weir_format_cstr(out, last->id);
    weir_buf_append_str(out, ",\"approximateArrivalOfFirstRecord\":");
    weir_format_time_str(out, first->sent_ms);
    weir_buf_append_str(out, ",\"approximateArrivalOfLastRecord\":");
    weir_format_time_str(out, last->sent_ms);
    weir_buf_append_str(out, ",\"batchSize\":");
    weir_format_u64(out, n);
    weir_buf_append_str(out, ",\"streamArn\":");
    weir_format_cstr(out, ctx->source_arn);
    weir_buf_append_char(out, '}');
}

/* A function names a failed record by its sequenceNumber, a string equal to r->id: the default
 * lookup, so no find_item. */
const struct weir_event_format weir_format_kinesis = {
    .name = "Kinesis",
    .encoder = &kinesis_encoder,
    .filter_shape = &kinesis_shape,
    .batch_info = kinesis_batch_info,
};
