/* The Redis queue's server side: the Lua scripts that lease, return, release, delete and bury
 * list elements atomically, the names of the keys they use, and the element parser. Shared by
 * the redis poller, its tests and the benchmark (which runs the same claim script raw).
 * docs/redis-queue.md describes the keys and formats; the scripts must stay in step with it. */
#ifndef WEIR_REDIS_SCRIPTS_H
#define WEIR_REDIS_SCRIPTS_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "mapping/record.h"

/* KEYS[1] list, KEYS[2] inflight, KEYS[3] leases, KEYS[4] seq.
 * ARGV[1] at most this many elements, ARGV[2] lease ms, ARGV[3] lease id prefix (24 chars).
 * Takes up to n elements from the head of the list and leases each under a new lease id.
 * Returns {server now ms, id1, element1, id2, element2, ...}. LPOP with a count needs Redis
 * 6.2; TIME in a script that writes needs effects replication (always on in Redis 7). The
 * HSET/ZADD calls go in chunks because Lua's unpack() is limited by its C stack (~8000).
 * weir's own keys must hold what it writes there (or nothing): checked before the LPOP, since a
 * script that fails halfway keeps its writes and the popped elements would be gone. */
#define WEIR_REDIS_LUA_CLAIM                                                                       \
    "for k, want in pairs({[KEYS[2]] = 'hash', [KEYS[3]] = 'zset', [KEYS[4]] = 'string'}) do\n"    \
    "  local t = redis.call('TYPE', k)['ok']\n"                                                    \
    "  if t ~= want and t ~= 'none' then\n"                                                        \
    "    return redis.error_reply('WRONGTYPE ' .. k .. ' is a ' .. t .. ', not a ' .. want)\n"     \
    "  end\n"                                                                                      \
    "end\n"                                                                                        \
    "local els = redis.call('LPOP', KEYS[1], tonumber(ARGV[1]))\n"                                 \
    "local t = redis.call('TIME')\n"                                                               \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                      \
    "local out = {now}\n"                                                                          \
    "if not els then return out end\n"                                                             \
    "local k = #els\n"                                                                             \
    "local first = redis.call('INCRBY', KEYS[4], k) - k + 1\n"                                     \
    "local deadline = string.format('%d', now + tonumber(ARGV[2]))\n"                              \
    "local h, z = {}, {}\n"                                                                        \
    "for i = 1, k do\n"                                                                            \
    "  local id = ARGV[3] .. string.format('%012x', first + i - 1)\n"                              \
    "  h[#h + 1] = id\n"                                                                           \
    "  h[#h + 1] = els[i]\n"                                                                       \
    "  z[#z + 1] = deadline\n"                                                                     \
    "  z[#z + 1] = id\n"                                                                           \
    "  out[#out + 1] = id\n"                                                                       \
    "  out[#out + 1] = els[i]\n"                                                                   \
    "  if #h >= 400 or i == k then\n"                                                              \
    "    redis.call('HSET', KEYS[2], unpack(h))\n"                                                 \
    "    redis.call('ZADD', KEYS[3], unpack(z))\n"                                                 \
    "    h, z = {}, {}\n"                                                                          \
    "  end\n"                                                                                      \
    "end\n"                                                                                        \
    "return out\n"

/* KEYS[1] list, KEYS[2] inflight, KEYS[3] leases, KEYS[4] dead-letter list (absent: none).
 * ARGV[1] now ms (0: the server's TIME), ARGV[2] max receives (0: none), ARGV[3] at most this
 * many leases, ARGV[4] the lease length in ms of the caller.
 * Every lease whose deadline has passed: its element is rewritten as an envelope ("weir" first,
 * built by concatenation because cjson does not keep key order) with rc + 1, the id it was
 * first known by, and fr (first receive) = deadline - lease ms when it had none; it goes back to
 * the head of the list (oldest first), or to the end of the dead-letter list once rc reaches
 * max receives. A plain element's bytes that are not UTF-8 become U+FFFD (an envelope is JSON);
 * an envelope's body and other members are kept. An element that does not parse as an envelope
 * goes to the dead-letter list if there is one, else back to the list unchanged (its count
 * cannot be raised inside bytes that are not JSON).
 * The list and the dead-letter key must hold lists (or nothing): checked before any write, as
 * a script that fails halfway keeps what it wrote, and the leases taken before the failing push
 * would be gone with their elements. Then it answers an error and changes nothing.
 * Returns {returned, dead-lettered}. */
