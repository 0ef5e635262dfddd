// Copyright 2026 the boucle authors. MIT license.
/**
 * Tests for socket.ts, on 127.0.0.1 with port 0, and unix sockets in a fixed
 * directory that the test task grants (UNIX_DIR). Each test makes its own
 * loop; `using` closes every socket, so the op and resource sanitizers pass.
 * Tasks that must be parked before another acts are ordered by the loop's
 * FIFO: a task added first runs until it parks before the next one starts.
 */
import {
  assert,
  assertEquals,
  assertGreater,
  assertGreaterOrEqual,
  assertInstanceOf,
  assertLess,
  assertRejects,
  assertStrictEquals,
  assertStringIncludes,
  assertThrows,
  fail,
} from "@std/assert";
import { stub } from "@std/testing/mock";
import { type Coroutine, deadline, fromPromise, gather, interrupt, Loop, sleep } from "../loop.ts";
import { Event } from "../sync.ts";
import { type AIOSocket, aiosocket } from "../socket.ts";

/** The directory of the unix sockets; the test task grants it, and the exact socket paths. */
const UNIX_DIR = "/tmp/boucle-test-sockets";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (text: string): Uint8Array => encoder.encode(text);
const text = (data: Uint8Array): string => decoder.decode(data);

/** Runs `main` on a new loop and returns its result. */
function run<T>(main: Coroutine<T>): Promise<T> {
  return new Loop().runTask(main);
}

/** A TCP socket listening on 127.0.0.1, on a port the system picks. */
function* listening(): Coroutine<AIOSocket<"tcp">> {
  const server = aiosocket();
  try {
    yield* server.bind({ hostname: "127.0.0.1", port: 0 });
    yield* server.listen();
    return server;
  } catch (error) {
    server.close();
    throw error;
  }
}

/** A listener, a client connected to it, and the connection it accepted. */
class Pair implements Disposable {
  constructor(
    readonly server: AIOSocket<"tcp">,
    readonly client: AIOSocket<"tcp">,
    readonly conn: AIOSocket<"tcp">,
  ) {}
  [Symbol.dispose](): void {
    this.client.close();
    this.conn.close();
    this.server.close();
  }
}

function* connectedPair(): Coroutine<Pair> {
  const server = yield* listening();
  const client = aiosocket();
  try {
    const [conn] = yield* gather(server.accept(), client.connect(server.localAddr));
    return new Pair(server, client, conn);
  } catch (error) {
    client.close();
    server.close();
    throw error;
  }
}

/** Receives until `n` bytes have come, or the end of stream. */
function* recvExactly(sock: AIOSocket, n: number, chunk = 64 * 1024): Coroutine<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const data = yield* sock.recv(Math.min(chunk, n - got));
    if (data.length === 0) break;
    out.set(data, got);
    got += data.length;
  }
  return out.subarray(0, got);
}

/** Receives everything until the end of stream. */
function* recvAll(sock: AIOSocket): Coroutine<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (let data; (data = yield* sock.recv(64 * 1024)).length > 0;) parts.push(data);
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Runs `co`, which must throw an `Error` (exactly, not a subclass) whose message includes `message`. */
function* misuse(co: Coroutine<unknown>, message: string): Coroutine<void> {
  try {
    yield* co;
  } catch (error) {
    assertInstanceOf(error, Error);
    assertStrictEquals(error.constructor, Error, `${error.name}: ${error.message}`);
    assertStringIncludes(error.message, message);
    return;
  }
  fail(`expected an Error including "${message}"`);
}

/** A deterministic pseudo-random generator (mulberry32), for reproducible chunk sizes. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` pseudo-random bytes. */
function randomBytes(n: number, seed: number): Uint8Array {
  const next = random(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = next() * 256;
  return out;
}

/** Asserts two byte arrays are equal, reporting the first difference (fast on large arrays). */
function assertSameBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  assertEquals(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i]) {
      fail(`${what}: byte ${i} is ${actual[i]}, expected ${expected[i]}`);
    }
  }
}

