// Copyright 2026 the boucle authors. MIT license.
// Echo servers at 100 clients: boucle's `serve()` against raw Deno's
// hand-written accept loop (`for await (const conn of listener)`, one async
// echo per connection), in one run, on 127.0.0.1 with a port chosen by the
// system (port 0).
//
//   deno run --allow-net=127.0.0.1 --allow-run=deno bench/serve_echo.ts \
//     [--reps N] [--seconds S] [--clients C] [--json]
//
// Each server runs alone in a subprocess of this script (the same file with
// `--server boucle|loop|deno`), so that both face the same clients: this process
// runs them, as plain async Deno code, the same for both servers.
// - The servers: boucle's is `serve({ port: 0 }, echo)` whose handler
//   `recv(65536)`s and `sendAll`s back what it got until end of stream;
//   "loop" runs the same handler from a hand-written boucle accept loop (one
//   `addTask` per connection), to tell serve()'s own cost from the socket's;
//   Deno's reads into a 64 KiB buffer per connection and writes back until
//   all is written, until `read()` returns null. Both close the connection
//   at end of stream.
// - The clients: C connections (default 100) are opened before the clock
//   starts. Then each client, until a deadline S seconds away (default 1.5),
//   sends a 64-byte message (its bytes depend on the client and the round
//   trip's number), reads until 64 bytes are back and checks every byte. The
//   figure is all round trips divided by the time until the last client has
//   finished its last one. Afterwards each client half-closes and must read
//   end of stream.
// Each system is measured --reps times (default 5), rotating which goes
// first, after an untimed warm-up of each; the figure is the median and the
// ratio is boucle's median over Deno's (> 1: boucle is faster). Beside the
// rate, each server reports the CPU time it used during the window (on
// SIGUSR1, from node:process's cpuUsage()): CPU per round trip, which a
// loaded machine disturbs less than the rate. A wrong byte
// or a measurement overrunning its time limit ends the process with an error.
//
// Output: a table; with --json, a last line {"rows":[{"workload","unit","boucle","deno"}]}.

import { cpuUsage } from "node:process";
import { type AIOSocket, aiosocket, type Coroutine, Loop, serve } from "../mod.ts";

const HOSTNAME = "127.0.0.1";
const MESSAGE = 64;
const GRACE_MS = 30_000;
/** The running deno if `--allow-run` grants it, else the `deno` on PATH (see tests/_deno.ts). */
const DENO = Deno.permissions.querySync({ name: "run", command: Deno.execPath() }).state ===
    "granted"
  ? Deno.execPath()
  : "deno";

type System = "boucle" | "loop" | "deno";

// The servers (run with --server) ------------------------------------------------

/** In a server: on SIGUSR1, prints the CPU time used so far (µs, user + system). */
function reportCpu(): void {
  Deno.addSignalListener("SIGUSR1", () => {
    const { user, system } = cpuUsage();
    console.log(`cpu ${user + system}`);
  });
}

function* boucleEcho(conn: AIOSocket<"tcp">): Coroutine<void> {
  for (let data; (data = yield* conn.recv(65536)).length > 0;) yield* conn.sendAll(data);
}

async function boucleServer(): Promise<void> {
  const loop = new Loop();
  const server = loop.addTask(serve({
    hostname: HOSTNAME,
    port: 0,
    onListen: (addr) => {
      reportCpu();
      console.log(addr.port);
    },
  }, boucleEcho));
  Deno.addSignalListener("SIGTERM", () => server.cancel());
  await loop.run();
}

/** boucle without serve(): a hand-written accept loop, one task per connection. */
async function loopServer(): Promise<void> {
  const loop = new Loop();
  const server = loop.addTask(function* () {
    using listener = aiosocket();
    yield* listener.bind({ hostname: HOSTNAME, port: 0 });
    yield* listener.listen();
    reportCpu();
    console.log(listener.localAddr.port);
    for (;;) {
      const conn = yield* listener.accept();
      loop.addTask(function* () {
        using _conn = conn;
        try {
          yield* boucleEcho(conn);
        } catch {
          // a client gone: nothing to do but close
        }
      }());
    }
  }());
  Deno.addSignalListener("SIGTERM", () => {
    server.cancel();
    Deno.exit(0); // connections still open are dropped, as a killed server's are
  });
  await loop.run();
}

