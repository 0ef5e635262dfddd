// Copyright 2026 the boucle authors. MIT license.
// The promise world (DESIGN.md, "The promise world"): fromPromise with an
// AbortSignal, TaskOptions.signal, Loop.submit, run({ until, onError }); and
// introspection (Task.waitingOn, Loop.dump()); and long real-time sleeps.
import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertLess,
  assertRejects,
  assertStrictEquals,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import process from "node:process";
import {
  CancelledError,
  type Coroutine,
  deadline,
  DeadlockError,
  fromPromise,
  interrupt,
  Loop,
  sleep,
} from "../loop.ts";
import { moveOnAfter, taskGroup } from "../scope.ts";
import { Event, Lock } from "../sync.ts";
import { DENO } from "./_deno.ts";

/** Sleeps `ms`, logs `name` with the time, returns `value`. */
function* after<T>(log: string[], ms: number, name: string, value: T): Coroutine<T> {
  yield* sleep(ms);
  log.push(`${name} ${Loop.current.time()}`);
  return value;
}

/** A promise that resolves after `ms` of real time (a host timer). */
function hostDelay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A promise with its resolve and reject at hand. */
function deferred<T>(): {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (reason: unknown) => void;
} {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Collects the unhandled rejections that happen while `body` runs and for a
 * few host turns after it (each one is marked handled, so that the test can
 * fail with an assertion rather than kill the test module).
 */
async function unhandledRejections(body: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const onUnhandled = (event: PromiseRejectionEvent) => {
    event.preventDefault();
    seen.push(event.reason);
  };
  globalThis.addEventListener("unhandledrejection", onUnhandled);
  try {
    await body();
    for (let i = 0; i < 3; i++) await hostDelay(0);
  } finally {
    globalThis.removeEventListener("unhandledrejection", onUnhandled);
  }
  return seen;
}

/** Counts the "abort" listeners added to and removed from a signal. */
function countListeners(signal: AbortSignal): { added: number; removed: number; live: number } {
  const counts = { added: 0, removed: 0, live: 0 };
  const live = new Set<unknown>();
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = ((type: string, listener: EventListener, options?: unknown) => {
    if (type === "abort") {
      counts.added++;
      live.add(listener);
      counts.live = live.size;
    }
    add(type, listener, options as AddEventListenerOptions);
  }) as typeof signal.addEventListener;
  signal.removeEventListener = ((type: string, listener: EventListener, options?: unknown) => {
    if (type === "abort" && live.delete(listener)) {
      counts.removed++;
      counts.live = live.size;
    }
    remove(type, listener, options as EventListenerOptions);
  }) as typeof signal.removeEventListener;
  return counts;
}

/** Resolves once the host has run a few turns: a settled flag is then trustworthy. */
async function hostTurns(): Promise<void> {
  for (let i = 0; i < 5; i++) await hostDelay(0);
}

// ---------------------------------------------------------------------------
// fromPromise((signal) => promise)

Deno.test("fromPromise(fn) calls fn with an AbortSignal when the coroutine first runs", async () => {
  const loop = new Loop();
  const signals: AbortSignal[] = [];
  const wait = fromPromise((signal) => {
    signals.push(signal);
    return Promise.resolve("value");
  });
  assertEquals(signals.length, 0); // not called yet
  assertEquals(await loop.runTask(wait), "value");
  assertEquals(signals.length, 1);
  const [signal] = signals;
  assert(signal instanceof AbortSignal);
  assertFalse(signal.aborted); // a promise that settled is never aborted
});

Deno.test("fromPromise(fn) aborts the signal when the task is cancelled, with the CancelledError as reason", async () => {
  const log: string[] = [];
  let signal: AbortSignal | undefined;
  const pending = deferred<string>();
  const unhandled = await unhandledRejections(async () => {
    const loop = new Loop({ virtualTime: true });
    const task = loop.addTask(function* () {
      try {
        yield* fromPromise((s) => {
          signal = s;
          s.addEventListener("abort", () => log.push("aborted"));
          return pending.promise;
        });
      } catch (error) {
        log.push(`task ${error instanceof CancelledError ? "cancelled" : "failed"}`);
        throw error;
      }
    }());
    loop.addTask(function* () {
      yield* interrupt();
      task.cancel("stop");
    }());
    await loop.run(); // at once: the pending promise does not hold the task
    log.push("run ended");
    assert(signal!.aborted);
    assertInstanceOf(signal!.reason, CancelledError);
    assertEquals(signal!.reason.reason, "stop");
    assertStrictEquals(assertThrows(() => task.result()), signal!.reason);
    pending.reject(signal!.reason); // the promise's later rejection is consumed
  });
  assertEquals(unhandled, []);
  assertEquals(log, ["aborted", "task cancelled", "run ended"]);
});

Deno.test("fromPromise(fn) aborts the signal when a deadline() around it expires (real time)", async () => {
  const log: string[] = [];
  let signal: AbortSignal | undefined;
  const loop = new Loop();
  const unhandled = await unhandledRejections(async () => {
    await loop.runTask(function* () {
      try {
        yield* deadline(
          fromPromise((s) => {
            signal = s;
            return new Promise((_, reject) => {
              s.addEventListener("abort", () => {
                log.push("aborted");
                reject(s.reason); // rejected after the task gave up on it: consumed
              });
            });
          }),
          10,
        );
      } catch (error) {
        log.push(`deadline threw ${(error as Error).name}`);
      }
    }());
  });
  assertEquals(unhandled, []);
  assertEquals(log, ["aborted", "deadline threw TimeoutError"]);
  assertInstanceOf(signal!.reason, CancelledError);
  assertEquals(signal!.reason.reason, "deadline(): 10 ms passed");
});

Deno.test("fromPromise(fn) aborts the signal when a moveOnAfter() around it expires (real time)", async () => {
  let signal: AbortSignal | undefined;
  const loop = new Loop();
  const late = deferred<string>();
  const value = await loop.runTask(moveOnAfter(
    fromPromise((s) => {
      signal = s;
      return late.promise;
    }),
    10,
  ));
  assertEquals(value, undefined);
  assertInstanceOf(signal!.reason, CancelledError);
  assertEquals(signal!.reason.reason, "moveOnAfter(): 10 ms passed");
  const unhandled = await unhandledRejections(() => {
    late.reject(new Error("late failure")); // consumed
    return Promise.resolve();
  });
  assertEquals(unhandled, []);
});

Deno.test("fromPromise(fn): a promise that settled before the task was cancelled is not aborted", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  let signal: AbortSignal | undefined;
  const settling = deferred<number>();
  const task = loop.addTask(function* () {
    const value = yield* fromPromise((s) => {
      signal = s;
      return settling.promise;
    });
    log.push(`got ${value}`);
    try {
      yield* interrupt();
    } catch (error) {
      log.push(`then ${error instanceof CancelledError ? "cancelled" : "failed"}`);
      throw error;
    }
  }());
  loop.addTask(function* () {
    yield* interrupt(); // the task now waits on the promise; its handlers come first
    settling.promise.then(() => task.cancel()); // right after it settles
    settling.resolve(1);
  }());
  await loop.run();
  assertFalse(signal!.aborted);
  assertEquals(log, ["got 1", "then cancelled"]);
  assert(task.cancelled);
});

