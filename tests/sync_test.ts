// Copyright 2026 the boucle authors. MIT license.
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
import { assertSpyCalls, spy } from "@std/testing/mock";
import {
  type Awaitable,
  CancelledError,
  type Coroutine,
  DeadlockError,
  gather,
  interrupt,
  Loop,
  sleep,
  type Task,
} from "../loop.ts";
import { Event, Lock, Queue, Semaphore, Waiter } from "../sync.ts";

/** Runs `main` on a fresh virtual-time loop and returns its result. */
function runVirtual<T>(main: Coroutine<T>): Promise<T> {
  return new Loop({ virtualTime: true }).runTask(main);
}

/** A task body that holds `sem` for `ms`, logging when it gets and gives back a permit. */
function* holder(log: string[], sem: Semaphore, name: string, ms: number): Coroutine {
  log.push(`${name} wants`);
  using _permit = yield* sem.acquire();
  log.push(`${name} in at ${Loop.current.time()}`);
  yield* sleep(ms);
  log.push(`${name} out at ${Loop.current.time()}`);
}

// ---------------------------------------------------------------------------
// Argument errors

Deno.test("constructors reject bad counts, naming the argument and the value", () => {
  const cases: [() => unknown, typeof RangeError | typeof TypeError, string][] = [
    [() => new Waiter(-1), RangeError, "new Waiter(n): 'n' must be an integer >= 0, received -1"],
    [() => new Waiter(1.5), RangeError, "new Waiter(n): 'n' must be an integer >= 0, received 1.5"],
    [() => new Waiter(NaN), RangeError, "received NaN"],
    [() => new Waiter(Infinity), RangeError, "received Infinity"],
    [() => new Waiter("2" as never), TypeError, "new Waiter(n): 'n' must be an integer >= 0"],
    [() => new Semaphore(1.5), RangeError, "new Semaphore(n): 'n' must be an integer >= 0"],
    [() => new Semaphore(-1), RangeError, "received -1"],
    [() => new Semaphore(undefined as never), TypeError, "new Semaphore(n): 'n'"],
    [() => new Queue(0), RangeError, "new Queue(maxsize): 'maxsize' must be an integer >= 1"],
    [() => new Queue(-1), RangeError, "new Queue(maxsize): 'maxsize'"],
    [() => new Queue(2.5), RangeError, "received 2.5"],
    [() => new Queue(NaN), RangeError, "received NaN"],
    [() => new Queue(-Infinity), RangeError, "received -Infinity"],
    [() => new Queue("3" as never), TypeError, "new Queue(maxsize): 'maxsize'"],
  ];
  for (const [make, type, message] of cases) assertThrows(make, type, message);
  // The limits themselves are legal.
  assertEquals(new Waiter(0).count, 0);
  assertEquals(new Waiter().count, 1);
  assertEquals(new Semaphore(0).value, 0);
  new Queue(1);
  new Queue(Infinity);
});

// ---------------------------------------------------------------------------
// Waiter

describe("Waiter", () => {
  it("counts down with set(), with no effect at zero", () => {
    const waiter = new Waiter(2);
    assertEquals(waiter.count, 2);
    waiter.set();
    assertEquals(waiter.count, 1);
    waiter.set();
    assertEquals(waiter.count, 0);
    waiter.set();
    assertEquals(waiter.count, 0);
  });

  it("parks every waiter until the count reaches zero, then wakes them in order", async () => {
    const waiter = new Waiter(3);
    const log: string[] = [];
    function* wait(name: string): Coroutine {
      yield* waiter;
      log.push(`${name} released at ${Loop.current.time()} (count ${waiter.count})`);
    }
    function* countUpTo(n: number): Coroutine {
      for (let i = 1; i <= n; i++) {
        yield* sleep(10);
        log.push(`set ${i}`);
        waiter.set();
      }
    }
    await runVirtual(gather(wait("a"), wait("b"), countUpTo(3), wait("c")));
    assertEquals(log, [
      "set 1",
      "set 2",
      "set 3",
      "a released at 30 (count 0)",
      "b released at 30 (count 0)",
      "c released at 30 (count 0)",
    ]);
  });

  it("returns at once when the count is already zero", async () => {
    const log: string[] = [];
    await runVirtual(function* () {
      yield* new Waiter(0);
      log.push("Waiter(0) passed");
      const waiter = new Waiter(1);
      waiter.set();
      yield* waiter;
      yield* waiter; // and again
      log.push("a set Waiter(1) passed twice");
    }());
    assertEquals(log, ["Waiter(0) passed", "a set Waiter(1) passed twice"]);
  });

  it("lets a cancelled waiter leave without touching the count or the others", async () => {
    const loop = new Loop({ virtualTime: true });
    const waiter = new Waiter(1);
    const log: string[] = [];
    const a = loop.addTask(function* () {
      try {
        yield* waiter;
      } finally {
        log.push(`a unwound, count ${waiter.count}`);
      }
    }());
    loop.addTask(function* () {
      yield* waiter;
      log.push("b released");
    }());
    loop.addTask(function* () {
      yield* sleep(5);
      a.cancel();
      yield* sleep(5);
      waiter.set();
    }());
    await loop.run();
    assertEquals(log, ["a unwound, count 1", "b released"]);
    assert(a.cancelled);
  });
});

