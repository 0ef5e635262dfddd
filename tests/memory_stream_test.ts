// Copyright 2026 the boucle authors. MIT license.
/**
 * Tests for memoryStreamPair() (testing.ts): delivery, fragments, latency
 * and back-pressure on the virtual clock, end of stream, close and reset,
 * misuse, and cancellation in each wait. Event logs are asserted in full.
 */
import { assert, assertEquals, assertInstanceOf, assertRejects, assertThrows } from "@std/assert";
import { type Coroutine, DeadlockError, gather, interrupt, Loop, sleep } from "../loop.ts";
import type { AIOSocket } from "../socket.ts";
import type { ByteStream } from "../stream.ts";
import { type MemoryStream, memoryStreamPair } from "../testing.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (text: string): Uint8Array => encoder.encode(text);
const text = (data: Uint8Array): string => decoder.decode(data);

/** Runs `main` on a fresh virtual-time loop and returns its result. */
function run<T>(main: Coroutine<T>): Promise<T> {
  return new Loop({ virtualTime: true }).runTask(main);
}

/** Receives until end of stream, logging each piece with the loop's time. */
function* drainAll(end: MemoryStream, log: string[], bufsize = 100): Coroutine<void> {
  for (;;) {
    const piece = yield* end.recv(bufsize);
    if (piece.length === 0) break;
    log.push(`${Loop.current.time()}: ${JSON.stringify(text(piece))}`);
  }
  log.push(`${Loop.current.time()}: end`);
}

// Both AIOSocket and MemoryStream are ByteStreams: this only has to type-check.
const _types: [ByteStream, ByteStream] = [
  memoryStreamPair()[0],
  null as unknown as AIOSocket,
];

Deno.test("memoryStreamPair() rejects bad options, naming the option and the value", () => {
  const cases: [() => unknown, typeof RangeError | typeof TypeError, string][] = [
    [
      () => memoryStreamPair(3 as never),
      TypeError,
      "memoryStreamPair(options): 'options' must be an object, received 3",
    ],
    [
      () => memoryStreamPair({ maxChunk: 0 }),
      RangeError,
      "memoryStreamPair(options): 'options.maxChunk' must be an integer >= 1 or Infinity, received 0",
    ],
    [() => memoryStreamPair({ maxChunk: 1.5 }), RangeError, "received 1.5"],
    [
      () => memoryStreamPair({ bufferSize: -1 }),
      RangeError,
      "'options.bufferSize' must be an integer >= 1 or Infinity, received -1",
    ],
    [
      () => memoryStreamPair({ latency: -1 }),
      RangeError,
      "'options.latency' must be a number >= 0, received -1",
    ],
    [
      () => memoryStreamPair({ latency: Infinity }),
      RangeError,
      "'options.latency' must be a finite number >= 0, received Infinity",
    ],
    [() => memoryStreamPair({ latency: "5" as never }), TypeError, "'options.latency'"],
    [
      () => memoryStreamPair()[0].recv(0),
      RangeError,
      "MemoryStream.recv(bufsize): 'bufsize' must be an integer >= 1, received 0",
    ],
    [
      () => memoryStreamPair()[0].recvInto(new Uint8Array(0)),
      RangeError,
      "MemoryStream.recvInto(buffer): 'buffer' must not be empty",
    ],
    [
      () => memoryStreamPair()[0].recvInto([1] as never),
      TypeError,
      "'buffer' must be a Uint8Array, received an object (Array)",
    ],
    [
      () => memoryStreamPair()[0].send("x" as never),
      TypeError,
      `MemoryStream.send(bytes): 'bytes' must be a Uint8Array, received "x"`,
    ],
    [
      () => memoryStreamPair()[0].sendAll(null as never),
      TypeError,
      "MemoryStream.sendAll(bytes): 'bytes' must be a Uint8Array, received null",
    ],
  ];
  for (const [make, type, message] of cases) assertThrows(make, type, message);
});

Deno.test("bytes sent on one end arrive on the other, in order, both ways; recv() joins sends that have arrived", async () => {
  const [a, b] = memoryStreamPair();
  const got = await run(function* () {
    yield* a.sendAll(bytes("he"));
    yield* a.sendAll(bytes("llo"));
    yield* b.sendAll(bytes("back"));
    return [text(yield* b.recv(100)), text(yield* a.recv(2)), text(yield* a.recv(100))];
  }());
  assertEquals(got, ["hello", "ba", "ck"]);
});

Deno.test("send() copies the bytes: changing them afterwards changes nothing received", async () => {
  const [a, b] = memoryStreamPair();
  const got = await run(function* () {
    const data = bytes("abc");
    yield* a.send(data);
    data.fill(0x7a);
    return text(yield* b.recv(10));
  }());
  assertEquals(got, "abc");
});