Deno.test("fromPromise(fn): a signal is not aborted by a cancel after the wait ended", async () => {
  const loop = new Loop({ virtualTime: true });
  let signal: AbortSignal | undefined;
  const task = loop.addTask(function* () {
    yield* fromPromise((s) => {
      signal = s;
      return Promise.resolve();
    });
    yield* sleep(Infinity);
  }());
  loop.addTask(function* () {
    yield* sleep(10);
    task.cancel();
  }());
  await loop.run();
  assert(task.cancelled);
  assertFalse(signal!.aborted);
});

Deno.test("fromPromise(fn) under virtual time: the clock does not jump while the promise is pending", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  await loop.runTask(function* () {
    try {
      yield* deadline(
        function* () {
          yield* fromPromise(() => hostDelay(20));
          log.push(`promise settled at ${loop.time()}`);
          yield* sleep(50); // the clock now jumps: to the expiry
        }(),
        10,
      );
    } catch (error) {
      log.push(`deadline threw ${(error as Error).name} at ${loop.time()}`);
    }
  }());
  assertEquals(log, ["promise settled at 0", "deadline threw TimeoutError at 10"]);
});

Deno.test("fromPromise(fn) passes through the promise's value, its rejection, and what fn throws", async () => {
  const loop = new Loop();
  const boom = new Error("boom");
  const thrown = new Error("thrown by fn");
  assertEquals(await loop.runTask(fromPromise(() => Promise.resolve(5))), 5);
  assertStrictEquals(
    await assertRejects(() => loop.runTask(fromPromise(() => Promise.reject(boom)))),
    boom,
  );
  assertStrictEquals(
    await assertRejects(() =>
      loop.runTask(fromPromise(() => {
        throw thrown;
      }))
    ),
    thrown,
  );
});

