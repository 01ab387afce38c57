/* The Redis queue's server side: the Lua scripts that lease, return, release, delete and bury
 * list elements atomically (for standard and FIFO queues), the names of the keys they use, the
 * source's settings, and the element parser. Shared by the redis poller, its tests and the
 * benchmark (which runs the same claim script raw). docs/redis-queue.md describes the keys and
 * formats; the scripts must stay in step with it. */
#ifndef WEIR_REDIS_H
#define WEIR_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/redis_uri.h"
#include "core/status.h"
#include "model/event.h"
#include "model/record.h"

/* The keys of a redis:// mapping beside every mapping's (its row's configuration table). */
struct weir_redis_settings {
    int visibility_timeout;   /* seconds, 0..43200, default 30 */
    int max_receive_count;    /* redrive_policy.max_receive_count, 1..1000; 0 = no redrive */
    char *dead_letter_target; /* redrive_policy.dead_letter_target: a list on the same server */
    bool fifo;                /* fifo: true; the list's name ending in .fifo says it anyway */
};

/* SQS FIFO names end in .fifo, and so do weir's FIFO lists. */
bool weir_redis_key_is_fifo(const char *key);

/* SQS's deduplication interval: a dedup id seen within it is dropped. */
#define WEIR_REDIS_DEDUP_WINDOW_MS (5 * 60 * 1000)

/* Lua shared by the scripts below that need it: UTF-8 repair, envelope decode and encode ("weir"
 * first, built by concatenation because cjson does not keep key order; weir's members in a fixed
 * order, the producer's others after them), key type checks, the server's clock, leasing in
 * chunks (Lua's unpack() is limited by its C stack, ~8000), and a FIFO group's lock release. */
