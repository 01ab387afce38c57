/* The bucket benchmark: N files written into a directory on tmpfs, each announced by weir and
 * carried through the durable asynchronous queue (SQLite, fsync per commit group) to a null HTTP
 * function, beside the raw inotify rate of the same writes in the same run (a plain reader of
 * IN_CLOSE_WRITE on another directory of the same file system, before and after weir; and one on
 * weir's own bucket while weir reads it). Then the Invoke API: M Event
 * invocations posted over kept-alive connections, accepts per second (each answered 202 only
 * once stored) and the drain to the function. Owns its weir child and the null function (a
 * thread of this process). A program that prints figures, never a test: it fails only when the
 * benchmark broke (or lost a file). */
#define _GNU_SOURCE /* memmem, nftw */
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/inotify.h>
#include <sys/syscall.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "bench/common.h"
#include "bench/nullfn.h"
#include "core/mem.h"

#define STALL_LIMIT_US (30 * 1000000LL)

struct options {
    long files;
    long events;
    int size;
    int concurrency;
    char weir[PATH_MAX];
    char dir[1024];   /* tmpfs, for the buckets */
    char state[1200]; /* the state store: a real disk, where fsync costs what it costs */
};

static volatile pid_t weir_pid_g = -1;

static void on_signal(int sig)
{
    if (weir_pid_g > 0)
        kill(weir_pid_g, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* ---- the null function: bench/nullfn.h's server, recording when each file (or event) arrived */

struct bucket_fn {
    struct nullfn srv;
    pthread_mutex_t mu;
    char prefix; /* 'f': S3 events of files f<seq>.dat; 'e': API events {"id":"e<seq>"} */
    long capacity;
    int64_t *arrived_us; /* by seq; 0 = not yet */
    long unique, dups, bad;
    int64_t t_last_us;
};

static void bucket_fn_handle(struct nullfn_req *req, const char *p, size_t len, void *arg)
{
    struct nullfn *srv = arg;
    struct bucket_fn *f = srv->arg;
    int64_t now = wall_us();
    char needle[16];
    int nl =
        snprintf(needle, sizeof needle, "\"%s\":\"%c", f->prefix == 'f' ? "key" : "id", f->prefix);
    const char *hit = memmem(p, len, needle, (size_t)nl);
    long seq = -1;
    if (hit) {
        seq = 0;
        for (const char *d = hit + nl; d < p + len && *d >= '0' && *d <= '9'; d++)
            seq = seq * 10 + (*d - '0');
    }
    pthread_mutex_lock(&f->mu);
    if (seq < 0 || seq >= f->capacity)
        f->bad++;
    else if (f->arrived_us[seq])
        f->dups++;
    else {
        f->arrived_us[seq] = now;
        f->unique++;
        f->t_last_us = now;
    }
    pthread_mutex_unlock(&f->mu);
    nullfn_reply_ok(srv, req);
}

/* The lean transport: the goal is a ratio to raw inotify, where no function takes CPU. */
static int bucket_fn_start(struct bucket_fn *f)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    return nullfn_start(&f->srv, NULLFN_LEAN, bucket_fn_handle, f);
}

static void bucket_fn_expect(struct bucket_fn *f, char prefix, long capacity)
{
    pthread_mutex_lock(&f->mu);
    free(f->arrived_us);
    f->prefix = prefix;
    f->capacity = capacity;
    f->arrived_us = weir_calloc((size_t)capacity, sizeof *f->arrived_us);
    f->unique = f->dups = f->bad = 0;
    f->t_last_us = 0;
    pthread_mutex_unlock(&f->mu);
}

static void bucket_fn_stop(struct bucket_fn *f)
{
    nullfn_stop(&f->srv);
    free(f->arrived_us);
    pthread_mutex_destroy(&f->mu);
}

/* ---- writing files -------------------------------------------------------------------------- */

/* Writes n files of size bytes into dir, stamping when each was closed. */
static int write_files(const char *dir, long n, int size, int64_t *closed_us)
{
    char *data = weir_malloc((size_t)size);
    for (int i = 0; i < size; i++)
        data[i] = (char)('a' + i % 26);
    for (long i = 0; i < n; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/f%07ld.dat", dir, i);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        /* Each file's content differs, as photos do. */
        char num[24];
        int len = snprintf(num, sizeof num, "%07ld", i);
        memcpy(data, num, (size_t)(len < size ? len : size));
        if (fd < 0 || write(fd, data, (size_t)size) != size) {
            say("cannot write %s: %s", path, strerror(errno));
            free(data);
            return -1;
        }
        close(fd);
        closed_us[i] = wall_us();
    }
    free(data);
    return 0;
}

/* A plain inotify reader of IN_CLOSE_WRITE on one directory, on a thread of its own: the raw
 * event rate of that directory while something writes n files into it. */
struct reader {
    const char *dir;
    long n;
    int ifd;
    int64_t t0_us;    /* when the writes began */
    int64_t last_us;  /* when the n-th file's event was read */
    int64_t *seen_us; /* by file number */
    long got;
    bool overflowed;
    pthread_t thread;
};

static void *reader_main(void *arg)
{
    struct reader *rd = arg;
    char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
    while (rd->got < rd->n && !rd->overflowed) {
        ssize_t n = read(rd->ifd, buf, sizeof buf);
        if (n <= 0)
            break;
        int64_t now = wall_us();
        for (char *at = buf; at < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)at;
            at += sizeof *ev + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) {
                rd->overflowed = true;
                break;
            }
            if (ev->len && ev->name[0] == 'f') {
                long seq = strtol(ev->name + 1, NULL, 10);
                if (seq >= 0 && seq < rd->n && !rd->seen_us[seq]) {
                    rd->seen_us[seq] = now;
                    rd->got++;
                    rd->last_us = now;
                }
            }
        }
    }
    return NULL;
}

