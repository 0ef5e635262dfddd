// Copyright 2026 the boucle authors. MIT license.
/**
 * Streams over sockets and anything shaped like one: `StreamReader` (lines,
 * exact sizes, separators, with a limit), `StreamWriter` (buffered writes, one
 * `drain()` for many of them), and `forEach` over async iterables,
 * `ReadableStream`s and queues. `ByteSource`, `ByteSink` and `ByteStream` name
 * what a reader, a writer and a protocol handler need: `AIOSocket` and the
 * memory streams of `@boucle/boucle/testing` both fit.
 *
 * Decisions where the design leaves room:
 * - The reader owns one buffer (16 KiB, growing to what a call needs) and
 *   reads into it with the source's `recvInto()` when there is one, else
 *   copies what `recv()` returns. `read`, `readExactly` and `readUntil`
 *   return copies: the buffer is used again.
 * - `readLine()` decodes and splits every complete line in the buffer at
 *   once and hands them out, so a line costs one string. It returns a
 *   one-shot Awaitable, not a generator (as `sleep()` does): a line already
 *   at hand then costs ~15 ns instead of a generator's ~120 ns. Decoding is UTF-8
 *   with U+FFFD for invalid bytes, and a byte order mark is kept, not
 *   stripped (the reader cannot tell a stream's start from a line's). A
 *   last line without a newline is returned as is; a lone `\r` before the
 *   end of stream stays part of it.
 * - `limit` bounds the bytes before a separator (asyncio's rule): a line of
 *   exactly `limit` bytes plus its newline is fine. Past it, a
 *   `LimitOverrunError` says how many bytes hold no separator (`consumed`)
 *   and leaves every byte buffered, so a caller can `readExactly(consumed)`
 *   them away and go on.
 * - At end of stream, `readUntil` throws an `IncompleteReadError` whose
 *   `partial` holds the bytes left (consumed, as in asyncio) and whose
 *   `expected` is `null`; `readExactly` throws one with the bytes it got.
 * - Only one task may wait in a reader at a time (a second gets an `Error`),
 *   as with `AIOSocket.recv()`. A cancelled read loses nothing: the bytes it
 *   was waiting for go to the next call.
 * - `StreamWriter.write()` returns `buffered < highWaterMark` (Node's
 *   convention: `false` means "drain now"); it never waits. `drain()` hands
 *   the whole buffer to one `sendAll()` and writes meanwhile go to a second
 *   buffer, so nothing is copied twice; concurrent drains go one after the
 *   other, in order. A drain that fails or is cancelled drops what it was
 *   sending (the peer got a prefix of it, as `sendAll` promises).
 * - `forEach` waits on a body that returns a promise too, and ignores any
 *   other value it returns (an Array, a Map or a Set is a value, not an
 *   Awaitable, so `(x) => seen.add(x)` works). When it ends early
 *   (body error, cancellation) it waits for the iterator's `return()` or the
 *   stream's `cancel()` to finish, except for an async iterator whose
 *   `next()` is still pending: its `return()` would queue behind that
 *   `next()`, so it is called and not waited for. A source whose `next()`
 *   or `read()` fails is not closed again (as `for await` does). A `Queue`
 *   is left open.
 *
 * @example A line protocol over a memory stream
 * ```ts
 * import { gather, Loop } from "@boucle/boucle";
 * import { StreamReader, StreamWriter } from "@boucle/boucle/stream";
 * import { memoryStreamPair } from "@boucle/boucle/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const [client, server] = memoryStreamPair({ maxChunk: 3 });
 * function* serve() {
 *   const reader = new StreamReader(server);
 *   const writer = new StreamWriter(server);
 *   for (let line; (line = yield* reader.readLine()) !== null;) {
 *     writer.write(line.toUpperCase() + "\n");
 *     yield* writer.drain();
 *   }
 *   yield* writer.close();
 * }
 * function* ask() {
 *   const writer = new StreamWriter(client);
 *   writer.write("hello\r\nworld\n");
 *   yield* writer.close();
 *   const reader = new StreamReader(client);
 *   const lines = [];
 *   for (let line; (line = yield* reader.readLine()) !== null;) lines.push(line);
 *   return lines;
 * }
 * const [, lines] = await new Loop({ virtualTime: true }).runTask(gather(serve(), ask()));
 * assertEquals(lines, ["HELLO", "WORLD"]);
 * ```
 *
 * @module
 */

import { type Awaitable, CancelledError, type Coroutine, WaitQueue } from "./_kernel.ts";
import { fromPromise } from "./loop.ts";
import { Queue, QueueClosedError } from "./sync.ts";
import { checkCount, show } from "./_validate.ts";

/**
 * What a `StreamReader` reads from: `recv(bufsize)` returns up to `bufsize`
 * bytes, empty at end of stream; `recvInto(buffer)`, when present, reads into
 * `buffer` from its start and returns the count, `0` at end of stream.
 * `AIOSocket` and the memory streams are sources.
 *
 * @example A source made of a fixed list of chunks
 * ```ts
 * import { type ByteSource, StreamReader } from "@boucle/boucle/stream";
 * import { Loop } from "@boucle/boucle";
 * import { assertEquals } from "@std/assert";
 *
 * const chunks = [new TextEncoder().encode("a\nb")];
 * const source: ByteSource = {
 *   *recv(bufsize: number) {
 *     return chunks.shift()?.subarray(0, bufsize) ?? new Uint8Array(0);
 *   },
 * };
 * const reader = new StreamReader(source);
 * function* main() {
 *   return [yield* reader.readLine(), yield* reader.readLine(), yield* reader.readLine()];
 * }
 * assertEquals(await new Loop().runTask(main()), ["a", "b", null]);
 * ```
 */
