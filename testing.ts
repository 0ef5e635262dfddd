// Copyright 2026 the boucle authors. MIT license.
/**
 * A kit for testing coroutine code in `deno test`: `loopTest()` runs a test
 * body on a fresh loop on virtual time and turns every way it can go wrong
 * (an error, a deadlock, a wall-clock timeout, leaked tasks) into a failure
 * that names the tasks and what they wait on; `waitAllTasksBlocked()` parks
 * until every other task is parked; `memoryStreamPair()` makes two connected
 * in-memory streams with `AIOSocket`'s stream methods, so that a protocol
 * handler typed against `ByteStream` runs with no socket, under virtual
 * time, the same way every run.
 *
 * Decisions where the design leaves room:
 * - `loopTest`'s body gets the loop as its argument. When the body fails,
 *   the tasks it left are cancelled without being reported as a leak: the
 *   body's error is the failure. On a timeout, the message has the
 *   `Loop.dump()` taken at that moment; the tasks are then cancelled and
 *   given up to one second to unwind.
 * - `waitAllTasksBlocked()` returns at the end of the first cycle that leaves
 *   no task ready; tasks parked on timers, I/O or promises count as blocked.
 * - Every wait parks on the kernel's wait queue or on the loop's clock; no
 *   promise is involved, so virtual time runs freely and a test that waits
 *   for bytes nobody sends fails at once with a `DeadlockError` naming the
 *   wait (`MemoryStream("b").waitReadable()`).
 * - `send()` copies the bytes at once (the caller may reuse them when it
 *   returns). With `latency`, the bytes of each `send()` become readable
 *   `latency` ms later on the loop's clock; end of stream (`shutdown()`,
 *   `close()`) arrives right after the last bytes sent, and a `reset()` is
 *   seen at the peer's next operation (a receive waiting out a latency sees
 *   a close or reset when that time comes). A `recv()` takes bytes of several
 *   sends that have arrived, up to `bufsize` and `maxChunk`.
 * - `bufferSize` (default: no limit) counts the bytes sent and not yet
 *   received, in flight included; `send()` takes what fits and parks while
 *   nothing does. A stream whose peer is closed throws
 *   `Deno.errors.BrokenPipe` on `send()`.
 * - After a `reset()`, the peer's next operation throws
 *   `Deno.errors.ConnectionReset` once, and the bytes on their way to it are
 *   dropped; after that, its `recv()` reads end of stream and its `send()`
 *   throws `BrokenPipe`, as a reset socket does.
 * - Misuse mirrors `AIOSocket`: any use after `close()` throws an `Error`
 *   saying so (and wakes parked tasks with it), sending after `shutdown()`
 *   throws, and only one task may receive at a time.
 *
 * @example A protocol handler tested over a memory stream pair
 * ```ts
 * import { type Coroutine, gather, Loop } from "@boucle/boucle";
 * import { type ByteStream, StreamReader, StreamWriter } from "@boucle/boucle/stream";
 * import { memoryStreamPair } from "@boucle/boucle/testing";
 * import { assertEquals } from "@std/assert";
 *
 * function* shout(conn: ByteStream): Coroutine<void> {
 *   const reader = new StreamReader(conn);
 *   const writer = new StreamWriter(conn);
 *   for (let line; (line = yield* reader.readLine()) !== null;) {
 *     writer.write(`${line.toUpperCase()}!\n`);
 *     yield* writer.drain();
 *   }
 *   yield* writer.close();
 * }
 * const [client, server] = memoryStreamPair({ maxChunk: 1, latency: 5 });
 * function* talk() {
 *   yield* client.sendAll(new TextEncoder().encode("hi\nbye\n"));
 *   yield* client.shutdown();
 *   const reader = new StreamReader(client);
 *   return [yield* reader.readLine(), yield* reader.readLine(), Loop.current.time()];
 * }
 * const loop = new Loop({ virtualTime: true });
 * const [, replies] = await loop.runTask(gather(shout(server), talk()));
 * assertEquals(replies, ["HI!", "BYE!", 10]);
 * ```
 *
 * @module
 */

import { type Awaitable, type Coroutine, currentKernel, type Task, WaitQueue } from "./_kernel.ts";
import { Loop, sleepUntil } from "./loop.ts";
import type { ByteStream } from "./stream.ts";
import { checkBytes, checkCount, checkMs, show } from "./_validate.ts";