/* Starts watching dir; the writes begin after. */
static int reader_start(struct reader *rd, const char *dir, long n)
{
    memset(rd, 0, sizeof *rd);
    rd->dir = dir;
    rd->n = n;
    rd->ifd = inotify_init1(IN_CLOEXEC);
    if (rd->ifd < 0 || inotify_add_watch(rd->ifd, dir, IN_CLOSE_WRITE) < 0) {
        say("inotify on %s: %s", dir, strerror(errno));
        if (rd->ifd >= 0)
            close(rd->ifd);
        return -1;
    }
    rd->seen_us = weir_calloc((size_t)n, sizeof *rd->seen_us);
    rd->t0_us = wall_us();
    pthread_create(&rd->thread, NULL, reader_main, rd);
    return 0;
}

/* Waits for every file's event; returns files/s from the start of the writes to the last event
 * read, and each file's close-to-read latency when closed_us is given. */
static double reader_finish(struct reader *rd, const int64_t *closed_us, struct pct *lat)
{
    pthread_join(rd->thread, NULL);
    close(rd->ifd);
    if (rd->overflowed)
        say("raw reader of %s: the inotify queue overflowed; its rate counts what it read",
            rd->dir);
    if (lat) {
        long n_lat = 0;
        for (long i = 0; i < rd->n; i++)
            if (rd->seen_us[i] && closed_us[i])
                rd->seen_us[n_lat++] =
                    rd->seen_us[i] - closed_us[i] > 0 ? rd->seen_us[i] - closed_us[i] : 0;
        *lat = percentiles(rd->seen_us, n_lat);
    }
    free(rd->seen_us);
    return rd->last_us > rd->t0_us ? (double)rd->got * 1e6 / (double)(rd->last_us - rd->t0_us) : -1;
}

/* The raw rate: the writes alone, read back by a plain inotify reader while this thread writes.
 * Returns files/s from the first write to the last event read. */
static double run_raw(const struct options *o, const char *dir, struct pct *lat)
{
    struct reader rd;
    if (reader_start(&rd, dir, o->files) != 0)
        return -1;
    int64_t *closed = weir_calloc((size_t)o->files, sizeof *closed);
    int rc = write_files(dir, o->files, o->size, closed);
    if (rc != 0) {
        /* The reader waits for events that will not come: stop it (read is a cancellation
         * point). */
        pthread_cancel(rd.thread);
    }
    double fps = reader_finish(&rd, closed, lat);
    free(closed);
    return rc == 0 ? fps : -1;
}

/* Empties dir (its files only): a phase's pages go back to tmpfs for the next one. */
static void empty_dir(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    mkdir(dir, 0755);
}

/* ---- weir ----------------------------------------------------------------------------------- */

static int wait_log(const char *log, const char *what, int64_t timeout_us)
{
    int64_t end = mono_us() + timeout_us;
    char line[1024];
    while (mono_us() < end) {
        FILE *f = fopen(log, "r");
        if (f) {
            while (fgets(line, sizeof line, f))
                if (strstr(line, what)) {
                    fclose(f);
                    return 0;
                }
            fclose(f);
        }
        if (weir_pid_g > 0 && waitpid(weir_pid_g, NULL, WNOHANG) == weir_pid_g) {
            say("weir exited; see %s", log);
            weir_pid_g = -1;
            return -1;
        }
        sleep_us(20000);
    }
    say("weir never logged '%s'; see %s", what, log);
    return -1;
}

