/* The bucket source: a directory tree as an S3 bucket (file:///srv/photos), announced as S3 does
 * through notifications. inotify watches every directory of the tree (new ones as they appear,
 * then scanned, so files made in them before the watch are found); a file closed after writing
 * or moved in is ObjectCreated:Put, one deleted or moved out ObjectRemoved:Delete. A catalog in
 * the state store (store/catalog.h) holds what was announced, so a scan at start-up and after an
 * inotify overflow finds what changed meanwhile, once. Files are read and hashed (eTag) on a
 * worker thread, never on the loop. It must never know functions, retries or the async queue:
 * its records leave through the sink, and a record is in the catalog once its verdict is done.
 *
 * Symlinks are not objects and are never followed, so nothing outside the bucket is read. */
#define _GNU_SOURCE /* O_DIRECTORY, O_NOFOLLOW with openat */
#include "pollers/bucket.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/hash.h"
#include "core/list.h"
#include "core/log.h"
#include "core/md5x8.h"
#include "core/mem.h"
#include "core/strmap.h"
#include "core/u32map.h"
#include "core/worker.h"
#include "pollers/poller.h"
#include "store/catalog.h"

#define WATCH_MASK                                                                                 \
    (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE | IN_DELETE_SELF |       \
     IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK)
/* Files being read and hashed at once: enough to keep the thread busy, few enough that a burst
 * of thousands waits as names, not as work. */
#define HASHING_MAX 64
/* A file a scan finds (not a close after writing) is announced once it has been left alone this
 * long: it may still be being written. */
#define SETTLE_MS 1000
/* A record the async queue could not take is tried again after this. */
#define RETRY_MS 1000
/* Threads reading and hashing files. */
#define HASH_THREADS 2

/* ---- names -------------------------------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

bool weir_bucket_is_temporary(const char *name)
{
    return name[0] == '.' || ends_with(name, ".tmp") || ends_with(name, ".part") ||
           ends_with(name, ".crdownload") || ends_with(name, "~");
}

bool weir_bucket_key_ok(const char *key, const char **why)
{
    size_t len = strlen(key);
    if (len == 0 || len > WEIR_S3_KEY_MAX) {
        *why = "an S3 key is 1..1024 bytes";
        return false;
    }
    const unsigned char *s = (const unsigned char *)key;
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        if (c < 0x20 || c == 0x7f) {
            *why = "an S3 key holds no control characters";
            return false;
        }
        size_t n = c < 0x80             ? 1
                   : (c & 0xE0) == 0xC0 ? 2
                   : (c & 0xF0) == 0xE0 ? 3
                   : (c & 0xF8) == 0xF0 ? 4
                                        : 0;
        if (!n || i + n > len || (n == 2 && c < 0xC2)) {
            *why = "the name is not UTF-8, and S3 keys are";
            return false;
        }
        for (size_t k = 1; k < n; k++)
            if ((s[i + k] & 0xC0) != 0x80) {
                *why = "the name is not UTF-8, and S3 keys are";
                return false;
            }
        /* Overlong forms, surrogates and code points past U+10FFFF are not UTF-8 either. */
        if ((n == 3 && c == 0xE0 && s[i + 1] < 0xA0) || (n == 3 && c == 0xED && s[i + 1] >= 0xA0) ||
            (n == 4 && c == 0xF0 && s[i + 1] < 0x90) ||
            (n == 4 && (c > 0xF4 || (c == 0xF4 && s[i + 1] >= 0x90)))) {
            *why = "the name is not UTF-8, and S3 keys are";
            return false;
        }
        i += n;
    }
    return true;
}

/* "ObjectCreated:Put" against "s3:ObjectCreated:*" or "s3:ObjectCreated:Put". */
static bool type_matches(const char *type, const char *name)
{
    if (strncmp(type, "s3:", 3) != 0)
        return false;
    type += 3;
    size_t n = strlen(type);
    if (n >= 2 && !strcmp(type + n - 2, ":*"))
        return !strncmp(type, name, n - 1);
    return !strcmp(type, name);
}

bool weir_bucket_event_wanted(char *const *types, size_t n, const char *name)
{
    if (!n)
        return !strcmp(name, WEIR_S3_CREATED);
    for (size_t i = 0; i < n; i++)
        if (type_matches(types[i], name))
            return true;
    return false;
}

bool weir_bucket_event_type_known(const char *type)
{
    static const char *const known[] = {
        "s3:ObjectCreated:*",
        "s3:ObjectCreated:Put",
        "s3:ObjectCreated:Post",
        "s3:ObjectCreated:Copy",
        "s3:ObjectCreated:CompleteMultipartUpload",
        "s3:ObjectRemoved:*",
        "s3:ObjectRemoved:Delete",
        "s3:ObjectRemoved:DeleteMarkerCreated",
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(*known); i++)
        if (!strcmp(type, known[i]))
            return true;
    return false;
}

/* ---- the poller's state ------------------------------------------------------------------- */

/* What weir last announced of an object (its catalog entry, in memory), or is announcing. */
struct object {
    struct weir_catalog_entry e; /* e.key is the map's key */
    int64_t announced_mono;      /* when it was last announced; 0: read from the catalog */
};

/* What to make of a key. */
enum check {
    CHECK_PUT,       /* closed after writing, or moved in: announce it */
    CHECK_SCAN,      /* found by a scan: announce it if it differs from what was announced */
    CHECK_DELETE,    /* deleted or moved out: announce it if it was known */
    CHECK_RECONCILE, /* an announcement that did not go through, or a read to try again:
                        announce what is there now, a Put if the file is, else a Delete */
};

/* A key to look at. One per key: see enqueue. */
struct candidate {
    char *key;
    enum check check;
    bool force;  /* announce a delete even of an object not known */
    bool parked; /* in p->parked: its key is being read; it waits for that read's end */
    int64_t not_before_mono;
    struct weir_list link;
};

/* A record on its way, until its verdict. */
struct announce {
    char handle[17]; /* the sequencer in hex: the record's handle */
    bool removed;
    struct weir_catalog_entry e;
};

enum job_kind { JOB_HASH, JOB_SCAN };

/* Every job starts with its kind, so the thread tells them apart. */
struct job_head {
    struct weir_worker_job w;
    enum job_kind kind;
};

struct hash_job {
    struct weir_worker_job w; /* first, then kind: a struct job_head */
    enum job_kind kind;
    struct weir_poller *p;
    int root_fd;
    char *key;
    enum check check;
    /* results, from the thread */
    int error; /* errno; 0 when it was read */
    bool regular, unstable;
    int64_t size, mtime_ns;
    uint64_t ino;
    char etag[33];
};

struct scanned {
    char *key;
    int64_t size, mtime_ns;
    uint64_t ino;
    struct weir_list link;
};

