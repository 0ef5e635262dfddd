// Copyright 2026 the boucle authors. MIT license.
// Echo throughput: boucle's AIOSocket against a plain async Deno echo
// (`Deno.listen`, `conn.read`, `conn.write`, async functions), in one process
// and one run, on 127.0.0.1 with a port chosen by the system (port 0).
//
//   deno run --allow-net=127.0.0.1 --allow-run=deno --v8-flags=--expose-gc bench/echo.ts \
//     [--reps N] [--seconds S] [--mib M] [--idle C] [--json]
//
// Both systems run the same program, written once with `yield*` on a Loop and
// once with `await`; each measurement has the server and its clients in this
// process (for boucle: all on one new Loop; for Deno: on Deno's own loop).
//
// - The server, the same in every workload: it accepts the connections, then
//   one echo per connection reads up to 64 KiB into one buffer it reuses
//   (`recvInto()` / `conn.read()`, each into a 64 KiB buffer) and writes back
//   all it got (`sendAll` / `conn.write()` until all is written). At end of
//   stream it half-closes (`shutdown()` / `closeWrite()`) and closes.
// - Round trips/s, 1 client and 100 clients: every client connects before
//   the clock starts. Then each client, until a deadline S seconds away,
//   sends a 64-byte message (its bytes depend on the client and the round
//   trip's number), reads until 64 bytes are back, and checks every byte
//   against what it sent. The figure is all clients' round trips divided by
//   the time until the last client has finished its last one. Afterwards each
//   client half-closes and checks that the echo sends nothing more (end of
//   stream), outside the clock.
// - Streaming MiB/s, twice: with `recv()` and with `recvInto()`. One client
//   connection, two tasks on it. The writer sends M MiB in 64 KiB chunks
//   (`sendAll` / write until all is written) and half-closes; the server
//   echoes everything back; the reader receives (`recv(65536)`, which hands
//   out new memory each time, or `recvInto()` into one reused 64 KiB buffer /
//   `conn.read()` into one reused 64 KiB buffer), counts, and checks a
//   byte pattern every 4,093 bytes and at the end of each piece (chunk n
//   carries pattern n mod 5, so a lost, repeated or shifted chunk shows),
//   until end of stream; it must count exactly M MiB. The clock runs from
//   the first send to the reader's end of stream; the figure is M over that
//   time: payload MiB/s, each byte crossing loopback twice.
// - Idle connections, KiB of server RSS per connection (lower is better): a
//   fresh server process per system (this script with --idle-server) runs the
//   echo; a client process (--idle-clients) opens C connections (default
//   10,000) and echoes one byte on each, then leaves them all open. When the
//   server has echoed C bytes, every connection is parked in `recv()` /
//   `conn.read()` (Deno's with a 16 KiB buffer, the usual size); after
//   `gc()` and a settle of 500 ms, the server reports (RSS - RSS before the
//   first connection) / C. Runs once per repetition per system.
//
// Each workload runs --reps times per system (default 3), alternating the
// order (boucle first, then Deno first, …) after an untimed warm-up of each;
// each figure is the median of the repetitions, and the table's ratio the
// median of the paired ratios (boucle / Deno of the same repetition, run back
// to back under the same load: on a shared machine whose speed moves by 2x
// between minutes, pairs are steadier than a ratio of medians; > 1: boucle is
// faster, or for the idle figure uses more). The --json line has the medians.
// Use --reps 5 for issue 10's medians of five. A wrong byte, a short count or
// a measurement that overruns its time limit ends the process with an error.
//
// Output: a table; with --json, a last line for bench/run.ts:
//   {"rows":[{"workload","unit","boucle","deno"}, ...]}
// Permissions: --allow-net=127.0.0.1; --allow-run=deno for the idle figure's
// processes (without it that row is skipped, with a note); --v8-flags=--expose-gc
// is passed on to the idle servers, which need it.

import { type Coroutine, gather, Loop } from "../loop.ts";
import { type AIOSocket, aiosocket } from "../socket.ts";

