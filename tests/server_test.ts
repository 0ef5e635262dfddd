// Copyright 2026 the boucle authors. MIT license.
/**
 * Tests for server.ts: real sockets on 127.0.0.1 with port 0 (a unix socket
 * at the one path the test task grants for it), clients on the same loop as
 * the server, bounded in count, each test under a wall-clock `deadline`.
 * The server runs as a child of a task group, started with `group.start()`
 * and `onListen: ready`, so a test knows the port before it connects.
 */
import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertStrictEquals,
  assertStringIncludes,
  assertThrows,
  fail,
} from "@std/assert";
import { stub } from "@std/testing/mock";
import {
  CancelledError,
  type Coroutine,
  deadline,
  fromPromise,
  gather,
  interrupt,
  Loop,
  sleep,
} from "../loop.ts";
import { type TaskGroup, taskGroup } from "../scope.ts";
import { Event } from "../sync.ts";
import { type AIOSocket, aiosocket, type Transport } from "../socket.ts";
import { type Handler, serve, type ServeOptions } from "../server.ts";

const UNIX_PATH = "/tmp/boucle-test-sockets/serve.sock";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (text: string): Uint8Array => encoder.encode(text);
const text = (data: Uint8Array): string => decoder.decode(data);

/** Runs `main` on a new real-time loop, failing it after 10 s of wall-clock time. */
function run<T>(main: Coroutine<T>): Promise<T> {
  return new Loop().runTask(deadline(main, 10_000));
}

/**
 * Starts `serve(options, handler)` in `group` on 127.0.0.1, port 0 (unless
 * `options` says otherwise); returns its address once it listens, and its task.
 */
function* started<T extends Transport = "tcp">(
  group: TaskGroup,
  options: ServeOptions<T>,
  handler: Handler<T>,
): Coroutine<Deno.NetAddr> {
  return yield* group.start<Deno.NetAddr>(
    (ready) => serve({ port: 0, ...options, onListen: ready as never } as ServeOptions<T>, handler),
    { name: "server" },
  );
}

/** The server's task in `group`. */
function serverTask(group: TaskGroup) {
  const task = group.tasks.find((task) => task.name === "server");
  if (task === undefined) throw new Error("no server task");
  return task;
}

/** Receives until end of stream; returns everything. */
function* recvAll(sock: AIOSocket<Transport>): Coroutine<string> {
  let all = "";
  for (let data; (data = yield* sock.recv(65536)).length > 0;) all += text(data);
  return all;
}

/** A client connected to `addr`. */
function* client(addr: Deno.NetAddr): Coroutine<AIOSocket<"tcp">> {
  const sock = aiosocket();
  try {
    yield* sock.connect(addr);
    return sock;
  } catch (error) {
    sock.close();
    throw error;
  }
}

/** Echoes until the peer half-closes. */
function* echo(conn: AIOSocket<Transport>): Coroutine<void> {
  for (let data; (data = yield* conn.recv(65536)).length > 0;) yield* conn.sendAll(data);
}

// ---------------------------------------------------------------------------
// Serving

Deno.test("serve() runs one task per connection, named after the peer, and closes each connection when its handler ends", async () => {
  const names: string[] = [];
  const replies = await run(taskGroup(function* (group) {
    const addr = yield* started(group, {}, function* (conn) {
      const peer = `${conn.remoteAddr.hostname}:${conn.remoteAddr.port}`;
      names.push(...Loop.current.tasks().filter((t) => t.name === peer).map((t) => t.name));
      const name = text(yield* conn.recv(64));
      yield* conn.sendAll(bytes(`hello ${name}`));
      // returns: serve closes the connection, and the client reads end of stream
    });
    const replies = yield* gather(
      ...Array.from({ length: 20 }, (_, i) =>
        function* () {
          using sock = yield* client(addr);
          yield* sock.sendAll(bytes(`client ${i}`));
          return [sock.localAddr.port, yield* recvAll(sock)] as const;
        }()),
    );
    group.cancel();
    return replies;
  }));
  assertEquals(
    replies.map(([, reply]) => reply),
    Array.from({ length: 20 }, (_, i) => `hello client ${i}`),
  );
  assertEquals(
    names.toSorted(),
    replies.map(([port]) => `127.0.0.1:${port}`).toSorted(),
  );
});