struct scan_job {
    struct weir_worker_job w; /* first, then kind: a struct job_head */
    enum job_kind kind;
    struct weir_poller *p;
    int root_fd;
    char *dir; /* relative: "" for the whole bucket */
    bool ignore_temporary;
    struct weir_list found; /* struct scanned, filled on the thread */
    size_t errors;
    char first_error[256];
    int64_t started_mono;
};

struct weir_poller {
    struct weir_sink sink;
    const struct weir_mapping_cfg *mc;
    const struct weir_bucket_settings *bs;
    struct weir_store *store;
    struct event_base *base;
    char comp[96];
    char *root;   /* absolute, without a trailing slash */
    int root_fd;  /* the thread reads files relative to it */
    char *bucket; /* its name */
    struct weir_source_info info;

    int ifd;
    struct event *inotify_ev;
    struct weir_u32map watches; /* wd -> char * (relative directory, "" for the root) */

    char *catalog_id;           /* its rows in the catalog: the mapping's and the directory's */
    struct weir_strmap known;   /* key -> struct object */
    struct weir_strmap queued;  /* key -> struct candidate in todo, later or parked */
    struct weir_list todo;      /* candidates due now */
    struct weir_list later;     /* candidates with a not_before */
    struct weir_list parked;    /* candidates whose key is being read */
    struct weir_strmap reading; /* key -> the key (owned) while a read of it is out */
    struct weir_timer *later_timer;
    struct weir_strmap sent; /* handle -> struct announce */
    uint64_t last_seq;

    /* Reading and hashing: a large photo takes a thread's time, so there are two, each given
     * every other file; scans go to the first. */
    struct weir_worker *workers[HASH_THREADS];
    size_t next_worker;
    size_t hashing;
    size_t scans;
    size_t catalog_ops;
    bool caught_up, stopping;
    void (*stopped)(void *arg);
    void *stopped_arg;
    struct event *stopped_ev;
};

static void pump(struct weir_poller *p);

static struct weir_bucket_settings default_settings = {.ignore_temporary = true};

static const char *uri_path(const char *uri)
{
    const char *path = uri + strlen("file://");
    if (!strncmp(path, "localhost/", 10))
        path += strlen("localhost");
    return path;
}

static char *join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *out = weir_malloc(a + b + 2);
    if (a) {
        memcpy(out, dir, a);
        out[a] = '/';
        memcpy(out + a + 1, name, b + 1);
    } else {
        memcpy(out, name, b + 1);
    }
    return out;
}

/* Whether the notification takes key at all (prefix and suffix rules). */
static bool key_wanted(const struct weir_poller *p, const char *key)
{
    if (p->bs->prefix && strncmp(key, p->bs->prefix, strlen(p->bs->prefix)) != 0)
        return false;
    if (p->bs->suffix && !ends_with(key, p->bs->suffix))
        return false;
    return true;
}

/* A name weir can announce; says once (per place in the code, per 10 s) why not. */
static bool key_usable(struct weir_poller *p, const char *key)
{
    const char *why;
    if (weir_bucket_key_ok(key, &why))
        return true;
    char shown[256];
    size_t n = 0;
    for (const unsigned char *c = (const unsigned char *)key; *c && n < sizeof(shown) - 5; c++)
        n += (size_t)snprintf(shown + n, sizeof(shown) - n,
                              *c >= 0x20 && *c < 0x7f ? "%c" : "\\x%02x", *c);
    weir_log_limited(WEIR_LOG_WARN, p->comp, "bucket: not announced: %s key=\"%s\"", why, shown);
    return false;
}

/* ---- candidates --------------------------------------------------------------------------- */

static void candidate_free(struct candidate *c)
{
    free(c->key);
    free(c);
}

/* The check a waiting candidate keeps when another comes for its key. What inotify says
 * (a close, a delete) is the newest news and replaces what waits; a scan's find never replaces
 * it; a reconcile (something to do again) never replaces a close or a delete either — they say
 * what is there now — but makes a waiting delete announce even an object not known. */
static enum check merged(enum check waiting, enum check next)
{
    if (next == CHECK_PUT || next == CHECK_DELETE)
        return next;
    if (next == CHECK_RECONCILE)
        return waiting == CHECK_SCAN ? CHECK_RECONCILE : waiting;
    return waiting; /* a scan's find */
}

/* Queues key to be looked at (after delay_ms), one candidate per key (see merged). */
static void enqueue(struct weir_poller *p, const char *key, enum check check, bool force,
                    int64_t delay_ms)
{
    struct candidate *c = weir_strmap_get(&p->queued, key);
    if (c) {
        c->check = merged(c->check, check);
        c->force = c->force || force || check == CHECK_RECONCILE;
        if (delay_ms == 0 && c->not_before_mono && !c->parked) {
            c->not_before_mono = 0;
            weir_list_remove(&c->link);
            weir_list_push_back(&p->todo, &c->link);
        }
        pump(p);
        return;
    }
    c = weir_calloc(1, sizeof(*c));
    c->key = weir_strdup(key);
    c->check = check;
    c->force = force || check == CHECK_RECONCILE;
    weir_strmap_put(&p->queued, c->key, c);
    if (delay_ms > 0) {
        c->not_before_mono = weir_clock_mono_ms() + delay_ms;
        weir_list_push_back(&p->later, &c->link);
        if (!weir_timer_armed(p->later_timer) ||
            weir_timer_due(p->later_timer) > c->not_before_mono)
            weir_timer_at(p->later_timer, c->not_before_mono);
    } else {
        weir_list_push_back(&p->todo, &c->link);
    }
    pump(p);
}

static void on_later(void *arg)
{
    struct weir_poller *p = arg;
    int64_t now = weir_clock_mono_ms(), next = 0;
    struct weir_list *node, *tmp;
    weir_list_foreach_safe(node, tmp, &p->later)
    {
        struct candidate *c = weir_list_entry(node, struct candidate, link);
        if (c->not_before_mono <= now) {
            c->not_before_mono = 0;
            weir_list_remove(&c->link);
            weir_list_push_back(&p->todo, &c->link);
        } else if (!next || c->not_before_mono < next) {
            next = c->not_before_mono;
        }
    }
    if (next)
        weir_timer_at(p->later_timer, next);
    pump(p);
}

/* ---- watches ------------------------------------------------------------------------------ */

/* Watches one directory (relative; "" is the root). Returns false when it cannot. */
static bool watch_dir(struct weir_poller *p, const char *dir, const char *path)
{
    int wd = inotify_add_watch(p->ifd, path, WATCH_MASK);
    if (wd < 0) {
        if (errno != ENOENT && errno != ENOTDIR)
            weir_log_limited(WEIR_LOG_ERROR, p->comp,
                             "bucket: cannot watch a directory; what happens in it is seen only "
                             "by the next start or rescan dir=%s error=\"%s\"%s",
                             path, strerror(errno),
                             errno == ENOSPC ? " (raise fs.inotify.max_user_watches)" : "");
        return errno == ENOENT || errno == ENOTDIR;
    }
    char *old = weir_u32map_get(&p->watches, (uint32_t)wd);
    if (!old || strcmp(old, dir) != 0) {
        free(old);
        weir_u32map_put(&p->watches, (uint32_t)wd, weir_strdup(dir));
    }
    return true;
}