export interface ByteSource {
  /**
   * Receives up to `bufsize` bytes; an empty array at end of stream.
   *
   * @param bufsize The most bytes to return.
   */
  recv(bufsize: number): Awaitable<Uint8Array>;
  /**
   * Receives into `buffer` from its start; returns the count, `0` at end of
   * stream.
   *
   * @param buffer Where the bytes go.
   */
  recvInto?(buffer: Uint8Array): Awaitable<number>;
}

/**
 * What a `StreamWriter` writes to: `sendAll(bytes)` sends every byte, and
 * `shutdown()` ends the sending side. After `sendAll` ends, the sink must
 * not read `bytes` again (the writer reuses them).
 *
 * @example A sink that collects what it is sent
 * ```ts
 * import { type ByteSink, StreamWriter } from "@boucle/boucle/stream";
 * import { Loop } from "@boucle/boucle";
 * import { assertEquals } from "@std/assert";
 *
 * const sent: string[] = [];
 * const sink: ByteSink = {
 *   *sendAll(bytes: Uint8Array) {
 *     sent.push(new TextDecoder().decode(bytes));
 *   },
 *   *shutdown() {
 *     sent.push("<end>");
 *   },
 * };
 * const writer = new StreamWriter(sink);
 * writer.write("one ");
 * writer.write("two");
 * await new Loop().runTask(writer.close());
 * assertEquals(sent, ["one two", "<end>"]);
 * ```
 */
export interface ByteSink {
  /**
   * Sends every byte of `bytes`.
   *
   * @param bytes The bytes to send.
   */
  sendAll(bytes: Uint8Array): Awaitable<void>;
  /** Ends the sending side: the peer reads end of stream. */
  shutdown(): Awaitable<void>;
}

/**
 * A connected byte stream: the stream methods of `AIOSocket`, which the
 * memory streams of `@boucle/boucle/testing` have too. Type a protocol
 * handler against it and it runs over a socket in production and over a
 * memory stream in its tests.
 *
 * @example A handler typed against ByteStream, run over a memory stream
 * ```ts
 * import { type Coroutine, gather, Loop } from "@boucle/boucle";
 * import { type ByteStream } from "@boucle/boucle/stream";
 * import { memoryStreamPair } from "@boucle/boucle/testing";
 * import { assertEquals } from "@std/assert";
 *
 * function* echoOnce(conn: ByteStream): Coroutine<void> {
 *   yield* conn.sendAll(yield* conn.recv(1024));
 *   yield* conn.shutdown();
 * }
 * const [a, b] = memoryStreamPair();
 * function* client() {
 *   yield* a.sendAll(new Uint8Array([1, 2, 3]));
 *   return yield* a.recv(1024);
 * }
 * const [, echoed] = await new Loop().runTask(gather(echoOnce(b), client()));
 * assertEquals(echoed, new Uint8Array([1, 2, 3]));
 * ```
 */
export interface ByteStream extends ByteSource, ByteSink {
  /**
   * Receives up to `bufsize` bytes; an empty array at end of stream.
   *
   * @param bufsize The most bytes to return: an integer >= 1.
   */
  recv(bufsize: number): Coroutine<Uint8Array>;
  /**
   * Receives into `buffer` from its start; returns the count, `0` at end of
   * stream.
   *
   * @param buffer Where the bytes go.
   */
  recvInto(buffer: Uint8Array): Coroutine<number>;
  /**
   * Sends once; returns how many bytes were taken, maybe fewer than given.
   *
   * @param bytes The bytes to send.
   */
  send(bytes: Uint8Array): Coroutine<number>;
  /**
   * Sends every byte of `bytes`.
   *
   * @param bytes The bytes to send.
   */
  sendAll(bytes: Uint8Array): Coroutine<void>;
  /** Half-closes: no more sends; the peer reads end of stream. */
  shutdown(): Coroutine<void>;
  /** Closes the stream; parked tasks wake with an `Error`. */
  close(): void;
  /** Parks until a `recv()` would not wait. */
  waitReadable(): Coroutine<void>;
  /** Parks until a `send()` would not wait. */
  waitWritable(): Coroutine<void>;
}

/**
 * Thrown by `StreamReader.readExactly()` and `readUntil()` when the stream
 * ends first. `partial` holds the bytes read (they are consumed).
 *
 * @example Usage
 * ```ts
 * import { Loop } from "@boucle/boucle";
 * import { IncompleteReadError, StreamReader } from "@boucle/boucle/stream";
 * import { memoryStreamPair } from "@boucle/boucle/testing";
 * import { assertEquals, assertInstanceOf } from "@std/assert";
 *
 * const [a, b] = memoryStreamPair();
 * function* main() {
 *   yield* a.sendAll(new Uint8Array([1, 2]));
 *   yield* a.shutdown();
 *   try {
 *     yield* new StreamReader(b).readExactly(4);
 *   } catch (error) {
 *     assertInstanceOf(error, IncompleteReadError);
 *     return [error.partial, error.expected];
 *   }
 * }
 * assertEquals(await new Loop().runTask(main()), [new Uint8Array([1, 2]), 4]);
 * ```
 */
export class IncompleteReadError extends Error {
  /** The bytes read before the end of stream. */
  readonly partial: Uint8Array;
  /** How many bytes were asked for; `null` for `readUntil()`. */
  readonly expected: number | null;

  /**
   * Makes the error.
   *
   * @param partial The bytes read before the end of stream.
   * @param expected How many bytes were asked for, or `null`.
   */
  constructor(partial: Uint8Array, expected: number | null) {
    super(
      `The stream ended after ${partial.length} bytes, before ${
        expected === null ? "the separator" : `${expected} bytes`
      }`,
    );
    this.name = "IncompleteReadError";
    this.partial = partial;
    this.expected = expected;
  }
}