Deno.test("maxChunk fragments every receive, recv() and recvInto() alike", async () => {
  const [a, b] = memoryStreamPair({ maxChunk: 2 });
  const got = await run(function* () {
    yield* a.sendAll(bytes("abcde"));
    yield* a.shutdown();
    const buffer = new Uint8Array(10);
    const n = yield* b.recvInto(buffer);
    const rest = [];
    for (let piece; (piece = yield* b.recv(10)).length > 0;) rest.push(text(piece));
    return [n, text(buffer.subarray(0, n)), rest, yield* b.recvInto(buffer)];
  }());
  assertEquals(got, [2, "ab", ["cd", "e"], 0]);
});

Deno.test("latency delays each send's bytes on the loop's clock, and end of stream follows the last bytes", async () => {
  const [a, b] = memoryStreamPair({ latency: 30 });
  const log: string[] = [];
  function* writer(): Coroutine {
    yield* a.sendAll(bytes("one"));
    yield* sleep(10);
    yield* a.sendAll(bytes("two"));
    yield* a.sendAll(bytes("three"));
    yield* a.shutdown();
    log.push(`${Loop.current.time()}: shut`);
  }
  await run(gather(writer(), drainAll(b, log)));
  assertEquals(log, ["10: shut", '30: "one"', '40: "twothree"', "40: end"]);
});

Deno.test("maxChunk and latency together run the same 20 times in a row", async () => {
  const logs = new Set<string>();
  for (let i = 0; i < 20; i++) {
    const [a, b] = memoryStreamPair({ maxChunk: 1, latency: 3 });
    const log: string[] = [];
    const writer = function* (): Coroutine {
      for (const word of ["ab", "cd"]) {
        yield* a.sendAll(bytes(word));
        yield* sleep(1);
      }
      yield* a.shutdown();
    };
    await run(gather(writer(), drainAll(b, log)));
    logs.add(log.join(" | "));
  }
  assertEquals([...logs], ['3: "a" | 3: "b" | 4: "c" | 4: "d" | 4: end']);
});

Deno.test("bufferSize: send() takes what fits and parks while nothing does; the peer's receives make room", async () => {
  const [a, b] = memoryStreamPair({ bufferSize: 4 });
  const log: string[] = [];
  function* writer(): Coroutine {
    log.push(`send took ${yield* a.send(bytes("abcdef"))}`);
    yield* a.sendAll(bytes("ghijkl"));
    log.push(`${Loop.current.time()}: sendAll done`);
    yield* a.shutdown();
  }
  function* reader(): Coroutine {
    yield* sleep(10);
    for (let piece; (piece = yield* b.recv(3)).length > 0;) {
      log.push(`${Loop.current.time()}: ${text(piece)}`);
      yield* sleep(10);
    }
  }
  await run(gather(writer(), reader()));
  assertEquals(log, [
    "send took 4",
    "10: abc",
    "20: dgh",
    "20: sendAll done", // "jkl" fitted once "dgh" was taken
    "30: ijk",
    "40: l",
  ]);
});

Deno.test("waitReadable() and waitWritable() park until recv() or send() would not wait", async () => {
  const [a, b] = memoryStreamPair({ bufferSize: 2, latency: 5 });
  const log: string[] = [];
  function* watcher(): Coroutine {
    yield* b.waitReadable();
    log.push(`${Loop.current.time()}: b readable`);
    yield* a.waitWritable();
    log.push(`${Loop.current.time()}: a writable`);
  }
  function* actor(): Coroutine {
    yield* a.sendAll(bytes("xy")); // a is now full
    yield* sleep(20);
    log.push(`${Loop.current.time()}: b receives ${text(yield* b.recv(10))}`);
  }
  await run(gather(watcher(), actor()));
  assertEquals(log, ["5: b readable", "20: b receives xy", "20: a writable"]);
});

Deno.test("shutdown() ends the stream for the peer after the bytes sent, while this end still receives", async () => {
  const [a, b] = memoryStreamPair();
  const got = await run(function* () {
    yield* a.sendAll(bytes("last"));
    yield* a.shutdown();
    yield* a.shutdown(); // no effect
    yield* b.sendAll(bytes("reply"));
    const error = yield* failure(a.send(bytes("more")));
    return [text(yield* b.recv(10)), (yield* b.recv(10)).length, text(yield* a.recv(10)), error];
  }());
  assertEquals(got, [
    "last",
    0,
    "reply",
    'Error: MemoryStream.send(): the stream "a" was shut down for sending',
  ]);
});

