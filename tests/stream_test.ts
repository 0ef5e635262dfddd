// Copyright 2026 the boucle authors. MIT license.
/**
 * Tests for stream.ts: StreamReader, StreamWriter and forEach. Sources are
 * memory streams (testing.ts) or small fakes that record their calls, all on
 * virtual-time loops, so every interleaving is the same each run.
 */
import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import {
  type Awaitable,
  CancelledError,
  type Coroutine,
  gather,
  interrupt,
  Loop,
  sleep,
  type Task,
} from "../loop.ts";
import { Event, Queue } from "../sync.ts";
import {
  type ByteSink,
  type ByteSource,
  forEach,
  IncompleteReadError,
  LimitOverrunError,
  StreamReader,
  StreamWriter,
} from "../stream.ts";
import { memoryStreamPair } from "../testing.ts";
import { aiosocket } from "../socket.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (text: string): Uint8Array => encoder.encode(text);
const text = (data: Uint8Array): string => decoder.decode(data);

/** Runs `main` on a fresh virtual-time loop and returns its result. */
function run<T>(main: Awaitable<T>): Promise<T> {
  return new Loop({ virtualTime: true }).runTask(main);
}

/**
 * A source that hands out `chunks` one per call, each after a bare yield,
 * and records its calls; with `into`, it has `recvInto` too.
 */
class ChunkSource implements ByteSource {
  readonly calls: string[] = [];
  readonly #chunks: Uint8Array[];
  recvInto?: (buffer: Uint8Array) => Coroutine<number>;

  constructor(chunks: (string | Uint8Array)[], into = false) {
    this.#chunks = chunks.map((c) => typeof c === "string" ? bytes(c) : c);
    if (into) this.recvInto = this.#recvInto;
  }
  *recv(bufsize: number): Coroutine<Uint8Array> {
    this.calls.push(`recv(${bufsize})`);
    yield;
    const chunk = this.#chunks.shift();
    if (chunk === undefined) return new Uint8Array(0);
    if (chunk.length > bufsize) this.#chunks.unshift(chunk.subarray(bufsize));
    return chunk.subarray(0, bufsize);
  }
  *#recvInto(buffer: Uint8Array): Coroutine<number> {
    this.calls.push(`recvInto(${buffer.length})`);
    yield;
    const chunk = this.#chunks.shift();
    if (chunk === undefined) return 0;
    const n = Math.min(chunk.length, buffer.length);
    buffer.set(chunk.subarray(0, n));
    if (n < chunk.length) this.#chunks.unshift(chunk.subarray(n));
    return n;
  }
}

/** Reads every line until end of stream. */
function* allLines(reader: StreamReader): Coroutine<string[]> {
  const lines = [];
  for (let line; (line = yield* reader.readLine()) !== null;) lines.push(line);
  return lines;
}

// ---------------------------------------------------------------------------
// Argument errors

Deno.test("bad arguments get a TypeError or RangeError naming the argument and the value", () => {
  const [a] = memoryStreamPair();
  const reader = new StreamReader(a);
  const writer = new StreamWriter(a);
  const cases: [() => unknown, typeof RangeError | typeof TypeError, string][] = [
    [
      () => new StreamReader({} as never),
      TypeError,
      "new StreamReader(source): 'source' must have a recv(bufsize) method (an AIOSocket, a memory stream, any ByteSource), received an object with no recv method",
    ],
    [
      () => new StreamReader(null as never),
      TypeError,
      "must have a recv(bufsize) method (an AIOSocket, a memory stream, any ByteSource), received null",
    ],
    [
      () => new StreamReader(a, { limit: 0 }),
      RangeError,
      "'options.limit' must be an integer >= 1, received 0",
    ],
    [() => new StreamReader(a, { limit: 1.5 }), RangeError, "received 1.5"],
    [() => new StreamReader(a, { limit: "8" as never }), TypeError, "'options.limit'"],
    [() => new StreamReader(a, 5 as never), TypeError, "'options' must be an object, received 5"],
    [
      () => reader.readExactly(-1),
      RangeError,
      "StreamReader.readExactly(n): 'n' must be an integer >= 0, received -1",
    ],
    [() => reader.readExactly(NaN), RangeError, "received NaN"],
    [
      () => reader.read(0),
      RangeError,
      "StreamReader.read(n): 'n' must be an integer >= 1, received 0",
    ],
    [() => reader.read("1" as never), TypeError, "StreamReader.read(n): 'n'"],
    [
      () => reader.readUntil(""),
      RangeError,
      `StreamReader.readUntil(separator): 'separator' must not be empty, received ""`,
    ],
    [() => reader.readUntil(new Uint8Array(0)), RangeError, "received an empty Uint8Array"],
    [
      () => reader.readUntil(10 as never),
      TypeError,
      "'separator' must be a Uint8Array or a string, received 10",
    ],
    [
      () => new StreamWriter({} as never),
      TypeError,
      "new StreamWriter(sink): 'sink' must have sendAll(bytes) and shutdown() methods (an AIOSocket, a memory stream, any ByteSink), received an object with no sendAll method",
    ],
    [
      () => new StreamWriter({ *sendAll() {} } as never),
      TypeError,
      "received an object with no shutdown method",
    ],
    [
      () => new StreamWriter(a, { highWaterMark: 0 }),
      RangeError,
      "'options.highWaterMark' must be an integer >= 1, received 0",
    ],
    [
      () => writer.write(42 as never),
      TypeError,
      "StreamWriter.write(data): 'data' must be a Uint8Array or a string, received 42",
    ],
    [() => writer.write([1, 2] as never), TypeError, "received an object (Array)"],
    [
      () => forEach(42 as never, () => {}),
      TypeError,
      "forEach(source, body): 'source' must be an AsyncIterable (an async generator, a ReadableStream) or a Queue, received 42",
    ],
    [() => forEach([1, 2] as never, () => {}), TypeError, "received an object (Array)"],
    [
      () => forEach(new Queue(), "f" as never),
      TypeError,
      `forEach(source, body): 'body' must be a function, received "f"`,
    ],
  ];
  for (const [make, type, message] of cases) assertThrows(make, type, message);
  assertEquals(writer.buffered, 0);
});