Deno.test("fromPromise(fn) whose fn returns no thenable throws a TypeError saying so", async () => {
  const loop = new Loop();
  await assertRejects(
    () => loop.runTask(fromPromise(() => 42 as unknown as Promise<number>)),
    TypeError,
    "fromPromise(fn): 'fn' must return a thenable, returned 42",
  );
  assertThrows(
    () => fromPromise(42 as unknown as Promise<number>),
    TypeError,
    "fromPromise(promise): 'promise' must be a thenable or a function (signal) => thenable, received 42",
  );
});

// ---------------------------------------------------------------------------
// TaskOptions.signal

Deno.test("TaskOptions.signal: aborting it cancels the task, with signal.reason as the reason", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const controller = new AbortController();
  const task = loop.addTask(
    function* () {
      try {
        yield* sleep(100);
      } catch (error) {
        log.push(`cancelled: ${(error as CancelledError).reason} ${loop.time()}`);
        throw error;
      }
    }(),
    { signal: controller.signal },
  );
  loop.addTask(function* () {
    yield* sleep(10);
    controller.abort("stop");
  }());
  await loop.run(); // its own cancellation: nothing to report
  assert(task.cancelled);
  assertEquals(log, ["cancelled: stop 10"]);
  assertEquals(assertThrows(() => task.result(), CancelledError).reason, "stop");
});

Deno.test("TaskOptions.signal: aborting it from outside the loop wakes the sleeping loop", async () => {
  const loop = new Loop();
  const controller = new AbortController();
  const task = loop.addTask(sleep(60_000), { signal: controller.signal });
  const running = loop.run();
  await hostDelay(5);
  const start = performance.now();
  controller.abort();
  await running;
  assertLess(performance.now() - start, 1000);
  assert(task.cancelled);
  const reason = assertThrows(() => task.result(), CancelledError).reason;
  assertInstanceOf(reason, DOMException);
  assertEquals(reason.name, "AbortError");
});

Deno.test("TaskOptions.signal already aborted: the task never runs and ends cancelled", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const task = loop.addTask(
    function* () {
      log.push("ran");
      yield* sleep(1);
    }(),
    { signal: AbortSignal.abort("too late") },
  );
  await loop.run();
  assertEquals(log, []);
  assert(task.cancelled);
  assertEquals(assertThrows(() => task.result(), CancelledError).reason, "too late");
});

