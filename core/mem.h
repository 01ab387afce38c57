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

/* Writes which allocator the executable was linked with into out: "jemalloc 5.3.0" when it was
 * (CMakeLists.txt, WEIR_JEMALLOC: then it serves every library's malloc, not only weir's), else
 * the C library's, "glibc 2.36" (which AddressSanitizer replaces in the sanitizer build). */
void weir_allocator_name(char *out, size_t len);

#endif
