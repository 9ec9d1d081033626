import { pino, type LoggerOptions } from 'pino';

/** Which process wrote a line. */
export type LogComponent = 'gateway' | 'backend' | 'webhooks';

/**
 * The one log format of every process (the gateway and its workers, the image backends,
 * the webhook worker): pino JSON lines with `time` in ISO 8601 UTC with milliseconds
 * (`2026-01-31T12:00:00.000Z`), `level` (pino's number), `pid`, `component` and `msg`,
 * so their lines sort and join on `time` as they are. Where a process writes them (sync
 * or async) is its own choice.
 */
export function logOptions(level: string, component: LogComponent): LoggerOptions {
  return { level, base: { pid: process.pid, component }, timestamp: pino.stdTimeFunctions.isoTime };
}
