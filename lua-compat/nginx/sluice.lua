-- sluice.lua: the nginx+Lua edge's side of a migration to Sluice.
--
-- It authenticates the same hashed API keys, runs the same lua-compat/redis/admit.lua
-- on the same keys of the same Redis, and answers with the same status codes, JSON
-- error bodies and RateLimit headers as Sluice, so a customer's budget is one budget
-- whichever edge a request reaches. lua-compat/README.md ("The nginx module") has the
-- configuration and what must match between the two edges.
--
-- Phases: init (read config and script), init_worker (cache, lease ids, SCRIPT LOAD),
-- access (auth + limits), header_filter (response headers), log (lease release).
local crypto = require("sluice.crypto")
local json = require("sluice.json")
local resp = require("sluice.resp")
local lrucache = require("resty.lrucache")

local ngx = ngx
local floor, ceil, max, min = math.floor, math.ceil, math.max, math.min
local fmt = string.format

local M = {}

local cfg            -- the decoded config file, with defaults applied
local pepper         -- nil when keys are plain SHA-256
local admit_lua      -- the text of lua-compat/redis/admit.lua
local admit_sha      -- its SHA1, what SCRIPT LOAD answers and EVALSHA takes
local static_keys    -- digest -> { customer, plan }
local redis          -- resp client
local cache          -- per-worker lrucache: digest -> identity or failure
local lease_prefix   -- unique per worker, like Sluice's per process
local lease_seq = 0

-- Mirrors of gateway/limits/rate-limit-headers.ts and denyMessage; the interop test
-- compares the two edges' answers byte for byte.
local REASONS = { "rate_limited", "quota_exceeded", "quota_exceeded", "concurrency_limited" }
local SF_INT_MAX = 999999999999999
local UNKNOWN_KEY = { failure = "unknown or revoked API key" }
local MISSING = "missing credential: send X-API-Key: <key> or Authorization: Bearer <key or JWT>"
local MAX_CREDENTIAL = 8192

local function here()
  local src = debug.getinfo(1, "S").source
  return (src:sub(1, 1) == "@" and src:sub(2) or src):match("^(.*)/[^/]*$") or "."
end

local function read_file(path)
  local f, err = io.open(path, "rb")
  if f == nil then error("sluice: cannot read " .. path .. ": " .. tostring(err), 0) end
  local s = f:read("*a")
  f:close()
  return s
end

-- JS's String(n) for the numbers a config holds: integers without a fraction,
-- others with enough digits to round-trip.
local function num(n)
  if n == floor(n) and n > -1e15 and n < 1e15 then return fmt("%d", n) end
  local s = fmt("%.15g", n)
  if tonumber(s) ~= n then s = fmt("%.17g", n) end
  return s
end

local function sf_int(n)
  return fmt("%d", min(SF_INT_MAX, max(0, floor(n))))
end

local function sf_string(s)
  return '"' .. s:gsub('[^\32-\126]', function(c) return fmt("%%%02X", c:byte()) end):gsub('["\\]', "\\%0") .. '"'
end

--- Reads the config file (JSON, see nginx/sluice-nginx.example.json) and the admit
--- script. Runs in init_by_lua, in the master, before any worker exists.
function M.init(config_path)
  local text = read_file(config_path)
  local c, err = json.decode(text)
  if c == nil then error("sluice: " .. config_path .. ": " .. err, 0) end
  c.prefix = c.prefix or "sluice:"
  c.redis = c.redis or {}
  c.redis.host = c.redis.host or "127.0.0.1"
  c.redis.port = c.redis.port or 6379
  c.redis.timeout_ms = c.redis.timeout_ms or 50
  c.redis.pool_size = c.redis.pool_size or 64
  c.redis.idle_timeout_ms = c.redis.idle_timeout_ms or 60000
  c.cache_ttl_ms = c.cache_ttl_ms or 60000
  c.negative_cache_ttl_ms = c.negative_cache_ttl_ms or 5000
  c.cache_max = c.cache_max or 10000
  c.failure_policy = c.failure_policy or "open"
  c.lease_ttl_ms = c.lease_ttl_ms or 180000
  c.plans = c.plans or {}
  c.customers = c.customers or {}
  for name, p in pairs(c.plans) do
    p.name = name
    p.rate = p.rate or 0
    p.burst = p.burst or p.rate
    p.quota_day = p.quota_day or 0
    p.quota_month = p.quota_month or 0
    p.max_inflight = p.max_inflight or 0
    p.max_body_bytes = p.max_body_bytes or 0
    p.scope = p.scope or "customer"
  end
  static_keys = {}
  for _, k in ipairs(c.keys or {}) do static_keys[k.digest] = k end
  -- nginx wipes the environment of its processes; `env NAME;` in nginx.conf keeps one.
  if c.pepper_env then pepper = os.getenv(c.pepper_env) else pepper = c.pepper end
  if c.pepper_env and (pepper == nil or pepper == "") then
    error("sluice: pepper_env " .. c.pepper_env .. " is not set (add `env " .. c.pepper_env .. ";` to nginx.conf)", 0)
  end
  -- The one copy of the script, beside this module's folder, read as it is.
  local scripts = c.scripts_dir or (here() .. "/../redis")
  admit_lua = read_file(scripts .. "/admit.lua")
  admit_sha = crypto.sha1_hex(admit_lua)
  cfg = c