Deno.test("TaskOptions.signal: the listener is removed when the task ends, however it ends", async () => {
  const loop = new Loop({ virtualTime: true });
  const controllers = Array.from({ length: 6 }, () => new AbortController());
  const counts = controllers.map((c) => countListeners(c.signal));
  const [returns, fails, cancelled, inGroup, submitted, started] = controllers.map((c) => c.signal);
  const returning = loop.addTask(after([], 5, "returns", "value"), { signal: returns! });
  const failing = loop.addTask(
    function* () {
      yield* sleep(5);
      throw new Error("boom");
    }(),
    { signal: fails! },
  );
  const cancelling = loop.addTask(sleep(Infinity), { signal: cancelled! });
  const fromSubmit = loop.submit(sleep(5), { signal: submitted! });
  loop.addTask(taskGroup(function* (group) {
    group.spawn(sleep(5), { signal: inGroup! });
    yield* group.start(function* (ready: (value: void) => void) {
      yield* sleep(1);
      ready();
      yield* sleep(5);
    }, { signal: started! });
  }));
  loop.addTask(function* () {
    yield* sleep(10);
    cancelling.cancel();
  }());
  await loop.run().catch(() => {});
  await fromSubmit;
  assertThrows(() => failing.result(), Error, "boom");
  assertEquals(counts, counts.map(() => ({ added: 1, removed: 1, live: 0 })));
  // Aborting after the end does nothing.
  for (const controller of controllers) controller.abort();
  assertEquals(returning.result(), "value");
  assertFalse(returning.cancelled);
});

Deno.test("TaskOptions.signal aborted after the task ended has no effect", async () => {
  const loop = new Loop({ virtualTime: true });
  const controller = new AbortController();
  const task = loop.addTask(after([], 5, "x", 1), { signal: controller.signal });
  await loop.run();
  controller.abort();
  await loop.run();
  assertFalse(task.cancelled);
  assertEquals(task.result(), 1);
});

// ---------------------------------------------------------------------------
// Loop.submit

Deno.test("Loop.submit() from promise code resolves with the task's value and rejects with its error", async () => {
  const loop = new Loop();
  const stop = new AbortController();
  const running = loop.run({ until: stop.signal });
  const boom = new Error("boom");
  assertEquals(
    await loop.submit(function* () {
      yield* sleep(1);
      return 42;
    }()),
    42,
  );
  const error = await assertRejects(() =>
    loop.submit(function* () {
      yield* sleep(1);
      throw boom;
    }())
  );
  assertStrictEquals(error, boom);
  assertEquals(await loop.submit(Promise.resolve("a promise")), "a promise");
  stop.abort();
  await running; // the failure was observed by submit's promise: nothing to report
});

Deno.test("Loop.submit() of a task that is cancelled rejects with its CancelledError", async () => {
  const loop = new Loop({ virtualTime: true });
  const controller = new AbortController();
  const submitted = loop.submit(sleep(Infinity), { signal: controller.signal, name: "waiter" });
  loop.addTask(function* () {
    yield* sleep(10);
    controller.abort("stop");
  }());
  await loop.run();
  const error = await assertRejects(() => submitted, CancelledError);
  assertEquals(error.reason, "stop");
});

Deno.test("Loop.submit() from a task of another loop, both loops running", async () => {
  const service = new Loop();
  const stop = new AbortController();
  const serving = service.run({ until: stop.signal });
  const client = new Loop();
  const value = await client.runTask(function* () {
    const values = [];
    for (let i = 0; i < 3; i++) {
      values.push(
        yield* fromPromise(service.submit(function* () {
          yield* sleep(1);
          return `${Loop.current === service ? "on service" : "elsewhere"} ${i}`;
        }())),
      );
    }
    return values;
  }());
  assertEquals(value, ["on service 0", "on service 1", "on service 2"]);
  stop.abort();
  await serving;
});

Deno.test("Loop.submit() from a task of the same loop (real time)", async () => {
  // Not virtual time: the clock never jumps while a promise (this one) is pending.
  const loop = new Loop();
  const value = await loop.runTask(function* () {
    const submitted = Loop.current.submit(after([], 5, "x", "same loop"));
    return yield* fromPromise(submitted);
  }());
  assertEquals(value, "same loop");
});

Deno.test("Loop.submit() on a loop that is not running: the task starts at the next run()", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  let settled = false;
  const submitted = loop.submit(
    function* () {
      log.push("ran");
      yield* sleep(5);
      return "value";
    }(),
    { name: "early" },
  );
  submitted.then(() => settled = true);
  await hostTurns();
  assertEquals(log, []);
  assertFalse(settled);
  assertEquals(loop.tasks().map((task) => task.name), ["early"]);
  await loop.run();
  assertEquals(await submitted, "value");
  assertEquals(log, ["ran"]);
});