// ---------------------------------------------------------------------------
// StreamReader.readLine()

Deno.test("readLine() strips \\n and \\r\\n, returns a last line with no newline, then null", async () => {
  const source = new ChunkSource(["one\ntwo\r\n\nthree\r", "\nfour"]);
  const reader = new StreamReader(source);
  const lines = await run(function* () {
    const lines: (string | null)[] = yield* allLines(reader);
    lines.push(yield* reader.readLine()); // still null
    return lines;
  }());
  assertEquals(lines, ["one", "two", "", "three", "four", null]);
});

Deno.test("readLine() keeps a lone \\r at the end of stream and a \\r inside a line", async () => {
  const reader = new StreamReader(new ChunkSource(["a\rb\nlast\r"]));
  assertEquals(await run(allLines(reader)), ["a\rb", "last\r"]);
});

Deno.test("readLine() decodes UTF-8 split across reads at every byte boundary", async () => {
  const line = "héllo wörld 😀 — ok";
  const data = bytes(`${line}\n${line}`);
  for (let cut = 1; cut < data.length; cut++) {
    for (const into of [false, true]) {
      const source = new ChunkSource([data.subarray(0, cut), data.subarray(cut)], into);
      assertEquals(await run(allLines(new StreamReader(source))), [line, line], `cut at ${cut}`);
    }
  }
});

Deno.test("readLine() over a memory stream with maxChunk: 1 and latency reads each line when its last byte arrives", async () => {
  const [a, b] = memoryStreamPair({ maxChunk: 1, latency: 10 });
  const log: string[] = [];
  function* writer(): Coroutine {
    yield* a.sendAll(bytes("ça va?\r\n"));
    yield* sleep(5);
    yield* a.sendAll(bytes("très bien 👍\n"));
    yield* sleep(5);
    yield* a.sendAll(bytes("bye"));
    yield* a.shutdown();
  }
  function* reader(): Coroutine {
    const reader = new StreamReader(b);
    for (let line; (line = yield* reader.readLine()) !== null;) {
      log.push(`${Loop.current.time()}: ${line}`);
    }
    log.push(`${Loop.current.time()}: end`);
  }
  await run(gather(writer(), reader()));
  assertEquals(log, ["10: ça va?", "15: très bien 👍", "20: bye", "20: end"]);
});

Deno.test("readLine() runs the same over memory streams 20 times in a row", async () => {
  const runs = new Set<string>();
  for (let i = 0; i < 20; i++) {
    const [a, b] = memoryStreamPair({ maxChunk: 3, latency: 2 });
    const log: string[] = [];
    const writer = function* (name: string): Coroutine {
      for (let j = 0; j < 3; j++) {
        yield* a.sendAll(bytes(`${name}${j}\n`));
        yield* sleep(1);
      }
    };
    const reader = function* (): Coroutine {
      const reader = new StreamReader(b);
      for (let j = 0; j < 6; j++) {
        const line = yield* reader.readLine();
        log.push(`${Loop.current.time()} ${line}`);
      }
    };
    await run(gather(writer("x"), writer("y"), reader()));
    runs.add(log.join(", "));
  }
  assertEquals([...runs], ["2 x0, 2 y0, 3 x1, 3 y1, 4 x2, 4 y2"]);
});

Deno.test("readLine() turns invalid UTF-8 into U+FFFD and keeps a byte order mark", async () => {
  const data = new Uint8Array([
    0xef,
    0xbb,
    0xbf,
    0x61,
    0x0a,
    0x62,
    0xff,
    0x63,
    0x0a,
    0xe2,
    0x82,
    0x0a,
  ]);
  const reader = new StreamReader(new ChunkSource([data]));
  assertEquals(await run(allLines(reader)), ["\ufeffa", "b\ufffdc", "\ufffd"]);
});

