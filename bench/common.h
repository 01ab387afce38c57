/* What the benchmarks share: time, children (spawned with their output in a log, dying with the
 * benchmark), their CPU and memory from /proc, a free loopback port, percentiles. Header-only,
 * each benchmark being one program; it must never measure anything itself. */
#ifndef WEIR_BENCH_COMMON_H
#define WEIR_BENCH_COMMON_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- time and processes ---------------------------------------------------------------------- */

static inline int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline void sleep_us(int64_t us)
{
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static inline void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Waits up to timeout_us for pid; returns its wait status, or -1 if it is still running. */
static inline int wait_child(pid_t pid, int64_t timeout_us)
{
    int64_t deadline = mono_us() + timeout_us;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        if (r < 0)
            return 0;
        if (mono_us() > deadline)
            return -1;
        sleep_us(2000);
    }
}

/* Starts argv[0] with stdout and stderr to log_path; the child dies with the benchmark. */
static inline pid_t spawn(char *const argv[], const char *log_path)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execvp(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

/* SIGTERM to a weir the benchmark started, which must exit 0 within 20 s (it settles what is
 * done and closes its source first); SIGKILL after that. 0 when it did. */
static inline int weir_sigterm(pid_t pid)
{
    kill(pid, SIGTERM);
    int st = wait_child(pid, 20 * 1000000LL);
    if (st < 0) {
        say("weir did not stop within 20 s of SIGTERM");
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        say("weir exited with %s %d", WIFEXITED(st) ? "status" : "signal",
            WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        return -1;
    }
    return 0;
}

/* Warning and error lines in weir's log at path; print: every line of it to stderr. */
static inline long log_problems(const char *path, bool print)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[1024];
    long n = 0;
    while (fgets(line, sizeof line, f)) {
        bool bad = strstr(line, "WARN") || strstr(line, "ERROR") || strstr(line, "warn ") ||
                   strstr(line, "error ");
        if (print)
            fprintf(stderr, "  weir| %s", line);
        n += bad;
    }
    fclose(f);
    return n;
}

/* utime + stime of a process or thread, in seconds, from its /proc stat file. */
static inline double cpu_seconds(const char *stat_path)
{
    char buf[1024];
    FILE *f = fopen(stat_path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    /* The command name may hold spaces: fields are counted after its closing parenthesis. */
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    unsigned long utime = 0, stime = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return 0;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static inline double pid_cpu(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    return cpu_seconds(path);
}

/* VmHWM (peak resident set) of pid in kB, or -1. */
static inline long peak_rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static inline int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static inline int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

/* The 1-minute load average, -1 when unknown: a busy machine's figures say so. */
static inline double loadavg(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1;
        fclose(f);
    }
    return l;
}

/* ---- figures --------------------------------------------------------------------------------- */

static inline int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

struct pct {
    double p50_ms, p99_ms, max_ms;
    long n;
};

/* Nearest-rank percentiles of v (sorted in place). */
static inline struct pct percentiles(int64_t *v, long n)
{
    struct pct p = {0};
    if (n <= 0)
        return p;
    qsort(v, (size_t)n, sizeof *v, cmp_i64);
    long i50 = (n * 50 + 99) / 100 - 1, i99 = (n * 99 + 99) / 100 - 1;
    p.p50_ms = (double)v[i50] / 1000.0;
    p.p99_ms = (double)v[i99] / 1000.0;
    p.max_ms = (double)v[n - 1] / 1000.0;
    p.n = n;
    return p;
}

/* A comma-separated list of integers ("100,1000") into out, at most max of them; how many. */
static inline int parse_int_list(const char *text, int *out, int max)
{
    int n = 0;
    for (const char *at = text; *at && n < max;) {
        out[n++] = atoi(at);
        const char *comma = strchr(at, ',');
        if (!comma)
            break;
        at = comma + 1;
    }
    return n;
}

#endif
