// Copyright 2026 the boucle authors. MIT license.
/**
 * The lesson's `Waiter`: `wait_job` waits on a waiter until `count_up_to` has
 * counted to 5 and set it. boucle's `Waiter` is the lesson's countdown
 * (`Waiter(n=1)`, `set()`); `waiter.set()` stands for the first version's
 * `waiter.done = True`. A task waiting on it is parked, not polled.
 *
 * Lesson: "Plongée au cœur de l'asynchrone en Python" (entwanne, Zeste de
 * Savoir), chapters "Attendez-moi !" (the `Waiter`) and "Boucles
 * événementielles", `run_tasks(wait_job(waiter), count_up_to(waiter, 5))`.
 * https://zestedesavoir.com/articles/3306/plongee-au-coeur-de-lasynchrone-en-python/
 *
 * Run: deno run examples/waiter.ts
 *
 * Prints:
 *   start
 *   0
 *   1
 *   2
 *   3
 *   4
 *   finished
 *
 * @module
 */

import { type Coroutine, interrupt, Loop, Waiter } from "../mod.ts";

function* waitJob(waiter: Waiter): Coroutine<void> {
  console.log("start");
  yield* waiter; // wait for countUpTo to be finished
  console.log("finished");
}

function* countUpTo(waiter: Waiter, n: number): Coroutine<void> {
  for (let i = 0; i < n; i++) {
    console.log(String(i));
    yield* interrupt(); // the lesson's await asyncio.sleep(0)
  }
  waiter.set();
}

const waiter = new Waiter();
const loop = new Loop();
loop.addTask(waitJob(waiter));
loop.addTask(countUpTo(waiter, 5));
await loop.run();