/* Waits until the function has every one of want; -1 when it stalls. */
static int await_all(struct bucket_fn *f, long want)
{
    long last_unique = -1;
    int64_t last_move = mono_us();
    for (;;) {
        pthread_mutex_lock(&f->mu);
        long u = f->unique;
        pthread_mutex_unlock(&f->mu);
        if (u >= want)
            return 0;
        if (u != last_unique) {
            last_unique = u;
            last_move = mono_us();
        } else if (mono_us() - last_move > STALL_LIMIT_US) {
            say("stalled at %ld of %ld", u, want);
            return -1;
        }
        sleep_us(5000);
    }
}

struct figures {
    double raw_fps, weir_fps, accepts_ps, api_drain_ps;
    double raw_same_fps; /* the events of weir's bucket during weir's run, read by a plain reader */
    struct pct raw_lat, weir_lat, api_lat;
    long dups, api_failed;
    double weir_cpu_s, elapsed_s;
    long rss_kb;
};

/* POSTs n Event invocations over c kept-alive connections to the API; returns accepts/s. */
struct poster {
    struct event_base *base;
    int port;
    long n, next, done, ok, failed;
    int64_t *sent_us;
    int64_t *lat_us;
    long n_lat;
};

struct post_conn {
    struct poster *ps;
    struct evhttp_connection *evcon;
    long seq;
};

static void post_next(struct post_conn *pc);

static void on_posted(struct evhttp_request *req, void *arg)
{
    struct post_conn *pc = arg;
    struct poster *ps = pc->ps;
    ps->done++;
    if (req && evhttp_request_get_response_code(req) == 202) {
        ps->ok++;
        ps->lat_us[ps->n_lat++] = wall_us() - ps->sent_us[pc->seq];
    } else {
        ps->failed++;
    }
    if (ps->done == ps->n)
        event_base_loopbreak(ps->base);
    else
        post_next(pc);
}

static void post_next(struct post_conn *pc)
{
    struct poster *ps = pc->ps;
    if (ps->next >= ps->n)
        return;
    pc->seq = ps->next++;
    struct evhttp_request *req = evhttp_request_new(on_posted, pc);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", "127.0.0.1");
    evhttp_add_header(h, "X-Amz-Invocation-Type", "Event");
    evbuffer_add_printf(evhttp_request_get_output_buffer(req), "{\"id\":\"e%07ld\",\"pad\":\"%s\"}",
                        pc->seq, "0123456789012345678901234567890123456789012345678901234567890");
    ps->sent_us[pc->seq] = wall_us();
    evhttp_make_request(pc->evcon, req, EVHTTP_REQ_POST,
                        "/2015-03-31/functions/function/invocations");
}

static double post_events(int port, long n, int c, struct pct *lat, long *failed)
{
    struct poster ps = {.base = event_base_new(), .port = port, .n = n};
    ps.sent_us = weir_calloc((size_t)n, sizeof *ps.sent_us);
    ps.lat_us = weir_calloc((size_t)n, sizeof *ps.lat_us);
    struct post_conn *pcs = weir_calloc((size_t)c, sizeof *pcs);
    int64_t t0 = wall_us();
    for (int i = 0; i < c; i++) {
        pcs[i].ps = &ps;
        pcs[i].evcon = evhttp_connection_base_new(ps.base, NULL, "127.0.0.1", (uint16_t)port);
        post_next(&pcs[i]);
    }
    event_base_dispatch(ps.base);
    double secs = (double)(wall_us() - t0) / 1e6;
    *lat = percentiles(ps.lat_us, ps.n_lat);
    *failed = ps.failed;
    for (int i = 0; i < c; i++)
        evhttp_connection_free(pcs[i].evcon);
    free(pcs);
    free(ps.sent_us);
    free(ps.lat_us);
    event_base_free(ps.base);
    return secs > 0 ? (double)ps.ok / secs : 0;
}

