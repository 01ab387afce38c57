/* The runtime of `weir run`: one libevent loop owning every function and mapping, and the
 * shutdown sequence (stop reading, finish or give back what is in flight within a bound, exit).
 * It must never implement source, dispatch or target behaviour itself. */
#include "cli/run.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "core/log.h"
#include "core/mem.h"
#include "dispatcher/dispatcher.h"
#include "mapping/mapping.h"

/* After the in-flight bound passes, running invocations are aborted; after this much more,
 * weir exits even if a server never answered (its leases expire and nothing is lost). */
#define SHUTDOWN_GRACE_AFTER_ABORT_S 5

struct runtime {
    const struct weir_config *cfg;
    struct event_base *base;
    struct weir_function **fns;
    struct weir_mapping **maps;
    size_t n_maps_running;
    bool stopping;
    int exit_code;
    struct event *sigterm, *sigint;
    struct event *abort_timer, *give_up_timer;
};

static void on_mapping_stopped(void *arg)
{
    struct runtime *rt = arg;
    if (--rt->n_maps_running == 0) {
        weir_info(NULL, "stopped");
        event_base_loopbreak(rt->base);
    }
}

static int max_function_timeout(const struct weir_config *cfg)
{
    int t = 0;
    for (size_t i = 0; i < cfg->n_functions; i++)
        if (cfg->functions[i].timeout > t)
            t = cfg->functions[i].timeout;
    return t;
}

static void on_abort(evutil_socket_t fd, short what, void *arg)
{
    struct runtime *rt = arg;
    weir_warn(NULL, "shutdown bound reached: aborting invocations still running; their records "
                    "return to their sources");
    for (size_t i = 0; i < rt->cfg->n_functions; i++)
        weir_disp_abort(rt->fns[i]);
}

static void on_give_up(evutil_socket_t fd, short what, void *arg)
{
    struct runtime *rt = arg;
    weir_error(NULL, "shutdown did not complete: exiting anyway; leased records return to their "
                     "sources when their leases end");
    rt->exit_code = 1;
    event_base_loopbreak(rt->base);
}

static void begin_shutdown(struct runtime *rt, const char *why)
{
    if (rt->stopping) {
        weir_warn(NULL,
                  "second stop signal: exiting now; leased records return when their leases end "
                  "signal=%s",
                  why);
        rt->exit_code = 1;
        event_base_loopbreak(rt->base);
        return;
    }
    rt->stopping = true;
    int bound = max_function_timeout(rt->cfg) + 1;
    weir_info(NULL, "stop signal received: stopping signal=%s bound_s=%d", why, bound);
    struct timeval tv = {.tv_sec = bound};
    event_add(rt->abort_timer, &tv);
    tv.tv_sec = bound + SHUTDOWN_GRACE_AFTER_ABORT_S;
    event_add(rt->give_up_timer, &tv);
    if (rt->n_maps_running == 0) {
        event_base_loopbreak(rt->base);
        return;
    }
    for (size_t i = 0; i < rt->cfg->n_mappings; i++)
        weir_mapping_stop(rt->maps[i], on_mapping_stopped, rt);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    begin_shutdown(arg, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

static struct weir_function *find_function(struct runtime *rt, const char *name)
{
    for (size_t i = 0; i < rt->cfg->n_functions; i++)
        if (strcmp(rt->cfg->functions[i].name, name) == 0)
            return rt->fns[i];
    return NULL;
}

/* libevent's own messages (evdns: "Nameserver ... has failed") in weir's log shape, not as bare
 * lines on stderr. */
static void on_libevent_log(int severity, const char *msg)
{
    enum weir_log_level level = severity == EVENT_LOG_DEBUG  ? WEIR_LOG_DEBUG
                                : severity == EVENT_LOG_MSG  ? WEIR_LOG_INFO
                                : severity == EVENT_LOG_WARN ? WEIR_LOG_WARN
                                                             : WEIR_LOG_ERROR;
    weir_log_limited(level, "libevent", "%s", msg);
}

int weir_run(const struct weir_config *cfg)
{
    struct runtime rt = {.cfg = cfg, .exit_code = 0};
    struct weir_err err = {{0}};
    /* Writes to a peer that went away must be an error return, not a process kill. */
    signal(SIGPIPE, SIG_IGN);
    event_set_log_callback(on_libevent_log);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rt.base = event_base_new();
    if (!rt.base) {
        weir_error(NULL, "cannot create the event loop");
        rt.exit_code = 1;
        goto out;
    }
    rt.fns = weir_calloc(cfg->n_functions ? cfg->n_functions : 1, sizeof(*rt.fns));
    rt.maps = weir_calloc(cfg->n_mappings ? cfg->n_mappings : 1, sizeof(*rt.maps));
    for (size_t i = 0; i < cfg->n_functions; i++) {
        rt.fns[i] = weir_function_new(&cfg->functions[i], rt.base, &err);
        if (!rt.fns[i]) {
            weir_error(NULL, "cannot set up the function function=%s error=\"%s\"",
                       cfg->functions[i].name, err.msg);
            rt.exit_code = 1;
            goto out;
        }
    }
    for (size_t i = 0; i < cfg->n_mappings; i++) {
        const struct weir_mapping_cfg *mc = &cfg->mappings[i];
        rt.maps[i] =
            weir_mapping_new(mc, cfg->region, find_function(&rt, mc->function), rt.base, &err);
        if (!rt.maps[i]) {
            weir_error(NULL, "cannot set up the mapping mapping=%s error=\"%s\"", mc->name,
                       err.msg);
            rt.exit_code = 1;
            goto out;
        }
    }
    rt.sigterm = evsignal_new(rt.base, SIGTERM, on_signal, &rt);
    rt.sigint = evsignal_new(rt.base, SIGINT, on_signal, &rt);
    event_add(rt.sigterm, NULL);
    event_add(rt.sigint, NULL);
    rt.abort_timer = evtimer_new(rt.base, on_abort, &rt);
    rt.give_up_timer = evtimer_new(rt.base, on_give_up, &rt);
    for (size_t i = 0; i < cfg->n_mappings; i++) {
        if (weir_mapping_start(rt.maps[i]) != WEIR_OK) {
            weir_error(NULL, "mapping could not start mapping=%s", cfg->mappings[i].name);
            rt.exit_code = 1;
            goto out;
        }
        rt.n_maps_running++;
    }
    if (!cfg->n_mappings)
        weir_warn(NULL, "the configuration has no mappings: nothing to do until stopped");
    weir_info(NULL, "running version=%s functions=%zu mappings=%zu pid=%ld", WEIR_VERSION,
              cfg->n_functions, cfg->n_mappings, (long)getpid());
    event_base_dispatch(rt.base);
out:
    for (size_t i = 0; rt.maps && i < cfg->n_mappings; i++)
        weir_mapping_free(rt.maps[i]);
    for (size_t i = 0; rt.fns && i < cfg->n_functions; i++)
        weir_function_free(rt.fns[i]);
    /* What the frees above handed to the loop (a name lookup cancelled mid-flight) ends now. */
    if (rt.base)
        event_base_loop(rt.base, EVLOOP_NONBLOCK);
    free(rt.maps);
    free(rt.fns);
    struct event *evs[] = {rt.sigterm, rt.sigint, rt.abort_timer, rt.give_up_timer};
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        if (evs[i])
            event_free(evs[i]);
    if (rt.base)
        event_base_free(rt.base);
    curl_global_cleanup();
    return rt.exit_code;
}
