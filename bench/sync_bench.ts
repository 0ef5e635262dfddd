// Copyright 2026 the boucle authors. MIT license.
// The waiting primitives, each beside its baseline: the same work written with
// plain promises and async functions, which is what users write without us.
// The promise-based Lock, Queue and Condition below are the minimal
// hand-written ones.
//
//   deno bench bench/sync_bench.ts

import { type Coroutine, gather, interrupt, Loop } from "../mod.ts";
import { Condition, Event, Lock, Queue, QueueClosedError } from "../sync.ts";
import { check } from "./_common.ts";

const GATHERED = 100_000;
const HANDOFFS = 10_000;
const ROUND_TRIPS = 10_000;
const WAITERS = 10_000;
const PIPELINE_ITEMS = 100_000;
/** The pipeline's queues hold this many items: bounded, so back-pressure plays. */
const PIPELINE_MAXSIZE = 64;
const CONDITION_TURNS = 10_000;

// gather of 100,000 tiny tasks ------------------------------------------------

Deno.bench({
  name: "Promise.all of async functions (baseline)",
  group: "gather 100,000",
  baseline: true,
  n: 20,
  warmup: 5,
  async fn() {
    // deno-lint-ignore require-await -- the tiny task does nothing but end
    async function tiny(i: number): Promise<number> {
      return i;
    }
    const all: Promise<number>[] = new Array(GATHERED);
    for (let i = 0; i < GATHERED; i++) all[i] = tiny(i);
    const results = await Promise.all(all);
    check(results.length === GATHERED && results[GATHERED - 1] === GATHERED - 1, "results");
  },
});

Deno.bench({
  name: "boucle gather() of generators",
  group: "gather 100,000",
  n: 20,
  warmup: 5,
  async fn() {
    // deno-lint-ignore require-yield -- the tiny task does nothing but end
    function* tiny(i: number): Coroutine<number> {
      return i;
    }
    const all: Coroutine<number>[] = new Array(GATHERED);
    for (let i = 0; i < GATHERED; i++) all[i] = tiny(i);
    const results = await new Loop().runTask(gather(...all));
    check(results.length === GATHERED && results[GATHERED - 1] === GATHERED - 1, "results");
  },
});

// Lock handed between two tasks ------------------------------------------------