Deno.test("readLine() mixes ASCII and non-ASCII lines in one read", async () => {
  const lines = ["plain", "naïve", "", "日本語のテキスト", "x".repeat(100), "end"];
  const reader = new StreamReader(new ChunkSource([lines.join("\n") + "\n"], true));
  assertEquals(await run(allLines(reader)), lines);
});

Deno.test("readLine() reads many lines from few recvInto() calls into its own buffer", async () => {
  const source = new ChunkSource(["a\nb\nc\n".repeat(1000)], true);
  const reader = new StreamReader(source);
  const lines = await run(allLines(reader));
  assertEquals(lines.length, 3000);
  assertEquals(lines.slice(0, 4), ["a", "b", "c", "a"]);
  // The buffer empties with the last line, so the next read has all of it again.
  assertEquals(source.calls, ["recvInto(16384)", "recvInto(16384)"]);
});

Deno.test("readLine() falls back to recv() when the source has no recvInto()", async () => {
  const source = new ChunkSource(["one\n", "two\n"]);
  assertEquals(await run(allLines(new StreamReader(source))), ["one", "two"]);
  assertEquals(source.calls, ["recv(16384)", "recv(16384)", "recv(16384)"]);
});

Deno.test("readLine() reads a line longer than its first buffer", async () => {
  const long = "y".repeat(200_000);
  const [a, b] = memoryStreamPair({ maxChunk: 50_000 });
  const reader = new StreamReader(b, { limit: 1 << 20 });
  const lines = await run(function* () {
    yield* a.sendAll(bytes(`${long}\nshort\n`));
    yield* a.shutdown();
    return yield* allLines(reader);
  }());
  assertEquals(lines.map((line) => line.length), [200_000, 5]);
  assertStrictEquals(lines[0], long);
});

// ---------------------------------------------------------------------------
// The limit

Deno.test("readLine() accepts a line of exactly limit bytes and overruns at limit + 1, losing nothing", async () => {
  const reader = new StreamReader(new ChunkSource(["12345678\r\n", "1234567890\nnext\n"]), {
    limit: 9,
  });
  const log = await run(function* () {
    const log: unknown[] = [];
    log.push(yield* reader.readLine()); // 8 bytes + \r: 9 before the \n
    try {
      yield* reader.readLine();
    } catch (error) {
      assertInstanceOf(error, LimitOverrunError);
      log.push(error.message, error.consumed, reader.buffered);
      log.push(text(yield* reader.readExactly(error.consumed + 1))); // recover: skip it
    }
    log.push(yield* reader.readLine(), yield* reader.readLine());
    return log;
  }());
  assertEquals(log, [
    "12345678",
    "StreamReader: the separator comes after 10 bytes, over the limit of 9; the bytes stay buffered",
    10,
    16,
    "1234567890\n",
    "next",
    null,
  ]);
});

Deno.test("readLine() overruns with no newline in sight, keeps every byte, and read() recovers them", async () => {
  const [a, b] = memoryStreamPair({ maxChunk: 4 });
  const reader = new StreamReader(b, { limit: 8 });
  const log = await run(function* () {
    const log: unknown[] = [];
    yield* a.sendAll(bytes("abcdefghijklmnop\nrest\n"));
    try {
      yield* reader.readLine();
    } catch (error) {
      assertInstanceOf(error, LimitOverrunError);
      log.push(error.message, error.consumed, reader.buffered);
    }
    const kept = [];
    while (reader.buffered > 0) kept.push(text(yield* reader.read(3)));
    log.push(kept.join("|"));
    log.push(yield* reader.readLine(), yield* reader.readLine());
    return log;
  }());
  assertEquals(log, [
    "StreamReader: no separator in the first 12 bytes, over the limit of 8; the bytes stay buffered",
    12,
    12,
    "abc|def|ghi|jkl",
    "mnop",
    "rest",
  ]);
});

Deno.test("readLine() overruns on a long line among short ones already decoded", async () => {
  const reader = new StreamReader(new ChunkSource(["ok\nwaytoolong\nfine\n"]), { limit: 5 });
  const log = await run(function* () {
    const log: unknown[] = [yield* reader.readLine()];
    try {
      yield* reader.readLine();
    } catch (error) {
      assertInstanceOf(error, LimitOverrunError);
      log.push(error.consumed, reader.buffered);
      yield* reader.readExactly(error.consumed + 1);
    }
    log.push(yield* reader.readLine());
    return log;
  }());
  assertEquals(log, ["ok", 10, 16, "fine"]);
});

// ---------------------------------------------------------------------------
// read(), readExactly(), readUntil()

Deno.test("readUntil() returns the bytes up to and including a separator split across reads", async () => {
  const [a, b] = memoryStreamPair({ maxChunk: 1 });
  const reader = new StreamReader(b);
  const parts = await run(function* () {
    yield* a.sendAll(bytes("HEAD / HTTP/1.1\r\nHost: x\r\n\r\nbody"));
    yield* a.shutdown();
    const head = text(yield* reader.readUntil("\r\n\r\n"));
    const sep = new Uint8Array([0x6f]);
    const until = text(yield* reader.readUntil(sep));
    return [head, until];
  }());
  assertEquals(parts, ["HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", "bo"]);
});

