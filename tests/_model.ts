// Copyright 2026 the boucle authors. MIT license.
// Programs as data for the property tests (tests/property_test.ts): a small
// language of operations (see `Op`), an interpreter that runs a program on a
// virtual-time Loop and records what happened (`execute`), a reference model
// of deadlock for the programs whose waits do not depend on order (`model`),
// and the fast-check generators of both kinds of program.
//
// The interpreter never swallows an error but for what it checks: a join
// catches the joined task's own outcome, a deadline() its TimeoutError, a
// queue op its QueueClosedError, and a cleanup cut short by a cancellation
// keeps the failure it was cleaning up after. Everything else propagates, so
// every failure must reach a joiner, onError or run()'s rejection.
//
// A program is plain data (arrays of ops), so fast-check shrinks it to the
// smallest failing program; `render()` prints it as pseudo-code.

import {
  CancelledError,
  type Coroutine,
  deadline,
  DeadlockError,
  gather,
  Loop,
  sleep,
  type Task,
} from "../loop.ts";
import { moveOnAfter, shield, type TaskGroup, taskGroup } from "../scope.ts";
import {
  Barrier,
  Condition,
  Event,
  Lock,
  Queue,
  QueueClosedError,
  Semaphore,
  Waiter,
} from "../sync.ts";
import fc from "npm:fast-check@3";

// ---------------------------------------------------------------------------
// The language

/** One operation of a task. Indices into the shared primitives wrap around. */
export type Op =
  | { op: "yield" }
  | { op: "sleep"; ms: number }
  | { op: "fail" }
  | { op: "spawn"; body: Op[]; signal?: true }
  | { op: "spawnInGroup"; body: Op[] }
  | { op: "abort"; signal: number }
  | { op: "join"; task: number }
  | { op: "cancel"; task: number }
  | { op: "group"; children: Op[][]; body: Op[] }
  | { op: "cancelGroup" }
  | { op: "deadline"; ms: number; body: Op[]; task?: true }
  | { op: "moveOnAfter"; ms: number; body: Op[]; task?: true }
  | { op: "gather"; children: Op[][] }
  | { op: "shield"; body: Op[] }
  | { op: "cleanup"; body: Op[]; cleanup: Op[] }
  | { op: "lock"; lock: number; body: Op[] }
  | { op: "put"; queue: number }
  | { op: "get"; queue: number }
  | { op: "close"; queue: number }
  | { op: "set"; event: number }
  | { op: "clear"; event: number }
  | { op: "wait"; event: number }
  | { op: "notify" }
  | { op: "consume" }
  | { op: "barrier" }
  | { op: "countDown"; waiter: number }
  | { op: "waitWaiter"; waiter: number }
  | { op: "forever" }
  | { op: "joinTop"; task: number };

/** How the loop is run. */
export type Mode =
  | { run: "plain" }
  | { run: "onError" }
  | { run: "until"; stopAt: number };

/** A program: top-level tasks `t0`, `t1`, … and how to run them. */
export interface Program {
  tasks: Op[][];
  mode: Mode;
  /** The counts of the Waiters `w0`, `w1`, … */
  waiters: number[];
}

/** The shared primitives: names and sizes. */
export const EVENTS = 3;
/** Lock `L0`, Lock `L1`, Semaphore `S2` of 2 permits. */
export const LOCK_CAPS: readonly number[] = [1, 1, 2];
/** The tasks a round of barrier `b0` takes. */
export const BARRIER = 2;
/** Queue `q0` of maxsize 1, queue `q1` unbounded. */
export const QUEUE_SIZES: readonly number[] = [1, Infinity];

const lockName = (i: number) => (LOCK_CAPS[i] === 1 ? `L${i}` : `S${i}`);

/** The top-level task that `joinTop(task)` in task `self` joins, or null (no other task). */
export function joinTarget(self: number, task: number, count: number): number | null {
  if (count < 2) return null;
  return (self + 1 + (task % (count - 1))) % count;
}

/** A program as pseudo-code, one top-level task per line. */
export function render(program: Program): string {
  const lines = [
    `mode ${JSON.stringify(program.mode)}, waiters ${JSON.stringify(program.waiters)}`,
  ];
  program.tasks.forEach((ops, i) => {
    lines.push(`t${i}: ${renderOps(ops, i, program.tasks.length)}`);
  });
  return lines.join("\n");
}

function renderOps(ops: Op[], self: number, count: number): string {
  return ops.length === 0 ? "-" : ops.map((op) => renderOp(op, self, count)).join("; ");
}

function renderOp(op: Op, self: number, count: number): string {
  const block = (ops: Op[]) => `{ ${renderOps(ops, self, count)} }`;
  switch (op.op) {
    case "yield":
    case "fail":
    case "cancelGroup":
    case "forever":
    case "notify":
    case "consume":
    case "barrier":
      return `${op.op}()`;
    case "sleep":
      return `sleep(${op.ms})`;
    case "spawn":
      return `spawn${op.signal ? " with a signal" : ""} ${block(op.body)}`;
    case "spawnInGroup":
      return `spawn into my group ${block(op.body)}`;
    case "abort":
      return `abort(signal #${op.signal})`;
    case "join":
      return `join(#${op.task} of the unjoined)`;
    case "cancel":
      return `cancel(#${op.task} of all)`;
    case "group":
      return `group { ${op.children.map((child) => `child ${block(child)}; `).join("")}body ${
        block(op.body)
      } }`;
    case "deadline":
    case "moveOnAfter":
      return `${op.op}(${op.task ? "task, " : ""}${op.ms}) ${block(op.body)}`;
    case "gather":
      return `gather(${op.children.map((child) => `task ${block(child)}`).join(", ")})`;
    case "shield":
      return `shield ${block(op.body)}`;
    case "cleanup":
      return `try ${block(op.body)} finally ${block(op.cleanup)}`;
    case "lock":
      return `lock(${lockName(op.lock % LOCK_CAPS.length)}) ${block(op.body)}`;
    case "put":
    case "get":
    case "close":
      return `${op.op}(q${op.queue % QUEUE_SIZES.length})`;
    case "set":
    case "clear":
    case "wait":
      return `${op.op}(e${op.event % EVENTS})`;
    case "countDown":
    case "waitWaiter":
      return `${op.op}(w${op.waiter})`;
    case "joinTop": {
      const target = joinTarget(self, op.task, count);
      return target === null ? "joinTop(none)" : `joinTop(t${target})`;
    }
  }
}