/** Echoes one connection until its end of stream. */
function* echo(conn: AIOSocket, chunk = 64 * 1024): Coroutine<void> {
  using _conn = conn;
  for (let data; (data = yield* conn.recv(chunk)).length > 0;) yield* conn.sendAll(data);
}

/** Accepts connections and echoes each in its own task, until cancelled. */
function* echoServer(server: AIOSocket, handler = echo): Coroutine<void> {
  const loop = Loop.current;
  for (;;) loop.addTask(handler(yield* server.accept()));
}

/** Sends a payload far larger than the socket buffers to a peer that does not read: a partial write. */
const FLOOD = 16 * 1024 * 1024;

// ---------------------------------------------------------------------------
// Arguments

Deno.test("aiosocket() takes an options object with transport 'tcp', 'unix' or 'tls'", () => {
  assertThrows(
    () => aiosocket(null as never),
    TypeError,
    "aiosocket(options): 'options' must be an object, received null",
  );
  assertThrows(
    () => aiosocket({ transport: "udp" as never }),
    TypeError,
    `aiosocket(options): 'options.transport' must be "tcp", "unix" or "tls", received "udp"`,
  );
  using tcp = aiosocket({});
  using unix = aiosocket({ transport: "unix" });
  assertThrows(() => tcp.bind({ path: "/x" } as never), TypeError, 'for a "tcp" socket');
  assertThrows(() => unix.bind({ port: 1 } as never), TypeError, 'for a "unix" socket');
});

Deno.test("recv(bufsize) checks bufsize when called: an integer >= 1", () => {
  using sock = aiosocket();
  for (const bad of [0, -1, 1.5, NaN, Infinity]) {
    assertThrows(
      () => sock.recv(bad),
      RangeError,
      `AIOSocket.recv(bufsize): 'bufsize' must be an integer >= 1, received ${bad}`,
    );
  }
  assertThrows(
    () => sock.recv("8" as never),
    TypeError,
    `AIOSocket.recv(bufsize): 'bufsize' must be an integer >= 1, received "8"`,
  );
});

Deno.test("send(bytes) and sendAll(bytes) take a Uint8Array", () => {
  using sock = aiosocket();
  assertThrows(
    () => sock.send("text" as never),
    TypeError,
    `AIOSocket.send(bytes): 'bytes' must be a Uint8Array, received "text"`,
  );
  assertThrows(
    () => sock.sendAll([1, 2] as never),
    TypeError,
    "AIOSocket.sendAll(bytes): 'bytes' must be a Uint8Array, received an object (Array)",
  );
});

Deno.test("bind(addr) and connect(addr) check the address's shape for the transport", () => {
  using tcp = aiosocket();
  for (
    const [bad, shown] of [
      [{ path: "/tmp/x.sock" }, '{"path":"/tmp/x.sock"}'],
      [null, "null"],
      [8080, "8080"],
      [{ port: "80" }, '{"port":"80"}'],
      [{ hostname: 1, port: 80 }, '{"hostname":1,"port":80}'],
      [{ transport: "unix", port: 80 }, '{"transport":"unix","port":80}'],
    ] as const
  ) {
    for (const method of ["bind", "connect"] as const) {
      assertThrows(
        () => tcp[method](bad as never),
        TypeError,
        `AIOSocket.${method}(addr): 'addr' must be { hostname?: string, port: number } for a "tcp" socket, received ${shown}`,
      );
    }
  }
  for (const port of [-1, 65536, 1.5]) {
    assertThrows(
      () => tcp.connect({ port }),
      RangeError,
      `AIOSocket.connect(addr): 'addr.port' must be an integer from 0 to 65535, received ${port}`,
    );
  }
  using unix = aiosocket({ transport: "unix" });
  for (const bad of [{ port: 80 }, { path: "" }, { path: 7 }, { path: "/x", port: 1 }]) {
    assertThrows(
      () => unix.connect(bad as never),
      TypeError,
      `AIOSocket.connect(addr): 'addr' must be { path: string } for a "unix" socket`,
    );
  }
});

// ---------------------------------------------------------------------------
// Lifecycle and misuse

