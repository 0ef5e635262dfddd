// Copyright 2026 the boucle authors. MIT license.
/**
 * Keeps docs/tutorial.md honest. Each program of docs/tutorial/ runs as a
 * subprocess, with the flags of the `Run:` line in its header, and must print
 * exactly the output block the chapter shows after
 * `<!-- output of docs/tutorial/<file> -->`; in a block marked
 * `, numbers vary` (measurements: CPU ratios, poll counts), any number matches
 * a number and the rest of each line must match as is. Every `ts ignore` block
 * follows `<!-- excerpt of docs/tutorial/<file> -->` and must appear in that
 * file line for line (up to indentation, which `deno fmt` strips in markdown).
 * The other TypeScript blocks run under `deno test --doc docs/tutorial.md`.
 *
 * Needs `--allow-read=docs` (the chapter and its programs), `--allow-run=deno`,
 * and `--allow-net=127.0.0.1` for what the programs of chapter 6 do.
 */

import { assert, assertEquals, assertMatch } from "@std/assert";
import { DENO, ROOT } from "./_deno.ts";

const TUTORIAL = await Deno.readTextFile(`${ROOT}/docs/tutorial.md`);

interface Output {
  program: string;
  numbersVary: boolean;
  lines: string[];
}

interface Excerpt {
  program: string;
  lines: string[];
}

const outputs: Output[] = [
  ...TUTORIAL.matchAll(
    /<!-- output of (docs\/tutorial\/[\w.]+\.ts)(, numbers vary)? -->\n\n```text\n([\s\S]*?\n)```/g,
  ),
].map(([, program, vary, text]) => ({
  program: program!,
  numbersVary: vary !== undefined,
  lines: text!.split("\n").slice(0, -1),
}));

const excerpts: Excerpt[] = [
  ...TUTORIAL.matchAll(
    /<!-- excerpt of (docs\/tutorial\/[\w.]+\.ts) -->\n\n```ts ignore\n([\s\S]*?\n)```/g,
  ),
].map(([, program, text]) => ({ program: program!, lines: text!.split("\n").slice(0, -1) }));

/** The `deno run` flags of the `Run:` line in the program's header. */
function runFlags(program: string, source: string): string[] {
  const line = source.split("\n").find((l) => l.includes(" Run: deno run "));
  assert(line !== undefined, `${program} has no "Run: deno run" line`);
  const words = line.slice(line.indexOf("deno run ") + "deno run ".length).trim().split(/\s+/);
  assertEquals(words.at(-1), program, `the Run: line of ${program} names another program`);
  return words.slice(0, -1);
}

/** A pattern for one expected line in which any number stands for any number. */
function numbersVary(line: string): RegExp {
  const parts = line.split(/(\d+(?:[.,]\d+)*)/);
  const source = parts
    .map((part, i) =>
      i % 2 === 1 ? String.raw`\d+(?:[.,]\d+)*` : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
    )
    .join("");
  return new RegExp(`^${source}$`);
}

/** Whether `excerpt` is a run of consecutive lines of `source`, all indented alike. */
function isExcerptOf(excerpt: string[], source: string): boolean {
  const lines = source.split("\n");
  for (let start = 0; start + excerpt.length <= lines.length; start++) {
    const first = lines[start]!;
    if (!first.endsWith(excerpt[0]!)) continue;
    const indent = first.slice(0, first.length - excerpt[0]!.length);
    if (indent.trim() !== "") continue;
    if (excerpt.every((line, i) => lines[start + i] === (line === "" ? "" : indent + line))) {
      return true;
    }
  }
  return false;
}

Deno.test("every program in docs/tutorial/ has its output shown in the tutorial, once", async () => {
  const programs: string[] = [];
  for await (const entry of Deno.readDir(`${ROOT}/docs/tutorial`)) {
    if (entry.isFile && entry.name.endsWith(".ts")) programs.push(`docs/tutorial/${entry.name}`);
  }
  assertEquals(outputs.map((o) => o.program).sort(), programs.sort());
});

Deno.test("every `ts ignore` block of the tutorial is an excerpt of a program it checks", async () => {
  assertEquals(excerpts.length, TUTORIAL.split("```ts ignore\n").length - 1);
  const programs = new Set(outputs.map((o) => o.program));
  for (const { program, lines } of excerpts) {
    assert(programs.has(program), `an excerpt names ${program}, whose output is not shown`);
    const source = await Deno.readTextFile(`${ROOT}/${program}`);
    assert(isExcerptOf(lines, source), `not in ${program}:\n${lines.join("\n")}`);
  }
});

for (const { program, numbersVary: vary, lines: expected } of outputs) {
  Deno.test(`${program} prints the output its chapter shows`, async () => {
    const source = await Deno.readTextFile(`${ROOT}/${program}`);
    const { code, stdout, stderr } = await new Deno.Command(DENO, {
      args: ["run", "--quiet", "--no-prompt", ...runFlags(program, source), program],
      cwd: ROOT,
      stdin: "null",
    }).output();
    const err = new TextDecoder().decode(stderr);
    assertEquals(code, 0, `${program} exited with ${code}:\n${err}`);
    assertEquals(err, "", `${program} wrote to stderr`);
    const lines = new TextDecoder().decode(stdout).split("\n").slice(0, -1);
    if (!vary) {
      assertEquals(lines, expected);
      return;
    }
    assertEquals(lines.length, expected.length, `${program} printed:\n${lines.join("\n")}`);
    lines.forEach((line, i) => assertMatch(line, numbersVary(expected[i]!)));
  });
}
