// Copyright 2026 the boucle authors. MIT license.
/**
 * Structured concurrency: task groups that own their tasks, cancel scopes
 * for timeouts, and shields for cleanup that must finish. The mechanism
 * (which task owns which, who is cancelled when, how a scope tells its own
 * cancellation from any other) is in `_kernel.ts`; this module is thin over it.
 *
 * Decisions where the design leaves room:
 * - A task group's body runs inline in the calling task. A child's failure
 *   cancels the body through the group's cancel scope, so the body sees a
 *   `CancelledError` at its suspension point; when it comes out, the group
 *   throws the children's errors instead.
 * - Once the group has failed, a child spawned into it (say, by the body's
 *   cleanup) starts cancelled and never runs. `TaskGroup.cancel()` cancels
 *   the children alive at that moment; the body goes on.
 * - If the owning task is cancelled and children throw errors while they
 *   unwind, those errors are thrown (one as is, several as an
 *   `AggregateError`) in place of the `CancelledError`, as trio does: no
 *   error is dropped for a cancellation.
 * - `TaskGroup.start()`: if the task calling `start` is cancelled before the
 *   child calls `ready()`, the child is cancelled too (and awaited by the
 *   group). A second `ready()` throws.
 * - Cancellation is delivered once per `cancel()` or expiry, as everywhere
 *   in boucle: a body that catches a scope's `CancelledError` and returns a
 *   value makes `deadline`/`moveOnAfter` return that value.
 *
 * @module
 */

import {
  type Awaitable,
  claim,
  type Coroutine,
  Group,
  iteratorOf,
  owned,
  runGroup,
  shieldRun,
  Task,
  timed,
} from "./_kernel.ts";
import { checkAwaitable, checkAwaitables, checkMs, checkTaskOptions, show } from "./_validate.ts";
import type { TaskOptions } from "./loop.ts";

let makeGroup: (group: Group) => TaskGroup;

/**
 * The handle a `taskGroup` body receives: spawns children into the group,
 * starts services that report readiness, cancels the children.
 *
 * @example Usage
 * ```ts
 * import { Loop, sleep } from "@boucle/boucle";
 * import { taskGroup } from "@boucle/boucle/scope";
 * import { assertEquals } from "@std/assert";
 *
 * const log: string[] = [];
 * function* worker(name: string, ms: number) {
 *   yield* sleep(ms);
 *   log.push(name);
 * }
 * await new Loop({ virtualTime: true }).runTask(taskGroup(function* (group) {
 *   group.spawn(worker("slow", 20));
 *   group.spawn(worker("fast", 10));
 *   log.push("body done");
 * }));
 * assertEquals(log, ["body done", "fast", "slow"]);
 * ```
 */
export class TaskGroup {
  #group: Group;

  /** Made by `taskGroup()` only. */
  private constructor(group: Group) {
    if (!(group instanceof Group)) {
      throw new TypeError("new TaskGroup(): task groups are made by taskGroup(body)");
    }
    this.#group = group;
  }
  static {
    makeGroup = (group) => new TaskGroup(group);
  }

  /**
   * Spawns a child into the group: it runs concurrently with the body and
   * the other children, and the group waits for it. Accepts what
   * `Loop.addTask()` accepts.
   *
   * @typeParam R The value the child returns.
   * @param task A generator, an Awaitable, an iterator or a promise.
   * @param options `name`, and a `signal` that cancels the child.
   * @returns The child's Task.
   * @throws {TypeError} If `task` or `options` is bad.
   * @throws {Error} If the group has ended.
   *
   * @example Usage
   * ```ts
   * import { Loop, sleep } from "@boucle/boucle";
   * import { taskGroup } from "@boucle/boucle/scope";
   * import { assertEquals } from "@std/assert";
   *
   * const result = await new Loop({ virtualTime: true }).runTask(taskGroup(function* (group) {
   *   const child = group.spawn(function* () {
   *     yield* sleep(5);
   *     return 21;
   *   }(), { name: "child" });
   *   return 2 * (yield* child);
   * }));
   * assertEquals(result, 42);
   * ```
   */
  spawn<R>(
    task: Awaitable<R> | Iterator<unknown, R, unknown> | PromiseLike<R>,
    options: TaskOptions = {},
  ): Task<R> {
    const { name, signal } = checkTaskOptions("TaskGroup.spawn(task, options)", options);
    const it = iteratorOf("TaskGroup.spawn(task)", "task", task);
    return this.#group.spawn("TaskGroup.spawn()", it, name, signal).handle as Task<R>;
  }

