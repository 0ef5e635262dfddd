// Copyright 2026 the boucle authors. MIT license.
/*
 * The kernel: the scheduler behind `Loop`. Internal; `loop.ts` re-exports the
 * public names (`Task`, `CancelledError`, `DeadlockError`, the types).
 *
 * Invariants
 * - One method drives generators: `Kernel.#step` calls `next` or `throw` and
 *   records how the task ended. Nothing else resumes a task.
 * - A task may yield exactly two things: `undefined` (a bare `yield`: go to the
 *   back of the ready queue) or a `Blocker` (park: leave the ready queue until
 *   that blocker wakes it). Anything else is thrown back in as a `TypeError`.
 * - A parked task is in no kernel structure but its blocker (a `WaitQueue`, the
 *   timer heap, a promise); it costs nothing per cycle. Its blocker wakes it
 *   with `Kernel.wake(fiber, value)`, which commits: a value handed over (a
 *   lock, a queue item) is delivered even if a cancel follows before it runs.
 * - Cancelling a parked task takes it out of its blocker (`Blocker.abandon`) and
 *   throws one `CancelledError` into it at that suspension point; a task that
 *   is ready or running gets it at its next suspension point. Each `cancel()`
 *   delivers once, so a `yield*` in a `finally` block runs normally.
 * - A cycle expires the due timers, then runs exactly the tasks that were ready
 *   when it began. Then, if tasks are still ready, it goes on (returning to the
 *   host once per SLICE_MS so that host I/O and timers are served); if none
 *   is ready it sleeps on the host until a promise it waits on settles or the
 *   earliest timer is due (virtual time instead jumps to that timer when no
 *   promise is pending); if tasks are parked and nothing can wake them, that is
 *   a deadlock.
 *
 * Choices
 * - The loop returns to the host by awaiting a digest of no bytes, an op
 *   that completes off the main thread, so Deno's event loop really waits
 *   and polls its sockets: ~25-150 µs. A MessageChannel message (~8 µs)
 *   never waits, and Deno served a pending socket read only after thousands
 *   of them in a row (37 s behind a spinning task); a `setTimeout(0)` costs
 *   ~2.2 ms.
 * - Tasks are intrusive nodes: the wait queues link fibers directly and the
 *   timer heap stores them, so parking allocates nothing.
 * - The ready queue is two arrays: a cycle takes the one filled so far and
 *   walks it by index while new arrivals fill the other. That is O(1) per
 *   push and pop, and ran bare switches 1.2x faster than a ring buffer kept
 *   in fields.
 */

import type { Loop } from "./loop.ts";

/**
 * A coroutine the loop can drive: a generator that returns `T`. A bare `yield`
 * gives the other tasks a turn.
 *
 * @typeParam T The value the coroutine returns.
 *
 * @example Usage
 * ```ts
 * import { type Coroutine, Loop, interrupt } from "@boucle/boucle";
 * import { assertEquals } from "@std/assert";
 *
 * function* twice(n: number): Coroutine<number> {
 *   yield* interrupt();
 *   return 2 * n;
 * }
 * assertEquals(await new Loop().runTask(twice(21)), 42);
 * ```
 */
export type Coroutine<T = void> = Generator<unknown, T, unknown>;

/**
 * Anything `yield*` can wait on inside a task: it has a `[Symbol.iterator]()`
 * that gives a coroutine returning `T`. Generators, `Task`, `Waiter` and the
 * result of `Event.wait()` are Awaitables.
 *
 * @typeParam T The value `yield*` returns.
 *
 * @example Usage
 * ```ts
 * import { type Awaitable, type Coroutine, Loop } from "@boucle/boucle";
 * import { assertEquals } from "@std/assert";
 *
 * class Answer implements Awaitable<number> {
 *   *[Symbol.iterator](): Coroutine<number> {
 *     yield;
 *     return 42;
 *   }
 * }
 * function* main(): Coroutine<number> {
 *   return yield* new Answer();
 * }
 * assertEquals(await new Loop().runTask(main()), 42);
 * ```
 */
