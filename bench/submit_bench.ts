// Copyright 2026 the boucle authors. MIT license.
// `loop.submit()` round trips from promise code: `await loop.submit(c)` on a
// running service loop (`loop.run({ until })`), where `c` is a coroutine that
// returns at once, beside a plain `await` of the equivalent promise: an async
// function that returns at once (the baseline), and `Promise.resolve().then()`.
// Each iteration makes ROUND_TRIPS of them, one after the other (the
// handler's case: each awaits its answer), then as many at once with
// `Promise.all` (many handlers in flight). Round trips per second are
// ROUND_TRIPS / the time `deno bench` prints.
//
//   deno bench bench/submit_bench.ts
//
// The loop is made once and serves every iteration, as in a server; it
// idles between them on a pending promise, which keeps no host resource, so
// `deno bench` ends with it still serving. The last bench of the file stops
// it and checks it ended cleanly.

import { type Coroutine, Loop } from "../mod.ts";
import { check } from "./_common.ts";

const ROUND_TRIPS = 1_000;

const loop = new Loop();
const stop = new AbortController();
const serving = loop.run({ until: stop.signal });

// deno-lint-ignore require-yield -- it returns at once, as the equivalent async function does
function* answer(n: number): Coroutine<number> {
  return n + 1;
}

// deno-lint-ignore require-await -- the promise world's "returns at once"
async function answerAsync(n: number): Promise<number> {
  return n + 1;
}

Deno.bench({
  name: "await of an async function (baseline)",
  group: "round trips, one after the other",
  baseline: true,
  async fn() {
    let n = 0;
    for (let i = 0; i < ROUND_TRIPS; i++) n = await answerAsync(n);
    check(n === ROUND_TRIPS, `${n} round trips`);
  },
});

Deno.bench({
  name: "await Promise.resolve().then()",
  group: "round trips, one after the other",
  async fn() {
    let n = 0;
    for (let i = 0; i < ROUND_TRIPS; i++) n = await Promise.resolve(n).then((m) => m + 1);
    check(n === ROUND_TRIPS, `${n} round trips`);
  },
});

Deno.bench({
  name: "await loop.submit(coroutine)",
  group: "round trips, one after the other",
  async fn() {
    let n = 0;
    for (let i = 0; i < ROUND_TRIPS; i++) n = await loop.submit(answer(n));
    check(n === ROUND_TRIPS, `${n} round trips`);
  },
});

Deno.bench({
  name: "Promise.all of async functions (baseline)",
  group: "round trips, all at once",
  baseline: true,
  async fn() {
    const results = await Promise.all(
      Array.from({ length: ROUND_TRIPS }, (_, i) => answerAsync(i)),
    );
    check(results.length === ROUND_TRIPS && results[ROUND_TRIPS - 1] === ROUND_TRIPS, "results");
  },
});

Deno.bench({
  name: "Promise.all of loop.submit(coroutine)",
  group: "round trips, all at once",
  async fn() {
    const results = await Promise.all(
      Array.from({ length: ROUND_TRIPS }, (_, i) => loop.submit(answer(i))),
    );
    check(results.length === ROUND_TRIPS && results[ROUND_TRIPS - 1] === ROUND_TRIPS, "results");
  },
});

Deno.bench({
  name: "stop the service loop (not a measure)",
  group: "teardown",
  n: 1,
  warmup: 0,
  async fn() {
    stop.abort();
    await serving;
    check(loop.tasks().length === 0, "tasks left");
  },
});
