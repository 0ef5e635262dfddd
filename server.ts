// Copyright 2026 the boucle authors. MIT license.
/**
 * Servers: `serve(options, handler)` listens, accepts connections and runs
 * `handler(conn)` for each one in its own task, until it is cancelled
 * (asyncio's `start_server`, trio's `serve_tcp`).
 *
 * ```ts ignore
 * yield* serve({ port: 8080 }, function* (conn) {
 *   for (let data; (data = yield* conn.recv(65536)).length > 0;) yield* conn.sendAll(data);
 * });
 * ```
 *
 * How it runs. `serve` binds a listener, calls `onListen(addr)`, then runs a
 * task group whose body is the accept loop and whose children are the
 * connections: one task per connection, named after the peer. A child calls
 * the handler, reports what it throws to `onError`, and closes the
 * connection when the handler ends, however it ends. Cancelling the task that
 * runs `serve` cancels the accept loop, which closes the listener at once (new
 * clients are refused, not queued), then the group cancels every handler at
 * its suspension point and waits for them to unwind; connections a
 * cancellation reached before their task ran are closed too; then the
 * `CancelledError` propagates.
 *
 * Decisions where the design leaves room:
 * - `hostname` defaults to `"127.0.0.1"`, as for `AIOSocket.bind()`: a server
 *   is reachable from other hosts only when asked (`hostname: "0.0.0.0"`).
 *   `port` is required for TCP and TLS; `port: 0` lets the system choose, and
 *   `onListen` tells which.
 * - A handler's error never stops the server, nor does a client: the error
 *   goes to `onError(error, conn)`, with `conn` still open unless the handler
 *   closed it. That includes a peer's `ConnectionReset` or `BrokenPipe`: a
 *   handler that expects clients to vanish catches those itself. An error
 *   thrown by `onError` is logged with `console.error` and dropped.
 * - The `CancelledError` of the server's own stop ends a handler silently.
 *   One that comes out of a handler while the server runs (the handler's
 *   task was cancelled on its own, or it let out a task's cancellation) goes
 *   to `onError` like any error: the handler did not finish its work.
 * - `maxConnections` is a semaphore taken before `accept()` and given back
 *   when a connection is closed: at the limit no accept is in flight, so
 *   further clients wait in the system's listen queue, not in the process.
 * - `AIOSocket.accept()` skips connections that failed before they were
 *   taken and backs off when the process is out of file descriptors; any
 *   error it still throws ends `serve` with that error, after the handlers
 *   have been cancelled and awaited.
 * - TLS: Deno completes a server's handshake on the connection's first read
 *   or write, so it happens in the handler's task: a client that fails it
 *   (no TLS, an untrusted peer) is a handler error, `InvalidData`, reported
 *   to `onError`; it never stalls the accept loop.
 * - `reusePort: true` throws `Deno.errors.NotSupported` for now:
 *   `AIOSocket.bind()` cannot pass `SO_REUSEPORT` to `Deno.listen` yet, and
 *   an option silently dropped would be worse than one refused.
 * - A unix socket's file is removed when the listener closes (Deno does it).
 * - `onListen` runs once, in the serving task, after the listener is bound
 *   and before the first accept; an error it throws ends `serve`. To learn the
 *   port from a task group, hand it `TaskGroup.start`'s `ready`:
 *   `yield* group.start((ready) => serve({ port: 0, onListen: ready }, h))`.
 *
 * @module
 */

import { type Awaitable, CancelledError, type Coroutine } from "./loop.ts";
import { shield, taskGroup } from "./scope.ts";
import { Semaphore } from "./sync.ts";
import { type AIOSocket, aiosocket, type Transport } from "./socket.ts";
import { checkCount, show } from "./_validate.ts";

/**
 * The address a server listens on, as `onListen` receives it: Deno's
 * `NetAddr` for TCP and TLS, `UnixAddr` for a unix socket.
 *
 * @typeParam T The transport.
 *
 * @example Usage
 * ```ts
 * import type { ListenAddr } from "@boucle/boucle/server";
 * import { assertEquals } from "@std/assert";
 *
 * const addr: ListenAddr<"tcp"> = { transport: "tcp", hostname: "127.0.0.1", port: 8080 };
 * assertEquals(addr.port, 8080);
 * ```
 */
export type ListenAddr<T extends Transport = Transport> = T extends "unix" ? Deno.UnixAddr
  : Deno.NetAddr;

