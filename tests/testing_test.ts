// Copyright 2026 the boucle authors. MIT license.
/**
 * Tests for loopTest() and waitAllTasksBlocked() (testing.ts). Each failure
 * kind of loopTest() is checked by calling the function it returns and
 * asserting the rejection; waitAllTasksBlocked() by an event log of what
 * the other tasks did before it returned.
 */
import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertLess,
  assertRejects,
  assertStrictEquals,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  type Coroutine,
  DeadlockError,
  fromPromise,
  gather,
  interrupt,
  Loop,
  sleep,
  type Task,
} from "../loop.ts";
import { gatherSettled } from "../scope.ts";
import { aiosocket } from "../socket.ts";
import { Event, Queue } from "../sync.ts";
import { loopTest, waitAllTasksBlocked } from "../testing.ts";

/** The rows of a `Loop.dump()` table found in `message`, each split into its cells. */
function dumpRows(message: string): string[][] {
  const lines = message.split("\n");
  const header = lines.findIndex((line) => line.startsWith("task "));
  assert(header >= 0, `no dump table in: ${message}`);
  return lines.slice(header).map((line) => line.split(/\s{2,}/));
}

const HEADER = ["task", "state", "waits on", "group", "waited (ms)"];

/** Sleeps `ms`, logging `name cleaned up` when it ends early or not. */
function* sleeper(log: string[], name: string, ms: number): Coroutine<void> {
  try {
    yield* sleep(ms);
  } finally {
    log.push(`${name} cleaned up`);
  }
}

/** Cancels the tasks and waits for them to end. */
function* stop(...tasks: Task<unknown>[]): Coroutine<void> {
  for (const task of tasks) task.cancel();
  yield* gatherSettled(...tasks);
}

// ---------------------------------------------------------------------------
// loopTest(): passing bodies

Deno.test("loopTest() runs a virtual hour in a few milliseconds of a 1 s timeout", async () => {
  const log: string[] = [];
  await loopTest(function* (loop) {
    yield* sleep(1_800_000);
    log.push(`half an hour: ${loop.time()}`);
    yield* sleep(1_800_000);
    log.push(`an hour: ${loop.time()}`);
  }, { timeout: 1000 })();
  assertEquals(log, ["half an hour: 1800000", "an hour: 3600000"]);
});

Deno.test("loopTest({ virtualTime: false }) runs the body on the real clock", async () => {
  let slept = NaN;
  let wall = NaN;
  await loopTest(function* (loop) {
    const start = loop.time();
    const wallStart = performance.now();
    yield* sleep(30);
    slept = loop.time() - start;
    wall = performance.now() - wallStart;
  }, { virtualTime: false })();
  assert(slept >= 30, `the loop's clock moved ${slept} ms`);
  assert(wall >= 29, `${wall} ms of wall-clock time passed`); // host timers round to 1 ms
});

Deno.test("loopTest() gives the body a fresh loop each call, as Loop.current", async () => {
  const loops: Loop[] = [];
  const test = loopTest(function* (loop) {
    assertStrictEquals(Loop.current, loop);
    assertEquals(loop.time(), 0);
    loops.push(loop);
    yield* sleep(5);
  });
  await test();
  await test();
  assertEquals(loops.length, 2);
  assert(loops[0] !== loops[1]);
});

Deno.test("loopTest() accepts a body that returns an Awaitable, not a generator", async () => {
  let time = NaN;
  await loopTest((loop) => {
    loop.addTask(function* () {
      yield* sleep(0);
      time = loop.time();
    }());
    return sleep(10);
  })();
  assertEquals(time, 0);
});

// ---------------------------------------------------------------------------
// loopTest(): each failure kind

Deno.test("loopTest() fails with the body's own error, and stops the tasks it left without a leak report", async () => {
  const log: string[] = [];
  const boom = new Error("boom");
  const error = await assertRejects(
    loopTest(function* (loop) {
      loop.addTask(sleeper(log, "helper", 5000), { name: "helper" });
      yield* sleep(10);
      throw boom;
    }),
  );
  assertStrictEquals(error, boom);
  assertEquals(log, ["helper cleaned up"]);
});

Deno.test("loopTest() fails with an error that no task observed", async () => {
  const error = await assertRejects(
    loopTest(function* (loop) {
      loop.addTask(function* () {
        yield* sleep(1);
        throw new Error("lost");
      }());
      yield* sleep(10);
    }),
    Error,
  );
  assertEquals(error.message, "lost");
});

