// Copyright 2026 the boucle authors. MIT license.
/**
 * Sockets for the loop's tasks: `aiosocket()` makes an `AIOSocket`, whose
 * waiting methods are coroutines used with `yield*`, as the lesson awaits
 * `sock.recv(1024)`. Transports: TCP and unix sockets, over `Deno.listen` and
 * `Deno.connect`.
 *
 * How readiness is derived. Deno has no poll or select: the only way to learn
 * that a socket is readable is to have a read under way. So a socket keeps at
 * most one host operation in flight on each side, and readiness is read off it.
 * - Read side: a `conn.read()` into the socket's arena (on a listener, an
 *   `accept()`). Readable means that operation has settled and its result
 *   (bytes, end of stream, an error, a connection) is not consumed yet.
 *   `waitReadable()` starts the read if none is in flight and parks.
 * - The arena is a buffer that reads fill front to back and that is never
 *   written twice: `recv()` hands out views of it, no copy, and those bytes
 *   are the caller's. Deno allocates slowly (a 64 KiB buffer: ~25 µs), so a
 *   copy into a fresh array per `recv()` ran a 64 KiB stream at 0.36x plain
 *   Deno. Reads start at 16 KiB and double, up to 64 KiB, while they fill up;
 *   an arena holds four of them.
 * - Write side: a `conn.write()`, `closeWrite()`, or the `Deno.connect()` of a
 *   connecting socket. Writable means none is in flight.
 * When an operation settles, its handler stores the result and wakes every task
 * parked on that side; each one checks again (level-triggered, like `poll`),
 * which is also how `close()` wakes them. A task parks only while an operation
 * is in flight, so the loop always has a host event to sleep on. Cancelling a
 * parked task never stops the operation: what it brings stays in the socket
 * for the next call. Only `close()` ends operations in flight, and the
 * handlers swallow the rejections that causes.
 *
 * @module
 */

import { type Coroutine, WaitQueue } from "./_kernel.ts";
import { checkCount, show } from "./_validate.ts";

/**
 * The transports an `AIOSocket` speaks: TCP or unix domain sockets.
 *
 * @example Usage
 * ```ts
 * import { aiosocket, type Transport } from "@boucle/boucle/socket";
 * import { assertThrows } from "@std/assert";
 *
 * const transport: Transport = "unix";
 * using sock = aiosocket({ transport });
 * assertThrows(() => sock.bind({ port: 80 } as never), TypeError, 'for a "unix" socket');
 * ```
 */
export type Transport = "tcp" | "unix";

/**
 * Options for `aiosocket()`.
 *
 * @typeParam T The transport.
 *
 * @example Usage
 * ```ts
 * import { aiosocket, type AIOSocketOptions } from "@boucle/boucle/socket";
 * import { assertThrows } from "@std/assert";
 *
 * const options: AIOSocketOptions<"unix"> = { transport: "unix" };
 * using sock = aiosocket(options);
 * assertThrows(() => sock.localAddr, Error, "not bound");
 * ```
 */
export interface AIOSocketOptions<T extends Transport = Transport> {
  /**
   * The transport: `"tcp"` or `"unix"`.
   *
   * @default {"tcp"}
   */
  transport?: T;
}

/**
 * An address to `bind()` or `connect()` to: `{ hostname?, port }` for TCP
 * (`hostname` defaults to `"127.0.0.1"`), `{ path }` for a unix socket. Deno's
 * own address objects, such as another socket's `localAddr`, fit too.
 *
 * @typeParam T The socket's transport.
 *
 * @example Usage
 * ```ts
 * import { aiosocket, type SocketAddress } from "@boucle/boucle/socket";
 * import { assertThrows } from "@std/assert";
 *
 * const tcp: SocketAddress<"tcp"> = { hostname: "127.0.0.1", port: 8080 };
 * const unix: SocketAddress<"unix"> = { path: "/tmp/echo.sock" };
 * using sock = aiosocket();
 * assertThrows(() => sock.bind(unix as never), TypeError, "{ hostname?: string, port: number }");
 * assertThrows(() => sock.bind({ ...tcp, port: -1 }), RangeError, "received -1");
 * ```
 */
