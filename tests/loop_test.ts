// Copyright 2026 the boucle authors. MIT license.
import {
  assert,
  assertEquals,
  assertFalse,
  assertGreaterOrEqual,
  assertInstanceOf,
  assertLess,
  assertRejects,
  assertStrictEquals,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { describe, it } from "@std/testing/bdd";
import { assertSpyCalls, spy } from "@std/testing/mock";
import { assertType, type IsExact } from "@std/testing/types";
import {
  type Awaitable,
  CancelledError,
  type Coroutine,
  deadline,
  DeadlockError,
  fromPromise,
  gather,
  interrupt,
  Loop,
  sleep,
  sleepUntil,
  type Task,
} from "../loop.ts";
import { Event, Lock, Queue, Semaphore, Waiter } from "../sync.ts";
import { loopTest } from "../testing.ts";

/** A coroutine that sleeps `ms`, logs `name` with the time, and returns `value`. */
function* after<T>(log: string[], ms: number, name: string, value: T): Coroutine<T> {
  yield* sleep(ms);
  log.push(`${name} ${Loop.current.time()}`);
  return value;
}

/** A coroutine that throws `error` after `ms`. */
function* failAfter(ms: number, error: unknown): Coroutine<never> {
  yield* sleep(ms);
  throw error;
}

/** A promise that resolves after `ms` of real time (a host timer). */
function hostDelay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------
// Tasks

Deno.test("Loop.addTask() names tasks Task-1, Task-2, … per loop unless given a name", async () => {
  const loop = new Loop();
  const other = new Loop();
  assertEquals(loop.addTask(interrupt()).name, "Task-1");
  assertEquals(loop.addTask(interrupt(), { name: "worker" }).name, "worker");
  assertEquals(loop.addTask(interrupt()).name, "Task-3");
  assertEquals(other.addTask(interrupt()).name, "Task-1");
  await loop.run();
  await other.run();
});

Deno.test("Loop.addTask() accepts a generator, an Awaitable, an iterator and a promise", async () => {
  const loop = new Loop();
  function* gen(): Coroutine<string> {
    yield;
    return "generator";
  }
  const awaitable: Awaitable<string> = {
    *[Symbol.iterator]() {
      yield;
      return "awaitable";
    },
  };
  let steps = 0;
  const iterator: Iterator<unknown, string, unknown> = {
    next() {
      return ++steps < 3 ? { done: false, value: undefined } : { done: true, value: "iterator" };
    },
  };
  const thenable: PromiseLike<string> = {
    then(onFulfilled) {
      return Promise.resolve("thenable").then(onFulfilled);
    },
  };
  const tasks = [
    loop.addTask(gen()),
    loop.addTask(awaitable),
    loop.addTask(iterator),
    loop.addTask(Promise.resolve("promise")),
    loop.addTask(thenable),
  ];
  await loop.run();
  assertEquals(tasks.map((task) => task.result()), [
    "generator",
    "awaitable",
    "iterator",
    "promise",
    "thenable",
  ]);
  assertEquals(steps, 3);
});

Deno.test("Loop.addTask() accepts a Task, joining it", async () => {
  const loop = new Loop({ virtualTime: true });
  const inner = loop.addTask(after([], 5, "inner", 42));
  const outer = loop.addTask(inner);
  await loop.run();
  assertEquals(outer.result(), 42);
});

Deno.test("Loop.addTask() rejects what is not a task, naming the argument and the value", () => {
  const loop = new Loop();
  const cases: [unknown, string][] = [
    [5, "received 5"],
    [null, "received null"],
    [undefined, "received undefined"],
    ["gen", 'received "gen"'],
    [{}, "received an object"],
    [function* gen() {}, "received a function (gen)"],
  ];
  for (const [bad, received] of cases) {
    const error = assertThrows(() => loop.addTask(bad as never), TypeError);
    assertStringIncludes(error.message, "Loop.addTask(task): 'task' must be");
    assertStringIncludes(error.message, received);
  }
  assertEquals(loop.tasks(), []);
});

Deno.test("Loop.addTask() rejects bad options, naming the option", () => {
  const loop = new Loop();
  const named = assertThrows(
    () => loop.addTask(interrupt(), { name: 5 as never }),
    TypeError,
    "'options.name' must be a string, received 5",
  );
  assertStringIncludes(named.message, "Loop.addTask(");
  for (const bad of [null, "worker", 3]) {
    const error = assertThrows(
      () => loop.addTask(interrupt(), bad as never),
      TypeError,
      "'options' must be an object",
    );
    assertStringIncludes(error.message, "Loop.addTask(");
  }
  assertEquals(loop.tasks(), []);
});

Deno.test("new Loop() rejects bad options, naming the option", () => {
  assertThrows(
    () => new Loop({ virtualTime: "yes" as never }),
    TypeError,
    "new Loop(options): 'options.virtualTime' must be a boolean, received \"yes\"",
  );
  assertThrows(
    () => new Loop(null as never),
    TypeError,
    "new Loop(options): 'options' must be an object, received null",
  );
  assertThrows(() => new Loop(7 as never), TypeError, "received 7");
  new Loop(undefined);
  new Loop({});
});

Deno.test("Task.result() throws before the task is done, then returns its value", async () => {
  const loop = new Loop();
  const task = loop.addTask(
    function* () {
      yield;
      return 7;
    }(),
    { name: "seven" },
  );
  assertThrows(() => task.result(), Error, 'Task.result(): task "seven" is not done yet');
  assertFalse(task.done);
  await loop.run();
  assert(task.done);
  assertFalse(task.cancelled);
  assertEquals(task.result(), 7);
});

Deno.test("Task.result() throws the task's own error", async () => {
  const loop = new Loop();
  const boom = new Error("boom");
  const task = loop.addTask(function* () {
    yield;
    throw boom;
  }());
  await loop.run().catch(() => {});
  assert(task.done);
  assertFalse(task.cancelled);
  assertStrictEquals(assertThrows(() => task.result()), boom);
});

Deno.test(
  "yield* task joins the task and returns its value",
  loopTest(function* (loop) {
    const log: string[] = [];
    const child = loop.addTask(after(log, 30, "child", "value"));
    log.push("joining");
    const value = yield* child;
    log.push(`joined ${value} ${Loop.current.time()}`);
    assertEquals(yield* child, "value"); // a done task: returns at once
    assertEquals(log, ["joining", "child 30", "joined value 30"]);
  }),
);

Deno.test("yield* task throws the task's error to every joiner", async () => {
  const loop = new Loop({ virtualTime: true });
  const boom = new Error("boom");
  const child = loop.addTask(failAfter(10, boom));
  const caught: unknown[] = [];
  function* joiner(): Coroutine {
    try {
      yield* child;
    } catch (error) {
      caught.push(error);
    }
  }
  loop.addTask(joiner());
  loop.addTask(joiner());
  await loop.run(); // observed by the joiners: nothing reported
  assertEquals(caught.length, 2);
  assertStrictEquals(caught[0], boom);
  assertStrictEquals(caught[1], boom);
});

Deno.test("a task cannot join itself", async () => {
  const loop = new Loop();
  function* narcissus(): Coroutine {
    yield* task;
  }
  const task: Task<void> = loop.addTask(narcissus(), { name: "narcissus" });
  await assertRejects(() => loop.run(), Error, 'Task "narcissus" cannot join itself');
});

Deno.test("Loop.tasks() lists the live tasks in the order they were added", async () => {
  const loop = new Loop({ virtualTime: true });
  const seen: string[][] = [];
  const names = () => loop.tasks().map((task) => task.name);
  loop.addTask(sleep(20), { name: "a" });
  loop.addTask(sleep(10), { name: "b" });
  loop.addTask(
    function* () {
      seen.push(names());
      yield* sleep(15);
      seen.push(names());
    }(),
    { name: "c" },
  );
  assertEquals(names(), ["a", "b", "c"]);
  await loop.run();
  assertEquals(seen, [["a", "b", "c"], ["a", "c"]]);
  assertEquals(loop.tasks(), []);
});

Deno.test("Loop.runTask() resolves with the task's result and rejects with its error", async () => {
  const loop = new Loop({ virtualTime: true });
  assertEquals(await loop.runTask(after([], 5, "x", "ok")), "ok");
  const boom = new Error("boom");
  assertStrictEquals(await assertRejects(() => loop.runTask(failAfter(5, boom))), boom);
  assertEquals(await loop.runTask(Promise.resolve(3), { name: "three" }), 3);
});

Deno.test("a loop can run again after it ended", async () => {
  const loop = new Loop({ virtualTime: true });
  await loop.runTask(sleep(10));
  assertEquals(await loop.runTask(after([], 5, "again", 2)), 2);
  assertEquals(loop.time(), 15);
});

Deno.test("Loop.time() is performance.now() on the real clock", async () => {
  const loop = new Loop();
  const before = performance.now();
  const time = loop.time();
  const later = performance.now();
  assert(before <= time && time <= later);
  const start = loop.time();
  await loop.runTask(sleep(5));
  assertGreaterOrEqual(loop.time() - start, 5);
});

// ---------------------------------------------------------------------------
// Loop.current and running

Deno.test("Loop.current outside a running loop throws an Error that says so", async () => {
  assertThrows(() => Loop.current, Error, "Loop.current: no loop is running a task right now");
  const loop = new Loop();
  let inside: Loop | null = null;
  let inCallback: unknown = null;
  await loop.runTask(function* () {
    inside = Loop.current;
    yield* fromPromise(
      Promise.resolve().then(() => {
        try {
          return Loop.current;
        } catch (error) {
          inCallback = error;
        }
      }),
    );
  }());
  assertStrictEquals(inside, loop);
  assertInstanceOf(inCallback, Error); // a promise callback is not a task
  assertThrows(() => Loop.current, Error, "no loop is running");
});

Deno.test("Loop.current is right in each of two loops running interleaved", async () => {
  const a = new Loop();
  const b = new Loop();
  const log: string[] = [];
  const turns = Array.from({ length: 6 }, () => Promise.withResolvers<void>());
  function* player(name: string, mine: number[]): Coroutine {
    for (const turn of mine) {
      if (turn > 0) yield* fromPromise(turns[turn - 1]!.promise);
      log.push(`${name}${turn} on ${Loop.current === a ? "a" : "b"}`);
      yield* interrupt();
      log.push(`${name}${turn} still on ${Loop.current === a ? "a" : "b"}`);
      turns[turn]!.resolve();
    }
  }
  await Promise.all([a.runTask(player("A", [0, 2, 4])), b.runTask(player("B", [1, 3, 5]))]);
  assertEquals(log, [
    "A0 on a",
    "A0 still on a",
    "B1 on b",
    "B1 still on b",
    "A2 on a",
    "A2 still on a",
    "B3 on b",
    "B3 still on b",
    "A4 on a",
    "A4 still on a",
    "B5 on b",
    "B5 still on b",
  ]);
});

Deno.test("Loop.current is restored after a task runs another loop inside its step", async () => {
  const outer = new Loop();
  const inner = new Loop();
  const log: string[] = [];
  const name = () => (Loop.current === outer ? "outer" : Loop.current === inner ? "inner" : "?");
  await outer.runTask(function* () {
    log.push(name());
    const done = inner.runTask(function* () {
      log.push(name());
      yield* fromPromise(Promise.resolve());
      log.push(name());
    }());
    log.push(name()); // the inner loop ran its first step synchronously
    yield* fromPromise(done);
    log.push(name());
  }());
  assertEquals(log, ["outer", "inner", "outer", "inner", "outer"]);
});

Deno.test("Loop.run() on a running loop rejects and adds nothing", async () => {
  const loop = new Loop();
  loop.addTask(fromPromise(hostDelay(1)), { name: "a" });
  const first = loop.run();
  await assertRejects(() => loop.run(), Error, "Loop.run(): this loop is already running");
  await assertRejects(
    () => loop.runTask(interrupt(), { name: "extra" }),
    Error,
    "Loop.runTask(): this loop is already running",
  );
  assertEquals(loop.tasks().map((task) => task.name), ["a"]);
  await first;
});

Deno.test("Loop.run() from inside one of its own tasks rejects", async () => {
  const loop = new Loop();
  const errors = await loop.runTask(function* () {
    const count = loop.tasks().length;
    const run = yield* fromPromise(loop.run().then(() => null, (error) => error));
    const runTask = yield* fromPromise(
      loop.runTask(interrupt()).then(() => null, (error) => error),
    );
    return { run, runTask, added: loop.tasks().length - count };
  }());
  assertInstanceOf(errors.run, Error);
  assertStringIncludes(errors.run.message, "already running");
  assertInstanceOf(errors.runTask, Error);
  assertStringIncludes(errors.runTask.message, "already running");
  assertEquals(errors.added, 0);
});

// ---------------------------------------------------------------------------
// Foreign yields

describe("a task that yields something the loop does not understand", () => {
  const cases: [string, () => unknown, string[]][] = [
    ["yield 1", () => 1, ["yielded 1", "a value the loop does not understand"]],
    ['yield "x"', () => "x", ['yielded "x"']],
    ["yield sleep(1)", () => sleep(1), ["an awaitable", "use `yield*`, not `yield`"]],
    [
      "yield child()",
      () => (function* child() {})(),
      ["a generator object", "use `yield*`, not `yield`"],
    ],
    ["yield promise", () => Promise.resolve(1), ["a promise", "yield* fromPromise(p)"]],
    ["yield {}", () => ({}), ["an object (Object)"]],
  ];
  for (const [what, value, phrases] of cases) {
    it(`gets a TypeError thrown back in (${what})`, async () => {
      const loop = new Loop({ virtualTime: true });
      const log: string[] = [];
      await loop.runTask(
        function* () {
          try {
            yield value();
            log.push("not thrown");
          } catch (error) {
            assertInstanceOf(error, TypeError);
            assertStringIncludes(error.message, 'Task "confused"');
            for (const phrase of phrases) assertStringIncludes(error.message, phrase);
            log.push("caught");
          }
          yield* sleep(1); // the task goes on normally
          log.push("went on");
        }(),
        { name: "confused" },
      );
      assertEquals(log, ["caught", "went on"]);
    });
  }

  it("fails with that TypeError if it does not catch it", async () => {
    const loop = new Loop();
    const task = loop.addTask(function* (): Coroutine {
      yield 1;
    }());
    await assertRejects(() => loop.run(), TypeError, "yielded 1");
    assertThrows(() => task.result(), TypeError);
  });
});

// ---------------------------------------------------------------------------
// Arguments

Deno.test("sleep() rejects a bad duration, naming the argument and the value", () => {
  assertThrows(() => sleep(NaN), RangeError, "sleep(ms): 'ms' must be a number >= 0, received NaN");
  assertThrows(() => sleep(-1), RangeError, "sleep(ms): 'ms' must be a number >= 0, received -1");
  assertThrows(() => sleep(-Infinity), RangeError, "received -Infinity");
  assertThrows(
    () => sleep("1" as never),
    TypeError,
    "sleep(ms): 'ms' must be a number >= 0, received \"1\"",
  );
  assertThrows(() => sleep(undefined as never), TypeError, "received undefined");
  assertThrows(() => sleep(1n as never), TypeError, "received 1n");
});

Deno.test("sleepUntil() rejects a bad time, naming the argument and the value", () => {
  assertThrows(() => sleepUntil(NaN), RangeError, "sleepUntil(time): 'time'");
  assertThrows(() => sleepUntil(NaN), RangeError, "received NaN");
  assertThrows(() => sleepUntil("5" as never), TypeError, "sleepUntil(time): 'time'");
  assertThrows(() => sleepUntil("5" as never), TypeError, 'received "5"');
});

Deno.test("gather(), fromPromise() and deadline() reject bad arguments, naming them", () => {
  assertThrows(
    () => gather(sleep(1), 5 as never),
    TypeError,
    "gather(...awaitables): argument 1 must be an Awaitable, received 5",
  );
  assertThrows(
    () => fromPromise(5 as never),
    TypeError,
    "fromPromise(promise): 'promise' must be a thenable or a function (signal) => thenable, received 5",
  );
  assertThrows(
    () => deadline(null as never, 5),
    TypeError,
    "deadline(awaitable, ms): 'awaitable' must be an Awaitable, received null",
  );
  assertThrows(
    () => deadline(sleep(1), -1),
    RangeError,
    "deadline(awaitable, ms): 'ms' must be a number >= 0, received -1",
  );
  assertThrows(() => deadline(sleep(1), NaN), RangeError, "received NaN");
  assertThrows(() => deadline(sleep(1), "5" as never), TypeError, "'ms'");
});

Deno.test("waits check their arguments when called but need a loop only when they run", async () => {
  const nap = sleep(5); // no loop yet: fine
  assertThrows(
    () => nap[Symbol.iterator]().next(),
    Error,
    "sleep(): no loop is running a task right now",
  );
  assertThrows(
    () => sleepUntil(5)[Symbol.iterator]().next(),
    Error,
    "sleepUntil(): no loop is running",
  );
  assertThrows(() => gather(sleep(1)).next(), Error, "gather(): no loop is running");
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  assertEquals(
    await loop.runTask(gather(after(log, 20, "a", "a"), after(log, 10, "b", "b"))),
    ["a", "b"],
  );
  assertEquals(log, ["b 10", "a 20"]);
  assertEquals(await loop.runTask(deadline(after(log, 5, "c", "c"), 10)), "c");
});

// ---------------------------------------------------------------------------
// Virtual time

Deno.test("virtual time starts at 0 and jumps straight to the next timer", async () => {
  const loop = new Loop({ virtualTime: true });
  assertEquals(loop.time(), 0);
  const log: string[] = [];
  const wallStart = performance.now();
  await loop.runTask(function* () {
    for (let i = 0; i < 60; i++) yield* sleep(60_000);
    log.push(`an hour later: ${loop.time()}`);
  }());
  assertEquals(log, ["an hour later: 3600000"]);
  assertEquals(loop.time(), 3_600_000);
  assertLess(performance.now() - wallStart, 1000);
});

Deno.test(
  "virtual time does not follow the wall clock while tasks run",
  loopTest(function* (loop) {
    const wallStart = performance.now();
    const times = [loop.time()];
    while (performance.now() - wallStart < 20) yield* interrupt(); // busy on purpose
    times.push(loop.time());
    yield* sleep(5);
    times.push(loop.time());
    assertEquals(times, [0, 0, 5]);
  }),
);

Deno.test("virtual time never jumps while a promise is pending", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  loop.addTask(after(log, 1000, "slept", null));
  loop.addTask(function* () {
    yield* fromPromise(hostDelay(20));
    log.push(`promise settled at ${loop.time()}`);
    yield* sleep(10);
    log.push(`then slept until ${loop.time()}`);
  }());
  await loop.run();
  assertEquals(log, ["promise settled at 0", "then slept until 10", "slept 1000"]);
});

