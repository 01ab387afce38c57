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

/* Writes which allocator serves this process's malloc (every library's, not only weir's) into
 * out: "jemalloc 5.3.0" when the executable is linked with it (CMakeLists.txt, WEIR_JEMALLOC),
 * else the C library's, "glibc 2.36". */
void weir_allocator_name(char *out, size_t len);

#endif
