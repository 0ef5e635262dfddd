// Copyright 2026 the boucle authors. MIT license.
/**
 * A line-based chat server on `serve()`, `StreamReader` and `StreamWriter`.
 * A client first sends its name, then lines; each line goes to every other
 * client as `name: line`, and joins and departures as `* name joined`,
 * `* name left`. A line longer than `--limit` bytes gets its sender told why
 * and dropped; a client that vanishes mid-line is let go, its half line
 * unsent; one that stops reading until more than `--backlog` bytes wait for
 * it is dropped as too slow. On SIGINT (Ctrl-C) or SIGTERM it cancels the
 * server, which closes every connection, and exits with status 0.
 *
 * Run: deno run --allow-net=127.0.0.1 examples/chat.ts [--port 8080] [--hostname 127.0.0.1]
 *        [--limit 4096] [--backlog 1048576]
 * Try: nc 127.0.0.1 8080   (in two terminals)
 *
 * Logs (stdout), one line per event; the first says where it listens:
 *   Listening on 127.0.0.1:8080
 *   ada joined from 127.0.0.1:40112
 *   ada left
 *   SIGINT: shutting down
 *   Stopped
 *
 * How it is built. Each connection's handler reads lines with a
 * `StreamReader` in its own task, and a second task of the connection (in a
 * task group) drains its `StreamWriter` whenever a broadcast wakes it, so a
 * broadcast never waits on a slow client: it only appends to each writer's
 * buffer, and many lines go out in one write.
 *
 * Imported, it serves nothing: `chatRoom(options)` makes a room whose
 * `session(conn, peer)` handles one connection over any `ByteStream` (a
 * socket, or a memory stream of `@boucle/boucle/testing` in a test).
 *
 * @module
 */

import {
  CancelledError,
  type Coroutine,
  Event,
  IncompleteReadError,
  LimitOverrunError,
  Loop,
  serve,
  StreamReader,
  StreamWriter,
} from "../mod.ts";
import type { ByteStream } from "../stream.ts";
import { moveOnAfter, taskGroup } from "../scope.ts";
import { flag, portFlag } from "./echo_args.ts";

/** Options for `chatRoom()`. */
export interface ChatOptions {
  /** The most bytes in a line (a name too), newline not counted. */
  limit: number;
  /** The most bytes that may wait for a client before it is dropped as too slow. */
  backlog: number;
  /** Where the server's log lines go. */
  log: (line: string) => void;
}

/** A chat room: the clients connected, and the handler of one connection. */
export interface ChatRoom {
  /** Serves one connection until it goes; `peer` names it until it sends its name. */
  session(conn: ByteStream, peer: string): Coroutine<void>;
}

/** One connected, named client. */
interface Client {
  readonly name: string;
  readonly conn: ByteStream;
  readonly writer: StreamWriter;
  /** Set when the writer has something to drain. */
  readonly wake: Event;
  /** Why the server dropped it, once it did. */
  dropped: string | null;
}

const decoder = new TextDecoder();

/** Makes a chat room. */
export function chatRoom({ limit, backlog, log }: ChatOptions): ChatRoom {
  const clients = new Set<Client>();

  /** Sends `text` to every client but `from`; drops those too far behind. */
  function broadcast(from: Client | null, text: string): void {
    for (const client of clients) {
      if (client === from || client.dropped !== null) continue;
      client.writer.write(text);
      if (client.writer.buffered > backlog) {
        client.dropped = "dropped: too slow";
        client.conn.close(); // its tasks wake with an error and end
      } else {
        client.wake.set();
      }
    }
  }

  /** Reads a line within the limit: the line, or why the client is gone. */
  function* readLine(reader: StreamReader): Coroutine<{ line: string } | { gone: string }> {
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

  /**
   * Tells a client why it is dropped and half-closes, then reads what it
   * still sends until it closes too, for a second at most: closing with its
   * bytes unread would reset the connection, and the client might lose the
   * message.
   */
  function* refuse(reader: StreamReader, writer: StreamWriter): Coroutine<void> {
    writer.write(`! lines must be at most ${limit} bytes: goodbye\n`);
    yield* moveOnAfter(
      function* () {
        yield* writer.close();
        while ((yield* reader.read(65536)).length > 0);
      }(),
      1000,
    );
  }

  /** One connection: its name, then its lines, until it goes. */
  function* session(conn: ByteStream, peer: string): Coroutine<void> {
    const reader = new StreamReader(conn, { limit });
    const writer = new StreamWriter(conn);
    writer.write(`Welcome! Send your name, then lines of at most ${limit} bytes.\n`);
    yield* writer.drain();
    const first = yield* readLine(reader);
    if ("gone" in first) {
      if (first.gone.startsWith("dropped")) yield* refuse(reader, writer);
      log(`${peer} ${first.gone} before sending a name`);
      return;
    }
    const client: Client = {
      name: first.line.trim() || peer,
      conn,
      writer,
      wake: new Event(),
      dropped: null,
    };
    clients.add(client);
    log(`${client.name} joined from ${peer}`);
    broadcast(client, `* ${client.name} joined\n`);
    let why = "left";
    try {
      why = yield* taskGroup(function* (group) {
        group.spawn(sender(client), { name: `${client.name} sender` });
        try {
          for (;;) {
            const next = yield* readLine(reader);
            if ("gone" in next) {
              if (next.gone.startsWith("dropped")) yield* refuse(reader, writer);
              return next.gone;
            }
            broadcast(client, `${client.name}: ${next.line}\n`);
          }
        } finally {
          group.cancel(); // the sender
        }
      });
    } catch (error) {
      if (error instanceof CancelledError) throw error; // the server stops
      why = client.dropped ?? `lost (${error instanceof Error ? error.name : error})`;
    } finally {
      clients.delete(client);
      log(`${client.name} ${client.dropped ?? why}`);
      broadcast(client, `* ${client.name} ${client.dropped ?? why}\n`);
    }
  }

  return { session };
}

/** Drains the client's writer each time a broadcast wakes it. */
function* sender(client: Client): Coroutine<void> {
  for (;;) {
    yield* client.wake.wait();
    client.wake.clear();
    yield* client.writer.drain();
  }
}

/** `--<name>`, an integer >= 1: exits with status 2 and a message if it is not. */
function countFlag(name: string, fallback: number): number {
  const text = flag(name, String(fallback));
  const value = Number(text);
  if (text === "" || !Number.isInteger(value) || value < 1) {
    console.error(`--${name} must be an integer >= 1, received "${text}"`);
    Deno.exit(2);
  }
  return value;
}

if (import.meta.main) {
  const hostname = flag("hostname", "127.0.0.1");
  const port = portFlag(8080);
  const room = chatRoom({
    limit: countFlag("limit", 4096),
    backlog: countFlag("backlog", 1 << 20),
    log: (line) => console.log(line),
  });
  const loop = new Loop();
  const server = loop.addTask(
    serve({
      hostname,
      port,
      onListen: (addr) => console.log(`Listening on ${addr.hostname}:${addr.port}`),
    }, (conn) => room.session(conn, `${conn.remoteAddr.hostname}:${conn.remoteAddr.port}`)),
    { name: "chat server" },
  );
  const stops = (["SIGINT", "SIGTERM"] as const).map((signal) => {
    const stop = () => {
      console.log(`${signal}: shutting down`);
      server.cancel(signal);
    };
    Deno.addSignalListener(signal, stop);
    return () => Deno.removeSignalListener(signal, stop);
  });
  try {
    await loop.run();
  } finally {
    for (const remove of stops) remove();
  }
  console.log("Stopped");
}
