// Copyright 2026 the boucle authors. MIT license.
/**
 * Chapter 5 of docs/tutorial.md: a `Waiter` that counts down, and `gather()`,
 * which runs coroutines side by side on chapter 4's `Loop` and waits for them
 * all; then what becomes of a gather when one of its coroutines fails.
 * The reader's own code: no library.
 *
 * Run: deno run docs/tutorial/05_gather.ts
 *
 * @module
 */

import type { Coroutine } from "./01_run_task.ts";
import { interrupt, printMessages } from "./03_sleep.ts";
import { Loop } from "./04_loop.ts";

/** The lesson's second `Waiter`: done when `set()` has been called `n` times. */
export class Waiter {
  polls = 0;
  constructor(public count = 1) {}
  set(): void {
    this.count--;
  }
  *[Symbol.iterator](): Coroutine {
    while (this.count > 0) {
      this.polls++;
      yield;
    }
  }
}

/** Runs each task as a task of its own, waits for all of them, returns their results. */
export function* gather<T>(...tasks: Iterable<undefined, T>[]): Coroutine<T[]> {
  const waiter = new Waiter(tasks.length);
  const results: T[] = [];
  tasks.forEach((task, i) => {
    Loop.current.addTask(function* (): Coroutine {
      results[i] = yield* task;
      waiter.set();
    }());
  });
  yield* waiter;
  console.log(`(gather checked its waiter ${waiter.polls} times)`);
  return results;
}

function* fails(): Coroutine {
  yield* interrupt();
  throw new Error("boom");
}

if (import.meta.main) {
  const loop = new Loop();
  loop.runTask(function* (): Coroutine {
    const results = yield* gather(
      printMessages(["foo", "bar"]),
      printMessages(["aaa", "bbb"], 210),
    );
    console.log(`gather returned ${results.length} results`);
  }());

  try {
    loop.runTask(gather(fails(), printMessages(["one", "two"])));
  } catch (error) {
    console.log(`run() threw: ${(error as Error).message}`);
  }
}
