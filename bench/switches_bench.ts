// Copyright 2026 the boucle authors. MIT license.
// Task switches: 1,000 tasks × 1,000 switches each, four ways, in one group.
// The baseline is the limit: a bare generator round robin on a ring buffer
// (`it.next()` and re-queue, nothing else). `deno bench` prints each other
// system's time as a multiple of it.
//
//   deno bench bench/switches_bench.ts

import { type Coroutine, interrupt, Loop } from "../mod.ts";
import { check, SWITCH_TASKS, SWITCHES_PER_TASK } from "./_common.ts";

const TOTAL = SWITCH_TASKS * SWITCHES_PER_TASK;

/** The lesson's task: a bare `yield` per switch, counted when it ends. */
function* bareWorker(done: { n: number }): Generator<undefined, void, undefined> {
  for (let i = 0; i < SWITCHES_PER_TASK; i++) yield;
  done.n++;
}

Deno.bench({
  name: "bare generators, ring buffer (baseline)",
  group: "switches",
  baseline: true,
  fn() {
    const done = { n: 0 };
    // A power-of-two ring that holds every task: no growth, no allocation.
    const ring: (Generator<undefined, void, undefined> | undefined)[] = new Array(1024);
    const mask = ring.length - 1;
    let head = 0;
    let length = 0;
    for (let i = 0; i < SWITCH_TASKS; i++) ring[length++] = bareWorker(done);
    let steps = 0;
    while (length > 0) {
      const it = ring[head]!;
      ring[head] = undefined;
      head = (head + 1) & mask;
      length--;
      steps++;
      if (!it.next().done) ring[(head + length++) & mask] = it;
    }
    check(done.n === SWITCH_TASKS, `${done.n} tasks ended`);
    check(steps === TOTAL + SWITCH_TASKS, `${steps} steps`);
  },
});

Deno.bench({
  name: "boucle Loop, yield* interrupt()",
  group: "switches",
  async fn() {
    const done = { n: 0 };
    function* worker(): Coroutine<void> {
      for (let i = 0; i < SWITCHES_PER_TASK; i++) yield* interrupt();
      done.n++;
    }
    const loop = new Loop();
    for (let i = 0; i < SWITCH_TASKS; i++) loop.addTask(worker());
    await loop.run();
    check(done.n === SWITCH_TASKS, `${done.n} tasks ended`);
  },
});

Deno.bench({
  name: "bare generators, Array.shift()",
  group: "switches",
  fn() {
    const done = { n: 0 };
    const queue: Generator<undefined, void, undefined>[] = [];
    for (let i = 0; i < SWITCH_TASKS; i++) queue.push(bareWorker(done));
    let steps = 0;
    while (queue.length > 0) {
      const it = queue.shift()!;
      steps++;
      if (!it.next().done) queue.push(it);
    }
    check(done.n === SWITCH_TASKS, `${done.n} tasks ended`);
    check(steps === TOTAL + SWITCH_TASKS, `${steps} steps`);
  },
});

Deno.bench({
  name: "async functions, await null",
  group: "switches",
  async fn() {
    const done = { n: 0 };
    async function worker(): Promise<void> {
      for (let i = 0; i < SWITCHES_PER_TASK; i++) await null;
      done.n++;
    }
    const all: Promise<void>[] = [];
    for (let i = 0; i < SWITCH_TASKS; i++) all.push(worker());
    await Promise.all(all);
    check(done.n === SWITCH_TASKS, `${done.n} tasks ended`);
  },
});
