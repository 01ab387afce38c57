/* Exec function target: runs a function's command as a child process (argv, no shell), the
 * event on its stdin, the result from its stdout, its stderr left as weir's own.
 * Owns each child from spawn to reap and the pipes to it. It must never block the loop (not even
 * on a killed child), never leave a zombie while the loop runs, and never judge the result: that
 * is the dispatcher's. */
#define _GNU_SOURCE /* pipe2, posix_spawn_file_actions_addclosefrom_np */
#include "connectors/target.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/list.h"
#include "core/log.h"
#include "core/mem.h"

#define COMPONENT "target.exec"

extern char **environ;

/* What the exec targets of one event_base share: the SIGCHLD event, the children not yet
 * reaped, and the pids of killed children whose invocation is gone and whose reap is still to
 * come (orphans).
 *
 * No waitpid here ever blocks: a child in uninterruptible sleep does not die of SIGKILL until it
 * wakes, and the loop must not wait for it. So when the last target of a loop is freed while
 * orphans are still unreaped, the loop stays (refs 0, "draining"), still watching SIGCHLD, and
 * frees itself from on_sigchld once the last orphan is reaped: no zombie is left while the event
 * base runs. If the base is freed first, libevent gives no notice of it: the draining loop can
 * then be neither freed (event_free would touch the freed base) nor handed to a new target (a
 * new base may get the freed one's address). It stays on `loops`, never touched again, still
 * referenced (one small struct per base freed that way; weir frees its base only on its way
 * out), and its orphans, already sent SIGKILL, are left to the process: init reaps them when
 * weir exits. */
struct exec_loop {
    struct event_base *base;
    struct event *sigchld;
    struct weir_list children; /* invocations whose child is not reaped yet (inv->child) */
    pid_t *orphans;            /* killed by cancel or free, waiting to be reaped */
    size_t n_orphans, cap_orphans;
    int refs; /* targets using it; 0 while it only drains orphans */
    struct exec_loop *next;
};

/* weir runs one loop thread; a plain list finds a base's shared state. */
static struct exec_loop *loops;

struct weir_target {
    struct exec_loop *el;
    char *name;
    char **argv; /* copied from the function's command, NULL-terminated */
    size_t argc;
    char *program;         /* argv[0] as found on PATH; NULL until found */
    struct weir_list invs; /* running, so free can cancel them (inv->in_target) */
};

struct weir_invocation {
    struct weir_target *t;
    pid_t pid; /* 0 when the spawn failed */
    int in_fd; /* our ends of the pipes; -1 once closed */
    int out_fd;
    struct event *in_ev, *out_ev, *timer;
    struct event *complete; /* reports the result from the loop, once everything is settled */
    const char *payload;    /* borrowed until done or cancel */
    size_t len, off;
    int64_t timeout_ms;
    bool reaped, timed_out, too_large, vanished;
    int wstatus;
    weir_invoke_done_fn done;
    void *arg;
    struct weir_invoke_result res;
    int64_t start_us;           /* core/clock.h, for elapsed_us */
    int64_t real_start_us;      /* the real monotonic clock, for the timeout */
    struct weir_list in_target; /* in t->invs */
    struct weir_list child;     /* in el->children while the child is not reaped */
};

/* ---- reaping -------------------------------------------------------------------------------- */

static void close_stdin(struct weir_invocation *inv)
{
    if (inv->in_ev) {
        event_free(inv->in_ev);
        inv->in_ev = NULL;
    }
    if (inv->in_fd >= 0) {
        close(inv->in_fd);
        inv->in_fd = -1;
    }
}

static void close_stdout(struct weir_invocation *inv)
{
    if (inv->out_ev) {
        event_free(inv->out_ev);
        inv->out_ev = NULL;
    }
    if (inv->out_fd >= 0) {
        close(inv->out_fd);
        inv->out_fd = -1;
    }
}

/* Kills the child's whole process group (it was spawned as its leader), so a function that
 * forked helpers does not leave them running; falls back to the child alone. */