// ---------------------------------------------------------------------------
// The interpreter

/** The error a `fail()` op throws; `id` numbers them in the order thrown. */
export class FailError extends Error {
  constructor(readonly id: number) {
    super(`E${id}`);
    this.name = "FailError";
  }
}

/** Where an error ended up. A `late` join began after the task had ended. */
export interface Sink {
  where: "join" | "joinTop" | "onError" | "run";
  error: unknown;
  late: boolean;
}

/** What the interpreter knows of one task. */
export interface TaskRecord {
  name: string;
  task: Task<void>;
  started: number;
  finallies: number;
  /** How many shields the task is inside right now. */
  shields: number;
  /** How many cleanups (`finally` blocks that wait) the task is running right now. */
  cleanups: number;
  /** Whether the task is in `Condition.waitFor()`, which takes the lock back through cancellations. */
  conditionWaits: number;
  /** The tasks it awaits as a whole: group children, gather's and deadline's Tasks. */
  children: Set<TaskRecord>;
  outcome: string | null;
  /** The error the task's body threw, if any. */
  error?: unknown;
  /**
   * Handed to gather() or deadline(): no `cancel` op picks it, since joining
   * a task cancelled by someone else throws its CancelledError on, by design.
   */
  handedOver?: true;
}

/** One completed `sleep(ms)`: when it was due, the order it was set in, when it ended. */
export interface Wake {
  due: number;
  seq: number;
  at: number;
  task: string;
}

/** One `deadline` or `moveOnAfter` that ended. */
export interface ScopeRecord {
  task: string;
  ms: number;
  start: number;
  end: number;
  /** Whether it timed out (deadline) or moved on (moveOnAfter). */
  expired: boolean;
  /** Whether its body may take time to unwind: a shield or a cleanup in it or its group children. */
  slowUnwind: boolean;
}

/** Everything one run of a program recorded. */
export interface Outcome {
  /** Every event, as `"<time> <task> <what>"`. */
  log: string[];
  /** True if `run()` did not settle in the wall-clock bound. */
  hung: boolean;
  /** `run()`'s rejection, or undefined. */
  rejection: unknown;
  tasks: TaskRecord[];
  /** The ids of the `FailError`s thrown, in order. */
  thrown: number[];
  sinks: Sink[];
  /** Compound ops: entered and exited (finally), by block id, with the task. */
  blocks: Map<number, { task: TaskRecord; enters: number; exits: number }>;
  /** Lock and semaphore holders beyond capacity, as messages. */
  lockViolations: string[];
  /** Locks still held at the end, by the interpreter's count and by the primitive. */
  locksHeldAtEnd: { byCount: number; byPrimitive: number }[];
  /** Per queue: the items whose put() returned, in item order (items number the puts). */
  puts: number[][];
  /** Per queue: items got, in the order the getters logged them, with the getter. */
  gets: { item: number; task: string }[][];
  /** Per queue: what was left in it at the end, in order. */
  leftovers: number[][];
  /** Completed sleeps in the order they ended. */
  wakes: Wake[];
  /** The live tasks at the end, as `loop.tasks()` says. */
  live: string[];
  /** The scopes that ended, in the order they ended. */
  scopes: ScopeRecord[];
  /** The loop's clock when run() settled. */
  endTime: number;
  /** What `Barrier.wait()` returned, in order. */
  barrier: number[];
  /** Per task, when a `cancel()` of it returned true (log length then). */
  cancelled: Map<string, number>;
}

interface Ctx {
  record: TaskRecord;
  group: TaskGroup | null;
  /** The group the task is a child of, and the record of the group's owner. */
  parent: { group: TaskGroup; owner: TaskRecord } | null;
  spawned: number;
  groups: number;
  /** The top-level index of the task, for joinTop (children use their root's). */
  top: number;
}

/** How an error reads in the logs. */
export function describe(error: unknown): string {
  if (error instanceof FailError) return error.message;
  if (error instanceof CancelledError) return "cancelled";
  if (error instanceof DeadlockError) return "deadlock";
  if (error instanceof AggregateError) return `aggregate[${error.errors.map(describe).join(",")}]`;
  if (error instanceof QueueClosedError) return "closed";
  if (error instanceof DOMException) return error.name;
  if (error instanceof Error) return `${error.name}(${error.message})`;
  return String(error);
}

/** The errors inside an error: AggregateError's and SuppressedError's, recursively. */
export function flatten(error: unknown): unknown[] {
  if (error instanceof AggregateError) return error.errors.flatMap(flatten);
  if (typeof SuppressedError === "function" && error instanceof SuppressedError) {
    return [...flatten(error.error), ...flatten(error.suppressed)];
  }
  return [error];
}

