// Copyright 2026 the boucle authors. MIT license.
// Queue, round 2: close(), closed, maxsize, tryPut(), tryGet(), QueueClosedError.
import { assert, assertEquals, assertFalse, assertInstanceOf, assertThrows } from "@std/assert";
import { describe, it } from "@std/testing/bdd";
import { type Awaitable, type Coroutine, gather, Loop, sleep } from "../loop.ts";
import { Queue, QueueClosedError } from "../sync.ts";

/** Runs `main` on a fresh virtual-time loop and returns its result. */
function runVirtual<T>(main: Coroutine<T>): Promise<T> {
  return new Loop({ virtualTime: true }).runTask(main);
}

/** What a coroutine ended with, as a log line: its value or its error's name and message. */
function* outcome(what: Awaitable<unknown>): Coroutine<string> {
  try {
    return `returned ${yield* what}`;
  } catch (error) {
    return `${(error as Error).name}: ${(error as Error).message}`;
  }
}

describe("Queue.close()", () => {
  it("lets get() drain the items left, then throws QueueClosedError", async () => {
    const queue = new Queue<string>();
    const log = await runVirtual(function* () {
      yield* queue.put("a");
      yield* queue.put("b");
      queue.close();
      const log = [`closed ${queue.closed}, size ${queue.size}`];
      for (let i = 0; i < 4; i++) log.push(yield* outcome(queue.get()));
      return log;
    }());
    assertEquals(log, [
      "closed true, size 2",
      "returned a",
      "returned b",
      "QueueClosedError: Queue.get(): the queue is closed and empty",
      "QueueClosedError: Queue.get(): the queue is closed and empty",
    ]);
  });

  it("wakes every parked getter with QueueClosedError, in order, at the time of the close", async () => {
    const queue = new Queue<number>(Infinity, { name: "jobs" });
    const log: string[] = [];
    function* getter(name: string): Coroutine {
      const result = yield* outcome(queue.get());
      log.push(`${name} at ${Loop.current.time()}: ${result}`);
    }
    function* closer(): Coroutine {
      yield* sleep(10);
      log.push("close");
      queue.close();
    }
    await runVirtual(gather(getter("a"), getter("b"), closer(), getter("c")));
    assertEquals(log, [
      "close",
      'a at 10: QueueClosedError: Queue("jobs").get(): the queue is closed and empty',
      'b at 10: QueueClosedError: Queue("jobs").get(): the queue is closed and empty',
      'c at 10: QueueClosedError: Queue("jobs").get(): the queue is closed and empty',
    ]);
  });

  it("makes put() throw, and wakes parked putters with QueueClosedError without adding their items", async () => {
    const queue = new Queue<string>(1);
    const log: string[] = [];
    function* putter(item: string): Coroutine {
      log.push(`put ${item}: ${yield* outcome(queue.put(item))}`);
    }
    function* closer(): Coroutine {
      yield* sleep(10);
      queue.close();
      log.push(`closed, size ${queue.size}`);
      log.push(`put late: ${yield* outcome(queue.put("late"))}`);
      log.push(`get: ${yield* outcome(queue.get())}`);
      log.push(`get: ${yield* outcome(queue.get())}`);
    }
    await runVirtual(gather(putter("kept"), putter("x"), putter("y"), closer()));
    assertEquals(log, [
      "put kept: returned undefined",
      "closed, size 1",
      "put late: QueueClosedError: Queue.put(): the queue is closed",
      "get: returned kept",
      "get: QueueClosedError: Queue.get(): the queue is closed and empty",
      "put x: QueueClosedError: Queue.put(): the queue is closed",
      "put y: QueueClosedError: Queue.put(): the queue is closed",
    ]);
  });

  it("a second close() has no effect", async () => {
    const queue = new Queue<number>();
    queue.tryPut(1);
    queue.close();
    queue.close();
    assert(queue.closed);
    assertEquals(queue.size, 1);
    assertEquals(await runVirtual(queue.get()), 1);
  });

  it("ends a three-stage pipeline: each stage drains its input, then closes its output", async () => {
    const numbers = new Queue<number>(2, { name: "numbers" });
    const squares = new Queue<number>(2, { name: "squares" });
    const log: string[] = [];
    function* produce(): Coroutine {
      for (let i = 1; i <= 3; i++) {
        yield* numbers.put(i);
        log.push(`put ${i}`);
      }
      numbers.close();
      log.push("numbers closed");
    }
    function* square(): Coroutine {
      try {
        for (;;) {
          const n = yield* numbers.get();
          yield* sleep(10);
          yield* squares.put(n * n);
          log.push(`squared ${n} at ${Loop.current.time()}`);
        }
      } catch (error) {
        assertInstanceOf(error, QueueClosedError);
      }
      squares.close();
      log.push("squares closed");
    }
    function* sum(): Coroutine<number> {
      let total = 0;
      try {
        for (;;) total += yield* squares.get();
      } catch (error) {
        assertInstanceOf(error, QueueClosedError);
        log.push(`sum ends: ${error.message}`);
      }
      return total;
    }
    const [, , total] = await runVirtual(gather(produce(), square(), sum()));
    assertEquals(total, 14);
    assertEquals(log, [
      "put 1",
      "put 2",
      "put 3",
      "numbers closed",
      "squared 1 at 10",
      "squared 2 at 20",
      "squared 3 at 30",
      "squares closed",
      'sum ends: Queue("squares").get(): the queue is closed and empty',
    ]);
  });
});

