// Copyright 2026 the boucle authors. MIT license.
/**
 * Fault injection: hostile peers and cancellations against echo servers, over
 * the memory streams (virtual time: deterministic) and over real loopback
 * sockets through `serve()` (127.0.0.1, port 0). The faults: a peer that
 * resets mid-message, one that closes while the server is in a `sendAll` of a
 * large buffer, one that never reads (the server's `sendAll` is bounded by a
 * `deadline`, then the server goes on), one that trickles a byte at a time,
 * ones that connect and vanish; a cancellation landed at every suspension
 * point of an echo session in turn (and of `serve()` itself); `serve()` in a
 * subprocess with `ulimit -n 64`, against more connections than it has
 * descriptors. Then: TLS peers that stall or vanish in the handshake,
 * `maxConnections` slots held by peers that reset, `serve()` stopped under
 * load and with handlers blocked, reads and `sendAll()`s cut short by
 * timeouts (nothing lost, nothing of the caller's reused buffer sent), and a
 * peer that floods a line handler past its limit.
 *
 * Each test checks: no crash, no unhandled rejection (a listener on
 * `unhandledrejection`), no leaked resource (run it under the sanitizers),
 * the server keeps serving (a normal client afterwards gets its echo whole),
 * and every byte acknowledged is exact: what a peer received is a prefix of
 * what was sent, and no shorter than what the sender saw go out.
 *
 * Resets need SO_LINGER 0, which Deno cannot set: those peers are python3.
 * Needs `--allow-net=127.0.0.1 --allow-run=deno,bash,python3`.
 */
import { assert, assertEquals, assertGreater, assertGreaterOrEqual, fail } from "@std/assert";
import {
  CancelledError,
  type Coroutine,
  deadline,
  Event,
  fromPromise,
  gatherSettled,
  Loop,
  moveOnAfter,
  Queue,
  sleep,
  type Task,
  type TaskGroup,
  taskGroup,
} from "../mod.ts";
import { type AIOSocket, aiosocket } from "../socket.ts";
import { type ByteStream, IncompleteReadError, StreamReader, StreamWriter } from "../stream.ts";
import { type Handler, serve } from "../server.ts";
import { loopTest, type MemoryStream, memoryStreamPair } from "../testing.ts";
import { DENO, ROOT } from "./_deno.ts";

// ---------------------------------------------------------------------------
// Shared checks

/** Unhandled rejections seen while this module runs; each test asserts there were none. */
const unhandled: unknown[] = [];
globalThis.addEventListener("unhandledrejection", (event) => {
  unhandled.push(event.reason);
  event.preventDefault();
});

/** Fails if an unhandled rejection was seen, after one macrotask for late ones. */
async function assertNoUnhandled(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 0));
  assertEquals(unhandled.splice(0), [], "unhandled rejections");
}

/** `n` bytes, byte i being `(i * 7 + seed) & 0xff` (python3 peers compute the same). */
function pattern(n: number, seed = 0): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 7 + seed) & 0xff;
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Asserts `actual` is a prefix of `whole`, naming the first byte that differs. */
function assertPrefix(actual: Uint8Array, whole: Uint8Array, what: string): void {
  assert(
    actual.length <= whole.length,
    `${what}: ${actual.length} bytes, more than the ${whole.length} sent`,
  );
  for (let i = 0; i < actual.length; i++) {
    if (actual[i] !== whole[i]) fail(`${what}: byte ${i} is ${actual[i]}, sent ${whole[i]}`);
  }
}

/** The errors a peer's going away may cause on the other end. */
function isPeerGone(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionReset || error instanceof Deno.errors.BrokenPipe;
}

function names(errors: unknown[]): string[] {
  return errors.map((error) => (error as Error).name);
}

// ---------------------------------------------------------------------------
// Suspension points, counted

/**
 * Drives `inner` and passes every value it yields, and everything sent or
 * thrown back, straight through, calling `onSuspend(k)` just before its k-th
 * suspension (k from 1). The task running it is the task that suspends.
 */
function* counted<T>(inner: Coroutine<T>, onSuspend: (k: number) => void): Coroutine<T> {
  let k = 0;
  let r = inner.next();
  while (!r.done) {
    onSuspend(++k);
    let sent: unknown;
    try {
      sent = yield r.value;
    } catch (error) {
      r = inner.throw(error);
      continue;
    }
    r = inner.next(sent);
  }
  return r.value;
}

/** A shared count of suspensions over several tasks, cancelling the one that makes the k-th. */
class Canceller {
  count = 0;
  landed: string | null = null;
  constructor(readonly target: number) {}
  /** Wraps `inner`, run by the task `task()` names. */
  wrap<T>(who: string, task: () => Task<unknown>, inner: Coroutine<T>): Coroutine<T> {
    return counted(inner, () => {
      if (++this.count === this.target) {
        this.landed = who;
        task().cancel(`fault: suspension ${this.target}`);
      }
    });
  }
}

// ---------------------------------------------------------------------------
// Memory streams: a tiny server over memoryStreamPair, as serve() runs handlers

/** The echo handler: echoes until end of stream, counting what it has received and sent whole. */
function* echo(conn: ByteStream, stats = { received: 0, sent: 0 }): Coroutine<void> {
  for (;;) {
    const data = yield* conn.recv(4096);
    if (data.length === 0) break;
    stats.received += data.length;
    yield* conn.sendAll(data);
    stats.sent += data.length;
  }
  yield* conn.shutdown();
}

/** A client's view of one session: what it sent whole, what it got, and how each side ended. */
interface Session {
  sent: number;
  got: Uint8Array;
  errors: unknown[];
  /** The receiver read to the end of the stream. */
  complete: boolean;
}

/** Wraps the coroutine that the task `task()` runs (for counting suspensions). */
type Wrap = <T>(who: string, task: () => Task<unknown>, inner: Coroutine<T>) => Coroutine<T>;

/**
 * The client of an echo session: one task sends `message` in `chunk`-byte
 * sendAll()s then shuts down, another receives the echo to the end. When
 * either fails (or is cancelled) it records why and cancels the other; the
 * stream is closed when both have ended.
 */
function* echoClient(
  conn: ByteStream & Disposable,
  message: Uint8Array,
  chunk: number,
  wrap: Wrap = (_who, _task, inner) => inner,
): Coroutine<Session> {
  using _ = conn;
  const session: Session = { sent: 0, got: new Uint8Array(0), errors: [], complete: false };
  const parts: Uint8Array[] = [];
  yield* taskGroup(function* (group) {
    function part(who: string, body: () => Coroutine<void>): void {
      const task: Task<void> = group.spawn(
        function* () {
          try {
            yield* wrap(who, () => task, body());
          } catch (error) {
            session.errors.push(error);
            // A client torn down stops both parts; a sender whose peer went
            // away lets the receiver read what was sent before, to the end.
            if (!(who === "client sender" && isPeerGone(error))) group.cancel();
          }
        }(),
        { name: who },
      );
    }
    part("client sender", function* () {
      for (let at = 0; at < message.length; at += chunk) {
        const piece = message.subarray(at, at + chunk);
        yield* conn.sendAll(piece);
        session.sent += piece.length;
      }
      yield* conn.shutdown();
    });
    part("client receiver", function* () {
      for (let data; (data = yield* conn.recv(4096)).length > 0;) parts.push(data);
      session.complete = true;
    });
  });
  session.got = concat(parts);
  return session;
}

