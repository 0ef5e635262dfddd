// Copyright 2026 the boucle authors. MIT license.
/**
 * The lesson's `gather`: the two `print_messages` of the `sleep` step, run
 * concurrently by one task that waits for both; then the lesson's `workflow`,
 * which shows that `gather` composes: `yield* gather(...)` inside a coroutine,
 * then more work after it, on the same loop.
 *
 * Lesson: "Plongée au cœur de l'asynchrone en Python" (entwanne, Zeste de
 * Savoir), chapter "Boucles événementielles", section "D'autres utilitaires
 * asynchrones": `loop.run_task(gather(print_messages('foo', 'bar', 'baz'),
 * print_messages('aaa', 'bbb', 'ccc', sleep_time=0.7)))`, then
 * `loop.run_task(workflow())`.
 * https://zestedesavoir.com/articles/3306/plongee-au-coeur-de-lasynchrone-en-python/
 *
 * Run: deno run examples/gather.ts              (takes 8 s)
 *      deno run examples/gather.ts --virtual    (virtual clock: instant)
 *
 * Prints:
 *   foo  aaa  bbb  bar  ccc  baz    (the gather, one per line)
 *   a  c  b  d  e  f  g             (the workflow, one per line)
 *
 * @module
 */

import { type Coroutine, gather, Loop, sleep } from "../mod.ts";

// async def print_messages(*messages, sleep_time=1), in milliseconds here.
function* printMessages(messages: string[], sleepTime = 1000): Coroutine<void> {
  for (const msg of messages) {
    console.log(msg);
    yield* sleep(sleepTime);
  }
}

function* workflow(): Coroutine<void> {
  yield* gather(printMessages(["a", "b"]), printMessages(["c", "d", "e"]));
  yield* printMessages(["f", "g"]);
}

const loop = new Loop({ virtualTime: Deno.args.includes("--virtual") });
await loop.runTask(
  gather(printMessages(["foo", "bar", "baz"]), printMessages(["aaa", "bbb", "ccc"], 700)),
);
await loop.runTask(workflow());
