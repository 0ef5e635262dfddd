// Copyright 2026 the boucle authors. MIT license.
/**
 * Tests for issue 10's byte-level promises of socket.ts: `recvInto()`, what a
 * `recv()` result keeps alive, send safety under cancellation, the reset
 * that `recv()` reports, and the TCP options. On 127.0.0.1 with port 0; the
 * reset needs SO_LINGER 0, which Deno cannot set, so its peer is python3.
 */
import {
  assert,
  assertEquals,
  assertGreater,
  assertInstanceOf,
  assertLessOrEqual,
  assertStringIncludes,
  assertThrows,
  fail,
} from "@std/assert";
import { stub } from "@std/testing/mock";
import { type Coroutine, deadline, fromPromise, gather, interrupt, Loop, sleep } from "../loop.ts";
import { type AIOSocket, aiosocket } from "../socket.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (text: string): Uint8Array => encoder.encode(text);
const text = (data: Uint8Array): string => decoder.decode(data);

function run<T>(main: Coroutine<T>): Promise<T> {
  return new Loop().runTask(main);
}

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
  const server = aiosocket();
  const client = aiosocket();
  try {
    yield* server.bind({ hostname: "127.0.0.1", port: 0 });
    yield* server.listen();
    const [conn] = yield* gather(server.accept(), client.connect(server.localAddr));
    return new Pair(server, client, conn);
  } catch (error) {
    client.close();
    server.close();
    throw error;
  }
}

/** Receives everything until the end of stream, with recvInto() into one buffer. */
function* recvAllInto(sock: AIOSocket, size = 64 * 1024): Coroutine<Uint8Array> {
  const buffer = new Uint8Array(size);
  const parts: Uint8Array[] = [];
  for (let n; (n = yield* sock.recvInto(buffer)) > 0;) parts.push(buffer.slice(0, n));
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** `n` bytes, byte i being `(i * 7 + seed) & 0xff`. */
function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 7 + seed) & 0xff;
  return out;
}

/** Asserts `actual` starts with `prefix`, reporting the first difference. */
function assertPrefix(actual: Uint8Array, prefix: Uint8Array, what: string): void {
  assertLessOrEqual(prefix.length, actual.length, `${what}: too short`);
  for (let i = 0; i < prefix.length; i++) {
    if (actual[i] !== prefix[i]) fail(`${what}: byte ${i} is ${actual[i]}, expected ${prefix[i]}`);
  }
}

// ---------------------------------------------------------------------------
// recvInto

Deno.test("recvInto(buffer) takes a non-empty Uint8Array", () => {
  using sock = aiosocket();
  assertThrows(
    () => sock.recvInto("abc" as never),
    TypeError,
    `AIOSocket.recvInto(buffer): 'buffer' must be a Uint8Array, received "abc"`,
  );
  assertThrows(
    () => sock.recvInto(new Uint8Array(0)),
    RangeError,
    "AIOSocket.recvInto(buffer): 'buffer' must have a length >= 1, received an empty Uint8Array",
  );
});

Deno.test("recvInto() fills the buffer from its start, at most its length, and returns 0 at end of stream", async () => {
  await run(function* () {
    using pair = yield* connectedPair();
    yield* pair.conn.sendAll(bytes("0123456789"));
    yield* pair.conn.shutdown();
    yield* pair.client.waitReadable();
    const buffer = new Uint8Array(4).fill(33);
    const log: string[] = [];
    for (let n; (n = yield* pair.client.recvInto(buffer)) > 0;) {
      log.push(`${n}:${text(buffer.subarray(0, n))}`);
    }
    assertEquals(log, ["4:0123", "4:4567", "2:89"]);
    assertEquals(text(buffer), "8967", "bytes past the count are left as they were");
    assertEquals(yield* pair.client.recvInto(buffer), 0, "end of stream stays");
  }());
});

Deno.test("recv() and recvInto() share the socket's buffer: bytes come in order, once", async () => {
  await run(function* () {
    using pair = yield* connectedPair();
    yield* pair.conn.sendAll(bytes("abcdefgh"));
    yield* pair.client.waitReadable();
    const into = new Uint8Array(3);
    const got = [text(yield* pair.client.recv(2))];
    got.push(text(into.subarray(0, yield* pair.client.recvInto(into))));
    got.push(text(yield* pair.client.recv(10)));
    assertEquals(got, ["ab", "cde", "fgh"]);
  }());
});