/**
 * Options for `serve()`. Which address fields apply depends on `transport`:
 * `hostname` and `port` for TCP, the same plus `cert` and `key` for TLS,
 * `path` for a unix socket; a field that does not apply is a `TypeError`.
 *
 * @typeParam T The transport.
 *
 * @example Usage
 * ```ts
 * import type { ServeOptions } from "@boucle/boucle/server";
 * import { assertEquals } from "@std/assert";
 *
 * const options: ServeOptions = { hostname: "127.0.0.1", port: 0, maxConnections: 100 };
 * assertEquals(options.transport ?? "tcp", "tcp");
 * ```
 */
export interface ServeOptions<T extends Transport = "tcp"> {
  /**
   * `"tcp"`, `"unix"`, or `"tls"` (TCP with TLS, `cert` and `key` required).
   *
   * @default {"tcp"}
   */
  transport?: T;
  /**
   * The interface to listen on (TCP, TLS).
   *
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /** The port to listen on (TCP, TLS; required): an integer from 0 to 65535, 0 for any free one. */
  port?: number;
  /** The socket file to listen on (unix; required). */
  path?: string;
  /** The certificate chain in PEM format (TLS; required). */
  cert?: string;
  /** The private key in PEM format (TLS; required). */
  key?: string;
  /**
   * Sets `SO_REUSEPORT` (TCP, TLS): several processes may listen on the port,
   * and the system spreads the connections between them. Not supported yet:
   * `true` throws `Deno.errors.NotSupported`, until `AIOSocket.bind()` can
   * pass it on to `Deno.listen`.
   *
   * @default {false}
   */
  reusePort?: boolean;
  /**
   * The most connections open at once: an integer >= 1, or `Infinity`. At the
   * limit the server accepts no more until one closes; clients wait in the
   * system's listen queue.
   *
   * @default {Infinity}
   */
  maxConnections?: number;
  /**
   * Called once with the address the server listens on (its real port after
   * `port: 0`), before the first connection is accepted.
   */
  onListen?: (addr: ListenAddr<T>) => void;
  /**
   * Called with each error a handler throws and the connection it was
   * serving. The default logs the error with `console.error`, naming the peer.
   */
  onError?: (error: unknown, conn: AIOSocket<T>) => void;
}

/**
 * What `serve()` runs for each connection: given the connected socket, it
 * returns an Awaitable, typically a generator (a `function*`). The
 * connection is closed when it ends.
 *
 * @typeParam T The transport.
 *
 * @example Usage
 * ```ts
 * import type { Handler } from "@boucle/boucle/server";
 * import { assertEquals } from "@std/assert";
 *
 * const hello: Handler = function* (conn) {
 *   yield* conn.sendAll(new TextEncoder().encode("hello\n"));
 * };
 * assertEquals(typeof hello, "function");
 * ```
 */
export type Handler<T extends Transport = "tcp"> = (conn: AIOSocket<T>) => Awaitable<unknown>;

/** The checked options, with the address in the shape `bind()` takes. */
interface Config<T extends Transport> {
  transport: T;
  address: Record<string, unknown>;
  maxConnections: number;
  onListen: ((addr: ListenAddr<T>) => void) | undefined;
  onError: ((error: unknown, conn: AIOSocket<T>) => void) | undefined;
}

const WHERE = "serve(options, handler)";