Deno.test("serve() calls onListen once with the bound address, before the first accept", async () => {
  const log: string[] = [];
  // deno-lint-ignore require-yield -- the body only spawns; the group waits
  await run(taskGroup(function* (group) {
    const server = group.spawn(serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen(addr) {
        log.push(`listening on ${addr.transport} ${addr.hostname}, port > 0: ${addr.port > 0}`);
        group.spawn(function* () {
          using sock = yield* client(addr);
          yield* sock.shutdown();
          log.push(`client read ${JSON.stringify(yield* recvAll(sock))}`);
          server.cancel();
        }());
      },
    }, function* (conn) {
      log.push("handler");
      yield* conn.sendAll(bytes("hi"));
    }));
  }));
  assertEquals(log, ["listening on tcp 127.0.0.1, port > 0: true", "handler", 'client read "hi"']);
});

Deno.test("serve() over a unix socket serves at options.path", async () => {
  await Deno.mkdir("/tmp/boucle-test-sockets", { recursive: true });
  await Deno.remove(UNIX_PATH).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error; // else a stale socket from a crash
  });
  const reply = await run(taskGroup(function* (group) {
    const addr = yield* group.start<Deno.UnixAddr>((ready) =>
      serve({ transport: "unix", path: UNIX_PATH, onListen: ready }, echo)
    );
    assertEquals(addr, { transport: "unix", path: UNIX_PATH });
    using sock = aiosocket({ transport: "unix" });
    yield* sock.connect(addr);
    yield* sock.sendAll(bytes("over unix"));
    yield* sock.shutdown();
    const reply = yield* recvAll(sock);
    group.cancel();
    return reply;
  }));
  assertEquals(reply, "over unix");
});

// ---------------------------------------------------------------------------
// Errors

Deno.test("serve() hands a handler's error to onError with its open connection, and goes on serving", async () => {
  const log: string[] = [];
  await run(taskGroup(function* (group) {
    const addr = yield* started(group, {
      onError(error, conn) {
        log.push(`onError: ${(error as Error).message}, peer port ${conn.remoteAddr.port}`);
      },
    }, function* (conn) {
      const name = text(yield* conn.recv(64));
      if (name === "bad") throw new Error("bad name");
      yield* conn.sendAll(bytes(`hello ${name}`));
    });
    for (const name of ["bad", "ada", "bad", "bob"]) {
      using sock = yield* client(addr);
      yield* sock.sendAll(bytes(name));
      log.push(
        `${name} (port ${sock.localAddr.port}) read ${JSON.stringify(yield* recvAll(sock))}`,
      );
    }
    group.cancel();
  }));
  assertEquals(log.length, 6);
  const ports = log.filter((line) => line.startsWith("bad")).map((line) => /\d+/.exec(line)![0]);
  assertEquals(log.filter((line) => line.startsWith("onError")), [
    `onError: bad name, peer port ${ports[0]}`,
    `onError: bad name, peer port ${ports[1]}`,
  ]);
  assertEquals(log.filter((line) => !line.startsWith("onError")).map((l) => l.split(" read ")[1]), [
    '""',
    '"hello ada"',
    '""',
    '"hello bob"',
  ]);
});

Deno.test("serve() without onError logs a handler's error with console.error, naming the peer", async () => {
  using logged = stub(console, "error", () => {});
  const boom = new Error("boom");
  const port = await run(taskGroup(function* (group) {
    const addr = yield* started(group, {}, function* () {
      yield* interrupt();
      throw boom;
    });
    using sock = yield* client(addr);
    assertEquals(yield* recvAll(sock), "");
    group.cancel();
    return sock.localAddr.port;
  }));
  assertEquals(logged.calls.map((call) => call.args), [
    [`serve(): the handler of 127.0.0.1:${port} failed:`, boom],
  ]);
});

