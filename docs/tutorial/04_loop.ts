// Copyright 2026 the boucle authors. MIT license.
/**
 * Chapter 4 of docs/tutorial.md: chapter 2's `runTasks` turned into a `Loop`
 * object, whose queue stays open while it runs: `addTask`, `run`, `runTask`,
 * and `Loop.current`, through which a running task reaches its loop.
 * The reader's own code: no library.
 *
 * Run: deno run docs/tutorial/04_loop.ts
 *
 * @module
 */

import type { Coroutine } from "./01_run_task.ts";
import { interrupt } from "./03_sleep.ts";

/** The lesson's `Loop`: a queue of iterators and the round robin over it. */
export class Loop {
  static #current: Loop | undefined = undefined;
  #queue: Iterator<unknown>[] = [];

  /** The loop running the task that asks. */
  static get current(): Loop {
    if (Loop.#current === undefined) throw new Error("Loop.current: no loop is running");
    return Loop.#current;
  }

  /** Takes anything we can iterate: a generator, or an object such as `ComplexWork`. */
  addTask(task: Iterable<unknown>): void {
    this.#queue.push(task[Symbol.iterator]());
  }

  /** Runs until the queue is empty; tasks may add tasks meanwhile. */
  run(): void {
    const outer = Loop.#current;
    Loop.#current = this;
    try {
      while (this.#queue.length > 0) {
        const task = this.#queue.shift()!;
        if (!task.next().done) this.#queue.push(task);
      }
    } finally {
      Loop.#current = outer;
    }
  }

  runTask(task: Iterable<unknown>): void {
    this.addTask(task);
    this.run();
  }
}

function* child(name: string): Coroutine {
  for (let i = 1; i <= 3; i++) {
    console.log(`${name} ${i}`);
    yield* interrupt();
  }
}

// deno-lint-ignore require-yield -- it adds tasks and ends, without waiting for them
function* main(): Coroutine {
  console.log("main: adding two children");
  Loop.current.addTask(child("a"));
  Loop.current.addTask(child("b"));
  console.log("main: done");
}

if (import.meta.main) {
  new Loop().runTask(main());
  try {
    Loop.current;
  } catch (error) {
    console.log((error as Error).message);
  }
}
