/* The one source of time, real or stepped for tests, and the timers on it: libevent timers when
 * the clock is real, a list the stepped clock walks when it is fake. Must never sleep. */
#include "core/clock.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/list.h"
#include "core/mem.h"

static bool fake;
static int64_t fake_mono_ms;
static int64_t fake_wall_ms;

struct weir_timer {
    struct event *ev;
    void (*cb)(void *arg);
    void *arg;
    int64_t due;                /* -1 when not armed */
    struct weir_list fake_link; /* in fake_timers while armed for a future time on a fake clock */
};

/* Timers of a fake clock waiting for a step. weir runs one loop thread. */
static struct weir_list fake_timers = WEIR_LIST_HEAD_INIT(fake_timers);

int64_t weir_clock_mono_us(void)
{
    if (fake)
        return fake_mono_ms * 1000;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t weir_clock_mono_ms(void)
{
    if (fake)
        return fake_mono_ms;
    return weir_clock_mono_us() / 1000;
}

int64_t weir_clock_wall_ms(void)
{
    if (fake)
        return fake_wall_ms;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void weir_clock_fake(int64_t mono_ms, int64_t wall_ms)
{
    fake = true;
    fake_mono_ms = mono_ms;
    fake_wall_ms = wall_ms;
}

bool weir_clock_is_fake(void)
{
    return fake;
}

static void fire_soon(struct weir_timer *t)
{
    event_active(t->ev, EV_TIMEOUT, 1);
}

void weir_clock_step(int64_t ms)
{
    fake_mono_ms += ms;
    fake_wall_ms += ms;
    /* Due timers fire in due order: activate the earliest first, repeatedly. */
    for (;;) {
        struct weir_timer *first = NULL;
        struct weir_list *node, *tmp;
        weir_list_foreach_safe(node, tmp, &fake_timers)
        {
            struct weir_timer *t = weir_list_entry(node, struct weir_timer, fake_link);
            if (t->due <= fake_mono_ms && (!first || t->due < first->due))
                first = t;
        }
        if (!first)
            break;
        weir_list_remove(&first->fake_link);
        fire_soon(first);
    }
}

void weir_clock_real(void)
{
    fake = false;
    struct weir_list *node;
    while ((node = weir_list_pop_front(&fake_timers))) {
        struct weir_timer *t = weir_list_entry(node, struct weir_timer, fake_link);
        weir_timer_at(t, t->due);
    }
}

void weir_clock_iso8601(int64_t wall_ms, char out[25])
{
    time_t secs = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    /* Fields are bounded by gmtime; the casts tell the compiler so. */
    snprintf(out, 25, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ", (unsigned)(tm.tm_year + 1900) % 10000u,
             (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u,
             (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u,
             (unsigned)(wall_ms % 1000) % 1000u);
}

/* ---- timers ---- */

static void arm_real(struct weir_timer *t, int64_t wait_ms)
{
    if (wait_ms < 0)
        wait_ms = 0;
    struct timeval tv = {.tv_sec = (time_t)(wait_ms / 1000),
                         .tv_usec = (suseconds_t)(wait_ms % 1000) * 1000};
    evtimer_add(t->ev, &tv);
}

static void on_timer_event(evutil_socket_t fd, short what, void *arg)
{
    struct weir_timer *t = arg;
    if (t->due < 0)
        return; /* stopped after it was activated */
    int64_t now = weir_clock_mono_ms();
    if (t->due > now) {
        /* libevent's timers run on a coarse clock and may fire a little early; a fake clock
         * that was not stepped far enough leaves it waiting. */
        if (fake)
            weir_list_push_back(&fake_timers, &t->fake_link);
        else
            arm_real(t, t->due - now);
        return;
    }
    t->due = -1;
    t->cb(t->arg);
}

struct weir_timer *weir_timer_new(struct event_base *base, void (*cb)(void *arg), void *arg)
{
    struct weir_timer *t = weir_calloc(1, sizeof(*t));
    t->ev = evtimer_new(base, on_timer_event, t);
    if (!t->ev)
        abort(); /* only out of memory, as weir_malloc */
    t->cb = cb;
    t->arg = arg;
    t->due = -1;
    weir_list_init(&t->fake_link);
    return t;
}

void weir_timer_stop(struct weir_timer *t)
{
    t->due = -1;
    weir_list_remove(&t->fake_link);
    event_del(t->ev);
}

void weir_timer_free(struct weir_timer *t)
{
    if (!t)
        return;
    weir_timer_stop(t);
    event_free(t->ev);
    free(t);
}

void weir_timer_at(struct weir_timer *t, int64_t due_ms)
{
    weir_list_remove(&t->fake_link);
    event_del(t->ev);
    t->due = due_ms;
    int64_t now = weir_clock_mono_ms();
    if (!fake)
        arm_real(t, due_ms - now);
    else if (due_ms <= now)
        fire_soon(t);
    else
        weir_list_push_back(&fake_timers, &t->fake_link);
}

void weir_timer_after(struct weir_timer *t, int64_t ms)
{
    weir_timer_at(t, weir_clock_mono_ms() + (ms > 0 ? ms : 0));
}

bool weir_timer_armed(const struct weir_timer *t)
{
    return t->due >= 0;
}

int64_t weir_timer_due(const struct weir_timer *t)
{
    return t->due;
}