// ---------------------------------------------------------------------------
// Event

describe("Event", () => {
  it("starts unset; set() and clear() flip isSet; a second set() changes nothing", () => {
    const event = new Event();
    assertFalse(event.isSet);
    event.set();
    assert(event.isSet);
    event.set();
    assert(event.isSet);
    event.clear();
    assertFalse(event.isSet);
    event.clear();
    assertFalse(event.isSet);
  });

  it("wait() parks until set() and then wakes every waiter in order", async () => {
    const event = new Event();
    const log: string[] = [];
    function* waitFor(name: string): Coroutine {
      yield* event.wait();
      log.push(`${name} at ${Loop.current.time()}`);
    }
    function* opener(): Coroutine {
      yield* sleep(10);
      log.push("set");
      event.set();
    }
    await runVirtual(gather(waitFor("a"), waitFor("b"), opener(), waitFor("c")));
    assertEquals(log, ["set", "a at 10", "b at 10", "c at 10"]);
  });

  it("wait() returns at once while the event is set, and parks again after clear()", async () => {
    const loop = new Loop({ virtualTime: true });
    const event = new Event();
    const log: string[] = [];
    loop.addTask(function* () {
      event.set();
      yield* event.wait();
      yield* event; // yield* event is event.wait()
      log.push(`passed while set at ${loop.time()}`);
      event.clear();
      yield* event.wait();
      log.push(`passed after clear at ${loop.time()}`);
    }());
    loop.addTask(function* () {
      yield* sleep(20);
      event.set();
    }());
    await loop.run();
    assertEquals(log, ["passed while set at 0", "passed after clear at 20"]);
  });

  it("set() wakes the tasks waiting at that moment even if clear() follows before they run", async () => {
    const event = new Event();
    const log: string[] = [];
    function* waitFor(name: string): Coroutine {
      yield* event.wait();
      log.push(`${name} woke, isSet ${event.isSet}`);
    }
    function* pulse(): Coroutine {
      yield* sleep(10);
      event.set();
      event.clear();
      log.push("pulsed");
    }
    await runVirtual(gather(waitFor("a"), pulse(), waitFor("b")));
    assertEquals(log, ["pulsed", "a woke, isSet false", "b woke, isSet false"]);
  });

  it("lets a cancelled waiter leave the queue; the others still wake", async () => {
    const loop = new Loop({ virtualTime: true });
    const event = new Event();
    const log: string[] = [];
    const a = loop.addTask(function* () {
      try {
        yield* event.wait();
        log.push("a woke");
      } catch (error) {
        log.push(`a ${(error as Error).name}`);
      }
    }());
    loop.addTask(function* () {
      yield* event.wait();
      log.push("b woke");
    }());
    loop.addTask(function* () {
      yield* sleep(5);
      a.cancel();
      yield* sleep(5);
      event.set();
    }());
    await loop.run();
    assertEquals(log, ["a CancelledError", "b woke"]);
  });
});

// ---------------------------------------------------------------------------
// Lock

