/* The registry of sources as config/ sees it: wires each row's configuration view and the
 * filter's pattern check (mapping/) together for config/, which knows neither. */
#ifndef WEIR_CLI_SOURCES_H
#define WEIR_CLI_SOURCES_H

#include "config/config.h"

/* The environment every configuration is loaded in. Static storage. */
const struct weir_cfg_env *weir_cli_cfg_env(void);

#endif