static void kill_child(pid_t pid)
{
    if (kill(-pid, SIGKILL) != 0)
        kill(pid, SIGKILL);
}

/* The result is ready once the child is reaped and its stdout is closed. */
static void maybe_complete(struct weir_invocation *inv)
{
    if (inv->reaped && inv->out_fd < 0)
        event_active(inv->complete, EV_TIMEOUT, 1);
}

/* Reads stdout until it would block or ends. Past WEIR_RESPONSE_MAX the child is killed. */
static void drain_stdout(struct weir_invocation *inv)
{
    char chunk[65536];
    struct weir_buf *body = &inv->res.body;
    while (inv->out_fd >= 0) {
        ssize_t n = read(inv->out_fd, chunk, sizeof(chunk));
        if (n > 0) {
            if (body->len + (size_t)n > WEIR_RESPONSE_MAX) {
                weir_buf_append(body, chunk, WEIR_RESPONSE_MAX - body->len);
                inv->too_large = true;
                if (!inv->reaped)
                    kill_child(inv->pid);
                close_stdout(inv);
                return;
            }
            weir_buf_append(body, chunk, (size_t)n);
        } else if (n == 0) {
            close_stdout(inv);
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return;
        } else {
            close_stdout(inv);
        }
    }
}

static void on_reaped(struct weir_invocation *inv, int wstatus, bool vanished)
{
    inv->reaped = true;
    inv->wstatus = wstatus;
    inv->vanished = vanished;
    weir_list_remove(&inv->child);
    if (inv->timer)
        evtimer_del(inv->timer);
    close_stdin(inv);
    /* The child is gone, so all it wrote is in the pipe now. A grandchild may still hold the
     * pipe open; it does not delay the result. */
    drain_stdout(inv);
    close_stdout(inv);
    maybe_complete(inv);
}

