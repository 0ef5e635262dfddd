// Copyright 2026 the boucle authors. MIT license.
// Cancel scopes and task groups (issue 7).
//
// - "timeouts": 1,000 tasks × 200 calls each of a timeout around one switch
//   that never fires, beside the same switches bare: the scope's overhead.
//   What users write by hand in plain Deno is the baseline: an async function
//   racing each `await null` against a `setTimeout` made and cleared each time.
// - "spawn 100,000": a task group of 100,000 tiny children beside `gather` of
//   the same, and `Promise.all` of async functions.
//
//   deno bench bench/scope_bench.ts

import {
  type Coroutine,
  deadline,
  gather,
  interrupt,
  Loop,
  moveOnAfter,
  taskGroup,
} from "../mod.ts";
import { check } from "./_common.ts";

const TASKS = 1_000;
const CALLS = 200;
const CHILDREN = 100_000;

Deno.bench({
  name: "Promise.race with a setTimeout, per await (hand-written)",
  group: "timeouts",
  baseline: true,
  async fn() {
    let done = 0;
    async function worker(): Promise<void> {
      for (let i = 0; i < CALLS; i++) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("timed out")), 10_000);
        });
        try {
          await Promise.race([Promise.resolve(null), timeout]);
        } finally {
          clearTimeout(timer);
        }
      }
      done++;
    }
    const all: Promise<void>[] = [];
    for (let i = 0; i < TASKS; i++) all.push(worker());
    await Promise.all(all);
    check(done === TASKS, `${done} workers ended`);
  },
});

async function runWorkers(body: () => Coroutine<void>): Promise<void> {
  const loop = new Loop();
  for (let i = 0; i < TASKS; i++) loop.addTask(body());
  await loop.run();
}

Deno.bench({
  name: "boucle, yield* interrupt() bare",
  group: "timeouts",
  async fn() {
    await runWorkers(function* () {
      for (let i = 0; i < CALLS; i++) yield* interrupt();
    });
  },
});

Deno.bench({
  name: "boucle, yield* deadline(interrupt(), 10_000)",
  group: "timeouts",
  async fn() {
    await runWorkers(function* () {
      for (let i = 0; i < CALLS; i++) yield* deadline(interrupt(), 10_000);
    });
  },
});

Deno.bench({
  name: "boucle, yield* moveOnAfter(interrupt(), 10_000)",
  group: "timeouts",
  async fn() {
    await runWorkers(function* () {
      for (let i = 0; i < CALLS; i++) yield* moveOnAfter(interrupt(), 10_000);
    });
  },
});

let ended = 0;
/** The same child for both: one switch, then counted. */
function* tiny(): Coroutine<void> {
  yield* interrupt();
  ended++;
}

Deno.bench({
  name: "boucle, gather of 100,000",
  group: "spawn 100,000",
  baseline: true,
  async fn() {
    ended = 0;
    const children = Array.from({ length: CHILDREN }, tiny);
    await new Loop().runTask(gather(...children));
    check(ended === CHILDREN, `${ended} children ended`);
  },
});

Deno.bench({
  name: "boucle, taskGroup spawning 100,000",
  group: "spawn 100,000",
  async fn() {
    ended = 0;
    // deno-lint-ignore require-yield -- the body only spawns; the group waits
    await new Loop().runTask(taskGroup(function* (group) {
      for (let i = 0; i < CHILDREN; i++) group.spawn(tiny());
    }));
    check(ended === CHILDREN, `${ended} children ended`);
  },
});

Deno.bench({
  name: "Promise.all of 100,000 async functions",
  group: "spawn 100,000",
  async fn() {
    const all: Promise<number>[] = [];
    for (let i = 0; i < CHILDREN; i++) {
      all.push((async () => {
        await null;
        return 1;
      })());
    }
    check((await Promise.all(all)).length === CHILDREN, "all ended");
  },
});