export interface Awaitable<T> {
  /** Starts waiting: returns the coroutine that `yield*` drives. */
  [Symbol.iterator](): Iterator<unknown, T, unknown>;
}

const READY = 0; // new, or ready (or running) after a bare yield
const WOKEN = 1; // ready (or running) after its blocker woke it with a value
const RETURNED = 2; // done: from here on, `value` holds the outcome
const FAILED = 3;

/** A task's state inside the kernel. `Task` is its public handle. */
export class Fiber {
  state = READY;
  /**
   * One slot, three uses that never overlap: while parking, what the fiber
   * carries (`Queue.put`'s item, a sleep's deadline); when woken, what the
   * next step sends in (with `raise`, the error thrown in); once done, its
   * return value or error.
   */
  value: unknown = undefined;
  raise = false;
  /** The CancelledError a `cancel()` made, until it is thrown in. */
  cancelPending: CancelledError | null = null;
  blocker: Blocker | null = null;
  /** Links in the WaitQueue the fiber is parked in. */
  prev: Fiber | null = null;
  next: Fiber | null = null;
  /** The fiber's place in the timer heap while it sleeps. */
  heapIndex = -1;
  joiners: WaitQueue | null = null;
  /** Links in the kernel's list of live fibers. */
  livePrev: Fiber | null = null;
  liveNext: Fiber | null = null;
  readonly handle: Task<unknown>;

  constructor(
    readonly kernel: Kernel,
    public it: Iterator<unknown, unknown, unknown> | null,
    readonly id: number,
    readonly label: string | undefined,
  ) {
    this.handle = newTask(this);
  }

  get name(): string {
    return this.label ?? `Task-${this.id}`;
  }
}

/**
 * What a parked task waits on. A primitive parks the running task with
 * `yield blocker`; the kernel then calls `park(fiber)`, and the blocker later
 * calls `fiber.kernel.wake(fiber, value)` after forgetting it.
 */
export abstract class Blocker {
  /** True when a host event (promise, socket) will wake the task. */
  readonly io: boolean;
  constructor(io = false) {
    this.io = io;
  }
  /** Remembers the fiber that just parked here. */
  abstract park(fiber: Fiber): void;
  /** Forgets a parked fiber that is being cancelled. */
  abstract abandon(fiber: Fiber): void;
  /** What the task waits on, for `DeadlockError`: `Lock.acquire()`. */
  abstract describe(): string;
}

/** A FIFO of parked fibers with O(1) removal: the one wait queue under every primitive. */
export class WaitQueue extends Blocker {
  #head: Fiber | null = null;
  #tail: Fiber | null = null;
  readonly #describe: () => string;

  /**
   * @param describe What a parked task waits on, for `DeadlockError`.
   * @param io True when a host event (socket readiness) wakes the waiters.
   */
  constructor(describe: () => string, io = false) {
    super(io);
    this.#describe = describe;
  }

  /** The longest waiter, without waking it. */
  get first(): Fiber | null {
    return this.#head;
  }
  park(fiber: Fiber): void {
    fiber.prev = this.#tail;
    fiber.next = null;
    if (this.#tail) this.#tail.next = fiber;
    else this.#head = fiber;
    this.#tail = fiber;
  }
  abandon(fiber: Fiber): void {
    if (fiber.prev) fiber.prev.next = fiber.next;
    else this.#head = fiber.next;
    if (fiber.next) fiber.next.prev = fiber.prev;
    else this.#tail = fiber.prev;
    fiber.prev = fiber.next = null;
  }
  describe(): string {
    return this.#describe();
  }
  /** Wakes the longest waiter with `value`; false if there was none. */
  wakeOne(value?: unknown): boolean {
    const fiber = this.#head;
    if (fiber === null) return false;
    this.abandon(fiber);
    fiber.kernel.wake(fiber, value);
    return true;
  }
  /** Wakes every waiter, in order. */
  wakeAll(value?: unknown): void {
    while (this.wakeOne(value));
  }
}

/**
 * The timers: a binary min-heap of fibers by (deadline, order set). The keys
 * live in arrays beside the fibers, so that a comparison does not touch the
 * fibers (that halved the cost of 100,000 sleeps). A fiber parks here with
 * its deadline in `value`.
 */
class TimerHeap extends Blocker {
  readonly #fibers: Fiber[] = [];
  readonly #at: number[] = [];
  readonly #order: number[] = [];
  #set = 0;

