/* The asynchronous invocation queue's store: where accepted events wait, durably, for their
 * attempts and their destinations. A small table of operations, so the queue (dispatcher/async.c)
 * knows no database: SQLite is the embedded default (store/async_sqlite.c); a store on Redis or
 * Postgres, shared by several weir processes, is another row with the same operations (its take
 * would lease rows where SQLite's remembers what this process took). Must never decide what
 * happens to an event. */
#ifndef WEIR_ASYNC_STORE_H
#define WEIR_ASYNC_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/list.h"
#include "core/status.h"

/* Outcomes an event can end with, as destinations name them (reference 3.5). */
enum weir_async_outcome {
    WEIR_ASYNC_UNDECIDED = 0,
    WEIR_ASYNC_SUCCESS,
    WEIR_ASYNC_RETRIES_EXHAUSTED,
    WEIR_ASYNC_EVENT_AGE_EXCEEDED,
};

const char *weir_async_outcome_name(enum weir_async_outcome o); /* "Success", ... */

/* One accepted event, as stored. Strings and the payload are owned by the event. */
struct weir_async_event {
    int64_t id;          /* the store's, set by put */
    char *function;      /* the function's name */
    char request_id[37]; /* the invocation's id: x-amzn-RequestId, requestContext.requestId */
    char *origin;        /* who sent it, for logs: "api", "mapping/photos" */
    char *payload;       /* the event JSON the function receives */
    size_t payload_len;
    int64_t accepted_ms;             /* wall ms it was accepted: its age counts from here */
    int64_t due_ms;                  /* wall ms of its next attempt */
    uint32_t invokes;                /* attempts made (approximateInvokeCount) */
    uint32_t function_errors;        /* of those, the ones the function failed */
    int64_t backoff_ms;              /* the last delay after a throttle, 0 when none */
    enum weir_async_outcome outcome; /* decided: only its destinations are left */
    uint32_t pending_sinks;          /* once decided: the destinations (bits) still to receive it */
    /* The last attempt's answer, for the destination record and the dead-letter attributes. */
    long last_status;    /* HTTP status (exec: 200 on exit 0), 0 when the function never ran */
    char *last_error;    /* X-Amz-Function-Error ("Unhandled"), or why it never ran; NULL if none */
    char *last_response; /* the function's response payload; NULL if none */
    size_t last_response_len;
    struct weir_list link; /* whoever holds the event: a put, a take, the queue */
};

struct weir_async_event *weir_async_event_new(const char *function, const char *origin,
                                              const char *payload, size_t len);
/* NULL is a no-op. */
void weir_async_event_free(struct weir_async_event *ev);
/* Replaces the last attempt's answer (copies). */
void weir_async_event_set_answer(struct weir_async_event *ev, long status, const char *error,
                                 const char *response, size_t response_len);

struct weir_async_store;

/* Each operation calls its done on the loop, once, never from inside the call. A status other
 * than WEIR_OK comes with a message a user can act on; the events are then unchanged in the
 * store. */
typedef void (*weir_async_done_fn)(void *arg, weir_status st, const char *error);
/* events: the list handed to take's call, now filled (the caller owns them); next_due_ms: wall
 * ms of the earliest event of the function still waiting and not taken, or -1 when none. */
typedef void (*weir_async_take_fn)(void *arg, weir_status st, const char *error,
                                   struct weir_list *events, int64_t next_due_ms);

struct weir_async_store_ops {
    const char *name;
    /* Stores every event of the list (struct weir_async_event.link), setting their ids; durable
     * when done reports WEIR_OK. The list and its events belong to the store until done. */
    void (*put)(struct weir_async_store *st, struct weir_list *events, weir_async_done_fn done,
                void *arg);
    /* Takes up to max events of `function` due at wall ms now (earliest first), so that no
     * other take returns them until they are updated or removed. */
    void (*take)(struct weir_async_store *st, const char *function, int64_t now_ms, size_t max,
                 struct weir_list *into, weir_async_take_fn done, void *arg);
    /* Writes back a taken event's state (due time, counts, outcome, last answer) and gives it
     * back to be taken again when due. ev belongs to the store until done. */
    void (*update)(struct weir_async_store *st, struct weir_async_event *ev,
                   weir_async_done_fn done, void *arg);
    /* Deletes a taken event: it is finished. ev belongs to the store until done. */
    void (*remove)(struct weir_async_store *st, struct weir_async_event *ev,
                   weir_async_done_fn done, void *arg);
    /* NULL is a no-op; every operation's done has run before. */
    void (*free)(struct weir_async_store *st);
};

struct weir_async_store {
    const struct weir_async_store_ops *ops;
};

struct weir_store;
/* The queue's store on weir's SQLite database (borrowed; it must outlive the result). */
struct weir_async_store *weir_async_store_sqlite(struct weir_store *db);

#endif
