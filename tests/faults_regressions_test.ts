// Copyright 2026 the boucle authors. MIT license.
/**
 * Regression tests for the defects that tests/faults_test.ts and
 * tests/bad_input_test.ts found, each of which failed before its fix.
 */
import { assertInstanceOf, assertRejects, assertStringIncludes, assertThrows } from "@std/assert";
import { AIOSocket, type Coroutine, Loop, Task, TaskGroup, taskGroup } from "../mod.ts";
import { serve } from "../server.ts";
import { aiosocket } from "../socket.ts";
import { MemoryStream } from "../testing.ts";

// DESIGN, "Errors for bad arguments": the message names the function. The
// rejection of runTask(5) names Loop.addTask(task), a function the caller
// did not call.
Deno.test("Loop.runTask(5) rejects with a TypeError naming Loop.runTask(task)", async () => {
  const error = await assertRejects(() => new Loop().runTask(5 as never), TypeError);
  assertStringIncludes(error.message, "Loop.runTask(task): 'task' must be");
});

// The constructors of Task, TaskGroup, AIOSocket and MemoryStream are
// `private` in TypeScript only: from JavaScript (or with a cast) `new
// AIOSocket()` makes a broken object with no error, whose first use throws
// "Cannot read properties of undefined"; `new MemoryStream()` throws that
// at once. DESIGN's rule: bad input gets a clear error naming the function.
for (
  const [name, make] of [
    ["Task", () => new (Task as unknown as new () => unknown)()],
    ["TaskGroup", () => new (TaskGroup as unknown as new () => unknown)()],
    ["AIOSocket", () => new (AIOSocket as unknown as new () => unknown)()],
    ["MemoryStream", () => new (MemoryStream as unknown as new () => unknown)()],
  ] as const
) {
  Deno.test(`new ${name}() from user code throws a TypeError naming ${name}`, () => {
    const error = assertThrows(make);
    assertInstanceOf(error, TypeError);
    assertStringIncludes(error.message, name);
  });
}

// serve() returns while its listener's socket is still bound: closing a
// Deno listener with an accept() in flight frees the port only when that
// accept settles (BadResource), a host turn later, and neither serve() nor
// AIOSocket.close() waits for it. server.ts says cancelling serve "closes the
// listener at once (new clients are refused, not queued)", and DESIGN that
// it "closes everything" before the CancelledError propagates; today a
// restart on the same port right after serve() ended fails with AddrInUse,
// and a client connecting then is reset instead of refused.
// Found by tests/faults_test.ts ("serve() cancelled at each of its own
// suspensions"). Raw Deno, for the record:
//   const l = Deno.listen({ port: 0 }); const p = l.accept(); l.close();
//   Deno.listen({ port: l.addr.port })  // AddrInUse, until `await p` (BadResource)

function* startAndStop(): Coroutine<number> {
  let port = -1;
  yield* taskGroup(function* (group) {
    const server: Task<void> = group.spawn(
      serve({ port: 0, onListen: (addr) => port = addr.port }, function* () {}),
    );
    while (port < 0) yield;
    server.cancel();
    try {
      yield* server;
    } catch {
      // its cancellation
    }
  });
  return port;
}

Deno.test("once serve() has ended, its port can be listened on again at once", async () => {
  await new Loop().runTask(function* () {
    const port = yield* startAndStop();
    const again = Deno.listen({ hostname: "127.0.0.1", port }); // AddrInUse today
    again.close();
  }());
});

Deno.test("once serve() has ended, a new client is refused, not reset", async () => {
  await new Loop().runTask(function* () {
    const port = yield* startAndStop();
    using client = aiosocket();
    let error: unknown = null;
    try {
      yield* client.connect({ hostname: "127.0.0.1", port });
    } catch (e) {
      error = e;
    }
    assertInstanceOf(error, Deno.errors.ConnectionRefused); // ConnectionReset today
  }());
});