  get size(): number {
    return this.#fibers.length;
  }
  /** The earliest deadline. */
  get next(): number {
    return this.#fibers.length > 0 ? this.#at[0]! : Infinity;
  }
  park(fiber: Fiber): void {
    const i = this.#fibers.length;
    this.#fibers.push(fiber);
    this.#at.push(fiber.value as number);
    this.#order.push(this.#set++);
    fiber.value = undefined;
    this.#up(i);
  }
  abandon(fiber: Fiber): void {
    const i = fiber.heapIndex;
    fiber.heapIndex = -1;
    const last = this.#fibers.pop()!;
    const at = this.#at.pop()!;
    const order = this.#order.pop()!;
    if (last === fiber) return;
    this.#fibers[i] = last;
    this.#at[i] = at;
    this.#order[i] = order;
    this.#up(i);
    this.#down(last.heapIndex);
  }
  describe(): string {
    return "sleep()";
  }
  /** Wakes, in order, every fiber due at `now`. */
  expire(now: number): void {
    while (this.#fibers.length > 0 && this.#at[0]! <= now) {
      const fiber = this.#fibers[0]!;
      this.abandon(fiber);
      fiber.kernel.wake(fiber, undefined);
    }
  }
  /** Moves the entry at `i` up to its place, shifting parents down. */
  #up(i: number): void {
    const fibers = this.#fibers, at = this.#at, order = this.#order;
    const fiber = fibers[i]!, key = at[i]!, seq = order[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pk = at[p]!;
      if (pk < key || (pk === key && order[p]! < seq)) break;
      this.#put(i, fibers[p]!, pk, order[p]!);
      i = p;
    }
    this.#put(i, fiber, key, seq);
  }
  /** Moves the entry at `i` down to its place, shifting children up. */
  #down(i: number): void {
    const fibers = this.#fibers, at = this.#at, order = this.#order;
    const n = fibers.length;
    const fiber = fibers[i]!, key = at[i]!, seq = order[i]!;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (
        c + 1 < n && (at[c + 1]! < at[c]! || (at[c + 1] === at[c] && order[c + 1]! < order[c]!))
      ) {
        c++;
      }
      const ck = at[c]!;
      if (key < ck || (key === ck && seq < order[c]!)) break;
      this.#put(i, fibers[c]!, ck, order[c]!);
      i = c;
    }
    this.#put(i, fiber, key, seq);
  }
  #put(i: number, fiber: Fiber, key: number, seq: number): void {
    this.#fibers[i] = fiber;
    this.#at[i] = key;
    this.#order[i] = seq;
    fiber.heapIndex = i;
  }
}

/** Parks forever (`sleep(Infinity)`): only a cancellation ends the wait. */
class Forever extends Blocker {
  park(): void {}
  abandon(): void {}
  describe(): string {
    return "sleep(Infinity)";
  }
}
/** The blocker of `sleep(Infinity)`. */
export const FOREVER: Blocker = new Forever();

/** Longest stretch of work (ms) before the loop lets the host run. */
const SLICE_MS = 5;
const NO_BYTES = new Uint8Array(0);
/** How often (ms of work) a slice reads the clock. */
const CLOCK_MS = 0.5;

let running: Kernel | null = null;

/** Each CancelledError that `cancel()` made, with the fiber it was thrown into. */
const ownCancels: WeakMap<object, Fiber> = new WeakMap();