Deno.test("virtual time gives the same interleaving every run", async () => {
  function* worker(log: string[], id: number, seed: number): Coroutine {
    let x = seed;
    for (let i = 0; i < 8; i++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      if (x % 3 === 0) yield* interrupt();
      else yield* sleep(x % 7);
      log.push(`${id}@${Loop.current.time()}`);
    }
  }
  async function program(): Promise<string[]> {
    const log: string[] = [];
    const loop = new Loop({ virtualTime: true });
    for (let id = 0; id < 12; id++) loop.addTask(worker(log, id, id * 7919 + 1));
    await loop.run();
    return log;
  }
  const first = await program();
  assertEquals(first.length, 96);
  const times = first.map((entry) => Number(entry.split("@")[1]));
  assertEquals(times, [...times].sort((x, y) => x - y)); // the clock never goes back
  for (let run = 0; run < 3; run++) assertEquals(await program(), first);
});

Deno.test("timers with equal deadlines fire in the order they were set", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  // "late" sets its 10 ms timer at time 0, "early" sets one for the same
  // deadline at time 5 and "last" at time 5 after it: order of setting wins.
  loop.addTask(after(log, 10, "late", null));
  loop.addTask(function* () {
    yield* sleep(5);
    yield* after(log, 5, "early", null);
  }());
  loop.addTask(function* () {
    yield* sleep(5);
    yield* sleepUntil(10);
    log.push(`last ${loop.time()}`);
  }());
  for (const name of ["c", "a", "b"]) loop.addTask(after(log, 10, name, null));
  await loop.run();
  assertEquals(log, ["late 10", "c 10", "a 10", "b 10", "early 10", "last 10"]);
});

