-- settle.lua: after a response, make what a request was charged what it really cost.
-- admit.lua charged an estimate before the work (the edge cannot see the pixels); the
-- backend then reports the work, and the gateway charges the difference or gives it
-- back here, in admit.lua's own keys. A response failed by Sluice or a backend gives
-- back its quota units the same way. gateway/store/memory-store.ts mirrors this script.
--
-- KEYS[1] token bucket   hash {tokens, ts}
-- KEYS[2] usage counters hash {d, dn, m, mn}
-- ARGV: rate, burst, tokens (units more to take from the bucket; negative: give back),
--       quota (units more to count in the day and month; negative: give back),
--       day id and month id the request was admitted in, quota_day, quota_month
--       (0 = none), floor (see the reply)
--
-- Charging more never refuses (the work is done): the bucket may go below zero and a
-- counter past its quota, and admit.lua then refuses until refill or the next period.
-- That is the exactness cost of settling (docs/limits.md): at most one request's
-- estimate error per request in flight. A charge lands in the admission's period, or in
-- a newer one when the counters already moved on (midnight passed meanwhile). Giving
-- back is lease_return.lua's rule: the bucket never past burst, counters never below
-- zero, and only into the periods the request was admitted in.
--
-- Reply: {lifted, d, dn, m, mn}
--   lifted: 1 when units were given back while a request of `floor` units would have
--   been refused, i.e. when some gateway may hold a cached denial for this subject that
--   the give-back just made untrue (the caller then clears it fleet-wide).
--   d, dn, m, mn: the counters afterwards (day id and count, month id and count; 0 when none).

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local dtok = tonumber(ARGV[3])
local dq = tonumber(ARGV[4])
local day = tonumber(ARGV[5])
local month = tonumber(ARGV[6])
local quota_day = tonumber(ARGV[7])
local quota_month = tonumber(ARGV[8])
local floor = tonumber(ARGV[9])
local lifted = 0

if rate > 0 and dtok ~= 0 then
  local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
  -- No bucket means a full one.
  local tokens = burst
  if b[1] then
    local elapsed = now - tonumber(b[2])
    if elapsed < 0 then elapsed = 0 end
    tokens = math.min(burst, tonumber(b[1]) + elapsed * rate / 1000)
  end
  if dtok < 0 and tokens < floor then lifted = 1 end
  if dtok > 0 or b[1] then
    tokens = math.min(burst, tokens - dtok)
    redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', now)
    redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
  end
end

local q = redis.call('HMGET', KEYS[2], 'd', 'dn', 'm', 'mn')
local qd, dn, qm, mn = tonumber(q[1]), tonumber(q[2]) or 0, tonumber(q[3]), tonumber(q[4]) or 0
if dq > 0 then
  if qd == nil or qd < day then qd = day; dn = 0 end
  if qm == nil or qm < month then qm = month; mn = 0 end
  dn = dn + dq
  mn = mn + dq
  redis.call('HSET', KEYS[2], 'd', qd, 'dn', dn, 'm', qm, 'mn', mn)
  -- admit.lua keeps the counters to a day after the month ends; a fresh hash gets as long.
  if redis.call('PTTL', KEYS[2]) < 0 then redis.call('PEXPIRE', KEYS[2], 32 * 86400000) end
elseif dq < 0 then
  if (quota_day > 0 and qd == day and quota_day - dn < floor) or (quota_month > 0 and qm == month and quota_month - mn < floor) then lifted = 1 end
  if qd == day then dn = math.max(0, dn + dq); redis.call('HSET', KEYS[2], 'dn', dn) end
  if qm == month then mn = math.max(0, mn + dq); redis.call('HSET', KEYS[2], 'mn', mn) end
end
return {lifted, qd or 0, dn, qm or 0, mn}
