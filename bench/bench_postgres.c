/* The Postgres source benchmark: a Postgres 15 cluster of its own (initdb in a temporary directory,
 * wal_level=logical, fsync=off), a table's changes written as one large transaction and as many
 * one-row transactions, then read as a backlog, in the same run and from slots created before the
 * writes, by pg_recvlogical (pgoutput, the raw reader) and by weir carrying them to a null HTTP
 * function at each batch size; then, for latency, rows committed at a steady rate while each reader
 * is caught up. Owns its cluster, its weir and pg_recvlogical children and the null function (a
 * thread of this process). A program that prints figures, never a test: it fails only when the
 * benchmark broke (a row lost, a child that would not start or stop). */
#define _GNU_SOURCE /* memmem, nftw, pipe2, initgroups */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "bench/common.h"
#include "bench/nullfn.h"
#include "core/mem.h"

/* A row's note: "~T", its write time (wall-clock microseconds, 20 digits), a space, its sequence
 * number (10 digits), a space, dots: NOTE_LEN bytes. With the id, status and total the row holds
 * about 100 bytes of data. The head is found by its "~T" in the function's event and in the raw
 * pgoutput stream alike. */
#define NOTE_LEN       80
#define HEAD_LEN       32
#define MARK           "~T"
#define FN_NAME        "function"
#define PUBLICATION    "weir_bench"
#define STALL_LIMIT_US (30 * 1000000LL)
#define START_LIMIT_US (60 * 1000000LL)
#define MAX_BATCHES    4
#define DEFAULT_PG_BIN "/usr/lib/postgresql/15/bin"

struct options {
    long rows; /* workload 1: rows in one transaction */
    long txns; /* workload 2: one-row transactions */
    int batches[MAX_BATCHES];
    int n_batches;
    int lat_rate, lat_seconds;
    int parallelization; /* 0: weir's default (1), not written */
    bool latency;
    const char *weir_log_level;
    bool keep;
    char weir[PATH_MAX];
    char pg_bin[PATH_MAX - 32];
};

/* ---- the children killed on a signal ------------------------------------------------------- */

static volatile pid_t weir_pid_g = -1;
static volatile pid_t recv_pid_g = -1;
static volatile pid_t pm_pid_g = -1;
static char dirs_g[2][256]; /* removed on a signal: the work directory, the cluster's */

/* Everything here is async-signal-safe: the postmaster gets an immediate shutdown and is waited
 * for (its backends exit with it), then the directories are removed by rm. */