Deno.test("bind({ port: 0 }) picks a free port on 127.0.0.1 that localAddr tells", async () => {
  const [port, peer, accepted] = await run(function* () {
    using server = aiosocket();
    yield* server.bind({ port: 0 }); // hostname defaults to 127.0.0.1
    yield* server.listen();
    assertEquals(server.localAddr.hostname, "127.0.0.1");
    assertEquals(server.localAddr.transport, "tcp");
    // A plain Deno client reaches it: the socket really listens there.
    using plain = yield* fromPromise(
      Deno.connect({ hostname: "127.0.0.1", port: server.localAddr.port }),
    );
    using conn = yield* server.accept();
    return [server.localAddr.port, plain.localAddr.port, conn.remoteAddr.port];
  }());
  assertGreater(port, 0);
  assertEquals(accepted, peer);
});

Deno.test("misuse of a socket's state throws a clear Error naming the method", async () => {
  await run(function* () {
    using fresh = aiosocket();
    yield* misuse(
      fresh.accept(),
      "AIOSocket.accept(): the socket is not bound or connected; accept() needs a listening socket",
    );
    yield* misuse(fresh.listen(), "AIOSocket.listen(): the socket is not bound or connected");
    yield* misuse(fresh.recv(1), "AIOSocket.recv(): the socket is not bound or connected");
    yield* misuse(fresh.send(bytes("x")), "AIOSocket.send(): the socket is not bound");
    yield* misuse(fresh.sendAll(bytes("x")), "AIOSocket.sendAll(): the socket is not bound");
    yield* misuse(fresh.shutdown(), "AIOSocket.shutdown(): the socket is not bound");
    yield* misuse(fresh.waitReadable(), "AIOSocket.waitReadable(): the socket is not bound");
    yield* misuse(fresh.waitWritable(), "AIOSocket.waitWritable(): the socket is not bound");
    assertThrows(() => fresh.localAddr, Error, "AIOSocket.localAddr: the socket is not bound");
    assertThrows(() => fresh.remoteAddr, Error, "AIOSocket.remoteAddr: the socket is not bound");

    using bound = aiosocket();
    yield* bound.bind({ port: 0 });
    yield* misuse(
      bound.accept(),
      "AIOSocket.accept(): the socket is bound but not listening; accept() needs a listening socket",
    );
    yield* misuse(
      bound.bind({ port: 0 }),
      "AIOSocket.bind(): the socket is bound but not listening; bind() needs a new socket",
    );
    yield* misuse(bound.connect({ port: 1 }), "AIOSocket.connect(): the socket is bound");
    yield* bound.listen();
    yield* bound.listen(); // again: no effect
    yield* misuse(
      bound.recv(1),
      "AIOSocket.recv(): the socket is listening; recv() needs a connected socket",
    );
    yield* misuse(bound.send(bytes("x")), "AIOSocket.send(): the socket is listening");
    assertThrows(() => bound.remoteAddr, Error, "AIOSocket.remoteAddr: the socket is listening");

    using client = aiosocket();
    const [conn] = yield* gather(bound.accept(), client.connect(bound.localAddr));
    using _conn = conn;
    yield* misuse(
      client.connect(bound.localAddr),
      "AIOSocket.connect(): the socket is connected; connect() needs a new socket",
    );
    yield* misuse(client.bind({ port: 0 }), "AIOSocket.bind(): the socket is connected");
    yield* misuse(client.listen(), "AIOSocket.listen(): the socket is connected");
    yield* misuse(client.accept(), "AIOSocket.accept(): the socket is connected");
  }());
});

Deno.test("a second concurrent recv() or accept() on one socket throws; the first goes on", async () => {
  await run(function* () {
    using pair = yield* connectedPair();
    const loop = Loop.current;
    const first = loop.addTask(pair.client.recv(16));
    const firstAccept = loop.addTask(pair.server.accept());
    yield* interrupt(); // both are parked now
    yield* misuse(
      pair.client.recv(16),
      "AIOSocket.recv(): another task is already receiving on this socket",
    );
    yield* misuse(
      pair.server.accept(),
      "AIOSocket.accept(): another task is already receiving on this socket",
    );
    yield* pair.conn.sendAll(bytes("for the first"));
    assertEquals(text(yield* first), "for the first");
    using other = aiosocket();
    yield* other.connect(pair.server.localAddr);
    using accepted = yield* firstAccept;
    assertEquals(accepted.remoteAddr.port, other.localAddr.port);
  }());
});