#define WEIR_REDIS_LUA_HELPERS                                                                     \
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
    "local fixed = {'attributes', 'group', 'dedup', 'seq', 'sent', 'rc', 'fr', 'reason'}\n"        \
    "local known = {weir = 1, id = 1, body = 1}\n"                                                 \
    "for _, k in ipairs(fixed) do known[k] = 1 end\n"                                              \
    "local function member(k, v)\n"                                                                \
    "  if type(v) == 'number' and v == math.floor(v) and math.abs(v) < 9007199254740992 then\n"    \
    "    return ',\"' .. k .. '\":' .. int(v)\n"                                                   \
    "  end\n"                                                                                      \
    "  return ',\"' .. k .. '\":' .. cjson.encode(v)\n"                                            \
    "end\n"                                                                                        \
    "local function is_envelope(el)\n"                                                             \
    "  return string.find(el, '^{%s*\"weir\"%s*:') ~= nil\n"                                       \
    "end\n"                                                                                        \
    "local function decode(el)\n"                                                                  \
    "  if not is_envelope(el) then return nil end\n"                                               \
    "  local ok, e = pcall(cjson.decode, el)\n"                                                    \
    "  if not ok or type(e) ~= 'table' or type(e.body) ~= 'string' then return nil end\n"          \
    "  return e\n"                                                                                 \
    "end\n"                                                                                        \
    "local function encode(e, id)\n"                                                               \
    "  if type(e.id) == 'string' then id = e.id end\n"                                             \
    "  local o = {'{\"weir\":1'}\n"                                                                \
    "  if id then o[#o + 1] = ',\"id\":' .. cjson.encode(id) end\n"                                \
    "  o[#o + 1] = ',\"body\":' .. cjson.encode(e.body)\n"                                         \
    "  for _, k in ipairs(fixed) do\n"                                                             \
    "    if e[k] ~= nil then o[#o + 1] = member(k, e[k]) end\n"                                    \
    "  end\n"                                                                                      \
    "  for k, v in pairs(e) do\n"                                                                  \
    "    if type(k) == 'string' and not known[k] then\n"                                           \
    "      o[#o + 1] = ',' .. cjson.encode(k) .. ':' .. cjson.encode(v)\n"                         \
    "    end\n"                                                                                    \
    "  end\n"                                                                                      \
    "  o[#o + 1] = '}'\n"                                                                          \
    "  return table.concat(o)\n"                                                                   \
    "end\n"                                                                                        \
    "local function safe_encode(e, id)\n"                                                          \
    "  local ok, out = pcall(encode, e, id)\n"                                                     \
    "  if ok then return out end\n"                                                                \
    "  return nil\n"                                                                               \
    "end\n"                                                                                        \
    "local function valid_id(s)\n"                                                                 \
    "  return type(s) == 'string' and #s >= 1 and #s <= 128 and not string.find(s, '[^%w%p]')\n"   \
    "end\n"                                                                                        \
    "local function check_types(want)\n"                                                           \
    "  for k, t in pairs(want) do\n"                                                               \
    "    local got = redis.call('TYPE', k)['ok']\n"                                                \
    "    if got ~= t and got ~= 'none' then\n"                                                     \
    "      return 'WRONGTYPE ' .. k .. ' is a ' .. got .. ', not a ' .. t\n"                       \
    "    end\n"                                                                                    \
    "  end\n"                                                                                      \
    "  return nil\n"                                                                               \
    "end\n"                                                                                        \
    "local function server_now()\n"                                                                \
    "  local t = redis.call('TIME')\n"                                                             \
    "  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                         \
    "end\n"                                                                                        \
    "local function lease_all(inflight, leases, ids, els, deadline)\n"                             \
    "  local h, z = {}, {}\n"                                                                      \
    "  for i = 1, #ids do\n"                                                                       \
    "    h[#h + 1] = ids[i]\n"                                                                     \
    "    h[#h + 1] = els[i]\n"                                                                     \
    "    z[#z + 1] = deadline\n"                                                                   \
    "    z[#z + 1] = ids[i]\n"                                                                     \
    "    if #h >= 400 or i == #ids then\n"                                                         \
    "      redis.call('HSET', inflight, unpack(h))\n"                                              \
    "      redis.call('ZADD', leases, unpack(z))\n"                                                \
    "      h, z = {}, {}\n"                                                                        \
    "    end\n"                                                                                    \
    "  end\n"                                                                                      \
    "end\n"                                                                                        \
    "local function unbusy(busy, ready, gp, grp, gone, front)\n"                                   \
    "  local b = redis.call('HGET', busy, grp)\n"                                                  \
    "  if not b then return 0 end\n"                                                               \
    "  local keep = {}\n"                                                                          \
    "  for tok in string.gmatch(b, '%S+') do\n"                                                    \
    "    if not gone[tok] then keep[#keep + 1] = tok end\n"                                        \
    "  end\n"                                                                                      \
    "  if #keep > 0 then\n"                                                                        \
    "    redis.call('HSET', busy, grp, table.concat(keep, ' '))\n"                                 \
    "    return 0\n"                                                                               \
    "  end\n"                                                                                      \
    "  redis.call('HDEL', busy, grp)\n"                                                            \
    "  if redis.call('LLEN', gp .. grp) == 0 then return 0 end\n"                                  \
    "  redis.call(front and 'LPUSH' or 'RPUSH', ready, grp)\n"                                     \
    "  return 1\n"                                                                                 \
    "end\n"

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
 * Every lease whose deadline has passed: its element is rewritten as an envelope with rc + 1,
 * the id it was first known by, and fr (first receive) = deadline - lease ms when it had none;
 * it goes back to the head of the list (oldest first), or to the end of the dead-letter list once
 * rc reaches max receives. A plain element's bytes that are not UTF-8 become U+FFFD (an envelope
 * is JSON); an envelope's body and other members are kept. An element that does not parse as an
 * envelope goes to the dead-letter list if there is one, else back to the list unchanged (its
 * count cannot be raised inside bytes that are not JSON).
 * The list and the dead-letter key must hold lists (or nothing): checked before any write, as
 * a script that fails halfway keeps what it wrote, and the leases taken before the failing push
 * would be gone with their elements. Then it answers an error and changes nothing.
 * Returns {returned, dead-lettered}. */