/** Runs connections in a task group as serve() does: the stream is closed when its handler ends, errors go to `errors`. */
class MemoryServer {
  readonly errors: unknown[] = [];
  readonly tasks: Task<void>[] = [];
  constructor(
    readonly group: TaskGroup,
    readonly options: Parameters<typeof memoryStreamPair>[0] = {},
  ) {}

  /** Connects a client: the server's end runs `handler`; returns the client's end. */
  connect(handler: (conn: MemoryStream) => Coroutine<void>, name = "conn"): MemoryStream {
    const [client, server] = memoryStreamPair(this.options);
    const errors = this.errors;
    this.tasks.push(this.group.spawn(
      function* () {
        try {
          yield* handler(server);
        } catch (error) {
          errors.push(error);
        } finally {
          server.close();
        }
      }(),
      { name },
    ));
    return client;
  }

  /** A normal client: its 10 KiB come back whole, and the server reports nothing. */
  *assertServes(): Coroutine<void> {
    const before = this.errors.length;
    const message = pattern(10_000, 99);
    const client = this.connect((conn) => echo(conn), "normal");
    const session = yield* echoClient(client, message, 1000);
    assertEquals(session.errors, []);
    assertEquals(session.got, message);
    assertEquals(this.errors.length, before, "the normal client's handler reported nothing");
  }
}

function memoryServer(
  body: (server: MemoryServer) => Coroutine<void>,
  options: Parameters<typeof memoryStreamPair>[0] = {},
): () => Promise<void> {
  const test = loopTest(() =>
    taskGroup(function* (group) {
      const server = new MemoryServer(group, options);
      yield* body(server);
      yield* server.assertServes();
    })
  );
  return async () => {
    await test();
    await assertNoUnhandled();
  };
}

Deno.test(
  "memory: a peer that resets mid-message: the handler gets ConnectionReset, what it got is exact, the server goes on",
  memoryServer(function* (server) {
    const stats = { received: 0, sent: 0 };
    const message = pattern(5000, 1);
    const client = server.connect((conn) => echo(conn, stats));
    const reader = new StreamReader(client);
    yield* client.sendAll(message.subarray(0, 3000));
    const acked = yield* reader.readExactly(3000); // the echo: acknowledged
    assertEquals(acked, message.subarray(0, 3000));
    yield* client.sendAll(message.subarray(3000, 4000)); // half a message, then gone
    client.reset();
    yield* server.tasks[0]!;
    assertEquals(names(server.errors), ["ConnectionReset"]);
    assertGreaterOrEqual(stats.received, 3000);
    assertEquals(stats.sent, stats.received, "it echoed all it got until the reset");
  }, { maxChunk: 512, latency: 1 }),
);

Deno.test(
  "memory: a peer that closes during a sendAll() of 1 MiB: BrokenPipe, the bytes it read are an exact prefix",
  memoryServer(function* (server) {
    const big = pattern(1 << 20, 2);
    const client = server.connect(function* (conn) {
      yield* conn.sendAll(big);
    });
    const parts: Uint8Array[] = [];
    let got = 0;
    while (got < 100_000) {
      const data = yield* client.recv(8192);
      parts.push(data);
      got += data.length;
    }
    client.close();
    yield* server.tasks[0]!;
    assertEquals(names(server.errors), ["BrokenPipe"]);
    assertPrefix(concat(parts), big, "the client's bytes");
  }, { bufferSize: 16_384, maxChunk: 4096 }),
);

Deno.test(
  "memory: a peer that never reads: sendAll() under deadline() times out, the server goes on, the peer then reads an exact prefix",
  memoryServer(function* (server) {
    const big = pattern(1 << 20, 3);
    const outcome: string[] = [];
    const client = server.connect(function* (conn) {
      try {
        yield* deadline(conn.sendAll(big), 1000);
        outcome.push("sent");
      } catch (error) {
        outcome.push((error as Error).name);
      }
    });
    yield* server.assertServes(); // while the other is blocked
    yield* server.tasks[0]!;
    assertEquals(outcome, ["TimeoutError"]);
    assertEquals(Loop.current.time() >= 1000, true);
    const parts: Uint8Array[] = [];
    for (let data; (data = yield* client.recv(65536)).length > 0;) parts.push(data);
    client.close();
    const got = concat(parts);
    assertPrefix(got, big, "the late reader's bytes");
    assertEquals(got.length, 16_384, "what fit in the buffer, exactly");
  }, { bufferSize: 16_384 }),
);

Deno.test(
  "memory: peers that trickle a byte at a time get whole lines back, and others are served meanwhile",
  memoryServer(function* (server) {
    function* lines(conn: ByteStream): Coroutine<void> {
      const reader = new StreamReader(conn);
      const writer = new StreamWriter(conn);
      for (let line; (line = yield* reader.readLine()) !== null;) {
        writer.write(`${line.length}:${line}\n`);
        yield* writer.drain();
      }
      yield* writer.close();
    }
    const text = "the quick brown fox jumps over the lazy dog";
    function* trickle(conn: MemoryStream): Coroutine<string> {
      using _ = conn;
      const data = new TextEncoder().encode(`${text}\n${text}\n`);
      for (const byte of data) {
        yield* conn.sendAll(new Uint8Array([byte]));
        yield* sleep(10);
      }
      yield* conn.shutdown();
      const reader = new StreamReader(conn);
      const got: string[] = [];
      for (let line; (line = yield* reader.readLine()) !== null;) got.push(line);
      return got.join("|");
    }
    const tricklers = [0, 1, 2].map((i) =>
      server.group.spawn(trickle(server.connect(lines, `trickle ${i}`)))
    );
    yield* server.assertServes();
    for (const task of tricklers) {
      assertEquals(yield* task, `${text.length}:${text}|${text.length}:${text}`);
    }
    assertEquals(server.errors, []);
  }, { maxChunk: 1 }),
);

Deno.test(
  "memory: peers that connect and vanish (close, reset, half a message) cost the server nothing",
  memoryServer(function* (server) {
    const stats = Array.from({ length: 30 }, () => ({ received: 0, sent: 0 }));
    for (let i = 0; i < 30; i++) {
      const client = server.connect((conn) => echo(conn, stats[i]), `vanish ${i}`);
      if (i % 3 === 1) yield* client.sendAll(pattern(100, i));
      if (i % 2 === 0) client.close();
      else client.reset();
    }
    for (const task of server.tasks) yield* task;
    for (const error of server.errors) assert(isPeerGone(error), String(error));
  }),
);

// ---------------------------------------------------------------------------
// Cancellation at every suspension point of an echo session (memory streams)

const SESSION_OPTIONS = { maxChunk: 700, latency: 1, bufferSize: 1500 };
const SESSION_MESSAGE = pattern(6000, 7);

/** The echo of the handler: with recv() and sendAll(), or through a StreamReader and a StreamWriter. */
const HANDLERS = {
  "recv/sendAll": echo,
  "StreamReader/StreamWriter": function* (
    conn: ByteStream,
    stats: { received: number; sent: number },
  ): Coroutine<void> {
    const reader = new StreamReader(conn);
    const writer = new StreamWriter(conn, { highWaterMark: 2048 });
    for (let data; (data = yield* reader.read(1024)).length > 0;) {
      stats.received += data.length;
      writer.write(data);
      if (writer.buffered >= 2048) {
        const n = writer.buffered;
        yield* writer.drain();
        stats.sent += n;
      }
    }
    const n = writer.buffered;
    yield* writer.close();
    stats.sent += n;
  },
};