describe("Lock", () => {
  it("acquire() wakes waiters in FIFO order", async () => {
    const lock = new Lock();
    const log: string[] = [];
    const names = ["a", "b", "c", "d"];
    await runVirtual(gather(...names.map((name, i) => holder(log, lock, name, 10 - i))));
    assertEquals(log, [
      "a wants",
      "a in at 0",
      "b wants",
      "c wants",
      "d wants",
      "a out at 10",
      "b in at 10",
      "b out at 19",
      "c in at 19",
      "c out at 27",
      "d in at 27",
      "d out at 34",
    ]);
    assertFalse(lock.locked);
  });

  it("locked tells whether a task holds the lock", async () => {
    const lock = new Lock();
    assertFalse(lock.locked);
    const seen = await runVirtual(function* () {
      const seen: boolean[] = [];
      {
        using _held = yield* lock.acquire();
        seen.push(lock.locked);
      }
      seen.push(lock.locked);
      return seen;
    }());
    assertEquals(seen, [true, false]);
  });

  it("release() hands the lock straight to the longest waiter; a releaser that re-acquires queues behind it", async () => {
    const lock = new Lock();
    const log: string[] = [];
    function* greedy(): Coroutine {
      yield* lock.acquire();
      log.push("greedy in");
      yield* interrupt(); // let the other queue up
      lock.release();
      log.push(`greedy released, locked ${lock.locked}`);
      yield* lock.acquire(); // no yield in between, yet it queues behind
      log.push("greedy in again");
      lock.release();
    }
    function* patient(): Coroutine {
      log.push("patient wants");
      yield* lock.acquire();
      log.push("patient in");
      yield* interrupt();
      log.push("patient out");
      lock.release();
    }
    await runVirtual(gather(greedy(), patient()));
    assertEquals(log, [
      "greedy in",
      "patient wants",
      "greedy released, locked true", // handed over, never free in between
      "patient in",
      "patient out",
      "greedy in again",
    ]);
    assertFalse(lock.locked);
  });

  it("release() of an unheld lock throws", async () => {
    const lock = new Lock();
    assertThrows(() => lock.release(), Error, "Lock.release(): the lock is not held");
    await runVirtual(function* () {
      yield* lock.acquire();
      lock.release();
    }());
    assertThrows(() => lock.release(), Error, "not held");
    assertFalse(lock.locked);
  });

  it("the guard from acquire() releases at most once", async () => {
    const lock = new Lock();
    const log: string[] = [];
    await runVirtual(function* () {
      const guard = yield* lock.acquire();
      guard[Symbol.dispose]();
      log.push(`after dispose: locked ${lock.locked}`);
      guard[Symbol.dispose](); // no effect, and no "not held" error
      log.push(`after second dispose: locked ${lock.locked}`);
      const other = yield* lock.acquire(); // someone else's hold is untouched
      guard[Symbol.dispose]();
      log.push(`another holder, stale dispose: locked ${lock.locked}`);
      other[Symbol.dispose]();
    }());
    assertEquals(log, [
      "after dispose: locked false",
      "after second dispose: locked false",
      "another holder, stale dispose: locked true",
    ]);
    assertFalse(lock.locked);
  });

  it("using releases the lock when the holder is cancelled or fails", async () => {
    const loop = new Loop({ virtualTime: true });
    const lock = new Lock();
    const log: string[] = [];
    const cancelled = loop.addTask(holder(log, lock, "cancelled", 100));
    const failing = loop.addTask(function* () {
      using _held = yield* lock.acquire();
      log.push("failing in");
      throw new Error("boom");
    }());
    loop.addTask(holder(log, lock, "last", 1));
    loop.addTask(function* () {
      yield* sleep(10);
      cancelled.cancel();
    }());
    await assertRejects(() => loop.run(), Error, "boom");
    assertEquals(log, [
      "cancelled wants",
      "cancelled in at 0",
      "last wants",
      "failing in",
      "last in at 10",
      "last out at 11",
    ]);
    assert(cancelled.cancelled);
    assert(failing.done);
    assertFalse(lock.locked);
  });

  it("is never handed to a waiter cancelled while it waits", async () => {
    const loop = new Loop({ virtualTime: true });
    const lock = new Lock();
    const log: string[] = [];
    loop.addTask(holder(log, lock, "a", 10));
    const b = loop.addTask(holder(log, lock, "b", 10));
    loop.addTask(holder(log, lock, "c", 10));
    loop.addTask(function* () {
      yield* sleep(5);
      b.cancel();
    }());
    await loop.run();
    assertEquals(log, [
      "a wants",
      "a in at 0",
      "b wants",
      "c wants",
      "a out at 10",
      "c in at 10",
      "c out at 20",
    ]);
    assert(b.cancelled);
    assertFalse(lock.locked);
  });

  it("a waiter handed the lock and cancelled before it runs keeps it, and using gives it back", async () => {
    const loop = new Loop({ virtualTime: true });
    const lock = new Lock();
    const log: string[] = [];
    function* waiting(): Coroutine {
      using _held = yield* lock.acquire();
      log.push(`waiter holds it, locked ${lock.locked}`);
      yield* sleep(100); // the cancellation lands here
    }
    let waiter: Task<void> | undefined;
    loop.addTask(function* () {
      yield* lock.acquire();
      waiter = Loop.current.addTask(waiting());
      yield* interrupt(); // the waiter parks
      lock.release(); // handed to the waiter, the only one parked…
      log.push(`cancel() returned ${waiter.cancel()}`); // …which is cancelled before it runs
      Loop.current.addTask(holder(log, lock, "next", 1));
    }());
    await loop.run();
    assertEquals(log, [
      "cancel() returned true",
      "waiter holds it, locked true",
      "next wants",
      "next in at 0",
      "next out at 1",
    ]);
    assert(waiter!.cancelled);
    assertFalse(lock.locked);
  });
});

