// Copyright 2026 the boucle authors. MIT license.
/**
 * Runs the echo examples as subprocesses with only `--allow-net=127.0.0.1`:
 * `echo.ts` prints the lesson's two lines; `echo_server.ts` answers
 * `echo_client.ts` line by line, and on SIGTERM or SIGINT closes its
 * connections and exits with status 0.
 *
 * Needs `--allow-run=deno` and `--allow-net=127.0.0.1` (the test task).
 */

import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { DENO, ROOT } from "./_deno.ts";

const FLAGS = ["run", "--quiet", "--no-prompt", "--allow-net=127.0.0.1"];

interface Output {
  code: number;
  lines: string[];
  stderr: string;
}

/** Runs `examples/<name>` to its end, with `input` on stdin. */
async function runExample(name: string, args: string[], input = ""): Promise<Output> {
  const child = new Deno.Command(DENO, {
    args: [...FLAGS, `examples/${name}`, ...args],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(input));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  return {
    code,
    lines: linesOf(new TextDecoder().decode(stdout)),
    stderr: new TextDecoder().decode(stderr),
  };
}

function linesOf(text: string): string[] {
  return text.split("\n").slice(0, -1);
}

/** A running `echo_server.ts` on a free port, whose log is read line by line. */
class Server implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #lines: ReadableStreamDefaultReader<string>;
  #pending = "";
  readonly log: string[] = [];

  constructor() {
    this.#child = new Deno.Command(DENO, {
      args: [...FLAGS, "examples/echo_server.ts", "--port", "0"],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#lines = this.#child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** Reads the log until a line includes `text`; returns that line. */
  async waitFor(text: string): Promise<string> {
    for (;;) {
      const found = this.log.find((line) => line.includes(text));
      if (found !== undefined) return found;
      const { value, done } = await this.#lines.read();
      if (done) throw new Error(`the server's log ended before "${text}":\n${this.log.join("\n")}`);
      const lines = (this.#pending + value).split("\n");
      this.#pending = lines.pop()!;
      this.log.push(...lines);
    }
  }

  /** The port it listens on, from its first line. */
  async port(): Promise<number> {
    const line = await this.waitFor("Listening on 127.0.0.1:");
    return Number(line.slice(line.lastIndexOf(":") + 1));
  }

  /** Sends `signal`; returns the exit code, and the rest of the log. */
  async stop(signal: Deno.Signal): Promise<number> {
    this.#child.kill(signal);
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), 10_000);
    try {
      for (let r; !(r = await this.#lines.read()).done;) this.#pending += r.value;
      this.log.push(...linesOf(this.#pending));
      this.#pending = "";
      const { code, signal: killedBy } = await this.#child.status;
      assertEquals(killedBy, null, `the server did not stop on ${signal}`);
      return code;
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
    await this.#child.status;
  }
}

Deno.test("echo.ts prints what the server received, then the client's reversed reply", async () => {
  const { code, lines, stderr } = await runExample("echo.ts", []);
  assertEquals(stderr, "");
  assertEquals(code, 0);
  assertEquals(lines, ["Received from client Hello World!", "Received from server !dlroW olleH"]);
});

Deno.test("echo.ts --port listens on the port given: a port in use makes it fail", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = taken.addr;
  const { code, lines, stderr } = await runExample("echo.ts", ["--port", String(port)]);
  assertEquals(lines, []);
  assert(code !== 0);
  assertStringIncludes(stderr, "AddrInUse");
  const bad = await runExample("echo.ts", ["--port=http"]);
  assertEquals(bad.code, 2);
  assertStringIncludes(bad.stderr, `--port must be an integer from 0 to 65535, received "http"`);
});

Deno.test("echo_server.ts answers echo_client.ts line by line, then exits 0 on SIGTERM", async () => {
  await using server = new Server();
  const port = await server.port();
  const client = await runExample(
    "echo_client.ts",
    ["--port", String(port)],
    "Hello World!\nsecond line\n\nlast, without newline",
  );
  assertEquals(client.stderr, "");
  assertEquals(client.code, 0);
  assertEquals(client.lines, ["Hello World!", "second line", "", "last, without newline"]);
  const peer = (await server.waitFor(" connected")).split(" ")[0];
  await server.waitFor(`${peer} disconnected`);
  assertEquals(await server.stop("SIGTERM"), 0);
  assertEquals(server.log, [
    `Listening on 127.0.0.1:${port}`,
    `${peer} connected`,
    `${peer} disconnected`,
    "SIGTERM: shutting down",
    "Stopped",
  ]);
});

Deno.test("echo_server.ts on SIGINT closes the connections still open and exits 0", async () => {
  await using server = new Server();
  const port = await server.port();
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode("ping"));
  const buffer = new Uint8Array(16);
  const n = await conn.read(buffer);
  assertEquals(new TextDecoder().decode(buffer.subarray(0, n ?? 0)), "ping");
  assertEquals(await server.stop("SIGINT"), 0);
  assertEquals(await conn.read(buffer), null, "the server closed the connection");
  const peer = `127.0.0.1:${conn.localAddr.port}`;
  assertEquals(server.log, [
    `Listening on 127.0.0.1:${port}`,
    `${peer} connected`,
    "SIGINT: shutting down",
    `${peer} disconnected`,
    "Stopped",
  ]);
});
