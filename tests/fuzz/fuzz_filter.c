/* libFuzzer target for the filter: every input is a pattern text, compiled for plain EventBridge
 * events or for SQS records (the first byte chooses), then, when accepted, matched against a few
 * fixed events and records. The same bytes are also read as an event, and the event reader must
 * agree with jansson on whether they are JSON. It checks what the unit tests cannot enumerate: no
 * crash, no leak, no undefined behaviour, every refusal pointing inside the text.
 * Run by tests/fuzz/run.sh. */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "mapping/filter.h"

static const char *const events[] = {
    ("{\"source\":\"aws.ec2\",\"detail\":{\"state\":\"running\",\"c-count\":5,\"x\":301.8,"
     "\"ip\":\"10.0.0.33\",\"tags\":[\"a\",\"b\",{\"k\":null}],\"e\":[]}}"),
    "{\"a\":[[1,2],[\"x\",{\"b\":true}]],\"n\":123456789012345678901234567890,\"s\":\"\\u00e9\"}",
    "[{\"body\":\"x\"},{\"a\":-0.0}]",
};

static const char *const bodies[] = {
    "{\"status\":\"PAID\",\"price\":12.5,\"items\":[{\"sku\":\"a\"}]}",
    "plain text body",
    "{\"broken\":",
};

static const struct weir_event_ctx ctx = {
    .source_arn = "arn:aws:sqs:us-east-1:000000000000:fuzz",
    .region = "us-east-1",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool jansson_says_json(const char *s, size_t len)
{
    json_error_t e;
    json_t *j = json_loadb(s, len, JSON_ALLOW_NUL, &e);
    if (!j && json_error_code(&e) == json_error_numeric_overflow)
        j = json_loadb(s, len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &e);
    json_decref(j);
    return j != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const struct weir_filter_shape *shape = data[0] & 1 ? weir_format_sqs.filter_shape : NULL;
    const char *text = (const char *)data + 1;
    size_t len = size - 1, bad = 0;
    struct weir_filter_doc *doc = weir_filter_doc_new(text, len);
    /* jansson takes some raw NUL bytes after a number ("[1\0]"); RFC 8259 does not, nor does
     * the reader, so texts holding one are left out of the comparison. */
    if (!memchr(text, '\0', len) && (doc != NULL) != jansson_says_json(text, len))
        abort(); /* the event reader and jansson disagree on what is JSON */
    weir_filter_doc_free(doc);
    struct weir_filter_error err;
    memset(&err, 0, sizeof(err));
    struct weir_filter *f = weir_filter_new(&text, &len, 1, shape, &bad, &err);
    if (!f) {
        if (err.offset > len || !err.msg[0] || memchr(err.msg, '\0', sizeof(err.msg)) == NULL)
            abort();
        return 0;
    }
    if (!weir_filter_check(text, len, shape, &err))
        abort(); /* the two entry points must agree */
    for (size_t i = 0; i < sizeof(events) / sizeof(*events); i++)
        weir_filter_match_text(f, events[i], strlen(events[i]));
    weir_filter_match_text(f, text, len);
    for (size_t i = 0; i < sizeof(bodies) / sizeof(*bodies); i++) {
        struct weir_record *r = weir_record_new();
        r->id = weir_strdup("m-1");
        r->handle = weir_strdup("h-1");
        r->data = weir_strdup(bodies[i]);
        r->data_len = strlen(bodies[i]);
        r->attrs_json = weir_strdup("{\"t\":{\"stringValue\":\"v\",\"dataType\":\"String\"}}");
        weir_filter_match(f, r, weir_format_sqs.encoder, &ctx);
        weir_record_free(r);
    }
    weir_filter_free(f);
    return 0;
}