/** Options for `memoryStreamPair()`. */
export interface MemoryStreamPairOptions {
  /**
   * The most bytes one `recv()` or `recvInto()` returns: an integer >= 1 or
   * `Infinity`. `maxChunk: 1` delivers a byte at a time, the harshest
   * fragmentation a protocol must survive.
   *
   * @default {Infinity}
   */
  maxChunk?: number;
  /**
   * How long (ms on the loop's clock) the bytes of each `send()` take to
   * arrive: a finite number >= 0.
   *
   * @default {0}
   */
  latency?: number;
  /**
   * The most bytes sent and not yet received, per direction, before `send()`
   * parks: an integer >= 1 or `Infinity`.
   *
   * @default {Infinity}
   */
  bufferSize?: number;
}

/** The bytes of one send, and when they arrive. */
interface Chunk {
  bytes: Uint8Array;
  at: number;
}

/** One direction of a pair: what is on its way from one end to the other. */
class Pipe {
  chunks: Chunk[] = [];
  head = 0;
  /** Bytes sent and not yet received. */
  unread = 0;
  /** The sender ended the stream (shutdown, close). */
  eof = false;
  readonly readers: WaitQueue;
  readonly writers: WaitQueue;

  constructor(to: string, from: string) {
    this.readers = new WaitQueue(() => `MemoryStream("${to}").waitReadable()`);
    this.writers = new WaitQueue(() => `MemoryStream("${from}").waitWritable()`);
  }

  get empty(): boolean {
    return this.head === this.chunks.length;
  }
  push(bytes: Uint8Array, at: number): void {
    this.chunks.push({ bytes, at });
    this.unread += bytes.length;
    this.readers.wakeAll();
  }
  /** Copies up to `n` arrived bytes into `into` at `offset`; returns the count. */
  take(into: Uint8Array, offset: number, n: number, now: number): number {
    let taken = 0;
    while (taken < n && this.head < this.chunks.length) {
      const chunk = this.chunks[this.head]!;
      if (chunk.at > now) break;
      const k = Math.min(n - taken, chunk.bytes.length);
      into.set(chunk.bytes.subarray(0, k), offset + taken);
      taken += k;
      if (k === chunk.bytes.length) {
        this.chunks[this.head++] = undefined as never;
        if (this.head === this.chunks.length) {
          this.chunks.length = this.head = 0;
        } else if (this.head >= 1024 && 2 * this.head >= this.chunks.length) {
          this.chunks = this.chunks.slice(this.head); // a reader that always lags
          this.head = 0;
        }
      } else {
        chunk.bytes = chunk.bytes.subarray(k);
      }
    }
    this.unread -= taken;
    if (taken > 0) this.writers.wakeAll();
    return taken;
  }
  /** Arrived bytes, up to `n`, without copying more than one chunk needs. */
  bytesUpTo(n: number, now: number): number {
    let count = 0;
    for (let i = this.head; i < this.chunks.length && count < n; i++) {
      const chunk = this.chunks[i]!;
      if (chunk.at > now) break;
      count += chunk.bytes.length;
    }
    return Math.min(count, n);
  }
  /** When the first bytes on their way arrive (Infinity if none). */
  get nextArrival(): number {
    return this.empty ? Infinity : this.chunks[this.head]!.at;
  }
  drop(): void {
    this.chunks.length = this.head = 0;
    this.unread = 0;
  }
  wakeAll(): void {
    this.readers.wakeAll();
    this.writers.wakeAll();
  }
}

let makePair: (options: Required<MemoryStreamPairOptions>) => [MemoryStream, MemoryStream];

/**
 * One end of a `memoryStreamPair()`: `AIOSocket`'s stream methods over
 * memory, plus `reset()`. Each waiting method is a coroutine used with
 * `yield*`; `using` closes it at the end of a scope.
 *
 * @example Back-pressure with bufferSize
 * ```ts
 * import { gather, Loop, sleep } from "@boucle/boucle";
 * import { memoryStreamPair } from "@boucle/boucle/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const [a, b] = memoryStreamPair({ bufferSize: 4 });
 * const log: string[] = [];
 * function* writer() {
 *   yield* a.sendAll(new Uint8Array(6));
 *   log.push(`sent at ${Loop.current.time()}`);
 * }
 * function* reader() {
 *   yield* sleep(10);
 *   log.push(`read ${(yield* b.recv(100)).length}`);
 *   log.push(`read ${(yield* b.recv(100)).length}`);
 * }
 * await new Loop({ virtualTime: true }).runTask(gather(writer(), reader()));
 * assertEquals(log, ["read 4", "sent at 10", "read 2"]);
 * ```
 */
