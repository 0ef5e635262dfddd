// Copyright 2026 the boucle authors. MIT license.
/**
 * Chapter 1 of docs/tutorial.md: one coroutine, driven by hand with `next()`.
 * The reader's own code: no library.
 *
 * Run: deno run docs/tutorial/01_run_task.ts
 *
 * @module
 */

/** A coroutine of our own: a generator that yields nothing but `undefined`. */
export type Coroutine<T = void> = Generator<undefined, T, unknown>;

/** The lesson's `simple_print`: a coroutine that never waits. */
// deno-lint-ignore require-yield -- it never waits, as in the lesson
export function* simplePrint(msg: unknown): Coroutine {
  console.log(String(msg));
}

/** Prints Hello, hands control back once (a bare `yield`), then prints World. */
export function* complexWork(): Coroutine {
  yield* simplePrint("Hello");
  yield; // the lesson's `await asyncio.sleep(0)`
  yield* simplePrint("World");
}

/** The lesson's `run_task`: call `next()` until the coroutine says it is done. */
export function runTask(task: Iterable<unknown>): void {
  const it = task[Symbol.iterator]();
  while (!it.next().done) {
    // every turn of this loop is one step of the task
  }
}

if (import.meta.main) {
  // By hand first, to see each step.
  const it = complexWork();
  console.log("next() ->", it.next().done ? "done" : "paused");
  console.log("next() ->", it.next().done ? "done" : "paused");
  // Then the same work, driven by runTask.
  runTask(complexWork());
}
