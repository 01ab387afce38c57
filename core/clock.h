/* The one source of time. Tests replace it with a stepped clock.
 * Owns no timers; must never sleep. */
#ifndef WEIR_CLOCK_H
#define WEIR_CLOCK_H

#include <stdint.h>

/* Monotonic milliseconds, for deadlines and windows. */
int64_t weir_clock_mono_ms(void);
/* Monotonic microseconds, for latency figures. */
int64_t weir_clock_mono_us(void);
/* Wall-clock milliseconds since the epoch, for timestamps that leave the process. */
int64_t weir_clock_wall_ms(void);

/* Tests: freeze both clocks at the given values; weir_clock_step advances both. */
void weir_clock_fake(int64_t mono_ms, int64_t wall_ms);
void weir_clock_step(int64_t ms);
void weir_clock_real(void);

/* Writes an ISO-8601 UTC time with milliseconds ("2025-03-04T10:11:02.118Z") into out[25]. */
void weir_clock_iso8601(int64_t wall_ms, char out[25]);

#endif