Deno.test("every use of a closed socket throws an Error saying it is closed; close() is idempotent", async () => {
  await run(function* () {
    const pair = yield* connectedPair();
    pair[Symbol.dispose]();
    pair.client.close(); // again: no effect
    const { client, server } = pair;
    const closed = (what: string) => `AIOSocket.${what}: the socket is closed`;
    yield* misuse(client.recv(1), closed("recv()"));
    yield* misuse(client.send(bytes("x")), closed("send()"));
    yield* misuse(client.sendAll(bytes("x")), closed("sendAll()"));
    yield* misuse(client.shutdown(), closed("shutdown()"));
    yield* misuse(client.waitReadable(), closed("waitReadable()"));
    yield* misuse(client.waitWritable(), closed("waitWritable()"));
    yield* misuse(client.connect({ port: 1 }), closed("connect()"));
    yield* misuse(server.accept(), closed("accept()"));
    yield* misuse(server.listen(), closed("listen()"));
    yield* misuse(server.bind({ port: 0 }), closed("bind()"));
    assertThrows(() => client.localAddr, Error, closed("localAddr"));
    assertThrows(() => client.remoteAddr, Error, closed("remoteAddr"));
    assertThrows(() => server.localAddr, Error, closed("localAddr"));
  }());
});

// ---------------------------------------------------------------------------
// Data

Deno.test("an echo: the server receives what the client sent and answers it", async () => {
  const log: string[] = [];
  await run(function* () {
    using server = yield* listening();
    function* serverSide() {
      using conn = yield* server.accept();
      const msg = yield* conn.recv(1024);
      log.push(`server got ${text(msg)}`);
      yield* conn.sendAll(msg.reverse());
    }
    function* clientSide() {
      using client = aiosocket();
      yield* client.connect(server.localAddr);
      yield* client.sendAll(bytes("Hello World!"));
      log.push(`client got ${text(yield* client.recv(1024))}`);
    }
    yield* gather(serverSide(), clientSide());
  }());
  assertEquals(log, ["server got Hello World!", "client got !dlroW olleH"]);
});

Deno.test("recv(n) returns up to n buffered bytes without another host call", async () => {
  await run(function* () {
    using pair = yield* connectedPair();
    yield* pair.conn.sendAll(bytes("0123456789"));
    yield* pair.client.waitReadable(); // one read brought the ten bytes
    const log: string[] = [];
    // This task runs as soon as the receiver lets go: when a recv() parks or yields.
    // deno-lint-ignore require-yield -- it only logs that it ran
    Loop.current.addTask(function* () {
      log.push("other task");
    }());
    for (let i = 0; i < 4; i++) log.push(text(yield* pair.client.recv(3)));
    yield* interrupt();
    assertEquals(log, ["012", "345", "678", "9", "other task"]);
  }());
});

Deno.test("recv() returns bytes the caller owns: the socket never writes them again", async () => {
  await run(function* () {
    using pair = yield* connectedPair();
    yield* pair.conn.sendAll(bytes("abcdef"));
    yield* pair.client.waitReadable();
    const first = yield* pair.client.recv(3);
    const second = yield* pair.client.recv(3);
    first.fill(0); // the caller's to change, without touching the next bytes
    assertEquals(text(second), "def");
    const later = new Uint8Array(40_000).fill(120);
    for (let i = 0; i < 20; i++) { // 800 KB of later reads, through several arenas
      yield* pair.conn.sendAll(later);
      assertSameBytes(yield* recvExactly(pair.client, later.length), later, "later");
    }
    assertEquals([...first], [0, 0, 0]);
    assertEquals(text(second), "def");
  }());
});