Deno.test("readUntil() at end of stream throws IncompleteReadError with the bytes left, consumed", async () => {
  const reader = new StreamReader(new ChunkSource(["ab", "c"]));
  const log = await run(function* () {
    const log: unknown[] = [];
    try {
      yield* reader.readUntil(";");
    } catch (error) {
      assertInstanceOf(error, IncompleteReadError);
      log.push(error.message, text(error.partial), error.expected, reader.buffered);
    }
    log.push((yield* reader.read(10)).length);
    return log;
  }());
  assertEquals(log, [
    "The stream ended after 3 bytes, before the separator",
    "abc",
    null,
    0,
    0,
  ]);
});

Deno.test("readUntil() overruns the limit and leaves the bytes buffered", async () => {
  const reader = new StreamReader(new ChunkSource(["0123456789;"]), { limit: 4 });
  const log = await run(function* () {
    const log: unknown[] = [];
    try {
      yield* reader.readUntil(";");
    } catch (error) {
      assertInstanceOf(error, LimitOverrunError);
      log.push(error.consumed);
    }
    log.push(reader.buffered, text(yield* reader.readExactly(11)));
    return log;
  }());
  assertEquals(log, [10, 11, "0123456789;"]);
});

Deno.test("readExactly() waits for as many reads as it takes; at end of stream IncompleteReadError has partial and expected", async () => {
  const reader = new StreamReader(new ChunkSource(["ab", "cd", "e"], true));
  const log = await run(function* () {
    const log: unknown[] = [
      text(yield* reader.readExactly(3)),
      (yield* reader.readExactly(0)).length,
    ];
    try {
      yield* reader.readExactly(5);
    } catch (error) {
      assertInstanceOf(error, IncompleteReadError);
      log.push(error.message, text(error.partial), error.expected);
    }
    return log;
  }());
  assertEquals(log, ["abc", 0, "The stream ended after 2 bytes, before 5 bytes", "de", 5]);
});

Deno.test("readExactly() reads more than a buffer holds", async () => {
  const data = new Uint8Array(100_000).map((_, i) => i % 251);
  const [a, b] = memoryStreamPair({ maxChunk: 7_000 });
  const got = await run(function* () {
    yield* a.sendAll(data);
    return yield* new StreamReader(b).readExactly(100_000);
  }());
  assertEquals(got, data);
});

Deno.test("read() returns what is buffered first, up to n, then what one read brings, then empty", async () => {
  const source = new ChunkSource(["line\nabcdef", "gh"]);
  const reader = new StreamReader(source);
  const got = await run(function* () {
    const got: unknown[] = [yield* reader.readLine()];
    got.push(
      text(yield* reader.read(4)),
      text(yield* reader.read(10)),
      text(yield* reader.read(10)),
    );
    got.push((yield* reader.read(10)).length, (yield* reader.read(10)).length);
    return got;
  }());
  assertEquals(got, ["line", "abcd", "ef", "gh", 0, 0]);
  assertEquals(source.calls, ["recv(16384)", "recv(16384)", "recv(16384)"]);
});

Deno.test("the read methods mix freely: readLine, then readExactly, then readLine again", async () => {
  const reader = new StreamReader(new ChunkSource(["first\nsecond\nthird\n"], true));
  const got = await run(function* () {
    return [
      yield* reader.readLine(),
      text(yield* reader.readExactly(3)),
      yield* reader.readLine(),
      text(yield* reader.readUntil("r")),
      yield* reader.readLine(),
      yield* reader.readLine(),
    ];
  }());
  assertEquals(got, ["first", "sec", "ond", "thir", "d", null]);
});

Deno.test("read(), readExactly() and readUntil() return copies the reader never writes again", async () => {
  const reader = new StreamReader(new ChunkSource(["abc;", "xyz;"], true));
  const [first, second] = await run(function* () {
    const first = yield* reader.readUntil(";");
    const second = yield* reader.readUntil(";");
    return [first, second];
  }());
  assertEquals([text(first), text(second)], ["abc;", "xyz;"]);
  assertEquals(first.byteOffset, 0);
  assertEquals(first.buffer.byteLength, 4);
});

Deno.test("a source that returns a bad count or bad bytes gets a TypeError", async () => {
  const badCount: ByteSource = {
    *recv() {
      yield;
      return new Uint8Array(0);
    },
    *recvInto() {
      yield;
      return 1e9;
    },
  };
  await assertRejects(
    () => run(new StreamReader(badCount).readLine()),
    TypeError,
    "StreamReader.readLine(): the source's recvInto() returned 1000000000, not a count from 0 to 16384",
  );
  const badBytes: ByteSource = {
    *recv() {
      yield;
      return "text" as never;
    },
  };
  await assertRejects(
    () => run(new StreamReader(badBytes).read(4)),
    TypeError,
    `StreamReader.read(): the source's recv(16384) returned "text", not a Uint8Array of at most 16384 bytes`,
  );
});

// ---------------------------------------------------------------------------
// Concurrency and cancellation

