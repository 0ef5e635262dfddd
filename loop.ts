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
 *
 * @module
 */

import {
  type Awaitable,
  Blocker,
  CancelledError,
  type Coroutine,
  currentKernel,
  type Fiber,
  FOREVER,
  Kernel,
  Task,
  WaitQueue,
} from "./_kernel.ts";
import { checkMs, show } from "./_validate.ts";

export { type Awaitable, CancelledError, type Coroutine, DeadlockError, Task } from "./_kernel.ts";

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

/** Options for `Loop.addTask()`. */
export interface TaskOptions {
  /**
   * The task's name, shown in errors and `Loop.tasks()`.
   *
   * @default {"Task-1", "Task-2", …, numbered per loop}
   */
  name?: string;
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
    return currentKernel("Loop.current").loop;
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
    if (typeof options !== "object" || options === null) {
      throw new TypeError(
        `Loop.addTask(task, options): 'options' must be an object, received ${show(options)}`,
      );
    }
    const name = options.name;
    if (name !== undefined && typeof name !== "string") {
      throw new TypeError(
        `Loop.addTask(task, options): 'options.name' must be a string, received ${show(name)}`,
      );
    }
    return this.#kernel.spawn(
      iteratorOf("Loop.addTask(task)", "task", task),
      name,
    )
      .handle as Task<T>;
  }

  /**
   * Runs until no task is left.
   *
   * @returns A promise that resolves when the last task ends. It rejects with
   * the error of a task that failed and that no one observed (joined, or read
   * with `result()`), with an `AggregateError` if there are several, with a
   * `DeadlockError` if tasks can never wake, and at once if the loop is
   * already running.
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
  run(): Promise<void> {
    return this.#kernel.run();
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
    const added = this.addTask(task, options);
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
}

/** What a task runs: a generator or iterator as is, an Awaitable's iterator, a promise's wait. */
function iteratorOf(
  where: string,
  name: string,
  task: unknown,
): Iterator<unknown, unknown, unknown> {
  if (typeof task === "object" && task !== null) {
    if (typeof (task as Iterator<unknown>).next === "function") {
      return task as Iterator<unknown, unknown, unknown>;
    }
    if (typeof (task as Awaitable<unknown>)[Symbol.iterator] === "function") {
      return (task as Awaitable<unknown>)[Symbol.iterator]();
    }
    if (typeof (task as PromiseLike<unknown>).then === "function") {
      return fromPromise(task as PromiseLike<unknown>);
    }
  }
  throw new TypeError(
    `${where}: '${name}' must be a generator, an Awaitable, an iterator or a promise, received ${
      show(task)
    }`,
  );
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
 * Runs awaitables concurrently, each as its own task, and returns their
 * results in argument order. On the first failure it cancels the others
 * (Tasks passed in included), waits for them to unwind, then throws that
 * error; the other errors are consumed. Cancelling the task running `gather`
 * does the same.
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
  awaitables.forEach((awaitable, i) => {
    if (
      typeof (awaitable as Partial<Awaitable<unknown>>)?.[Symbol.iterator] !==
        "function"
    ) {
      throw new TypeError(
        `gather(...awaitables): argument ${i} must be an Awaitable, received ${show(awaitable)}`,
      );
    }
  });
  // deno-lint-ignore no-explicit-any -- the tuple type is computed by the signature
  return gatherAll(awaitables) as any;
}

/** What the children of one `gather` share. */
interface Gathering {
  results: unknown[];
  remaining: number;
  failed: boolean;
  error: unknown;
  /** Where the gathering task parks. */
  parked: WaitQueue;
}

function* gatherAll(
  awaitables: readonly Awaitable<unknown>[],
): Coroutine<unknown[]> {
  const loop = Loop.current;
  const g: Gathering = {
    results: new Array(awaitables.length),
    remaining: awaitables.length,
    failed: false,
    error: undefined,
    parked: new WaitQueue(() => `gather() (${g.remaining} of ${awaitables.length} left)`),
  };
  const children = awaitables.map((a, i) => loop.addTask(gatherChild(g, a, i)));
  try {
    while (g.remaining > 0 && !g.failed) yield g.parked;
  } finally {
    if (g.remaining > 0) {
      awaitables.forEach((a, i) => (a instanceof Task ? a : children[i]!).cancel());
      for (const child of children) yield* joinQuietly(child);
    }
  }
  if (g.failed) throw g.error;
  return g.results;
}