/**
 * Serves connections until cancelled: listens on the address in `options`,
 * and runs `handler(conn)` for each connection in a task of its own, in a task
 * group. The connection is closed when its handler ends. A handler's error
 * goes to `options.onError` and never stops the server; neither does a client
 * that resets before it is accepted, sends half a message and vanishes, or
 * never reads. Cancelling the task running `serve` stops accepting (the
 * listener closes at once), cancels the handlers at their suspension points,
 * waits for them to unwind and closes every connection; then its
 * `CancelledError` propagates. `serve` returns no other way: it throws only
 * that cancellation, a listening error (`AddrInUse`, …), or an error of
 * `onListen`.
 *
 * Arguments are checked when `serve` is called; the listener is bound when
 * the coroutine first runs.
 *
 * @typeParam T The transport: `"tcp"` (default), `"unix"` or `"tls"`.
 * @param options The address (`hostname` and `port`, or `path`; `cert` and
 * `key` for TLS), `reusePort`, `maxConnections`, `onListen`, `onError`.
 * @param handler Given each connection, returns an Awaitable (a generator)
 * that serves it.
 * @returns A coroutine that serves until it is cancelled.
 * @throws {TypeError} If `handler` is not a function, or an option has the
 * wrong type or does not fit the transport.
 * @throws {RangeError} If `options.port` is not an integer from 0 to 65535,
 * or `options.maxConnections` is not an integer >= 1 or `Infinity`.
 * @throws {Deno.errors.NotSupported} If `options.reusePort` is `true` (not
 * supported yet).
 *
 * @example An echo server, its port learnt with TaskGroup.start
 * ```ts
 * import { Loop } from "@boucle/boucle";
 * import { taskGroup } from "@boucle/boucle/scope";
 * import { type AIOSocket, aiosocket } from "@boucle/boucle/socket";
 * import { serve } from "@boucle/boucle/server";
 * import { assertEquals } from "@std/assert";
 *
 * function* echo(conn: AIOSocket) {
 *   for (let data; (data = yield* conn.recv(1024)).length > 0;) yield* conn.sendAll(data);
 * }
 * const reply = await new Loop().runTask(taskGroup(function* (group) {
 *   const addr = yield* group.start<Deno.NetAddr>((ready) =>
 *     serve({ port: 0, onListen: ready }, echo)
 *   );
 *   using client = aiosocket();
 *   yield* client.connect(addr);
 *   yield* client.sendAll(new TextEncoder().encode("ping"));
 *   const reply = new TextDecoder().decode(yield* client.recv(1024));
 *   group.cancel(); // stops the server
 *   return reply;
 * }));
 * assertEquals(reply, "ping");
 * ```
 *
 * @example A handler's error goes to onError; the server goes on
 * ```ts
 * import { Loop } from "@boucle/boucle";
 * import { taskGroup } from "@boucle/boucle/scope";
 * import { aiosocket } from "@boucle/boucle/socket";
 * import { serve } from "@boucle/boucle/server";
 * import { assertEquals } from "@std/assert";
 *
 * const errors: string[] = [];
 * const replies = await new Loop().runTask(taskGroup(function* (group) {
 *   const addr = yield* group.start<Deno.NetAddr>((ready) =>
 *     serve({
 *       port: 0,
 *       onListen: ready,
 *       onError: (error) => errors.push((error as Error).message),
 *     }, function* (conn) {
 *       const name = new TextDecoder().decode(yield* conn.recv(64));
 *       if (name === "") throw new Error("no name");
 *       yield* conn.sendAll(new TextEncoder().encode(`hello ${name}`));
 *     })
 *   );
 *   const replies: string[] = [];
 *   for (const name of ["", "ada"]) {
 *     using client = aiosocket();
 *     yield* client.connect(addr);
 *     if (name === "") yield* client.shutdown();
 *     else yield* client.sendAll(new TextEncoder().encode(name));
 *     replies.push(new TextDecoder().decode(yield* client.recv(64)));
 *   }
 *   group.cancel();
 *   return replies;
 * }));
 * assertEquals(replies, ["", "hello ada"]);
 * assertEquals(errors, ["no name"]);
 * ```
 */
export function serve<T extends Transport = "tcp">(
  options: ServeOptions<T>,
  handler: Handler<NoInfer<T>>,
): Coroutine<void> {
  const config = checkOptions<T>(options);
  if (typeof handler !== "function") {
    throw new TypeError(`${WHERE}: 'handler' must be a function, received ${show(handler)}`);
  }
  return run(config, handler);
}

function* run<T extends Transport>(config: Config<T>, handler: Handler<T>): Coroutine<void> {
  using listener = aiosocket({ transport: config.transport });
  yield* listener.bind(config.address as never);
  yield* listener.listen();
  config.onListen?.(listener.localAddr as ListenAddr<T>);
  const slots = config.maxConnections === Infinity
    ? null
    : new Semaphore(config.maxConnections, { name: "serve() connections" });
  const open = new Set<AIOSocket<T>>(); // accepted and not yet closed by their task
  let stopping = false;

  function* connection(conn: AIOSocket<T>, peer: string, permit: Disposable | null) {
    try {
      const work: unknown = handler(conn);
      if (typeof (work as Partial<Awaitable<unknown>> | null)?.[Symbol.iterator] !== "function") {
        throw new TypeError(
          `serve(): the handler must return an Awaitable (a generator), received ${show(work)}`,
        );
      }
      yield* work as Awaitable<unknown>;
    } catch (error) {
      if (!(stopping && error instanceof CancelledError)) report(error, conn, peer);
    } finally {
      open.delete(conn);
      conn.close();
      permit?.[Symbol.dispose]();
    }
  }

  function report(error: unknown, conn: AIOSocket<T>, peer: string): void {
    const onError = config.onError;
    if (onError === undefined) {
      console.error(`serve(): the handler of ${peer} failed:`, error);
      return;
    }
    try {
      onError(error, conn);
    } catch (thrown) {
      console.error(`serve(): onError threw while reporting an error of ${peer}:`, thrown, error);
    }
  }

  try {
    yield* taskGroup(function* (group) {
      try {
        for (;;) {
          const permit = slots === null ? null : yield* slots.acquire();
          let conn: AIOSocket<T>;
          try {
            conn = yield* listener.accept();
          } catch (error) {
            permit?.[Symbol.dispose]();
            throw error;
          }
          open.add(conn);
          const peer = peerOf(conn);
          group.spawn(connection(conn, peer, permit), { name: peer });
        }
      } finally {
        stopping = true;
        listener.close(); // refuse new clients while the handlers unwind
        // The port is free once an accept in flight has ended; a second
        // cancel() must not cut that short, or serve() returns with it bound.
        yield* shield(listener.waitClosed());
      }
    });
  } finally {
    for (const conn of open) conn.close(); // their tasks were cancelled before they ran
  }
}