export class MemoryStream implements ByteStream, Disposable {
  readonly #name: string;
  readonly #in: Pipe;
  readonly #out: Pipe;
  readonly #maxChunk: number;
  readonly #latency: number;
  readonly #bufferSize: number;
  #peer: MemoryStream | null = null;
  #closed = false;
  #shut = false;
  /** The peer reset the stream: the next operation throws, then it is broken. */
  #resetPending = false;
  #broken = false;
  #receiving = false;

  private constructor(
    name: string,
    incoming: Pipe,
    outgoing: Pipe,
    options: Required<MemoryStreamPairOptions>,
  ) {
    if (!(incoming instanceof Pipe)) {
      throw new TypeError("new MemoryStream(): memory streams are made by memoryStreamPair()");
    }
    this.#name = name;
    this.#in = incoming;
    this.#out = outgoing;
    this.#maxChunk = options.maxChunk;
    this.#latency = options.latency;
    this.#bufferSize = options.bufferSize;
  }
  static {
    makePair = (options) => {
      const toA = new Pipe("a", "b");
      const toB = new Pipe("b", "a");
      const a = new MemoryStream("a", toA, toB, options);
      const b = new MemoryStream("b", toB, toA, options);
      a.#peer = b;
      b.#peer = a;
      return [a, b];
    };
  }

  /**
   * Receives up to `bufsize` bytes (and at most `maxChunk`) of those that
   * have arrived, waiting for some if none has. An empty array at end of
   * stream. Only one task may receive at a time.
   *
   * @param bufsize The most bytes to return: an integer >= 1.
   * @returns A coroutine that returns a new `Uint8Array` the caller owns.
   * @throws {TypeError} If `bufsize` is not a number.
   * @throws {RangeError} If `bufsize` is not an integer >= 1.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { memoryStreamPair } from "@boucle/boucle/testing";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = memoryStreamPair({ maxChunk: 2 });
   * function* main() {
   *   yield* a.sendAll(new Uint8Array([1, 2, 3]));
   *   a.close();
   *   return [yield* b.recv(10), yield* b.recv(10), yield* b.recv(10)];
   * }
   * assertEquals(await new Loop().runTask(main()), [
   *   new Uint8Array([1, 2]),
   *   new Uint8Array([3]),
   *   new Uint8Array([]),
   * ]);
   * ```
   */
  recv(bufsize: number): Coroutine<Uint8Array> {
    checkCount("MemoryStream.recv(bufsize)", "bufsize", bufsize, 1);
    return this.#recv(bufsize);
  }