/* Watches dir (relative) and every directory below it, on the loop: directories only, whose
 * listing is what a watch needs anyway. A list of directories still to visit, not recursion, so
 * no depth of tree can exhaust the stack. Returns how many could not be watched. */
static size_t watch_tree(struct weir_poller *p, const char *dir)
{
    size_t failed = 0, n = 1, cap = 16;
    char **todo = weir_malloc(cap * sizeof(*todo));
    todo[0] = weir_strdup(dir);
    while (n) {
        char *cur = todo[--n];
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s%s%s", p->root, cur[0] ? "/" : "", cur);
        DIR *d = NULL;
        if (!watch_dir(p, cur, path))
            failed++;
        else
            d = opendir(path);
        struct dirent *de;
        while (d && (de = readdir(d))) {
            if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
                continue;
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            if (p->bs->ignore_temporary && weir_bucket_is_temporary(de->d_name))
                continue;
            struct stat st;
            /* No symlink to a directory is followed. */
            if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
                !S_ISDIR(st.st_mode))
                continue;
            if (n == cap) {
                cap *= 2;
                todo = weir_realloc(todo, cap * sizeof(*todo));
            }
            todo[n++] = join(cur, de->d_name);
        }
        if (d)
            closedir(d);
        free(cur);
    }
    free(todo);
    return failed;
}

/* Forgets the watches of dir and below (it was moved out or deleted). */
static void unwatch_tree(struct weir_poller *p, const char *dir)
{
    size_t len = strlen(dir);
    for (size_t i = 0; i < p->watches.cap; i++) {
        char *d = p->watches.vals[i];
        if (d && !strncmp(d, dir, len) && (d[len] == '\0' || d[len] == '/')) {
            inotify_rm_watch(p->ifd, (int)p->watches.keys[i]);
            /* The map entry goes when IN_IGNORED comes for it. */
        }
    }
}

/* ---- scans -------------------------------------------------------------------------------- */

/* Opens rel below root_fd without passing through any symlink, in any component (openat's
 * O_NOFOLLOW covers only the last): no path under the bucket leads out of it, even one whose
 * directory was replaced by a symlink since it was watched. */
static int open_beneath(int root_fd, const char *rel, int flags)
{
    struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC),
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS};
    long fd = syscall(SYS_openat2, root_fd, rel, &how, sizeof(how));
    if (fd < 0 && errno == ENOSYS) /* a kernel before 5.6 */
        return openat(root_fd, rel, flags | O_NOFOLLOW | O_CLOEXEC);
    return (int)fd;
}

/* On the thread: every regular file below dir (relative to the root's fd), recursively. */
/* A directory or an entry the scan could not read: what is under it is not known gone. */
static void scan_error(struct scan_job *j, const char *what, int err)
{
    if (err == ENOENT || err == ENOTDIR)
        return; /* removed while scanned: its delete comes by inotify */
    if (!j->errors++)
        snprintf(j->first_error, sizeof(j->first_error), "%s: %s", what[0] ? what : "/",
                 strerror(err));
}

static void scan_dir(struct scan_job *j, const char *dir)
{
    int fd = open_beneath(j->root_fd, dir[0] ? dir : ".", O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        scan_error(j, dir, errno);
        return;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        scan_error(j, dir, errno);
        close(fd);
        return;
    }
    struct dirent *de;
    while ((errno = 0, de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (j->ignore_temporary && weir_bucket_is_temporary(de->d_name))
            continue;
        char *key = join(dir, de->d_name);
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            scan_error(j, key, errno);
            free(key);
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            scan_dir(j, key);
            free(key);
        } else if (S_ISREG(st.st_mode)) {
            struct scanned *s = weir_calloc(1, sizeof(*s));
            s->key = key;
            s->size = st.st_size;
            s->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
            s->ino = st.st_ino;
            weir_list_push_back(&j->found, &s->link);
        } else {
            free(key);
        }
    }
    if (errno)
        scan_error(j, dir, errno);
    closedir(d);
}

/* On the thread: opens a job's file for hashing; -1 when there is nothing to hash (an error,
 * saved in the job, or not a regular file). */
static int hash_open(struct hash_job *j, struct stat *before)
{
    int fd = open_beneath(j->root_fd, j->key, O_RDONLY | O_NONBLOCK);
    if (fd < 0) {
        j->error = errno;
        return -1;
    }
    if (fstat(fd, before) != 0) {
        j->error = errno;
        close(fd);
        return -1;
    }
    j->regular = S_ISREG(before->st_mode);
    if (!j->regular) {
        close(fd);
        return -1;
    }
    return fd;
}

/* On the thread: the job's results once its bytes are hashed, and whether the file changed while
 * it was read. Closes fd. */
static void hash_done(struct hash_job *j, int fd, const struct stat *before,
                      const unsigned char digest[16])
{
    struct stat after;
    fstat(fd, &after);
    close(fd);
    weir_md5_digest_hex(digest, j->etag);
    j->size = after.st_size;
    j->mtime_ns = (int64_t)after.st_mtim.tv_sec * 1000000000 + after.st_mtim.tv_nsec;
    j->ino = after.st_ino;
    j->unstable = before->st_size != after.st_size ||
                  before->st_mtim.tv_sec != after.st_mtim.tv_sec ||
                  before->st_mtim.tv_nsec != after.st_mtim.tv_nsec;
}

/* On the thread: hashes one file as S3 does for a single-part upload (MD5 of the content). */
static void hash_file(struct hash_job *j)
{
    struct stat before;
    int fd = hash_open(j, &before);
    if (fd < 0)
        return;
    /* OpenSSL's MD5: its assembly hashes a large photo's bytes about half again as fast as
     * core/hash.c's C. */
    EVP_MD_CTX *md5 = EVP_MD_CTX_new();
    if (!md5 || EVP_DigestInit_ex(md5, EVP_md5(), NULL) != 1) {
        EVP_MD_CTX_free(md5);
        j->error = ENOMEM;
        close(fd);
        return;
    }
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            j->error = errno;
            EVP_MD_CTX_free(md5);
            close(fd);
            return;
        }
        EVP_DigestUpdate(md5, buf, (size_t)n);
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    EVP_DigestFinal_ex(md5, digest, &digest_len);
    EVP_MD_CTX_free(md5);
    hash_done(j, fd, &before, digest);
}