Deno.test("serve() logs an error thrown by onError and goes on serving", async () => {
  using logged = stub(console, "error", () => {});
  const replies = await run(taskGroup(function* (group) {
    let calls = 0;
    const addr = yield* started(group, {
      onError() {
        throw new Error(`onError failed ${++calls}`);
      },
    }, function* (conn) {
      const name = text(yield* conn.recv(64));
      if (name === "bad") throw new Error("bad name");
      yield* conn.sendAll(bytes(`hello ${name}`));
    });
    const replies = [];
    for (const name of ["bad", "ada"]) {
      using sock = yield* client(addr);
      yield* sock.sendAll(bytes(name));
      replies.push(yield* recvAll(sock));
    }
    group.cancel();
    return replies;
  }));
  assertEquals(replies, ["", "hello ada"]);
  assertEquals(logged.calls.length, 1);
  const [message, thrown, error] = logged.calls[0]!.args as [string, Error, Error];
  assertStringIncludes(message, "serve(): onError threw while reporting an error of 127.0.0.1:");
  assertEquals([thrown.message, error.message], ["onError failed 1", "bad name"]);
});

Deno.test("serve() reports a handler that returns no Awaitable as a TypeError", async () => {
  const errors: unknown[] = [];
  await run(taskGroup(function* (group) {
    const addr = yield* started(
      group,
      { onError: (error) => errors.push(error) },
      (() => 42) as unknown as Handler,
    );
    using sock = yield* client(addr);
    assertEquals(yield* recvAll(sock), "");
    group.cancel();
  }));
  assertEquals(errors.length, 1);
  assertInstanceOf(errors[0], TypeError);
  assertEquals(
    (errors[0] as Error).message,
    "serve(): the handler must return an Awaitable (a generator), received 42",
  );
});

Deno.test("serve() reports a handler cancelled on its own while the server runs, and goes on", async () => {
  const errors: unknown[] = [];
  const reply = await run(taskGroup(function* (group) {
    const addr = yield* started(
      group,
      { onError: (error) => errors.push(error) },
      function* (conn) {
        yield* conn.sendAll(bytes("hi"));
        yield* recvAll(conn);
      },
    );
    {
      using sock = yield* client(addr);
      assertEquals(text(yield* sock.recv(64)), "hi");
      const peer = `127.0.0.1:${sock.localAddr.port}`;
      Loop.current.tasks().find((task) => task.name === peer)!.cancel("just this one");
      assertEquals(yield* recvAll(sock), ""); // closed by the server
    }
    using next = yield* client(addr);
    const reply = text(yield* next.recv(64));
    group.cancel();
    return reply;
  }));
  assertEquals(reply, "hi");
  assertEquals(errors.length, 1);
  assertInstanceOf(errors[0], CancelledError);
  assertEquals((errors[0] as CancelledError).reason, "just this one");
});

Deno.test("serve() rethrows an error of onListen, with the listener closed", async () => {
  let port = 0;
  let error: unknown = null;
  await run(function* () {
    try {
      yield* serve({
        port: 0,
        onListen(addr) {
          port = addr.port;
          throw new Error("onListen failed");
        },
      }, echo);
    } catch (e) {
      error = e;
    }
  }());
  assertEquals((error as Error).message, "onListen failed");
  using again = Deno.listen({ hostname: "127.0.0.1", port }); // the port is free again
  assertEquals(again.addr.port, port);
});

Deno.test("serve() rethrows a listening error: a port in use", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let error: unknown = null;
  await run(function* () {
    try {
      yield* serve({ port: taken.addr.port }, echo);
    } catch (e) {
      error = e;
    }
  }());
  assertInstanceOf(error, Deno.errors.AddrInUse);
});

// ---------------------------------------------------------------------------
// maxConnections