Deno.test("send() may write part of its bytes and says how many; sendAll() sends them all", async () => {
  const payload = randomBytes(FLOOD, 1);
  await run(function* () {
    using pair = yield* connectedPair();
    const sent = yield* pair.client.send(payload); // the peer is not reading
    assertGreater(sent, 0);
    assertLess(sent, payload.length);
    const [received] = yield* gather(
      recvExactly(pair.conn, payload.length),
      pair.client.sendAll(payload.subarray(sent)),
    );
    assertSameBytes(received, payload, "received");
  }());
});

Deno.test("shutdown() half-closes: the peer reads the rest, then end of stream, and can still answer", async () => {
  await run(function* () {
    using pair = yield* connectedPair();
    yield* pair.client.sendAll(bytes("request"));
    yield* pair.client.shutdown();
    yield* pair.client.shutdown(); // again: no effect
    yield* misuse(
      pair.client.send(bytes("more")),
      "AIOSocket.send(): the socket was shut down for sending",
    );
    assertEquals(text(yield* recvAll(pair.conn)), "request");
    assertEquals((yield* pair.conn.recv(8)).length, 0, "end of stream stays");
    yield* pair.conn.sendAll(bytes("response"));
    pair.conn.close();
    assertEquals(text(yield* recvAll(pair.client)), "response");
  }());
});

Deno.test("after the peer closes with our bytes unread (a reset), recv() ends the stream and send() fails with Deno's error", async () => {
  await run(function* () {
    using pair = yield* connectedPair();
    yield* pair.client.sendAll(new Uint8Array(100));
    yield* pair.conn.waitReadable();
    pair.conn.close(); // with unread bytes: the host sends a reset
    assertEquals((yield* pair.client.recv(16)).length, 0);
    let error: unknown = null;
    for (let i = 0; i < 10 && error === null; i++) {
      try {
        yield* pair.client.send(new Uint8Array(100));
      } catch (e) {
        error = e;
      }
    }
    assert(
      error instanceof Deno.errors.BrokenPipe || error instanceof Deno.errors.ConnectionReset,
      `expected BrokenPipe or ConnectionReset, got ${error}`,
    );
  }());
});

Deno.test("Deno's errors pass through: ConnectionRefused, AddrInUse; a refused socket can connect again", async () => {
  await run(function* () {
    const closedPort = yield* function* () {
      using gone = yield* listening();
      return gone.localAddr.port;
    }();
    using client = aiosocket();
    let error: unknown = null;
    try {
      yield* client.connect({ port: closedPort });
    } catch (e) {
      error = e;
    }
    assertInstanceOf(error, Deno.errors.ConnectionRefused);

    using server = yield* listening();
    using rival = aiosocket();
    error = null;
    try {
      yield* rival.bind(server.localAddr);
    } catch (e) {
      error = e;
    }
    assertInstanceOf(error, Deno.errors.AddrInUse);

    const [conn] = yield* gather(server.accept(), client.connect(server.localAddr));
    using _conn = conn;
    assertEquals(client.remoteAddr.port, server.localAddr.port);
  }());
});

Deno.test("200 concurrent clients each echo 32 KiB in random-sized chunks, every byte checked", async () => {
  const CLIENTS = 200;
  const SIZE = 32 * 1024;
  await run(function* () {
    using server = yield* listening();
    const acceptor = Loop.current.addTask(echoServer(server, (conn) => echo(conn, 1500)));
    function* client(i: number): Coroutine<void> {
      const payload = randomBytes(SIZE, i);
      const next = random(1000 + i);
      using sock = aiosocket();
      yield* sock.connect(server.localAddr);
      function* sender(): Coroutine<void> {
        for (let at = 0; at < SIZE;) {
          const size = 1 + Math.floor(next() * 4096);
          yield* sock.sendAll(payload.subarray(at, at + size));
          at += size;
        }
        yield* sock.shutdown();
      }
      function* receiver(): Coroutine<Uint8Array> {
        const got = new Uint8Array(SIZE + 1);
        let at = 0;
        for (let data; (data = yield* sock.recv(1 + Math.floor(next() * 8192))).length > 0;) {
          assert(at + data.length <= SIZE, `client ${i} received too much`);
          got.set(data, at);
          at += data.length;
        }
        return got.subarray(0, at);
      }
      const [, received] = yield* gather(sender(), receiver());
      assertSameBytes(received, payload, `client ${i}`);
    }
    yield* gather(...Array.from({ length: CLIENTS }, (_, i) => client(i)));
    acceptor.cancel();
  }());
});

