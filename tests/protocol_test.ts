// Copyright 2026 the boucle authors. MIT license.
/**
 * The chat server's protocol tested over memory streams (testing.ts), with
 * no socket: the real handler, `chatRoom()` of `examples/chat.ts`, under
 * every fragmentation (`maxChunk`), latency and back-pressure
 * (`bufferSize`), on virtual time. Each connection is served as `serve()`
 * would: `room.session(conn, peer)`, then the connection is closed.
 *
 * The rules: a client gets a welcome, sends its name, then lines; each line
 * goes to every other client as `name: line`, joins and departures as
 * `* name joined` / `* name left`; a line longer than the limit gets its
 * sender told why and dropped; a client that ends mid-line is let go, its
 * half line unsent; one whose connection fails (a reset) is let go as lost;
 * one that sends no name never joins the room. The server says nothing to
 * the client when it joins, so a test knows a client is in from the
 * server's log (`name joined from peer`).
 *
 * 100 generated scenarios: bob joins, then alice joins and sends random
 * lines (from a seeded PRNG) in random pieces, then ends her stream; bob
 * leaves when he sees her go. What each side receives, and the server's
 * log, is checked against what the rules say. One scenario's full event
 * log, with the loop's time, is checked to be the same 20 runs in a row;
 * hand-written ones cover a reset, a client that leaves before its name,
 * an empty name, and a client dropped for not reading.
 */
import { assertEquals } from "@std/assert";
import { type Coroutine, gather, Loop } from "../loop.ts";
import { type ByteStream, StreamReader, StreamWriter } from "../stream.ts";
import { Event } from "../sync.ts";
import {
  loopTest,
  memoryStreamPair,
  type MemoryStreamPairOptions,
  waitAllTasksBlocked,
} from "../testing.ts";
import { type ChatRoom, chatRoom } from "../examples/chat.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// ---------------------------------------------------------------------------
// The server under test: examples/chat.ts's room, one session per connection

/** A chat room, its log, and a way to wait until a client has joined. */
class Server {
  readonly room: ChatRoom;
  /** The room's log lines, as chat.ts would print them. */
  readonly lines: string[] = [];
  readonly #joined = new Map<string, Event>();

  /** `limit` and `backlog` as in `chatRoom()`; each log line also goes to `log` with the loop's time. */
  constructor(log: string[], limit: number, backlog = 1 << 20) {
    this.room = chatRoom({
      limit,
      backlog,
      log: (line) => {
        this.lines.push(line);
        log.push(`${Loop.current.time()} server: ${line}`);
        const joined = / joined from /.exec(line);
        if (joined !== null) this.#event(line.slice(0, joined.index)).set();
      },
    });
  }

  #event(name: string): Event {
    let event = this.#joined.get(name);
    if (event === undefined) this.#joined.set(name, event = new Event({ name: `${name} joined` }));
    return event;
  }

  /** Waits until the room has logged `name` joining. */
  *joined(name: string): Coroutine<void> {
    yield* this.#event(name).wait();
  }

  /** Serves `conn` as `serve()` does: the room's session, then the connection closed. */
  *serve(conn: ByteStream, peer: string): Coroutine<void> {
    try {
      yield* this.room.session(conn, peer);
    } finally {
      conn.close();
    }
  }
}

// ---------------------------------------------------------------------------
// Scenarios

/** A small PRNG (mulberry32): the same numbers for the same seed. */
function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n); // an integer in [0, n)
  };
}

/** What alice sends: lines (each with its ending), then maybe a last one with no newline. */
interface Script {
  lines: { text: string; ending: "\n" | "\r\n" }[];
  tail: string;
}

const LIMIT = 16;
const WELCOME = `Welcome! Send your name, then lines of at most ${LIMIT} bytes.`;
const GOODBYE = `! lines must be at most ${LIMIT} bytes: goodbye`;
const ALPHABET = ["a", "b", "z", " ", "\t", "é", "日", "🙂"]; // 1 to 4 bytes each

function randomScript(random: (n: number) => number): Script {
  const lines: Script["lines"] = [];
  const count = random(13);
  while (lines.length < count) {
    let text = "";
    // Mostly short lines; one in six may run past the limit.
    const length = random(6) === 0 ? random(LIMIT + 4) : random(6);
    while (text.length < length) text += ALPHABET[random(8)];
    lines.push({ text, ending: random(5) === 0 ? "\r\n" : "\n" });
  }
  let tail = "";
  if (random(3) === 0) {
    const length = 1 + random(LIMIT + 2);
    while (tail.length < length) tail += "xy"[random(2)];
  }
  return { lines, tail };
}

