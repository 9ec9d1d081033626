import type { Group, Profile, Scenario } from './scenario.js';

// The whole run, decided before the first request leaves: when each request is due,
// which group sends it and with which key. An open model: a slow answer never delays
// the next send, and the same seed gives the same schedule to every target compared.

export interface Schedule {
  /** Intended send time of each request, ms after the run's start, ascending. */
  readonly at: Float64Array;
  readonly group: Uint16Array;
  /** Index of the key within its group. */
  readonly key: Uint32Array;
  /** Which of its group's kinds of request (Group.mix) each request is. */
  readonly variant: Uint8Array;
  readonly durationMs: number;
}

/**
 * Schedules bigger than this are refused: every answer is kept until the end for the
 * oracle and the report (about 200 bytes each, so 5M answers take about 1 GB).
 */
export const MAX_SCHEDULED = 5_000_000;

/** mulberry32: small, fast, seeded; the schedule must be reproducible, not cryptographic. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Requests per second the profile asks for at `t` seconds. */
export function rateAt(p: Profile, t: number, durationS: number): number {
  switch (p.kind) {
    case 'constant':
    case 'poisson':
      return p.rate;
    case 'ramp':
      return p.from + (p.to - p.from) * Math.min(1, t / durationS);
    case 'steps': {
      let end = 0;
      for (const s of p.steps) {
        end += s.durationS;
        if (t < end) return s.rate;
      }
      return p.steps[p.steps.length - 1]!.rate;
    }
    case 'bursts':
      return t % p.everyS < p.burstS ? p.burstRate : p.rate;
  }
}

/** Expected number of requests, for the size check before anything is allocated. */
export function expectedCount(s: Scenario): number {
  const step = Math.min(0.01, s.durationS / 1000);
  let n = 0;
  for (let t = 0; t < s.durationS; t += step) n += rateAt(s.profile, t, s.durationS) * step;
  return Math.ceil(n);
}

/**
 * Arrival times: Poisson draws exponential gaps; every other profile is deterministic,
 * a request each time the integral of the rate crosses a whole number (evenly spaced
 * at a constant rate: no second-boundary bursts).
 */
function arrivals(s: Scenario, random: () => number): number[] {
  const out: number[] = [];
  const dur = s.durationS;
  if (s.profile.kind === 'poisson') {
    const r = s.profile.rate;
    if (r <= 0) return out;
    for (let t = -Math.log(1 - random()) / r; t < dur; t += -Math.log(1 - random()) / r) out.push(t * 1000);
    return out;
  }
  // Integrate in steps of 1 ms (or finer for very short runs); the rate is piecewise
  // smooth, and the crossing inside a step is interpolated linearly.
  const dt = Math.min(0.001, dur / 1000);
  let acc = 0.5; // the first request half a period in: a constant rate r sends at (k + 0.5) / r
  for (let t = 0; t < dur; t += dt) {
    const step = Math.min(dt, dur - t);
    const r = rateAt(s.profile, t + step / 2, dur);
    let need = 1 - acc;
    let used = 0;
    let budget = r * step;
    while (budget >= need && r > 0) {
      used += need / r;
      out.push((t + used) * 1000);
      budget -= need;
      need = 1;
      acc = 0;
    }
    acc += budget;
  }
  return out;
}

/** Inverse CDF sampling over ranks 0..n-1 with weight 1/(k+1)^s (rank 0 the heaviest). */
function zipfSampler(n: number, sExp: number): (u: number) => number {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 0; k < n; k++) { sum += 1 / (k + 1) ** sExp; cdf[k] = sum; }
  return (u) => {
    const x = u * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < x) lo = mid + 1; else hi = mid;
    }
    return lo;
  };
}

export function buildSchedule(s: Scenario, keyCounts: readonly number[]): Schedule {
  if (expectedCount(s) > MAX_SCHEDULED) throw new Error(`the scenario would schedule over ${MAX_SCHEDULED} requests; shorten duration_s or lower the rate`);
  const random = rng(s.seed);
  const times = arrivals(s, random);
  const totalWeight = s.groups.reduce((a, g) => a + g.weight, 0);
  const groupCdf: number[] = [];
  let acc = 0;
  for (const g of s.groups) { acc += g.weight / totalWeight; groupCdf.push(acc); }
  const pickKey = s.groups.map((g: Group, i) => {
    const n = keyCounts[i]!;
    if (g.choice === 'zipf') return zipfSampler(n, g.zipfS);
    return (u: number) => Math.min(n - 1, Math.floor(u * n));
  });
  const pickVariant = s.groups.map((g) => {
    const total = g.mix.reduce((a, m) => a + m.weight, 0);
    let c = 0;
    const cdf = g.mix.map((m) => (c += m.weight / total));
    return (u: number) => { let v = 0; while (v < cdf.length - 1 && u >= cdf[v]!) v++; return v; };
  });
  const n = times.length;
  const at = new Float64Array(n);
  const group = new Uint16Array(n);
  const key = new Uint32Array(n);
  const variant = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    at[i] = times[i]!;
    const u = random();
    let gi = 0;
    while (gi < groupCdf.length - 1 && u >= groupCdf[gi]!) gi++;
    group[i] = gi;
    key[i] = pickKey[gi]!(random());
    // Drawn only for a group with a mix, so a scenario without one keeps its schedule.
    if (s.groups[gi]!.mix.length > 1) variant[i] = pickVariant[gi]!(random());
  }
  return { at, group, key, variant, durationMs: s.durationS * 1000 };
}