class Interpreter {
  readonly loop = new Loop({ virtualTime: true });
  readonly events: Event[] = [];
  readonly locks: Semaphore[];
  /** A Condition over lock L0, guarding `tokens`: `notify` adds one, `consume` waits for one. */
  readonly condition: Condition;
  /** Barrier `b0`, of BARRIER tasks a round. */
  readonly barrier: Barrier = new Barrier(BARRIER, { name: "b0" });
  tokens = 0;
  readonly holders: Set<string>[];
  readonly queues: Queue<number>[];
  readonly waiters: Waiter[];
  readonly nextItem: number[];
  readonly outcome: Outcome;
  sleepSeq = 0;
  errorSeq = 0;
  blockSeq = 0;
  holdSeq = 0;
  readonly top: TaskRecord[] = [];
  /** The AbortControllers of the tasks spawned with a signal. */
  readonly controllers: { controller: AbortController; task: string }[] = [];
  /** The tasks `join` may join: top-level and spawned ones. */
  readonly joinable: { record: TaskRecord; joined: boolean }[] = [];

  constructor(readonly program: Program) {
    for (let i = 0; i < EVENTS; i++) this.events.push(new Event({ name: `e${i}` }));
    this.locks = LOCK_CAPS.map((cap, i) =>
      cap === 1 ? new Lock({ name: lockName(i) }) : new Semaphore(cap, { name: lockName(i) })
    );
    this.holders = LOCK_CAPS.map(() => new Set());
    this.condition = new Condition(this.locks[0] as Lock, { name: "c0" });
    this.queues = QUEUE_SIZES.map((size, i) => new Queue<number>(size, { name: `q${i}` }));
    this.nextItem = QUEUE_SIZES.map(() => 0);
    this.waiters = program.waiters.map((n, i) => new Waiter(n, { name: `w${i}` }));
    this.outcome = {
      log: [],
      hung: false,
      rejection: undefined,
      tasks: [],
      thrown: [],
      sinks: [],
      blocks: new Map(),
      lockViolations: [],
      locksHeldAtEnd: [],
      puts: QUEUE_SIZES.map(() => []),
      gets: QUEUE_SIZES.map(() => []),
      leftovers: QUEUE_SIZES.map(() => []),
      wakes: [],
      live: [],
      scopes: [],
      cancelled: new Map(),
      endTime: NaN,
      barrier: [],
    };
  }

  log(task: string, what: string): void {
    this.outcome.log.push(`${this.loop.time()} ${task} ${what}`);
  }

  sink(where: Sink["where"], error: unknown, late = false): void {
    this.outcome.sinks.push({ where, error, late });
  }

  /** Makes the record of a task about to be added, and its body. */
  task(
    name: string,
    ops: Op[],
    top: number,
    add: (body: Coroutine<void>) => Task<void>,
    parent: Ctx["parent"] = null,
  ): TaskRecord {
    const record: TaskRecord = {
      name,
      task: undefined as unknown as Task<void>,
      started: 0,
      finallies: 0,
      shields: 0,
      cleanups: 0,
      conditionWaits: 0,
      children: new Set(),
      outcome: null,
    };
    this.outcome.tasks.push(record);
    record.task = add(this.body(record, ops, top, parent));
    return record;
  }

  *body(record: TaskRecord, ops: Op[], top: number, parent: Ctx["parent"]): Coroutine<void> {
    record.started++;
    this.log(record.name, "start");
    const ctx: Ctx = { record, group: null, parent, spawned: 0, groups: 0, top };
    try {
      yield* this.ops(ctx, ops);
      record.outcome = "returned";
    } catch (error) {
      record.outcome = describe(error);
      record.error = error;
      throw error;
    } finally {
      record.finallies++;
      this.log(record.name, `end ${record.outcome}`);
    }
  }

  *ops(ctx: Ctx, ops: Op[]): Coroutine<void> {
    for (const op of ops) yield* this.op(ctx, op);
  }

  /** Runs a compound op's inner part, counting the block's entry and its finally. */
  *block(ctx: Ctx, what: string, inner: () => Coroutine<void>): Coroutine<void> {
    const id = this.blockSeq++;
    const entry = { task: ctx.record, enters: 1, exits: 0 };
    this.outcome.blocks.set(id, entry);
    this.log(ctx.record.name, `enter ${what} #${id}`);
    try {
      yield* inner();
    } finally {
      entry.exits++;
      this.log(ctx.record.name, `exit ${what} #${id}`);
    }
  }