Deno.test("serve() with maxConnections accepts no more at the limit, and one more when a connection closes", async () => {
  const log: string[] = [];
  await run(taskGroup(function* (group) {
    const addr = yield* started(group, { maxConnections: 2 }, function* (conn) {
      const name = text(yield* conn.recv(64));
      log.push(`start ${name}`);
      yield* conn.sendAll(bytes(`hi ${name}`));
      yield* recvAll(conn); // until the client half-closes
      log.push(`end ${name}`);
    });
    const socks = new Map<string, AIOSocket<"tcp">>();
    try {
      for (const name of ["a", "b"]) {
        const sock = yield* client(addr);
        socks.set(name, sock);
        yield* sock.sendAll(bytes(name));
        assertEquals(text(yield* sock.recv(64)), `hi ${name}`);
      }
      const c = yield* client(addr); // in the system's listen queue
      socks.set("c", c);
      yield* c.sendAll(bytes("c"));
      // No accept in flight: c waits in the listen queue, whatever the time.
      assertEquals(serverTask(group).waitingOn, 'Semaphore("serve() connections").acquire()');
      log.push("a closes");
      yield* socks.get("a")!.shutdown();
      assertEquals(text(yield* c.recv(64)), "hi c");
    } finally {
      for (const sock of socks.values()) sock.close();
    }
    group.cancel();
  }));
  assertEquals(log, ["start a", "start b", "a closes", "end a", "start c"]);
});

// ---------------------------------------------------------------------------
// Stopping

Deno.test("cancelling serve() refuses new clients, cancels the handlers, awaits their cleanup and closes their connections", async () => {
  const log: string[] = [];
  await run(taskGroup(function* (group) {
    const started_ = new Event();
    let addr: Deno.NetAddr | null = null;
    const server = group.spawn(
      serve({ port: 0, onListen: (a) => void (addr = a) }, function* (conn) {
        yield* conn.sendAll(bytes("ready"));
        started_.set();
        try {
          yield* conn.recv(64); // the client sends nothing
          fail("the handler was not cancelled");
        } catch (error) {
          log.push(`handler: ${(error as Error).name}`);
          throw error;
        } finally {
          log.push("cleanup begins");
          yield* sleep(20);
          log.push("cleanup ends");
        }
      }),
    );
    yield* interrupt();
    using sock = yield* client(addr!);
    assertEquals(text(yield* sock.recv(64)), "ready");
    yield* started_.wait();
    server.cancel("stop");
    try {
      yield* server;
      fail("serve() returned");
    } catch (error) {
      assertInstanceOf(error, CancelledError);
      log.push(`serve: CancelledError (${error.reason})`);
    }
    log.push(`client read ${JSON.stringify(yield* recvAll(sock))}`);
    try {
      using _late = yield* client(addr!);
      fail("connected after the stop");
    } catch (error) {
      log.push(`a new client: ${(error as Error).name}`);
    }
  }));
  assertEquals(log, [
    "handler: CancelledError",
    "cleanup begins",
    "cleanup ends",
    "serve: CancelledError (stop)",
    'client read ""',
    "a new client: ConnectionRefused",
  ]);
});

Deno.test("cancelling serve() while clients arrive ends every connection, accepted or queued", async () => {
  const clients: AIOSocket<"tcp">[] = [];
  try {
    const reads = await run(taskGroup(function* (group) {
      const addr = yield* started(group, {}, function* (conn) {
        yield* conn.recv(64);
      });
      for (let i = 0; i < 10; i++) clients.push(yield* client(addr));
      // Some are accepted (their tasks running or not yet), some still queued:
      // each one reads end of stream all the same.
      yield* sleep(1);
      group.cancel();
      return yield* gather(...clients.map((sock) => recvAll(sock)));
    }));
    assertEquals(reads, Array(10).fill(""));
  } finally {
    for (const sock of clients) sock.close();
  }
});

Deno.test("a server whose task group fails is cancelled and closes everything", async () => {
  const log: string[] = [];
  let error: unknown = null;
  try {
    await run(taskGroup(function* (group) {
      const addr = yield* started(group, {}, function* (conn) {
        try {
          yield* conn.recv(64);
        } finally {
          log.push("handler unwound");
        }
      });
      using sock = yield* client(addr);
      yield* sock.sendAll(bytes("x"));
      yield* sleep(10);
      // deno-lint-ignore require-yield -- fails at once
      group.spawn(function* () {
        throw new Error("a sibling failed");
      }());
      yield* sleep(Infinity);
    }));
  } catch (e) {
    error = e;
  }
  assertEquals((error as Error).message, "a sibling failed");
  assertEquals(log, ["handler unwound"]);
});

