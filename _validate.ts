// Copyright 2026 the boucle authors. MIT license.
// Internal: argument checks shared by the public modules. Every message names
// the function, the argument and the value received.

/** Shows a received value in an error message: `NaN`, `"abc"`, `an object (Foo)`. */
export function show(value: unknown): string {
  switch (typeof value) {
    case "string":
      return JSON.stringify(
        value.length > 40 ? value.slice(0, 37) + "..." : value,
      );
    case "bigint":
      return `${value}n`;
    case "function":
      return `a function (${value.name || "anonymous"})`;
    case "object": {
      if (value === null) return "null";
      const name = Object.getPrototypeOf(value)?.constructor?.name;
      return name && name !== "Object" ? `an object (${name})` : "an object";
    }
    default:
      return String(value);
  }
}

/** Checks a duration in ms: a number >= 0, or Infinity. */
export function checkMs(where: string, name: string, value: unknown): number {
  if (typeof value !== "number") {
    throw new TypeError(
      `${where}: '${name}' must be a number >= 0, received ${show(value)}`,
    );
  }
  if (!(value >= 0)) {
    throw new RangeError(
      `${where}: '${name}' must be a number >= 0, received ${show(value)}`,
    );
  }
  return value;
}

/** Checks an integer >= `min`; `Infinity` passes when `infinite` is set. */
export function checkCount(
  where: string,
  name: string,
  value: unknown,
  min: number,
  infinite = false,
): number {
  const what = `an integer >= ${min}${infinite ? " or Infinity" : ""}`;
  if (typeof value !== "number") {
    throw new TypeError(
      `${where}: '${name}' must be ${what}, received ${show(value)}`,
    );
  }
  if (
    !(Number.isInteger(value) && value >= min) &&
    !(infinite && value === Infinity)
  ) {
    throw new RangeError(
      `${where}: '${name}' must be ${what}, received ${show(value)}`,
    );
  }
  return value;
}

/** Checks `TaskOptions` (`name`, `signal`) for `where`, e.g. `Loop.addTask(task, options)`. */
export function checkTaskOptions(
  where: string,
  options: unknown,
): { name?: string; signal?: AbortSignal } {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`${where}: 'options' must be an object, received ${show(options)}`);
  }
  const { name, signal } = options as { name?: unknown; signal?: unknown };
  if (name !== undefined && typeof name !== "string") {
    throw new TypeError(`${where}: 'options.name' must be a string, received ${show(name)}`);
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(
      `${where}: 'options.signal' must be an AbortSignal, received ${show(signal)}`,
    );
  }
  return options as { name?: string; signal?: AbortSignal };
}

/** Checks that each of `values` is an Awaitable, naming the first that is not. */
export function checkAwaitables(where: string, values: readonly unknown[]): void {
  values.forEach((value, i) => {
    if (typeof (value as { [Symbol.iterator]?: unknown })?.[Symbol.iterator] !== "function") {
      throw new TypeError(`${where}: argument ${i} must be an Awaitable, received ${show(value)}`);
    }
  });
}

/** Checks the `awaitable` argument of `where`. */
export function checkAwaitable(where: string, value: unknown): void {
  if (typeof (value as { [Symbol.iterator]?: unknown })?.[Symbol.iterator] !== "function") {
    throw new TypeError(`${where}: 'awaitable' must be an Awaitable, received ${show(value)}`);
  }
}

/** Checks the `bytes` argument of `where`: a Uint8Array. */
export function checkBytes(where: string, bytes: unknown): void {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(`${where}: 'bytes' must be a Uint8Array, received ${show(bytes)}`);
  }
}
