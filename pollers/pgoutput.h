/* The pgoutput wire decoder: Postgres logical replication messages (protocol version 1, text
 * values) into row changes of model/row.h. Pure: the Postgres poller hands it the data bytes of
 * each XLogData message; no I/O, no libpq, no event loop. Exposed for the poller and its tests. */
#ifndef WEIR_PGOUTPUT_H
#define WEIR_PGOUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/status.h"
#include "model/row.h"

enum weir_pgo_kind {
    WEIR_PGO_BEGIN,
    WEIR_PGO_COMMIT,
    WEIR_PGO_ORIGIN,
    WEIR_PGO_RELATION,
    WEIR_PGO_TYPE,
    WEIR_PGO_INSERT,
    WEIR_PGO_UPDATE,
    WEIR_PGO_DELETE,
    WEIR_PGO_TRUNCATE,
    WEIR_PGO_MESSAGE, /* 'M': a logical decoding message (pg_logical_emit_message); ignored */
};

struct weir_pgo_column {
    char *name;
    uint32_t type_oid;
    int32_t typmod;
    bool key; /* part of the replica identity (every column when the identity is FULL) */
};

/* A table as its last Relation message described it. Owned by the decoder's cache. */
struct weir_pgo_relation {
    uint32_t id;
    char *schema; /* "" for pg_catalog, as pgoutput sends it */
    char *table;
    char replica_identity; /* 'd' default, 'n' nothing, 'f' full, 'i' index */
    struct weir_pgo_column *cols;
    size_t n_cols;
};

/* A non-builtin type as its last Type message named it. For a domain pgoutput names its base
 * type ("int4" in schema ""), so a domain's values are converted like its base type's. Owned by
 * the decoder's cache. */
struct weir_pgo_type {
    uint32_t oid;
    char *schema; /* "" for pg_catalog */
    char *name;   /* "mood"; an array type's name starts with '_' ("_mood") */
};

/* One decoded message. Fields that do not belong to its kind are zero. */
struct weir_pgo_msg {
    enum weir_pgo_kind kind;
    uint64_t final_lsn;               /* BEGIN: the commit record's LSN */
    uint64_t commit_lsn, end_lsn;     /* COMMIT: the commit record's LSN, and the end of it */
    int64_t commit_time_us;           /* BEGIN, COMMIT: microseconds since the Unix epoch */
    uint32_t xid;                     /* BEGIN */
    char *origin_name;                /* ORIGIN: owned */
    uint64_t origin_lsn;              /* ORIGIN: the commit's LSN on the origin server */
    const struct weir_pgo_type *type; /* TYPE: borrowed from the decoder's cache */
    /* RELATION, INSERT, UPDATE, DELETE: borrowed from the decoder's cache, valid until the next
     * RELATION message for the same id or weir_pgo_free. */
    const struct weir_pgo_relation *rel;
    /* INSERT, UPDATE, DELETE: owned; the caller may take it (then set msg->row = NULL). Each
     * column is named after the relation's, with key set from its replica identity flag. An old
     * key ('K') gives an old_row of the identity's columns only; an old row ('O') every column,
     * with old_full set. The row borrows nothing from the decoder. */
    struct weir_row *row;
    uint32_t *relids; /* TRUNCATE: owned; the truncated relations' ids */
    size_t n_relids;
    uint8_t truncate_flags; /* TRUNCATE: WEIR_PGO_TRUNCATE_CASCADE | _RESTART_IDENTITY */
};

#define WEIR_PGO_TRUNCATE_CASCADE          1
#define WEIR_PGO_TRUNCATE_RESTART_IDENTITY 2

struct weir_pgo;

/* A decoder with empty relation and type caches. weir_pgo_free it. */
struct weir_pgo *weir_pgo_new(void);
/* Frees the decoder and its caches: every rel and type a message borrowed. NULL is a no-op. */
void weir_pgo_free(struct weir_pgo *d);

/* Decodes one pgoutput message (the data of one XLogData message, len bytes, starting with its
 * type byte) into msg, which is overwritten: clear it with weir_pgo_msg_clear before reusing it.
 * RELATION and TYPE messages update the decoder's caches, which persist across calls and across
 * reconnects (the server sends a table's Relation again before its first change on every
 * connection). Returns WEIR_OK, or WEIR_ERR with why (why_len bytes, NUL-terminated; why may be
 * NULL when why_len is 0) naming the message and the offset when the message is malformed or
 * truncated, is a streamed or two-phase message (weir asks for protocol version 1), holds a
 * binary value, or is a change to a relation no Relation message described; msg then owns
 * nothing and the caches are unchanged. Never reads past len. */
weir_status weir_pgo_decode(struct weir_pgo *d, const void *data, size_t len,
                            struct weir_pgo_msg *msg, char *why, size_t why_len);

/* Frees what msg owns (row, relids, origin_name) and zeroes it. */
void weir_pgo_msg_clear(struct weir_pgo_msg *msg);

/* The cached relation with id relid, or NULL. Borrowed, valid as for weir_pgo_msg.rel. */
const struct weir_pgo_relation *weir_pgo_relation(const struct weir_pgo *d, uint32_t relid);

/* "Begin", "Insert", ...: a message kind's name for logs. */
const char *weir_pgo_kind_name(enum weir_pgo_kind kind);

/* Converts one column value, as text in a connection with DateStyle=ISO, TimeZone=UTC,
 * bytea_output=hex and extra_float_digits=3, of type type_oid into its neutral form
 * (model/row.h): kind, elem_kind (a LIST's element kind; WEIR_VALUE_NULL for other kinds) and the
 * value's bytes, which replace out's contents. Types named by a Type message are looked up in d's
 * cache (d may be NULL: builtin types only). Never fails: text it cannot read is a STRING of the
 * text as it is. Used by weir_pgo_decode for every 't' value; exposed for tests. */
void weir_pgo_value(const struct weir_pgo *d, uint32_t type_oid, const char *text, size_t len,
                    enum weir_value_kind *kind, enum weir_value_kind *elem_kind,
                    struct weir_buf *out);

#endif