Deno.test("a second task reading from a reader that is waiting gets an Error", async () => {
  const [, b] = memoryStreamPair();
  const reader = new StreamReader(b);
  const loop = new Loop({ virtualTime: true });
  const first = loop.addTask(reader.readLine());
  const second = loop.addTask(function* () {
    try {
      yield* reader.readExactly(2);
    } catch (error) {
      first.cancel();
      return (error as Error).message;
    }
  }());
  await loop.run();
  assert(first.cancelled);
  assertEquals(
    second.result(),
    "StreamReader.readExactly(): another task is already reading from this reader; only one may",
  );
});

Deno.test("a readLine() cancelled while it waits loses nothing: the next one gets the whole line", async () => {
  const [a, b] = memoryStreamPair({ maxChunk: 2 });
  const reader = new StreamReader(b);
  const log: string[] = [];
  const loop = new Loop({ virtualTime: true });
  const waiting = loop.addTask(function* () {
    try {
      yield* reader.readLine();
    } catch (error) {
      log.push(`${Loop.current.time()}: ${(error as Error).name}, ${reader.buffered} buffered`);
      throw error;
    }
  }());
  loop.addTask(function* () {
    yield* a.sendAll(bytes("hel"));
    yield* sleep(10);
    waiting.cancel();
    yield* sleep(10);
    yield* a.sendAll(bytes("lo\n"));
    log.push(`${Loop.current.time()}: ${yield* reader.readLine()}`);
  }());
  await loop.run();
  assertEquals(log, ["10: CancelledError, 3 buffered", "20: hello"]);
});

Deno.test("cancelling each kind of read while it waits leaves the reader usable", async () => {
  const kinds: [string, (reader: StreamReader) => Awaitable<unknown>][] = [
    ["read", (reader) => reader.read(4)],
    ["readExactly", (reader) => reader.readExactly(4)],
    ["readUntil", (reader) => reader.readUntil("!")],
    ["readLine", (reader) => reader.readLine()],
  ];
  for (const [name, start] of kinds) {
    const [a, b] = memoryStreamPair({ latency: 5 });
    const reader = new StreamReader(b);
    const loop = new Loop({ virtualTime: true });
    const task: Task<unknown> = loop.addTask(start(reader));
    const after = loop.addTask(function* () {
      yield* a.sendAll(bytes("ab"));
      yield* sleep(7); // the bytes have arrived; the waiting task took them in
      task.cancel();
      yield* interrupt();
      yield* a.sendAll(bytes("cd!\n"));
      return text(yield* reader.readUntil("\n"));
    }());
    await loop.run();
    const want = name === "read" ? "cd!\n" : "abcd!\n";
    if (name === "read") {
      assertEquals(task.result(), bytes("ab"), name); // read() returned before the cancel
    } else {
      assert(task.cancelled, name);
    }
    assertEquals(after.result(), want, name);
  }
});

// ---------------------------------------------------------------------------
// StreamWriter

/** A sink that records each call, taking `ms` of loop time per sendAll. */
class RecordingSink implements ByteSink {
  readonly log: string[] = [];
  readonly sent: Uint8Array[] = [];
  constructor(readonly ms = 0) {}
  *sendAll(bytes: Uint8Array): Coroutine<void> {
    this.log.push(`sendAll(${bytes.length}) at ${Loop.current.time()}`);
    if (this.ms > 0) yield* sleep(this.ms);
    this.sent.push(bytes.slice());
  }
  // deno-lint-ignore require-yield -- a fake sink that answers at once
  *shutdown(): Coroutine<void> {
    this.log.push(`shutdown() at ${Loop.current.time()}`);
  }
}

Deno.test("10,000 small writes and one drain make one sink write", async () => {
  const sink = new RecordingSink();
  const writer = new StreamWriter(sink);
  const expected: string[] = [];
  for (let i = 0; i < 10_000; i++) {
    const line = i % 7 === 0 ? `ligne ${i} é\n` : `line ${i}\n`;
    expected.push(line);
    writer.write(i % 2 === 0 ? line : bytes(line));
  }
  const total = bytes(expected.join("")).length;
  assertEquals(writer.buffered, total);
  await run(writer.drain());
  assertEquals(sink.log, [`sendAll(${total}) at 0`]);
  assertEquals(text(sink.sent[0]!), expected.join(""));
  assertEquals(writer.buffered, 0);
});

Deno.test("write() returns false from highWaterMark on, and still buffers", () => {
  const writer = new StreamWriter(new RecordingSink(), { highWaterMark: 8 });
  assertEquals(writer.highWaterMark, 8);
  assertEquals([writer.write("abcd"), writer.write("efg"), writer.write("h"), writer.write("ij")], [
    true,
    true,
    false,
    false,
  ]);
  assertEquals(writer.buffered, 10);
  assertEquals(new StreamWriter(new RecordingSink()).highWaterMark, 65536);
});

