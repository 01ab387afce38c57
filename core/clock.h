/* The one source of time, and the timers that run on it. Tests replace the clock with a stepped
 * one: then timers fire when a test steps time past them, never by themselves, so a test of a
 * window, a backoff or a lease steps time instead of sleeping. Must never sleep. */
#ifndef WEIR_CLOCK_H
#define WEIR_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

struct event_base;

/* Monotonic milliseconds, for deadlines and windows. */
int64_t weir_clock_mono_ms(void);
/* Monotonic microseconds, for latency figures. */
int64_t weir_clock_mono_us(void);
/* Wall-clock milliseconds since the epoch, for timestamps that leave the process. */
int64_t weir_clock_wall_ms(void);

/* Tests: freeze both clocks at the given values; weir_clock_step advances both and makes every
 * timer due by then fire on the loop's next turn (in due order). */
void weir_clock_fake(int64_t mono_ms, int64_t wall_ms);
void weir_clock_step(int64_t ms);
void weir_clock_real(void);
bool weir_clock_is_fake(void);

/* Writes an ISO-8601 UTC time with milliseconds ("2025-03-04T10:11:02.118Z") into out[25]. */
void weir_clock_iso8601(int64_t wall_ms, char out[25]);

/* A one-shot timer on weir's clock, run by the event loop: cb(arg) is called from the loop once
 * the clock reaches the time it was set for. Setting it again moves it. */
struct weir_timer;

struct weir_timer *weir_timer_new(struct event_base *base, void (*cb)(void *arg), void *arg);
/* Stops the timer and frees it. NULL is a no-op. */
void weir_timer_free(struct weir_timer *t);
/* Fires at monotonic ms `due` (at once, on the loop's next turn, when that is now or past). */
void weir_timer_at(struct weir_timer *t, int64_t due_ms);
/* Fires `ms` from now. */
void weir_timer_after(struct weir_timer *t, int64_t ms);
void weir_timer_stop(struct weir_timer *t);
bool weir_timer_armed(const struct weir_timer *t);
/* When it fires; -1 when it is not armed. */
int64_t weir_timer_due(const struct weir_timer *t);

#endif
