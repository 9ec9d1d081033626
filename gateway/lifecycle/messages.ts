import type { ListenerPort } from '../listen/listeners.js';

/** What the cluster primary and its workers say to each other over the IPC channel. */
export type ToWorker =
  | { readonly type: 'sluice:config'; readonly text: string }
  | { readonly type: 'sluice:drain'; readonly idleGraceMs: number }
  | { readonly type: 'sluice:metrics'; readonly id: number };

export type ToPrimary =
  | { readonly type: 'sluice:want-config' }
  | { readonly type: 'sluice:ready'; readonly port: number; readonly listeners: readonly ListenerPort[]; readonly adminPort: number }
  | { readonly type: 'sluice:metrics'; readonly id: number; readonly metrics: unknown };

export function isMessage<T extends { type: string }>(m: unknown, type: T['type']): m is T {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === type;
}
