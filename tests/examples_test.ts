// Copyright 2026 the boucle authors. MIT license.
/**
 * Runs each example of the lesson as a subprocess, with no permissions, and
 * compares what it prints, line for line, with what the lesson prints. The
 * timed examples run with `--virtual` (boucle's virtual clock), so they end
 * at once; one test runs `sleep.ts` on the real clock.
 *
 * Needs run access to the deno binary: `--allow-run=deno` (the test task).
 */

import { assertEquals, assertGreaterOrEqual, assertLess } from "@std/assert";
import { DENO, ROOT } from "./_deno.ts";

interface Run {
  lines: string[];
  ms: number;
}

/** Runs `examples/<name>` with no permissions; fails on a non-zero exit or any stderr. */
async function runExample(name: string, ...flags: string[]): Promise<Run> {
  const start = performance.now();
  const { code, stdout, stderr } = await new Deno.Command(DENO, {
    args: ["run", "--quiet", "--no-prompt", `examples/${name}`, ...flags],
    cwd: ROOT,
    stdin: "null",
  }).output();
  const ms = performance.now() - start;
  const err = new TextDecoder().decode(stderr);
  assertEquals(code, 0, `${name} ${flags.join(" ")} exited with ${code}:\n${err}`);
  assertEquals(err, "", `${name} ${flags.join(" ")} wrote to stderr`);
  const out = new TextDecoder().decode(stdout);
  return { lines: out.split("\n").slice(0, -1), ms };
}

const PRINT_MESSAGES = ["foo", "aaa", "bbb", "bar", "ccc", "baz"];

Deno.test("run_task.ts drives complex_work() to its end by hand", async () => {
  const { lines } = await runExample("run_task.ts");
  assertEquals(lines, ["Hello", "World"]);
});

Deno.test("run_tasks.ts interleaves simple_print and ComplexWork by hand", async () => {
  const { lines } = await runExample("run_tasks.ts");
  assertEquals(lines, ["1", "Hello", "2", "3", "World"]);
});

Deno.test("run_tasks.ts --loop: boucle's Loop interleaves them as run_tasks does", async () => {
  const { lines } = await runExample("run_tasks.ts", "--loop");
  assertEquals(lines, ["1", "Hello", "2", "3", "World"]);
});

Deno.test("waiter.ts: wait_job finishes after count_up_to(waiter, 5) sets the Waiter", async () => {
  const { lines } = await runExample("waiter.ts");
  assertEquals(lines, ["start", "0", "1", "2", "3", "4", "finished"]);
});

Deno.test("sleep.ts --virtual interleaves the 1 s and 0.7 s print_messages at once", async () => {
  const { lines, ms } = await runExample("sleep.ts", "--virtual");
  assertEquals(lines, PRINT_MESSAGES);
  // On the real clock the program lasts 3 s: the virtual one must not wait.
  assertLess(ms, 3000);
});

Deno.test("gather.ts --virtual gathers the two print_messages, then runs the workflow", async () => {
  const { lines, ms } = await runExample("gather.ts", "--virtual");
  assertEquals(lines, [...PRINT_MESSAGES, "a", "c", "b", "d", "e", "f", "g"]);
  // On the real clock the program lasts 3 s + 5 s.
  assertLess(ms, 8000);
});

Deno.test("sleep.ts on the real clock prints in the same order and lasts 3 s", async () => {
  const { lines, ms } = await runExample("sleep.ts");
  assertEquals(lines, PRINT_MESSAGES);
  // The last sleep (foo's, after "baz") ends at 3000 ms; timers never fire early.
  assertGreaterOrEqual(ms, 3000);
});
