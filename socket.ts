// Copyright 2026 the boucle authors. MIT license.
/**
 * Sockets for the loop's tasks: `aiosocket()` makes an `AIOSocket`, whose
 * waiting methods are coroutines used with `yield*`, as the lesson awaits
 * `sock.recv(1024)`. Transports: TCP, unix sockets and TLS, over
 * `Deno.listen`/`Deno.connect` and `Deno.listenTls`/`Deno.connectTls`;
 * `startTls()` upgrades a TCP client with `Deno.startTls`.
 *
 * How readiness is derived. Deno has no poll or select: the only way to learn
 * that a socket is readable is to have a read under way. So a socket keeps at
 * most one host operation in flight on each side, and readiness is read off it.
 * - Read side: a `conn.read()` into the socket's own read buffer (on a
 *   listener, an `accept()`). Readable means that operation has settled and
 *   its result (bytes, end of stream, an error, a connection) is not consumed.
 *   `waitReadable()` starts the read if none is in flight and parks.
 * - Write side: a `conn.write()`, `closeWrite()`, the `Deno.connect()` of a
 *   connecting socket or a TLS upgrade. Writable means none is in flight.
 * When an operation settles, its handler stores the result and wakes every task
 * parked on that side; each one checks again (level-triggered, like `poll`),
 * which is also how `close()` wakes them. A task parks only while an operation
 * is in flight, so the loop always has a host event to sleep on. Cancelling a
 * parked task never stops a read: what it brings stays in the socket for the
 * next call. Only `close()` ends operations in flight, and the handlers
 * swallow the rejections that causes.
 *
 * Memory, and why reads go into the socket's buffer. A read goes into a buffer
 * the socket owns; reading into the caller's memory (for `recvInto()`) would
 * let a read that outlives a cancelled call write into it later. Reads want
 * 4 KiB at first, twice as much after a read that filled its room (up to
 * 64 KiB), a quarter as much after one that brought less than a quarter; a
 * parked idle connection holds a 4 KiB buffer (raw Deno's usual parked
 * `conn.read(new Uint8Array(16384))`: 16 KiB). `recv()` hands out a view of
 * the buffer when the buffer is at most 4 KiB larger than the result (so a
 * small buffer is an arena: one-byte results share a 4 KiB one, each read
 * going after the bytes handed out) and a copy otherwise, so a result never
 * keeps more than 4 KiB of other memory alive. `recvInto()` copies out, and
 * a buffer nothing was handed out of is reused from its start. Measured on
 * this project's machine: a fresh 64 KiB array costs ~23 µs (its pages are
 * new), a 64 KiB copy 2-40 µs depending on what the cache holds, so buffers
 * are reused wherever nothing handed out points into them.
 *
 * Send safety. Deno's `conn.write()` reads the caller's memory until it
 * settles: a write still in flight when `send()` ends (a cancellation) would
 * send whatever the caller puts there afterwards. Deno runs a write at once
 * when the host can take bytes (the bytes are gone before `write()` returns)
 * and holds it otherwise. So:
 * - a write of at most 64 KiB, and every write while the connection is
 *   congested (the last write was short, or Deno held it), is copied into a
 *   socket-owned buffer first (64 KiB at most per write); a cancelled call
 *   leaves that write running from the socket's memory, the next write waits
 *   for it, and the peer gets a prefix of the bytes, then what is sent next.
 *   Measured by copying 64 KiB writes or not, everything else equal: paired
 *   in-process A/B runs of a 64 MiB echo stream gave copy / no copy 0.91,
 *   1.00 and 1.03, and bench/echo.ts's `recvInto()` stream 0.75 × Deno with
 *   the copies against 0.67 × without, back to back: within this machine's
 *   noise. So the common sizes take the safe path;
 * - a larger write on an uncongested connection goes straight from the
 *   caller's memory, in one host write (copying it would cut it into 64 KiB
 *   writes: 0.93 in the same A/B at 1 MiB). If the call ends while that write
 *   is in flight, it first learns whether Deno ran the write at once (a check
 *   three microtasks after the write: a write Deno ran at once has settled by
 *   then, one it holds cannot have); if Deno still holds the caller's bytes,
 *   the socket is closed, the only way to make Deno let go of them, and later
 *   uses say so. Congestion ends only with a write Deno ran at once and in
 *   full (writes under 1 KiB on an uncongested connection skip the check:
 *   three microtasks cost ~4% of a 64-byte round trip), so that takes a large
 *   write right after such a write left the send buffer full (Linux lets a
 *   write overshoot it), then a cancellation while the peer does not read.
 *
 * Hostile peers. `accept()` skips a connection that failed before it was
 * taken (`NotConnected`, `ConnectionAborted`, `ConnectionReset`) and takes the
 * next. When the process is out of file descriptors (`EMFILE`, `ENFILE`) it
 * sleeps on the loop's clock, 1 ms, then twice as long each time, up to
 * 100 ms, and tries again (at most ~10 tries a second once backed off, no busy
 * loop); it recovers as soon as descriptors are free.
 *
 * @module
 */

