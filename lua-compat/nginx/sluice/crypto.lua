-- SHA-256, HMAC-SHA256 and random bytes for the nginx edge.
--
-- Debian ships no lua-resty-string, so resty.sha256 is not there; nginx itself links
-- OpenSSL's libcrypto, whose symbols LuaJIT's FFI can reach through ffi.C. EVP_Digest
-- and HMAC are the one-shot calls that OpenSSL 3 has not deprecated.
local ffi = require("ffi")
local C = ffi.C

-- Another module may already have declared some of these; a redeclaration is an
-- error in LuaJIT, and an existing declaration is just as good.
pcall(ffi.cdef, [[
typedef struct evp_md_st EVP_MD;
typedef struct engine_st ENGINE;
const EVP_MD *EVP_sha256(void);
const EVP_MD *EVP_sha1(void);
int EVP_Digest(const void *data, size_t count, unsigned char *md, unsigned int *size, const EVP_MD *type, ENGINE *impl);
unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len, const unsigned char *d, size_t n, unsigned char *md, unsigned int *md_len);
int RAND_bytes(unsigned char *buf, int num);
]])

local M = {}

local md = ffi.new("unsigned char[32]")
local md_len = ffi.new("unsigned int[1]")

local HEX = {}
for i = 0, 255 do HEX[i] = string.format("%02x", i) end

local function hex(buf, n)
  local out = {}
  for i = 0, n - 1 do out[i + 1] = HEX[buf[i]] end
  return table.concat(out)
end

--- Lower-case hex SHA-256 of s, or HMAC-SHA256 keyed with pepper when one is set:
--- the same digest Sluice stores (gateway/auth/digest.ts).
function M.key_digest(s, pepper)
  if pepper == nil then
    if C.EVP_Digest(s, #s, md, md_len, C.EVP_sha256(), nil) ~= 1 then error("EVP_Digest failed") end
  else
    if C.HMAC(C.EVP_sha256(), pepper, #pepper, s, #s, md, md_len) == nil then error("HMAC failed") end
  end
  return hex(md, 32)
end

--- SHA1 of s in hex: the name Redis gives a script (SCRIPT LOAD, EVALSHA).
function M.sha1_hex(s)
  if C.EVP_Digest(s, #s, md, md_len, C.EVP_sha1(), nil) ~= 1 then error("EVP_Digest failed") end
  return hex(md, 20)
end

--- n random bytes as 2n hex characters, from OpenSSL's CSPRNG.
function M.random_hex(n)
  local buf = ffi.new("unsigned char[?]", n)
  if C.RAND_bytes(buf, n) ~= 1 then error("RAND_bytes failed") end
  return hex(buf, n)
end

return M
