// Copyright 2026 the boucle authors. MIT license.
/**
 * The lesson's round robin, `run_tasks`: several coroutines in a FIFO queue,
 * each advanced one step by hand with `next()`, then put back at the end of
 * the queue unless it has finished.
 *
 * Lesson: "Plongée au cœur de l'asynchrone en Python" (entwanne, Zeste de
 * Savoir), chapter "Boucles événementielles", `run_tasks(simple_print(1),
 * ComplexWork(), simple_print(2), simple_print(3))`.
 * https://zestedesavoir.com/articles/3306/plongee-au-coeur-de-lasynchrone-en-python/
 *
 * Run: deno run examples/run_tasks.ts
 *      deno run examples/run_tasks.ts --loop   (the same tasks on boucle's Loop)
 *
 * Prints, either way:
 *   1
 *   Hello
 *   2
 *   3
 *   World
 *
 * @module
 */

import { type Awaitable, type Coroutine, Loop } from "../mod.ts";

// async def simple_print(msg): print(msg)
// deno-lint-ignore require-yield -- a coroutine that never waits, as in the lesson
function* simplePrint(msg: unknown): Coroutine<void> {
  console.log(String(msg));
}

// class ComplexWork: def __await__(self): print('Hello'); yield; print('World')
class ComplexWork implements Awaitable<void> {
  *[Symbol.iterator](): Coroutine<void> {
    console.log("Hello");
    yield;
    console.log("World");
  }
}

/** def run_tasks(*tasks): the FIFO of iterators, one `next()` per turn. */
function runTasks(...tasks: Awaitable<unknown>[]): void {
  const queue = tasks.map((task) => task[Symbol.iterator]());
  while (queue.length > 0) {
    // Take the first task available.
    const task = queue.shift()!;
    // Unless it has finished, it goes back to the end of the queue.
    if (!task.next().done) queue.push(task);
  }
}

if (Deno.args.includes("--loop")) {
  const loop = new Loop();
  for (const task of [simplePrint(1), new ComplexWork(), simplePrint(2), simplePrint(3)]) {
    loop.addTask(task);
  }
  await loop.run();
} else {
  runTasks(simplePrint(1), new ComplexWork(), simplePrint(2), simplePrint(3));
}
