// Copyright 2026 the boucle authors. MIT license.
// Structured concurrency (task groups, start/ready, gather's reports,
// gatherSettled) and cancel scopes (deadline, moveOnAfter, shield): each rule
// of DESIGN.md's "Structured concurrency" and "Cancel scopes and timeouts",
// with the event log asserted in full under virtual time.
import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertLess,
  assertRejects,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import {
  CancelledError,
  type Coroutine,
  deadline,
  gather,
  interrupt,
  Loop,
  sleep,
  type Task,
} from "../loop.ts";
import { gatherSettled, moveOnAfter, shield, type TaskGroup, taskGroup } from "../scope.ts";
import { Event } from "../sync.ts";

/** Sleeps `ms`, logs `name` with the time, returns `value`. */
function* after<T>(log: string[], ms: number, name: string, value: T): Coroutine<T> {
  yield* sleep(ms);
  log.push(`${name} ${Loop.current.time()}`);
  return value;
}

/** Sleeps `ms`, logs `name` failing with the time, throws `error`. */
function* failAfter(log: string[], ms: number, name: string, error: unknown): Coroutine<never> {
  yield* sleep(ms);
  log.push(`${name} fails ${Loop.current.time()}`);
  throw error;
}

/** Sleeps `ms`; logs how it ended (done, or cancelled and by what), then ends the same way. */
function* watched(log: string[], ms: number, name: string): Coroutine<string> {
  try {
    yield* sleep(ms);
  } catch (error) {
    log.push(`${name} ${describe(error)} ${Loop.current.time()}`);
    throw error;
  }
  log.push(`${name} done ${Loop.current.time()}`);
  return name;
}

/** How an error reads in the logs: its class, and a TimeoutError by name. */
function describe(error: unknown): string {
  if (error instanceof CancelledError) return "cancelled";
  if (error instanceof DOMException) return error.name;
  if (error instanceof AggregateError) {
    return `AggregateError[${error.errors.map((e) => (e as Error).message).join(", ")}]`;
  }
  if (error instanceof Error) return `error(${error.message})`;
  return String(error);
}

/** Runs `body` to its end on `loop`, logging how it ended; resolves with the log's last line. */
function* outcome<T>(log: string[], body: Coroutine<T>): Coroutine<void> {
  try {
    const value = yield* body;
    log.push(`returned ${String(value)} ${Loop.current.time()}`);
  } catch (error) {
    log.push(`threw ${describe(error)} ${Loop.current.time()}`);
  }
}

// ---------------------------------------------------------------------------
// Task groups: the body and the children

Deno.test("taskGroup() runs the body and the children concurrently and returns once all have ended", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const value = await loop.runTask(taskGroup(function* (group) {
    log.push(`body starts ${loop.time()}`);
    group.spawn(after(log, 30, "child a", "a"));
    group.spawn(after(log, 10, "child b", "b"));
    log.push(`body spawned ${loop.time()}`);
    yield* sleep(20);
    log.push(`body slept ${loop.time()}`);
    group.spawn(after(log, 5, "child c", "c"));
    return "body value";
  }));
  assertEquals(value, "body value");
  assertEquals(log, [
    "body starts 0",
    "body spawned 0",
    "child b 10",
    "body slept 20",
    "child c 25",
    "child a 30",
  ]);
  assertEquals(loop.time(), 30); // it returned only once the last child had ended
});

Deno.test("taskGroup() children first run in the cycle after they were spawned, in spawn order", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  await loop.runTask(taskGroup(function* (group) {
    for (const name of ["a", "b"]) {
      group.spawn(function* () {
        log.push(`${name} 1`);
        yield* interrupt();
        log.push(`${name} 2`);
      }());
    }
    log.push("body 1");
    yield* interrupt();
    log.push("body 2");
    yield* interrupt();
    log.push("body 3");
  }));
  assertEquals(log, ["body 1", "a 1", "b 1", "body 2", "a 2", "b 2", "body 3"]);
});

Deno.test("taskGroup() waits for its children even when the body returns at once", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  await loop.runTask(function* () {
    const value = yield* taskGroup(function* (group) {
      group.spawn(after(log, 10, "child", null));
      return 7;
    });
    log.push(`group returned ${value} ${loop.time()}`);
  }());
  assertEquals(log, ["child 10", "group returned 7 10"]);
});

Deno.test("taskGroup() runs the body inline in the calling task: no extra task for the body", async () => {
  const loop = new Loop({ virtualTime: true });
  const seen: string[][] = [];
  await loop.runTask(
    taskGroup(function* (group) {
      seen.push(loop.tasks().map((task) => task.name));
      group.spawn(sleep(5), { name: "child" });
      seen.push(loop.tasks().map((task) => task.name));
      yield* sleep(10);
      seen.push(loop.tasks().map((task) => task.name));
    }),
    { name: "main" },
  );
  assertEquals(seen, [["main"], ["main", "child"], ["main"]]);
});

Deno.test("TaskGroup.spawn() accepts a generator, an Awaitable, an iterator, a promise and a Task, with a name", async () => {
  const loop = new Loop({ virtualTime: true });
  const results = await loop.runTask(taskGroup(function* (group) {
    let steps = 0;
    const iterator: Iterator<unknown, string, unknown> = {
      next: () =>
        ++steps < 3 ? { done: false, value: undefined } : { done: true, value: "iterator" },
    };
    const outside = loop.addTask(after([], 3, "outside", "task"));
    const children: Task<string>[] = [
      group.spawn(after([], 1, "g", "generator"), { name: "gen" }),
      group.spawn({
        *[Symbol.iterator]() {
          yield;
          return "awaitable";
        },
      }),
      group.spawn(iterator),
      group.spawn(Promise.resolve("promise")),
      group.spawn(outside),
    ];
    assertEquals(children[0]!.name, "gen");
    const values = [];
    for (const child of children) values.push(yield* child);
    return values;
  }));
  assertEquals(results, ["generator", "awaitable", "iterator", "promise", "task"]);
});

Deno.test("TaskGroup.tasks lists the live children in spawn order, not the body", async () => {
  const loop = new Loop({ virtualTime: true });
  const seen: string[][] = [];
  await loop.runTask(taskGroup(function* (group) {
    const names = () => group.tasks.map((task) => task.name);
    seen.push(names());
    group.spawn(sleep(20), { name: "a" });
    group.spawn(sleep(10), { name: "b" });
    group.spawn(sleep(30), { name: "c" });
    seen.push(names());
    yield* sleep(15);
    seen.push(names());
    yield* sleep(10);
    seen.push(names());
    assert(group.tasks !== group.tasks); // a fresh array each time
  }));
  assertEquals(seen, [[], ["a", "b", "c"], ["a", "c"], ["c"]]);
});

Deno.test("TaskGroup.cancel() cancels every child alive, not the body, and is no failure", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const value = await loop.runTask(taskGroup(function* (group) {
    group.spawn(watched(log, 100, "a"));
    group.spawn(watched(log, 5, "b"));
    group.spawn(function* () {
      try {
        yield* sleep(100);
      } catch (error) {
        log.push(`c reason ${(error as CancelledError).reason}`);
        throw error;
      }
    }());
    yield* sleep(10);
    group.cancel("enough");
    log.push(`body goes on ${loop.time()}`);
    yield* sleep(10);
    log.push(`body ends ${loop.time()}`);
    return "ok";
  }));
  assertEquals(value, "ok");
  assertEquals(log, [
    "b done 5",
    "body goes on 10",
    "a cancelled 10",
    "c reason enough",
    "body ends 20",
  ]);
});