/* One file being hashed in a lane: what was read of it and not yet hashed. */
struct lane {
    struct hash_job *j; /* NULL: the lane is free */
    int fd;
    struct stat before;
    unsigned char *buf; /* LANE_BUF bytes */
    size_t pos, len;
    uint64_t hashed; /* bytes through the lane's state */
    bool eof;
};

#define LANE_BUF (64 * 1024)

/* On the thread: finishes a lane's file with the one-stream MD5, from the lane's state on. */
static void hash_rest_alone(struct lane *ln, uint32_t state[4][WEIR_MD5X8_LANES], int l)
{
    struct weir_md5 rest;
    for (int k = 0; k < 4; k++)
        rest.state[k] = state[k][l];
    rest.bytes = ln->hashed;
    weir_md5_update(&rest, ln->buf + ln->pos, ln->len - ln->pos);
    while (!ln->eof) {
        ssize_t got = read(ln->fd, ln->buf, LANE_BUF);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            ln->j->error = errno;
            close(ln->fd);
            return;
        }
        if (got == 0)
            ln->eof = true;
        weir_md5_update(&rest, ln->buf, (size_t)got);
    }
    unsigned char digest[16];
    weir_md5_final(&rest, digest);
    hash_done(ln->j, ln->fd, &ln->before, digest);
}

/* On the thread: hashes several files at once, eight side by side in the lanes of
 * weir_md5x8_blocks (one MD5 runs no faster than ~0.7 GB/s a core: a burst of photos waited on
 * it). Each lane takes the next file when its own is done; what is left of a file once the whole
 * blocks are through (its tail and MD5's padding) is finished on its own. */
static void hash_files_in_lanes(struct hash_job **jobs, size_t n)
{
    static const unsigned char idle[LANE_BUF];
    struct lane lanes[WEIR_MD5X8_LANES] = {{0}};
    uint32_t state[4][WEIR_MD5X8_LANES] = {{0}}; /* a free lane's is hashed and thrown away */
    unsigned char *bufs = weir_malloc((size_t)WEIR_MD5X8_LANES * LANE_BUF);
    size_t next = 0, busy = 0;
    for (;;) {
        /* Free lanes take the next files. */
        for (int l = 0; l < WEIR_MD5X8_LANES && next < n; l++) {
            struct lane *ln = &lanes[l];
            while (!ln->j && next < n) {
                struct hash_job *j = jobs[next++];
                int fd = hash_open(j, &ln->before);
                if (fd < 0)
                    continue;
                struct weir_md5 init;
                weir_md5_init(&init);
                for (int k = 0; k < 4; k++)
                    state[k][l] = init.state[k];
                *ln = (struct lane){
                    .j = j, .fd = fd, .before = ln->before, .buf = bufs + (size_t)l * LANE_BUF};
                busy++;
            }
        }
        if (!busy)
            break;
        /* The last file left alone would run in one lane of eight: the one-stream MD5 is faster
         * for the rest of it. */
        if (busy == 1 && next == n) {
            for (int l = 0; l < WEIR_MD5X8_LANES; l++)
                if (lanes[l].j)
                    hash_rest_alone(&lanes[l], state, l);
            break;
        }
        /* Each lane reads on when less than a block is left; a lane at its end is finished. */
        size_t run = SIZE_MAX;
        for (int l = 0; l < WEIR_MD5X8_LANES; l++) {
            struct lane *ln = &lanes[l];
            if (!ln->j)
                continue;
            while (!ln->eof && ln->len - ln->pos < 64) {
                memmove(ln->buf, ln->buf + ln->pos, ln->len - ln->pos);
                ln->len -= ln->pos;
                ln->pos = 0;
                ssize_t got = read(ln->fd, ln->buf + ln->len, LANE_BUF - ln->len);
                if (got < 0 && errno == EINTR)
                    continue;
                if (got < 0) {
                    ln->j->error = errno;
                    close(ln->fd);
                    ln->j = NULL;
                    busy--;
                    break;
                }
                if (got == 0)
                    ln->eof = true;
                ln->len += (size_t)got;
            }
            if (!ln->j)
                continue;
            if (ln->eof && ln->len - ln->pos < 64) {
                hash_rest_alone(ln, state, l); /* its tail and MD5's padding */
                ln->j = NULL;
                busy--;
                continue;
            }
            size_t blocks = (ln->len - ln->pos) / 64;
            if (blocks < run)
                run = blocks;
        }
        if (run == SIZE_MAX)
            continue; /* every lane finished or failed: take the next files */
        /* The whole blocks every busy lane has, all lanes at once; a free lane hashes zeros. */
        const unsigned char *at[WEIR_MD5X8_LANES];
        for (int l = 0; l < WEIR_MD5X8_LANES; l++)
            at[l] = lanes[l].j ? lanes[l].buf + lanes[l].pos : idle;
        weir_md5x8_blocks(state, at, run);
        for (int l = 0; l < WEIR_MD5X8_LANES; l++) {
            if (!lanes[l].j)
                continue;
            lanes[l].pos += run * 64;
            lanes[l].hashed += run * 64;
        }
    }
    free(bufs);
}

static void run_jobs(void *ctx, struct weir_worker_job **jobs, size_t n)
{
    struct hash_job **hashes = weir_malloc(n * sizeof(*hashes));
    size_t n_hashes = 0;
    for (size_t i = 0; i < n; i++) {
        const struct job_head *h = (const struct job_head *)jobs[i];
        if (h->kind == JOB_HASH) {
            hashes[n_hashes++] = (struct hash_job *)jobs[i];
        } else {
            struct scan_job *j = (struct scan_job *)jobs[i];
            scan_dir(j, j->dir);
        }
    }
    if (n_hashes > 1 && weir_md5x8_available())
        hash_files_in_lanes(hashes, n_hashes);
    else
        for (size_t i = 0; i < n_hashes; i++)
            hash_file(hashes[i]);
    free(hashes);
}

/* ---- announcing --------------------------------------------------------------------------- */

static uint64_t next_sequencer(struct weir_poller *p)
{
    /* Increasing for every key, across restarts too: the wall clock's milliseconds in the high
     * bits, and never less than one past the last. */
    uint64_t t = (uint64_t)weir_clock_wall_ms() << 16;
    p->last_seq = t > p->last_seq ? t : p->last_seq + 1;
    return p->last_seq;
}

