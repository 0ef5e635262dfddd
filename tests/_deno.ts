// Copyright 2026 the boucle authors. MIT license.
// Shared by the tests that run examples as subprocesses.

/** The project's root directory. */
export const ROOT = `${import.meta.dirname}/..`;

/**
 * The deno binary to run. `--allow-run=deno` grants the `deno` found on PATH,
 * compared by path: when that is a symlink (an npm install), `Deno.execPath()`,
 * the resolved binary, is not granted by it. Use the running binary when allowed.
 */
export const DENO = Deno.permissions.querySync({ name: "run", command: Deno.execPath() }).state ===
    "granted"
  ? Deno.execPath()
  : "deno";
