-- A minimal RESP2 client on ngx.socket.tcp (Debian has no lua-resty-redis).
--
-- One command per call, on a connection borrowed from the worker's keep-alive pool
-- and handed back after a complete reply. Any transport failure closes the
-- connection instead: a half-read reply left on a pooled socket would be read as
-- the answer to someone else's command.
local tcp = ngx.socket.tcp
local concat = table.concat
local sub = string.sub

local M = {}

--- opts: host, port, timeout_ms (connect, send and read each), pool_size,
--- idle_timeout_ms, password, db.
function M.new(opts)
  return setmetatable({ o = opts, pool = string.format("sluice-redis:%s:%d:%d", opts.host, opts.port, opts.db or 0) }, { __index = M })
end

local function encode(args)
  local out = { "*", #args, "\r\n" }
  for i = 1, #args do
    local a = args[i]
    if type(a) ~= "string" then a = tostring(a) end
    out[#out + 1] = "$"
    out[#out + 1] = #a
    out[#out + 1] = "\r\n"
    out[#out + 1] = a
    out[#out + 1] = "\r\n"
  end
  return concat(out)
end

-- Returns value, or nil + message + true for a Redis error reply, or nil + message
-- for a broken connection. Errors nested in arrays become { err = message }.
local function read_reply(sock)
  local line, err = sock:receive("*l")
  if line == nil then return nil, err end
  local kind, rest = sub(line, 1, 1), sub(line, 2)
  if kind == "+" then return rest end
  if kind == "-" then return nil, rest, true end
  if kind == ":" then return tonumber(rest) end
  if kind == "$" then
    local n = tonumber(rest)
    if n == nil then return nil, "bad bulk length" end
    if n < 0 then return ngx.null end
    local data, rerr = sock:receive(n + 2)
    if data == nil then return nil, rerr end
    return sub(data, 1, n)
  end
  if kind == "*" then
    local n = tonumber(rest)
    if n == nil then return nil, "bad array length" end
    if n < 0 then return ngx.null end
    local arr = {}
    for i = 1, n do
      local v, verr, is_redis = read_reply(sock)
      if v == nil then
        if not is_redis then return nil, verr end
        v = { err = verr }
      end
      arr[i] = v
    end
    return arr
  end
  return nil, "unknown reply type " .. kind
end

local function send_and_read(sock, args)
  local ok, err = sock:send(encode(args))
  if not ok then return nil, err end
  return read_reply(sock)
end

local function connect(self)
  local o = self.o
  local sock = tcp()
  sock:settimeouts(o.timeout_ms, o.timeout_ms, o.timeout_ms)
  local ok, err = sock:connect(o.host, o.port, { pool = self.pool, pool_size = o.pool_size })
  if not ok then return nil, "connect: " .. tostring(err) end
  -- A pooled connection already passed AUTH and SELECT when it was new.
  if sock:getreusedtimes() == 0 then
    if o.password and o.password ~= "" then
      local r, aerr = send_and_read(sock, { "AUTH", o.password })
      if r == nil then sock:close(); return nil, "AUTH: " .. tostring(aerr) end
    end
    if o.db and o.db ~= 0 then
      local r, serr = send_and_read(sock, { "SELECT", o.db })
      if r == nil then sock:close(); return nil, "SELECT: " .. tostring(serr) end
    end
  end
  return sock
end

--- Runs one command. Returns the reply, or nil + message (+ true when Redis itself
--- answered with an error, which leaves the connection fine for reuse).
function M:call(...)
  local sock, err = connect(self)
  if sock == nil then return nil, err end
  local v, rerr, is_redis = send_and_read(sock, { ... })
  if v == nil and not is_redis then
    sock:close()
    return nil, rerr
  end
  sock:setkeepalive(self.o.idle_timeout_ms, self.o.pool_size)
  return v, rerr, is_redis
end

--- An array reply of field, value, ... as a table (HGETALL).
function M.hash(arr)
  local h = {}
  for i = 1, #arr, 2 do h[arr[i]] = arr[i + 1] end
  return h
end

return M