/** What the rules say each side receives, and the server's log. */
function expected(script: Script): { alice: string[]; bob: string[]; server: string[] } {
  const bob = [WELCOME, "* alice joined"];
  let why: string | null = null;
  for (const { text, ending } of script.lines) {
    if (encoder.encode(text + ending).length - 1 > LIMIT) {
      why = `dropped: line over ${LIMIT} bytes`;
      break;
    }
    bob.push(`alice: ${text}`);
  }
  if (why === null && script.tail !== "") {
    why = script.tail.length > LIMIT ? `dropped: line over ${LIMIT} bytes` : "vanished mid-line";
  }
  why ??= "left";
  bob.push(`* alice ${why}`);
  const alice = [WELCOME];
  if (why.startsWith("dropped")) alice.push(GOODBYE);
  return {
    alice,
    bob,
    server: ["bob joined from peer 1", "alice joined from peer 2", `alice ${why}`, "bob left"],
  };
}

/** Reads lines until end of stream, logging each with the loop's time. */
function* readAll(
  reader: StreamReader,
  who: string,
  log: string[],
  got: string[],
): Coroutine<void> {
  for (let line; (line = yield* reader.readLine()) !== null;) {
    got.push(line);
    log.push(`${Loop.current.time()} ${who} got ${JSON.stringify(line)}`);
  }
  log.push(`${Loop.current.time()} ${who} end of stream`);
}

/**
 * Runs one scenario: a server session per client over a memory stream pair
 * each, bob (peer 1) joining first, alice (peer 2) sending `script` in
 * pieces of 1 to 8 bytes once the server has logged bob's join. Returns
 * what each side received and the server's log; `log` gets every event
 * with its time.
 */
function* chat(
  script: Script,
  options: MemoryStreamPairOptions,
  seed: number,
  log: string[],
): Coroutine<{ alice: string[]; bob: string[]; server: string[] }> {
  const random = prng(seed ^ 0x9e3779b9); // the pieces' sizes
  const server = new Server(log, LIMIT);
  const [bobEnd, bobConn] = memoryStreamPair(options);
  const [aliceEnd, aliceConn] = memoryStreamPair(options);
  const got = { alice: [] as string[], bob: [] as string[] };

  function* bob(): Coroutine<void> {
    const reader = new StreamReader(bobEnd);
    const writer = new StreamWriter(bobEnd);
    got.bob.push((yield* reader.readLine())!); // welcome
    writer.write("bob\n");
    yield* writer.drain();
    for (let line; (line = yield* reader.readLine()) !== null;) {
      got.bob.push(line);
      log.push(`${Loop.current.time()} bob got ${JSON.stringify(line)}`);
      if (line.startsWith("* alice ") && line !== "* alice joined") yield* writer.close();
    }
    log.push(`${Loop.current.time()} bob end of stream`);
    bobEnd.close();
  }

  function* alice(): Coroutine<void> {
    yield* server.joined("bob");
    const reader = new StreamReader(aliceEnd);
    got.alice.push((yield* reader.readLine())!); // welcome
    const bytes = encoder.encode(
      "alice\n" + script.lines.map(({ text, ending }) => text + ending).join("") + script.tail,
    );
    function* send(): Coroutine<void> {
      for (let at = 0; at < bytes.length;) {
        const piece = bytes.subarray(at, at += 1 + random(8));
        yield* aliceEnd.sendAll(piece);
        log.push(`${Loop.current.time()} alice sent ${piece.length} bytes`);
      }
      yield* aliceEnd.shutdown();
    }
    yield* gather(send(), readAll(reader, "alice", log, got.alice));
    aliceEnd.close();
  }

  yield* gather(server.serve(bobConn, "peer 1"), server.serve(aliceConn, "peer 2"), bob(), alice());
  return { ...got, server: server.lines };
}

// ---------------------------------------------------------------------------
// Tests

const LATENCIES = [0, 1, 5];
const BUFFER_SIZES = [Infinity, 7];

for (let i = 0; i < 100; i++) {
  const seed = 1000 + i;
  const options = {
    maxChunk: 1 + (i % 8),
    latency: LATENCIES[Math.floor(i / 8) % 3]!,
    bufferSize: BUFFER_SIZES[Math.floor(i / 24) % 2]!,
  };
  const script = randomScript(prng(seed));
  Deno.test(
    `chat lines arrive by the rules: seed ${seed}, maxChunk ${options.maxChunk}, latency ${options.latency}, bufferSize ${options.bufferSize}`,
    loopTest(function* () {
      const got = yield* chat(script, options, seed, []);
      assertEquals(got, expected(script));
    }),
  );
}