/**
 * One echo session over memory streams, its suspensions counted across the
 * handler and the client's two tasks; the task making the `target`-th one is
 * cancelled there (0: none). Returns the count and what each side saw.
 */
function* cancelledSession(target: number, kind: keyof typeof HANDLERS): Coroutine<{
  count: number;
  landed: string | null;
  session: Session;
  handler: { received: number; sent: number; ended: string };
}> {
  const canceller = new Canceller(target);
  const handler = { received: 0, sent: 0, ended: "" };
  const [client, conn] = memoryStreamPair(SESSION_OPTIONS);
  const session = yield* taskGroup(function* (group) {
    const serverTask: Task<void> = group.spawn(
      function* () {
        using _ = conn;
        try {
          yield* canceller.wrap("handler", () => serverTask, HANDLERS[kind](conn, handler));
          handler.ended = "returned";
        } catch (error) {
          handler.ended = (error as Error).name;
        }
      }(),
      { name: "handler" },
    );
    return yield* echoClient(
      client,
      SESSION_MESSAGE,
      1000,
      (who, task, inner) => canceller.wrap(who, task, inner),
    );
  });
  return { count: canceller.count, landed: canceller.landed, session, handler };
}

for (const kind of Object.keys(HANDLERS) as (keyof typeof HANDLERS)[]) {
  Deno.test(`memory: a cancellation landed at each suspension point of an echo session in turn (${kind})`, async () => {
    const loop = () => new Loop({ virtualTime: true });
    const baseline = await loop().runTask(cancelledSession(0, kind));
    assertEquals(baseline.session.errors, []);
    assertEquals(baseline.session.got, SESSION_MESSAGE);
    assertEquals(baseline.handler.ended, "returned");
    const n = baseline.count;
    assertGreater(
      n,
      10,
      "an echo session with fragments, latency and back-pressure suspends often",
    );
    const landed = new Set<string>();
    for (let k = 1; k <= n; k++) {
      const run = await loop().runTask(cancelledSession(k, kind));
      const where = `cancelled at suspension ${k} of ${n} (${run.landed})`;
      assert(run.landed !== null, `${where}: the cancellation should land`);
      landed.add(run.landed);
      const { session, handler } = run;
      // Acknowledged bytes are exact: the client got a prefix of what it sent,
      // at least what the handler saw go out whole, at most what it received.
      assertPrefix(session.got, SESSION_MESSAGE, where);
      if (session.complete) {
        assert(
          session.got.length >= handler.sent,
          `${where}: read to the end ${session.got.length} bytes, fewer than the ${handler.sent} sent`,
        );
      }
      assert(
        session.got.length <= handler.received,
        `${where}: got more than the handler received`,
      );
      assert(
        handler.received <= session.sent + 1000,
        `${where}: the handler received more than was sent`,
      );
      if (run.landed === "handler") {
        assertEquals(handler.ended, "CancelledError", where);
        assert(session.complete, `${where}: the client should read to the end of the stream`);
      } else {
        assert(
          handler.ended === "returned" || handler.ended === "BrokenPipe" ||
            handler.ended === "ConnectionReset",
          `${where}: the handler ended with ${handler.ended}`,
        );
      }
      for (const error of session.errors) {
        assert(error instanceof CancelledError || isPeerGone(error), `${where}: ${error}`);
      }
    }
    assertEquals([...landed].sort(), ["client receiver", "client sender", "handler"]);
    await assertNoUnhandled();
  });
}

// ---------------------------------------------------------------------------
// Real sockets through serve()

/** The python3 on PATH; fails with a clear message when there is none. */
async function python3(): Promise<string> {
  try {
    const { success } = await new Deno.Command("python3", { args: ["-c", "pass"] }).output();
    if (success) return "python3";
  } catch {
    // not found
  }
  throw new Error(
    "these tests need python3 on PATH: their peers reset with SO_LINGER 0, which Deno cannot set",
  );
}

/**
 * python3 peers on 127.0.0.1:port, bytes as pattern() makes them.
 * `reset A B`: sends A bytes, reads their echo back whole and checks it,
 * prints "acked A", sends B more and resets at once.
 * `vanish N`: N connections; of each three, one closes at once, one sends
 * 500 bytes then resets, one resets at once.
 * `storm N`: N connections, then resets them all at once.
 * `hold N`: N connections, a byte sent on each; prints "held", waits for a
 * line on stdin, then resets them all.
 */
const PEERS = `
import socket, struct, sys
port, mode = int(sys.argv[1]), sys.argv[2]
args = [int(a) for a in sys.argv[3:]]
def pattern(n, seed, start=0):
    return bytes(((i * 7 + seed) & 0xff) for i in range(start, start + n))
def linger0(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
def connect():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.connect(("127.0.0.1", port))
    return s
if mode == "reset":
    a, b = args
    s = connect()
    s.sendall(pattern(a, 11))
    got = b""
    while len(got) < a:
        data = s.recv(65536)
        if not data:
            sys.exit("the echo ended early")
        got += data
    if got != pattern(a, 11):
        sys.exit("the echo differs")
    print("acked", len(got), flush=True)
    s.sendall(pattern(b, 11, a))
    linger0(s)
    s.close()
elif mode == "vanish":
    for i in range(args[0]):
        try:
            s = connect()
            if i % 3 == 1:
                s.sendall(pattern(500, i))
            if i % 3 != 0:
                linger0(s)
            s.close()
        except OSError:
            pass
else:
    socks = []
    for i in range(args[0]):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        linger0(s)
        try:
            s.connect(("127.0.0.1", port))
            if mode == "hold":
                s.sendall(b"x")
        except OSError:
            pass  # refused or reset by a full backlog: a hostile peer shrugs
        socks.append(s)
    if mode == "hold":
        print("held", flush=True)
        sys.stdin.readline()
    for s in socks:
        s.close()
`;

/** Runs a python3 peer to its end; returns its stdout, failing on a non-zero status. */
function* peer(python: string, port: number, ...args: (string | number)[]): Coroutine<string> {
  const out = yield* fromPromise(
    new Deno.Command(python, { args: ["-c", PEERS, String(port), ...args.map(String)] }).output(),
  );
  const stderr = new TextDecoder().decode(out.stderr);
  assert(out.success, `the python3 peer failed: ${stderr}`);
  return new TextDecoder().decode(out.stdout);
}

/** A serve() on 127.0.0.1 port 0 in a task group, its handlers' errors and ends recorded. */
class RealServer {
  readonly errors: unknown[] = [];
  readonly ended = new Queue<string>();
  readonly started = new Queue<string>();
  /** Connections from now on are normal clients: served by a plain echo. */
  normal = false;
  addr!: Deno.NetAddr;

  /** Connects a client socket. */
  *connect(): Coroutine<AIOSocket<"tcp">> {
    const client = aiosocket();
    try {
      yield* client.connect(this.addr);
    } catch (error) {
      client.close();
      throw error;
    }
    return client;
  }

  /** Waits until `n` more fault handlers have started, then returns their peers. */
  *handlersStarted(n: number): Coroutine<string[]> {
    const peers: string[] = [];
    while (peers.length < n) peers.push(yield* this.started.get());
    return peers;
  }

  /** Waits until `n` more handlers have ended, then returns their peers. */
  *handlersEnded(n: number): Coroutine<string[]> {
    const peers: string[] = [];
    while (peers.length < n) peers.push(yield* this.ended.get());
    return peers;
  }

