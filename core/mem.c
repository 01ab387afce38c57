/* Allocation that never returns NULL. Owns nothing; must never be used for sizes a user controls
 * without a bound checked first. */
#include "core/mem.h"

#include <gnu/libc-version.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void out_of_memory(size_t n)
{
    fprintf(stderr, "ERROR weir: out of memory allocating %zu bytes\n", n);
    abort();
}

void *weir_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        out_of_memory(n);
    return p;
}

void *weir_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        out_of_memory(n * size);
    return p;
}

void *weir_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        out_of_memory(n);
    return q;
}

char *weir_strdup(const char *s)
{
    return s ? weir_strndup(s, strlen(s)) : NULL;
}

char *weir_strndup(const char *s, size_t n)
{
    char *d = weir_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* jemalloc's control interface: weak, so a program without jemalloc links, and finds it NULL. */
extern int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)
    __attribute__((weak));

void weir_allocator_name(char *out, size_t len)
{
    const char *version = NULL;
    size_t size = sizeof version;
    if (mallctl && mallctl("version", &version, &size, NULL, 0) == 0 && version)
        snprintf(out, len, "jemalloc %.*s", (int)strcspn(version, "-"), version);
    else
        snprintf(out, len, "glibc %s", gnu_get_libc_version());
}
