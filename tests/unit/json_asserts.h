/* Reading an event back in unit tests of the formats: a member that must be a string or an
 * integer, and an object that must have exactly the members listed. Header-only so each test
 * executable gets its own copy. Include it after cmocka.h and jansson.h. */
#ifndef WEIR_TEST_JSON_ASSERTS_H
#define WEIR_TEST_JSON_ASSERTS_H

#include <string.h>

static inline const char *str_at(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        fail_msg("%s is missing or not a string", key);
    return json_string_value(v);
}

static inline json_int_t int_at(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v))
        fail_msg("%s is missing or not an integer", key);
    return json_integer_value(v);
}

/* obj is an object with exactly the keys listed (NULL-terminated), in any order: one missing or
 * one more is named. */
static inline void assert_keys(json_t *obj, const char *const *keys)
{
    assert_true(json_is_object(obj));
    size_t n = 0;
    for (; keys[n]; n++)
        if (!json_object_get(obj, keys[n]))
            fail_msg("key %s missing", keys[n]);
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        size_t i = 0;
        while (keys[i] && strcmp(keys[i], k) != 0)
            i++;
        if (!keys[i])
            fail_msg("unexpected key %s", k);
    }
    assert_int_equal(json_object_size(obj), n);
}

#endif
