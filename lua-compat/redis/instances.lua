-- instances.lua: one gateway's heartbeat, answered with how many are alive.
-- A gateway that fails open falls back to local buckets sized to its share
-- (1 / alive) of each limit, so the fleet as a whole stays near the plan.
--
-- KEYS[1] instances zset member=instance id, score=expiry ms (Redis TIME)
-- ARGV: instance id, ttl ms (a few heartbeat intervals)
-- Reply: number of instances whose heartbeat has not expired, this one included

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl)
return redis.call('ZCARD', KEYS[1])
