-- nginx limit_req over every zone of one request, atomically (gateway/limit-req).
-- Mirrors ngx_http_limit_req_module (lookup + account) and, line for line,
-- gateway/store/limit-req-math.ts; change both together.
--
-- KEYS[i]  state of zone i for this request's key: hash {e = excess (milli-requests),
--          l = last (ms, Redis clock)}; zones in the route's order, empty keys left out
-- ARGV     per zone, 3 values: rate_milli (milli-requests/s), burst_milli, delay_milli
--          (delay * 1000; nodelay = burst_milli)
--          then, optionally, 'check': decide but write nothing (the first half of a
--          decision over zones in several Cluster slots, gateway/store/redis-store.ts)
-- Reply    {passed (1|0), zone (1-based: the zone that refused, or that set the delay;
--          0 = none), excess (milli-requests of that zone), delay_ms, now_ms}
--
-- Clock: Redis TIME, so every edge sharing this Redis (nginx and Sluice, any number
-- of processes) drains the same buckets on one clock.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = #KEYS
local excesses, lasts = {}, {}

for i = 1, n do
  local rate = tonumber(ARGV[3 * i - 2])
  local burst = tonumber(ARGV[3 * i - 1])
  local st = redis.call('HMGET', KEYS[i], 'e', 'l')
  local excess, last
  if not st[1] then
    -- A key never seen (or expired after it drained) starts at 0: its first request passes.
    excess, last = 0, now
  else
    local prev = tonumber(st[2])
    local raw = now - prev
    local ms = raw
    if ms < -60000 then ms = 1 elseif ms < 0 then ms = 0 end
    excess = tonumber(st[1]) - math.floor(rate * ms / 1000) + 1000
    if excess < 0 then excess = 0 end
    -- nginx moves `last` only when the clamped ms is not 0.
    if ms == 0 then last = prev else last = now end
  end
  if excess > burst then
    -- Refused: nothing written, for this zone or any other.
    return {0, i, excess, 0, now}
  end
  excesses[i], lasts[i] = excess, last
end
if ARGV[3 * n + 1] == 'check' then return {1, 0, 0, 0, now} end

local zone, out_excess, delay = 0, 0, 0
for i = 1, n do
  local rate = tonumber(ARGV[3 * i - 2])
  local delay_milli = tonumber(ARGV[3 * i])
  local excess = excesses[i]
  redis.call('HSET', KEYS[i], 'e', excess, 'l', lasts[i])
  -- Once drained, the key is worth exactly what no key is worth; let it go then (+1 s slack).
  redis.call('PEXPIRE', KEYS[i], math.ceil((excess + 1000) * 1000 / rate) + 1000)
  if excess > delay_milli then
    local d = math.floor((excess - delay_milli) * 1000 / rate)
    if d > delay then delay, zone, out_excess = d, i, excess end
  end
end
return {1, zone, out_excess, delay, now}
