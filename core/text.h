/* Text at the byte level, as the parsers of several layers need it: hex digits and UTF-8
 * sequences. Pure; must never allocate beyond the buffer it is handed. */
#ifndef WEIR_TEXT_H
#define WEIR_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* The value of a hex digit (either case), or -1. */
int weir_hex_digit(char c);
/* The value of the four hex digits at s (n bytes available), or -1 (JSON's \uXXXX). */
int weir_hex4(const char *s, size_t n);
/* Length (1..4) of the valid UTF-8 sequence at s (avail bytes available), or 0 when it is not
 * UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF. cp, when not NULL, gets the
 * code point. */
size_t weir_utf8_len(const unsigned char *s, size_t avail, uint32_t *cp);
/* Appends code point cp (at most U+10FFFF) as UTF-8. */
void weir_utf8_put(struct weir_buf *b, uint32_t cp);

#endif
