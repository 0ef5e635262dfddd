// Copyright 2026 the boucle authors. MIT license.
/**
 * Chapter 6 of docs/tutorial.md: the lesson's echo on the library's
 * `aiosocket()`. The server accepts one client, waits until its bytes are in,
 * and sends them back reversed. Both ends run on one `Loop`, gathered. The
 * server listens on port 0, a port the system picks; a `Waiter` hands the
 * client that port once the server listens.
 *
 * Run: deno run --allow-net=127.0.0.1 docs/tutorial/06_echo.ts
 *
 * @module
 */

import { aiosocket, type Coroutine, gather, Loop, Waiter } from "@boucle/boucle";

const decoder = new TextDecoder();
const address = { hostname: "127.0.0.1", port: 0 };
const listening = new Waiter();

function* serverCoro(): Coroutine {
  using server = aiosocket();
  yield* server.bind(address);
  yield* server.listen();
  address.port = server.localAddr.port;
  listening.set();
  using conn = yield* server.accept();
  console.log("server: a client connected");
  yield* conn.waitReadable(); // parks until the read in flight has settled
  const msg = yield* conn.recv(1024); // so this returns at once
  console.log("Received from client", decoder.decode(msg));
  yield* conn.sendAll(msg.reverse());
}

function* clientCoro(): Coroutine {
  yield* listening;
  using client = aiosocket();
  yield* client.connect(address);
  yield* client.sendAll(new TextEncoder().encode("Hello World!"));
  const msg = yield* client.recv(1024);
  console.log("Received from server", decoder.decode(msg));
}

await new Loop().runTask(gather(serverCoro(), clientCoro()));