#define WEIR_REDIS_LUA_RECLAIM                                                                     \
    WEIR_REDIS_LUA_HELPERS                                                                         \
    "local now = tonumber(ARGV[1])\n"                                                              \
    "if now == 0 then now = server_now() end\n"                                                    \
    "local maxrc = tonumber(ARGV[2])\n"                                                            \
    "local lease = tonumber(ARGV[4])\n"                                                            \
    "local dlq = KEYS[4]\n"                                                                        \
    "local want = {[KEYS[1]] = 'list'}\n"                                                          \
    "if dlq then want[dlq] = 'list' end\n"                                                         \
    "local bad = check_types(want)\n"                                                              \
    "if bad then return redis.error_reply(bad) end\n"                                              \
    "local function rewrite(el, id, fr)\n"                                                         \
    "  if not is_envelope(el) then\n"                                                              \
    "    return '{\"weir\":1,\"id\":' .. cjson.encode(id) .. ',\"body\":' ..\n"                    \
    "           cjson.encode(utf8(el)) .. ',\"rc\":1,\"fr\":' .. int(fr) .. '}', 1\n"              \
    "  end\n"                                                                                      \
    "  local e = decode(el)\n"                                                                     \
    "  if not e then return nil end\n"                                                             \
    "  e.rc = (tonumber(e.rc) or 0) + 1\n"                                                         \
    "  if type(e.fr) ~= 'number' then e.fr = fr end\n"                                             \
    "  return encode(e, id), e.rc\n"                                                               \
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

/* KEYS[1] inflight, KEYS[2] leases, KEYS[3] target list (the dead-letter list, or the parked
 * list), KEYS[4] busy, KEYS[5] ready (FIFO only). ARGV[1] "1" for a FIFO queue, ARGV[2] the group
 * list prefix, then pairs: lease id, reason.
 * Moves leased elements that can never be delivered to the end of the target list, with the
 * reason as member "reason" (a plain element becomes an envelope; one that is not JSON, or that
 * holds a number it cannot write back, goes unchanged). In a FIFO queue the element's group is
 * unlocked once it holds no lease. Returns how many moved. */
#define WEIR_REDIS_LUA_BURY                                                                        \
    WEIR_REDIS_LUA_HELPERS                                                                         \
    "local fifo = ARGV[1] == '1'\n"                                                                \
    "local gp = ARGV[2]\n"                                                                         \
    "local bad = check_types({[KEYS[3]] = 'list'})\n"                                              \
    "if bad then return redis.error_reply(bad) end\n"                                              \
    "local n = 0\n"                                                                                \
    "for i = 3, #ARGV, 2 do\n"                                                                     \
    "  local id, reason = ARGV[i], ARGV[i + 1]\n"                                                  \
    "  local el = redis.call('HGET', KEYS[1], id)\n"                                               \
    "  if el then\n"                                                                               \
    "    local out = el\n"                                                                         \
    "    local e = decode(el)\n"                                                                   \
    "    if e then\n"                                                                              \
    "      e.reason = reason\n"                                                                    \
    "      out = safe_encode(e, id) or el\n"                                                       \
    "    elseif not is_envelope(el) then\n"                                                        \
    "      out = encode({body = utf8(el), reason = reason}, id)\n"                                 \
    "    end\n"                                                                                    \
    "    redis.call('RPUSH', KEYS[3], out)\n"                                                      \
    "    redis.call('HDEL', KEYS[1], id)\n"                                                        \
    "    n = n + 1\n"                                                                              \
    "    if fifo and e and type(e.group) == 'string' then\n"                                       \
    "      unbusy(KEYS[4], KEYS[5], gp, e.group, {[id] = true}, false)\n"                          \
    "    end\n"                                                                                    \
    "  end\n"                                                                                      \
    "  redis.call('ZREM', KEYS[2], id)\n"                                                          \
    "end\n"                                                                                        \
    "return n\n"

