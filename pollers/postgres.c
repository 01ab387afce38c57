/* The Postgres source (postgres://user@host:port/db): a table's row changes, read by logical
 * replication over a non-blocking libpq replication connection on the loop, with the built-in
 * pgoutput plugin (pollers/pgoutput.c decodes it). The publication (FOR TABLE the mapping's
 * tables) and the slot are created when absent, when the mapping allows it, and reused when
 * present. The slot is the checkpoint: a Standby Status Update confirms as flushed only the end
 * of transactions whose every record is done, on a timer and on the server's request, so the
 * server recycles WAL up to there and not one byte further. A second weir given the same slot
 * waits while the slot is active and takes over when it is freed. Connection lost: reconnect with
 * a capped backoff, resume from the slot. Must never know functions, HTTP or retries. */
#include "pollers/postgres.h"

#include <ctype.h>
#include <event2/event.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/resolve.h"
#include "pollers/pgoutput.h"
#include "pollers/poller.h"

/* Records handed over in one turn of the loop at most; the next turn goes on. */
#define DRAIN_MAX 10000
/* A status update goes out at least this often (pg_recvlogical's default), and at most once
 * this often when the confirmed position moves. */
#define STATUS_INTERVAL_MS 10000
#define CONFIRM_DELAY_MS   1000
/* Reconnects back off from the first to the last. */
#define RECONNECT_FIRST_MS 500
#define RECONNECT_MAX_MS   15000
/* While another process streams the slot, weir asks again this often. */
#define SLOT_WAIT_MS 1000
/* Connecting and the setup queries, together, take at most this long. */
#define SETUP_TIMEOUT_MS 30000
/* What the connection's session is set to, so values arrive in one known text form. */
#define SESSION_OPTIONS                                                                            \
    "-c datestyle=ISO -c timezone=UTC -c bytea_output=hex -c extra_float_digits=3 "                \
    "-c intervalstyle=iso_8601"
/* Postgres' epoch (2000-01-01) in Unix microseconds: the protocol's timestamps count from it. */
#define PG_EPOCH_US 946684800000000LL

enum step {
    STEP_IDLE,        /* not connected; maybe waiting to reconnect */
    STEP_RESOLVING,   /* the server's host name is looked up, off the loop's back */
    STEP_CONNECTING,  /* PQconnectPoll */
    STEP_PUB_CHECK,   /* does the publication exist */
    STEP_IDENTITY,    /* can the tables be published (a replica identity each) */
    STEP_PUB_CREATE,  /* CREATE PUBLICATION */
    STEP_KEYS,        /* the tables' primary keys */
    STEP_SLOT_CHECK,  /* does the slot exist, who holds it, where is it */
    STEP_SLOT_CREATE, /* CREATE_REPLICATION_SLOT */
    STEP_START,       /* START_REPLICATION */
    STEP_STREAMING,   /* CopyBoth */
};

/* A TRUNCATE as a barrier between lanes (on_truncate). */
enum barrier { BARRIER_NONE, BARRIER_BEFORE, BARRIER_AFTER };

/* A transaction read: its records are those below end_seq; once they are done, its end can be
 * confirmed. */
struct txn_end {
    uint64_t end_seq;
    uint64_t end_lsn;
};

/* A table's primary key, by relation id: Keys name these columns (the replica identity's when the
 * table has none). */
struct table_key {
    uint32_t relid;
    char **cols;
    size_t n;
    bool warned; /* the replica identity warning was logged */
};

struct weir_poller {
    const struct weir_mapping_cfg *mc;
    const struct weir_pg_settings *ps;
    struct weir_sink sink;
    struct event_base *base;
    char comp[96];
    char slot[64];
    char publication[64];
    char where[160]; /* host:port/db, for logs: never the password */
    struct weir_source_info info;
    char *arn;
    bool wants_old; /* the view type has OldImage */

    PGconn *conn;
    /* The host to look up before connecting: libpq's own lookup would block the loop. NULL when
     * the source names an address, a socket directory, several hosts, or a hostaddr. */
    char *lookup_host;
    int lookup_port;
    struct weir_resolver *resolver;
    struct weir_resolve *lookup;
    size_t lookups; /* made so far: where the next attempt starts in the addresses */
    enum step step;
    struct event *io_ev;    /* the socket is readable (or writable while connecting) */
    struct event *write_ev; /* libpq has output left to flush */
    struct event *drain_ev; /* another turn of reading */
    struct weir_timer *retry;
    struct weir_timer *status;
    struct weir_timer *setup_timeout; /* connecting and the setup queries end by then */
    int64_t retry_ms;
    bool started, stopping, held, lost_logged, waiting_logged;
    int64_t last_status_ms;

    /* What the setup queries found. */
    bool pub_exists, slot_exists, slot_usable;
    char unpublishable[256]; /* tables a publication would break, "" when none */
    char slot_kind[96];
    char slot_holder[16]; /* the pid streaming the slot, "" when none */
    uint64_t slot_lsn;    /* where the slot resumes (its confirmed_flush_lsn) */

    struct weir_pgo *dec;
    struct weir_buf scratch;                   /* a record's lane key, while it is made */
    const struct weir_pgo_relation *named_rel; /* whose table name `named` is */
    char named[160];
    struct table_key *keys;
    size_t n_keys;

    enum barrier barrier;
    uint32_t *barrier_relids; /* BARRIER_BEFORE: the truncated tables, markers not yet made */
    size_t barrier_n;

    /* The transaction being read. */
    bool in_txn;
    uint64_t txn_lsn; /* its commit record's LSN (Begin's final_lsn) */
    int64_t txn_time_ms;
    uint32_t txn_pos;

    /* Positions: records are numbered in the order read, across reconnects (seq). */
    uint64_t next_seq;
    uint64_t done_below; /* every record below it is done */
    struct txn_end *ends;
    size_t ends_head, ends_n, ends_cap;
    uint64_t received_lsn;  /* the last WAL position read */
    uint64_t confirmed_lsn; /* what weir confirmed (0: nothing yet in this process) */
    uint64_t sent_lsn;      /* the confirmed position last sent */
    uint64_t records, txns;
};

/* ---- names ------------------------------------------------------------------------------- */

bool weir_pg_slot_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n < 1 || n > 63)
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return false;
    return true;
}

void weir_pg_default_name(const char *mapping, char out[64])
{
    size_t n = (size_t)snprintf(out, 64, "weir_%s", mapping);
    if (n > 63)
        n = 63;
    for (size_t i = 5; i < n; i++) {
        unsigned char c = (unsigned char)out[i];
        out[i] = (char)(isalnum(c) && c < 0x80 ? tolower(c) : '_');
    }
    out[n] = '\0';
}

bool weir_pg_table_split(const char *name, char schema[64], char table[64])
{
    const char *dot = strchr(name, '.');
    const char *t = dot ? dot + 1 : name;
    size_t slen = dot ? (size_t)(dot - name) : 0;
    if (dot && (strchr(t, '.') || slen == 0))
        return false;
    if (!*t || strlen(t) > 63 || slen > 63)
        return false;
    if (dot) {
        memcpy(schema, name, slen);
        schema[slen] = '\0';
    } else {
        strcpy(schema, "public");
    }
    strcpy(table, t);
    return true;
}

static const char *lsn_str(uint64_t lsn, char out[24])
{
    snprintf(out, 24, "%X/%X", (unsigned)(lsn >> 32), (unsigned)lsn);
    return out;
}

static bool lsn_parse(const char *s, uint64_t *lsn)
{
    unsigned hi, lo;
    if (!s || sscanf(s, "%X/%X", &hi, &lo) != 2)
        return false;
    *lsn = (uint64_t)hi << 32 | lo;
    return true;
}

/* ---- the wire ------------------------------------------------------------------------------ */

