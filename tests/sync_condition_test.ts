// Copyright 2026 the boucle authors. MIT license.
// Condition and Barrier: behaviour, cancellation at each suspension point, bad input.
import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { describe, it } from "@std/testing/bdd";
import {
  type Awaitable,
  CancelledError,
  type Coroutine,
  DeadlockError,
  gather,
  Loop,
  sleep,
} from "../loop.ts";
import { Barrier, Condition, Lock } from "../sync.ts";

/** Runs `main` on a fresh virtual-time loop and returns its result. */
function runVirtual<T>(main: Coroutine<T>): Promise<T> {
  return new Loop({ virtualTime: true }).runTask(main);
}

/** What an awaitable ended with, as a log line. */
function* outcome(what: Awaitable<unknown>): Coroutine<string> {
  try {
    return `returned ${yield* what}`;
  } catch (error) {
    return `${(error as Error).name}: ${(error as Error).message}`;
  }
}

/** The loop clock now. */
function now(): number {
  return Loop.current.time();
}

// ---------------------------------------------------------------------------
// Condition

describe("Condition", () => {
  it("wait() releases the lock while it waits and holds it again when it returns", async () => {
    const lock = new Lock();
    const condition = new Condition(lock);
    const log: string[] = [];
    function* waiter(name: string): Coroutine {
      using _held = yield* condition.acquire();
      log.push(`${name} waits at ${now()}, locked ${lock.locked}`);
      yield* condition.wait();
      log.push(`${name} woke at ${now()}, locked ${lock.locked}`);
      yield* sleep(5); // still holding it
      log.push(`${name} releases at ${now()}`);
    }
    function* notifier(): Coroutine {
      yield* sleep(10);
      using _held = yield* condition.acquire();
      log.push(`notify at ${now()}`);
      condition.notify(2);
      yield* sleep(10);
      log.push(`notifier releases at ${now()}`);
    }
    await runVirtual(gather(waiter("a"), waiter("b"), notifier()));
    assertEquals(log, [
      "a waits at 0, locked true",
      "b waits at 0, locked true",
      "notify at 10",
      "notifier releases at 20",
      "a woke at 20, locked true",
      "a releases at 25",
      "b woke at 25, locked true",
      "b releases at 30",
    ]);
    assertFalse(lock.locked);
  });

  it("notify() wakes waiters one at a time in FIFO order; notify(0) wakes none", async () => {
    const condition = new Condition();
    const log: string[] = [];
    function* waiter(name: string): Coroutine {
      using _held = yield* condition.acquire();
      yield* condition.wait();
      log.push(`${name} at ${now()}`);
    }
    function* notifier(): Coroutine {
      for (const n of [0, 1, 1, 0, 1]) {
        yield* sleep(10);
        using _held = yield* condition.acquire();
        condition.notify(n);
      }
    }
    await runVirtual(gather(waiter("a"), waiter("b"), waiter("c"), notifier()));
    assertEquals(log, ["a at 20", "b at 30", "c at 50"]);
  });

  it("notifyAll() and notify(Infinity) wake every waiter; a later waiter waits for the next", async () => {
    const condition = new Condition();
    const log: string[] = [];
    function* waiter(name: string, delay: number): Coroutine {
      yield* sleep(delay);
      using _held = yield* condition.acquire();
      yield* condition.wait();
      log.push(`${name} at ${now()}`);
    }
    function* notifier(): Coroutine {
      yield* sleep(10);
      {
        using _held = yield* condition.acquire();
        condition.notifyAll();
      }
      yield* sleep(10);
      using _held = yield* condition.acquire();
      condition.notify(Infinity);
    }
    await runVirtual(
      gather(waiter("a", 0), waiter("b", 0), waiter("late", 15), waiter("c", 5), notifier()),
    );
    assertEquals(log, ["a at 10", "b at 10", "c at 10", "late at 20"]);
  });

  it("notify() with nobody waiting is not remembered", async () => {
    const condition = new Condition();
    const log: string[] = [];
    function* notifyAt(ms: number): Coroutine {
      yield* sleep(ms);
      using _held = yield* condition.acquire();
      condition.notify();
      condition.notifyAll();
      log.push(`notified at ${now()}`);
    }
    function* waiter(): Coroutine {
      yield* sleep(10);
      using _held = yield* condition.acquire();
      yield* condition.wait();
      log.push(`woke at ${now()}`);
    }
    await runVirtual(gather(notifyAt(5), waiter(), notifyAt(20)));
    assertEquals(log, ["notified at 5", "notified at 20", "woke at 20"]);
  });

  it("waitFor() returns the predicate's truthy value, checking it again after each wake", async () => {
    const condition = new Condition();
    const log: string[] = [];
    let items: string[] = [];
    function* consumer(): Coroutine<string[]> {
      using _held = yield* condition.acquire();
      return yield* condition.waitFor(() => {
        log.push(`check at ${now()}: ${items.length} items`);
        return items.length >= 2 && items;
      });
    }
    function* producer(): Coroutine {
      for (const item of ["x", "y"]) {
        yield* sleep(10);
        using _held = yield* condition.acquire();
        items = [...items, item];
        condition.notify();
      }
    }
    const [got] = await runVirtual(gather(consumer(), producer()));
    assertEquals(got, ["x", "y"]);
    assertEquals(log, ["check at 0: 0 items", "check at 10: 1 items", "check at 20: 2 items"]);
  });

  it("waitFor() returns at once, without waiting, when the predicate already holds", async () => {
    const condition = new Condition();
    const value = await runVirtual(function* () {
      using _held = yield* condition.acquire();
      return yield* condition.waitFor(() => 42);
    }());
    assertEquals(value, 42);
  });

  it("acquire() and release() are its lock's; a default lock is its own", async () => {
    const lock = new Lock();
    const shared = new Condition(lock);
    const own = new Condition();
    await runVirtual(function* () {
      yield* shared.acquire();
      assert(lock.locked);
      shared.release();
      assertFalse(lock.locked);
      using _held = yield* own.acquire();
      assertFalse(lock.locked);
      own.notify(); // its own lock is held
    }());
    assertThrows(() => own.release(), Error, "Lock.release(): the lock is not held");
  });

  it("wait(), waitFor(), notify() and notifyAll() throw an Error when the lock is not held", async () => {
    const condition = new Condition(undefined, { name: "c" });
    const log: string[] = [];
    await runVirtual(function* () {
      log.push(yield* outcome(condition.wait()));
      log.push(yield* outcome(condition.waitFor(() => true)));
    }());
    for (const call of [() => condition.notify(), () => condition.notifyAll()]) {
      try {
        call();
      } catch (error) {
        log.push((error as Error).message);
      }
    }
    const hint = "the lock is not held; take it first with `using _ = yield* condition.acquire();`";
    assertEquals(log, [
      `Error: Condition("c").wait(): ${hint}`,
      `Error: Condition("c").waitFor(): ${hint}`,
      `Condition("c").notify(): ${hint}`,
      `Condition("c").notifyAll(): ${hint}`,
    ]);
  });

  it("rejects bad arguments, naming them and the value", () => {
    const condition = new Condition();
    const cases: [() => unknown, typeof RangeError | typeof TypeError, string][] = [
      [
        () => condition.notify(-1),
        RangeError,
        "Condition.notify(n): 'n' must be an integer >= 0 or Infinity, received -1",
      ],
      [() => condition.notify(1.5), RangeError, "received 1.5"],
      [() => condition.notify(NaN), RangeError, "received NaN"],
      [
        () => condition.notify("1" as never),
        TypeError,
        `Condition.notify(n): 'n' must be an integer >= 0 or Infinity, received "1"`,
      ],
      [
        () => condition.waitFor(true as never),
        TypeError,
        "Condition.waitFor(predicate): 'predicate' must be a function, received true",
      ],
      [
        () => new Condition({} as never),
        TypeError,
        "new Condition(lock): 'lock' must be a Lock, received an object",
      ],
      [() => new Condition(null as never), TypeError, "received null"],
    ];
    for (const [call, type, message] of cases) assertThrows(call, type, message);
  });

  it("a deadlock names the condition, and the lock a condition made itself after it", async () => {
    const loop = new Loop({ virtualTime: true });
    const named = new Condition(undefined, { name: "jobs" });
    const unnamed = new Condition();
    loop.addTask(
      function* () {
        using _held = yield* named.acquire();
        yield* named.wait();
      }(),
      { name: "waiter" },
    );
    loop.addTask(
      function* () {
        using _held = yield* unnamed.acquire();
        yield* unnamed.wait();
      }(),
      { name: "anonymous" },
    );
    loop.addTask(
      function* () {
        yield* sleep(1);
        yield* named.acquire(); // and never releases
        named.notify(); // the waiter now waits for the lock
      }(),
      { name: "holder" },
    );
    const error = await assertRejects(() => loop.run(), DeadlockError);
    assertStringIncludes(error.message, '"waiter" waits on Lock("jobs").acquire()');
    assertStringIncludes(error.message, '"anonymous" waits on Condition.wait()');
    assertEquals(error.tasks.map((task) => task.name), ["waiter", "anonymous"]);
  });

  describe("cancellation", () => {
    it("a wait() cancelled while parked takes the lock back before the CancelledError leaves it", async () => {
      const loop = new Loop({ virtualTime: true });
      const lock = new Lock();
      const condition = new Condition(lock);
      const log: string[] = [];
      const waiter = loop.addTask(function* () {
        using _held = yield* condition.acquire();
        try {
          yield* condition.wait();
        } catch (error) {
          assertInstanceOf(error, CancelledError);
          log.push(`caught at ${now()}, locked ${lock.locked}`);
          throw error;
        }
      }());
      loop.addTask(function* () {
        yield* sleep(10);
        using _held = yield* condition.acquire();
        waiter.cancel("stop");
        log.push("cancelled it, holding the lock");
        yield* sleep(10);
        log.push(`releases at ${now()}`);
      }());
      await loop.run();
      assertEquals(log, [
        "cancelled it, holding the lock",
        "releases at 20",
        "caught at 20, locked true",
      ]);
      assert(waiter.cancelled);
      assertFalse(lock.locked);
    });

    it("a wait() cancelled while it takes the lock back, even twice, still takes it first", async () => {
      const loop = new Loop({ virtualTime: true });
      const lock = new Lock();
      const condition = new Condition(lock);
      const log: string[] = [];
      const waiter = loop.addTask(function* () {
        using _held = yield* condition.acquire();
        try {
          yield* condition.wait();
          log.push("wait returned");
        } catch (error) {
          assertInstanceOf(error, CancelledError);
          log.push(`caught "${error.reason}" at ${now()}, locked ${lock.locked}`);
          throw error;
        }
      }());
      loop.addTask(function* () {
        yield* sleep(10);
        using _held = yield* condition.acquire();
        condition.notify(); // the waiter goes on to wait for the lock
        yield* sleep(10);
        waiter.cancel("first");
        yield* sleep(10);
        waiter.cancel("second");
        yield* sleep(10);
        log.push(`releases at ${now()}`);
      }());
      await loop.run();
      assertEquals(log, ["releases at 40", 'caught "first" at 40, locked true']);
      assert(waiter.cancelled);
      assertFalse(lock.locked);
    });

    it("a waiter notified and cancelled before it runs passes the notification on", async () => {
      const loop = new Loop({ virtualTime: true });
      const condition = new Condition();
      const log: string[] = [];
      function* waiter(name: string): Coroutine {
        using _held = yield* condition.acquire();
        log.push(`${name}: ${yield* outcome(condition.wait())} at ${now()}`);
      }
      const a = loop.addTask(waiter("a"));
      loop.addTask(waiter("b"));
      loop.addTask(waiter("c"));
      loop.addTask(function* () {
        yield* sleep(10);
        using _held = yield* condition.acquire();
        condition.notify(); // wakes a…
        a.cancel("stop"); // …which is cancelled before it runs
        yield* sleep(5);
      }());
      loop.addTask(function* () {
        yield* sleep(20);
        using _held = yield* condition.acquire();
        condition.notify();
      }());
      await loop.run();
      assertEquals(log, [
        "a: CancelledError: The task was cancelled: stop at 15",
        "b: returned undefined at 15",
        "c: returned undefined at 20",
      ]);
    });

    it("a waitFor() cancelled while parked takes the lock back and checks nothing more", async () => {
      const loop = new Loop({ virtualTime: true });
      const lock = new Lock();
      const condition = new Condition(lock);
      const log: string[] = [];
      const waiter = loop.addTask(function* () {
        using _held = yield* condition.acquire();
        const result = yield* outcome(condition.waitFor(() => {
          log.push(`check at ${now()}`);
          return false;
        }));
        log.push(`${result} at ${now()}, locked ${lock.locked}`);
      }());
      loop.addTask(function* () {
        yield* sleep(10);
        {
          using _held = yield* condition.acquire();
          condition.notify();
        }
        yield* sleep(5);
        waiter.cancel("stop"); // it waits again, on the condition
      }());
      await loop.run();
      assertEquals(log, [
        "check at 0",
        "check at 10",
        "CancelledError: The task was cancelled: stop at 15, locked true",
      ]);
    });
  });
});

