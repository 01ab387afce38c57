/* Allocation that never returns NULL: weir cannot do anything useful after an out-of-memory,
 * and checking every small allocation would hide the real error paths. */
#ifndef WEIR_MEM_H
#define WEIR_MEM_H

#include <stddef.h>

void *weir_malloc(size_t n);
void *weir_calloc(size_t n, size_t size);
void *weir_realloc(void *p, size_t n);
char *weir_strdup(const char *s);
char *weir_strndup(const char *s, size_t n);

#endif
