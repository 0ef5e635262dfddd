// Copyright 2026 the boucle authors. MIT license.
/**
 * A line protocol tested over memory streams (testing.ts), with no socket:
 * the chat server's line handling, under every fragmentation (`maxChunk`),
 * latency and back-pressure (`bufferSize`), on virtual time.
 *
 * `examples/chat.ts` is a script (it serves as soon as it is imported), so
 * its per-connection handler is restated here over `ByteStream`, line for
 * line the same rules: a client sends its name, then lines; each line goes
 * to every other client as `name: line`, joins and departures as
 * `* name joined` / `* name left`; a line longer than the limit gets its
 * sender told why and dropped; a client that ends mid-line is let go, its
 * half line unsent, and one whose connection fails (a reset) is let go as
 * lost. One thing is added so that a client knows it is in the room: the
 * server answers the name with `* you are name; n others here`.
 *
 * 100 generated scenarios: bob joins, then alice joins and sends random
 * lines (from a seeded PRNG) in random pieces, then ends her stream; bob
 * leaves when he sees her go. What each side receives is checked against
 * what the rules say. One scenario's full event log, with the loop's time,
 * is checked to be the same 20 runs in a row; two hand-written ones cover a
 * reset and a client that leaves before its name.
 */
import { assertEquals } from "@std/assert";
import { CancelledError, type Coroutine, gather, Loop } from "../loop.ts";
import { moveOnAfter, taskGroup } from "../scope.ts";
import {
  type ByteStream,
  IncompleteReadError,
  LimitOverrunError,
  StreamReader,
  StreamWriter,
} from "../stream.ts";
import { Event } from "../sync.ts";
import { loopTest, memoryStreamPair, type MemoryStreamPairOptions } from "../testing.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// ---------------------------------------------------------------------------
// The handler under test: examples/chat.ts's session, over any ByteStream

/** One connected, named client. */
interface Member {
  readonly name: string;
  readonly writer: StreamWriter;
  /** Set when the writer has something to drain. */
  readonly wake: Event;
}

/** The clients of one server, and its log (the lines chat.ts prints). */
class Room {
  readonly members: Set<Member> = new Set();
  readonly limit: number;
  readonly #log: (line: string) => void;

  constructor(limit: number, log: (line: string) => void) {
    this.limit = limit;
    this.#log = log;
  }

  log(line: string): void {
    this.#log(line);
  }

  /** Sends `text` to every member but `from`. */
  broadcast(from: Member | null, text: string): void {
    for (const member of this.members) {
      if (member === from) continue;
      member.writer.write(text);
      member.wake.set();
    }
  }
}

/** Reads a line within the limit: the line, or why the client is gone. */
function* readChatLine(
  reader: StreamReader,
  limit: number,
): Coroutine<{ line: string } | { gone: string }> {
  try {
    const bytes = yield* reader.readUntil("\n");
    const end = bytes.length - (bytes.length > 1 && bytes[bytes.length - 2] === 13 ? 2 : 1);
    return { line: decoder.decode(bytes.subarray(0, end)) };
  } catch (error) {
    if (error instanceof IncompleteReadError) {
      return { gone: error.partial.length > 0 ? "vanished mid-line" : "left" };
    }
    if (error instanceof LimitOverrunError) return { gone: `dropped: line over ${limit} bytes` };
    throw error;
  }
}

/** Drains the member's writer each time a broadcast wakes it. */
function* sender(member: Member): Coroutine<void> {
  for (;;) {
    yield* member.wake.wait();
    member.wake.clear();
    yield* member.writer.drain();
  }
}

/** Tells a client why it is dropped, half-closes, and reads until it closes (1 s at most). */
function* refuse(reader: StreamReader, writer: StreamWriter, limit: number): Coroutine<void> {
  writer.write(`! lines must be at most ${limit} bytes: goodbye\n`);
  yield* moveOnAfter(
    function* () {
      yield* writer.close();
      while ((yield* reader.read(65536)).length > 0);
    }(),
    1000,
  );
}