const HOSTNAME = "127.0.0.1";
/** Bytes of a round-trip message. */
const MESSAGE = 64;
/** Bytes of a streamed chunk, and the most one read may bring. */
const CHUNK = 64 * 1024;
const MIB = 1024 * 1024;
/** Stream chunk n carries pattern n % VARIANTS. */
const VARIANTS = 5;
/** The reader checks one byte in this many (a prime: not aligned with chunks). */
const STRIDE = 4093;
/** A measurement overrunning its expected time by this much is a hang. */
const GRACE_MS = 30_000;

// Options ---------------------------------------------------------------------

interface Options {
  reps: number;
  seconds: number;
  mib: number;
  idle: number;
  /** Only the workloads whose name includes it ("" : all). */
  only: string;
  /** Only this system (for profiling one with --cpu-prof); ratios need both. */
  system: System | "";
  json: boolean;
}

function parseOptions(args: string[]): Options {
  const options: Options = {
    reps: 3,
    seconds: 1.5,
    mib: 256,
    idle: 10_000,
    only: "",
    system: "",
    json: false,
  };
  const usage =
    "use --reps N, --seconds S, --mib M, --idle C, --only TEXT, --system boucle|deno, --json";
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--json") {
      options.json = true;
      continue;
    }
    if (arg === "--only") {
      options.only = args[++i] ?? "";
      continue;
    }
    if (arg === "--system") {
      const system = args[++i];
      if (system !== "boucle" && system !== "deno") {
        throw new RangeError(`bench/echo.ts: --system must be boucle or deno, received ${system}`);
      }
      options.system = system;
      continue;
    }
    const m = /^--(reps|seconds|mib|idle)(?:=(.*))?$/.exec(arg);
    if (m === null) throw new TypeError(`bench/echo.ts: unknown argument ${arg}; ${usage}`);
    const text = m[2] ?? args[++i];
    const value = Number(text);
    const name = m[1] as "reps" | "seconds" | "mib" | "idle";
    const ok = name === "seconds"
      ? Number.isFinite(value) && value > 0
      : Number.isInteger(value) && value >= 1;
    if (text === undefined || text === "" || !ok) {
      const what = name === "seconds" ? "a number > 0" : "an integer >= 1";
      throw new RangeError(`bench/echo.ts: --${name} must be ${what}, received ${text}`);
    }
    options[name] = value;
  }
  return options;
}

// Byte patterns, shared by both systems -------------------------------------------

/** Byte `j` of client `id`'s message in round trip `seq`. */
function messageByte(id: number, seq: number, j: number): number {
  return (id * 11 + seq * 31 + j * 7) & 0xff;
}

function fillMessage(message: Uint8Array, id: number, seq: number): void {
  for (let j = 0; j < MESSAGE; j++) message[j] = messageByte(id, seq, j);
}

/** Checks `length` bytes of a reply that start at byte `offset` of the message. */
function checkReply(
  bytes: Uint8Array,
  length: number,
  offset: number,
  id: number,
  seq: number,
): void {
  for (let j = 0; j < length; j++) {
    if (bytes[j] !== messageByte(id, seq, offset + j)) {
      throw new Error(
        `echo: client ${id}, round trip ${seq}: byte ${offset + j} is ${bytes[j]}, ` +
          `expected ${messageByte(id, seq, offset + j)}`,
      );
    }
  }
}

function streamByte(variant: number, i: number): number {
  return (i * 7 + (i >>> 8) + variant * 53) & 0xff;
}

/** The stream's chunks: chunk n of the stream is CHUNKS[n % VARIANTS]. */
const CHUNKS = Array.from({ length: VARIANTS }, (_, variant) => {
  const chunk = new Uint8Array(CHUNK);
  for (let i = 0; i < CHUNK; i++) chunk[i] = streamByte(variant, i);
  return chunk;
});

/** The byte at `offset` of the stream. */
function streamAt(offset: number): number {
  return streamByte(Math.floor(offset / CHUNK) % VARIANTS, offset % CHUNK);
}