#define WEIR_REDIS_LUA_RECLAIM                                                                     \
    "local now = tonumber(ARGV[1])\n"                                                              \
    "if now == 0 then\n"                                                                           \
    "  local t = redis.call('TIME')\n"                                                             \
    "  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                          \
    "end\n"                                                                                        \
    "local maxrc = tonumber(ARGV[2])\n"                                                            \
    "local lease = tonumber(ARGV[4])\n"                                                            \
    "local dlq = KEYS[4]\n"                                                                        \
    "for _, k in ipairs({KEYS[1], dlq}) do\n"                                                      \
    "  local t = redis.call('TYPE', k)['ok']\n"                                                    \
    "  if t ~= 'list' and t ~= 'none' then\n"                                                      \
    "    return redis.error_reply('WRONGTYPE ' .. k .. ' is a ' .. t .. ', not a list')\n"         \
    "  end\n"                                                                                      \
    "end\n"                                                                                        \
    "local function int(n) return string.format('%d', n) end\n"                                    \
    "local function utf8(s)\n"                                                                     \
    "  if not string.find(s, '[\\128-\\255]') then return s end\n"                                 \
    "  local out, i, n = {}, 1, #s\n"                                                              \
    "  while i <= n do\n"                                                                          \
    "    local c = string.byte(s, i)\n"                                                            \
    "    local len = 0\n"                                                                          \
    "    if c < 128 then len = 1\n"                                                                \
    "    elseif c >= 194 and c <= 223 then len = 2\n"                                              \
    "    elseif c >= 224 and c <= 239 then len = 3\n"                                              \
    "    elseif c >= 240 and c <= 244 then len = 4 end\n"                                          \
    "    local ok = len > 0 and i + len - 1 <= n\n"                                                \
    "    if ok then\n"                                                                             \
    "      for j = i + 1, i + len - 1 do\n"                                                        \
    "        local b = string.byte(s, j)\n"                                                        \
    "        if b < 128 or b > 191 then ok = false break end\n"                                    \
    "      end\n"                                                                                  \
    "    end\n"                                                                                    \
    "    if ok and len >= 3 then\n"                                                                \
    "      local b = string.byte(s, i + 1)\n"                                                      \
    "      if (c == 224 and b < 160) or (c == 237 and b > 159) or (c == 240 and b < 144)\n"        \
    "         or (c == 244 and b > 143) then ok = false end\n"                                     \
    "    end\n"                                                                                    \
    "    if ok then\n"                                                                             \
    "      out[#out + 1] = string.sub(s, i, i + len - 1)\n"                                        \
    "      i = i + len\n"                                                                          \
    "    else\n"                                                                                   \
    "      out[#out + 1] = '\\239\\191\\189'\n"                                                    \
    "      i = i + 1\n"                                                                            \
    "    end\n"                                                                                    \
    "  end\n"                                                                                      \
    "  return table.concat(out)\n"                                                                 \
    "end\n"                                                                                        \
    "local known = {weir = 1, id = 1, body = 1, attributes = 1, group = 1, dedup = 1,\n"           \
    "               sent = 1, rc = 1, fr = 1}\n"                                                   \
    "local function member(k, v)\n"                                                                \
    "  if type(v) == 'number' and v == math.floor(v) then return ',\"' .. k .. '\":' .. int(v) "   \
    "end\n"                                                                                        \
    "  return ',\"' .. k .. '\":' .. cjson.encode(v)\n"                                            \
    "end\n"                                                                                        \
    "local function rewrite(el, id, fr)\n"                                                         \
    "  if not string.find(el, '^{%s*\"weir\"%s*:') then\n"                                         \
    "    return '{\"weir\":1,\"id\":' .. cjson.encode(id) .. ',\"body\":' ..\n"                    \
    "           cjson.encode(utf8(el)) .. ',\"rc\":1,\"fr\":' .. int(fr) .. '}', 1\n"              \
    "  end\n"                                                                                      \
    "  local ok, e = pcall(cjson.decode, el)\n"                                                    \
    "  if not ok or type(e) ~= 'table' or type(e.body) ~= 'string' then return nil end\n"          \
    "  local rc = (tonumber(e.rc) or 0) + 1\n"                                                     \
    "  local o = {'{\"weir\":1,\"id\":', cjson.encode(type(e.id) == 'string' and e.id or id),\n"   \
    "             ',\"body\":', cjson.encode(e.body)}\n"                                           \
    "  for _, k in ipairs({'attributes', 'group', 'dedup', 'sent'}) do\n"                          \
    "    if e[k] ~= nil then o[#o + 1] = member(k, e[k]) end\n"                                    \
    "  end\n"                                                                                      \
    "  o[#o + 1] = ',\"rc\":' .. int(rc)\n"                                                        \
    "  o[#o + 1] = ',\"fr\":' .. int(type(e.fr) == 'number' and e.fr or fr)\n"                     \
    "  for k, v in pairs(e) do\n"                                                                  \
    "    if type(k) == 'string' and not known[k] then\n"                                           \
    "      o[#o + 1] = ',' .. cjson.encode(k) .. ':' .. cjson.encode(v)\n"                         \
    "    end\n"                                                                                    \
    "  end\n"                                                                                      \
    "  o[#o + 1] = '}'\n"                                                                          \
    "  return table.concat(o), rc\n"                                                               \
    "end\n"                                                                                        \
    "local exp = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'WITHSCORES', 'LIMIT', 0,\n"    \
    "                       tonumber(ARGV[3]))\n"                                                  \
    "local back, dead = {}, 0\n"                                                                   \
    "for i = 1, #exp, 2 do\n"                                                                      \
    "  local id = exp[i]\n"                                                                        \
    "  local el = redis.call('HGET', KEYS[2], id)\n"                                               \
    "  if el then\n"                                                                               \
    "    local ok, out, rc = pcall(rewrite, el, id, tonumber(exp[i + 1]) - lease)\n"               \
    "    if not ok then out = nil end\n"                                                           \
    "    if out == nil then\n"                                                                     \
    "      if dlq then\n"                                                                          \
    "        redis.call('RPUSH', dlq, el)\n"                                                       \
    "        dead = dead + 1\n"                                                                    \
    "      else\n"                                                                                 \
    "        back[#back + 1] = el\n"                                                               \
    "      end\n"                                                                                  \
    "    elseif dlq and maxrc > 0 and rc >= maxrc then\n"                                          \
    "      redis.call('RPUSH', dlq, out)\n"                                                        \
    "      dead = dead + 1\n"                                                                      \
    "    else\n"                                                                                   \
    "      back[#back + 1] = out\n"                                                                \
    "    end\n"                                                                                    \
    "    redis.call('HDEL', KEYS[2], id)\n"                                                        \
    "  end\n"                                                                                      \
    "  redis.call('ZREM', KEYS[3], id)\n"                                                          \
    "end\n"                                                                                        \
    "for i = #back, 1, -1 do redis.call('LPUSH', KEYS[1], back[i]) end\n"                          \
    "return {#back, dead}\n"