  /**
   * Spawns `fn(ready)` as a child and parks until the child calls
   * `ready(value)`, then returns that value (trio's `nursery.start`: "the
   * server is listening on this port"). If the child ends or fails before
   * calling `ready`, `start` throws its error (or an `Error` saying it ended
   * without calling `ready()`); that error is `start`'s, not the group's.
   *
   * @typeParam R The value handed to `ready`.
   * @param fn Makes the child's coroutine, given `ready`.
   * @param options `name`, and a `signal` that cancels the child.
   * @returns A coroutine returning the value given to `ready`.
   * @throws {TypeError} If `fn` is not a function or `options` is bad.
   *
   * @example Usage
   * ```ts
   * import { type Coroutine, Loop, sleep } from "@boucle/boucle";
   * import { taskGroup } from "@boucle/boucle/scope";
   * import { assertEquals } from "@std/assert";
   *
   * function* service(ready: (port: number) => void): Coroutine<void> {
   *   yield* sleep(10); // binding…
   *   ready(8080);
   *   yield* sleep(100); // serving
   * }
   * const port = await new Loop({ virtualTime: true }).runTask(taskGroup(function* (group) {
   *   const port = yield* group.start(service);
   *   group.cancel(); // stop serving
   *   return port;
   * }));
   * assertEquals(port, 8080);
   * ```
   */
  start<R>(
    fn: (ready: (value: R) => void) => Awaitable<unknown> | Iterator<unknown, unknown, unknown>,
    options: TaskOptions = {},
  ): Coroutine<R> {
    if (typeof fn !== "function") {
      throw new TypeError(
        `TaskGroup.start(fn, options): 'fn' must be a function, received ${show(fn)}`,
      );
    }
    const { name, signal } = checkTaskOptions("TaskGroup.start(fn, options)", options);
    return this.#group.start<R>(
      "TaskGroup.start()",
      (ready) => iteratorOf("TaskGroup.start(fn)", "fn(ready)", fn(ready)),
      name,
      signal,
    );
  }

  /**
   * Cancels every child alive now (not the body, which returns when it
   * chooses). Children cancelled this way are not failures.
   *
   * @param reason Kept as each `CancelledError.reason`.
   *
   * @example Usage
   * ```ts
   * import { Loop, sleep } from "@boucle/boucle";
   * import { taskGroup } from "@boucle/boucle/scope";
   * import { assertEquals } from "@std/assert";
   *
   * const loop = new Loop({ virtualTime: true });
   * await loop.runTask(taskGroup(function* (group) {
   *   group.spawn(sleep(Infinity));
   *   yield* sleep(10);
   *   group.cancel("enough");
   * }));
   * assertEquals(loop.time(), 10);
   * ```
   */
  cancel(reason?: unknown): void {
    this.#group.cancel(reason);
  }

  /**
   * The live children, in the order they were spawned.
   *
   * @example Usage
   * ```ts
   * import { Loop, sleep } from "@boucle/boucle";
   * import { taskGroup } from "@boucle/boucle/scope";
   * import { assertEquals } from "@std/assert";
   *
   * await new Loop({ virtualTime: true }).runTask(taskGroup(function* (group) {
   *   group.spawn(sleep(5), { name: "a" });
   *   assertEquals(group.tasks.map((task) => task.name), ["a"]);
   *   yield* sleep(10);
   *   assertEquals(group.tasks, []);
   * }));
   * ```
   */
  get tasks(): Task<unknown>[] {
    return [...this.#group.children].map((fiber) => fiber.handle);
  }
}