static void put_u64(char *at, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        at[i] = (char)(v & 0xff);
}

static uint64_t get_u64(const char *at)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | (unsigned char)at[i];
    return v;
}

static int64_t pg_now_us(void)
{
    return weir_clock_wall_ms() * 1000 - PG_EPOCH_US;
}

static void lost(struct weir_poller *p, const char *why);

static void flush_output(struct weir_poller *p)
{
    int rc = PQflush(p->conn);
    if (rc < 0)
        lost(p, PQerrorMessage(p->conn));
    else if (rc > 0)
        event_add(p->write_ev, NULL);
}

/* Tells the server how far weir is: written (read) up to what it received, flushed and applied
 * up to what is confirmed. Nothing confirmed yet in this process: flush is left 0, which the
 * server ignores, so a position confirmed before is never moved back. */
static void status_send(struct weir_poller *p, bool reply)
{
    if (p->step != STEP_STREAMING)
        return;
    char msg[34];
    msg[0] = 'r';
    put_u64(msg + 1, p->received_lsn);
    put_u64(msg + 9, p->confirmed_lsn);
    put_u64(msg + 17, p->confirmed_lsn);
    put_u64(msg + 25, (uint64_t)pg_now_us());
    msg[33] = reply ? 1 : 0;
    if (PQputCopyData(p->conn, msg, sizeof(msg)) != 1) {
        lost(p, PQerrorMessage(p->conn));
        return;
    }
    p->last_status_ms = weir_clock_mono_ms();
    if (p->confirmed_lsn != p->sent_lsn) {
        char a[24];
        weir_debug(p->comp, "confirmed slot=%s lsn=%s", p->slot, lsn_str(p->confirmed_lsn, a));
        p->sent_lsn = p->confirmed_lsn;
    }
    flush_output(p);
}

static void status_arm(struct weir_poller *p)
{
    if (p->stopping || p->step != STEP_STREAMING)
        return;
    int64_t due = p->last_status_ms + STATUS_INTERVAL_MS;
    if (p->confirmed_lsn != p->sent_lsn && p->last_status_ms + CONFIRM_DELAY_MS < due)
        due = p->last_status_ms + CONFIRM_DELAY_MS;
    weir_timer_at(p->status, due);
}

static void on_status(void *arg)
{
    struct weir_poller *p = arg;
    status_send(p, false);
    status_arm(p);
}

/* Confirms lsn when it is further than what was confirmed. */
static void confirm(struct weir_poller *p, uint64_t lsn)
{
    if (lsn <= p->confirmed_lsn)
        return;
    p->confirmed_lsn = lsn;
    status_arm(p);
}

/* Every transaction whose records are all done is confirmed; with nothing read and not done
 * (all caught up), the server's own position is too. */
static void confirm_done(struct weir_poller *p)
{
    while (p->ends_n && p->ends[p->ends_head].end_seq <= p->done_below) {
        confirm(p, p->ends[p->ends_head].end_lsn);
        p->ends_head = (p->ends_head + 1) % p->ends_cap;
        p->ends_n--;
    }
    /* Caught up: everything the server sent before its last known position is done. */
    if (!p->in_txn && !p->ends_n && p->done_below >= p->next_seq)
        confirm(p, p->received_lsn);
}

static void ends_push(struct weir_poller *p, uint64_t end_seq, uint64_t end_lsn)
{
    /* A transaction that brought no record (Postgres before 15 sends empty ones for every
     * transaction) only moves the end of the one before: the queue holds at most one entry per
     * record read, never one per transaction the server ran. */
    if (p->ends_n) {
        struct txn_end *last = &p->ends[(p->ends_head + p->ends_n - 1) % p->ends_cap];
        if (last->end_seq == end_seq) {
            last->end_lsn = end_lsn;
            return;
        }
    }
    if (p->ends_n == p->ends_cap) {
        size_t cap = p->ends_cap ? p->ends_cap * 2 : 64;
        struct txn_end *ends = weir_calloc(cap, sizeof(*ends));
        for (size_t i = 0; i < p->ends_n; i++)
            ends[i] = p->ends[(p->ends_head + i) % p->ends_cap];
        free(p->ends);
        p->ends = ends;
        p->ends_head = 0;
        p->ends_cap = cap;
    }
    p->ends[(p->ends_head + p->ends_n) % p->ends_cap] = (struct txn_end){end_seq, end_lsn};
    p->ends_n++;
}

/* ---- records --------------------------------------------------------------------------------- */

static struct table_key *table_key(struct weir_poller *p, uint32_t relid)
{
    for (size_t i = 0; i < p->n_keys; i++)
        if (p->keys[i].relid == relid)
            return &p->keys[i];
    return NULL;
}

static void keys_clear(struct weir_poller *p)
{
    for (size_t i = 0; i < p->n_keys; i++) {
        for (size_t k = 0; k < p->keys[i].n; k++)
            free(p->keys[i].cols[k]);
        free(p->keys[i].cols);
    }
    free(p->keys);
    p->keys = NULL;
    p->n_keys = 0;
}

/* What DynamoDB would call the table: its name, schema-qualified outside "public". The last
 * one made is kept (until the next Relation message): a transaction's rows are mostly of one
 * table. Borrowed until the next call. */
static const char *table_name(struct weir_poller *p, const struct weir_pgo_relation *rel)
{
    if (rel != p->named_rel) {
        if (!strcmp(rel->schema, "public"))
            snprintf(p->named, sizeof(p->named), "%s", rel->table);
        else
            snprintf(p->named, sizeof(p->named), "%s.%s", rel->schema, rel->table);
        p->named_rel = rel;
    }
    return p->named;
}

/* Keys are the primary key's columns when the table has one, else the replica identity's. */
static void mark_keys(const struct table_key *tk, struct weir_tuple *t)
{
    if (!tk || !t)
        return;
    /* An old key of a USING INDEX identity holds the index's columns, maybe not the primary
     * key's: then the identity's flags stay, or its Keys would be empty. */
    for (size_t k = 0; k < tk->n; k++)
        if (!weir_tuple_find(t, tk->cols[k]))
            return;
    for (size_t i = 0; i < t->n; i++) {
        t->cols[i].key = false;
        for (size_t k = 0; k < tk->n; k++)
            if (!strcmp(t->cols[i].name, tk->cols[k]))
                t->cols[i].key = true;
    }
}

/* The lane key, into p->scratch: the table and its key columns' values, so one item's changes
 * keep their order. */
static void lane_key(struct weir_poller *p, const char *table, const struct weir_tuple *t)
{
    struct weir_buf *b = &p->scratch;
    weir_buf_reset(b);
    weir_buf_append(b, table, strlen(table) + 1);
    for (size_t i = 0; t && i < t->n; i++) {
        if (!t->cols[i].key)
            continue;
        weir_buf_append(b, t->cols[i].name, strlen(t->cols[i].name) + 1);
        if (t->cols[i].value)
            weir_buf_append(b, t->cols[i].value, t->cols[i].value_len);
        weir_buf_append_char(b, '\0');
    }
}

/* A record of the transaction being read, of table, with the lane key in p->scratch: one
 * allocation. */
static struct weir_record *record_new(struct weir_poller *p, const char *table)
{
    size_t table_len = strlen(table);
    struct weir_record *r = weir_record_new_packed(0, 30, table_len, true, p->scratch.len);
    /* SequenceNumber: the commit's LSN (20 digits hold any 64-bit number), then the place in
     * the transaction; transactions come in commit order, so it orders as the stream does. */
    weir_put_digits(r->id, p->txn_lsn, 20);
    weir_put_digits(r->id + 20, ++p->txn_pos, 10);
    memcpy(r->stream, table, table_len);
    memcpy(r->key, p->scratch.data, p->scratch.len);
    r->partition = 0;
    r->lane = 0;
    r->seq = p->next_seq++;
    r->sent_ms = p->txn_time_ms;
    return r;
}

