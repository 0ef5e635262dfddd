// Copyright 2026 the boucle authors. MIT license.
// The waiting primitives, each beside its baseline: the same work written with
// plain promises and async functions, which is what users write without us.
// The promise-based Lock and Queue below are the minimal hand-written ones.
//
//   deno bench bench/sync_bench.ts

import { type Coroutine, gather, interrupt, Loop } from "../mod.ts";
import { Event, Lock, Queue } from "../sync.ts";
import { check } from "./_common.ts";

const GATHERED = 100_000;
const HANDOFFS = 10_000;
const ROUND_TRIPS = 10_000;
const WAITERS = 10_000;

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

/** An unbounded FIFO on promises: `get()` waits while it is empty. */
class PromiseQueue<T> {
  #items: T[] = [];
  #getters: ((item: T) => void)[] = [];
  put(item: T): void {
    const getter = this.#getters.shift();
    if (getter) getter(item);
    else this.#items.push(item);
  }
  get(): Promise<T> | T {
    if (this.#items.length > 0) return this.#items.shift()!;
    return new Promise((resolve) => this.#getters.push(resolve));
  }
}

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