/** Checks a received piece of `length` bytes starting at stream byte `offset`. */
function checkPiece(bytes: Uint8Array, length: number, offset: number): void {
  const check = (i: number) => {
    if (bytes[i] !== streamAt(offset + i)) {
      throw new Error(
        `echo: stream byte ${offset + i} is ${bytes[i]}, expected ${streamAt(offset + i)}`,
      );
    }
  };
  for (let i = 0; i < length; i += STRIDE) check(i);
  if (length > 0) check(length - 1);
}

/** A measurement: how much work was done, in how many seconds. */
interface Figure {
  amount: number;
  seconds: number;
}

// boucle ---------------------------------------------------------------------------

function* boucleAccept(server: AIOSocket<"tcp">, n: number): Coroutine<AIOSocket<"tcp">[]> {
  const conns: AIOSocket<"tcp">[] = [];
  try {
    while (conns.length < n) conns.push(yield* server.accept());
  } catch (error) {
    for (const conn of conns) conn.close();
    throw error;
  }
  return conns;
}

function* boucleEcho(conn: AIOSocket<"tcp">): Coroutine<void> {
  using _conn = conn;
  const buffer = new Uint8Array(CHUNK);
  for (let n; (n = yield* conn.recvInto(buffer)) > 0;) yield* conn.sendAll(buffer.subarray(0, n));
  yield* conn.shutdown();
}

/** Opens `clients` connections to an echo; runs `body` with them; closes all. */
function* boucleSession<T>(
  clients: number,
  body: (socks: AIOSocket<"tcp">[]) => Coroutine<T>,
): Coroutine<T> {
  using server = aiosocket();
  yield* server.bind({ hostname: HOSTNAME, port: 0 });
  yield* server.listen();
  const addr = { hostname: HOSTNAME, port: server.localAddr.port };
  const socks = Array.from({ length: clients }, () => aiosocket());
  try {
    const [conns] = yield* gather(
      boucleAccept(server, clients),
      gather(...socks.map((sock) => sock.connect(addr))),
    );
    const loop = Loop.current;
    const echoes = conns.map((conn) => loop.addTask(boucleEcho(conn)));
    const result = yield* body(socks);
    yield* gather(...echoes);
    return result;
  } finally {
    for (const sock of socks) sock.close();
  }
}

function* boucleClient(sock: AIOSocket<"tcp">, id: number, deadline: number): Coroutine<number> {
  const message = new Uint8Array(MESSAGE);
  let seq = 0;
  while (performance.now() < deadline) {
    fillMessage(message, id, seq);
    yield* sock.sendAll(message);
    for (let got = 0; got < MESSAGE;) {
      const bytes = yield* sock.recv(MESSAGE - got);
      if (bytes.length === 0) throw new Error(`echo: client ${id}: end of stream in a reply`);
      checkReply(bytes, bytes.length, got, id, seq);
      got += bytes.length;
    }
    seq++;
  }
  return seq;
}

/** Half-closes a client and checks that the echo sends nothing more. */
function* boucleFinish(sock: AIOSocket<"tcp">): Coroutine<void> {
  yield* sock.shutdown();
  const rest = yield* sock.recv(CHUNK);
  if (rest.length !== 0) throw new Error(`echo: ${rest.length} bytes more than were sent`);
}

function boucleRoundTrips(clients: number, ms: number): Coroutine<Figure> {
  return boucleSession(clients, function* (socks) {
    const start = performance.now();
    const counts = yield* gather(...socks.map((sock, id) => boucleClient(sock, id, start + ms)));
    const seconds = (performance.now() - start) / 1e3;
    yield* gather(...socks.map(boucleFinish));
    return { amount: counts.reduce((a, b) => a + b, 0), seconds };
  });
}

function* boucleWriter(sock: AIOSocket<"tcp">, total: number): Coroutine<void> {
  for (let n = 0; n * CHUNK < total; n++) yield* sock.sendAll(CHUNKS[n % VARIANTS]!);
  yield* sock.shutdown();
}

function* boucleReader(sock: AIOSocket<"tcp">): Coroutine<number> {
  let got = 0;
  for (;;) {
    const bytes = yield* sock.recv(CHUNK);
    if (bytes.length === 0) return got;
    checkPiece(bytes, bytes.length, got);
    got += bytes.length;
  }
}