/** The kernel running a task right now; throws, naming `where`, outside one. */
export function currentKernel(where: string): Kernel {
  if (running === null) {
    throw new Error(
      `${where}: no loop is running a task right now; call it from inside a task (a coroutine run by a Loop)`,
    );
  }
  return running;
}

/** The fiber running right now (for primitives that stash data on it). */
export function currentFiber(where: string): Fiber {
  return currentKernel(where).current!;
}

/** The scheduler of one `Loop`. */
export class Kernel {
  /** Fibers ready for the next cycle; a cycle swaps it with #batch and runs that. */
  #ready: (Fiber | undefined)[] = [];
  #readyLength = 0;
  #batch: (Fiber | undefined)[] = [];
  readonly timers: TimerHeap = new TimerHeap();
  /** What a sleeping fiber yields, made once: parks it on the timers. */
  readonly sleepStep: IteratorResult<unknown, void> = Object.freeze({
    value: this.timers,
    done: false,
  });
  /** Live fibers: a list in creation order, linked through the fibers. */
  #first: Fiber | null = null;
  #last: Fiber | null = null;
  #liveCount = 0;
  /** The fiber being stepped. */
  current: Fiber | null = null;
  running = false;
  /** Parked fibers that a host event will wake. */
  #io = 0;
  #clock = 0;
  #ids = 0;
  /** Fibers that failed and whose error no one has observed yet. */
  #failures: Set<Fiber> = new Set();
  #wakeHost: (() => void) | null = null;
  /** Clock reads in #runSlice: steps between two, steps since the last, its time. */
  #stride = 16;
  #sinceRead = 0;
  #lastRead = 0;
  #hostTimer: ReturnType<typeof setTimeout> | undefined = undefined;

  constructor(readonly loop: Loop, readonly virtual: boolean) {}

  now(): number {
    return this.virtual ? this.#clock : performance.now();
  }

