/* The one intrusive doubly linked list: a node embedded in the owning struct, a circular list
 * around a head node, O(1) insert and remove anywhere. The list owns nothing: whoever links a
 * node frees it, after unlinking it. Header-only; must never allocate. */
#ifndef WEIR_LIST_H
#define WEIR_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct weir_list {
    struct weir_list *prev, *next;
};

/* A head (or an unlinked node) points at itself. A zeroed node counts as unlinked too, so
 * nodes in calloc'ed structs need no init before weir_list_linked or weir_list_remove. */
#define WEIR_LIST_HEAD_INIT(name)                                                                  \
    {                                                                                              \
        &(name), &(name)                                                                           \
    }

static inline void weir_list_init(struct weir_list *l)
{
    l->prev = l->next = l;
}

static inline bool weir_list_empty(const struct weir_list *head)
{
    return head->next == head;
}

/* Whether node is in some list. */
static inline bool weir_list_linked(const struct weir_list *node)
{
    return node->next && node->next != node;
}

static inline void weir_list_insert_between(struct weir_list *node, struct weir_list *prev,
                                            struct weir_list *next)
{
    node->prev = prev;
    node->next = next;
    prev->next = node;
    next->prev = node;
}

static inline void weir_list_push_back(struct weir_list *head, struct weir_list *node)
{
    weir_list_insert_between(node, head->prev, head);
}

static inline void weir_list_push_front(struct weir_list *head, struct weir_list *node)
{
    weir_list_insert_between(node, head, head->next);
}

/* Unlinks node (a no-op when it is not linked) and leaves it unlinked. */
static inline void weir_list_remove(struct weir_list *node)
{
    if (!weir_list_linked(node))
        return;
    node->prev->next = node->next;
    node->next->prev = node->prev;
    weir_list_init(node);
}

/* The first node, or NULL when the list is empty. */
static inline struct weir_list *weir_list_first(const struct weir_list *head)
{
    return weir_list_empty(head) ? NULL : head->next;
}

/* Unlinks and returns the first node, or NULL when the list is empty. */
static inline struct weir_list *weir_list_pop_front(struct weir_list *head)
{
    struct weir_list *node = weir_list_first(head);
    if (node)
        weir_list_remove(node);
    return node;
}

static inline size_t weir_list_count(const struct weir_list *head)
{
    size_t n = 0;
    for (const struct weir_list *l = head->next; l != head; l = l->next)
        n++;
    return n;
}

/* The struct of type `type` whose member `member` is node. */
#define weir_list_entry(node, type, member) ((type *)((char *)(node)-offsetof(type, member)))

/* Walks head; the current node may be removed (and freed) in the body. */
#define weir_list_foreach_safe(node, tmp, head)                                                    \
    for ((node) = (head)->next, (tmp) = (node)->next; (node) != (head);                            \
         (node) = (tmp), (tmp) = (node)->next)

#endif