function* boucleReaderInto(sock: AIOSocket<"tcp">): Coroutine<number> {
  const buffer = new Uint8Array(CHUNK);
  let got = 0;
  for (let n; (n = yield* sock.recvInto(buffer)) > 0;) {
    checkPiece(buffer, n, got);
    got += n;
  }
  return got;
}

function boucleStream(total: number, into: boolean): Coroutine<Figure> {
  return boucleSession(1, function* ([sock]) {
    const start = performance.now();
    const [, got] = yield* gather(
      boucleWriter(sock!, total),
      into ? boucleReaderInto(sock!) : boucleReader(sock!),
    );
    const seconds = (performance.now() - start) / 1e3;
    if (got !== total) throw new Error(`echo: streamed ${total} bytes, received ${got}`);
    return { amount: total / MIB, seconds };
  });
}

// plain async Deno -------------------------------------------------------------------

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let sent = 0;
  do sent += await conn.write(sent === 0 ? bytes : bytes.subarray(sent)); while (
    sent < bytes.length
  );
}

async function denoAccept(listener: Deno.Listener, n: number): Promise<Deno.Conn[]> {
  const conns: Deno.Conn[] = [];
  try {
    while (conns.length < n) conns.push(await listener.accept());
  } catch (error) {
    for (const conn of conns) conn.close();
    throw error;
  }
  return conns;
}

async function denoEcho(conn: Deno.Conn): Promise<void> {
  try {
    const buffer = new Uint8Array(CHUNK);
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) break;
      await writeAll(conn, buffer.subarray(0, n));
    }
    await conn.closeWrite();
  } finally {
    conn.close();
  }
}

/** Opens `clients` connections to an echo; runs `body` with them; closes all. */
async function denoSession<T>(
  clients: number,
  body: (conns: Deno.Conn[]) => Promise<T>,
): Promise<T> {
  const listener = Deno.listen({ hostname: HOSTNAME, port: 0 });
  const conns: Deno.Conn[] = [];
  try {
    const addr = { hostname: HOSTNAME, port: (listener.addr as Deno.NetAddr).port };
    const connecting = Array.from({ length: clients }, () =>
      Deno.connect(addr).then((conn) => {
        conns.push(conn);
        return conn;
      }));
    const [accepted, connected] = await Promise.all([
      denoAccept(listener, clients),
      Promise.all(connecting),
    ]);
    const echoes = accepted.map(denoEcho);
    const result = await body(connected);
    await Promise.all(echoes);
    return result;
  } finally {
    for (const conn of conns) conn.close();
    listener.close();
  }
}

async function denoClient(conn: Deno.Conn, id: number, deadline: number): Promise<number> {
  const message = new Uint8Array(MESSAGE);
  const reply = new Uint8Array(MESSAGE);
  let seq = 0;
  while (performance.now() < deadline) {
    fillMessage(message, id, seq);
    await writeAll(conn, message);
    for (let got = 0; got < MESSAGE;) {
      const n = await conn.read(got === 0 ? reply : reply.subarray(got));
      if (n === null) throw new Error(`echo: client ${id}: end of stream in a reply`);
      got += n;
    }
    checkReply(reply, MESSAGE, 0, id, seq);
    seq++;
  }
  return seq;
}

async function denoFinish(conn: Deno.Conn): Promise<void> {
  await conn.closeWrite();
  const rest = await conn.read(new Uint8Array(CHUNK));
  if (rest !== null) throw new Error(`echo: ${rest} bytes more than were sent`);
}

function denoRoundTrips(clients: number, ms: number): Promise<Figure> {
  return denoSession(clients, async (conns) => {
    const start = performance.now();
    const counts = await Promise.all(conns.map((conn, id) => denoClient(conn, id, start + ms)));
    const seconds = (performance.now() - start) / 1e3;
    await Promise.all(conns.map(denoFinish));
    return { amount: counts.reduce((a, b) => a + b, 0), seconds };
  });
}

async function denoWriter(conn: Deno.Conn, total: number): Promise<void> {
  for (let n = 0; n * CHUNK < total; n++) await writeAll(conn, CHUNKS[n % VARIANTS]!);
  await conn.closeWrite();
}

