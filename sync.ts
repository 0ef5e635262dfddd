// Copyright 2026 the boucle authors. MIT license.
/**
 * Waiting primitives for the tasks of one loop: `Waiter` (the lesson's
 * countdown), `Event`, `Lock`, `Semaphore` and `Queue`.
 *
 * All are thin layers over the kernel's one wait queue: a task that must wait
 * parks there and costs nothing until it is woken. Waking commits: a lock,
 * permit or item handed to a task is its own even if the task is cancelled
 * before it runs again (it then gets the `CancelledError` at its next wait,
 * and `using` gives the lock back). A task cancelled while parked leaves the
 * queue and is handed nothing, so a cancelled `get` loses no item and a
 * cancelled `put` inserts nothing.
 *
 * @module
 */

import { type Awaitable, type Coroutine, currentFiber, WaitQueue } from "./_kernel.ts";
import { checkCount } from "./_validate.ts";

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
  #parked: WaitQueue = new WaitQueue(() => `Waiter(count=${this.#count})`);

  /**
   * Makes a countdown from `n`.
   *
   * @param n How many `set()` calls release the waiters: an integer >= 0.
   * @throws {RangeError} If `n` is negative or not an integer.
   */
  constructor(n = 1) {
    this.#count = checkCount("new Waiter(n)", "n", n, 0);
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
    if (this.#count > 0) yield this.#parked;
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
  #parked: WaitQueue = new WaitQueue(() => "Event.wait()");

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
    if (!this.#isSet) yield this.#parked;
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
  #value: number;
  readonly #max: number;
  readonly #kind: string;
  #parked: WaitQueue;

  /**
   * Makes a semaphore holding `n` permits.
   *
   * @param n The number of permits, and the most it can hold: an integer >= 0.
   * @throws {RangeError} If `n` is negative or not an integer.
   */
  constructor(n: number) {
    this.#kind = new.target === Lock ? "Lock" : "Semaphore";
    this.#value = this.#max = checkCount(`new ${this.#kind}(n)`, "n", n, 0);
    this.#parked = new WaitQueue(() => `${this.#kind}.acquire()`);
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
    return this.#value;
  }

  /**
   * Takes a permit, parking in FIFO order while none is left.
   *
   * @returns A coroutine that returns a guard; disposing it (`using`) calls
   * `release()` once.
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
  *acquire(): Coroutine<Disposable> {
    if (this.#value > 0) this.#value--;
    else yield this.#parked; // woken with the permit handed over
    return new Guard(this);
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
    if (this.#parked.wakeOne()) return;
    if (this.#value >= this.#max) {
      throw new Error(
        this.#kind === "Lock"
          ? "Lock.release(): the lock is not held"
          : `Semaphore.release(): released more than ${this.#max} permits`,
      );
    }
    this.#value++;
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
  /** Makes an unlocked lock. */
  constructor() {
    super(1);
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

/** What `acquire()` returns: disposing it releases once. */
class Guard implements Disposable {
  #semaphore: Semaphore | null;
  constructor(semaphore: Semaphore) {
    this.#semaphore = semaphore;
  }
  [Symbol.dispose](): void {
    const semaphore = this.#semaphore;
    this.#semaphore = null;
    semaphore?.release();
  }
}

/**
 * A FIFO queue between tasks: `put()` parks while the queue is full, `get()`
 * parks while it is empty. An item put while a task waits in `get()` goes
 * straight to that task.
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
 */
export class Queue<T> {
  readonly #maxsize: number;
  #items: Ring<T> = new Ring();
  #getters: WaitQueue = new WaitQueue(() => "Queue.get()");
  #putters: WaitQueue = new WaitQueue(() => "Queue.put()");

  /**
   * Makes an empty queue.
   *
   * @param maxsize How many items it holds before `put()` parks: an integer
   * >= 1, or `Infinity`.
   * @throws {RangeError} If `maxsize` is anything else.
   */
  constructor(maxsize = Infinity) {
    this.#maxsize = checkCount(
      "new Queue(maxsize)",
      "maxsize",
      maxsize,
      1,
      true,
    );
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
   * Adds an item at the end, parking while the queue is full.
   *
   * @param item The item.
   * @returns A coroutine to use with `yield*`.
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
    if (this.#getters.wakeOne(item)) return;
    if (this.#items.length < this.#maxsize) {
      this.#items.push(item);
      return;
    }
    currentFiber("Queue.put()").value = item;
    yield this.#putters; // woken once a get() moved the item in
  }

  /**
   * Takes the first item, parking while the queue is empty.
   *
   * @returns A coroutine that returns the item.
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
    if (this.#items.length === 0) return (yield this.#getters) as T;
    const item = this.#items.shift();
    const putter = this.#putters.first;
    if (putter !== null) {
      this.#items.push(putter.value as T);
      this.#putters.wakeOne(); // clears putter.value
    }
    return item;
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
