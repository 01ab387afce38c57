/* Growable byte buffer and JSON string writing.
 * Owns its bytes; aborts on out-of-memory like the rest of weir (see core/mem.h). */
#ifndef WEIR_BUF_H
#define WEIR_BUF_H

#include <stddef.h>
#include <stdint.h>

struct weir_buf {
    char *data; /* always NUL-terminated when cap > 0 */
    size_t len;
    size_t cap;
};

void weir_buf_init(struct weir_buf *b);
void weir_buf_deinit(struct weir_buf *b);
void weir_buf_reset(struct weir_buf *b); /* len = 0, keeps the allocation */
void weir_buf_reserve(struct weir_buf *b, size_t extra);
void weir_buf_append(struct weir_buf *b, const void *data, size_t len);
void weir_buf_append_str(struct weir_buf *b, const char *s);
void weir_buf_append_char(struct weir_buf *b, char c);
void weir_buf_printf(struct weir_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void weir_buf_append_i64(struct weir_buf *b, int64_t v);
/* Appends s as a quoted JSON string; invalid UTF-8 bytes become U+FFFD. */
void weir_buf_append_json_str(struct weir_buf *b, const char *s, size_t len);
/* Appends the base64 encoding of data. */
void weir_buf_append_base64(struct weir_buf *b, const void *data, size_t len);
/* The writers below put their text at out, which must have room (the bound each names), and
 * return where it ends; no NUL. For encoders that reserve once and write a whole element. */
/* base64 of data: WEIR_BASE64_LEN(len) characters. */
#define WEIR_BASE64_LEN(len) (4 * (((size_t)(len) + 2) / 3))
char *weir_put_base64(char *out, const void *data, size_t len);
/* v in decimal: at most WEIR_U64_DIGITS characters (WEIR_U64_DIGITS + 1 with the sign of
 * weir_put_i64). */
#define WEIR_U64_DIGITS 20
char *weir_put_u64(char *out, uint64_t v);
char *weir_put_i64(char *out, int64_t v);
/* Writes v as exactly `width` decimal digits at out, zero-padded (its lowest digits when it has
 * more); no NUL. For ids that compare as text the way their numbers do. */
void weir_put_digits(char *out, uint64_t v, int width);
/* Hands the bytes to the caller (free() them); the buffer is left empty. */
char *weir_buf_take(struct weir_buf *b, size_t *len);

#endif