/**
 * Runs `body(group)` and the children it spawns concurrently, and returns the
 * body's value once the body and every child have ended: no child outlives
 * its group.
 *
 * The first child failure cancels the body (at its suspension point) and
 * every other child; the group waits for all of them, then throws that error,
 * or an `AggregateError` of every error in the order they happened (cleanup
 * errors included) if there were several. A child ended by a cancellation is
 * no failure. A body that throws fails the group the same way. If the task
 * running the group is cancelled, every child is cancelled and awaited, then
 * the `CancelledError` propagates. A child's error is observed by the group:
 * `Loop.run()` never reports it again.
 *
 * @typeParam T The body's value.
 * @param body Given the group, returns an Awaitable (a generator) of `T`.
 * @returns A coroutine returning the body's value.
 * @throws {TypeError} If `body` is not a function.
 *
 * @example A failing child cancels the rest
 * ```ts
 * import { CancelledError, Loop, sleep } from "@boucle/boucle";
 * import { taskGroup } from "@boucle/boucle/scope";
 * import { assertEquals, assertRejects } from "@std/assert";
 *
 * const log: string[] = [];
 * const loop = new Loop({ virtualTime: true });
 * const error = await assertRejects(() =>
 *   loop.runTask(taskGroup(function* (group) {
 *     group.spawn(function* () {
 *       try {
 *         yield* sleep(100);
 *       } catch (e) {
 *         log.push(`sibling cancelled: ${e instanceof CancelledError}`);
 *         throw e;
 *       }
 *     }());
 *     group.spawn(function* () {
 *       yield* sleep(10);
 *       throw new Error("boom");
 *     }());
 *     yield* sleep(50);
 *   }))
 * );
 * assertEquals((error as Error).message, "boom");
 * assertEquals(log, ["sibling cancelled: true"]);
 * assertEquals(loop.time(), 10);
 * ```
 */
export function taskGroup<T>(body: (group: TaskGroup) => Awaitable<T>): Coroutine<T> {
  if (typeof body !== "function") {
    throw new TypeError(`taskGroup(body): 'body' must be a function, received ${show(body)}`);
  }
  return runGroup("taskGroup()", (group) => body(makeGroup(group)));
}

/** The outcome of one awaitable in `gatherSettled`, shaped as `Promise.allSettled`'s. */
export type Settled<T> =
  | { status: "fulfilled"; value: T }
  | { status: "rejected"; reason: unknown };

/**
 * Runs awaitables concurrently and returns how each ended, in argument
 * order, shaped as `Promise.allSettled`'s results. It runs all of them to
 * their end; it throws only its own cancellation, after cancelling and
 * awaiting them.
 *
 * @typeParam A The awaitables' types.
 * @param awaitables Generators, Tasks or any Awaitables.
 * @returns A coroutine returning the outcomes, typed as a tuple.
 * @throws {TypeError} If an argument is not an Awaitable.
 *
 * @example Usage
 * ```ts
 * import { Loop, sleep } from "@boucle/boucle";
 * import { gatherSettled } from "@boucle/boucle/scope";
 * import { assertEquals } from "@std/assert";
 *
 * const boom = new Error("boom");
 * function* fail() {
 *   yield* sleep(1);
 *   throw boom;
 * }
 * function* ok() {
 *   yield* sleep(2);
 *   return "ok";
 * }
 * const results = await new Loop({ virtualTime: true }).runTask(gatherSettled(fail(), ok()));
 * assertEquals(results, [
 *   { status: "rejected", reason: boom },
 *   { status: "fulfilled", value: "ok" },
 * ]);
 * ```
 */
export function gatherSettled<const A extends readonly Awaitable<unknown>[]>(
  ...awaitables: A
): Coroutine<
  { -readonly [K in keyof A]: Settled<A[K] extends Awaitable<infer R> ? R : never> }
