import { parseArgs } from 'node:util';
import { NotAdminApi, send, Unreachable, type AdminRequest, type ClientOptions } from './client.js';
import { COMMANDS, UsageError, type Command } from './commands.js';
import { EXIT, exitForStatus } from './exit-codes.js';

const DEFAULT_URL = 'http://127.0.0.1:9090';
const DEFAULT_TIMEOUT_S = 10;
const MAX_TIMEOUT_S = 3600;

function help(): string {
  return `usage: sluice admin COMMAND [options]
${COMMANDS.map((c) => `  ${c.help}`).join('\n')}
options:
  --url URL          admin API base URL (SLUICE_ADMIN_URL; default ${DEFAULT_URL})
  --token TOKEN      admin bearer token (SLUICE_ADMIN_TOKEN)
  --json             print the API's JSON instead of a table
  --timeout SECONDS  give up on an answer after this long (default ${DEFAULT_TIMEOUT_S})
exit codes: 0 done, 1 refused by the API, 2 bad command line, 3 not found,
  4 token refused or admin API disabled, 5 gateway unreachable or silent
`;
}

export interface Io {
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
}

const stdio: Io = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };

/** `sluice admin ...`; resolves with the exit code (see exit-codes.ts). */
export async function runAdmin(argv: readonly string[], env: NodeJS.ProcessEnv = process.env, io: Io = stdio): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    (argv.length === 0 ? io.err : io.out)(help());
    return argv.length === 0 ? EXIT.usage : EXIT.ok;
  }
  const cmd = COMMANDS.find((c) => c.words.split(' ').every((w, i) => argv[i] === w));
  if (cmd === undefined) {
    io.err(`sluice admin: unknown command "${argv.slice(0, 2).join(' ')}"\n${help()}`);
    return EXIT.usage;
  }
  const rest = argv.slice(cmd.words.split(' ').length);
  let parsed: Parsed | 'help';
  try {
    parsed = parse(cmd, rest, env);
  } catch (err) {
    if (!(err instanceof UsageError) && (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') !== true) throw err;
    io.err(`sluice admin ${cmd.words}: ${(err as Error).message}\nusage: sluice admin ${cmd.help}\n`);
    return EXIT.usage;
  }
  if (parsed === 'help') {
    io.out(`usage: sluice admin ${cmd.help}\n`);
    return EXIT.ok;
  }
  try {
    const answer = await send(parsed.client, parsed.request);
    if (answer.status >= 200 && answer.status < 300) {
      const shown = cmd.render(answer.body, parsed.args, parsed.values);
      io.out(parsed.json ? `${JSON.stringify(shown.json, null, 2)}\n` : shown.text);
      return EXIT.ok;
    }
    const e = (answer.body as { error?: { code?: string; message?: string; request_id?: string } } | undefined)?.error;
    if (parsed.json && answer.body !== undefined) io.err(`${JSON.stringify(answer.body)}\n`);
    else io.err(`sluice admin ${cmd.words}: ${answer.status} ${e?.code ?? ''}: ${e?.message ?? 'no error message'}${e?.request_id === undefined ? '' : ` (request ${e.request_id})`}\n`);
    return exitForStatus(answer.status);
  } catch (err) {
    if (err instanceof Unreachable) { io.err(`sluice admin: ${err.message}\n`); return EXIT.unreachable; }
    if (err instanceof NotAdminApi) { io.err(`sluice admin: ${err.message}\n`); return EXIT.refused; }
    throw err;
  }
}

interface Parsed {
  readonly json: boolean;
  readonly values: Readonly<Record<string, string | boolean | undefined>>;
  readonly args: Readonly<Record<string, string>>;
  readonly request: AdminRequest;
  readonly client: ClientOptions;
}

function parse(cmd: Command, rest: readonly string[], env: NodeJS.ProcessEnv): Parsed | 'help' {
  const options = {
    url: { type: 'string' }, token: { type: 'string' }, json: { type: 'boolean' }, timeout: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
    ...Object.fromEntries(cmd.options.map((o) => [o, { type: 'string' }])),
    ...Object.fromEntries((cmd.switches ?? []).map((o) => [o, { type: 'boolean' }])),
  } as const satisfies NonNullable<Parameters<typeof parseArgs>[0]>['options'];
  const { values, positionals } = parseArgs({ args: [...rest], options, allowPositionals: true, strict: true });
  const v = values as Record<string, string | boolean | undefined>;
  if (v.help === true) return 'help';
  if (positionals.length !== cmd.positionals.length) {
    throw new UsageError(cmd.positionals.length === 0
      ? `unexpected argument ${JSON.stringify(positionals[0])}`
      : `expected ${cmd.positionals.map((p) => p.toUpperCase()).join(' ')}${positionals.length > cmd.positionals.length ? `, got extra ${JSON.stringify(positionals[cmd.positionals.length])}` : ''}`);
  }
  for (const r of cmd.required) if (v[r] === undefined) throw new UsageError(`--${r} is required`);
  const url = (v.url as string | undefined) ?? env.SLUICE_ADMIN_URL ?? DEFAULT_URL;
  let base: URL;
  try { base = new URL(url); } catch { throw new UsageError(`--url: not a URL: ${JSON.stringify(url)}`); }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new UsageError(`--url: expected http:// or https://, got ${base.protocol}`);
  const token = (v.token as string | undefined) ?? env.SLUICE_ADMIN_TOKEN;
  if (token === undefined || token === '') throw new UsageError('no admin token: pass --token or set SLUICE_ADMIN_TOKEN');
  const timeoutS = v.timeout === undefined ? DEFAULT_TIMEOUT_S : Number(v.timeout);
  if (!(timeoutS > 0 && timeoutS <= MAX_TIMEOUT_S)) throw new UsageError(`--timeout: expected seconds, more than 0 and at most ${MAX_TIMEOUT_S}`);
  const args = Object.fromEntries(cmd.positionals.map((p, i) => [p, positionals[i]!]));
  return {
    json: v.json === true,
    values: v,
    args,
    request: cmd.request(args, v),
    client: { baseUrl: base.href, token, timeoutMs: Math.round(timeoutS * 1000) },
  };
}
