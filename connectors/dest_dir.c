/* Directory destination (file:///srv/failures): one JSON file per message, written atomically —
 * into a hidden temporary file, synced, renamed to <time>-<id>.json, and the directory synced —
 * so a reader never sees half a file and a written file survives a power cut. The writes run on a
 * worker thread, so the loop never waits for the disk. Must never retry on its own. */
#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "connectors/destination.h"
#include "core/clock.h"
#include "core/mem.h"
#include "core/worker.h"

struct dir_dest;

struct write_job {
    struct weir_worker_job w;
    struct dir_dest *d; /* outlives its jobs: free finishes them first; its dir never changes */
    char name[160];
    struct weir_buf data;
    weir_dest_done_fn done;
    void *arg;
    bool ok;
    char error[256];
};

struct dir_dest {
    struct weir_destination base;
    char *dir;
    struct weir_worker *worker;
    bool freeing; /* done is not called for jobs finished by free */
};

/* The path of a file:// URI: file:///srv/x → /srv/x (file://localhost/srv/x too). NULL when it
 * is not an absolute local path. */
static const char *uri_path(const char *uri)
{
    const char *p = uri + strlen("file://");
    if (!strncmp(p, "localhost/", 10))
        p += strlen("localhost");
    return *p == '/' ? p : NULL;
}

static weir_status dir_check(const char *uri, struct weir_err *err)
{
    const char *path = uri_path(uri);
    if (!path || !path[1])
        return weir_err_set(err, "a directory destination is file:///absolute/path (three "
                                 "slashes), not the root");
    if (strpbrk(path, "?#"))
        return weir_err_set(err, "a directory destination takes no query or fragment");
    if (strlen(path) > PATH_MAX - 200)
        return weir_err_set(err, "the directory's path is too long");
    return WEIR_OK;
}

static void write_one(int dirfd, struct write_job *j)
{
    char tmp[200];
    snprintf(tmp, sizeof(tmp), ".%s.tmp", j->name);
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(j->error, sizeof(j->error), "%s/%s: cannot create: %s", j->d->dir, tmp,
                 strerror(errno));
        return;
    }
    const char *at = j->data.data;
    size_t left = j->data.len;
    while (left) {
        ssize_t n = write(fd, at, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(j->error, sizeof(j->error), "%s/%s: cannot write: %s", j->d->dir, tmp,
                     strerror(errno));
            close(fd);
            unlinkat(dirfd, tmp, 0);
            return;
        }
        at += n;
        left -= (size_t)n;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        snprintf(j->error, sizeof(j->error), "%s/%s: cannot sync: %s", j->d->dir, tmp,
                 strerror(errno));
        unlinkat(dirfd, tmp, 0);
        return;
    }
    if (renameat(dirfd, tmp, dirfd, j->name) != 0) {
        snprintf(j->error, sizeof(j->error), "%s/%s: cannot rename into place: %s", j->d->dir,
                 j->name, strerror(errno));
        unlinkat(dirfd, tmp, 0);
        return;
    }
    j->ok = true;
}

/* On the thread: the group's files, then one sync of the directory for all their names. */
static void run_writes(void *ctx, struct weir_worker_job **jobs, size_t n)
{
    struct dir_dest *d = ctx;
    int dirfd = -1;
    if (mkdir(d->dir, 0755) != 0 && errno != EEXIST) {
        for (size_t i = 0; i < n; i++) {
            struct write_job *j = (struct write_job *)jobs[i];
            snprintf(j->error, sizeof(j->error), "%s: cannot create the directory: %s", d->dir,
                     strerror(errno));
        }
        return;
    }
    dirfd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        for (size_t i = 0; i < n; i++) {
            struct write_job *j = (struct write_job *)jobs[i];
            snprintf(j->error, sizeof(j->error), "%s: cannot open the directory: %s", d->dir,
                     strerror(errno));
        }
        return;
    }
    for (size_t i = 0; i < n; i++)
        write_one(dirfd, (struct write_job *)jobs[i]);
    if (fsync(dirfd) != 0) {
        for (size_t i = 0; i < n; i++) {
            struct write_job *j = (struct write_job *)jobs[i];
            if (j->ok) {
                j->ok = false;
                snprintf(j->error, sizeof(j->error), "%s: cannot sync the directory: %s", d->dir,
                         strerror(errno));
            }
        }
    }
    close(dirfd);
}

static void write_done(struct weir_worker_job *w)
{
    struct write_job *j = (struct write_job *)w;
    if (!j->d->freeing) {
        if (!w->ran)
            snprintf(j->error, sizeof(j->error), "%s: the destination closed first", j->d->dir);
        j->done(j->arg, w->ran && j->ok ? WEIR_OK : WEIR_ERR, j->error);
    }
    weir_buf_deinit(&j->data);
    free(j);
}

/* "<UTC time>-<id>-<n>.json", the id reduced to characters safe in any file name; n counts
 * every file this process names, so two destinations writing one message (a failure record and
 * a dead letter) to one directory in the same millisecond never take one name. */
static void file_name(const char *id, char *out, size_t len)
{
    static unsigned long named; /* the loop's only */
    char when[25];
    weir_clock_iso8601(weir_clock_wall_ms(), when);
    for (char *c = when; *c; c++)
        if (*c == ':')
            *c = '.'; /* 2025-03-04T10.11.02.118Z, as AWS names destination objects */
    char safe[100];
    size_t n = 0;
    for (const char *c = id; *c && n < sizeof(safe) - 1; c++)
        safe[n++] = isalnum((unsigned char)*c) || *c == '-' || *c == '_' || *c == '.' ? *c : '_';
    safe[n] = '\0';
    snprintf(out, len, "%s-%s-%lu.json", when, n ? safe : "message", ++named);
}

static void dir_put(struct weir_destination *base, const struct weir_message *msg,
                    weir_dest_done_fn done, void *arg)
{
    struct dir_dest *d = (struct dir_dest *)base;
    struct write_job *j = weir_calloc(1, sizeof(*j));
    j->w.done = write_done;
    j->d = d;
    j->done = done;
    j->arg = arg;
    file_name(msg->id ? msg->id : "", j->name, sizeof(j->name));
    weir_buf_init(&j->data);
    weir_message_render(msg, &j->data);
    weir_buf_append_char(&j->data, '\n');
    weir_worker_submit(d->worker, &j->w);
}

static struct weir_destination *dir_new(const char *uri, struct event_base *base,
                                        struct weir_err *err)
{
    if (dir_check(uri, err) != WEIR_OK)
        return NULL;
    struct dir_dest *d = weir_calloc(1, sizeof(*d));
    d->base.ops = &weir_dest_dir;
    d->dir = weir_strdup(uri_path(uri));
    size_t len = strlen(d->dir);
    while (len > 1 && d->dir[len - 1] == '/')
        d->dir[--len] = '\0';
    d->worker = weir_worker_new(base, "dest.dir", run_writes, d, err);
    if (!d->worker) {
        free(d->dir);
        free(d);
        return NULL;
    }
    return &d->base;
}

static void dir_free(struct weir_destination *base)
{
    struct dir_dest *d = (struct dir_dest *)base;
    if (!d)
        return;
    /* Writes already handed over finish (their files are whole); nobody hears of them. */
    d->freeing = true;
    weir_worker_free(d->worker);
    free(d->dir);
    free(d);
}

const struct weir_destination_ops weir_dest_dir = {
    .scheme = "file",
    .example = "file:///var/lib/weir/failures",
    .check = dir_check,
    .new = dir_new,
    .put = dir_put,
    .free = dir_free,
};