Deno.test("TaskGroup.cancel() cancels only the children alive then: one spawned later runs", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  await loop.runTask(taskGroup(function* (group) {
    group.spawn(watched(log, 100, "early"));
    yield* sleep(1);
    group.cancel();
    group.spawn(watched(log, 5, "late"));
  }));
  assertEquals(log, ["early cancelled 1", "late done 6"]);
});

Deno.test("TaskGroup.spawn() after the group has ended throws an Error saying so", async () => {
  const loop = new Loop({ virtualTime: true });
  let kept: TaskGroup | undefined;
  await loop.runTask(taskGroup(function* (group) {
    kept = group;
    group.spawn(sleep(1));
    yield* interrupt();
  }));
  assertThrows(() => kept!.spawn(sleep(1)), Error, "TaskGroup.spawn(): the task group has ended");
  assertEquals(loop.tasks(), []);
  await loop.runTask(function* () {
    assertThrows(() => kept!.spawn(sleep(1)), Error, "the task group has ended");
    yield* interrupt();
  }());
});

Deno.test("TaskGroup.spawn() from a child while the group waits for its children works", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  // deno-lint-ignore require-yield -- the body only spawns
  await loop.runTask(taskGroup(function* (group) {
    group.spawn(function* () {
      yield* sleep(10);
      group.spawn(after(log, 10, "grandchild", null));
      log.push(`child ends ${loop.time()}`);
    }());
  }));
  assertEquals(log, ["child ends 10", "grandchild 20"]);
  assertEquals(loop.time(), 20);
});

Deno.test("taskGroup() and TaskGroup methods reject bad arguments, naming them", async () => {
  assertThrows(
    // @ts-expect-error: not a function
    () => taskGroup(42),
    TypeError,
    "taskGroup(body): 'body' must be a function, received 42",
  );
  const loop = new Loop({ virtualTime: true });
  await loop.runTask(taskGroup(function* (group) {
    assertThrows(
      // @ts-expect-error: not a task
      () => group.spawn(42),
      TypeError,
      "TaskGroup.spawn(task): 'task' must be a generator, an Awaitable, an iterator or a promise, received 42",
    );
    assertThrows(
      // @ts-expect-error: not options
      () => group.spawn(sleep(1), 5),
      TypeError,
      "TaskGroup.spawn(task, options)",
    );
    assertThrows(
      // @ts-expect-error: not a function
      () => group.start(42),
      TypeError,
      "TaskGroup.start(fn, options): 'fn' must be a function, received 42",
    );
    assertThrows(
      () => group.spawn(sleep(1), { signal: "stop" as unknown as AbortSignal }),
      TypeError,
      "signal",
    );
    assertEquals(group.tasks, []); // nothing was spawned
    yield* interrupt();
  }));
});

// ---------------------------------------------------------------------------
// TaskGroup.start() and ready()

Deno.test("TaskGroup.start() parks until the child calls ready(), returns its value, and the child goes on", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const value = await loop.runTask(taskGroup(function* (group) {
    const port = yield* group.start(function* (ready: (port: number) => void) {
      log.push(`service binds ${loop.time()}`);
      yield* sleep(10);
      ready(8080);
      log.push(`service ready ${loop.time()}`);
      yield* sleep(30);
      log.push(`service stops ${loop.time()}`);
    }, { name: "service" });
    log.push(`start returned ${port} ${loop.time()}`);
    assertEquals(group.tasks.map((task) => task.name), ["service"]);
    return port;
  }));
  assertEquals(value, 8080);
  assertEquals(log, [
    "service binds 0",
    "service ready 10",
    "start returned 8080 10",
    "service stops 40",
  ]);
});

Deno.test("TaskGroup.start(): a child failing before ready() makes start throw, and the group does not count it", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const boom = new Error("bind failed");
  const value = await loop.runTask(taskGroup(function* (group) {
    group.spawn(watched(log, 30, "sibling"));
    try {
      yield* group.start(function* (_ready: (port: number) => void) {
        yield* sleep(10);
        throw boom;
      });
    } catch (error) {
      assertStrictEquals(error, boom);
      log.push(`start threw ${describe(error)} ${loop.time()}`);
    }
    yield* sleep(5);
    log.push(`body goes on ${loop.time()}`);
    return "group ok";
  }));
  assertEquals(value, "group ok");
  assertEquals(log, ["start threw error(bind failed) 10", "body goes on 15", "sibling done 30"]);
});

Deno.test("TaskGroup.start(): a child failing before ready() is not reported by run() either", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  loop.addTask(taskGroup(function* (group) {
    try {
      yield* group.start(function* (_ready: (value: string) => void) {
        throw new Error("early");
      });
    } catch (error) {
      log.push(`start threw ${describe(error)}`);
    }
  }));
  await loop.run(); // resolves: the error was start's
  assertEquals(log, ["start threw error(early)"]);
});

Deno.test("TaskGroup.start(): a child that ends without calling ready() makes start throw an Error saying so", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  await loop.runTask(taskGroup(function* (group) {
    try {
      yield* group.start(function* (_ready: (value: number) => void) {
        yield* sleep(10);
        return "forgot";
      }, { name: "forgetful" });
    } catch (error) {
      assertInstanceOf(error, Error);
      log.push(`${error.message} ${loop.time()}`);
    }
  }));
  assertEquals(log, [
    'TaskGroup.start(): task "forgetful" ended without calling ready() 10',
  ]);
});

Deno.test("TaskGroup.start(): ready() a second time throws", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  await loop.runTask(taskGroup(function* (group) {
    const value = yield* group.start(function* (ready: (value: string) => void) {
      ready("first");
      yield* sleep(1);
      try {
        ready("second");
      } catch (error) {
        log.push(`second ready threw ${error instanceof Error}`);
      }
    });
    log.push(`start returned ${value}`);
  }));
  assertEquals(log, ["start returned first", "second ready threw true"]);
});

Deno.test("TaskGroup.start(): a starter cancelled before ready() cancels the child; the group awaits it", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const main = loop.addTask(function* () {
    try {
      yield* taskGroup(function* (group) {
        try {
          yield* group.start(function* (ready: (value: number) => void) {
            try {
              yield* sleep(100);
              ready(1);
            } finally {
              yield* sleep(5);
              log.push(`child cleaned up ${loop.time()}`);
            }
          });
        } catch (error) {
          log.push(`start threw ${describe(error)} ${loop.time()}`);
          throw error;
        }
      });
    } catch (error) {
      log.push(`group threw ${describe(error)} ${loop.time()}`);
      throw error;
    }
  }());
  loop.addTask(function* () {
    yield* sleep(10);
    main.cancel("stop");
  }());
  await loop.run();
  assertEquals(log, [
    "start threw cancelled 10",
    "child cleaned up 15",
    "group threw cancelled 15",
  ]);
  assert(main.cancelled);
});

Deno.test("TaskGroup.start(): a start called by a child, cancelled by its sibling's failure, throws CancelledError", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const boom = new Error("boom");
  const error = await assertRejects(() =>
    loop.runTask(taskGroup(function* (group) {
      group.spawn(function* () {
        try {
          yield* group.start(function* (_ready: (value: number) => void) {
            yield* watched(log, 100, "service");
          });
        } catch (error) {
          log.push(`start threw ${describe(error)} ${loop.time()}`);
          throw error;
        }
      }());
      group.spawn(failAfter(log, 10, "failing", boom));
      yield* sleep(50);
    }))
  );
  assertStrictEquals(error, boom);
  // The starter was spawned before the service: both are cancelled, in spawn order.
  assertEquals(log, ["failing fails 10", "start threw cancelled 10", "service cancelled 10"]);
});