Deno.test("timers fire in deadline order, then in the order they were set", async () => {
  const loop = new Loop({ virtualTime: true });
  const fired: [number, number][] = [];
  let x = 42;
  const expected: [number, number][] = [];
  for (let i = 0; i < 300; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    const ms = x % 40;
    expected.push([ms, i]);
    loop.addTask(function* () {
      yield* sleep(ms);
      fired.push([ms, i]);
    }());
  }
  // Some cancelled in the middle, which takes them out of the heap.
  const victims = loop.tasks().filter((_, i) => i % 7 === 3);
  loop.addTask(function* () {
    yield* sleep(0);
    for (const victim of victims) victim.cancel();
  }());
  await loop.run();
  const cancelled = new Set(expected.filter((_, i) => i % 7 === 3).map(([, i]) => i));
  const live = expected.filter(([, i]) => !cancelled.has(i));
  // sleep(0) timers set at time 0 fire before the canceller's, so keep those.
  const survivors = live.concat(expected.filter(([ms, i]) => cancelled.has(i) && ms === 0));
  survivors.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  assertEquals(fired, survivors);
});

Deno.test("sleepUntil() a time in the past yields once and never moves the clock back", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  loop.addTask(function* () {
    yield* sleep(100);
    log.push(`a at ${loop.time()}`);
    yield* sleepUntil(50);
    log.push(`a after sleepUntil(50) at ${loop.time()}`);
    yield* sleepUntil(-5);
    log.push(`a after sleepUntil(-5) at ${loop.time()}`);
  }());
  loop.addTask(function* () {
    yield* sleep(100);
    for (let i = 0; i < 3; i++) {
      log.push(`b ${i}`);
      yield* interrupt();
    }
  }());
  await loop.run();
  assertEquals(log, [
    "a at 100",
    "b 0",
    "a after sleepUntil(50) at 100",
    "b 1",
    "a after sleepUntil(-5) at 100",
    "b 2",
  ]);
  assertEquals(loop.time(), 100);
});