end

local function load_script(premature)
  if premature then return end
  local sha, err = redis:call("SCRIPT", "LOAD", admit_lua)
  if sha ~= admit_sha then
    -- EVALSHA falls back to EVAL on NOSCRIPT, so a Redis that is down now costs one EVAL later.
    ngx.log(ngx.WARN, "sluice: SCRIPT LOAD failed (", tostring(err or sha), "); requests will EVAL on NOSCRIPT")
  end
end

function M.init_worker()
  redis = resp.new(cfg.redis)
  cache = assert(lrucache.new(cfg.cache_max))
  lease_prefix = crypto.random_hex(6)
  -- Cosockets are not available in init_worker itself.
  ngx.timer.at(0, load_script)
end

-- Request id ----------------------------------------------------------------------

local function uuid4()
  local h = crypto.random_hex(16)
  local v = tonumber(h:sub(17, 17), 16) % 4 + 1
  local variant = ("89ab"):sub(v, v)
  return fmt("%s-%s-4%s-%s%s-%s", h:sub(1, 8), h:sub(9, 12), h:sub(14, 16), variant, h:sub(18, 20), h:sub(21, 32))
end

-- Kept from the client when it is a short token of safe characters (request-id.ts).
local function request_id()
  local ctx = ngx.ctx
  if ctx.sluice_rid then return ctx.sluice_rid end
  local v = ngx.req.get_headers()["x-request-id"]
  if type(v) ~= "string" or #v > 128 or not v:find("^[A-Za-z0-9][A-Za-z0-9._:-]*$") then v = uuid4() end
  ctx.sluice_rid = v
  return v
end

-- Answers -------------------------------------------------------------------------

-- The JSON error of gateway/http/errors.ts, with its headers. X-Request-Id and the
-- RateLimit fields are added by header_filter, like on every other response.
local function send_error(status, code, message, retry_after)
  local body = '{"error":{"code":' .. json.string(code) .. ',"message":' .. json.string(message)
    .. ',"request_id":' .. json.string(request_id()) .. "}}"
  ngx.status = status
  local h = ngx.header
  h["Content-Type"] = "application/json; charset=utf-8"
  h["Content-Length"] = #body
  h["Cache-Control"] = "no-store"
  if retry_after then h["Retry-After"] = retry_after end
  if status == 401 then h["WWW-Authenticate"] = 'Bearer realm="sluice"' end
  ngx.print(body)
  return ngx.exit(ngx.HTTP_OK)
end

-- Identity ------------------------------------------------------------------------

local function credential()
  local headers = ngx.req.get_headers()
  local key = headers["x-api-key"]
  -- Node joins repeated headers with ", "; do the same so both edges hash the same bytes.
  if type(key) == "table" then key = table.concat(key, ", ") end
  if key and #key > 0 and #key <= MAX_CREDENTIAL then return "key", key end
  local auth = headers["authorization"]
  if type(auth) == "table" then auth = auth[1] end
  if type(auth) ~= "string" or #auth > MAX_CREDENTIAL then return nil end
  local token = auth:match("^[Bb][Ee][Aa][Rr][Ee][Rr]%s+(%S+)%s*$")
  if token == nil then return nil end
  if token:find("^eyJ[%w_-]*%.[%w_-]+%.[%w_-]*$") then return "jwt", token end
  return "key", token
end