static int run_weir(const struct options *o, struct bucket_fn *fn, const char *bucket,
                    struct figures *fig)
{
    char config[PATH_MAX], log[PATH_MAX];
    snprintf(config, sizeof config, "%s/weir.yaml", o->state);
    snprintf(log, sizeof log, "%s/weir.log", o->state);
    int api_port = free_port();
    FILE *f = fopen(config, "w");
    if (!f)
        return -1;
    fprintf(f,
            "functions:\n"
            "  - name: function\n"
            "    url: http://127.0.0.1:%d\n"
            "    reserved_concurrency: %d\n"
            "mappings:\n"
            "  - name: photos\n"
            "    source: file://%s\n"
            "    function: function\n"
            "api: {listen: '127.0.0.1:%d'}\n"
            "state_dir: %s/state\n",
            fn->srv.port, o->concurrency, bucket, api_port, o->state);
    fclose(f);
    /* At info the log says nothing per file, so it costs nothing per file. */
    char *argv[] = {(char *)o->weir, "run", "-c", config, NULL};
    weir_pid_g = spawn(argv, log);
    if (weir_pid_g < 0 || wait_log(log, "bucket: caught up", 30 * 1000000LL) != 0)
        return -1;

    /* Files: from the first write to the last receipt, and each file's write-to-receipt. */
    bucket_fn_expect(fn, 'f', o->files);
    int64_t *closed = weir_calloc((size_t)o->files, sizeof *closed);
    /* A plain reader on weir's own bucket besides: the rate the events happened at there, with
     * weir sharing the machine (the writes slow down as weir takes CPU). */
    struct reader same;
    if (reader_start(&same, bucket, o->files) != 0) {
        free(closed);
        return -1;
    }
    double cpu0 = pid_cpu(weir_pid_g);
    int64_t t0 = wall_us();
    if (write_files(bucket, o->files, o->size, closed) != 0 || await_all(fn, o->files) != 0) {
        pthread_cancel(same.thread);
        reader_finish(&same, NULL, NULL);
        free(closed);
        return -1;
    }
    fig->raw_same_fps = reader_finish(&same, NULL, NULL);
    pthread_mutex_lock(&fn->mu);
    int64_t t_last = fn->t_last_us;
    fig->dups = fn->dups;
    int64_t *lat = weir_calloc((size_t)o->files, sizeof *lat);
    for (long i = 0; i < o->files; i++)
        lat[i] = fn->arrived_us[i] - closed[i];
    pthread_mutex_unlock(&fn->mu);
    fig->weir_cpu_s = pid_cpu(weir_pid_g) - cpu0;
    fig->elapsed_s = (double)(t_last - t0) / 1e6;
    fig->weir_fps = (double)o->files / fig->elapsed_s;
    fig->weir_lat = percentiles(lat, o->files);
    free(lat);
    free(closed);

    /* The Invoke API: accepts (stored, then 202), and the drain to the function. */
    bucket_fn_expect(fn, 'e', o->events);
    t0 = wall_us();
    fig->accepts_ps = post_events(api_port, o->events, 8, &fig->api_lat, &fig->api_failed);
    if (await_all(fn, o->events) != 0)
        return -1;
    pthread_mutex_lock(&fn->mu);
    fig->api_drain_ps = (double)o->events * 1e6 / (double)(fn->t_last_us - t0);
    pthread_mutex_unlock(&fn->mu);
    fig->rss_kb = peak_rss_kb(weir_pid_g);
    kill(weir_pid_g, SIGTERM);
    if (wait_child(weir_pid_g, 30 * 1000000LL) < 0)
        kill(weir_pid_g, SIGKILL);
    weir_pid_g = -1;
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: bench_bucket --weir PATH [--files N] [--size BYTES] [--events N]\n"
                 "                    [--concurrency C] [--dir TMPFS_DIR] [--state DIR]\n");
}

