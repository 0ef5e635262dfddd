// Copyright 2026 the boucle authors. MIT license.
/**
 * Runs `examples/chat.ts` as a subprocess with only `--allow-net=127.0.0.1`
 * and talks to it with plain Deno clients on 127.0.0.1: many at once, ones
 * that send a line over the limit, vanish mid-line or never read, and a
 * SIGINT with clients connected. Each client's and the server's reads are
 * bounded in time; a stuck server is killed after 10 s. One more test runs
 * its `chatRoom()` in process, over memory streams, on virtual time.
 *
 * Needs `--allow-run=deno` and `--allow-net=127.0.0.1` (the test task).
 */

import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { taskGroup } from "../scope.ts";
import { StreamReader } from "../stream.ts";
import { loopTest, memoryStreamPair, waitAllTasksBlocked } from "../testing.ts";
import { chatRoom } from "../examples/chat.ts";
import { DENO, ROOT } from "./_deno.ts";

const FLAGS = ["run", "--quiet", "--no-prompt", "--allow-net=127.0.0.1"];
const WAIT_MS = 10_000;
const encoder = new TextEncoder();

/** Rejects after `ms` with `what` in the message, unless `promise` settles first. */
async function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Splits a byte stream into lines: `\n`-terminated, decoded as UTF-8. */
class Lines {
  readonly #read: (buffer: Uint8Array) => Promise<number | null>;
  readonly #decoder = new TextDecoder();
  #pending = "";
  #lines: string[] = [];
  #ended = false;

  constructor(read: (buffer: Uint8Array) => Promise<number | null>) {
    this.#read = read;
  }

  /** The next line, or `null` at end of stream (a last partial line is dropped). */
  async next(): Promise<string | null> {
    const buffer = new Uint8Array(65536);
    while (this.#lines.length === 0 && !this.#ended) {
      const n = await this.#read(buffer);
      if (n === null) {
        this.#ended = true;
        break;
      }
      const parts = (this.#pending + this.#decoder.decode(buffer.subarray(0, n), { stream: true }))
        .split("\n");
      this.#pending = parts.pop()!;
      this.#lines.push(...parts);
    }
    return this.#lines.shift() ?? null;
  }
}

/** A running `chat.ts` on a free port, whose log is read line by line. */
class ChatServer implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #stdout: ReadableStreamDefaultReader<Uint8Array>;
  readonly #lines: Lines;
  readonly log: string[] = [];
  port = 0;