  *op(ctx: Ctx, op: Op): Coroutine<void> {
    const name = ctx.record.name;
    const loop = this.loop;
    switch (op.op) {
      case "yield":
        yield;
        this.log(name, "yielded");
        return;
      case "sleep": {
        const seq = this.sleepSeq++;
        const due = loop.time() + op.ms;
        yield* sleep(op.ms);
        this.outcome.wakes.push({ due, seq, at: loop.time(), task: name });
        this.log(name, `slept ${op.ms}`);
        return;
      }
      case "forever":
        yield* sleep(Infinity);
        return;
      case "fail": {
        const error = new FailError(this.errorSeq++);
        this.outcome.thrown.push(error.id);
        this.log(name, `throw ${error.message}`);
        throw error;
      }
      case "spawn": {
        const child = `${name}/s${ctx.spawned++}`;
        this.log(name, `spawn ${child}`);
        let signal: AbortSignal | undefined;
        if (op.signal) {
          const controller = new AbortController();
          this.controllers.push({ controller, task: child });
          signal = controller.signal;
        }
        const record = this.task(
          child,
          op.body,
          ctx.top,
          (body) =>
            loop.addTask(body, signal === undefined ? { name: child } : { name: child, signal }),
        );
        this.joinable.push({ record, joined: false });
        return;
      }
      case "spawnInGroup": {
        if (ctx.parent === null) return;
        const { group, owner } = ctx.parent;
        const child = `${name}/s${ctx.spawned++}`;
        this.log(name, `spawn ${child} into the group`);
        const record = this.task(
          child,
          op.body,
          ctx.top,
          (body) => group.spawn(body, { name: child }),
          ctx.parent,
        );
        owner.children.add(record);
        return;
      }
      case "abort": {
        const entry = this.controllers[op.signal % Math.max(this.controllers.length, 1)];
        if (entry === undefined) return;
        entry.controller.abort();
        this.log(name, `abort the signal of ${entry.task}`);
        return;
      }
      case "join": {
        // The task-th of the tasks no one joined yet (top-level and spawned ones, not
        // group children: their errors are their group's), other than this one.
        const open = this.joinable.filter((h) => !h.joined && h.record !== ctx.record);
        const handle = open[op.task % Math.max(open.length, 1)];
        if (handle === undefined) return;
        handle.joined = true;
        yield* this.join(name, "join", handle.record);
        return;
      }
      case "joinTop": {
        const target = joinTarget(ctx.top, op.task, this.top.length);
        if (target === null) return;
        yield* this.join(name, "joinTop", this.top[target]!);
        return;
      }
      case "cancel": {
        // The task-th of every task made so far, this one included.
        const tasks = this.outcome.tasks.filter((r) => !r.handedOver);
        const task = tasks[op.task % tasks.length]!.task;
        const requested = task.cancel();
        if (requested && !this.outcome.cancelled.has(task.name)) {
          this.outcome.cancelled.set(task.name, this.outcome.log.length);
        }
        this.log(name, `cancel ${task.name} -> ${requested}`);
        return;
      }
      case "group": {
        const g = ctx.groups++;
        yield* this.block(
          ctx,
          "group",
          () => taskGroup((group) => this.groupBody(ctx, `${name}/g${g}`, op, group)),
        );
        return;
      }
      case "cancelGroup":
        if (ctx.group === null) return;
        this.log(name, "cancel group");
        ctx.group.cancel();
        return;
      case "deadline":
        yield* this.block(
          ctx,
          `deadline(${op.ms})`,
          function* (this: Interpreter) {
            const scope = this.scope(name, op.ms, op.body);
            try {
              const awaitable = op.task
                ? this.handOver(ctx, `${name}/d${ctx.spawned++}`, op.body).task
                : this.ops(ctx, op.body);
              yield* deadline(awaitable, op.ms);
            } catch (error) {
              if (!(error instanceof DOMException && error.name === "TimeoutError")) {
                this.ended(scope, false);
                throw error;
              }
              this.ended(scope, true);
              this.log(name, ctx.record.shields > 0 ? "timed out (in a shield)" : "timed out");
              return;
            }
            this.ended(scope, false);
          }.bind(this),
        );
        return;
      case "moveOnAfter":
        yield* this.block(
          ctx,
          `moveOnAfter(${op.ms})`,
          function* (this: Interpreter) {
            const scope = this.scope(name, op.ms, op.body);
            let returned = false, expired = false;
            try {
              if (op.task) {
                // The task returns nothing either way: it was cancelled if time ran out.
                const { task } = this.handOver(ctx, `${name}/d${ctx.spawned++}`, op.body);
                yield* moveOnAfter(task, op.ms);
                expired = task.cancelled;
              } else {
                expired =
                  (yield* moveOnAfter(this.opsThen(ctx, op.body, true), op.ms)) === undefined;
              }
              returned = true;
            } finally {
              this.ended(scope, returned && expired);
            }
            if (expired) {
              this.log(name, ctx.record.shields > 0 ? "moved on (in a shield)" : "moved on");
            }
          }.bind(this),
        );
        return;
      case "gather": {
        const n = ctx.spawned++;
        // Each child first yields. Not for the defect this stood for (gather()
        // claims its Tasks at call time since 1953ff9), but for one that remains,
        // reported: a cancel() of a task made after the Task it awaits in
        // deadline() or moveOnAfter() was cancelled by the expiry, before the task
        // resumes, is lost to the timeout. A child cancelling in its first step
        // hits that window often, and the property "a task whose cancel()
        // returned true never carries on past a timeout" (tests/regressions_test.ts)
        // fails.
        const tasks = op.children.map((ops, i) =>
          this.handOver(ctx, `${name}/G${n}.${i}`, [{ op: "yield" }, ...ops]).task
        );
        yield* gather(...tasks);
        this.log(name, "gathered");
        return;
      }
      case "cleanup":
        // try { body } finally { cleanup }, spelled out so that the cleanup may throw.
        yield* this.block(
          ctx,
          "try",
          function* (this: Interpreter) {
            let failed: unknown = NONE;
            try {
              yield* this.ops(ctx, op.body);
            } catch (error) {
              failed = error;
            }
            this.log(name, "cleanup");
            ctx.record.cleanups++;
            let cut: unknown = NONE;
            try {
              yield* this.ops(ctx, op.cleanup);
            } catch (error) {
              cut = error;
            } finally {
              ctx.record.cleanups--;
            }
            if (cut !== NONE) {
              // A cancellation that cuts the cleanup of a failure short: keep the
              // failure, as a program that must not lose errors would.
              const keep = failed !== NONE && !(failed instanceof CancelledError) &&
                cut instanceof CancelledError;
              if (!keep) throw cut;
              this.log(name, "cleanup cut short");
            }
            if (failed !== NONE) throw failed;
          }.bind(this),
        );
        return;
      case "shield":
        yield* this.block(
          ctx,
          "shield",
          function* (this: Interpreter) {
            ctx.record.shields++;
            try {
              yield* shield(this.ops(ctx, op.body));
            } finally {
              ctx.record.shields--;
            }
          }.bind(this),
        );
        return;
      case "lock": {
        const i = op.lock % LOCK_CAPS.length;
        yield* this.block(
          ctx,
          `lock(${lockName(i)})`,
          function* (this: Interpreter) {
            using _guard = yield* this.locks[i]!.acquire();
            const key = this.hold(i, name);
            this.log(name, `acquired ${lockName(i)}`);
            try {
              yield* this.ops(ctx, op.body);
            } finally {
              this.holders[i]!.delete(key);
            }
          }.bind(this),
        );
        return;
      }
      case "barrier": {
        const index = yield* this.barrier.wait();
        this.outcome.barrier.push(index);
        this.log(name, `passed the barrier (${index})`);
        return;
      }
      case "notify": {
        using _guard = yield* this.condition.acquire();
        const key = this.hold(0, name);
        this.tokens++;
        this.condition.notify();
        this.log(name, `notify (${this.tokens} tokens)`);
        this.holders[0]!.delete(key);
        return;
      }
      case "consume": {
        using _guard = yield* this.condition.acquire();
        this.log(name, "waits for a token");
        ctx.record.conditionWaits++;
        try {
          yield* this.condition.waitFor(() => this.tokens > 0);
        } finally {
          ctx.record.conditionWaits--;
          // waitFor() holds the lock again when it returns or throws (as asyncio's).
          if (!(this.locks[0] as Lock).locked) {
            this.outcome.lockViolations.push(
              `${name}: waitFor() ended without L0 at ${loop.time()}`,
            );
          }
        }
        const key = this.hold(0, name);
        if (this.tokens <= 0) {
          this.outcome.lockViolations.push(`${name}: waitFor() returned with no token`);
        }
        this.tokens--;
        this.log(name, `consumed (${this.tokens} tokens)`);
        this.holders[0]!.delete(key);
        return;
      }
      case "put": {
        const q = op.queue % QUEUE_SIZES.length;
        const item = this.nextItem[q]!++;
        try {
          yield* this.queues[q]!.put(item);
        } catch (error) {
          if (!(error instanceof QueueClosedError)) throw error;
          this.log(name, `put q${q} ${item}: closed`);
          return;
        }
        this.outcome.puts[q]!.push(item);
        this.log(name, `put q${q} ${item}`);
        return;
      }
      case "get": {
        const q = op.queue % QUEUE_SIZES.length;
        let item: number;
        try {
          item = yield* this.queues[q]!.get();
        } catch (error) {
          if (!(error instanceof QueueClosedError)) throw error;
          this.log(name, `get q${q}: closed`);
          return;
        }
        this.outcome.gets[q]!.push({ item, task: name });
        this.log(name, `got q${q} ${item}`);
        return;
      }
      case "close": {
        const q = op.queue % QUEUE_SIZES.length;
        this.queues[q]!.close();
        this.log(name, `close q${q}`);
        return;
      }
      case "set":
        this.events[op.event % EVENTS]!.set();
        this.log(name, `set e${op.event % EVENTS}`);
        return;
      case "clear":
        this.events[op.event % EVENTS]!.clear();
        this.log(name, `clear e${op.event % EVENTS}`);
        return;
      case "wait":
        yield* this.events[op.event % EVENTS]!.wait();
        this.log(name, `waited e${op.event % EVENTS}`);
        return;
      case "countDown": {
        const waiter = this.waiters[op.waiter];
        if (waiter === undefined) return;
        waiter.set();
        this.log(name, `count down w${op.waiter}`);
        return;
      }
      case "waitWaiter": {
        const waiter = this.waiters[op.waiter];
        if (waiter === undefined) return;
        yield* waiter;
        this.log(name, `waited w${op.waiter}`);
        return;
      }
    }
  }