// ---------------------------------------------------------------------------
// Task groups: failure

Deno.test("taskGroup(): the first child failure cancels the body and every other child, waits, then throws it", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const boom = new Error("boom");
  loop.addTask(function* () {
    yield* outcome(
      log,
      taskGroup(function* (group) {
        group.spawn(watched(log, 100, "a"));
        group.spawn(failAfter(log, 10, "b", boom));
        group.spawn(function* () {
          try {
            yield* sleep(100);
          } finally {
            yield* sleep(7); // unwinds slowly: the group waits
            log.push(`c unwound ${loop.time()}`);
          }
        }());
        try {
          yield* sleep(50);
          log.push("body never wakes normally");
        } catch (error) {
          log.push(`body ${describe(error)} ${loop.time()}`);
          throw error;
        }
      }),
    );
  }());
  await loop.run(); // the group observed boom: run() has nothing to report
  assertEquals(log, [
    "b fails 10",
    "a cancelled 10",
    "body cancelled 10",
    "c unwound 17",
    "threw error(boom) 17",
  ]);
});

Deno.test("taskGroup(): one failure is thrown as is", async () => {
  const loop = new Loop({ virtualTime: true });
  const boom = new Error("boom");
  const error = await assertRejects(() =>
    loop.runTask(taskGroup(function* (group) {
      group.spawn(failAfter([], 5, "x", boom));
      group.spawn(sleep(100));
      yield* sleep(100);
    }))
  );
  assertStrictEquals(error, boom);
  assertEquals(loop.time(), 5);
});

Deno.test("taskGroup(): errors thrown by cleanup while cancelled join the first in an AggregateError, first first", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const error = await assertRejects(() =>
    loop.runTask(taskGroup(function* (group) {
      group.spawn(function* () {
        try {
          yield* sleep(100);
        } finally {
          yield* sleep(5);
          log.push(`a cleanup fails ${loop.time()}`);
          // deno-lint-ignore no-unsafe-finally -- the cleanup error under test
          throw new Error("cleanup a");
        }
      }());
      group.spawn(function* () {
        try {
          yield* sleep(100);
        } finally {
          log.push(`b cleanup fails ${loop.time()}`);
          // deno-lint-ignore no-unsafe-finally -- the cleanup error under test
          throw new Error("cleanup b");
        }
      }());
      group.spawn(failAfter(log, 10, "c", new Error("first")));
      yield* sleep(100);
    }))
  );
  assertInstanceOf(error, AggregateError);
  assertEquals(error.errors.map((e) => (e as Error).message), ["first", "cleanup b", "cleanup a"]);
  assertEquals(log, ["c fails 10", "b cleanup fails 10", "a cleanup fails 15"]);
});

Deno.test("taskGroup(): two children failing in the same cycle are both reported, in the order they failed", async () => {
  const loop = new Loop({ virtualTime: true });
  const error = await assertRejects(() =>
    loop.runTask(taskGroup(function* (group) {
      group.spawn(failAfter([], 10, "a", new Error("a")));
      group.spawn(failAfter([], 10, "b", new Error("b")));
      yield* sleep(100);
    }))
  );
  // b was already ready when a failed: it fails before it sees its cancellation.
  assertInstanceOf(error, AggregateError);
  assertEquals(error.errors.map((e) => (e as Error).message), ["a", "b"]);
});

Deno.test("taskGroup(): a child ended by a cancellation (its own cancel(), the group's, its signal) is no error", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const controller = new AbortController();
  const value = await loop.runTask(taskGroup(function* (group) {
    const own = group.spawn(watched(log, 100, "own"));
    group.spawn(watched(log, 100, "signalled"), { signal: controller.signal });
    const byGroup = group.spawn(watched(log, 100, "by group"));
    yield* sleep(10);
    own.cancel();
    controller.abort("aborted");
    yield* sleep(10);
    group.cancel();
    yield* interrupt();
    assert(own.cancelled && byGroup.cancelled);
    return "no failure";
  }));
  assertEquals(value, "no failure");
  assertEquals(log, ["own cancelled 10", "signalled cancelled 10", "by group cancelled 20"]);
});

Deno.test("taskGroup(): a body that throws cancels the children, awaits them, then throws its error", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const boom = new Error("body failed");
  const error = await assertRejects(() =>
    loop.runTask(taskGroup(function* (group) {
      group.spawn(watched(log, 100, "a"));
      group.spawn(function* () {
        try {
          yield* sleep(100);
        } finally {
          yield* sleep(5);
          log.push(`b unwound ${loop.time()}`);
        }
      }());
      yield* sleep(10);
      log.push(`body throws ${loop.time()}`);
      throw boom;
    }))
  );
  assertStrictEquals(error, boom);
  assertEquals(log, ["body throws 10", "a cancelled 10", "b unwound 15"]);
  assertEquals(loop.time(), 15);
});

Deno.test("taskGroup(): a body that throws is reported with the children's cleanup errors, first first", async () => {
  const loop = new Loop({ virtualTime: true });
  const error = await assertRejects(() =>
    loop.runTask(taskGroup(function* (group) {
      group.spawn(function* () {
        try {
          yield* sleep(100);
        } finally {
          yield* sleep(1);
          // deno-lint-ignore no-unsafe-finally -- the cleanup error under test
          throw new Error("cleanup");
        }
      }());
      yield* sleep(10);
      throw new Error("body");
    }))
  );
  assertInstanceOf(error, AggregateError);
  assertEquals(error.errors.map((e) => (e as Error).message), ["body", "cleanup"]);
});

Deno.test("taskGroup(): a body that catches its cancellation after a child failed still throws the child's error", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const boom = new Error("boom");
  const error = await assertRejects(() =>
    loop.runTask(taskGroup(function* (group) {
      group.spawn(failAfter(log, 10, "child", boom));
      try {
        yield* sleep(100);
      } catch (error) {
        log.push(`body caught ${describe(error)} ${loop.time()}`);
      }
      return "swallowed";
    }))
  );
  assertStrictEquals(error, boom);
  assertEquals(log, ["child fails 10", "body caught cancelled 10"]);
});

Deno.test("taskGroup(): once the group has failed, a child spawned by the body's cleanup never runs", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const boom = new Error("boom");
  let late: Task<void> | undefined;
  const error = await assertRejects(() =>
    loop.runTask(taskGroup(function* (group) {
      group.spawn(failAfter(log, 10, "child", boom));
      try {
        yield* sleep(100);
      } finally {
        late = group.spawn(function* () {
          log.push("late child ran");
          yield* sleep(1);
        }());
      }
    }))
  );
  assertStrictEquals(error, boom);
  assertEquals(log, ["child fails 10"]);
  assert(late!.cancelled);
});