describe("Queue.close() and cancellation at the same wait", () => {
  for (const first of ["close", "cancel"] as const) {
    it(
      `a parked get() that is ${
        first === "close" ? "woken by close() and then cancelled" : "cancelled and then closed"
      } gets ${first === "close" ? "QueueClosedError" : "CancelledError"}`,
      async () => {
        const loop = new Loop({ virtualTime: true });
        const queue = new Queue<number>();
        const log: string[] = [];
        const getter = loop.addTask(function* () {
          log.push(`get: ${yield* outcome(queue.get())}`);
          log.push(`then: ${yield* outcome(sleep(1))}`); // a pending cancel lands here
        }());
        loop.addTask(function* () {
          yield* sleep(5);
          if (first === "close") queue.close();
          getter.cancel("stop");
          if (first === "cancel") queue.close();
        }());
        await loop.run();
        assertEquals(
          log,
          first === "close"
            ? [
              "get: QueueClosedError: Queue.get(): the queue is closed and empty",
              "then: CancelledError: The task was cancelled: stop",
            ]
            : ["get: CancelledError: The task was cancelled: stop", "then: returned undefined"],
        );
      },
    );

    it(
      `a parked put() that is ${
        first === "close" ? "woken by close() and then cancelled" : "cancelled and then closed"
      } gets ${first === "close" ? "QueueClosedError" : "CancelledError"}, and adds nothing`,
      async () => {
        const loop = new Loop({ virtualTime: true });
        const queue = new Queue<number>(1);
        queue.tryPut(0);
        const log: string[] = [];
        const putter = loop.addTask(function* () {
          log.push(`put: ${yield* outcome(queue.put(1))}`);
          log.push(`then: ${yield* outcome(sleep(1))}`);
        }());
        loop.addTask(function* () {
          yield* sleep(5);
          if (first === "close") queue.close();
          putter.cancel("stop");
          if (first === "cancel") queue.close();
          yield* sleep(5);
          log.push(`size ${queue.size}, got ${queue.tryGet()}`);
        }());
        await loop.run();
        assertEquals(
          log,
          first === "close"
            ? [
              "put: QueueClosedError: Queue.put(): the queue is closed",
              "then: CancelledError: The task was cancelled: stop",
              "size 1, got 0",
            ]
            : [
              "put: CancelledError: The task was cancelled: stop",
              "then: returned undefined",
              "size 1, got 0",
            ],
        );
      },
    );
  }
});