/** One connection: its name, then its lines, until it goes; then the connection is closed. */
function* session(conn: ByteStream, room: Room): Coroutine<void> {
  const limit = room.limit;
  const reader = new StreamReader(conn, { limit });
  const writer = new StreamWriter(conn);
  try {
    writer.write(`Welcome! Send your name, then lines of at most ${limit} bytes.\n`);
    yield* writer.drain();
    const first = yield* readChatLine(reader, limit);
    if ("gone" in first) {
      if (first.gone.startsWith("dropped")) yield* refuse(reader, writer, limit);
      room.log(`a client ${first.gone} before sending a name`);
      return;
    }
    const member: Member = { name: first.line.trim(), writer, wake: new Event() };
    writer.write(`* you are ${member.name}; ${room.members.size} others here\n`);
    yield* writer.drain();
    room.members.add(member);
    room.log(`${member.name} joined`);
    room.broadcast(member, `* ${member.name} joined\n`);
    let why = "left";
    try {
      why = yield* taskGroup(function* (group) {
        group.spawn(sender(member), { name: `${member.name} sender` });
        try {
          for (;;) {
            const next = yield* readChatLine(reader, limit);
            if ("gone" in next) {
              if (next.gone.startsWith("dropped")) yield* refuse(reader, writer, limit);
              return next.gone;
            }
            room.broadcast(member, `${member.name}: ${next.line}\n`);
          }
        } finally {
          group.cancel(); // the sender
        }
      });
    } catch (error) {
      if (error instanceof CancelledError) throw error; // the server stops
      why = `lost (${error instanceof Error ? error.name : error})`;
    } finally {
      room.members.delete(member);
      room.log(`${member.name} ${why}`);
      room.broadcast(member, `* ${member.name} ${why}\n`);
    }
  } finally {
    conn.close();
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
  const bob = [
    `Welcome! Send your name, then lines of at most ${LIMIT} bytes.`,
    "* you are bob; 0 others here",
    "* alice joined",
  ];
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
  const alice = [
    `Welcome! Send your name, then lines of at most ${LIMIT} bytes.`,
    "* you are alice; 1 others here",
  ];
  if (why.startsWith("dropped")) alice.push(`! lines must be at most ${LIMIT} bytes: goodbye`);
  return { alice, bob, server: ["bob joined", "alice joined", `alice ${why}`, "bob left"] };
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
 * each, bob joining first, alice sending `script` in pieces of 1 to 8 bytes.
 * Returns what each side received; `log` gets every event with its time.
 */
function* chat(
  script: Script,
  options: MemoryStreamPairOptions,
  seed: number,
  log: string[],
): Coroutine<{ alice: string[]; bob: string[]; server: string[] }> {
  const random = prng(seed ^ 0x9e3779b9); // the pieces' sizes
  const server: string[] = [];
  const room = new Room(LIMIT, (line) => {
    server.push(line);
    log.push(`${Loop.current.time()} server: ${line}`);
  });
  const [bobEnd, bobConn] = memoryStreamPair(options);
  const [aliceEnd, aliceConn] = memoryStreamPair(options);
  const bobIn = new Event({ name: "bob is in" });
  const got = { alice: [] as string[], bob: [] as string[] };

  function* bob(): Coroutine<void> {
    const reader = new StreamReader(bobEnd);
    const writer = new StreamWriter(bobEnd);
    got.bob.push((yield* reader.readLine())!); // welcome
    writer.write("bob\n");
    yield* writer.drain();
    got.bob.push((yield* reader.readLine())!); // ack
    log.push(`${Loop.current.time()} bob is in`);
    bobIn.set();
    for (let line; (line = yield* reader.readLine()) !== null;) {
      got.bob.push(line);
      log.push(`${Loop.current.time()} bob got ${JSON.stringify(line)}`);
      if (line.startsWith("* alice ") && line !== "* alice joined") yield* writer.close();
    }
    log.push(`${Loop.current.time()} bob end of stream`);
    bobEnd.close();
  }

  function* alice(): Coroutine<void> {
    yield* bobIn.wait();
    const reader = new StreamReader(aliceEnd);
    got.alice.push((yield* reader.readLine())!); // welcome
    yield* aliceEnd.sendAll(encoder.encode("alice\n"));
    got.alice.push((yield* reader.readLine())!); // ack
    const bytes = encoder.encode(
      script.lines.map(({ text, ending }) => text + ending).join("") + script.tail,
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

  yield* gather(session(bobConn, room), session(aliceConn, room), bob(), alice());
  return { ...got, server };
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
    "115 server: bob joined", // each byte of the welcome waits for room in a 4-byte buffer
    "120 bob is in",
    "235 server: alice joined",
    "245 alice sent 8 bytes",
    "250 alice sent 3 bytes",
    '255 bob got "* alice joined"',
    "260 alice sent 6 bytes",
    "260 alice sent 2 bytes",
    "265 alice sent 3 bytes",
    "265 alice sent 2 bytes",
    '270 bob got "alice: hi"',
    "275 alice sent 8 bytes",
    "280 alice sent 1 bytes",
    "280 alice sent 3 bytes",
    '290 bob got "alice: 日本 🙂"',
    "290 alice sent 6 bytes",
    "300 alice sent 7 bytes",
    "305 alice sent 5 bytes",
    '320 bob got "alice: aaaaaaaaaaaaaaaa"',
    "355 alice sent 4 bytes",
    '360 alice got "! lines must be at most 16 bytes: goodbye"',
    "360 alice end of stream", // the server half-closed; alice is still sending
    "360 alice sent 4 bytes",
    "365 server: alice dropped: line over 16 bytes", // alice's end of stream reached it
    '410 bob got "* alice dropped: line over 16 bytes"',
    "410 server: bob left",
    "410 bob end of stream",
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
    const room = new Room(LIMIT, (line) => log.push(`${loop.time()} server: ${line}`));
    const [bob, bobConn] = memoryStreamPair({ maxChunk: 2, latency: 3 });
    const [alice, aliceConn] = memoryStreamPair({ maxChunk: 2, latency: 3 });
    const sessions = loop.addTask(gather(session(bobConn, room), session(aliceConn, room)));
    const bobReader = new StreamReader(bob);
    const aliceReader = new StreamReader(alice);
    yield* expectLine(bobReader, "bob", log);
    yield* bob.sendAll(encoder.encode("bob\n"));
    yield* expectLine(bobReader, "bob", log);
    yield* expectLine(aliceReader, "alice", log);
    yield* alice.sendAll(encoder.encode("alice\n"));
    yield* expectLine(aliceReader, "alice", log);
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
      `3 bob got "Welcome! Send your name, then lines of at most ${LIMIT} bytes."`,
      "6 server: bob joined",
      '9 bob got "* you are bob; 0 others here"',
      `9 alice got "Welcome! Send your name, then lines of at most ${LIMIT} bytes."`, // there at 3
      "12 server: alice joined",
      '15 alice got "* you are alice; 1 others here"',
      '15 bob got "* alice joined"',
      '21 bob got "alice: hi"',
      "21 server: alice lost (ConnectionReset)", // a reset is seen at once, by the next recv()
      '24 bob got "* alice lost (ConnectionReset)"',
      "24 server: bob left", // with no bytes in flight, end of stream arrives at once
      "24 bob got null",
    ]);
  }),
);

Deno.test(
  "a client that leaves before sending a name never joins the room",
  loopTest(function* (loop) {
    const log: string[] = [];
    const room = new Room(LIMIT, (line) => log.push(`${loop.time()} server: ${line}`));
    const [client, conn] = memoryStreamPair({ maxChunk: 1, latency: 2 });
    const handler = loop.addTask(session(conn, room));
    const reader = new StreamReader(client);
    yield* expectLine(reader, "client", log);
    yield* client.shutdown();
    yield* expectLine(reader, "client", log);
    yield* handler;
    client.close();
    assertEquals(room.members.size, 0);
    assertEquals(log, [
      `2 client got "Welcome! Send your name, then lines of at most ${LIMIT} bytes."`,
      "2 server: a client left before sending a name", // end of stream takes no latency
      "2 client got null",
    ]);
  }),
);