/* FIFO queues (<key>.fifo). Producers push envelopes onto the list as for a standard queue;
 * each claim first moves up to ARGV[6] of them into their group's list (<key>:weir:g:<group>),
 * in order, numbering each (seq: the SequenceNumber), dropping one whose dedup id was accepted
 * within the window, and refusing one that is not an envelope with a valid group (1 to 128 letters,
 * digits or punctuation, as SQS's MessageGroupId; the same for a dedup id) or whose numbers are
 * out of range (to KEYS[9] with the reason). Nothing it pops is lost: each message ends in its
 * group, in KEYS[9], or is a dropped duplicate. A group with messages and no lease is in the ready
 * list exactly once; claiming pops groups from it (O(1), however long the queue or however many
 * groups are blocked), takes up to ARGV[4] messages of each and locks the group (busy: group -> its
 * lease ids) until every one of them is settled. KEYS[1] list, [2] inflight, [3] leases, [4] seq,
 * [5] fifo seq, [6] ready, [7] busy, [8] dedup, [9] where refused messages go (the dead-letter
 * list, or the parked list). ARGV[1] at most this many messages, [2] lease ms, [3] lease id prefix
 * (24 chars), [4] at most this many of one group, [5] at most this many groups, [6] at most this
 * many to move in from the list, [7] group list prefix, [8] dedup window ms, [9] id prefix for
 * messages without an id (24 chars, the queue's own). Returns {server now ms, duplicates dropped,
 * {refusal reasons}, more, id1, element1, ...}: more is 1 when groups are still ready or messages
 * still wait on the list, so a claim that came back short (small groups) is not taken for an empty
 * queue. */
