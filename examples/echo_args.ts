// Copyright 2026 the boucle authors. MIT license.
/**
 * The command-line flags of the echo examples: `--port` and `--hostname`,
 * given as `--port 8080` or `--port=8080`. Not an example itself.
 *
 * @module
 */

/** The value of `--<name>` in `Deno.args`, or `fallback` when absent. */
export function flag(name: string, fallback: string): string {
  const args = Deno.args;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === `--${name}`) return args[i + 1] ?? "";
    if (args[i]!.startsWith(`--${name}=`)) return args[i]!.slice(name.length + 3);
  }
  return fallback;
}

/** `--port`, checked: exits with status 2 and a message if it is no port. */
export function portFlag(fallback: number): number {
  const text = flag("port", String(fallback));
  const port = Number(text);
  if (text === "" || !Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`--port must be an integer from 0 to 65535, received "${text}"`);
    Deno.exit(2);
  }
  return port;
}