  /** The live fibers, in creation order. */
  live(): Fiber[] {
    const fibers = [];
    for (let f = this.#first; f !== null; f = f.liveNext) fibers.push(f);
    return fibers;
  }

  /** Adds a task; it first runs in the next cycle. */
  spawn(it: Iterator<unknown, unknown, unknown>, name?: string): Fiber {
    const fiber = new Fiber(this, it, ++this.#ids, name);
    fiber.livePrev = this.#last;
    if (this.#last) this.#last.liveNext = fiber;
    else this.#first = fiber;
    this.#last = fiber;
    this.#liveCount++;
    this.#ready[this.#readyLength++] = fiber;
    this.#notifyHost();
    return fiber;
  }

  /** Runs until no task is left; see the header for one cycle. */
  async run(): Promise<void> {
    if (this.running) {
      throw new Error("Loop.run(): this loop is already running");
    }
    this.running = true;
    let deadlock: DeadlockError | null = null;
    try {
      while (this.#liveCount > 0) {
        this.#runSlice();
        if (this.#canGoOn()) {
          await this.#hostTick(); // the slice is over, not the work
        } else if (this.#io > 0 || this.timers.size > 0) {
          await this.#sleepOnHost();
        } else if (this.#liveCount > 0) {
          if (deadlock !== null) break; // stuck again while unwinding: give up
          const stuck = this.live();
          deadlock = deadlockOf(stuck);
          for (const fiber of stuck) this.cancel(fiber, deadlock);
        }
      }
    } finally {
      this.running = false;
    }
    const errors: unknown[] = deadlock ? [deadlock] : [];
    for (const fiber of this.#failures) errors.push(fiber.value);
    this.#failures.clear();
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) {
      throw new AggregateError(
        errors,
        `Loop.run(): ${errors.length} errors that no task observed`,
      );
    }
  }

  /**
   * Runs cycles until no fiber can go on or SLICE_MS have passed. A slice that
   * ends early reads no clock unless a timer may be due: reads happen every
   * #stride steps (see #readClock), since one costs ~120 ns, several switches.
   */
  #runSlice(): void {
    const outer = running;
    running = this;
    try {
      let start = NaN; // the first clock read of this slice
      let now = this.#lastRead;
      if (!this.virtual && this.timers.size > 0) start = now = this.#readClock();
      do {
        if (this.virtual) {
          if (this.#readyLength === 0 && this.#io === 0 && this.timers.size > 0) {
            this.#clock = Math.max(this.#clock, this.timers.next); // jump to the next timer
          }
          this.timers.expire(this.#clock);
        } else if (this.timers.size > 0) {
          this.timers.expire(now);
        }
        const batch = this.#ready;
        const n = this.#readyLength;
        this.#ready = this.#batch;
        this.#readyLength = 0;
        this.#batch = batch;
        for (let i = 0; i < n; i++) {
          const fiber = batch[i]!;
          batch[i] = undefined;
          this.#step(fiber);
        }
        this.#sinceRead += n;
        if (this.#sinceRead >= this.#stride) {
          now = this.#readClock();
          if (Number.isNaN(start)) start = now;
        }
      } while (this.#canGoOn() && !(now - start >= SLICE_MS));
    } finally {
      running = outer;
      this.current = null;
    }
  }

  /**
   * Reads the clock and sets #stride to the steps that take about CLOCK_MS at
   * the pace since the last read (1 to 256: the cap bounds the harm if steps
   * turn slow at once).
   */
  #readClock(): number {
    const now = performance.now();
    const perMs = this.#sinceRead / Math.max(now - this.#lastRead, 0.001);
    this.#stride = Math.min(256, Math.max(1, Math.floor(perMs * CLOCK_MS)));
    this.#sinceRead = 0;
    this.#lastRead = now;
    return now;
  }

  /** Whether a cycle can run now: a fiber is ready, or virtual time can jump. */
  #canGoOn(): boolean {
    return this.#readyLength > 0 || (this.virtual && this.#io === 0 && this.timers.size > 0);
  }

  #step(fiber: Fiber): void {
    this.current = fiber;
    let r: IteratorResult<unknown, unknown>;
    try {
      if (fiber.raise || (fiber.cancelPending !== null && fiber.state !== WOKEN)) {
        r = this.#throwIn(fiber);
      } else {
        const value = fiber.value;
        fiber.value = undefined;
        r = fiber.it!.next(value);
      }
    } catch (error) {
      this.#finish(fiber, error, true);
      return;
    }
    const y = r.value;
    if (r.done) {
      this.#finish(fiber, y, false);
    } else if (y === undefined) {
      fiber.state = READY;
      this.#ready[this.#readyLength++] = fiber;
    } else if (y instanceof Blocker && fiber.cancelPending === null) {
      fiber.blocker = y;
      if (y.io) this.#io++;
      y.park(fiber);
    } else {
      if (!(y instanceof Blocker)) {
        fiber.value = foreignYield(fiber, y);
        fiber.raise = true;
      }
      fiber.state = READY;
      this.#ready[this.#readyLength++] = fiber;
    }
  }

  /** Throws the pending error, or else the pending cancellation, into the fiber. */
  #throwIn(fiber: Fiber): IteratorResult<unknown, unknown> {
    let error: unknown = fiber.cancelPending;
    if (fiber.raise) {
      error = fiber.value;
      fiber.raise = false;
    } else {
      fiber.cancelPending = null;
    }
    fiber.value = undefined;
    fiber.state = READY;
    const it = fiber.it!;
    if (it.throw) return it.throw(error);
    it.return?.();
    throw error;
  }