  /**
   * A normal client: its 100 KiB come back whole. Every connection accepted
   * from now on gets the plain echo, so a test calls it once the faults'
   * handlers have started.
   */
  *assertServes(): Coroutine<void> {
    this.normal = true;
    const message = pattern(100_000, 99);
    const session = yield* echoClient(yield* this.connect(), message, 8192);
    assertEquals(session.errors, []);
    assertEquals(session.got, message);
  }
}

/** The name serve() gives a connection's task: its peer. */
function peerOf(conn: AIOSocket<"tcp">): string {
  const { hostname, port } = conn.remoteAddr;
  return `${hostname}:${port}`;
}

/**
 * A loopTest on real time: serve(handler) runs while `body` does, then a
 * normal client must be served, then the server is cancelled. Every error
 * its handlers reported must be a peer gone away unless `errors` says which.
 */
function realServer(
  handler: (conn: AIOSocket<"tcp">, server: RealServer) => Coroutine<void>,
  body: (server: RealServer) => Coroutine<void>,
): () => Promise<void> {
  const test = loopTest(
    () =>
      taskGroup(function* (group) {
        const server = new RealServer();
        const wrapped: Handler = function* (conn) {
          const name = peerOf(conn);
          const fault = !server.normal;
          if (fault) server.started.tryPut(name);
          try {
            yield* fault ? handler(conn, server) : echo(conn);
          } finally {
            server.ended.tryPut(name);
          }
        };
        server.addr = yield* group.start<Deno.NetAddr>((ready) =>
          serve(
            { port: 0, onListen: ready, onError: (error) => server.errors.push(error) },
            wrapped,
          )
        );
        yield* body(server);
        yield* server.assertServes();
        group.cancel(); // stops the server
      }),
    { virtualTime: false, timeout: 20_000 },
  );
  return async () => {
    await test();
    await assertNoUnhandled();
  };
}

/** Echoes with recvInto(), recording per connection what it received. */
function* recordingEcho(
  conn: AIOSocket<"tcp">,
  received: Map<string, Uint8Array[]>,
): Coroutine<void> {
  const parts: Uint8Array[] = [];
  received.set(peerOf(conn), parts);
  const buffer = new Uint8Array(16_384);
  for (let n; (n = yield* conn.recvInto(buffer)) > 0;) {
    parts.push(buffer.slice(0, n));
    yield* conn.sendAll(buffer.subarray(0, n));
  }
}

{
  const received = new Map<string, Uint8Array[]>();
  Deno.test(
    "sockets: a peer that resets mid-message: what the server got is exact, the peer's acknowledged echo was whole, the server goes on",
    realServer((conn) => recordingEcho(conn, received), function* (server) {
      const python = yield* fromPromise(python3());
      const out = yield* peer(python, server.addr.port, "reset", 30_000, 20_000);
      assertEquals(out.trim(), "acked 30000");
      const [name] = yield* server.handlersEnded(1);
      const got = concat(received.get(name!)!);
      assertGreaterOrEqual(got.length, 30_000, "at least the acknowledged bytes");
      assertPrefix(got, pattern(50_000, 11), "the server's bytes");
      for (const error of server.errors) assert(isPeerGone(error), String(error));
      // Fifty more that send half a message and reset, some before accept() took them.
      yield* peer(python, server.addr.port, "vanish", 50);
      for (const error of server.errors) assert(isPeerGone(error), String(error));
    }),
  );
}

{
  const big = pattern(16 << 20, 5);
  const outcome: string[] = [];
  Deno.test(
    "sockets: a peer that closes during a sendAll() of 16 MiB: the handler's error is the peer's going, the bytes it read are an exact prefix",
    realServer(function* (conn) {
      try {
        yield* conn.sendAll(big);
        outcome.push("sent");
      } catch (error) {
        outcome.push(isPeerGone(error) ? "peer gone" : String(error));
      }
    }, function* (server) {
      const client = yield* server.connect();
      const parts: Uint8Array[] = [];
      let got = 0;
      try {
        while (got < 300_000) {
          const data = yield* client.recv(65536);
          assertGreater(data.length, 0);
          parts.push(data);
          got += data.length;
        }
      } finally {
        client.close(); // with bytes unread: a reset
      }
      assertPrefix(concat(parts), big, "the client's bytes");
      yield* server.handlersEnded(1);
      assertEquals(outcome, ["peer gone"]);
    }),
  );
}

{
  const big = pattern(16 << 20, 6);
  const outcome: string[] = [];
  Deno.test(
    "sockets: a peer that never reads: the handler's sendAll() is bounded by deadline(), the server serves others meanwhile and goes on",
    realServer(function* (conn) {
      try {
        yield* deadline(conn.sendAll(big), 300);
        outcome.push("sent");
      } catch (error) {
        outcome.push((error as Error).name);
      }
    }, function* (server) {
      using client = yield* server.connect();
      yield* server.handlersStarted(1);
      yield* server.assertServes(); // while the handler is blocked in sendAll()
      yield* server.handlersEnded(2);
      assertEquals(outcome, ["TimeoutError"]);
      // The server closed the connection: the late reader gets a prefix, then the end.
      const parts: Uint8Array[] = [];
      for (let data; (data = yield* client.recv(65536)).length > 0;) parts.push(data);
      const got = concat(parts);
      assertGreater(got.length, 0);
      assert(got.length < big.length, "a reader that never read cannot have got 16 MiB");
      assertPrefix(got, big, "the late reader's bytes");
    }),
  );
}

Deno.test(
  "sockets: peers that trickle a byte at a time get whole lines back, and others are served meanwhile",
  realServer(function* (conn) {
    const reader = new StreamReader(conn);
    const writer = new StreamWriter(conn);
    for (let line; (line = yield* reader.readLine()) !== null;) {
      writer.write(`${line.length}:${line}\n`);
      yield* writer.drain();
    }
    yield* writer.close();
  }, function* (server) {
    const text = "a line sent one byte at a time";
    function* trickle(): Coroutine<string[]> {
      using client = yield* server.connect();
      client.setNoDelay(true);
      for (const byte of new TextEncoder().encode(`${text}\n${text}\n`)) {
        yield* client.sendAll(new Uint8Array([byte]));
        yield* sleep(1);
      }
      yield* client.shutdown();
      const reader = new StreamReader(client);
      const lines: string[] = [];
      for (let line; (line = yield* reader.readLine()) !== null;) lines.push(line);
      return lines;
    }
    const tricklers = [0, 1, 2].map(() => Loop.current.addTask(trickle()));
    yield* server.handlersStarted(3);
    const results = yield* gatherSettled(...tricklers, server.assertServes());
    for (const result of results.slice(0, 3)) {
      assertEquals(result, {
        status: "fulfilled",
        value: [`${text.length}:${text}`, `${text.length}:${text}`],
      });
    }
    assertEquals(results[3]!.status, "fulfilled");
    assertEquals(server.errors, []);
  }),
);

{
  const received = new Map<string, Uint8Array[]>();
  Deno.test(
    "sockets: peers that connect and vanish (close at once, half a message then reset, reset at once) cost the server nothing",
    realServer((conn) => recordingEcho(conn, received), function* (server) {
      const python = yield* fromPromise(python3());
      yield* peer(python, server.addr.port, "vanish", 60);
      for (let i = 0; i < 10; i++) (yield* server.connect()).close();
      yield* server.assertServes();
      for (const error of server.errors) assert(isPeerGone(error), String(error));
      for (const parts of received.values()) {
        const got = concat(parts);
        assert(got.length === 0 || got.length === 500 || got.length === 100_000, `${got.length}`);
      }
    }),
  );
}