static void deliver(struct weir_poller *p, struct weir_record *r)
{
    p->records++;
    p->sink.ops->deliver(p->sink.ctx, r);
}

static void warn_identity(struct weir_poller *p, const struct weir_pgo_relation *rel)
{
    struct table_key *tk = table_key(p, rel->id);
    if (!p->wants_old || rel->replica_identity == 'f' || (tk && tk->warned))
        return;
    if (tk)
        tk->warned = true;
    weir_warn(p->comp,
              "table %s.%s has REPLICA IDENTITY %s: Postgres sends no old row on UPDATE, so "
              "MODIFY records have no OldImage (and DELETE only the key's columns) although "
              "stream_view_type=%s asks for it; run: ALTER TABLE %s.%s REPLICA IDENTITY FULL",
              rel->schema, rel->table,
              rel->replica_identity == 'n'   ? "NOTHING"
              : rel->replica_identity == 'i' ? "USING INDEX"
                                             : "DEFAULT",
              p->info.stream_view_type, rel->schema, rel->table);
}

static void on_change(struct weir_poller *p, struct weir_pgo_msg *msg)
{
    const struct table_key *tk = table_key(p, msg->rel->id);
    struct weir_row *row = msg->row;
    msg->row = NULL;
    mark_keys(tk, row->new_row);
    mark_keys(tk, row->old_row);
    const char *table = table_name(p, msg->rel);
    lane_key(p, table, row->op == WEIR_ROW_DELETE && row->old_row ? row->old_row : row->new_row);
    struct weir_record *r = record_new(p, table);
    r->row = row;
    deliver(p, r);
}

/* TRUNCATE: one marker record per table (docs/postgres.md), never a silent drop. */
static void truncate_deliver(struct weir_poller *p, const uint32_t *relids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct weir_pgo_relation *rel = weir_pgo_relation(p->dec, relids[i]);
        if (!rel)
            continue;
        const char *table = table_name(p, rel);
        lane_key(p, table, NULL);
        struct weir_record *r = record_new(p, table);
        r->row = weir_row_new(WEIR_ROW_TRUNCATE);
        deliver(p, r);
    }
}

/* With parallelization_factor above 1 a marker's lane is not its rows' lanes: a TRUNCATE is a
 * barrier. Its markers go once every record before them is done, and nothing after them is read
 * until they are done, so no row of the table reaches the function on the wrong side of it. */
static void on_truncate(struct weir_poller *p, struct weir_pgo_msg *msg)
{
    if (p->mc->stream.parallelization_factor <= 1) {
        truncate_deliver(p, msg->relids, msg->n_relids);
        return;
    }
    if (p->done_below >= p->next_seq) {
        truncate_deliver(p, msg->relids, msg->n_relids);
        p->barrier = BARRIER_AFTER;
        return;
    }
    p->barrier = BARRIER_BEFORE;
    p->barrier_relids = msg->relids; /* taken */
    p->barrier_n = msg->n_relids;
    msg->relids = NULL;
    msg->n_relids = 0;
}

/* Whether reading may go on past a TRUNCATE barrier (on_truncate); delivers its markers when
 * what came before is done. */
static bool barrier_passed(struct weir_poller *p)
{
    if (p->barrier == BARRIER_NONE)
        return true;
    if (p->done_below < p->next_seq)
        return false;
    if (p->barrier == BARRIER_BEFORE) {
        truncate_deliver(p, p->barrier_relids, p->barrier_n);
        free(p->barrier_relids);
        p->barrier_relids = NULL;
        p->barrier_n = 0;
        p->barrier = BARRIER_AFTER;
        return p->done_below >= p->next_seq && barrier_passed(p);
    }
    p->barrier = BARRIER_NONE;
    return true;
}

static void barrier_clear(struct weir_poller *p)
{
    free(p->barrier_relids);
    p->barrier_relids = NULL;
    p->barrier_n = 0;
    p->barrier = BARRIER_NONE;
}

/* One pgoutput message. false: the stream cannot go on (the connection is dropped). */
static bool on_message(struct weir_poller *p, const char *data, size_t len)
{
    struct weir_pgo_msg msg;
    char why[256];
    if (weir_pgo_decode(p->dec, data, len, &msg, why, sizeof(why)) != WEIR_OK) {
        char a[24];
        weir_error(p->comp, "cannot decode a pgoutput message at lsn=%s: %s; reconnecting",
                   lsn_str(p->received_lsn, a), why);
        return false;
    }
    switch (msg.kind) {
    case WEIR_PGO_BEGIN:
        p->in_txn = true;
        p->txn_lsn = msg.final_lsn;
        p->txn_time_ms = msg.commit_time_us / 1000;
        p->txn_pos = 0;
        break;
    case WEIR_PGO_COMMIT:
        p->in_txn = false;
        p->txns++;
        ends_push(p, p->next_seq, msg.end_lsn);
        confirm_done(p);
        break;
    case WEIR_PGO_RELATION:
        p->named_rel = NULL; /* a relation may have been replaced, or moved */
        warn_identity(p, msg.rel);
        break;
    case WEIR_PGO_INSERT:
    case WEIR_PGO_UPDATE:
    case WEIR_PGO_DELETE:
        on_change(p, &msg);
        break;
    case WEIR_PGO_TRUNCATE:
        on_truncate(p, &msg);
        break;
    default: /* Type, Origin, logical messages: nothing to deliver */
        break;
    }
    weir_pgo_msg_clear(&msg);
    return true;
}

/* A keepalive: with nothing read and not done, and no transaction open, the server's position
 * can be confirmed: everything before it was sent and is done. */
static void on_keepalive(struct weir_poller *p, uint64_t wal_end, bool reply)
{
    if (wal_end > p->received_lsn)
        p->received_lsn = wal_end;
    confirm_done(p);
    if (reply)
        status_send(p, false);
}

/* One CopyData message of the stream. */
static bool on_copy(struct weir_poller *p, const char *buf, int len)
{
    if (len >= 25 && buf[0] == 'w') {
        uint64_t start = get_u64(buf + 1);
        if (start > p->received_lsn)
            p->received_lsn = start;
        return on_message(p, buf + 25, (size_t)len - 25);
    }
    if (len >= 18 && buf[0] == 'k') {
        on_keepalive(p, get_u64(buf + 1), buf[17] != 0);
        return true;
    }
    weir_warn(p->comp, "unexpected replication message type=0x%02x length=%d; ignored",
              (unsigned char)buf[0], len);
    return true;
}

static size_t room(struct weir_poller *p)
{
    size_t lane = p->sink.ops->room(p->sink.ctx, 0);
    size_t any = p->sink.ops->room(p->sink.ctx, WEIR_LANE_ANY);
    return lane < any ? lane : any;
}

/* Reads what libpq holds, as far as the mapping has room; then waits on the socket. With no room
 * the socket is not read at all: the server's sends block, and it waits (its timeout is kept
 * off by the status updates, which go out whatever is read). */
