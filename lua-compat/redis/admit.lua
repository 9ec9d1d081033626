-- admit.lua: every limit of one request, decided and committed atomically.
-- Shared by Sluice (gateway/store/redis-store.ts) and the nginx+Lua edge;
-- gateway/store/memory-store.ts mirrors it step by step.
--
-- KEYS[1] token bucket   hash {tokens, ts}
-- KEYS[2] usage counters hash {d, dn, m, mn}: day id + count, month id + count
-- KEYS[3] in-flight leases zset member=lease id, score=expiry ms
-- ARGV: rate (tokens/s, 0 = no bucket), burst, cost, quota_day (0 = none),
--       quota_month (0 = none), max_inflight (0 = none), lease id, lease ttl ms,
--       and optionally max_cost: take up to this many (at least cost, at most a
--       tenth of what each limit has left), as one gateway's batch of tokens (a
--       token lease: gateway/limits/token-leases.ts; only without max_inflight),
--       and optionally expires_at (ARGV[10], ms on Redis's clock; absent or 0 =
--       none): a call that runs after it decides nothing and writes nothing, and
--       answers reason 5. Sluice sets it to when its deadline gives up on the call,
--       so a call abandoned during a cut cannot charge when the link heals.
--       (ARGV[11] and later are reserved for cost and usage.)
-- Reply: {allowed, reason, remaining, retry_after_ms, full_in_ms,
--         day_used, month_used, inflight, day_reset_ms, month_reset_ms, taken}
--   reason: 0 ok, 1 rate, 2 day quota, 3 month quota, 4 in-flight,
--           5 expired (arrived after expires_at; every other element 0)
--   A denial reports the state as it is (tokens, usage, leases), so the
--   RateLimit header of a 429 tells the truth about every policy.
--
-- The clock is Redis TIME, so every gateway (and nginx) sharing this Redis
-- shares one clock; callers' clocks may drift without effect on decisions.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- The caller has already decided this request without us: take nothing.
local expires_at = tonumber(ARGV[10])
if expires_at ~= nil and expires_at > 0 and now > expires_at then
  return {0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0}
end

local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local quota_day = tonumber(ARGV[4])
local quota_month = tonumber(ARGV[5])
local max_inflight = tonumber(ARGV[6])

-- UTC calendar from a day number (days since 1970-01-01), H. Hinnant's civil_from_days.
local function civil(z)
  z = z + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m, d
end

local function days_in_month(y, m)
  if m == 2 then
    if (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0 then return 29 end
    return 28
  end
  if m == 4 or m == 6 or m == 9 or m == 11 then return 30 end
  return 31
end

local day = math.floor(now / 86400000)
local y, m, d = civil(day)
local month = y * 100 + m
local day_reset = (day + 1) * 86400000 - now
local month_end = (day - d + 1 + days_in_month(y, m)) * 86400000
local month_reset = month_end - now

-- Read everything first; nothing below writes until every limit has passed.
-- In-flight leases expire so a crashed gateway cannot leak them forever.
local inflight = 0
if max_inflight > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  inflight = redis.call('ZCARD', KEYS[3])
end

-- Quota counters reset when the stored period id is not the current one.
local q = redis.call('HMGET', KEYS[2], 'd', 'dn', 'm', 'mn')
local day_used = 0
if tonumber(q[1]) == day then day_used = tonumber(q[2]) end
local month_used = 0
if tonumber(q[3]) == month then month_used = tonumber(q[4]) end

-- Token bucket, refilled continuously up to burst.
local tokens = 0
local remaining = 0
local full_in = 0
if rate > 0 then
  local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
  tokens = tonumber(b[1])
  if tokens == nil then
    tokens = burst
  else
    local elapsed = now - tonumber(b[2])
    if elapsed < 0 then elapsed = 0 end
    tokens = math.min(burst, tokens + elapsed * rate / 1000)
  end
  remaining = math.floor(tokens)
  full_in = math.ceil((burst - tokens) * 1000 / rate)
end

-- A batch: up to max_cost, but never more than a tenth of what any limit has left, on
-- this state and not the gateway's older view of it. Units a gateway holds are units
-- another edge sharing this Redis cannot have; at a tenth, the other edges still have
-- nine times what one batch holds, and the last 19 units go one request at a time.
local max_cost = tonumber(ARGV[9])
if max_cost ~= nil and max_cost > cost then
  local room = max_cost
  if rate > 0 then room = math.min(room, math.floor(tokens / 10)) end
  if quota_day > 0 then room = math.min(room, math.floor((quota_day - day_used) / 10)) end
  if quota_month > 0 then room = math.min(room, math.floor((quota_month - month_used) / 10)) end
  if room > cost then cost = room end
end

-- Decide, in this order: in-flight, day quota, month quota, bucket.
if max_inflight > 0 and inflight + 1 > max_inflight then
  return {0, 4, remaining, 1000, full_in, day_used, month_used, inflight, day_reset, month_reset, 0}
end
if quota_day > 0 and day_used + cost > quota_day then
  return {0, 2, remaining, day_reset, full_in, day_used, month_used, inflight, day_reset, month_reset, 0}
end
if quota_month > 0 and month_used + cost > quota_month then
  return {0, 3, remaining, month_reset, full_in, day_used, month_used, inflight, day_reset, month_reset, 0}
end
if rate > 0 and tokens < cost then
  local retry = math.ceil((cost - tokens) * 1000 / rate)
  return {0, 1, remaining, retry, full_in, day_used, month_used, inflight, day_reset, month_reset, 0}
end

-- Everything passed: commit the bucket, usage and the lease.
if rate > 0 then
  tokens = tokens - cost
  full_in = math.ceil((burst - tokens) * 1000 / rate)
  remaining = math.floor(tokens)
  -- %.17g round-trips a double exactly; tostring (%.14g) would round the
  -- fraction and let Redis and the memory store drift apart.
  redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', now)
  redis.call('PEXPIRE', KEYS[1], full_in + 1000)
end
day_used = day_used + cost
month_used = month_used + cost
redis.call('HSET', KEYS[2], 'd', day, 'dn', day_used, 'm', month, 'mn', month_used)
redis.call('PEXPIREAT', KEYS[2], month_end + 86400000)
if max_inflight > 0 then
  local ttl = tonumber(ARGV[8])
  redis.call('ZADD', KEYS[3], now + ttl, ARGV[7])
  -- Never shorten the set's life below a longer lease another caller took.
  if redis.call('PTTL', KEYS[3]) < ttl then redis.call('PEXPIRE', KEYS[3], ttl) end
  inflight = inflight + 1
end
return {1, 0, remaining, 0, full_in, day_used, month_used, inflight, day_reset, month_reset, cost}