// ---------------------------------------------------------------------------
// Semaphore

describe("Semaphore", () => {
  it("lets n tasks in at a time and the others in FIFO order", async () => {
    const sem = new Semaphore(2);
    const log: string[] = [];
    let inside = 0;
    let most = 0;
    function* worker(name: string, ms: number): Coroutine {
      using _permit = yield* sem.acquire();
      most = Math.max(most, ++inside);
      log.push(`${name} in at ${Loop.current.time()}`);
      yield* sleep(ms);
      inside--;
    }
    await runVirtual(
      gather(worker("a", 30), worker("b", 10), worker("c", 10), worker("d", 10), worker("e", 5)),
    );
    assertEquals(most, 2);
    assertEquals(log, ["a in at 0", "b in at 0", "c in at 10", "d in at 20", "e in at 30"]);
    assertEquals(sem.value, 2);
  });

  it("value counts the permits left", async () => {
    const sem = new Semaphore(3);
    const values = await runVirtual(function* () {
      const values = [sem.value];
      const first = yield* sem.acquire();
      values.push(sem.value);
      const second = yield* sem.acquire();
      values.push(sem.value);
      first[Symbol.dispose]();
      second[Symbol.dispose]();
      values.push(sem.value);
      return values;
    }());
    assertEquals(values, [3, 2, 1, 3]);
  });

  it("release() above n throws", async () => {
    const sem = new Semaphore(2);
    assertThrows(() => sem.release(), Error, "Semaphore.release(): released more than 2 permits");
    await runVirtual(function* () {
      yield* sem.acquire();
      sem.release();
    }());
    assertEquals(sem.value, 2);
    assertThrows(() => sem.release(), Error, "more than 2");
    assertEquals(sem.value, 2);
  });

  it("Semaphore(0) parks every acquire() until a release() hands one over", async () => {
    const sem = new Semaphore(0);
    const log: string[] = [];
    function* taker(): Coroutine {
      yield* sem.acquire();
      log.push(`took at ${Loop.current.time()}`);
    }
    function* giver(): Coroutine {
      yield* sleep(10);
      sem.release(); // straight to the waiter
      log.push(`gave, value ${sem.value}`);
    }
    await runVirtual(gather(taker(), giver()));
    assertEquals(log, ["gave, value 0", "took at 10"]);
    assertThrows(() => sem.release(), Error, "released more than 0 permits");
  });

  it("the guard releases at most once", async () => {
    const sem = new Semaphore(2);
    await runVirtual(function* () {
      const a = yield* sem.acquire();
      yield* sem.acquire(); // held until the end
      a[Symbol.dispose]();
      a[Symbol.dispose]();
      assertEquals(sem.value, 1);
    }());
  });

  it("is never handed to a waiter cancelled while it waits", async () => {
    const loop = new Loop({ virtualTime: true });
    const sem = new Semaphore(1);
    const log: string[] = [];
    loop.addTask(holder(log, sem, "a", 10));
    const b = loop.addTask(holder(log, sem, "b", 10));
    const c = loop.addTask(holder(log, sem, "c", 10));
    loop.addTask(holder(log, sem, "d", 10));
    loop.addTask(function* () {
      yield* sleep(5);
      c.cancel();
      b.cancel();
    }());
    await loop.run();
    assertEquals(log, [
      "a wants",
      "a in at 0",
      "b wants",
      "c wants",
      "d wants",
      "a out at 10",
      "d in at 10",
      "d out at 20",
    ]);
    assertEquals(sem.value, 1);
  });

  it("a cancelled task that got a permit gives it back through using", async () => {
    const loop = new Loop({ virtualTime: true });
    const sem = new Semaphore(2);
    const log: string[] = [];
    const a = loop.addTask(holder(log, sem, "a", 100));
    loop.addTask(holder(log, sem, "b", 10));
    loop.addTask(holder(log, sem, "c", 10));
    loop.addTask(function* () {
      yield* sleep(5);
      a.cancel();
    }());
    await loop.run();
    assertEquals(log, [
      "a wants",
      "a in at 0",
      "b wants",
      "b in at 0",
      "c wants",
      "c in at 5",
      "b out at 10",
      "c out at 15",
    ]);
    assertEquals(sem.value, 2);
  });
});