#define WEIR_REDIS_LUA_CLAIM_FIFO                                                                  \
    WEIR_REDIS_LUA_HELPERS                                                                         \
    "local bad = check_types({[KEYS[1]] = 'list', [KEYS[2]] = 'hash', [KEYS[3]] = 'zset',\n"       \
    "                         [KEYS[4]] = 'string', [KEYS[5]] = 'string', [KEYS[6]] = 'list',\n"   \
    "                         [KEYS[7]] = 'hash', [KEYS[8]] = 'zset', [KEYS[9]] = 'list'})\n"      \
    "if bad then return redis.error_reply(bad) end\n"                                              \
    "local now = server_now()\n"                                                                   \
    "local maxn, gmax, maxg = tonumber(ARGV[1]), tonumber(ARGV[4]), tonumber(ARGV[5])\n"           \
    "local gp = ARGV[7]\n"                                                                         \
    "local refused, dups = {}, 0\n"                                                                \
    "local els = redis.call('LPOP', KEYS[1], tonumber(ARGV[6]))\n"                                 \
    "if els then\n"                                                                                \
    "  redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', now - tonumber(ARGV[8]))\n"                 \
    "  for i = 1, #els do\n"                                                                       \
    "    local el = els[i]\n"                                                                      \
    "    local e = decode(el)\n"                                                                   \
    "    local why\n"                                                                              \
    "    local text\n"                                                                             \
    "    if not is_envelope(el) then\n"                                                            \
    "      why = 'not an envelope: every message of a FIFO queue is "                              \
    "{\"weir\":1,\"body\":...,\"group\":...}'\n"                                                   \
    "    elseif not e then\n"                                                                      \
    "      why = 'malformed envelope: not JSON, or no string \"body\"'\n"                          \
    "    elseif e.group == nil or e.group == '' then\n"                                            \
    "      why = 'no message group: every message of a FIFO queue needs \"group\" "                \
    "(MessageGroupId)'\n"                                                                          \
    "    elseif not valid_id(e.group) then\n"                                                      \
    "      why = '\"group\" (MessageGroupId) must be 1 to 128 letters, digits or punctuation, as " \
    "in SQS'\n"                                                                                    \
    "    elseif e.dedup ~= nil and not valid_id(e.dedup) then\n"                                   \
    "      why = '\"dedup\" (MessageDeduplicationId) must be 1 to 128 letters, digits or "         \
    "punctuation'\n"                                                                               \
    "    elseif e.dedup and redis.call('ZSCORE', KEYS[8], e.dedup) then\n"                         \
    "      dups = dups + 1\n"                                                                      \
    "    else\n"                                                                                   \
    "      e.seq = redis.call('INCR', KEYS[5])\n"                                                  \
    "      if type(e.id) ~= 'string' or e.id == '' then\n"                                         \
    "        e.id = ARGV[9] .. string.format('%012x', e.seq)\n"                                    \
    "      end\n"                                                                                  \
    "      text = safe_encode(e, nil)\n"                                                           \
    "      if not text then\n"                                                                     \
    "        why = 'a number in the envelope is out of range and cannot be written back'\n"        \
    "        e.seq = nil\n"                                                                        \
    "      end\n"                                                                                  \
    "    end\n"                                                                                    \
    "    if why then\n"                                                                            \
    "      local out = el\n"                                                                       \
    "      if e then\n"                                                                            \
    "        e.reason = why\n"                                                                     \
    "        out = safe_encode(e, nil) or el\n"                                                    \
    "      elseif not is_envelope(el) then\n"                                                      \
    "        out = encode({body = utf8(el), reason = why}, nil)\n"                                 \
    "      end\n"                                                                                  \
    "      redis.call('RPUSH', KEYS[9], out)\n"                                                    \
    "      refused[#refused + 1] = why\n"                                                          \
    "    elseif text then\n"                                                                       \
    "      if e.dedup then redis.call('ZADD', KEYS[8], now, e.dedup) end\n"                        \
    "      local g = gp .. e.group\n"                                                              \
    "      -- The group's list first, then ready: a group is in ready only with messages "         \
    "waiting.\n"                                                                                   \
    "      if redis.call('RPUSH', g, text) == 1 and redis.call('HEXISTS', KEYS[7], e.group) == 0 " \
    "then\n"                                                                                       \
    "        redis.call('RPUSH', KEYS[6], e.group)\n"                                              \
    "      end\n"                                                                                  \
    "    end\n"                                                                                    \
    "  end\n"                                                                                      \
    "end\n"                                                                                        \
    "local out = {now, dups, refused, 0}\n"                                                        \
    "local ids, leased = {}, {}\n"                                                                 \
    "local groups = 0\n"                                                                           \
    "while #ids < maxn and groups < maxg do\n"                                                     \
    "  local grp = redis.call('LPOP', KEYS[6])\n"                                                  \
    "  if not grp then break end\n"                                                                \
    "  -- A group holding leases is not claimed again, whatever the ready list says.\n"            \
    "  local msgs = false\n"                                                                       \
    "  if redis.call('HEXISTS', KEYS[7], grp) == 0 then\n"                                         \
    "    msgs = redis.call('LPOP', gp .. grp, math.min(gmax, maxn - #ids))\n"                      \
    "  end\n"                                                                                      \
    "  if msgs then\n"                                                                             \
    "    groups = groups + 1\n"                                                                    \
    "    local first = redis.call('INCRBY', KEYS[4], #msgs) - #msgs + 1\n"                         \
    "    local mine = {}\n"                                                                        \
    "    for i = 1, #msgs do\n"                                                                    \
    "      local id = ARGV[3] .. string.format('%012x', first + i - 1)\n"                          \
    "      mine[#mine + 1] = id\n"                                                                 \
    "      ids[#ids + 1] = id\n"                                                                   \
    "      leased[#leased + 1] = msgs[i]\n"                                                        \
    "      out[#out + 1] = id\n"                                                                   \
    "      out[#out + 1] = msgs[i]\n"                                                              \
    "    end\n"                                                                                    \
    "    redis.call('HSET', KEYS[7], grp, table.concat(mine, ' '))\n"                              \
    "  end\n"                                                                                      \
    "end\n"                                                                                        \
    "if #ids > 0 then\n"                                                                           \
    "  lease_all(KEYS[2], KEYS[3], ids, leased, string.format('%d', now + tonumber(ARGV[2])))\n"   \
    "end\n"                                                                                        \
    "if redis.call('LLEN', KEYS[6]) > 0 or redis.call('LLEN', KEYS[1]) > 0 then out[4] = 1 end\n"  \
    "return out\n"

