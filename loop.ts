// Copyright 2026 the boucle authors. MIT license.
/**
 * The loop, its tasks and the waits every program needs: `interrupt`,
 * `sleep`, `sleepUntil`, `gather`, `fromPromise` and `deadline`.
 *
 * Coroutines are generator functions, driven by the loop with `next()`; the
 * scheduler itself is in `_kernel.ts`, whose header states its invariants.
 *
 * Decisions where the design leaves room:
 * - `run()` runs the tasks synchronously until the first wait, like any
 *   `async` function; it returns to the host after about 5 ms of work.
 * - `interrupt()`, `sleep()` and `sleepUntil()` return Awaitables (one-shot
 *   iterators, half the cost of generators), not `Coroutine`s; to drive one
 *   by hand, call `[Symbol.iterator]()` and then `next()`.
 * - Each `cancel()` throws one `CancelledError`; a task that catches it and
 *   goes on is not cancelled, and a later `cancel()` throws again.
 * - A task that joins a cancelled task and lets its `CancelledError` escape
 *   ends cancelled too, and counts as an unobserved failure if nobody joins it:
 *   only a task's own cancellation is never reported.
 * - A `deadline` whose task received a wider cancellation while it was open
 *   (its own `cancel()`, an outer scope's expiry) never turns its own expiry
 *   into a `TimeoutError`: it throws the wider one, even if cleanup code
 *   swallowed it (asyncio's `uncancel()` rule).
 * - A Task handed to `gather` or `deadline` is theirs to observe from the
 *   call on: its error never goes to `run({ onError })`. If it fails while
 *   they cancel it, that error replaces the cancellation.
 * - `run({ until })`: the abort cancels every live task at once, from the
 *   signal's listener (also when a task of the loop aborts it); tasks added
 *   afterwards run to their end.
 *
 * @module
 */

import {
  type Awaitable,
  claim,
  type Coroutine,
  currentKernel,
  type Fiber,
  FOREVER,
  iteratorOf,
  Kernel,
  owned,
  PromiseWait,
  runGroup,
  type RunOptions,
  stateOf,
  Task,
  timed,
  waitingOn,
} from "./_kernel.ts";
import { checkAwaitable, checkAwaitables, checkMs, checkTaskOptions, show } from "./_validate.ts";

export {
  type Awaitable,
  CancelledError,
  type Coroutine,
  DeadlockError,
  type RunOptions,
  Task,
} from "./_kernel.ts";

/** Options for `new Loop()`. */
export interface LoopOptions {
  /**
   * Use a virtual clock: `time()` starts at 0 and, when no task is ready and
   * no promise or I/O is pending, jumps straight to the next timer. An hour
   * of sleeps runs in milliseconds, with the same interleaving every run.
   *
   * @default {false}
   */
  virtualTime?: boolean;
}

/** Options for `Loop.addTask()`, `Loop.submit()` and `TaskGroup.spawn()`. */
export interface TaskOptions {
  /**
   * The task's name, shown in errors and `Loop.tasks()`.
   *
   * @default {"Task-1", "Task-2", …, numbered per loop}
   */
  name?: string;
  /**
   * Aborting it cancels the task, with `signal.reason` as the
   * `CancelledError`'s reason; already aborted, the task never runs. The
   * listener is removed when the task ends.
   */
  signal?: AbortSignal;
}

/**
 * A cooperative event loop: it drives its tasks, generators, with `next()`,
 * one step at a time, and sleeps on the host when none of them can go on.
 *
 * @example The lesson's round robin
 * ```ts
 * import { type Coroutine, interrupt, Loop } from "@boucle/boucle";
 * import { assertEquals } from "@std/assert";
 *
 * const log: string[] = [];
 * function* count(name: string, n: number): Coroutine<void> {
 *   for (let i = 1; i <= n; i++) {
 *     log.push(`${name}${i}`);
 *     yield* interrupt();
 *   }
 * }
 * const loop = new Loop();
 * loop.addTask(count("a", 3));
 * loop.addTask(count("b", 2));
 * await loop.run();
 * assertEquals(log, ["a1", "b1", "a2", "b2", "a3"]);
 * ```
 */
export class Loop {
  #kernel: Kernel;

