// Copyright 2026 the boucle authors. MIT license.
/**
 * accept() against hostile clients. In process, with `Deno.listen` stubbed by
 * a listener whose `accept()` fails as the host's does: failed connections
 * are skipped, and running out of file descriptors backs off on the loop's
 * clock (virtual time, so the retry times are exact). Then for real:
 * `examples/echo_server.ts` under `ulimit -n 64` (bash) against a storm of
 * python3 clients that reset with SO_LINGER 0 (Deno cannot set it) and
 * against more held connections than it has descriptors; afterwards it still
 * serves a normal client, and stops with status 0 on SIGTERM.
 *
 * Needs `--allow-net=127.0.0.1` and `--allow-run=deno,bash,python3`.
 */
import { assert, assertEquals, assertGreaterOrEqual, assertInstanceOf } from "@std/assert";
import { stub } from "@std/testing/mock";
import { type Coroutine, Loop } from "../loop.ts";
import { type AIOSocket, aiosocket } from "../socket.ts";
import { DENO, ROOT } from "./_deno.ts";

const emfile = (): Error =>
  Object.assign(new Error("Too many open files (os error 24)"), { code: "EMFILE" });

/** A fake connection, enough for accept() to hand out and close. */
function fakeConn(closed: string[], name: string): Deno.TcpConn {
  const addr = { transport: "tcp", hostname: "127.0.0.1", port: 1 } as const;
  return {
    localAddr: addr,
    remoteAddr: addr,
    close: () => closed.push(name),
  } as unknown as Deno.TcpConn;
}

/** Runs `body` with a listening socket whose host accept() calls come from `script`. */
async function withScriptedListener(
  script: (() => Promise<Deno.Conn>)[],
  body: (server: AIOSocket<"tcp">, calls: number[]) => Coroutine<void>,
): Promise<void> {
  const loop = new Loop({ virtualTime: true });
  const calls: number[] = [];
  const listener = {
    addr: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
    accept: () => {
      calls.push(loop.time());
      const next = script.shift();
      return next ? next() : new Promise<never>(() => {});
    },
    close: () => {},
  } as unknown as Deno.TcpListener;
  const server = aiosocket();
  {
    using _listen = stub(Deno, "listen", (() => listener) as unknown as typeof Deno.listen);
    await loop.runTask(server.bind({ port: 0 }));
  }
  try {
    await loop.runTask(function* () {
      yield* server.listen();
      yield* body(server, calls);
    }());
  } finally {
    server.close();
  }
}

Deno.test("accept() skips connections that failed before it took them (NotConnected, ConnectionAborted, ConnectionReset)", async () => {
  const closed: string[] = [];
  await withScriptedListener([
    () => Promise.reject(new Deno.errors.NotConnected("Transport endpoint is not connected")),
    () => Promise.reject(new Deno.errors.ConnectionAborted("Software caused connection abort")),
    () => Promise.reject(new Deno.errors.ConnectionReset("Connection reset by peer")),
    () => Promise.resolve(fakeConn(closed, "good")),
  ], function* (server, calls) {
    const conn = yield* server.accept();
    conn.close();
    assertEquals(calls, [0, 0, 0, 0], "four host accepts, no waiting between them");
    assertEquals(closed, ["good"]);
  });
});

Deno.test("accept() out of file descriptors retries after 1 ms, doubling to 100 ms, then recovers", async () => {
  const closed: string[] = [];
  await withScriptedListener([
    ...Array.from({ length: 10 }, () => () => Promise.reject(emfile())),
    () => Promise.resolve(fakeConn(closed, "after")),
    () => Promise.reject(emfile()),
    () => Promise.resolve(fakeConn(closed, "next")),
  ], function* (server, calls) {
    const conn = yield* server.accept();
    conn.close();
    assertEquals(calls, [0, 1, 3, 7, 15, 31, 63, 127, 227, 327, 427]);
    const next = yield* server.accept(); // a new accept() starts at 1 ms again
    next.close();
    assertEquals(calls.slice(11), [427, 428]);
    assertEquals(closed, ["after", "next"]);
  });
});

Deno.test("accept() passes other errors of the host through, and the listener stays usable", async () => {
  const closed: string[] = [];
  await withScriptedListener([
    () => Promise.reject(new Deno.errors.PermissionDenied("no")),
    () => Promise.resolve(fakeConn(closed, "then")),
  ], function* (server) {
    let error: unknown = null;
    try {
      yield* server.accept();
    } catch (e) {
      error = e;
    }
    assertInstanceOf(error, Deno.errors.PermissionDenied);
    (yield* server.accept()).close();
    assertEquals(closed, ["then"]);
  });
});

Deno.test("a task cancelled while accept() backs off leaves the listener usable", async () => {
  const closed: string[] = [];
  await withScriptedListener([
    () => Promise.reject(emfile()),
    () => Promise.resolve(fakeConn(closed, "later")),
  ], function* (server, calls) {
    const loop = Loop.current;
    const parked = loop.addTask(server.accept());
    yield* (function* () {
      // let it fail once and start backing off
      while (calls.length < 1) yield;
      yield;
    })();
    parked.cancel();
    try {
      yield* parked;
    } catch {
      // cancelled
    }
    assert(parked.cancelled);
    (yield* server.accept()).close();
    assertEquals(closed, ["later"]);
  });
});