Deno.test(
  "sleepUntil() a time in the past never moves the clock back when alone",
  loopTest(function* (loop) {
    yield* sleep(100);
    yield* sleepUntil(50);
    assertEquals(loop.time(), 100);
    yield* sleepUntil(-5);
    assertEquals(loop.time(), 100);
  }),
);

Deno.test(
  "sleepUntil() parks until the clock reaches the time",
  loopTest(function* (loop) {
    yield* sleepUntil(250);
    assertEquals(loop.time(), 250);
    yield* sleepUntil(250.5);
    assertEquals(loop.time(), 250.5);
  }),
);

Deno.test("sleep(0) parks on a timer due at once: the tasks already ready run before it", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  loop.addTask(function* () {
    log.push("a1");
    yield* sleep(0);
    log.push("a2");
  }());
  loop.addTask(function* () {
    log.push("b1");
    yield* interrupt();
    log.push("b2");
  }());
  await loop.run();
  // Due timers are expired at the start of the next cycle, behind b.
  assertEquals(log, ["a1", "b1", "b2", "a2"]);
  assertEquals(loop.time(), 0);
});

Deno.test("interrupt() round-robins the ready tasks, as the lesson's run_tasks", async () => {
  const loop = new Loop();
  const log: string[] = [];
  function* count(name: string, n: number): Coroutine {
    for (let i = 1; i <= n; i++) {
      log.push(`${name}${i}`);
      yield* interrupt();
    }
  }
  loop.addTask(count("a", 3));
  loop.addTask(count("b", 1));
  loop.addTask(count("c", 2));
  await loop.run();
  assertEquals(log, ["a1", "b1", "c1", "a2", "c2", "a3"]);
});

Deno.test("a task added by a running task first runs in the next cycle", async () => {
  const loop = new Loop();
  const log: string[] = [];
  loop.addTask(function* () {
    log.push("a1");
    // deno-lint-ignore require-yield -- a task that ends in its first step
    Loop.current.addTask(function* () {
      log.push("child");
    }());
    log.push("a2");
    yield;
    log.push("a3");
  }());
  loop.addTask(function* () {
    log.push("b1");
    yield;
    log.push("b2");
  }());
  await loop.run();
  assertEquals(log, ["a1", "a2", "b1", "child", "a3", "b2"]);
});

// ---------------------------------------------------------------------------
// Real time and the host

Deno.test("real-time sleeps wake in deadline order, never before they are due", async () => {
  const loop = new Loop();
  const start = loop.time();
  const woke: [number, number][] = [];
  for (const ms of [30, 10, 20, 0]) {
    loop.addTask(function* () {
      yield* sleep(ms);
      woke.push([ms, loop.time() - start]);
    }());
  }
  await loop.run();
  assertEquals(woke.map(([ms]) => ms), [0, 10, 20, 30]);
  for (const [ms, elapsed] of woke) assertGreaterOrEqual(elapsed, ms);
  assertLess(loop.time() - start, 2000);
});

Deno.test("a task that yields forever does not stop a host setTimeout from firing", async () => {
  for (const virtualTime of [false, true]) {
    const loop = new Loop({ virtualTime });
    const timer = spy(() => {});
    setTimeout(timer, 1);
    const start = performance.now();
    const spins = await loop.runTask(function* () {
      let spins = 0;
      // Bounded so that a failure ends the test instead of hanging it.
      while (timer.calls.length === 0 && performance.now() - start < 3000) {
        spins++;
        yield* interrupt();
      }
      return spins;
    }());
    assertSpyCalls(timer, 1);
    assertLess(performance.now() - start, 1000);
    assert(spins > 1);
  }
});