  *#recv(bufsize: number): Coroutine<Uint8Array> {
    yield* this.#readable("recv()", true);
    const now = Loop.current.time();
    const n = this.#in.bytesUpTo(Math.min(bufsize, this.#maxChunk), now);
    const bytes = new Uint8Array(n);
    this.#in.take(bytes, 0, n, now);
    return bytes;
  }

  /**
   * Receives into `buffer` from its start, up to its length (and at most
   * `maxChunk` bytes), waiting for bytes if none has arrived. Returns the
   * count, `0` at end of stream.
   *
   * @param buffer Where the bytes go: a `Uint8Array` of length >= 1.
   * @returns A coroutine that returns the count.
   * @throws {TypeError} If `buffer` is not a `Uint8Array`.
   * @throws {RangeError} If `buffer` is empty.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { memoryStreamPair } from "@boucle/boucle/testing";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = memoryStreamPair();
   * function* main() {
   *   yield* a.sendAll(new Uint8Array([7, 8]));
   *   const buffer = new Uint8Array(4);
   *   const n = yield* b.recvInto(buffer);
   *   return [n, buffer];
   * }
   * assertEquals(await new Loop().runTask(main()), [2, new Uint8Array([7, 8, 0, 0])]);
   * ```
   */
  recvInto(buffer: Uint8Array): Coroutine<number> {
    if (!(buffer instanceof Uint8Array)) {
      throw new TypeError(
        `MemoryStream.recvInto(buffer): 'buffer' must be a Uint8Array, received ${show(buffer)}`,
      );
    }
    if (buffer.length === 0) {
      throw new RangeError(
        "MemoryStream.recvInto(buffer): 'buffer' must not be empty (0 means end of stream), received an empty Uint8Array",
      );
    }
    return this.#recvInto(buffer);
  }

  *#recvInto(buffer: Uint8Array): Coroutine<number> {
    yield* this.#readable("recvInto()", true);
    return this.#in.take(buffer, 0, Math.min(buffer.length, this.#maxChunk), Loop.current.time());
  }

  /**
   * Sends once: copies as many bytes as the peer's buffer has room for
   * (`bufferSize`), parking while it has none, and returns the count.
   *
   * @param bytes The bytes to send.
   * @returns A coroutine that returns the number of bytes taken.
   * @throws {TypeError} If `bytes` is not a `Uint8Array`.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { memoryStreamPair } from "@boucle/boucle/testing";
   * import { assertEquals } from "@std/assert";
   *
   * const [a] = memoryStreamPair({ bufferSize: 3 });
   * assertEquals(await new Loop().runTask(a.send(new Uint8Array(5))), 3);
   * ```
   */
  send(bytes: Uint8Array): Coroutine<number> {
    checkBytes("MemoryStream.send(bytes)", bytes);
    return this.#send("send()", bytes);
  }

  *#send(where: string, bytes: Uint8Array): Coroutine<number> {
    yield* this.#writable(where, true);
    const n = Math.min(bytes.length, this.#bufferSize - this.#out.unread);
    if (n > 0) this.#out.push(bytes.slice(0, n), Loop.current.time() + this.#latency);
    return n;
  }

  /**
   * Sends every byte, calling `send()` until all are taken.
   *
   * @param bytes The bytes to send.
   * @returns A coroutine to use with `yield*`.
   * @throws {TypeError} If `bytes` is not a `Uint8Array`.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { memoryStreamPair } from "@boucle/boucle/testing";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = memoryStreamPair();
   * function* main() {
   *   yield* a.sendAll(new TextEncoder().encode("all"));
   *   return new TextDecoder().decode(yield* b.recv(10));
   * }
   * assertEquals(await new Loop().runTask(main()), "all");
   * ```
   */
  sendAll(bytes: Uint8Array): Coroutine<void> {
    checkBytes("MemoryStream.sendAll(bytes)", bytes);
    return this.#sendAll(bytes);
  }

  *#sendAll(bytes: Uint8Array): Coroutine<void> {
    let sent = 0;
    do {
      sent += yield* this.#send("sendAll()", bytes.subarray(sent));
    } while (sent < bytes.length);
  }

  /**
   * Half-closes: no more sends, and the peer reads end of stream after the
   * bytes already sent, while this end can still receive. A second call has
   * no effect.
   *
   * @returns A coroutine to use with `yield*`.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { memoryStreamPair } from "@boucle/boucle/testing";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = memoryStreamPair();
   * function* main() {
   *   yield* a.shutdown();
   *   yield* b.sendAll(new Uint8Array([1]));
   *   return [(yield* b.recv(10)).length, (yield* a.recv(10)).length];
   * }
   * assertEquals(await new Loop().runTask(main()), [0, 1]);
   * ```
   */
  // deno-lint-ignore require-yield -- nothing to wait for; a coroutine like AIOSocket.shutdown()
  *shutdown(): Coroutine<void> {
    this.#check("shutdown()");
    if (this.#shut) return;
    this.#shut = true;
    this.#out.eof = true;
    this.#out.readers.wakeAll();
  }

  /**
   * Parks until a `recv()` would not wait: bytes have arrived, or the stream
   * has ended.
   *
   * @returns A coroutine to use with `yield*`.
   *
   * @example Usage
   * ```ts
   * import { gather, Loop, sleep } from "@boucle/boucle";
   * import { memoryStreamPair } from "@boucle/boucle/testing";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = memoryStreamPair({ latency: 20 });
   * function* main() {
   *   yield* a.sendAll(new Uint8Array([1]));
   *   yield* b.waitReadable();
   *   return Loop.current.time();
   * }
   * assertEquals(await new Loop({ virtualTime: true }).runTask(main()), 20);
   * ```
   */
  *waitReadable(): Coroutine<void> {
    yield* this.#readable("waitReadable()", false);
  }

  /**
   * Parks until a `send()` would not wait: the peer's buffer has room (or a
   * send would fail at once).
   *
   * @returns A coroutine to use with `yield*`.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { memoryStreamPair } from "@boucle/boucle/testing";
   *
   * const [a] = memoryStreamPair();
   * await new Loop().runTask(a.waitWritable()); // room: returns at once
   * ```
   */
  *waitWritable(): Coroutine<void> {
    yield* this.#writable("waitWritable()", false);
  }

  /**
   * Closes this end: the peer reads end of stream after the bytes already
   * sent, and its sends throw `Deno.errors.BrokenPipe`. Bytes not yet
   * received here are dropped. Every task parked on this end wakes with an
   * `Error` saying it is closed, and so does any later use. Idempotent.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { memoryStreamPair } from "@boucle/boucle/testing";
   * import { assertEquals, assertRejects } from "@std/assert";
   *
   * const [a, b] = memoryStreamPair();
   * a.close();
   * assertEquals((await new Loop().runTask(b.recv(10))).length, 0);
   * await assertRejects(() => new Loop().runTask(a.recv(10)), Error, "closed");
   * await assertRejects(() => new Loop().runTask(b.send(new Uint8Array(1))), Deno.errors.BrokenPipe);
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#out.eof = true;
    this.#in.drop();
    this.#in.wakeAll();
    this.#out.wakeAll();
  }

  /**
   * Closes this end abruptly, like a TCP reset: the peer's next operation
   * throws `Deno.errors.ConnectionReset`, and the bytes on their way to it
   * are dropped.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { memoryStreamPair } from "@boucle/boucle/testing";
   * import { assertEquals, assertRejects } from "@std/assert";
   *
   * const [a, b] = memoryStreamPair();
   * a.reset();
   * await assertRejects(() => new Loop().runTask(b.recv(10)), Deno.errors.ConnectionReset);
   * assertEquals((await new Loop().runTask(b.recv(10))).length, 0); // then end of stream
   * ```
   */
  reset(): void {
    if (this.#closed) return;
    const peer = this.#peer!;
    if (!peer.#closed) peer.#resetPending = true;
    this.#out.drop();
    this.close();
  }

  /**
   * Closes this end at the end of a `using` scope: `close()`.
   *
   * @example Usage
   * ```ts
   * import { memoryStreamPair } from "@boucle/boucle/testing";
   *
   * {
   *   using _a = memoryStreamPair()[0];
   * }
   * ```
   */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Throws if closed, or (once) if the peer reset the stream. */
  #check(where: string): void {
    if (this.#closed) {
      throw new Error(`MemoryStream.${where}: the stream "${this.#name}" is closed`);
    }
    if (this.#resetPending) {
      this.#resetPending = false;
      this.#broken = true;
      throw new Deno.errors.ConnectionReset(
        `MemoryStream.${where}: the peer of "${this.#name}" reset the stream`,
      );
    }
  }

  /** Parks until bytes have arrived or the stream has ended. */
  *#readable(where: string, exclusive: boolean): Coroutine<void> {
    this.#check(where);
    if (exclusive && this.#receiving) {
      throw new Error(
        `MemoryStream.${where}: another task is already receiving on "${this.#name}"; only one may`,
      );
    }
    this.#receiving ||= exclusive;
    try {
      const pipe = this.#in;
      for (;;) {
        if (this.#broken) return; // end of stream
        const at = pipe.nextArrival;
        if (at === Infinity) {
          if (pipe.eof) return;
          yield pipe.readers;
        } else if (at > Loop.current.time()) {
          yield* sleepUntil(at);
        } else {
          return;
        }
        this.#check(where);
      }
    } finally {
      if (exclusive) this.#receiving = false;
    }
  }

  /** Parks while the peer's buffer is full; `sending` also refuses a shut or broken stream. */
  *#writable(where: string, sending: boolean): Coroutine<void> {
    for (;;) {
      this.#check(where);
      if (sending && this.#shut) {
        throw new Error(
          `MemoryStream.${where}: the stream "${this.#name}" was shut down for sending`,
        );
      }
      if (this.#broken || this.#peer!.#closed) {
        if (!sending) return;
        throw new Deno.errors.BrokenPipe(
          `MemoryStream.${where}: the peer of "${this.#name}" is closed`,
        );
      }
      if (this.#out.unread < this.#bufferSize) return;
      yield this.#out.writers;
    }
  }
}

/**
 * Makes two connected in-memory streams: what one sends, the other
 * receives. They have `AIOSocket`'s stream methods (`recv`, `recvInto`,
 * `send`, `sendAll`, `shutdown`, `close`, `waitReadable`, `waitWritable`), so
 * `StreamReader`, `StreamWriter` and any handler typed against `ByteStream`
 * run over them with no socket, under virtual time, the same way every run.
 *
 * @param options `maxChunk` fragments receives, `latency` delays each send
 * on the loop's clock, `bufferSize` makes sends park.
 * @returns The two ends, `a` and `b` (as they are named in errors).
 * @throws {TypeError} If an option is not a number.
 * @throws {RangeError} If `maxChunk` or `bufferSize` is not an integer >= 1
 * or `Infinity`, or `latency` is not a finite number >= 0.
 *
 * @example Fragments and latency on a virtual clock
 * ```ts
 * import { Loop } from "@boucle/boucle";
 * import { memoryStreamPair } from "@boucle/boucle/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const [a, b] = memoryStreamPair({ maxChunk: 2, latency: 100 });
 * function* main() {
 *   yield* a.sendAll(new Uint8Array([1, 2, 3]));
 *   const log = [];
 *   for (let bytes; (bytes = yield* b.recv(10)).length > 0;) {
 *     log.push(`${bytes.length} at ${Loop.current.time()}`);
 *     if (log.length === 2) yield* a.shutdown();
 *   }
 *   return log;
 * }
 * assertEquals(await new Loop({ virtualTime: true }).runTask(main()), ["2 at 100", "1 at 100"]);
 * ```
 */
export function memoryStreamPair(
  options: MemoryStreamPairOptions = {},
): [MemoryStream, MemoryStream] {
  const where = "memoryStreamPair(options)";
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`${where}: 'options' must be an object, received ${show(options)}`);
  }
  const checked: Required<MemoryStreamPairOptions> = {
    maxChunk: checkCount(where, "options.maxChunk", options.maxChunk ?? Infinity, 1, true),
    latency: checkMs(where, "options.latency", options.latency ?? 0),
    bufferSize: checkCount(where, "options.bufferSize", options.bufferSize ?? Infinity, 1, true),
  };
  if (checked.latency === Infinity) {
    throw new RangeError(
      `${where}: 'options.latency' must be a finite number >= 0, received Infinity`,
    );
  }
  return makePair(checked);
}