// ---------------------------------------------------------------------------
// Hostile clients

Deno.test("serve() survives clients that vanish before accept, mid-message, mid-reply, or never read", async () => {
  const errors: string[] = [];
  const stuck = new Event();
  await run(taskGroup(function* (group) {
    const addr = yield* started(group, {
      onError: (error) => errors.push((error as Error).name),
    }, function* (conn) {
      // The protocol: an 8-byte request "echo ..." / "flood..." / "drown..."
      const request = new Uint8Array(8);
      let got = 0;
      while (got < 8) {
        const data = yield* conn.recv(8 - got);
        if (data.length === 0) throw new Error(`half a request: ${got} of 8 bytes`);
        request.set(data, got);
        got += data.length;
      }
      const verb = text(request.subarray(0, 5));
      if (verb === "flood" || verb === "drown") {
        // 16 MiB to a client that closes without reading it (flood) or never reads (drown)
        const chunk = new Uint8Array(1 << 20);
        if (verb === "drown") stuck.set();
        for (let i = 0; i < 16; i++) yield* conn.sendAll(chunk);
      } else {
        yield* conn.sendAll(request);
      }
    });
    // Gone before accept: connect and close at once, some after a few bytes.
    for (let i = 0; i < 10; i++) {
      using sock = yield* client(addr);
      if (i % 2 === 1) yield* sock.sendAll(bytes("ech"));
    }
    // Reset mid-reply: ask for a flood, then close without reading.
    for (let i = 0; i < 3; i++) {
      using sock = yield* client(addr);
      yield* sock.sendAll(bytes("flood..."));
      yield* sock.recv(1);
    }
    // Never reads: its handler stays parked in sendAll.
    using drowned = yield* client(addr);
    yield* drowned.sendAll(bytes("drown..."));
    yield* stuck.wait();
    // A healthy client is still served.
    using healthy = yield* client(addr);
    yield* healthy.sendAll(bytes("echo...."));
    assertEquals(text(yield* healthy.recv(64)), "echo....");
    group.cancel(); // also ends the drowned client's handler
  }));
  const counts: Record<string, number> = {};
  for (const name of errors) counts[name] = (counts[name] ?? 0) + 1;
  assertEquals(counts.Error, 10, `the 10 half requests: ${errors}`);
  assertEquals(
    (counts.ConnectionReset ?? 0) + (counts.BrokenPipe ?? 0),
    3,
    `the 3 resets: ${errors}`,
  );
  assertEquals(errors.length, 13);
});

/** python3 clients that connect, then all reset at once (SO_LINGER 0, which Deno cannot set). */
const STORM = `
import socket, struct, sys
socks = []
for i in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    try:
        s.connect(("127.0.0.1", int(sys.argv[1])))
        s.sendall(b"half")
    except OSError:
        pass
    socks.append(s)
for s in socks:
    s.close()
`;

Deno.test("serve() survives a storm of clients that reset while queued for accept", async () => {
  const errors: string[] = [];
  await run(taskGroup(function* (group) {
    const addr = yield* started(group, {
      maxConnections: 1,
      onError: (error) => errors.push((error as Error).name),
    }, function* (conn) {
      yield* conn.sendAll(bytes("hi"));
      yield* recvAll(conn);
    });
    {
      using holder = yield* client(addr); // holds the one slot: the storm waits in the queue
      assertEquals(text(yield* holder.recv(64)), "hi");
      const storm = yield* fromPromise(
        new Deno.Command("python3", { args: ["-c", STORM, String(addr.port), "100"] }).output(),
      );
      assert(storm.success, decoder.decode(storm.stderr));
    }
    using healthy = yield* client(addr);
    assertEquals(text(yield* healthy.recv(64)), "hi");
    group.cancel();
  }));
  // A reset that reached a handler is a handler error; none stopped the server.
  assert(errors.every((name) => name === "ConnectionReset" || name === "BrokenPipe"), `${errors}`);
});