local function policy_header(name, p)
  local parts = {}
  if p.rate > 0 then parts[#parts + 1] = sf_string(name) .. ";q=" .. sf_int(p.burst) .. ";w=" .. max(1, tonumber(sf_int(ceil(p.burst / p.rate)))) end
  if p.quota_day > 0 then parts[#parts + 1] = sf_string(name .. "-day") .. ";q=" .. sf_int(p.quota_day) .. ";w=86400" end
  if p.quota_month > 0 then parts[#parts + 1] = sf_string(name .. "-month") .. ";q=" .. sf_int(p.quota_month) .. ";w=2592000" end
  return table.concat(parts, ", ")
end

-- gateway/auth/identity.ts: the key's plan, else the stored customer's, else the
-- configured customer's; overrides from config, then from the store.
local function build_identity(customer, plan_name, digest, stored)
  local conf_cust = cfg.customers[customer]
  plan_name = plan_name or (stored and stored.plan) or (conf_cust and conf_cust.plan)
  local plan = plan_name and cfg.plans[plan_name]
  if plan == nil then return { failure = "no valid plan for customer " .. customer } end
  local o = {}
  for k, v in pairs(conf_cust and conf_cust.overrides or {}) do o[k] = v end
  for k, v in pairs(stored and stored.overrides or {}) do o[k] = v end
  local rate = o.rate or plan.rate
  local burst = o.burst or (plan.burst > 0 and plan.burst or rate)
  local p = {
    rate = rate, burst = burst,
    quota_day = o.quota_day or plan.quota_day,
    quota_month = o.quota_month or plan.quota_month,
    max_inflight = o.max_inflight or plan.max_inflight,
  }
  local subject = customer
  if plan.scope == "key" and digest then subject = "k:" .. digest:sub(1, 32) end
  local P = cfg.prefix
  return {
    customer = customer,
    plan = plan.name,
    subject = subject,
    keys = { P .. "rl:{" .. subject .. "}:tb", P .. "rl:{" .. subject .. "}:q", P .. "rl:{" .. subject .. "}:if" },
    policy = p,
    max_body_bytes = o.max_body_bytes or plan.max_body_bytes,
    failure_policy = plan.failure_policy or cfg.failure_policy,
    policy_header = policy_header(plan.name, p),
  }
end

local function nonempty(v)
  if type(v) ~= "string" or v == "" then return nil end
  return v
end

-- A key's allowlist (gateway/auth/allowlist.ts) as IPv4 ranges. IPv6 entries are left
-- out: this module matches IPv4 only, so a key with an allowlist is refused to IPv6
-- clients (closed, never open).
local function ipv4(s)
  local a, b, c, d = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if a == nil then return nil end
  a, b, c, d = tonumber(a), tonumber(b), tonumber(c), tonumber(d)
  if a > 255 or b > 255 or c > 255 or d > 255 then return nil end
  return ((a * 256 + b) * 256 + c) * 256 + d
end

local function parse_allow(text)
  local out = {}
  for entry in text:gmatch("[^,]+") do
    local addr, bits = entry:match("^([^/]+)/?(%d*)$")
    local n = addr and ipv4(addr)
    if n then
      local size = 2 ^ (32 - (bits == "" and 32 or tonumber(bits)))
      local low = n - (n % size)
      out[#out + 1] = { low, low + size - 1 }
    end
  end
  return out
end

local function allowed(ranges, addr)
  local n = ipv4(addr or "")
  if n == nil then return false end
  for _, r in ipairs(ranges) do if n >= r[1] and n <= r[2] then return true end end
  return false
end

-- A key's expiry and the end of its rotation grace (gateway/auth/authenticator.ts keyTerms).
local function key_end(rec)
  local expires, grace = rec.expires or math.huge, rec.grace_until or math.huge
  if grace < expires then return grace, "API key was rotated and its grace period has ended" end
  return expires, "API key expired"
end

-- Returns an identity or { failure = text }; nil + error when Redis did not answer.
local function lookup(digest)
  local rec = static_keys[digest]
  if rec == nil then
    local arr, err, is_redis = redis:call("HGETALL", cfg.prefix .. "key:" .. digest)
    if arr == nil then return nil, (is_redis and "redis: " or "") .. tostring(err) end
    local h = resp.hash(arr)
    if h.customer == nil then return UNKNOWN_KEY end
    rec = {
      customer = h.customer, plan = nonempty(h.plan),
      expires = tonumber(h.expires or ""), grace_until = tonumber(h.grace_until or ""), allow = nonempty(h.allow),
    }
  end
  local ends, end_message = key_end(rec)
  if ngx.now() * 1000 >= ends then return { failure = end_message } end
  local arr, err = redis:call("HGETALL", cfg.prefix .. "cust:{" .. rec.customer .. "}")
  if arr == nil then return nil, tostring(err) end
  local h = resp.hash(arr)
  local stored
  if h.plan ~= nil or h.overrides ~= nil then
    stored = { plan = nonempty(h.plan), overrides = nonempty(h.overrides) and json.decode(h.overrides) or {} }
  end
  local id = build_identity(rec.customer, nonempty(rec.plan), digest, stored)
  if id.failure then return id end
  if ends ~= math.huge then id.valid_until, id.end_message = ends, end_message end
  if rec.allow then id.allow = parse_allow(rec.allow) end
  return id
end

local function authenticate()
  local kind, value = credential()
  if kind == nil then return nil, 401, MISSING end
  -- JWTs are verified by Sluice only (lua-compat/README.md); nginx refuses them as Sluice does when they are off.
  if kind == "jwt" then return nil, 401, "JWT bearer tokens are not enabled" end
  local digest = crypto.key_digest(value, pepper)
  local id = cache:get(digest)
  if id == nil then
    local err
    id, err = lookup(digest)
    if id == nil then
      ngx.log(ngx.WARN, "sluice: credential lookup failed: ", err)
      return nil, 503
    end
    if id.failure then cache:set(digest, id, max(0.001, cfg.negative_cache_ttl_ms / 1000))
    else cache:set(digest, id, max(0.001, cfg.cache_ttl_ms / 1000)) end
  end
  if id.failure then return nil, 401, id.failure end
  -- Checked on every request: a cached identity must not outlive its key.
  if id.valid_until and ngx.now() * 1000 >= id.valid_until then return nil, 401, id.end_message end
  return id
end

-- Limits --------------------------------------------------------------------------

local function ratelimit_value(id, d)
  local p, name = id.policy, id.plan
  local parts = {}
  if p.rate > 0 then
    local t
    if d.allowed == 0 and d.reason == 1 then
      t = ceil(d.retry_after_ms / 1000)
    elseif d.full_in_ms > 0 then
      local next_ms = min(d.full_in_ms, d.full_in_ms - (p.burst - d.remaining - 1) * 1000 / p.rate)
      t = ceil(max(0, next_ms) / 1000)
    end
    parts[#parts + 1] = sf_string(name) .. ";r=" .. sf_int(d.remaining) .. (t and (";t=" .. sf_int(t)) or "")
  end
  if p.quota_day > 0 then
    parts[#parts + 1] = sf_string(name .. "-day") .. ";r=" .. sf_int(p.quota_day - d.day_used) .. ";t=" .. sf_int(ceil(d.day_reset_ms / 1000))
  end
  if p.quota_month > 0 then
    parts[#parts + 1] = sf_string(name .. "-month") .. ";r=" .. sf_int(p.quota_month - d.month_used) .. ";t=" .. sf_int(ceil(d.month_reset_ms / 1000))
  end
  return table.concat(parts, ", ")
end

local function deny_message(id, d)
  local p = id.policy
  if d.reason == 1 then
    return "rate limit of " .. num(p.rate) .. "/s with burst " .. num(p.burst) .. " exceeded for plan " .. id.plan
  elseif d.reason == 2 or d.reason == 3 then
    if p.quota_day > 0 and d.day_used >= p.quota_day then
      return "daily quota of " .. num(p.quota_day) .. " requests used up; it resets at 00:00 UTC"
    end
    return "monthly quota of " .. num(p.quota_month) .. " requests used up; it resets on the 1st at 00:00 UTC"
  end
  return "too many requests in flight (at most " .. num(p.max_inflight) .. " for plan " .. id.plan .. ")"
end

local function release(premature, key, lease)
  if premature then return end
  local _, err = redis:call("ZREM", key, lease)
  if err then ngx.log(ngx.WARN, "sluice: lease release failed: ", err) end
end

-- One EVALSHA; EVAL when Redis lost its script cache (restart, failover).
local function admit(id, lease)
  local p = id.policy
  local k = id.keys
  local argv = { num(p.rate), num(p.burst), "1", num(p.quota_day), num(p.quota_month), num(p.max_inflight), lease, num(cfg.lease_ttl_ms) }
  local r, err, is_redis = redis:call("EVALSHA", admit_sha, 3, k[1], k[2], k[3], unpack(argv))
  if r == nil and is_redis and err:find("^NOSCRIPT") then
    r, err = redis:call("EVAL", admit_lua, 3, k[1], k[2], k[3], unpack(argv))
  end
  if r == nil then return nil, err end
  return {
    allowed = r[1], reason = r[2], remaining = r[3], retry_after_ms = r[4], full_in_ms = r[5],
    day_used = r[6], month_used = r[7], inflight = r[8], day_reset_ms = r[9], month_reset_ms = r[10],
  }
end

--- access_by_lua: opts.route names the location for messages, opts.plans (optional)
--- lists the plans allowed on it, like a Sluice route's `plans`.
function M.access(opts)
  opts = opts or {}
  local ctx = ngx.ctx
  request_id()
  local id, status, message = authenticate()
  if id == nil then
    if status == 503 then return send_error(503, "unavailable", "credential store unavailable, try again", "1") end
    return send_error(401, "unauthorized", message)
  end
  if id.allow and not allowed(id.allow, ngx.var.remote_addr) then
    return send_error(403, "forbidden", "this API key may not be used from this client address (its allowlist)")
  end
  if opts.plans then
    local ok = false
    for _, name in ipairs(opts.plans) do if name == id.plan then ok = true end end
    if not ok then
      return send_error(403, "forbidden", "plan " .. id.plan .. " does not include route " .. (opts.route or ngx.var.uri))
    end
  end

  lease_seq = lease_seq + 1
  local lease = lease_prefix .. ":" .. lease_seq
  local d, err = admit(id, lease)
  if d == nil then
    ngx.log(ngx.WARN, "sluice: admit failed: ", err)
    -- The call may still have run and taken a lease nobody would release.
    if id.policy.max_inflight > 0 then ngx.timer.at(0, release, id.keys[3], lease) end
    if id.failure_policy == "closed" then
      return send_error(503, "unavailable", "rate-limit store unavailable and the plan fails closed", "1")
    end
    -- Failing open on nginx admits without limits: there are no local fallback buckets here.
  else
    if id.policy_header ~= "" then ctx.sluice_limits = { id.policy_header, ratelimit_value(id, d) } end
    if d.allowed ~= 1 then
      return send_error(429, REASONS[d.reason], deny_message(id, d), tostring(max(1, ceil(d.retry_after_ms / 1000))))
    end
    if id.policy.max_inflight > 0 then ctx.sluice_lease = { id.keys[3], lease } end
  end

  -- Like Sluice, the plan's body limit is checked after the limits; a chunked body
  -- is bounded by client_max_body_size only.
  local limit = id.max_body_bytes
  local len = tonumber(ngx.var.http_content_length or "")
  if limit and limit > 0 and len and len > limit then
    return send_error(413, "payload_too_large", "request body exceeds " .. num(limit) .. " bytes")
  end

  -- What the upstream may trust: only the identity established here.
  local headers = ngx.req.get_headers()
  for name in pairs(headers) do
    if name:sub(1, 9) == "x-sluice-" then ngx.req.clear_header(name) end
  end
  ngx.req.clear_header("X-API-Key")
  ngx.req.clear_header("Authorization")
  ngx.req.set_header("X-Request-Id", ctx.sluice_rid)
  ngx.req.set_header("X-Sluice-Customer", id.customer)
  ngx.req.set_header("X-Sluice-Plan", id.plan)
end

--- header_filter_by_lua: the request id and the RateLimit fields on every response,
--- the upstream's and our own errors alike.
function M.header_filter()
  local ctx = ngx.ctx
  ngx.header["X-Request-Id"] = request_id()
  local l = ctx.sluice_limits
  if l then
    ngx.header["RateLimit-Policy"] = l[1]
    ngx.header["RateLimit"] = l[2]
  end
end

--- log_by_lua: ends the in-flight lease once the response is done. Cosockets are
--- unavailable in this phase, hence the zero-delay timer.
function M.log()
  local l = ngx.ctx.sluice_lease
  if l then
    local ok, err = ngx.timer.at(0, release, l[1], l[2])
    if not ok then ngx.log(ngx.ERR, "sluice: cannot schedule lease release: ", err) end
  end
end

return M