describe("Queue.tryPut() and Queue.tryGet()", () => {
  it("tryPut() adds while there is room and returns false when full", () => {
    const queue = new Queue<number>(2);
    assertEquals([queue.tryPut(1), queue.tryPut(2), queue.tryPut(3)], [true, true, false]);
    assertEquals(queue.size, 2);
    assertEquals([queue.tryGet(), queue.tryGet(), queue.tryGet()], [1, 2, undefined]);
    assertEquals(queue.size, 0);
  });

  it("tryPut() hands the item straight to the longest parked getter", async () => {
    const queue = new Queue<string>(1);
    const log: string[] = [];
    function* getter(name: string): Coroutine {
      log.push(`${name} got ${yield* queue.get()} at ${Loop.current.time()}`);
    }
    function* putter(): Coroutine {
      yield* sleep(10);
      log.push(`tryPut x: ${queue.tryPut("x")}, size ${queue.size}`);
      log.push(`tryPut y: ${queue.tryPut("y")}, size ${queue.size}`);
      log.push(`tryPut z: ${queue.tryPut("z")}, size ${queue.size}`);
    }
    await runVirtual(gather(getter("a"), getter("b"), putter()));
    assertEquals(log, [
      "tryPut x: true, size 0",
      "tryPut y: true, size 0",
      "tryPut z: true, size 1",
      "a got x at 10",
      "b got y at 10",
    ]);
  });

  it("tryGet() moves the longest parked putter's item in and wakes it", async () => {
    const queue = new Queue<string>(1);
    const log: string[] = [];
    function* putter(item: string): Coroutine {
      yield* queue.put(item);
      log.push(`put ${item} at ${Loop.current.time()}`);
    }
    function* getter(): Coroutine {
      yield* sleep(10);
      log.push(`tryGet ${queue.tryGet()}, size ${queue.size}`);
      log.push(`tryGet ${queue.tryGet()}, size ${queue.size}`);
      yield* sleep(1);
      log.push(`tryGet ${queue.tryGet()}, size ${queue.size}`);
      log.push(`tryGet ${queue.tryGet()}, size ${queue.size}`);
    }
    await runVirtual(gather(putter("a"), putter("b"), putter("c"), getter()));
    assertEquals(log, [
      "put a at 0",
      "tryGet a, size 1",
      "tryGet b, size 1",
      "put b at 10",
      "put c at 10",
      "tryGet c, size 0",
      "tryGet undefined, size 0",
    ]);
  });

  it("on a closed queue, tryPut() throws QueueClosedError and tryGet() drains, then throws it", () => {
    const queue = new Queue<number>(Infinity, { name: "q" });
    queue.tryPut(1);
    queue.close();
    const error = assertThrows(() => queue.tryPut(2), QueueClosedError);
    assertEquals(error.name, "QueueClosedError");
    assertEquals(error.message, 'Queue("q").tryPut(): the queue is closed');
    assertEquals(queue.size, 1);
    assertEquals(queue.tryGet(), 1);
    assertThrows(
      () => queue.tryGet(),
      QueueClosedError,
      'Queue("q").tryGet(): the queue is closed and empty',
    );
  });
});

Deno.test("Queue.maxsize is what the constructor was given", () => {
  assertEquals(new Queue().maxsize, Infinity);
  assertEquals(new Queue(1).maxsize, 1);
  assertEquals(new Queue(64, { name: "x" }).maxsize, 64);
  assertFalse(new Queue().closed);
});

Deno.test("QueueClosedError is an Error with its name and a default message", () => {
  const error = new QueueClosedError();
  assertInstanceOf(error, Error);
  assertEquals(error.name, "QueueClosedError");
  assertEquals(error.message, "The queue is closed");
});