function* gatherChild(
  g: Gathering,
  awaitable: Awaitable<unknown>,
  i: number,
): Coroutine<void> {
  try {
    g.results[i] = yield* awaitable;
  } catch (error) {
    if (!g.failed) {
      g.failed = true;
      g.error = error;
      g.parked.wakeOne();
    }
  } finally {
    if (--g.remaining === 0) g.parked.wakeOne();
  }
}

/**
 * Waits for a task to end, consuming its error (a child being torn down). A
 * second cancel() of the waiting task does not cut the wait short: the caller
 * is already unwinding, and must not end before its children.
 */
function* joinQuietly(task: Task<unknown>): Coroutine<void> {
  while (!task.done) {
    try {
      yield* task;
    } catch {
      // Consumed: the caller is already throwing its own error.
    }
  }
  try {
    task.result(); // observed, even if it ended between two joins
  } catch {
    // Consumed, as above.
  }
}

/** The wait on one promise: its handlers are attached as soon as it is made. */
class PromiseWait<T> extends Blocker {
  #settled = 0; // 1: fulfilled, 2: rejected
  #value: unknown = undefined;
  #fiber: Fiber | null = null;

  constructor(promise: PromiseLike<T>) {
    super(true);
    Promise.resolve(promise).then(
      (value) => this.#settle(1, value),
      (error) => this.#settle(2, error),
    );
  }
  #settle(how: number, value: unknown): void {
    this.#settled = how;
    this.#value = value;
    const fiber = this.#fiber;
    if (fiber === null) return;
    this.#fiber = null;
    fiber.kernel.wake(fiber, undefined);
  }
  park(fiber: Fiber): void {
    this.#fiber = fiber;
  }
  abandon(): void {
    this.#fiber = null;
  }
  describe(): string {
    return "fromPromise()";
  }
  *wait(): Coroutine<T> {
    if (this.#settled === 0) yield this;
    if (this.#settled === 2) throw this.#value;
    return this.#value as T;
  }
}

/**
 * Parks the task until a promise settles, then returns its value or throws
 * its reason. The promise's handlers are attached at once, so a promise that
 * rejects before the task runs is never an unhandled rejection.
 *
 * @typeParam T The promise's value.
 * @param promise A promise or any thenable.
 * @returns A coroutine returning the value.
 * @throws {TypeError} If `promise` is not a thenable.
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
 */
export function fromPromise<T>(promise: PromiseLike<T>): Coroutine<T> {
  if (typeof (promise as Partial<PromiseLike<T>>)?.then !== "function") {
    throw new TypeError(
      `fromPromise(promise): 'promise' must be a thenable, received ${show(promise)}`,
    );
  }
  return new PromiseWait(promise).wait();
}

/**
 * Runs an awaitable with a time limit: returns its result, or, after `ms` on
 * the loop's clock, cancels it, waits for it to unwind and throws a
 * `DOMException` named `"TimeoutError"` (as `@std/async`'s `deadline` does).
 * Cancelling the task running `deadline` cancels the awaitable too. No timer
 * outlives it.
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
  if (
    typeof (awaitable as Partial<Awaitable<T>>)?.[Symbol.iterator] !==
      "function"
  ) {
    throw new TypeError(
      `deadline(awaitable, ms): 'awaitable' must be an Awaitable, received ${show(awaitable)}`,
    );
  }
  checkMs("deadline(awaitable, ms)", "ms", ms);
  return withDeadline(awaitable, ms);
}

function* withDeadline<T>(awaitable: Awaitable<T>, ms: number): Coroutine<T> {
  const loop = Loop.current;
  const child = awaitable instanceof Task ? awaitable : loop.addTask(awaitable);
  let timedOut = false;
  const timer = loop.addTask(
    function* () {
      yield* sleep(ms);
      timedOut = true;
      child.cancel(`deadline of ${ms} ms passed`);
    }(),
    { name: `deadline(${ms} ms)` },
  );
  try {
    return yield* child;
  } catch (error) {
    if (timedOut && error instanceof CancelledError && child.cancelled) {
      throw new DOMException(
        `deadline(): timed out after ${ms} ms`,
        "TimeoutError",
      );
    }
    throw error;
  } finally {
    timer.cancel();
    if (!child.done) {
      child.cancel();
      yield* joinQuietly(child);
    }
  }
}