// ---------------------------------------------------------------------------
// The example server, for real

/** The python3 on PATH; fails with a clear message when there is none. */
async function python3(): Promise<string> {
  try {
    const { success } = await new Deno.Command("python3", { args: ["-c", "pass"] }).output();
    if (success) return "python3";
  } catch {
    // not found
  }
  throw new Error(
    "this test needs python3 on PATH: its hostile clients reset with SO_LINGER 0, which Deno cannot set",
  );
}

/**
 * python3 clients. `storm N`: opens N connections, then resets them all at
 * once (SO_LINGER 0). `hold N`: opens N connections and sends a byte on each,
 * prints "held", waits for a line on stdin, then resets them all.
 */
const CLIENTS = `
import socket, struct, sys
port, mode, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
socks = []
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    try:
        s.connect(("127.0.0.1", port))
        if mode == "hold":
            s.sendall(b"x")
    except OSError:
        pass  # refused or reset by a full backlog: a hostile client shrugs
    socks.append(s)
if mode == "hold":
    print("held", flush=True)
    sys.stdin.readline()
for s in socks:
    s.close()
`;

/** `examples/echo_server.ts` on a free port under `ulimit -n`, its log read line by line. */
class LimitedServer implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #lines: ReadableStreamDefaultReader<string>;
  #pending = "";
  readonly log: string[] = [];

  constructor(fds: number) {
    this.#child = new Deno.Command("bash", {
      args: [
        "-c",
        `ulimit -n ${fds} && exec "$0" "$@"`,
        DENO,
        "run",
        "--quiet",
        "--no-prompt",
        "--allow-net=127.0.0.1",
        "examples/echo_server.ts",
        "--port",
        "0",
      ],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#lines = this.#child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** Reads the log until `count` lines include `text`. */
  async waitFor(text: string, count = 1): Promise<string> {
    for (;;) {
      const found = this.log.filter((line) => line.includes(text));
      if (found.length >= count) return found[count - 1]!;
      const { value, done } = await this.#lines.read();
      if (done) throw new Error(`the server's log ended before "${text}":\n${this.log.join("\n")}`);
      const lines = (this.#pending + value).split("\n");
      this.#pending = lines.pop()!;
      this.log.push(...lines);
    }
  }

  async port(): Promise<number> {
    const line = await this.waitFor("Listening on 127.0.0.1:");
    return Number(line.slice(line.lastIndexOf(":") + 1));
  }

  /** SIGTERM, then its exit status and stderr. */
  async stop(): Promise<{ code: number; stderr: string }> {
    this.#child.kill("SIGTERM");
    await this.waitFor("Stopped").catch(() => {});
    await this.#lines.cancel();
    const [status, stderr] = await Promise.all([
      this.#child.status,
      new Response(this.#child.stderr).text(),
    ]);
    return { code: status.code, stderr };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already ended
    }
    await this.#lines.cancel().catch(() => {});
    await this.#child.stderr.cancel().catch(() => {});
    await this.#child.status;
  }
}

/** One echo round trip with a normal client. */
async function ping(port: number): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode("ping"));
    const buffer = new Uint8Array(16);
    let got = 0;
    while (got < 4) {
      const n = await conn.read(buffer.subarray(got));
      if (n === null) break;
      got += n;
    }
    return new TextDecoder().decode(buffer.subarray(0, got));
  } finally {
    conn.close();
  }
}

Deno.test("examples/echo_server.ts survives resetting clients and running out of file descriptors, then serves", async () => {
  const python = await python3();
  await using server = new LimitedServer(64);
  const port = await server.port();

  // 1. A storm: 300 connections reset at once, most before the server took them.
  const storm = await new Deno.Command(python, {
    args: ["-c", CLIENTS, String(port), "storm", "300"],
  }).output();
  assert(storm.success, new TextDecoder().decode(storm.stderr));
  assertEquals(await ping(port), "ping");

  // 2. More connections than the server has descriptors, held open: it
  // accepts up to its limit, backs off, and recovers once they go.
  const holder = new Deno.Command(python, {
    args: ["-c", CLIENTS, String(port), "hold", "120"],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const held = holder.stdout.pipeThrough(new TextDecoderStream()).getReader();
  assertEquals((await held.read()).value?.trim(), "held");
  await server.waitFor("connected", 20); // it has taken some and runs
  const writer = holder.stdin.getWriter();
  await writer.write(new TextEncoder().encode("release\n"));
  await writer.close();
  while (!(await held.read()).done); // to its end: the clients reset and exit
  assert((await holder.status).success);
  assertEquals(await ping(port), "ping");

  const { code, stderr } = await server.stop();
  assertEquals(code, 0, stderr);
  assertEquals(stderr.includes("Uncaught"), false, stderr);
  const connects = server.log.filter((line) => line.endsWith(" connected")).length;
  assertGreaterOrEqual(connects, 2, "at least the two pings were served");
});