/* KEYS[1] list, KEYS[2] inflight, KEYS[3] leases. ARGV lease ids, in claim order.
 * Gives leased elements back to the head of the list exactly as they were claimed (no receive
 * counted: they never reached a function), keeping their order. Returns how many went back. */
#define WEIR_REDIS_LUA_RELEASE                                                                     \
    "local n = 0\n"                                                                                \
    "for i = #ARGV, 1, -1 do\n"                                                                    \
    "  local el = redis.call('HGET', KEYS[2], ARGV[i])\n"                                          \
    "  if el then\n"                                                                               \
    "    redis.call('LPUSH', KEYS[1], el)\n"                                                       \
    "    redis.call('HDEL', KEYS[2], ARGV[i])\n"                                                   \
    "    n = n + 1\n"                                                                              \
    "  end\n"                                                                                      \
    "  redis.call('ZREM', KEYS[3], ARGV[i])\n"                                                     \
    "end\n"                                                                                        \
    "return n\n"

/* KEYS[1] inflight, KEYS[2] leases. ARGV lease ids. Deletes settled messages; a lease that
 * already expired and was returned is simply not there. Returns how many were deleted. */
#define WEIR_REDIS_LUA_DELETE                                                                      \
    "local n = 0\n"                                                                                \
    "for i = 1, #ARGV, 500 do\n"                                                                   \
    "  local j = math.min(i + 499, #ARGV)\n"                                                       \
    "  n = n + redis.call('HDEL', KEYS[1], unpack(ARGV, i, j))\n"                                  \
    "  redis.call('ZREM', KEYS[2], unpack(ARGV, i, j))\n"                                          \
    "end\n"                                                                                        \
    "return n\n"

