// Copyright 2026 the boucle authors. MIT license.
/**
 * The lesson's `sleep`: two `print_messages` coroutines, one pausing 1 s and
 * the other 0.7 s between messages, run together so that their messages
 * interleave. The lesson runs them with its `run_tasks`; here boucle's `Loop`
 * runs them (`addTask` then `run`, the lesson's `Loop.add_task` and `run`),
 * since boucle's `sleep` parks the task on the loop's clock instead of
 * polling it.
 *
 * Lesson: "Plongée au cœur de l'asynchrone en Python" (entwanne, Zeste de
 * Savoir), chapter "Boucles événementielles", section on `interrupt`,
 * `sleep_until`, `sleep` and `print_messages`.
 * https://zestedesavoir.com/articles/3306/plongee-au-coeur-de-lasynchrone-en-python/
 *
 * Run: deno run examples/sleep.ts              (takes 3 s)
 *      deno run examples/sleep.ts --virtual    (virtual clock: instant)
 *
 * Prints:
 *   foo
 *   aaa
 *   bbb
 *   bar
 *   ccc
 *   baz
 *
 * @module
 */

import { type Coroutine, Loop, sleep } from "../mod.ts";

// async def print_messages(*messages, sleep_time=1), in milliseconds here.
function* printMessages(messages: string[], sleepTime = 1000): Coroutine<void> {
  for (const msg of messages) {
    console.log(msg);
    yield* sleep(sleepTime);
  }
}

const loop = new Loop({ virtualTime: Deno.args.includes("--virtual") });
loop.addTask(printMessages(["foo", "bar", "baz"]));
loop.addTask(printMessages(["aaa", "bbb", "ccc"], 700));
await loop.run();