// ---------------------------------------------------------------------------
// Queue

describe("Queue", () => {
  it("get() returns the items in the order they were put; size counts them", async () => {
    const queue = new Queue<string>();
    const got = await runVirtual(function* () {
      const sizes = [queue.size];
      for (const item of ["a", "b", "c"]) yield* queue.put(item);
      sizes.push(queue.size);
      const got = [yield* queue.get(), yield* queue.get()];
      sizes.push(queue.size);
      return { got, sizes };
    }());
    assertEquals(got, { got: ["a", "b"], sizes: [0, 3, 1] });
  });

  it("holds many items when unbounded (the default)", async () => {
    const queue = new Queue<number>();
    const sum = await runVirtual(function* () {
      for (let i = 0; i < 1000; i++) yield* queue.put(i);
      let sum = 0;
      while (queue.size > 0) sum += yield* queue.get();
      return sum;
    }());
    assertEquals(sum, 499500);
  });

  it("get() parks while the queue is empty; put() hands the item straight to the longest getter", async () => {
    const queue = new Queue<string>();
    const log: string[] = [];
    function* getter(name: string): Coroutine {
      const item = yield* queue.get();
      log.push(`${name} got ${item} at ${Loop.current.time()}`);
    }
    function* putter(): Coroutine {
      yield* sleep(10);
      yield* queue.put("x");
      log.push(`put x, size ${queue.size}`);
      yield* sleep(10);
      yield* queue.put("y");
    }
    await runVirtual(gather(getter("a"), getter("b"), putter()));
    assertEquals(log, ["put x, size 0", "a got x at 10", "b got y at 20"]);
  });

  it("put() parks while the queue is full and resumes putters in FIFO order", async () => {
    const queue = new Queue<number>(2);
    const log: string[] = [];
    function* producer(name: string, items: number[]): Coroutine {
      for (const item of items) {
        yield* queue.put(item);
        log.push(`${name} put ${item}, size ${queue.size}`);
      }
    }
    function* consumer(): Coroutine {
      yield* sleep(10);
      for (let i = 0; i < 5; i++) {
        log.push(`got ${yield* queue.get()}`);
        yield* sleep(10);
      }
    }
    await runVirtual(gather(producer("p", [1, 2, 3, 4]), producer("q", [5]), consumer()));
    assertEquals(log, [
      "p put 1, size 1",
      "p put 2, size 2",
      "got 1",
      "p put 3, size 2",
      "got 2",
      "q put 5, size 2",
      "got 3",
      "p put 4, size 2",
      "got 5",
      "got 4",
    ]);
  });

  it("a cancelled get() loses no item", async () => {
    const loop = new Loop({ virtualTime: true });
    const queue = new Queue<string>();
    const log: string[] = [];
    const first = loop.addTask(function* () {
      try {
        log.push(`first got ${yield* queue.get()}`);
      } catch (error) {
        assertInstanceOf(error, CancelledError);
        log.push("first cancelled");
      }
    }());
    loop.addTask(function* () {
      yield* sleep(5);
      first.cancel();
      yield* sleep(5);
      yield* queue.put("item");
      log.push(`put, size ${queue.size}`);
      yield* sleep(5);
      log.push(`second got ${yield* queue.get()}`);
    }());
    await loop.run();
    assertEquals(log, ["first cancelled", "put, size 1", "second got item"]);
  });

  it("a getter handed an item and cancelled before it runs still receives the item", async () => {
    const loop = new Loop({ virtualTime: true });
    const queue = new Queue<string>();
    const log: string[] = [];
    function* getter(): Coroutine {
      const item = yield* queue.get();
      log.push(`got ${item}`);
      try {
        yield* sleep(100);
      } catch (error) {
        log.push(`then ${(error as Error).name}`);
      }
    }
    const task = loop.addTask(getter());
    loop.addTask(function* () {
      yield* sleep(5);
      yield* queue.put("item"); // handed to the parked getter…
      task.cancel(); // …which is cancelled before it runs
      log.push(`size ${queue.size}`);
    }());
    await loop.run();
    assertEquals(log, ["size 0", "got item", "then CancelledError"]);
  });

  it("a cancelled put() inserts nothing", async () => {
    const loop = new Loop({ virtualTime: true });
    const queue = new Queue<string>(1);
    const log: string[] = [];
    const putter = loop.addTask(function* () {
      yield* queue.put("kept");
      try {
        yield* queue.put("dropped"); // full: parks
        log.push("dropped was put");
      } catch (error) {
        assertInstanceOf(error, CancelledError);
        log.push("put cancelled");
      }
    }());
    loop.addTask(function* () {
      yield* sleep(5);
      putter.cancel();
      yield* sleep(5);
      log.push(`size ${queue.size}`);
      log.push(`got ${yield* queue.get()}`);
      log.push(`size ${queue.size}`);
      yield* queue.put("later"); // there is room again
      log.push(`got ${yield* queue.get()}`);
    }());
    await loop.run();
    assertEquals(log, ["put cancelled", "size 1", "got kept", "size 0", "got later"]);
  });

  it("a cancelled putter among others keeps the rest in FIFO order", async () => {
    const loop = new Loop({ virtualTime: true });
    const queue = new Queue<string>(1);
    const got: string[] = [];
    loop.addTask(queue.put("first"));
    loop.addTask(queue.put("a"));
    const b = loop.addTask(queue.put("b"));
    loop.addTask(queue.put("c"));
    loop.addTask(function* () {
      yield* sleep(1);
      b.cancel();
      yield* sleep(1);
      while (got.length < 3) got.push(yield* queue.get());
    }());
    await loop.run();
    assertEquals(got, ["first", "a", "c"]);
    assertEquals(queue.size, 0);
  });
});