/** Options for `loopTest()`. */
export interface LoopTestOptions {
  /**
   * Run the body on a virtual clock (see `LoopOptions.virtualTime`).
   *
   * @default {true}
   */
  virtualTime?: boolean;
  /**
   * Fail after this many ms of wall-clock time, whatever the loop's clock
   * says: a virtual hour still passes, a stuck wait on real I/O fails, with
   * `Loop.dump()` of the live tasks in the message.
   *
   * @default {10000}
   */
  timeout?: number;
}

/**
 * Makes a `Deno.test` function that runs `body` on a fresh loop, on virtual
 * time unless `options.virtualTime` is `false`. The test fails if `body`
 * throws (with its error), at once on a deadlock (a `DeadlockError` naming
 * each stuck task and what it waits on), after `options.timeout` ms of
 * wall-clock time (the message lists every live task and what it waits on),
 * and if tasks other than the body are still alive when the body returns: a
 * leak, named in the message, whose tasks are then cancelled.
 *
 * The body gets the loop as its argument.
 *
 * @param body A generator function: the test's main task.
 * @param options `virtualTime` and `timeout`.
 * @returns An async function for `Deno.test`.
 * @throws {TypeError} If `body` is not a function or an option is bad.
 * @throws {RangeError} If `options.timeout` is not a number > 0.
 *
 * @example Usage
 * ```ts
 * import { sleep } from "@boucle/boucle";
 * import { loopTest } from "@boucle/boucle/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const test = loopTest(function* (loop) {
 *   yield* sleep(3_600_000); // an hour, in a few milliseconds
 *   assertEquals(loop.time(), 3_600_000);
 * });
 * await test(); // in a test file: Deno.test("an hour passes", test);
 * ```
 */