Deno.test("a task that yields forever does not stop fromPromise() from completing", async () => {
  const loop = new Loop();
  const start = performance.now();
  const log: string[] = [];
  const waiter = loop.addTask(function* () {
    const value = yield* fromPromise(hostDelay(2).then(() => "settled"));
    log.push(value);
  }());
  loop.addTask(function* () {
    while (!waiter.done && performance.now() - start < 3000) yield* interrupt();
    log.push("spinner saw it done");
  }());
  await loop.run();
  assertEquals(log, ["settled", "spinner saw it done"]);
  assertLess(performance.now() - start, 1000);
});

// ---------------------------------------------------------------------------
// Cancellation

Deno.test("Task.cancel() before the first step: the task never runs", async () => {
  const loop = new Loop();
  const body = spy(() => {});
  const task = loop.addTask(function* () {
    body();
    yield;
  }());
  assert(task.cancel("early"));
  await loop.run();
  assertSpyCalls(body, 0);
  assert(task.done);
  assert(task.cancelled);
  const error = assertThrows(() => task.result(), CancelledError);
  assertEquals(error.reason, "early");
});

Deno.test("Task.cancel() before the first step of a promise task: the promise does not keep the loop alive", async () => {
  const loop = new Loop();
  const task = loop.addTask(new Promise<never>(() => {}));
  task.cancel();
  await loop.run();
  assert(task.cancelled);
});

describe("Task.cancel() of a task parked in", () => {
  const cases: [string, () => Awaitable<unknown>][] = [
    ["sleep()", () => sleep(1000)],
    ["sleep(Infinity)", () => sleep(Infinity)],
    ["sleepUntil()", () => sleepUntil(500)],
    // (Virtual time never jumps while a promise is pending, so the canceller
    // below must not sleep: it cancels after two turns.)
    ["fromPromise() of a promise that never settles", () => fromPromise(new Promise(() => {}))],
    ["gather()", () => gather(sleep(1000), sleep(Infinity))],
    ["deadline()", () => deadline(sleep(Infinity), 1000)],
  ];
  for (const [what, wait] of cases) {
    it(`${what} throws CancelledError there, runs its finally and leaves nothing behind`, async () => {
      const loop = new Loop({ virtualTime: true });
      const log: string[] = [];
      const victim = loop.addTask(
        function* () {
          log.push("parked");
          try {
            yield* wait();
            log.push("woke");
          } catch (error) {
            log.push(`caught ${error instanceof CancelledError ? error.reason : error}`);
            throw error;
          } finally {
            log.push(`finally at ${loop.time()}`);
          }
        }(),
        { name: "victim" },
      );
      loop.addTask(function* () {
        yield* interrupt();
        yield* interrupt();
        log.push(`cancel() returned ${victim.cancel("stop")}`);
      }());
      await loop.run(); // the victim's own cancellation is not reported
      assertEquals(log, ["parked", "cancel() returned true", "caught stop", "finally at 0"]);
      assert(victim.cancelled);
      assertEquals(loop.time(), 0); // no timer of the victim's moved the clock
      assertEquals(loop.tasks(), []);
    });
  }

  it("a join: only the joiner is cancelled, the joined task goes on", async () => {
    const loop = new Loop({ virtualTime: true });
    const log: string[] = [];
    const joined = loop.addTask(after(log, 50, "joined finished at", "value"));
    const joiner = loop.addTask(function* () {
      try {
        yield* joined;
      } finally {
        log.push(`joiner unwound at ${loop.time()}`);
      }
    }());
    loop.addTask(function* () {
      yield* sleep(10);
      joiner.cancel();
    }());
    await loop.run();
    assertEquals(log, ["joiner unwound at 10", "joined finished at 50"]);
    assert(joiner.cancelled);
    assertFalse(joined.cancelled);
    assertEquals(joined.result(), "value");
  });
});

Deno.test("Task.cancel() of a plain iterator task calls its return() and ends it cancelled", async () => {
  const loop = new Loop();
  const close = spy((): IteratorResult<unknown, void> => ({ done: true, value: undefined }));
  const task = loop.addTask({ next: () => ({ done: false, value: undefined }), return: close });
  loop.addTask(function* () {
    yield* interrupt();
    yield* interrupt();
    task.cancel("stop");
  }());
  await loop.run();
  assertSpyCalls(close, 1);
  assert(task.cancelled);
});

Deno.test("Task.cancel() of a ready task takes effect at its next suspension point", async () => {
  const loop = new Loop();
  const log: string[] = [];
  const task = loop.addTask(function* () {
    try {
      log.push("step 1");
      yield;
      log.push("step 2");
      yield;
      log.push("step 3");
    } finally {
      log.push("finally");
    }
  }());
  // deno-lint-ignore require-yield -- it runs once, while the task is ready
  loop.addTask(function* () {
    log.push(`cancel() returned ${task.cancel()}`); // task is ready after its bare yield
  }());
  await loop.run();
  assertEquals(log, ["step 1", "cancel() returned true", "finally"]);
  assert(task.cancelled);
});

Deno.test("Task.cancel() of the running task itself takes effect at its next suspension point", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  function* body(): Coroutine {
    log.push(`cancel() returned ${task.cancel("myself")}`);
    log.push("still running");
    try {
      yield* sleep(1000);
      log.push("slept");
    } catch (error) {
      assertInstanceOf(error, CancelledError);
      log.push(`caught ${error.reason}`);
      throw error;
    }
  }
  const task: Task<void> = loop.addTask(body());
  await loop.run();
  assertEquals(log, ["cancel() returned true", "still running", "caught myself"]);
  assert(task.cancelled);
  assertEquals(loop.time(), 0);
});

Deno.test("Task.cancel() returns true when it asks, and false once the task is done", async () => {
  const loop = new Loop({ virtualTime: true });
  const task = loop.addTask(sleep(100));
  const finished = loop.addTask(interrupt());
  const returns: boolean[] = [];
  loop.addTask(function* () {
    yield* sleep(10);
    returns.push(task.cancel(), task.cancel()); // second: already pending, no effect
    returns.push(finished.cancel());
  }());
  await loop.run();
  returns.push(task.cancel());
  assertEquals(returns, [true, true, false, false]);
  assert(task.cancelled);
  assertFalse(finished.cancelled);
});