Deno.test("write() encodes strings as UTF-8, short or long, ASCII or not", async () => {
  const sink = new RecordingSink();
  const writer = new StreamWriter(sink);
  const parts = [
    "a",
    "é",
    "日本",
    "😀",
    "x".repeat(63) + "é",
    "y".repeat(65) + "ü",
    "z".repeat(100),
  ];
  for (const part of parts) writer.write(part);
  await run(writer.drain());
  assertEquals(text(sink.sent[0]!), parts.join(""));
  assertEquals(sink.sent[0]!.length, bytes(parts.join("")).length);
});

Deno.test("write() copies: changing the caller's bytes afterwards changes nothing sent", async () => {
  const sink = new RecordingSink();
  const writer = new StreamWriter(sink);
  const data = bytes("abc");
  writer.write(data);
  data.fill(0);
  await run(writer.drain());
  assertEquals(text(sink.sent[0]!), "abc");
});

Deno.test("writes made during a drain go to the next drain; concurrent drains run in order", async () => {
  const sink = new RecordingSink(10);
  const writer = new StreamWriter(sink);
  const log: string[] = [];
  function* first(): Coroutine {
    writer.write("one");
    yield* writer.drain();
    log.push(`first drained at ${Loop.current.time()}`);
  }
  function* second(): Coroutine {
    writer.write("two"); // while the first drain is under way
    log.push(`second wrote, ${writer.buffered} buffered`);
    yield* writer.drain();
    log.push(`second drained at ${Loop.current.time()}`);
  }
  function* third(): Coroutine {
    yield* writer.drain(); // nothing of its own: waits behind the others
    log.push(`third drained at ${Loop.current.time()}, ${writer.buffered} buffered`);
  }
  await run(gather(first(), second(), third()));
  assertEquals(sink.log, ["sendAll(3) at 0", "sendAll(3) at 10"]);
  assertEquals(sink.sent.map(text), ["one", "two"]);
  assertEquals(log, [
    "second wrote, 3 buffered",
    "first drained at 10",
    "second drained at 20",
    "third drained at 20, 0 buffered",
  ]);
});

Deno.test("drain() with nothing buffered returns at once", async () => {
  const sink = new RecordingSink();
  await run(new StreamWriter(sink).drain());
  assertEquals(sink.log, []);
});

Deno.test("close() drains, then shuts down; later writes throw; a second close() only drains", async () => {
  const sink = new RecordingSink(5);
  const writer = new StreamWriter(sink);
  writer.write("bye");
  await run(function* () {
    yield* writer.close();
    yield* writer.close();
  }());
  assertEquals(sink.log, ["sendAll(3) at 0", "shutdown() at 5"]);
  assertThrows(() => writer.write("more"), Error, "StreamWriter.write(data): the writer is closed");
});

Deno.test("a cancelled drain drops what it was sending, and the writer goes on", async () => {
  const sink = new RecordingSink(10);
  const writer = new StreamWriter(sink);
  const loop = new Loop({ virtualTime: true });
  writer.write("lost");
  const draining = loop.addTask(writer.drain());
  loop.addTask(function* () {
    yield* sleep(5);
    draining.cancel();
    writer.write("kept");
    yield* writer.drain();
  }());
  await loop.run();
  assert(draining.cancelled);
  assertEquals(sink.log, ["sendAll(4) at 0", "sendAll(4) at 5"]);
  assertEquals(sink.sent.map(text), ["kept"]);
});

Deno.test("drain() over a memory stream with bufferSize parks until the reader makes room", async () => {
  const [a, b] = memoryStreamPair({ bufferSize: 10 });
  const writer = new StreamWriter(a);
  const log: string[] = [];
  function* write(): Coroutine {
    for (let i = 0; i < 5; i++) writer.write(`msg${i}\n`);
    yield* writer.drain();
    log.push(`drained at ${Loop.current.time()}`);
    yield* writer.close();
  }
  function* read(): Coroutine {
    const reader = new StreamReader(b);
    for (let line; (line = yield* reader.readLine()) !== null;) {
      log.push(`${line} at ${Loop.current.time()}`);
      yield* sleep(10);
    }
  }
  await run(gather(write(), read()));
  assertEquals(log, [
    "msg0 at 0",
    "msg1 at 10", // from the 10 bytes read at 0
    "msg2 at 20", // this read made room for the last 5 bytes
    "drained at 20",
    "msg3 at 30",
    "msg4 at 40",
  ]);
});

// ---------------------------------------------------------------------------
// forEach

Deno.test("forEach() over an async generator takes each item after the body's previous run", async () => {
  const log: string[] = [];
  async function* numbers(): AsyncGenerator<number> {
    for (let i = 1; i <= 3; i++) {
      log.push(`yield ${i}`);
      yield i;
    }
    log.push("generator done");
  }
  await run(forEach(numbers(), function* (n) {
    log.push(`body ${n} at ${Loop.current.time()}`);
    yield* sleep(10);
  }));
  assertEquals(log, [
    "yield 1",
    "body 1 at 0",
    "yield 2",
    "body 2 at 10",
    "yield 3",
    "body 3 at 20",
    "generator done",
  ]);
});