export type SocketAddress<T extends Transport = Transport> = T extends "unix" ? { path: string }
  : { hostname?: string; port: number };

type HostOptions =
  | { transport: "tcp"; hostname: string; port: number }
  | { transport: "unix"; path: string };

/** How the write in flight ended, for the task that started it. */
interface WriteOutcome {
  done: boolean;
  failed: boolean;
  value: unknown;
}

type State = "new" | "bound" | "listening" | "connecting" | "connected" | "closed";

const STATES: Record<State, string> = {
  new: "is not bound or connected",
  bound: "is bound but not listening",
  listening: "is listening",
  connecting: "is still connecting",
  connected: "is connected",
  closed: "is closed",
};

/** The sizes of one host read (see the header), and how many an arena holds. */
const MIN_READ = 16 * 1024;
const MAX_READ = 64 * 1024;
const ARENA_READS = 4;

let adopt: <T extends Transport>(transport: T, conn: Deno.Conn | null) => AIOSocket<T>;

/**
 * Makes a socket, like the lesson's `aiosocket()`: new, neither bound nor
 * connected. `using` closes it at the end of the scope.
 *
 * @typeParam T The transport.
 * @param options Set `transport` to `"unix"` for a unix domain socket.
 * @returns A new socket.
 * @throws {TypeError} If `options` or `options.transport` is invalid.
 *
 * @example An echo on one loop
 * ```ts
 * import { gather, Loop } from "@boucle/boucle";
 * import { aiosocket } from "@boucle/boucle/socket";
 * import { assertEquals } from "@std/assert";
 *
 * function* main() {
 *   using server = aiosocket();
 *   yield* server.bind({ hostname: "127.0.0.1", port: 0 });
 *   yield* server.listen();
 *   using client = aiosocket();
 *   const [conn] = yield* gather(server.accept(), client.connect(server.localAddr));
 *   using _conn = conn;
 *   yield* client.sendAll(new TextEncoder().encode("ping"));
 *   yield* conn.sendAll(yield* conn.recv(1024));
 *   return new TextDecoder().decode(yield* client.recv(1024));
 * }
 * assertEquals(await new Loop().runTask(main()), "ping");
 * ```
 */
export function aiosocket<T extends Transport = "tcp">(
  options: AIOSocketOptions<T> = {},
): AIOSocket<T> {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `aiosocket(options): 'options' must be an object, received ${show(options)}`,
    );
  }
  const transport = options.transport ?? "tcp";
  if (transport !== "tcp" && transport !== "unix") {
    throw new TypeError(
      `aiosocket(options): 'options.transport' must be "tcp" or "unix", received ${
        show(transport)
      }`,
    );
  }
  return adopt(transport as T, null);
}

/**
 * A socket whose waits park the task instead of blocking: the lesson's
 * `AIOSocket`. Made by `aiosocket()`, or by `accept()` for a connection.
 * A server goes `bind()`, `listen()`, `accept()`; a client `connect()`s; both
 * then `recv()` and `send()`. Each waiting method is a coroutine used with
 * `yield*`. One task may `recv()` while another `send()`s.
 *
 * Misuse (receiving on a listener, a second `connect()`, any use after
 * `close()`) throws an `Error` naming the method; Deno's own errors
 * (`ConnectionRefused`, `AddrInUse`, `BrokenPipe`, …) pass through unchanged.
 *
 * @typeParam T The transport: `"tcp"` or `"unix"`.
 *
 * @example A server and a client
 * ```ts
 * import { gather, Loop } from "@boucle/boucle";
 * import { aiosocket } from "@boucle/boucle/socket";
 * import { assertEquals } from "@std/assert";
 *
 * const server = aiosocket();
 * function* serve() {
 *   yield* server.listen();
 *   using conn = yield* server.accept();
 *   const msg = yield* conn.recv(1024);
 *   yield* conn.sendAll(msg.reverse());
 * }
 * function* ask() {
 *   using client = aiosocket();
 *   yield* client.connect(server.localAddr);
 *   yield* client.sendAll(new TextEncoder().encode("Hello"));
 *   return new TextDecoder().decode(yield* client.recv(1024));
 * }
 * function* main() {
 *   using _server = server;
 *   yield* server.bind({ port: 0 });
 *   const [, reply] = yield* gather(serve(), ask());
 *   return reply;
 * }
 * assertEquals(await new Loop().runTask(main()), "olleH");
 * ```
 */