  /** Adds a task for gather() or deadline() to join. */
  handOver(ctx: Ctx, name: string, ops: Op[]): TaskRecord {
    this.log(ctx.record.name, `spawn ${name}`);
    const record = this.task(name, ops, ctx.top, (body) => this.loop.addTask(body, { name }));
    record.handedOver = true;
    ctx.record.children.add(record); // awaited like a group child
    return record;
  }

  /** A group's body: spawns the children, then runs the body's ops with `cancelGroup` on. */
  *groupBody(
    ctx: Ctx,
    prefix: string,
    op: Op & { op: "group" },
    group: TaskGroup,
  ): Coroutine<void> {
    const outer = ctx.group;
    ctx.group = group;
    try {
      op.children.forEach((ops, i) => {
        const child = `${prefix}.${i}`;
        const record = this.task(
          child,
          ops,
          ctx.top,
          (body) => group.spawn(body, { name: child }),
          { group, owner: ctx.record },
        );
        ctx.record.children.add(record);
      });
      yield* this.ops(ctx, op.body);
    } finally {
      ctx.group = outer;
    }
  }

  /** Runs ops, then returns `value`. */
  *opsThen<T>(ctx: Ctx, ops: Op[], value: T): Coroutine<T> {
    yield* this.ops(ctx, ops);
    return value;
  }

  /** The task that stops a service loop: aborts `until` after `ms`. */
  *stopper(ms: number, stop: AbortController): Coroutine<void> {
    yield* sleep(ms);
    this.log("stopper", "stop");
    stop.abort();
  }

  /** Records that `task` holds lock `i` now; returns the key to forget it by. */
  hold(i: number, task: string): string {
    const holders = this.holders[i]!;
    const key = `${task}@${this.holdSeq++}`;
    holders.add(key);
    if (holders.size > LOCK_CAPS[i]!) {
      this.outcome.lockViolations.push(
        `${lockName(i)} held by ${[...holders].join(", ")} at ${this.loop.time()}`,
      );
    }
    return key;
  }

