/* Event filtering (Lambda's FilterCriteria): patterns in the EventBridge pattern language,
 * compiled once per mapping into a tree that decides per record whether it is delivered.
 * Pure: no I/O, no clock, no logging. The grammar and every choice made where AWS is vague are
 * in docs/filtering.md. */
#ifndef WEIR_FILTER_H
#define WEIR_FILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "model/event.h"
#include "model/record.h"

/* AWS allows 5 filters per mapping by default and up to 10 with a raised quota; weir takes 10. */
#define WEIR_FILTER_MAX_PATTERNS     10
#define WEIR_FILTER_AWS_DEFAULT_MAX  5
#define WEIR_FILTER_MAX_PATTERN_CHAR 4096 /* characters (code points) per pattern, as AWS */

/* Why a pattern was refused, and where inside it. */
struct weir_filter_error {
    size_t offset;  /* byte offset in the pattern text of the value at fault */
    char path[160]; /* key path down to it: "body.price", "$or[1].status"; "" at the top */
    char msg[320];  /* what is wrong and what would be right */
};

struct weir_filter;

/* Compiles one pattern only to check it. shape NULL: any top-level key (a plain EventBridge
 * event). Returns true when the pattern is valid; otherwise fills err. */
bool weir_filter_check(const char *pattern, size_t len, const struct weir_filter_shape *shape,
                       struct weir_filter_error *err);

/* Compiles n patterns (1..WEIR_FILTER_MAX_PATTERNS; lens[i] is the byte length of patterns[i])
 * for records of shape (NULL: plain EventBridge events). A record passes when any pattern
 * matches. On error returns NULL, sets *bad to the index of the refused pattern and fills err.
 * shape is borrowed for the filter's life; the pattern texts are not kept. */
struct weir_filter *weir_filter_new(const char *const *patterns, const size_t *lens, size_t n,
                                    const struct weir_filter_shape *shape, size_t *bad,
                                    struct weir_filter_error *err);
/* NULL is a no-op. */
void weir_filter_free(struct weir_filter *f);

/* True when r matches one of the patterns. enc and ctx build the record element when a pattern
 * names a metadata key (only then is it built). The payload is read as JSON at most once, and
 * only when a pattern looks at it. f keeps scratch space (hence not const): once warm, matching
 * allocates nothing. */
bool weir_filter_match(struct weir_filter *f, const struct weir_record *r,
                       const struct weir_encoder *enc, const struct weir_event_ctx *ctx);

/* A JSON text read for matching (the payload's reading, done apart). For benchmarks: it times
 * matching apart from reading. The text is borrowed and must outlive the doc. */
struct weir_filter_doc;
/* NULL when the text is not JSON (an object or an array). */
struct weir_filter_doc *weir_filter_doc_new(const char *text, size_t len);
/* NULL is a no-op. */
void weir_filter_doc_free(struct weir_filter_doc *d);
/* weir_filter_match with r's payload already read: body, or NULL for a payload that is not JSON. */
bool weir_filter_match_doc(struct weir_filter *f, const struct weir_record *r,
                           const struct weir_filter_doc *body, const struct weir_encoder *enc,
                           const struct weir_event_ctx *ctx);

/* True when the JSON document (text, len bytes) matches one of the patterns of a filter made
 * with shape NULL. A text that is not JSON matches nothing. For tests and benchmarks. */
bool weir_filter_match_text(struct weir_filter *f, const char *text, size_t len);

/* Whether any pattern looks inside the payload / names a metadata key. */
bool weir_filter_reads_data(const struct weir_filter *f);
bool weir_filter_reads_metadata(const struct weir_filter *f);

#endif