Deno.test("loopTest() fails at once on a deadlock with a DeadlockError naming each task and its wait", async () => {
  const log: string[] = [];
  const jobs = new Queue<string>(Infinity, { name: "jobs" });
  const done = new Event({ name: "done" });
  const started = performance.now();
  const error = await assertRejects(
    loopTest(function* (loop) {
      loop.addTask(
        function* () {
          try {
            log.push(`worker got ${yield* jobs.get()}`);
          } finally {
            log.push("worker cleaned up");
          }
        }(),
        { name: "worker" },
      );
      yield* sleep(100);
      yield* done.wait(); // nobody sets it, and nobody puts a job
    }),
    DeadlockError,
  );
  assertEquals(
    error.message,
    "Deadlock: no task can run and nothing can wake the parked ones: " +
      '"loopTest body" waits on Event("done").wait(), "worker" waits on Queue("jobs").get()',
  );
  assertEquals(error.tasks.map((task) => task.name), ["loopTest body", "worker"]);
  assertEquals(log, ["worker cleaned up"]);
  assertLess(performance.now() - started, 5000); // not the default 10 s timeout
});

Deno.test("loopTest() fails after options.timeout ms on a promise that never settles, listing the live tasks", async () => {
  const log: string[] = [];
  const error = await assertRejects(
    loopTest(function* (loop) {
      loop.addTask(sleeper(log, "ticker", Infinity), { name: "ticker" });
      try {
        yield* fromPromise(new Promise<never>(() => {}));
      } finally {
        log.push("body cleaned up");
      }
    }, { timeout: 50 }),
    Error,
  );
  assertEquals(
    error.message.split("\n")[0],
    "loopTest(): timed out after 50 ms of wall-clock time; the live tasks were:",
  );
  assertEquals(dumpRows(error.message), [
    HEADER,
    ["loopTest body", "parked", "fromPromise()", "-", "0"],
    ["ticker", "parked", "sleep(Infinity)", "-", "0"],
  ]);
  assertEquals(log.toSorted(), ["body cleaned up", "ticker cleaned up"]); // both were cancelled
});

Deno.test("loopTest() fails after options.timeout ms on a socket nobody connects to, and closes it", async () => {
  const error = await assertRejects(
    loopTest(function* () {
      using server = aiosocket();
      yield* server.bind({ hostname: "127.0.0.1", port: 0 });
      yield* server.listen();
      using _conn = yield* server.accept(); // no client comes
    }, { timeout: 50 }),
    Error,
    "loopTest(): timed out after 50 ms of wall-clock time",
  );
  assertEquals(dumpRows(error.message), [
    HEADER,
    ["loopTest body", "parked", "AIOSocket.waitReadable()", "-", "0"],
  ]);
  // The resource sanitizer checks that `using` closed the listener when the body was cancelled.
});

Deno.test("loopTest() on the real clock times out a stuck wait too", async () => {
  const error = await assertRejects(
    loopTest(function* () {
      yield* fromPromise(new Promise<never>(() => {}));
    }, { virtualTime: false, timeout: 40 }),
    Error,
    "timed out after 40 ms",
  );
  const [, body] = dumpRows(error.message);
  assertEquals(body!.slice(0, 4), ["loopTest body", "parked", "fromPromise()", "-"]);
  assert(Number(body![4]) >= 30, `waited ${body![4]} ms, parked for at least 40`);
});

Deno.test("loopTest() rejects a body that returns neither a generator nor an Awaitable", async () => {
  await assertRejects(
    loopTest((async () => {}) as never),
    TypeError,
    "loopTest(body, options): 'body' must return a generator or an Awaitable, received an object (Promise)",
  );
  await assertRejects(
    loopTest((() => 5) as never),
    TypeError,
    "'body' must return a generator or an Awaitable, received 5",
  );
});

Deno.test("loopTest() fails when tasks outlive the body, naming them, and cancels them", async () => {
  const log: string[] = [];
  let leaked: Task<void> | undefined;
  const error = await assertRejects(
    loopTest(function* (loop) {
      leaked = loop.addTask(sleeper(log, "poller", 5000), { name: "poller" });
      loop.addTask(sleep(1), { name: "quick" }); // ends before the body: no leak
      yield* sleep(20);
      log.push("body returns");
    }),
    Error,
  );
  assertEquals(
    error.message.split("\n")[0],
    'loopTest(): 1 task(s) still alive when the body returned (leaked, now cancelled): "poller" waits on sleep()',
  );
  assertEquals(dumpRows(error.message), [
    HEADER,
    ["loopTest body", "running", "-", "-", "-"],
    ["poller", "parked", "sleep()", "-", "20"],
  ]);
  assertEquals(log, ["body returns", "poller cleaned up"]); // its finally ran
  assert(leaked!.cancelled);
});

// ---------------------------------------------------------------------------
// loopTest(): bad arguments

