-- The little JSON the nginx edge needs: decoding its config file and the `overrides`
-- field of customer records, encoding error bodies. Debian's nginx Lua module comes
-- without cjson, hence this. null decodes to nil (absent), which is all the callers
-- ask of it.
local M = {}

local byte, sub, find, char = string.byte, string.sub, string.find, string.char

local ESCAPES = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

local function utf8_of(cp)
  if cp < 0x80 then return char(cp) end
  if cp < 0x800 then return char(0xC0 + math.floor(cp / 64), 0x80 + cp % 64) end
  if cp < 0x10000 then
    return char(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
  end
  return char(0xF0 + math.floor(cp / 262144), 0x80 + math.floor(cp / 4096) % 64, 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
end

local decode_value

local function skip(s, i)
  local _, e = find(s, "^[ \t\r\n]*", i)
  return e + 1
end

local function fail(s, i, what)
  error(string.format("JSON: %s at byte %d", what, i), 0)
end

local function decode_string(s, i)
  -- i points just past the opening quote.
  local parts = {}
  while true do
    local a, b = find(s, '^[^"\\]+', i)
    if a then parts[#parts + 1] = sub(s, a, b); i = b + 1 end
    local c = sub(s, i, i)
    if c == '"' then return table.concat(parts), i + 1 end
    if c ~= "\\" then fail(s, i, "unterminated string") end
    local e = sub(s, i + 1, i + 1)
    if e == "u" then
      local cp = tonumber(sub(s, i + 2, i + 5), 16)
      if cp == nil then fail(s, i, "bad \\u escape") end
      i = i + 6
      if cp >= 0xD800 and cp <= 0xDBFF and sub(s, i, i + 1) == "\\u" then
        local lo = tonumber(sub(s, i + 2, i + 5), 16)
        if lo and lo >= 0xDC00 and lo <= 0xDFFF then
          cp = 0x10000 + (cp - 0xD800) * 1024 + (lo - 0xDC00)
          i = i + 6
        end
      end
      parts[#parts + 1] = utf8_of(cp)
    elseif ESCAPES[e] then
      parts[#parts + 1] = ESCAPES[e]
      i = i + 2
    else
      fail(s, i, "bad escape")
    end
  end
end

function decode_value(s, i)
  i = skip(s, i)
  local c = sub(s, i, i)
  if c == "{" then
    local obj = {}
    i = skip(s, i + 1)
    if sub(s, i, i) == "}" then return obj, i + 1 end
    while true do
      if sub(s, i, i) ~= '"' then fail(s, i, "expected a key") end
      local k
      k, i = decode_string(s, i + 1)
      i = skip(s, i)
      if sub(s, i, i) ~= ":" then fail(s, i, "expected ':'") end
      local v
      v, i = decode_value(s, i + 1)
      obj[k] = v
      i = skip(s, i)
      c = sub(s, i, i)
      if c == "}" then return obj, i + 1 end
      if c ~= "," then fail(s, i, "expected ',' or '}'") end
      i = skip(s, i + 1)
    end
  elseif c == "[" then
    local arr = {}
    i = skip(s, i + 1)
    if sub(s, i, i) == "]" then return arr, i + 1 end
    while true do
      local v
      v, i = decode_value(s, i)
      arr[#arr + 1] = v
      i = skip(s, i)
      c = sub(s, i, i)
      if c == "]" then return arr, i + 1 end
      if c ~= "," then fail(s, i, "expected ',' or ']'") end
      i = i + 1
    end
  elseif c == '"' then
    return decode_string(s, i + 1)
  elseif sub(s, i, i + 3) == "true" then
    return true, i + 4
  elseif sub(s, i, i + 4) == "false" then
    return false, i + 5
  elseif sub(s, i, i + 3) == "null" then
    return nil, i + 4
  end
  local a, b = find(s, "^-?%d+%.?%d*[eE]?[-+]?%d*", i)
  if a == nil then fail(s, i, "unexpected character") end
  local n = tonumber(sub(s, a, b))
  if n == nil then fail(s, i, "bad number") end
  return n, b + 1
end

--- Decodes a JSON text; returns nil and a message when it is not valid JSON.
function M.decode(s)
  local ok, v, i = pcall(decode_value, s, 1)
  if not ok then return nil, v end
  if skip(s, i) <= #s then return nil, "JSON: trailing data" end
  return v
end

--- A JSON string literal, escaped the way JSON.stringify escapes it, so the error
--- bodies of both edges are byte for byte the same.
function M.string(s)
  return '"' .. s:gsub('[%z\1-\31"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    if c == "\n" then return "\\n" end
    if c == "\r" then return "\\r" end
    if c == "\t" then return "\\t" end
    if c == "\b" then return "\\b" end
    if c == "\f" then return "\\f" end
    return string.format("\\u%04x", byte(c))
  end) .. '"'
end

return M