  /**
   * Makes a loop; nothing runs until `run()` or `runTask()`.
   *
   * @param options Set `virtualTime` for a virtual clock.
   */
  constructor(options: LoopOptions = {}) {
    if (typeof options !== "object" || options === null) {
      throw new TypeError(
        `new Loop(options): 'options' must be an object, received ${show(options)}`,
      );
    }
    const { virtualTime = false } = options;
    if (typeof virtualTime !== "boolean") {
      throw new TypeError(
        `new Loop(options): 'options.virtualTime' must be a boolean, received ${show(virtualTime)}`,
      );
    }
    this.#kernel = new Kernel(this, virtualTime);
  }

  /**
   * The loop whose task is running right now.
   *
   * @throws {Error} When read outside a task run by a loop.
   *
   * @example Usage
   * ```ts
   * import { type Coroutine, Loop } from "@boucle/boucle";
   * import { assertStrictEquals, assertThrows } from "@std/assert";
   *
   * const loop = new Loop();
   * function* main(): Coroutine<Loop> {
   *   return Loop.current;
   * }
   * assertStrictEquals(await loop.runTask(main()), loop);
   * assertThrows(() => Loop.current, Error, "no loop is running");
   * ```
   */
  static get current(): Loop {
    return currentKernel("Loop.current").loop as Loop;
  }

  /**
   * Adds a task; it first runs in the loop's next cycle. Accepts a generator,
   * any Awaitable (a `Task`, a `Waiter`, …), an iterator, or a promise.
   *
   * @typeParam T The value the task returns.
   * @param task What the task runs.
   * @param options Set `name` to name the task.
   * @returns The task.
   * @throws {TypeError} If `task` is none of those.
   *
   * @example Usage
   * ```ts
   * import { Loop, sleep } from "@boucle/boucle";
   * import { assertEquals } from "@std/assert";
   *
   * const loop = new Loop({ virtualTime: true });
   * const fromPromise = loop.addTask(Promise.resolve(1));
   * const sleeper = loop.addTask(sleep(5), { name: "sleeper" });
   * await loop.run();
   * assertEquals(fromPromise.result(), 1);
   * assertEquals(sleeper.done, true);
   * ```
   */
  addTask<T>(
    task: Awaitable<T> | Iterator<unknown, T, unknown> | PromiseLike<T>,
    options: TaskOptions = {},
  ): Task<T> {
    return this.#add("Loop.addTask", task, options).handle as Task<T>;
  }