Deno.test("Loop.submit() on a loop that has ended: the task starts at the next run()", async () => {
  const loop = new Loop({ virtualTime: true });
  await loop.runTask(sleep(1));
  let settled = false;
  const submitted = loop.submit(after([], 5, "late", 2));
  submitted.then(() => settled = true);
  await hostTurns();
  assertFalse(settled);
  await loop.run();
  assertEquals(await submitted, 2);
});

Deno.test("Loop.submit() of a bad value returns a promise rejected with a TypeError, adding nothing", async () => {
  const loop = new Loop();
  // @ts-expect-error: not a task
  const bad = loop.submit(42);
  assertInstanceOf(bad, Promise);
  await assertRejects(
    () => bad,
    TypeError,
    "Loop.submit(task): 'task' must be a generator, an Awaitable, an iterator or a promise, received 42",
  );
  await assertRejects(
    // @ts-expect-error: not options
    () => loop.submit(sleep(1), 5),
    TypeError,
    "Loop.submit(task, options): 'options' must be an object, received 5",
  );
  await assertRejects(
    () => loop.submit(sleep(1), { signal: {} as AbortSignal }),
    TypeError,
    "Loop.submit(task, options): 'options.signal' must be an AbortSignal",
  );
  assertEquals(loop.tasks(), []);
});

// ---------------------------------------------------------------------------
// run({ until })

Deno.test("run({ until }) with no task idles, serves tasks submitted later, and ends when the signal aborts", async () => {
  const loop = new Loop();
  const stop = new AbortController();
  let ended = false;
  const running = loop.run({ until: stop.signal }).then(() => ended = true);
  await hostTurns();
  assertFalse(ended); // no task is not the end
  assertEquals(await loop.submit(after([], 1, "x", "first")), "first");
  await hostTurns();
  assertFalse(ended);
  assertEquals(await loop.submit(after([], 1, "x", "second")), "second");
  stop.abort();
  await running;
  assert(ended);
});

Deno.test("run({ until }) idling uses no CPU", async () => {
  const loop = new Loop();
  const stop = new AbortController();
  const running = loop.run({ until: stop.signal });
  loop.addTask(new Event().wait()); // a parked task, too
  await hostDelay(20);
  const before = process.cpuUsage();
  await hostDelay(300);
  const used = process.cpuUsage(before);
  stop.abort();
  await running;
  assertLess((used.user + used.system) / 1000, 100); // ms of CPU in 300 ms idle
});

Deno.test("run({ until }) with only parked tasks is no deadlock: a submitted task wakes them", async () => {
  const loop = new Loop({ virtualTime: true });
  const stop = new AbortController();
  const log: string[] = [];
  const event = new Event();
  loop.addTask(function* () {
    yield* event.wait();
    log.push("woken");
  }());
  let ended = false;
  const running = loop.run({ until: stop.signal }).then(() => ended = true);
  await hostTurns();
  assertFalse(ended);
  assertEquals(log, []);
  await loop.submit(function* () {
    event.set();
    yield* interrupt();
  }());
  assertEquals(log, ["woken"]);
  stop.abort();
  await running;
});

Deno.test("run({ until }) on abort cancels every live task with the signal's reason and awaits them", async () => {
  const loop = new Loop({ virtualTime: true });
  const stop = new AbortController();
  const log: string[] = [];
  const worker = (name: string) =>
    function* () {
      try {
        yield* sleep(Infinity);
      } catch (error) {
        log.push(`${name} cancelled: ${(error as CancelledError).reason}`);
        throw error;
      } finally {
        yield* sleep(5);
        log.push(`${name} unwound ${loop.time()}`);
      }
    }();
  const a = loop.addTask(worker("a"));
  const b = loop.addTask(worker("b"));
  const running = loop.run({ until: stop.signal });
  await hostTurns();
  assertEquals(log, []);
  stop.abort("shutdown");
  await running; // their own cancellations: nothing to report
  assertEquals(log, [
    "a cancelled: shutdown",
    "b cancelled: shutdown",
    "a unwound 5",
    "b unwound 5",
  ]);
  assert(a.cancelled && b.cancelled);
});