async function denoReader(conn: Deno.Conn): Promise<number> {
  const buffer = new Uint8Array(CHUNK);
  let got = 0;
  for (;;) {
    const n = await conn.read(buffer);
    if (n === null) return got;
    checkPiece(buffer, n, got);
    got += n;
  }
}

function denoStream(total: number): Promise<Figure> {
  return denoSession(1, async ([conn]) => {
    const start = performance.now();
    const [, got] = await Promise.all([denoWriter(conn!, total), denoReader(conn!)]);
    const seconds = (performance.now() - start) / 1e3;
    if (got !== total) throw new Error(`echo: streamed ${total} bytes, received ${got}`);
    return { amount: total / MIB, seconds };
  });
}

// Measuring --------------------------------------------------------------------------

type System = "boucle" | "deno";

interface Workload {
  name: string;
  unit: string;
  /** The expected duration of one measurement, for the hang guard. */
  ms: number;
  /** The least boucle / Deno ratio the issue asks for. */
  target?: number;
  boucle: () => Coroutine<Figure>;
  deno: () => Promise<Figure>;
}

function workloads(options: Options): Workload[] {
  const ms = options.seconds * 1e3;
  const total = options.mib * MIB;
  // 256 MiB echoed at a slow 20 MiB/s: 13 s.
  const streamMs = (options.mib / 20) * 1e3;
  const roundTrips = (clients: number): Workload => ({
    name: `round trips/s, ${clients} client${clients === 1 ? "" : "s"}, ${MESSAGE} B`,
    unit: "round trips/s",
    ms,
    boucle: () => boucleRoundTrips(clients, ms),
    deno: () => denoRoundTrips(clients, ms),
  });
  return [
    roundTrips(1),
    roundTrips(100),
    ...[false, true].map((into) => ({
      name: `streaming ${options.mib} MiB in ${CHUNK / 1024} KiB chunks, ${
        into ? "recvInto()" : "recv()"
      }`,
      unit: "MiB/s",
      ms: streamMs,
      target: into ? 0.9 : 0.75,
      boucle: () => boucleStream(total, into),
      deno: () => denoStream(total),
    })),
  ];
}