static void drain(struct weir_poller *p)
{
    uint64_t before = p->records;
    size_t n = 0;
    bool socket_read = false;
    while (p->step == STEP_STREAMING && !p->stopping && !p->held && n < DRAIN_MAX) {
        if (!barrier_passed(p) || room(p) == 0)
            break;
        char *buf = NULL;
        int len = PQgetCopyData(p->conn, &buf, 1);
        if (len == 0 && !socket_read) {
            /* What libpq held is read: the socket once more before the read ends, so a batch
             * holds what has arrived, not what one read of the socket brought. */
            socket_read = true;
            if (!PQconsumeInput(p->conn)) {
                lost(p, PQerrorMessage(p->conn));
                return;
            }
            continue;
        }
        if (len == 0) {
            event_add(p->io_ev, NULL);
            break;
        }
        socket_read = false;
        if (len < 0) {
            /* -1: the server ended the stream; -2: the connection failed. */
            PGresult *res = PQgetResult(p->conn);
            char why[256];
            snprintf(why, sizeof(why), "%s",
                     res && PQresultErrorMessage(res)[0] ? PQresultErrorMessage(res)
                     : len == -1                         ? "the server ended replication"
                                                         : PQerrorMessage(p->conn));
            PQclear(res);
            lost(p, why);
            return;
        }
        bool ok = on_copy(p, buf, len);
        PQfreemem(buf);
        n++;
        if (!ok) {
            lost(p, "undecodable message");
            return;
        }
    }
    if (n >= DRAIN_MAX && p->step == STEP_STREAMING && !p->stopping)
        event_active(p->drain_ev, EV_TIMEOUT, 0);
    if (p->records != before)
        p->sink.ops->read_done(p->sink.ctx);
}

/* ---- the connection ----------------------------------------------------------------------- */

static void on_io(evutil_socket_t fd, short what, void *arg);

static void disconnect(struct weir_poller *p)
{
    if (p->io_ev) {
        event_free(p->io_ev);
        p->io_ev = NULL;
    }
    if (p->write_ev) {
        event_free(p->write_ev);
        p->write_ev = NULL;
    }
    if (p->drain_ev)
        event_del(p->drain_ev);
    if (p->status)
        weir_timer_stop(p->status);
    if (p->setup_timeout)
        weir_timer_stop(p->setup_timeout);
    weir_resolve_cancel(p->lookup);
    p->lookup = NULL;
    if (p->conn) {
        PQfinish(p->conn);
        p->conn = NULL;
    }
    p->step = STEP_IDLE;
}

static void retry_after(struct weir_poller *p, int64_t ms)
{
    if (!p->stopping)
        weir_timer_after(p->retry, ms);
}

static void backoff(struct weir_poller *p)
{
    retry_after(p, p->retry_ms);
    p->retry_ms = p->retry_ms * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : p->retry_ms * 2;
}

/* The connection is gone (or unusable): what was read and not sent is forgotten (the server
 * sends it again from the slot), and weir reconnects. */
static void lost(struct weir_poller *p, const char *why)
{
    bool was_streaming = p->step == STEP_STREAMING;
    char clean[256];
    snprintf(clean, sizeof(clean), "%s", why ? why : "");
    clean[strcspn(clean, "\n")] = '\0';
    disconnect(p);
    if (was_streaming) {
        p->sink.ops->forget(p->sink.ctx, 0);
        p->ends_head = p->ends_n = 0;
        p->in_txn = false;
        barrier_clear(p);
        p->held = false; /* the mapping's forget dropped its pause along with what it held */
        /* What the old connection read is forgotten, not done: the next connection's position
         * starts from the slot, or its first keepalive would confirm past it. */
        p->received_lsn = 0;
        p->done_below = p->next_seq;
    }
    if (p->stopping)
        return;
    if (!p->lost_logged)
        weir_warn(p->comp,
                  "connection to %s lost; reconnecting, resuming from slot=%s, nothing is lost "
                  "why=\"%s\"",
                  p->where, p->slot, clean);
    else
        weir_debug(p->comp, "reconnect failed why=\"%s\"", clean);
    p->lost_logged = true;
    backoff(p);
}

/* A setup step failed for a reason an operator must fix (a missing table, a permission): said
 * once per distinct reason, retried with the backoff. */
static void setup_failed(struct weir_poller *p, const char *what, const PGresult *res)
{
    char why[512];
    snprintf(why, sizeof(why), "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(p->conn));
    why[strcspn(why, "\n")] = '\0';
    weir_log_limited(WEIR_LOG_ERROR, p->comp, "%s failed on %s; retrying why=\"%s\"", what,
                     p->where, why);
    p->lost_logged = true;
    disconnect(p);
    backoff(p);
}

static bool send_query(struct weir_poller *p, enum step step, const char *sql)
{
    weir_trace(p->comp, "query step=%d sql=\"%s\"", step, sql);
    p->step = step;
    if (!PQsendQuery(p->conn, sql)) {
        lost(p, PQerrorMessage(p->conn));
        return false;
    }
    flush_output(p);
    return true;
}

static void query_publication(struct weir_poller *p)
{
    char *lit = PQescapeLiteral(p->conn, p->publication, strlen(p->publication));
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT 1 FROM pg_publication WHERE pubname = %s", lit);
    PQfreemem(lit);
    send_query(p, STEP_PUB_CHECK, sql);
}

/* Before a publication is made: a table without a replica identity (no primary key and the
 * DEFAULT identity, or NOTHING) would have its UPDATEs and DELETEs refused by Postgres once it
 * is published. A table that does not exist fails the cast, with Postgres' own message. */
static void query_identity(struct weir_poller *p)
{
    struct weir_buf sql;
    weir_buf_init(&sql);
    weir_buf_append_str(&sql, "SELECT c.oid::regclass::text, c.relreplident, EXISTS (SELECT 1 "
                              "FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) "
                              "FROM pg_class c WHERE c.oid IN (");
    for (size_t i = 0; i < p->ps->n_tables; i++) {
        char schema[64], table[64], name[300];
        weir_pg_table_split(p->ps->tables[i], schema, table); /* checked by validate */
        char *s = PQescapeIdentifier(p->conn, schema, strlen(schema));
        char *t = PQescapeIdentifier(p->conn, table, strlen(table));
        snprintf(name, sizeof(name), "%s.%s", s, t);
        char *lit = PQescapeLiteral(p->conn, name, strlen(name));
        weir_buf_printf(&sql, "%s%s::regclass", i ? ", " : "", lit);
        PQfreemem(s);
        PQfreemem(t);
        PQfreemem(lit);
    }
    weir_buf_append_char(&sql, ')');
    p->unpublishable[0] = '\0';
    send_query(p, STEP_IDENTITY, sql.data);
    weir_buf_deinit(&sql);
}

static void identity_read(struct weir_poller *p, const PGresult *res)
{
    for (int i = 0; i < PQntuples(res); i++) {
        char ident = PQgetvalue(res, i, 1)[0];
        bool pk = !strcmp(PQgetvalue(res, i, 2), "t");
        if (ident == 'n' || (ident == 'd' && !pk)) {
            size_t at = strlen(p->unpublishable);
            snprintf(p->unpublishable + at, sizeof(p->unpublishable) - at, "%s%s", at ? ", " : "",
                     PQgetvalue(res, i, 0));
        }
    }
}

static void create_publication(struct weir_poller *p)
{
    struct weir_buf sql;
    weir_buf_init(&sql);
    char *pub = PQescapeIdentifier(p->conn, p->publication, strlen(p->publication));
    weir_buf_printf(&sql, "CREATE PUBLICATION %s FOR TABLE ", pub);
    PQfreemem(pub);
    for (size_t i = 0; i < p->ps->n_tables; i++) {
        char schema[64], table[64];
        weir_pg_table_split(p->ps->tables[i], schema, table); /* checked by validate */
        char *s = PQescapeIdentifier(p->conn, schema, strlen(schema));
        char *t = PQescapeIdentifier(p->conn, table, strlen(table));
        weir_buf_printf(&sql, "%s%s.%s", i ? ", " : "", s, t);
        PQfreemem(s);
        PQfreemem(t);
    }
    weir_info(p->comp, "creating publication=%s for %zu table(s)", p->publication, p->ps->n_tables);
    send_query(p, STEP_PUB_CREATE, sql.data);
    weir_buf_deinit(&sql);
}

static void query_keys(struct weir_poller *p)
{
    char *lit = PQescapeLiteral(p->conn, p->publication, strlen(p->publication));
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "SELECT c.oid, a.attname FROM pg_publication_tables pt "
             "JOIN pg_namespace n ON n.nspname = pt.schemaname "
             "JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename "
             "JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary "
             "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey) "
             "WHERE pt.pubname = %s ORDER BY c.oid, array_position(i.indkey::int2[], a.attnum)",
             lit);
    PQfreemem(lit);
    send_query(p, STEP_KEYS, sql);
}

