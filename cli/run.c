/* The runtime of `weir run`: one libevent loop owning every function, mapping, the state store
 * with the functions' asynchronous queues, and the Invoke API; and the shutdown sequence (stop
 * reading and listening, finish or give back what is in flight within a bound, exit). It must
 * never implement source, dispatch or target behaviour itself. */
#include "cli/run.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "config/config.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "dispatcher/dispatcher.h"
#include "mapping/mapping.h"
#include "pollers/poller.h"
#include "store/async.h"
#include "store/store.h"

/* After the in-flight bound passes, running invocations are aborted; after this much more,
 * weir exits even if a server never answered (its leases expire and nothing is lost). */
#define SHUTDOWN_GRACE_AFTER_ABORT_S 5
/* While another weir holds the state directory, ask again this often. */
#define STORE_RETRY_MS 1000

struct runtime {
    const struct weir_config *cfg;
    struct event_base *base;
    struct weir_function **fns;
    struct weir_mapping **maps;
    bool *map_started;
    bool needs_store;
    struct weir_store *store;
    struct weir_async_store *astore;
    struct weir_async_queue **queues;
    struct weir_api *api;
    struct weir_timer *store_retry;
    bool store_waiting_logged;
    size_t n_maps_running;
    size_t n_queues_running;
    size_t n_stopping; /* parts not yet stopped, once stopping began */
    bool stopping;
    int exit_code;
    struct event *sigterm, *sigint;
    struct event *abort_timer, *give_up_timer;
};

/* Everything that stops (mappings, the API, the asynchronous queues) counts itself out here;
 * the last one ends the loop. */