static void deliver(struct weir_poller *p, const char *key, const char *event_name,
                    const struct weir_catalog_entry *info, bool removed)
{
    struct announce *a = weir_calloc(1, sizeof(*a));
    uint64_t seq = next_sequencer(p);
    snprintf(a->handle, sizeof(a->handle), "%016llx", (unsigned long long)seq);
    a->removed = removed;
    a->e.key = weir_strdup(key);
    if (info) {
        a->e.size = info->size;
        a->e.mtime_ns = info->mtime_ns;
        a->e.ino = info->ino;
        memcpy(a->e.etag, info->etag, sizeof(a->e.etag));
    }
    a->e.sequencer = seq;
    weir_strmap_put(&p->sent, a->handle, a);

    struct weir_record *r = weir_record_new();
    r->id = weir_strdup(key);
    r->handle = weir_strdup(a->handle);
    r->data = weir_strdup("");
    r->event_name = weir_strdup(event_name);
    if (!removed) {
        r->etag = weir_strdup(info->etag);
        r->object_size = info->size;
    }
    r->seq = seq;
    r->sent_ms = weir_clock_wall_ms();
    r->lane = 0;
    p->sink.ops->deliver(p->sink.ctx, r);
}

static void on_catalog_written(void *arg, weir_status st, const char *error)
{
    struct weir_poller *p = arg;
    p->catalog_ops--;
    if (st != WEIR_OK)
        weir_log_limited(WEIR_LOG_ERROR, p->comp,
                         "bucket: cannot write the catalog; the next start may announce the "
                         "object again error=\"%s\"",
                         error);
    pump(p);
}

/* The object under key is now as info says: remembered, and announced when the notification
 * wants it. */
static void object_seen(struct weir_poller *p, const char *key,
                        const struct weir_catalog_entry *info)
{
    struct object *o = weir_strmap_get(&p->known, key);
    if (!o) {
        o = weir_calloc(1, sizeof(*o));
        o->e.key = weir_strdup(key);
        weir_strmap_put(&p->known, o->e.key, o);
    }
    o->e.size = info->size;
    o->e.mtime_ns = info->mtime_ns;
    o->e.ino = info->ino;
    memcpy(o->e.etag, info->etag, sizeof(o->e.etag));
    o->announced_mono = weir_clock_mono_ms();
    if (weir_bucket_event_wanted(p->bs->events, p->bs->n_events, WEIR_S3_CREATED)) {
        deliver(p, key, WEIR_S3_CREATED, info, false);
        return;
    }
    /* Not announced, but known: the catalog says so, so a restart does not find it new. */
    p->catalog_ops++;
    weir_catalog_put(p->store, p->catalog_id, info, on_catalog_written, p);
}

static void object_gone(struct weir_poller *p, const char *key, bool force)
{
    struct object *o = weir_strmap_del(&p->known, key);
    bool was_known = o != NULL || force;
    if (o) {
        free(o->e.key);
        free(o);
    }
    if (!was_known)
        return; /* never announced (a temporary file, a file gone before it was read) */
    if (weir_bucket_event_wanted(p->bs->events, p->bs->n_events, WEIR_S3_REMOVED)) {
        deliver(p, key, WEIR_S3_REMOVED, NULL, true);
    } else {
        p->catalog_ops++;
        weir_catalog_remove(p->store, p->catalog_id, key, on_catalog_written, p);
    }
}

/* The read of key is over: a candidate that came for it meanwhile goes on now. */
static void read_over(struct weir_poller *p, const char *key)
{
    free(weir_strmap_del(&p->reading, key));
    struct candidate *c = weir_strmap_get(&p->queued, key);
    if (c && c->parked) {
        /* Parked from todo, so due now. */
        c->parked = false;
        weir_list_remove(&c->link);
        weir_list_push_back(&p->todo, &c->link);
    }
}

static void on_hashed(struct weir_worker_job *w)
{
    struct hash_job *j = (struct hash_job *)w;
    struct weir_poller *p = j->p;
    p->hashing--;
    if (!w->ran || p->stopping) {
        /* Not read (the poller is stopping): the next start's scan finds it. */
    } else if (j->error == ENOENT || j->error == ENOTDIR || j->error == ELOOP ||
               j->error == EXDEV) {
        /* Gone before it was read (its delete follows, or came: a reconcile announces it), or
         * reached through a symlink: nothing of it to announce. */
        if (j->check == CHECK_RECONCILE && j->error == ENOENT)
            object_gone(p, j->key, true);
    } else if (j->error) {
        weir_log_limited(WEIR_LOG_WARN, p->comp,
                         "bucket: cannot read a file; it is tried again key=%s error=\"%s\"",
                         j->key, strerror(j->error));
        enqueue(p, j->key, CHECK_RECONCILE, false, RETRY_MS);
    } else if (!j->regular) {
        /* A fifo, a socket, a device: not an object. */
    } else if (j->unstable) {
        enqueue(p, j->key, j->check == CHECK_SCAN ? CHECK_SCAN : CHECK_RECONCILE, false, SETTLE_MS);
    } else {
        struct weir_catalog_entry info = {
            .key = j->key, .size = j->size, .mtime_ns = j->mtime_ns, .ino = j->ino};
        memcpy(info.etag, j->etag, sizeof(info.etag));
        struct object *o = weir_strmap_get(&p->known, j->key);
        int64_t age_ms = (weir_clock_wall_ms() * 1000000 - j->mtime_ns) / 1000000;
        if (j->check == CHECK_SCAN && o && o->e.size == j->size && o->e.mtime_ns == j->mtime_ns &&
            o->e.ino == j->ino) {
            /* Unchanged since it was announced. */
        } else if (j->check == CHECK_SCAN && age_ms >= 0 && age_ms < SETTLE_MS) {
            enqueue(p, j->key, CHECK_SCAN, false, SETTLE_MS - age_ms);
        } else {
            object_seen(p, j->key, &info);
            p->sink.ops->read_done(p->sink.ctx);
        }
    }
    read_over(p, j->key);
    free(j->key);
    free(j);
    pump(p);
}

static void hash_start(struct weir_poller *p, struct candidate *c)
{
    struct hash_job *j = weir_calloc(1, sizeof(*j));
    j->w.done = on_hashed;
    j->kind = JOB_HASH;
    j->p = p;
    j->root_fd = p->root_fd;
    j->key = c->key;
    c->key = NULL;
    j->check = c->check;
    p->hashing++;
    /* Reads of one key never overlap: what comes for it meanwhile waits (parked) for this. */
    char *reading = weir_strdup(j->key);
    weir_strmap_put(&p->reading, reading, reading);
    weir_worker_submit(p->workers[p->next_worker++ % HASH_THREADS], &j->w);
}

static size_t room(const struct weir_poller *p)
{
    return p->sink.ops->room(p->sink.ctx, WEIR_LANE_ANY);
}

static void check_stopped(struct weir_poller *p);

/* Takes candidates while the sink has room and the thread has capacity. */
static void pump(struct weir_poller *p)
{
    if (p->stopping) {
        check_stopped(p);
        return;
    }
    bool delivered = false;
    while (!weir_list_empty(&p->todo) && p->hashing < HASHING_MAX && room(p) > p->hashing) {
        struct candidate *c =
            weir_list_entry(weir_list_pop_front(&p->todo), struct candidate, link);
        if (weir_strmap_get(&p->reading, c->key)) {
            /* Its key is being read: it goes on once that read is over, in order. */
            c->parked = true;
            weir_list_push_back(&p->parked, &c->link);
            continue;
        }
        weir_strmap_del(&p->queued, c->key);
        if (c->check == CHECK_DELETE) {
            object_gone(p, c->key, c->force);
            delivered = true;
        } else {
            hash_start(p, c);
        }
        candidate_free(c);
    }
    if (delivered || p->hashing == 0)
        p->sink.ops->read_done(p->sink.ctx);
}

