// Copyright 2026 the boucle authors. MIT license.
// CPU seconds used while every task sleeps 2 s: boucle's `sleep()`, which
// parks the task and lets the loop sleep on the host, beside the lesson's
// busy-polling `sleep` ported as is (the sleeper re-queues itself with a bare
// `yield` until the time has come), run on the same Loop.
//
//   deno run bench/idle.ts [--json]
//
// How CPU is measured: `Deno.cpuUsage()` (present in Deno 2.9 but missing
// from its type declarations, hence the cast; `process.cpuUsage()` of
// `node:process` is the same call and the fallback; neither needs a
// permission) returns the process's user and system CPU time in µs, read with
// getrusage(RUSAGE_SELF): every thread of the process, V8's GC and compiler
// threads included, which is what `/usr/bin/time -v` reports. The difference
// across `loop.run()` is the CPU of the 2 s sleep alone. Deno's start up is
// left out on purpose: it costs tens of milliseconds, and its tail (about
// 10 ms of background work in the first half second, measured here) would
// otherwise dominate a figure of a few milliseconds, so the script first lets
// the process settle for SETTLE_MS. Spawning children under `/usr/bin/time`
// would need `--allow-run` and measure mostly that start up. A third figure,
// one plain `setTimeout` promise of 2 s, is Deno's own floor.

import process from "node:process";
import { type Awaitable, type Coroutine, Loop, sleep } from "../mod.ts";
import { check } from "./_common.ts";

const SLEEP_MS = 2_000;
const TASKS = 10;
const SETTLE_MS = 1_000;

/** The lesson's sleep: poll the clock, yield, until the deadline has passed. */
function* busySleep(ms: number): Coroutine<void> {
  const loop = Loop.current;
  const deadline = loop.time() + ms;
  while (loop.time() < deadline) yield;
}

const denoCpuUsage = (Deno as { cpuUsage?: () => { user: number; system: number } }).cpuUsage;

/** CPU seconds (user + system) of this process so far. */
function cpuSeconds(): number {
  const { user, system } = denoCpuUsage?.() ?? process.cpuUsage();
  return (user + system) / 1e6;
}

/** Runs TASKS sleepers with `sleeper`; returns CPU and wall seconds. */
async function measure(
  sleeper: (ms: number) => Awaitable<void>,
): Promise<{ cpu: number; wall: number }> {
  const loop = new Loop();
  let woke = 0;
  for (let i = 0; i < TASKS; i++) {
    loop.addTask(function* (): Coroutine<void> {
      yield* sleeper(SLEEP_MS);
      woke++;
    }());
  }
  const cpu = cpuSeconds();
  const wall = performance.now();
  await loop.run();
  const result = { cpu: cpuSeconds() - cpu, wall: (performance.now() - wall) / 1e3 };
  check(woke === TASKS, `${woke} sleepers woke`);
  check(result.wall >= SLEEP_MS / 1e3 - 0.002, `woke after ${result.wall} s`);
  return result;
}

/** Deno's floor: CPU and wall seconds of one plain `setTimeout` promise. */
async function plain(): Promise<{ cpu: number; wall: number }> {
  const cpu = cpuSeconds();
  const wall = performance.now();
  await new Promise((resolve) => setTimeout(resolve, SLEEP_MS));
  return { cpu: cpuSeconds() - cpu, wall: (performance.now() - wall) / 1e3 };
}

if (import.meta.main) {
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  const floor = await plain();
  const boucle = await measure(sleep);
  const busy = await measure(busySleep);
  const processCpu = cpuSeconds();
  if (Deno.args.includes("--json")) {
    console.log(
      JSON.stringify({
        tasks: TASKS,
        sleepMs: SLEEP_MS,
        boucle,
        busy,
        setTimeout: floor,
        processCpu,
      }),
    );
  } else {
    const show = (what: string, { cpu, wall }: { cpu: number; wall: number }) =>
      console.log(`  ${what.padEnd(28)} ${cpu.toFixed(4)} CPU s (wall ${wall.toFixed(3)} s)`);
    console.log(`${TASKS} tasks sleeping ${SLEEP_MS} ms:`);
    show("boucle sleep()", boucle);
    show("busy-polling sleep (lesson)", busy);
    show("one setTimeout (Deno floor)", floor);
    console.log(`  whole process:               ${processCpu.toFixed(4)} CPU s`);
  }
}