static void on_part_stopped(void *arg)
{
    struct runtime *rt = arg;
    if (--rt->n_stopping > 0)
        return;
    weir_info(NULL, "stopped");
    event_base_loopbreak(rt->base);
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
    weir_timer_stop(rt->store_retry);
    /* All at once: the queues take nothing more but still store what the mappings and the API
     * hand them while those finish. Counted whole before any stop begins, since a stop may
     * finish inside its own call. */
    rt->n_stopping = 1 + rt->n_maps_running + (rt->api ? 1 : 0) + rt->n_queues_running;
    for (size_t i = 0; i < rt->cfg->n_mappings; i++)
        if (rt->map_started[i])
            weir_mapping_stop(rt->maps[i], on_part_stopped, rt);
    if (rt->api)
        weir_api_stop(rt->api, on_part_stopped, rt);
    for (size_t i = 0; rt->queues && i < rt->cfg->n_functions; i++)
        if (rt->queues[i])
            weir_async_queue_stop(rt->queues[i], on_part_stopped, rt);
    on_part_stopped(rt);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    begin_shutdown(arg, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

static bool mapping_needs_store(const struct weir_mapping_cfg *mc)
{
    const struct weir_source *src = mc->src ? weir_source_of(mc->src) : NULL;
    return src && src->delivery == WEIR_DELIVERY_ASYNC;
}

static struct weir_function *find_function(struct runtime *rt, const char *name);

static weir_status create_mapping(struct runtime *rt, size_t i)
{
    const struct weir_mapping_cfg *mc = &rt->cfg->mappings[i];
    struct weir_err err = {{0}};
    rt->maps[i] = weir_mapping_new(mc, rt->cfg->region, find_function(rt, mc->function), rt->base,
                                   rt->store, &err);
    if (!rt->maps[i]) {
        weir_error(NULL, "cannot set up the mapping mapping=%s error=\"%s\"", mc->name, err.msg);
        return WEIR_ERR;
    }
    return WEIR_OK;
}

static weir_status start_mapping(struct runtime *rt, size_t i)
{
    if (weir_mapping_start(rt->maps[i]) != WEIR_OK) {
        weir_error(NULL, "mapping could not start mapping=%s", rt->cfg->mappings[i].name);
        return WEIR_ERR;
    }
    rt->map_started[i] = true;
    rt->n_maps_running++;
    return WEIR_OK;
}

/* The state store is open: the queues, the API, and the mappings that need them start. */
static weir_status start_stored(struct runtime *rt)
{
    const struct weir_config *cfg = rt->cfg;
    struct weir_err err = {{0}};
    rt->astore = weir_async_store_sqlite(rt->store);
    rt->queues = weir_calloc(cfg->n_functions, sizeof(*rt->queues));
    for (size_t i = 0; i < cfg->n_functions; i++) {
        rt->queues[i] = weir_async_queue_new(rt->fns[i], rt->astore, cfg->region, &err);
        if (!rt->queues[i]) {
            weir_error(NULL, "cannot set up the asynchronous queue function=%s error=\"%s\"",
                       cfg->functions[i].name, err.msg);
            return WEIR_ERR;
        }
        rt->n_queues_running++;
        weir_async_queue_start(rt->queues[i]);
    }
    if (cfg->api.enabled) {
        rt->api = weir_api_new(&cfg->api, rt->base, rt->fns, cfg->n_functions, cfg->region, &err);
        if (!rt->api) {
            weir_error(NULL, "%s", err.msg);
            return WEIR_ERR;
        }
    }
    for (size_t i = 0; i < cfg->n_mappings; i++) {
        if (!mapping_needs_store(&cfg->mappings[i]))
            continue;
        if (create_mapping(rt, i) != WEIR_OK || start_mapping(rt, i) != WEIR_OK)
            return WEIR_ERR;
    }
    return WEIR_OK;
}

static void on_store_retry(void *arg);

/* Opens the state store; while another weir holds it, waits (and says so once). */
static weir_status open_store(struct runtime *rt)
{
    struct weir_err err = {{0}};
    weir_status st = weir_store_open(rt->cfg->state_dir, rt->base, &rt->store, &err);
    if (st == WEIR_AGAIN) {
        if (!rt->store_waiting_logged)
            weir_warn(NULL,
                      "waiting: %s; its asynchronous queues, the API and bucket mappings "
                      "start once it is released",
                      err.msg);
        rt->store_waiting_logged = true;
        weir_timer_after(rt->store_retry, STORE_RETRY_MS);
        return WEIR_OK;
    }
    if (st != WEIR_OK) {
        weir_error(NULL, "%s", err.msg);
        return WEIR_ERR;
    }
    weir_info(NULL, "state store open path=%s", weir_store_path(rt->store));
    return start_stored(rt);
}

static void on_store_retry(void *arg)
{
    struct runtime *rt = arg;
    if (rt->stopping)
        return;
    if (open_store(rt) != WEIR_OK) {
        rt->exit_code = 1;
        event_base_loopbreak(rt->base);
    }
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
    /* Caught from here on: a stop signal while weir is still setting up stops it cleanly once
     * the loop runs, rather than killing it. */
    rt.sigterm = evsignal_new(rt.base, SIGTERM, on_signal, &rt);
    rt.sigint = evsignal_new(rt.base, SIGINT, on_signal, &rt);
    event_add(rt.sigterm, NULL);
    event_add(rt.sigint, NULL);
    rt.abort_timer = evtimer_new(rt.base, on_abort, &rt);
    rt.give_up_timer = evtimer_new(rt.base, on_give_up, &rt);
    rt.fns = weir_calloc(cfg->n_functions ? cfg->n_functions : 1, sizeof(*rt.fns));
    rt.maps = weir_calloc(cfg->n_mappings ? cfg->n_mappings : 1, sizeof(*rt.maps));
    rt.map_started = weir_calloc(cfg->n_mappings ? cfg->n_mappings : 1, sizeof(*rt.map_started));
    rt.store_retry = weir_timer_new(rt.base, on_store_retry, &rt);
    rt.needs_store = cfg->api.enabled;
    for (size_t i = 0; i < cfg->n_functions; i++) {
        rt.fns[i] = weir_function_new(&cfg->functions[i], rt.base, &err);
        if (!rt.fns[i]) {
            weir_error(NULL, "cannot set up the function function=%s error=\"%s\"",
                       cfg->functions[i].name, err.msg);
            rt.exit_code = 1;
            goto out;
        }
    }
    /* Mappings that keep state in the store are made once it is open (start_stored). */
    for (size_t i = 0; i < cfg->n_mappings; i++) {
        if (!mapping_needs_store(&cfg->mappings[i]) && create_mapping(&rt, i) != WEIR_OK) {
            rt.exit_code = 1;
            goto out;
        }
    }
    for (size_t i = 0; i < cfg->n_mappings; i++) {
        if (mapping_needs_store(&cfg->mappings[i])) {
            rt.needs_store = true;
            continue; /* started once the store is open */
        }
        if (start_mapping(&rt, i) != WEIR_OK) {
            rt.exit_code = 1;
            goto out;
        }
    }
    if (rt.needs_store && open_store(&rt) != WEIR_OK) {
        rt.exit_code = 1;
        goto out;
    }
    if (!cfg->n_mappings && !cfg->api.enabled)
        weir_warn(NULL, "the configuration has no mappings and no api: nothing to do until "
                        "stopped");
    char allocator[64];
    weir_allocator_name(allocator, sizeof allocator);
    weir_info(NULL, "running version=%s allocator=\"%s\" functions=%zu mappings=%zu pid=%ld",
              WEIR_VERSION, allocator, cfg->n_functions, cfg->n_mappings, (long)getpid());
    event_base_dispatch(rt.base);
out:
    /* The store first: what it still has to run calls back into the API, the queues and the
     * mappings, which must still be there. Then what nothing calls back any more. */
    weir_store_free(rt.store);
    weir_api_free(rt.api);
    for (size_t i = 0; rt.queues && i < cfg->n_functions; i++)
        weir_async_queue_free(rt.queues[i]);
    if (rt.astore)
        rt.astore->ops->free(rt.astore);
    for (size_t i = 0; rt.maps && i < cfg->n_mappings; i++)
        weir_mapping_free(rt.maps[i]);
    for (size_t i = 0; rt.fns && i < cfg->n_functions; i++)
        weir_function_free(rt.fns[i]);
    weir_timer_free(rt.store_retry);
    /* What the frees above handed to the loop (a name lookup cancelled mid-flight) ends now. */
    if (rt.base)
        event_base_loop(rt.base, EVLOOP_NONBLOCK);
    free(rt.queues);
    free(rt.map_started);
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
