/* `weir run`: builds functions and mappings from a loaded config, runs the event loop, and shuts
 * down gracefully on SIGTERM/SIGINT. */
#ifndef WEIR_RUN_H
#define WEIR_RUN_H

struct weir_config;

/* Runs until a stop signal. Returns the process exit code (0 after a clean stop). cfg is
 * borrowed. */
int weir_run(const struct weir_config *cfg);

#endif