/* KEYS[1] list, [2] inflight, [3] leases, [4] busy, [5] ready, [6] dead-letter list (absent:
 * none). ARGV[1] now ms (0: TIME), [2] max receives (0: none), [3] at most this many leases,
 * [4] lease ms, [5] group list prefix.
 * For every expired lease, its whole group's leases (one claim's, ending together) come back to
 * the head of the group's list in their order, each with rc + 1, or go to the dead-letter list
 * once rc reaches max receives; the group is unlocked. Returns {returned, dead-lettered}. */
#define WEIR_REDIS_LUA_RECLAIM_FIFO                                                                \
    WEIR_REDIS_LUA_HELPERS                                                                         \
    "local now = tonumber(ARGV[1])\n"                                                              \
    "if now == 0 then now = server_now() end\n"                                                    \
    "local maxrc = tonumber(ARGV[2])\n"                                                            \
    "local lease = tonumber(ARGV[4])\n"                                                            \
    "local gp = ARGV[5]\n"                                                                         \
    "local dlq = KEYS[6]\n"                                                                        \
    "local want = {[KEYS[1]] = 'list', [KEYS[4]] = 'hash', [KEYS[5]] = 'list'}\n"                  \
    "if dlq then want[dlq] = 'list' end\n"                                                         \
    "local bad = check_types(want)\n"                                                              \
    "if bad then return redis.error_reply(bad) end\n"                                              \
    "local exp = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'WITHSCORES', 'LIMIT', 0,\n"    \
    "                       tonumber(ARGV[3]))\n"                                                  \
    "local back, dead = 0, 0\n"                                                                    \
    "for i = 1, #exp, 2 do\n"                                                                      \
    "  local id = exp[i]\n"                                                                        \
    "  local el = redis.call('HGET', KEYS[2], id)\n"                                               \
    "  local e = el and decode(el)\n"                                                              \
    "  if el and not (e and type(e.group) == 'string') then\n"                                     \
    "    -- Not a message weir queued (its ingest makes every one an envelope with a group): it "  \
    "goes\n"                                                                                       \
    "    -- where it can be seen, never lost.\n"                                                   \
    "    if dlq then redis.call('RPUSH', dlq, el) else redis.call('LPUSH', KEYS[1], el) end\n"     \
    "    redis.call('HDEL', KEYS[2], id)\n"                                                        \
    "  elseif el then\n"                                                                           \
    "    -- The group's leases all come from one claim and end together: return them together, "   \
    "in\n"                                                                                         \
    "    -- their order, to the head of the group's list.\n"                                       \
    "    local grp = e.group\n"                                                                    \
    "    local ids, seen = {}, {}\n"                                                               \
    "    local b = redis.call('HGET', KEYS[4], grp)\n"                                             \
    "    if b then\n"                                                                              \
    "      for tok in string.gmatch(b, '%S+') do\n"                                                \
    "        ids[#ids + 1] = tok\n"                                                                \
    "        seen[tok] = true\n"                                                                   \
    "      end\n"                                                                                  \
    "    end\n"                                                                                    \
    "    if not seen[id] then ids[#ids + 1] = id end\n"                                            \
    "    local fr = tonumber(exp[i + 1]) - lease\n"                                                \
    "    local home = {}\n"                                                                        \
    "    for _, lid in ipairs(ids) do\n"                                                           \
    "      local lel = redis.call('HGET', KEYS[2], lid)\n"                                         \
    "      if lel then\n"                                                                          \
    "        local le = decode(lel)\n"                                                             \
    "        local out = lel\n"                                                                    \
    "        local rc = 0\n"                                                                       \
    "        local written = nil\n"                                                                \
    "        if le then\n"                                                                         \
    "          le.rc = (tonumber(le.rc) or 0) + 1\n"                                               \
    "          rc = le.rc\n"                                                                       \
    "          if type(le.fr) ~= 'number' then le.fr = fr end\n"                                   \
    "          written = safe_encode(le, lid)\n"                                                   \
    "        end\n"                                                                                \
    "        -- Unreadable, or unwritable with its count raised: unchanged, to where it is "       \
    "seen.\n"                                                                                      \
    "        if written then out = written end\n"                                                  \
    "        if dlq and ((maxrc > 0 and rc >= maxrc) or not written) then\n"                       \
    "          redis.call('RPUSH', dlq, out)\n"                                                    \
    "          dead = dead + 1\n"                                                                  \
    "        else\n"                                                                               \
    "          home[#home + 1] = out\n"                                                            \
    "        end\n"                                                                                \
    "        redis.call('HDEL', KEYS[2], lid)\n"                                                   \
    "      end\n"                                                                                  \
    "      redis.call('ZREM', KEYS[3], lid)\n"                                                     \
    "    end\n"                                                                                    \
    "    for j = #home, 1, -1 do redis.call('LPUSH', gp .. grp, home[j]) end\n"                    \
    "    back = back + #home\n"                                                                    \
    "    redis.call('HDEL', KEYS[4], grp)\n"                                                       \
    "    if redis.call('LLEN', gp .. grp) > 0 then redis.call('RPUSH', KEYS[5], grp) end\n"        \
    "  end\n"                                                                                      \
    "  redis.call('ZREM', KEYS[3], id)\n"                                                          \
    "end\n"                                                                                        \
    "return {back, dead}\n"