/* Returns true when the child was reaped (now or by someone else). */
static bool try_reap(struct weir_invocation *inv)
{
    int wstatus = 0;
    pid_t r;
    do {
        r = waitpid(inv->pid, &wstatus, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == inv->pid) {
        on_reaped(inv, wstatus, false);
        return true;
    }
    if (r < 0 && errno == ECHILD) {
        /* Someone else reaped it (a SIG_IGN for SIGCHLD, a stray waitpid(-1)). */
        on_reaped(inv, 0, true);
        return true;
    }
    return false;
}

/* Reaps the orphans that have exited, keeps the others; never blocks. */
static void reap_orphans(struct exec_loop *el)
{
    size_t kept = 0;
    for (size_t i = 0; i < el->n_orphans; i++) {
        pid_t r;
        do {
            r = waitpid(el->orphans[i], NULL, WNOHANG);
        } while (r < 0 && errno == EINTR);
        if (r == 0)
            el->orphans[kept++] = el->orphans[i];
    }
    el->n_orphans = kept;
}

static void orphan_add(struct exec_loop *el, pid_t pid)
{
    if (el->n_orphans == el->cap_orphans) {
        el->cap_orphans = el->cap_orphans ? el->cap_orphans * 2 : 8;
        el->orphans = weir_realloc(el->orphans, el->cap_orphans * sizeof(pid_t));
    }
    el->orphans[el->n_orphans++] = pid;
}

static void loop_free(struct exec_loop *el)
{
    assert(el->refs == 0 && weir_list_empty(&el->children) && el->n_orphans == 0);
    event_free(el->sigchld);
    for (struct exec_loop **pp = &loops; *pp; pp = &(*pp)->next) {
        if (*pp == el) {
            *pp = el->next;
            break;
        }
    }
    free(el->orphans);
    free(el);
}

/* SIGCHLD, shared by every exec target of the base: each child we own is checked with
 * WNOHANG, never waitpid(-1), so children that belong to others are left alone. */
static void on_sigchld(evutil_socket_t sig, short what, void *arg)
{
    struct exec_loop *el = arg;
    struct weir_list *node, *tmp;
    reap_orphans(el);
    /* try_reap unlinks its own invocation, never another, and calls nobody back. */
    weir_list_foreach_safe(node, tmp, &el->children)
        try_reap(weir_list_entry(node, struct weir_invocation, child));
    /* A draining loop whose last orphan is reaped. A signal event may be freed from its own
     * callback: deleting it stops libevent's repeated calls (ev_pncalls), and nothing else of
     * libevent touches it once the callback returns. */
    if (el->refs == 0 && el->n_orphans == 0)
        loop_free(el);
}

static struct exec_loop *loop_get(struct event_base *base, struct weir_err *err)
{
    for (struct exec_loop *el = loops; el; el = el->next) {
        /* Never a draining loop (refs 0): its base may have been freed, and base may be a new
         * one at the same address. One that drains on a live base keeps its own SIGCHLD event
         * beside the new loop's; libevent runs both. */
        if (el->refs > 0 && el->base == base) {
            el->refs++;
            return el;
        }
    }
    struct exec_loop *el = weir_calloc(1, sizeof(*el));
    el->base = base;
    weir_list_init(&el->children);
    el->sigchld = evsignal_new(base, SIGCHLD, on_sigchld, el);
    if (!el->sigchld || evsignal_add(el->sigchld, NULL) != 0) {
        weir_err_set(err, "cannot watch SIGCHLD on the event loop");
        if (el->sigchld)
            event_free(el->sigchld);
        free(el);
        return NULL;
    }
    el->refs = 1;
    el->next = loops;
    loops = el;
    return el;
}

/* Drops a target's reference. The last one frees the loop, or leaves it draining when killed
 * children are still unreaped (see struct exec_loop). */
static void loop_release(struct exec_loop *el)
{
    if (--el->refs > 0)
        return;
    assert(weir_list_empty(&el->children));
    reap_orphans(el);
    if (el->n_orphans == 0) {
        loop_free(el);
        return;
    }
    weir_debug(COMPONENT, "last target freed, reaping killed children from the loop children=%zu",
               el->n_orphans);
}

/* ---- one invocation ------------------------------------------------------------------------- */

/* Releases the child's pipes and the timer; the invocation stays allocated. */
static void inv_close(struct weir_invocation *inv)
{
    close_stdin(inv);
    close_stdout(inv);
    if (inv->timer) {
        event_free(inv->timer);
        inv->timer = NULL;
    }
}

static void inv_unlink(struct weir_invocation *inv)
{
    weir_list_remove(&inv->in_target);
    inv->t = NULL;
}

static void inv_free(struct weir_invocation *inv)
{
    inv_close(inv);
    if (inv->complete)
        event_free(inv->complete);
    inv_unlink(inv);
    weir_invoke_result_deinit(&inv->res);
    free(inv);
}

static void fill_result(struct weir_invocation *inv)
{
    struct weir_invoke_result *res = &inv->res;
    if (inv->pid == 0)
        return; /* spawn failed; the result was filled then */
    if (inv->too_large) {
        res->transport = WEIR_TRANSPORT_TOO_LARGE;
        res->exit_code = -1;
        snprintf(res->detail, sizeof(res->detail), "output larger than %d bytes; child killed",
                 WEIR_RESPONSE_MAX);
    } else if (inv->timed_out) {
        res->transport = WEIR_TRANSPORT_TIMEOUT;
        res->exit_code = -1;
        snprintf(res->detail, sizeof(res->detail), "timed out after %lld ms; child killed",
                 (long long)inv->timeout_ms);
    } else if (inv->vanished) {
        res->transport = WEIR_TRANSPORT_FAILED;
        res->exit_code = -1;
        snprintf(res->detail, sizeof(res->detail), "child %d was reaped by someone else",
                 (int)inv->pid);
    } else if (WIFEXITED(inv->wstatus)) {
        res->transport = WEIR_TRANSPORT_OK;
        res->exit_code = WEXITSTATUS(inv->wstatus);
        if (res->exit_code == 0) {
            res->status = 200;
        } else {
            res->status = 0;
            snprintf(res->function_error, sizeof(res->function_error), "Unhandled");
            snprintf(res->detail, sizeof(res->detail), "exited with status %d", res->exit_code);
        }
    } else {
        res->transport = WEIR_TRANSPORT_FAILED;
        res->exit_code = -1;
        snprintf(res->detail, sizeof(res->detail), "killed by signal %d",
                 WIFSIGNALED(inv->wstatus) ? WTERMSIG(inv->wstatus) : 0);
    }
}

static void on_complete(evutil_socket_t fd, short what, void *arg)
{
    struct weir_invocation *inv = arg;
    fill_result(inv);
    inv->res.elapsed_us = weir_clock_mono_us() - inv->start_us;
    if (inv->res.transport != WEIR_TRANSPORT_OK)
        weir_debug(COMPONENT, "invocation failed function=%s pid=%d error=\"%s\"", inv->t->name,
                   (int)inv->pid, inv->res.detail);
    /* Unlink first: done may cancel other invocations or free the target. */
    inv_close(inv);
    inv_unlink(inv);
    inv->done(inv->arg, &inv->res);
    inv_free(inv);
}

static void on_stdin(evutil_socket_t fd, short what, void *arg)
{
    struct weir_invocation *inv = arg;
    while (inv->off < inv->len) {
        ssize_t n = write(inv->in_fd, inv->payload + inv->off, inv->len - inv->off);
        if (n > 0) {
            inv->off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        } else {
            /* EPIPE: the child exited or closed stdin without reading it all; its exit
             * status, not this, says how the invocation went. */
            break;
        }
    }
    close_stdin(inv);
}

static void on_stdout(evutil_socket_t fd, short what, void *arg)
{
    struct weir_invocation *inv = arg;
    drain_stdout(inv);
    maybe_complete(inv);
}

/* The timer's own clock, real even when a test steps weir's clock (core/clock.h). */
static int64_t real_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct weir_invocation *inv = arg;
    if (inv->reaped)
        return;
    /* libevent's timers run on a coarse clock and may fire a few ms early; the function gets
     * its whole timeout. */
    int64_t left_us = inv->timeout_ms * 1000 - (real_mono_us() - inv->real_start_us);
    if (left_us > 0) {
        struct timeval tv = {.tv_sec = left_us / 1000000, .tv_usec = left_us % 1000000};
        evtimer_add(inv->timer, &tv);
        return;
    }
    /* The child may have exited just now with its SIGCHLD not yet handled. */
    if (try_reap(inv))
        return;
    inv->timed_out = true;
    kill_child(inv->pid);
    close_stdin(inv);
}

