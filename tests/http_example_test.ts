// Copyright 2026 the boucle authors. MIT license.
/**
 * Runs `examples/http.ts` as a subprocess with only `--allow-net=127.0.0.1`
 * and talks to it with real `fetch` calls to 127.0.0.1: 200 for quick work,
 * 504 past the deadline, at most `--limit` requests working at once, a client
 * that goes away cancels its task (and gives its permit back), and SIGINT
 * cancels the work in flight (503) and exits 0. Each test reads the server's
 * log line by line, waiting for a line rather than for a time, and asserts it
 * in full at the end, with an empty stderr.
 *
 * Needs `--allow-run=deno` and `--allow-net=127.0.0.1` (the test task).
 */

import { assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { DENO, ROOT } from "./_deno.ts";

// --unstable-no-legacy-abort: Deno 2.9 also aborts `req.signal` after every
// successful response and warns once on stderr; the flag keeps only the abort
// when the client goes away (see examples/http.ts).
const FLAGS = [
  "run",
  "--quiet",
  "--no-prompt",
  "--allow-net=127.0.0.1",
  "--unstable-no-legacy-abort",
];
/** The most a server may take to stop after a signal before it is killed. */
const STOP_MS = 10_000;
/** The most a test waits for a line of the server's log. */
const WAIT_MS = 10_000;

/** A running `http.ts` on a free port, whose stdout is read line by line. */
class Server implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #lines: ReadableStreamDefaultReader<string>;
  readonly #stderr: Promise<string>;
  #pending = "";
  readonly log: string[] = [];
  #port = 0;

  constructor(args: string[]) {
    this.#child = new Deno.Command(DENO, {
      args: [...FLAGS, "examples/http.ts", "--port", "0", ...args],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#lines = this.#child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    this.#stderr = readAll(this.#child.stderr);
  }

  /** Reads the log until `found(log)` is true, for at most WAIT_MS. */
  async #readUntil(found: (log: string[]) => boolean, what: string): Promise<void> {
    const late = Promise.withResolvers<never>();
    const timer = setTimeout(
      () => late.reject(this.#missing(what, `after ${WAIT_MS} ms`)),
      WAIT_MS,
    );
    try {
      while (!found(this.log)) {
        const { value, done } = await Promise.race([this.#lines.read(), late.promise]);
        if (done) throw this.#missing(what, "at its end");
        const lines = (this.#pending + value).split("\n");
        this.#pending = lines.pop()!;
        this.log.push(...lines);
      }
    } finally {
      clearTimeout(timer);
    }
  }

  #missing(what: string, when: string): Error {
    return new Error(`no ${what} in the server's log ${when}:\n${this.log.join("\n")}`);
  }

  /** Reads the log until a line is `line`. */
  waitFor(line: string): Promise<void> {
    return this.#readUntil((log) => log.includes(line), `"${line}"`);
  }

  /** Waits for the first line, which tells the port. */
  async start(): Promise<this> {
    await this.#readUntil((log) => log.length > 0, "its first line");
    const first = this.log[0]!;
    const match = /^Listening on http:\/\/127\.0\.0\.1:(\d+)\/$/.exec(first);
    if (match === null) throw new Error(`unexpected first line: ${first}`);
    this.#port = Number(match[1]);
    return this;
  }

  /** The URL of `path` on the server. */
  url(path: string): string {
    return `http://127.0.0.1:${this.#port}${path}`;
  }

  /** `GET path`: the status and the body. */
  async get(path: string, signal?: AbortSignal): Promise<[number, string]> {
    const response = await fetch(this.url(path), signal ? { signal } : {});
    return [response.status, await response.text()];
  }

  /** Sends `signal`; returns the exit code, the rest of the log, and stderr. */
  async stop(signal: Deno.Signal): Promise<{ code: number; stderr: string }> {
    this.#child.kill(signal);
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), STOP_MS);
    try {
      for (let r; !(r = await this.#lines.read()).done;) this.#pending += r.value;
      this.log.push(...this.#pending.split("\n").slice(0, -1));
      this.#pending = "";
      const { code, signal: killedBy } = await this.#child.status;
      assertEquals(killedBy, null, `the server did not stop on ${signal}`);
      return { code, stderr: await this.#stderr };
    } finally {
      clearTimeout(timer);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already exited
    }
    await this.#lines.cancel();
    await this.#stderr;
    await this.#child.status;
  }
}

/** Reads a byte stream to its end as text. */
async function readAll(stream: ReadableStream<Uint8Array>): Promise<string> {
  let text = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) text += chunk;
  return text;
}

Deno.test("http.ts answers 200 for quick work, 504 past the deadline, 400 and 404 for bad requests", async () => {
  await using server = await new Server(["--deadline", "300"]).start();
  assertEquals(await server.get("/work?ms=10"), [200, "worked 10 ms\n"]);
  assertEquals(await server.get("/work?ms=5000"), [504, "past the 300 ms deadline\n"]);
  assertEquals(await server.get("/work?ms=-1"), [400, "'ms' must be an integer from 0 to 60000\n"]);
  assertEquals(await server.get("/"), [404, "try GET /work?ms=200\n"]);
  assertEquals(await server.stop("SIGINT"), { code: 0, stderr: "" });
  assertEquals(server.log.slice(1), [
    "#1 GET /work?ms=10: started",
    "#1 200",
    "#2 GET /work?ms=5000: started",
    "#2 504: past the 300 ms deadline",
    "SIGINT: shutting down",
    "Stopped",
  ]);
});

Deno.test("http.ts lets --limit requests work at once: the next waits for a permit, past its deadline", async () => {
  // Each asks for 650 ms of a 1000 ms deadline: two fit at once, the third
  // would end after 1300 ms, so it gets 504 (it cannot end early: the
  // permit comes at 650 ms at the soonest).
  await using server = await new Server(["--deadline", "1000", "--limit", "2"]).start();
  const first = server.get("/work?ms=650");
  await server.waitFor("#1 GET /work?ms=650: started");
  const second = server.get("/work?ms=650");
  await server.waitFor("#2 GET /work?ms=650: started");
  const third = server.get("/work?ms=650");
  assertEquals(await Promise.all([first, second, third]), [
    [200, "worked 650 ms\n"],
    [200, "worked 650 ms\n"],
    [504, "past the 1000 ms deadline\n"],
  ]);
  assertEquals(await server.stop("SIGINT"), { code: 0, stderr: "" });
  assertEquals(server.log.slice(1), [
    "#1 GET /work?ms=650: started",
    "#2 GET /work?ms=650: started",
    "#3 GET /work?ms=650: started",
    "#1 200",
    "#2 200",
    "#3 504: past the 1000 ms deadline",
    "SIGINT: shutting down",
    "Stopped",
  ]);
});

Deno.test("http.ts cancels the task of a client that goes away, working or waiting for a permit", async () => {
  await using server = await new Server(["--deadline", "5000", "--limit", "1"]).start();
  const working = new AbortController();
  const first = server.get("/work?ms=5000", working.signal);
  await server.waitFor("#1 GET /work?ms=5000: started");
  const waiting = new AbortController();
  const second = server.get("/work?ms=1", waiting.signal); // parks: #1 holds the only permit
  await server.waitFor("#2 GET /work?ms=1: started");
  waiting.abort();
  await assertRejects(() => second, DOMException, "aborted");
  await server.waitFor("#2 cancelled: the client went away");
  working.abort();
  await assertRejects(() => first, DOMException, "aborted");
  await server.waitFor("#1 cancelled: the client went away");
  // The permit is back: with --limit 1, a lost one would hold this for 5 s.
  assertEquals(await server.get("/work?ms=1"), [200, "worked 1 ms\n"]);
  assertEquals(await server.stop("SIGINT"), { code: 0, stderr: "" });
  assertEquals(server.log.slice(1), [
    "#1 GET /work?ms=5000: started",
    "#2 GET /work?ms=1: started",
    "#2 cancelled: the client went away",
    "#1 cancelled: the client went away",
    "#3 GET /work?ms=1: started",
    "#3 200",
    "SIGINT: shutting down",
    "Stopped",
  ]);
});

Deno.test("http.ts on SIGINT cancels the work in flight, answers it 503, and exits 0", async () => {
  await using server = await new Server([]).start();
  const inFlight = server.get("/work?ms=60000");
  await server.waitFor("#1 GET /work?ms=60000: started");
  const stopped = server.stop("SIGINT");
  assertEquals(await inFlight, [503, "shutting down\n"]);
  assertEquals(await stopped, { code: 0, stderr: "" });
  assertEquals(server.log.slice(1), [
    "#1 GET /work?ms=60000: started",
    "SIGINT: shutting down",
    "#1 503: shutting down",
    "Stopped",
  ]);
});

Deno.test("http.ts rejects a bad flag with status 2 and a message", async () => {
  const { code, stdout, stderr } = await new Deno.Command(DENO, {
    args: [...FLAGS, "examples/http.ts", "--limit", "0"],
    cwd: ROOT,
    stdin: "null",
  }).output();
  assertEquals(code, 2);
  assertEquals(new TextDecoder().decode(stdout), "");
  assertStringIncludes(
    new TextDecoder().decode(stderr),
    `--limit must be an integer >= 1, received "0"`,
  );
});