int main(int argc, char **argv)
{
    struct options o = {.files = 50000, .events = 50000, .size = 65536, .concurrency = 16};
    snprintf(o.dir, sizeof o.dir, "/dev/shm");
    const char *tmp = getenv("TMPDIR");
    snprintf(o.state, sizeof o.state, "%s", tmp && *tmp ? tmp : "/tmp");
    static const struct option longopts[] = {
        {"weir", required_argument, NULL, 'w'},
        {"files", required_argument, NULL, 'f'},
        {"size", required_argument, NULL, 's'},
        {"events", required_argument, NULL, 'e'},
        {"dir", required_argument, NULL, 'd'},
        {"state", required_argument, NULL, 't'},
        {"concurrency", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'w':
            snprintf(o.weir, sizeof o.weir, "%s", optarg);
            break;
        case 'f':
            o.files = atol(optarg);
            break;
        case 's':
            o.size = atoi(optarg);
            break;
        case 'e':
            o.events = atol(optarg);
            break;
        case 'c':
            o.concurrency = atoi(optarg);
            break;
        case 'd':
            snprintf(o.dir, sizeof o.dir, "%s", optarg);
            break;
        case 't':
            snprintf(o.state, sizeof o.state, "%s", optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!o.weir[0] || o.files < 1 || o.events < 1 || o.size < 8 || o.concurrency < 1) {
        usage(stderr);
        return 2;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);

    char root[1100], raw_dir[1200], bucket[1200], state[1100];
    /* The state directory is made inside the one given. */
    snprintf(root, sizeof root, "%s/weir-bench-bucket.XXXXXX", o.dir);
    snprintf(state, sizeof state, "%.1024s/weir-bench-state.XXXXXX", o.state);
    if (!mkdtemp(root) || !mkdtemp(state)) {
        say("cannot make the work directories: %s", strerror(errno));
        return 1;
    }
    snprintf(o.state, sizeof o.state, "%s", state);
    snprintf(raw_dir, sizeof raw_dir, "%s/raw", root);
    snprintf(bucket, sizeof bucket, "%s/photos", root);
    mkdir(raw_dir, 0755);
    mkdir(bucket, 0755);

    struct bucket_fn fn;
    struct figures fig = {0};
    int rc = 1;
    if (bucket_fn_start(&fn) != 0) {
        say("cannot start the null function");
        return 1;
    }
    say("%ld files of %d bytes; raw inotify on %s, then through weir (state in %s)", o.files,
        o.size, raw_dir, o.state);
    /* The raw rate before and after weir's run. tmpfs takes files at very different speeds
     * depending on whether its pages were used before (on this VM, memory never touched, or
     * given back, costs the host a fault per page: 7k against 20k files/s of 64 KiB): so a
     * warm-up round first, and every phase's files are deleted before the next, so that each
     * writes into pages the one before freed. weir is judged against the better raw figure. */
    struct pct warm_lat;
    if (run_raw(&o, raw_dir, &warm_lat) <= 0)
        goto out;
    empty_dir(raw_dir);
    fig.raw_fps = run_raw(&o, raw_dir, &fig.raw_lat);
    if (fig.raw_fps <= 0)
        goto out;
    empty_dir(raw_dir);
    if (run_weir(&o, &fn, bucket, &fig) != 0)
        goto out;
    empty_dir(bucket);
    struct pct after_lat;
    double raw_after = run_raw(&o, raw_dir, &after_lat);
    if (raw_after <= 0)
        goto out;
    rc = 0;
    double raw_best = raw_after > fig.raw_fps ? raw_after : fig.raw_fps;
    double ratio = fig.weir_fps / raw_best;
    printf("bucket: %ld files of %d bytes, function reserved_concurrency %d, load %.2f\n", o.files,
           o.size, o.concurrency, loadavg());
    printf("  raw inotify (write -> IN_CLOSE_WRITE read)   %9.0f files/s   before weir; %.0f "
           "after; p50 %.3f ms  p99 %.3f ms\n",
           fig.raw_fps, raw_after, fig.raw_lat.p50_ms, fig.raw_lat.p99_ms);
    printf("  weir (write -> function, via the queue)      %9.0f files/s   p50 %.1f ms  p99 "
           "%.1f ms\n",
           fig.weir_fps, fig.weir_lat.p50_ms, fig.weir_lat.p99_ms);
    printf(
        "  raw inotify of weir's bucket, same run         %9.0f files/s   (the writes, with weir "
        "sharing the machine)\n",
        fig.raw_same_fps);
    printf("  ratio %.2f to the better raw (goal >= 0.5: %s); %.2f to the bucket's own event rate "
           "in the same run\n",
           ratio, ratio >= 0.5 ? "met" : "NOT met",
           fig.raw_same_fps > 0 ? fig.weir_fps / fig.raw_same_fps : 0.0);
    printf("  lost 0 of %ld; delivered twice %ld; weir CPU %.2f cores; peak RSS %.1f MB\n", o.files,
           fig.dups, fig.weir_cpu_s / fig.elapsed_s, (double)fig.rss_kb / 1024.0);
    printf("invoke API: %ld Event invocations over 8 connections\n", o.events);
    printf("  accepted (stored, then 202)                  %9.0f /s        p50 %.2f ms  p99 "
           "%.2f ms  failed %ld\n",
           fig.accepts_ps, fig.api_lat.p50_ms, fig.api_lat.p99_ms, fig.api_failed);
    printf("  delivered to the function                    %9.0f /s\n", fig.api_drain_ps);
out:
    bucket_fn_stop(&fn);
    nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    nftw(state, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
