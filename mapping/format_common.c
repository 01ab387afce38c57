/* What the stream event formats write alike (format_common.h). Bytes only; must never decide
 * what an event holds. */
#include "mapping/format_common.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/clock.h"

void weir_format_u64(struct weir_buf *out, uint64_t v)
{
    weir_buf_reserve(out, WEIR_U64_DIGITS);
    out->len = (size_t)(weir_put_u64(out->data + out->len, v) - out->data);
    out->data[out->len] = '\0';
}

void weir_format_cstr(struct weir_buf *out, const char *s)
{
    if (!s)
        s = "";
    weir_buf_append_json_str(out, s, strlen(s));
}

void weir_format_time_str(struct weir_buf *out, int64_t ms)
{
    char when[25];
    weir_clock_iso8601(ms, when);
    weir_buf_append_char(out, '"');
    weir_buf_append_str(out, when);
    weir_buf_append_char(out, '"');
}

int weir_format_shard_id(int32_t partition, char out[32])
{
    return snprintf(out, 32, "shardId-%012" PRId32, partition);
}