/* A write to a pipe whose reader is gone raises SIGPIPE, which by default kills weir; a child
 * that exits before reading its whole event is normal. MSG_NOSIGNAL exists only for send() on
 * sockets, and functions expect a pipe on stdin, so SIGPIPE is ignored process-wide, once, when
 * the first exec target is made (unless someone already installed a disposition). Children get
 * the default back through POSIX_SPAWN_SETSIGDEF. */
static void ignore_sigpipe_once(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        sa.sa_handler = SIG_IGN;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0;
        sigaction(SIGPIPE, &sa, NULL);
    }
}

/* Finds argv[0] the way execvp would (PATH when it has no slash) into out; returns 0 or an
 * errno. Done before the first spawn so that "no such program" is known for certain: posix_spawn's
 * own report of a failed exec depends on the libc (and is lost under valgrind, which turns it into
 * an exit status 127 of a forked copy). */
static int resolve_program(const char *name, char *out, size_t out_len)
{
    struct stat st;
    if (strchr(name, '/')) {
        if (stat(name, &st) != 0)
            return errno;
        if (S_ISDIR(st.st_mode) || access(name, X_OK) != 0)
            return EACCES;
        snprintf(out, out_len, "%s", name);
        return 0;
    }
    const char *path = getenv("PATH");
    int rc = ENOENT;
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *end = strchr(path, ':');
        size_t n = end ? (size_t)(end - path) : strlen(path);
        /* An empty PATH entry means the current directory. */
        int len = snprintf(out, out_len, "%.*s%s%s", (int)n, path, n ? "/" : "", name);
        if (len > 0 && (size_t)len < out_len && stat(out, &st) == 0) {
            if (!S_ISDIR(st.st_mode) && access(out, X_OK) == 0)
                return 0;
            rc = EACCES;
        }
        path += n;
        if (*path == ':')
            path++;
    }
    return rc;
}