/** Runs `c` and returns its error as "Name: message" (or "no error"). */
function* failure(c: Coroutine<unknown>): Coroutine<string> {
  try {
    yield* c;
    return "no error";
  } catch (error) {
    return `${(error as Error).name}: ${(error as Error).message}`;
  }
}

Deno.test("close() ends the stream for the peer, breaks its sends, and wakes this end's parked tasks with an Error", async () => {
  const [a, b] = memoryStreamPair({ bufferSize: 1 });
  const log: string[] = [];
  const loop = new Loop({ virtualTime: true });
  loop.addTask(function* () {
    log.push(`a recv: ${yield* failure(a.recv(10))}`);
  }());
  loop.addTask(function* () {
    yield* a.send(bytes("x")); // a's direction is now full
    log.push(`a send: ${yield* failure(a.send(bytes("y")))}`);
  }());
  loop.addTask(function* () {
    yield* sleep(10);
    a.close();
    a.close(); // idempotent
    yield* interrupt(); // the parked tasks wake first
    log.push(`b recv: ${text(yield* b.recv(10))}, then ${(yield* b.recv(10)).length} bytes`);
    log.push(`a use: ${yield* failure(a.waitReadable())}`);
    log.push(`b send: ${yield* failure(b.sendAll(bytes("v")))}`);
    log.push(`b waitWritable: ${yield* failure(b.waitWritable())}`);
  }());
  await loop.run();
  assertEquals(log, [
    'a recv: Error: MemoryStream.recv(): the stream "a" is closed',
    'a send: Error: MemoryStream.send(): the stream "a" is closed',
    "b recv: x, then 0 bytes",
    'a use: Error: MemoryStream.waitReadable(): the stream "a" is closed',
    'b send: BrokenPipe: MemoryStream.sendAll(): the peer of "b" is closed',
    "b waitWritable: no error", // a send would not wait: it would fail at once
  ]);
});

Deno.test("close() wakes a peer parked in send() with BrokenPipe and drops the bytes it had not received", async () => {
  const [a, b] = memoryStreamPair({ bufferSize: 2 });
  const log: string[] = [];
  function* peer(): Coroutine {
    yield* b.sendAll(bytes("12"));
    log.push(`b send: ${yield* failure(b.send(bytes("3")))}`);
  }
  function* closer(): Coroutine {
    yield* sleep(5);
    a.close();
  }
  await run(gather(peer(), closer()));
  assertEquals(log, ['b send: BrokenPipe: MemoryStream.send(): the peer of "b" is closed']);
});

Deno.test("reset() makes the peer's next operation throw ConnectionReset, then it reads end of stream", async () => {
  const [a, b] = memoryStreamPair({ latency: 5 });
  const log: string[] = [];
  function* peer(): Coroutine {
    log.push(`recv: ${yield* failure(b.recv(10))}`);
    log.push(`recv again: ${(yield* b.recv(10)).length} bytes`);
    log.push(`send: ${yield* failure(b.send(bytes("x")))}`);
  }
  function* resetter(): Coroutine {
    yield* a.sendAll(bytes("never arrives"));
    a.reset();
    a.reset(); // no effect
  }
  await run(gather(peer(), resetter()));
  assertEquals(log, [
    'recv: ConnectionReset: MemoryStream.recv(): the peer of "b" reset the stream',
    "recv again: 0 bytes",
    'send: BrokenPipe: MemoryStream.send(): the peer of "b" is closed',
  ]);
});

Deno.test("reset() wakes a peer parked in send() with ConnectionReset", async () => {
  const [a, b] = memoryStreamPair({ bufferSize: 1 });
  const log: string[] = [];
  function* peer(): Coroutine {
    yield* b.sendAll(bytes("1"));
    log.push(`send: ${yield* failure(b.sendAll(bytes("2")))}`);
  }
  function* resetter(): Coroutine {
    yield* sleep(5);
    a.reset();
  }
  await run(gather(peer(), resetter()));
  assertEquals(log, [
    'send: ConnectionReset: MemoryStream.sendAll(): the peer of "b" reset the stream',
  ]);
});

Deno.test("only one task may receive at a time", async () => {
  const [a, b] = memoryStreamPair();
  const log = await run(function* () {
    const log: string[] = [];
    const first = Loop.current.addTask(b.recv(10));
    yield* interrupt(); // first parks
    log.push(yield* failure(b.recvInto(new Uint8Array(4))));
    yield* a.sendAll(bytes("ok"));
    log.push(text(yield* first));
    return log;
  }());
  assertEquals(log, [
    'Error: MemoryStream.recvInto(): another task is already receiving on "b"; only one may',
    "ok",
  ]);
});