  /** Checks the arguments of `where`, then spawns the task. */
  #add(where: string, task: unknown, options: TaskOptions): Fiber {
    const { name, signal } = checkTaskOptions(`${where}(task, options)`, options);
    return this.#kernel.spawn(iteratorOf(`${where}(task)`, "task", task), name, signal);
  }

  /**
   * Adds a task from anywhere (promise code, another loop, a task of this
   * loop) and returns a promise of its outcome, which observes the task's
   * error. On a loop that is not running, the task starts at the next
   * `run()`, as with `addTask()`.
   *
   * Awaiting that promise from a task of a virtual-time loop (through
   * `fromPromise`) keeps that loop's clock still while it is pending: if the
   * submitted task needs that clock, use real time.
   *
   * @typeParam T The value the task returns.
   * @param task What the task runs, as for `addTask()`.
   * @param options `name`, and a `signal` that cancels the task.
   * @returns A promise of the task's value; it rejects with the task's error
   * (a `CancelledError` if it was cancelled), or with a `TypeError` for a bad
   * argument.
   *
   * @example From a Deno.serve handler, or any async code
   * ```ts
   * import { Loop, sleep } from "@boucle/boucle";
   * import { assertEquals } from "@std/assert";
   *
   * const loop = new Loop();
   * const stop = new AbortController();
   * const running = loop.run({ until: stop.signal });
   * const answer = await loop.submit(function* () {
   *   yield* sleep(1);
   *   return 42;
   * }());
   * assertEquals(answer, 42);
   * stop.abort();
   * await running;
   * ```
   */
  submit<T>(
    task: Awaitable<T> | Iterator<unknown, T, unknown> | PromiseLike<T>,
    options: TaskOptions = {},
  ): Promise<T> {
    let fiber: Fiber;
    try {
      fiber = this.#add("Loop.submit", task, options);
    } catch (error) {
      return Promise.reject(error);
    }
    const added = fiber.handle as Task<T>;
    return new Promise<T>((resolve, reject) => {
      this.#kernel.onEnd(fiber, () => {
        try {
          resolve(added.result()); // observes the error
        } catch (error) {
          reject(error);
        }
      });
    });
  }

  /**
   * Runs until no task is left.
   *
   * With `options.until`, the loop is a service: until that signal aborts,
   * having no task, or only parked ones, is neither the end nor a deadlock;
   * it sleeps on the host (no CPU) until a task is added (`submit`, `addTask`)
   * or woken. When the signal aborts, every live task is cancelled and
   * awaited, then `run()` settles as usual. With `options.onError`, a failure
   * that no one can observe any more (a task outside any task group that
   * ended with no task joining it) is handed to it at once instead of making
   * `run()` reject at the end; an error thrown by `onError` makes `run()`
   * reject at the end.
   *
   * @param options `until` and `onError`.
   * @returns A promise that resolves when the last task ends. It rejects with
   * the error of a task that failed and that no one observed (joined, or read
   * with `result()`), with an `AggregateError` if there are several, with a
   * `DeadlockError` if tasks can never wake, and at once if the loop is
   * already running or an option is bad.
   *
   * @example Usage
   * ```ts
   * import { Loop, sleep } from "@boucle/boucle";
   * import { assertEquals } from "@std/assert";
   *
   * const loop = new Loop({ virtualTime: true });
   * loop.addTask(sleep(3_600_000));
   * await loop.run();
   * assertEquals(loop.time(), 3_600_000);
   * ```
   */
  run(options: RunOptions = {}): Promise<void> {
    try {
      checkRunOptions(options);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#kernel.run(options);
  }

  /**
   * Adds a task, runs the loop until no task is left, and returns that task's
   * result.
   *
   * @typeParam T The value the task returns.
   * @param task What the task runs, as for `addTask()`.
   * @param options Set `name` to name the task.
   * @returns The task's value; rejects with its error, or as `run()` does.
   *
   * @example Usage
   * ```ts
   * import { gather, Loop, sleep } from "@boucle/boucle";
   * import { assertEquals } from "@std/assert";
   *
   * function* after(ms: number, value: string) {
   *   yield* sleep(ms);
   *   return value;
   * }
   * const loop = new Loop({ virtualTime: true });
   * assertEquals(await loop.runTask(gather(after(20, "a"), after(10, "b"))), ["a", "b"]);
   * ```
   */
  async runTask<T>(
    task: Awaitable<T> | Iterator<unknown, T, unknown> | PromiseLike<T>,
    options?: TaskOptions,
  ): Promise<T> {
    if (this.#kernel.running) {
      throw new Error("Loop.runTask(): this loop is already running");
    }
    const added = this.#add("Loop.runTask", task, options ?? {}).handle as Task<T>;
    await this.run();
    return added.result();
  }

  /**
   * The loop's clock, in milliseconds: `performance.now()`, or the virtual
   * clock (from 0) with `virtualTime`.
   *
   * @returns The current time in ms.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { assertEquals } from "@std/assert";
   *
   * assertEquals(new Loop({ virtualTime: true }).time(), 0);
   * ```
   */
  time(): number {
    return this.#kernel.now();
  }

  /**
   * The tasks that have not ended yet, in the order they were added.
   *
   * @returns The live tasks.
   *
   * @example Usage
   * ```ts
   * import { Loop, sleep } from "@boucle/boucle";
   * import { assertEquals } from "@std/assert";
   *
   * const loop = new Loop({ virtualTime: true });
   * loop.addTask(sleep(1), { name: "a" });
   * assertEquals(loop.tasks().map((task) => task.name), ["a"]);
   * await loop.run();
   * assertEquals(loop.tasks(), []);
   * ```
   */
  tasks(): Task<unknown>[] {
    return this.#kernel.live().map((fiber) => fiber.handle);
  }

  /**
   * A text table of the live tasks, for a person reading why a program is
   * stuck: each task's name, its state (`ready`, `running`, `parked`), what it
   * waits on (as `Task.waitingOn` says it), the task group it belongs to (the
   * name of the group's owner) and how long, on the loop clock, it has waited
   * (approximate under real time).
   *
   * @returns One header line, then one line per live task.
   *
   * @example Usage
   * ```ts
   * import { Loop, sleep } from "@boucle/boucle";
   * import { assertEquals } from "@std/assert";
   *
   * const loop = new Loop({ virtualTime: true });
   * loop.addTask(sleep(100), { name: "sleeper" });
   * loop.addTask(function* () {
   *   yield* sleep(30);
   *   const [header, sleeper] = loop.dump().split("\n");
   *   assertEquals(header!.split(/\s{2,}/), ["task", "state", "waits on", "group", "waited (ms)"]);
   *   assertEquals(sleeper!.split(/\s{2,}/), ["sleeper", "parked", "sleep()", "-", "30"]);
   * }());
   * await loop.run();
   * ```
   */
  dump(): string {
    const kernel = this.#kernel;
    const now = kernel.now();
    const rows = [["task", "state", "waits on", "group", "waited (ms)"]];
    for (const fiber of kernel.live()) {
      const waits = waitingOn(fiber);
      rows.push([
        fiber.name,
        stateOf(fiber),
        waits ?? "-",
        fiber.group === null ? "-" : fiber.group.owner.name,
        waits === null ? "-" : String(Math.max(0, Math.round(now - fiber.parkedAt))),
      ]);
    }
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
    return rows.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd())
      .join("\n");
  }
}

