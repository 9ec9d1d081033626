-- nginx limit_conn over every zone of one request, atomically (gateway/limit-req).
-- gateway/store/memory-store.ts (limitConnSync) mirrors it; change both together.
--
-- KEYS[i]  in-flight leases of zone i for this request's key: sorted set, member = lease
--          id, score = lease expiry (ms, Redis clock); zones in the route's order, empty
--          keys left out
-- ARGV     lease id, lease ttl ms, then per zone: max (requests in flight at once), then,
--          optionally, 'check': decide but take nothing (the first half of a decision
--          over zones in several Cluster slots, gateway/store/redis-store.ts)
-- Reply    {passed (1|0), zone (1-based: the full zone; 0 = none), inflight (that zone's
--          count; 0 when passed)}
--
-- A slot is given back with ZREM KEYS[i] <lease id> when the request ends. Leases expire
-- so an edge that dies holding some cannot keep a key's slots forever; the clock is
-- Redis TIME for the same reason as in admit.lua (one clock for every edge).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = ARGV[1]
local ttl = tonumber(ARGV[2])

-- Every zone is read before any is written: like nginx, which gives back the slots of the
-- earlier zones when a later one is full, a refused request holds none.
for i = 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  local inflight = redis.call('ZCARD', KEYS[i])
  if inflight >= tonumber(ARGV[2 + i]) then
    return {0, i, inflight}
  end
end
if ARGV[3 + #KEYS] == 'check' then return {1, 0, 0} end

for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], now + ttl, lease)
  -- Never shorten the set's life below a longer lease another caller took.
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
return {1, 0, 0}