import { type Coroutine, WaitQueue } from "./_kernel.ts";
import { sleep } from "./loop.ts";
import { checkBytes, checkCount, show } from "./_validate.ts";

/**
 * The transports an `AIOSocket` speaks: TCP, unix domain sockets, or TLS over
 * TCP.
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
export type Transport = "tcp" | "unix" | "tls";

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
   * The transport: `"tcp"`, `"unix"` or `"tls"`.
   *
   * @default {"tcp"}
   */
  transport?: T;
}

/**
 * The address of a TLS socket. `bind()` needs `cert` and `key` (PEM text, as
 * `Deno.listenTls` takes them); `connect()` takes `caCerts`, PEM certificates
 * trusted besides the system's (for a self-signed server).
 *
 * @example Usage
 * ```ts
 * import { aiosocket, type TlsAddress } from "@boucle/boucle/socket";
 * import { assertThrows } from "@std/assert";
 *
 * const addr: TlsAddress = { hostname: "localhost", port: 8443 };
 * using sock = aiosocket({ transport: "tls" });
 * assertThrows(() => sock.bind(addr), TypeError, "'addr.cert' and 'addr.key'");
 * ```
 */
export interface TlsAddress {
  /**
   * The host name or IP address.
   *
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /** The port: 0 to 65535 (0 for `bind()` picks a free one). */
  port: number;
  /** For `bind()`: the server's certificate chain, PEM. */
  cert?: string;
  /** For `bind()`: the server's private key, PEM. */
  key?: string;
  /** For `connect()`: extra trusted root certificates, PEM. */
  caCerts?: string[];
}

/**
 * An address to `bind()` or `connect()` to: `{ hostname?, port }` for TCP
 * (`hostname` defaults to `"127.0.0.1"`), `{ path }` for a unix socket, a
 * `TlsAddress` for TLS. Deno's own address objects, such as another socket's
 * `localAddr`, fit too.
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
  : T extends "tls" ? TlsAddress
  : { hostname?: string; port: number };

/**
 * Options for `startTls()`.
 *
 * @example Usage
 * ```ts
 * import type { StartTlsOptions } from "@boucle/boucle/socket";
 * import { assertEquals } from "@std/assert";
 *
 * const options: StartTlsOptions = { hostname: "localhost" };
 * assertEquals(options.caCerts, undefined);
 * ```
 */
export interface StartTlsOptions {
  /**
   * The name the server's certificate must carry.
   *
   * @default {the hostname the socket connected to}
   */
  hostname?: string;
  /** Extra trusted root certificates, PEM (for a self-signed server). */
  caCerts?: string[];
}

type HostOptions =
  | { transport: "tcp"; hostname: string; port: number }
  | { transport: "unix"; path: string }
  | { transport: "tls"; hostname: string; port: number; cert: string; key: string }
  | { transport: "tls"; hostname: string; port: number; caCerts?: string[] };

