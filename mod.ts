// Copyright 2026 the boucle authors. MIT license.
/**
 * boucle: a cooperative event loop for Deno, built the way the classic
 * "build your own asyncio" lesson builds one. Coroutines are generator
 * functions; `yield*` waits on anything Awaitable; the loop drives them with
 * `next()` and sleeps on the host when none can go on.
 *
 * | Python lesson             | boucle                              |
 * | ------------------------- | ----------------------------------- |
 * | `async def f(): ...`      | `function* f() { ... }`             |
 * | `await x`                 | `yield* x`                          |
 * | `await interrupt()`       | `yield* interrupt()`                |
 * | `with aiosocket() as s:`  | `using s = aiosocket();`            |
 *
 * @example Two coroutines sharing one loop
 * ```ts
 * import { type Coroutine, gather, Loop, sleep } from "@boucle/boucle";
 * import { assertEquals } from "@std/assert";
 *
 * const log: string[] = [];
 * function* printMessages(name: string, delay: number): Coroutine<string> {
 *   for (let i = 1; i <= 3; i++) {
 *     yield* sleep(delay);
 *     log.push(`${name} ${i}`);
 *   }
 *   return name;
 * }
 * const loop = new Loop({ virtualTime: true });
 * const names = await loop.runTask(gather(printMessages("a", 1000), printMessages("b", 700)));
 * assertEquals(names, ["a", "b"]);
 * assertEquals(log, ["b 1", "a 1", "b 2", "a 2", "b 3", "a 3"]);
 * ```
 *
 * @module
 */

export * from "./loop.ts";
export * from "./scope.ts";
export * from "./sync.ts";
export * from "./socket.ts";
export * from "./stream.ts";
export * from "./server.ts";