static void keys_read(struct weir_poller *p, const PGresult *res)
{
    keys_clear(p);
    for (int i = 0; i < PQntuples(res); i++) {
        uint32_t relid = (uint32_t)strtoul(PQgetvalue(res, i, 0), NULL, 10);
        struct table_key *tk = table_key(p, relid);
        if (!tk) {
            p->keys = weir_realloc(p->keys, (p->n_keys + 1) * sizeof(*p->keys));
            tk = &p->keys[p->n_keys++];
            *tk = (struct table_key){.relid = relid};
        }
        tk->cols = weir_realloc(tk->cols, (tk->n + 1) * sizeof(*tk->cols));
        tk->cols[tk->n++] = weir_strdup(PQgetvalue(res, i, 1));
    }
}

static void query_slot(struct weir_poller *p)
{
    char *lit = PQescapeLiteral(p->conn, p->slot, strlen(p->slot));
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT plugin, database = current_database(), active_pid, confirmed_flush_lsn, "
             "slot_type FROM pg_replication_slots WHERE slot_name = %s",
             lit);
    PQfreemem(lit);
    send_query(p, STEP_SLOT_CHECK, sql);
}

static void create_slot(struct weir_poller *p)
{
    char *slot = PQescapeIdentifier(p->conn, p->slot, strlen(p->slot));
    char sql[256];
    snprintf(sql, sizeof(sql), "CREATE_REPLICATION_SLOT %s LOGICAL pgoutput NOEXPORT_SNAPSHOT",
             slot);
    PQfreemem(slot);
    weir_info(p->comp, "creating slot=%s (pgoutput) on %s", p->slot, p->where);
    send_query(p, STEP_SLOT_CREATE, sql);
}

static void start_replication(struct weir_poller *p)
{
    char *slot = PQescapeIdentifier(p->conn, p->slot, strlen(p->slot));
    /* publication_names is a list of identifiers inside a string literal. */
    char *pub = PQescapeIdentifier(p->conn, p->publication, strlen(p->publication));
    char *names = PQescapeLiteral(p->conn, pub, strlen(pub));
    char sql[512];
    snprintf(sql, sizeof(sql),
             "START_REPLICATION SLOT %s LOGICAL 0/0 (proto_version '1', publication_names %s)",
             slot, names);
    PQfreemem(slot);
    PQfreemem(pub);
    PQfreemem(names);
    send_query(p, STEP_START, sql);
}

/* What the slot lookup found, acted on once the query is over. */
static void slot_found(struct weir_poller *p, const PGresult *res)
{
    p->slot_exists = PQntuples(res) > 0;
    if (!p->slot_exists)
        return;
    snprintf(p->slot_kind, sizeof(p->slot_kind), "%s %s", PQgetvalue(res, 0, 4),
             PQgetvalue(res, 0, 0));
    p->slot_usable = !strcmp(PQgetvalue(res, 0, 4), "logical") &&
                     !strcmp(PQgetvalue(res, 0, 0), "pgoutput") &&
                     !strcmp(PQgetvalue(res, 0, 1), "t");
    snprintf(p->slot_holder, sizeof(p->slot_holder), "%s",
             PQgetisnull(res, 0, 2) ? "" : PQgetvalue(res, 0, 2));
    uint64_t lsn;
    if (lsn_parse(PQgetvalue(res, 0, 3), &lsn))
        p->slot_lsn = lsn;
}

static void slot_decide(struct weir_poller *p)
{
    if (!p->slot_exists) {
        if (p->ps->create_slot) {
            create_slot(p);
            return;
        }
        weir_log_limited(WEIR_LOG_ERROR, p->comp,
                         "slot %s does not exist on %s and create_slot is false; create it "
                         "(SELECT pg_create_logical_replication_slot('%s', 'pgoutput')) or let "
                         "weir; retrying",
                         p->slot, p->where, p->slot);
        p->lost_logged = true;
        disconnect(p);
        backoff(p);
        return;
    }
    if (!p->slot_usable) {
        weir_log_limited(WEIR_LOG_ERROR, p->comp,
                         "slot %s on %s is not a logical pgoutput slot of this database (%s); "
                         "name another slot_name; retrying",
                         p->slot, p->where, p->slot_kind);
        p->lost_logged = true;
        disconnect(p);
        backoff(p);
        return;
    }
    if (p->slot_holder[0]) {
        if (!p->waiting_logged)
            weir_info(p->comp,
                      "slot %s is streamed by another process (pid %s); waiting to take over",
                      p->slot, p->slot_holder);
        p->waiting_logged = true;
        disconnect(p);
        retry_after(p, SLOT_WAIT_MS);
        return;
    }
    start_replication(p);
}

static void streaming_begins(struct weir_poller *p)
{
    char a[24];
    p->step = STEP_STREAMING;
    weir_timer_stop(p->setup_timeout);
    p->retry_ms = RECONNECT_FIRST_MS;
    p->last_status_ms = weir_clock_mono_ms();
    status_arm(p);
    if (p->lost_logged || p->waiting_logged)
        weir_info(p->comp, "streaming slot=%s from %s again, from lsn=%s", p->slot, p->where,
                  lsn_str(p->slot_lsn, a));
    else
        weir_info(p->comp, "streaming slot=%s publication=%s from %s, from lsn=%s", p->slot,
                  p->publication, p->where, lsn_str(p->slot_lsn, a));
    p->lost_logged = p->waiting_logged = false;
}

/* One result of the step's query. Errors end the connection at once; what comes next is decided
 * when the query is over (libpq takes no new query before). */
static bool on_result(struct weir_poller *p, PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    if (p->step == STEP_START && st == PGRES_COPY_BOTH) {
        streaming_begins(p);
        return true;
    }
    bool ok = st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
    if (!ok) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        /* 55006 object_in_use: the slot became active since it was looked up. */
        if (p->step == STEP_START && state && !strcmp(state, "55006")) {
            disconnect(p);
            retry_after(p, SLOT_WAIT_MS);
            return false;
        }
        static const char *const what[] = {
            [STEP_PUB_CHECK] = "looking up the publication",
            [STEP_IDENTITY] = "checking the tables",
            [STEP_PUB_CREATE] = "CREATE PUBLICATION",
            [STEP_KEYS] = "reading the tables' primary keys",
            [STEP_SLOT_CHECK] = "looking up the slot",
            [STEP_SLOT_CREATE] = "CREATE_REPLICATION_SLOT",
            [STEP_START] = "START_REPLICATION",
        };
        setup_failed(p, what[p->step] ? what[p->step] : "a query", res);
        return false;
    }
    switch (p->step) {
    case STEP_PUB_CHECK:
        p->pub_exists = PQntuples(res) > 0;
        break;
    case STEP_IDENTITY:
        identity_read(p, res);
        break;
    case STEP_KEYS:
        keys_read(p, res);
        break;
    case STEP_SLOT_CHECK:
        slot_found(p, res);
        break;
    case STEP_SLOT_CREATE: {
        /* slot_name, consistent_point, snapshot_name, output_plugin */
        uint64_t lsn;
        if (PQnfields(res) > 1 && PQntuples(res) > 0 && lsn_parse(PQgetvalue(res, 0, 1), &lsn))
            p->slot_lsn = lsn;
        break;
    }
    default:
        break;
    }
    return true;
}