Deno.test("a chat scenario over maxChunk 1, latency 5 and bufferSize 4 gives the same event log 20 runs in a row", async () => {
  const options = { maxChunk: 1, latency: 5, bufferSize: 4 };
  const script: Script = {
    lines: [
      { text: "hi", ending: "\n" },
      { text: "日本 🙂", ending: "\r\n" },
      { text: "a".repeat(LIMIT), ending: "\n" }, // exactly the limit: it passes
      { text: "b".repeat(LIMIT + 1), ending: "\n" }, // one byte over: alice is dropped
      { text: "never sent", ending: "\n" },
    ],
    tail: "",
  };
  const logs: string[][] = [];
  for (let run = 0; run < 20; run++) {
    const log: string[] = [];
    await loopTest(function* () {
      assertEquals(yield* chat(script, options, 7, log), expected(script));
    })();
    logs.push(log);
  }
  for (const log of logs) assertEquals(log, logs[0]);
  assertEquals(logs[0], [
    "80 server: bob joined from peer 1", // each byte of the welcome waits for room in a 4-byte buffer
    "155 alice sent 8 bytes", // her name and more, once she has read her welcome
    "160 server: alice joined from peer 2",
    "160 alice sent 3 bytes",
    "170 alice sent 6 bytes",
    "170 alice sent 2 bytes",
    "175 alice sent 3 bytes",
    "175 alice sent 2 bytes",
    '180 bob got "* alice joined"',
    "185 alice sent 8 bytes",
    "190 alice sent 1 bytes",
    "190 alice sent 3 bytes",
    '195 bob got "alice: hi"',
    "200 alice sent 6 bytes",
    "210 alice sent 7 bytes",
    '215 bob got "alice: 日本 🙂"',
    "215 alice sent 5 bytes",
    "220 alice sent 4 bytes",
    '245 bob got "alice: aaaaaaaaaaaaaaaa"',
    '275 alice got "! lines must be at most 16 bytes: goodbye"',
    "275 alice end of stream", // the server half-closed; alice is still sending
    "275 alice sent 7 bytes",
    "275 alice sent 3 bytes",
    "280 server: alice dropped: line over 16 bytes", // alice's end of stream reached it
    '325 bob got "* alice dropped: line over 16 bytes"',
    "325 server: bob left",
    "325 bob end of stream",
  ]);
});

/** Reads one line from `reader` and logs it, with the loop's time, as `who` got it. */
function* expectLine(reader: StreamReader, who: string, log: string[]): Coroutine<void> {
  const line = yield* reader.readLine();
  log.push(`${Loop.current.time()} ${who} got ${JSON.stringify(line)}`);
}

Deno.test(
  "a client whose connection resets mid-line is let go as lost, and the room hears it",
  loopTest(function* (loop) {
    const log: string[] = [];
    const server = new Server(log, LIMIT);
    const [bob, bobConn] = memoryStreamPair({ maxChunk: 2, latency: 3 });
    const [alice, aliceConn] = memoryStreamPair({ maxChunk: 2, latency: 3 });
    const sessions = loop.addTask(
      gather(server.serve(bobConn, "peer 1"), server.serve(aliceConn, "peer 2")),
    );
    const bobReader = new StreamReader(bob);
    const aliceReader = new StreamReader(alice);
    yield* expectLine(bobReader, "bob", log);
    yield* bob.sendAll(encoder.encode("bob\n"));
    yield* server.joined("bob");
    yield* expectLine(aliceReader, "alice", log);
    yield* alice.sendAll(encoder.encode("alice\n"));
    yield* expectLine(bobReader, "bob", log);
    yield* alice.sendAll(encoder.encode("hi\n"));
    yield* expectLine(bobReader, "bob", log);
    yield* alice.sendAll(encoder.encode("half a li"));
    alice.reset();
    yield* expectLine(bobReader, "bob", log);
    yield* bob.shutdown();
    yield* expectLine(bobReader, "bob", log);
    yield* sessions;
    bob.close();
    assertEquals(log, [
      `3 bob got "${WELCOME}"`,
      "6 server: bob joined from peer 1",
      `6 alice got "${WELCOME}"`, // there at 3, read once bob is in
      "9 server: alice joined from peer 2",
      '12 bob got "* alice joined"',
      '18 bob got "alice: hi"',
      "18 server: alice lost (ConnectionReset)", // a reset is seen at once, by the next recv()
      '21 bob got "* alice lost (ConnectionReset)"',
      "21 server: bob left", // with no bytes in flight, end of stream arrives at once
      "21 bob got null",
    ]);
  }),
);