Deno.test("a peer that aborts mid-stream does not stop the server serving the others", async () => {
  const outcomes: string[] = [];
  await run(function* () {
    using server = yield* listening();
    function* handler(conn: AIOSocket): Coroutine<void> {
      try {
        yield* echo(conn, 4096);
        outcomes.push("end of stream");
      } catch (error) {
        outcomes.push((error as Error).name);
      }
    }
    const acceptor = Loop.current.addTask(echoServer(server, handler));
    const aborted = new Event();
    function* aborter(): Coroutine<void> {
      using sock = aiosocket();
      yield* sock.connect(server.localAddr);
      yield* sock.sendAll(randomBytes(64 * 1024, 7));
      yield* recvExactly(sock, 1024); // the server is echoing, mid-stream
      yield* sock.sendAll(randomBytes(64 * 1024, 8));
      sock.close(); // with echoes unread: a reset
      aborted.set();
    }
    function* steady(seed: number): Coroutine<void> {
      const payload = randomBytes(128 * 1024, seed);
      using sock = aiosocket();
      yield* sock.connect(server.localAddr);
      const half = payload.length / 2;
      function* send(): Coroutine<void> {
        yield* sock.sendAll(payload.subarray(0, half));
        yield* aborted.wait();
        yield* sock.sendAll(payload.subarray(half));
        yield* sock.shutdown();
      }
      const [, received] = yield* gather(send(), recvAll(sock));
      assertSameBytes(received, payload, `steady client ${seed}`);
    }
    yield* gather(aborter(), steady(1), steady(2));
    yield* steady(3); // a client that comes after the abort is served too
    acceptor.cancel();
  }());
  // Three clients ended their streams; the aborted one ended in one of the ways a reset shows.
  assertEquals(outcomes.length, 4);
  assertGreaterOrEqual(outcomes.filter((o) => o === "end of stream").length, 3, `${outcomes}`);
  for (const outcome of outcomes) {
    assert(["end of stream", "BrokenPipe", "ConnectionReset"].includes(outcome), outcome);
  }
});

Deno.test("a task yielding forever with interrupt() does not stop an echo from completing", async () => {
  let ticks = 0;
  const payload = randomBytes(64 * 1024, 3);
  function* echoOnce(): Coroutine<Uint8Array> {
    using pair = yield* connectedPair();
    const [, , received] = yield* gather(
      echo(pair.conn, 4096),
      function* () {
        yield* pair.client.sendAll(payload);
        yield* pair.client.shutdown();
      }(),
      recvAll(pair.client),
    );
    return received;
  }
  await run(function* () {
    const spinner = Loop.current.addTask(function* () {
      for (;;) {
        yield* interrupt();
        ticks++;
      }
    }());
    try {
      // Sixteen round trips of 4 KiB. The bound is generous: it is there so
      // that a loop that starves the host fails here instead of taking minutes.
      const received = yield* deadline(echoOnce(), 10_000);
      assertSameBytes(received, payload, "echo");
    } finally {
      spinner.cancel();
    }
  }());
  assertGreater(ticks, 0);
});

// ---------------------------------------------------------------------------
// Waiting on the host

Deno.test("a task parked on a socket keeps the loop sleeping on the host, not deadlocked", async () => {
  await run(function* () {
    using server = yield* listening();
    const port = server.localAddr.port;
    // A host client connects later, from outside the loop: only the accept() waits meanwhile.
    const later = new Promise<Deno.TcpConn>((resolve, reject) =>
      setTimeout(() => Deno.connect({ hostname: "127.0.0.1", port }).then(resolve, reject), 20)
    );
    using conn = yield* server.accept();
    using plain = yield* fromPromise(later);
    assertEquals(conn.remoteAddr.port, plain.localAddr.port);
  }());
});

