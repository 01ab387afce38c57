/* What the stream event formats (format_kafka.c, format_kinesis.c, format_dynamodb.c) write
 * alike: numbers, strings, times and shard ids as their events spell them. Bytes only; must
 * never decide what an event holds. */
#ifndef WEIR_FORMAT_COMMON_H
#define WEIR_FORMAT_COMMON_H

#include <stdint.h>

#include "core/buf.h"

/* v in decimal, unquoted. */
void weir_format_u64(struct weir_buf *out, uint64_t v);
/* s as a JSON string; NULL is "". */
void weir_format_cstr(struct weir_buf *out, const char *s);
/* The wall time ms as a quoted ISO-8601 UTC string with milliseconds. */
void weir_format_time_str(struct weir_buf *out, int64_t ms);
/* A Kinesis-style shard id, unquoted: the partition as 12 digits ("shardId-000000000003");
 * returns its length. */
int weir_format_shard_id(int32_t partition, char out[32]);

#endif