Deno.test(
  "a client that leaves before sending a name never joins the room",
  loopTest(function* (loop) {
    const log: string[] = [];
    const server = new Server(log, LIMIT);
    const [bob, bobConn] = memoryStreamPair({ maxChunk: 1, latency: 2 });
    const [client, conn] = memoryStreamPair({ maxChunk: 1, latency: 2 });
    const bobSession = loop.addTask(server.serve(bobConn, "peer 1"));
    const bobReader = new StreamReader(bob);
    yield* expectLine(bobReader, "bob", log);
    yield* bob.sendAll(encoder.encode("bob\n"));
    yield* server.joined("bob");
    const handler = loop.addTask(server.serve(conn, "peer 2"));
    const reader = new StreamReader(client);
    yield* expectLine(reader, "client", log);
    yield* client.shutdown();
    yield* expectLine(reader, "client", log);
    yield* handler;
    client.close();
    yield* bob.shutdown();
    yield* expectLine(bobReader, "bob", log); // no "* peer 2 ..." before the end
    yield* bobSession;
    bob.close();
    assertEquals(log, [
      `2 bob got "${WELCOME}"`,
      "4 server: bob joined from peer 1",
      `6 client got "${WELCOME}"`,
      "6 server: peer 2 left before sending a name", // end of stream takes no latency
      "6 client got null",
      "6 server: bob left",
      "6 bob got null",
    ]);
  }),
);

Deno.test(
  "a client that sends an empty name is called by its peer",
  loopTest(function* (loop) {
    const log: string[] = [];
    const server = new Server(log, LIMIT);
    const [bob, bobConn] = memoryStreamPair({ maxChunk: 3, latency: 1 });
    const [anon, anonConn] = memoryStreamPair({ maxChunk: 3, latency: 1 });
    const sessions = loop.addTask(
      gather(server.serve(bobConn, "peer 1"), server.serve(anonConn, "peer 2")),
    );
    const bobReader = new StreamReader(bob);
    const anonReader = new StreamReader(anon);
    yield* expectLine(bobReader, "bob", log);
    yield* bob.sendAll(encoder.encode("bob\n"));
    yield* server.joined("bob");
    yield* expectLine(anonReader, "anon", log);
    yield* anon.sendAll(encoder.encode(" \t\r\nhi\n"));
    yield* expectLine(bobReader, "bob", log);
    yield* expectLine(bobReader, "bob", log);
    yield* anon.shutdown();
    yield* expectLine(bobReader, "bob", log);
    yield* expectLine(anonReader, "anon", log);
    yield* bob.shutdown();
    yield* expectLine(bobReader, "bob", log);
    yield* sessions;
    bob.close();
    anon.close();
    assertEquals(log, [
      `1 bob got "${WELCOME}"`,
      "2 server: bob joined from peer 1",
      `2 anon got "${WELCOME}"`,
      "3 server: peer 2 joined from peer 2",
      '4 bob got "* peer 2 joined"',
      '4 bob got "peer 2: hi"',
      "4 server: peer 2 left",
      '5 bob got "* peer 2 left"',
      "5 anon got null",
      "5 server: bob left",
      "5 bob got null",
    ]);
  }),
);

Deno.test(
  "a client that stops reading is dropped as too slow once its backlog is full, and the room hears it",
  loopTest(function* (loop) {
    const log: string[] = [];
    const server = new Server(log, LIMIT, 40);
    const [sloth, slothConn] = memoryStreamPair({ bufferSize: 8, latency: 1 });
    const [alice, aliceConn] = memoryStreamPair({ latency: 1 });
    const sessions = loop.addTask(
      gather(server.serve(slothConn, "peer 1"), server.serve(aliceConn, "peer 2")),
    );
    const slothReader = new StreamReader(sloth);
    const aliceReader = new StreamReader(alice);
    yield* expectLine(slothReader, "sloth", log);
    yield* sloth.sendAll(encoder.encode("sloth\n"));
    yield* server.joined("sloth");
    yield* expectLine(aliceReader, "alice", log);
    yield* alice.sendAll(encoder.encode("alice\n"));
    yield* server.joined("alice");
    yield* waitAllTasksBlocked(); // 8 bytes of "* alice joined" fill the sloth's buffer
    // The sloth reads no more: alice's lines wait in its writer, past its backlog.
    yield* alice.sendAll(encoder.encode("0123456789\n".repeat(3)));
    yield* expectLine(aliceReader, "alice", log);
    yield* alice.shutdown();
    yield* expectLine(aliceReader, "alice", log);
    yield* sessions;
    alice.close();
    let text = "";
    for (let chunk; (chunk = yield* sloth.recv(65536)).length > 0;) text += decoder.decode(chunk);
    log.push(`${loop.time()} sloth got ${JSON.stringify(text)}, then end of stream`);
    sloth.close();
    assertEquals(log, [
      `8 sloth got "${WELCOME}"`, // 8 bytes a millisecond
      "9 server: sloth joined from peer 1",
      `9 alice got "${WELCOME}"`,
      "10 server: alice joined from peer 2",
      "11 server: sloth dropped: too slow", // 7 + 18 + 18 bytes wait for it: over 40
      '12 alice got "* sloth dropped: too slow"',
      "12 server: alice left",
      "12 alice got null",
      '12 sloth got "* alice ", then end of stream',
    ]);
  }),
);