Deno.test("run({ until }) on abort reports a cleanup error of a cancelled task", async () => {
  const loop = new Loop({ virtualTime: true });
  const stop = new AbortController();
  loop.addTask(function* () {
    try {
      yield* sleep(Infinity);
    } finally {
      // deno-lint-ignore no-unsafe-finally -- the cleanup error under test
      throw new Error("cleanup failed");
    }
  }());
  const running = loop.run({ until: stop.signal });
  await hostTurns();
  stop.abort();
  await assertRejects(() => running, Error, "cleanup failed");
});

Deno.test("run({ until }) with the signal already aborted cancels the tasks before they run, then ends", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const task = loop.addTask(function* () {
    log.push("ran");
    yield* sleep(1);
  }());
  await loop.run({ until: AbortSignal.abort("already") });
  assertEquals(log, []);
  assert(task.cancelled);
  assertEquals(assertThrows(() => task.result(), CancelledError).reason, "already");
  await new Loop().run({ until: AbortSignal.abort() }); // no task: ends at once
});

Deno.test("run({ until }) removes its abort listener when it ends", async () => {
  const loop = new Loop({ virtualTime: true });
  const stop = new AbortController();
  const counts = countListeners(stop.signal);
  const running = loop.run({ until: stop.signal });
  await loop.submit(sleep(1));
  stop.abort();
  await running;
  assertEquals(counts.live, 0);
  assertEquals(counts.added, counts.removed);
});

// ---------------------------------------------------------------------------
// run({ onError })

Deno.test("run({ onError }) receives an unobservable failure at once, and the loop goes on", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const boom = new Error("boom");
  let received: unknown;
  loop.addTask(
    function* () {
      yield* sleep(10);
      throw boom;
    }(),
    { name: "failing" },
  );
  loop.addTask(after(log, 20, "other task", null));
  await loop.run({
    onError: (error, task) => {
      received = error;
      log.push(`onError: ${(error as Error).message} from ${task.name} at ${loop.time()}`);
    },
  });
  assertStrictEquals(received, boom);
  assertEquals(log, ["onError: boom from failing at 10", "other task 20"]);
});

Deno.test("run({ onError }) is not given a failure that a joiner observes, nor a task's own cancellation", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const failing = loop.addTask(function* () {
    yield* sleep(10);
    throw new Error("joined");
  }());
  loop.addTask(function* () {
    try {
      yield* failing;
    } catch (error) {
      log.push(`joiner caught ${(error as Error).message}`);
    }
  }());
  const cancelled = loop.addTask(sleep(Infinity));
  loop.addTask(function* () {
    yield* sleep(5);
    cancelled.cancel();
  }());
  await loop.run({ onError: (error) => log.push(`onError ${(error as Error).message}`) });
  assertEquals(log, ["joiner caught joined"]);
});

Deno.test("run({ onError }) is not given the failure of a submitted task: submit's promise observes it", async () => {
  const loop = new Loop({ virtualTime: true });
  const seen: unknown[] = [];
  const submitted = loop.submit(function* () {
    yield* sleep(1);
    throw new Error("observed by submit");
  }());
  await loop.run({ onError: (error) => seen.push(error) });
  await assertRejects(() => submitted, Error, "observed by submit");
  assertEquals(seen, []);
});

Deno.test("run({ onError }) that throws makes run() reject with that error once the loop ends", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const fromHandler = new Error("onError failed");
  loop.addTask(function* () {
    yield* sleep(10);
    throw new Error("boom");
  }());
  loop.addTask(after(log, 20, "other task", null));
  const error = await assertRejects(() =>
    loop.run({
      onError: (error) => {
        log.push(`onError ${(error as Error).message}`);
        throw fromHandler;
      },
    })
  );
  assertStrictEquals(error, fromHandler);
  assertEquals(log, ["onError boom", "other task 20"]);
});

