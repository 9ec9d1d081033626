-- usage.lua: one subject's limit state, read-only, on the same clock admit.lua
-- uses (Redis TIME), so "in flight" means exactly what admit.lua would count.
--
-- KEYS[1] token bucket, KEYS[2] usage counters, KEYS[3] in-flight leases
-- (the keys of admit.lua). No ARGV.
-- Reply: {now_ms, day_id, day_count, month_id, month_count, inflight, tokens}
--   ids, counts and tokens are strings ('' when absent); tokens keeps its
--   fraction, which a Lua number in a reply would lose.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local q = redis.call('HMGET', KEYS[2], 'd', 'dn', 'm', 'mn')
local inflight = redis.call('ZCOUNT', KEYS[3], '(' .. string.format('%d', now), '+inf')
local tokens = redis.call('HGET', KEYS[1], 'tokens')
return {now, q[1] or '', q[2] or '', q[3] or '', q[4] or '', inflight, tokens or ''}