async function denoEcho(conn: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(65536);
  try {
    for (let n; (n = await conn.read(buffer)) !== null;) {
      for (let sent = 0; sent < n;) sent += await conn.write(buffer.subarray(sent, n));
    }
  } catch {
    // a client gone: nothing to do but close
  } finally {
    conn.close();
  }
}

async function denoServer(): Promise<void> {
  const listener = Deno.listen({ hostname: HOSTNAME, port: 0 });
  reportCpu();
  console.log(listener.addr.port);
  Deno.addSignalListener("SIGTERM", () => listener.close());
  try {
    for await (const conn of listener) denoEcho(conn);
  } catch {
    // closed by SIGTERM
  }
  Deno.exit(0); // connections still open are dropped, as a killed server's are
}

// The clients -------------------------------------------------------------------

function messageByte(id: number, seq: number, j: number): number {
  return (id * 11 + seq * 31 + j * 7) & 0xff;
}

async function roundTrips(conn: Deno.Conn, id: number, deadline: number): Promise<number> {
  const message = new Uint8Array(MESSAGE);
  const reply = new Uint8Array(MESSAGE);
  let seq = 0;
  for (; performance.now() < deadline; seq++) {
    for (let j = 0; j < MESSAGE; j++) message[j] = messageByte(id, seq, j);
    for (let sent = 0; sent < MESSAGE;) sent += await conn.write(message.subarray(sent));
    for (let got = 0; got < MESSAGE;) {
      const n = await conn.read(reply.subarray(got));
      if (n === null) throw new Error(`client ${id}: end of stream in round trip ${seq}`);
      got += n;
    }
    for (let j = 0; j < MESSAGE; j++) {
      if (reply[j] !== message[j]) {
        throw new Error(`client ${id}, round trip ${seq}: byte ${j} is ${reply[j]}`);
      }
    }
  }
  return seq;
}

async function finish(conn: Deno.Conn): Promise<void> {
  await conn.closeWrite();
  if ((await conn.read(new Uint8Array(16))) !== null) throw new Error("data after the echo");
}

interface Measurement {
  /** Round trips per second. */
  rate: number;
  /** The server's CPU time per round trip, µs. */
  cpu: number;
}

/** `clients` clients against `server`, for `seconds`. */
async function measure(server: Server, clients: number, seconds: number): Promise<Measurement> {
  const conns = await Promise.all(
    Array.from({ length: clients }, () => Deno.connect({ hostname: HOSTNAME, port: server.port })),
  );
  try {
    const cpu0 = await server.cpu();
    const start = performance.now();
    const deadline = start + seconds * 1000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const counts = await Promise.race([
      Promise.all(conns.map((conn, id) => roundTrips(conn, id, deadline))),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error("a measurement overran")),
          seconds * 1000 + GRACE_MS,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    const elapsed = performance.now() - start;
    const cpu = await server.cpu() - cpu0;
    await Promise.all(conns.map(finish));
    const total = counts.reduce((a, b) => a + b, 0);
    return { rate: total / (elapsed / 1000), cpu: cpu / total };
  } finally {
    for (const conn of conns) conn.close();
  }
}

/** A server subprocess: its port, its CPU time so far (µs), and a way to stop it. */
interface Server {
  port: number;
  cpu(): Promise<number>;
  stop(): Promise<void>;
}

async function spawnServer(system: System): Promise<Server> {
  const child = new Deno.Command(DENO, {
    args: ["run", "--quiet", `--allow-net=${HOSTNAME}`, import.meta.filename!, "--server", system],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the ${system} server ended before telling its port`);
    text += value;
  }
  let lines = text.split("\n");
  const port = Number(lines.shift());
  const nextLine = async (): Promise<string> => {
    while (lines.length < 2) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the ${system} server ended`);
      lines = (lines.join("\n") + value).split("\n");
    }
    return lines.shift()!;
  };
  return {
    port,
    async cpu() {
      child.kill("SIGUSR1");
      const line = await nextLine();
      if (!line.startsWith("cpu ")) throw new Error(`the ${system} server said ${line}`);
      return Number(line.slice(4));
    },
    async stop() {
      child.kill("SIGTERM");
      await reader.cancel();
      const status = await child.status;
      if (!status.success) throw new Error(`the ${system} server exited with ${status.code}`);
    },
  };
}