Deno.test("taskGroup(): a child's error is observed by its group and never reported again by run()", async () => {
  const loop = new Loop({ virtualTime: true });
  const onError: unknown[] = [];
  const log: string[] = [];
  loop.addTask(function* () {
    try {
      yield* taskGroup(function* (group) {
        group.spawn(failAfter(log, 5, "child", new Error("child error")));
        yield* sleep(10);
      });
    } catch (error) {
      log.push(`caught ${describe(error)}`);
    }
  }());
  await loop.run({ onError: (error) => onError.push(error) });
  assertEquals(log, ["child fails 5", "caught error(child error)"]);
  assertEquals(onError, []);
});

Deno.test("taskGroup(): a group whose owner fails to catch reports the error once, through the owner", async () => {
  const loop = new Loop({ virtualTime: true });
  const boom = new Error("boom");
  loop.addTask(taskGroup(function* (group) {
    group.spawn(failAfter([], 5, "child", boom));
    yield* sleep(10);
  }));
  const error = await assertRejects(() => loop.run());
  assertStrictEquals(error, boom); // once, not as an AggregateError of two
});

// ---------------------------------------------------------------------------
// Task groups: cancellation of the owner

Deno.test("taskGroup(): cancelling the owner cancels every child, waits for them, then CancelledError propagates", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const main = loop.addTask(function* () {
    try {
      yield* taskGroup(function* (group) {
        group.spawn(watched(log, 100, "a"));
        group.spawn(function* () {
          try {
            yield* sleep(100);
          } catch (error) {
            log.push(`b reason ${(error as CancelledError).reason} ${loop.time()}`);
            throw error;
          } finally {
            yield* sleep(5);
            log.push(`b unwound ${loop.time()}`);
          }
        }());
        try {
          yield* sleep(100);
        } catch (error) {
          log.push(`body ${describe(error)} ${loop.time()}`);
          throw error;
        }
      });
    } catch (error) {
      log.push(`group threw ${describe(error)} ${(error as CancelledError).reason} ${loop.time()}`);
      throw error;
    }
  }());
  loop.addTask(function* () {
    yield* sleep(10);
    main.cancel("shutdown");
  }());
  await loop.run(); // the owner's own cancellation: nothing to report
  assert(main.cancelled);
  assertEquals(log, [
    "body cancelled 10",
    "a cancelled 10",
    "b reason shutdown 10",
    "b unwound 15",
    "group threw cancelled shutdown 15",
  ]);
});

Deno.test("taskGroup(): cancelling the owner while it waits for the children cancels them, then propagates", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  // deno-lint-ignore require-yield -- the body only spawns
  const main = loop.addTask(taskGroup(function* (group) {
    group.spawn(watched(log, 100, "a"));
    group.spawn(watched(log, 100, "b"));
  }));
  loop.addTask(function* () {
    yield* sleep(10);
    main.cancel();
  }());
  await loop.run();
  assert(main.cancelled);
  assertEquals(log, ["a cancelled 10", "b cancelled 10"]);
});

Deno.test("taskGroup(): a second cancel of the owner does not cut the wait for the children short", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const main = loop.addTask(function* () {
    try {
      yield* taskGroup(function* (group) {
        group.spawn(function* () {
          try {
            yield* sleep(100);
          } finally {
            yield* shield(sleep(20));
            log.push(`child unwound ${loop.time()}`);
          }
        }());
      });
    } finally {
      log.push(`group ended ${loop.time()}`);
    }
  }());
  loop.addTask(function* () {
    yield* sleep(10);
    main.cancel("first");
    yield* sleep(5);
    main.cancel("second");
  }());
  await loop.run();
  assertEquals(log, ["child unwound 30", "group ended 30"]);
  assert(main.cancelled);
  assertEquals((assertThrows(() => main.result(), CancelledError)).reason, "first");
});

Deno.test("taskGroup(): children's cleanup errors while the owner is cancelled replace the CancelledError", async () => {
  // scope.ts's header: no error is dropped for a cancellation (as trio does).
  const loop = new Loop({ virtualTime: true });
  const main = loop.addTask(taskGroup(function* (group) {
    group.spawn(function* () {
      try {
        yield* sleep(100);
      } finally {
        // deno-lint-ignore no-unsafe-finally -- the cleanup error under test
        throw new Error("cleanup");
      }
    }());
    yield* sleep(100);
  }));
  loop.addTask(function* () {
    yield* sleep(10);
    main.cancel();
  }());
  const error = await assertRejects(() => loop.run(), Error, "cleanup");
  assertFalse(main.cancelled);
  assertStrictEquals(error, assertThrows(() => main.result()));
});

// ---------------------------------------------------------------------------
// gather and gatherSettled

Deno.test("gather(): exactly one failure is thrown as is", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const boom = new Error("boom");
  const error = await assertRejects(() =>
    loop.runTask(gather(watched(log, 100, "a"), failAfter(log, 10, "b", boom)))
  );
  assertStrictEquals(error, boom);
  assertEquals(log, ["b fails 10", "a cancelled 10"]);
});

Deno.test("gather(): a failure and a cleanup error become an AggregateError, first first", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const error = await assertRejects(() =>
    loop.runTask(gather(
      function* () {
        try {
          yield* sleep(100);
        } finally {
          yield* sleep(3);
          log.push(`cleanup fails ${loop.time()}`);
          // deno-lint-ignore no-unsafe-finally -- the cleanup error under test
          throw new Error("cleanup");
        }
      }(),
      failAfter(log, 10, "b", new Error("first")),
    ))
  );
  assertInstanceOf(error, AggregateError);
  assertEquals(error.errors.map((e) => (e as Error).message), ["first", "cleanup"]);
  assertEquals(log, ["b fails 10", "cleanup fails 13"]);
});

Deno.test("gather(): a failing child's error is never reported again by run()", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  loop.addTask(outcome(log, gather(failAfter(log, 5, "a", new Error("a")), sleep(10))));
  await loop.run();
  assertEquals(log, ["a fails 5", "threw error(a) 5"]);
});

Deno.test("gatherSettled() runs every awaitable to its end and returns how each ended, in argument order", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const boom = new Error("boom");
  const passed = loop.addTask(after(log, 25, "task", "from a task"));
  const results = await loop.runTask(
    gatherSettled(
      after(log, 30, "slow", 1),
      failAfter(log, 10, "failing", boom),
      after(log, 20, "fast", "two"),
      passed,
    ),
  );
  assertEquals(results, [
    { status: "fulfilled", value: 1 },
    { status: "rejected", reason: boom },
    { status: "fulfilled", value: "two" },
    { status: "fulfilled", value: "from a task" },
  ]);
  assertStrictEquals((results[1] as { reason: unknown }).reason, boom);
  assertEquals(log, ["failing fails 10", "fast 20", "task 25", "slow 30"]);
});

Deno.test("gatherSettled() of nothing returns an empty array", async () => {
  assertEquals(await new Loop().runTask(gatherSettled()), []);
});

Deno.test("gatherSettled() reports a failed Task passed in as rejected, and run() does not report it again", async () => {
  const loop = new Loop({ virtualTime: true });
  const boom = new Error("boom");
  const passed = loop.addTask(failAfter([], 5, "task", boom));
  let results: unknown;
  loop.addTask(function* () {
    results = yield* gatherSettled(passed);
  }());
  await loop.run();
  assertEquals(results, [{ status: "rejected", reason: boom }]);
});

