// Copyright 2026 the boucle authors. MIT license.
// Line reading over loopback: boucle's StreamReader.readLine() against what a
// Deno user reaches for without it, in one process and one run, on 127.0.0.1
// with a port chosen by the system (port 0).
//
//   deno run --allow-net=127.0.0.1 bench/readline.ts [--reps N] [--lines L] [--json]
//
// - The writer runs in a Worker (its own thread and event loop), so that the
//   three readers share nothing but the machine: for each connection it sends
//   L lines of 40 bytes (39 characters and "\n"; line i starts with i) in
//   1 MiB writes, then closes. (With 64 KiB writes the writer was the
//   bottleneck: every reader ran at about the same speed.)
// - The readers, on the main thread, each connect, read every line as a
//   string, count them and sum their lengths, and check the count, the sum,
//   and the last line:
//   - boucle: `aiosocket()`, `connect()`, `new StreamReader(sock)`, then
//     `yield* reader.readLine()` until null, on a new Loop (real time).
//   - node:readline: `net.connect()` and `readline.createInterface({ input })`
//     with its "line" event (faster than `for await` over it), run in Deno.
//   - Deno streams: `Deno.connect()`, `conn.readable.pipeThrough(new
//     TextDecoderStream())`, each chunk split on "\n" by hand with the
//     remainder carried to the next chunk.
// - The clock runs from the connect to the last line. Each reader runs --reps
//   times (default 5), rotating the order, after an untimed warm-up of each;
//   the figure is the median in lines/s, and the ratio is boucle's median
//   over the faster of the other two (> 1: boucle is faster).
//
// Output: a table; with --json, a last line {"rows":[{"reader","linesPerSec"}]}.
// Permissions: --allow-net=127.0.0.1 only.

import * as net from "node:net";
import * as readline from "node:readline";
import { aiosocket, type Coroutine, Loop, StreamReader } from "../mod.ts";

const HOSTNAME = "127.0.0.1";
const LINE = 40;

interface Options {
  reps: number;
  lines: number;
  json: boolean;
}

function parseOptions(args: string[]): Options {
  const options: Options = { reps: 5, lines: 1_000_000, json: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--json") {
      options.json = true;
      continue;
    }
    const m = /^--(reps|lines)(?:=(.*))?$/.exec(arg);
    const value = Number(m?.[2] ?? args[++i]);
    if (m === null || !(Number.isInteger(value) && value >= 1)) {
      throw new TypeError(
        `bench/readline.ts: bad argument ${arg}; use --reps N, --lines L, --json`,
      );
    }
    options[m[1] as "reps" | "lines"] = value;
  }
  return options;
}

/** Line `i`: its number, padded with dots to 39 characters. */
function lineOf(i: number): string {
  const head = `${i} `;
  return head + ".".repeat(LINE - 1 - head.length);
}

// The writer, in a Worker ------------------------------------------------------

const WRITER = `
const LINE = ${LINE};
${lineOf.toString()}
self.onmessage = async (event) => {
  const lines = event.data;
  const text = [];
  for (let i = 0; i < lines; i++) text.push(lineOf(i) + "\\n");
  const data = new TextEncoder().encode(text.join(""));
  const listener = Deno.listen({ hostname: "${HOSTNAME}", port: 0 });
  self.postMessage(listener.addr.port);
  for await (const conn of listener) {
    for (let sent = 0; sent < data.length;) {
      sent += await conn.write(data.subarray(sent, Math.min(sent + (1 << 20), data.length)));
    }
    conn.close();
  }
};
`;

function startWriter(lines: number): Promise<{ worker: Worker; port: number }> {
  const url = URL.createObjectURL(new Blob([WRITER], { type: "application/javascript" }));
  const worker = new Worker(url, { type: "module" });
  return new Promise((resolve) => {
    worker.onmessage = (event) => resolve({ worker, port: event.data as number });
    worker.postMessage(lines);
  });
}

