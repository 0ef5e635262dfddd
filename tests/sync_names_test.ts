// Copyright 2026 the boucle authors. MIT license.
// Named primitives, the one-loop rule, and the Awaitable acquire() returns.
import { assert, assertEquals, assertFalse, assertRejects, assertThrows } from "@std/assert";
import { describe, it } from "@std/testing/bdd";
import {
  type Awaitable,
  type Coroutine,
  DeadlockError,
  fromPromise,
  Loop,
  sleep,
} from "../loop.ts";
import { Barrier, Condition, Event, Lock, Queue, Semaphore, Waiter } from "../sync.ts";

// ---------------------------------------------------------------------------
// Names

describe("a primitive's name", () => {
  it("shows in what each stuck task waits on; unnamed primitives read as before", async () => {
    const loop = new Loop({ virtualTime: true });
    const lock = new Lock({ name: "db" });
    const full = new Queue<number>(1, { name: "jobs" });
    full.tryPut(0);
    const named = new Condition(undefined, { name: "state" });
    const waits: [string, () => Awaitable<unknown>, string][] = [
      ["waiter", () => new Waiter(2, { name: "boot" }), 'Waiter("boot", count=2)'],
      ["plain waiter", () => new Waiter(2), "Waiter(count=2)"],
      ["event", () => new Event({ name: "ready" }).wait(), 'Event("ready").wait()'],
      ["plain event", () => new Event().wait(), "Event.wait()"],
      ["lock", () => lock.acquire(), 'Lock("db").acquire()'],
      [
        "semaphore",
        () => new Semaphore(0, { name: "pool" }).acquire(),
        'Semaphore("pool").acquire()',
      ],
      ["plain semaphore", () => new Semaphore(0).acquire(), "Semaphore.acquire()"],
      ["getter", () => new Queue(Infinity, { name: "jobs" }).get(), 'Queue("jobs").get()'],
      ["putter", () => full.put(1), 'Queue("jobs").put()'],
      ["plain getter", () => new Queue().get(), "Queue.get()"],
      ["condition", () => waitOn(named), 'Condition("state").wait()'],
      ["plain condition", () => waitOn(new Condition()), "Condition.wait()"],
      ["barrier", () => new Barrier(2, { name: "phase" }).wait(), 'Barrier("phase").wait()'],
      ["plain barrier", () => new Barrier(2).wait(), "Barrier.wait()"],
      ["quoted", () => new Event({ name: 'say "hi"' }).wait(), 'Event("say \\"hi\\"").wait()'],
    ];
    loop.addTask(
      function* () {
        yield* lock.acquire(); // and never releases
      }(),
      { name: "holder" },
    );
    for (const [name, wait] of waits) loop.addTask(wait(), { name });
    const error = await assertRejects(() => loop.run(), DeadlockError);
    const expected = waits.map(([name, , what]) => `"${name}" waits on ${what}`).join(", ");
    assertEquals(
      error.message,
      `Deadlock: no task can run and nothing can wake the parked ones: ${expected}`,
    );
  });

  it("rejects options that are not an object or a name that is not a string", () => {
    const cases: [() => unknown, string][] = [
      [
        () => new Waiter(1, { name: 1 as never }),
        "new Waiter(n, options): 'options.name' must be a string, received 1",
      ],
      [
        () => new Event("ready" as never),
        `new Event(options): 'options' must be an object, received "ready"`,
      ],
      [
        () => new Lock({ name: null as never }),
        "new Lock(options): 'options.name' must be a string, received null",
      ],
      [
        () => new Semaphore(1, 5 as never),
        "new Semaphore(n, options): 'options' must be an object, received 5",
      ],
      [
        () => new Queue(1, { name: {} as never }),
        "new Queue(maxsize, options): 'options.name' must be a string, received an object",
      ],
      [
        () => new Condition(undefined, { name: 2 as never }),
        "new Condition(lock, options): 'options.name' must be a string, received 2",
      ],
      [
        () => new Barrier(2, null as never),
        "new Barrier(n, options): 'options' must be an object, received null",
      ],
    ];
    for (const [make, message] of cases) assertThrows(make, TypeError, message);
    // An empty options object or no name is fine.
    new Queue(1, {});
    new Lock({});
  });

  it("names the primitive in its own errors", () => {
    assertThrows(
      () => new Lock({ name: "db" }).release(),
      Error,
      'Lock("db").release(): the lock is not held',
    );
    assertThrows(
      () => new Semaphore(1, { name: "pool" }).release(),
      Error,
      'Semaphore("pool").release(): released more than 1 permits',
    );
  });
});

/** Takes the condition's lock and waits on it. */
function* waitOn(condition: Condition): Coroutine {
  using _held = yield* condition.acquire();
  yield* condition.wait();
}

// ---------------------------------------------------------------------------
// One loop per primitive

/**
 * Runs `first` on loop A until it parks (A then waits on a promise, so it
 * stays alive), then `second` on loop B, and returns what B's task ended
 * with. Then lets A end by cancelling its task.
 */
async function acrossLoops(first: () => Coroutine, second: () => Coroutine): Promise<string> {
  const gate = Promise.withResolvers<void>();
  const loopA = new Loop({ virtualTime: true });
  const task = loopA.addTask(first(), { name: "A's task" });
  loopA.addTask(function* () {
    yield* fromPromise(gate.promise);
    task.cancel();
  }());
  const ranA = loopA.run(); // runs until both tasks are parked
  let result = "B's task returned";
  try {
    await new Loop({ virtualTime: true }).runTask(second());
  } catch (error) {
    result = `${(error as Error).name}: ${(error as Error).message}`;
  } finally {
    gate.resolve();
  }
  await ranA;
  assert(task.cancelled, "A's task was parked until cancelled");
  return result;
}