/** How the write in flight ended, for the task that started it. */
interface WriteOutcome {
  done: boolean;
  failed: boolean;
  value: unknown;
  /** Bytes given to the host; a count below it means congestion. */
  size: number;
  /** Whether the write reads the caller's memory. */
  direct: boolean;
  /**
   * The microtask check has run (see the header); for a write that settles
   * after it, that means Deno held it.
   */
  checked: boolean;
  /** A task waits for that check. */
  awaited: boolean;
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

/** The read buffer's sizes, and what a `recv()` result may keep alive (see the header). */
const MIN_READ = 4 * 1024;
const MAX_READ = 64 * 1024;
const SLACK = 4 * 1024;
/** A read into less room than this goes into a new buffer instead. */
const MIN_ROOM = 1024;
/** Writes up to this size are always copied, and congested ones this much at a time. */
const COPY_MAX = 64 * 1024;
/** Smaller writes skip the check of whether Deno held them, unless congested. */
const CHECK_MIN = 1024;
/** accept()'s back-off when out of file descriptors, in ms. */
const BACKOFF_MIN = 1;
const BACKOFF_MAX = 100;
/** Why the socket closed itself, for the errors of later uses. */
const HELD_BYTES =
  "a send() ended while Deno still held the caller's bytes in a write, so the socket closed itself";

let adopt: <T extends Transport>(transport: T, conn: Deno.Conn | null) => AIOSocket<T>;

/**
 * Makes a socket, like the lesson's `aiosocket()`: new, neither bound nor
 * connected. `using` closes it at the end of the scope.
 *
 * @typeParam T The transport.
 * @param options Set `transport` to `"unix"` for a unix domain socket, to
 * `"tls"` for TLS over TCP.
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
  if (transport !== "tcp" && transport !== "unix" && transport !== "tls") {
    throw new TypeError(
      `aiosocket(options): 'options.transport' must be "tcp", "unix" or "tls", received ${
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
 * @typeParam T The transport: `"tcp"`, `"unix"` or `"tls"`.
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
  /** Why the socket closed itself, if it did. */
  #closedBy: string | null = null;
  #listener: Deno.Listener | null = null;
  #conn: Deno.Conn | null = null;
  /** Whether #conn is a TlsConn. */
  #tls: boolean;
  #shut = false;
  // Read side: one read (or accept) in flight, and what it brought: the bytes
  // #rbuf[#start, #end). A read goes into #rbuf at #readAt, #readLength bytes
  // (see #startRead); #shared: recv() handed out views of #rbuf.
  #reading = false;
  #receiving = false;
  #rbuf: Uint8Array | null = null;
  #shared = false;
  #readSize = MIN_READ;
  #readAt = 0;
  #readLength = 0;
  #start = 0;
  #end = 0;
  #eof = false;
  #accepted: Deno.Conn | null = null;
  #error: { error: unknown } | null = null;
  #readers: WaitQueue = new WaitQueue(() => "AIOSocket.waitReadable()", true);
  // Write side: one write, closeWrite, connect or upgrade in flight, and its
  // outcome; the buffer copied writes go out of; whether the last write was short.
  #writing: WriteOutcome | null = null;
  #wbuf: Uint8Array | null = null;
  #congested = false;
  #writers: WaitQueue = new WaitQueue(() => "AIOSocket.waitWritable()", true);

  private constructor(transport: T, conn: Deno.Conn | null) {
    if (transport !== "tcp" && transport !== "unix" && transport !== "tls") {
      throw new TypeError(
        "new AIOSocket(): sockets are made by aiosocket(), accept() and connect(), not by new",
      );
    }
    this.#transport = transport;
    this.#conn = conn;
    this.#tls = transport === "tls";
    this.#state = conn === null ? "new" : "connected";
  }
  static {
    adopt = (transport, conn) => new AIOSocket(transport, conn);
  }