static void on_signal(int sig)
{
    if (weir_pid_g > 0)
        kill(weir_pid_g, SIGKILL);
    if (recv_pid_g > 0)
        kill(recv_pid_g, SIGKILL);
    if (pm_pid_g > 0) {
        kill(pm_pid_g, SIGQUIT);
        struct timespec tick = {0, 10000000};
        int i = 0;
        while (waitpid(pm_pid_g, NULL, WNOHANG) == 0 && i++ < 500)
            nanosleep(&tick, NULL);
        if (i > 500)
            kill(pm_pid_g, SIGKILL);
    }
    for (int d = 0; d < 2; d++) {
        if (!dirs_g[d][0])
            continue;
        pid_t rm = fork();
        if (rm == 0) {
            char *argv[] = {"rm", "-rf", dirs_g[d], NULL};
            execv("/bin/rm", argv);
            _exit(127);
        }
        if (rm > 0)
            waitpid(rm, NULL, 0);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* ---- notes ------------------------------------------------------------------------------------
 */

static long digits(const char *p, int n, bool *ok)
{
    long v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            *ok = false;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* p points after MARK. */
static bool parse_head(const char *p, size_t len, int64_t *write_us, long *seq)
{
    bool ok = len >= HEAD_LEN && p[20] == ' ' && p[31] == ' ';
    if (!ok)
        return false;
    *write_us = digits(p, 20, &ok);
    *seq = digits(p + 21, 10, &ok);
    return ok;
}

static void make_note(char out[NOTE_LEN + 1], int64_t write_us, long seq)
{
    int n = snprintf(out, NOTE_LEN + 1, MARK "%020" PRId64 " %010ld ", write_us, seq);
    memset(out + n, '.', (size_t)(NOTE_LEN - n));
    out[NOTE_LEN] = '\0';
}

/* ---- the tally: what a reader received --------------------------------------------------------
 */

/* Written by the reader under test (the null function's thread, or the thread reading
 * pg_recvlogical's output), read by the main thread. Sequence numbers 0..capacity-1. */
struct tally {
    pthread_mutex_t mu;
    long capacity;
    uint8_t *seen;
    long unique, dups, bad, records, invocations;
    long want;
    int64_t t_first_us, t_want_us;
    long inv_at_want;
    int64_t *lat; /* receipt - write, microseconds, by seq */
};

static void tally_reset(struct tally *t, long capacity, long want)
{
    pthread_mutex_lock(&t->mu);
    free(t->seen);
    free(t->lat);
    t->capacity = capacity;
    t->seen = weir_calloc((size_t)capacity / 8 + 1, 1);
    t->lat = weir_calloc((size_t)capacity + 1, sizeof *t->lat);
    t->unique = t->dups = t->bad = t->records = t->invocations = 0;
    t->want = want;
    t->t_first_us = t->t_want_us = 0;
    t->inv_at_want = 0;
    pthread_mutex_unlock(&t->mu);
}

static void tally_want(struct tally *t, long want)
{
    pthread_mutex_lock(&t->mu);
    t->want = want;
    pthread_mutex_unlock(&t->mu);
}

/* One record received at now; called with mu held. p points after MARK. */
static void tally_add(struct tally *t, const char *p, size_t len, int64_t now)
{
    int64_t wrote;
    long seq;
    t->records++;
    if (t->t_first_us == 0)
        t->t_first_us = now;
    if (!parse_head(p, len, &wrote, &seq) || seq < 0 || seq >= t->capacity) {
        t->bad++;
        return;
    }
    uint8_t bit = (uint8_t)(1u << (seq & 7));
    if (t->seen[seq >> 3] & bit) {
        t->dups++;
        return;
    }
    t->seen[seq >> 3] |= bit;
    t->unique++;
    t->lat[seq] = now - wrote;
    if (t->unique == t->want) {
        t->t_want_us = now;
        t->inv_at_want = t->invocations;
    }
}

struct tally_view {
    long unique, dups, bad, records, invocations, inv_at_want;
    int64_t t_first_us, t_want_us;
};

static struct tally_view tally_read(struct tally *t)
{
    pthread_mutex_lock(&t->mu);
    struct tally_view v = {t->unique,      t->dups,        t->bad,        t->records,
                           t->invocations, t->inv_at_want, t->t_first_us, t->t_want_us};
    pthread_mutex_unlock(&t->mu);
    return v;
}

static struct pct tally_latency(struct tally *t, long first, long n)
{
    pthread_mutex_lock(&t->mu);
    struct pct p = percentiles(t->lat + first, n);
    pthread_mutex_unlock(&t->mu);
    return p;
}

/* ---- the null function: an HTTP server on a thread of this process --------------------------- */

/* Answers every POST with 200 {} after counting the records of the DynamoDB Streams event. The
 * event is not parsed as JSON: each NewImage's note is found with memmem and only its head read,
 * so the function stays cheap. */
static void nullfn_handle(struct nullfn_req *req, const char *p, size_t len, void *arg)
{
    struct nullfn *f = arg;
    struct tally *t = f->arg;
    int64_t now = wall_us();
    const char *end = p + len;
    static const char needle[] = "\"note\":{\"S\":\"" MARK;
    const size_t nl = sizeof needle - 1;

    pthread_mutex_lock(&t->mu);
    t->invocations++;
    for (const char *hit = memmem(p, len, needle, nl); hit;) {
        const char *v = hit + nl;
        hit = memmem(v, (size_t)(end - v), needle, nl);
        tally_add(t, v, (size_t)(end - v), now);
    }
    pthread_mutex_unlock(&t->mu);
    nullfn_reply_ok(f, req);
}

/* ---- the cluster ------------------------------------------------------------------------------
 */

struct ctx {
    const struct options *o;
    char dir[192];    /* configurations, weir's logs and state */
    char pg_dir[224]; /* the cluster: data/, its socket and log; owned by postgres under root */
    char conninfo[256];
    char version[64];
    int port;
    pid_t pm;
    bool as_postgres; /* root: the cluster's programs run as the user postgres */
    uid_t uid;
    gid_t gid;
    PGconn *conn;
    struct tally t;
    struct nullfn fn;
};

/* Starts argv[0] with its output in log_path, as the user postgres when the benchmark is root
 * (initdb and postgres refuse root); it gets SIGQUIT (an immediate shutdown, for the postmaster)
 * when the benchmark dies. */
static pid_t spawn_pg(struct ctx *x, char *const argv[], const char *log_path)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0)
            dup2(null, 0);
        if (x->as_postgres &&
            (initgroups("postgres", x->gid) != 0 || setgid(x->gid) != 0 || setuid(x->uid) != 0)) {
            fprintf(stderr, "cannot become the user postgres: %s\n", strerror(errno));
            _exit(127);
        }
        /* After the change of user: a change of credentials clears it. */
        prctl(PR_SET_PDEATHSIG, SIGQUIT);
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

static void pg_path(const struct ctx *x, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", x->pg_dir, name);
}

static void bin_path(const struct ctx *x, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", x->o->pg_bin, name);
}

static int cluster_init(struct ctx *x)
{
    char initdb[PATH_MAX], data[300], log[300];
    bin_path(x, "initdb", initdb, sizeof initdb);
    pg_path(x, "data", data, sizeof data);
    pg_path(x, "initdb.log", log, sizeof log);
    char *argv[] = {initdb, "-D",   data,         "-U",        "postgres",          "-A", "trust",
                    "-E",   "UTF8", "--locale=C", "--no-sync", "--no-instructions", NULL};
    pid_t pid = spawn_pg(x, argv, log);
    int st = pid > 0 ? wait_child(pid, 120 * 1000000LL) : -1;
    if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        if (pid > 0 && st < 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
        say("initdb failed (see %s)", log);
        return -1;
    }
    return 0;
}

/* The server on a free loopback port and a socket in its directory; waits until it takes
 * connections. Retried on another port when the port was taken meanwhile. */
static int cluster_start(struct ctx *x)
{
    char postgres[PATH_MAX], data[300], log[300];
    bin_path(x, "postgres", postgres, sizeof postgres);
    pg_path(x, "data", data, sizeof data);
    pg_path(x, "postgres.log", log, sizeof log);
    for (int attempt = 0; attempt < 5; attempt++) {
        x->port = free_port();
        char port[32], sock[300];
        snprintf(port, sizeof port, "port=%d", x->port);
        snprintf(sock, sizeof sock, "unix_socket_directories=%s", x->pg_dir);
        char *argv[] = {postgres, "-D", data, "-c", "listen_addresses=127.0.0.1", "-c", port, "-c",
                        sock, "-c", "wal_level=logical", "-c", "max_replication_slots=10", "-c",
                        "max_wal_senders=10",
                        /* Every reader reads the same WAL: a benchmark need not survive a crash. */
                        "-c", "fsync=off",
                        /* Nothing but the readers works while they read (a vacuum of the new rows
                         * would take CPU from one run and not from another). */
                        "-c", "autovacuum=off", NULL};
        x->pm = spawn_pg(x, argv, log);
        if (x->pm < 0)
            return -1;
        pm_pid_g = x->pm;
        snprintf(x->conninfo, sizeof x->conninfo,
                 "host=127.0.0.1 port=%d user=postgres dbname=postgres", x->port);
        int64_t deadline = mono_us() + START_LIMIT_US;
        bool exited = false;
        while (mono_us() < deadline) {
            if (PQping(x->conninfo) == PQPING_OK)
                return 0;
            if (waitpid(x->pm, NULL, WNOHANG) == x->pm) {
                exited = true;
                break;
            }
            sleep_us(20000);
        }
        if (!exited) {
            say("postgres took no connection within %lld s (see %s)", START_LIMIT_US / 1000000,
                log);
            return -1;
        }
        x->pm = pm_pid_g = -1;
        say("postgres exited during start-up on port %d; trying another (see %s)", atoi(port + 5),
            log);
    }
    return -1;
}

/* A fast shutdown (clients disconnected, a checkpoint written); an immediate one if that hangs. */
static void cluster_stop(struct ctx *x)
{
    if (x->pm <= 0)
        return;
    kill(x->pm, SIGINT);
    if (wait_child(x->pm, 30 * 1000000LL) < 0) {
        kill(x->pm, SIGQUIT);
        if (wait_child(x->pm, 10 * 1000000LL) < 0) {
            kill(x->pm, SIGKILL);
            waitpid(x->pm, NULL, 0);
        }
    }
    x->pm = pm_pid_g = -1;
}

/* utime + stime (+ cutime + cstime with children) of pid, in clock ticks, and its parent; false
 * when it is gone. */
static bool proc_ticks(const char *pid, bool children, unsigned long long *ticks, int *ppid)
{
    char path[300], buf[1024];
    snprintf(path, sizeof path, "/proc/%s/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    long cut = 0, cst = 0;
    if (!p || sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %ld %ld", ppid, &ut,
                     &st, &cut, &cst) != 5)
        return false;
    *ticks = ut + st + (children ? (unsigned long long)cut + (unsigned long long)cst : 0);
    return true;
}

/* The CPU seconds of the whole server: the postmaster, its children alive now, and those it
 * reaped already (a walsender whose reader left). A child reaped while /proc is walked would count
 * twice or not at all: the walk is repeated until the postmaster reaped nothing during it. */
static double server_cpu(pid_t pm)
{
    char pm_s[16];
    snprintf(pm_s, sizeof pm_s, "%d", (int)pm);
    for (int attempt = 0; attempt < 20; attempt++) {
        unsigned long long before, after, kids = 0;
        int ppid;
        if (!proc_ticks(pm_s, true, &before, &ppid))
            return 0;
        DIR *d = opendir("/proc");
        if (!d)
            return 0;
        struct dirent *e;
        while ((e = readdir(d))) {
            unsigned long long t;
            if (e->d_name[0] >= '1' && e->d_name[0] <= '9' &&
                proc_ticks(e->d_name, false, &t, &ppid) && ppid == (int)pm)
                kids += t;
        }
        closedir(d);
        if (!proc_ticks(pm_s, true, &after, &ppid))
            return 0;
        if (after == before)
            return (double)(after + kids) / (double)sysconf(_SC_CLK_TCK);
    }
    return 0;
}

/* ---- SQL --------------------------------------------------------------------------------------
 */

static int sql(struct ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sql(struct ctx *x, const char *fmt, ...)
{
    char q[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof q, fmt, ap);
    va_end(ap);
    PGresult *res = PQexec(x->conn, q);
    ExecStatusType st = PQresultStatus(res);
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;
    if (rc != 0)
        say("SQL failed: %s: %s", q, PQresultErrorMessage(res));
    PQclear(res);
    return rc;
}

/* The first column of the first row of a query, into out ("" when none). */
static int sql_value(struct ctx *x, char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int sql_value(struct ctx *x, char *out, size_t len, const char *fmt, ...)
{
    char q[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof q, fmt, ap);
    va_end(ap);
    PGresult *res = PQexec(x->conn, q);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        say("SQL failed: %s: %s", q, PQresultErrorMessage(res));
        PQclear(res);
        return -1;
    }
    snprintf(out, len, "%s", PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    return 0;
}

static int db_setup(struct ctx *x)
{
    x->conn = PQconnectdb(x->conninfo);
    if (PQstatus(x->conn) != CONNECTION_OK) {
        say("connect %s: %s", x->conninfo, PQerrorMessage(x->conn));
        return -1;
    }
    if (sql_value(x, x->version, sizeof x->version, "SHOW server_version") != 0)
        return -1;
    return sql(x, "CREATE TABLE orders (id bigint PRIMARY KEY, status text NOT NULL, total "
                  "numeric(10,2) NOT NULL, note text NOT NULL)") ||
           /* Only UPDATE and DELETE write more for it; it spares weir's warning that an
            * UPDATE would have no OldImage. */
           sql(x, "ALTER TABLE orders REPLICA IDENTITY FULL") ||
           sql(x, "CREATE PUBLICATION " PUBLICATION " FOR TABLE orders");
}

/* No slot of a run before left, the table empty: the next slots see only the next writes. */
static int db_reset(struct ctx *x)
{
    return sql(x, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots") ||
           sql(x, "TRUNCATE orders") || sql(x, "CHECKPOINT");
}

/* What `pg_recvlogical --create-slot -P pgoutput` does. */
static int slot_create(struct ctx *x, const char *slot)
{
    return sql(x, "SELECT pg_create_logical_replication_slot('%s', 'pgoutput')", slot);
}

/* Waits until no walsender is left (the last reader's exits after it): the server's CPU is read
 * only then, as a process reaped during the reading would count twice or not at all. */
static int walsenders_gone(struct ctx *x)
{
    char n[16];
    int64_t deadline = mono_us() + 10 * 1000000LL;
    while (mono_us() < deadline) {
        if (sql_value(x, n, sizeof n,
                      "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender'") !=
            0)
            return -1;
        if (!strcmp(n, "0"))
            return 0;
        sleep_us(2000);
    }
    say("a walsender is still there 10 s after its reader left");
    return -1;
}

/* ---- the workloads ----------------------------------------------------------------------------
 */

enum workload { W_ONE_TXN, W_TXNS };

/* Rows 0..n-1 in one INSERT, so one transaction, every note stamped with the time it was sent. */
static int write_one_txn(struct ctx *x, long n)
{
    return sql(x,
               "INSERT INTO orders SELECT g, 'PAID', 10 + (g %% 9000) / 100.0, '" MARK
               "' || lpad('%" PRId64 "', 20, '0') || ' ' || lpad(g::text, 10, '0') || ' ' || "
               "repeat('.', %d) FROM generate_series(0, %ld) g",
               wall_us(), NOTE_LEN - 2 - HEAD_LEN, n - 1);
}

/* Rows first..first+n-1, one transaction each (autocommit), at rate rows/s (0: as fast as the
 * server commits them), each stamped with the wall clock just before it is sent. */
static int write_txns(struct ctx *x, long first, long n, int rate)
{
    PGresult *res =
        PQprepare(x->conn, "", "INSERT INTO orders VALUES ($1, 'PAID', $2, $3)", 3, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        say("prepare: %s", PQresultErrorMessage(res));
        PQclear(res);
        return -1;
    }
    PQclear(res);
    int64_t t0 = mono_us();
    for (long i = 0; i < n; i++) {
        long seq = first + i;
        if (rate > 0) {
            int64_t ahead = t0 + (int64_t)((double)i * 1e6 / rate) - mono_us();
            if (ahead > 0)
                sleep_us(ahead);
        }
        char id[24], total[24], note[NOTE_LEN + 1];
        snprintf(id, sizeof id, "%ld", seq);
        snprintf(total, sizeof total, "%ld.%02ld", 10 + seq % 9000 / 100, seq % 100);
        make_note(note, wall_us(), seq);
        const char *values[] = {id, total, note};
        res = PQexecPrepared(x->conn, "", 3, values, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            say("insert %ld: %s", seq, PQresultErrorMessage(res));
            PQclear(res);
            return -1;
        }
        PQclear(res);
    }
    return 0;
}

/* ---- waiting for a reader ---------------------------------------------------------------------
 */

/* Waits until the tally holds want distinct records. Fails when *child exits, when nothing
 * arrives within START_LIMIT_US, or nothing new for STALL_LIMIT_US. */
static int await_tally(struct ctx *x, long want, pid_t *child, const char *what)
{
    long last = -1;
    int64_t last_progress = mono_us();
    bool had_first = false;
    for (;;) {
        struct tally_view v = tally_read(&x->t);
        had_first = had_first || v.records > 0;
        if (v.unique >= want)
            return 0;
        if (v.unique != last) {
            last = v.unique;
            last_progress = mono_us();
        }
        int st;
        if (child && *child > 0 && waitpid(*child, &st, WNOHANG) == *child) {
            *child = -1;
            say("%s exited early (%s %d) with %ld of %ld records received", what,
                WIFEXITED(st) ? "status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
                v.unique, want);
            return -2;
        }
        int64_t limit = had_first ? STALL_LIMIT_US : START_LIMIT_US;
        if (mono_us() - last_progress > limit) {
            say("%s: no progress for %lld s: %ld of %ld records received (%ld unreadable)", what,
                (long long)(limit / 1000000), v.unique, want, v.bad);
            return -1;
        }
        sleep_us(1000);
    }
}

/* ---- figures ----------------------------------------------------------------------------------
 */

struct throughput {
    char label[64];
    double rps, ips;
    double total_s;         /* reader started -> everything received */
    double first_s, rest_s; /* weir: start -> first record; first -> last */
    double cpu_reader;      /* shares of total_s (1.0 = one core) */
    double cpu_server, cpu_fn;
    long dups, rss_kb, log_lines;
    int batch;
    bool raw, ran;
    long messages; /* the libpq reader: the pgoutput messages it read */
};

struct latency {
    char label[64];
    struct pct lat;
    long rss_kb;
    bool ran;
};

/* ---- the raw reader: pg_recvlogical -----------------------------------------------------------
 */

static void recv_argv(struct ctx *x, const char *slot, const char *endpos, const char *out,
                      char *bin, size_t bin_len, char *slot_arg, size_t slot_len, char *end_arg,
                      size_t end_len, char **argv)
{
    bin_path(x, "pg_recvlogical", bin, bin_len);
    snprintf(slot_arg, slot_len, "--slot=%s", slot);
    int a = 0;
    argv[a++] = bin;
    argv[a++] = "-d";
    argv[a++] = x->conninfo;
    argv[a++] = slot_arg;
    argv[a++] = "--start";
    if (endpos) {
        snprintf(end_arg, end_len, "--endpos=%s", endpos);
        argv[a++] = end_arg;
    }
    argv[a++] = "--no-loop";
    argv[a++] = "-o";
    argv[a++] = "proto_version=1";
    argv[a++] = "-o";
    argv[a++] = "publication_names=" PUBLICATION;
    argv[a++] = "-f";
    argv[a++] = (char *)out;
    argv[a] = NULL;
}

/* pg_recvlogical reads the slot's backlog to endpos (the WAL position after the writes) into
 * /dev/null and exits there: records/s from its start to its exit. */
static int run_raw(struct ctx *x, const char *slot, const char *endpos, long n,
                   struct throughput *r)
{
    char bin[PATH_MAX], slot_arg[96], end_arg[64], log[320], *argv[20];
    recv_argv(x, slot, endpos, "/dev/null", bin, sizeof bin, slot_arg, sizeof slot_arg, end_arg,
              sizeof end_arg, argv);
    snprintf(log, sizeof log, "%s/recvlogical-%s.log", x->dir, slot);
    if (walsenders_gone(x) != 0)
        return -1;
    double srv0 = server_cpu(x->pm);
    int64_t t0 = mono_us();
    pid_t pid = spawn(argv, log);
    if (pid < 0)
        return -1;
    recv_pid_g = pid;
    int st = 0;
    struct rusage ru;
    int64_t deadline = mono_us() + 10 * 60 * 1000000LL;
    pid_t w;
    while ((w = wait4(pid, &st, WNOHANG, &ru)) == 0 && mono_us() < deadline)
        sleep_us(200);
    int64_t t1 = mono_us();
    recv_pid_g = -1;
    if (w == pid && walsenders_gone(x) != 0)
        return -1;
    double srv1 = server_cpu(x->pm);
    if (w != pid) {
        say("%s: pg_recvlogical did not reach %s within 10 minutes (see %s)", r->label, endpos,
            log);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        say("%s: pg_recvlogical exited with %s %d (see %s)", r->label,
            WIFEXITED(st) ? "status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
            log);
        return -1;
    }
    /* What it read: the slot was confirmed to endpos. */
    char ok[8];
    if (sql_value(x, ok, sizeof ok,
                  "SELECT confirmed_flush_lsn >= '%s' FROM pg_replication_slots WHERE "
                  "slot_name = '%s'",
                  endpos, slot) != 0)
        return -1;
    if (strcmp(ok, "t") != 0)
        say("%s: note: slot %s is not confirmed to %s after pg_recvlogical's exit", r->label, slot,
            endpos);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    r->total_s = (double)(t1 - t0) / 1e6;
    r->rps = (double)n / r->total_s;
    r->cpu_reader = cpu / r->total_s;
    r->cpu_server = (srv1 - srv0) / r->total_s;
    r->raw = r->ran = true;
    say("%s: %.0f rec/s (%.3f s to reach %s)", r->label, r->rps, r->total_s, endpos);
    return 0;
}

static uint64_t get_u64(const char *at)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | (unsigned char)at[i];
    return v;
}

static void put_u64(char *at, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        at[i] = (char)(v & 0xff);
}

static bool lsn_parse(const char *s, uint64_t *lsn)
{
    unsigned hi, lo;
    if (sscanf(s, "%X/%X", &hi, &lo) != 2)
        return false;
    *lsn = (uint64_t)hi << 32 | lo;
    return true;
}

static double thread_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* The least a client can do: one libpq replication connection, START_REPLICATION with the same
 * options, every CopyData message taken with a blocking PQgetCopyData and dropped (Inserts
 * counted), until a message at or past endpos: pg_recvlogical without its output. */
static int run_libpq(struct ctx *x, const char *slot, const char *endpos, long n,
                     struct throughput *r)
{
    uint64_t end;
    if (!lsn_parse(endpos, &end) || walsenders_gone(x) != 0)
        return -1;
    char conninfo[320], q[256];
    snprintf(conninfo, sizeof conninfo, "%s replication=database", x->conninfo);
    snprintf(
        q, sizeof q,
        "START_REPLICATION SLOT %s LOGICAL 0/0 (proto_version '1', publication_names '" PUBLICATION
        "')",
        slot);
    double srv0 = server_cpu(x->pm), cpu0 = thread_cpu();
    int64_t t0 = mono_us();
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        say("%s: connect: %s", r->label, PQerrorMessage(c));
        PQfinish(c);
        return -1;
    }
    PGresult *res = PQexec(c, q);
    if (PQresultStatus(res) != PGRES_COPY_BOTH) {
        say("%s: %s: %s", r->label, q, PQresultErrorMessage(res));
        PQclear(res);
        PQfinish(c);
        return -1;
    }
    PQclear(res);
    long inserts = 0, messages = 0;
    int64_t t_first = 0;
    bool done = false;
    while (!done) {
        char *buf = NULL;
        int len = PQgetCopyData(c, &buf, 0);
        if (len < 0) {
            say("%s: the stream ended before %s: %s", r->label, endpos, PQerrorMessage(c));
            PQfinish(c);
            return -1;
        }
        if (len >= 25 && buf[0] == 'w') {
            if (!messages++)
                t_first = mono_us();
            inserts += buf[25] == 'I';
            done = get_u64(buf + 1) >= end;
        } else if (len >= 18 && buf[0] == 'k') {
            uint64_t wal_end = get_u64(buf + 1);
            done = wal_end >= end;
            if (buf[17] && !done) {
                char reply[34] = {'r'};
                put_u64(reply + 1, wal_end);
                put_u64(reply + 9, 0);
                put_u64(reply + 17, 0);
                put_u64(reply + 25, 0);
                if (PQputCopyData(c, reply, sizeof reply) != 1 || PQflush(c) != 0)
                    say("%s: a status update failed: %s", r->label, PQerrorMessage(c));
            }
        }
        PQfreemem(buf);
    }
    int64_t t1 = mono_us();
    double cpu1 = thread_cpu();
    PQfinish(c);
    if (walsenders_gone(x) != 0)
        return -1;
    double srv1 = server_cpu(x->pm);
    if (inserts != n) {
        say("INVALID: %s read %ld inserts to %s, not %ld", r->label, inserts, endpos, n);
        return -1;
    }
    r->total_s = (double)(t1 - t0) / 1e6;
    r->rps = (double)n / r->total_s;
    r->cpu_reader = (cpu1 - cpu0) / r->total_s;
    r->cpu_server = (srv1 - srv0) / r->total_s;
    r->messages = messages;
    r->first_s = (double)(t_first - t0) / 1e6;
    r->rest_s = (double)(t1 - t_first) / 1e6;
    r->raw = r->ran = true;
    say("%s: %.0f rec/s (%.3f s to reach %s; %ld messages)", r->label, r->rps, r->total_s, endpos,
        messages);
    return 0;
}

/* ---- weir -------------------------------------------------------------------------------------
 */

static int weir_start(struct ctx *x, const char *label, const char *slot, int batch, pid_t *pid,
                      char *log, size_t log_len)
{
    char cfg[320];
    snprintf(cfg, sizeof cfg, "%s/weir-%s.yaml", x->dir, label);
    snprintf(log, log_len, "%s/weir-%s.log", x->dir, label);
    FILE *f = fopen(cfg, "w");
    if (!f) {
        say("%s: %s", cfg, strerror(errno));
        return -1;
    }
    fprintf(f,
            "state_dir: %s/state-%s\n"
            "functions:\n"
            "  - name: " FN_NAME "\n"
            "    url: http://127.0.0.1:%d/2015-03-31/functions/" FN_NAME "/invocations\n"
            "    timeout: 30\n"
            "mappings:\n"
            "  - name: %s\n"
            "    source: postgres://postgres@127.0.0.1:%d/postgres\n"
            "    function: " FN_NAME "\n"
            "    tables: [orders]\n"
            "    publication_name: " PUBLICATION "\n"
            "    slot_name: %s\n"
            "    batch_size: %d\n",
            x->dir, label, x->fn.port, label, x->port, slot, batch);
    if (x->o->parallelization > 0)
        fprintf(f, "    parallelization_factor: %d\n", x->o->parallelization);
    fclose(f);
    char *argv[] = {(char *)x->o->weir,           "run", "-c", cfg, "--log-level",
                    (char *)x->o->weir_log_level, NULL};
    *pid = spawn(argv, log);
    if (*pid < 0) {
        say("cannot start %s: %s", x->o->weir, strerror(errno));
        return -1;
    }
    weir_pid_g = *pid;
    return 0;
}

/* SIGTERM, and weir must exit 0 (it confirms what is done and closes the stream first). */
static int weir_stop(pid_t *pid)
{
    int rc = weir_sigterm(*pid);
    *pid = -1;
    weir_pid_g = -1;
    return rc;
}

static void weir_kill(pid_t *pid)
{
    if (*pid > 0) {
        kill(*pid, SIGKILL);
        waitpid(*pid, NULL, 0);
    }
    *pid = -1;
    weir_pid_g = -1;
}

/* weir reads the slot's backlog at one batch size: records/s from weir's start to the function's
 * receipt of the n-th distinct record. */
static int run_weir(struct ctx *x, const char *slot, long n, struct throughput *r)
{
    char label[64], log[320];
    pid_t pid = -1;
    snprintf(label, sizeof label, "%s", slot);
    tally_reset(&x->t, n, n);
    if (walsenders_gone(x) != 0)
        return -1;
    double srv0 = server_cpu(x->pm), fn0 = nullfn_cpu(&x->fn);
    int64_t t0 = wall_us();
    if (weir_start(x, label, slot, r->batch, &pid, log, sizeof log) != 0)
        return -1;
    if (await_tally(x, n, &pid, "weir") != 0)
        goto fail;
    double cpu_weir = pid_cpu(pid), srv1 = server_cpu(x->pm), fn1 = nullfn_cpu(&x->fn);
    struct tally_view v = tally_read(&x->t);
    r->total_s = (double)(v.t_want_us - t0) / 1e6;
    r->first_s = (double)(v.t_first_us - t0) / 1e6;
    r->rest_s = (double)(v.t_want_us - v.t_first_us) / 1e6;
    r->rps = (double)n / r->total_s;
    r->ips = (double)v.inv_at_want / r->total_s;
    /* Read a few ms after the last record: a share of the interval, close enough. */
    r->cpu_reader = cpu_weir / r->total_s;
    r->cpu_server = (srv1 - srv0) / r->total_s;
    r->cpu_fn = (fn1 - fn0) / r->total_s;
    /* A record delivered twice shows soon after; give it a moment. */
    sleep_us(1000000);
    v = tally_read(&x->t);
    r->dups = v.dups;
    if (v.bad) {
        say("the function received %ld records it could not read", v.bad);
        goto fail;
    }
    r->rss_kb = peak_rss_kb(pid);
    if (weir_stop(&pid) != 0)
        goto fail;
    r->log_lines = log_problems(log, false);
    r->ran = true;
    say("%s: %.0f rec/s, %.0f inv/s (first record %.3f s after start, the last %.3f s after it)",
        r->label, r->rps, r->ips, r->first_s, r->rest_s);
    return 0;
fail:
    weir_kill(&pid);
    log_problems(log, true);
    return -1;
}

/* ---- one workload, read by every reader --------------------------------------------------------
 */

struct result {
    char title[96];
    long n;
    double write_s;
    struct throughput raw[2]; /* pg_recvlogical, before and after weir */
    struct throughput lib[2]; /* the libpq reader, before and after weir */
    struct throughput w[MAX_BATCHES];
};

static void slot_name(char *out, size_t len, const char *kind, int i)
{
    snprintf(out, len, "bench_%s%d", kind, i);
}

/* Every reader's slot is made before the writes, so each reads the same changes as a backlog: raw
 * before weir, weir at each batch size, raw again after (the better raw is the reference). */
static int run_workload(struct ctx *x, enum workload kind, struct result *res)
{
    const struct options *o = x->o;
    long n = kind == W_ONE_TXN ? o->rows : o->txns;
    res->n = n;
    char slot[64], endpos[32];
    if (db_reset(x) != 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        slot_name(slot, sizeof slot, "raw", i);
        if (slot_create(x, slot) != 0)
            return -1;
        slot_name(slot, sizeof slot, "lib", i);
        if (slot_create(x, slot) != 0)
            return -1;
    }
    for (int i = 0; i < o->n_batches; i++) {
        slot_name(slot, sizeof slot, "w", o->batches[i]);
        if (slot_create(x, slot) != 0)
            return -1;
    }
    say("%s: writing", res->title);
    int64_t t0 = mono_us();
    if ((kind == W_ONE_TXN ? write_one_txn(x, n) : write_txns(x, 0, n, 0)) != 0)
        return -1;
    res->write_s = (double)(mono_us() - t0) / 1e6;
    if (sql_value(x, endpos, sizeof endpos, "SELECT pg_current_wal_lsn()") != 0)
        return -1;
    say("%s: written in %.2f s (%.0f rows/s); WAL end %s", res->title, res->write_s,
        (double)n / res->write_s, endpos);

    snprintf(res->raw[0].label, sizeof res->raw[0].label, "pg_recvlogical, before weir");
    snprintf(res->raw[1].label, sizeof res->raw[1].label, "pg_recvlogical, after weir");
    snprintf(res->lib[0].label, sizeof res->lib[0].label, "libpq reader, before weir");
    snprintf(res->lib[1].label, sizeof res->lib[1].label, "libpq reader, after weir");
    slot_name(slot, sizeof slot, "raw", 0);
    if (run_raw(x, slot, endpos, n, &res->raw[0]) != 0)
        return -1;
    slot_name(slot, sizeof slot, "lib", 0);
    if (run_libpq(x, slot, endpos, n, &res->lib[0]) != 0)
        return -1;
    for (int i = 0; i < o->n_batches; i++) {
        struct throughput *r = &res->w[i];
        r->batch = o->batches[i];
        snprintf(r->label, sizeof r->label, "weir, batch %d", r->batch);
        slot_name(slot, sizeof slot, "w", r->batch);
        if (run_weir(x, slot, n, r) != 0)
            return -1;
    }
    slot_name(slot, sizeof slot, "raw", 1);
    if (run_raw(x, slot, endpos, n, &res->raw[1]) != 0)
        return -1;
    slot_name(slot, sizeof slot, "lib", 1);
    return run_libpq(x, slot, endpos, n, &res->lib[1]);
}

/* ---- latency ----------------------------------------------------------------------------------
 */

struct pipe_reader {
    struct ctx *x;
    int fd;
};

/* Reads pg_recvlogical's output (the pgoutput messages as the server sent them) and counts each
 * note it finds, as the null function does for weir. A head cut by a read is kept for the next. */
static void *pipe_read(void *arg)
{
    struct pipe_reader *pr = arg;
    struct tally *t = &pr->x->t;
    char buf[65536 + 64];
    size_t kept = 0;
    for (;;) {
        ssize_t n = read(pr->fd, buf + kept, sizeof buf - kept);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        int64_t now = wall_us();
        size_t len = kept + (size_t)n;
        const char *p = buf, *end = buf + len;
        size_t safe = len; /* bytes fully looked at */
        pthread_mutex_lock(&t->mu);
        for (const char *hit = memmem(p, len, MARK, 2); hit;
             hit = memmem(hit + 2, (size_t)(end - hit - 2), MARK, 2)) {
            if (end - hit - 2 < HEAD_LEN) {
                safe = (size_t)(hit - buf);
                break;
            }
            int64_t wrote;
            long seq;
            /* A "~T" in a binary field is no note: skipped, not counted. */
            if (parse_head(hit + 2, HEAD_LEN, &wrote, &seq))
                tally_add(t, hit + 2, HEAD_LEN, now);
        }
        pthread_mutex_unlock(&t->mu);
        if (safe == len)
            safe = len > 1 ? len - 1 : len; /* a lone '~' at the end may start a mark */
        kept = len - safe;
        memmove(buf, buf + safe, kept);
    }
    return NULL;
}

/* One warm-up row, until the reader has it (it is connected and caught up), then rows at the
 * steady rate, each write -> receipt. Rows numbered from 0 (the warm-up) on. */
static int pace(struct ctx *x, pid_t *child, const char *what, struct latency *l)
{
    long n = (long)x->o->lat_rate * x->o->lat_seconds;
    tally_reset(&x->t, n + 1, 1);
    if (write_txns(x, 0, 1, 0) != 0 || await_tally(x, 1, child, what) != 0)
        return -1;
    tally_want(&x->t, n + 1);
    if (write_txns(x, 1, n, x->o->lat_rate) != 0 || await_tally(x, n + 1, child, what) != 0)
        return -1;
    l->lat = tally_latency(&x->t, 1, n);
    l->ran = true;
    return 0;
}

static int lat_raw(struct ctx *x, struct latency *l)
{
    char bin[PATH_MAX], slot_arg[96], end_arg[64], log[320], *argv[20];
    if (db_reset(x) != 0 || slot_create(x, "bench_lraw") != 0)
        return -1;
    recv_argv(x, "bench_lraw", NULL, "-", bin, sizeof bin, slot_arg, sizeof slot_arg, end_arg,
              sizeof end_arg, argv);
    snprintf(log, sizeof log, "%s/recvlogical-latency.log", x->dir);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fds[1], 1);
        if (fd >= 0)
            dup2(fd, 2);
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    recv_pid_g = pid;
    close(fds[1]);
    struct pipe_reader pr = {.x = x, .fd = fds[0]};
    pthread_t th;
    pthread_create(&th, NULL, pipe_read, &pr);
    int rc = pace(x, &pid, "pg_recvlogical", l);
    if (pid > 0) {
        kill(pid, SIGINT);
        if (wait_child(pid, 10 * 1000000LL) < 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
    }
    recv_pid_g = -1;
    pthread_join(th, NULL);
    close(fds[0]);
    return rc;
}

static int lat_weir(struct ctx *x, int batch, struct latency *l)
{
    char label[48], slot[64], log[320];
    pid_t pid = -1;
    snprintf(slot, sizeof slot, "bench_lw%d", batch);
    snprintf(label, sizeof label, "lat-b%d", batch);
    if (db_reset(x) != 0 || slot_create(x, slot) != 0)
        return -1;
    if (weir_start(x, label, slot, batch, &pid, log, sizeof log) != 0)
        return -1;
    if (pace(x, &pid, "weir", l) != 0)
        goto fail;
    l->rss_kb = peak_rss_kb(pid);
    if (weir_stop(&pid) != 0)
        goto fail;
    return 0;
fail:
    l->ran = false;
    weir_kill(&pid);
    log_problems(log, true);
    return -1;
}

/* ---- the report -------------------------------------------------------------------------------
 */

static double better(const struct throughput r[2])
{
    double a = r[0].ran ? r[0].rps : 0, b = r[1].ran ? r[1].rps : 0;
    return a > b ? a : b;
}

static void report(const struct ctx *x, const struct result *res, int n_res,
                   const struct latency *lat, int n_lat, double load0)
{
    const struct options *o = x->o;
    printf("\nweir postgres benchmark  Postgres %s (fsync=off, autovacuum=off), pgoutput "
           "proto_version 1  cores=%ld  load average %.2f before, %.2f after\n",
           x->version, sysconf(_SC_NPROCESSORS_ONLN), load0, loadavg());
    printf("table orders(id bigint primary key, status text, total numeric(10,2), note text): "
           "about 100 bytes of data a row; every reader's slot made before the writes, so each "
           "reads the same WAL as a backlog\n");
    printf("weir: window 0 (the default), parallelization_factor %d%s\n\n",
           o->parallelization ? o->parallelization : 1,
           o->parallelization ? "" : " (the default: one batch in flight)");
    printf("%-32s %-28s %9s %6s %6s %8s  %s\n", "workload", "reader (start -> last record)",
           "rec/s", "to pgr", "to lib", "seconds", "cpu: reader / server / function; notes");
    for (int k = 0; k < n_res; k++) {
        const struct result *rs = &res[k];
        double pgr = better(rs->raw), lib = better(rs->lib);
        bool first = true;
        const struct throughput *order[4 + MAX_BATCHES];
        int m = 0;
        order[m++] = &rs->raw[0];
        order[m++] = &rs->lib[0];
        for (int i = 0; i < o->n_batches; i++)
            order[m++] = &rs->w[i];
        order[m++] = &rs->raw[1];
        order[m++] = &rs->lib[1];
        for (int i = 0; i < m; i++) {
            const struct throughput *r = order[i];
            if (!r->ran)
                continue;
            printf("%-32s %-28s %9.0f %6.2f %6.2f %8.3f  ", first ? rs->title : "", r->label,
                   r->rps, r->rps / pgr, r->rps / lib, r->total_s);
            first = false;
            if (r->raw && r->messages)
                printf("%3.0f%% / %3.0f%%; %ld messages; the first after %.3f s, the rest in "
                       "%.3f s\n",
                       100 * r->cpu_reader, 100 * r->cpu_server, r->messages, r->first_s,
                       r->rest_s);
            else if (r->raw)
                printf("%3.0f%% / %3.0f%%\n", 100 * r->cpu_reader, 100 * r->cpu_server);
            else
                printf("%3.0f%% / %3.0f%% / %3.0f%%; %.0f inv/s, %.0f records each; first "
                       "record after %.3f s, the rest in %.3f s; peak RSS %.1f MB; duplicates "
                       "%ld\n",
                       100 * r->cpu_reader, 100 * r->cpu_server, 100 * r->cpu_fn, r->ips,
                       r->ips > 0 ? r->rps / r->ips : 0, r->first_s, r->rest_s,
                       (double)r->rss_kb / 1024.0, r->dups);
        }
        printf("%-32s (written in %.2f s: %.0f rows/s; ratios to the better of each raw "
               "reader's two runs: pg_recvlogical %.0f rec/s, libpq reader %.0f rec/s)\n",
               "", rs->write_s, (double)rs->n / rs->write_s, pgr, lib);
    }
    if (n_lat > 0) {
        printf("\nlatency, write -> receipt, %d one-row transactions/s for %d s while caught up "
               "(n=%ld each):\n",
               o->lat_rate, o->lat_seconds, (long)o->lat_rate * o->lat_seconds);
        for (int i = 0; i < n_lat; i++) {
            const struct latency *l = &lat[i];
            if (!l->ran)
                continue;
            printf("  %-40s p50 %8.2f ms  p99 %8.2f ms  max %8.1f ms", l->label, l->lat.p50_ms,
                   l->lat.p99_ms, l->lat.max_ms);
            if (l->rss_kb > 0)
                printf("  peak RSS %.1f MB", (double)l->rss_kb / 1024.0);
            printf("\n");
        }
    }
    for (int k = 0; k < n_res; k++)
        for (int i = 0; i < o->n_batches; i++)
            if (res[k].w[i].ran && res[k].w[i].log_lines > 0)
                printf("note: weir logged %ld warning/error line%s (%s, %s)\n",
                       res[k].w[i].log_lines, res[k].w[i].log_lines == 1 ? "" : "s", res[k].title,
                       res[k].w[i].label);
    printf("\ngoal: weir >= 0.8 x pg_recvlogical (the better of its two runs)\n");
    for (int k = 0; k < n_res; k++)
        for (int i = 0; i < o->n_batches; i++) {
            const struct throughput *r = &res[k].w[i];
            if (!r->ran)
                continue;
            double ratio = r->rps / better(res[k].raw);
            printf("  %-32s batch %-5d %.2f  %-11s (%.2f x the libpq reader)\n", res[k].title,
                   r->batch, ratio, ratio >= 0.8 ? "goal met" : "goal missed",
                   r->rps / better(res[k].lib));
        }
}

/* ---- main -------------------------------------------------------------------------------------
 */

static void usage(FILE *out)
{
    fputs("usage: bench_postgres [--rows N] [--txns N] [--batch-sizes 100,1000]\n"
          "                      [--latency-rate ROWS_PER_S] [--latency-seconds S] [--no-latency]\n"
          "                      [--parallelization-factor N]\n"
          "                      [--weir PATH] [--pg-bin DIR] [--weir-log-level LEVEL] [--keep]\n",
          out);
}

static void beside_self(const char *name, char *out, size_t len)
{
    char self[PATH_MAX - 32];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        snprintf(out, len, "%s", name);
        return;
    }
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = 0;
    snprintf(out, len, "%s/%s", self, name);
}

static int parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"rows", required_argument, NULL, 'r'},
        {"txns", required_argument, NULL, 't'},
        {"batch-sizes", required_argument, NULL, 'b'},
        {"latency-rate", required_argument, NULL, 'R'},
        {"latency-seconds", required_argument, NULL, 'S'},
        {"no-latency", no_argument, NULL, 'N'},
        {"parallelization-factor", required_argument, NULL, 'p'},
        {"weir", required_argument, NULL, 'w'},
        {"pg-bin", required_argument, NULL, 'P'},
        {"weir-log-level", required_argument, NULL, 'L'},
        {"keep", no_argument, NULL, 'K'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (struct options){.rows = 100000,
                          .txns = 10000,
                          .batches = {100, 1000},
                          .n_batches = 2,
                          .lat_rate = 1000,
                          .lat_seconds = 5,
                          .latency = true,
                          .weir_log_level = "info",
                          .pg_bin = DEFAULT_PG_BIN};
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'r':
            o->rows = strtol(optarg, NULL, 10);
            break;
        case 't':
            o->txns = strtol(optarg, NULL, 10);
            break;
        case 'b':
            o->n_batches = parse_int_list(optarg, o->batches, MAX_BATCHES);
            break;
        case 'R':
            o->lat_rate = atoi(optarg);
            break;
        case 'S':
            o->lat_seconds = atoi(optarg);
            break;
        case 'N':
            o->latency = false;
            break;
        case 'p':
            o->parallelization = atoi(optarg);
            break;
        case 'w':
            snprintf(o->weir, sizeof o->weir, "%s", optarg);
            break;
        case 'P':
            snprintf(o->pg_bin, sizeof o->pg_bin, "%s", optarg);
            break;
        case 'L':
            o->weir_log_level = optarg;
            break;
        case 'K':
            o->keep = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (o->rows < 0 || o->rows > 100000000 || o->txns < 0 || o->txns > 100000000 ||
        o->rows + o->txns == 0 || o->n_batches < 1 || o->lat_rate < 1 || o->lat_seconds < 1 ||
        o->parallelization < 0 || o->parallelization > 10) {
        usage(stderr);
        return -1;
    }
    for (int i = 0; i < o->n_batches; i++)
        if (o->batches[i] < 1 || o->batches[i] > 10000) {
            fprintf(stderr, "bench_postgres: batch sizes are 1..10000 (AWS's range for DynamoDB "
                            "Streams)\n");
            return -1;
        }
    if (!o->weir[0])
        beside_self("weir", o->weir, sizeof o->weir);
    return 0;
}

/* The work directory; under root the cluster gets one of its own in /tmp, owned by postgres (the
 * work directory may sit where postgres cannot reach). */
static int make_dirs(struct ctx *x)
{
    const char *tmp =
        getenv("TMPDIR") && strlen(getenv("TMPDIR")) < 150 ? getenv("TMPDIR") : "/tmp";
    snprintf(x->dir, sizeof x->dir, "%s/weir-bench-postgres-XXXXXX", tmp);
    if (!mkdtemp(x->dir)) {
        say("mkdtemp %s: %s", x->dir, strerror(errno));
        return -1;
    }
    snprintf(dirs_g[0], sizeof dirs_g[0], "%s", x->dir);
    if (geteuid() != 0) {
        snprintf(x->pg_dir, sizeof x->pg_dir, "%s/pg", x->dir);
        if (mkdir(x->pg_dir, 0700) != 0) {
            say("mkdir %s: %s", x->pg_dir, strerror(errno));
            return -1;
        }
        return 0;
    }
    struct passwd *pw = getpwnam("postgres");
    if (!pw) {
        say("running as root, and there is no user postgres to run the server as (scripts/setup.sh "
            "installs postgresql-15)");
        return -1;
    }
    x->as_postgres = true;
    x->uid = pw->pw_uid;
    x->gid = pw->pw_gid;
    snprintf(x->pg_dir, sizeof x->pg_dir, "/tmp/weir-bench-pg-XXXXXX");
    if (!mkdtemp(x->pg_dir)) {
        say("mkdtemp %s: %s", x->pg_dir, strerror(errno));
        return -1;
    }
    snprintf(dirs_g[1], sizeof dirs_g[1], "%s", x->pg_dir);
    if (chown(x->pg_dir, x->uid, x->gid) != 0) {
        say("chown %s: %s", x->pg_dir, strerror(errno));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct options o;
    if (parse_args(argc, argv, &o) != 0)
        return 2;
    char need[3][PATH_MAX];
    snprintf(need[0], sizeof need[0], "%s", o.weir);
    snprintf(need[1], sizeof need[1], "%s/postgres", o.pg_bin);
    snprintf(need[2], sizeof need[2], "%s/pg_recvlogical", o.pg_bin);
    for (int i = 0; i < 3; i++)
        if (access(need[i], X_OK) != 0) {
            fprintf(stderr,
                    "bench_postgres: %s: %s (build weir, install postgresql-15, or pass "
                    "--weir and --pg-bin)\n",
                    need[i], strerror(errno));
            return 2;
        }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);

    struct ctx x = {.o = &o, .pm = -1};
    pthread_mutex_init(&x.t.mu, NULL);
    struct result res[2];
    memset(res, 0, sizeof res);
    struct latency lat[1 + MAX_BATCHES];
    memset(lat, 0, sizeof lat);
    int n_res = 0, n_lat = 0, rc = 1;
    bool fn_up = false;
    double load0 = loadavg();

    if (make_dirs(&x) != 0 || cluster_init(&x) != 0 || cluster_start(&x) != 0 || db_setup(&x) != 0)
        goto out;
    if (nullfn_start(&x.fn, NULLFN_LEAN, nullfn_handle, &x.t) != 0)
        goto out;
    fn_up = true;
    say("postgres %s (pid %d) on 127.0.0.1:%d, data in %s/data; null function on port %d; weir %s",
        x.version, (int)x.pm, x.port, x.pg_dir, x.fn.port, o.weir);

    if (o.rows > 0) {
        snprintf(res[n_res].title, sizeof res[n_res].title, "%ld rows, one transaction", o.rows);
        if (run_workload(&x, W_ONE_TXN, &res[n_res++]) != 0)
            goto out;
    }
    if (o.txns > 0) {
        snprintf(res[n_res].title, sizeof res[n_res].title, "%ld one-row transactions", o.txns);
        if (run_workload(&x, W_TXNS, &res[n_res++]) != 0)
            goto out;
    }
    if (o.latency) {
        say("latency runs: %d one-row transactions/s for %d s, each reader caught up", o.lat_rate,
            o.lat_seconds);
        snprintf(lat[n_lat].label, sizeof lat[n_lat].label, "pg_recvlogical (into a pipe)");
        if (lat_raw(&x, &lat[n_lat++]) != 0)
            goto out;
        for (int i = 0; i < o.n_batches; i++) {
            snprintf(lat[n_lat].label, sizeof lat[n_lat].label, "weir, batch %d", o.batches[i]);
            if (lat_weir(&x, o.batches[i], &lat[n_lat++]) != 0)
                goto out;
        }
    }
    report(&x, res, n_res, lat, n_lat, load0);
    rc = 0;
out:
    if (x.conn)
        PQfinish(x.conn);
    if (fn_up)
        nullfn_stop(&x.fn);
    cluster_stop(&x);
    free(x.t.seen);
    free(x.t.lat);
    pthread_mutex_destroy(&x.t.mu);
    /* The cluster goes whatever happened; logs stay on failure and with --keep. */
    char data[300];
    pg_path(&x, "data", data, sizeof data);
    if (x.pg_dir[0] && !o.keep)
        nftw(data, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (rc == 0 && !o.keep) {
        nftw(x.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        if (x.as_postgres)
            nftw(x.pg_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    } else if (x.dir[0]) {
        say("%s; logs kept in %s%s%s", rc == 0 ? "done" : "failed", x.dir,
            x.as_postgres ? " and " : "", x.as_postgres ? x.pg_dir : "");
    }
    return rc;
}