  #finish(fiber: Fiber, outcome: unknown, failed: boolean): void {
    fiber.state = failed ? FAILED : RETURNED;
    fiber.it = null;
    fiber.value = outcome;
    if (fiber.livePrev) fiber.livePrev.liveNext = fiber.liveNext;
    else this.#first = fiber.liveNext;
    if (fiber.liveNext) fiber.liveNext.livePrev = fiber.livePrev;
    else this.#last = fiber.livePrev;
    fiber.livePrev = fiber.liveNext = null;
    this.#liveCount--;
    // A CancelledError of any of its own cancel() calls is no failure to report.
    if (failed && ownCancels.get(outcome as object) !== fiber) this.#failures.add(fiber);
    fiber.joiners?.wakeAll();
  }

  /** Marks a failed fiber's error as seen: `run()` will not report it. */
  observe(fiber: Fiber): void {
    this.#failures.delete(fiber);
  }

  /** Readies a fiber its blocker has just forgotten, sending in `value`. */
  wake(fiber: Fiber, value: unknown): void {
    if (fiber.blocker!.io) this.#io--;
    fiber.blocker = null;
    fiber.value = value;
    fiber.state = WOKEN;
    this.#ready[this.#readyLength++] = fiber;
    this.#notifyHost();
  }

  /** `Task.cancel()`: see the header. */
  cancel(fiber: Fiber, reason?: unknown): boolean {
    if (fiber.state >= RETURNED) return false;
    if (fiber.cancelPending !== null) return true;
    fiber.cancelPending = new CancelledError(reason);
    ownCancels.set(fiber.cancelPending, fiber);
    const blocker = fiber.blocker;
    if (blocker !== null) {
      blocker.abandon(fiber);
      this.wake(fiber, undefined);
      fiber.state = READY; // not WOKEN: the cancellation is what it gets
    }
    return true;
  }

  #notifyHost(): void {
    const wakeHost = this.#wakeHost;
    if (wakeHost === null) return;
    this.#wakeHost = null;
    if (this.#hostTimer !== undefined) {
      clearTimeout(this.#hostTimer);
      this.#hostTimer = undefined;
    }
    wakeHost();
  }

  /** Waits for a wake from a host event, or (real time) for the next timer. */
  #sleepOnHost(): Promise<void> {
    return new Promise((resolve) => {
      this.#wakeHost = resolve;
      if (!this.virtual && this.timers.size > 0) {
        const delay = Math.ceil(this.timers.next - performance.now());
        this.#hostTimer = setTimeout(
          () => this.#notifyHost(),
          Math.max(0, delay),
        );
      }
    });
  }

  /** Lets the host run: its timers, its I/O, other loops (see the header). */
  #hostTick(): Promise<unknown> {
    return crypto.subtle.digest("SHA-256", NO_BYTES);
  }
}

function foreignYield(fiber: Fiber, value: unknown): TypeError {
  const what = typeof value === "object" && value !== null && "then" in value
    ? "a promise: use `yield* fromPromise(p)`"
    : typeof value === "object" && value !== null && Symbol.iterator in value
    ? "an awaitable: use `yield*`, not `yield`"
    : "a value the loop does not understand";
  return new TypeError(
    `Task "${fiber.name}" yielded ${showYield(value)}, which is ${what}; ` +
      "a task may only `yield` nothing (to let others run) or `yield*` an Awaitable",
  );
}