Deno.test("CancelledError carries the reason and says it in its message", async () => {
  const withReason = new CancelledError("shutting down");
  assertInstanceOf(withReason, Error);
  assertEquals(withReason.name, "CancelledError");
  assertEquals(withReason.reason, "shutting down");
  assertStringIncludes(withReason.message, "shutting down");
  const bare = new CancelledError();
  assertEquals(bare.reason, undefined);
  assertEquals(bare.message, "The task was cancelled");

  const loop = new Loop();
  const reason = { why: "an object reason" };
  const task = loop.addTask(sleep(Infinity));
  task.cancel(reason);
  await loop.run();
  assertStrictEquals(assertThrows(() => task.result(), CancelledError).reason, reason);
});

Deno.test("Task.cancel() runs finally blocks and disposes using declarations, innermost first", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const dispose = spy(() => log.push("disposed"));
  const task = loop.addTask(function* () {
    try {
      using _resource = { [Symbol.dispose]: dispose };
      yield* function* () {
        try {
          yield* sleep(Infinity);
        } finally {
          log.push("inner finally");
        }
      }();
    } finally {
      log.push("outer finally");
    }
  }());
  loop.addTask(function* () {
    yield* sleep(1);
    task.cancel();
  }());
  await loop.run();
  assertSpyCalls(dispose, 1);
  assertEquals(log, ["inner finally", "disposed", "outer finally"]);
  assert(task.cancelled);
});

Deno.test("a yield* in a finally block during cancellation runs to its end and the task still ends cancelled", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const task = loop.addTask(function* () {
    try {
      yield* sleep(Infinity);
    } finally {
      log.push(`cleanup starts at ${loop.time()}`);
      yield* sleep(20);
      yield* interrupt();
      log.push(`cleanup slept until ${loop.time()}`);
      const flushed = yield* fromPromise(Promise.resolve("flushed"));
      log.push(flushed);
    }
    log.push("after the finally"); // never: the CancelledError goes on
  }());
  loop.addTask(function* () {
    yield* sleep(5);
    task.cancel();
  }());
  await loop.run(); // its own cancellation: not reported
  assertEquals(log, ["cleanup starts at 5", "cleanup slept until 25", "flushed"]);
  assert(task.cancelled);
  assertThrows(() => task.result(), CancelledError);
});

Deno.test("a task that catches CancelledError and goes on is not cancelled; a later cancel() throws again", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const task = loop.addTask(function* () {
    try {
      yield* sleep(Infinity);
    } catch (error) {
      log.push(`ignored ${(error as CancelledError).reason}`);
    }
    yield* sleep(10);
    log.push(`went on until ${loop.time()}`);
    try {
      yield* sleep(Infinity);
    } catch (error) {
      log.push(`caught ${(error as CancelledError).reason}`);
      return "survived";
    }
  }());
  loop.addTask(function* () {
    yield* sleep(5);
    task.cancel("first");
    yield* sleep(20);
    log.push(`second cancel() returned ${task.cancel("second")}`);
  }());
  await loop.run();
  assertEquals(log, [
    "ignored first",
    "went on until 15",
    "second cancel() returned true",
    "caught second",
  ]);
  assertFalse(task.cancelled);
  assertEquals(task.result(), "survived");
});

Deno.test("a task cancelled twice while unwinding still ends as its own cancellation, not reported", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const task = loop.addTask(function* () {
    try {
      yield* sleep(Infinity);
    } catch (error) {
      try {
        yield* sleep(100); // cleanup that the second cancel() cuts short
      } catch {
        log.push("cleanup cut short");
      }
      throw error; // the first CancelledError
    }
  }());
  loop.addTask(function* () {
    yield* sleep(5);
    task.cancel("first");
    yield* sleep(5);
    task.cancel("second");
  }());
  await loop.run();
  assertEquals(log, ["cleanup cut short"]);
  assert(task.cancelled);
  assertEquals(assertThrows(() => task.result(), CancelledError).reason, "first");
});

Deno.test("a cancelled real-time sleeper leaves no host timer behind", async () => {
  const loop = new Loop();
  const start = performance.now();
  const sleeper = loop.addTask(sleep(60_000));
  loop.addTask(function* () {
    yield* fromPromise(hostDelay(5)); // the loop sleeps on the host meanwhile
    sleeper.cancel();
  }());
  await loop.run(); // the op sanitizer fails the test if a timer is left
  assert(sleeper.cancelled);
  assertLess(performance.now() - start, 5000);
});

Deno.test("a task cancelled from outside the loop while it sleeps on the host wakes the loop", async () => {
  const loop = new Loop();
  const start = performance.now();
  const sleeper = loop.addTask(sleep(60_000));
  const running = loop.run();
  await hostDelay(5);
  assert(sleeper.cancel());
  await running;
  assert(sleeper.cancelled);
  assertLess(performance.now() - start, 5000);
});

Deno.test("a task cancelled while waiting on a promise no longer keeps run() alive", async () => {
  const loop = new Loop();
  const hanging = loop.addTask(new Promise<never>(() => {}));
  const waiter = loop.addTask(fromPromise(new Promise<never>(() => {})));
  loop.addTask(function* () {
    yield* interrupt();
    hanging.cancel();
    waiter.cancel();
  }());
  await loop.run();
  assert(hanging.cancelled);
  assert(waiter.cancelled);
});

// ---------------------------------------------------------------------------
// Errors never vanish

Deno.test("an error nobody observed makes run() reject with it once every task has ended", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const boom = new Error("boom");
  loop.addTask(failAfter(10, boom));
  loop.addTask(after(log, 50, "bystander", null));
  const error = await assertRejects(() => loop.run());
  assertStrictEquals(error, boom);
  assertEquals(log, ["bystander 50"]);
  assertEquals(loop.time(), 50);
});

Deno.test("several errors nobody observed make run() reject with an AggregateError, in order", async () => {
  const loop = new Loop({ virtualTime: true });
  const first = new Error("first");
  const second = new TypeError("second");
  loop.addTask(failAfter(20, second));
  loop.addTask(failAfter(10, first));
  loop.addTask(failAfter(30, "a string")); // anything thrown counts
  const error = await assertRejects(() => loop.run(), AggregateError, "3 errors");
  assertEquals(error.errors, [first, second, "a string"]);
});

Deno.test("an error observed by result() or a join is not reported again", async () => {
  const loop = new Loop({ virtualTime: true });
  const a = loop.addTask(failAfter(10, new Error("read by result()")));
  const b = loop.addTask(failAfter(10, new Error("joined")));
  loop.addTask(function* () {
    yield* sleep(20);
    assertThrows(() => a.result(), Error, "read by result()");
    try {
      yield* b;
    } catch {
      // observed
    }
  }());
  await loop.run();
});