/** The peer of a new connection, for task names and the default `onError`. */
function peerOf(conn: AIOSocket<Transport>): string {
  try {
    const addr = conn.remoteAddr;
    if (addr.transport === "unix" || addr.transport === "unixpacket") {
      return `unix:${(addr as Deno.UnixAddr).path || "(unnamed)"}`;
    }
    const { hostname, port } = addr as Deno.NetAddr;
    return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
  } catch {
    return "(unknown peer)"; // closed meanwhile
  }
}

function checkOptions<T extends Transport>(options: unknown): Config<T> {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`${WHERE}: 'options' must be an object, received ${show(options)}`);
  }
  const o = options as Record<string, unknown>;
  const transport = o.transport ?? "tcp";
  if (transport !== "tcp" && transport !== "unix" && transport !== "tls") {
    throw new TypeError(
      `${WHERE}: 'options.transport' must be "tcp", "unix" or "tls", received ${show(transport)}`,
    );
  }
  const fields: Record<string, string[]> = {
    tcp: ["hostname", "port", "reusePort"],
    tls: ["hostname", "port", "reusePort", "cert", "key"],
    unix: ["path"],
  };
  for (const name of ["hostname", "port", "path", "cert", "key", "reusePort"]) {
    if (o[name] !== undefined && !fields[transport]!.includes(name)) {
      throw new TypeError(
        `${WHERE}: 'options.${name}' does not apply to a "${transport}" server, received ${
          show(o[name])
        }`,
      );
    }
  }
  const address: Record<string, unknown> = {};
  if (transport === "unix") {
    if (typeof o.path !== "string" || o.path === "") {
      throw new TypeError(
        `${WHERE}: 'options.path' must be a non-empty string for a "unix" server, received ${
          show(o.path)
        }`,
      );
    }
    address.path = o.path;
  } else {
    if (o.hostname !== undefined && typeof o.hostname !== "string") {
      throw new TypeError(
        `${WHERE}: 'options.hostname' must be a string, received ${show(o.hostname)}`,
      );
    }
    const port = o.port;
    const what = "an integer from 0 to 65535";
    if (typeof port !== "number") {
      throw new TypeError(`${WHERE}: 'options.port' must be ${what}, received ${show(port)}`);
    }
    if (!(Number.isInteger(port) && port >= 0 && port <= 65535)) {
      throw new RangeError(`${WHERE}: 'options.port' must be ${what}, received ${show(port)}`);
    }
    address.hostname = o.hostname ?? "127.0.0.1";
    address.port = port;
    if (o.reusePort !== undefined) {
      if (typeof o.reusePort !== "boolean") {
        throw new TypeError(
          `${WHERE}: 'options.reusePort' must be a boolean, received ${show(o.reusePort)}`,
        );
      }
      if (o.reusePort) {
        // AIOSocket.bind() has no way to pass it to Deno.listen yet; never drop it silently.
        throw new Deno.errors.NotSupported(
          `${WHERE}: 'options.reusePort' is not supported yet: AIOSocket.bind() cannot set SO_REUSEPORT`,
        );
      }
    }
    if (transport === "tls") {
      for (const name of ["cert", "key"]) {
        if (typeof o[name] !== "string" || o[name] === "") {
          throw new TypeError(
            `${WHERE}: 'options.${name}' must be a PEM string for a "tls" server, received ${
              show(o[name])
            }`,
          );
        }
        address[name] = o[name];
      }
    }
  }
  const maxConnections = checkCount(
    WHERE,
    "options.maxConnections",
    o.maxConnections ?? Infinity,
    1,
    true,
  );
  for (const name of ["onListen", "onError"]) {
    if (o[name] !== undefined && typeof o[name] !== "function") {
      throw new TypeError(
        `${WHERE}: 'options.${name}' must be a function, received ${show(o[name])}`,
      );
    }
  }
  return {
    transport: transport as T,
    address,
    maxConnections,
    onListen: o.onListen as Config<T>["onListen"],
    onError: o.onError as Config<T>["onError"],
  };
}