// ---------------------------------------------------------------------------
// Barrier

describe("Barrier", () => {
  it("parks until n tasks wait, then releases them all with their arrival index", async () => {
    const barrier = new Barrier(3);
    const log: string[] = [];
    function* arrive(name: string, delay: number): Coroutine {
      yield* sleep(delay);
      log.push(`${name} arrives at ${now()}, ${barrier.waiting} waiting`);
      const index = yield* barrier.wait();
      log.push(`${name} leaves at ${now()} with index ${index}`);
    }
    await runVirtual(gather(arrive("a", 20), arrive("b", 10), arrive("c", 30)));
    assertEquals(log, [
      "b arrives at 10, 0 waiting",
      "a arrives at 20, 1 waiting",
      "c arrives at 30, 2 waiting",
      "c leaves at 30 with index 2",
      "b leaves at 30 with index 0",
      "a leaves at 30 with index 1",
    ]);
    assertEquals(barrier.waiting, 0);
  });

  it("is ready for the next round once a round is released", async () => {
    const barrier = new Barrier(2);
    const log: string[] = [];
    function* rounds(name: string, delay: number): Coroutine {
      for (let round = 1; round <= 3; round++) {
        yield* sleep(delay);
        const index = yield* barrier.wait();
        log.push(`${name} round ${round} at ${now()}: ${index}`);
      }
    }
    await runVirtual(gather(rounds("fast", 1), rounds("slow", 10)));
    assertEquals(log, [
      "slow round 1 at 10: 1",
      "fast round 1 at 10: 0",
      "slow round 2 at 20: 1",
      "fast round 2 at 20: 0",
      "slow round 3 at 30: 1",
      "fast round 3 at 30: 0",
    ]);
  });

  it("a round of more than n waiters: the n-th releases the first n, the rest start the next round", async () => {
    const barrier = new Barrier(2);
    const log: string[] = [];
    function* arrive(name: string): Coroutine {
      log.push(`${name}: ${yield* barrier.wait()}`);
    }
    await runVirtual(gather(arrive("a"), arrive("b"), arrive("c"), arrive("d")));
    assertEquals(log, ["b: 1", "d: 1", "a: 0", "c: 0"]);
  });

  it("Barrier(1) returns 0 at once, every time", async () => {
    const barrier = new Barrier(1);
    const indices = await runVirtual(function* () {
      return [yield* barrier.wait(), yield* barrier.wait()];
    }());
    assertEquals(indices, [0, 0]);
  });

  it("rejects a bad n or name, naming the argument and the value", () => {
    const cases: [() => unknown, typeof RangeError | typeof TypeError, string][] = [
      [() => new Barrier(0), RangeError, "new Barrier(n): 'n' must be an integer >= 1, received 0"],
      [() => new Barrier(-2), RangeError, "received -2"],
      [() => new Barrier(1.5), RangeError, "received 1.5"],
      [() => new Barrier(Infinity), RangeError, "received Infinity"],
      [
        () => new Barrier("2" as never),
        TypeError,
        `new Barrier(n): 'n' must be an integer >= 1, received "2"`,
      ],
      [
        () => new Barrier(2, { name: 7 as never }),
        TypeError,
        "new Barrier(n, options): 'options.name' must be a string, received 7",
      ],
    ];
    for (const [make, type, message] of cases) assertThrows(make, type, message);
  });

  describe("cancellation", () => {
    it("a wait() cancelled while parked leaves the count as it was", async () => {
      const loop = new Loop({ virtualTime: true });
      const barrier = new Barrier(2);
      const log: string[] = [];
      function* arrive(name: string): Coroutine {
        log.push(`${name} waits, ${barrier.waiting} waiting`);
        log.push(`${name}: ${yield* outcome(barrier.wait())} at ${now()}`);
      }
      const a = loop.addTask(arrive("a"));
      loop.addTask(function* () {
        yield* sleep(10);
        a.cancel("stop");
        yield* sleep(0);
        log.push(`after the cancel, ${barrier.waiting} waiting`);
        yield* sleep(10);
        yield* arrive("b"); // alone in the round again
      }());
      loop.addTask(function* () {
        yield* sleep(30);
        yield* arrive("c");
      }());
      await loop.run();
      assertEquals(log, [
        "a waits, 0 waiting",
        "a: CancelledError: The task was cancelled: stop at 10",
        "after the cancel, 0 waiting",
        "b waits, 0 waiting",
        "c waits, 1 waiting",
        "c: returned 1 at 30",
        "b: returned 0 at 30",
      ]);
    });

    it("a waiter released and cancelled before it runs still gets its index; the cancel comes next", async () => {
      const loop = new Loop({ virtualTime: true });
      const barrier = new Barrier(2);
      const log: string[] = [];
      const a = loop.addTask(function* () {
        log.push(`a: ${yield* outcome(barrier.wait())}`);
        log.push(`a then: ${yield* outcome(sleep(1))}`);
      }());
      loop.addTask(function* () {
        yield* sleep(10);
        log.push(`b: ${yield* outcome(barrier.wait())}`);
        a.cancel("stop");
      }());
      await loop.run();
      assertEquals(log, [
        "b: returned 1",
        "a: returned 0",
        "a then: CancelledError: The task was cancelled: stop",
      ]);
      assertEquals(barrier.waiting, 0);
    });
  });
});