function checkRunOptions(options: RunOptions): void {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Loop.run(options): 'options' must be an object, received ${show(options)}`,
    );
  }
  if (options.until !== undefined && !(options.until instanceof AbortSignal)) {
    throw new TypeError(
      `Loop.run(options): 'options.until' must be an AbortSignal, received ${show(options.until)}`,
    );
  }
  if (options.onError !== undefined && typeof options.onError !== "function") {
    throw new TypeError(
      `Loop.run(options): 'options.onError' must be a function, received ${show(options.onError)}`,
    );
  }
}

/**
 * Yields once: the task goes to the back of the ready queue and the others
 * get a turn (the lesson's `interrupt`).
 *
 * @returns An Awaitable to use with `yield*`.
 *
 * @example Usage
 * ```ts
 * import { gather, interrupt, Loop } from "@boucle/boucle";
 * import { assertEquals } from "@std/assert";
 *
 * const log: number[] = [];
 * function* push(n: number) {
 *   log.push(n);
 *   yield* interrupt();
 *   log.push(n + 10);
 * }
 * await new Loop().runTask(gather(push(1), push(2)));
 * assertEquals(log, [1, 2, 11, 12]);
 * ```
 */
export function interrupt(): Awaitable<void> {
  return new OneYield();
}

const YIELDED: IteratorResult<undefined, void> = Object.freeze({ value: undefined, done: false });
const RETURNED: IteratorResult<undefined, void> = Object.freeze({ value: undefined, done: true });
const SLEEP_FOREVER: IteratorResult<unknown, void> = Object.freeze({ value: FOREVER, done: false });

/**
 * One suspension as a plain iterator: `next()` yields once (a bare yield, or
 * a park on the timers), then returns. `interrupt()`, `sleep()` and
 * `sleepUntil()` return these rather than generators: that halves the cost
 * of a switch and saves 100 bytes per sleeper. It is one class, not a base
 * and subclasses: a derived constructor made `interrupt()` 1.5x slower.
 */
class OneYield implements Iterator<unknown, void, unknown> {
  #yielded = false;
  /** `undefined` for `interrupt()`; else a delay or, if absolute, a time. */
  readonly #time: number | undefined;
  readonly #absolute: boolean;

  constructor(time?: number, absolute = false) {
    this.#time = time;
    this.#absolute = absolute;
  }
  next(): IteratorResult<unknown, void> {
    if (this.#yielded) return RETURNED;
    this.#yielded = true;
    const time = this.#time;
    if (time === undefined) return YIELDED;
    if (time === Infinity) return SLEEP_FOREVER;
    const kernel = currentKernel(this.#absolute ? "sleepUntil()" : "sleep()");
    const now = kernel.now();
    if (this.#absolute && time < now) return YIELDED; // in the past: yields once
    kernel.current!.value = this.#absolute ? time : now + time; // the deadline, for the heap
    return kernel.sleepStep;
  }
  return(value?: unknown): IteratorResult<unknown, void> {
    this.#yielded = true;
    return { value: value as undefined, done: true };
  }
  throw(error: unknown): never {
    this.#yielded = true;
    throw error;
  }
  [Symbol.iterator](): this {
    return this;
  }
}

/**
 * Parks the task for `ms` milliseconds of the loop's clock. Other tasks run
 * meanwhile; the loop sleeps on the host if none can. `sleep(Infinity)` parks
 * until the task is cancelled.
 *
 * @param ms A number >= 0, or `Infinity`.
 * @returns An Awaitable to use with `yield*`.
 * @throws {TypeError} If `ms` is not a number.
 * @throws {RangeError} If `ms` is negative or NaN.
 *
 * @example Usage
 * ```ts
 * import { Loop, sleep } from "@boucle/boucle";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new Loop({ virtualTime: true });
 * await loop.runTask(sleep(1500));
 * assertEquals(loop.time(), 1500);
 * ```
 */
export function sleep(ms: number): Awaitable<void> {
  return new OneYield(checkMs("sleep(ms)", "ms", ms));
}

/**
 * Parks the task until the loop's clock reaches `time` (see `Loop.time()`).
 * A time in the past yields once.
 *
 * @param time A time on the loop's clock, in ms.
 * @returns An Awaitable to use with `yield*`.
 * @throws {TypeError} If `time` is not a number.
 * @throws {RangeError} If `time` is NaN.
 *
 * @example Usage
 * ```ts
 * import { Loop, sleepUntil } from "@boucle/boucle";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new Loop({ virtualTime: true });
 * await loop.runTask(sleepUntil(250));
 * assertEquals(loop.time(), 250);
 * ```
 */
export function sleepUntil(time: number): Awaitable<void> {
  if (typeof time !== "number") {
    throw new TypeError(`sleepUntil(time): 'time' must be a number, received ${show(time)}`);
  }
  if (Number.isNaN(time)) {
    throw new RangeError("sleepUntil(time): 'time' must be a number, received NaN");
  }
  return new OneYield(time, true);
}

/**
 * Runs awaitables concurrently, each as its own task in a task group, and
 * returns their results in argument order. On the first failure it cancels
 * the others (Tasks passed in included), waits for them to unwind, then
 * throws: that error as is, or an `AggregateError` of every error in the
 * order they happened (errors thrown by cleanup included) if there were
 * several. Cancelling the task running `gather` cancels them all and waits
 * for them too.
 *
 * @typeParam A The awaitables' types.
 * @param awaitables Generators, Tasks or any Awaitables.
 * @returns A coroutine returning the results, typed as a tuple.
 * @throws {TypeError} If an argument is not an Awaitable.
 *
 * @example Usage
 * ```ts
 * import { gather, Loop, sleep } from "@boucle/boucle";
 * import { assertEquals } from "@std/assert";
 *
 * function* after<T>(ms: number, value: T) {
 *   yield* sleep(ms);
 *   return value;
 * }
 * function* main() {
 *   const [n, s] = yield* gather(after(20, 1), after(10, "x"));
 *   return `${n}${s}`;
 * }
 * const loop = new Loop({ virtualTime: true });
 * assertEquals(await loop.runTask(main()), "1x");
 * assertEquals(loop.time(), 20);
 * ```
 */
export function gather<const A extends readonly Awaitable<unknown>[]>(
  ...awaitables: A
): Coroutine<
  { -readonly [K in keyof A]: A[K] extends Awaitable<infer R> ? R : never }
> {
  checkAwaitables("gather(...awaitables)", awaitables);
  for (const awaitable of awaitables) if (awaitable instanceof Task) claim(awaitable);
  // deno-lint-ignore no-explicit-any -- the tuple type is computed by the signature
  return gatherAll(awaitables) as any;
}

function gatherAll(awaitables: readonly Awaitable<unknown>[]): Coroutine<unknown[]> {
  // deno-lint-ignore require-yield -- the body only spawns; the group waits for the children
  return runGroup("gather()", function* (group) {
    const results = new Array(awaitables.length);
    awaitables.forEach((awaitable, i) => group.spawn("gather()", collect(awaitable, results, i)));
    return results;
  });
}

function* collect(awaitable: Awaitable<unknown>, results: unknown[], i: number): Coroutine<void> {
  results[i] = yield* owned(awaitable);
}

/**
 * Parks the task until a promise settles, then returns its value or throws
 * its reason. The promise's handlers are attached at once, so a promise that
 * rejects before the task runs is never an unhandled rejection.
 *
 * Given a function instead, calls it with an `AbortSignal` when the coroutine
 * first runs, and waits on the promise it returns: when the waiting task is
 * cancelled (or a `deadline`/`moveOnAfter` around it expires), the signal
 * aborts with the `CancelledError` as its reason and the task goes on
 * unwinding at once; the promise's later rejection is consumed. A promise
 * that already settled is not aborted.
 *
 * @typeParam T The promise's value.
 * @param promise A promise or any thenable, or a function
 * `(signal: AbortSignal) => PromiseLike<T>`.
 * @returns A coroutine returning the value.
 * @throws {TypeError} If `promise` is neither a thenable nor a function, or
 * the function returns no thenable.
 *
 * @example Usage
 * ```ts
 * import { fromPromise, Loop } from "@boucle/boucle";
 * import { assertEquals } from "@std/assert";
 *
 * function* main() {
 *   const response = yield* fromPromise(Promise.resolve("hello"));
 *   return response.toUpperCase();
 * }
 * assertEquals(await new Loop().runTask(main()), "HELLO");
 * ```
 *
 * @example A timeout that really stops the work
 * ```ts
 * import { deadline, fromPromise, Loop } from "@boucle/boucle";
 * import { assertEquals, assertRejects } from "@std/assert";
 *
 * let aborted = false;
 * function work(signal: AbortSignal): Promise<string> {
 *   return new Promise((resolve, reject) => {
 *     const timer = setTimeout(() => resolve("late"), 1000);
 *     signal.addEventListener("abort", () => {
 *       aborted = true;
 *       clearTimeout(timer);
 *       reject(signal.reason);
 *     });
 *   });
 * }
 * const loop = new Loop();
 * await assertRejects(() => loop.runTask(deadline(fromPromise(work), 10)), DOMException);
 * assertEquals(aborted, true);
 * ```
 */
export function fromPromise<T>(
  promise: PromiseLike<T> | ((signal: AbortSignal) => PromiseLike<T>),
): Coroutine<T> {
  if (typeof promise === "function") return withSignal(promise);
  if (typeof (promise as Partial<PromiseLike<T>>)?.then !== "function") {
    throw new TypeError(
      `fromPromise(promise): 'promise' must be a thenable or a function (signal) => thenable, received ${
        show(promise)
      }`,
    );
  }
  return new PromiseWait(promise).wait();
}

function* withSignal<T>(start: (signal: AbortSignal) => PromiseLike<T>): Coroutine<T> {
  const controller = new AbortController();
  const promise = start(controller.signal);
  if (typeof (promise as Partial<PromiseLike<T>>)?.then !== "function") {
    throw new TypeError(
      `fromPromise(fn): 'fn' must return a thenable, returned ${show(promise)}`,
    );
  }
  return yield* new PromiseWait(promise, controller).wait();
}

/**
 * Runs an awaitable with a time limit: returns its result, or, after `ms` on
 * the loop's clock, cancels it, waits for it to unwind and throws a
 * `DOMException` named `"TimeoutError"` (as `@std/async`'s `deadline` does).
 *
 * A generator or other Awaitable runs inline in the calling task, under a
 * cancel scope: no task is spawned, and on expiry the task is cancelled at
 * its suspension point inside the scope. A Task passed in is joined, and on
 * expiry cancelled and awaited. If the awaitable ends first, the pending
 * expiry is withdrawn and its timer removed. Nested, only the scope whose
 * time ran out converts its cancellation; an outer one passes through inner
 * ones as `CancelledError`, and so does a `cancel()` of the task. `ms = 0`
 * expires at the first suspension, on both clocks.
 *
 * @typeParam T The awaitable's result.
 * @param awaitable A generator, a Task or any Awaitable.
 * @param ms The time limit: a number >= 0, or `Infinity`.
 * @returns A coroutine returning the awaitable's result.
 * @throws {TypeError} If `awaitable` is not an Awaitable or `ms` not a number.
 * @throws {RangeError} If `ms` is negative or NaN.
 *
 * @example Usage
 * ```ts
 * import { deadline, Loop, sleep } from "@boucle/boucle";
 * import { assertRejects } from "@std/assert";
 *
 * const loop = new Loop({ virtualTime: true });
 * await assertRejects(() => loop.runTask(deadline(sleep(1000), 50)), DOMException, "timed out");
 * ```
 */
export function deadline<T>(awaitable: Awaitable<T>, ms: number): Coroutine<T> {
  checkAwaitable("deadline(awaitable, ms)", awaitable);
  checkMs("deadline(awaitable, ms)", "ms", ms);
  return timed("deadline()", awaitable, ms, () => {
    throw new DOMException(`deadline(): timed out after ${ms} ms`, "TimeoutError");
  });
}