export function loopTest(
  body: (loop: Loop) => Awaitable<unknown> | Iterator<unknown, unknown, unknown>,
  options: LoopTestOptions = {},
): () => Promise<void> {
  if (typeof body !== "function") {
    throw new TypeError(
      `loopTest(body, options): 'body' must be a function, received ${show(body)}`,
    );
  }
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `loopTest(body, options): 'options' must be an object, received ${show(options)}`,
    );
  }
  const { virtualTime = true, timeout = 10_000 } = options;
  if (typeof virtualTime !== "boolean") {
    throw new TypeError(
      `loopTest(body, options): 'options.virtualTime' must be a boolean, received ${
        show(virtualTime)
      }`,
    );
  }
  if (typeof timeout !== "number") {
    throw new TypeError(
      `loopTest(body, options): 'options.timeout' must be a number > 0, received ${show(timeout)}`,
    );
  }
  if (!(timeout > 0)) {
    throw new RangeError(
      `loopTest(body, options): 'options.timeout' must be a number > 0, received ${show(timeout)}`,
    );
  }
  return () => runLoopTest(body, virtualTime, timeout);
}

async function runLoopTest(
  body: (loop: Loop) => Awaitable<unknown> | Iterator<unknown, unknown, unknown>,
  virtualTime: boolean,
  timeout: number,
): Promise<void> {
  const loop = new Loop({ virtualTime });
  let leak: string | null = null;
  const main: Task<void> = loop.addTask(
    function* (): Coroutine<void> {
      let returned = false;
      try {
        yield* awaitableOf(body(loop));
        returned = true;
      } finally {
        // Tasks left behind: a leak if the body returned; after a failure, just stopped.
        const leaked = loop.tasks().filter((task) => task !== main);
        if (returned && leaked.length > 0) {
          const names = leaked.map((task) =>
            `"${task.name}" waits on ${task.waitingOn ?? "nothing"}`
          );
          leak = `loopTest(): ${leaked.length} task(s) still alive when the body returned ` +
            `(leaked, now cancelled): ${names.join(", ")}\n${loop.dump()}`;
        }
        for (const task of leaked) task.cancel("loopTest(): the test body ended");
      }
    }(),
    { name: "loopTest body" },
  );
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeout);
  });
  const running = loop.run();
  const settled = running.then(() => "done" as const, () => "done" as const);
  try {
    if (await Promise.race([settled, timedOut]) === "timeout") {
      const dump = loop.dump();
      for (const task of loop.tasks()) task.cancel("loopTest(): timed out");
      let grace: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([settled, new Promise((resolve) => grace = setTimeout(resolve, 1000))]);
      clearTimeout(grace);
      throw new Error(
        `loopTest(): timed out after ${timeout} ms of wall-clock time; the live tasks were:\n${dump}`,
      );
    }
  } finally {
    clearTimeout(timer);
  }
  await running; // the body's error, a deadlock, or an error no task observed
  if (leak !== null) throw new Error(leak);
}