function median(values: number[]): number {
  const sorted = values.toSorted((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

interface Options {
  reps: number;
  seconds: number;
  clients: number;
  json: boolean;
}

function parseOptions(args: string[]): Options {
  const options: Options = { reps: 5, seconds: 1.5, clients: 100, json: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--json") {
      options.json = true;
      continue;
    }
    const m = /^--(reps|seconds|clients)(?:=(.*))?$/.exec(arg);
    if (m === null) {
      throw new TypeError(
        `bench/serve_echo.ts: unknown argument ${arg}; use --reps N, --seconds S, --clients C, --json`,
      );
    }
    const text = m[2] ?? args[++i];
    const value = Number(text);
    const name = m[1] as "reps" | "seconds" | "clients";
    const ok = name === "seconds"
      ? Number.isFinite(value) && value > 0
      : Number.isInteger(value) && value >= 1;
    if (text === undefined || !ok) {
      throw new RangeError(`bench/serve_echo.ts: --${name} got ${text}`);
    }
    options[name] = value;
  }
  return options;
}

async function main(): Promise<void> {
  const options = parseOptions(Deno.args);
  const runs: Record<System, Measurement[]> = { boucle: [], loop: [], deno: [] };
  const once = async (system: System, seconds: number): Promise<Measurement> => {
    const server = await spawnServer(system);
    try {
      return await measure(server, options.clients, seconds);
    } finally {
      await server.stop();
    }
  };
  const systems: System[] = ["boucle", "loop", "deno"];
  for (const system of systems) await once(system, 0.3); // warm-ups, untimed
  for (let rep = 0; rep < options.reps; rep++) {
    // Rotate the order, so that none is always first or last.
    const order = systems.map((_, i) => systems[(i + rep) % systems.length]!);
    for (const system of order) runs[system].push(await once(system, options.seconds));
  }
  const rate = (system: System) => median(runs[system].map((m) => m.rate));
  const cpu = (system: System) => median(runs[system].map((m) => m.cpu));
  const workload = `echo, ${options.clients} clients, 64 B`;
  console.log(
    "| median of " + options.reps +
      " | boucle serve() | boucle, hand-written accept loop | raw Deno accept loop | serve() vs Deno |",
  );
  console.log("| --- | ---: | ---: | ---: | ---: |");
  console.log(
    `| ${workload}: round trips/s | ${rate("boucle").toFixed(0)} | ${rate("loop").toFixed(0)} | ${
      rate("deno").toFixed(0)
    } | ${(rate("boucle") / rate("deno")).toFixed(2)}x the speed |`,
  );
  console.log(
    `| ${workload}: server CPU µs per round trip | ${cpu("boucle").toFixed(1)} | ${
      cpu("loop").toFixed(1)
    } | ${cpu("deno").toFixed(1)} | ${(cpu("deno") / cpu("boucle")).toFixed(2)}x the efficiency |`,
  );
  for (const system of systems) {
    const list = runs[system].map((m) => `${m.rate.toFixed(0)} (${m.cpu.toFixed(1)} µs)`);
    console.log(`runs, ${system}: ${list.join(", ")}`);
  }
  if (options.json) {
    const boucle = rate("boucle");
    const deno = rate("deno");
    console.log(JSON.stringify({ rows: [{ workload, unit: "round trips/s", boucle, deno }] }));
  }
}

const serverAt = Deno.args.indexOf("--server");
if (serverAt >= 0) {
  const system = Deno.args[serverAt + 1];
  if (system === "boucle") await boucleServer();
  else if (system === "loop") await loopServer();
  else if (system === "deno") await denoServer();
  else {
    throw new TypeError(
      `bench/serve_echo.ts: --server must be boucle, loop or deno, got ${system}`,
    );
  }
} else {
  await main();
}
