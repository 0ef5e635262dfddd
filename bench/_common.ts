// Copyright 2026 the boucle authors. MIT license.
// Shared by the benchmarks: sizes, the seeded delays, and a tiny `check` so
// that benches need no `@std` import (they run without the JSR mirror).

/** Tasks and switches per task in the switches group (1,000 × 1,000). */
export const SWITCH_TASKS = 1_000;
export const SWITCHES_PER_TASK = 1_000;

/** Sleepers under virtual time. */
export const VIRTUAL_SLEEPERS = 100_000;
/** Sleepers under real time: issue 4 lists 10,000; its target table 100,000. */
export const REAL_SLEEPERS_SMALL = 10_000;
export const REAL_SLEEPERS_LARGE = 100_000;
/** Sleeps last pseudo-random 0–MAX_DELAY_MS ms. */
export const MAX_DELAY_MS = 200;
/** Fixed seed of the delays: every run sleeps the same. */
export const SEED = 0x5eed;

/** mulberry32: a small seeded PRNG giving floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` delays in ms, pseudo-random in [0, MAX_DELAY_MS), from SEED. */
export function delays(n: number): Float64Array {
  const random = prng(SEED);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = random() * MAX_DELAY_MS;
  return out;
}

/** The longest of the first `n` delays: the floor of a real-time run. */
export function maxDelay(n: number): number {
  return delays(n).reduce((a, b) => Math.max(a, b), 0);
}

/** Throws when a bench did not do its work. */
export function check(condition: boolean, what: string): asserts condition {
  if (!condition) throw new Error(`bench check failed: ${what}`);
}
