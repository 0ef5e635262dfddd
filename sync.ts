// Copyright 2026 the boucle authors. MIT license.
/**
 * Waiting primitives for the tasks of one loop: `Waiter` (the lesson's
 * countdown), `Event`, `Lock`, `Semaphore`, `Queue`, `Condition` and
 * `Barrier`.
 *
 * All are thin layers over the kernel's one wait queue: a task that must wait
 * parks there and costs nothing until it is woken. Waking commits: a lock,
 * permit or item handed to a task is its own even if the task is cancelled
 * before it runs again (it then gets the `CancelledError` at its next wait,
 * and `using` gives the lock back). A task cancelled while parked leaves the
 * queue and is handed nothing, so a cancelled `get` loses no item and a
 * cancelled `put` inserts nothing.
 *
 * Decisions where the design leaves room:
 * - `acquire()` returns a one-shot Awaitable (no generator: a generator
 *   object is `Disposable`, so `using _ = lock.acquire();` would compile and
 *   lock nothing). Without `yield*` that line is a type error, and in plain
 *   JavaScript a `TypeError` at run time. Each `yield*` on it is a new
 *   acquisition. It records which loop holds the permit, so it runs only
 *   inside a task (the other primitives need a task only to wait).
 * - Names: every primitive takes a last `{ name }`, shown in what a parked
 *   task waits on: `Queue("jobs").get()`, `Lock("db").acquire()`,
 *   `Waiter("boot", count=2)`; unnamed ones read `Queue.get()`. A
 *   `Condition` that makes its own lock gives it its name.
 * - One loop per primitive: a task that would park on a primitive where a
 *   task of another loop is parked, or that a task of another loop holds (a
 *   `Lock` or `Semaphore` permit), gets an `Error` naming the primitive
 *   instead of parking. So does taking a `Semaphore` permit while another
 *   loop's tasks hold the others. A primitive nobody waits on or holds may
 *   move to another loop (a test's module-level lock, say).
 * - `Queue.close()`: `put`, `tryPut` (rather than returning `false`, which
 *   means "full") and parked putters throw `QueueClosedError`; the putters'
 *   items are dropped. `get` and `tryGet` return what is left, then throw it;
 *   parked getters are woken with it. A second `close()` does nothing.
 * - `Condition` (asyncio's): `wait`, `waitFor`, `notify` and `notifyAll`
 *   need its lock held (they check that it is locked, not by whom) and throw
 *   an `Error` if not. `wait` always re-acquires the lock before it returns
 *   or throws, a cancelled wait included; a waiter that was notified and is
 *   then cancelled passes its notification on to the next waiter, so none is
 *   lost. `notify(n)` takes an integer >= 0 or `Infinity`. `waitFor`
 *   returns the predicate's truthy value.
 * - `Barrier(n)`: `n` is an integer >= 1. Arrival indices are handed out in
 *   arrival order among the tasks released together, the last arrival gets
 *   `n - 1` and returns without parking; a cancelled waiter leaves its place,
 *   so the indices of a round are always `0` to `n - 1`.
 *
 * @module
 */

import {
  type Awaitable,
  CancelledError,
  type Coroutine,
  currentFiber,
  type Fiber,
  WaitQueue,
} from "./_kernel.ts";
import { checkCount, show } from "./_validate.ts";

/** Options every primitive takes as its last argument. */
export interface PrimitiveOptions {
  /**
   * A name shown in what a task parked on the primitive waits on
   * (`DeadlockError`, `Task.waitingOn`, `loop.dump()`): `Queue("jobs").get()`.
   *
   * @default {undefined}
   */
  name?: string;
}

/** `Kind` or `Kind("name")`, after checking the options. */
function labelOf(kind: string, where: string, options: PrimitiveOptions | undefined): string {
  if (options === undefined) return kind;
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`${where}: 'options' must be an object, received ${show(options)}`);
  }
  const name: unknown = options.name;
  if (name === undefined) return kind;
  if (typeof name !== "string") {
    throw new TypeError(`${where}: 'options.name' must be a string, received ${show(name)}`);
  }
  return `${kind}(${JSON.stringify(name)})`;
}

/**
 * Throws if a task of another loop than the running task's is parked in
 * `queue`. Called only on the way to parking; nothing to check when the
 * queue is empty. Returns the running fiber when it had to look it up.
 */
function checkOneLoop(queue: WaitQueue): Fiber | null {
  const first = queue.first;
  if (first === null) return null;
  const fiber = currentFiber(queue.describe());
  if (first.kernel !== fiber.kernel) {
    throw new Error(
      `${queue.describe()}: task "${first.name}" of another loop waits on it; ` +
        "a primitive is used by the tasks of one loop only",
    );
  }
  return fiber;
}

/**
 * The lesson's countdown: `set()` counts down from `n`, and `yield* waiter`
 * parks until the count reaches zero.
 *
 * @example Usage
 * ```ts
 * import { gather, Loop } from "@boucle/boucle";
 * import { Waiter } from "@boucle/boucle/sync";
 * import { assertEquals } from "@std/assert";
 *
 * const log: string[] = [];
 * const waiter = new Waiter(2);
 * function* job() {
 *   yield* waiter;
 *   log.push("released");
 * }
 * function* countDown() {
 *   for (let i = 0; i < 2; i++) {
 *     log.push(`set ${i}`);
 *     waiter.set();
 *     yield;
 *   }
 * }
 * await new Loop().runTask(gather(job(), countDown()));
 * assertEquals(log, ["set 0", "set 1", "released"]);
 * ```
 */
export class Waiter implements Awaitable<void> {
  #count: number;
  readonly #label: string;
  #parked: WaitQueue;