/** A task body that waits on what `wait()` gives. */
function waitsOn(wait: () => Awaitable<unknown>): () => Coroutine {
  return function* () {
    yield* wait();
  };
}

/** A task body that takes a permit and keeps it until cancelled. */
function holds(sem: Semaphore): () => Coroutine {
  return function* () {
    using _permit = yield* sem.acquire();
    yield* sleep(Infinity);
  };
}

const ONE_LOOP = "a primitive is used by the tasks of one loop only";

describe("a primitive used by the tasks of two loops", () => {
  it("parking where a task of another loop waits throws an Error naming the primitive", async () => {
    // Each case makes one primitive and returns how to wait on it.
    const cases: [string, () => () => Awaitable<unknown>, string][] = [
      ["waiter", () => {
        const waiter = new Waiter(1, { name: "w" });
        return () => waiter;
      }, 'Waiter("w", count=1)'],
      ["event", () => {
        const event = new Event({ name: "e" });
        return () => event.wait();
      }, 'Event("e").wait()'],
      ["semaphore", () => {
        const sem = new Semaphore(0, { name: "s" });
        return () => sem.acquire();
      }, 'Semaphore("s").acquire()'],
      ["getter", () => {
        const queue = new Queue<number>(Infinity, { name: "q" });
        return () => queue.get();
      }, 'Queue("q").get()'],
      ["putter", () => {
        const queue = new Queue<number>(1, { name: "q" });
        queue.tryPut(0);
        return () => queue.put(1);
      }, 'Queue("q").put()'],
      ["condition", () => {
        const condition = new Condition(undefined, { name: "c" });
        return () => waitOn(condition);
      }, 'Condition("c").wait()'],
      ["barrier", () => {
        const barrier = new Barrier(3, { name: "b" });
        return () => barrier.wait();
      }, 'Barrier("b").wait()'],
    ];
    const results: string[] = [];
    for (const [name, make] of cases) {
      const wait = make();
      results.push(`${name}: ${await acrossLoops(waitsOn(wait), waitsOn(wait))}`);
    }
    assertEquals(
      results,
      cases.map(([name, , what]) =>
        `${name}: Error: ${what}: task "A's task" of another loop waits on it; ${ONE_LOOP}`
      ),
    );
  });

  it("taking a Lock or Semaphore permit that a task of another loop holds throws an Error", async () => {
    const lock = new Lock({ name: "db" });
    const sem = new Semaphore(2, { name: "pool" });
    const condition = new Condition(undefined, { name: "c" });
    const results = [
      await acrossLoops(holds(lock), waitsOn(() => lock.acquire())), // would park
      await acrossLoops(holds(sem), waitsOn(() => sem.acquire())), // would not park
      await acrossLoops(function* () {
        using _held = yield* condition.acquire();
        yield* sleep(Infinity);
      }, waitsOn(() => condition.acquire())),
    ];
    assertEquals(results, [
      `Error: Lock("db").acquire(): held by a task of another loop; ${ONE_LOOP}`,
      `Error: Semaphore("pool").acquire(): held by a task of another loop; ${ONE_LOOP}`,
      `Error: Lock("c").acquire(): held by a task of another loop; ${ONE_LOOP}`,
    ]);
    assertFalse(lock.locked);
    assertEquals(sem.value, 2);
  });

  it("a primitive nobody waits on or holds may be used by another loop", async () => {
    const lock = new Lock();
    const queue = new Queue<string>(1);
    const event = new Event();
    function* use(name: string): Coroutine<string> {
      using _held = yield* lock.acquire();
      yield* sleep(1);
      yield* queue.put(name);
      event.set();
      yield* event.wait();
      event.clear();
      return yield* queue.get();
    }
    assertEquals(await new Loop({ virtualTime: true }).runTask(use("a")), "a");
    assertEquals(await new Loop({ virtualTime: true }).runTask(use("b")), "b");
    assertFalse(lock.locked);
  });
});

// ---------------------------------------------------------------------------
// What acquire() returns

describe("acquire()", () => {
  it("returns an Awaitable that is not Disposable; yield* on it gives the guard", async () => {
    const lock = new Lock();
    const acquisition = lock.acquire();
    assertFalse(Symbol.dispose in acquisition);
    assertFalse(lock.locked); // nothing happens until yield*
    await new Loop().runTask(function* () {
      const guard = yield* acquisition;
      assert(Symbol.dispose in guard);
      assert(lock.locked);
      guard[Symbol.dispose]();
    }());
    assertFalse(lock.locked);
  });

  it("each yield* on the same acquire() result is a new acquisition", async () => {
    const sem = new Semaphore(3);
    const acquisition = sem.acquire();
    const values = await new Loop().runTask(function* () {
      const first = yield* acquisition;
      const second = yield* acquisition;
      const values = [sem.value];
      first[Symbol.dispose]();
      second[Symbol.dispose]();
      values.push(sem.value);
      return values;
    }());
    assertEquals(values, [1, 3]);
  });

  it("throws outside a loop, naming the primitive", () => {
    const it = new Lock({ name: "db" }).acquire()[Symbol.iterator]();
    assertThrows(
      () => it.next(),
      Error,
      'Lock("db").acquire(): no loop is running a task right now',
    );
  });
});