Deno.test("forEach() waits on a body that returns a promise, and ignores other return values", async () => {
  const log: string[] = [];
  async function* letters(): AsyncGenerator<string> {
    yield* ["a", "b"];
  }
  await run(forEach(letters(), async (s) => {
    log.push(`start ${s}`);
    await Promise.resolve();
    log.push(`end ${s}`);
  }));
  await run(forEach(letters(), (s) => log.push(s) as never));
  assertEquals(log, ["start a", "end a", "start b", "end b", "a", "b"]);
});

Deno.test("forEach() closes the async generator when the body throws, before the error goes on", async () => {
  const log: string[] = [];
  async function* numbers(): AsyncGenerator<number> {
    try {
      for (let i = 1;; i++) yield i;
    } finally {
      log.push("generator closed");
    }
  }
  const error = await assertRejects(() =>
    run(function* () {
      try {
        yield* forEach(numbers(), (n) => {
          log.push(`body ${n}`);
          if (n === 2) throw new Error("boom");
        });
      } finally {
        log.push("forEach ended");
      }
    }())
  );
  assertEquals((error as Error).message, "boom");
  assertEquals(log, ["body 1", "body 2", "generator closed", "forEach ended"]);
});

Deno.test("forEach() cancelled in the body closes the generator before the task ends", async () => {
  const log: string[] = [];
  async function* numbers(): AsyncGenerator<number> {
    try {
      for (let i = 1;; i++) yield i;
    } finally {
      log.push("generator closed");
    }
  }
  const loop = new Loop({ virtualTime: true });
  const task = loop.addTask(function* () {
    try {
      yield* forEach(numbers(), function* (n) {
        log.push(`body ${n}`);
        yield* sleep(100);
      });
    } finally {
      log.push("forEach ended");
    }
  }());
  loop.addTask(function* () {
    yield* sleep(150);
    task.cancel();
  }());
  await loop.run();
  assert(task.cancelled);
  assertEquals(log, ["body 1", "body 2", "generator closed", "forEach ended"]);
});

Deno.test("forEach() cancelled while next() is pending calls return() and consumes the pending promise", async () => {
  const log: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  let closed!: () => void;
  const generatorClosed = new Promise<void>((resolve) => closed = resolve);
  async function* slow(): AsyncGenerator<number> {
    try {
      yield 1;
      await gate;
      log.push("gate opened");
      yield 2;
    } finally {
      log.push("generator closed");
      closed();
    }
  }
  const started = new Event();
  const loop = new Loop({ virtualTime: true });
  const task = loop.addTask(forEach(slow(), (n) => {
    log.push(`body ${n}`);
    started.set();
  }));
  loop.addTask(function* () {
    yield* started.wait(); // the forEach task is parked in next() by now
    task.cancel();
  }());
  await loop.run();
  assert(task.cancelled);
  log.push("loop done");
  release();
  await generatorClosed;
  // return() ran behind the pending next(): item 2 went nowhere.
  assertEquals(log, ["body 1", "loop done", "gate opened", "generator closed"]);
});

Deno.test("forEach() over a ReadableStream cancels it, with the error, when the body throws", async () => {
  const log: string[] = [];
  let n = 0;
  const stream = new ReadableStream<number>({
    pull(controller) {
      controller.enqueue(++n);
    },
    cancel(reason) {
      log.push(`cancelled: ${reason.message}`);
    },
  });
  const error = await assertRejects(() =>
    run(forEach(stream, (item) => {
      log.push(`body ${item}`);
      if (item === 3) throw new Error("enough");
    }))
  );
  assertEquals((error as Error).message, "enough");
  assertEquals(log, ["body 1", "body 2", "body 3", "cancelled: enough"]);
  assertEquals(stream.locked, false);
});

Deno.test("forEach() cancelled while a ReadableStream read is pending cancels the stream, ending the read", async () => {
  const log: string[] = [];
  const stream = new ReadableStream<string>({
    start(controller) {
      controller.enqueue("first");
    },
    pull() {
      return new Promise(() => {}); // never brings more
    },
    cancel(reason) {
      log.push(`cancelled: ${reason.name}`);
    },
  });
  const started = new Event();
  const loop = new Loop({ virtualTime: true });
  const task = loop.addTask(forEach(stream, (s) => {
    log.push(`body ${s}`);
    started.set();
  }));
  loop.addTask(function* () {
    yield* started.wait(); // the forEach task is parked in read() by now
    task.cancel();
  }());
  await loop.run();
  assert(task.cancelled);
  assertEquals(log, ["body first", "cancelled: CancelledError"]);
  assertEquals(stream.locked, false);
});

Deno.test("forEach() over a ReadableStream that errors throws its error and does not cancel it", async () => {
  const log: string[] = [];
  const stream = new ReadableStream<number>({
    start(controller) {
      controller.enqueue(1);
      controller.error(new Error("source failed"));
    },
    cancel() {
      log.push("cancelled");
    },
  });
  await assertRejects(
    () => run(forEach(stream, (n) => void log.push(`body ${n}`))),
    Error,
    "source failed",
  );
  assertEquals(log, []); // the error came before the item was read: a stream's error drops its queue
});

