// Copyright 2026 the boucle authors. MIT license.
/**
 * Chapter 3 of docs/tutorial.md: `interrupt()` and a `sleep()` that polls the
 * clock, run by chapter 2's `runTasks`, and what that sleep costs: the CPU
 * time the process burns while it "sleeps".
 * The reader's own code: no library.
 *
 * Run: deno run docs/tutorial/03_sleep.ts
 *
 * @module
 */

import process from "node:process";
import type { Coroutine } from "./01_run_task.ts";
import { runTasks } from "./02_run_tasks.ts";

/** The lesson's `interrupt`: yield once, so the others get a turn. */
export function* interrupt(): Coroutine {
  yield;
}

/** Polls the clock until `time` (milliseconds, `performance.now()`) has come. */
export function* sleepUntil(time: number): Coroutine {
  while (performance.now() < time) yield* interrupt();
}

/** Sleeps `ms` milliseconds, by polling. */
export function* sleep(ms: number): Coroutine {
  yield* sleepUntil(performance.now() + ms);
}

/** The lesson's `print_messages`, with the lesson's 1 s and 0.7 s scaled to 300 and 210 ms. */
export function* printMessages(messages: string[], sleepTime = 300): Coroutine {
  for (const msg of messages) {
    console.log(msg);
    yield* sleep(sleepTime);
  }
}

/** CPU time (user + system) this process has used so far, in milliseconds. */
export function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

if (import.meta.main) {
  const cpu = cpuMs();
  const wall = performance.now();
  runTasks(printMessages(["foo", "bar", "baz"]), printMessages(["aaa", "bbb", "ccc"], 210));
  const wallMs = performance.now() - wall;
  const ratio = (cpuMs() - cpu) / wallMs;
  console.log(`slept ${wallMs.toFixed(0)} ms, CPU busy ${ratio.toFixed(2)} of that time`);
}