/* ---- scans' results ----------------------------------------------------------------------- */

static void scan_submit(struct weir_poller *p, const char *dir);

static void on_scanned(struct weir_worker_job *w)
{
    struct scan_job *j = (struct scan_job *)w;
    struct weir_poller *p = j->p;
    p->scans--;
    size_t found = 0, changed = 0, removed = 0;
    if (w->ran && !p->stopping) {
        if (j->errors)
            weir_log_limited(WEIR_LOG_WARN, p->comp,
                             "bucket: a scan could not read all of the bucket; it announces no "
                             "deletes, the next scan will errors=%zu first=\"%s\"",
                             j->errors, j->first_error);
        /* What the scan saw, by key, to find the known objects that are gone. */
        struct weir_strmap seen;
        weir_strmap_init(&seen);
        struct weir_list *node;
        for (node = j->found.next; node != &j->found; node = node->next) {
            struct scanned *s = weir_list_entry(node, struct scanned, link);
            weir_strmap_put(&seen, s->key, s);
            found++;
            if (!key_usable(p, s->key) || !key_wanted(p, s->key))
                continue;
            struct object *o = weir_strmap_get(&p->known, s->key);
            if (o && o->e.size == s->size && o->e.mtime_ns == s->mtime_ns && o->e.ino == s->ino)
                continue;
            changed++;
            enqueue(p, s->key, CHECK_SCAN, false, 0);
        }
        /* Known objects under the scanned directory that it did not see were removed while
         * nobody looked, unless they were announced after the scan began (then the scan may
         * have passed their directory before they came). A scan that could not read all of it
         * says nothing of what is gone: the next one will. Collected first: a delete queued
         * may be announced at once, which changes the map being walked. */
        size_t dlen = strlen(j->dir);
        char **gone = NULL;
        for (size_t i = 0; !j->errors && i < p->known.cap; i++) {
            struct object *o = p->known.vals[i];
            if (!o || (dlen && (strncmp(o->e.key, j->dir, dlen) || o->e.key[dlen] != '/')))
                continue;
            if (o->announced_mono >= j->started_mono || weir_strmap_get(&seen, o->e.key))
                continue;
            gone = weir_realloc(gone, (removed + 1) * sizeof(*gone));
            gone[removed++] = weir_strdup(o->e.key);
        }
        weir_strmap_deinit(&seen);
        for (size_t i = 0; i < removed; i++) {
            enqueue(p, gone[i], CHECK_DELETE, false, 0);
            free(gone[i]);
        }
        free(gone);
        weir_info(p->comp, "bucket: scanned dir=/%s files=%zu new_or_changed=%zu removed=%zu",
                  j->dir, found, changed, removed);
        if (!j->dir[0] && !p->caught_up) {
            p->caught_up = true;
            weir_info(p->comp, "bucket: caught up; watching bucket=%s dir=%s", p->bucket, p->root);
        }
    }
    struct weir_list *node;
    while ((node = weir_list_pop_front(&j->found))) {
        struct scanned *s = weir_list_entry(node, struct scanned, link);
        free(s->key);
        free(s);
    }
    free(j->dir);
    free(j);
    pump(p);
}

static void scan_submit(struct weir_poller *p, const char *dir)
{
    struct scan_job *j = weir_calloc(1, sizeof(*j));
    j->w.done = on_scanned;
    j->kind = JOB_SCAN;
    j->p = p;
    j->root_fd = p->root_fd;
    j->dir = weir_strdup(dir);
    j->ignore_temporary = p->bs->ignore_temporary;
    j->started_mono = weir_clock_mono_ms();
    weir_list_init(&j->found);
    p->scans++;
    weir_worker_submit(p->workers[0], &j->w);
}

/* ---- inotify ------------------------------------------------------------------------------ */

static void rescan_all(struct weir_poller *p, const char *why)
{
    weir_warn(p->comp, "bucket: %s; rescanning the whole bucket to find what was missed dir=%s",
              why, p->root);
    watch_tree(p, "");
    scan_submit(p, "");
}

static void on_event(struct weir_poller *p, const struct inotify_event *ev)
{
    if (ev->mask & IN_Q_OVERFLOW) {
        rescan_all(p, "the kernel's inotify queue overflowed (fs.inotify.max_queued_events)");
        return;
    }
    const char *dir = weir_u32map_get(&p->watches, (uint32_t)ev->wd);
    if (ev->mask & IN_IGNORED) {
        free(weir_u32map_del(&p->watches, (uint32_t)ev->wd));
        return;
    }
    if (!dir)
        return; /* a watch being removed */
    if (ev->mask & IN_DELETE_SELF) {
        if (!dir[0])
            weir_error(p->comp, "bucket: the bucket's directory was removed dir=%s", p->root);
        return;
    }
    if (!ev->len)
        return;
    if (p->bs->ignore_temporary && weir_bucket_is_temporary(ev->name))
        return;
    char *key = join(dir, ev->name);
    if (ev->mask & IN_ISDIR) {
        if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
            /* Watch it before scanning it: a file made in between is seen by one or the
             * other. */
            watch_tree(p, key);
            scan_submit(p, key);
        } else if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
            unwatch_tree(p, key);
            /* Collected first: a delete queued may be announced at once, which changes the
             * map being walked. */
            size_t len = strlen(key), n = 0;
            char **gone = NULL;
            for (size_t i = 0; i < p->known.cap; i++) {
                struct object *o = p->known.vals[i];
                if (o && !strncmp(o->e.key, key, len) && o->e.key[len] == '/') {
                    gone = weir_realloc(gone, (n + 1) * sizeof(*gone));
                    gone[n++] = weir_strdup(o->e.key);
                }
            }
            for (size_t i = 0; i < n; i++) {
                enqueue(p, gone[i], CHECK_DELETE, false, 0);
                free(gone[i]);
            }
            free(gone);
        }
    } else if (key_usable(p, key) && key_wanted(p, key)) {
        if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO))
            enqueue(p, key, CHECK_PUT, false, 0);
        else if (ev->mask & (IN_DELETE | IN_MOVED_FROM))
            enqueue(p, key, CHECK_DELETE, false, 0);
        else if (ev->mask & IN_CREATE)
            /* Usually the close that follows replaces this before it is due; a hard link
             * (which is never closed after writing) is found by it. */
            enqueue(p, key, CHECK_SCAN, false, SETTLE_MS);
    }
    free(key);
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
    struct weir_poller *p = arg;
    char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
    /* A bounded number of reads per turn, so a flood cannot keep the loop here. */
    for (int round = 0; round < 16; round++) {
        ssize_t n = read(p->ifd, buf, sizeof(buf));
        if (n <= 0) {
            if (n < 0 && errno != EAGAIN && errno != EINTR)
                weir_log_limited(WEIR_LOG_ERROR, p->comp, "bucket: reading inotify failed: %s",
                                 strerror(errno));
            return;
        }
        for (char *at = buf; at < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)at;
            on_event(p, ev);
            at += sizeof(*ev) + ev->len;
        }
    }
}