Deno.test("run() rejects bad options with a TypeError, naming the option, and runs nothing", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  loop.addTask(after(log, 1, "task", null));
  await assertRejects(
    // @ts-expect-error: not options
    () => loop.run(5),
    TypeError,
    "Loop.run(options): 'options' must be an object, received 5",
  );
  await assertRejects(
    () => loop.run(null as unknown as undefined),
    TypeError,
    "Loop.run(options): 'options' must be an object, received null",
  );
  await assertRejects(
    () => loop.run({ until: {} as AbortSignal }),
    TypeError,
    "Loop.run(options): 'options.until' must be an AbortSignal",
  );
  await assertRejects(
    // @ts-expect-error: not a function
    () => loop.run({ onError: 1 }),
    TypeError,
    "Loop.run(options): 'options.onError' must be a function, received 1",
  );
  assertEquals(log, []);
  await loop.run();
  assertEquals(log, ["task 1"]);
});

// ---------------------------------------------------------------------------
// Task.waitingOn and Loop.dump()

/** Splits a dump() table into rows of cells. */
function table(dump: string): string[][] {
  return dump.split("\n").map((line) => line.split(/\s{2,}/));
}

Deno.test("Task.waitingOn and Loop.dump() tell what each task waits on: sleep, Event, Lock, a group", async () => {
  const loop = new Loop({ virtualTime: true });
  const lock = new Lock();
  const event = new Event();
  const seen: Record<string, string | null> = {};
  let dump = "";
  const sleeper = loop.addTask(sleep(100), { name: "sleeper" });
  const forever = loop.addTask(sleep(Infinity), { name: "forever" });
  const waiter = loop.addTask(event.wait(), { name: "waiter" });
  const holder = loop.addTask(
    function* () {
      using _ = yield* lock.acquire();
      yield* sleep(Infinity);
    }(),
    { name: "holder" },
  );
  const locker = loop.addTask(
    function* () {
      yield* sleep(20);
      using _ = yield* lock.acquire();
    }(),
    { name: "locker" },
  );
  const owner = loop.addTask(
    // deno-lint-ignore require-yield -- the body only spawns
    taskGroup(function* (group) {
      group.spawn(sleep(Infinity), { name: "child" });
    }),
    { name: "owner" },
  );
  const joiner = loop.addTask(
    function* () {
      yield* sleeper;
    }(),
    { name: "joiner" },
  );
  const inspector = loop.addTask(
    function* () {
      yield* sleep(30);
      const late = Loop.current.addTask(sleep(1), { name: "late" });
      for (const task of loop.tasks()) seen[task.name] = task.waitingOn;
      dump = loop.dump();
      for (const task of loop.tasks()) if (task.name !== "inspector") task.cancel();
      late.cancel();
    }(),
    { name: "inspector" },
  );
  assertEquals(sleeper.waitingOn, null); // not started yet
  await loop.run();
  assertEquals(seen, {
    sleeper: "sleep()",
    forever: "sleep(Infinity)",
    waiter: "Event.wait()",
    holder: "sleep(Infinity)",
    locker: "Lock.acquire()",
    owner: "taskGroup() (1 of 1 left)",
    joiner: 'Task("sleeper")',
    child: "sleep(Infinity)",
    inspector: null, // running
    late: null, // ready
  });
  assertEquals(table(dump), [
    ["task", "state", "waits on", "group", "waited (ms)"],
    ["sleeper", "parked", "sleep()", "-", "30"],
    ["forever", "parked", "sleep(Infinity)", "-", "30"],
    ["waiter", "parked", "Event.wait()", "-", "30"],
    ["holder", "parked", "sleep(Infinity)", "-", "30"],
    ["locker", "parked", "Lock.acquire()", "-", "10"],
    ["owner", "parked", "taskGroup() (1 of 1 left)", "-", "30"],
    ["joiner", "parked", 'Task("sleeper")', "-", "30"],
    ["inspector", "running", "-", "-", "-"],
    ["child", "parked", "sleep(Infinity)", "owner", "30"],
    ["late", "ready", "-", "-", "-"],
  ]);
  for (const task of [sleeper, forever, waiter, holder, locker, owner, joiner, inspector]) {
    assertEquals(task.waitingOn, null); // done
  }
});