Deno.test("gatherSettled() cancelled: cancels and awaits every child, then throws only its CancelledError", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const passed = loop.addTask(watched(log, 100, "task"));
  const main = loop.addTask(function* () {
    try {
      yield* gatherSettled(
        watched(log, 100, "a"),
        function* () {
          try {
            yield* sleep(100);
          } finally {
            yield* sleep(5);
            log.push(`b unwound ${loop.time()}`);
          }
        }(),
        passed,
      );
    } catch (error) {
      log.push(`gatherSettled threw ${describe(error)} ${loop.time()}`);
      throw error;
    }
  }());
  loop.addTask(function* () {
    yield* sleep(10);
    main.cancel();
  }());
  await loop.run();
  assert(main.cancelled);
  assert(passed.cancelled);
  assertEquals(log, [
    "a cancelled 10",
    "task cancelled 10",
    "b unwound 15",
    "gatherSettled threw cancelled 15",
  ]);
});

Deno.test("gatherSettled() rejects what is not an Awaitable, naming it", () => {
  assertThrows(
    // @ts-expect-error: not an Awaitable
    () => gatherSettled(sleep(1), 42),
    TypeError,
    "gatherSettled(...awaitables)",
  );
});

// ---------------------------------------------------------------------------
// Cancel scopes: deadline and moveOnAfter

Deno.test("deadline() of a generator spawns no task: the body runs in the calling task", async () => {
  const loop = new Loop({ virtualTime: true });
  const seen: string[][] = [];
  const value = await loop.runTask(
    deadline(
      function* () {
        seen.push(loop.tasks().map((task) => task.name));
        yield* sleep(5);
        seen.push(loop.tasks().map((task) => task.name));
        return "in time";
      }(),
      100,
    ),
    { name: "main" },
  );
  assertEquals(value, "in time");
  assertEquals(seen, [["main"], ["main"]]);
});

Deno.test("moveOnAfter() of a generator spawns no task: the body runs in the calling task", async () => {
  const loop = new Loop({ virtualTime: true });
  const seen: string[][] = [];
  const value = await loop.runTask(
    moveOnAfter(
      function* () {
        seen.push(loop.tasks().map((task) => task.name));
        yield* sleep(500);
      }(),
      10,
    ),
    { name: "main" },
  );
  assertEquals(value, undefined);
  assertEquals(seen, [["main"]]);
  assertEquals(loop.time(), 10);
});

Deno.test("deadline() and moveOnAfter() in time return the result and leave no timer: the loop ends at the body's time", async () => {
  const loop = new Loop({ virtualTime: true });
  assertEquals(await loop.runTask(deadline(after([], 10, "x", "d"), 1000)), "d");
  assertEquals(loop.time(), 10);
  assertEquals(await loop.runTask(moveOnAfter(after([], 10, "x", "m"), 1000)), "m");
  assertEquals(loop.time(), 20);
  assertEquals(await loop.runTask(moveOnAfter(after([], 10, "x", "inf"), Infinity)), "inf");
  assertEquals(loop.time(), 30);
});

Deno.test("deadline() and moveOnAfter() that end first leave no timer that wakes the task later", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  await loop.runTask(function* () {
    for (let i = 0; i < 3; i++) {
      yield* deadline(sleep(1), 50);
      yield* moveOnAfter(sleep(1), 50);
    }
    log.push(`scopes done ${loop.time()}`);
    yield* sleep(200); // nothing of the scopes' 50 ms expiries leaks into this sleep
    log.push(`slept ${loop.time()}`);
  }());
  assertEquals(log, ["scopes done 6", "slept 206"]);
  assertEquals(loop.time(), 206);
});

Deno.test("deadline() and moveOnAfter() in real time leave no host timer behind", async () => {
  const loop = new Loop();
  const start = performance.now();
  assertEquals(await loop.runTask(deadline(sleep(1), 60_000)), undefined);
  assertEquals(await loop.runTask(moveOnAfter(sleep(1), 60_000)), undefined);
  assertLess(performance.now() - start, 5000); // the sanitizers check no timer is left
});

Deno.test("deadline() on expiry cancels the body at its suspension point, lets it unwind, then throws TimeoutError", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  await loop.runTask(outcome(
    log,
    deadline(
      function* () {
        try {
          yield* sleep(100);
        } catch (error) {
          log.push(`body ${describe(error)} ${(error as CancelledError).reason} ${loop.time()}`);
          throw error;
        } finally {
          yield* sleep(5);
          log.push(`body unwound ${loop.time()}`);
        }
      }(),
      20,
    ),
  ));
  assertEquals(log, [
    "body cancelled deadline(): 20 ms passed 20",
    "body unwound 25",
    "threw TimeoutError 25",
  ]);
});

Deno.test("moveOnAfter() on expiry cancels the body, lets it unwind, then returns undefined", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  await loop.runTask(outcome(
    log,
    moveOnAfter(
      function* () {
        try {
          yield* sleep(100);
          return "late";
        } catch (error) {
          log.push(`body ${describe(error)} ${(error as CancelledError).reason} ${loop.time()}`);
          throw error;
        } finally {
          yield* sleep(5);
          log.push(`body unwound ${loop.time()}`);
        }
      }(),
      20,
    ),
  ));
  assertEquals(log, [
    "body cancelled moveOnAfter(): 20 ms passed 20",
    "body unwound 25",
    "returned undefined 25",
  ]);
});

Deno.test("deadline() and moveOnAfter() pass the body's own error through", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  await loop.runTask(outcome(log, deadline(failAfter(log, 5, "d", new Error("d")), 50)));
  await loop.runTask(outcome(log, moveOnAfter(failAfter(log, 5, "m", new Error("m")), 50)));
  assertEquals(log, ["d fails 5", "threw error(d) 5", "m fails 10", "threw error(m) 10"]);
});

Deno.test("deadline() and moveOnAfter() of a Task join it; on expiry they cancel it and await it", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const slowTask = (name: string) =>
    loop.addTask(function* () {
      try {
        yield* sleep(100);
      } finally {
        yield* sleep(5);
        log.push(`${name} unwound ${loop.time()}`);
      }
    }());
  const inTime = loop.addTask(after(log, 5, "quick", "quick value"));
  const d = slowTask("d");
  const m = slowTask("m");
  loop.addTask(function* () {
    yield* outcome(log, deadline(inTime, 50));
    yield* outcome(log, deadline(d, 10));
    yield* outcome(log, moveOnAfter(m, 10));
  }());
  await loop.run();
  assert(d.cancelled && m.cancelled);
  assertEquals(log, [
    "quick 5",
    "returned quick value 5",
    "d unwound 20",
    "threw TimeoutError 20",
    "m unwound 35",
    "returned undefined 35",
  ]);
});

Deno.test("deadline() and moveOnAfter() of a Task with ms = 0 cancel it at once and await it", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const d = loop.addTask(watched(log, 100, "d"));
  const m = loop.addTask(watched(log, 100, "m"));
  loop.addTask(function* () {
    yield* outcome(log, deadline(d, 0));
    yield* outcome(log, moveOnAfter(m, 0));
  }());
  await loop.run();
  assert(d.cancelled && m.cancelled);
  assertEquals(log, [
    "d cancelled 0",
    "threw TimeoutError 0",
    "m cancelled 0",
    "returned undefined 0",
  ]);
});

