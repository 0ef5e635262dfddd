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
 * - Cancel scopes (`deadline`, `moveOnAfter`, a task group's body) are regions
 *   of one fiber's code. A scope's cancellation is an ordinary cancellation of
 *   its fiber whose CancelledError the scope recognises when it comes out
 *   (`CancelScope.caught`); its expiry is an entry in the timer heap. Scopes
 *   nest: a cancellation not yet delivered is replaced only by a wider one
 *   (the task's own is the widest), and a scope that ends withdraws its own.
 * - A shield holds back the cancellations from outside it (the task's own,
 *   scopes opened around it) in `FiberExt.held`, and hands the widest on when
 *   it ends; scopes opened inside it expire as usual.
 * - A task group (`Group`) owns its children: `#finish` hands a child's
 *   outcome to its group, which observes the error, cancels the body's scope
 *   and the other children on the first failure, and wakes the owner when the
 *   last child has ended. A task that uses none of this pays one null check
 *   per end and nothing per step.
 *
 * Choices
 * - The loop returns to the host by awaiting a digest of no bytes, an op
 *   that completes off the main thread, so Deno's event loop really waits
 *   and polls its sockets: ~25-150 µs. A MessageChannel message (~8 µs)
 *   never waits, and Deno served a pending socket read only after thousands
 *   of them in a row (37 s behind a spinning task); a `setTimeout(0)` costs
 *   ~2.2 ms.
 * - Tasks are intrusive nodes: the wait queues link fibers directly and the
 *   timer heap stores them, so parking allocates nothing. What only some
 *   tasks use (scopes, shields, `onEnd` callbacks, a start) is in `FiberExt`,
 *   made on first use, so a parked task stays small.
 * - A closed scope's timer is forgotten lazily (left dead in the heap until it
 *   reaches the top, or the heap is rebuilt when dead entries outnumber live
 *   ones), as asyncio does with cancelled timers: a timeout that does not
 *   fire, the common case, then costs O(1) to withdraw.
 * - The ready queue is two arrays: a cycle takes the one filled so far and
 *   walks it by index while new arrivals fill the other. That is O(1) per
 *   push and pop, and ran bare switches 1.2x faster than a ring buffer kept
 *   in fields.
 */

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

import { show as showValue } from "./_validate.ts";

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
  /** The task group the fiber is a child of. */
  group: Group | null = null;
  /** What only some fibers use: cancel scopes, shields, a signal, a promise waiting on the end. */
  ext: FiberExt | null = null;
  /** When the fiber last parked (the loop clock, approximate in real time). */
  parkedAt = 0;
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

  /** The fiber's rarely used state, made on first use. */
  get extra(): FiberExt {
    return this.ext ??= new FiberExt();
  }
}

/** The state only some fibers need, kept out of `Fiber` to keep a parked task small. */
class FiberExt {
  /**
   * The scope depth at which the innermost open shield began, or -1: a
   * cancellation of that depth or less (the task's own is depth 0) is held.
   */
  shieldAt = -1;
  /** The widest cancellation a shield holds back, delivered when it ends. */
  held: CancelledError | null = null;
  /** Called once when the fiber ends (a signal listener's removal, `submit`'s promise). */
  onEnd: ((fiber: Fiber) => void)[] | null = null;
  /** Set while the fiber is a `TaskGroup.start()` child that has not called `ready()`. */
  start: StartBox | null = null;
  /** The innermost open cancel scope. */
  innermost: CancelScope | null = null;
  /** Handed to `gather`/`deadline`/…, which will observe its error: never `onError`'s. */
  claimed = false;
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
 * The timers: a binary min-heap by (deadline, order set) of sleeping fibers
 * and of cancel scopes' expiries. The keys live in arrays beside the entries,
 * so that a comparison does not touch them (that halved the cost of 100,000
 * sleeps). A fiber parks here with its deadline in `value`.
 */
class TimerHeap extends Blocker {
  #entries: (Fiber | CancelScope)[] = [];
  #at: number[] = [];
  #order: number[] = [];
  #set = 0;
  /** Scopes' entries forgotten but still in the heap (see `forget`). */
  #dead = 0;

