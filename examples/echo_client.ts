// Copyright 2026 the boucle authors. MIT license.
/**
 * A client for `echo_server.ts`: sends its standard input to the server line
 * by line and prints each line the server echoes back. One task sends while
 * another receives, on the same socket. At the end of the input it shuts down
 * its sending side, prints the echoes still coming, and exits when the server
 * closes the connection.
 *
 * Run: deno run --allow-net=127.0.0.1 examples/echo_client.ts [--port 8080] [--hostname 127.0.0.1]
 * Try: printf 'one\ntwo\n' | deno run --allow-net=127.0.0.1 examples/echo_client.ts
 *
 * Prints what it sent, as echoed:
 *   one
 *   two
 *
 * @module
 */

import {
  type AIOSocket,
  aiosocket,
  CancelledError,
  type Coroutine,
  fromPromise,
  Loop,
} from "../mod.ts";
import { flag, portFlag } from "./echo_args.ts";

const hostname = flag("hostname", "127.0.0.1");
const port = portFlag(8080);
const encoder = new TextEncoder();

/** Sends stdin, one line per `sendAll`, then shuts the sending side down. */
function* sendLines(sock: AIOSocket<"tcp">): Coroutine<void> {
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(16 * 1024);
  let pending = "";
  for (;;) {
    const n = yield* fromPromise(Deno.stdin.read(buffer));
    pending += n === null
      ? decoder.decode()
      : decoder.decode(buffer.subarray(0, n), { stream: true });
    const lines = pending.split("\n");
    pending = n === null ? "" : lines.pop()!;
    for (const line of lines) {
      if (n === null && line === "") continue; // no empty line for a final newline
      yield* sock.sendAll(encoder.encode(line + "\n"));
    }
    if (n === null) break;
  }
  yield* sock.shutdown();
}

/** Prints each echoed line until the server closes the connection. */
function* printEchoes(sock: AIOSocket<"tcp">): Coroutine<void> {
  const decoder = new TextDecoder();
  let pending = "";
  for (let bytes; (bytes = yield* sock.recv(16 * 1024)).length > 0;) {
    const lines = (pending + decoder.decode(bytes, { stream: true })).split("\n");
    pending = lines.pop()!;
    for (const line of lines) console.log(line);
  }
  pending += decoder.decode();
  if (pending !== "") console.log(pending);
}

function* client(): Coroutine<boolean> {
  using sock = aiosocket();
  yield* sock.connect({ hostname, port });
  const sender = Loop.current.addTask(sendLines(sock), { name: "stdin" });
  yield* printEchoes(sock);
  if (sender.done) {
    sender.result(); // its error, if it failed
    return true;
  }
  sender.cancel("the server closed the connection"); // stdin is still open
  try {
    yield* sender;
  } catch (error) {
    if (!(error instanceof CancelledError)) throw error;
  }
  return false;
}

const inputDone = await new Loop().runTask(client());
// A read of stdin may still be pending if the server went first: do not wait for it.
if (!inputDone) Deno.exit(0);
