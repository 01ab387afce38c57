/* Status codes and the error out-buffer shared by every layer.
 * Owns nothing at run time; must never grow policy. */
#ifndef WEIR_STATUS_H
#define WEIR_STATUS_H

typedef enum {
    WEIR_OK = 0,
    WEIR_ERR = -1,  /* failed; a struct weir_err says why when one was given */
    WEIR_AGAIN = -2 /* not ready: call again when the fd/timer fires */
} weir_status;

#define WEIR_ERR_MAX 512

/* A message a user can act on. Library error strings are kept inside it, never replaced. */
struct weir_err {
    char msg[WEIR_ERR_MAX];
};

/* Fills err (if not NULL) with a printf-style message; returns WEIR_ERR for `return` chaining. */
weir_status weir_err_set(struct weir_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