  /** How many live entries. */
  get size(): number {
    return this.#entries.length - this.#dead;
  }
  /** The earliest live deadline. */
  get next(): number {
    this.#dropDead();
    return this.#entries.length > 0 ? this.#at[0]! : Infinity;
  }
  /**
   * Forgets a closed scope's entry lazily, as asyncio does with cancelled
   * timers: it stays in the heap, dead, until it reaches the top or dead
   * entries outnumber live ones (then the heap is rebuilt). A scope that ends
   * before its expiry, the common case, then costs O(1) to remove instead of
   * a sift through the heap.
   */
  forget(scope: CancelScope): void {
    if (scope.heapIndex === 0) {
      this.abandon(scope);
      return;
    }
    scope.dead = true;
    this.#dead++;
    if (this.#dead > 1024 && 2 * this.#dead > this.#entries.length) this.#compact();
  }
  #dropDead(): void {
    const entries = this.#entries;
    while (entries.length > 0) {
      const top = entries[0]!;
      if (!(top instanceof CancelScope && top.dead)) return;
      this.abandon(top);
      this.#dead--;
    }
  }
  /** Rebuilds the heap from its live entries: sorted by key, an array is a heap. */
  #compact(): void {
    const live = [];
    for (let i = 0; i < this.#entries.length; i++) {
      const entry = this.#entries[i]!;
      if (entry instanceof CancelScope && entry.dead) entry.heapIndex = -1;
      else live.push({ entry, at: this.#at[i]!, order: this.#order[i]! });
    }
    live.sort((a, b) => a.at - b.at || a.order - b.order);
    this.#entries = live.map((e) => e.entry);
    this.#at = live.map((e) => e.at);
    this.#order = live.map((e) => e.order);
    this.#entries.forEach((entry, i) => (entry.heapIndex = i));
    this.#dead = 0;
  }
  park(fiber: Fiber): void {
    this.add(fiber, fiber.value as number);
    fiber.value = undefined;
  }
  /** Adds an entry due at `at`. */
  add(entry: Fiber | CancelScope, at: number): void {
    const i = this.#entries.length;
    this.#entries.push(entry);
    this.#at.push(at);
    this.#order.push(this.#set++);
    this.#up(i);
  }
  abandon(entry: Fiber | CancelScope): void {
    const i = entry.heapIndex;
    entry.heapIndex = -1;
    const last = this.#entries.pop()!;
    const at = this.#at.pop()!;
    const order = this.#order.pop()!;
    if (last === entry) return;
    this.#entries[i] = last;
    this.#at[i] = at;
    this.#order[i] = order;
    this.#up(i);
    this.#down(last.heapIndex);
  }
  describe(): string {
    return "sleep()";
  }
  /** Wakes, in order, every fiber due at `now`, and expires the scopes due. */
  expire(now: number): void {
    while (this.#entries.length > 0 && this.#at[0]! <= now) {
      const entry = this.#entries[0]!;
      this.abandon(entry);
      if (entry instanceof Fiber) entry.kernel.wake(entry, undefined);
      else if (entry.dead) this.#dead--;
      else entry.expire();
    }
  }
  /** Moves the entry at `i` up to its place, shifting parents down. */
  #up(i: number): void {
    const entries = this.#entries, at = this.#at, order = this.#order;
    const entry = entries[i]!, key = at[i]!, seq = order[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pk = at[p]!;
      if (pk < key || (pk === key && order[p]! < seq)) break;
      this.#put(i, entries[p]!, pk, order[p]!);
      i = p;
    }
    this.#put(i, entry, key, seq);
  }
  /** Moves the entry at `i` down to its place, shifting children up. */
  #down(i: number): void {
    const entries = this.#entries, at = this.#at, order = this.#order;
    const n = entries.length;
    const entry = entries[i]!, key = at[i]!, seq = order[i]!;
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
      this.#put(i, entries[c]!, ck, order[c]!);
      i = c;
    }
    this.#put(i, entry, key, seq);
  }
  #put(i: number, entry: Fiber | CancelScope, key: number, seq: number): void {
    this.#entries[i] = entry;
    this.#at[i] = key;
    this.#order[i] = seq;
    entry.heapIndex = i;
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

/**
 * Each CancelledError the kernel made, with what made it: the fiber whose own
 * `cancel()` (or signal) it is, or the cancel scope whose expiry it is.
 */
const cancelOwners: WeakMap<object, Fiber | CancelScope> = new WeakMap();

/** How deep a pending cancellation reaches: 0 for the task's own, else its scope's depth. */
function depthOf(error: CancelledError): number {
  const owner = cancelOwners.get(error);
  return owner instanceof CancelScope ? owner.depth : 0;
}

/**
 * A cancellation is being delivered: every open scope deeper than it learns
 * that a wider one reached its region, so that it never turns its own
 * cancellation into a timeout afterwards (asyncio's `uncancel()` rule: a
 * `cancel()` of the task is never lost to a timeout, even when cleanup
 * swallows it).
 */