/** Runs one measurement; a run past its expected time plus GRACE_MS is a hang. */
async function measure(workload: Workload, system: System): Promise<number> {
  const run = system === "boucle" ? new Loop().runTask(workload.boucle()) : workload.deno();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = workload.ms + GRACE_MS;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(`echo: "${workload.name}" on ${system} did not finish within ${limit} ms`),
        ),
      limit,
    );
  });
  try {
    const { amount, seconds } = await Promise.race([run, hang]);
    if (!(amount > 0 && seconds > 0)) {
      throw new Error(`echo: "${workload.name}" on ${system}: ${amount} in ${seconds} s`);
    }
    return amount / seconds;
  } finally {
    clearTimeout(timer);
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

interface Result {
  workload: string;
  unit: string;
  boucle: number[];
  deno: number[];
  /** The bound on boucle / Deno: at least it, or at most it when lower is better. */
  target?: number;
  lowerIsBetter?: boolean;
}

async function run(options: Options): Promise<Result[]> {
  const all = workloads(options).filter((w) => w.name.includes(options.only));
  // Warm-up, untimed: each system once, on a short version of each workload.
  const warm = workloads({ ...options, seconds: Math.min(options.seconds, 0.2), mib: 8 })
    .filter((w) => w.name.includes(options.only));
  const systems = (list: System[]) =>
    list.filter((s) => options.system === "" || s === options.system);
  for (const workload of warm) {
    for (const system of systems(["boucle", "deno"])) await measure(workload, system);
  }
  const results: Result[] = [];
  for (const workload of all) {
    const result: Result = {
      workload: workload.name,
      unit: workload.unit,
      boucle: [],
      deno: [],
      target: workload.target ?? 0.9,
    };
    for (let rep = 0; rep < options.reps; rep++) {
      const order: System[] = rep % 2 === 0 ? ["boucle", "deno"] : ["deno", "boucle"];
      for (const system of systems(order)) result[system].push(await measure(workload, system));
    }
    results.push(result);
  }
  const canRun = Deno.permissions.querySync({ name: "run", command: "deno" }).state === "granted";
  const idleName = `idle connections: ${options.idle.toLocaleString("en-US")} parked in recv()`;
  if (!idleName.includes(options.only)) {
    // not asked for
  } else if (canRun) {
    const result: Result = {
      workload: idleName,
      unit: "KiB RSS per connection",
      boucle: [],
      deno: [],
      target: 1,
      lowerIsBetter: true,
    };
    for (let rep = 0; rep < options.reps; rep++) {
      const order: System[] = rep % 2 === 0 ? ["boucle", "deno"] : ["deno", "boucle"];
      for (const system of systems(order)) {
        result[system].push(await measureIdle(system, options.idle));
      }
    }
    results.push(result);
  } else {
    console.error("echo: no --allow-run=deno: the idle-connections figure is skipped");
  }
  return results;
}

// Idle connections ----------------------------------------------------------------

/** Runs one idle server process and its client process; returns KiB per connection. */
async function measureIdle(system: System, connections: number): Promise<number> {
  const deno = (args: string[], stdin: "piped" | "null") =>
    new Deno.Command("deno", {
      args: ["run", "--quiet", "--allow-net=127.0.0.1", ...args],
      stdin,
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
  const script = new URL(import.meta.url).pathname;
  const server = deno([
    "--v8-flags=--expose-gc",
    script,
    "--idle-server",
    system,
    String(connections),
  ], "null");
  const lines = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const nextLine = async (): Promise<string> => {
    for (;;) {
      const at = text.indexOf("\n");
      if (at >= 0) {
        const line = text.slice(0, at);
        text = text.slice(at + 1);
        return line;
      }
      const { value, done } = await lines.read();
      if (done) throw new Error(`echo: the idle ${system} server ended early`);
      text += value;
    }
  };
  const port = Number((await nextLine()).replace("port ", ""));
  const clients = deno([script, "--idle-clients", String(port), String(connections)], "piped");
  try {
    const { kib } = JSON.parse(await nextLine()) as { kib: number };
    return kib;
  } finally {
    await clients.stdin.close(); // the clients close their connections and exit
    await clients.status;
    await lines.cancel();
    await server.status;
  }
}

/** The server side of the idle figure: echoes, then reports RSS per connection once all are idle. */
async function idleServer(system: System, connections: number): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error("echo: --idle-server needs --v8-flags=--expose-gc");
  let echoed = 0;
  let allIdle!: () => void;
  const idle = new Promise<void>((resolve) => allIdle = resolve);
  const counted = () => {
    if (++echoed === connections) allIdle();
  };
  const listening = (port: number) => console.log(`port ${port}`);
  gc();
  const before = Deno.memoryUsage().rss;
  let done: Promise<unknown>;
  if (system === "deno") {
    const listener = Deno.listen({ hostname: HOSTNAME, port: 0 });
    listening((listener.addr as Deno.NetAddr).port);
    const echo = async (conn: Deno.Conn) => {
      try {
        const buffer = new Uint8Array(16384);
        for (let first = true;; first = false) {
          const n = await conn.read(buffer);
          if (n === null) break;
          await writeAll(conn, buffer.subarray(0, n));
          if (first) counted();
        }
      } catch {
        // a client that went away
      } finally {
        conn.close();
      }
    };
    done = (async () => {
      const echoes: Promise<void>[] = [];
      for (let i = 0; i < connections; i++) echoes.push(echo(await listener.accept()));
      listener.close();
      await Promise.all(echoes);
    })();
  } else {
    const loop = new Loop();
    done = loop.runTask(function* () {
      const echoes = [];
      {
        using server = aiosocket();
        yield* server.bind({ hostname: HOSTNAME, port: 0 });
        yield* server.listen();
        listening(server.localAddr.port);
        for (let i = 0; i < connections; i++) {
          const conn = yield* server.accept();
          echoes.push(loop.addTask(function* () {
            using _conn = conn;
            try {
              for (let first = true;; first = false) {
                const bytes = yield* conn.recv(CHUNK);
                if (bytes.length === 0) break;
                yield* conn.sendAll(bytes);
                if (first) counted();
              }
            } catch {
              // a client that went away
            }
          }()));
        }
      }
      yield* gather(...echoes);
    }());
  }
  await idle;
  await new Promise((resolve) => setTimeout(resolve, 500));
  gc();
  const after = Deno.memoryUsage().rss;
  console.log(JSON.stringify({ kib: (after - before) / connections / 1024 }));
  await done;
}

/** The client side of the idle figure: opens the connections, echoes a byte on each, holds them. */
async function idleClients(port: number, connections: number): Promise<void> {
  const conns: Deno.Conn[] = [];
  const one = async () => {
    const conn = await Deno.connect({ hostname: HOSTNAME, port });
    conns.push(conn);
    await writeAll(conn, new Uint8Array([42]));
    const n = await conn.read(new Uint8Array(1));
    if (n !== 1) throw new Error("echo: an idle client got no echo");
  };
  for (let i = 0; i < connections; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, connections - i) }, one));
  }
  await Deno.stdin.readable.pipeTo(new WritableStream()); // until the parent closes stdin
  for (const conn of conns) conn.close();
}