/* The step's query is over: the next one. */
static void query_done(struct weir_poller *p)
{
    switch (p->step) {
    case STEP_PUB_CHECK:
        if (p->pub_exists) {
            query_keys(p);
        } else if (p->ps->create_publication && p->ps->n_tables) {
            query_identity(p);
        } else {
            weir_log_limited(WEIR_LOG_ERROR, p->comp,
                             "publication %s does not exist on %s and %s; retrying", p->publication,
                             p->where,
                             p->ps->n_tables ? "create_publication is false"
                                             : "the mapping names no tables to create it for");
            p->lost_logged = true;
            disconnect(p);
            backoff(p);
        }
        return;
    case STEP_IDENTITY:
        if (p->unpublishable[0]) {
            weir_log_limited(WEIR_LOG_ERROR, p->comp,
                             "not creating publication %s: %s %s no primary key and no replica "
                             "identity, and Postgres refuses UPDATE and DELETE on a published "
                             "table without one; give it a primary key or run ALTER TABLE ... "
                             "REPLICA IDENTITY FULL; retrying",
                             p->publication, p->unpublishable,
                             strchr(p->unpublishable, ',') ? "have" : "has");
            p->lost_logged = true;
            disconnect(p);
            backoff(p);
            return;
        }
        create_publication(p);
        return;
    case STEP_PUB_CREATE:
        query_keys(p);
        return;
    case STEP_KEYS:
        query_slot(p);
        return;
    case STEP_SLOT_CHECK:
        slot_decide(p);
        return;
    case STEP_SLOT_CREATE:
        start_replication(p);
        return;
    default:
        /* START_REPLICATION ended without streaming: never seen, but not a loop either. */
        lost(p, "START_REPLICATION ended without streaming");
        return;
    }
}

/* Reads query results until the step's query is over or more input is needed. */
static void serve_query(struct weir_poller *p)
{
    while (p->conn && p->step > STEP_CONNECTING && p->step < STEP_STREAMING) {
        if (PQisBusy(p->conn)) {
            event_add(p->io_ev, NULL);
            return;
        }
        PGresult *res = PQgetResult(p->conn);
        if (!res) {
            query_done(p);
            continue;
        }
        bool go_on = on_result(p, res);
        PQclear(res);
        if (!go_on)
            return;
    }
    if (p->conn && p->step == STEP_STREAMING)
        drain(p);
}

static void io_arm(struct weir_poller *p, short what)
{
    if (p->io_ev)
        event_free(p->io_ev);
    p->io_ev = event_new(p->base, PQsocket(p->conn), what, on_io, p);
    event_add(p->io_ev, NULL);
}

/* Drives PQconnectPoll; once connected, the setup queries begin. */
static void connect_poll(struct weir_poller *p)
{
    switch (PQconnectPoll(p->conn)) {
    case PGRES_POLLING_READING:
        io_arm(p, EV_READ);
        return;
    case PGRES_POLLING_WRITING:
        io_arm(p, EV_WRITE);
        return;
    case PGRES_POLLING_FAILED:
        lost(p, PQerrorMessage(p->conn));
        return;
    default:
        break;
    }
    if (PQsetnonblocking(p->conn, 1) != 0) {
        lost(p, PQerrorMessage(p->conn));
        return;
    }
    io_arm(p, EV_READ);
    p->write_ev = event_new(p->base, PQsocket(p->conn), EV_WRITE, on_io, p);
    weir_debug(p->comp, "connected to %s (server %d)", p->where, PQserverVersion(p->conn));
    query_publication(p);
}

static void on_io(evutil_socket_t fd, short what, void *arg)
{
    struct weir_poller *p = arg;
    if (p->step == STEP_CONNECTING) {
        connect_poll(p);
        return;
    }
    if (what & EV_WRITE) {
        flush_output(p);
        if (!p->conn)
            return;
    }
    if (what & EV_READ) {
        if (p->step == STEP_STREAMING && (p->held || room(p) == 0))
            return; /* not read until resumed: the server waits */
        if (!PQconsumeInput(p->conn)) {
            lost(p, PQerrorMessage(p->conn));
            return;
        }
    }
    serve_query(p);
}

static void on_drain(evutil_socket_t fd, short what, void *arg)
{
    struct weir_poller *p = arg;
    if (p->conn && p->step == STEP_STREAMING)
        drain(p);
}

/* Connects; hostaddr, when given, is the comma-separated addresses of the source's host, which
 * libpq then tries in turn without a lookup of its own. */
static void connect_to(struct weir_poller *p, const char *hosts, const char *hostaddrs)
{
    const char *keys[] = {"dbname", "replication", "options", "fallback_application_name",
                          "host",   "hostaddr",    NULL};
    const char *values[] = {p->mc->source, "database", SESSION_OPTIONS, "weir", hosts,
                            hostaddrs,     NULL};
    if (!hostaddrs)
        keys[4] = values[4] = NULL;
    p->conn = PQconnectStartParams(keys, values, 1);
    if (!p->conn || PQstatus(p->conn) == CONNECTION_BAD) {
        lost(p, p->conn ? PQerrorMessage(p->conn) : "out of memory");
        return;
    }
    p->step = STEP_CONNECTING;
    /* The lookup, when there was one, counts in the same 30 s. */
    if (!weir_timer_armed(p->setup_timeout))
        weir_timer_after(p->setup_timeout, SETUP_TIMEOUT_MS);
    if (PQsocket(p->conn) < 0) {
        lost(p, PQerrorMessage(p->conn));
        return;
    }
    io_arm(p, EV_WRITE);
}

static void on_resolved(const char *const *addrs, size_t n, const struct weir_err *err, void *arg)
{
    struct weir_poller *p = arg;
    p->lookup = NULL;
    if (err) {
        lost(p, err->msg);
        return;
    }
    /* libpq wants one host per address, the name kept for TLS checks and its messages. libpq
     * gives a silent address the whole setup timeout, so each attempt starts one address further
     * on: one that is down cannot hold every attempt. */
    struct weir_buf hosts, hostaddrs;
    weir_buf_init(&hosts);
    weir_buf_init(&hostaddrs);
    size_t first = p->lookups++ % n;
    for (size_t i = 0; i < n; i++) {
        weir_buf_printf(&hosts, "%s%s", i ? "," : "", p->lookup_host);
        weir_buf_printf(&hostaddrs, "%s%s", i ? "," : "", addrs[(first + i) % n]);
    }
    weir_debug(p->comp, "postgres: host looked up host=%s addresses=%s", p->lookup_host,
               hostaddrs.data);
    connect_to(p, hosts.data, hostaddrs.data);
    weir_buf_deinit(&hosts);
    weir_buf_deinit(&hostaddrs);
}

static void step_connect(struct weir_poller *p)
{
    if (!p->lookup_host) {
        connect_to(p, NULL, NULL);
        return;
    }
    if (!p->resolver) {
        struct weir_err err = {{0}};
        p->resolver = weir_resolver_new(p->base, &err);
        if (!p->resolver) {
            lost(p, err.msg);
            return;
        }
    }
    p->step = STEP_RESOLVING;
    weir_timer_after(p->setup_timeout, SETUP_TIMEOUT_MS);
    p->lookup = weir_resolve_all_start(p->resolver, p->lookup_host, p->lookup_port, on_resolved, p);
}

/* libpq's connect_timeout does not hold for a non-blocking connection, nor does anything for
 * the setup queries: a server that accepts and then says nothing is given up here. */
static void on_setup_timeout(void *arg)
{
    struct weir_poller *p = arg;
    if ((p->conn || p->lookup) && p->step != STEP_STREAMING)
        lost(p, "no answer within 30 s while connecting and setting up replication");
}

static void on_retry(void *arg)
{
    struct weir_poller *p = arg;
    if (!p->stopping && !p->conn && !p->lookup)
        step_connect(p);
}