{
  // The k-th suspension of the handler, on real sockets, for every k of a
  // first uncancelled session (up to 80): each k its own session. Real
  // sockets interleave differently each run, so a later session may suspend
  // fewer times than the first: then the cancellation does not land and the
  // session must be whole.
  let canceller = new Canceller(0);
  let counted = 0;
  const landed: number[] = [];
  Deno.test(
    "sockets: a cancellation landed at each suspension of a serve() handler in turn: onError gets it, the client an exact prefix, the server goes on",
    realServer(function* (conn) {
      const name = peerOf(conn);
      const self = () => Loop.current.tasks().find((task) => task.name === name)!;
      yield* canceller.wrap("handler", self, echo(conn));
    }, function* (server) {
      const message = pattern(200_000, 13);
      const baseline = yield* echoClient(yield* server.connect(), message, 8192);
      yield* server.handlersEnded(1);
      assertEquals(baseline.got, message);
      counted = Math.min(canceller.count, 80);
      assertGreater(counted, 5);
      for (let k = 1; k <= counted; k++) {
        canceller = new Canceller(k);
        const before = server.errors.length;
        const session = yield* echoClient(yield* server.connect(), message, 8192);
        yield* server.handlersEnded(1);
        const where = `cancelled at suspension ${k}`;
        const errors = server.errors.slice(before);
        if (canceller.landed === null) {
          assertEquals(session.got, message, `${where} (did not land)`);
          assertEquals(errors, [], `${where} (did not land)`);
          continue;
        }
        landed.push(k);
        assertPrefix(session.got, message, where);
        assertEquals(names(errors), ["CancelledError"], where);
        for (const error of session.errors) assert(isPeerGone(error), `${where}: ${error}`);
      }
      canceller = new Canceller(0);
      assertGreaterOrEqual(landed.length, Math.ceil(counted / 2), `landed at ${landed}`);
    }),
  );
}

// ---------------------------------------------------------------------------
// serve() out of file descriptors, in a subprocess under `ulimit -n 64`

/**
 * The server the subprocess runs (from stdin): an echo through serve() on
 * 127.0.0.1 port 0; it prints "listening <port>", "connected" per
 * connection, "error <name>" per handler error, "unhandled <reason>" per
 * unhandled rejection, and on SIGTERM stops (cancelling serve) and prints
 * "stopped".
 */
const LIMITED_SERVER = `
import { Loop } from ${JSON.stringify(new URL("../loop.ts", import.meta.url).href)};
import { serve } from ${JSON.stringify(new URL("../server.ts", import.meta.url).href)};
globalThis.addEventListener("unhandledrejection", (event) => {
  console.log("unhandled", String(event.reason));
});
const stop = new AbortController();
Deno.addSignalListener("SIGTERM", () => stop.abort());
const loop = new Loop();
loop.addTask(serve({
  port: 0,
  onListen: (addr) => console.log("listening", addr.port),
  onError: (error) => console.log("error", error?.name),
}, function* (conn) {
  console.log("connected");
  const buffer = new Uint8Array(4096);
  for (let n; (n = yield* conn.recvInto(buffer)) > 0;) yield* conn.sendAll(buffer.subarray(0, n));
}));
await loop.run({ until: stop.signal });
console.log("stopped");
Deno.exit(0);
`;

/** The server above under `ulimit -n`, its output read line by line. */
class LimitedServe implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #lines: ReadableStreamDefaultReader<string>;
  #pending = "";
  readonly log: string[] = [];

  constructor(fds: number) {
    this.#child = new Deno.Command("bash", {
      args: [
        "-c",
        `ulimit -n ${fds} && exec "$0" "$@"`,
        DENO,
        "run",
        "--quiet",
        "--no-prompt",
        "--allow-net=127.0.0.1",
        "-",
      ],
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = this.#child.stdin.getWriter();
    writer.write(new TextEncoder().encode(LIMITED_SERVER)).then(() => writer.close());
    this.#lines = this.#child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** Reads the output until `count` lines start with `text`; returns the last of them. */
  async waitFor(text: string, count = 1): Promise<string> {
    for (;;) {
      const found = this.log.filter((line) => line.startsWith(text));
      if (found.length >= count) return found[count - 1]!;
      const { value, done } = await this.#lines.read();
      if (done) {
        throw new Error(`the server's output ended before "${text}":\n${this.log.join("\n")}`);
      }
      const lines = (this.#pending + value).split("\n");
      this.#pending = lines.pop()!;
      this.log.push(...lines);
    }
  }

  /** SIGTERM, then its exit status and stderr, its output read to the end. */
  async stop(): Promise<{ code: number; stderr: string }> {
    this.#child.kill("SIGTERM");
    await this.waitFor("stopped");
    while (!(await this.#lines.read()).done);
    const [status, stderr] = await Promise.all([
      this.#child.status,
      new Response(this.#child.stderr).text(),
    ]);
    return { code: status.code, stderr };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already ended
    }
    await this.#lines.cancel().catch(() => {});
    await this.#child.stderr.cancel().catch(() => {});
    await this.#child.status;
  }
}

/** One echo round trip with a normal client, outside any loop. */
async function ping(port: number): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode("ping"));
    const buffer = new Uint8Array(16);
    let got = 0;
    while (got < 4) {
      const n = await conn.read(buffer.subarray(got));
      if (n === null) break;
      got += n;
    }
    return new TextDecoder().decode(buffer.subarray(0, got));
  } finally {
    conn.close();
  }
}

Deno.test("serve() under ulimit -n 64 survives a reset storm and more clients than descriptors, then serves and stops cleanly", async () => {
  const python = await python3();
  await using server = new LimitedServe(64);
  const port = Number((await server.waitFor("listening ")).split(" ")[1]);
  const run = (...args: (string | number)[]) =>
    new Deno.Command(python, { args: ["-c", PEERS, String(port), ...args.map(String)] });

  // 300 connections reset at once, most before serve() took them.
  const storm = await run("storm", 300).output();
  assert(storm.success, new TextDecoder().decode(storm.stderr));
  assertEquals(await ping(port), "ping");

  // 120 connections held open: more than the 64 descriptors.
  // serve() accepts up to its limit, backs off, and recovers once they go.
  const command = new Deno.Command(python, {
    args: ["-c", PEERS, String(port), "hold", "120"],
    stdin: "piped",
    stdout: "piped",
  });
  const holder = command.spawn();
  const held = holder.stdout.pipeThrough(new TextDecoderStream()).getReader();
  assertEquals((await held.read()).value?.trim(), "held");
  await server.waitFor("connected", 20); // it has taken some and runs out
  const writer = holder.stdin.getWriter();
  await writer.write(new TextEncoder().encode("release\n"));
  await writer.close();
  while (!(await held.read()).done); // to its end: the peers reset and exit
  assert((await holder.status).success);
  assertEquals(await ping(port), "ping");
  assertEquals(await ping(port), "ping");

  const { code, stderr } = await server.stop();
  assertEquals(code, 0, stderr);
  assertEquals(stderr.includes("Uncaught"), false, stderr);
  assertEquals(server.log.filter((line) => line.startsWith("unhandled")), []);
  for (const line of server.log.filter((line) => line.startsWith("error "))) {
    assert(line === "error ConnectionReset" || line === "error BrokenPipe", line);
  }
  await assertNoUnhandled();
});

