-- lease_return.lua: give back what a token lease did not use.
-- A gateway that took a batch with admit.lua's max_cost and let part of it go
-- unused returns that part here, so the tokens and quota are not lost to the
-- customer. Returning is exact: those units admitted nothing, so putting them
-- back leaves the bucket and counters as if they had never been taken (the
-- bucket still never holds more than burst).
--
-- KEYS[1] token bucket   hash {tokens, ts}
-- KEYS[2] usage counters hash {d, dn, m, mn}
-- ARGV: rate, burst, unused, day id and month id the batch was taken in
--       (units of a period that has ended are not returned to the new one)
-- Reply: 1

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local unused = tonumber(ARGV[3])

if rate > 0 then
  local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
  -- No bucket means a full one: nothing to give back to.
  if b[1] then
    local elapsed = now - tonumber(b[2])
    if elapsed < 0 then elapsed = 0 end
    local tokens = math.min(burst, tonumber(b[1]) + elapsed * rate / 1000 + unused)
    redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', now)
    redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
  end
end

local q = redis.call('HMGET', KEYS[2], 'd', 'dn', 'm', 'mn')
if q[1] == ARGV[4] then redis.call('HSET', KEYS[2], 'dn', math.max(0, tonumber(q[2]) - unused)) end
if q[3] == ARGV[5] then redis.call('HSET', KEYS[2], 'mn', math.max(0, tonumber(q[4]) - unused)) end
return 1