function showYield(value: unknown): string {
  if (typeof value === "object" && value !== null) {
    return Object.prototype.toString.call(value).slice(8, -1) === "Generator"
      ? "a generator object"
      : `an object (${value.constructor?.name ?? "null prototype"})`;
  }
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

let newTask: (fiber: Fiber) => Task<unknown>;

/**
 * A coroutine running on a `Loop`, made by `Loop.addTask()`. Join it with
 * `yield* task` (returns its value or throws its error), read its outcome with
 * `result()`, or stop it with `cancel()`.
 *
 * @typeParam T The value the task returns.
 *
 * @example Join a task
 * ```ts
 * import { type Coroutine, Loop, sleep } from "@boucle/boucle";
 * import { assertEquals } from "@std/assert";
 *
 * function* child(): Coroutine<string> {
 *   yield* sleep(10);
 *   return "done";
 * }
 * function* main(): Coroutine<string> {
 *   const task = Loop.current.addTask(child(), { name: "child" });
 *   return yield* task;
 * }
 * assertEquals(await new Loop({ virtualTime: true }).runTask(main()), "done");
 * ```
 */
export class Task<T> implements Awaitable<T> {
  #fiber: Fiber;

  private constructor(fiber: Fiber) {
    this.#fiber = fiber;
  }
  static {
    newTask = (fiber) => new Task(fiber);
  }

  /**
   * The task's name: the one given to `addTask()`, or `Task-1`, `Task-2`, …
   *
   * @example Usage
   * ```ts
   * import { Loop, interrupt } from "@boucle/boucle";
   * import { assertEquals } from "@std/assert";
   *
   * const loop = new Loop();
   * assertEquals(loop.addTask(interrupt()).name, "Task-1");
   * assertEquals(loop.addTask(interrupt(), { name: "worker" }).name, "worker");
   * await loop.run();
   * ```
   */
  get name(): string {
    return this.#fiber.name;
  }

  /**
   * Whether the task has ended: returned, failed or been cancelled.
   *
   * @example Usage
   * ```ts
   * import { Loop, interrupt } from "@boucle/boucle";
   * import { assert } from "@std/assert";
   *
   * const loop = new Loop();
   * const task = loop.addTask(interrupt());
   * assert(!task.done);
   * await loop.run();
   * assert(task.done);
   * ```
   */
  get done(): boolean {
    return this.#fiber.state >= RETURNED;
  }

  /**
   * Whether a `CancelledError` ended the task.
   *
   * @example Usage
   * ```ts
   * import { Loop, sleep } from "@boucle/boucle";
   * import { assert } from "@std/assert";
   *
   * const loop = new Loop();
   * const task = loop.addTask(sleep(Infinity));
   * task.cancel();
   * await loop.run();
   * assert(task.cancelled);
   * ```
   */
  get cancelled(): boolean {
    const fiber = this.#fiber;
    return fiber.state === FAILED && fiber.value instanceof CancelledError;
  }

  /**
   * The task's outcome: its return value, or its error thrown again.
   *
   * @returns The value the task returned.
   * @throws {Error} If the task is not done yet.
   * @throws {unknown} The task's own error, or `CancelledError`.
   *
   * @example Usage
   * ```ts
   * import { Loop, interrupt } from "@boucle/boucle";
   * import { assertEquals, assertThrows } from "@std/assert";
   *
   * const loop = new Loop();
   * const task = loop.addTask(function* () {
   *   yield* interrupt();
   *   return 7;
   * }());
   * assertThrows(() => task.result(), Error, "not done");
   * await loop.run();
   * assertEquals(task.result(), 7);
   * ```
   */
  result(): T {
    const fiber = this.#fiber;
    if (fiber.state < RETURNED) {
      throw new Error(`Task.result(): task "${fiber.name}" is not done yet`);
    }
    if (fiber.state === FAILED) {
      fiber.kernel.observe(fiber);
      throw fiber.value;
    }
    return fiber.value as T;
  }

  /**
   * Asks the task to stop: a `CancelledError` is thrown into it where it is
   * parked (or at its next suspension point), so its `finally` blocks and
   * `using` declarations run. A task cancelled before its first step never
   * runs. Cancelling a task does not cancel a task it is joining.
   *
   * @param reason Kept as `CancelledError.reason`.
   * @returns `true` if a cancellation was requested, `false` if the task is done.
   *
   * @example Usage
   * ```ts
   * import { CancelledError, type Coroutine, Loop, sleep } from "@boucle/boucle";
   * import { assertEquals, assertInstanceOf } from "@std/assert";
   *
   * const log: string[] = [];
   * function* worker(): Coroutine<void> {
   *   try {
   *     yield* sleep(1000);
   *   } catch (error) {
   *     assertInstanceOf(error, CancelledError);
   *     log.push(`cancelled: ${error.reason}`);
   *     throw error;
   *   }
   * }
   * const loop = new Loop({ virtualTime: true });
   * const task = loop.addTask(worker());
   * loop.addTask(function* () {
   *   yield* sleep(10);
   *   task.cancel("enough");
   * }());
   * await loop.run();
   * assertEquals(log, ["cancelled: enough"]);
   * assertEquals(task.cancel(), false);
   * ```
   */
  cancel(reason?: unknown): boolean {
    return this.#fiber.kernel.cancel(this.#fiber, reason);
  }

  /**
   * Joins the task: `yield* task` parks until it ends, then returns its value
   * or throws its error.
   *
   * @returns A coroutine that returns the task's value.
   *
   * @example Usage
   * ```ts
   * import { type Coroutine, Loop, interrupt } from "@boucle/boucle";
   * import { assertEquals } from "@std/assert";
   *
   * function* main(): Coroutine<number> {
   *   const task = Loop.current.addTask(function* () {
   *     yield* interrupt();
   *     return 1;
   *   }());
   *   return (yield* task) + 1;
   * }
   * assertEquals(await new Loop().runTask(main()), 2);
   * ```
   */
  *[Symbol.iterator](): Coroutine<T> {
    const fiber = this.#fiber;
    if (fiber.state < RETURNED) {
      if (currentFiber("Task join") === fiber) {
        throw new Error(`Task "${fiber.name}" cannot join itself`);
      }
      yield fiber.joiners ??= new WaitQueue(() => `Task("${fiber.name}")`);
    }
    return this.result();
  }
}

/**
 * Thrown into a task by `Task.cancel()`, at the point where the task waits.
 * Joining a cancelled task throws it too.
 *
 * @example Usage
 * ```ts
 * import { CancelledError, Loop, sleep } from "@boucle/boucle";
 * import { assertEquals, assertThrows } from "@std/assert";
 *
 * const loop = new Loop();
 * const task = loop.addTask(sleep(Infinity));
 * task.cancel("shutting down");
 * await loop.run();
 * const error = assertThrows(() => task.result(), CancelledError);
 * assertEquals(error.reason, "shutting down");
 * ```
 */
export class CancelledError extends Error {
  /** The reason given to `cancel()`, if any. */
  readonly reason: unknown;

  /**
   * Makes the error `cancel()` throws.
   *
   * @param reason Why the task was cancelled.
   */
  constructor(reason?: unknown) {
    super(
      reason === undefined ? "The task was cancelled" : `The task was cancelled: ${reason}`,
    );
    this.name = "CancelledError";
    this.reason = reason;
  }
}

/**
 * `Loop.run()` rejects with it when tasks are parked and nothing (no ready
 * task, timer or pending I/O) can ever wake them. Its message names each stuck
 * task and what it waits on; before rejecting, the loop cancels those tasks
 * so that their `finally` blocks run.
 *
 * @example Usage
 * ```ts
 * import { DeadlockError, Loop } from "@boucle/boucle";
 * import { Event } from "@boucle/boucle/sync";
 * import { assertEquals, assertRejects } from "@std/assert";
 *
 * const loop = new Loop();
 * loop.addTask(new Event().wait(), { name: "waiter" });
 * const error = await assertRejects(() => loop.run(), DeadlockError);
 * assertEquals(error.tasks.map((task) => task.name), ["waiter"]);
 * assertEquals(error.message.includes('"waiter" waits on Event.wait()'), true);
 * ```
 */
export class DeadlockError extends Error {
  /** The tasks that were stuck. */
  readonly tasks: Task<unknown>[];

  /**
   * Makes the error the loop rejects with.
   *
   * @param message What each stuck task waits on.
   * @param tasks The stuck tasks.
   */
  constructor(message: string, tasks: Task<unknown>[]) {
    super(message);
    this.name = "DeadlockError";
    this.tasks = tasks;
  }
}

function deadlockOf(fibers: Fiber[]): DeadlockError {
  const stuck = fibers.map((f) => `"${f.name}" waits on ${f.blocker!.describe()}`);
  return new DeadlockError(
    `Deadlock: no task can run and nothing can wake the parked ones: ${stuck.join(", ")}`,
    fibers.map((f) => f.handle),
  );
}