// ---------------------------------------------------------------------------
// Stopping serve() while every kind of handler is blocked

Deno.test("cancelling serve() with handlers blocked in recv() and in sendAll() to non-readers closes every connection and leaves nothing behind", async () => {
  const big = pattern(16 << 20, 8);
  const ends: string[] = [];
  const seen: { got: number; end: string }[] = [];
  const started = new Queue<string>();
  await loopTest(() =>
    taskGroup(function* (group) {
      const addr = yield* group.start<Deno.NetAddr>((ready) =>
        serve({ port: 0, onListen: ready }, function* (conn) {
          const first = yield* conn.recv(1);
          started.tryPut(peerOf(conn));
          try {
            if (first[0] === 1) yield* conn.sendAll(big); // to a client that never reads
            else yield* conn.recv(1); // from a client that never sends again
            ends.push("returned");
          } catch (error) {
            ends.push((error as Error).name);
            throw error;
          }
        })
      );
      // Three that never read, three that never send again.
      const clients: AIOSocket<"tcp">[] = [];
      for (let i = 0; i < 6; i++) {
        const client = aiosocket();
        clients.push(client);
        yield* client.connect(addr);
        yield* client.sendAll(new Uint8Array([i % 2]));
      }
      for (let i = 0; i < 6; i++) yield* started.get();
      group.cancel(); // stops serve(): the handlers are cancelled where they wait
      yield* interruptOnce();
      for (const client of clients) {
        using _ = client;
        const parts: Uint8Array[] = [];
        let end = "end of stream";
        try {
          for (let data; (data = yield* client.recv(65536)).length > 0;) parts.push(data);
        } catch (error) {
          end = (error as Error).name;
        }
        const got = concat(parts);
        assertPrefix(got, big, "a client's bytes");
        seen.push({ got: got.length, end });
      }
    }), { virtualTime: false })();
  assertEquals(ends, Array(6).fill("CancelledError"));
  assertEquals(seen.length, 6);
  for (const { end } of seen) assert(end === "end of stream" || end === "ConnectionReset", end);
  await assertNoUnhandled();
});

/** One bare yield: lets the cancelled handlers unwind before the clients read. */
function* interruptOnce(): Coroutine<void> {
  yield;
}

// ---------------------------------------------------------------------------
// TLS: peers that stall or vanish during the handshake, or reset mid-message

const cert = Deno.readTextFileSync(`${ROOT}/tests/fixtures/tls_cert.pem`);
const key = Deno.readTextFileSync(`${ROOT}/tests/fixtures/tls_key.pem`);

/**
 * python3 TLS peers. `hello`: sends the first 40 bytes of a TLS ClientHello
 * then resets. `tls-reset A`: completes the handshake (trusting the
 * fixture's certificate), sends A bytes, reads their echo whole, prints
 * "acked A", sends A more and resets.
 */
const TLS_PEERS = `
import socket, ssl, struct, sys
port, mode, cafile = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def linger0(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
raw = socket.create_connection(("127.0.0.1", port))
if mode == "hello":
    ctx = ssl.create_default_context(cafile=cafile)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    raw.sendall(outgoing.read()[:40])
    linger0(raw)
    raw.close()
else:
    a = int(sys.argv[4])
    ctx = ssl.create_default_context(cafile=cafile)
    s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    data = bytes(((i * 7 + 21) & 0xff) for i in range(2 * a))
    s.sendall(data[:a])
    got = b""
    while len(got) < a:
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("the echo ended early")
        got += chunk
    if got != data[:a]:
        sys.exit("the echo differs")
    print("acked", len(got), flush=True)
    s.sendall(data[a:])
    linger0(s)  # wrap_socket() took raw's descriptor
    s.close()
`;

Deno.test("TLS: peers that stall in the handshake, vanish half-way through it, or reset mid-message never stop serve(); a trusting client is served whole", async () => {
  const python = await python3();
  const errors: unknown[] = [];
  const received: Uint8Array[][] = [];
  const ended = new Queue<number>(); // the bytes each handler got
  await loopTest(() =>
    taskGroup(function* (group) {
      const addr = yield* group.start<Deno.NetAddr>((ready) =>
        serve({
          transport: "tls",
          port: 0,
          cert,
          key,
          onListen: ready,
          onError: (error) => errors.push(error),
        }, function* (conn) {
          const parts: Uint8Array[] = [];
          received.push(parts);
          try {
            for (let data; (data = yield* conn.recv(65536)).length > 0;) {
              parts.push(data);
              yield* conn.sendAll(data);
            }
          } finally {
            ended.tryPut(concat(parts).length);
          }
        })
      );
      const run = (...args: (string | number)[]) =>
        fromPromise(
          new Deno.Command(python, {
            args: [
              "-c",
              TLS_PEERS,
              String(addr.port),
              String(args[0]),
              `${ROOT}/tests/fixtures/tls_cert.pem`,
              ...args.slice(1).map(String),
            ],
          }).output(),
        );
      // A stalled peer: connects and sends nothing, held open meanwhile.
      using stalled = aiosocket();
      yield* stalled.connect(addr);
      // Five that vanish in the middle of the handshake.
      for (let i = 0; i < 5; i++) {
        const out = yield* run("hello");
        assert(out.success, new TextDecoder().decode(out.stderr));
      }
      // One that resets mid-message after a full handshake and an acknowledged echo.
      const out = yield* run("tls-reset", 20_000);
      assert(out.success, new TextDecoder().decode(out.stderr));
      assertEquals(new TextDecoder().decode(out.stdout).trim(), "acked 20000");
      while ((yield* ended.get()) < 20_000); // until the handler of the reset peer ended
      const whole = pattern(40_000, 21);
      const full = received.map(concat).filter((got) => got.length >= 20_000);
      assertEquals(full.length, 1, "one peer got past the handshake");
      assertPrefix(full[0]!, whole, "the TLS peer's bytes");
      // A trusting client, while the stalled one still holds its connection.
      using client = aiosocket({ transport: "tls" });
      yield* client.connect({ hostname: "127.0.0.1", port: addr.port, caCerts: [cert] });
      const message = pattern(100_000, 99);
      const session = yield* echoClient(client, message, 8192);
      assertEquals(session.errors, []);
      assertEquals(session.got, message);
      group.cancel();
    }), { virtualTime: false, timeout: 20_000 })();
  for (const error of errors) {
    assert(
      isPeerGone(error) || error instanceof Deno.errors.InvalidData ||
        error instanceof Deno.errors.UnexpectedEof,
      `${(error as Error).name}: ${(error as Error).message}`,
    );
  }
  await assertNoUnhandled();
});

// ---------------------------------------------------------------------------
// Reads cut short by timeouts lose nothing

