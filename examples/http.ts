// Copyright 2026 the boucle authors. MIT license.
/**
 * An HTTP server on `Deno.serve` whose requests are coroutines: each request
 * runs as a task on ONE service loop (`loop.run({ until })`), submitted from
 * the promise handler with `loop.submit(..., { signal: req.signal })`, so the
 * task is cancelled when the client goes away. The work is bounded twice: a
 * `Semaphore` lets at most `--limit` requests work at once (the others wait
 * for a permit), and a `deadline` of `--deadline` ms covers the wait and the
 * work: past it the task is cancelled, its permit given back, and the client
 * gets 504. On SIGINT (Ctrl-C) or SIGTERM it cancels the work in flight
 * (those clients get 503), waits for the server to finish its responses and
 * exits with status 0.
 *
 * `GET /work?ms=N` asks for N ms of work; `sleep(ms)` stands for real work (a
 * query, a call to another service: `yield* fromPromise((signal) =>
 * fetch(url, { signal }))` is cancelled the same way).
 *
 * Run: deno run --allow-net=127.0.0.1 examples/http.ts [--port 8000] [--deadline 1000] [--limit 4]
 * Try: curl 'http://127.0.0.1:8000/work?ms=200'     (200 after 200 ms)
 *      curl 'http://127.0.0.1:8000/work?ms=5000'    (504 after 1 s)
 *      curl 'http://127.0.0.1:8000/work?ms=5000'    then Ctrl-C curl: "cancelled"
 *
 * `--port 0` takes a free port. The first line of stdout says which; then one
 * line when a request's task starts and one when it ends:
 *   Listening on http://127.0.0.1:8000/
 *   #1 GET /work?ms=200: started
 *   #1 200
 *   #2 GET /work?ms=5000: started
 *   #2 504: past the 1000 ms deadline
 *   #3 GET /work?ms=5000: started
 *   #3 cancelled: the client went away
 *   SIGINT: shutting down
 *   Stopped
 *
 * @module
 */

import { CancelledError, type Coroutine, deadline, Loop, sleep } from "../mod.ts";
import { Semaphore } from "../sync.ts";
import { flag, portFlag } from "./echo_args.ts";

/** `--<name>`, an integer >= `min`: exits with status 2 and a message if it is not. */
function intFlag(name: string, fallback: number, min: number): number {
  const text = flag(name, String(fallback));
  const value = Number(text);
  if (text === "" || !Number.isInteger(value) || value < min) {
    console.error(`--${name} must be an integer >= ${min}, received "${text}"`);
    Deno.exit(2);
  }
  return value;
}

const hostname = flag("hostname", "127.0.0.1");
const port = portFlag(8000);
const deadlineMs = intFlag("deadline", 1000, 0);
const limit = intFlag("limit", 4, 1);
/** The most work a request may ask for. */
const MAX_MS = 60_000;

const loop = new Loop();
const stopping = new AbortController();
// A service loop: it idles at no CPU between requests, until `stopping` aborts.
const running = loop.run({
  until: stopping.signal,
  onError: (error, task) => console.error(`${task.name} failed:`, error),
});
const permits = new Semaphore(limit, { name: "work" });

/** `ms` of work, once a permit is free. */
function* work(ms: number): Coroutine<string> {
  using _permit = yield* permits.acquire();
  yield* sleep(ms);
  return `worked ${ms} ms\n`;
}

/** One request's task: the work under the deadline, as a response. */
function* handle(id: number, what: string, ms: number): Coroutine<Response> {
  console.log(`#${id} ${what}: started`);
  try {
    const body = yield* deadline(work(ms), deadlineMs);
    console.log(`#${id} 200`);
    return new Response(body);
  } catch (error) {
    if (!(error instanceof DOMException && error.name === "TimeoutError")) throw error;
    console.log(`#${id} 504: past the ${deadlineMs} ms deadline`);
    return new Response(`past the ${deadlineMs} ms deadline\n`, { status: 504 });
  }
}

let requests = 0;

/** The promise side: checks the request, submits its task, waits for its response. */
async function handler(req: Request): Promise<Response> {
  const url = new URL(req.url);
  if (req.method !== "GET" || url.pathname !== "/work") {
    return new Response("try GET /work?ms=200\n", { status: 404 });
  }
  const ms = Number(url.searchParams.get("ms") ?? "0");
  if (!Number.isInteger(ms) || ms < 0 || ms > MAX_MS) {
    return new Response(`'ms' must be an integer from 0 to ${MAX_MS}\n`, { status: 400 });
  }
  if (stopping.signal.aborted) return new Response("shutting down\n", { status: 503 });
  const id = ++requests;
  const what = `${req.method} ${url.pathname}${url.search}`;
  try {
    return await loop.submit(handle(id, what, ms), { name: `#${id} ${what}`, signal: req.signal });
  } catch (error) {
    if (!(error instanceof CancelledError)) throw error; // Deno.serve answers 500
    if (req.signal.aborted) {
      console.log(`#${id} cancelled: the client went away`);
      return new Response(null, { status: 499 }); // nobody reads it
    }
    console.log(`#${id} 503: shutting down`);
    return new Response("shutting down\n", { status: 503 });
  }
}

const server = Deno.serve({
  hostname,
  port,
  onListen: (addr) => console.log(`Listening on http://${addr.hostname}:${addr.port}/`),
}, handler);

const stopped = Promise.withResolvers<void>();
const stops = (["SIGINT", "SIGTERM"] as const).map((signal) => {
  const stop = () => {
    console.log(`${signal}: shutting down`);
    stopped.resolve();
  };
  Deno.addSignalListener(signal, stop);
  return () => Deno.removeSignalListener(signal, stop);
});
try {
  await stopped.promise;
} finally {
  for (const remove of stops) remove();
}
stopping.abort(); // cancels the tasks in flight: their clients get 503
await server.shutdown(); // stops accepting, waits for the responses under way
await running;
console.log("Stopped");