/**
 * Thrown by `StreamReader.readUntil()` and `readLine()` when more than the
 * reader's `limit` bytes come before the separator. Nothing is consumed: the
 * bytes stay buffered, and `consumed` says how many of them hold no
 * separator, so `readExactly(consumed)` skips them.
 *
 * @example Skip an overlong line and read on
 * ```ts
 * import { Loop } from "@boucle/boucle";
 * import { LimitOverrunError, StreamReader } from "@boucle/boucle/stream";
 * import { memoryStreamPair } from "@boucle/boucle/testing";
 * import { assertEquals, assertInstanceOf } from "@std/assert";
 *
 * const [a, b] = memoryStreamPair();
 * const reader = new StreamReader(b, { limit: 4 });
 * function* main() {
 *   yield* a.sendAll(new TextEncoder().encode("too long\nok\n"));
 *   try {
 *     yield* reader.readLine();
 *   } catch (error) {
 *     assertInstanceOf(error, LimitOverrunError);
 *     assertEquals(reader.buffered, 12); // nothing lost
 *     yield* reader.readExactly(error.consumed + 1); // skip "too long\n"
 *   }
 *   return yield* reader.readLine();
 * }
 * assertEquals(await new Loop().runTask(main()), "ok");
 * ```
 */
export class LimitOverrunError extends Error {
  /** Buffered bytes known to hold no separator (from the first buffered byte). */
  readonly consumed: number;

  /**
   * Makes the error.
   *
   * @param message What overran.
   * @param consumed Buffered bytes known to hold no separator.
   */
  constructor(message: string, consumed: number) {
    super(message);
    this.name = "LimitOverrunError";
    this.consumed = consumed;
  }
}

/** Options for `new StreamReader()`. */
export interface StreamReaderOptions {
  /**
   * The most bytes `readUntil()` and `readLine()` accept before the
   * separator: an integer >= 1.
   *
   * @default {65536}
   */
  limit?: number;
}

/** Options for `new StreamWriter()`. */
export interface StreamWriterOptions {
  /**
   * The buffered bytes from which `write()` returns `false`: time to
   * `drain()`. Writes past it still buffer.
   *
   * @default {65536}
   */
  highWaterMark?: number;
}

/** The first buffer of a reader, and the least room a read gets. */
const FIRST_BUFFER = 16 * 1024;
const MIN_READ = 4 * 1024;
/** A reader grows its buffer for bigger reads up to this while reads fill it. */
const BIG_READ = 64 * 1024;
const NEWLINE = 10;
const CR = 13;
const NO_BYTES = new Uint8Array(0);
const LINE_SEPARATOR = new Uint8Array([NEWLINE]);
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

let cachedLine: (reader: StreamReader) => string | undefined;
let readLineSlowly: (reader: StreamReader) => Coroutine<string | null>;

/**
 * Reads a byte stream in the pieces a protocol wants: `read(n)`,
 * `readExactly(n)`, `readUntil(separator)` and `readLine()`, over anything
 * with `recv` (and, better, `recvInto`): an `AIOSocket`, a memory stream, any
 * `ByteSource`. Each method is a coroutine used with `yield*`; only one task
 * may wait in a reader at a time.
 *
 * @example Read a header line, then an exact body
 * ```ts
 * import { Loop } from "@boucle/boucle";
 * import { StreamReader } from "@boucle/boucle/stream";
 * import { memoryStreamPair } from "@boucle/boucle/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const [a, b] = memoryStreamPair({ maxChunk: 2 });
 * function* main() {
 *   yield* a.sendAll(new TextEncoder().encode("LEN 3\r\nabc"));
 *   const reader = new StreamReader(b);
 *   const header = yield* reader.readLine();
 *   const body = yield* reader.readExactly(Number(header!.split(" ")[1]));
 *   return [header, new TextDecoder().decode(body)];
 * }
 * assertEquals(await new Loop().runTask(main()), ["LEN 3", "abc"]);
 * ```
 */
export class StreamReader {
  readonly #source: ByteSource;
  readonly #into: boolean;
  readonly #limit: number;
  #buf: Uint8Array = NO_BYTES;
  #start = 0;
  #end = 0;
  /** Bytes from #start already searched for the separator being looked for. */
  #scanned = 0;
  #eof = false;
  #reading = false;
  /** Whether the last read filled all the room it had (then grow, up to BIG_READ). */
  #filled = false;
  /**
   * The complete lines in the buffer from #start on, decoded and split, and
   * the next one to hand out; #ascii: one char per byte.
   */
  #lines: string[] | null = null;
  #nextLine = 0;
  #ascii = false;