  /**
   * Binds the socket to an address, which for Deno also starts listening.
   * `bind({ port: 0 })` picks a free port: read it from `localAddr`.
   *
   * @param addr `{ hostname?, port }` (hostname defaults to `"127.0.0.1"`),
   * `{ path }` for a unix socket, or `{ hostname?, port, cert, key }` for TLS
   * (`Deno.listenTls`).
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
    if (options.transport === "unix") this.#listener = Deno.listen(options);
    else if (options.transport === "tcp") this.#listener = Deno.listen(options);
    else {
      const { hostname, port, cert, key } = options as { hostname: string; port: number } & {
        cert: string;
        key: string;
      };
      this.#listener = Deno.listenTls({ hostname, port, cert, key });
    }
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
   * Hostile clients do not stop it: a connection that failed before it was
   * accepted (`NotConnected`, `ConnectionAborted`, `ConnectionReset`) is
   * skipped, and when the process is out of file descriptors (`EMFILE`,
   * `ENFILE`) it waits on the loop's clock, 1 ms, then twice as long each
   * time up to 100 ms, and tries again until a descriptor is free. Other
   * errors of the host's `accept()` pass through. On a TLS listener the
   * handshake happens with the first `recv()` or `send()`.
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
    let backoff = 0;
    for (;;) {
      yield* this.#readable("accept()", true, "listening");
      const conn = this.#accepted;
      if (conn !== null) {
        this.#accepted = null;
        return adopt(this.#transport, conn);
      }
      const { error } = this.#error!;
      this.#error = null; // the next try accepts again
      if (failedBeforeAccept(error)) continue;
      if (!outOfDescriptors(error)) throw error;
      backoff = Math.min(BACKOFF_MAX, backoff === 0 ? BACKOFF_MIN : 2 * backoff);
      this.#receiving = true; // still this accept()'s turn while it backs off
      try {
        yield* sleep(backoff);
      } finally {
        this.#receiving = false;
      }
    }
  }

  /**
   * Connects to a listening socket. Cancelling it aborts the host's connect.
   * A TLS socket also completes the handshake here, so a certificate the
   * client does not trust fails `connect()` (with Deno's `InvalidData`); a
   * cancelled TLS connect closes the connection once Deno hands it over.
   *
   * @param addr `{ hostname?, port }` (hostname defaults to `"127.0.0.1"`),
   * `{ path }` for a unix socket, or `{ hostname?, port, caCerts? }` for TLS
   * (`Deno.connectTls`).
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
        : options.transport === "tls"
        ? connectTls(options)
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
   * of stream. Only one task may `recv()` (or `recvInto()`) on a socket at a
   * time; cancelling it keeps the read in flight, and its bytes go to the
   * next call.
   *
   * When the peer resets the connection, the first `recv()` that meets the
   * reset throws Deno's `ConnectionReset` (bytes that came before it are
   * returned first); after that the stream has ended and `recv()` returns an
   * empty array. Deno (on Linux) reports a reset that arrives while unread
   * bytes wait on the peer's side as a plain end of stream: then no error.
   *
   * The bytes are the caller's: the socket never writes them again. They are
   * a view of the socket's read buffer when that is at most 4 KiB larger than
   * they are, else a copy, so keeping them keeps at most 4 KiB of other memory
   * alive (their `.buffer` may hold up to that much more, such as other bytes
   * of this connection); `slice()` them for an `ArrayBuffer` of their own.
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
    const start = this.#start;
    if (start < this.#end) {
      const buf = this.#rbuf!;
      const end = Math.min(this.#end, start + bufsize);
      this.#start = end;
      if (buf.length - (end - start) <= SLACK) { // a view keeps at most SLACK more alive
        this.#shared = true; // reads never write here again
        return buf.subarray(start, end);
      }
      return buf.slice(start, end);
    }
    this.#throwFailure();
    return new Uint8Array(0);
  }

  /**
   * Receives into `buffer`, from its start, and returns how many bytes came:
   * at most `buffer.length`, and `0` at end of stream (Python's `recv_into`).
   * It copies out of the socket's read buffer, so `buffer` is never written
   * after the call ends, even when it is cancelled; reusing one buffer spares
   * the allocation `recv()` makes for each result. Resets, cancellation and
   * the one-receiver rule are as for `recv()`.
   *
   * @param buffer Where the bytes go: a `Uint8Array` of length >= 1.
   * @returns A coroutine that returns the count, `0` at end of stream.
   * @throws {TypeError} If `buffer` is not a `Uint8Array`.
   * @throws {RangeError} If `buffer` is empty.
   *
   * @example Read a stream into one reused buffer
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
   *   yield* conn.sendAll(new Uint8Array(10_000).fill(1));
   *   yield* conn.shutdown();
   *   const buffer = new Uint8Array(4096);
   *   let total = 0;
   *   for (let n; (n = yield* client.recvInto(buffer)) > 0;) total += n;
   *   return total;
   * }
   * assertEquals(await new Loop().runTask(main()), 10_000);
   * ```
   */
  recvInto(buffer: Uint8Array): Coroutine<number> {
    if (!(buffer instanceof Uint8Array)) {
      throw new TypeError(
        `AIOSocket.recvInto(buffer): 'buffer' must be a Uint8Array, received ${show(buffer)}`,
      );
    }
    if (buffer.length === 0) {
      throw new RangeError(
        "AIOSocket.recvInto(buffer): 'buffer' must have a length >= 1, received an empty Uint8Array",
      );
    }
    return this.#recvInto(buffer);
  }

  *#recvInto(buffer: Uint8Array): Coroutine<number> {
    yield* this.#readable("recvInto()", true, "connected");
    const start = this.#start;
    if (start < this.#end) {
      const n = Math.min(buffer.length, this.#end - start);
      buffer.set(this.#rbuf!.subarray(start, start + n));
      this.#start = start + n;
      return n;
    }
    this.#throwFailure();
    return 0;
  }

  /** Throws the read side's error once; the stream has ended after it. */
  #throwFailure(): void {
    const failure = this.#error;
    if (failure !== null) {
      this.#error = null; // reported once; the stream has ended
      this.#eof = true;
      throw failure.error;
    }
  }

