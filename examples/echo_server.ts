// Copyright 2026 the boucle authors. MIT license.
/**
 * A long-running echo server on boucle: one task per connection sends back
 * every byte it receives, until the client closes. It logs connects and
 * disconnects. On SIGINT (Ctrl-C) or SIGTERM it cancels its tasks, which
 * close their sockets as they unwind (`using`), closes the listener and exits
 * with status 0.
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

import {
  type AIOSocket,
  aiosocket,
  CancelledError,
  type Coroutine,
  Loop,
  type Task,
} from "../mod.ts";
import { flag, portFlag } from "./echo_args.ts";

const hostname = flag("hostname", "127.0.0.1");
const port = portFlag(8080);

/** Echoes one connection until the peer closes it; logs how it ended. */
function* echo(conn: AIOSocket<"tcp">, peer: string): Coroutine<void> {
  using _conn = conn;
  console.log(`${peer} connected`);
  try {
    for (let data; (data = yield* conn.recv(64 * 1024)).length > 0;) {
      yield* conn.sendAll(data);
    }
  } catch (error) {
    if (error instanceof CancelledError) throw error;
    console.log(`${peer} failed: ${error}`); // a reset peer must not stop the server
  } finally {
    console.log(`${peer} disconnected`);
  }
}

/** Accepts connections, one task each, until cancelled; then stops them all. */
function* serve(): Coroutine<void> {
  using server = aiosocket();
  yield* server.bind({ hostname, port });
  yield* server.listen();
  console.log(`Listening on ${server.localAddr.hostname}:${server.localAddr.port}`);
  const loop = Loop.current;
  const tasks = new Map<Task<void>, AIOSocket<"tcp">>(); // connection tasks, and their sockets
  try {
    for (;;) {
      const conn = yield* server.accept();
      const peer = `${conn.remoteAddr.hostname}:${conn.remoteAddr.port}`;
      // The task leaves `tasks` when it ends; `task` is set before it first runs.
      let task: Task<void> | undefined = undefined;
      task = loop.addTask(
        function* () {
          try {
            yield* echo(conn, peer);
          } finally {
            tasks.delete(task!);
          }
        }(),
        { name: peer },
      );
      tasks.set(task, conn);
    }
  } finally {
    for (const task of tasks.keys()) task.cancel();
    for (const [task, conn] of [...tasks]) {
      try {
        yield* task;
      } catch {
        // cancelled, as asked
      }
      conn.close(); // already closed, unless the task was cancelled before it ran
    }
  }
}

const loop = new Loop();
const server = loop.addTask(serve(), { name: "server" });
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