function overrideScopes(ext: FiberExt, error: CancelledError): void {
  const depth = depthOf(error);
  for (let scope = ext.innermost; scope !== null && scope.depth > depth; scope = scope.parent) {
    scope.override ??= error;
  }
}

/** Sets a cancellation aside while a shield holds it back; the widest one is kept. */
function hold(ext: FiberExt, error: CancelledError): void {
  if (ext.held === null || depthOf(error) < depthOf(ext.held)) ext.held = error;
}

/** A host timer cannot be armed further than this (ms): longer waits re-arm. */
const MAX_HOST_DELAY = 2 ** 31 - 1;

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
  /** Tasks in `waitAllTasksBlocked()`: woken when a cycle ends with no task ready. */
  #idle: WaitQueue | null = null;
  /** `RunOptions.onError` of the run in progress. */
  #onError: ((error: unknown, task: Task<unknown>) => void) | null = null;
  /** Errors thrown by `onError` itself: `run()` rejects with them. */
  #onErrorFailures: unknown[] = [];

  /** `loop` is the public `Loop` this kernel runs (typed here as an object: no import from above). */
  constructor(readonly loop: object, readonly virtual: boolean) {}

  now(): number {
    return this.virtual ? this.#clock : performance.now();
  }

  /** The live fibers, in creation order. */
  live(): Fiber[] {
    const fibers = [];
    for (let f = this.#first; f !== null; f = f.liveNext) fibers.push(f);
    return fibers;
  }

  /**
   * Adds a task; it first runs in the next cycle. Aborting `signal` cancels it
   * with the signal's reason (already aborted: it never runs).
   */
  spawn(it: Iterator<unknown, unknown, unknown>, name?: string, signal?: AbortSignal): Fiber {
    const fiber = new Fiber(this, it, ++this.#ids, name);
    fiber.livePrev = this.#last;
    if (this.#last) this.#last.liveNext = fiber;
    else this.#first = fiber;
    this.#last = fiber;
    this.#liveCount++;
    this.#ready[this.#readyLength++] = fiber;
    this.#notifyHost();
    if (signal !== undefined) this.#link(fiber, signal);
    return fiber;
  }

  #link(fiber: Fiber, signal: AbortSignal): void {
    if (signal.aborted) {
      this.cancel(fiber, signal.reason);
      return;
    }
    const onAbort = () => this.cancel(fiber, signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    this.onEnd(fiber, () => signal.removeEventListener("abort", onAbort));
  }

  /** Calls `callback` when the fiber ends, after its outcome is recorded. */
  onEnd(fiber: Fiber, callback: (fiber: Fiber) => void): void {
    const ext = fiber.extra;
    (ext.onEnd ??= []).push(callback);
  }

  /**
   * Runs until no task is left (with `until`: until it aborts, then until the
   * tasks it cancels have ended); see the header for one cycle.
   */
  async run(options: RunOptions = {}): Promise<void> {
    if (this.running) {
      throw new Error("Loop.run(): this loop is already running");
    }
    const { until, onError } = options;
    this.running = true;
    this.#onError = onError ?? null;
    let serving = until !== undefined;
    // Aborting stops the service at once, even from inside a task's step.
    const onAbort = () => {
      if (serving) {
        serving = false;
        for (const fiber of this.live()) this.cancel(fiber, until!.reason);
      }
      this.#notifyHost();
    };
    if (until?.aborted) onAbort();
    else until?.addEventListener("abort", onAbort);
    let deadlock: DeadlockError | null = null;
    const deadlocked = new Set<Fiber>(); // the stuck tasks cancelled so far
    try {
      for (;;) {
        if (this.#liveCount === 0 && !serving) break;
        this.#runSlice();
        if (this.#canGoOn()) {
          await this.#hostTick(); // the slice is over, not the work
        } else if (this.#io > 0 || this.timers.size > 0 || serving) {
          await this.#sleepOnHost();
        } else if (this.#liveCount > 0) {
          // Cancel the stuck tasks, then any that get stuck while they unwind;
          // give up when all stuck ones were cancelled already (held by a shield).
          const stuck = this.live();
          const fresh = stuck.filter((fiber) => !deadlocked.has(fiber));
          if (fresh.length === 0) break;
          deadlock ??= deadlockOf(stuck);
          for (const fiber of fresh) {
            deadlocked.add(fiber);
            this.cancel(fiber, deadlock);
          }
        }
      }
    } finally {
      this.running = false;
      this.#onError = null;
      until?.removeEventListener("abort", onAbort);
    }
    const errors: unknown[] = deadlock ? [deadlock] : [];
    for (const fiber of this.#failures) errors.push(fiber.value);
    this.#failures.clear();
    errors.push(...this.#onErrorFailures.splice(0));
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
        if (this.#readyLength === 0 && this.#idle !== null && this.#idle.first !== null) {
          this.#idle.wakeAll(); // every other task is parked
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
      fiber.parkedAt = this.virtual ? this.#clock : this.#lastRead;
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
      if (fiber.ext !== null) overrideScopes(fiber.ext, error as CancelledError);
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
    const failure = failed && cancelOwners.get(outcome as object) !== fiber;
    if (fiber.group !== null) fiber.group.ended(fiber, failure); // the group observes it
    else if (failure) this.#failures.add(fiber);
    const ext = fiber.ext;
    if (ext !== null && ext.onEnd !== null) {
      const callbacks = ext.onEnd;
      ext.onEnd = null;
      for (const callback of callbacks) callback(fiber);
    }
    const joiners = fiber.joiners;
    if (joiners !== null && joiners.first !== null) joiners.wakeAll();
    else if (
      failure && this.#onError !== null && !(ext !== null && ext.claimed) &&
      this.#failures.delete(fiber)
    ) {
      try {
        this.#onError(outcome, fiber.handle); // nobody can observe it any more
      } catch (error) {
        this.#onErrorFailures.push(error);
      }
    }
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

  /**
   * `Task.cancel()`, or the expiry of a cancel `scope` of the fiber: see the
   * header. A cancellation not yet delivered is replaced by a wider one (the
   * task's own is wider than any scope's, an outer scope's than an inner's).
   */
  cancel(fiber: Fiber, reason?: unknown, scope: CancelScope | null = null): boolean {
    if (fiber.state >= RETURNED) return false;
    const depth = scope === null ? 0 : scope.depth;
    const ext = fiber.ext;
    const held = ext !== null && depth <= ext.shieldAt; // from outside an open shield
    const pending = held ? ext.held : fiber.cancelPending;
    if (pending !== null && depthOf(pending) <= depth) return true;
    const error = new CancelledError(reason);
    cancelOwners.set(error, scope ?? fiber);
    if (scope !== null) scope.error = error;
    if (held) {
      ext.held = error;
      return true;
    }
    fiber.cancelPending = error;
    const blocker = fiber.blocker;
    if (pending === null && blocker !== null) {
      blocker.abandon(fiber);
      this.wake(fiber, undefined);
      fiber.state = READY; // not WOKEN: the cancellation is what it gets
    }
    return true;
  }

  /** Parks the running task until every other task is parked (`waitAllTasksBlocked`). */
  idle(): WaitQueue {
    return this.#idle ??= new WaitQueue(() => "waitAllTasksBlocked()");
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
  async #sleepOnHost(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#wakeHost = resolve;
      if (!this.virtual && this.timers.size > 0) {
        const delay = Math.ceil(this.timers.next - performance.now());
        // Never beyond what a host timer can hold: a longer wait re-arms.
        this.#hostTimer = setTimeout(
          () => this.#notifyHost(),
          Math.min(Math.max(0, delay), MAX_HOST_DELAY),
        );
      }
    });
    if (!this.virtual) this.#lastRead = performance.now(); // so that parks record when they happened
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
let fiberOf: (task: Task<unknown>) => Fiber;

/**
 * Marks a Task handed to `gather`, `deadline`, … as observed by them: its
 * error is theirs even if it fails before they join it, never `onError`'s.
 */
export function claim(task: Task<unknown>): void {
  fiberOf(task).extra.claimed = true;
}

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
    if (!(fiber instanceof Fiber)) {
      throw new TypeError("new Task(): tasks are made by Loop.addTask() and TaskGroup.spawn()");
    }
    this.#fiber = fiber;
  }
  static {
    newTask = (fiber) => new Task(fiber);
    fiberOf = (task) => task.#fiber;
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
   * What the task is parked on, as `DeadlockError` and `Loop.dump()` say it
   * (`Queue("jobs").get()`, `sleep()`, `fromPromise()`, …), or `null` when
   * it is not parked (ready, running or done).
   *
   * @example Usage
   * ```ts
   * import { Loop, sleep } from "@boucle/boucle";
   * import { assertEquals } from "@std/assert";
   *
   * const loop = new Loop({ virtualTime: true });
   * const task = loop.addTask(sleep(10));
   * assertEquals(task.waitingOn, null); // not started yet
   * loop.addTask(function* () {
   *   yield;
   *   assertEquals(task.waitingOn, "sleep()");
   * }());
   * await loop.run();
   * ```
   */
  get waitingOn(): string | null {
    return waitingOn(this.#fiber);
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
  const stuck = fibers.map((f) => `"${f.name}" waits on ${waitingOn(f) ?? "nothing (ready)"}`);
  return new DeadlockError(
    `Deadlock: no task can run and nothing can wake the parked ones: ${stuck.join(", ")}`,
    fibers.map((f) => f.handle),
  );
}

/** Options for `Loop.run()`. */
export interface RunOptions {
  /**
   * Serve until this signal aborts: until then, having no task, or only parked
   * ones, is neither the end nor a deadlock; the loop sleeps on the host until
   * a task is added or woken. When it aborts, every live task is cancelled
   * (with the signal's reason) and awaited, then `run()` settles as usual.
   */
  until?: AbortSignal;
  /**
   * Receives, at once, each failure no one can observe any more: a task that
   * is in no task group and ended with no task joining it. Such an error then
   * no longer makes `run()` reject. An error thrown by `onError` itself makes
   * `run()` reject when the loop ends.
   */
  onError?: (error: unknown, task: Task<unknown>) => void;
}

/**
 * A cancel scope: a region of one fiber's code that can be cancelled on its
 * own (a timeout, a task group's body). Its cancellation is a CancelledError
 * thrown in at the fiber's suspension point, which the scope recognises as
 * its own when it comes out (`caught`). Scopes nest; the innermost has the
 * greatest depth.
 */
class CancelScope {
  /** Its place in the timer heap while its expiry is set. */
  heapIndex = -1;
  /** The CancelledError of its cancellation, once cancelled. */
  error: CancelledError | null = null;
  /** Closed while its expiry was still in the timer heap (forgotten lazily). */
  dead = false;
  /** A wider cancellation delivered while the scope was open (see `overrideScopes`). */
  override: CancelledError | null = null;
  readonly depth: number;
  readonly parent: CancelScope | null;

  /** `ms` is the scope's time limit, for the reason of its cancellation (NaN: none). */
  constructor(readonly fiber: Fiber, readonly where: string, readonly ms = NaN) {
    const ext = fiber.extra;
    this.parent = ext.innermost;
    this.depth = (this.parent?.depth ?? 0) + 1;
    ext.innermost = this;
  }
  /** The reason its CancelledError carries, made when it is cancelled. */
  get reason(): string {
    return Number.isNaN(this.ms)
      ? `${this.where}: a task of the group failed`
      : `${this.where}: ${this.ms} ms passed`;
  }
  /** Cancels the scope: its fiber gets a CancelledError that is the scope's own. */
  cancel(): void {
    this.fiber.kernel.cancel(this.fiber, this.reason, this);
  }
  /** The timer heap calls it when the scope's time is up. */
  expire(): void {
    this.cancel();
  }
  /** Whether `error` is this scope's own cancellation. */
  caught(error: unknown): boolean {
    return error !== null && error === this.error;
  }
  /**
   * A wider cancellation that reached the scope while it was open: one
   * delivered meanwhile (`override`), or one still pending, which is then
   * delivered here. A scope about to convert its own expiry throws it instead.
   */
  wider(): CancelledError | null {
    if (this.override !== null) return this.override;
    const fiber = this.fiber;
    const pending = fiber.cancelPending;
    if (pending === null || depthOf(pending) >= this.depth) return null;
    fiber.cancelPending = null;
    overrideScopes(fiber.ext!, pending);
    return pending;
  }
  /** Ends the scope: its timer is removed and a cancellation not yet delivered withdrawn. */
  close(): void {
    const fiber = this.fiber;
    if (this.heapIndex >= 0) fiber.kernel.timers.forget(this);
    if (this.error !== null) {
      if (fiber.cancelPending === this.error) fiber.cancelPending = null;
      if (fiber.ext!.held === this.error) fiber.ext!.held = null;
    }
    fiber.ext!.innermost = this.parent;
  }
}

/**
 * Opens a cancel scope on the running fiber that expires after `ms` on the
 * loop clock (`0`: at the first suspension, on both clocks; `Infinity`: never).
 */
function openScope(where: string, ms: number): CancelScope {
  const kernel = currentKernel(where);
  const scope = new CancelScope(kernel.current!, where, ms);
  if (ms === 0) scope.cancel();
  else if (ms !== Infinity) kernel.timers.add(scope, kernel.now() + ms);
  return scope;
}

/**
 * Runs an awaitable with the running fiber's cancellations held back until
 * it ends: its own `cancel()` and the expiries of the scopes open around the
 * shield. Scopes opened inside the shield expire as usual.
 */
export function* shieldRun<T>(awaitable: Awaitable<T>): Coroutine<T> {
  const fiber = currentFiber("shield()");
  const ext = fiber.extra;
  const outer = ext.shieldAt;
  ext.shieldAt = ext.innermost?.depth ?? 0;
  const pending = fiber.cancelPending;
  if (pending !== null) { // arrived before the shield, not delivered yet: held too
    fiber.cancelPending = null;
    hold(ext, pending);
  }
  try {
    return yield* awaitable;
  } finally {
    ext.shieldAt = outer;
    const held = ext.held;
    if (held !== null && depthOf(held) > outer) { // no longer held: due at the next suspension
      ext.held = null;
      const now = fiber.cancelPending;
      if (now === null || depthOf(held) < depthOf(now)) fiber.cancelPending = held;
    }
  }
}

/** What `TaskGroup.start()` and its child share until the child calls `ready()`. */
class StartBox {
  /** 0: waiting; 1: ready; 2: the child failed or ended first; 3: it was cancelled first. */
  state = 0;
  value: unknown = undefined;
  readonly parked: WaitQueue;
  constructor(readonly name: () => string) {
    this.parked = new WaitQueue(() => `TaskGroup.start() of "${name()}"`);
  }
}

/**
 * The bookkeeping of one task group: its owner (the fiber running the body),
 * the cancel scope of the body, the live children and the errors in the order
 * they happened. A child's outcome reaches `ended` from `Kernel.#finish`.
 */
export class Group {
  readonly children: Set<Fiber> = new Set();
  readonly errors: unknown[] = [];
  readonly scope: CancelScope;
  readonly parked: WaitQueue;
  /** 0: the body runs; 1: waiting for the children; 2: ended. */
  phase = 0;
  failed = false;
  /** How many children were spawned, for the description of the wait. */
  spawned = 0;

  constructor(readonly owner: Fiber, readonly where: string) {
    this.scope = new CancelScope(owner, where);
    this.parked = new WaitQueue(() => `${where} (${this.children.size} of ${this.spawned} left)`);
  }

  /** Spawns a child; once the group has failed, the child starts cancelled. */
  spawn(
    where: string,
    it: Iterator<unknown, unknown, unknown>,
    name?: string,
    signal?: AbortSignal,
  ): Fiber {
    if (this.phase === 2) {
      throw new Error(
        `${where}: the task group has ended; spawn children only while its body or children run`,
      );
    }
    const fiber = this.owner.kernel.spawn(it, name, signal);
    fiber.group = this;
    this.children.add(fiber);
    this.spawned++;
    if (this.failed) fiber.kernel.cancel(fiber, this.scope.reason);
    return fiber;
  }

  /** Cancels every live child (not the body). */
  cancel(reason?: unknown): void {
    for (const child of this.children) child.kernel.cancel(child, reason);
  }

  /** A child ended; `failure` says whether with an error to report. */
  ended(fiber: Fiber, failure: boolean): void {
    this.children.delete(fiber);
    const start = fiber.ext?.start ?? null;
    if (start !== null) {
      fiber.ext!.start = null;
      start.state = fiber.state === RETURNED || failure ? 2 : 3;
      start.value = fiber.state === RETURNED
        ? new Error(`TaskGroup.start(): task "${fiber.name}" ended without calling ready()`)
        : fiber.value;
      start.parked.wakeOne();
    } else if (failure) {
      this.errors.push(fiber.value);
      this.fail();
    }
    if (this.children.size === 0) this.parked.wakeOne();
  }

  /** The first failure: cancels the body (if still running) and every child. */
  fail(): void {
    if (this.stop(this.scope.reason) && this.phase === 0) this.scope.cancel();
  }

  /** Cancels the children, once: from now on the group is failing. False if it already was. */
  stop(reason: unknown): boolean {
    if (this.failed) return false;
    this.failed = true;
    this.cancel(reason);
    return true;
  }

  /** Spawns `it` and parks until its `ready(value)` (made by `makeIt`) is called. */
  *start<R>(
    where: string,
    makeIt: (ready: (value: R) => void) => Iterator<unknown, unknown, unknown>,
    name?: string,
    signal?: AbortSignal,
  ): Coroutine<R> {
    let fiber: Fiber | null = null;
    const box = new StartBox(() => fiber?.name ?? "?");
    const ready = (value: R): void => {
      if (box.state !== 0) {
        throw new Error(`${where}: ready() was already called, or the start is over`);
      }
      box.state = 1;
      box.value = value;
      if (fiber !== null) fiber.ext!.start = null;
      box.parked.wakeOne();
    };
    fiber = this.spawn(where, makeIt(ready), name, signal);
    if (box.state === 0) fiber.extra.start = box;
    try {
      while (box.state === 0) yield box.parked;
    } catch (error) {
      if (box.state === 0) {
        fiber.ext!.start = null; // a plain child now: cancelled, and awaited by the group
        fiber.kernel.cancel(fiber);
      }
      throw error;
    }
    if (box.state === 1) return box.value as R;
    // Cancelled first, most likely with the whole group: take our own cancellation if one is due.
    if (box.state === 3 && fiber.kernel.current!.cancelPending !== null) yield;
    throw box.value;
  }
}

/**
 * Runs a task group on the running fiber: `body(group)` inline under the
 * group's cancel scope, then waits for every child. See "Structured
 * concurrency" in DESIGN.md; the decisions are in scope.ts's header.
 */
export function* runGroup<T>(
  where: string,
  body: (group: Group) => Awaitable<T>,
): Coroutine<T> {
  const owner = currentFiber(where);
  const group = new Group(owner, where);
  let value: T | undefined;
  let cancelled: CancelledError | null = null; // a cancellation aimed at the owner: it propagates
  try {
    try {
      value = yield* body(group);
      group.phase = 1;
    } catch (error) {
      group.phase = 1;
      if (group.scope.caught(error)) {
        // A child failed and cancelled the body: its error is in group.errors.
      } else if (isCancelOf(owner, error)) {
        cancelled = error as CancelledError; // the owner is cancelled: so are the children, then it propagates
        group.stop(cancelled.reason);
      } else {
        group.errors.push(error); // the body failed: like a child's failure
        group.fail();
      }
    }
    while (group.children.size > 0) {
      try {
        yield group.parked;
      } catch (error) {
        // A cancellation of the owner while it waits: cancel the children once,
        // then keep waiting (a second cancel() does not cut the wait short).
        if (group.scope.caught(error) || !isCancelOf(owner, error)) continue;
        if (cancelled === null || depthOf(error as CancelledError) < depthOf(cancelled)) {
          cancelled = error as CancelledError; // the widest one propagates
        }
        group.stop((error as CancelledError).reason);
      }
    }
  } finally {
    group.phase = 2;
    group.scope.close();
  }
  const errors = group.errors;
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) {
    throw new AggregateError(errors, `${where}: ${errors.length} errors, the first first`);
  }
  if (cancelled !== null) throw cancelled;
  return value as T;
}

/** Whether `error` is a cancellation of `fiber` itself: its own `cancel()` or one of its scopes. */
function isCancelOf(fiber: Fiber, error: unknown): boolean {
  if (!(error instanceof CancelledError)) return false;
  const owner = cancelOwners.get(error);
  return owner === fiber || (owner instanceof CancelScope && owner.fiber === fiber);
}

/**
 * The wait on one promise. Its handlers are attached as soon as it is made.
 * With an AbortController (`fromPromise((signal) => …)`), a cancellation of
 * the waiting task aborts it with the CancelledError as the reason.
 */
export class PromiseWait<T> extends Blocker {
  #settled = 0; // 1: fulfilled, 2: rejected
  #value: unknown = undefined;
  #fiber: Fiber | null = null;
  readonly #controller: AbortController | null;

  constructor(promise: PromiseLike<T>, controller: AbortController | null = null) {
    super(true);
    this.#controller = controller;
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
    if (this.#settled === 0) {
      try {
        yield this;
      } catch (error) {
        // Cancelled while waiting: stop the host work (its later rejection is consumed above).
        if (this.#controller !== null && this.#settled === 0) this.#controller.abort(error);
        throw error;
      }
    }
    if (this.#settled === 2) throw this.#value;
    return this.#value as T;
  }
}

/** What a task runs: a generator or iterator as is, an Awaitable's iterator, a promise's wait. */
export function iteratorOf(
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
      return new PromiseWait(task as PromiseLike<unknown>).wait();
    }
  }
  throw new TypeError(
    `${where}: '${name}' must be a generator, an Awaitable, an iterator or a promise, received ${
      showValue(task)
    }`,
  );
}

/**
 * What a combinator (`gather`, `deadline`, …) runs for one of its arguments:
 * a generator or other Awaitable as it is; a Task joined, and cancelled and
 * awaited if the join is cut short.
 */
export function owned<T>(awaitable: Awaitable<T>): Awaitable<T> {
  return awaitable instanceof Task ? joinOrCancel(awaitable) : awaitable;
}

/** Joins a task; if the join is cut short (a cancellation), cancels the task and waits for it. */
function* joinOrCancel<T>(task: Task<T>): Coroutine<T> {
  try {
    return yield* task;
  } finally {
    if (!task.done) {
      task.cancel();
      yield* joinQuietly(task);
      // An error it threw while unwinding is not lost: it replaces the cancellation.
      const fiber = fiberOf(task);
      if (fiber.state === FAILED && cancelOwners.get(fiber.value as object) !== fiber) {
        // deno-lint-ignore no-unsafe-finally -- on purpose: that error must not vanish
        throw fiber.value;
      }
    }
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

/**
 * Runs an awaitable inline under a cancel scope that expires after `ms`
 * (`deadline`, `moveOnAfter`); a Task is joined, and cancelled and awaited on
 * expiry. On its own expiry, returns what `expired()` gives (or throws what
 * it throws); any other error passes through.
 */
export function timed<T, E>(
  where: string,
  awaitable: Awaitable<T>,
  ms: number,
  expired: () => E,
): Coroutine<T | E> {
  if (awaitable instanceof Task) claim(awaitable);
  return new Timed(where, awaitable, ms, expired) as unknown as Coroutine<T | E>;
}

/**
 * `timed` written out as an iterator rather than a generator: it is the
 * timeout around every `recv`, and this form halves its cost. It opens the
 * scope at the first `next()`, forwards every step to the awaitable, and
 * closes the scope when the awaitable ends, however it ends.
 */
class Timed<T, E> implements Iterator<unknown, T | E, unknown> {
  #inner: Iterator<unknown, T, unknown> | null = null;
  #scope: CancelScope | null = null;
  #closed = false;

  constructor(
    readonly where: string,
    readonly awaitable: Awaitable<T>,
    readonly ms: number,
    readonly expired: () => E,
  ) {}

  next(value?: unknown): IteratorResult<unknown, T | E> {
    let r: IteratorResult<unknown, T>;
    try {
      if (this.#scope === null) this.#open();
      r = this.#inner!.next(value);
    } catch (error) {
      return this.#failed(error);
    }
    return r.done ? this.#end(r) : r;
  }
  throw(error: unknown): IteratorResult<unknown, T | E> {
    const inner = this.#inner;
    if (inner === null) throw error; // never started: nothing to unwind
    let r: IteratorResult<unknown, T>;
    try {
      if (inner.throw === undefined) {
        inner.return?.();
        throw error;
      }
      r = inner.throw(error);
    } catch (thrown) {
      return this.#failed(thrown);
    }
    return r.done ? this.#end(r) : r;
  }
  return(value?: unknown): IteratorResult<unknown, T | E> {
    try {
      this.#inner?.return?.();
    } finally {
      this.#close();
    }
    return { value: value as T, done: true };
  }
  [Symbol.iterator](): this {
    return this;
  }
  /** Closes the scope once, however the awaitable ends (a second close would unlink another). */
  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#scope?.close();
  }
  #open(): void {
    this.#scope = openScope(this.where, this.ms);
    this.#inner = owned(this.awaitable)[Symbol.iterator]();
  }
  #end(r: IteratorResult<unknown, T>): IteratorResult<unknown, T | E> {
    this.#close();
    return r;
  }
  #failed(error: unknown): IteratorResult<unknown, T | E> {
    const scope = this.#scope;
    if (scope === null) throw error;
    this.#close();
    if (!scope.caught(error)) throw error;
    const wider = scope.wider(); // a cancel() or an outer expiry came meanwhile: it wins
    if (wider !== null) throw wider;
    return { value: this.expired(), done: true };
  }
}

/** What a fiber waits on, as `DeadlockError` and `Loop.dump()` say it; `null` if not parked. */
export function waitingOn(fiber: Fiber): string | null {
  return fiber.blocker === null ? null : fiber.blocker.describe();
}

/** The state of a fiber, for `Loop.dump()`. */
export function stateOf(fiber: Fiber): string {
  if (fiber.state >= RETURNED) return "done";
  if (fiber.kernel.current === fiber && fiber.kernel.running) return "running";
  return fiber.blocker === null ? "ready" : "parked";
}
