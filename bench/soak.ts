// Copyright 2026 the boucle authors. MIT license.
// Soak: an echo through serve() under 1,000 concurrent connections, each
// echoing messages of random sizes (1 B to 64 KiB) for a bounded time, every
// byte checked. Not part of CI:
//
//   deno task soak [--seconds N] [--connections C] [--seed S]
//
// (the task sets `ulimit -n 8192`, enough for C = 1,000 with room, and runs
//   deno run --allow-net=127.0.0.1 --allow-run=deno --v8-flags=--expose-gc bench/soak.ts ...)
//
// - The server, in this process: serve() on 127.0.0.1, port 0, one task per
//   connection that reads up to 64 KiB into a buffer it reuses
//   (`recvInto()`) and writes back all it got (`sendAll()`), until end of
//   stream. Handler errors go to onError and are counted. A task samples
//   this process's RSS every 100 ms (the peak).
// - The clients, in another process (this script with --clients), written
//   with plain Deno (`Deno.connect`, `conn.read`, `conn.write`, async
//   functions), so the oracle shares no code with what it tests: C
//   connections, each in a loop until the deadline: pick a size from 1 to
//   65,536 and an offset into a 128 KiB pool of random bytes (a PRNG seeded
//   per connection), write the message while reading its echo back, and
//   compare every byte received with the byte sent at that position; then
//   the next message. At the deadline each client half-closes and must read
//   end of stream. An error (a reset, an early end, a wrong byte) is counted,
//   and the connection is made again.
// - The summary, one line: connections, echoes, bytes verified, errors (the
//   clients' and the server's handlers'), peak RSS of the server, and its
//   RSS at the end (serve() cancelled, every connection closed, garbage
//   collected when --expose-gc is on). The exit
//   status is 1 if there was any error or nothing was verified.

import { fromPromise, Loop, sleep } from "../mod.ts";
import { taskGroup } from "../scope.ts";
import type { AIOSocket } from "../socket.ts";
import { serve } from "../server.ts";

interface Options {
  seconds: number;
  connections: number;
  seed: number;
  clients: boolean;
  port: number;
}

function parse(args: string[]): Options {
  const options: Options = { seconds: 60, connections: 1000, seed: 1, clients: false, port: 0 };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--clients") {
      options.clients = true;
      continue;
    }
    const name = arg.replace(/^--/, "") as keyof Options;
    if (!(name in options) || name === "clients" || !arg.startsWith("--")) {
      throw new TypeError(`soak: unknown argument ${JSON.stringify(arg)}`);
    }
    const value = Number(args[++i]);
    if (!(Number.isFinite(value) && value >= 0)) {
      throw new RangeError(`soak: ${arg} must be a number >= 0, received ${args[i]}`);
    }
    options[name] = value as never;
  }
  if (options.connections < 1) throw new RangeError("soak: --connections must be >= 1");
  return options;
}

/** mulberry32: a small seeded PRNG, floats in [0, 1). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MAX = 64 * 1024;

// ---------------------------------------------------------------------------
// The clients (plain Deno, another process)

interface ClientReport {
  connections: number;
  echoes: number;
  bytes: number;
  errors: number;
  firstErrors: string[];
}

async function clients(options: Options): Promise<void> {
  const random = prng(options.seed);
  const pool = new Uint8Array(2 * MAX);
  for (let i = 0; i < pool.length; i++) pool[i] = Math.floor(random() * 256);
  const report: ClientReport = {
    connections: 0,
    echoes: 0,
    bytes: 0,
    errors: 0,
    firstErrors: [],
  };
  const end = performance.now() + options.seconds * 1000;
  const fail = (where: string, error: unknown) => {
    report.errors++;
    if (report.firstErrors.length < 5) report.firstErrors.push(`${where}: ${error}`);
  };

  async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
    for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
  }

  async function client(i: number): Promise<void> {
    const rng = prng(options.seed * 1_000_003 + i);
    const buffer = new Uint8Array(MAX);
    while (performance.now() < end) {
      let conn: Deno.TcpConn;
      try {
        conn = await Deno.connect({ hostname: "127.0.0.1", port: options.port });
        report.connections++;
      } catch (error) {
        fail(`client ${i} connect`, error);
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      try {
        while (performance.now() < end) {
          const size = 1 + Math.floor(rng() * MAX);
          const offset = Math.floor(rng() * MAX);
          const message = pool.subarray(offset, offset + size);
          const writing = writeAll(conn, message);
          writing.catch(() => {}); // awaited below; a read error may come first
          let got = 0;
          while (got < size) {
            const n = await conn.read(buffer.subarray(0, Math.min(MAX, size - got)));
            if (n === null) throw new Error(`end of stream after ${got} of ${size} bytes`);
            for (let j = 0; j < n; j++) {
              if (buffer[j] !== message[got + j]) {
                throw new Error(
                  `byte ${got + j} of a ${size}-byte echo is ${buffer[j]}, sent ${
                    message[got + j]
                  }`,
                );
              }
            }
            got += n;
          }
          await writing;
          report.echoes++;
          report.bytes += size;
        }
        await conn.closeWrite();
        if ((await conn.read(buffer)) !== null) throw new Error("bytes after the last echo");
      } catch (error) {
        fail(`client ${i}`, error);
      } finally {
        conn.close();
      }
    }
  }

  await Promise.all(Array.from({ length: options.connections }, (_, i) => client(i)));
  console.log(JSON.stringify(report));
}

// ---------------------------------------------------------------------------
// The server (boucle, this process)

/** The deno binary: the running one when allowed (see tests/_deno.ts). */
const DENO = Deno.permissions.querySync({ name: "run", command: Deno.execPath() }).state ===
    "granted"
  ? Deno.execPath()
  : "deno";

