// Copyright 2026 the boucle authors. MIT license.
// CPU seconds of a service loop idle for 2 s: `loop.run({ until })` with
// `AbortSignal.timeout(2000)`, and no task (or, with --tasks N, N tasks
// parked on an Event that is never set, which in a service loop is no
// deadlock; the figure then includes starting them and cancelling them when
// the signal aborts). Measure the whole process with /usr/bin/time:
//
//   /usr/bin/time -v deno run bench/idle_service.ts [--tasks N]
//   /usr/bin/time -v deno run bench/idle_service.ts --baseline
//
// and read "User time" plus "System time". `--baseline` sleeps the same 2 s
// on one plain `setTimeout` promise instead: Deno's start-up and floor, to
// subtract. The script also prints the CPU of the 2 s alone, read in-process
// with `Deno.cpuUsage()` as bench/idle.ts does (getrusage of the whole
// process: every thread), after a first short run of another loop (so that
// compiling boucle's code does not count as idling) and 1 s for Deno's
// start-up to settle.

import { type Coroutine, Event, Loop } from "../mod.ts";
import { check } from "./_common.ts";

const IDLE_MS = 2_000;
const SETTLE_MS = 1_000;

type CpuUsage = () => { user: number; system: number };
// Imported only where Deno.cpuUsage is missing: node:process adds some 20 ms
// of CPU to the start-up that /usr/bin/time counts.
const cpuUsage: CpuUsage = (Deno as { cpuUsage?: CpuUsage }).cpuUsage ??
  (await import("node:process")).default.cpuUsage;

/** CPU seconds (user + system) of this process so far. */
function cpuSeconds(): number {
  const { user, system } = cpuUsage();
  return (user + system) / 1e6;
}

function tasksFlag(): number {
  const i = Deno.args.indexOf("--tasks");
  if (i < 0) return 0;
  const n = Number(Deno.args[i + 1]);
  if (!Number.isInteger(n) || n < 0) {
    throw new TypeError(`--tasks must be an integer >= 0, received "${Deno.args[i + 1]}"`);
  }
  return n;
}

if (import.meta.main) {
  const baseline = Deno.args.includes("--baseline");
  const tasks = tasksFlag();
  if (!baseline) {
    // Warm up: the first run compiles the loop's code, about 4 ms of CPU
    // that would otherwise count as idling. It is in the /usr/bin/time total.
    const warm = new Loop();
    const ran = warm.submit(function* () {
      yield* new Event().wait();
    }());
    await warm.run({ until: AbortSignal.timeout(10) });
    await ran.catch(() => {}); // cancelled at the end of the run
  }
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  const cpu = cpuSeconds();
  const wall = performance.now();
  if (baseline) {
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
  } else {
    const loop = new Loop();
    const never = new Event({ name: "never" });
    let cancelled = 0;
    for (let i = 0; i < tasks; i++) {
      loop.addTask(function* (): Coroutine<void> {
        try {
          yield* never.wait();
        } finally {
          cancelled++;
        }
      }());
    }
    await loop.run({ until: AbortSignal.timeout(IDLE_MS) });
    check(cancelled === tasks, `${cancelled} of ${tasks} parked tasks cancelled at the end`);
  }
  const seconds = (performance.now() - wall) / 1e3;
  check(seconds >= IDLE_MS / 1e3 - 0.002, `idled ${seconds} s`);
  const what = baseline ? "one setTimeout promise" : `service loop, ${tasks} parked tasks`;
  console.log(
    `${what}: ${(cpuSeconds() - cpu).toFixed(4)} CPU s in ${seconds.toFixed(3)} s idle; ` +
      `whole process ${cpuSeconds().toFixed(4)} CPU s`,
  );
}
