import { pino, type Logger } from 'pino';
import { logOptions } from '../../common/log.js';
import type { LogConfig } from '../config/types.js';

/** JSON lines to stdout; async destination so a slow pipe never blocks the event loop. */
export function createLogger(cfg: LogConfig, dest: NodeJS.WritableStream | undefined = undefined): Logger {
  return pino(
    logOptions(cfg.level, 'gateway'),
    dest ?? pino.destination({ fd: 1, sync: false }),
  );
}