Deno.test("memory: StreamReader reads cut short by moveOnAfter() at every point lose no byte", async () => {
  const lines = Array.from({ length: 40 }, (_, i) => `line ${i} ${"x".repeat(i * 3)}`);
  for (const timeout of [1, 2, 3, 4, 5]) {
    for (const how of ["readLine", "readExactly"] as const) {
      let timeouts = 0;
      const got = await new Loop({ virtualTime: true }).runTask(taskGroup(function* (group) {
        const [a, b] = memoryStreamPair({ maxChunk: 3, latency: 2 });
        group.spawn(function* () {
          using _ = a;
          for (const line of lines) {
            const bytes = new TextEncoder().encode(`${line}\n`);
            yield* a.sendAll(bytes.subarray(0, 5)); // half a line, a pause, the rest
            yield* sleep(6);
            yield* a.sendAll(bytes.subarray(5));
            yield* sleep(1);
          }
          yield* a.shutdown();
        }());
        using _ = b;
        const reader = new StreamReader(b);
        const got: string[] = [];
        const decoder = new TextDecoder();
        let partial = "";
        for (;;) {
          if (how === "readLine") {
            const line = yield* moveOnAfter(reader.readLine(), timeout);
            if (line === undefined) {
              timeouts++;
              continue;
            }
            if (line === null) break;
            got.push(line);
          } else {
            let bytes: Uint8Array | undefined;
            try {
              bytes = yield* moveOnAfter(reader.readExactly(7), timeout);
            } catch (error) {
              if (!(error instanceof IncompleteReadError)) throw error;
              partial += decoder.decode(error.partial);
              break;
            }
            if (bytes === undefined) {
              timeouts++;
              continue;
            }
            partial += decoder.decode(bytes);
          }
        }
        return how === "readLine" ? got : partial.split("\n").slice(0, -1);
      }));
      assertEquals(got, lines, `${how} cut short after ${timeout} ms`);
      assertGreater(
        timeouts,
        0,
        `${how} with ${timeout} ms: some reads should have been cut short`,
      );
    }
  }
  await assertNoUnhandled();
});

Deno.test("sockets: recv() and recvInto() cut short by moveOnAfter() over and over lose no byte of a trickling peer", async () => {
  const message = pattern(3000, 17);
  const received = new Map<string, Uint8Array>();
  for (const how of ["recv", "recvInto"] as const) {
    let timeouts = 0;
    const got = await loopTest(function* () {
      const server = aiosocket();
      using _server = server;
      yield* server.bind({ hostname: "127.0.0.1", port: 0 });
      yield* server.listen();
      return yield* taskGroup(function* (group) {
        const client = aiosocket();
        group.spawn(function* () {
          using _ = client;
          yield* client.connect(server.localAddr);
          client.setNoDelay(true);
          for (let at = 0; at < message.length; at += 100) {
            yield* client.sendAll(message.subarray(at, at + 100));
            yield* sleep(1);
          }
        }());
        using conn = yield* server.accept();
        const parts: Uint8Array[] = [];
        const buffer = new Uint8Array(64);
        for (;;) {
          const data = how === "recv" ? yield* moveOnAfter(conn.recv(64), 0.5) : yield* moveOnAfter(
            function* () {
              const n = yield* conn.recvInto(buffer);
              return buffer.slice(0, n);
            }(),
            0.5,
          );
          if (data === undefined) {
            timeouts++;
            continue;
          }
          if (data.length === 0) break;
          parts.push(data);
        }
        received.set(how, concat(parts));
      });
    }, { virtualTime: false })().then(() => received.get(how)!);
    assertEquals(got, message, `${how}: every byte, in order`);
    assertGreater(timeouts, 0, `${how}: some receives should have been cut short`);
  }
  await assertNoUnhandled();
});

// ---------------------------------------------------------------------------
// maxConnections against peers that hold their slot, then reset

Deno.test("sockets: with maxConnections 2 held by peers that then reset, the slots come back and a waiting client is served whole", async () => {
  const python = await python3();
  const errors: unknown[] = [];
  await loopTest(() =>
    taskGroup(function* (group) {
      const started = new Queue<string>();
      const addr = yield* group.start<Deno.NetAddr>((ready) =>
        serve({
          port: 0,
          maxConnections: 2,
          onListen: ready,
          onError: (error) => errors.push(error),
        }, function* (conn) {
          started.tryPut(peerOf(conn));
          yield* echo(conn);
        })
      );
      const holder = new Deno.Command(python, {
        args: ["-c", PEERS, String(addr.port), "hold", "2"],
        stdin: "piped",
        stdout: "piped",
      }).spawn();
      const held = holder.stdout.pipeThrough(new TextDecoderStream()).getReader();
      try {
        assertEquals((yield* fromPromise(held.read())).value?.trim(), "held");
        yield* started.get();
        yield* started.get(); // both slots taken
        const message = pattern(50_000, 3);
        const waiting = group.spawn(function* () {
          const client = aiosocket();
          yield* client.connect(addr); // queued by the system, not accepted yet
          return yield* echoClient(client, message, 8192);
        }());
        const writer = holder.stdin.getWriter();
        yield* fromPromise(
          writer.write(new TextEncoder().encode("release\n")).then(() => writer.close()),
        );
        const session = yield* waiting;
        assertEquals(session.errors, []);
        assertEquals(session.got, message);
      } finally {
        yield* fromPromise((async () => {
          while (!(await held.read()).done);
          await holder.status;
        })());
      }
      group.cancel();
    }), { virtualTime: false })();
  assertEquals(errors.length, 2, "the two holders reset");
  for (const error of errors) assert(isPeerGone(error), String(error));
  await assertNoUnhandled();
});

// ---------------------------------------------------------------------------
// Stopping serve() under load

Deno.test("sockets: cancelling serve() while 100 clients echo leaves every client an exact prefix and nothing behind", async () => {
  const sessions: Session[] = [];
  const messages = Array.from({ length: 100 }, (_, i) => pattern(256 * 1024, i));
  await loopTest(() =>
    taskGroup(function* (outer) {
      const echoed = new Queue<null>();
      const server = outer.spawn(taskGroup(function* (group) {
        const addr = yield* group.start<Deno.NetAddr>((ready) =>
          serve({ port: 0, onListen: ready }, function* (conn) {
            const buffer = new Uint8Array(16_384);
            for (let n, first = true; (n = yield* conn.recvInto(buffer)) > 0; first = false) {
              yield* conn.sendAll(buffer.subarray(0, n));
              if (first) echoed.tryPut(null);
            }
          })
        );
        for (let i = 0; i < 100; i++) {
          outer.spawn(function* () {
            const client = aiosocket();
            yield* client.connect(addr);
            sessions[i] = yield* echoClient(client, messages[i]!, 4096);
          }());
        }
        for (let i = 0; i < 100; i++) yield* echoed.get(); // every client is echoing
        group.cancel(); // stops serve() mid-stream
      }));
      yield* server;
    }), { virtualTime: false, timeout: 20_000 })();
  assertEquals(sessions.filter((session) => session !== undefined).length, 100);
  let cut = 0;
  sessions.forEach((session, i) => {
    assertPrefix(session.got, messages[i]!, `client ${i}`);
    if (session.got.length < messages[i]!.length) cut++;
    for (const error of session.errors) assert(isPeerGone(error), `client ${i}: ${error}`);
  });
  assertGreater(cut, 0, "some sessions were cut short by the stop");
  await assertNoUnhandled();
});

// ---------------------------------------------------------------------------
// sendAll() cut short at random points, the caller's buffer reused at once

