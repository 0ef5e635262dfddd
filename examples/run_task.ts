// Copyright 2026 the boucle authors. MIT license.
/**
 * The lesson's first event loop, `run_task`: one coroutine driven to its end
 * by hand with `next()`. No `Loop` is needed: `interrupt()` is a bare `yield`.
 *
 * Lesson: "Plongée au cœur de l'asynchrone en Python" (entwanne, Zeste de
 * Savoir), chapter "Boucles événementielles" / "Boucle d'or et les trois
 * tâches", first section, `run_task(complex_work())`.
 * https://zestedesavoir.com/articles/3306/plongee-au-coeur-de-lasynchrone-en-python/
 *
 * Run: deno run examples/run_task.ts
 *
 * Prints:
 *   Hello
 *   World
 *
 * @module
 */

import { type Awaitable, type Coroutine, interrupt } from "../mod.ts";

// async def simple_print(msg): print(msg)
// deno-lint-ignore require-yield -- a coroutine that never waits, as in the lesson
function* simplePrint(msg: unknown): Coroutine<void> {
  console.log(String(msg));
}

// await asyncio.sleep(0) is the lesson's interruption: boucle's interrupt().
function* complexWork(): Coroutine<void> {
  yield* simplePrint("Hello");
  yield* interrupt();
  yield* simplePrint("World");
}

/** def run_task(task): it = task.__await__(); next(it) until StopIteration. */
function runTask(task: Awaitable<unknown>): void {
  const it = task[Symbol.iterator]();
  while (true) {
    if (it.next().done) break;
  }
}

runTask(complexWork());