export class AIOSocket<T extends Transport = Transport> implements Disposable {
  readonly #transport: T;
  #state: State;
  #listener: Deno.Listener | null = null;
  #conn: Deno.Conn | null = null;
  #shut = false;
  // Read side: one read (or accept) in flight, and what it brought: the bytes
  // #arena[#start, #end). Reads go at #free, #readSize bytes at most.
  #reading = false;
  #receiving = false;
  #arena: Uint8Array | null = null;
  #free = 0;
  #readSize = MIN_READ;
  #start = 0;
  #end = 0;
  #eof = false;
  #accepted: Deno.Conn | null = null;
  #error: { error: unknown } | null = null;
  #readers: WaitQueue = new WaitQueue(() => "AIOSocket.waitReadable()", true);
  // Write side: one write, closeWrite or connect in flight, and its outcome.
  #writing: WriteOutcome | null = null;
  #writers: WaitQueue = new WaitQueue(() => "AIOSocket.waitWritable()", true);

  private constructor(transport: T, conn: Deno.Conn | null) {
    this.#transport = transport;
    this.#conn = conn;
    this.#state = conn === null ? "new" : "connected";
  }
  static {
    adopt = (transport, conn) => new AIOSocket(transport, conn);
  }

  /**
   * Binds the socket to an address, which for Deno also starts listening.
   * `bind({ port: 0 })` picks a free port: read it from `localAddr`.
   *
   * @param addr `{ hostname?, port }` (hostname defaults to `"127.0.0.1"`), or
   * `{ path }` for a unix socket.
   * @returns A coroutine to use with `yield*`.
   * @throws {TypeError} If `addr` does not fit the socket's transport.
   * @throws {RangeError} If the port is not an integer from 0 to 65535.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { aiosocket } from "@boucle/boucle/socket";
   * import { assert } from "@std/assert";
   *
   * function* main() {
   *   using server = aiosocket();
   *   yield* server.bind({ hostname: "127.0.0.1", port: 0 });
   *   return server.localAddr.port;
   * }
   * assert(await new Loop().runTask(main()) > 0);
   * ```
   */
  bind(addr: SocketAddress<T>): Coroutine<void> {
    return this.#bind(this.#hostOptions("bind(addr)", addr));
  }