  /**
   * Writes once and returns how many bytes the host took, which may be fewer
   * than given (use `sendAll()` to send everything). Waits first while another
   * write is in flight.
   *
   * Once it has ended, by returning, throwing or being cancelled, the socket
   * never reads `bytes` again, and the peer has received (or will receive) a
   * prefix of them, then whatever is sent next. A write of at most 64 KiB, or
   * any write while the connection is congested, is copied first (at most
   * 64 KiB of it); a larger one goes out of `bytes` itself, and if the call is
   * cancelled while Deno still holds it, the socket closes (see the module's
   * header), so later uses throw an `Error` that says why.
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
    if (this.#writing !== null || this.#state !== "connected" || this.#shut) {
      yield* this.#writable("send()", true, "connected"); // parks, or throws the misuse
    }
    return bytes.length === 0 ? 0 : yield* this.#write("send()", bytes);
  }

  /** One write of (a prefix of) `bytes`, copied or not (see the header). */
  #write(where: string, bytes: Uint8Array): Coroutine<number> {
    const n = bytes.length;
    if (n > COPY_MAX && !this.#congested) {
      return this.#writeOp(where, this.#conn!.write(bytes), n, true);
    }
    const size = n < COPY_MAX ? n : COPY_MAX;
    let buf = this.#wbuf;
    if (buf === null || buf.length < size) {
      buf = this.#wbuf = new Uint8Array(Math.max(1024, 2 ** Math.ceil(Math.log2(size))));
    }
    buf.set(size === n ? bytes : bytes.subarray(0, size));
    return this.#writeOp(where, this.#conn!.write(buf.subarray(0, size)), size, false);
  }

  /**
   * Sends every byte, calling `send()` until all are written. Its safety is
   * `send()`'s: once it has ended, in any way, `bytes` is never read again,
   * and the peer gets a prefix of them, then whatever is sent next.
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
      if (this.#writing !== null || this.#state !== "connected" || this.#shut) {
        yield* this.#writable("sendAll()", true, "connected"); // parks, or throws the misuse
      }
      if (sent === bytes.length) break; // nothing to send: only checked the state
      sent += yield* this.#write("sendAll()", sent === 0 ? bytes : bytes.subarray(sent));
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
   * Upgrades a connected TCP client to TLS (`Deno.startTls`), as a protocol's
   * STARTTLS does, and completes the handshake: a certificate the client does
   * not trust fails it with Deno's `InvalidData`. Waits first for a write in
   * flight. The socket stays the same object; from then on it speaks TLS, and
   * `setNoDelay()`/`setKeepAlive()` are no longer available (Deno's `TlsConn`
   * has neither). If the upgrade fails or is cancelled, the socket is closed.
   *
   * @param options `hostname` (the name the certificate must carry; by
   * default the one connected to) and `caCerts` (extra trusted roots, PEM).
   * @returns A coroutine to use with `yield*`.
   * @throws {TypeError} If `options` is not `{ hostname?: string, caCerts?: string[] }`.
   * @throws {Error} Unless the socket is a connected TCP client with nothing
   * read ahead and no read in flight (a cancelled `recv()` leaves one).
   *
   * @example Upgrade a plain connection
   * ```ts
   * import { gather, Loop } from "@boucle/boucle";
   * import { aiosocket } from "@boucle/boucle/socket";
   * import { assertEquals } from "@std/assert";
   *
   * const cert = Deno.readTextFileSync("tests/fixtures/tls_cert.pem");
   * const key = Deno.readTextFileSync("tests/fixtures/tls_key.pem");
   * function* main() {
   *   using server = aiosocket({ transport: "tls" });
   *   yield* server.bind({ hostname: "127.0.0.1", port: 0, cert, key });
   *   yield* server.listen();
   *   using client = aiosocket();
   *   const [conn] = yield* gather(server.accept(), client.connect(server.localAddr));
   *   using _conn = conn;
   *   yield* client.startTls({ hostname: "localhost", caCerts: [cert] });
   *   yield* client.sendAll(new TextEncoder().encode("secret"));
   *   return new TextDecoder().decode(yield* conn.recv(64));
   * }
   * assertEquals(await new Loop().runTask(main()), "secret");
   * ```
   */
  startTls(options: StartTlsOptions = {}): Coroutine<void> {
    const o = (typeof options === "object" && options !== null ? options : null) as
      | Record<string, unknown>
      | null;
    if (
      o === null || (o.hostname !== undefined && typeof o.hostname !== "string") ||
      (o.caCerts !== undefined &&
        !(Array.isArray(o.caCerts) && o.caCerts.every((c) => typeof c === "string")))
    ) {
      throw new TypeError(
        `AIOSocket.startTls(options): 'options' must be { hostname?: string, caCerts?: string[] }, received ${
          showAddress(options)
        }`,
      );
    }
    return this.#startTls(options);
  }

  *#startTls(options: StartTlsOptions): Coroutine<void> {
    yield* this.#writable("startTls()", true, "connected");
    if (this.#transport !== "tcp" || this.#tls) {
      throw new Error(
        `AIOSocket.startTls(): the socket already speaks ${
          this.#tls ? "TLS" : `"${this.#transport}"`
        }; startTls() upgrades a TCP connection`,
      );
    }
    if (this.#reading || this.#receiving || this.#start < this.#end || this.#eof) {
      throw new Error(
        "AIOSocket.startTls(): bytes were read ahead or a read is in flight (a cancelled recv() leaves one); upgrade before receiving",
      );
    }
    const tcp = this.#conn as Deno.TcpConn;
    this.#conn = null; // Deno.startTls takes the TCP connection over
    this.#state = "connecting";
    const tlsOptions: Deno.StartTlsOptions = {};
    if (options.hostname !== undefined) tlsOptions.hostname = options.hostname;
    else tlsOptions.hostname = (tcp.remoteAddr as Deno.NetAddr).hostname;
    if (options.caCerts !== undefined) tlsOptions.caCerts = options.caCerts;
    const upgrading = handshake(Deno.startTls(tcp, tlsOptions)).then(
      (tls) => {
        if (this.#state !== "connecting") return tls.close(); // cancelled or closed meanwhile
        this.#conn = tls;
        this.#tls = true;
        this.#state = "connected";
      },
      (error) => {
        if (this.#state === "connecting") this.close();
        throw error;
      },
    );
    try {
      yield* this.#writeOp("startTls()", upgrading);
    } finally {
      if (this.#state as State === "connecting") this.close(); // cancelled: the connection is Deno's
    }
  }

  /**
   * Sets `TCP_NODELAY` on a connected TCP socket: `true` (Deno's default)
   * sends small writes at once, `false` lets Nagle's algorithm gather them.
   *
   * @param on Whether to disable Nagle's algorithm.
   * @throws {TypeError} If `on` is not a boolean.
   * @throws {Error} Unless the socket is a connected TCP socket (not unix,
   * not TLS: Deno's `TlsConn` has no such setting).
   *
   * @example Usage
   * ```ts
   * import { gather, Loop } from "@boucle/boucle";
   * import { aiosocket } from "@boucle/boucle/socket";
   *
   * function* main() {
   *   using server = aiosocket();
   *   yield* server.bind({ port: 0 });
   *   yield* server.listen();
   *   using client = aiosocket();
   *   const [conn] = yield* gather(server.accept(), client.connect(server.localAddr));
   *   using _conn = conn;
   *   client.setNoDelay(false);
   *   client.setNoDelay();
   * }
   * await new Loop().runTask(main());
   * ```
   */
  setNoDelay(on: boolean = true): void {
    this.#tcp("setNoDelay(on)", on).setNoDelay(on);
  }

  /**
   * Turns TCP keep-alive probes on or off on a connected TCP socket, so that
   * a peer that vanished without a word is eventually noticed.
   *
   * @param on Whether to send keep-alive probes.
   * @throws {TypeError} If `on` is not a boolean.
   * @throws {Error} Unless the socket is a connected TCP socket (not unix,
   * not TLS: Deno's `TlsConn` has no such setting).
   *
   * @example Usage
   * ```ts
   * import { gather, Loop } from "@boucle/boucle";
   * import { aiosocket } from "@boucle/boucle/socket";
   *
   * function* main() {
   *   using server = aiosocket();
   *   yield* server.bind({ port: 0 });
   *   yield* server.listen();
   *   using client = aiosocket();
   *   const [conn] = yield* gather(server.accept(), client.connect(server.localAddr));
   *   using _conn = conn;
   *   conn.setKeepAlive();
   * }
   * await new Loop().runTask(main());
   * ```
   */
  setKeepAlive(on: boolean = true): void {
    this.#tcp("setKeepAlive(on)", on).setKeepAlive(on);
  }

  /** Checks `on` and the socket for setNoDelay/setKeepAlive; returns the TcpConn. */
  #tcp(where: string, on: unknown): Deno.TcpConn {
    if (typeof on !== "boolean") {
      throw new TypeError(`AIOSocket.${where}: 'on' must be a boolean, received ${show(on)}`);
    }
    const name = where.slice(0, where.indexOf("("));
    this.#expect(`${name}()`, "connected");
    if (this.#transport === "unix" || this.#tls) {
      throw new Error(
        `AIOSocket.${name}(): needs a TCP connection; this one is ${
          this.#tls ? "TLS (Deno's TlsConn has no such setting)" : "a unix socket"
        }`,
      );
    }
    return this.#conn as Deno.TcpConn;
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
      this.#rbuf =
      this.#wbuf =
      this.#error =
        null;
    this.#start = this.#end = 0;
    this.#readers.wakeAll();
    this.#writers.wakeAll();
  }

  /**
   * After `close()`, parks until the host operations that were in flight when
   * it closed have settled. For a listener, that is when its port is free
   * again: Deno frees it only once a pending `accept()` has ended, a turn of
   * the host's loop after `close()` (asyncio's `Server.wait_closed()`).
   *
   * @returns A coroutine to use with `yield*`.
   * @throws {Error} If the socket is not closed.
   *
   * @example Usage
   * ```ts
   * import { Loop } from "@boucle/boucle";
   * import { aiosocket } from "@boucle/boucle/socket";
   * import { assertRejects } from "@std/assert";
   *
   * function* main() {
   *   const server = aiosocket();
   *   yield* server.bind({ port: 0 });
   *   yield* server.listen();
   *   const { port } = server.localAddr;
   *   const acceptor = Loop.current.addTask(server.accept());
   *   yield; // the acceptor parks: an accept() is in flight
   *   server.close(); // wakes the acceptor with an error saying so
   *   yield* server.waitClosed();
   *   Deno.listen({ hostname: "127.0.0.1", port }).close(); // the port is free again
   *   yield* acceptor; // throws "closed"
   * }
   * await assertRejects(() => new Loop().runTask(main()), Error, "closed");
   * ```
   */
  *waitClosed(): Coroutine<void> {
    if (this.#state !== "closed") {
      throw new Error("AIOSocket.waitClosed(): the socket is not closed; call close() first");
    }
    while (this.#reading) yield this.#readers;
    while (this.#writing !== null) yield this.#writers;
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
    const needs = state === "closed"
      ? (this.#closedBy === null ? "" : `: ${this.#closedBy}`)
      : `; ${where} needs a ${states.join(" or ")} socket`;
    throw new Error(`AIOSocket.${where}: the socket ${STATES[state]}${needs}`);
  }

  /**
   * Parks until the socket is readable, checking its state before and after.
   * `exclusive` (`recv()`, `recvInto()`, `accept()`): one task at a time.
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
    // Nothing is buffered here: reads start only when all was consumed. The
    // read goes after the last one if views were handed out (they own what
    // is before), else at the start; into a new buffer when the room left is
    // under MIN_ROOM, or the buffer is smaller than the read wanted, or
    // (unshared) four times bigger.
    const want = this.#readSize;
    let buf = this.#rbuf;
    let at = this.#shared ? this.#end : 0;
    if (
      buf === null || buf.length - at < MIN_ROOM || buf.length < want ||
      (!this.#shared && buf.length > 4 * want)
    ) {
      buf = this.#rbuf = new Uint8Array(want);
      this.#shared = false;
      at = 0;
    }
    const length = Math.min(want, buf.length - at);
    this.#readAt = this.#start = this.#end = at;
    this.#readLength = length;
    this.#conn!.read(length === buf.length ? buf : buf.subarray(at, at + length)).then(
      this.#onRead,
      this.#onReadFailed,
    );
  }

  // The read side's handlers, made once per socket rather than per read.
  readonly #onRead = (n: number | null): void => {
    if (n === null) {
      this.#eof = true;
    } else if (this.#rbuf !== null) { // null: closed meanwhile
      this.#end = this.#readAt + n;
      const size = this.#readSize;
      if (n === this.#readLength && n === size) this.#readSize = Math.min(MAX_READ, 2 * size);
      else if (4 * n < size) this.#readSize = Math.max(MIN_READ, size >> 2);
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

  /**
   * Makes `operation` the write side's one in flight and parks until it
   * settles. `direct`: it reads the caller's memory, so a call that ends
   * before it settles must make sure Deno no longer holds it (the header).
   */
  *#writeOp<R>(where: string, operation: Promise<R>, size = 0, direct = false): Coroutine<R> {
    const outcome: WriteOutcome = {
      done: false,
      failed: false,
      value: undefined,
      size,
      direct,
      checked: false,
      awaited: false,
    };
    this.#writing = outcome;
    operation.then(this.#onWritten, this.#onWriteFailed);
    if (direct || size >= CHECK_MIN || this.#congested) {
      // A write Deno ran at once has settled after one microtask; one it holds
      // settles only in a later turn of the host's loop. Three is a margin.
      queueMicrotask(() =>
        queueMicrotask(() =>
          queueMicrotask(() => {
            outcome.checked = true;
            if (outcome.awaited && !outcome.done) this.#writers.wakeAll();
          })
        )
      );
    }
    try {
      while (!outcome.done) {
        yield this.#writers;
        if (!outcome.done) this.#expect(where, "connecting", "connected");
      }
    } catch (error) {
      if (direct && !outcome.done) yield* this.#letGo(outcome);
      throw error;
    }
    if (outcome.failed) throw outcome.value;
    return outcome.value as R;
  }

  /**
   * A direct write's call is ending (cancelled) before the write settled:
   * waits for the microtask check (a host turn at most); if Deno still holds
   * the caller's bytes then, closes the socket, which makes Deno let go.
   */
  *#letGo(outcome: WriteOutcome): Coroutine<void> {
    outcome.awaited = true;
    while (!outcome.checked && !outcome.done && this.#state !== "closed") {
      try {
        yield this.#writers;
      } catch {
        // already ending: the first error is the one thrown
      }
    }
    if (!outcome.done && this.#state !== "closed") {
      this.close();
      this.#closedBy = HELD_BYTES;
    }
  }

  // The write side's handlers, made once per socket rather than per write.
  readonly #onWritten = (value: unknown): void => this.#writeSettled(false, value);
  readonly #onWriteFailed = (error: unknown): void => this.#writeSettled(true, error);
  #writeSettled(failed: boolean, value: unknown): void {
    const outcome = this.#writing!;
    outcome.done = true;
    outcome.failed = failed;
    outcome.value = value;
    if (outcome.size > 0 && !failed) {
      // Congested: the host took fewer bytes than given, or held the write
      // (its check ran first); only a write it took whole at once clears it.
      this.#congested = (value as number) < outcome.size || outcome.checked;
    }
    this.#writing = null;
    this.#writers.wakeAll();
  }

  /** Checks an address against the transport; returns the options for Deno. */
  #hostOptions(where: string, addr: unknown): HostOptions {
    const transport = this.#transport;
    const a = (typeof addr === "object" && addr !== null ? addr : {}) as Record<string, unknown>;
    const net = transport === "tls" ? "tcp" : transport; // Deno's NetAddr says "tcp" for TLS too
    const ok = addr === a &&
      (a.transport === undefined || a.transport === transport || a.transport === net) &&
      (transport === "unix"
        ? typeof a.path === "string" && a.path !== "" && !("port" in a) && !("hostname" in a)
        : typeof a.port === "number" && !("path" in a) &&
          (a.hostname === undefined || typeof a.hostname === "string"));
    if (!ok) {
      const shape = transport === "unix"
        ? "{ path: string }"
        : transport === "tls"
        ? "{ hostname?: string, port: number, ... }"
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
    const hostname = (a.hostname as string | undefined) ?? "127.0.0.1";
    if (transport === "tcp") return { transport, hostname, port };
    if (where.startsWith("bind")) {
      if (typeof a.cert !== "string" || typeof a.key !== "string") {
        throw new TypeError(
          `AIOSocket.${where}: 'addr.cert' and 'addr.key' must be PEM strings for a "tls" socket, received ${
            show(a.cert)
          } and ${show(a.key)}`,
        );
      }
      return { transport, hostname, port, cert: a.cert, key: a.key };
    }
    const caCerts = a.caCerts;
    if (caCerts === undefined) return { transport, hostname, port };
    if (!(Array.isArray(caCerts) && caCerts.every((c) => typeof c === "string"))) {
      throw new TypeError(
        `AIOSocket.${where}: 'addr.caCerts' must be an array of PEM strings, received ${
          show(caCerts)
        }`,
      );
    }
    return { transport, hostname, port, caCerts };
  }
}

/** A connection that failed before `accept()` took it: skip it. */
function failedBeforeAccept(error: unknown): boolean {
  return error instanceof Deno.errors.NotConnected ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.ConnectionReset;
}

/** The process (or system) is out of file descriptors: back off. */
function outOfDescriptors(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "EMFILE" || code === "ENFILE";
}

/** `Deno.connectTls`, then the handshake, so that a bad certificate fails here. */
function connectTls(
  { hostname, port, caCerts }: { hostname: string; port: number; caCerts?: string[] },
): Promise<Deno.TlsConn> {
  return handshake(Deno.connectTls(caCerts ? { hostname, port, caCerts } : { hostname, port }));
}

async function handshake(connecting: Promise<Deno.TlsConn>): Promise<Deno.TlsConn> {
  const conn = await connecting;
  try {
    await conn.handshake();
  } catch (error) {
    conn.close();
    throw error;
  }
  return conn;
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