/* Looks argv[0] up (again) into t->program, which stays NULL when it is not found; returns 0 or
 * an errno. */
static int target_resolve(struct weir_target *t)
{
    char program[PATH_MAX];
    free(t->program);
    t->program = NULL;
    int rc = resolve_program(t->argv[0], program, sizeof(program));
    if (rc == 0)
        t->program = weir_strdup(program);
    return rc;
}

/* Starts t->program with its stdin and stdout on new pipes; returns 0 or an errno. Our pipe ends
 * are O_CLOEXEC so concurrent children do not inherit each other's pipes (a leaked write end
 * would keep another invocation's stdout from ever reaching EOF). */
static int spawn_program(struct weir_target *t, pid_t *pid, int *in_fd, int *out_fd)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t all, none;
    int rc;

    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
        rc = errno;
        goto fail_pipes;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    /* Nothing of weir's beyond stdin, stdout and stderr reaches the function: not the sockets
     * libraries open without O_CLOEXEC, not another child's pipes. */
    posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1);
    posix_spawnattr_init(&attr);
    /* The child starts like it would from a shell: no signal weir ignores or blocks, and its
     * own process group so a timeout can kill everything it started. */
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETPGROUP);
    rc = posix_spawn(pid, t->program, &fa, &attr, t->argv, environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    in[0] = out[1] = -1;
    if (rc != 0)
        goto fail_pipes;
    fcntl(in[1], F_SETFL, fcntl(in[1], F_GETFL) | O_NONBLOCK);
    fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);
    *in_fd = in[1];
    *out_fd = out[0];
    return 0;

fail_pipes:
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0)
            close(in[i]);
        if (out[i] >= 0)
            close(out[i]);
    }
    return rc;
}

/* Starts the program found when the target was made, so PATH is not searched per invocation.
 * A program not found then is looked for again each time (it may be installed after weir
 * starts); one whose file is gone (ENOENT) is looked for again once, so a program reinstalled
 * elsewhere on PATH is found. Returns 0 or an errno. */
static int spawn(struct weir_target *t, pid_t *pid, int *in_fd, int *out_fd)
{
    bool fresh = false;
    int rc;
    if (!t->program) {
        rc = target_resolve(t);
        if (rc != 0)
            return rc;
        fresh = true;
    }
    rc = spawn_program(t, pid, in_fd, out_fd);
    if (rc == ENOENT && !fresh) {
        rc = target_resolve(t);
        if (rc != 0)
            return rc;
        weir_debug(COMPONENT, "program found again function=%s command=%s program=%s", t->name,
                   t->argv[0], t->program);
        rc = spawn_program(t, pid, in_fd, out_fd);
    }
    return rc;
}