Deno.test("recvInto() cancelled while its read is in flight never writes the buffer; the next call gets the bytes", async () => {
  await run(function* () {
    using pair = yield* connectedPair();
    const buffer = new Uint8Array(16).fill(7);
    const parked = Loop.current.addTask(pair.client.recvInto(buffer));
    yield* interrupt(); // parked, with a read in flight
    parked.cancel();
    yield* interrupt();
    assert(parked.cancelled);
    yield* pair.conn.sendAll(bytes("late"));
    yield* pair.client.waitReadable(); // the read has brought the bytes
    assertEquals([...buffer], new Array(16).fill(7), "the cancelled call's buffer is untouched");
    const other = new Uint8Array(16);
    const n = yield* pair.client.recvInto(other);
    assertEquals(text(other.subarray(0, n)), "late");
  }());
});

Deno.test("recvInto() echoes 4 MiB in random-sized pieces, every byte checked", async () => {
  const payload = pattern(4 * 1024 * 1024, 3);
  await run(function* () {
    using pair = yield* connectedPair();
    const [, received] = yield* gather(
      function* () {
        let at = 0;
        for (let size = 1; at < payload.length; size = (size * 5 + 3) % 100_003) {
          const end = Math.min(payload.length, at + size);
          yield* pair.client.sendAll(payload.subarray(at, end));
          at = end;
        }
        yield* pair.client.shutdown();
      }(),
      recvAllInto(pair.conn, 5000),
    );
    assertEquals(received.length, payload.length);
    assertPrefix(received, payload, "received");
  }());
});

// ---------------------------------------------------------------------------
// Memory

Deno.test("a recv() result keeps at most 4 KiB of other memory alive", async () => {
  await run(function* () {
    using pair = yield* connectedPair();
    const spare: number[] = [];
    const keep = (data: Uint8Array) => spare.push(data.buffer.byteLength - data.length);
    // One-byte results, small and partial ones, and full 64 KiB reads.
    for (let i = 0; i < 50; i++) {
      yield* pair.conn.sendAll(new Uint8Array([i]));
      keep(yield* pair.client.recv(1024));
    }
    yield* pair.conn.sendAll(new Uint8Array(100));
    yield* pair.client.waitReadable();
    for (let got = 0; got < 100;) {
      const data = yield* pair.client.recv(30);
      keep(data);
      got += data.length;
    }
    const big = pattern(1024 * 1024, 1);
    yield* gather(
      pair.conn.sendAll(big),
      function* () {
        for (let got = 0; got < big.length;) {
          const data = yield* pair.client.recv(64 * 1024);
          keep(data);
          got += data.length;
        }
      }(),
    );
    assertLessOrEqual(Math.max(...spare), 4096, `spare bytes: ${spare.join(", ")}`);
  }());
});

Deno.test("2,000 kept one-byte recv() results hold about 2,000 bytes, not 2,000 read buffers", async () => {
  await run(function* () {
    using pair = yield* connectedPair();
    const kept: Uint8Array[] = [];
    for (let i = 0; i < 2000; i++) {
      yield* pair.conn.sendAll(new Uint8Array([i & 0xff]));
      kept.push(yield* pair.client.recv(64 * 1024));
    }
    const held = new Set(kept.map((data) => data.buffer));
    const bytesHeld = [...held].reduce((n, buffer) => n + buffer.byteLength, 0);
    assertLessOrEqual(bytesHeld, 2000 * 16, `${held.size} buffers, ${bytesHeld} bytes`);
    assertEquals(kept.map((data) => data[0]), kept.map((_, i) => i & 0xff));
  }());
});

// ---------------------------------------------------------------------------
// Send safety

Deno.test("a sendAll() cancelled by deadline() never reads the caller's bytes again: the peer gets a prefix, then what is sent next", async () => {
  const original = pattern(8 * 1024 * 1024, 11);
  await run(function* () {
    using pair = yield* connectedPair();
    const payload = original.slice();
    let timedOut = false;
    try {
      yield* deadline(pair.client.sendAll(payload), 50); // the peer is not reading
    } catch (error) {
      assertInstanceOf(error, DOMException);
      timedOut = error.name === "TimeoutError";
    }
    assert(timedOut, "the peer does not read: sendAll cannot finish in 50 ms");
    payload.fill(0xee); // the caller reuses its buffer at once
    const [received] = yield* gather(
      function* () {
        const parts: Uint8Array[] = [];
        for (let data; (data = yield* pair.conn.recv(64 * 1024)).length > 0;) parts.push(data);
        const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
        let at = 0;
        for (const part of parts) {
          out.set(part, at);
          at += part.length;
        }
        return out;
      }(),
      function* () {
        yield* pair.client.sendAll(bytes("END"));
        yield* pair.client.shutdown();
      }(),
    );
    const prefix = received.length - 3;
    assertGreater(prefix, 0);
    assertLessOrEqual(prefix, original.length);
    assertPrefix(received, original.subarray(0, prefix), "received");
    assertEquals(text(received.subarray(prefix)), "END");
  }());
});

