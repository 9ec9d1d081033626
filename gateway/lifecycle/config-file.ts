import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import { readConfigText } from '../../common/config-text.js';
import { ConfigError } from '../../common/errors.js';
import { parseConfig } from '../config/load.js';
import type { SluiceConfig } from '../config/types.js';

export interface ReadConfig {
  readonly cfg: SluiceConfig;
  /** The file as read, so cluster workers build from exactly what the primary validated. */
  readonly text: string;
}

/**
 * Re-reads the config for a reload. An unreadable or invalid file keeps the running config:
 * every error is logged (one line each, so none hides behind another) and undefined returned.
 */
export function rereadConfig(file: string, log: Logger, workers: number): ReadConfig | undefined {
  let errors: readonly string[];
  try {
    const text = readConfigText(file);
    const cfg = parseConfig(text);
    const refused = workersRefusal(cfg, workers);
    if (refused === undefined) return { cfg, text };
    errors = [refused];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    errors = err.errors;
  }
  for (const error of errors) log.error({ file, error }, 'config error');
  log.error({ file, errors: errors.length }, 'reload refused: the running config stays in force');
  return undefined;
}

/**
 * Worker count: --workers N when given, else one per core. The memory store lives inside
 * one process, so N workers would each enforce the whole limit (N× the plan); with it the
 * default is one worker and an explicit N > 1 is refused.
 */
export function chooseWorkers(cfg: SluiceConfig, flag: number | undefined): { workers: number; note?: string } | { error: string } {
  if (flag !== undefined) {
    const refused = workersRefusal(cfg, flag);
    return refused === undefined ? { workers: flag } : { error: refused };
  }
  if (cfg.store.kind === 'memory') return { workers: 1, note: 'memory store: one worker (limits live in one process); use a redis store for more' };
  return { workers: availableParallelism() };
}

function workersRefusal(cfg: SluiceConfig, workers: number): string | undefined {
  if (workers > 1 && cfg.store.kind === 'memory') {
    return `--workers ${workers} with store.kind memory: each worker would keep its own counters and admit ${workers}× every limit; use a redis store or --workers 1`;
  }
  return undefined;
}