  /**
   * Makes a reader over a source.
   *
   * @param source An `AIOSocket`, a memory stream, or any object with a
   * `recv(bufsize)` method (and maybe `recvInto(buffer)`).
   * @param options Set `limit` to bound a line.
   * @throws {TypeError} If `source` has no `recv` method, or `limit` is not
   * a number.
   * @throws {RangeError} If `limit` is not an integer >= 1.
   */
  constructor(source: ByteSource, options: StreamReaderOptions = {}) {
    if (
      typeof source !== "object" || source === null ||
      typeof (source as Partial<ByteSource>).recv !== "function"
    ) {
      throw new TypeError(
        `new StreamReader(source): 'source' must have a recv(bufsize) method (an AIOSocket, a memory stream, any ByteSource), received ${
          show(source)
        }${typeof source === "object" && source !== null ? " with no recv method" : ""}`,
      );
    }
    if (typeof options !== "object" || options === null) {
      throw new TypeError(
        `new StreamReader(source, options): 'options' must be an object, received ${show(options)}`,
      );
    }
    this.#source = source;
    this.#into = typeof source.recvInto === "function";
    this.#limit = checkCount(
      "new StreamReader(source, options)",
      "options.limit",
      options.limit ?? 65536,
      1,
    );
  }

  /**
   * How many bytes the reader holds, read from the source but not yet
   * returned.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { StreamReader } from "@boucle/boucle/stream";
   * import { memoryStreamPair } from "@boucle/boucle/testing";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = memoryStreamPair();
   * const reader = new StreamReader(b);
   * function* main() {
   *   yield* a.sendAll(new TextEncoder().encode("one\ntwo\n"));
   *   yield* reader.readLine();
   *   return reader.buffered;
   * }
   * assertEquals(await new Loop().runTask(main()), 4);
   * ```
   */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /**
   * The most bytes `readUntil()` and `readLine()` accept before the
   * separator.
   *
   * @example Usage
   * ```ts
   * import { StreamReader } from "@boucle/boucle/stream";
   * import { memoryStreamPair } from "@boucle/boucle/testing";
   * import { assertEquals } from "@std/assert";
   *
   * const [, b] = memoryStreamPair();
   * assertEquals(new StreamReader(b).limit, 65536);
   * assertEquals(new StreamReader(b, { limit: 80 }).limit, 80);
   * ```
   */
  get limit(): number {
    return this.#limit;
  }

  /**
   * Reads up to `n` bytes: what is buffered, or else what the next read of
   * the source brings. An empty array at end of stream.
   *
   * @param n The most bytes to return: an integer >= 1.
   * @returns A coroutine returning the bytes (a copy the caller owns).
   * @throws {TypeError} If `n` is not a number.
   * @throws {RangeError} If `n` is not an integer >= 1.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { StreamReader } from "@boucle/boucle/stream";
   * import { memoryStreamPair } from "@boucle/boucle/testing";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = memoryStreamPair();
   * function* main() {
   *   yield* a.sendAll(new Uint8Array([1, 2, 3]));
   *   yield* a.shutdown();
   *   const reader = new StreamReader(b);
   *   return [yield* reader.read(2), yield* reader.read(2), yield* reader.read(2)];
   * }
   * assertEquals(await new Loop().runTask(main()), [
   *   new Uint8Array([1, 2]),
   *   new Uint8Array([3]),
   *   new Uint8Array([]),
   * ]);
   * ```
   */
  read(n: number): Coroutine<Uint8Array> {
    checkCount("StreamReader.read(n)", "n", n, 1);
    return this.#read(n);
  }

  *#read(n: number): Coroutine<Uint8Array> {
    if (this.#end === this.#start) yield* this.#fill("read()", 1);
    return this.#take(Math.min(n, this.#end - this.#start));
  }

  /**
   * Reads exactly `n` bytes, waiting for as many reads as that takes.
   *
   * @param n How many bytes: an integer >= 0.
   * @returns A coroutine returning the bytes (a copy the caller owns).
   * @throws {TypeError} If `n` is not a number.
   * @throws {RangeError} If `n` is not an integer >= 0.
   * @throws {IncompleteReadError} If the stream ends first; its `partial`
   * holds the bytes there were.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { StreamReader } from "@boucle/boucle/stream";
   * import { memoryStreamPair } from "@boucle/boucle/testing";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = memoryStreamPair({ maxChunk: 1 });
   * function* main() {
   *   yield* a.sendAll(new Uint8Array([1, 2, 3, 4]));
   *   return yield* new StreamReader(b).readExactly(3);
   * }
   * assertEquals(await new Loop().runTask(main()), new Uint8Array([1, 2, 3]));
   * ```
   */
  readExactly(n: number): Coroutine<Uint8Array> {
    checkCount("StreamReader.readExactly(n)", "n", n, 0);
    return this.#readExactly(n);
  }

  *#readExactly(n: number): Coroutine<Uint8Array> {
    while (this.#end - this.#start < n) {
      if (!(yield* this.#fill("readExactly()", n))) {
        throw new IncompleteReadError(this.#take(this.#end - this.#start), n);
      }
    }
    return this.#take(n);
  }

  /**
   * Reads up to and including `separator`. At most `limit` bytes may come
   * before it.
   *
   * @param separator The bytes to stop after, or a string (as UTF-8); not
   * empty.
   * @returns A coroutine returning the bytes, separator included (a copy the
   * caller owns).
   * @throws {TypeError} If `separator` is neither a `Uint8Array` nor a string.
   * @throws {RangeError} If `separator` is empty.
   * @throws {LimitOverrunError} If more than `limit` bytes come before the
   * separator; they stay buffered.
   * @throws {IncompleteReadError} If the stream ends first; its `partial`
   * holds the bytes left, which are consumed.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { StreamReader } from "@boucle/boucle/stream";
   * import { memoryStreamPair } from "@boucle/boucle/testing";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = memoryStreamPair({ maxChunk: 3 });
   * function* main() {
   *   yield* a.sendAll(new TextEncoder().encode("key=value;rest"));
   *   const reader = new StreamReader(b);
   *   return new TextDecoder().decode(yield* reader.readUntil(";"));
   * }
   * assertEquals(await new Loop().runTask(main()), "key=value;");
   * ```
   */
  readUntil(separator: Uint8Array | string): Coroutine<Uint8Array> {
    let sep: Uint8Array;
    if (typeof separator === "string") {
      sep = encoder.encode(separator);
    } else if (separator instanceof Uint8Array) {
      sep = separator.slice(); // ours: the caller may change theirs
    } else {
      throw new TypeError(
        `StreamReader.readUntil(separator): 'separator' must be a Uint8Array or a string, received ${
          show(separator)
        }`,
      );
    }
    if (sep.length === 0) {
      throw new RangeError(
        `StreamReader.readUntil(separator): 'separator' must not be empty, received ${
          typeof separator === "string" ? '""' : "an empty Uint8Array"
        }`,
      );
    }
    return this.#readUntil(sep);
  }

  *#readUntil(sep: Uint8Array): Coroutine<Uint8Array> {
    const at = yield* this.#find(sep, "readUntil()");
    if (at < 0) throw new IncompleteReadError(this.#take(this.#end - this.#start), null);
    return this.#take(at + sep.length - this.#start);
  }

  /**
   * Reads a line and decodes it as UTF-8, without its `\n` or `\r\n`. A last
   * line with no newline is returned too; then `null` at end of stream. At
   * most `limit` bytes (a `\r` included) may come before the newline.
   *
   * @returns An Awaitable (a one-shot iterator: a line at hand costs no
   * generator) to use with `yield*`, returning the line, or `null` at end of
   * stream.
   * @throws {LimitOverrunError} If the line is longer than `limit` bytes; its
   * bytes stay buffered.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { StreamReader } from "@boucle/boucle/stream";
   * import { memoryStreamPair } from "@boucle/boucle/testing";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = memoryStreamPair({ maxChunk: 1 });
   * function* main() {
   *   yield* a.sendAll(new TextEncoder().encode("héllo\r\nwörld"));
   *   yield* a.shutdown();
   *   const reader = new StreamReader(b);
   *   const lines = [];
   *   for (let line; (line = yield* reader.readLine()) !== null;) lines.push(line);
   *   return lines;
   * }
   * assertEquals(await new Loop().runTask(main()), ["héllo", "wörld"]);
   * ```
   */
  readLine(): Awaitable<string | null> {
    return new ReadLine(this);
  }

  static {
    cachedLine = (reader) => reader.#cachedLine();
    readLineSlowly = (reader) => reader.#readLine();
  }

  /** The next decoded line, if one is at hand; moves #start past its bytes. */
  #cachedLine(): string | undefined {
    const lines = this.#lines;
    if (lines === null) return undefined;
    const i = this.#nextLine;
    let line = lines[i]!;
    const start = this.#start;
    const bytes = this.#ascii ? line.length : this.#buf.indexOf(NEWLINE, start) - start;
    if (bytes > this.#limit) throw this.#overrun(bytes, true);
    this.#start = start + bytes + 1;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    if (i + 2 === lines.length) this.#lines = null; // the last element is the "" after the last \n
    else this.#nextLine = i + 1;
    if (line.length > 0 && line.charCodeAt(line.length - 1) === CR) line = line.slice(0, -1);
    return line;
  }

  /** readLine() when no decoded line is at hand: finds a newline, reading as needed. */
  *#readLine(): Coroutine<string | null> {
    const at = yield* this.#find(LINE_SEPARATOR, "readLine()");
    if (at < 0) {
      if (this.#end === this.#start) return null;
      const line = decoder.decode(this.#buf.subarray(this.#start, this.#end));
      this.#start = this.#end = 0;
      return line;
    }
    // Decode and split every complete line at once; readLine() hands them out.
    const start = this.#start;
    const last = this.#buf.lastIndexOf(NEWLINE, this.#end - 1);
    const text = decoder.decode(this.#buf.subarray(start, last + 1));
    this.#ascii = text.length === last + 1 - start; // then char i is byte start + i
    this.#lines = text.split("\n");
    this.#nextLine = 0;
    return this.#cachedLine()!;
  }

  /**
   * Finds `sep` in the buffer, reading more as needed. Returns its index in
   * #buf, or -1 if the stream ends first; throws when `limit` is overrun.
   */
  *#find(sep: Uint8Array, where: string): Coroutine<number> {
    const limit = this.#limit;
    this.#scanned = 0;
    for (;;) {
      const buf = this.#buf;
      const start = this.#start;
      const end = this.#end;
      const at = indexOf(buf, sep, start + Math.max(0, this.#scanned - sep.length + 1), end);
      if (at >= 0) {
        if (at - start > limit) throw this.#overrun(at - start, true);
        return at;
      }
      this.#scanned = end - start;
      if (end - start - sep.length + 1 > limit) {
        throw this.#overrun(end - start - sep.length + 1, false);
      }
      if (!(yield* this.#fill(where, end - start + 1))) return -1;
    }
  }

  #overrun(consumed: number, found: boolean): LimitOverrunError {
    return new LimitOverrunError(
      found
        ? `StreamReader: the separator comes after ${consumed} bytes, over the limit of ${this.#limit}; the bytes stay buffered`
        : `StreamReader: no separator in the first ${consumed} bytes, over the limit of ${this.#limit}; the bytes stay buffered`,
      consumed,
    );
  }

  /** Returns a copy of the next `n` buffered bytes and consumes them. */
  #take(n: number): Uint8Array {
    const start = this.#start;
    const bytes = this.#buf.slice(start, start + n);
    this.#start = start + n;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    this.#lines = null;
    return bytes;
  }

  /**
   * Reads once from the source into the buffer, making room for `need`
   * buffered bytes first. Returns false at end of stream.
   */
  *#fill(where: string, need: number): Coroutine<boolean> {
    if (this.#eof) return false;
    if (this.#reading) {
      throw new Error(
        `StreamReader.${where}: another task is already reading from this reader; only one may`,
      );
    }
    this.#lines = null;
    this.#makeRoom(need);
    this.#reading = true;
    try {
      const room = this.#buf.length - this.#end;
      let n: number;
      if (this.#into) {
        n = yield* this.#source.recvInto!(this.#buf.subarray(this.#end));
        if (!(Number.isInteger(n) && n >= 0 && n <= room)) {
          throw new TypeError(
            `StreamReader.${where}: the source's recvInto() returned ${
              show(n)
            }, not a count from 0 to ${room}`,
          );
        }
      } else {
        const bytes = yield* this.#source.recv(room);
        if (!(bytes instanceof Uint8Array) || bytes.length > room) {
          throw new TypeError(
            `StreamReader.${where}: the source's recv(${room}) returned ${
              bytes instanceof Uint8Array ? `${bytes.length} bytes` : show(bytes)
            }, not a Uint8Array of at most ${room} bytes`,
          );
        }
        n = bytes.length;
        this.#buf.set(bytes, this.#end);
      }
      if (n === 0) {
        this.#eof = true;
        return false;
      }
      this.#end += n;
      this.#filled = n === room;
      return true;
    } finally {
      this.#reading = false;
    }
  }

  /** Makes room to hold `need` bytes from #start and to read MIN_READ more. */
  #makeRoom(need: number): void {
    const buf = this.#buf;
    const start = this.#start;
    const buffered = this.#end - start;
    const room = buf.length - this.#end;
    let size = buf.length;
    if (size === 0) size = FIRST_BUFFER;
    else if (this.#filled && size < BIG_READ && room < MIN_READ) size *= 2;
    size = Math.max(size, need, buffered + MIN_READ);
    if (size === buf.length && room >= MIN_READ && buf.length - start >= need) return;
    if (size === buf.length) {
      buf.copyWithin(0, start, this.#end);
    } else {
      const bigger = new Uint8Array(size);
      bigger.set(buf.subarray(start, this.#end));
      this.#buf = bigger;
    }
    this.#start = 0;
    this.#end = buffered;
  }
}

/**
 * What `readLine()` returns: a one-shot iterator that hands out a decoded
 * line at once (no generator: it costs a tenth of one) and otherwise runs the
 * reader's coroutine, passing on what the loop sends or throws in.
 */
class ReadLine implements Awaitable<string | null>, Iterator<unknown, string | null, unknown> {
  readonly #reader: StreamReader;
  #slow: Coroutine<string | null> | null = null;

  constructor(reader: StreamReader) {
    this.#reader = reader;
  }
  [Symbol.iterator](): this {
    return this;
  }
  next(value?: unknown): IteratorResult<unknown, string | null> {
    if (this.#slow === null) {
      const line = cachedLine(this.#reader);
      if (line !== undefined) return { done: true, value: line };
      this.#slow = readLineSlowly(this.#reader);
    }
    return this.#slow.next(value);
  }
  throw(error: unknown): IteratorResult<unknown, string | null> {
    if (this.#slow === null) throw error;
    return this.#slow.throw(error);
  }
  return(value: string | null): IteratorResult<unknown, string | null> {
    if (this.#slow === null) return { done: true, value };
    return this.#slow.return(value);
  }
}

/** The first index of `sep` in `buf[from, end)`, or -1. */
function indexOf(buf: Uint8Array, sep: Uint8Array, from: number, end: number): number {
  const first = sep[0]!;
  const last = end - sep.length;
  for (let i = buf.indexOf(first, from); i >= 0 && i <= last; i = buf.indexOf(first, i + 1)) {
    let j = 1;
    while (j < sep.length && buf[i + j] === sep[j]) j++;
    if (j === sep.length) return i;
  }
  return -1;
}

/**
 * Buffers writes to a sink and sends them in as few writes as possible:
 * `write()` copies into the buffer and never waits; `drain()` sends what is
 * buffered; `close()` drains, then shuts the sink down. Over anything with
 * `sendAll` and `shutdown`: an `AIOSocket`, a memory stream, any `ByteSink`.
 *
 * @example Many small writes, one drain
 * ```ts
 * import { Loop } from "@boucle/boucle";
 * import { StreamReader, StreamWriter } from "@boucle/boucle/stream";
 * import { memoryStreamPair } from "@boucle/boucle/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const [a, b] = memoryStreamPair();
 * function* main() {
 *   const writer = new StreamWriter(a);
 *   for (let i = 0; i < 100; i++) writer.write(`line ${i}\n`);
 *   yield* writer.close();
 *   const reader = new StreamReader(b);
 *   let count = 0;
 *   while ((yield* reader.readLine()) !== null) count++;
 *   return count;
 * }
 * assertEquals(await new Loop().runTask(main()), 100);
 * ```
 */
export class StreamWriter {
  readonly #sink: ByteSink;
  readonly #highWaterMark: number;
  #buf: Uint8Array = NO_BYTES;
  #length = 0;
  /** The buffer the last drain sent, for the next one to fill. */
  #spare: Uint8Array = NO_BYTES;
  #draining = false;
  #drainers: WaitQueue = new WaitQueue(() => "StreamWriter.drain()");
  #closed = false;
  #shutdown = false;

  /**
   * Makes a writer over a sink.
   *
   * @param sink An `AIOSocket`, a memory stream, or any object with
   * `sendAll(bytes)` and `shutdown()` methods.
   * @param options Set `highWaterMark`.
   * @throws {TypeError} If `sink` lacks `sendAll` or `shutdown`, or
   * `highWaterMark` is not a number.
   * @throws {RangeError} If `highWaterMark` is not an integer >= 1.
   */
  constructor(sink: ByteSink, options: StreamWriterOptions = {}) {
    const s = sink as Partial<ByteSink> | null;
    const missing = typeof s !== "object" || s === null
      ? ""
      : typeof s.sendAll !== "function"
      ? " with no sendAll method"
      : typeof s.shutdown !== "function"
      ? " with no shutdown method"
      : null;
    if (missing !== null) {
      throw new TypeError(
        `new StreamWriter(sink): 'sink' must have sendAll(bytes) and shutdown() methods (an AIOSocket, a memory stream, any ByteSink), received ${
          show(sink)
        }${missing}`,
      );
    }
    if (typeof options !== "object" || options === null) {
      throw new TypeError(
        `new StreamWriter(sink, options): 'options' must be an object, received ${show(options)}`,
      );
    }
    this.#sink = sink;
    this.#highWaterMark = checkCount(
      "new StreamWriter(sink, options)",
      "options.highWaterMark",
      options.highWaterMark ?? 65536,
      1,
    );
  }

  /**
   * How many bytes are buffered and not yet handed to the sink.
   *
   * @example Usage
   * ```ts
   * import { StreamWriter } from "@boucle/boucle/stream";
   * import { memoryStreamPair } from "@boucle/boucle/testing";
   * import { assertEquals } from "@std/assert";
   *
   * const [a] = memoryStreamPair();
   * const writer = new StreamWriter(a);
   * writer.write("héllo");
   * assertEquals(writer.buffered, 6);
   * ```
   */
  get buffered(): number {
    return this.#length;
  }

  /**
   * The buffered bytes from which `write()` returns `false`.
   *
   * @example Usage
   * ```ts
   * import { StreamWriter } from "@boucle/boucle/stream";
   * import { memoryStreamPair } from "@boucle/boucle/testing";
   * import { assertEquals } from "@std/assert";
   *
   * const [a] = memoryStreamPair();
   * assertEquals(new StreamWriter(a, { highWaterMark: 1024 }).highWaterMark, 1024);
   * ```
   */
  get highWaterMark(): number {
    return this.#highWaterMark;
  }

  /**
   * Copies `data` into the buffer (a string as UTF-8). Never waits: call
   * `drain()` to send.
   *
   * @param data The bytes, or a string.
   * @returns Whether fewer than `highWaterMark` bytes are buffered now;
   * `false` means it is time to `drain()`.
   * @throws {TypeError} If `data` is neither a `Uint8Array` nor a string.
   * @throws {Error} If the writer is closed.
   *
   * @example Usage
   * ```ts
   * import { StreamWriter } from "@boucle/boucle/stream";
   * import { memoryStreamPair } from "@boucle/boucle/testing";
   * import { assertEquals } from "@std/assert";
   *
   * const [a] = memoryStreamPair();
   * const writer = new StreamWriter(a, { highWaterMark: 4 });
   * assertEquals(writer.write("abc"), true);
   * assertEquals(writer.write(new Uint8Array([1])), false);
   * ```
   */
  write(data: Uint8Array | string): boolean {
    if (this.#closed) {
      throw new Error("StreamWriter.write(data): the writer is closed");
    }
    if (typeof data === "string") {
      let length = this.#length;
      if (this.#buf.length - length < data.length * 3) this.#grow(length + data.length * 3);
      const buf = this.#buf;
      // Short ASCII strings: a loop beats encodeInto's call.
      let i = 0;
      if (data.length <= 64) {
        for (; i < data.length; i++) {
          const c = data.charCodeAt(i);
          if (c >= 0x80) break;
          buf[length++] = c;
        }
      }
      if (i < data.length) {
        length += encoder.encodeInto(i === 0 ? data : data.slice(i), buf.subarray(length)).written;
      }
      this.#length = length;
    } else if (data instanceof Uint8Array) {
      if (this.#buf.length - this.#length < data.length) this.#grow(this.#length + data.length);
      this.#buf.set(data, this.#length);
      this.#length += data.length;
    } else {
      throw new TypeError(
        `StreamWriter.write(data): 'data' must be a Uint8Array or a string, received ${show(data)}`,
      );
    }
    return this.#length < this.#highWaterMark;
  }

  #grow(size: number): void {
    const bigger = new Uint8Array(
      Math.max(size, 2 * this.#buf.length, Math.min(this.#highWaterMark, 16 * 1024)),
    );
    bigger.set(this.#buf.subarray(0, this.#length));
    this.#buf = bigger;
  }

  /**
   * Sends everything buffered, in one `sendAll()` of the sink, and returns
   * when it is sent: the back-pressure point. Writes made meanwhile wait for
   * the next drain; a drain called while another runs waits for it, then
   * sends what is left. With nothing buffered, returns at once.
   *
   * @returns A coroutine to use with `yield*`.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { StreamWriter } from "@boucle/boucle/stream";
   * import { memoryStreamPair } from "@boucle/boucle/testing";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = memoryStreamPair();
   * const writer = new StreamWriter(a);
   * function* main() {
   *   writer.write("a");
   *   writer.write("b");
   *   yield* writer.drain();
   *   return [writer.buffered, new TextDecoder().decode(yield* b.recv(10))];
   * }
   * assertEquals(await new Loop().runTask(main()), [0, "ab"]);
   * ```
   */
  *drain(): Coroutine<void> {
    while (this.#draining) yield this.#drainers;
    if (this.#length === 0) return;
    const full = this.#buf;
    const out = full.subarray(0, this.#length);
    this.#buf = this.#spare;
    this.#length = 0;
    this.#spare = NO_BYTES;
    this.#draining = true;
    try {
      yield* this.#sink.sendAll(out);
    } finally {
      this.#draining = false;
      // Keep the sent buffer for the next drain, unless a burst made it huge.
      if (full.length <= 4 * Math.max(this.#highWaterMark, 16 * 1024)) this.#spare = full;
      this.#drainers.wakeAll(); // in order: the first takes the next drain, the rest wait again
    }
  }

  /**
   * Drains, then shuts the sink down (the peer reads end of stream). Later
   * writes throw; a second `close()` drains what is left and shuts down only
   * if the first did not get that far.
   *
   * @returns A coroutine to use with `yield*`.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { StreamReader, StreamWriter } from "@boucle/boucle/stream";
   * import { memoryStreamPair } from "@boucle/boucle/testing";
   * import { assertEquals, assertThrows } from "@std/assert";
   *
   * const [a, b] = memoryStreamPair();
   * const writer = new StreamWriter(a);
   * function* main() {
   *   writer.write("bye");
   *   yield* writer.close();
   *   return yield* new StreamReader(b).readLine();
   * }
   * assertEquals(await new Loop().runTask(main()), "bye");
   * assertThrows(() => writer.write("more"), Error, "closed");
   * ```
   */
  *close(): Coroutine<void> {
    this.#closed = true;
    yield* this.drain();
    if (this.#shutdown) return;
    this.#shutdown = true;
    yield* this.#sink.shutdown();
  }
}

/**
 * Runs `body` on each item of `source`, one at a time, each after the body's
 * previous run has ended: an `AsyncIterable` (an async generator, a
 * `ReadableStream`) or a `Queue`, which ends when it is closed and drained.
 * `body` may return an Awaitable (a generator: `function* (item) { … }`) or
 * a promise, which `forEach` waits on, or nothing.
 *
 * On a body error or a cancellation, the source is closed: its iterator's
 * `return()`, or for a `ReadableStream` its reader's `cancel()`, which also
 * ends a read still pending; then the error goes on. A `Queue` stays open.
 *
 * @typeParam T The items' type.
 * @param source What to take the items from.
 * @param body What to run on each item.
 * @returns A coroutine that ends when the source does.
 * @throws {TypeError} If `source` is neither an `AsyncIterable` nor a
 * `Queue`, or `body` is not a function.
 *
 * @example An async generator, a ReadableStream and a closed Queue
 * ```ts
 * import { Loop } from "@boucle/boucle";
 * import { forEach } from "@boucle/boucle/stream";
 * import { Queue } from "@boucle/boucle/sync";
 * import { assertEquals } from "@std/assert";
 *
 * async function* numbers() {
 *   yield 1;
 *   yield 2;
 * }
 * const seen: unknown[] = [];
 * function* main() {
 *   yield* forEach(numbers(), (n) => {
 *     seen.push(n);
 *   });
 *   yield* forEach(ReadableStream.from(["a", "b"]), function* (s) {
 *     seen.push(s);
 *   });
 *   const queue = new Queue<string>();
 *   yield* queue.put("last");
 *   queue.close();
 *   yield* forEach(queue, (s) => {
 *     seen.push(s);
 *   });
 * }
 * await new Loop().runTask(main());
 * assertEquals(seen, [1, 2, "a", "b", "last"]);
 * ```
 */
export function forEach<T>(
  source: AsyncIterable<T> | Queue<T>,
  body: (item: T) => Awaitable<unknown> | PromiseLike<unknown> | void,
): Coroutine<void> {
  if (typeof body !== "function") {
    throw new TypeError(
      `forEach(source, body): 'body' must be a function, received ${show(body)}`,
    );
  }
  if (source instanceof Queue) return forEachQueued(source, body);
  if (source instanceof ReadableStream) return forEachRead(source, body);
  if (
    typeof (source as Partial<AsyncIterable<T>> | null)?.[Symbol.asyncIterator] !== "function"
  ) {
    throw new TypeError(
      `forEach(source, body): 'source' must be an AsyncIterable (an async generator, a ReadableStream) or a Queue, received ${
        show(source)
      }`,
    );
  }
  return forEachIterated(source as AsyncIterable<T>, body);
}

type Body<T> = (item: T) => unknown;

/** Runs the body on one item and waits on what it returns, if anything. */
function* runBody<T>(body: Body<T>, item: T): Coroutine<void> {
  const result = body(item);
  if ((typeof result !== "object" && typeof result !== "function") || result === null) return;
  // Collections are values, not Awaitables: `(x) => seen.add(x)` returns a Set.
  if (
    Array.isArray(result) || ArrayBuffer.isView(result) || result instanceof Map ||
    result instanceof Set
  ) {
    return;
  }
  if (typeof (result as Partial<Awaitable<unknown>>)[Symbol.iterator] === "function") {
    yield* result as Awaitable<unknown>;
  } else if (typeof (result as Partial<PromiseLike<unknown>>).then === "function") {
    yield* fromPromise(result as PromiseLike<unknown>);
  }
}

function* forEachQueued<T>(queue: Queue<T>, body: Body<T>): Coroutine<void> {
  for (;;) {
    let item: T;
    try {
      item = yield* queue.get();
    } catch (error) {
      if (error instanceof QueueClosedError) return;
      throw error;
    }
    yield* runBody(body, item);
  }
}

function* forEachIterated<T>(source: AsyncIterable<T>, body: Body<T>): Coroutine<void> {
  const it = source[Symbol.asyncIterator]();
  let pending = false; // a next() is under way
  try {
    for (;;) {
      pending = true;
      const step = yield* fromPromise(it.next());
      pending = false;
      if (step.done) return;
      yield* runBody(body, step.value);
    }
  } catch (error) {
    // A next() that failed ended the iterator itself; anything else closes it.
    if ((!pending || error instanceof CancelledError) && typeof it.return === "function") {
      let closing: PromiseLike<unknown> | undefined;
      try {
        closing = it.return();
      } catch {
        // a return() that throws has nothing more to close
      }
      if (closing !== undefined) {
        const settled = Promise.resolve(closing).catch(() => {});
        if (!pending) yield* fromPromise(settled); // else it waits behind the pending next()
      }
    }
    throw error;
  }
}

function* forEachRead<T>(stream: ReadableStream<T>, body: Body<T>): Coroutine<void> {
  const reader = stream.getReader();
  let pending = false; // a read() is under way
  try {
    for (;;) {
      pending = true;
      const step = yield* fromPromise(reader.read());
      pending = false;
      if (step.done) return;
      yield* runBody(body, step.value);
    }
  } catch (error) {
    // A read() that failed means the stream errored; anything else cancels it,
    // which also ends a read still pending.
    if (!pending || error instanceof CancelledError) {
      yield* fromPromise(reader.cancel(error).catch(() => {}));
    }
    throw error;
  } finally {
    reader.releaseLock();
  }
}
