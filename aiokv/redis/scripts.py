"""The Lua scripts of the Redis store. Redis runs a script whole and alone, so each is atomic.

Each starts with ``#!lua`` (Redis 7 and later): a script so marked that may write is refused
whole when Redis is over its ``maxmemory`` (with ``noeviction``), before it runs, rather
than failing at its first write; so a batch is never left half written for want of memory.
"""

from __future__ import annotations

from typing import Final

TOUCH: Final = """#!lua
-- KEYS[1]: the key; ARGV[1]: its new TTL in milliseconds, 0 for none. 1 if it exists.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
if ARGV[1] == '0' then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 1
"""

CREATE_MANY: Final = """#!lua
-- KEYS: the keys. ARGV[1]: PX (each expiry a TTL in milliseconds) or PXAT (a Unix time in
-- milliseconds); ARGV[2i]: KEYS[i]'s value, ARGV[2i + 1]: its expiry, 0 for none.
-- Writes them all if none exists, else nothing; returns the positions of those that exist.
local live = {}
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    live[#live + 1] = i
  end
end
if #live > 0 then
  return live
end
local unit = ARGV[1]
for i = 1, #KEYS do
  local expiry = ARGV[2 * i + 1]
  if expiry == '0' then
    redis.call('SET', KEYS[i], ARGV[2 * i])
  else
    redis.call('SET', KEYS[i], ARGV[2 * i], unit, expiry)
  end
end
return live
"""