Deno.test("loopTest() rejects bad arguments at once, naming the argument and the value", () => {
  const body = function* () {};
  const cases: [() => unknown, typeof TypeError | typeof RangeError, string][] = [
    [
      () => loopTest(undefined as never),
      TypeError,
      "loopTest(body, options): 'body' must be a function, received undefined",
    ],
    [
      () => loopTest(body, null as never),
      TypeError,
      "loopTest(body, options): 'options' must be an object, received null",
    ],
    [
      () => loopTest(body, { virtualTime: "yes" as never }),
      TypeError,
      "loopTest(body, options): 'options.virtualTime' must be a boolean, received \"yes\"",
    ],
    [
      () => loopTest(body, { timeout: "1000" as never }),
      TypeError,
      "loopTest(body, options): 'options.timeout' must be a number > 0, received \"1000\"",
    ],
    [
      () => loopTest(body, { timeout: 0 }),
      RangeError,
      "loopTest(body, options): 'options.timeout' must be a number > 0, received 0",
    ],
    [() => loopTest(body, { timeout: -5 }), RangeError, "received -5"],
    [() => loopTest(body, { timeout: NaN }), RangeError, "received NaN"],
  ];
  for (const [call, type, message] of cases) assertThrows(call, type, message);
});

// ---------------------------------------------------------------------------
// waitAllTasksBlocked()

Deno.test("waitAllTasksBlocked() returns only once every other task is parked: on a sleep, a Queue, a promise", async () => {
  const log: string[] = [];
  const jobs = new Queue<string>(Infinity, { name: "jobs" });
  const { promise, resolve } = Promise.withResolvers<string>();
  await loopTest(function* (loop) {
    const sleeper = loop.addTask(function* () {
      for (let i = 1; i <= 3; i++) {
        log.push(`sleeper step ${i}`);
        yield* interrupt();
      }
      yield* sleep(50);
      log.push(`sleeper woke at ${loop.time()}`);
    }());
    const consumer = loop.addTask(function* () {
      log.push("consumer waits");
      for (let i = 0; i < 2; i++) log.push(`consumer got ${yield* jobs.get()}`);
    }());
    const awaiter = loop.addTask(function* () {
      yield* interrupt();
      log.push("awaiter waits");
      log.push(`awaiter got ${yield* fromPromise(promise)}`);
    }());
    jobs.tryPut("a");
    yield* waitAllTasksBlocked();
    log.push("all blocked");
    jobs.tryPut("b");
    resolve("p");
    yield* waitAllTasksBlocked();
    log.push("all blocked again");
    yield* gather(sleeper, consumer, awaiter);
  })();
  assertEquals(log, [
    "sleeper step 1",
    "consumer waits",
    "consumer got a",
    "sleeper step 2",
    "awaiter waits",
    "sleeper step 3",
    "all blocked",
    "consumer got b",
    "all blocked again", // a task on a promise counts as blocked until the loop sees it settle
    "awaiter got p",
    "sleeper woke at 50",
  ]);
});

Deno.test("waitAllTasksBlocked() waits out a chain of wake-ups that takes no time", async () => {
  const log: string[] = [];
  const first = new Queue<number>(Infinity, { name: "first" });
  const second = new Queue<number>(Infinity, { name: "second" });
  await loopTest(function* (loop) {
    const relay = loop.addTask(function* () {
      for (;;) yield* second.put((yield* first.get()) * 10);
    }());
    const sink = loop.addTask(function* () {
      for (;;) log.push(`sink got ${yield* second.get()}`);
    }());
    for (let i = 1; i <= 3; i++) first.tryPut(i);
    yield* waitAllTasksBlocked();
    log.push("all blocked");
    yield* stop(relay, sink);
  })();
  assertEquals(log, ["sink got 10", "sink got 20", "sink got 30", "all blocked"]);
});

Deno.test("waitAllTasksBlocked() under virtual time returns before the clock jumps to the next timer", async () => {
  const log: string[] = [];
  await loopTest(function* (loop) {
    loop.addTask(function* () {
      log.push(`sleeper parks at ${loop.time()}`);
      yield* sleep(100);
      log.push(`sleeper wakes at ${loop.time()}`);
    }());
    yield* waitAllTasksBlocked();
    log.push(`all blocked at ${loop.time()}`);
    yield* sleep(200);
    log.push(`body at ${loop.time()}`);
  })();
  assertEquals(log, [
    "sleeper parks at 0",
    "all blocked at 0",
    "sleeper wakes at 100",
    "body at 200",
  ]);
});

Deno.test("waitAllTasksBlocked() returns at once when no other task is alive", async () => {
  await loopTest(function* (loop) {
    yield* waitAllTasksBlocked();
    assertEquals(loop.time(), 0);
  })();
});

Deno.test("waitAllTasksBlocked() outside a running loop throws an Error that says so", () => {
  const error = assertThrows(() => waitAllTasksBlocked().next(), Error);
  assertInstanceOf(error, Error);
  assertStringIncludes(error.message, "waitAllTasksBlocked(): no loop is running a task right now");
});