Deno.test("a sendAll() to a slow reader, cancelled by deadline(), leaves the socket usable: no large write is left with Deno", async () => {
  const original = pattern(8 * 1024 * 1024, 13);
  await run(function* () {
    using pair = yield* connectedPair();
    const loop = Loop.current;
    const parts: Uint8Array[] = [];
    let slow = true;
    const reader = loop.addTask(function* () {
      const buffer = new Uint8Array(64 * 1024);
      for (let n; (n = yield* pair.conn.recvInto(buffer)) > 0;) {
        parts.push(buffer.slice(0, n));
        if (slow) yield* sleep(1); // keeps up with a trickle only
      }
    }());
    const payload = original.slice();
    let timedOut = false;
    try {
      yield* deadline(pair.client.sendAll(payload), 100);
    } catch (error) {
      timedOut = error instanceof DOMException && error.name === "TimeoutError";
    }
    assert(timedOut, "8 MiB to a reader that sleeps between reads takes longer than 100 ms");
    payload.fill(0xee);
    slow = false;
    yield* pair.client.sendAll(bytes("END")); // the socket is still open
    yield* pair.client.shutdown();
    yield* reader;
    const received = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const part of parts) {
      received.set(part, at);
      at += part.length;
    }
    const prefix = received.length - 3;
    assertPrefix(received, original.subarray(0, prefix), "received");
    assertEquals(text(received.subarray(prefix)), "END");
  }());
});

Deno.test("a send() cancelled while the connection is congested leaves the socket usable, and the stream whole", async () => {
  const first = pattern(4 * 1024 * 1024, 5);
  const second = pattern(256 * 1024, 9);
  await run(function* () {
    using pair = yield* connectedPair();
    const sent = yield* pair.client.send(first); // partial: the buffers are full now
    assert(sent < first.length);
    const rest = first.slice(sent);
    const parked = Loop.current.addTask(pair.client.send(rest));
    yield* interrupt(); // parked: the host holds the (copied) write
    parked.cancel();
    yield* interrupt();
    assert(parked.cancelled);
    rest.fill(0); // the caller's; the socket must not send these zeros
    const [received] = yield* gather(
      recvAllInto(pair.conn),
      function* () {
        yield* pair.client.sendAll(second);
        yield* pair.client.shutdown();
      }(),
    );
    // first[0, sent), then a prefix of rest as it was, then second.
    const middle = received.length - sent - second.length;
    assert(middle >= 0 && middle <= rest.length, `middle part of ${middle} bytes`);
    assertPrefix(received, first.subarray(0, sent + middle), "first");
    assertPrefix(received.subarray(sent + middle), second, "second");
  }());
});

Deno.test("a large send() that the host ran at once, then cancelled before it was told, leaves the socket usable", async () => {
  const payload = pattern(128 * 1024, 2); // above the copy limit: goes out of the caller's bytes
  await run(function* () {
    using pair = yield* connectedPair();
    const loop = Loop.current;
    const sending = loop.addTask(pair.client.send(payload));
    // deno-lint-ignore require-yield -- a task that only cancels, in the same slice
    loop.addTask(function* () {
      sending.cancel(); // same slice: Deno has run the write, its promise has not settled
    }());
    yield* interrupt();
    yield* interrupt();
    try {
      yield* sending;
      fail("expected the send to be cancelled");
    } catch {
      assert(sending.cancelled);
    }
    payload.fill(0);
    yield* pair.client.sendAll(bytes("!"));
    yield* pair.client.shutdown();
    const received = yield* recvAllInto(pair.conn);
    const prefix = received.length - 1; // what Deno took at once: all, or what fitted
    assertGreater(prefix, 0);
    assertLessOrEqual(prefix, 128 * 1024);
    assertPrefix(received, pattern(128 * 1024, 2).subarray(0, prefix), "received");
    assertEquals(text(received.subarray(prefix)), "!");
  }());
});

