// Copyright 2026 the boucle authors. MIT license.
// Timers: tasks that each sleep once, pseudo-random 0–200 ms from a fixed
// seed (bench/_common.ts), so every run sleeps the same.
//
// - "timers, virtual time": 100,000 sleepers on a virtual-time Loop, the pure
//   scheduler cost, beside the limit: bare generators that yield their delay to
//   a hand-written binary heap and a clock that jumps to the earliest deadline.
// - "timers, real time N": N sleepers on a real-time Loop beside N async
//   functions each awaiting a `setTimeout` promise (what users write without
//   us). Both take at least the longest delay (~200 ms); what matters is the
//   time past it, which `bench/run.ts` computes from these figures.
//
//   deno bench bench/timers_bench.ts

import { type Coroutine, Loop, sleep } from "../mod.ts";
import {
  check,
  delays,
  REAL_SLEEPERS_LARGE,
  REAL_SLEEPERS_SMALL,
  VIRTUAL_SLEEPERS,
} from "./_common.ts";

const virtualDelays = delays(VIRTUAL_SLEEPERS);

/** A bare sleeper: yields its delay to the scheduler, once. */
function* bareSleeper(ms: number): Generator<number, void, undefined> {
  yield ms;
}

interface Sleeper {
  it: Generator<number, void, undefined>;
  deadline: number;
  seq: number;
}

/** True when `a` fires before `b`: earlier deadline, then set first. */
function before(a: Sleeper, b: Sleeper): boolean {
  return a.deadline < b.deadline || (a.deadline === b.deadline && a.seq < b.seq);
}

Deno.bench({
  name: "bare generators, binary heap (baseline)",
  group: "timers, virtual time",
  baseline: true,
  n: 20,
  warmup: 5,
  fn() {
    const heap: Sleeper[] = [];
    let clock = 0;
    let seq = 0;
    let woke = 0;
    let late = 0;
    const schedule = (s: Sleeper): void => {
      const r = s.it.next();
      if (r.done) {
        woke++;
        if (clock < s.deadline) late++;
        return;
      }
      s.deadline = clock + r.value;
      s.seq = seq++;
      let i = heap.length;
      heap.push(s);
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!before(s, heap[p]!)) break;
        heap[i] = heap[p]!;
        i = p;
      }
      heap[i] = s;
    };
    for (let i = 0; i < VIRTUAL_SLEEPERS; i++) {
      schedule({ it: bareSleeper(virtualDelays[i]!), deadline: 0, seq: 0 });
    }
    while (heap.length > 0) {
      const top = heap[0]!;
      const last = heap.pop()!;
      if (heap.length > 0) {
        const n = heap.length;
        let i = 0;
        for (;;) {
          let c = 2 * i + 1;
          if (c >= n) break;
          if (c + 1 < n && before(heap[c + 1]!, heap[c]!)) c++;
          if (!before(heap[c]!, last)) break;
          heap[i] = heap[c]!;
          i = c;
        }
        heap[i] = last;
      }
      clock = top.deadline;
      schedule(top);
    }
    check(woke === VIRTUAL_SLEEPERS, `${woke} sleepers woke`);
    check(late === 0, `${late} sleepers woke early`);
  },
});

Deno.bench({
  name: "boucle Loop, virtualTime",
  group: "timers, virtual time",
  n: 10,
  warmup: 2,
  async fn() {
    const loop = new Loop({ virtualTime: true });
    let woke = 0;
    let early = 0;
    function* sleeper(ms: number): Coroutine<void> {
      const deadline = loop.time() + ms;
      yield* sleep(ms);
      woke++;
      if (loop.time() < deadline) early++;
    }
    for (let i = 0; i < VIRTUAL_SLEEPERS; i++) loop.addTask(sleeper(virtualDelays[i]!));
    await loop.run();
    check(woke === VIRTUAL_SLEEPERS, `${woke} sleepers woke`);
    check(early === 0, `${early} sleepers woke early`);
  },
});

for (const count of [REAL_SLEEPERS_SMALL, REAL_SLEEPERS_LARGE]) {
  const ms = delays(count);
  const longest = ms.reduce((a, b) => Math.max(a, b), 0);
  const group = `timers, real time ${count.toLocaleString("en-US")}`;
  const times = `×${count.toLocaleString("en-US")}`;
  // Each iteration lasts ~200 ms or more: a fixed count bounds the time.
  const bounds = { n: count > 10_000 ? 3 : 6, warmup: 1 };

  Deno.bench({
    name: `setTimeout promises (baseline) ${times}`,
    group,
    baseline: true,
    ...bounds,
    async fn() {
      let woke = 0;
      async function sleeper(delay: number): Promise<void> {
        await new Promise((resolve) => setTimeout(resolve, delay));
        woke++;
      }
      const start = performance.now();
      const all: Promise<void>[] = [];
      for (let i = 0; i < count; i++) all.push(sleeper(ms[i]!));
      await Promise.all(all);
      check(woke === count, `${woke} sleepers woke`);
      check(performance.now() - start >= longest - 1, "ended before the longest sleep");
    },
  });

  Deno.bench({
    name: `boucle Loop, sleep() ${times}`,
    group,
    ...bounds,
    async fn() {
      let woke = 0;
      function* sleeper(delay: number): Coroutine<void> {
        yield* sleep(delay);
        woke++;
      }
      const start = performance.now();
      const loop = new Loop();
      for (let i = 0; i < count; i++) loop.addTask(sleeper(ms[i]!));
      await loop.run();
      check(woke === count, `${woke} sleepers woke`);
      check(performance.now() - start >= longest - 1, "ended before the longest sleep");
    },
  });
}