static struct weir_invocation *exec_invoke(struct weir_target *t, const char *payload, size_t len,
                                           int64_t timeout_ms, weir_invoke_done_fn done, void *arg)
{
    struct exec_loop *el = t->el;
    struct weir_invocation *inv = weir_calloc(1, sizeof(*inv));
    inv->t = t;
    inv->in_fd = inv->out_fd = -1;
    inv->payload = payload;
    inv->len = len;
    inv->timeout_ms = timeout_ms;
    inv->done = done;
    inv->arg = arg;
    inv->start_us = weir_clock_mono_us();
    inv->real_start_us = real_mono_us();
    weir_invoke_result_init(&inv->res);
    inv->complete = event_new(el->base, -1, 0, on_complete, inv);
    weir_list_push_back(&t->invs, &inv->in_target);

    int rc = spawn(t, &inv->pid, &inv->in_fd, &inv->out_fd);
    if (rc != 0) {
        inv->pid = 0;
        inv->res.transport = WEIR_TRANSPORT_REFUSED;
        inv->res.exit_code = -1;
        snprintf(inv->res.detail, sizeof(inv->res.detail), "cannot run %s: %s", t->argv[0],
                 strerror(rc));
        event_active(inv->complete, EV_TIMEOUT, 1);
        return inv;
    }
    weir_list_push_back(&el->children, &inv->child);

    inv->out_ev = event_new(el->base, inv->out_fd, EV_READ | EV_PERSIST, on_stdout, inv);
    event_add(inv->out_ev, NULL);
    if (len > 0) {
        inv->in_ev = event_new(el->base, inv->in_fd, EV_WRITE | EV_PERSIST, on_stdin, inv);
        event_add(inv->in_ev, NULL);
    } else {
        close_stdin(inv);
    }
    if (timeout_ms > 0) {
        inv->timer = evtimer_new(el->base, on_timeout, inv);
        struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
        evtimer_add(inv->timer, &tv);
    }
    return inv;
}

/* Kills the child; its reap completes later from the loop (SIGCHLD) and leaves no zombie. */
static void exec_cancel(struct weir_invocation *inv)
{
    if (!inv)
        return;
    struct exec_loop *el = inv->t->el;
    if (inv->pid > 0 && !inv->reaped) {
        kill_child(inv->pid);
        weir_list_remove(&inv->child);
        pid_t r;
        do {
            r = waitpid(inv->pid, NULL, WNOHANG);
        } while (r < 0 && errno == EINTR);
        if (r == 0)
            orphan_add(el, inv->pid);
    }
    inv_free(inv);
}

/* ---- the target ----------------------------------------------------------------------------- */

static struct weir_target *exec_new(const struct weir_function_cfg *fc, size_t endpoint,
                                    struct event_base *base, struct weir_err *err)
{
    if (!fc->command || fc->n_command == 0 || !fc->command[0]) {
        weir_err_set(err, "function %s: exec target needs a command", fc->name);
        return NULL;
    }
    ignore_sigpipe_once();
    struct weir_target *t = weir_calloc(1, sizeof(*t));
    weir_list_init(&t->invs);
    t->el = loop_get(base, err);
    if (!t->el) {
        free(t);
        return NULL;
    }
    t->name = weir_strdup(fc->name ? fc->name : "");
    t->argc = fc->n_command;
    t->argv = weir_calloc(t->argc + 1, sizeof(char *));
    for (size_t i = 0; i < t->argc; i++)
        t->argv[i] = weir_strdup(fc->command[i]);
    /* Not found is no error yet: the program may be installed after weir starts, and each
     * invocation until then says why it cannot run. */
    int rc = target_resolve(t);
    if (rc == 0)
        weir_debug(COMPONENT, "target ready function=%s command=%s program=%s", t->name, t->argv[0],
                   t->program);
    else
        weir_debug(COMPONENT, "program not found yet function=%s command=%s error=\"%s\"", t->name,
                   t->argv[0], strerror(rc));
    return t;
}

static void exec_free(struct weir_target *t)
{
    if (!t)
        return;
    while (!weir_list_empty(&t->invs))
        exec_cancel(weir_list_entry(t->invs.next, struct weir_invocation, in_target));
    loop_release(t->el);
    for (size_t i = 0; i < t->argc; i++)
        free(t->argv[i]);
    free(t->argv);
    free(t->program);
    free(t->name);
    free(t);
}

const struct weir_target_ops weir_target_exec = {
    .name = "exec",
    .new = exec_new,
    .invoke = exec_invoke,
    .cancel = exec_cancel,
    .free = exec_free,
};