// ---------------------------------------------------------------------------
// Bad input

Deno.test("serve() throws RangeError for a bad port or maxConnections, TypeError for the wrong types", () => {
  const h: Handler = echo;
  const cases: [unknown, unknown, ErrorConstructor | RangeErrorConstructor, string][] = [
    [{ port: -1 }, h, RangeError, "'options.port' must be an integer from 0 to 65535, received -1"],
    [{ port: 65536 }, h, RangeError, "received 65536"],
    [{ port: 1.5 }, h, RangeError, "received 1.5"],
    [{ port: NaN }, h, RangeError, "received NaN"],
    [
      { port: "80" },
      h,
      TypeError,
      `'options.port' must be an integer from 0 to 65535, received "80"`,
    ],
    [{}, h, TypeError, "'options.port' must be an integer from 0 to 65535, received undefined"],
    [
      { port: 0, maxConnections: 0 },
      h,
      RangeError,
      "'options.maxConnections' must be an integer >= 1 or Infinity, received 0",
    ],
    [{ port: 0, maxConnections: 2.5 }, h, RangeError, "received 2.5"],
    [{ port: 0, maxConnections: "10" }, h, TypeError, `received "10"`],
    [{ port: 0 }, "echo", TypeError, `'handler' must be a function, received "echo"`],
    [{ port: 0 }, undefined, TypeError, "'handler' must be a function, received undefined"],
    [null, h, TypeError, "'options' must be an object, received null"],
    [
      { transport: "udp", port: 0 },
      h,
      TypeError,
      `'options.transport' must be "tcp", "unix" or "tls", received "udp"`,
    ],
    [
      { port: 0, path: "/tmp/x.sock" },
      h,
      TypeError,
      `'options.path' does not apply to a "tcp" server, received "/tmp/x.sock"`,
    ],
    [
      { transport: "unix" },
      h,
      TypeError,
      `'options.path' must be a non-empty string for a "unix" server, received undefined`,
    ],
    [
      { transport: "unix", path: "/tmp/x.sock", port: 80 },
      h,
      TypeError,
      `'options.port' does not apply to a "unix" server, received 80`,
    ],
    [
      { transport: "tls", port: 0, cert: "PEM" },
      h,
      TypeError,
      `'options.key' must be a PEM string for a "tls" server, received undefined`,
    ],
    [
      { port: 0, cert: "PEM" },
      h,
      TypeError,
      `'options.cert' does not apply to a "tcp" server, received "PEM"`,
    ],
    [{ port: 0, hostname: 127 }, h, TypeError, "'options.hostname' must be a string, received 127"],
    [{ port: 0, reusePort: "yes" }, h, TypeError, `'options.reusePort' must be a boolean`],
    [{ port: 0, onListen: 1 }, h, TypeError, "'options.onListen' must be a function, received 1"],
    [{ port: 0, onError: {} }, h, TypeError, "'options.onError' must be a function"],
  ];
  for (const [options, handler, ErrorClass, message] of cases) {
    const error = assertThrows(
      () => serve(options as ServeOptions, handler as Handler),
      ErrorClass,
      message,
    );
    assertStrictEquals(error.constructor, ErrorClass);
    assert(error.message.startsWith("serve(options, handler): "), error.message);
  }
});

Deno.test("serve() refuses reusePort: true as not supported yet, and takes reusePort: false", () => {
  assertThrows(
    () => serve({ port: 0, reusePort: true }, echo),
    Deno.errors.NotSupported,
    "serve(options, handler): 'options.reusePort' is not supported yet: AIOSocket.bind() cannot set SO_REUSEPORT",
  );
  serve({ port: 0, reusePort: false }, echo).return();
});

Deno.test("serve() checks its arguments when called and binds only when it first runs", async () => {
  const coroutine = serve({ port: 0 }, echo); // no loop, nothing bound
  let bound = false;
  await run(taskGroup(function* (group) {
    const task = group.spawn(coroutine);
    yield* interrupt();
    yield* interrupt();
    bound = task.waitingOn !== null;
    task.cancel();
  }));
  assert(bound);
});