/* KEYS[1] list, [2] inflight, [3] leases, [4] busy, [5] ready. ARGV[1] group list prefix, then
 * lease ids in claim order. Gives leased messages back to the head of their group's list
 * unchanged (no receive counted), keeping their order, and unlocks each group that then holds no
 * lease (to the front of the ready list: it was first in line). Returns {went back, groups made
 * ready}. */
#define WEIR_REDIS_LUA_RELEASE_FIFO                                                                \
    WEIR_REDIS_LUA_HELPERS                                                                         \
    "local gp = ARGV[1]\n"                                                                         \
    "local by_group, order, n = {}, {}, 0\n"                                                       \
    "for i = 2, #ARGV do\n"                                                                        \
    "  local id = ARGV[i]\n"                                                                       \
    "  local el = redis.call('HGET', KEYS[2], id)\n"                                               \
    "  if el then\n"                                                                               \
    "    local e = decode(el)\n"                                                                   \
    "    if e and type(e.group) == 'string' then\n"                                                \
    "      if not by_group[e.group] then\n"                                                        \
    "        by_group[e.group] = {}\n"                                                             \
    "        order[#order + 1] = e.group\n"                                                        \
    "      end\n"                                                                                  \
    "      local l = by_group[e.group]\n"                                                          \
    "      l[#l + 1] = {id, el}\n"                                                                 \
    "    else\n"                                                                                   \
    "      redis.call('LPUSH', KEYS[1], el)\n"                                                     \
    "    end\n"                                                                                    \
    "    redis.call('HDEL', KEYS[2], id)\n"                                                        \
    "    n = n + 1\n"                                                                              \
    "  end\n"                                                                                      \
    "  redis.call('ZREM', KEYS[3], id)\n"                                                          \
    "end\n"                                                                                        \
    "local woke = 0\n"                                                                             \
    "for _, grp in ipairs(order) do\n"                                                             \
    "  local l = by_group[grp]\n"                                                                  \
    "  local gone = {}\n"                                                                          \
    "  for j = #l, 1, -1 do\n"                                                                     \
    "    redis.call('LPUSH', gp .. grp, l[j][2])\n"                                                \
    "    gone[l[j][1]] = true\n"                                                                   \
    "  end\n"                                                                                      \
    "  woke = woke + unbusy(KEYS[4], KEYS[5], gp, grp, gone, true)\n"                              \
    "end\n"                                                                                        \
    "return {n, woke}\n"