  // deno-lint-ignore require-yield -- Deno.listen() is synchronous; bind stays a coroutine, as in the lesson
  *#bind(options: HostOptions): Coroutine<void> {
    this.#expect("bind()", "new");
    // One call per overload of Deno.listen, so that each type-checks.
    this.#listener = options.transport === "unix" ? Deno.listen(options) : Deno.listen(options);
    this.#state = "bound";
  }

  /**
   * Marks a bound socket as listening. Deno already listens in `bind()`, so
   * this only moves the state on; calling it again has no effect.
   *
   * @returns A coroutine to use with `yield*`.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { aiosocket } from "@boucle/boucle/socket";
   *
   * function* main() {
   *   using server = aiosocket();
   *   yield* server.bind({ port: 0 });
   *   yield* server.listen();
   * }
   * await new Loop().runTask(main());
   * ```
   */
  // deno-lint-ignore require-yield -- nothing to wait for; a coroutine as in the lesson
  *listen(): Coroutine<void> {
    this.#expect("listen()", "bound", "listening");
    this.#state = "listening";
  }

  /**
   * Waits for a connection on a listening socket and returns it as a new,
   * connected socket; its `remoteAddr` tells the peer. Cancelling the wait
   * leaves the listener usable: a connection that arrives meanwhile is kept
   * for the next `accept()`.
   *
   * @returns A coroutine that returns the connected socket.
   *
   * @example Usage
   * ```ts
   * import { gather, Loop } from "@boucle/boucle";
   * import { aiosocket } from "@boucle/boucle/socket";
   * import { assertEquals } from "@std/assert";
   *
   * function* main() {
   *   using server = aiosocket();
   *   yield* server.bind({ port: 0 });
   *   yield* server.listen();
   *   using client = aiosocket();
   *   const [conn] = yield* gather(server.accept(), client.connect(server.localAddr));
   *   using _conn = conn;
   *   return conn.remoteAddr.port === client.localAddr.port;
   * }
   * assertEquals(await new Loop().runTask(main()), true);
   * ```
   */
  *accept(): Coroutine<AIOSocket<T>> {
    yield* this.#readable("accept()", true, "listening");
    const conn = this.#accepted;
    if (conn !== null) {
      this.#accepted = null;
      return adopt(this.#transport, conn);
    }
    const failure = this.#error!;
    this.#error = null; // the next accept() tries again
    throw failure.error;
  }

  /**
   * Connects to a listening socket. Cancelling it aborts the host's connect.
   *
   * @param addr `{ hostname?, port }` (hostname defaults to `"127.0.0.1"`), or
   * `{ path }` for a unix socket.
   * @returns A coroutine to use with `yield*`.
   * @throws {TypeError} If `addr` does not fit the socket's transport.
   * @throws {RangeError} If the port is not an integer from 0 to 65535.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { aiosocket } from "@boucle/boucle/socket";
   * import { assertEquals } from "@std/assert";
   *
   * function* main() {
   *   using server = aiosocket();
   *   yield* server.bind({ port: 0 });
   *   using client = aiosocket();
   *   yield* client.connect({ hostname: "127.0.0.1", port: server.localAddr.port });
   *   return client.remoteAddr.port === server.localAddr.port;
   * }
   * assertEquals(await new Loop().runTask(main()), true);
   * ```
   */
  connect(addr: SocketAddress<T>): Coroutine<void> {
    return this.#connect(this.#hostOptions("connect(addr)", addr));
  }

  *#connect(options: HostOptions): Coroutine<void> {
    yield* this.#writable("connect()", false, "new");
    this.#state = "connecting";
    const abort = new AbortController();
    const connecting =
      (options.transport === "unix"
        ? Deno.connect(options)
        : Deno.connect({ ...options, signal: abort.signal })).then(
          (conn) => {
            if (this.#state !== "connecting") return conn.close(); // cancelled or closed meanwhile
            this.#conn = conn;
            this.#state = "connected";
          },
          (error) => {
            if (this.#state === "connecting") this.#state = "new";
            throw error;
          },
        );
    try {
      yield* this.#writeOp("connect()", connecting);
    } finally {
      const state = this.#state as State; // changed by the handlers meanwhile
      if (state !== "connected") abort.abort();
      if (state === "connecting") this.#state = "new"; // cancelled: back to new
    }
  }

  /**
   * Receives up to `bufsize` bytes: what is already buffered, without another
   * host call, or else waits for the next read. Returns an empty array at end
   * of stream (also after the peer reset the connection). Only one task may
   * `recv()` on a socket at a time; cancelling it keeps the read in flight, and
   * its bytes go to the next `recv()`.
   *
   * The bytes are the caller's: the socket never writes them again. They are
   * a view of the socket's read arena (no copy: see the module's header), so
   * their `.buffer` holds other bytes of this connection too, and keeping
   * them keeps that arena (up to 256 KiB) alive; copy with `slice()` for an
   * `ArrayBuffer` of their own.
   *
   * @param bufsize The most bytes to return: an integer >= 1.
   * @returns A coroutine that returns a new `Uint8Array` the caller owns.
   * @throws {TypeError} If `bufsize` is not a number.
   * @throws {RangeError} If `bufsize` is not an integer >= 1.
   *
   * @example Read until end of stream
   * ```ts
   * import { gather, Loop } from "@boucle/boucle";
   * import { aiosocket } from "@boucle/boucle/socket";
   * import { assertEquals } from "@std/assert";
   *
   * function* main() {
   *   using server = aiosocket();
   *   yield* server.bind({ port: 0 });
   *   yield* server.listen();
   *   using client = aiosocket();
   *   const [conn] = yield* gather(server.accept(), client.connect(server.localAddr));
   *   using _conn = conn;
   *   yield* conn.sendAll(new Uint8Array([1, 2, 3]));
   *   yield* conn.shutdown();
   *   const sizes = [];
   *   for (let bytes; (bytes = yield* client.recv(2)).length > 0;) sizes.push(bytes.length);
   *   return sizes;
   * }
   * const sizes = await new Loop().runTask(main());
   * assertEquals(sizes.reduce((a, b) => a + b), 3);
   * ```
   */
  recv(bufsize: number): Coroutine<Uint8Array> {
    checkCount("AIOSocket.recv(bufsize)", "bufsize", bufsize, 1);
    return this.#recv(bufsize);
  }

  *#recv(bufsize: number): Coroutine<Uint8Array> {
    yield* this.#readable("recv()", true, "connected");
    if (this.#start < this.#end) {
      const end = Math.min(this.#end, this.#start + bufsize);
      const bytes = this.#arena!.subarray(this.#start, end);
      this.#start = end;
      return bytes;
    }
    const failure = this.#error;
    if (failure !== null) {
      this.#error = null; // reported once; the stream has ended
      this.#eof = true;
      throw failure.error;
    }
    return new Uint8Array(0);
  }

  /**
   * Writes once and returns how many bytes the host took, which may be fewer
   * than given (use `sendAll()` to send everything). Waits first while another
   * write is in flight. Do not change `bytes` until it returns.
   *
   * @param bytes The bytes to send.
   * @returns A coroutine that returns the number of bytes written.
   * @throws {TypeError} If `bytes` is not a `Uint8Array`.
   *
   * @example Usage
   * ```ts
   * import { gather, Loop } from "@boucle/boucle";
   * import { aiosocket } from "@boucle/boucle/socket";
   * import { assertEquals } from "@std/assert";
   *
   * function* main() {
   *   using server = aiosocket();
   *   yield* server.bind({ port: 0 });
   *   yield* server.listen();
   *   using client = aiosocket();
   *   const [conn] = yield* gather(server.accept(), client.connect(server.localAddr));
   *   using _conn = conn;
   *   return yield* client.send(new Uint8Array(16));
   * }
   * assertEquals(await new Loop().runTask(main()), 16);
   * ```
   */
  send(bytes: Uint8Array): Coroutine<number> {
    checkBytes("AIOSocket.send(bytes)", bytes);
    return this.#send(bytes);
  }

  *#send(bytes: Uint8Array): Coroutine<number> {
    yield* this.#writable("send()", true, "connected");
    return bytes.length === 0 ? 0 : yield* this.#writeOp("send()", this.#conn!.write(bytes));
  }

  /**
   * Sends every byte, calling `send()` until all are written.
   *
   * @param bytes The bytes to send.
   * @returns A coroutine to use with `yield*`.
   * @throws {TypeError} If `bytes` is not a `Uint8Array`.
   *
   * @example Usage
   * ```ts
   * import { gather, Loop } from "@boucle/boucle";
   * import { aiosocket } from "@boucle/boucle/socket";
   * import { assertEquals } from "@std/assert";
   *
   * function* main() {
   *   using server = aiosocket();
   *   yield* server.bind({ port: 0 });
   *   yield* server.listen();
   *   using client = aiosocket();
   *   const [conn] = yield* gather(server.accept(), client.connect(server.localAddr));
   *   using _conn = conn;
   *   yield* client.sendAll(new TextEncoder().encode("all of it"));
   *   return new TextDecoder().decode(yield* conn.recv(1024));
   * }
   * assertEquals(await new Loop().runTask(main()), "all of it");
   * ```
   */
  sendAll(bytes: Uint8Array): Coroutine<void> {
    checkBytes("AIOSocket.sendAll(bytes)", bytes);
    return this.#sendAll(bytes);
  }

  *#sendAll(bytes: Uint8Array): Coroutine<void> {
    let sent = 0;
    do {
      yield* this.#writable("sendAll()", true, "connected");
      if (sent === bytes.length) break; // nothing to send: only checked the state
      sent += yield* this.#writeOp("sendAll()", this.#conn!.write(bytes.subarray(sent)));
    } while (sent < bytes.length);
  }

  /**
   * Half-closes the connection: no more sends, and the peer reads end of
   * stream, while this side can still `recv()`. Waits for a write in flight
   * first. A second call has no effect.
   *
   * @returns A coroutine to use with `yield*`.
   *
   * @example Usage
   * ```ts
   * import { gather, Loop } from "@boucle/boucle";
   * import { aiosocket } from "@boucle/boucle/socket";
   * import { assertEquals } from "@std/assert";
   *
   * function* main() {
   *   using server = aiosocket();
   *   yield* server.bind({ port: 0 });
   *   yield* server.listen();
   *   using client = aiosocket();
   *   const [conn] = yield* gather(server.accept(), client.connect(server.localAddr));
   *   using _conn = conn;
   *   yield* client.shutdown();
   *   return (yield* conn.recv(1024)).length;
   * }
   * assertEquals(await new Loop().runTask(main()), 0);
   * ```
   */
  *shutdown(): Coroutine<void> {
    yield* this.#writable("shutdown()", false, "connected");
    if (this.#shut) return;
    this.#shut = true;
    yield* this.#writeOp("shutdown()", this.#conn!.closeWrite());
  }

  /**
   * Parks until the socket is readable: bytes are buffered, the stream has
   * ended or failed (connected socket), or a connection is waiting (listener).
   * Starts a read if none is in flight; `recv()` and `accept()` build on it.
   *
   * @returns A coroutine to use with `yield*`.
   *
   * @example Usage
   * ```ts
   * import { gather, Loop } from "@boucle/boucle";
   * import { aiosocket } from "@boucle/boucle/socket";
   * import { assertEquals } from "@std/assert";
   *
   * function* main() {
   *   using server = aiosocket();
   *   yield* server.bind({ port: 0 });
   *   yield* server.listen();
   *   using client = aiosocket();
   *   yield* gather(server.waitReadable(), client.connect(server.localAddr));
   *   using conn = yield* server.accept(); // returns at once: one is waiting
   *   yield* client.sendAll(new Uint8Array([7]));
   *   yield* conn.waitReadable();
   *   return yield* conn.recv(1);
   * }
   * assertEquals(await new Loop().runTask(main()), new Uint8Array([7]));
   * ```
   */
  *waitReadable(): Coroutine<void> {
    yield* this.#readable("waitReadable()", false, "connected", "listening");
  }

  /**
   * Parks until the socket is writable: connected, with no write in flight.
   * On a connecting socket, that is when the connect succeeds.
   *
   * @returns A coroutine to use with `yield*`.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { aiosocket } from "@boucle/boucle/socket";
   * import { assertEquals } from "@std/assert";
   *
   * function* main() {
   *   using server = aiosocket();
   *   yield* server.bind({ port: 0 });
   *   using client = aiosocket();
   *   yield* client.connect(server.localAddr);
   *   yield* client.waitWritable();
   *   return yield* client.send(new Uint8Array(4));
   * }
   * assertEquals(await new Loop().runTask(main()), 4);
   * ```
   */
  *waitWritable(): Coroutine<void> {
    yield* this.#writable("waitWritable()", false, "connecting", "connected");
  }

  /**
   * Closes the socket: its connection or listener, and any connection
   * accepted but not yet taken. Every task parked on the socket wakes with an
   * `Error` saying it is closed, and so does any later use. Idempotent.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { aiosocket } from "@boucle/boucle/socket";
   * import { assertRejects } from "@std/assert";
   *
   * const server = aiosocket();
   * server.close();
   * server.close();
   * await assertRejects(() => new Loop().runTask(server.listen()), Error, "closed");
   * ```
   */
  close(): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#listener?.close();
    this.#conn?.close();
    this.#accepted?.close();
    this.#listener =
      this.#conn =
      this.#accepted =
      this.#arena =
      this.#error =
        null;
    this.#start = this.#end = 0;
    this.#readers.wakeAll();
    this.#writers.wakeAll();
  }

  /**
   * Closes the socket at the end of a `using` scope: `close()`.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { aiosocket } from "@boucle/boucle/socket";
   * import { assertThrows } from "@std/assert";
   *
   * function* main() {
   *   using server = aiosocket();
   *   yield* server.bind({ port: 0 });
   *   return server;
   * }
   * const server = await new Loop().runTask(main());
   * assertThrows(() => server.localAddr, Error, "closed");
   * ```
   */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * This end's address: after `bind()` (with the real port after
   * `bind({ port: 0 })`), `connect()` or `accept()`.
   *
   * @throws {Error} On a new or closed socket.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { aiosocket } from "@boucle/boucle/socket";
   * import { assertEquals } from "@std/assert";
   *
   * function* main() {
   *   using server = aiosocket();
   *   yield* server.bind({ hostname: "127.0.0.1", port: 0 });
   *   return server.localAddr.hostname;
   * }
   * assertEquals(await new Loop().runTask(main()), "127.0.0.1");
   * ```
   */
  get localAddr(): T extends "unix" ? Deno.UnixAddr : Deno.NetAddr {
    this.#expect("localAddr", "bound", "listening", "connected");
    return (this.#listener?.addr ?? this.#conn!.localAddr) as T extends "unix" ? Deno.UnixAddr
      : Deno.NetAddr;
  }

  /**
   * The peer's address, on a connected socket.
   *
   * @throws {Error} Unless the socket is connected.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { aiosocket } from "@boucle/boucle/socket";
   * import { assertEquals } from "@std/assert";
   *
   * function* main() {
   *   using server = aiosocket();
   *   yield* server.bind({ port: 0 });
   *   using client = aiosocket();
   *   yield* client.connect(server.localAddr);
   *   return client.remoteAddr.port === server.localAddr.port;
   * }
   * assertEquals(await new Loop().runTask(main()), true);
   * ```
   */
  get remoteAddr(): T extends "unix" ? Deno.UnixAddr : Deno.NetAddr {
    this.#expect("remoteAddr", "connected");
    return this.#conn!.remoteAddr as T extends "unix" ? Deno.UnixAddr : Deno.NetAddr;
  }

  /** Throws the misuse error unless the socket is in one of `states`. */
  #expect(where: string, ...states: State[]): void {
    const state = this.#state;
    if (states.includes(state)) return;
    const needs = state === "closed" ? "" : `; ${where} needs a ${states.join(" or ")} socket`;
    throw new Error(`AIOSocket.${where}: the socket ${STATES[state]}${needs}`);
  }

  /**
   * Parks until the socket is readable, checking its state before and after.
   * `exclusive` (`recv()`, `accept()`): only one task may wait so at a time.
   */
  *#readable(where: string, exclusive: boolean, ...states: State[]): Coroutine<void> {
    this.#expect(where, ...states);
    if (exclusive && this.#receiving) {
      throw new Error(
        `AIOSocket.${where}: another task is already receiving on this socket; only one may`,
      );
    }
    this.#receiving ||= exclusive;
    try {
      while (
        this.#start === this.#end && !this.#eof && this.#error === null && this.#accepted === null
      ) {
        if (!this.#reading) this.#startRead();
        yield this.#readers;
        this.#expect(where, ...states);
      }
    } finally {
      if (exclusive) this.#receiving = false;
    }
  }

  #startRead(): void {
    this.#reading = true;
    if (this.#listener !== null) {
      this.#listener.accept().then(this.#onAccept, this.#onReadFailed);
      return;
    }
    const size = this.#readSize;
    if (this.#arena === null || this.#arena.length - this.#free < size) {
      this.#arena = new Uint8Array(size * ARENA_READS);
      this.#free = 0;
    }
    this.#conn!.read(this.#arena.subarray(this.#free, this.#free + size)).then(
      this.#onRead,
      this.#onReadFailed,
    );
  }

  // The read side's handlers, made once per socket rather than per read.
  readonly #onRead = (n: number | null): void => {
    if (n === null) {
      this.#eof = true;
    } else {
      this.#start = this.#free;
      this.#end = this.#free += n;
      if (n === this.#readSize && n < MAX_READ) this.#readSize = 2 * n; // filled: read more
    }
    this.#readSettled();
  };
  readonly #onAccept = (conn: Deno.Conn): void => {
    if (this.#state === "closed") conn.close();
    else this.#accepted = conn;
    this.#readSettled();
  };
  readonly #onReadFailed = (error: unknown): void => {
    if (this.#state !== "closed") this.#error = { error };
    this.#readSettled();
  };
  #readSettled(): void {
    this.#reading = false;
    this.#readers.wakeAll();
  }

  /**
   * Parks while a write-side operation is in flight, checking the state before
   * and after. `sending` also refuses a socket shut down for sending.
   */
  *#writable(where: string, sending: boolean, ...states: State[]): Coroutine<void> {
    for (;;) {
      this.#expect(where, ...states);
      if (sending && this.#shut) {
        throw new Error(`AIOSocket.${where}: the socket was shut down for sending`);
      }
      if (this.#writing === null) return;
      yield this.#writers;
    }
  }

  /** Makes `operation` the write side's one in flight and parks until it settles. */
  *#writeOp<R>(where: string, operation: Promise<R>): Coroutine<R> {
    const outcome: WriteOutcome = { done: false, failed: false, value: undefined };
    this.#writing = outcome;
    operation.then(this.#onWritten, this.#onWriteFailed);
    while (!outcome.done) {
      yield this.#writers;
      if (!outcome.done) this.#expect(where, "connecting", "connected");
    }
    if (outcome.failed) throw outcome.value;
    return outcome.value as R;
  }

  // The write side's handlers, made once per socket rather than per write.
  readonly #onWritten = (value: unknown): void => this.#writeSettled(false, value);
  readonly #onWriteFailed = (error: unknown): void => this.#writeSettled(true, error);
  #writeSettled(failed: boolean, value: unknown): void {
    const outcome = this.#writing!;
    outcome.done = true;
    outcome.failed = failed;
    outcome.value = value;
    this.#writing = null;
    this.#writers.wakeAll();
  }

  /** Checks an address against the transport; returns the options for Deno. */
  #hostOptions(where: string, addr: unknown): HostOptions {
    const transport = this.#transport;
    const a = (typeof addr === "object" && addr !== null ? addr : {}) as Record<string, unknown>;
    const ok = addr === a && (a.transport === undefined || a.transport === transport) &&
      (transport === "unix"
        ? typeof a.path === "string" && a.path !== "" && !("port" in a) && !("hostname" in a)
        : typeof a.port === "number" && !("path" in a) &&
          (a.hostname === undefined || typeof a.hostname === "string"));
    if (!ok) {
      const shape = transport === "unix"
        ? "{ path: string }"
        : "{ hostname?: string, port: number }";
      throw new TypeError(
        `AIOSocket.${where}: 'addr' must be ${shape} for a "${transport}" socket, received ${
          showAddress(addr)
        }`,
      );
    }
    if (transport === "unix") return { transport, path: a.path as string };
    const port = a.port as number;
    if (!(Number.isInteger(port) && port >= 0 && port <= 65535)) {
      throw new RangeError(
        `AIOSocket.${where}: 'addr.port' must be an integer from 0 to 65535, received ${
          show(port)
        }`,
      );
    }
    return { transport: "tcp", hostname: (a.hostname as string | undefined) ?? "127.0.0.1", port };
  }
}

function checkBytes(where: string, bytes: unknown): void {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(`${where}: 'bytes' must be a Uint8Array, received ${show(bytes)}`);
  }
}

/** Shows an address in an error message: plain objects as JSON. */
function showAddress(addr: unknown): string {
  if (
    typeof addr === "object" && addr !== null && Object.getPrototypeOf(addr) === Object.prototype
  ) {
    try {
      return JSON.stringify(addr);
    } catch {
      // falls through to show()
    }
  }
  return show(addr);
}