Deno.test("forEach() over an async iterator whose next() fails does not call return()", async () => {
  const log: string[] = [];
  const source: AsyncIterable<number> = {
    [Symbol.asyncIterator]: () => ({
      next: () => Promise.reject(new Error("no more")),
      return: () => {
        log.push("return()");
        return Promise.resolve({ done: true, value: undefined });
      },
    }),
  };
  await assertRejects(() => run(forEach(source, () => {})), Error, "no more");
  assertEquals(log, []);
});

Deno.test("forEach() over a Queue ends when it is closed and drained, and leaves it closed", async () => {
  const queue = new Queue<number>(2);
  const log: string[] = [];
  function* produce(): Coroutine {
    for (let i = 1; i <= 3; i++) {
      yield* queue.put(i);
      log.push(`put ${i}`);
    }
    yield* sleep(10);
    queue.close();
    log.push("closed");
  }
  function* consume(): Coroutine {
    yield* forEach(queue, function* (n) {
      log.push(`body ${n} at ${Loop.current.time()}`);
      yield* sleep(1);
    });
    log.push(`forEach done at ${Loop.current.time()}`);
  }
  await run(gather(consume(), produce()));
  assertEquals(log, [
    "put 1",
    "put 2",
    "put 3", // 1 went straight to the parked consumer: 2 and 3 fit in the queue
    "body 1 at 0",
    "body 2 at 1",
    "body 3 at 2",
    "closed",
    "forEach done at 10",
  ]);
  assert(queue.closed);
});

Deno.test("forEach() over a Queue passes a body error on and leaves the queue open", async () => {
  const queue = new Queue<string>();
  await assertRejects(
    () =>
      run(function* () {
        yield* queue.put("bad");
        yield* forEach(queue, (s) => {
          throw new Error(s);
        });
      }()),
    Error,
    "bad",
  );
  assertEquals(queue.closed, false);
});

Deno.test("forEach() cancelled while it waits on a Queue ends cancelled, taking no item", async () => {
  const queue = new Queue<number>();
  const loop = new Loop({ virtualTime: true });
  const seen: number[] = [];
  const task = loop.addTask(forEach(queue, (n) => void seen.push(n)));
  loop.addTask(function* () {
    yield* sleep(5);
    task.cancel();
    yield* queue.put(1);
  }());
  await loop.run();
  assertInstanceOf(assertThrows(() => task.result()), CancelledError);
  assertEquals([seen, queue.size], [[], 1]);
});

// ---------------------------------------------------------------------------
// Over a real socket

Deno.test("StreamReader and StreamWriter over AIOSocket on loopback carry 20,000 lines", async () => {
  function* main(): Coroutine<[number, string | null]> {
    using server = aiosocket();
    yield* server.bind({ hostname: "127.0.0.1", port: 0 });
    yield* server.listen();
    using client = aiosocket();
    const [conn] = yield* gather(server.accept(), client.connect(server.localAddr));
    using _conn = conn;
    function* write(): Coroutine {
      const writer = new StreamWriter(conn);
      for (let i = 0; i < 20_000; i++) {
        if (!writer.write(`line ${i} ${"é".repeat(i % 5)}\r\n`)) yield* writer.drain();
      }
      yield* writer.close();
    }
    function* read(): Coroutine<[number, string | null]> {
      const reader = new StreamReader(client, { limit: 64 });
      let count = 0;
      let last: string | null = null;
      for (let line; (line = yield* reader.readLine()) !== null; count++) {
        if (line !== `line ${count} ${"é".repeat(count % 5)}`) throw new Error(`bad line ${line}`);
        last = line;
      }
      return [count, last];
    }
    const [, result] = yield* gather(write(), read());
    return result;
  }
  assertEquals(await new Loop().runTask(main()), [20_000, "line 19999 éééé"]);
});

Deno.test("forEach() treats an Array, a Map or a Set returned by the body as a value", async () => {
  const seen = new Set<number>();
  const all: number[] = [];
  const byKey = new Map<number, number>();
  async function* numbers(): AsyncGenerator<number> {
    yield* [1, 2];
  }
  await run(forEach(numbers(), (n) => seen.add(n)));
  await run(forEach(numbers(), (n) => byKey.set(n, n * 10)));
  await run(forEach(numbers(), (n) => all.concat(n)));
  assertEquals([[...seen], [...byKey.values()]], [[1, 2], [10, 20]]);
});

Deno.test("a close() whose drain failed drains and shuts down when called again", async () => {
  const log: string[] = [];
  let fail = true;
  const sink: ByteSink = {
    *sendAll(data: Uint8Array) {
      yield;
      log.push(`sendAll(${text(data)})`);
      if (fail) throw new Error("busy");
    },
    *shutdown() {
      yield;
      log.push("shutdown()");
    },
  };
  const writer = new StreamWriter(sink);
  writer.write("a");
  await run(function* () {
    try {
      yield* writer.close();
    } catch (error) {
      log.push((error as Error).message);
    }
    fail = false;
    yield* writer.close();
    yield* writer.close();
  }());
  assertEquals(log, ["sendAll(a)", "busy", "shutdown()"]);
});