/* KEYS[1] inflight, [2] leases, [3] busy, [4] ready. ARGV[1] group list prefix, then pairs:
 * lease id, its group. Deletes settled messages and unlocks each group that then holds no lease.
 * Returns {deleted, groups made ready}: the caller claims again at once when a group is. */
#define WEIR_REDIS_LUA_DELETE_FIFO                                                                 \
    WEIR_REDIS_LUA_HELPERS                                                                         \
    "local gp = ARGV[1]\n"                                                                         \
    "local n, woke = 0, 0\n"                                                                       \
    "local gone, order = {}, {}\n"                                                                 \
    "for i = 2, #ARGV, 2 do\n"                                                                     \
    "  local id, grp = ARGV[i], ARGV[i + 1]\n"                                                     \
    "  n = n + redis.call('HDEL', KEYS[1], id)\n"                                                  \
    "  redis.call('ZREM', KEYS[2], id)\n"                                                          \
    "  if grp ~= '' then\n"                                                                        \
    "    if not gone[grp] then\n"                                                                  \
    "      gone[grp] = {}\n"                                                                       \
    "      order[#order + 1] = grp\n"                                                              \
    "    end\n"                                                                                    \
    "    gone[grp][id] = true\n"                                                                   \
    "  end\n"                                                                                      \
    "end\n"                                                                                        \
    "for _, grp in ipairs(order) do\n"                                                             \
    "  woke = woke + unbusy(KEYS[3], KEYS[4], gp, grp, gone[grp], false)\n"                        \
    "end\n"                                                                                        \
    "return {n, woke}\n"

enum weir_redis_script {
    WEIR_REDIS_CLAIM,
    WEIR_REDIS_RECLAIM,
    WEIR_REDIS_RELEASE,
    WEIR_REDIS_DELETE,
    WEIR_REDIS_BURY,
    WEIR_REDIS_CLAIM_FIFO,
    WEIR_REDIS_RECLAIM_FIFO,
    WEIR_REDIS_RELEASE_FIFO,
    WEIR_REDIS_DELETE_FIFO,
    WEIR_REDIS_NSCRIPTS
};

/* The Lua text of script s (static storage). */
const char *weir_redis_script_text(enum weir_redis_script s);
/* "claim", "reclaim", ... for logs. */
const char *weir_redis_script_name(enum weir_redis_script s);

/* weir's bookkeeping keys beside a queue list (docs/redis-queue.md). Owned strings.
 * Leased elements wait in a hash, not in a processing list: settling one from a list is LREM,
 * O(N) in the list's length, where HDEL is O(1) whatever the number in flight. */
struct weir_redis_keys {
    char *list;     /* <key> */
    char *inflight; /* <key>:weir:inflight  hash: lease id -> element as claimed */
    char *leases;   /* <key>:weir:leases    sorted set: lease id -> deadline (server ms) */
    char *seq;      /* <key>:weir:seq       counter of lease ids */
    char *parked;   /* <key>:weir:parked    list: what can never be delivered, when there is no
                       dead-letter list */
    /* FIFO queues only (docs/redis-queue.md, FIFO queues) */
    char *fifo_seq;     /* <key>:weir:fifo:seq  counter of SequenceNumbers */
    char *ready;        /* <key>:weir:ready     list: groups with messages and no lease */
    char *busy;         /* <key>:weir:busy      hash: group -> its lease ids, space-separated */
    char *dedup;        /* <key>:weir:dedup     sorted set: dedup id -> accepted (server ms) */
    char *group_prefix; /* <key>:weir:g:    + group: the group's list */
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
 * first receive time unless the envelope carries one; a FIFO envelope's seq the fifo_seq, and its
 * group the lane. deadline_ms is left 0. Attributes are checked and rendered by fmt (the source
 * row's event format, borrowed).
 * On a malformed envelope returns WEIR_ERR with err saying why and *out untouched; otherwise
 * *out is a new record the caller owns. */
weir_status weir_redis_parse_element(const char *el, size_t len, const char *lease_id,
                                     int64_t now_ms, const struct weir_event_format *fmt,
                                     struct weir_record **out, struct weir_err *err);

#endif