// The readers -------------------------------------------------------------------

interface Count {
  lines: number;
  chars: number;
  last: string;
}

function readBoucle(port: number): Promise<Count> {
  function* main(): Coroutine<Count> {
    using sock = aiosocket();
    yield* sock.connect({ hostname: HOSTNAME, port });
    const reader = new StreamReader(sock);
    let lines = 0, chars = 0, last = "";
    for (let line; (line = yield* reader.readLine()) !== null;) {
      lines++;
      chars += line.length;
      last = line;
    }
    return { lines, chars, last };
  }
  return new Loop().runTask(main());
}

function readNode(port: number): Promise<Count> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, HOSTNAME);
    socket.on("error", reject);
    const rl = readline.createInterface({ input: socket, crlfDelay: Infinity });
    let lines = 0, chars = 0, last = "";
    rl.on("line", (line: string) => {
      lines++;
      chars += line.length;
      last = line;
    });
    rl.on("close", () => resolve({ lines, chars, last }));
  });
}

async function readDeno(port: number): Promise<Count> {
  const conn = await Deno.connect({ hostname: HOSTNAME, port });
  let lines = 0, chars = 0, last = "", rest = "";
  for await (const chunk of conn.readable.pipeThrough(new TextDecoderStream())) {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop()!;
    for (const line of parts) {
      lines++;
      chars += line.length;
      last = line;
    }
  }
  if (rest !== "") {
    lines++;
    chars += rest.length;
    last = rest;
  }
  return { lines, chars, last };
}

const READERS: [string, (port: number) => Promise<Count>][] = [
  ["boucle StreamReader.readLine()", readBoucle],
  ["node:readline over node:net", readNode],
  ["Deno readable + TextDecoderStream + split", readDeno],
];

// Measurement ---------------------------------------------------------------------

async function measure(
  read: (port: number) => Promise<Count>,
  port: number,
  lines: number,
): Promise<number> {
  const start = performance.now();
  const count = await read(port);
  const ms = performance.now() - start;
  const want = lineOf(lines - 1);
  if (count.lines !== lines || count.chars !== lines * (LINE - 1) || count.last !== want) {
    throw new Error(
      `bench/readline.ts: read ${count.lines} lines, ${count.chars} chars, last ${
        JSON.stringify(count.last)
      }; want ${lines}, ${lines * (LINE - 1)}, ${JSON.stringify(want)}`,
    );
  }
  return lines / (ms / 1000);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function main(): Promise<void> {
  const options = parseOptions(Deno.args);
  const { worker, port } = await startWriter(options.lines);
  try {
    for (const [, read] of READERS) await measure(read, port, options.lines); // warm-up
    const results: number[][] = READERS.map(() => []);
    for (let rep = 0; rep < options.reps; rep++) {
      for (let k = 0; k < READERS.length; k++) {
        const r = (rep + k) % READERS.length;
        results[r]!.push(await measure(READERS[r]![1], port, options.lines));
      }
    }
    const medians = results.map(median);
    const best = Math.max(medians[1]!, medians[2]!);
    console.log(
      `readLine over ${
        options.lines.toLocaleString("en")
      } lines of ${LINE} bytes on loopback, median of ${options.reps}:`,
    );
    for (let r = 0; r < READERS.length; r++) {
      const runs = results[r]!.map((v) => (v / 1e6).toFixed(2)).join(", ");
      console.log(
        `  ${READERS[r]![0].padEnd(44)} ${
          (medians[r]! / 1e6).toFixed(2).padStart(6)
        } M lines/s  (${runs})`,
      );
    }
    console.log(`  boucle / faster of the other two: ${(medians[0]! / best).toFixed(2)}x`);
    if (options.json) {
      console.log(JSON.stringify({
        rows: READERS.map(([reader], r) => ({ reader, linesPerSec: Math.round(medians[r]!) })),
      }));
    }
  } finally {
    worker.terminate();
  }
}

if (import.meta.main) await main();
