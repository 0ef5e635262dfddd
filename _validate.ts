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