Deno.test("a task's own cancellation is never reported, but a join's CancelledError that escapes is", async () => {
  const loop = new Loop({ virtualTime: true });
  const victim = loop.addTask(sleep(Infinity), { name: "victim" });
  const joiner = loop.addTask(victim, { name: "joiner" });
  loop.addTask(function* () {
    yield* sleep(1);
    victim.cancel("stop");
  }());
  const error = await assertRejects(() => loop.run(), CancelledError);
  assertStrictEquals(error, assertThrows(() => victim.result(), CancelledError));
  assert(joiner.cancelled);
  assert(victim.cancelled);
});

Deno.test("addTask(a rejected promise) is no unhandled rejection: the error reaches run()", async () => {
  const loop = new Loop();
  const boom = new Error("already rejected");
  const task = loop.addTask(Promise.reject(boom));
  await hostDelay(1); // a macrotask passes: an unhandled rejection would fail the test here
  assertStrictEquals(await assertRejects(() => loop.run()), boom);
  assertStrictEquals(assertThrows(() => task.result()), boom);
});

Deno.test("fromPromise() of a promise that rejects before the task runs is no unhandled rejection", async () => {
  const loop = new Loop();
  const boom = new Error("rejected early");
  const wait = fromPromise(Promise.reject(boom));
  await hostDelay(1);
  const caught = await loop.runTask(function* () {
    try {
      yield* wait;
    } catch (error) {
      return error;
    }
  }());
  assertStrictEquals(caught, boom);
});

// ---------------------------------------------------------------------------
// fromPromise

Deno.test("fromPromise() returns the value or throws the reason of a promise or thenable", async () => {
  const loop = new Loop();
  const thenable: PromiseLike<number> = {
    then(onFulfilled) {
      return Promise.resolve(5).then(onFulfilled);
    },
  };
  const result = await loop.runTask(function* () {
    const a = yield* fromPromise(Promise.resolve("a"));
    const b = yield* fromPromise(hostDelay(1).then(() => "b"));
    const c = yield* fromPromise(thenable);
    const reason = new RangeError("d");
    try {
      yield* fromPromise(Promise.reject(reason));
    } catch (error) {
      return [a, b, c, error === reason];
    }
  }());
  assertEquals(result, ["a", "b", 5, true]);
});

// ---------------------------------------------------------------------------
// Deadlock

Deno.test("a deadlock makes run() reject with DeadlockError naming each stuck task and its wait", async () => {
  const loop = new Loop({ virtualTime: true });
  const lock = new Lock();
  const queue = new Queue<number>(1);
  const waits: [string, () => Awaitable<unknown>, string][] = [
    ["waiter", () => new Waiter(2), "Waiter(count=2)"],
    ["event", () => new Event().wait(), "Event.wait()"],
    ["lock", () => lock.acquire(), "Lock.acquire()"],
    ["semaphore", () => new Semaphore(0).acquire(), "Semaphore.acquire()"],
    ["getter", () => new Queue().get(), "Queue.get()"],
    ["putter", () => queue.put(2), "Queue.put()"],
    ["forever", () => sleep(Infinity), "sleep(Infinity)"],
  ];
  loop.addTask(
    function* () {
      yield* lock.acquire(); // and never releases
      yield* queue.put(1); // now full
      yield* sleep(10); // sleeping tasks are not stuck: no deadlock until the timer fires
    }(),
    { name: "holder" },
  );
  const finallies: string[] = [];
  for (const [name, wait] of waits) {
    loop.addTask(
      function* () {
        try {
          yield* wait();
        } finally {
          finallies.push(name);
        }
      }(),
      { name },
    );
  }
  const joined = loop.tasks().at(-1)!;
  loop.addTask(joined, { name: "joiner" });
  const error = await assertRejects(() => loop.run(), DeadlockError);
  assertEquals(error.name, "DeadlockError");
  assertEquals(loop.time(), 10);
  for (const [name, , what] of waits) {
    assertStringIncludes(error.message, `"${name}" waits on ${what}`);
  }
  assertStringIncludes(error.message, `"joiner" waits on Task("forever")`);
  assertEquals(
    error.tasks.map((task) => task.name),
    [...waits.map(([name]) => name), "joiner"],
  );
  assertEquals(finallies, waits.map(([name]) => name)); // stuck tasks were unwound
  assert(error.tasks.every((task) => task.done && task.cancelled));
  assertEquals(loop.tasks(), []);
});

Deno.test("a task parked on a pending promise is no deadlock: the loop waits for the promise", async () => {
  const loop = new Loop({ virtualTime: true });
  const event = new Event();
  const log: string[] = [];
  loop.addTask(function* () {
    yield* event.wait();
    log.push("event seen");
  }());
  loop.addTask(function* () {
    yield* fromPromise(hostDelay(5));
    event.set();
  }());
  await loop.run();
  assertEquals(log, ["event seen"]);
});

Deno.test("run() still rejects when a stuck task's cleanup gets stuck again", async () => {
  const loop = new Loop();
  const log: string[] = [];
  loop.addTask(
    function* () {
      try {
        yield* new Event().wait();
      } finally {
        log.push("cleanup starts");
        yield* new Waiter(1); // stuck again
        log.push("cleanup ends");
      }
    }(),
    { name: "stubborn" },
  );
  const error = await assertRejects(() => loop.run(), DeadlockError);
  assertStringIncludes(error.message, '"stubborn" waits on Event.wait()');
  assertEquals(log, ["cleanup starts"]);
});

Deno.test("a deadlock in a gather names the gathering task and its children", async () => {
  const loop = new Loop();
  const event = new Event();
  const error = await assertRejects(
    () => loop.runTask(gather(event.wait(), event.wait()), { name: "main" }),
    DeadlockError,
  );
  assertStringIncludes(error.message, '"main" waits on gather() (2 of 2 left)');
  assertStringIncludes(error.message, '"Task-2" waits on Event.wait()');
  assertStringIncludes(error.message, '"Task-3" waits on Event.wait()');
  assertEquals(error.tasks.length, 3);
});

Deno.test("a deadlock is reported together with the errors nobody observed", async () => {
  const loop = new Loop();
  const boom = new Error("boom");
  loop.addTask(function* () {
    yield;
    throw boom;
  }());
  loop.addTask(new Event().wait(), { name: "stuck" });
  const error = await assertRejects(() => loop.run(), AggregateError);
  assertEquals(error.errors.length, 2);
  assertInstanceOf(error.errors[0], DeadlockError);
  assertStrictEquals(error.errors[1], boom);
});

// ---------------------------------------------------------------------------
// gather