/* ---- the ops ------------------------------------------------------------------------------ */

static void pg_free(struct weir_poller *p)
{
    if (!p)
        return;
    disconnect(p);
    weir_resolver_free(p->resolver);
    free(p->lookup_host);
    if (p->drain_ev)
        event_free(p->drain_ev);
    weir_timer_free(p->retry);
    weir_timer_free(p->status);
    weir_timer_free(p->setup_timeout);
    weir_pgo_free(p->dec);
    weir_buf_deinit(&p->scratch);
    barrier_clear(p);
    keys_clear(p);
    free(p->ends);
    free(p->arn);
    free(p);
}

static struct weir_poller *pg_new(const struct weir_poller_args *args, struct weir_err *err)
{
    static const struct weir_pg_settings defaults = {.create_publication = true,
                                                     .create_slot = true};
    struct weir_poller *p = weir_calloc(1, sizeof(*p));
    p->mc = args->mc;
    p->ps = args->mc->settings ? args->mc->settings : &defaults;
    p->sink = args->sink;
    p->base = args->base;
    snprintf(p->comp, sizeof(p->comp), "%s", args->component);
    if (p->ps->slot_name)
        snprintf(p->slot, sizeof(p->slot), "%s", p->ps->slot_name);
    else
        weir_pg_default_name(p->mc->name, p->slot);
    if (p->ps->publication_name)
        snprintf(p->publication, sizeof(p->publication), "%s", p->ps->publication_name);
    else
        weir_pg_default_name(p->mc->name, p->publication);

    p->dec = weir_pgo_new();
    weir_buf_init(&p->scratch);
    p->drain_ev = event_new(p->base, -1, 0, on_drain, p);
    p->retry = weir_timer_new(p->base, on_retry, p);
    p->status = weir_timer_new(p->base, on_status, p);
    p->setup_timeout = weir_timer_new(p->base, on_setup_timeout, p);

    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(p->mc->source, &why);
    if (!opts) {
        weir_err_set(err, "postgres source: %s", why ? why : "out of memory");
        PQfreemem(why);
        goto fail;
    }
    const char *host = "localhost", *port = "5432", *db = NULL, *user = NULL;
    const char *name = getenv("PGHOST"), *env_port = getenv("PGPORT");
    /* libpq reads these too: a hostaddr or a service file of the user's own is left to it. */
    bool left_to_libpq = (getenv("PGHOSTADDR") && *getenv("PGHOSTADDR")) ||
                         (getenv("PGSERVICE") && *getenv("PGSERVICE"));
    if (name && *name)
        host = name;
    if (env_port && *env_port)
        port = env_port;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val)
            continue;
        if (!strcmp(o->keyword, "host") || !strcmp(o->keyword, "hostaddr"))
            host = o->val;
        else if (!strcmp(o->keyword, "port"))
            port = o->val;
        else if (!strcmp(o->keyword, "dbname"))
            db = o->val;
        else if (!strcmp(o->keyword, "user"))
            user = o->val;
        if (!strcmp(o->keyword, "host"))
            name = o->val;
        if ((!strcmp(o->keyword, "hostaddr") || !strcmp(o->keyword, "service")) && o->val[0])
            left_to_libpq = true;
    }
    snprintf(p->where, sizeof(p->where), "%s:%s/%s", host, port, db ? db : user ? user : "");
    /* One host by name (the URI's, or PGHOST's): looked up by weir (libpq would block the loop
     * doing it). A socket directory, several hosts, a hostaddr or a service are libpq's. */
    if (name && name[0] && name[0] != '/' && name[0] != '@' && !strchr(name, ',') &&
        !left_to_libpq && !strchr(port, ',')) {
        p->lookup_host = weir_strdup(name);
        p->lookup_port = atoi(port);
        if (p->lookup_port <= 0 || p->lookup_port > 65535)
            p->lookup_port = 5432;
    }
    PQconninfoFree(opts);

    const char *first = p->ps->n_tables ? p->ps->tables[0] : p->publication;
    size_t len = strlen(args->region) + strlen(first) + strlen(p->slot) + 64;
    p->arn = weir_malloc(len);
    snprintf(p->arn, len, "arn:aws:dynamodb:%s:000000000000:table/%s/stream/%s", args->region,
             first, p->slot);
    p->info.source_arn = p->arn;
    p->info.stream_label = p->slot;
    p->info.stream_view_type =
        p->ps->stream_view_type ? p->ps->stream_view_type : "NEW_AND_OLD_IMAGES";
    p->info.arrays_as_sets = p->ps->arrays_as_sets;
    p->info.ordered_lanes = true;
    p->wants_old = !strcmp(p->info.stream_view_type, "NEW_AND_OLD_IMAGES") ||
                   !strcmp(p->info.stream_view_type, "OLD_IMAGE");

    p->retry_ms = RECONNECT_FIRST_MS;
    p->next_seq = 1;
    p->done_below = 1;
    return p;
fail:
    pg_free(p);
    return NULL;
}

static const struct weir_source_info *pg_info(const struct weir_poller *p)
{
    return &p->info;
}

static weir_status pg_start(struct weir_poller *p)
{
    p->started = true;
    step_connect(p);
    return WEIR_OK;
}

/* The mapping holds enough: the socket is not read until resumed; the server's sends wait. */
static void pg_pause(struct weir_poller *p, uint32_t lane)
{
    if (p->held)
        return;
    p->held = true;
    weir_debug(p->comp, "reading paused");
}

static void pg_resume(struct weir_poller *p, uint32_t lane)
{
    if (p->stopping)
        return;
    if (lane != WEIR_LANE_ANY && p->held) {
        p->held = false;
        weir_debug(p->comp, "reading resumed");
    }
    /* What libpq holds already woke nobody: read it now. */
    if (p->conn && p->step == STEP_STREAMING)
        event_active(p->drain_ev, EV_TIMEOUT, 0);
}

/* Records are settled by position (pg_checkpoint). */
static void pg_settle(struct weir_poller *p, const struct weir_batch *b)
{
}

static void pg_checkpoint(struct weir_poller *p, uint32_t lane, uint64_t done_below)
{
    if (done_below <= p->done_below)
        return;
    p->done_below = done_below;
    confirm_done(p);
    if (p->barrier != BARRIER_NONE && done_below >= p->next_seq && p->conn &&
        p->step == STEP_STREAMING)
        event_active(p->drain_ev, EV_TIMEOUT, 0);
}

/* The mapping calls this once nothing of it is in flight: the last confirmed position goes out,
 * then the connection closes. */
static void pg_stop(struct weir_poller *p, void (*done)(void *arg), void *arg)
{
    p->stopping = true;
    weir_timer_stop(p->retry);
    if (p->conn && p->step == STEP_STREAMING) {
        /* One try, never a wait: an update that does not get out leaves the slot where the
         * last one did, and the next start reads a little again. */
        status_send(p, false);
    }
    char a[24];
    weir_info(p->comp, "replication closed slot=%s records=%llu transactions=%llu confirmed=%s",
              p->slot, (unsigned long long)p->records, (unsigned long long)p->txns,
              lsn_str(p->confirmed_lsn, a));
    disconnect(p);
    done(arg);
}

static const struct weir_poller_ops pg_ops = {
    .new = pg_new,
    .info = pg_info,
    .start = pg_start,
    .pause = pg_pause,
    .resume = pg_resume,
    .settle = pg_settle,
    .checkpoint = pg_checkpoint,
    .stop = pg_stop,
    .free = pg_free,
};

/* ---- the row ------------------------------------------------------------------------------ */