Deno.test("sockets: sendAll()s cut short by deadline() at random points, each buffer overwritten at once: the peer gets a prefix of each, in order, never the overwrite", async () => {
  const random = prngOf(42);
  const sizes = [100, 1000, 65_536, 65_537, 200_000, 1 << 20, 4 << 20];
  const timeouts = [0, 0.1, 1, 5];
  const rounds = Array.from({ length: 40 }, (_, r) => ({
    value: 1 + (r % 200), // never 0xee, the overwrite
    size: sizes[Math.floor(random() * sizes.length)]!,
    timeout: timeouts[Math.floor(random() * timeouts.length)]!,
  }));
  const outcomes: string[] = [];
  let got: Uint8Array = new Uint8Array(0);
  await loopTest(function* () {
    using server = aiosocket();
    yield* server.bind({ hostname: "127.0.0.1", port: 0 });
    yield* server.listen();
    yield* taskGroup(function* (group) {
      const sender = aiosocket();
      group.spawn(function* () {
        using _ = sender;
        yield* sender.connect(server.localAddr);
        for (const { value, size, timeout } of rounds) {
          const buffer = new Uint8Array(size).fill(value);
          try {
            yield* deadline(sender.sendAll(buffer), timeout);
            outcomes.push("sent");
          } catch (error) {
            if ((error as Error).name !== "TimeoutError") {
              outcomes.push(`stopped: ${(error as Error).message}`);
              return; // the socket closed itself to get Deno to let go of a held write
            }
            outcomes.push("cut");
          }
          buffer.fill(0xee); // the caller reuses its memory at once
        }
        yield* sender.shutdown();
      }());
      using conn = yield* server.accept();
      const parts: Uint8Array[] = [];
      for (let data; (data = yield* conn.recv(65_536)).length > 0;) {
        parts.push(data);
        if (random() < 0.2) yield* sleep(random() * 3); // a slow reader, now and then
      }
      got = concat(parts);
    });
  }, { virtualTime: false, timeout: 20_000 })();
  // Runs of each round's value, in order, none longer than its round, whole when sent.
  let at = 0;
  for (let r = 0; r < outcomes.length; r++) {
    const { value, size } = rounds[r]!;
    let run = 0;
    while (at < got.length && got[at] === value) {
      at++;
      run++;
    }
    const outcome = outcomes[r]!;
    const where = `round ${r} (${size} bytes, ${outcome})`;
    assert(run <= size, `${where}: ${run} bytes`);
    if (outcome === "sent") assertEquals(run, size, where);
  }
  assertEquals(at, got.length, `byte ${at} is ${got[at]}: not the prefix of any round, in order`);
  assert(outcomes.includes("cut") && outcomes.includes("sent"), outcomes.join(", "));
  await assertNoUnhandled();
});

/** mulberry32, for the random rounds above. */
function prngOf(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------
// serve() itself cancelled at each of its suspensions in turn

/**
 * A client turned away by a server that is stopping: refused, or reset if it
 * reached the backlog as the listener closed. Once serve() has returned,
 * only refused (tests/faults_regressions_test.ts pins that).
 */
function isRefused(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionRefused ||
    error instanceof Deno.errors.ConnectionReset;
}

/**
 * One run: serve() in a task of its own, its suspensions counted, cancelled
 * at the `target`-th (0: by its group after three clients). Three clients
 * echo one after the other meanwhile. Returns the count and what each
 * client saw: "whole", "cut" (an exact prefix) or "refused".
 */
function* cancelledServe(target: number): Coroutine<{ count: number; clients: string[] }> {
  const canceller = new Canceller(target);
  const clients: string[] = [];
  const message = pattern(100_000, 23);
  yield* taskGroup(function* (group) {
    let addr: Deno.NetAddr | null = null;
    const listening = new Event();
    const server: Task<void> = group.spawn(function* () {
      try {
        yield* canceller.wrap(
          "serve",
          () => server,
          serve({
            port: 0,
            onListen: (a) => {
              addr = a;
              listening.set();
            },
          }, echo),
        );
      } finally {
        listening.set(); // also when it ends before it listened
      }
    }());
    yield* listening.wait();
    if (addr === null) {
      assert(server.done || target > 0);
      return;
    }
    const port = (addr as Deno.NetAddr).port;
    for (let i = 0; i < 3; i++) {
      const client = aiosocket();
      try {
        yield* client.connect({ hostname: "127.0.0.1", port });
      } catch (error) {
        client.close();
        assert(isRefused(error), String(error));
        assert(server.done, "refused only once serve() has ended");
        clients.push("refused");
        continue;
      }
      const session = yield* echoClient(client, message, 8192);
      assertPrefix(session.got, message, `client ${i}`);
      for (const error of session.errors) assert(isPeerGone(error), `client ${i}: ${error}`);
      clients.push(session.got.length === message.length ? "whole" : "cut");
    }
    if (canceller.landed === null) server.cancel(); // the k-th suspension may come only after this (in serve()'s cleanup)
    try {
      yield* server;
    } catch (error) {
      assert(error instanceof CancelledError, String(error));
    }
    assert(server.cancelled, "serve() ends by its cancellation");
    // Stopped: the port takes no new client.
    const late = aiosocket();
    try {
      yield* late.connect({ hostname: "127.0.0.1", port });
      fail("a client connected after serve() ended");
    } catch (error) {
      assert(error instanceof Deno.errors.ConnectionRefused, String(error));
    } finally {
      late.close();
    }
  });
  return { count: canceller.count, clients };
}

Deno.test("sockets: serve() cancelled at each of its own suspensions in turn stops, closes every connection and refuses new clients", async () => {
  const results: { count: number; clients: string[] }[] = [];
  const once = (target: number) =>
    loopTest(function* () {
      results.push(yield* cancelledServe(target));
    }, { virtualTime: false })();
  await once(0);
  const baseline = results.pop()!;
  assertEquals(baseline.clients, ["whole", "whole", "whole"]);
  assertGreater(baseline.count, 2);
  const n = Math.min(baseline.count, 40);
  for (let k = 1; k <= n; k++) {
    await once(k);
    const { clients } = results.pop()!;
    const seen = clients.join(",");
    assert(/^(whole,)*(cut,)?(refused,)*$/.test(`${seen},`.replace(/^,$/, "")), `k=${k}: ${seen}`);
  }
  await assertNoUnhandled();
});

// ---------------------------------------------------------------------------
// A peer that sends a line longer than the reader's limit

Deno.test("sockets: a peer that sends 1 MiB with no newline to a line handler: LimitOverrunError goes to onError, the server goes on", async () => {
  const errors: unknown[] = [];
  await loopTest(() =>
    taskGroup(function* (group) {
      const addr = yield* group.start<Deno.NetAddr>((ready) =>
        serve(
          { port: 0, onListen: ready, onError: (error) => errors.push(error) },
          function* (conn) {
            const reader = new StreamReader(conn, { limit: 4096 });
            const writer = new StreamWriter(conn);
            for (let line; (line = yield* reader.readLine()) !== null;) {
              writer.write(`${line.length}\n`);
              yield* writer.drain();
            }
            yield* writer.close();
          },
        )
      );
      {
        using flood = aiosocket();
        yield* flood.connect(addr);
        try {
          yield* flood.sendAll(new Uint8Array(1 << 20).fill(0x61)); // no newline
          yield* flood.shutdown();
          while ((yield* flood.recv(65536)).length > 0); // the server closes it
        } catch (error) {
          assert(isPeerGone(error), String(error)); // closed with our bytes unread: a reset
        }
      }
      using client = aiosocket();
      yield* client.connect(addr);
      yield* client.sendAll(new TextEncoder().encode("hello\nworld!\n"));
      yield* client.shutdown();
      const reader = new StreamReader(client);
      assertEquals([yield* reader.readLine(), yield* reader.readLine(), yield* reader.readLine()], [
        "5",
        "6",
        null,
      ]);
      group.cancel();
    }), { virtualTime: false })();
  assertEquals(names(errors), ["LimitOverrunError"]);
  await assertNoUnhandled();
});
