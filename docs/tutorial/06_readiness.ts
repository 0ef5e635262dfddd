// Copyright 2026 the boucle authors. MIT license.
/**
 * Chapter 6 of docs/tutorial.md: readiness without `select`. Deno cannot tell
 * whether a socket is readable, but it can read: a socket with a read under
 * way is readable once that read has settled. Polling that from the reader's
 * own loops shows the catch: the read settles only when the loop gives the
 * thread back to Deno.
 * The reader's own code (a raw `Deno.Conn`, no library).
 *
 * Run: deno run --allow-net=127.0.0.1 docs/tutorial/06_readiness.ts
 *
 * @module
 */

import type { Coroutine } from "./01_run_task.ts";
import { Loop } from "./04_loop.ts";

/** A connection with at most one read in flight, whose outcome we can poll. */
class PolledConn {
  #conn: Deno.Conn;
  #reading = false;
  #bytes: Uint8Array | undefined = undefined; // read, not yet taken by recv()

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** Readable means: the read in flight has settled. Starts one if none is. */
  get readable(): boolean {
    if (this.#bytes === undefined && !this.#reading) {
      this.#reading = true;
      const buffer = new Uint8Array(1024);
      this.#conn.read(buffer).then((n) => {
        this.#reading = false;
        this.#bytes = buffer.subarray(0, n ?? 0); // empty at end of stream
      });
    }
    return this.#bytes !== undefined;
  }

  /** Polls, one turn at a time, for at most `maxPolls` turns. */
  *recv(maxPolls: number): Coroutine<Uint8Array | undefined> {
    for (let polls = 0; !this.readable; polls++) {
      if (polls === maxPolls) return undefined;
      yield;
    }
    const bytes = this.#bytes;
    this.#bytes = undefined;
    return bytes;
  }
}

/** `runTasks`, but between two rounds it lets Deno run its own event loop once. */
async function runTasksYieldingToHost(...tasks: Iterable<unknown>[]): Promise<void> {
  const queue = tasks.map((task) => task[Symbol.iterator]());
  while (queue.length > 0) {
    for (let n = queue.length; n > 0; n--) {
      const task = queue.shift()!;
      if (!task.next().done) queue.push(task);
    }
    await new Promise((resolve) => setTimeout(resolve, 0)); // a real turn of Deno's loop
  }
}

if (import.meta.main) {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  using client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  using conn = await listener.accept();
  await client.write(new TextEncoder().encode("Hello World!"));
  const polled = new PolledConn(conn);
  const decoder = new TextDecoder();

  // Chapter 4's Loop never gives the thread back: the read cannot settle.
  new Loop().runTask(function* (): Coroutine {
    const bytes = yield* polled.recv(1_000_000);
    console.log(bytes === undefined ? "Loop: still not readable after 1000000 polls" : "?");
  }());

  // The same task, on a loop that lets Deno run between its rounds.
  await runTasksYieldingToHost(function* (): Coroutine {
    const bytes = yield* polled.recv(Infinity);
    console.log(`runTasksYieldingToHost: received ${decoder.decode(bytes)}`);
  }());
}