Deno.test("virtual time does not jump while a socket waits on the host", async () => {
  const log: string[] = [];
  const loop = new Loop({ virtualTime: true });
  await loop.runTask(function* () {
    using server = yield* listening();
    const port = server.localAddr.port;
    const host = (async () => {
      const plain = await Deno.connect({ hostname: "127.0.0.1", port });
      await new Promise((resolve) => setTimeout(resolve, 20));
      await plain.write(bytes("late"));
      plain.close();
    })();
    using conn = yield* server.accept();
    yield* gather(
      function* () {
        yield* sleep(1000);
        log.push(`slept ${loop.time()}`);
      }(),
      function* () {
        log.push(`${text(yield* conn.recv(16))} ${loop.time()}`);
      }(),
    );
    yield* fromPromise(host);
  }());
  assertEquals(log, ["late 0", "slept 1000"]);
});

// ---------------------------------------------------------------------------
// close() and cancellation

Deno.test("close() wakes the tasks parked in recv(), send() and accept() with an Error saying it is closed", async () => {
  const errors: string[] = [];
  await run(function* () {
    const pair = yield* connectedPair();
    const loop = Loop.current;
    const catching = (co: Coroutine<unknown>) =>
      function* () {
        try {
          yield* co;
          errors.push("returned");
        } catch (error) {
          errors.push((error as Error).message);
        }
      }();
    const flooded = new Event();
    const tasks = [
      loop.addTask(catching(pair.client.recv(16))),
      loop.addTask(catching(pair.server.accept())),
      loop.addTask(catching(function* () {
        yield* pair.client.send(randomBytes(FLOOD, 4)); // fills the buffers
        flooded.set();
        yield* pair.client.send(new Uint8Array(1024)); // parks until the host settles it
      }())),
    ];
    yield* flooded.wait(); // the sender has parked in its second send() since
    pair[Symbol.dispose]();
    for (const task of tasks) yield* task;
  }());
  assertEquals(errors.toSorted(), [
    "AIOSocket.accept(): the socket is closed",
    "AIOSocket.recv(): the socket is closed",
    "AIOSocket.send(): the socket is closed",
  ]);
});

Deno.test("cancelling a task parked in recv() leaves the socket usable: the next recv() gets the bytes", async () => {
  await run(function* () {
    using pair = yield* connectedPair();
    const parked = Loop.current.addTask(pair.client.recv(16));
    yield* interrupt(); // parked, with a read in flight
    parked.cancel();
    yield* pair.conn.sendAll(bytes("kept"));
    assertEquals(text(yield* pair.client.recv(16)), "kept");
    assert(parked.cancelled);
  }());
});

Deno.test("cancelling a task parked in accept() keeps the listener, and a connection arriving meanwhile", async () => {
  await run(function* () {
    using server = yield* listening();
    const parked = Loop.current.addTask(server.accept());
    yield* interrupt(); // parked, with an accept in flight
    parked.cancel();
    using client = aiosocket();
    yield* client.connect(server.localAddr);
    using conn = yield* server.accept();
    assertEquals(conn.remoteAddr.port, client.localAddr.port);
    assert(parked.cancelled);
  }());
});

Deno.test("cancelling a task parked in connect() aborts the host's connect through its signal", async () => {
  let signal: AbortSignal | undefined;
  await run(function* () {
    using server = yield* listening();
    using client = aiosocket();
    {
      // A connect that never completes: only its signal ends it.
      const pending = (options: { signal?: AbortSignal }): Promise<never> => {
        signal = options.signal;
        return new Promise((_, reject) => {
          signal!.addEventListener("abort", () => reject(signal!.reason));
        });
      };
      using _connect = stub(Deno, "connect", pending as typeof Deno.connect);
      const parked = Loop.current.addTask(client.connect(server.localAddr));
      yield* interrupt(); // parked in the stubbed connect
      assertEquals(signal?.aborted, false);
      parked.cancel();
      yield* interrupt();
      assert(parked.cancelled);
      assertEquals(signal?.aborted, true);
    }
    // The socket is new again: a real connect works.
    const [conn] = yield* gather(server.accept(), client.connect(server.localAddr));
    using _conn = conn;
    assertEquals(client.remoteAddr.port, server.localAddr.port);
  }());
});

