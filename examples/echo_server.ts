// Copyright 2026 the boucle authors. MIT license.
/**
 * A long-running echo server on boucle's `serve()`: one task per connection
 * sends back every byte it receives, until the client closes. It logs
 * connects and disconnects. On SIGINT (Ctrl-C) or SIGTERM it cancels the
 * server, which stops accepting, cancels the connections' tasks (they close
 * their sockets as they unwind) and closes the listener; then it exits with
 * status 0.
 *
 * Run: deno run --allow-net=127.0.0.1 examples/echo_server.ts [--port 8080] [--hostname 127.0.0.1]
 * Try: deno run --allow-net=127.0.0.1 examples/echo_client.ts   (in another terminal)
 *
 * Logs, for one client:
 *   Listening on 127.0.0.1:8080
 *   127.0.0.1:40112 connected
 *   127.0.0.1:40112 disconnected
 *   SIGTERM: shutting down
 *   Stopped
 *
 * @module
 */

import { type AIOSocket, CancelledError, type Coroutine, Loop, serve } from "../mod.ts";
import { flag, portFlag } from "./echo_args.ts";

const hostname = flag("hostname", "127.0.0.1");
const port = portFlag(8080);

/** Echoes one connection until the peer closes it; logs how it ended. */
function* echo(conn: AIOSocket<"tcp">): Coroutine<void> {
  const peer = `${conn.remoteAddr.hostname}:${conn.remoteAddr.port}`;
  console.log(`${peer} connected`);
  try {
    for (let data; (data = yield* conn.recv(64 * 1024)).length > 0;) {
      yield* conn.sendAll(data);
    }
  } catch (error) {
    if (error instanceof CancelledError) throw error; // the server stops
    console.log(`${peer} failed: ${error}`); // a reset peer, say: the server goes on
  } finally {
    console.log(`${peer} disconnected`); // serve() closes the connection next
  }
}

const loop = new Loop();
const server = loop.addTask(
  serve({
    hostname,
    port,
    onListen: (addr) => console.log(`Listening on ${addr.hostname}:${addr.port}`),
  }, echo),
  { name: "server" },
);
const stops = (["SIGINT", "SIGTERM"] as const).map((signal) => {
  const stop = () => {
    console.log(`${signal}: shutting down`);
    server.cancel(signal);
  };
  Deno.addSignalListener(signal, stop);
  return () => Deno.removeSignalListener(signal, stop);
});
try {
  await loop.run();
} finally {
  for (const remove of stops) remove();
}
console.log("Stopped");
