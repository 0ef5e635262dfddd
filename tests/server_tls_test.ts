// Copyright 2026 the boucle authors. MIT license.
/**
 * Tests for `serve({ transport: "tls" })`, with the self-signed certificate
 * of tests/fixtures (for localhost and 127.0.0.1), clients on the same loop.
 *
 * Needs `--allow-net=127.0.0.1` and `--allow-read=tests/fixtures`.
 */
import { assertEquals, assertInstanceOf } from "@std/assert";
import { type Coroutine, deadline, Loop } from "../loop.ts";
import { taskGroup } from "../scope.ts";
import { type AIOSocket, aiosocket } from "../socket.ts";
import { serve } from "../server.ts";
import { ROOT } from "./_deno.ts";

const cert = Deno.readTextFileSync(`${ROOT}/tests/fixtures/tls_cert.pem`);
const key = Deno.readTextFileSync(`${ROOT}/tests/fixtures/tls_key.pem`);

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function run<T>(main: Coroutine<T>): Promise<T> {
  return new Loop().runTask(deadline(main, 10_000));
}

function* echo(conn: AIOSocket<"tls">): Coroutine<void> {
  for (let data; (data = yield* conn.recv(65536)).length > 0;) yield* conn.sendAll(data);
}

/** A TLS client's exchange: sends `text`, half-closes, returns all it reads back. */
function* ask(port: number, text: string): Coroutine<string> {
  using sock = aiosocket({ transport: "tls" });
  yield* sock.connect({ hostname: "127.0.0.1", port, caCerts: [cert] });
  yield* sock.sendAll(encoder.encode(text));
  yield* sock.shutdown();
  let all = "";
  for (let data; (data = yield* sock.recv(65536)).length > 0;) all += decoder.decode(data);
  return all;
}

Deno.test("serve() over TLS serves clients that trust its certificate", async () => {
  const replies = await run(taskGroup(function* (group) {
    const addr = yield* group.start<Deno.NetAddr>((ready) =>
      serve({ transport: "tls", port: 0, cert, key, onListen: ready }, echo)
    );
    const replies = [];
    for (let i = 0; i < 5; i++) replies.push(yield* ask(addr.port, `secret ${i}`));
    group.cancel();
    return replies;
  }));
  assertEquals(replies, ["secret 0", "secret 1", "secret 2", "secret 3", "secret 4"]);
});

Deno.test("serve() over TLS reports a client that speaks no TLS to onError, and goes on", async () => {
  const errors: unknown[] = [];
  const reply = await run(taskGroup(function* (group) {
    const addr = yield* group.start<Deno.NetAddr>((ready) =>
      serve({
        transport: "tls",
        port: 0,
        cert,
        key,
        onListen: ready,
        onError: (error) => errors.push(error),
      }, echo)
    );
    {
      using plain = aiosocket();
      yield* plain.connect({ port: addr.port });
      yield* plain.sendAll(encoder.encode("GET / HTTP/1.0\r\n\r\n"));
      while ((yield* plain.recv(65536)).length > 0); // the server drops it
    }
    const reply = yield* ask(addr.port, "still serving");
    group.cancel();
    return reply;
  }));
  assertEquals(reply, "still serving");
  assertEquals(errors.length, 1);
  assertInstanceOf(errors[0], Deno.errors.InvalidData); // the failed handshake, from the first recv
});