/** A FIFO lock on promises; `release()` hands it straight to the next waiter. */
class PromiseLock {
  #locked = false;
  #waiters: (() => void)[] = [];
  acquire(): Promise<void> | void {
    if (!this.#locked) {
      this.#locked = true;
      return;
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
  release(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#locked = false;
  }
}

/** Counts acquisitions and how often the holder changed (a hand-off). */
class Holders {
  acquired = 0;
  handoffs = 0;
  #last = -1;
  hold(who: number): void {
    this.acquired++;
    if (who !== this.#last) this.handoffs++;
    this.#last = who;
  }
  verify(): void {
    check(this.acquired === 2 * HANDOFFS, `${this.acquired} acquisitions`);
    check(this.handoffs === 2 * HANDOFFS, `${this.handoffs} hand-offs`);
  }
}

Deno.bench({
  name: "promise lock, async functions (baseline)",
  group: "Lock hand-off",
  baseline: true,
  async fn() {
    const lock = new PromiseLock();
    const holders = new Holders();
    async function worker(who: number): Promise<void> {
      for (let i = 0; i < HANDOFFS; i++) {
        await lock.acquire();
        try {
          holders.hold(who);
          await null; // hold it across a switch, so the other task queues
        } finally {
          lock.release();
        }
      }
    }
    await Promise.all([worker(0), worker(1)]);
    holders.verify();
  },
});

Deno.bench({
  name: "boucle Lock",
  group: "Lock hand-off",
  async fn() {
    const lock = new Lock();
    const holders = new Holders();
    function* worker(who: number): Coroutine<void> {
      for (let i = 0; i < HANDOFFS; i++) {
        using _ = yield* lock.acquire();
        holders.hold(who);
        yield* interrupt(); // hold it across a switch, so the other task queues
      }
    }
    const loop = new Loop();
    loop.addTask(worker(0));
    loop.addTask(worker(1));
    await loop.run();
    holders.verify();
  },
});

// Queue ping-pong between two tasks ---------------------------------------------

/**
 * A FIFO on promises: `get()` waits while it is empty, `put()` while it is
 * full (unbounded by default); after `close()`, `get()` drains what is left,
 * then throws `Closed`.
 */
class PromiseQueue<T> {
  #items: T[] = [];
  #getters: { resolve: (item: T) => void; reject: (error: Error) => void }[] = [];
  #putters: { item: T; resolve: () => void }[] = [];
  #closed = false;
  constructor(readonly maxsize = Infinity) {}
  put(item: T): Promise<void> | void {
    const getter = this.#getters.shift();
    if (getter) getter.resolve(item);
    else if (this.#items.length < this.maxsize) this.#items.push(item);
    else return new Promise((resolve) => this.#putters.push({ item, resolve }));
  }
  get(): Promise<T> | T {
    if (this.#items.length > 0) {
      const item = this.#items.shift()!;
      const putter = this.#putters.shift();
      if (putter) {
        this.#items.push(putter.item);
        putter.resolve();
      }
      return item;
    }
    if (this.#closed) throw new Closed();
    return new Promise((resolve, reject) => this.#getters.push({ resolve, reject }));
  }
  close(): void {
    this.#closed = true;
    for (const getter of this.#getters.splice(0)) getter.reject(new Closed());
  }
}

/** What a closed, empty PromiseQueue throws. */
class Closed extends Error {}

Deno.bench({
  name: "promise queue, async functions (baseline)",
  group: "Queue ping-pong",
  baseline: true,
  async fn() {
    const ping = new PromiseQueue<number>();
    const pong = new PromiseQueue<number>();
    let returned = 0;
    async function player(): Promise<void> {
      for (let i = 0; i < ROUND_TRIPS; i++) {
        ping.put(i);
        if ((await pong.get()) === i) returned++;
      }
    }
    async function echoer(): Promise<void> {
      for (let i = 0; i < ROUND_TRIPS; i++) pong.put(await ping.get());
    }
    await Promise.all([player(), echoer()]);
    check(returned === ROUND_TRIPS, `${returned} round trips`);
  },
});

Deno.bench({
  name: "boucle Queue",
  group: "Queue ping-pong",
  async fn() {
    const ping = new Queue<number>();
    const pong = new Queue<number>();
    let returned = 0;
    function* player(): Coroutine<void> {
      for (let i = 0; i < ROUND_TRIPS; i++) {
        yield* ping.put(i);
        if ((yield* pong.get()) === i) returned++;
      }
    }
    function* echoer(): Coroutine<void> {
      for (let i = 0; i < ROUND_TRIPS; i++) yield* pong.put(yield* ping.get());
    }
    const loop = new Loop();
    loop.addTask(player());
    loop.addTask(echoer());
    await loop.run();
    check(returned === ROUND_TRIPS, `${returned} round trips`);
  },
});

// A 3-stage pipeline of 100,000 items, ended by close() -------------------------

Deno.bench({
  name: "promise queues, async functions (baseline)",
  group: "Queue pipeline 100,000",
  baseline: true,
  async fn() {
    const numbers = new PromiseQueue<number>(PIPELINE_MAXSIZE);
    const squares = new PromiseQueue<number>(PIPELINE_MAXSIZE);
    async function produce(): Promise<void> {
      for (let i = 0; i < PIPELINE_ITEMS; i++) await numbers.put(i);
      numbers.close();
    }
    async function square(): Promise<void> {
      try {
        for (;;) await squares.put((await numbers.get()) % 1000);
      } catch (error) {
        if (!(error instanceof Closed)) throw error;
      }
      squares.close();
    }
    async function sum(): Promise<number> {
      let total = 0;
      try {
        for (;;) total += await squares.get();
      } catch (error) {
        if (!(error instanceof Closed)) throw error;
      }
      return total;
    }
    const [, , total] = await Promise.all([produce(), square(), sum()]);
    check(total === PIPELINE_TOTAL, `total ${total}`);
  },
});

Deno.bench({
  name: "boucle Queue with close()",
  group: "Queue pipeline 100,000",
  async fn() {
    const numbers = new Queue<number>(PIPELINE_MAXSIZE);
    const squares = new Queue<number>(PIPELINE_MAXSIZE);
    function* produce(): Coroutine<void> {
      for (let i = 0; i < PIPELINE_ITEMS; i++) yield* numbers.put(i);
      numbers.close();
    }
    function* square(): Coroutine<void> {
      try {
        for (;;) yield* squares.put((yield* numbers.get()) % 1000);
      } catch (error) {
        if (!(error instanceof QueueClosedError)) throw error;
      }
      squares.close();
    }
    function* sum(): Coroutine<number> {
      let total = 0;
      try {
        for (;;) total += yield* squares.get();
      } catch (error) {
        if (!(error instanceof QueueClosedError)) throw error;
      }
      return total;
    }
    const [, , total] = await new Loop().runTask(gather(produce(), square(), sum()));
    check(total === PIPELINE_TOTAL, `total ${total}`);
  },
});

/** What the pipeline's last stage adds up: the sum of i % 1000 over the items. */
const PIPELINE_TOTAL = (PIPELINE_ITEMS / 1000) * (999 * 1000 / 2);

// Condition: two tasks taking turns, notify/wait -----------------------------------

/** A condition on promises over PromiseLock, the way asyncio's is written. */
class PromiseCondition {
  readonly lock: PromiseLock = new PromiseLock();
  #waiters: (() => void)[] = [];
  async wait(): Promise<void> {
    this.lock.release();
    await new Promise<void>((resolve) => this.#waiters.push(resolve));
    await this.lock.acquire();
  }
  notify(): void {
    this.#waiters.shift()?.();
  }
}

Deno.bench({
  name: "promise condition, async functions (baseline)",
  group: "Condition turns",
  baseline: true,
  async fn() {
    const condition = new PromiseCondition();
    let turn = 0;
    let turns = 0;
    async function player(me: number): Promise<void> {
      for (let i = 0; i < CONDITION_TURNS; i++) {
        await condition.lock.acquire();
        try {
          while (turn !== me) await condition.wait();
          turn = 1 - me;
          turns++;
          condition.notify();
        } finally {
          condition.lock.release();
        }
      }
    }
    await Promise.all([player(0), player(1)]);
    check(turns === 2 * CONDITION_TURNS, `${turns} turns`);
  },
});

Deno.bench({
  name: "boucle Condition",
  group: "Condition turns",
  async fn() {
    const condition = new Condition();
    let turn = 0;
    let turns = 0;
    function* player(me: number): Coroutine<void> {
      for (let i = 0; i < CONDITION_TURNS; i++) {
        yield* condition.acquire();
        try {
          yield* condition.waitFor(() => turn === me);
          turn = 1 - me;
          turns++;
          condition.notify();
        } finally {
          condition.release();
        }
      }
    }
    const loop = new Loop();
    loop.addTask(player(0));
    loop.addTask(player(1));
    await loop.run();
    check(turns === 2 * CONDITION_TURNS, `${turns} turns`);
  },
});

// The same with `using`: V8 (Deno 2.9) makes a `using` scope in a generator
// cost about ten times a try/finally, which shows here and in "Lock hand-off".
Deno.bench({
  name: "boucle Condition, released by using",
  group: "Condition turns",
  async fn() {
    const condition = new Condition();
    let turn = 0;
    let turns = 0;
    function* player(me: number): Coroutine<void> {
      for (let i = 0; i < CONDITION_TURNS; i++) {
        using _ = yield* condition.acquire();
        yield* condition.waitFor(() => turn === me);
        turn = 1 - me;
        turns++;
        condition.notify();
      }
    }
    const loop = new Loop();
    loop.addTask(player(0));
    loop.addTask(player(1));
    await loop.run();
    check(turns === 2 * CONDITION_TURNS, `${turns} turns`);
  },
});

// Event waking 10,000 waiters ------------------------------------------------------

Deno.bench({
  name: "one promise awaited by async functions (baseline)",
  group: "Event wakes 10,000",
  baseline: true,
  async fn() {
    const { promise, resolve } = Promise.withResolvers<void>();
    let woke = 0;
    async function waiter(): Promise<void> {
      await promise;
      woke++;
    }
    const all: Promise<void>[] = new Array(WAITERS);
    for (let i = 0; i < WAITERS; i++) all[i] = waiter();
    resolve();
    await Promise.all(all);
    check(woke === WAITERS, `${woke} waiters woke`);
  },
});

Deno.bench({
  name: "boucle Event",
  group: "Event wakes 10,000",
  async fn() {
    const event = new Event();
    let woke = 0;
    function* waiter(): Coroutine<void> {
      yield* event.wait();
      woke++;
    }
    const loop = new Loop();
    for (let i = 0; i < WAITERS; i++) loop.addTask(waiter());
    // Added last, so it runs once every waiter has parked.
    // deno-lint-ignore require-yield -- it only sets the event
    loop.addTask(function* (): Coroutine<void> {
      event.set();
    }());
    await loop.run();
    check(woke === WAITERS, `${woke} waiters woke`);
  },
});