> {
  checkAwaitables("gatherSettled(...awaitables)", awaitables);
  for (const awaitable of awaitables) if (awaitable instanceof Task) claim(awaitable);
  // deno-lint-ignore no-explicit-any -- the tuple type is computed by the signature
  return settleAll(awaitables) as any;
}

function settleAll(awaitables: readonly Awaitable<unknown>[]): Coroutine<Settled<unknown>[]> {
  // deno-lint-ignore require-yield -- the body only spawns; the group waits for the children
  return runGroup("gatherSettled()", function* (group) {
    const results: Settled<unknown>[] = new Array(awaitables.length);
    awaitables.forEach((awaitable, i) => {
      group.spawn("gatherSettled()", settle(awaitable, results, i));
    });
    return results;
  });
}

function* settle(
  awaitable: Awaitable<unknown>,
  results: Settled<unknown>[],
  i: number,
): Coroutine<void> {
  try {
    const value = yield* owned(awaitable);
    results[i] = { status: "fulfilled", value };
  } catch (reason) {
    results[i] = { status: "rejected", reason };
  }
}

/**
 * Runs an awaitable with a time limit, like `deadline`, but on expiry returns
 * `undefined` instead of throwing (trio's `move_on_after`). The awaitable
 * runs inline under a cancel scope; a Task passed in is joined, and on expiry
 * cancelled and awaited. The scope's cancellation never escapes it.
 *
 * @typeParam T The awaitable's result.
 * @param awaitable A generator, a Task or any Awaitable.
 * @param ms The time limit: a number >= 0, or `Infinity`.
 * @returns A coroutine returning the result, or `undefined` if time ran out.
 * @throws {TypeError} If `awaitable` is not an Awaitable or `ms` not a number.
 * @throws {RangeError} If `ms` is negative or NaN.
 *
 * @example Usage
 * ```ts
 * import { Loop, sleep } from "@boucle/boucle";
 * import { moveOnAfter } from "@boucle/boucle/scope";
 * import { assertEquals } from "@std/assert";
 *
 * function* slow() {
 *   yield* sleep(1000);
 *   return "done";
 * }
 * const loop = new Loop({ virtualTime: true });
 * assertEquals(await loop.runTask(moveOnAfter(slow(), 50)), undefined);
 * assertEquals(loop.time(), 50);
 * ```
 */
export function moveOnAfter<T>(awaitable: Awaitable<T>, ms: number): Coroutine<T | undefined> {
  checkAwaitable("moveOnAfter(awaitable, ms)", awaitable);
  checkMs("moveOnAfter(awaitable, ms)", "ms", ms);
  return timed("moveOnAfter()", awaitable, ms, () => undefined);
}

/**
 * Runs an awaitable with cancellation held back: a `cancel()` of the task,
 * or the expiry of a scope around it, that arrives meanwhile is delivered at
 * the first suspension point after the shield ends. For cleanup that must
 * finish.
 *
 * @typeParam T The awaitable's result.
 * @param awaitable A generator, a Task or any Awaitable.
 * @returns A coroutine returning its result.
 * @throws {TypeError} If `awaitable` is not an Awaitable.
 *
 * @example Usage
 * ```ts
 * import { Loop, sleep } from "@boucle/boucle";
 * import { shield } from "@boucle/boucle/scope";
 * import { assertEquals } from "@std/assert";
 *
 * const log: string[] = [];
 * const loop = new Loop({ virtualTime: true });
 * const task = loop.addTask(function* () {
 *   try {
 *     yield* sleep(Infinity);
 *   } finally {
 *     yield* shield(sleep(20)); // a second cancel() cannot cut this short
 *     log.push(`cleaned up at ${loop.time()}`);
 *   }
 * }());
 * loop.addTask(function* () {
 *   yield* sleep(10);
 *   task.cancel();
 *   yield* sleep(5);
 *   task.cancel();
 * }());
 * await loop.run();
 * assertEquals(log, ["cleaned up at 30"]);
 * ```
 */
export function shield<T>(awaitable: Awaitable<T>): Coroutine<T> {
  checkAwaitable("shield(awaitable)", awaitable);
  return shieldRun(awaitable);
}