// ---------------------------------------------------------------------------
// Cancellation and deadlock at each primitive

describe("Task.cancel() of a task parked in a primitive", () => {
  const lock = new Lock();
  const cases: [string, () => Awaitable<unknown>, () => void][] = [
    ["Waiter", () => new Waiter(2)[Symbol.iterator](), () => {}],
    ["Event.wait()", () => new Event().wait(), () => {}],
    ["Lock.acquire()", () => lock.acquire(), () => assert(lock.locked)],
    ["Semaphore.acquire()", () => new Semaphore(0).acquire(), () => {}],
    ["Queue.get()", () => new Queue().get(), () => {}],
    ["Queue.put()", () => {
      const full = new Queue<number>(1);
      full.tryPut(0); // fills it without waiting
      return full.put(1);
    }, () => {}],
  ];
  for (const [what, wait, check] of cases) {
    it(`${what} throws CancelledError there and runs its finally`, async () => {
      const loop = new Loop({ virtualTime: true });
      const log: string[] = [];
      const finallies = spy(() => {});
      let unlock: Disposable | undefined;
      if (what === "Lock.acquire()") {
        unlock = await loop.runTask(lock.acquire()); // held by nobody running
      }
      const victim = loop.addTask(function* () {
        try {
          yield* wait();
          log.push("woke");
        } catch (error) {
          assertInstanceOf(error, CancelledError);
          log.push(`caught ${error.reason}`);
          throw error;
        } finally {
          finallies();
        }
      }());
      loop.addTask(function* () {
        yield* sleep(10);
        check();
        victim.cancel("stop");
      }());
      await loop.run();
      assertEquals(log, ["caught stop"]);
      assertSpyCalls(finallies, 1);
      assert(victim.cancelled);
      unlock?.[Symbol.dispose]();
      assertFalse(lock.locked);
    });
  }
});

Deno.test("a deadlock names the primitive each task waits on", async () => {
  const loop = new Loop({ virtualTime: true });
  const lock = new Lock();
  const first = new Event();
  const second = new Event();
  // Two tasks each wait for the other: a classic lock-order deadlock.
  function* left(): Coroutine {
    using _held = yield* lock.acquire();
    first.set();
    yield* second.wait();
  }
  function* right(): Coroutine {
    yield* first.wait();
    using _held = yield* lock.acquire();
    second.set();
  }
  loop.addTask(left(), { name: "left" });
  loop.addTask(right(), { name: "right" });
  const error = await assertRejects(() => loop.run(), DeadlockError);
  assertStringIncludes(error.message, '"left" waits on Event.wait()');
  assertStringIncludes(error.message, '"right" waits on Lock.acquire()');
  assertEquals(error.tasks.map((task) => task.name), ["left", "right"]);
  assertFalse(lock.locked); // unwinding the stuck tasks ran left's using
});