/* ---- the poller --------------------------------------------------------------------------- */

static struct weir_poller *bucket_new(const struct weir_poller_args *args, struct weir_err *err)
{
    const struct weir_mapping_cfg *mc = args->mc;
    struct weir_poller *p = weir_calloc(1, sizeof(*p));
    p->sink = args->sink;
    p->mc = mc;
    p->bs = mc->settings ? mc->settings : &default_settings;
    p->store = args->store;
    p->base = args->base;
    p->ifd = -1;
    p->root_fd = -1;
    snprintf(p->comp, sizeof(p->comp), "%s", args->component);
    weir_u32map_init(&p->watches);
    weir_strmap_init(&p->known);
    weir_strmap_init(&p->queued);
    weir_strmap_init(&p->sent);
    weir_list_init(&p->todo);
    weir_list_init(&p->later);
    weir_list_init(&p->parked);
    weir_strmap_init(&p->reading);
    if (!p->store) {
        weir_err_set(err, "a bucket needs the state store (its catalog)");
        goto fail;
    }
    p->root = weir_strdup(uri_path(mc->source));
    size_t len = strlen(p->root);
    while (len > 1 && p->root[len - 1] == '/')
        p->root[--len] = '\0';
    struct weir_buf id;
    weir_buf_init(&id);
    /* Each mapping keeps its own rows: two notifications on one directory announce apart. */
    weir_buf_printf(&id, "%s:%s", mc->name, p->root);
    p->catalog_id = weir_buf_take(&id, NULL);
    const char *base = strrchr(p->root, '/');
    p->bucket = weir_strdup(p->bs->bucket_name ? p->bs->bucket_name : base ? base + 1 : p->root);
    struct weir_buf arn;
    weir_buf_init(&arn);
    weir_buf_printf(&arn, "arn:aws:s3:::%s", p->bucket);
    p->info.source_arn = weir_buf_take(&arn, NULL);
    p->info.ordered_lanes = false;
    p->later_timer = weir_timer_new(p->base, on_later, p);
    return p;
fail:
    free(p);
    return NULL;
}

static const struct weir_source_info *bucket_info(const struct weir_poller *p)
{
    return &p->info;
}

static void on_catalog_loaded(void *arg, weir_status st, const char *error,
                              struct weir_list *entries)
{
    struct weir_poller *p = arg;
    p->catalog_ops--;
    if (p->stopping) {
        check_stopped(p);
        return;
    }
    if (st != WEIR_OK) {
        weir_error(p->comp,
                   "bucket: cannot read the catalog; announcing every object as new "
                   "error=\"%s\"",
                   error);
    } else {
        size_t n = 0;
        struct weir_list *node;
        while ((node = weir_list_pop_front(entries))) {
            struct weir_catalog_entry *e = weir_list_entry(node, struct weir_catalog_entry, link);
            if (e->sequencer > p->last_seq)
                p->last_seq = e->sequencer;
            if (weir_strmap_get(&p->known, e->key)) {
                /* Announced since the start, before the catalog was read: that is newer. */
                weir_catalog_entry_free(e);
                continue;
            }
            struct object *o = weir_calloc(1, sizeof(*o));
            o->e = *e;
            weir_list_init(&o->e.link);
            weir_strmap_put(&p->known, o->e.key, o);
            free(e); /* its key moved to o */
            n++;
        }
        weir_info(p->comp, "bucket: catalog read objects=%zu", n);
    }
    scan_submit(p, "");
}

static weir_status bucket_start(struct weir_poller *p)
{
    struct stat st;
    if (stat(p->root, &st) != 0) {
        weir_error(p->comp, "bucket: cannot use the bucket's directory dir=%s error=\"%s\"",
                   p->root, strerror(errno));
        return WEIR_ERR;
    }
    if (!S_ISDIR(st.st_mode)) {
        weir_error(p->comp, "bucket: the bucket's path is not a directory dir=%s", p->root);
        return WEIR_ERR;
    }
    p->root_fd = open(p->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    p->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (p->root_fd < 0 || p->ifd < 0) {
        weir_error(p->comp, "bucket: cannot watch %s: %s", p->root, strerror(errno));
        return WEIR_ERR;
    }
    struct weir_err err = {{0}};
    for (int i = 0; i < HASH_THREADS && !err.msg[0]; i++)
        p->workers[i] = weir_worker_new(p->base, "bucket", run_jobs, NULL, &err);
    if (err.msg[0]) {
        weir_error(p->comp, "bucket: %s", err.msg);
        return WEIR_ERR;
    }
    p->inotify_ev = event_new(p->base, p->ifd, EV_READ | EV_PERSIST, on_inotify, p);
    event_add(p->inotify_ev, NULL);
    /* Watches first, then the catalog and the scan: whatever changes meanwhile is seen by the
     * watch, the scan, or both (and then announced once). */
    size_t failed = watch_tree(p, "");
    weir_info(p->comp, "bucket: watching bucket=%s dir=%s directories=%zu%s", p->bucket, p->root,
              p->watches.n, failed ? " (some could not be watched)" : "");
    p->catalog_ops++;
    weir_catalog_load(p->store, p->catalog_id, on_catalog_loaded, p);
    return WEIR_OK;
}

static void bucket_resume(struct weir_poller *p, uint32_t lane)
{
    pump(p);
}

static void on_settled(void *arg, weir_status st, const char *error)
{
    on_catalog_written(arg, st, error);
}

static void bucket_settle(struct weir_poller *p, const struct weir_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        const struct weir_record *r = b->records[i];
        struct announce *a = r->handle ? weir_strmap_del(&p->sent, r->handle) : NULL;
        if (!a)
            continue;
        switch (r->verdict) {
        case WEIR_VERDICT_DONE:
            p->catalog_ops++;
            if (a->removed)
                weir_catalog_remove(p->store, p->catalog_id, a->e.key, on_settled, p);
            else
                weir_catalog_put(p->store, p->catalog_id, &a->e, on_settled, p);
            break;
        case WEIR_VERDICT_RETRY:
        case WEIR_VERDICT_RELEASE:
            /* Not stored by the async queue: announced again (while running; otherwise the
             * next start's scan finds it, the catalog not having it). */
            if (!p->stopping)
                enqueue(p, a->e.key, CHECK_RECONCILE, false, RETRY_MS);
            break;
        default:
            weir_log_limited(WEIR_LOG_ERROR, p->comp,
                             "bucket: an event could not be delivered key=%s reason=\"%s\"",
                             a->e.key, r->reason ? r->reason : "");
            break;
        }
        free(a->e.key);
        free(a);
    }
}