Deno.test(
  "gather() returns the results in argument order, typed as a tuple",
  loopTest(function* (loop) {
    const log: string[] = [];
    const task = loop.addTask(after(log, 5, "task", true));
    const results = yield* gather(
      after(log, 30, "number", 1),
      after(log, 10, "string", "two"),
      task,
      new Waiter(0),
    );
    assertType<IsExact<typeof results, [number, string, boolean, void]>>(true);
    assertEquals(results, [1, "two", true, undefined]);
    assertEquals(log, ["task 5", "string 10", "number 30"]);
    assertEquals(loop.time(), 30);
  }),
);

Deno.test("gather() of nothing returns an empty array", async () => {
  const results = await new Loop().runTask(gather());
  assertType<IsExact<typeof results, []>>(true);
  assertEquals(results, []);
});

Deno.test("gather() on the first failure cancels the others, waits for them to unwind, then throws it", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const first = new Error("first");
  function* slow(name: string): Coroutine {
    try {
      yield* sleep(1000);
    } finally {
      yield* sleep(5); // unwinding takes time
      log.push(`${name} unwound at ${loop.time()}`);
    }
  }
  const caught = await loop.runTask(function* () {
    try {
      yield* gather(slow("a"), failAfter(10, first), slow("b"), failAfter(11, new Error("second")));
    } catch (error) {
      log.push(`gather threw at ${loop.time()}`);
      return error;
    }
  }());
  assertStrictEquals(caught, first);
  // The second failure came while unwinding: consumed, not reported by run().
  assertEquals(log, ["a unwound at 15", "b unwound at 15", "gather threw at 15"]);
});

Deno.test("gather() cancels the Tasks passed to it when another awaitable fails", async () => {
  const loop = new Loop({ virtualTime: true });
  const passed = loop.addTask(sleep(Infinity), { name: "passed" });
  const boom = new Error("boom");
  const error = await assertRejects(() => loop.runTask(gather(passed, failAfter(10, boom))));
  assertStrictEquals(error, boom);
  assert(passed.cancelled);
  assertEquals(loop.time(), 10);
});

Deno.test("gather() throws the error of a Task passed to it that fails, and consumes it", async () => {
  const loop = new Loop({ virtualTime: true });
  const boom = new Error("boom");
  const failing = loop.addTask(failAfter(5, boom));
  const other = loop.addTask(sleep(1000));
  const caught = await loop.runTask(function* () {
    try {
      yield* gather(other, failing);
    } catch (error) {
      return error;
    }
  }());
  assertStrictEquals(caught, boom);
  assert(other.cancelled);
});

Deno.test("cancelling the task in gather() cancels every child and waits for them to unwind", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  function* child(name: string, cleanup: number): Coroutine {
    try {
      yield* sleep(Infinity);
    } finally {
      yield* sleep(cleanup);
      log.push(`${name} unwound at ${loop.time()}`);
    }
  }
  const passed = loop.addTask(child("passed", 3));
  const gathering = loop.addTask(function* () {
    try {
      yield* gather(child("a", 7), passed);
    } finally {
      log.push(`gather ended at ${loop.time()}`);
    }
  }());
  loop.addTask(function* () {
    yield* sleep(10);
    gathering.cancel("stop");
    yield* sleep(1);
    gathering.cancel("again"); // while the children unwind
  }());
  await loop.run();
  assertEquals(log, ["passed unwound at 13", "a unwound at 17", "gather ended at 17"]);
  assert(gathering.cancelled);
  assert(passed.cancelled);
});

// ---------------------------------------------------------------------------
// deadline

Deno.test("deadline() returns the result in time and leaves no timer behind", async () => {
  const loop = new Loop({ virtualTime: true });
  assertEquals(await loop.runTask(deadline(after([], 10, "x", "in time"), 1000)), "in time");
  assertEquals(loop.time(), 10); // the 1000 ms timer did not keep the loop going
  assertEquals(await loop.runTask(deadline(after([], 10, "x", "again"), Infinity)), "again");
  assertEquals(loop.time(), 20);
});

Deno.test("deadline() in real time leaves no host timer behind", async () => {
  const loop = new Loop();
  const start = performance.now();
  assertEquals(await loop.runTask(deadline(fromPromise(Promise.resolve(1)), 60_000)), 1);
  assertLess(performance.now() - start, 5000);
});

Deno.test("deadline() cancels a late awaitable, waits for it to unwind, then throws TimeoutError", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const error = await assertRejects(() =>
    loop.runTask(function* () {
      try {
        yield* deadline(
          function* () {
            try {
              yield* sleep(1000);
            } catch (error) {
              log.push(`child got ${(error as CancelledError).reason}`);
              throw error;
            } finally {
              yield* sleep(3);
              log.push(`child unwound at ${loop.time()}`);
            }
          }(),
          50,
        );
      } finally {
        log.push(`deadline threw at ${loop.time()}`);
      }
    }())
  );
  assertInstanceOf(error, DOMException);
  assertEquals(error.name, "TimeoutError");
  assertStringIncludes(error.message, "50 ms");
  assertEquals(log, [
    "child got deadline(): 50 ms passed",
    "child unwound at 53",
    "deadline threw at 53",
  ]);
});

Deno.test("deadline() cancels a Task passed to it when time runs out", async () => {
  const loop = new Loop({ virtualTime: true });
  const passed = loop.addTask(sleep(1000));
  await assertRejects(() => loop.runTask(deadline(passed, 20)), DOMException, "timed out");
  assert(passed.cancelled);
  assertEquals(loop.time(), 20);
});

Deno.test("deadline() passes the awaitable's own error through", async () => {
  const loop = new Loop({ virtualTime: true });
  const boom = new Error("boom");
  assertStrictEquals(
    await assertRejects(() => loop.runTask(deadline(failAfter(5, boom), 50))),
    boom,
  );
  assertEquals(loop.time(), 5);
});

Deno.test("cancelling the task in deadline() cancels the awaitable too", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const passed = loop.addTask(sleep(1000));
  const waiting = loop.addTask(function* () {
    yield* deadline(
      function* () {
        try {
          yield* sleep(1000);
        } finally {
          log.push(`generator unwound at ${loop.time()}`);
        }
      }(),
      500,
    );
  }());
  const waitingOnTask = loop.addTask(deadline(passed, 500));
  loop.addTask(function* () {
    yield* sleep(10);
    waiting.cancel();
    waitingOnTask.cancel();
  }());
  await loop.run();
  assertEquals(log, ["generator unwound at 10"]);
  assert(waiting.cancelled);
  assert(waitingOnTask.cancelled);
  assert(passed.cancelled);
  assertEquals(loop.time(), 10);
});
