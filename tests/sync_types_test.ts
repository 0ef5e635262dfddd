// Copyright 2026 the boucle authors. MIT license.
// `using _ = lock.acquire();` without `yield*` must not type-check. The
// fixtures that prove it are written at run time into a temporary directory
// (a plain .ts file in the tree would break `deno check` of the project) and
// checked with `deno check` in a subprocess, against the project's
// compiler options.
import { assert, assertEquals, assertFalse, assertStringIncludes } from "@std/assert";
import { DENO, ROOT } from "./_deno.ts";

/** A directory the test task may write (`--allow-write=/tmp/boucle-test-sockets`). */
const SCRATCH = "/tmp/boucle-test-sockets";
const SYNC_URL = new URL("../sync.ts", import.meta.url).href;
const LOOP_URL = new URL("../loop.ts", import.meta.url).href;

/**
 * Runs `deno check` (or, for `"run"`, `deno run` of plain JavaScript) on
 * `source` written to a temporary file; returns its outcome.
 */
async function check(
  source: string,
  command: "check" | "run" = "check",
): Promise<{ success: boolean; output: string }> {
  await Deno.mkdir(SCRATCH, { recursive: true });
  const dir = await Deno.makeTempDir({ dir: SCRATCH, prefix: "types-" });
  try {
    const file = `${dir}/fixture.${command === "check" ? "ts" : "js"}`;
    await Deno.writeTextFile(file, source);
    const { success, stdout, stderr } = await new Deno.Command(DENO, {
      args: [command, "--quiet", `--config=${ROOT}/deno.json`, file],
      stdin: "null",
      env: { NO_COLOR: "1" },
    }).output();
    const decoder = new TextDecoder();
    return { success, output: decoder.decode(stdout) + decoder.decode(stderr) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const HEADER = `import { Condition, Lock, Semaphore } from "${SYNC_URL}";
import { type Coroutine } from "${LOOP_URL}";
const lock = new Lock();
const sem = new Semaphore(2);
const condition = new Condition();
`;

// The faulty lines are lines 7, 8 and 9 of this fixture.
const FORGOT = `${HEADER}function* forgot(): Coroutine<void> {
  using _lock = lock.acquire();
  using _permit = sem.acquire();
  using _held = condition.acquire();
  yield;
}
forgot();
`;

const CAREFUL = `${HEADER}function* careful(): Coroutine<void> {
  using _lock = yield* lock.acquire();
  using _permit = yield* sem.acquire();
  const guard: Disposable = yield* condition.acquire();
  guard[Symbol.dispose]();
}
careful();
`;

// The same mistake in plain JavaScript, where nothing checks types.
const FORGOT_JS = `import { Loop } from "${LOOP_URL}";
import { Lock } from "${SYNC_URL}";
const lock = new Lock();
function* forgot() {
  using _lock = lock.acquire();
  yield;
}
try {
  await new Loop().runTask(forgot());
} catch (error) {
  console.log(\`\${error.name}: locked \${lock.locked}\`);
}
`;

Deno.test("using acquire() without yield* is a type error for Lock, Semaphore and Condition, and a TypeError in JavaScript; the guard yield* returns type-checks", async () => {
  // All at once: each is a few seconds of type-checking.
  const [forgot, careful, js] = await Promise.all([
    check(FORGOT),
    check(CAREFUL),
    check(FORGOT_JS, "run"),
  ]);
  assertEquals(js, { success: true, output: "TypeError: locked false\n" });
  assertFalse(forgot.success, `deno check passed:\n${forgot.output}`);
  assertEquals(forgot.output.match(/TS\d+/g), ["TS2850", "TS2850", "TS2850"], forgot.output);
  assertStringIncludes(forgot.output, "[Symbol.dispose]()");
  for (const line of [7, 8, 9]) assertStringIncludes(forgot.output, `fixture.ts:${line}:`);
  assert(careful.success, `deno check failed:\n${careful.output}`);
});
