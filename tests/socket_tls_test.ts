// Copyright 2026 the boucle authors. MIT license.
/**
 * TLS for AIOSocket: `transport: "tls"` over `Deno.listenTls`/`Deno.connectTls`,
 * `startTls()` over `Deno.startTls`, and where the TCP options stop. The
 * server's certificate is the self-signed one in tests/fixtures (its README
 * says how it was made), valid for `localhost` and 127.0.0.1.
 *
 * Needs `--allow-net=127.0.0.1` and `--allow-read=tests/fixtures`.
 */
import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { type Coroutine, gather, interrupt, Loop } from "../loop.ts";
import { type AIOSocket, aiosocket } from "../socket.ts";
import { ROOT } from "./_deno.ts";

const cert = Deno.readTextFileSync(`${ROOT}/tests/fixtures/tls_cert.pem`);
const key = Deno.readTextFileSync(`${ROOT}/tests/fixtures/tls_key.pem`);

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function run<T>(main: Coroutine<T>): Promise<T> {
  return new Loop().runTask(main);
}

function* tlsListening(): Coroutine<AIOSocket<"tls">> {
  const server = aiosocket({ transport: "tls" });
  try {
    yield* server.bind({ hostname: "127.0.0.1", port: 0, cert, key });
    yield* server.listen();
    return server;
  } catch (error) {
    server.close();
    throw error;
  }
}

/** Echoes one connection until its end of stream. */
function* echo(conn: AIOSocket): Coroutine<void> {
  using _conn = conn;
  for (let data; (data = yield* conn.recv(64 * 1024)).length > 0;) yield* conn.sendAll(data);
  yield* conn.shutdown();
}

/** Receives until the end of stream. */
function* recvAll(sock: AIOSocket): Coroutine<Uint8Array> {
  const buffer = new Uint8Array(64 * 1024);
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

Deno.test("a TLS socket binds with cert and key, connects with caCerts, and echoes 1 MiB", async () => {
  const payload = new Uint8Array(1024 * 1024).map((_, i) => (i * 13) & 0xff);
  await run(function* () {
    using server = yield* tlsListening();
    using client = aiosocket({ transport: "tls" });
    const [conn] = yield* gather(
      server.accept(),
      client.connect({ port: server.localAddr.port, caCerts: [cert] }),
    );
    const [, received] = yield* gather(
      echo(conn),
      function* () {
        const [, got] = yield* gather(
          function* () {
            yield* client.sendAll(payload);
            yield* client.shutdown();
          }(),
          recvAll(client),
        );
        return got;
      }(),
    );
    assertEquals(received.length, payload.length);
    assert(received.every((b, i) => b === payload[i]), "every byte echoed");
    assertEquals(client.remoteAddr.port, server.localAddr.port);
  }());
});

Deno.test("a TLS connect() to a server whose certificate is not trusted fails with Deno's InvalidData", async () => {
  await run(function* () {
    using server = yield* tlsListening();
    const loop = Loop.current;
    const serving = loop.addTask(function* () {
      using conn = yield* server.accept();
      try {
        yield* conn.recv(16); // drives the server's side of the handshake
      } catch {
        // the client gave up on the handshake
      }
    }());
    using client = aiosocket({ transport: "tls" });
    let error: unknown = null;
    try {
      yield* client.connect({ port: server.localAddr.port });
    } catch (e) {
      error = e;
    }
    assertInstanceOf(error, Deno.errors.InvalidData);
    assertStringIncludes(error.message, "UnknownIssuer");
    assertThrows(() => client.remoteAddr, Error, "not bound or connected");
    yield* serving;
  }());
});

Deno.test("TLS addresses are checked: bind() needs cert and key, connect() takes caCerts as strings", () => {
  using sock = aiosocket({ transport: "tls" });
  assertThrows(
    () => sock.bind({ port: 0, cert }),
    TypeError,
    `AIOSocket.bind(addr): 'addr.cert' and 'addr.key' must be PEM strings for a "tls" socket, received "-----BEGIN CERTIFICATE-----\\nMIIBvzCCA..." and undefined`,
  );
  assertThrows(
    () => sock.connect({ port: 1, caCerts: cert as never }),
    TypeError,
    "AIOSocket.connect(addr): 'addr.caCerts' must be an array of PEM strings",
  );
  assertThrows(
    () => sock.connect({ path: "/x" } as never),
    TypeError,
    `AIOSocket.connect(addr): 'addr' must be { hostname?: string, port: number, ... } for a "tls" socket`,
  );
  assertThrows(() => sock.bind({ port: 70000, cert, key }), RangeError, "received 70000");
});

Deno.test("startTls() upgrades a connected TCP client; the same socket then speaks TLS both ways", async () => {
  await run(function* () {
    using server = yield* tlsListening();
    using client = aiosocket();
    const [conn] = yield* gather(server.accept(), client.connect(server.localAddr));
    using _conn = conn;
    client.setNoDelay(); // a TCP option before the upgrade
    yield* client.startTls({ hostname: "localhost", caCerts: [cert] });
    yield* client.sendAll(encoder.encode("over TLS"));
    assertEquals(decoder.decode(yield* conn.recv(64)), "over TLS");
    yield* conn.sendAll(encoder.encode("and back"));
    assertEquals(decoder.decode(yield* client.recv(64)), "and back");
    assertThrows(
      () => client.setNoDelay(),
      Error,
      "AIOSocket.setNoDelay(): needs a TCP connection; this one is TLS (Deno's TlsConn has no such setting)",
    );
    assertThrows(() => conn.setKeepAlive(), Error, "this one is TLS");
  }());
});

Deno.test("startTls() refuses a socket with a read in flight or already TLS, and checks its options", async () => {
  assertThrows(
    () => aiosocket().startTls({ caCerts: "x" } as never),
    TypeError,
    `AIOSocket.startTls(options): 'options' must be { hostname?: string, caCerts?: string[] }, received {"caCerts":"x"}`,
  );
  await run(function* () {
    using server = yield* tlsListening();
    using client = aiosocket();
    const [conn] = yield* gather(server.accept(), client.connect(server.localAddr));
    using _conn = conn;
    const parked = Loop.current.addTask(client.recv(16));
    yield* interrupt();
    parked.cancel(); // leaves its read in flight
    yield* interrupt();
    let message = "";
    try {
      yield* client.startTls({ caCerts: [cert] });
    } catch (error) {
      message = (error as Error).message;
    }
    assertStringIncludes(
      message,
      "AIOSocket.startTls(): bytes were read ahead or a read is in flight",
    );
    message = "";
    try {
      yield* conn.startTls();
    } catch (error) {
      message = (error as Error).message;
    }
    assertEquals(
      message,
      `AIOSocket.startTls(): the socket already speaks TLS; startTls() upgrades a TCP connection`,
    );
  }());
});

Deno.test("a failed startTls() closes the socket", async () => {
  await run(function* () {
    using server = yield* tlsListening();
    using client = aiosocket();
    const [conn] = yield* gather(server.accept(), client.connect(server.localAddr));
    using _conn = conn;
    const serving = Loop.current.addTask(function* () {
      try {
        yield* conn.recv(16);
      } catch {
        // the client gave up on the handshake
      }
    }());
    let error: unknown = null;
    try {
      yield* client.startTls({ hostname: "localhost" }); // the self-signed certificate is not trusted
    } catch (e) {
      error = e;
    }
    assertInstanceOf(error, Deno.errors.InvalidData);
    assertThrows(() => client.localAddr, Error, "AIOSocket.localAddr: the socket is closed");
    yield* serving;
  }());
});