Deno.test("a cancelled recv() loses nothing, parked or waiting out the latency", async () => {
  for (const latency of [0, 10]) {
    const [a, b] = memoryStreamPair({ latency });
    const loop = new Loop({ virtualTime: true });
    const waiting = loop.addTask(b.recv(10));
    const after = loop.addTask(function* () {
      yield* sleep(1);
      if (latency === 0) waiting.cancel(); // parked on the wait queue
      yield* a.sendAll(bytes("kept"));
      yield* sleep(5);
      if (latency > 0) waiting.cancel(); // asleep until the bytes arrive at 11
      yield* interrupt(); // let it unwind: it receives until then
      return [text(yield* b.recv(10)), Loop.current.time()];
    }());
    await loop.run();
    assert(waiting.cancelled);
    assertEquals(after.result(), ["kept", latency === 0 ? 6 : 11], `latency ${latency}`);
  }
});

Deno.test("a recv() woken by bytes and cancelled before it runs still returns them", async () => {
  const [a, b] = memoryStreamPair();
  const loop = new Loop({ virtualTime: true });
  const waiting = loop.addTask(b.recv(10));
  loop.addTask(function* () {
    yield* interrupt();
    yield* a.sendAll(bytes("mine"));
    waiting.cancel(); // too late: the wake committed
  }());
  await loop.run();
  assertEquals([waiting.cancelled, text(waiting.result())], [false, "mine"]);
});

Deno.test("a cancelled send() parked on a full buffer sends nothing", async () => {
  const [a, b] = memoryStreamPair({ bufferSize: 2 });
  const loop = new Loop({ virtualTime: true });
  const sending = loop.addTask(function* () {
    yield* a.sendAll(bytes("ab"));
    yield* a.send(bytes("cd")); // parks: full
  }());
  const reader = loop.addTask(function* () {
    yield* sleep(5);
    sending.cancel();
    yield* a.shutdown();
    const got = [];
    for (let piece; (piece = yield* b.recv(10)).length > 0;) got.push(text(piece));
    return got;
  }());
  await loop.run();
  assert(sending.cancelled);
  assertEquals(reader.result(), ["ab"]);
});

Deno.test("a cancelled waitReadable() or waitWritable() leaves the stream as it was", async () => {
  const [a, b] = memoryStreamPair({ bufferSize: 1 });
  const loop = new Loop({ virtualTime: true });
  const readable = loop.addTask(a.waitReadable());
  const writable = loop.addTask(function* () {
    yield* a.send(bytes("1"));
    yield* a.waitWritable(); // full: parks
  }());
  const after = loop.addTask(function* () {
    yield* sleep(5);
    readable.cancel();
    writable.cancel();
    yield* b.send(bytes("2"));
    return [text(yield* a.recv(10)), text(yield* b.recv(10)), yield* a.send(bytes("3"))];
  }());
  await loop.run();
  assertEquals([readable.cancelled, writable.cancelled], [true, true]);
  assertEquals(after.result(), ["2", "1", 1]);
});

Deno.test("a task waiting for bytes nobody sends is a DeadlockError that names the wait", async () => {
  const [, b] = memoryStreamPair();
  const loop = new Loop({ virtualTime: true });
  loop.addTask(b.recv(10), { name: "reader" });
  const error = await assertRejects(() => loop.run(), DeadlockError);
  assertInstanceOf(error, DeadlockError);
  assertEquals(
    error.message.includes('"reader" waits on MemoryStream("b").waitReadable()'),
    true,
    error.message,
  );
});

Deno.test("using closes a memory stream at the end of its scope", async () => {
  const [a, b] = memoryStreamPair();
  {
    using _a = a;
  }
  assertEquals((await run(b.recv(10))).length, 0);
  await assertRejects(() => run(a.recv(1)), Error, 'the stream "a" is closed');
});

Deno.test("a long stream whose reader falls further behind keeps every byte in order", async () => {
  const [a, b] = memoryStreamPair({ maxChunk: 3 });
  let want = "";
  const got = await run(function* () {
    let received = "";
    for (let i = 0; i < 5000; i++) {
      for (const piece of [`${i % 10}${i % 7}`, `${i % 3}${i % 9}`]) {
        want += piece;
        yield* a.sendAll(bytes(piece));
      }
      received += text(yield* b.recv(100)); // 3 of the 4 bytes sent
    }
    yield* a.shutdown();
    for (let piece; (piece = yield* b.recv(100)).length > 0;) received += text(piece);
    return received;
  }());
  assertEquals(got.length, 20_000);
  assertEquals(got, want);
});