Deno.test("deadline() and moveOnAfter() reject bad arguments, naming them", () => {
  assertThrows(
    () => moveOnAfter(sleep(1), NaN),
    RangeError,
    "moveOnAfter(awaitable, ms): 'ms' must be a number >= 0, received NaN",
  );
  assertThrows(
    () => moveOnAfter(sleep(1), -1),
    RangeError,
    "moveOnAfter(awaitable, ms): 'ms' must be a number >= 0, received -1",
  );
  assertThrows(
    // @ts-expect-error: not a number
    () => moveOnAfter(sleep(1), "5"),
    TypeError,
    "moveOnAfter(awaitable, ms): 'ms' must be a number",
  );
  assertThrows(
    // @ts-expect-error: not an Awaitable
    () => moveOnAfter(42, 5),
    TypeError,
    "moveOnAfter(awaitable, ms): 'awaitable'",
  );
  assertThrows(
    () => deadline(sleep(1), NaN),
    RangeError,
    "deadline(awaitable, ms): 'ms' must be a number >= 0, received NaN",
  );
  assertThrows(
    // @ts-expect-error: not an Awaitable
    () => shield(42),
    TypeError,
    "shield(awaitable): 'awaitable'",
  );
});

Deno.test("deadline() and moveOnAfter() check their arguments when called but need a loop only when they run", async () => {
  const d = deadline(sleep(5), 10);
  const m = moveOnAfter(sleep(50), 10);
  const s = shield(sleep(5));
  const loop = new Loop({ virtualTime: true });
  assertEquals(await loop.runTask(d), undefined);
  assertEquals(await loop.runTask(m), undefined);
  assertEquals(await loop.runTask(s), undefined);
  assertEquals(loop.time(), 20);
});

Deno.test("a body that finishes at the expiry instant: the expiry wins, and nothing leaks after the scope", async () => {
  // The scope's timer is set before the body's sleep: timers with equal
  // deadlines fire in the order they were set.
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  await loop.runTask(function* () {
    yield* outcome(log, deadline(after(log, 50, "d body", "d"), 50));
    yield* outcome(log, moveOnAfter(after(log, 50, "m body", "m"), 50));
    yield* sleep(10);
    log.push(`after the scopes ${loop.time()}`);
    yield* interrupt();
    log.push(`still running ${loop.time()}`);
  }());
  assertEquals(log, [
    "threw TimeoutError 50",
    "returned undefined 100",
    "after the scopes 110",
    "still running 110",
  ]);
});

Deno.test("a Task passed in that ends at the expiry instant: nothing leaks after the scope", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const passed = loop.addTask(after(log, 50, "task", "value"));
  loop.addTask(function* () {
    yield* outcome(log, moveOnAfter(passed, 50));
    yield* sleep(10);
    log.push(`after the scope ${loop.time()}`);
  }());
  await loop.run();
  assertEquals(log, ["task 50", "returned undefined 50", "after the scope 60"]);
});

Deno.test("an expiry deferred by shield() is withdrawn when the body ends before its next suspension", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  await loop.runTask(function* () {
    yield* outcome(
      log,
      deadline(
        function* () {
          yield* shield(sleep(100)); // the 50 ms expiry arrives in here
          log.push(`shield done ${loop.time()}`);
          return "body ended first";
        }(),
        50,
      ),
    );
    yield* sleep(10); // the withdrawn expiry must not land here
    log.push(`after the scope ${loop.time()}`);
  }());
  assertEquals(log, [
    "shield done 100",
    "returned body ended first 100",
    "after the scope 110",
  ]);
});

Deno.test("an expiry that fires while the body is being woken with a value is withdrawn (real time)", async () => {
  // The body is woken (committed) by an Event set by a task that then holds
  // the loop past the expiry; whichever way the clock reads fall, the body's
  // wait completed first, so the scope returns its value and nothing leaks.
  const loop = new Loop();
  const log: string[] = [];
  const event = new Event();
  loop.addTask(function* () {
    yield* outcome(
      log,
      deadline(
        function* () {
          yield* event.wait();
          return "woken";
        }(),
        20,
      ),
    );
    yield* interrupt();
    yield* sleep(1);
    log.push("after the scope");
  }());
  loop.addTask(function* () {
    yield* sleep(10);
    event.set();
    const until = performance.now() + 30;
    while (performance.now() < until) {
      // hold the loop past the expiry
    }
  }());
  await loop.run();
  assertEquals(log.length, 2);
  assertEquals(log[0]!.split(" ").slice(0, 2), ["returned", "woken"]);
  assertEquals(log[1], "after the scope");
});

Deno.test("a group child woken with a value in the cycle its sibling fails gets its value, then its cancellation", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const event = new Event();
  const boom = new Error("boom");
  const error = await assertRejects(() =>
    loop.runTask(taskGroup(function* (group) {
      group.spawn(function* () {
        yield* sleep(10);
        event.set(); // wakes the body, then fails in the same step
        throw boom;
      }());
      yield* event.wait();
      log.push(`body woken ${loop.time()}`);
      try {
        yield* interrupt();
      } catch (error) {
        log.push(`body ${describe(error)} at its next suspension`);
        throw error;
      }
    }))
  );
  assertStrictEquals(error, boom);
  assertEquals(log, ["body woken 10", "body cancelled at its next suspension"]);
});

Deno.test("nested scopes: an inner expiry is converted by the inner scope only; the outer goes on", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  await loop.runTask(outcome(
    log,
    deadline(
      function* () {
        const inner = yield* moveOnAfter(sleep(100), 10);
        log.push(`inner moved on with ${inner} ${loop.time()}`);
        try {
          yield* deadline(sleep(100), 10);
        } catch (error) {
          log.push(`inner deadline threw ${describe(error)} ${loop.time()}`);
        }
        yield* sleep(5);
        return "outer in time";
      }(),
      50,
    ),
  ));
  assertEquals(log, [
    "inner moved on with undefined 10",
    "inner deadline threw TimeoutError 20",
    "returned outer in time 25",
  ]);
});

Deno.test("nested scopes: an outer expiry passes through the inner scopes as CancelledError", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  await loop.runTask(outcome(
    log,
    moveOnAfter(
      function* () {
        try {
          yield* deadline(
            function* () {
              try {
                yield* moveOnAfter(sleep(100), 60);
              } catch (error) {
                log.push(`innermost saw ${describe(error)} ${loop.time()}`);
                throw error;
              }
              log.push("innermost never moves on");
            }(),
            50,
          );
        } catch (error) {
          log.push(`middle saw ${describe(error)} ${loop.time()}`);
          throw error;
        }
      }(),
      10,
    ),
  ));
  assertEquals(log, [
    "innermost saw cancelled 10",
    "middle saw cancelled 10",
    "returned undefined 10",
  ]);
});

Deno.test("nested scopes expiring at the same instant: the outer one, the wider, converts", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  await loop.runTask(outcome(
    log,
    deadline(
      function* () {
        try {
          return yield* moveOnAfter(sleep(100), 20);
        } catch (error) {
          log.push(`inner saw ${describe(error)} ${loop.time()}`);
          throw error;
        }
      }(),
      20,
    ),
  ));
  assertEquals(log, ["inner saw cancelled 20", "threw TimeoutError 20"]);
});

Deno.test("a cancel() of the task inside a scope propagates as CancelledError, never as a timeout", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const d = loop.addTask(outcome(log, deadline(watched(log, 100, "d body"), 50)));
  const m = loop.addTask(function* () {
    const value = yield* moveOnAfter(watched(log, 100, "m body"), 50);
    log.push(`moveOnAfter returned ${value}`); // never: the cancel is the task's
  }());
  loop.addTask(function* () {
    yield* sleep(10);
    d.cancel("stop d");
    m.cancel("stop m");
  }());
  await loop.run();
  assertEquals(log, ["d body cancelled 10", "threw cancelled 10", "m body cancelled 10"]);
  assert(m.cancelled);
  assertEquals(assertThrows(() => m.result(), CancelledError).reason, "stop m");
});