  /** Starts the record of a scope. */
  scope(task: string, ms: number, body: Op[]): ScopeRecord {
    return { task, ms, start: this.loop.time(), end: NaN, expired: false, slowUnwind: slow(body) };
  }

  ended(scope: ScopeRecord, expired: boolean): void {
    scope.end = this.loop.time();
    scope.expired = expired;
    this.outcome.scopes.push(scope);
  }

  /** Joins a task; its error (the task's own outcome) is caught and recorded as reaching us. */
  *join(name: string, where: "join" | "joinTop", record: TaskRecord): Coroutine<void> {
    const task = record.task;
    const late = task.done;
    try {
      yield* task;
      this.log(name, `joined ${task.name}`);
    } catch (error) {
      if (!isOutcomeOf(record, error)) throw error; // our own cancellation, say
      this.sink(where, error, late);
      this.log(name, `joined ${task.name}: ${describe(error)}`);
    }
  }

  async run(hangMs: number): Promise<Outcome> {
    const { loop, program, outcome } = this;
    program.tasks.forEach((ops, i) => {
      const name = `t${i}`;
      const record = this.task(name, ops, i, (body) => loop.addTask(body, { name }));
      this.top.push(record);
      this.joinable.push({ record, joined: false });
    });
    const mode = program.mode;
    let running: Promise<void>;
    if (mode.run === "plain") {
      running = loop.run();
    } else if (mode.run === "onError") {
      running = loop.run({
        onError: (error) => {
          this.sink("onError", error);
          this.log("loop", `onError ${describe(error)}`);
        },
      });
    } else {
      const stop = new AbortController();
      loop.addTask(this.stopper(mode.stopAt, stop), { name: "stopper" });
      running = loop.run({ until: stop.signal });
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const hang = new Promise<"hang">((resolve) => {
      timer = setTimeout(() => resolve("hang"), hangMs);
    });
    const settled = await Promise.race([
      running.then(() => "ok" as const, (error) => {
        outcome.rejection = error;
        return "rejected" as const;
      }),
      hang,
    ]);
    clearTimeout(timer);
    if (settled === "hang") {
      outcome.hung = true;
      return outcome;
    }
    if (outcome.rejection !== undefined) {
      this.sink("run", outcome.rejection);
      this.log("loop", `rejected ${describe(outcome.rejection)}`);
    }
    outcome.live = loop.tasks().map((task) => task.name);
    outcome.endTime = loop.time();
    outcome.locksHeldAtEnd = this.locks.map((lock, i) => ({
      byCount: this.holders[i]!.size,
      byPrimitive: LOCK_CAPS[i]! - lock.value,
    }));
    this.queues.forEach((queue, q) => {
      // Only what is in the queue: a get() would move a parked putter's item in.
      for (let n = queue.size; n > 0; n--) outcome.leftovers[q]!.push(queue.tryGet()!);
    });
    return outcome;
  }
}

const NONE: unique symbol = Symbol("none");

/**
 * Bounds on a run of the program: the ops it can run (each op runs at most
 * once, a task's body once) and the latest time its clock can reach (the
 * clock moves only to timers, and each op sets at most one).
 */
export function bounds(program: Program): { ops: number; time: number } {
  let ops = 0, time = program.mode.run === "until" ? program.mode.stopAt : 0;
  const walk = (list: Op[]): void => {
    for (const op of list) {
      ops++;
      if (op.op === "sleep" || op.op === "deadline" || op.op === "moveOnAfter") time += op.ms;
      if ("body" in op) walk(op.body);
      if (op.op === "group" || op.op === "gather") op.children.forEach(walk);
      if (op.op === "cleanup") walk(op.cleanup);
    }
  };
  program.tasks.forEach(walk);
  return { ops, time };
}

/** Whether ops may take time to unwind when cancelled: a shield or a cleanup, in them or a group child. */
function slow(ops: Op[]): boolean {
  return ops.some((op) => {
    switch (op.op) {
      case "shield":
      case "cleanup":
        return true;
      case "group":
        return slow(op.body) || op.children.some(slow);
      case "gather":
        return op.children.some(slow);
      case "deadline":
      case "moveOnAfter":
      case "lock":
      case "spawnInGroup": // into a group inside the scope, it is cancelled with it
        return slow(op.body);
      default:
        return false; // a spawned task is not cancelled with the scope
    }
  });
}

/**
 * Whether `error` is the outcome of the task (and not, say, the joiner's own
 * cancellation, or a scope's expiry). Not by `result()`, which would observe
 * the task's error, but for a task cancelled before it ran: its outcome is
 * its own cancellation, which is never reported anyway.
 */
function isOutcomeOf(record: TaskRecord, error: unknown): boolean {
  if (!record.task.done) return false;
  if (record.started === 0) {
    try {
      record.task.result();
    } catch (outcome) {
      return outcome === error;
    }
    return false;
  }
  return record.error === error;
}

/**
 * Runs a program on a fresh virtual-time loop and returns what happened. If
 * `run()` has not settled after `hangMs` of wall-clock time, `hung` is set.
 */
export function execute(program: Program, hangMs = 2000): Promise<Outcome> {
  return new Interpreter(program).run(hangMs);
}

// ---------------------------------------------------------------------------
// The reference model of deadlock

/**
 * What a program of the "monotone" class should do, worked out with no
 * scheduler: the tasks use only `yield`, `sleep`, `set`, `wait`,
 * `countDown`, `waitWaiter`, `joinTop`, `forever` and `moveOnAfter` around
 * one waiting op. Nothing is ever unset, so whether a wait passes does not
 * depend on the order the tasks run in: a task gets past a wait as soon as
 * some task has got past the `set` it needs. The least fixed point of "which
 * ops get run" is then exactly what any fair scheduler reaches; a task that
 * does not get to its end is stuck, and the loop must report a deadlock
 * naming exactly those tasks, each with what it waits on.
 */
export interface ModelVerdict {
  /** The stuck tasks, by index, in order. */
  stuck: number[];
  /** What each stuck task waits on, as `DeadlockError` says it. */
  waitsOn: string[];
}

/** Whether a program belongs to the class the model covers. */
export function isMonotone(program: Program): boolean {
  const waiting = (op: Op) =>
    op.op === "wait" || op.op === "waitWaiter" || op.op === "forever" || op.op === "joinTop";
  return program.mode.run === "plain" &&
    program.tasks.every((ops) =>
      ops.every((op) =>
        op.op === "yield" || op.op === "sleep" || op.op === "set" || op.op === "countDown" ||
        waiting(op) || (op.op === "moveOnAfter" && op.body.length === 1 && waiting(op.body[0]!))
      )
    );
}

/** The model's verdict on a monotone program. */
export function model(program: Program): ModelVerdict {
  const n = program.tasks.length;
  const pc = program.tasks.map(() => 0);
  const set = new Set<number>();
  const counts = [...program.waiters];
  const done = (t: number) => pc[t]! >= program.tasks[t]!.length;
  /** Whether a waiting op passes now; null if the op waits on nothing known. */
  const passes = (t: number, op: Op): boolean => {
    switch (op.op) {
      case "wait":
        return set.has(op.event % EVENTS);
      case "waitWaiter":
        return op.waiter >= counts.length || counts[op.waiter] === 0;
      case "forever":
        return false;
      case "joinTop": {
        const target = joinTarget(t, op.task, n);
        return target === null || done(target);
      }
      default:
        return true; // yield, sleep, moveOnAfter (it times out), set, countDown
    }
  };
  for (let progress = true; progress;) {
    progress = false;
    for (let t = 0; t < n; t++) {
      while (!done(t)) {
        const op = program.tasks[t]![pc[t]!]!;
        if (!passes(t, op)) break;
        if (op.op === "set") set.add(op.event % EVENTS);
        if (op.op === "countDown" && op.waiter < counts.length) {
          counts[op.waiter] = Math.max(0, counts[op.waiter]! - 1);
        }
        pc[t]!++;
        progress = true;
      }
    }
  }
  const stuck: number[] = [];
  const waitsOn: string[] = [];
  for (let t = 0; t < n; t++) {
    if (done(t)) continue;
    stuck.push(t);
    const op = program.tasks[t]![pc[t]!]!;
    switch (op.op) {
      case "wait":
        waitsOn.push(`Event("e${op.event % EVENTS}").wait()`);
        break;
      case "waitWaiter":
        waitsOn.push(`Waiter("w${op.waiter}", count=${counts[op.waiter]})`);
        break;
      case "forever":
        waitsOn.push("sleep(Infinity)");
        break;
      case "joinTop":
        waitsOn.push(`Task("t${joinTarget(t, op.task, n)}")`);
        break;
      default:
        waitsOn.push(`? ${op.op}`);
    }
  }
  return { stuck, waitsOn };
}

// ---------------------------------------------------------------------------
// Generators (fast-check)

const ms = fc.constantFrom(0, 1, 2, 3, 5, 10);
const index = (n: number) => fc.nat({ max: n - 1 });

/** Relative weights of some kinds of op (1: the default). */
export interface Weights {
  queue?: number;
  lock?: number;
  sleep?: number;
  fail?: number;
  join?: number;
  cleanup?: number;
  scope?: number;
  gather?: number;
  barrier?: number;
  /** Whether deadline() and moveOnAfter() may be given Tasks. @default {true} */
  taskScopes?: boolean;
}

/** What a cleanup (a `finally` block) does: waits of every kind, but no failure. */
const cleanupOp: fc.Arbitrary<Op> = fc.oneof(
  fc.constant<Op>({ op: "yield" }),
  ms.map((ms): Op => ({ op: "sleep", ms })),
  index(EVENTS).map((event): Op => ({ op: "set", event })),
  index(EVENTS).map((event): Op => ({ op: "wait", event })),
  index(2).map((queue): Op => ({ op: "put", queue })),
  index(2).map((queue): Op => ({ op: "get", queue })),
);

/** fast-check wants integer weights: a quarter is the unit. */
const w4 = (weight: number) => Math.round(4 * weight);

/** Ops of every kind; compound ones nest up to a small depth. */
export function opsArb(w: Weights = {}): fc.Arbitrary<Op[]> {
  const {
    queue = 1,
    lock = 1,
    sleep = 2,
    fail = 1,
    join = 2,
    cleanup = 1,
    scope = 1,
    gather = 1,
    barrier = 0.5,
  } = w;
  const task = w.taskScopes === false ? fc.constant(false) : fc.boolean();
  const { ops } = fc.letrec<{ op: Op; ops: Op[] }>((tie) => {
    const body = tie("ops") as fc.Arbitrary<Op[]>;
    return {
      op: fc.oneof(
        { maxDepth: 3, depthSize: "medium", depthIdentifier: "ops", withCrossShrink: true },
        { weight: w4(2), arbitrary: fc.constant<Op>({ op: "yield" }) },
        { weight: w4(sleep), arbitrary: ms.map((ms): Op => ({ op: "sleep", ms })) },
        { weight: w4(fail), arbitrary: fc.constant<Op>({ op: "fail" }) },
        { weight: w4(join), arbitrary: index(4).map((task): Op => ({ op: "join", task })) },
        { weight: w4(1), arbitrary: index(8).map((task): Op => ({ op: "cancel", task })) },
        { weight: w4(1), arbitrary: fc.constant<Op>({ op: "cancelGroup" }) },
        { weight: w4(queue), arbitrary: index(2).map((queue): Op => ({ op: "put", queue })) },
        { weight: w4(queue), arbitrary: index(2).map((queue): Op => ({ op: "get", queue })) },
        { weight: w4(queue / 4), arbitrary: index(2).map((queue): Op => ({ op: "close", queue })) },
        { weight: w4(2), arbitrary: index(EVENTS).map((event): Op => ({ op: "set", event })) },
        { weight: w4(1), arbitrary: index(EVENTS).map((event): Op => ({ op: "wait", event })) },
        { weight: w4(0.5), arbitrary: index(EVENTS).map((event): Op => ({ op: "clear", event })) },
        {
          weight: w4(1),
          arbitrary: fc.record({ body, signal: fc.boolean() }).map(({ body, signal }): Op =>
            signal ? { op: "spawn", body, signal } : { op: "spawn", body }
          ),
        },
        { weight: w4(0.5), arbitrary: body.map((body): Op => ({ op: "spawnInGroup", body })) },
        { weight: w4(0.5), arbitrary: index(3).map((signal): Op => ({ op: "abort", signal })) },
        {
          weight: w4(1),
          arbitrary: fc.record({ children: fc.array(body, { maxLength: 3 }), body }).map((
            { children, body },
          ): Op => ({ op: "group", children, body })),
        },
        {
          weight: w4(scope),
          arbitrary: fc.record({ ms, body, task }).map(({ ms, body, task }): Op =>
            task ? { op: "deadline", ms, body, task } : { op: "deadline", ms, body }
          ),
        },
        {
          weight: w4(scope),
          arbitrary: fc.record({ ms, body, task }).map(({ ms, body, task }): Op =>
            task ? { op: "moveOnAfter", ms, body, task } : { op: "moveOnAfter", ms, body }
          ),
        },
        {
          weight: w4(gather),
          arbitrary: fc.array(body, { minLength: 1, maxLength: 3 }).map((children): Op => ({
            op: "gather",
            children,
          })),
        },
        { weight: w4(lock / 2), arbitrary: fc.constant<Op>({ op: "notify" }) },
        { weight: w4(lock / 2), arbitrary: fc.constant<Op>({ op: "consume" }) },
        { weight: w4(barrier), arbitrary: fc.constant<Op>({ op: "barrier" }) },
        { weight: w4(1), arbitrary: body.map((body): Op => ({ op: "shield", body })) },
        {
          weight: w4(cleanup),
          arbitrary: fc.record({ body, cleanup: fc.array(cleanupOp, { maxLength: 3 }) }).map((
            { body, cleanup },
          ): Op => ({ op: "cleanup", body, cleanup })),
        },
        {
          weight: w4(lock),
          arbitrary: fc.record({ lock: index(LOCK_CAPS.length), body }).map((
            { lock, body },
          ): Op => ({ op: "lock", lock, body })),
        },
      ),
      ops: fc.array(tie("op") as fc.Arbitrary<Op>, {
        maxLength: 8,
        size: "large",
        depthIdentifier: "ops",
      }),
    };
  });
  return ops;
}

/** Every way to run a loop: plain, with onError, as a service stopped by a task. */
export const modeArb: fc.Arbitrary<Program["mode"]> = fc.oneof(
  fc.constant({ run: "plain" as const }),
  fc.constant({ run: "onError" as const }),
  fc.constantFrom(0, 3, 10, 30).map((stopAt) => ({ run: "until" as const, stopAt })),
);

/** A program shown as pseudo-code in fast-check's counter-examples. */
export function printable(program: Program): Program {
  return Object.assign(program, { [fc.toStringMethod]: () => `\n${render(program)}\n` });
}

/** Programs of 2 to 5 top-level tasks, run in any mode unless `mode` is given. */
export function programArb(
  w: Weights = {},
  mode: fc.Arbitrary<Program["mode"]> = modeArb,
): fc.Arbitrary<Program> {
  return fc.record({
    tasks: fc.array(opsArb(w), { minLength: 2, maxLength: 5 }),
    mode,
    waiters: fc.constant([]),
  }).map(printable);
}

/** Programs the deadlock model covers: nothing is ever unset, so waits are order-free. */
export const monotoneArb: fc.Arbitrary<Program> = (() => {
  const waiting: fc.Arbitrary<Op> = fc.oneof(
    { weight: 3, arbitrary: index(EVENTS).map((event): Op => ({ op: "wait", event })) },
    { weight: 2, arbitrary: index(2).map((waiter): Op => ({ op: "waitWaiter", waiter })) },
    { weight: 2, arbitrary: index(3).map((task): Op => ({ op: "joinTop", task })) },
    { weight: 1, arbitrary: fc.constant<Op>({ op: "forever" }) },
  );
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 1, arbitrary: fc.constant<Op>({ op: "yield" }) },
    { weight: 2, arbitrary: ms.map((ms): Op => ({ op: "sleep", ms })) },
    { weight: 3, arbitrary: index(EVENTS).map((event): Op => ({ op: "set", event })) },
    { weight: 2, arbitrary: index(2).map((waiter): Op => ({ op: "countDown", waiter })) },
    { weight: 4, arbitrary: waiting },
    {
      weight: 1,
      arbitrary: fc.record({ ms, w: waiting }).map(({ ms, w }): Op => ({
        op: "moveOnAfter",
        ms,
        body: [w],
      })),
    },
  );
  return fc.record({
    tasks: fc.array(fc.array(op, { maxLength: 5 }), { minLength: 1, maxLength: 4 }),
    mode: fc.constant({ run: "plain" as const }),
    waiters: fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 2 }),
  }).map(printable);
})();