Deno.test("Task.waitingOn tells a promise wait and a TaskGroup.start() wait", async () => {
  const loop = new Loop({ virtualTime: true });
  const seen: Record<string, string | null> = {};
  const pending = deferred<void>();
  loop.addTask(fromPromise(pending.promise), { name: "promise" });
  loop.addTask(
    taskGroup(function* (group) {
      yield* group.start(function* (ready: (value: void) => void) {
        yield* fromPromise(pending.promise);
        ready();
      }, { name: "service" });
    }),
    { name: "starter" },
  );
  loop.addTask(function* () {
    yield* interrupt();
    yield* interrupt();
    for (const task of loop.tasks()) seen[task.name] = task.waitingOn;
    pending.resolve();
  }());
  await loop.run();
  assertEquals(seen, {
    promise: "fromPromise()",
    starter: 'TaskGroup.start() of "service"',
    service: "fromPromise()",
    "Task-3": null,
  });
});

Deno.test("Loop.dump() of a loop with no task is its header line", () => {
  assertEquals(table(new Loop().dump()), [["task", "state", "waits on", "group", "waited (ms)"]]);
});

Deno.test("DeadlockError and Task.waitingOn share one description of each wait", async () => {
  const loop = new Loop({ virtualTime: true });
  const lock = new Lock();
  const seen: string[] = [];
  const holder = loop.addTask(
    function* () {
      using _ = yield* lock.acquire();
      yield* new Event().wait();
    }(),
    { name: "holder" },
  );
  const locker = loop.addTask(lock.acquire(), { name: "locker" });
  loop.addTask(function* () {
    yield* interrupt();
    yield* interrupt();
    seen.push(holder.waitingOn!, locker.waitingOn!);
  }());
  const error = await assertRejects(() => loop.run(), DeadlockError);
  assertEquals(seen, ["Event.wait()", "Lock.acquire()"]);
  assertStringIncludes(error.message, `"holder" waits on ${seen[0]}`);
  assertStringIncludes(error.message, `"locker" waits on ${seen[1]}`);
});

// ---------------------------------------------------------------------------
// Long real-time sleeps

Deno.test("a real-time sleep(3e9) cancelled after a short while arms no host timer beyond 2^31-1 ms", async () => {
  const loopUrl = new URL("../loop.ts", import.meta.url).href;
  const scopeUrl = new URL("../scope.ts", import.meta.url).href;
  const script = `
    import { Loop, sleep } from ${JSON.stringify(loopUrl)};
    import { moveOnAfter } from ${JSON.stringify(scopeUrl)};
    const delays = [];
    const setTimeoutHost = globalThis.setTimeout;
    globalThis.setTimeout = (fn, ms, ...args) => {
      delays.push(ms ?? 0);
      return setTimeoutHost(fn, ms, ...args);
    };
    const loop = new Loop();
    const sleeper = loop.addTask(sleep(3e9));
    const scoped = loop.addTask(moveOnAfter(sleep(Infinity), 4e9));
    setTimeoutHost(() => { sleeper.cancel(); scoped.cancel(); }, 150);
    const start = performance.now();
    await loop.run();
    console.log(JSON.stringify({
      delays,
      elapsed: performance.now() - start,
      cancelled: sleeper.cancelled && scoped.cancelled,
    }));
  `;
  const { code, stdout, stderr } = await new Deno.Command(DENO, {
    args: ["eval", "--no-config", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(stderr);
  assertEquals(code, 0, err);
  assertFalse(err.includes("TimeoutOverflowWarning"), err);
  const report = JSON.parse(new TextDecoder().decode(stdout));
  assert(report.cancelled);
  assertLess(report.elapsed, 5000);
  for (const delay of report.delays) assert(delay <= 2 ** 31 - 1, `a host timer of ${delay} ms`);
  assertLess(report.delays.length, 10); // no spin: the loop armed a few timers, not one per ms
});