function format(value: number): string {
  return value.toLocaleString("en-US", { maximumFractionDigits: value >= 100 ? 0 : 1 });
}

function table(results: Result[], options: Options): string {
  const header = ["workload", "boucle", "plain Deno", "boucle / Deno (paired)", "issue 10 asks"];
  const body = results.map((r) => {
    const b = median(r.boucle);
    const d = median(r.deno);
    // The median of the paired ratios: each repetition ran both systems back
    // to back, so a pair shares the machine's load of the moment.
    const ratio = median(r.boucle.map((x, i) => x / r.deno[i]!));
    const ok = r.lowerIsBetter ? ratio <= r.target! : ratio >= r.target!;
    return [
      r.workload,
      `${format(b)} ${r.unit}`,
      `${format(d)} ${r.unit}`,
      `${ratio.toFixed(2)} ×`,
      `${r.lowerIsBetter ? "<=" : ">="} ${r.target!.toFixed(2)} × ${ok ? "(met)" : "(NOT met)"}`,
    ];
  });
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((row) => row[c]!.length)));
  const line = (cells: string[]) =>
    `| ${
      cells.map((cell, c) => c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!)).join(
        " | ",
      )
    } |`;
  const rule = `|${
    widths.map((w, c) => c === 0 ? "-".repeat(w + 2) : "-".repeat(w + 1) + ":").join("|")
  }|`;
  const reps = results.map((r) => {
    const each = r.boucle.map((b, i) => (b / r.deno[i]!).toFixed(2)).join(", ");
    return `  ${r.workload}: boucle ${r.boucle.map(format).join(", ")}; ` +
      `Deno ${r.deno.map(format).join(", ")}; ratios ${each}`;
  });
  return [
    `echo on ${HOSTNAME}, Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores; ` +
    `medians of ${options.reps} repetitions, order alternated`,
    "",
    line(header),
    rule,
    ...body.map(line),
    "",
    "each repetition (boucle and Deno paired in order of running):",
    ...reps,
  ].join("\n");
}

if (import.meta.main && Deno.args[0] === "--idle-server") {
  await idleServer(Deno.args[1] as System, Number(Deno.args[2]));
} else if (import.meta.main && Deno.args[0] === "--idle-clients") {
  await idleClients(Number(Deno.args[1]), Number(Deno.args[2]));
} else if (import.meta.main) {
  const options = parseOptions(Deno.args);
  const results = await run(options);
  console.log(table(results, options));
  if (options.json) {
    const rows = results.map((r) => ({
      workload: r.workload,
      unit: r.unit,
      boucle: median(r.boucle),
      deno: median(r.deno),
      target: r.target,
      ...(r.lowerIsBetter ? { lowerIsBetter: true } : {}),
    }));
    console.log(JSON.stringify({ rows }));
  }
}
