// Copyright 2026 the boucle authors. MIT license.
// Bytes per parked (sleeping) task at 100,000 tasks, beside 100,000 async
// functions each awaiting a pending `setTimeout` promise.
//
//   deno run --v8-flags=--expose-gc bench/memory.ts [--json]
//
// Each figure is the growth of `Deno.memoryUsage()`'s `heapUsed + external`
// between a forced GC before the tasks exist and a forced GC while all of them
// are parked, divided by the number of tasks. What the bench itself keeps (the
// handles it needs to clean up) is counted on both sides alike. Afterwards
// every task is cancelled or timer cleared, so the process exits at once.

import { type Coroutine, Loop, sleep, type Task } from "../mod.ts";
import { check } from "./_common.ts";

const TASKS = 100_000;
/** Long enough that nothing wakes while we measure. */
const SLEEP_MS = 600_000;

const gc = (globalThis as { gc?: () => void }).gc;

/** Heap plus external bytes after a full, forced collection. */
function usedAfterGc(): number {
  // Twice: the first pass may leave garbage that finalizers released.
  gc!();
  gc!();
  const { heapUsed, external } = Deno.memoryUsage();
  return heapUsed + external;
}

/** Lets the host run: timers set, loops parked. */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 20));
}

/** Bytes per task while TASKS boucle tasks sleep in one Loop. */
async function boucle(): Promise<number> {
  const before = usedAfterGc();
  const loop = new Loop();
  const tasks: Task<void>[] = new Array(TASKS);
  function* sleeper(): Coroutine<void> {
    yield* sleep(SLEEP_MS);
  }
  for (let i = 0; i < TASKS; i++) tasks[i] = loop.addTask(sleeper());
  const done = loop.run();
  await settle(); // the first cycle has parked every task
  const parked = usedAfterGc();
  for (const task of tasks) task.cancel();
  await done;
  check(tasks.every((task) => task.cancelled), "every task was cancelled");
  return (parked - before) / TASKS;
}

/** Bytes per task while TASKS async functions await a setTimeout promise. */
async function setTimeoutPromises(): Promise<number> {
  const before = usedAfterGc();
  const timers: ReturnType<typeof setTimeout>[] = new Array(TASKS);
  const all: Promise<void>[] = new Array(TASKS);
  async function sleeper(i: number): Promise<void> {
    await new Promise((resolve) => (timers[i] = setTimeout(resolve, SLEEP_MS)));
  }
  for (let i = 0; i < TASKS; i++) all[i] = sleeper(i);
  await settle();
  const parked = usedAfterGc();
  for (const timer of timers) clearTimeout(timer);
  check(all.length === TASKS, "every sleeper started");
  return (parked - before) / TASKS;
}

if (import.meta.main) {
  if (gc === undefined) {
    console.error("memory.ts needs a forced GC: run it with --v8-flags=--expose-gc");
    Deno.exit(2);
  }
  // The second system measured pays nothing for code the first one warmed up:
  // both run once unmeasured, then measured.
  await boucle();
  await setTimeoutPromises();
  const result = { tasks: TASKS, boucle: await boucle(), setTimeout: await setTimeoutPromises() };
  if (Deno.args.includes("--json")) {
    console.log(JSON.stringify(result));
  } else {
    console.log(`bytes per parked task at ${TASKS} tasks (heapUsed + external, after GC):`);
    console.log(`  boucle sleep():            ${result.boucle.toFixed(0)}`);
    console.log(`  setTimeout promises:       ${result.setTimeout.toFixed(0)}`);
  }
}
