// Copyright 2026 the boucle authors. MIT license.
/**
 * Chapter 2 of docs/tutorial.md: several coroutines driven in turn by a queue,
 * and a `Waiter` that one task polls until another marks it done.
 * The reader's own code: no library.
 *
 * Run: deno run docs/tutorial/02_run_tasks.ts
 *
 * @module
 */

import { type Coroutine, simplePrint } from "./01_run_task.ts";

/** The lesson's `ComplexWork`: not a generator function, an object we can iterate. */
export class ComplexWork {
  *[Symbol.iterator](): Coroutine {
    console.log("Hello");
    yield;
    console.log("World");
  }
}

/** The lesson's `run_tasks`: one `next()` per task per turn, first in, first out. */
export function runTasks(...tasks: Iterable<unknown>[]): void {
  const queue = tasks.map((task) => task[Symbol.iterator]());
  while (queue.length > 0) {
    const task = queue.shift()!;
    if (!task.next().done) queue.push(task); // not finished: back to the end of the queue
  }
}

/** The lesson's first `Waiter`: done or not, and every waiter checks it at each of its turns. */
export class Waiter {
  done = false;
  polls = 0;
  *[Symbol.iterator](): Coroutine {
    while (!this.done) {
      this.polls++;
      yield;
    }
  }
}

export function* waitJob(waiter: Waiter): Coroutine {
  console.log("start");
  yield* waiter; // until countUpTo is finished
  console.log("finished");
}

export function* countUpTo(waiter: Waiter, n: number): Coroutine {
  for (let i = 0; i < n; i++) {
    console.log(String(i));
    yield;
  }
  waiter.done = true;
}

if (import.meta.main) {
  runTasks(simplePrint(1), new ComplexWork(), simplePrint(2), simplePrint(3));

  const waiter = new Waiter();
  runTasks(waitJob(waiter), countUpTo(waiter, 5));
  console.log(`waitJob found the waiter not done ${waiter.polls} times`);
}
