// Copyright 2026 the boucle authors. MIT license.
/**
 * The lesson's echo: `server_coro` accepts one connection and sends back the
 * message it receives, reversed; `client_coro` connects, sends
 * `Hello World!` and prints the reply. Both run on one loop, gathered, with
 * `AIOSocket`: the lesson's sockets polled `epoll` in a loop, these park the
 * task until the host's read or write settles.
 *
 * Lesson: "Plongée au cœur de l'asynchrone en Python" (entwanne, Zeste de
 * Savoir), its `aiosocket()`, `server_coro()` and `client_coro()`.
 * https://zestedesavoir.com/articles/3306/plongee-au-coeur-de-lasynchrone-en-python/
 *
 * The server listens on port 0, a free port chosen by the system, so the demo
 * never collides with anything; a `Waiter` tells the client which port once
 * the server listens. `--port 8080` picks the port instead.
 *
 * Run: deno run --allow-net=127.0.0.1 examples/echo.ts [--port N]
 *
 * Prints:
 *   Received from client Hello World!
 *   Received from server !dlroW olleH
 *
 * @module
 */

import { aiosocket, type Coroutine, gather, Loop, Waiter } from "../mod.ts";
import { portFlag } from "./echo_args.ts";

const HOSTNAME = "127.0.0.1";
const decoder = new TextDecoder();

/** Where the server listens: set once it does, then `listening.set()`. */
const address = { port: portFlag(0) };
const listening = new Waiter();

function* serverCoro(): Coroutine<void> {
  using server = aiosocket();
  yield* server.bind({ hostname: HOSTNAME, port: address.port });
  yield* server.listen();
  address.port = server.localAddr.port;
  listening.set();
  using conn = yield* server.accept();
  const msg = yield* conn.recv(1024);
  console.log("Received from client", decoder.decode(msg));
  yield* conn.sendAll(msg.reverse());
}

function* clientCoro(): Coroutine<void> {
  yield* listening;
  using client = aiosocket();
  yield* client.connect({ hostname: HOSTNAME, port: address.port });
  yield* client.sendAll(new TextEncoder().encode("Hello World!"));
  const msg = yield* client.recv(1024);
  console.log("Received from server", decoder.decode(msg));
}

await new Loop().runTask(gather(serverCoro(), clientCoro()));
