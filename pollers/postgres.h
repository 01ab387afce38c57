/* The Postgres source's settings and its naming rules, exposed for its tests. The poller itself
 * is pollers/postgres.c; the pgoutput wire decoder is pollers/pgoutput.c. */
#ifndef WEIR_POSTGRES_H
#define WEIR_POSTGRES_H

#include <stdbool.h>
#include <stddef.h>

/* A Postgres mapping's own keys (its row's table). */
struct weir_pg_settings {
    char **tables; /* "orders" or "schema.orders": the publication's FOR TABLE list */
    size_t n_tables;
    char *publication_name;  /* NULL: weir_<mapping> */
    char *slot_name;         /* NULL: weir_<mapping> */
    bool create_publication; /* default true: created when absent */
    bool create_slot;        /* default true: created when absent */
    char *stream_view_type;  /* NEW_AND_OLD_IMAGES (default), NEW_IMAGE, OLD_IMAGE, KEYS_ONLY */
    bool arrays_as_sets;     /* default false: arrays are L */
    char *starting_position; /* TRIM_HORIZON (default) or LATEST */
};

/* Postgres' rule for a replication slot name: 1..63 of [a-z0-9_]. */
bool weir_pg_slot_name_ok(const char *name);

/* The default slot and publication name of a mapping: "weir_" and the mapping's name with every
 * character outside [a-z0-9_] made '_' and letters lowered, at most 63 bytes. out holds 64. */
void weir_pg_default_name(const char *mapping, char out[64]);

/* Splits "schema.table" or "table" (schema "public") into its parts; false when either part is
 * empty or the name holds more than one '.'. The parts are written to schema and table, each
 * holding 64 bytes (Postgres' identifier limit). */
bool weir_pg_table_split(const char *name, char schema[64], char table[64]);

#endif