Deno.test("a cancel() of the task in the cycle its scope expires still propagates as CancelledError", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const holder: { main?: Task<void> } = {};
  loop.addTask(function* () {
    // Set before the scope's timer: at 20 this task runs first, after the
    // expiry is pending but before the scope's task has seen it.
    yield* sleep(20);
    holder.main!.cancel("stop");
  }());
  const main = holder.main = loop.addTask(function* () {
    try {
      yield* moveOnAfter(sleep(100), 20);
      log.push("moved on"); // never: the task's own cancel is wider than the scope's
    } catch (error) {
      log.push(`${describe(error)} ${(error as CancelledError).reason} ${loop.time()}`);
      throw error;
    }
  }());
  await loop.run();
  assert(main.cancelled);
  assertEquals(log, ["cancelled stop 20"]);
});

Deno.test("a cancel() of the task while its scope's expiry is shielded is not lost when the scope ends", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const main = loop.addTask(function* () {
    try {
      const value = yield* moveOnAfter(
        function* () {
          yield* shield(sleep(30));
          return "body";
        }(),
        10,
      );
      log.push(`moveOnAfter returned ${value} ${loop.time()}`);
      yield* interrupt();
      log.push("never");
    } catch (error) {
      log.push(`${describe(error)} ${(error as CancelledError).reason} ${loop.time()}`);
      throw error;
    }
  }());
  loop.addTask(function* () {
    yield* sleep(20);
    main.cancel("stop");
  }());
  await loop.run();
  assert(main.cancelled);
  assertEquals(log, ["moveOnAfter returned body 30", "cancelled stop 30"]);
});

for (const virtualTime of [true, false]) {
  const clock = virtualTime ? "virtual" : "real";
  Deno.test(`ms = 0 expires at the first suspension (${clock} time)`, async () => {
    const loop = new Loop({ virtualTime });
    const log: string[] = [];
    const body = (name: string) =>
      function* () {
        log.push(`${name} runs`);
        try {
          yield* interrupt();
          log.push(`${name} never resumes`);
        } catch (error) {
          log.push(`${name} ${describe(error)}`);
          throw error;
        }
      }();
    await loop.runTask(function* () {
      yield* outcome(log, deadline(body("d"), 0));
      yield* outcome(log, moveOnAfter(body("m"), 0));
    }());
    const times = log.filter((line) => /^(threw|returned)/.test(line)).map((line) =>
      line.split(" ").slice(0, 2).join(" ")
    );
    assertEquals(log.filter((line) => !/^(threw|returned)/.test(line)), [
      "d runs",
      "d cancelled",
      "m runs",
      "m cancelled",
    ]);
    assertEquals(times, ["threw TimeoutError", "returned undefined"]);
  });

  Deno.test(`ms = 0 around a body that never suspends returns its value (${clock} time)`, async () => {
    const loop = new Loop({ virtualTime });
    const log: string[] = [];
    await loop.runTask(function* () {
      const d = yield* deadline(
        function* () {
          return "d";
        }(),
        0,
      );
      const m = yield* moveOnAfter(
        function* () {
          return "m";
        }(),
        0,
      );
      log.push(`${d} ${m}`);
      yield* interrupt(); // the withdrawn expiry does not land here
      log.push("after the scopes");
    }());
    assertEquals(log, ["d m", "after the scopes"]);
  });
}

// ---------------------------------------------------------------------------
// shield

Deno.test("shield() holds a cancel() back until it ends; it is delivered at the next suspension point", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const main = loop.addTask(function* () {
    try {
      const value = yield* shield(function* () {
        yield* sleep(20);
        log.push(`shielded work done ${loop.time()}`);
        yield* sleep(10);
        return "kept";
      }());
      log.push(`shield returned ${value} ${loop.time()}`);
      yield* sleep(100);
      log.push("never");
    } catch (error) {
      log.push(`${describe(error)} ${(error as CancelledError).reason} ${loop.time()}`);
      throw error;
    }
  }());
  loop.addTask(function* () {
    yield* sleep(5);
    main.cancel("stop");
  }());
  await loop.run();
  assert(main.cancelled);
  assertEquals(log, [
    "shielded work done 20",
    "shield returned kept 30",
    "cancelled stop 30",
  ]);
});

Deno.test("shield() holds an outer scope's expiry back until it ends", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  await loop.runTask(outcome(
    log,
    deadline(
      function* () {
        yield* shield(after(log, 30, "shielded", null));
        log.push(`after the shield ${loop.time()}`);
        try {
          yield* sleep(100);
        } catch (error) {
          log.push(`${describe(error)} at the next suspension ${loop.time()}`);
          throw error;
        }
      }(),
      10,
    ),
  ));
  assertEquals(log, [
    "shielded 30",
    "after the shield 30",
    "cancelled at the next suspension 30",
    "threw TimeoutError 30",
  ]);
});

Deno.test("shield() in a finally block lets a cleanup finish despite a second cancel()", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const main = loop.addTask(function* () {
    try {
      yield* sleep(Infinity);
    } finally {
      yield* shield(sleep(20));
      log.push(`cleaned up ${loop.time()}`);
    }
  }());
  loop.addTask(function* () {
    yield* sleep(10);
    main.cancel("first");
    yield* sleep(5);
    main.cancel("second");
  }());
  await loop.run();
  assertEquals(log, ["cleaned up 30"]);
  assert(main.cancelled);
  assertEquals(assertThrows(() => main.result(), CancelledError).reason, "first");
});

Deno.test("shield() returns the value and passes the error of what it runs", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  await loop.runTask(function* () {
    yield* outcome(log, shield(after(log, 5, "ok", 1)));
    yield* outcome(log, shield(failAfter(log, 5, "bad", new Error("bad"))));
  }());
  assertEquals(log, ["ok 5", "returned 1 5", "bad fails 10", "threw error(bad) 10"]);
});

Deno.test("shield() around a task group holds back the owner's cancel(): children are not cancelled", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const main = loop.addTask(function* () {
    yield* shield(taskGroup(function* (group) {
      group.spawn(watched(log, 30, "child"));
    }));
    log.push(`shield ended ${loop.time()}`);
    yield* interrupt();
    log.push("never");
  }());
  loop.addTask(function* () {
    yield* sleep(10);
    main.cancel();
  }());
  await loop.run();
  assert(main.cancelled);
  assertEquals(log, ["child done 30", "shield ended 30"]);
});

// ---------------------------------------------------------------------------
// Scopes and groups together

Deno.test("deadline inside taskGroup inside deadline: an inner child's timeout fails the group", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  await loop.runTask(outcome(
    log,
    deadline(
      taskGroup(function* (group) {
        group.spawn(function* () {
          try {
            yield* deadline(sleep(100), 10);
          } catch (error) {
            log.push(`child a ${describe(error)} ${loop.time()}`);
            throw error;
          }
        }());
        group.spawn(function* () {
          yield* outcome(log, deadline(after(log, 5, "child b", "b"), 50));
        }());
        yield* watched(log, 100, "body");
      }),
      1000,
    ),
  ));
  assertEquals(log, [
    "child b 5",
    "returned b 5",
    "child a TimeoutError 10",
    "body cancelled 10",
    "threw TimeoutError 10", // the child's TimeoutError, the group's only failure
  ]);
  assertEquals(loop.time(), 10);
});