static const struct weir_cfg_key pg_keys[] = {
    WEIR_CFG_KEY_STRINGS("tables", struct weir_pg_settings, tables, n_tables, 1, 100),
    WEIR_CFG_KEY_STRING("publication_name", struct weir_pg_settings, publication_name, 1),
    WEIR_CFG_KEY_STRING("slot_name", struct weir_pg_settings, slot_name, 1),
    WEIR_CFG_KEY_BOOL("create_publication", struct weir_pg_settings, create_publication, 1),
    WEIR_CFG_KEY_BOOL("create_slot", struct weir_pg_settings, create_slot, 1),
    WEIR_CFG_KEY_STRING("stream_view_type", struct weir_pg_settings, stream_view_type, 1),
    WEIR_CFG_KEY_BOOL("arrays_as_sets", struct weir_pg_settings, arrays_as_sets, 0),
    WEIR_CFG_KEY_STRING("starting_position", struct weir_pg_settings, starting_position, 1),
};

/* Replaces every `from` in text (NUL-terminated, size bytes) with `to`, searching on after each
 * replacement. */
static void replace_all(char *text, size_t size, const char *from, size_t from_len, const char *to)
{
    char out[512];
    size_t o = 0, to_len = strlen(to);
    for (const char *m = text; *m && o + to_len + 1 < sizeof(out);) {
        if (from_len && !strncmp(m, from, from_len)) {
            memcpy(out + o, to, to_len);
            o += to_len;
            m += from_len;
        } else {
            out[o++] = *m++;
        }
    }
    size_t n = o < size ? o : size - 1;
    memcpy(text, out, n);
    text[n] = '\0';
}

/* libpq's message about a URI it refused may quote the URI, or a part of it, password and all.
 * The URI is written with its password masked, a quoted token that is the password masked, and
 * any other occurrence of a password of 4 bytes or more (a shorter one would mask ordinary
 * letters of the message). */
static void redact_password(const char *uri, char *msg, size_t msg_size)
{
    const char *auth = strstr(uri, "://");
    if (!auth)
        return;
    auth += 3;
    size_t auth_len = strcspn(auth, "@/");
    if (auth[auth_len] != '@')
        return;
    const char *colon = memchr(auth, ':', auth_len);
    if (!colon || colon + 1 == auth + auth_len)
        return;
    char password[260], quoted[264], redacted[512];
    size_t len = (size_t)(auth + auth_len - colon - 1);
    if (len > 255)
        len = 255;
    memcpy(password, colon + 1, len);
    password[len] = '\0';
    weir_log_redact_uri(uri, redacted, sizeof(redacted));
    replace_all(msg, msg_size, uri, strlen(uri), redacted);
    snprintf(quoted, sizeof(quoted), "\"%s\"", password);
    replace_all(msg, msg_size, quoted, len + 2, "\"***\"");
    if (len >= 4)
        replace_all(msg, msg_size, password, len, "***");
}

static void pg_validate(const struct weir_mapping_cfg *mc, struct weir_cfg_report *rep)
{
    const struct weir_pg_settings *ps = mc->settings;
    const char *name = mc->name ? mc->name : "?";
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(mc->source, &why);
    if (!opts) {
        char line[256];
        snprintf(line, sizeof(line), "%s", why ? why : "out of memory");
        line[strcspn(line, "\n")] = '\0';
        redact_password(mc->source, line, sizeof(line));
        weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "source"),
                            "mapping '%s': not a Postgres connection URI "
                            "(postgres://user:password@host:port/database): %s",
                            name, line);
        PQfreemem(why);
    } else {
        for (PQconninfoOption *o = opts; o->keyword; o++)
            if (o->val && !strcmp(o->keyword, "replication"))
                weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "source"),
                                    "mapping '%s': the source URI sets replication=; weir opens "
                                    "its own replication connection",
                                    name);
        PQconninfoFree(opts);
    }
    for (size_t i = 0; i < ps->n_tables; i++) {
        char schema[64], table[64];
        if (!weir_pg_table_split(ps->tables[i], schema, table))
            weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "tables"),
                                "mapping '%s': table \"%s\" is not table or schema.table (each "
                                "at most 63 bytes)",
                                name, ps->tables[i]);
    }
    if (weir_mapping_cfg_has(mc, "tables") && !ps->n_tables)
        weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "tables"),
                            "mapping '%s': tables is empty; name 1..100 tables, or leave the key "
                            "out to use an existing publication (create_publication: false)",
                            name);
    else if (!ps->n_tables &&
             (!weir_mapping_cfg_has(mc, "create_publication") || ps->create_publication))
        weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "source"),
                            "mapping '%s': a Postgres mapping names its tables (tables: "
                            "[orders]), or an existing publication (publication_name, with "
                            "create_publication: false)",
                            name);
    if (ps->slot_name && !weir_pg_slot_name_ok(ps->slot_name))
        weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "slot_name"),
                            "mapping '%s': slot_name \"%s\" is not a replication slot name (1..63 "
                            "of a-z 0-9 _)",
                            name, ps->slot_name);
    if (ps->publication_name && strlen(ps->publication_name) > 63)
        weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "publication_name"),
                            "mapping '%s': publication_name is longer than 63 bytes", name);
    const char *vt = ps->stream_view_type;
    if (vt && strcmp(vt, "KEYS_ONLY") && strcmp(vt, "NEW_IMAGE") && strcmp(vt, "OLD_IMAGE") &&
        strcmp(vt, "NEW_AND_OLD_IMAGES"))
        weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "stream_view_type"),
                            "mapping '%s': stream_view_type \"%s\" is not KEYS_ONLY, NEW_IMAGE, "
                            "OLD_IMAGE or NEW_AND_OLD_IMAGES",
                            name, vt);
    const char *sp = ps->starting_position;
    if (sp && strcmp(sp, "TRIM_HORIZON") && strcmp(sp, "LATEST"))
        weir_cfg_report_add(rep, weir_mapping_cfg_pos(mc, "starting_position"),
                            "mapping '%s': starting_position \"%s\" is not TRIM_HORIZON or LATEST "
                            "(a DynamoDB stream has no AT_TIMESTAMP)",
                            name, sp);
}

/* A replication slot has one reader, and its name is the server's (not one database's): a slot
 * name on one server is a mapping's alone. The server is as the URI writes it (localhost and
 * 127.0.0.1 are two). */
static bool pg_claim(const struct weir_mapping_cfg *mc, char *out, size_t len, const char **key)
{
    const struct weir_pg_settings *ps = mc->settings;
    char slot[64];
    if (ps && ps->slot_name)
        snprintf(slot, sizeof(slot), "%s", ps->slot_name);
    else
        weir_pg_default_name(mc->name, slot);
    PQconninfoOption *opts = PQconninfoParse(mc->source, NULL);
    if (!opts)
        return false;
    const char *host = NULL, *port = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val)
            continue;
        if (!strcmp(o->keyword, "host") || (!host && !strcmp(o->keyword, "hostaddr")))
            host = o->val;
        else if (!strcmp(o->keyword, "port"))
            port = o->val;
    }
    snprintf(out, len, "replication slot \"%s\" on %s:%s", slot, host ? host : "(the local socket)",
             port ? port : "5432");
    PQconninfoFree(opts);
    *key = "slot_name";
    return true;
}

const struct weir_source weir_source_postgres = {
    .config =
        {
            .name = "postgres",
            .scheme = "postgres",
            .example_uri = "postgres://weir@127.0.0.1:5432/shop",
            .keys = pg_keys,
            .n_keys = sizeof(pg_keys) / sizeof(*pg_keys),
            .settings_size = sizeof(struct weir_pg_settings),
            .default_batch_size = 100,
            .max_batch_size = 10000,
            .default_window_ms = 0,
            .stream = true,
            .validate = pg_validate,
            .claim = pg_claim,
        },
    .format = &weir_format_dynamodb,
    .delivery = WEIR_DELIVERY_STREAM,
    .ops = &pg_ops,
};