/* KEYS[1] inflight, KEYS[2] leases, KEYS[3] dead-letter list. ARGV lease ids.
 * Moves leased elements, byte for byte, to the end of the dead-letter list (an element weir
 * cannot read). Returns how many moved. */
#define WEIR_REDIS_LUA_BURY                                                                        \
    "local n = 0\n"                                                                                \
    "for i = 1, #ARGV do\n"                                                                        \
    "  local el = redis.call('HGET', KEYS[1], ARGV[i])\n"                                          \
    "  if el then\n"                                                                               \
    "    redis.call('RPUSH', KEYS[3], el)\n"                                                       \
    "    redis.call('HDEL', KEYS[1], ARGV[i])\n"                                                   \
    "    n = n + 1\n"                                                                              \
    "  end\n"                                                                                      \
    "  redis.call('ZREM', KEYS[2], ARGV[i])\n"                                                     \
    "end\n"                                                                                        \
    "return n\n"

enum weir_redis_script {
    WEIR_REDIS_CLAIM,
    WEIR_REDIS_RECLAIM,
    WEIR_REDIS_RELEASE,
    WEIR_REDIS_DELETE,
    WEIR_REDIS_BURY,
    WEIR_REDIS_NSCRIPTS
};

/* The Lua text of script s (static storage). */
const char *weir_redis_script_text(enum weir_redis_script s);
/* "claim", "reclaim", ... for logs. */
const char *weir_redis_script_name(enum weir_redis_script s);

/* A parsed source URI: redis://[[user]:password@]host[:port][/db]/<list-key>. */
struct weir_redis_uri {
    char *host;
    int port;       /* default 6379 */
    int db;         /* default 0 */
    char *user;     /* NULL when not given */
    char *password; /* NULL when not given */
    char *key;      /* the list, percent-decoded */
};

/* Parses uri into u (owned strings; weir_redis_uri_deinit frees them). On failure err says what
 * is wrong (without the password) and u holds nothing. */
weir_status weir_redis_uri_parse(const char *uri, struct weir_redis_uri *u, struct weir_err *err);
void weir_redis_uri_deinit(struct weir_redis_uri *u);

/* weir's bookkeeping keys beside a queue list (docs/redis-queue.md). Owned strings.
 * Leased elements wait in a hash, not in a processing list: settling one from a list is LREM,
 * O(N) in the list's length, where HDEL is O(1) whatever the number in flight. */
struct weir_redis_keys {
    char *list;     /* <key> */
    char *inflight; /* <key>:weir:inflight  hash: lease id -> element as claimed */
    char *leases;   /* <key>:weir:leases    sorted set: lease id -> deadline (server ms) */
    char *seq;      /* <key>:weir:seq       counter of lease ids */
};

void weir_redis_keys_init(struct weir_redis_keys *k, const char *list);
void weir_redis_keys_deinit(struct weir_redis_keys *k);

/* The 24-character lease id prefix of a queue, "xxxxxxxx-xxxx-4xxx-8xxx-", from FNV-1a of
 * "<host>:<port>/<db>/<key>": stable and distinct per queue, so lease ids (prefix + 12 hex digits
 * of the counter) look like the UUIDs functions expect of a messageId. The poller mixes a random
 * value into it on every connection (docs/redis-queue.md, Lease id). */
void weir_redis_lease_prefix(const struct weir_redis_uri *u, char out[25]);

/* The queue's eventSourceARN: arn:aws:sqs:<region>:<account>:<key>, the account being 12 digits
 * of FNV-1a("<host>:<port>/<db>") mod 10^12. The caller frees the result. */
char *weir_redis_source_arn(const struct weir_redis_uri *u, const char *region);

/* Whether a list element is an envelope: '{', optional whitespace, "weir", optional whitespace,
 * ':' — its first member is "weir". Anything else is a plain body. */
int weir_redis_is_envelope(const char *el, size_t len);

/* Turns one claimed element into a record: lease_id becomes the handle (and the id of a plain
 * element), the counter in its last 12 hex digits the seq, now_ms (server time of the claim) the
 * first receive time unless the envelope carries one. deadline_ms and lane are left 0.
 * On a malformed envelope returns WEIR_ERR with err saying why and *out untouched; otherwise
 * *out is a new record the caller owns. */
weir_status weir_redis_parse_element(const char *el, size_t len, const char *lease_id,
                                     int64_t now_ms, struct weir_record **out,
                                     struct weir_err *err);

#endif