Deno.test("deadline inside taskGroup inside deadline: the outer expiry cancels the body and children, then times out", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  await loop.runTask(outcome(
    log,
    deadline(
      taskGroup(function* (group) {
        group.spawn(function* () {
          try {
            yield* deadline(sleep(100), 50); // its own scope, not expired yet
          } catch (error) {
            log.push(`child ${describe(error)} ${loop.time()}`);
            throw error;
          } finally {
            yield* sleep(5);
            log.push(`child unwound ${loop.time()}`);
          }
        }());
        yield* deadline(watched(log, 100, "body"), 40);
      }),
      20,
    ),
  ));
  assertEquals(log, [
    "body cancelled 20",
    "child cancelled 20",
    "child unwound 25",
    "threw TimeoutError 25",
  ]);
  assertEquals(loop.time(), 25);
});

Deno.test("a deadline() around a task group that waits for its children: the expiry cancels them, then times out", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  await loop.runTask(outcome(
    log,
    deadline(
      // deno-lint-ignore require-yield -- the body only spawns
      taskGroup(function* (group) {
        group.spawn(watched(log, 100, "a"));
        group.spawn(watched(log, 5, "b"));
      }),
      10,
    ),
  ));
  assertEquals(log, ["b done 5", "a cancelled 10", "threw TimeoutError 10"]);
});

Deno.test("a task group body inside its own deadline(): a child failure passes through the inner scope", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const boom = new Error("boom");
  const error = await assertRejects(() =>
    loop.runTask(taskGroup(function* (group) {
      group.spawn(failAfter(log, 10, "child", boom));
      try {
        yield* deadline(sleep(100), 50);
      } catch (error) {
        log.push(`body's deadline saw ${describe(error)} ${loop.time()}`);
        throw error;
      }
    }))
  );
  assertStrictEquals(error, boom);
  assertEquals(log, ["child fails 10", "body's deadline saw cancelled 10"]);
});

Deno.test("a moveOnAfter() around a task group cancels the children on expiry and returns undefined", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  await loop.runTask(outcome(
    log,
    moveOnAfter(
      // deno-lint-ignore require-yield -- the body only spawns
      taskGroup(function* (group) {
        group.spawn(watched(log, 100, "a"));
        group.spawn(watched(log, 5, "b"));
      }),
      10,
    ),
  ));
  assertEquals(log, ["b done 5", "a cancelled 10", "returned undefined 10"]);
});

// ---------------------------------------------------------------------------
// yield* inside finally while cancelled

Deno.test("a yield* in a finally block while a scope expires runs to its end, then the scope converts", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  await loop.runTask(outcome(
    log,
    deadline(
      function* () {
        try {
          yield* sleep(100);
        } finally {
          log.push(`cleanup starts ${loop.time()}`);
          yield* sleep(5);
          yield* interrupt();
          yield* sleep(5);
          log.push(`cleanup ends ${loop.time()}`);
        }
      }(),
      10,
    ),
  ));
  assertEquals(log, ["cleanup starts 10", "cleanup ends 20", "threw TimeoutError 20"]);
});

Deno.test("a yield* in a finally block while the task is cancelled runs to its end; the task ends cancelled", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const main = loop.addTask(function* () {
    try {
      yield* moveOnAfter(sleep(100), 50);
      log.push("never");
    } finally {
      log.push(`cleanup starts ${loop.time()}`);
      yield* sleep(5);
      yield* moveOnAfter(sleep(3), 10); // a scope inside the cleanup works too
      log.push(`cleanup ends ${loop.time()}`);
    }
  }());
  loop.addTask(function* () {
    yield* sleep(10);
    main.cancel();
  }());
  await loop.run();
  assertEquals(log, ["cleanup starts 10", "cleanup ends 18"]);
  assert(main.cancelled);
});

Deno.test("a yield* in a child's finally block while its group fails runs to its end; the child ends cancelled", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  let child: Task<void> | undefined;
  const boom = new Error("boom");
  const error = await assertRejects(() =>
    loop.runTask(taskGroup(function* (group) {
      child = group.spawn(function* () {
        try {
          yield* sleep(100);
        } finally {
          yield* sleep(5);
          yield* interrupt();
          log.push(`child cleanup ends ${loop.time()}`);
        }
      }());
      group.spawn(failAfter(log, 10, "failing", boom));
      yield* sleep(100);
    }))
  );
  assertStrictEquals(error, boom);
  assertEquals(log, ["failing fails 10", "child cleanup ends 15"]);
  assert(child!.cancelled);
});

// Scopes opened inside a shield expire as usual (a bug the tests below found).

Deno.test("shield(): a moveOnAfter() inside the shield still expires on time", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const value = await loop.runTask(shield(function* () {
    const inner = yield* moveOnAfter(after(log, 100, "late", "late"), 10);
    log.push(`inner returned ${inner} ${loop.time()}`);
    return "shield done";
  }()));
  assertEquals(value, "shield done");
  assertEquals(log, ["inner returned undefined 10"]);
});

Deno.test("shield(): a deadline() inside the shield times out while an outer expiry is held back", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const value = await loop.runTask(moveOnAfter(
    function* () {
      yield* shield(function* () {
        try {
          yield* deadline(after(log, 100, "cleanup", null), 20); // bounded cleanup
        } catch (error) {
          log.push(`cleanup ${(error as Error).name} ${loop.time()}`);
        }
      }());
      log.push(`after the shield ${loop.time()}`);
      yield* sleep(100);
      return "never";
    }(),
    10,
  ));
  assertEquals(value, undefined);
  assertEquals(log, ["cleanup TimeoutError 20", "after the shield 20"]);
});

Deno.test("shield(): a bounded cleanup in finally of a cancelled task times out on time", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const main = loop.addTask(function* () {
    try {
      yield* sleep(Infinity);
    } finally {
      yield* shield(function* () {
        const done = yield* moveOnAfter(after(log, 1000, "slow cleanup", "done"), 50);
        log.push(`cleanup ${done ?? "gave up"} ${loop.time()}`);
      }());
    }
  }());
  loop.addTask(function* () {
    yield* sleep(10);
    main.cancel();
  }());
  await loop.run();
  assertEquals(log, ["cleanup gave up 60"]);
});

Deno.test("shield(): a task group inside a shield still cancels its body when a child fails", async () => {
  const loop = new Loop({ virtualTime: true });
  const log: string[] = [];
  const boom = new Error("boom");
  const error = await assertRejects(() =>
    loop.runTask(shield(taskGroup(function* (group) {
      group.spawn(function* () {
        yield* sleep(10);
        throw boom;
      }());
      try {
        yield* sleep(100);
      } catch (error) {
        log.push(`body ${error instanceof CancelledError ? "cancelled" : "failed"} ${loop.time()}`);
        throw error;
      }
    })))
  );
  assertStrictEquals(error, boom);
  assertEquals(log, ["body cancelled 10"]);
  assertEquals(loop.time(), 10);
});

Deno.test("shield(): ms = 0 inside a shield expires at the first suspension", async () => {
  const loop = new Loop({ virtualTime: true });
  const value = await loop.runTask(shield(moveOnAfter(after([], 100, "x", "late"), 0)));
  assertEquals(value, undefined);
  assertEquals(loop.time(), 0);
});
