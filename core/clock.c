/* The one source of time, real or stepped for tests. */
#include "core/clock.h"

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

static bool fake;
static int64_t fake_mono_ms;
static int64_t fake_wall_ms;

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

void weir_clock_step(int64_t ms)
{
    fake_mono_ms += ms;
    fake_wall_ms += ms;
}

void weir_clock_real(void)
{
    fake = false;
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