const mib = (bytes: number): string => `${(bytes / (1 << 20)).toFixed(0)} MiB`;

async function server(options: Options): Promise<number> {
  let serverErrors = 0;
  const firstServerErrors: string[] = [];
  let peak = Deno.memoryUsage().rss;
  let report: ClientReport | null = null;
  let clientStderr = "";
  const started = performance.now();

  function* echo(conn: AIOSocket<"tcp">) {
    const buffer = new Uint8Array(MAX);
    for (let n; (n = yield* conn.recvInto(buffer)) > 0;) {
      yield* conn.sendAll(buffer.subarray(0, n));
    }
  }

  await new Loop().runTask(taskGroup(function* (group) {
    const addr = yield* group.start<Deno.NetAddr>((ready) =>
      serve({
        port: 0,
        onListen: ready,
        onError: (error) => {
          serverErrors++;
          if (firstServerErrors.length < 5) firstServerErrors.push(String(error));
        },
      }, echo)
    );
    group.spawn(function* () {
      for (;;) {
        peak = Math.max(peak, Deno.memoryUsage().rss);
        yield* sleep(100);
      }
    }());
    const output = yield* fromPromise(
      new Deno.Command(DENO, {
        args: [
          "run",
          "--allow-net=127.0.0.1",
          import.meta.filename!,
          "--clients",
          "--port",
          String(addr.port),
          "--seconds",
          String(options.seconds),
          "--connections",
          String(options.connections),
          "--seed",
          String(options.seed),
        ],
        stdout: "piped",
        stderr: "piped",
      }).output(),
    );
    clientStderr = new TextDecoder().decode(output.stderr);
    const lines = new TextDecoder().decode(output.stdout).trim().split("\n");
    try {
      report = JSON.parse(lines.at(-1)!) as ClientReport;
    } catch {
      report = null;
    }
    group.cancel(); // stops the server and the sampler
  }));
  const seconds = (performance.now() - started) / 1000;
  // With --v8-flags=--expose-gc (the task sets it), collect before the last
  // sample, so that "at the end" is what is still held, not garbage.
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3 && gc; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const { rss: end, heapUsed } = Deno.memoryUsage();
  peak = Math.max(peak, end);

  if (report === null) {
    console.error(`soak: the clients printed no report:\n${clientStderr}`);
    return 1;
  }
  const r: ClientReport = report;
  const errors = r.errors + serverErrors;
  console.log(
    `soak: ${options.connections} connections (${r.connections} made), ${
      seconds.toFixed(0)
    } s, ${r.echoes} echoes of 1 B-64 KiB, ${r.bytes} bytes (${
      mib(r.bytes)
    }) verified, ${errors} errors (${r.errors} client, ${serverErrors} server), peak RSS ${
      mib(peak)
    }, RSS at the end ${mib(end)} (JS heap ${mib(heapUsed)})`,
  );
  for (const line of [...r.firstErrors, ...firstServerErrors]) console.error(`  ${line}`);
  return errors === 0 && r.bytes > 0 ? 0 : 1;
}

if (import.meta.main) {
  const options = parse(Deno.args);
  if (options.clients) await clients(options);
  else Deno.exit(await server(options));
}