  constructor(args: string[] = []) {
    this.#child = new Deno.Command(DENO, {
      args: [...FLAGS, "examples/chat.ts", "--port", "0", ...args],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#stdout = this.#child.stdout.getReader();
    this.#lines = new Lines(async (buffer) => {
      const { value, done } = await this.#stdout.read();
      if (done) return null;
      buffer.set(value.subarray(0, buffer.length));
      return Math.min(value.length, buffer.length);
    });
  }

  /** Starts it: reads the port from its first line. */
  async start(): Promise<this> {
    const line = await this.waitFor("Listening on 127.0.0.1:");
    this.port = Number(line.slice(line.lastIndexOf(":") + 1));
    return this;
  }

  /** Reads the log until a line equals `text` (starts with it, if it ends in a space or colon). */
  async waitFor(text: string): Promise<string> {
    const prefix = text.endsWith(" ") || text.endsWith(":");
    const matches = (line: string) => prefix ? line.startsWith(text) : line === text;
    const read = async () => {
      for (;;) {
        const found = this.log.find(matches);
        if (found !== undefined) return found;
        const line = await this.#lines.next();
        if (line === null) {
          throw new Error(`the server's log ended before "${text}":\n${this.log.join("\n")}`);
        }
        this.log.push(line);
      }
    };
    return await within(read(), `"${text}" in the server's log:\n${this.log.join("\n")}`);
  }

  /** Sends `signal`; returns the exit code once the log has ended. */
  async stop(signal: Deno.Signal): Promise<number> {
    this.#child.kill(signal);
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), WAIT_MS);
    try {
      for (let line; (line = await this.#lines.next()) !== null;) this.log.push(line);
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
    await this.#stdout.cancel();
    await this.#child.status;
  }
}

/** A chat client: a plain Deno connection, read line by line. */
class Client implements Disposable {
  readonly conn: Deno.TcpConn;
  readonly lines: Lines;
  readonly received: string[] = [];
  #closed = false;

  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
    this.lines = new Lines((buffer) => conn.read(buffer));
  }

  /** Connects and reads the welcome line; sends `name` if given. */
  static async connect(port: number, name?: string): Promise<Client> {
    const client = new Client(await Deno.connect({ hostname: "127.0.0.1", port }));
    try {
      assertStringIncludes((await client.next()) ?? "(end of stream)", "Welcome!");
      if (name !== undefined) await client.send(`${name}\n`);
      return client;
    } catch (error) {
      client.close();
      throw error;
    }
  }

  /** Writes all of `text`. */
  async send(text: string | Uint8Array): Promise<void> {
    const bytes = typeof text === "string" ? encoder.encode(text) : text;
    for (let sent = 0; sent < bytes.length;) sent += await this.conn.write(bytes.subarray(sent));
  }

  /** The next line from the server, or `null` at end of stream. */
  next(): Promise<string | null> {
    return within(this.lines.next(), "a line from the server");
  }

  /** Reads lines until one equals `line`; returns the lines read before it. */
  async until(line: string): Promise<string[]> {
    const before: string[] = [];
    for (;;) {
      const got = await this.next();
      if (got === null) throw new Error(`end of stream before "${line}", after ${before}`);
      if (got === line) return before;
      before.push(got);
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.conn.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

Deno.test("chat.ts broadcasts each line to every other client, in order, for 20 clients", async () => {
  await using server = await new ChatServer().start();
  const N = 20;
  const LINES = 25;
  const clients: Client[] = [];
  try {
    for (let i = 0; i < N; i++) {
      clients.push(await Client.connect(server.port, `c${i}`));
      await server.waitFor(`c${i} joined from `);
    }
    // All have joined: each sends its lines, and reads everyone else's.
    const received = await Promise.all(clients.map(async (client, i) => {
      const sending = (async () => {
        for (let k = 0; k < LINES; k++) await client.send(`c${i}: line ${k}\n`);
      })();
      const messages: string[] = [];
      while (messages.length < (N - 1) * LINES) {
        const line = await client.next();
        if (line === null) throw new Error(`c${i}: end of stream`);
        if (!line.startsWith("*")) messages.push(line);
      }
      await sending;
      return messages;
    }));
    received.forEach((messages, i) => {
      for (let j = 0; j < N; j++) {
        const from = messages.filter((line) => line.startsWith(`c${j}: `));
        // "cj: cj: line k": the server prefixes the sender's name
        const expected = j === i
          ? []
          : Array.from({ length: LINES }, (_, k) => `c${j}: c${j}: line ${k}`);
        assertEquals(from, expected, `what c${i} got from c${j}`);
      }
    });
    // Each half-closes, the server sees it leave and closes, the client reads to the end.
    for (const client of clients) await client.conn.closeWrite();
    for (const client of clients) while ((await client.next()) !== null);
  } finally {
    for (const client of clients) client.close();
  }
  for (let i = 0; i < N; i++) await server.waitFor(`c${i} left`);
  assertEquals(await server.stop("SIGTERM"), 0);
  assertEquals(server.log.slice(-2), ["SIGTERM: shutting down", "Stopped"]);
});

Deno.test("chat.ts drops a client whose line is over the limit, telling it why, and lets one vanish mid-line", async () => {
  await using server = await new ChatServer(["--limit", "64"]).start();
  using ada = await Client.connect(server.port, "ada");
  await server.waitFor("ada joined from ");
  using bob = await Client.connect(server.port, "bob");
  await server.waitFor("bob joined from ");
  assertEquals(await ada.next(), "* bob joined");

  // Over the limit: told why, then end of stream; the others are told it was dropped.
  using mallory = await Client.connect(server.port, "mallory");
  assertEquals(await ada.next(), "* mallory joined");
  await mallory.send("x".repeat(200) + "\n");
  assertEquals(await mallory.next(), "! lines must be at most 64 bytes: goodbye");
  assertEquals(await mallory.next(), null);
  mallory.close();
  assertEquals(await ada.next(), "* mallory dropped: line over 64 bytes");

  // Gone mid-line: its half line is never sent on.
  const eve = await Client.connect(server.port, "eve");
  assertEquals(await ada.next(), "* eve joined");
  await eve.send("half a li");
  eve.close();
  assertEquals(await ada.next(), "* eve vanished mid-line");

  // A name over the limit is refused the same way, before joining.
  using long = await Client.connect(server.port);
  await long.send("n".repeat(100));
  assertEquals(await long.next(), "! lines must be at most 64 bytes: goodbye");
  assertEquals(await long.next(), null);
  long.close();

  // The others go on.
  await ada.send("still here\r\n");
  assertEquals(await bob.until("ada: still here"), [
    "* mallory joined",
    "* mallory dropped: line over 64 bytes",
    "* eve joined",
    "* eve vanished mid-line",
  ]);
  ada.close();
  assertEquals(await bob.next(), "* ada left");
  bob.close();
  await server.waitFor("bob left");
  assertEquals(await server.stop("SIGINT"), 0);
  const peerless = server.log.map((line) => line.replace(/127\.0\.0\.1:\d+/g, "PEER"));
  assertEquals(peerless, [
    "Listening on PEER",
    "ada joined from PEER",
    "bob joined from PEER",
    "mallory joined from PEER",
    "mallory dropped: line over 64 bytes",
    "eve joined from PEER",
    "eve vanished mid-line",
    "PEER dropped: line over 64 bytes before sending a name",
    "ada left",
    "bob left",
    "SIGINT: shutting down",
    "Stopped",
  ]);
});

Deno.test("chat.ts drops a client that stops reading once its backlog is full, and serves the others", async () => {
  await using server = await new ChatServer(["--limit", "2048", "--backlog", "262144"]).start();
  using flooder = await Client.connect(server.port, "flooder");
  await server.waitFor("flooder joined from ");
  using reader = await Client.connect(server.port, "reader"); // reads everything
  await server.waitFor("reader joined from ");
  using sloth = await Client.connect(server.port, "sloth"); // never reads again
  await server.waitFor("sloth joined from ");
  assertEquals(await flooder.until("* sloth joined"), ["* reader joined"]);
  let dropped = false;
  const drop = server.waitFor("sloth dropped: too slow").then(() => dropped = true);
  drop.catch(() => {}); // awaited below, unless an assertion fails first
  // 64 KiB of lines at a time, each batch read by the reader before the next:
  // the reader is never far behind, the sloth falls further behind each time.
  const lines = `${"z".repeat(1023)}\n`.repeat(64);
  const notices: string[] = [];
  for (let i = 0; i < 400 && !dropped; i++) {
    await flooder.send(`${lines}end ${i}\n`);
    const got = await reader.until(`flooder: end ${i}`);
    notices.push(...got.filter((line) => line.startsWith("* ")));
    assertEquals(got.filter((line) => line.startsWith("flooder: z")).length, 64);
  }
  await drop;
  assertEquals(await flooder.next(), "* sloth dropped: too slow");
  if (notices.length < 2) notices.push((await reader.next())!);
  assertEquals(notices, ["* sloth joined", "* sloth dropped: too slow"]);
  using bob = await Client.connect(server.port, "bob");
  assertEquals(await flooder.next(), "* bob joined");
  await flooder.send("hello bob\n");
  assertEquals(await bob.next(), "flooder: hello bob");
  assertEquals(await reader.until("flooder: hello bob"), ["* bob joined"]);
  assertEquals(await server.stop("SIGINT"), 0);
  // The slow client's connection was closed by the server: it reads to its end.
  let bytes = 0;
  const buffer = new Uint8Array(1 << 20);
  for (let n; (n = await within(sloth.conn.read(buffer), "the sloth's end")) !== null;) bytes += n;
  assert(bytes > 0);
});

Deno.test("chat.ts on SIGINT closes the connections still open and exits 0", async () => {
  await using server = await new ChatServer().start();
  using ada = await Client.connect(server.port, "ada");
  await server.waitFor("ada joined from ");
  using bob = await Client.connect(server.port, "bob");
  await server.waitFor("bob joined from ");
  assertEquals(await server.stop("SIGINT"), 0);
  assertEquals(await ada.until("* bob joined"), []);
  for (const client of [ada, bob]) {
    for (let line; (line = await client.next()) !== null;) {
      assert(line.startsWith("* "), `a notice, not ${line}`);
    }
  }
  assertEquals(server.log.slice(-4), ["SIGINT: shutting down", "ada left", "bob left", "Stopped"]);
});

Deno.test("chat.ts refuses a bad --limit with status 2", async () => {
  const { code, stderr } = await new Deno.Command(DENO, {
    args: [...FLAGS, "examples/chat.ts", "--limit", "0"],
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  assertEquals(code, 2);
  assertStringIncludes(
    new TextDecoder().decode(stderr),
    `--limit must be an integer >= 1, received "0"`,
  );
});

Deno.test(
  "chatRoom() over memory streams: a line goes to the others, not back to its sender",
  loopTest(function* () {
    const log: string[] = [];
    const room = chatRoom({ limit: 64, backlog: 1 << 20, log: (line) => log.push(line) });
    const [ada, adaConn] = memoryStreamPair({ maxChunk: 3 });
    const [bob, bobConn] = memoryStreamPair({ maxChunk: 3 });
    const heard: string[] = [];
    yield* taskGroup(function* (group) {
      for (const [conn, peer] of [[adaConn, "peer a"], [bobConn, "peer b"]] as const) {
        group.spawn(function* () {
          try {
            yield* room.session(conn, peer);
          } finally {
            conn.close(); // as serve() does
          }
        }());
      }
      const adaLines = new StreamReader(ada);
      const bobLines = new StreamReader(bob);
      const line = function* (who: string, reader: StreamReader) {
        heard.push(`${who} <- ${yield* reader.readLine()}`);
      };
      yield* line("ada", adaLines);
      yield* line("bob", bobLines);
      yield* ada.sendAll(encoder.encode("ada\n"));
      yield* waitAllTasksBlocked(); // ada has joined
      yield* bob.sendAll(encoder.encode("bob\r\n"));
      yield* line("ada", adaLines);
      yield* ada.sendAll(encoder.encode("hi b"));
      yield* ada.sendAll(encoder.encode("ob\n"));
      yield* line("bob", bobLines);
      yield* ada.shutdown();
      yield* line("bob", bobLines);
      yield* bob.shutdown();
      yield* line("ada", adaLines);
      yield* line("bob", bobLines);
    });
    assertEquals(heard, [
      "ada <- Welcome! Send your name, then lines of at most 64 bytes.",
      "bob <- Welcome! Send your name, then lines of at most 64 bytes.",
      "ada <- * bob joined",
      "bob <- ada: hi bob",
      "bob <- * ada left",
      "ada <- null",
      "bob <- null",
    ]);
    assertEquals(log, ["ada joined from peer a", "bob joined from peer b", "ada left", "bob left"]);
  }),
);
