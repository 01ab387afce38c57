/* The error out-buffer: a message a user can act on. Must never allocate or log. */
#include "core/status.h"

#include <stdarg.h>
#include <stdio.h>

weir_status weir_err_set(struct weir_err *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return WEIR_ERR;
}
