// OpenResty: *_by_lua_block bodies read as Lua (strings, long brackets, comments, braces
// that do not close the block); lua-resty-limit-traffic limiters with constant arguments
// become Sluice limits; every other Lua phase handler is NOT ENFORCED, and the exit code
// says so unless --allow-unenforced.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';
import { CLI } from '../../test/harness/gateway.js';
import { analyzeLua } from './lua-limits.js';
import { NginxParseError, parseNginxFile } from './parse.js';

const root = mkdtempSync(join(tmpdir(), 'sluice-import-lua-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

function write(text: string, extra: Record<string, string> = {}): string {
  const dir = join(root, `t${n++}`);
  mkdirSync(dir);
  for (const [name, t] of Object.entries(extra)) writeFileSync(join(dir, name), t);
  writeFileSync(join(dir, 'nginx.conf'), text);
  return join(dir, 'nginx.conf');
}

function sluice(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 15_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

const LIMITER = `
        local limit_req = require "resty.limit.req"
        -- 200 r/s with a burst of 100: { braces in a comment }
        local lim, err = limit_req.new("my_limit_req_store", 200, 100)
        if not lim then
            ngx.log(ngx.ERR, "failed to instantiate a resty.limit.req object: ", err)
            return ngx.exit(500)
        end
        local key = ngx.var.binary_remote_addr
        local delay, err = lim:incoming(key, true)
        if not delay then
            if err == "rejected" then
                return ngx.exit(429)
            end
            ngx.log(ngx.ERR, "failed to limit req: ", err)
            return ngx.exit(500)
        end
        if delay >= 0.001 then
            ngx.sleep(delay)
        end`;

describe('import-nginx: Lua blocks are read as Lua', () => {
  it('strings, long brackets, comments and braces inside a *_by_lua_block do not end it', () => {
    const file = write(`http {
    server {
        location / {
            access_by_lua_block {
                local t = { a = "}", b = '{', c = [[ } ]], d = [==[ ]] } ]==] }
                -- a comment with } and "quotes
                --[[ a long
                     comment } ]]
                local s = "escaped \\" } quote", x = 1, y = 2
                if t.a == "}" then ngx.log(ngx.INFO, "ok") end
            }
            proxy_pass http://127.0.0.1:9;
        }
    }
}
`);
    const tree = parseNginxFile(file);
    const loc = tree[0]!.block![0]!.block![0]!;
    assert.deepEqual(loc.block!.map((d) => d.name), ['access_by_lua_block', 'proxy_pass']);
    const lua = loc.block![0]!;
    assert.equal(lua.line, 4);
    assert.equal(lua.block, undefined);
    assert.match(lua.lua!, /local t = \{ a = "\}", b = '\{'/);
    assert.match(lua.lua!, /ngx\.log\(ngx\.INFO, "ok"\) end\n\s*$/);
    assert.equal(loc.block![1]!.line, 12, 'lines after the Lua body are counted through it');
  });

  it('set_by_lua_block keeps its arguments; an unclosed body or string is a parse error at its line', () => {
    const tree = parseNginxFile(write('http { server { location / { set_by_lua_block $x { return "a,b" } return 200 $x; } } }\n'));
    const d = tree[0]!.block![0]!.block![0]!.block![0]!;
    assert.deepEqual([d.name, d.args, d.lua!.trim()], ['set_by_lua_block', ['$x'], 'return "a,b"']);
    assert.throws(() => parseNginxFile(write('http {\n access_by_lua_block {\n  local x = "open\n }\n}\n')), (e: unknown) => e instanceof NginxParseError && e.line === 3 && /unfinished Lua string/.test(e.reason));
    assert.throws(() => parseNginxFile(write('http {\n access_by_lua_block {\n  local x = [[ }\n')), (e: unknown) => e instanceof NginxParseError && /long bracket/.test(e.reason));
  });
});

describe('import-nginx: lua-resty-limit-traffic', () => {
  it('limit.req.new(dict, rate, burst) + incoming(ngx.var key, true): rate, burst, delay or not, the rejecting status', () => {
    const a = analyzeLua(LIMITER);
    assert.deepEqual(a.limits, [{ kind: 'req', key: { kind: 'client' }, perSecond: 200, burst: 100, nodelay: false, status: 429, dict: 'my_limit_req_store' }]);
    assert.deepEqual(a.other, []);
    const nodelay = analyzeLua(LIMITER.replace(/if delay >= 0\.001 then\s+ngx\.sleep\(delay\)\s+end/, ''));
    assert.equal(nodelay.limits[0]!.kind === 'req' && nodelay.limits[0]!.nodelay, true);
    const byHeader = analyzeLua(LIMITER.replace('local key = ngx.var.binary_remote_addr', 'local key = ngx.var.http_x_api_key').replace('ngx.exit(429)', 'ngx.exit(ngx.HTTP_SERVICE_UNAVAILABLE)'));
    assert.deepEqual([byHeader.limits[0]!.key, byHeader.limits[0]!.status], [{ kind: 'header', header: 'x-api-key' }, 503]);
  });

  it('limit.count and limit.conn; anything else the code does is reported, not dropped', () => {
    const count = analyzeLua('local limit_count = require "resty.limit.count"\nlocal lim = limit_count.new("c", 100, 60)\nlocal delay, err = lim:incoming(ngx.var.remote_addr, true)\nif not delay then return ngx.exit(403) end');
    assert.deepEqual(count.limits, [{ kind: 'req', key: { kind: 'client' }, perSecond: 100 / 60, burst: 99, nodelay: true, status: 403, dict: 'c' }]);
    const conn = analyzeLua('local limit_conn = require "resty.limit.conn"\nlocal lim = limit_conn.new("conns", 10, 5, 0.5)\nlocal delay, err = lim:incoming(ngx.var.binary_remote_addr, true)\nif not delay then return ngx.exit(503) end\nngx.ctx.limit_conn = lim');
    assert.deepEqual(conn.limits, [{ kind: 'conn', key: { kind: 'client' }, max: 15, status: 503, dict: 'conns' }]);
    const more = analyzeLua(`${LIMITER}\nif ngx.var.http_authorization == nil then return ngx.exit(401) end\nngx.req.set_header("X-User", "x")`);
    assert.equal(more.limits.length, 1);
    assert.deepEqual(more.other, ['ngx.exit(401)', 'changes the request (ngx.req.set_*/clear_*)']);
    const computed = analyzeLua('local limit_req = require "resty.limit.req"\nlocal lim = limit_req.new("s", rate, 10)\nlim:incoming(ngx.var.binary_remote_addr, true)');
    assert.deepEqual(computed.limits, []);
    assert.ok(computed.other.length > 0);
    assert.ok(analyzeLua('local m = require "resty.limit.conn"\nlocal lim = ngx.ctx.limit_conn\nif lim then lim:leaving() end').leavingOnly);
  });

  it('an OpenResty config: limits imported, other handlers NOT ENFORCED, exit 3 unless --allow-unenforced', async () => {
    const file = write(`events {}
http {
    lua_shared_dict my_limit_req_store 10m;
    server {
        listen 18090;
        server_name api.example.com;
        location /api/ {
            access_by_lua_block {${LIMITER}
            }
            proxy_pass http://127.0.0.1:17090;
        }
        location /admin/ {
            access_by_lua_block {
                if ngx.var.http_x_admin_token ~= "s3cret" then return ngx.exit(403) end
            }
            proxy_pass http://127.0.0.1:17090;
        }
        location /hooks/ {
            access_by_lua_file lua/hooks.lua;
            proxy_pass http://127.0.0.1:17090;
        }
    }
}
`);
    const yamlFile = join(root, `lua-${n}.yaml`);
    const reportFile = join(root, `lua-${n}.json`);
    const run = await sluice(['import-nginx', file, '--out', yamlFile, '--report', reportFile]);
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, /!!! NOT ENFORCED/);
    assert.match(run.stderr, /nginx\.conf:32: access_by_lua_block \{ … \} — NOT ENFORCED: .*ngx\.exit\(403\)/);
    assert.match(run.stderr, /nginx\.conf:38: access_by_lua_file lua\/hooks\.lua — NOT ENFORCED: .*could not be read/);
    const cfg = parse(readFileSync(yamlFile, 'utf8')) as any;
    assert.deepEqual(cfg.limit_req_zones, { lua_my_limit_req_store: { kind: 'nginx_limit_req', key: 'client', rate: '200r/s' } });
    const api = cfg.virtual_hosts[0].routes.find((r: any) => r.prefix === '/api/');
    assert.deepEqual([api.limit_req, api.limit_req_status], [[{ zone: 'lua_my_limit_req_store', burst: 100 }], 429]);
    const report = JSON.parse(readFileSync(reportFile, 'utf8')) as { counts: { not_enforced: number }; not_enforced: { line: number }[] };
    assert.deepEqual([report.counts.not_enforced, report.not_enforced.map((i) => i.line)], [2, [32, 38]]);
    assert.equal((await sluice(['--check', yamlFile])).code, 0);
    assert.equal((await sluice(['import-nginx', file, '--out', yamlFile, '--allow-unenforced'])).code, 0);
  });
});
