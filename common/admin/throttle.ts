import { LRUCache } from 'lru-cache';

/**
 * How a flood of wrong admin tokens is slowed: per peer address, `maxFailures` refusals
 * within `windowMs` are free; every refusal after that makes the peer wait before its next
 * attempt is even looked at, 1 s doubling per further refusal up to `maxBackoffMs`. While
 * it waits, every request of that peer is answered 429 at once (no token is checked), so
 * the guesses one address can make are bounded by the backoff, not by how fast it sends.
 * A right token resets the peer.
 */
export interface ThrottleConfig {
  readonly maxFailures: number;
  readonly windowMs: number;
  readonly maxBackoffMs: number;
  /** Peers remembered at once (least recently seen forgotten first). */
  readonly maxPeers: number;
}

export const DEFAULT_THROTTLE: ThrottleConfig = { maxFailures: 10, windowMs: 60_000, maxBackoffMs: 60_000, maxPeers: 10_000 };

interface PeerState {
  failures: number;
  firstAt: number;
  blockedUntil: number;
}

const FIRST_BACKOFF_MS = 1000;

export class AuthThrottle {
  private readonly peers: LRUCache<string, PeerState>;

  constructor(private readonly cfg: ThrottleConfig = DEFAULT_THROTTLE, private readonly now: () => number = Date.now) {
    this.peers = new LRUCache({ max: Math.max(1, cfg.maxPeers) });
  }

  /** How long (ms) this peer must still wait before an attempt is checked; 0: go ahead. */
  waitMs(peer: string): number {
    const s = this.peers.get(peer);
    if (s === undefined) return 0;
    return Math.max(0, s.blockedUntil - this.now());
  }

  failed(peer: string): void {
    const now = this.now();
    let s = this.peers.get(peer);
    if (s === undefined || (now - s.firstAt > this.cfg.windowMs && now >= s.blockedUntil)) {
      s = { failures: 0, firstAt: now, blockedUntil: 0 };
      this.peers.set(peer, s);
    }
    s.failures++;
    const over = s.failures - this.cfg.maxFailures;
    if (over > 0) s.blockedUntil = now + Math.min(this.cfg.maxBackoffMs, FIRST_BACKOFF_MS * 2 ** Math.min(30, over - 1));
  }

  succeeded(peer: string): void {
    this.peers.delete(peer);
  }
}