Deno.test("a large send() cancelled while Deno still holds the caller's bytes closes the socket, and later uses say why", async () => {
  await run(function* () {
    using server = aiosocket();
    yield* server.bind({ hostname: "127.0.0.1", port: 0 });
    yield* server.listen();
    using client = aiosocket();
    const real = Deno.connect;
    let closed = 0;
    // A connection whose large writes the host holds (as Deno does while the
    // socket buffer is full) until the connection closes.
    const holding = async (options: Deno.ConnectOptions) => {
      const conn = await real(options);
      let release: (error: unknown) => void = () => {};
      return {
        localAddr: conn.localAddr,
        remoteAddr: conn.remoteAddr,
        read: (buffer: Uint8Array) => conn.read(buffer),
        write: (data: Uint8Array) =>
          data.length > 64 * 1024
            ? new Promise<number>((_, reject) => release = reject)
            : conn.write(data),
        closeWrite: () => conn.closeWrite(),
        close: () => {
          closed++;
          release(new Deno.errors.Interrupted("operation canceled"));
          conn.close();
        },
      } as unknown as Deno.TcpConn;
    };
    {
      using _connect = stub(Deno, "connect", holding as typeof Deno.connect);
      yield* client.connect(server.localAddr);
    }
    using conn = yield* server.accept();
    const sending = Loop.current.addTask(client.sendAll(new Uint8Array(200_000)));
    yield* interrupt();
    sending.cancel();
    try {
      yield* sending;
    } catch {
      // cancelled
    }
    assert(sending.cancelled);
    assertEquals(closed, 1, "the socket closed its connection");
    let message = "";
    try {
      yield* client.send(bytes("more"));
    } catch (error) {
      message = (error as Error).message;
    }
    assertStringIncludes(message, "AIOSocket.send(): the socket is closed: a send() ended while");
    assertEquals((yield* conn.recv(16)).length, 0, "the peer sees the end of the stream");
  }());
});

// ---------------------------------------------------------------------------
// Resets

/** The python3 on PATH; fails the test with a clear message when there is none. */
async function python3(): Promise<string> {
  try {
    const { success } = await new Deno.Command("python3", { args: ["-c", "pass"] }).output();
    if (success) return "python3";
  } catch {
    // not found
  }
  throw new Error(
    "these tests need python3 on PATH (a peer that resets with SO_LINGER 0, which Deno cannot set)",
  );
}

Deno.test("after a reset, the first recv() throws Deno's ConnectionReset, then the stream has ended", async () => {
  const python = await python3();
  await run(function* () {
    using server = aiosocket();
    yield* server.bind({ hostname: "127.0.0.1", port: 0 });
    yield* server.listen();
    const child = new Deno.Command(python, {
      args: ["-c", RESET_AFTER_HELLO, String(server.localAddr.port)],
      stdin: "piped",
    }).spawn();
    try {
      using conn = yield* server.accept();
      const log: string[] = [text(yield* conn.recv(64))];
      const writer = child.stdin.getWriter();
      yield* fromPromise(writer.write(bytes("go\n")).then(() => writer.close()));
      for (let i = 0; i < 3; i++) {
        try {
          log.push(`${(yield* conn.recv(64)).length} bytes`);
        } catch (error) {
          log.push((error as Error).name);
        }
      }
      assertEquals(log, ["hello", "ConnectionReset", "0 bytes", "0 bytes"]);
    } finally {
      yield* fromPromise(child.status);
    }
  }());
});

/** A python3 client: connects, sends "hello", waits for a line on stdin, resets. */
const RESET_AFTER_HELLO = `
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"hello")
sys.stdin.readline()
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
`;

// ---------------------------------------------------------------------------
// TCP options

Deno.test("setNoDelay() and setKeepAlive() set a connected TCP socket's options and check their argument", async () => {
  await run(function* () {
    using pair = yield* connectedPair();
    pair.client.setNoDelay(false);
    pair.client.setNoDelay();
    pair.conn.setKeepAlive(true);
    pair.conn.setKeepAlive(false);
    assertThrows(
      () => pair.client.setNoDelay("yes" as never),
      TypeError,
      `AIOSocket.setNoDelay(on): 'on' must be a boolean, received "yes"`,
    );
    assertThrows(
      () => pair.server.setKeepAlive(),
      Error,
      "AIOSocket.setKeepAlive(): the socket is listening; setKeepAlive() needs a connected socket",
    );
    yield* pair.client.sendAll(bytes("still fine"));
    assertEquals(text(yield* pair.conn.recv(64)), "still fine");
  }());
  using unix = aiosocket({ transport: "unix" });
  assertThrows(() => unix.setNoDelay(), Error, "the socket is not bound or connected");
});