  /**
   * Makes a countdown from `n`.
   *
   * @param n How many `set()` calls release the waiters: an integer >= 0.
   * @param options `name`, shown in what a waiting task waits on:
   * `Waiter("boot", count=2)`.
   * @throws {RangeError} If `n` is negative or not an integer.
   * @throws {TypeError} If `n` is not a number, or `options.name` not a string.
   */
  constructor(n = 1, options?: PrimitiveOptions) {
    this.#count = checkCount("new Waiter(n)", "n", n, 0);
    const label = labelOf("Waiter", "new Waiter(n, options)", options);
    this.#label = label === "Waiter" ? "Waiter(" : `${label.slice(0, -1)}, `;
    this.#parked = new WaitQueue(() => `${this.#label}count=${this.#count})`);
  }

  /**
   * How many `set()` calls are still needed.
   *
   * @example Usage
   * ```ts
   * import { Waiter } from "@boucle/boucle/sync";
   * import { assertEquals } from "@std/assert";
   *
   * const waiter = new Waiter(2);
   * waiter.set();
   * assertEquals(waiter.count, 1);
   * ```
   */
  get count(): number {
    return this.#count;
  }

  /**
   * Counts down by one; at zero, wakes every waiting task. No effect at zero.
   *
   * @example Usage
   * ```ts
   * import { Waiter } from "@boucle/boucle/sync";
   * import { assertEquals } from "@std/assert";
   *
   * const waiter = new Waiter(1);
   * waiter.set();
   * waiter.set();
   * assertEquals(waiter.count, 0);
   * ```
   */
  set(): void {
    if (this.#count === 0) return;
    if (--this.#count === 0) this.#parked.wakeAll();
  }

  /**
   * Waits with `yield* waiter` until the count is zero.
   *
   * @returns A coroutine to use with `yield*`.
   * @throws {Error} If a task of another loop waits on this waiter.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { Waiter } from "@boucle/boucle/sync";
   *
   * await new Loop().runTask(new Waiter(0)); // already at zero: returns at once
   * ```
   */
  *[Symbol.iterator](): Coroutine<void> {
    if (this.#count > 0) {
      checkOneLoop(this.#parked);
      yield this.#parked;
    }
  }
}

/**
 * A flag tasks can wait for: `set()` wakes every task in `wait()`.
 *
 * @example Usage
 * ```ts
 * import { gather, Loop, sleep } from "@boucle/boucle";
 * import { Event } from "@boucle/boucle/sync";
 * import { assertEquals } from "@std/assert";
 *
 * const ready = new Event();
 * const log: string[] = [];
 * function* waitFor(name: string) {
 *   yield* ready.wait();
 *   log.push(name);
 * }
 * function* opener() {
 *   yield* sleep(10);
 *   ready.set();
 * }
 * await new Loop({ virtualTime: true }).runTask(gather(waitFor("a"), waitFor("b"), opener()));
 * assertEquals(log, ["a", "b"]);
 * ```
 */
export class Event implements Awaitable<void> {
  #isSet = false;
  #parked: WaitQueue;

  /**
   * Makes an event that is not set.
   *
   * @param options `name`, shown in what a waiting task waits on:
   * `Event("ready").wait()`.
   * @throws {TypeError} If `options.name` is not a string.
   */
  constructor(options?: PrimitiveOptions) {
    const what = `${labelOf("Event", "new Event(options)", options)}.wait()`;
    this.#parked = new CountingQueue(() => what);
  }

  /**
   * Whether the event is set.
   *
   * @example Usage
   * ```ts
   * import { Event } from "@boucle/boucle/sync";
   * import { assertEquals } from "@std/assert";
   *
   * const event = new Event();
   * event.set();
   * assertEquals(event.isSet, true);
   * ```
   */
  get isSet(): boolean {
    return this.#isSet;
  }

  /**
   * Sets the event and wakes every task waiting at this moment, even if
   * `clear()` follows before they run.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { Event } from "@boucle/boucle/sync";
   *
   * const event = new Event();
   * event.set();
   * await new Loop().runTask(event.wait()); // set: returns at once
   * ```
   */
  set(): void {
    if (this.#isSet) return;
    this.#isSet = true;
    this.#parked.wakeAll();
  }

  /**
   * Unsets the event: later `wait()` calls park again.
   *
   * @example Usage
   * ```ts
   * import { Event } from "@boucle/boucle/sync";
   * import { assertEquals } from "@std/assert";
   *
   * const event = new Event();
   * event.set();
   * event.clear();
   * assertEquals(event.isSet, false);
   * ```
   */
  clear(): void {
    this.#isSet = false;
  }

  /**
   * Parks the task until the event is set; returns at once if it is.
   *
   * @returns A coroutine to use with `yield*`.
   * @throws {Error} If a task of another loop waits on this event.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { Event } from "@boucle/boucle/sync";
   *
   * const event = new Event();
   * const loop = new Loop();
   * loop.addTask(event.wait());
   * loop.addTask(function* () {
   *   event.set();
   * }());
   * await loop.run();
   * ```
   */
  *wait(): Coroutine<void> {
    if (!this.#isSet) {
      checkOneLoop(this.#parked);
      yield this.#parked;
    }
  }

  /**
   * `yield* event` is `yield* event.wait()`.
   *
   * @returns A coroutine to use with `yield*`.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { Event } from "@boucle/boucle/sync";
   *
   * const event = new Event();
   * event.set();
   * await new Loop().runTask(event);
   * ```
   */
  [Symbol.iterator](): Coroutine<void> {
    return this.wait();
  }
}

/** The state of a `Semaphore` or `Lock`, shared with its acquisitions and guards. */
class Permits {
  value: number;
  readonly max: number;
  readonly kind: string;
  /** `Lock.acquire()` or `Semaphore("pool").acquire()`. */
  readonly what: string;
  readonly parked: WaitQueue;
  /** What an acquisition that must wait yields: made once. */
  readonly park: IteratorResult<unknown, Disposable>;
  /** The kernel of the tasks holding permits (the last to take one). */
  owner: unknown = null;

  constructor(kind: string, n: number, options: PrimitiveOptions | undefined) {
    this.kind = kind;
    this.value = this.max = checkCount(`new ${kind}(n)`, "n", n, 0);
    const what = this.what = `${
      labelOf(kind, kind === "Lock" ? "new Lock(options)" : "new Semaphore(n, options)", options)
    }.acquire()`;
    this.parked = new WaitQueue(() => what);
    this.park = Object.freeze({ value: this.parked, done: false });
  }

  release(): void {
    const first = this.parked.first;
    if (first !== null) {
      this.owner = first.kernel; // handed straight over
      this.parked.wakeOne();
      return;
    }
    if (this.value >= this.max) {
      throw new Error(
        this.kind === "Lock"
          ? `${this.what.slice(0, -"acquire()".length)}release(): the lock is not held`
          : `${
            this.what.slice(0, -"acquire()".length)
          }release(): released more than ${this.max} permits`,
      );
    }
    this.value++;
  }

  /** Takes a permit for a task of `kernel` if one is free. */
  tryTake(kernel: unknown): boolean {
    if (this.value === 0) return false;
    this.checkOwner(kernel);
    this.value--;
    this.owner = kernel;
    return true;
  }

  /** Throws if tasks of another loop than `kernel`'s hold permits. */
  checkOwner(kernel: unknown): void {
    if (this.value < this.max && this.owner !== kernel) {
      throw new Error(
        `${this.what}: held by a task of another loop; ` +
          "a primitive is used by the tasks of one loop only",
      );
    }
  }
}

/** A semaphore's state, for `Condition` (set in `Semaphore`'s static block). */
let permitsOf: (semaphore: Semaphore) => Permits;

const FRESH = 0;
const PARKED = 1;
const ENDED = 2;

/**
 * One acquisition, as a plain iterator rather than a generator: a generator
 * object is `Disposable`, which would make `using _ = lock.acquire();`
 * (without `yield*`) type-check. `next()` takes a permit or parks once.
 */
class Acquisition implements Iterator<unknown, Disposable, unknown> {
  #state = FRESH;
  readonly #permits: Permits;

  constructor(permits: Permits) {
    this.#permits = permits;
  }
  next(): IteratorResult<unknown, Disposable> {
    const permits = this.#permits;
    if (this.#state === PARKED) {
      this.#state = ENDED; // woken with the permit handed over
      return { value: new Guard(permits), done: true };
    }
    if (this.#state === ENDED) return { value: undefined as never, done: true };
    const kernel = currentFiber(permits.what).kernel;
    if (permits.tryTake(kernel)) {
      this.#state = ENDED;
      return { value: new Guard(permits), done: true };
    }
    checkOneLoop(permits.parked);
    permits.checkOwner(kernel);
    this.#state = PARKED;
    return permits.park;
  }
  return(value?: unknown): IteratorResult<unknown, Disposable> {
    this.#state = ENDED;
    return { value: value as Disposable, done: true };
  }
  throw(error: unknown): never {
    this.#state = ENDED; // a cancelled wait: the kernel took it out of the queue
    throw error;
  }
  /** A fresh acquisition starts here; a used one starts a new one. */
  [Symbol.iterator](): Iterator<unknown, Disposable, unknown> {
    return this.#state === FRESH ? this : new Acquisition(this.#permits);
  }
}

/** What `acquire()` returns: disposing it releases once. */
class Guard implements Disposable {
  #permits: Permits | null;
  constructor(permits: Permits) {
    this.#permits = permits;
  }
  [Symbol.dispose](): void {
    const permits = this.#permits;
    this.#permits = null;
    permits?.release();
  }
}

/**
 * A counter of `n` permits: `acquire()` takes one, parking while none is
 * left; `release()` gives one back, straight to the longest waiter if there
 * is one (FIFO). `using _ = yield* sem.acquire();` releases at scope end.
 *
 * @example At most two at a time
 * ```ts
 * import { gather, Loop, sleep } from "@boucle/boucle";
 * import { Semaphore } from "@boucle/boucle/sync";
 * import { assertEquals } from "@std/assert";
 *
 * const sem = new Semaphore(2);
 * let inside = 0;
 * let most = 0;
 * function* worker() {
 *   using _permit = yield* sem.acquire();
 *   most = Math.max(most, ++inside);
 *   yield* sleep(10);
 *   inside--;
 * }
 * await new Loop({ virtualTime: true }).runTask(gather(worker(), worker(), worker()));
 * assertEquals(most, 2);
 * ```
 */
export class Semaphore {
  readonly #permits: Permits;
  static {
    permitsOf = (semaphore) => semaphore.#permits;
  }

  /**
   * Makes a semaphore holding `n` permits.
   *
   * @param n The number of permits, and the most it can hold: an integer >= 0.
   * @param options `name`, shown in what a waiting task waits on:
   * `Semaphore("pool").acquire()`.
   * @throws {RangeError} If `n` is negative or not an integer.
   * @throws {TypeError} If `n` is not a number, or `options.name` not a string.
   */
  constructor(n: number, options?: PrimitiveOptions) {
    this.#permits = new Permits(new.target === Lock ? "Lock" : "Semaphore", n, options);
  }

  /**
   * The permits available now.
   *
   * @example Usage
   * ```ts
   * import { Semaphore } from "@boucle/boucle/sync";
   * import { assertEquals } from "@std/assert";
   *
   * assertEquals(new Semaphore(3).value, 3);
   * ```
   */
  get value(): number {
    return this.#permits.value;
  }

  /**
   * Takes a permit, parking in FIFO order while none is left. What it returns
   * is not itself `Disposable`: `using _ = sem.acquire();` without `yield*`
   * is a type error.
   *
   * @returns An Awaitable whose `yield*` returns a guard; disposing the guard
   * (`using`) calls `release()` once.
   * @throws {Error} If tasks of another loop hold permits or wait for one.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { Semaphore } from "@boucle/boucle/sync";
   * import { assertEquals } from "@std/assert";
   *
   * const sem = new Semaphore(1);
   * function* main() {
   *   using _permit = yield* sem.acquire();
   *   return sem.value;
   * }
   * assertEquals(await new Loop().runTask(main()), 0);
   * assertEquals(sem.value, 1);
   * ```
   */
  acquire(): Awaitable<Disposable> {
    return new Acquisition(this.#permits);
  }

  /**
   * Gives a permit back: to the longest waiter if there is one.
   *
   * @throws {Error} If that would hold more than `n` permits.
   *
   * @example Usage
   * ```ts
   * import { Semaphore } from "@boucle/boucle/sync";
   * import { assertThrows } from "@std/assert";
   *
   * assertThrows(() => new Semaphore(1).release(), Error, "more than 1");
   * ```
   */
  release(): void {
    this.#permits.release();
  }
}

/**
 * Mutual exclusion: `using _ = yield* lock.acquire();` holds the lock until
 * the end of the scope. `release()` hands it straight to the longest waiter,
 * so a task that releases and acquires again queues behind the others.
 *
 * @example Usage
 * ```ts
 * import { gather, interrupt, Loop } from "@boucle/boucle";
 * import { Lock } from "@boucle/boucle/sync";
 * import { assertEquals } from "@std/assert";
 *
 * const lock = new Lock();
 * const log: string[] = [];
 * function* critical(name: string) {
 *   using _held = yield* lock.acquire();
 *   log.push(`${name} in`);
 *   yield* interrupt();
 *   log.push(`${name} out`);
 * }
 * await new Loop().runTask(gather(critical("a"), critical("b")));
 * assertEquals(log, ["a in", "a out", "b in", "b out"]);
 * ```
 */
export class Lock extends Semaphore {
  /**
   * Makes an unlocked lock.
   *
   * @param options `name`, shown in what a waiting task waits on:
   * `Lock("db").acquire()`.
   * @throws {TypeError} If `options.name` is not a string.
   */
  constructor(options?: PrimitiveOptions) {
    super(1, options);
  }

  /**
   * Whether a task holds the lock.
   *
   * @example Usage
   * ```ts
   * import { Lock } from "@boucle/boucle/sync";
   * import { assertEquals } from "@std/assert";
   *
   * assertEquals(new Lock().locked, false);
   * ```
   */
  get locked(): boolean {
    return this.value === 0;
  }
}

/** What a woken getter or putter receives when the queue was closed. */
const CLOSED: object = Object.freeze({ closed: true });

/**
 * Thrown by `Queue.put()` and `Queue.tryPut()` once the queue is closed, and
 * by `Queue.get()` and `Queue.tryGet()` once it is closed and empty: the end
 * of the stream.
 *
 * @example Usage
 * ```ts
 * import { Loop } from "@boucle/boucle";
 * import { Queue, QueueClosedError } from "@boucle/boucle/sync";
 * import { assertEquals } from "@std/assert";
 *
 * const queue = new Queue<string>();
 * function* drain() {
 *   const got: string[] = [];
 *   try {
 *     for (;;) got.push(yield* queue.get());
 *   } catch (error) {
 *     if (!(error instanceof QueueClosedError)) throw error;
 *   }
 *   return got;
 * }
 * queue.tryPut("a");
 * queue.tryPut("b");
 * queue.close();
 * assertEquals(await new Loop().runTask(drain()), ["a", "b"]);
 * ```
 */
export class QueueClosedError extends Error {
  /**
   * Makes the error.
   *
   * @param message What was refused: `Queue("jobs").put(): the queue is closed`.
   */
  constructor(message = "The queue is closed") {
    super(message);
    this.name = "QueueClosedError";
  }
}

/**
 * A FIFO queue between tasks: `put()` parks while the queue is full, `get()`
 * parks while it is empty. An item put while a task waits in `get()` goes
 * straight to that task. `close()` ends the stream: `get()` returns what is
 * left, then throws `QueueClosedError`.
 *
 * @typeParam T The items' type.
 *
 * @example Producer and consumer
 * ```ts
 * import { gather, Loop } from "@boucle/boucle";
 * import { Queue } from "@boucle/boucle/sync";
 * import { assertEquals } from "@std/assert";
 *
 * const queue = new Queue<number>(1);
 * function* produce() {
 *   for (let i = 1; i <= 3; i++) yield* queue.put(i);
 * }
 * function* consume() {
 *   let sum = 0;
 *   for (let i = 0; i < 3; i++) sum += yield* queue.get();
 *   return sum;
 * }
 * const [, sum] = await new Loop().runTask(gather(produce(), consume()));
 * assertEquals(sum, 6);
 * ```
 *
 * @example A stream that ends with close()
 * ```ts
 * import { gather, Loop } from "@boucle/boucle";
 * import { Queue, QueueClosedError } from "@boucle/boucle/sync";
 * import { assertEquals } from "@std/assert";
 *
 * const lines = new Queue<string>(2, { name: "lines" });
 * function* produce() {
 *   for (const line of ["a", "b", "c"]) yield* lines.put(line);
 *   lines.close();
 * }
 * function* consume() {
 *   const got: string[] = [];
 *   try {
 *     for (;;) got.push(yield* lines.get());
 *   } catch (error) {
 *     if (!(error instanceof QueueClosedError)) throw error;
 *   }
 *   return got;
 * }
 * const [, got] = await new Loop().runTask(gather(produce(), consume()));
 * assertEquals(got, ["a", "b", "c"]);
 * ```
 */
export class Queue<T> {
  readonly #maxsize: number;
  #closed = false;
  #items: Ring<T> = new Ring();
  readonly #label: string;
  #getters: WaitQueue;
  #putters: WaitQueue;

  /**
   * Makes an empty queue.
   *
   * @param maxsize How many items it holds before `put()` parks: an integer
   * >= 1, or `Infinity`.
   * @param options `name`, shown in what a waiting task waits on:
   * `Queue("jobs").get()`.
   * @throws {RangeError} If `maxsize` is anything else.
   * @throws {TypeError} If `maxsize` is not a number, or `options.name` not a string.
   */
  constructor(maxsize = Infinity, options?: PrimitiveOptions) {
    this.#maxsize = checkCount(
      "new Queue(maxsize)",
      "maxsize",
      maxsize,
      1,
      true,
    );
    const label = this.#label = labelOf("Queue", "new Queue(maxsize, options)", options);
    this.#getters = new WaitQueue(() => `${label}.get()`);
    this.#putters = new WaitQueue(() => `${label}.put()`);
  }

  /**
   * How many items are in the queue.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { Queue } from "@boucle/boucle/sync";
   * import { assertEquals } from "@std/assert";
   *
   * const queue = new Queue<string>();
   * await new Loop().runTask(queue.put("x"));
   * assertEquals(queue.size, 1);
   * ```
   */
  get size(): number {
    return this.#items.length;
  }

  /**
   * How many items the queue holds before `put()` parks.
   *
   * @example Usage
   * ```ts
   * import { Queue } from "@boucle/boucle/sync";
   * import { assertEquals } from "@std/assert";
   *
   * assertEquals(new Queue(8).maxsize, 8);
   * assertEquals(new Queue().maxsize, Infinity);
   * ```
   */
  get maxsize(): number {
    return this.#maxsize;
  }

  /**
   * Whether `close()` was called.
   *
   * @example Usage
   * ```ts
   * import { Queue } from "@boucle/boucle/sync";
   * import { assertEquals } from "@std/assert";
   *
   * const queue = new Queue();
   * queue.close();
   * assertEquals(queue.closed, true);
   * ```
   */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Adds an item at the end, parking while the queue is full.
   *
   * @param item The item.
   * @returns A coroutine to use with `yield*`.
   * @throws {QueueClosedError} If the queue is closed, or gets closed while
   * this `put` waits (the item is then not added).
   * @throws {Error} If a task of another loop waits to put.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { Queue } from "@boucle/boucle/sync";
   * import { assertEquals } from "@std/assert";
   *
   * const queue = new Queue<number>(2);
   * function* main() {
   *   yield* queue.put(1);
   *   yield* queue.put(2);
   *   return queue.size;
   * }
   * assertEquals(await new Loop().runTask(main()), 2);
   * ```
   */
  *put(item: T): Coroutine<void> {
    if (this.#closed) throw this.#closedError("put()");
    if (this.#getters.wakeOne(item)) return;
    if (this.#items.length < this.#maxsize) {
      this.#items.push(item);
      return;
    }
    const fiber = checkOneLoop(this.#putters) ?? currentFiber(this.#putters.describe());
    fiber.value = item;
    // Woken once a get() moved the item in, or by close().
    if ((yield this.#putters) === CLOSED) throw this.#closedError("put()");
  }

  /**
   * Adds an item at the end if there is room, without waiting.
   *
   * @param item The item.
   * @returns `true` if the item was added (or handed to a waiting `get`),
   * `false` if the queue is full.
   * @throws {QueueClosedError} If the queue is closed.
   *
   * @example Usage
   * ```ts
   * import { Queue } from "@boucle/boucle/sync";
   * import { assertEquals } from "@std/assert";
   *
   * const queue = new Queue<number>(1);
   * assertEquals(queue.tryPut(1), true);
   * assertEquals(queue.tryPut(2), false);
   * assertEquals(queue.size, 1);
   * ```
   */
  tryPut(item: T): boolean {
    if (this.#closed) throw this.#closedError("tryPut()");
    if (this.#getters.wakeOne(item)) return true;
    if (this.#items.length < this.#maxsize) {
      this.#items.push(item);
      return true;
    }
    return false;
  }

  /**
   * Takes the first item, parking while the queue is empty.
   *
   * @returns A coroutine that returns the item.
   * @throws {QueueClosedError} If the queue is closed and empty, or gets
   * closed while this `get` waits.
   * @throws {Error} If a task of another loop waits to get.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { Queue } from "@boucle/boucle/sync";
   * import { assertEquals } from "@std/assert";
   *
   * const queue = new Queue<string>();
   * function* main() {
   *   yield* queue.put("first");
   *   yield* queue.put("second");
   *   return yield* queue.get();
   * }
   * assertEquals(await new Loop().runTask(main()), "first");
   * ```
   */
  *get(): Coroutine<T> {
    if (this.#items.length === 0) {
      if (this.#closed) throw this.#closedError("get()");
      checkOneLoop(this.#getters);
      const item = yield this.#getters;
      if (item === CLOSED) throw this.#closedError("get()");
      return item as T;
    }
    return this.#take();
  }

  /**
   * Takes the first item if there is one, without waiting.
   *
   * @returns The item, or `undefined` if the queue is empty (use `size` to
   * tell an `undefined` item from an empty queue).
   * @throws {QueueClosedError} If the queue is closed and empty.
   *
   * @example Usage
   * ```ts
   * import { Queue } from "@boucle/boucle/sync";
   * import { assertEquals } from "@std/assert";
   *
   * const queue = new Queue<string>();
   * assertEquals(queue.tryGet(), undefined);
   * queue.tryPut("x");
   * assertEquals(queue.tryGet(), "x");
   * ```
   */
  tryGet(): T | undefined {
    if (this.#items.length === 0) {
      if (this.#closed) throw this.#closedError("tryGet()");
      return undefined;
    }
    return this.#take();
  }

  /**
   * Closes the queue: from now on `put` and `tryPut` throw
   * `QueueClosedError`, and so do the `put`s waiting now (their items are
   * not added). `get` returns the items left, then throws it; the `get`s
   * waiting now (the queue is empty) throw it at once. A second call does
   * nothing.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { Queue, QueueClosedError } from "@boucle/boucle/sync";
   * import { assertEquals, assertRejects, assertThrows } from "@std/assert";
   *
   * const queue = new Queue<number>();
   * queue.tryPut(1);
   * queue.close();
   * assertThrows(() => queue.tryPut(2), QueueClosedError);
   * assertEquals(await new Loop().runTask(queue.get()), 1);
   * await assertRejects(() => new Loop().runTask(queue.get()), QueueClosedError);
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#getters.wakeAll(CLOSED);
    this.#putters.wakeAll(CLOSED);
  }

  /** Shifts the first item and moves the longest putter's item in. */
  #take(): T {
    const item = this.#items.shift();
    const putter = this.#putters.first;
    if (putter !== null) {
      this.#items.push(putter.value as T);
      this.#putters.wakeOne(); // clears putter.value
    }
    return item;
  }

  #closedError(method: string): QueueClosedError {
    const empty = method === "get()" || method === "tryGet()" ? " and empty" : "";
    return new QueueClosedError(`${this.#label}.${method}: the queue is closed${empty}`);
  }
}

const NO_ERROR: object = Object.freeze({});

/**
 * A condition variable (asyncio's): tasks that hold its lock `wait()` until
 * another task, holding the lock too, calls `notify()`. `wait()` releases
 * the lock while it waits and takes it back before it returns, so the
 * waiting task checks its condition under the lock. `waitFor(predicate)`
 * loops on that.
 *
 * @example Wait until there is work
 * ```ts
 * import { gather, Loop } from "@boucle/boucle";
 * import { Condition } from "@boucle/boucle/sync";
 * import { assertEquals } from "@std/assert";
 *
 * const jobs: string[] = [];
 * const changed = new Condition(undefined, { name: "jobs" });
 * function* worker() {
 *   using _held = yield* changed.acquire();
 *   yield* changed.waitFor(() => jobs.length > 0);
 *   return jobs.shift();
 * }
 * function* boss() {
 *   using _held = yield* changed.acquire();
 *   jobs.push("sweep");
 *   changed.notify();
 * }
 * const [job] = await new Loop().runTask(gather(worker(), boss()));
 * assertEquals(job, "sweep");
 * ```
 */
export class Condition {
  readonly #lock: Lock;
  readonly #permits: Permits;
  readonly #what: string;
  #parked: WaitQueue;

  /**
   * Makes a condition over `lock`.
   *
   * @param lock The lock held around `wait()`; a new one by default, named
   * like the condition.
   * @param options `name`, shown in what a waiting task waits on:
   * `Condition("jobs").wait()`.
   * @throws {TypeError} If `lock` is not a `Lock`, or `options.name` not a string.
   */
  constructor(lock?: Lock, options?: PrimitiveOptions) {
    const label = labelOf("Condition", "new Condition(lock, options)", options);
    if (lock === undefined) {
      lock = new Lock(options?.name === undefined ? undefined : { name: options.name });
    } else if (!(lock instanceof Lock)) {
      throw new TypeError(
        `new Condition(lock): 'lock' must be a Lock, received ${show(lock)}`,
      );
    }
    this.#lock = lock;
    this.#permits = permitsOf(lock);
    const what = this.#what = `${label}.wait()`;
    this.#parked = new WaitQueue(() => what);
  }

  /**
   * Takes the condition's lock: `using _ = yield* condition.acquire();`.
   *
   * @returns The lock's `acquire()`: an Awaitable whose `yield*` returns a
   * guard that releases the lock once.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { Condition, Lock } from "@boucle/boucle/sync";
   * import { assertEquals } from "@std/assert";
   *
   * const lock = new Lock();
   * const condition = new Condition(lock);
   * function* main() {
   *   using _held = yield* condition.acquire();
   *   return lock.locked;
   * }
   * assertEquals(await new Loop().runTask(main()), true);
   * assertEquals(lock.locked, false);
   * ```
   */
  acquire(): Awaitable<Disposable> {
    return this.#lock.acquire();
  }

  /**
   * Releases the condition's lock (`Lock.release()`).
   *
   * @throws {Error} If the lock is not held.
   *
   * @example Usage
   * ```ts
   * import { Condition } from "@boucle/boucle/sync";
   * import { assertThrows } from "@std/assert";
   *
   * assertThrows(() => new Condition().release(), Error, "not held");
   * ```
   */
  release(): void {
    this.#lock.release();
  }

  /**
   * Releases the lock, parks until `notify()` wakes this task, then takes the
   * lock back. The lock is held again when `wait` ends, however it ends: a
   * cancelled wait re-acquires it before the `CancelledError` leaves.
   *
   * @returns A coroutine to use with `yield*`.
   * @throws {Error} If the lock is not held, or a task of another loop waits.
   *
   * @example Usage
   * ```ts
   * import { gather, Loop } from "@boucle/boucle";
   * import { Condition } from "@boucle/boucle/sync";
   * import { assertEquals } from "@std/assert";
   *
   * const log: string[] = [];
   * const condition = new Condition();
   * function* waiter() {
   *   using _held = yield* condition.acquire();
   *   log.push("waiting");
   *   yield* condition.wait();
   *   log.push("notified");
   * }
   * function* notifier() {
   *   using _held = yield* condition.acquire();
   *   log.push("notify");
   *   condition.notify();
   * }
   * await new Loop().runTask(gather(waiter(), notifier()));
   * assertEquals(log, ["waiting", "notify", "notified"]);
   * ```
   */
  wait(): Coroutine<void> {
    return this.#waitFor(null, "wait()") as Coroutine<void>;
  }

  /**
   * Waits until `predicate()` returns a truthy value: checks it, and calls
   * `wait()` while it is falsy. The lock must be held, and is held when it
   * returns or throws.
   *
   * @typeParam T What the predicate returns.
   * @param predicate Called with the lock held.
   * @returns A coroutine that returns the predicate's truthy value (typed
   * without `false`, `0`, `""`, `null` and `undefined`).
   * @throws {TypeError} If `predicate` is not a function.
   * @throws {Error} If the lock is not held.
   *
   * @example Usage
   * ```ts
   * import { gather, Loop, sleep } from "@boucle/boucle";
   * import { Condition } from "@boucle/boucle/sync";
   * import { assertEquals } from "@std/assert";
   *
   * let level = 0;
   * const condition = new Condition();
   * function* waitForThree() {
   *   using _held = yield* condition.acquire();
   *   return yield* condition.waitFor(() => level >= 3 && level);
   * }
   * function* fill() {
   *   for (let i = 0; i < 5; i++) {
   *     yield* sleep(10);
   *     using _held = yield* condition.acquire();
   *     level++;
   *     condition.notifyAll();
   *   }
   * }
   * const loop = new Loop({ virtualTime: true });
   * const [reached] = await loop.runTask(gather(waitForThree(), fill()));
   * assertEquals(reached, 3);
   * ```
   */
  waitFor<T>(predicate: () => T): Coroutine<Exclude<T, false | 0 | 0n | "" | null | undefined>> {
    if (typeof predicate !== "function") {
      throw new TypeError(
        `Condition.waitFor(predicate): 'predicate' must be a function, received ${show(predicate)}`,
      );
    }
    return this.#waitFor(predicate, "waitFor()") as Coroutine<
      Exclude<T, false | 0 | 0n | "" | null | undefined>
    >;
  }

  /** `wait()` (no predicate: one wait) and `waitFor()` in one generator. */
  *#waitFor<T>(predicate: (() => T) | null, method: string): Coroutine<T | undefined> {
    this.#checkHeld(method);
    let result: T | undefined = undefined;
    if (predicate !== null && (result = predicate())) return result;
    const permits = this.#permits;
    for (;;) {
      checkOneLoop(this.#parked);
      permits.release();
      let notified = false;
      let error: unknown = NO_ERROR;
      try {
        yield this.#parked;
        notified = true;
      } catch (thrown) {
        error = thrown; // cancelled while parked: out of the queue already
      }
      // Take the lock back, even through more cancellations.
      if (!permits.tryTake(currentFiber(permits.what).kernel)) {
        for (;;) {
          try {
            yield* new Acquisition(permits);
            break;
          } catch (thrown) {
            if (!(thrown instanceof CancelledError)) throw thrown;
            if (error === NO_ERROR) error = thrown;
          }
        }
      }
      if (error !== NO_ERROR) {
        if (notified) this.#wake(1); // pass the notification on
        throw error;
      }
      if (predicate === null || (result = predicate())) return result;
    }
  }

  /**
   * Wakes up to `n` tasks in `wait()`, longest waiting first. Each takes the
   * lock back in turn, once the notifier releases it.
   *
   * @param n How many to wake: an integer >= 0, or `Infinity`.
   * @throws {RangeError} If `n` is negative or not an integer.
   * @throws {TypeError} If `n` is not a number.
   * @throws {Error} If the lock is not held.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { Condition } from "@boucle/boucle/sync";
   * import { assertThrows } from "@std/assert";
   *
   * const condition = new Condition();
   * assertThrows(() => condition.notify(), Error, "not held");
   * await new Loop().runTask(function* () {
   *   using _held = yield* condition.acquire();
   *   condition.notify(); // nobody waits: no effect
   * }());
   * ```
   */
  notify(n = 1): void {
    checkCount("Condition.notify(n)", "n", n, 0, true);
    this.#checkHeld("notify()");
    this.#wake(n);
  }

  /**
   * Wakes every task in `wait()` (`notify(Infinity)`).
   *
   * @throws {Error} If the lock is not held.
   *
   * @example Usage
   * ```ts
   * import { gather, Loop } from "@boucle/boucle";
   * import { Condition } from "@boucle/boucle/sync";
   * import { assertEquals } from "@std/assert";
   *
   * const condition = new Condition();
   * let woken = 0;
   * function* waiter() {
   *   using _held = yield* condition.acquire();
   *   yield* condition.wait();
   *   woken++;
   * }
   * function* notifier() {
   *   using _held = yield* condition.acquire();
   *   condition.notifyAll();
   * }
   * await new Loop().runTask(gather(waiter(), waiter(), notifier()));
   * assertEquals(woken, 2);
   * ```
   */
  notifyAll(): void {
    this.#checkHeld("notifyAll()");
    this.#wake(Infinity);
  }

  #wake(n: number): void {
    for (let i = 0; i < n && this.#parked.wakeOne(); i++);
  }

  #checkHeld(method: string): void {
    if (!this.#lock.locked) {
      throw new Error(
        `${this.#what.slice(0, -"wait()".length)}${method}: the lock is not held; ` +
          "take it first with `using _ = yield* condition.acquire();`",
      );
    }
  }
}

/**
 * A meeting point for `n` tasks: `yield* barrier.wait()` parks until `n`
 * tasks wait, then releases them all, each with its arrival index (`0` for
 * the first, `n - 1` for the last). The barrier is then ready for the next
 * round of `n`.
 *
 * @example Three workers start each phase together
 * ```ts
 * import { gather, Loop, sleep } from "@boucle/boucle";
 * import { Barrier } from "@boucle/boucle/sync";
 * import { assertEquals } from "@std/assert";
 *
 * const barrier = new Barrier(3, { name: "phase" });
 * const log: string[] = [];
 * function* worker(name: string, ms: number) {
 *   for (const phase of [1, 2]) {
 *     yield* sleep(ms);
 *     const index = yield* barrier.wait();
 *     log.push(`${name} phase ${phase} at ${Loop.current.time()}, arrived ${index}`);
 *   }
 * }
 * const loop = new Loop({ virtualTime: true });
 * await loop.runTask(gather(worker("a", 30), worker("b", 10), worker("c", 20)));
 * assertEquals(log, [
 *   "a phase 1 at 30, arrived 2",
 *   "b phase 1 at 30, arrived 0",
 *   "c phase 1 at 30, arrived 1",
 *   "a phase 2 at 60, arrived 2", // the last to arrive goes on without parking
 *   "b phase 2 at 60, arrived 0",
 *   "c phase 2 at 60, arrived 1",
 * ]);
 * ```
 */
export class Barrier {
  readonly #n: number;
  /** The tasks parked in this round; its count drops at once when one is cancelled. */
  #parked: CountingQueue;

  /**
   * Makes a barrier for rounds of `n` tasks.
   *
   * @param n How many tasks each round waits for: an integer >= 1.
   * @param options `name`, shown in what a waiting task waits on:
   * `Barrier("phase").wait()`.
   * @throws {RangeError} If `n` is below 1 or not an integer.
   * @throws {TypeError} If `n` is not a number, or `options.name` not a string.
   */
  constructor(n: number, options?: PrimitiveOptions) {
    this.#n = checkCount("new Barrier(n)", "n", n, 1);
    const what = `${labelOf("Barrier", "new Barrier(n, options)", options)}.wait()`;
    this.#parked = new CountingQueue(() => what);
  }

  /**
   * How many tasks wait in the current round.
   *
   * @example Usage
   * ```ts
   * import { Barrier } from "@boucle/boucle/sync";
   * import { assertEquals } from "@std/assert";
   *
   * assertEquals(new Barrier(2).waiting, 0);
   * ```
   */
  get waiting(): number {
    return this.#parked.count;
  }

  /**
   * Parks until `n` tasks wait, then releases them all. A cancelled wait
   * leaves the round as if it had not come.
   *
   * @returns A coroutine that returns the arrival index, `0` to `n - 1`.
   * @throws {Error} If a task of another loop waits on this barrier.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { Barrier } from "@boucle/boucle/sync";
   * import { assertEquals } from "@std/assert";
   *
   * const barrier = new Barrier(1);
   * assertEquals(await new Loop().runTask(barrier.wait()), 0); // a round of one
   * ```
   */
  *wait(): Coroutine<number> {
    const index = this.#parked.count;
    if (index + 1 === this.#n) {
      for (let i = 0; this.#parked.wakeOne(i); i++); // the next round starts now
      return index;
    }
    checkOneLoop(this.#parked);
    return (yield this.#parked) as number;
  }
}

/**
 * A wait queue that counts its waiters: a cancelled waiter leaves the count
 * when the kernel takes it out of the queue, not when it runs again (a round
 * could complete in between).
 */
class CountingQueue extends WaitQueue {
  count = 0;
  override park(fiber: Fiber): void {
    super.park(fiber);
    this.count++;
  }
  override abandon(fiber: Fiber): void {
    super.abandon(fiber);
    this.count--;
  }
}

/** A FIFO ring buffer: O(1) push and shift, no per-item allocation. */
class Ring<T> {
  #items: (T | undefined)[] = new Array(64);
  #head = 0;
  #length = 0;

  get length(): number {
    return this.#length;
  }
  push(item: T): void {
    const items = this.#items;
    if (this.#length === items.length) {
      // Unroll into a buffer twice the size; capacities stay powers of two.
      this.#items = [...items.slice(this.#head), ...items.slice(0, this.#head)];
      this.#items.length = 2 * items.length;
      this.#head = 0;
    }
    this.#items[(this.#head + this.#length++) & (this.#items.length - 1)] = item;
  }
  shift(): T {
    const items = this.#items;
    const item = items[this.#head] as T;
    items[this.#head] = undefined;
    this.#head = (this.#head + 1) & (items.length - 1);
    this.#length--;
    return item;
  }
}