/** What `yield*` drives for the value a test body returned; a clear error for anything else. */
function awaitableOf(value: unknown): Awaitable<unknown> {
  if (typeof value === "object" && value !== null) {
    if (typeof (value as Awaitable<unknown>)[Symbol.iterator] === "function") {
      return value as Awaitable<unknown>;
    }
    if (typeof (value as Iterator<unknown>).next === "function") {
      return { [Symbol.iterator]: () => value as Iterator<unknown> };
    }
  }
  throw new TypeError(
    `loopTest(body, options): 'body' must return a generator or an Awaitable, received ${
      show(value)
    }`,
  );
}

/**
 * Parks until every other task of the loop is parked (on a timer, a
 * primitive, a promise or I/O), then returns (trio's
 * `wait_all_tasks_blocked`). In a test, it is the point where everything
 * the other tasks could do without time passing has been done.
 *
 * @returns A coroutine to use with `yield*`.
 *
 * @example Usage
 * ```ts
 * import { Loop } from "@boucle/boucle";
 * import { Queue } from "@boucle/boucle/sync";
 * import { waitAllTasksBlocked } from "@boucle/boucle/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const queue = new Queue<number>();
 * const got: number[] = [];
 * const loop = new Loop({ virtualTime: true });
 * const consumer = loop.addTask(function* () {
 *   for (;;) got.push(yield* queue.get());
 * }());
 * await loop.runTask(function* () {
 *   queue.tryPut(1);
 *   queue.tryPut(2);
 *   yield* waitAllTasksBlocked(); // the consumer has taken both and parks again
 *   assertEquals(got, [1, 2]);
 *   consumer.cancel();
 * }());
 * ```
 */
export function waitAllTasksBlocked(): Coroutine<void> {
  return parkUntilIdle();
}

function* parkUntilIdle(): Coroutine<void> {
  yield currentKernel("waitAllTasksBlocked()").idle();
}