Deno.test("a real connect() cancelled at once leaves nothing running, and the socket connects later", async () => {
  await run(function* () {
    using server = yield* listening();
    using client = aiosocket();
    const parked = Loop.current.addTask(client.connect(server.localAddr));
    yield* interrupt();
    parked.cancel();
    yield* interrupt();
    assert(parked.cancelled);
    yield* client.connect(server.localAddr);
    assertEquals(client.remoteAddr.port, server.localAddr.port);
  }());
});

Deno.test("cancelling tasks parked in send(), shutdown() and waitWritable() leaves the socket usable", async () => {
  await run(function* () {
    using pair = yield* connectedPair();
    const loop = Loop.current;
    const sent = yield* pair.client.send(randomBytes(FLOOD, 5)); // fills the buffers
    const parked = [
      loop.addTask(pair.client.send(new Uint8Array(64 * 1024))), // in flight, unfinished
      loop.addTask(pair.client.shutdown()), // waits for that write
      loop.addTask(pair.client.waitWritable()),
    ];
    yield* interrupt();
    for (const task of parked) task.cancel();
    yield* interrupt();
    assertEquals(parked.map((task) => task.cancelled), [true, true, true]);
    // Drain what came so far and send a last word: the socket still works.
    const [received] = yield* gather(
      recvAll(pair.conn),
      function* () {
        yield* pair.client.sendAll(bytes("END"));
        yield* pair.client.shutdown();
      }(),
    );
    assertGreater(received.length, sent);
    assertEquals(text(received.subarray(-3)), "END");
  }());
});

Deno.test("cancelling a task parked in waitReadable() leaves the socket usable", async () => {
  await run(function* () {
    using pair = yield* connectedPair();
    const parked = Loop.current.addTask(pair.client.waitReadable());
    yield* interrupt();
    parked.cancel();
    yield* pair.conn.sendAll(bytes("still here"));
    yield* pair.client.waitReadable();
    assertEquals(text(yield* pair.client.recv(64)), "still here");
    assert(parked.cancelled);
  }());
});

Deno.test("waitWritable() on a connecting socket returns once it is connected", async () => {
  await run(function* () {
    using server = yield* listening();
    using client = aiosocket();
    const connecting = Loop.current.addTask(client.connect(server.localAddr));
    yield* interrupt(); // connect() is in flight
    yield* client.waitWritable();
    assert(connecting.done);
    assertEquals(client.remoteAddr.port, server.localAddr.port);
  }());
});

// ---------------------------------------------------------------------------
// Unix sockets

/** The one unix socket path of the tests (the test task grants exactly it); no stale file left. */
async function unixPath(): Promise<string> {
  await Deno.mkdir(UNIX_DIR, { recursive: true });
  const path = `${UNIX_DIR}/echo.sock`;
  await Deno.remove(path).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error; // else a stale socket from a crash
  });
  return path;
}

Deno.test("unix sockets: connecting to a path nobody listens on fails with Deno's NotFound", async () => {
  const path = await unixPath();
  await run(function* () {
    using client = aiosocket({ transport: "unix" });
    let error: unknown = null;
    try {
      yield* client.connect({ path });
    } catch (e) {
      error = e;
    }
    assertInstanceOf(error, Deno.errors.NotFound);
  }());
});

Deno.test("unix sockets: bind to a path, echo, tell the path; close removes the file", async () => {
  const path = await unixPath();
  await run(function* () {
    using server = aiosocket({ transport: "unix" });
    yield* server.bind({ path });
    yield* server.listen();
    assertEquals(server.localAddr, { transport: "unix", path });
    using client = aiosocket({ transport: "unix" });
    const [conn] = yield* gather(server.accept(), client.connect(server.localAddr));
    assertEquals(client.remoteAddr.path, path);
    yield* gather(
      echo(conn),
      function* () {
        yield* client.sendAll(bytes("over unix"));
        yield* client.shutdown();
        assertEquals(text(yield* recvAll(client)), "over unix");
      }(),
    );
  }());
  await assertRejects(() => Deno.stat(path), Deno.errors.NotFound);
});