static void on_stopped_ev(evutil_socket_t fd, short what, void *arg)
{
    struct weir_poller *p = arg;
    void (*done)(void *) = p->stopped;
    p->stopped = NULL;
    if (done)
        done(p->stopped_arg);
}

static void check_stopped(struct weir_poller *p)
{
    if (p->stopped && !p->hashing && !p->scans && !p->catalog_ops && !p->stopped_ev) {
        p->stopped_ev = event_new(p->base, -1, 0, on_stopped_ev, p);
        event_active(p->stopped_ev, EV_TIMEOUT, 0);
    }
}

static void bucket_stop(struct weir_poller *p, void (*done)(void *arg), void *arg)
{
    p->stopping = true;
    p->stopped = done;
    p->stopped_arg = arg;
    if (p->inotify_ev)
        event_del(p->inotify_ev);
    weir_timer_stop(p->later_timer);
    check_stopped(p);
}

static void free_candidates(struct weir_list *list)
{
    struct weir_list *node;
    while ((node = weir_list_pop_front(list)))
        candidate_free(weir_list_entry(node, struct candidate, link));
}

static void bucket_free(struct weir_poller *p)
{
    if (!p)
        return;
    p->stopping = true;
    for (int i = 0; i < HASH_THREADS; i++)
        weir_worker_free(p->workers[i]); /* their jobs' done run now, and see stopping */
    if (p->inotify_ev)
        event_free(p->inotify_ev);
    if (p->stopped_ev)
        event_free(p->stopped_ev);
    if (p->ifd >= 0)
        close(p->ifd);
    if (p->root_fd >= 0)
        close(p->root_fd);
    for (size_t i = 0; i < p->watches.cap; i++)
        free(p->watches.vals[i]);
    weir_u32map_deinit(&p->watches);
    for (size_t i = 0; i < p->known.cap; i++) {
        struct object *o = p->known.vals[i];
        if (o) {
            free(o->e.key);
            free(o);
        }
    }
    weir_strmap_deinit(&p->known);
    for (size_t i = 0; i < p->sent.cap; i++) {
        struct announce *a = p->sent.vals[i];
        if (a) {
            free(a->e.key);
            free(a);
        }
    }
    weir_strmap_deinit(&p->sent);
    weir_strmap_deinit(&p->queued);
    free_candidates(&p->todo);
    free_candidates(&p->later);
    free_candidates(&p->parked);
    for (size_t i = 0; i < p->reading.cap; i++)
        free(p->reading.vals[i]);
    weir_strmap_deinit(&p->reading);
    free(p->catalog_id);
    weir_timer_free(p->later_timer);
    free((char *)p->info.source_arn);
    free(p->root);
    free(p->bucket);
    free(p);
}

static const struct weir_poller_ops bucket_ops = {
    .new = bucket_new,
    .info = bucket_info,
    .start = bucket_start,
    .resume = bucket_resume,
    .settle = bucket_settle,
    .stop = bucket_stop,
    .free = bucket_free,
};

/* ---- the row ------------------------------------------------------------------------------ */

static const struct weir_cfg_key bucket_keys[] = {
    WEIR_CFG_KEY_STRING("bucket_name", struct weir_bucket_settings, bucket_name, 3),
    WEIR_CFG_KEY_STRINGS("events", struct weir_bucket_settings, events, n_events, 1, 16),
    WEIR_CFG_KEY_STRING("prefix", struct weir_bucket_settings, prefix, 1),
    WEIR_CFG_KEY_STRING("suffix", struct weir_bucket_settings, suffix, 1),
    WEIR_CFG_KEY_BOOL("ignore_temporary", struct weir_bucket_settings, ignore_temporary, 1),
};

static bool bucket_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n < 3 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-'))
            return false;
    }
    return name[0] != '.' && name[0] != '-' && name[n - 1] != '.' && name[n - 1] != '-';
}

static void bucket_validate(const struct weir_mapping_cfg *mc, struct weir_cfg_report *rep)
{
    const struct weir_bucket_settings *bs = mc->settings;
    const char *name = mc->name ? mc->name : "?";
    const char *path = mc->source ? uri_path(mc->source) : NULL;
    if (!path || path[0] != '/' || strlen(path) < 2 || strpbrk(path, "?#"))
        weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "source"),
                            "mapping '%s': a bucket is file:///absolute/directory (three "
                            "slashes), got \"%s\"",
                            name, mc->source ? mc->source : "");
    if (bs->bucket_name && !bucket_name_ok(bs->bucket_name))
        weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "bucket_name"),
                            "mapping '%s': bucket_name \"%s\" is not an S3 bucket name (3..63 of "
                            "a-z 0-9 . -, starting and ending with a letter or digit)",
                            name, bs->bucket_name);
    for (size_t i = 0; i < bs->n_events; i++)
        if (!weir_bucket_event_type_known(bs->events[i]))
            weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "events"),
                                "mapping '%s': events: \"%s\" is not an event type a bucket "
                                "sends; use s3:ObjectCreated:* or s3:ObjectRemoved:* (or one of "
                                "their types, e.g. s3:ObjectCreated:Put)",
                                name, bs->events[i]);
    if (bs->prefix && strlen(bs->prefix) > WEIR_S3_KEY_MAX)
        weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "prefix"),
                            "mapping '%s': prefix is longer than 1024 bytes", name);
    if (bs->suffix && strlen(bs->suffix) > WEIR_S3_KEY_MAX)
        weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "suffix"),
                            "mapping '%s': suffix is longer than 1024 bytes", name);
    if (mc->maximum_batching_window_in_seconds > 0)
        weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "maximum_batching_window_in_seconds"),
                            "mapping '%s': a bucket sends each event on its own (as S3 does); "
                            "remove maximum_batching_window_in_seconds",
                            name);
}

const struct weir_source weir_source_bucket = {
    .config =
        {
            .name = "bucket",
            .scheme = "file",
            .example_uri = "file:///srv/photos",
            .keys = bucket_keys,
            .n_keys = sizeof(bucket_keys) / sizeof(*bucket_keys),
            .settings_size = sizeof(struct weir_bucket_settings),
            .default_batch_size = 1,
            .max_batch_size = 1,
            .default_window_ms = 0,
            .validate = bucket_validate,
        },
    .format = &weir_format_s3,
    .delivery = WEIR_DELIVERY_ASYNC,
    .ops = &bucket_ops,
};
