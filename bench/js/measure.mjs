// Measures one library on one trace, in a process of its own (a fresh wasm instance, so the
// memory growth is this library's alone). Run by bench.mjs:
//
//   node --expose-gc measure.mjs LIBRARY TRACE_FILE RUNS
//
// Prints one JSON object on stdout (the result row), progress on stderr.

import { wasmMemoryBytes, wasmInstances } from "./wasm-memory.mjs";
import { performance } from "node:perf_hooks";
import { loadTrace, plan } from "./trace.mjs";

const [libraryName, tracePath, runsArg] = process.argv.slice(2);
const { LIBRARIES } = await import("./libraries.mjs");
if (!(libraryName in LIBRARIES)) throw new Error(`unknown library ${libraryName}`);
if (typeof globalThis.gc !== "function") throw new Error("run with node --expose-gc");
const lib = await LIBRARIES[libraryName]();
const trace = loadTrace(tracePath);
const runsWanted = Math.max(1, Number(runsArg) || 3);

/** Over 2 s for a first run: only as many runs as fit in about 20 s (as the Rust bench). */
const SLOW_RUN_MS = 2000;
const SLOW_BUDGET_MS = 20000;

function settle() {
  for (let i = 0; i < 3; i++) globalThis.gc();
}

function timed(f) {
  const start = performance.now();
  const value = f();
  return [performance.now() - start, value];
}

function checkText(problems, what, text) {
  if (text !== trace.endContent) {
    problems.add(`${what}: the text differs from endContent (${text.length} vs ${trace.endContent.length} UTF-16 units)`);
  }
}

/** Sequential: one replica applies every transaction. Returns the replicas to keep alive. */
function applySequential() {
  const r = lib.create(0);
  for (const txn of trace.txns) lib.edit(r, txn.patches);
  return { replicas: [r], main: r };
}

/**
 * Concurrent: one replica per agent; before each transaction its replica receives the
 * transactions its parents hold that it lacks (one message), then makes it and keeps its
 * update for the others.
 */
function applyConcurrent(steps) {
  const replicas = [];
  const current = new Array(trace.numAgents);
  const log = new Array(trace.txns.length);
  trace.txns.forEach((txn, index) => {
    const step = steps[index];
    if (current[txn.agent] === undefined || step.fork) {
      current[txn.agent] = lib.create(txn.agent);
      replicas.push(current[txn.agent]);
    }
    const r = current[txn.agent];
    if (step.receive.length > 0) lib.receive(r, step.receive.map((t) => log[t]));
    const update = lib.editWithUpdate(r, txn.patches);
    if (!(update instanceof Uint8Array)) throw new Error(`${lib.name}: no update for txn ${index}`);
    log[index] = update;
  });
  return { replicas, main: undefined };
}

function oneRun(steps, problems, measureMemory) {
  let heap;
  let wasm;
  if (measureMemory) settle();
  const heapBefore = process.memoryUsage().heapUsed;
  const wasmBefore = wasmMemoryBytes();
  const [applyMs, applied] = timed(() => (trace.concurrent ? applyConcurrent(steps) : applySequential()));
  if (measureMemory) {
    settle();
    heap = process.memoryUsage().heapUsed - heapBefore;
    wasm = wasmMemoryBytes() - wasmBefore;
  }

  // What the other steps start from: the sequential replica, or every final replica merged
  // into an empty one (timed: that is the concurrent trace's merge).
  let mergeMs;
  let source = applied.main;
  if (trace.concurrent) {
    const encoded = applied.replicas.map((r) => lib.encode(r));
    const target = lib.create(trace.numAgents + 1);
    [mergeMs] = timed(() => {
      lib.mergeInto(target, encoded);
      return lib.text(target);
    });
    checkText(problems, "merged", lib.text(target));
    source = target;
    applied.replicas.push(target);
  } else {
    checkText(problems, "applied", lib.text(source));
  }

  const [encodeMs, bytes] = timed(() => lib.encode(source));
  const [loadMs, loaded] = timed(() => {
    const r = lib.load(bytes);
    return { r, text: lib.text(r) };
  });
  checkText(problems, "loaded", loaded.text);
  lib.free(loaded.r);

  if (!trace.concurrent) {
    const target = lib.create(1);
    let text;
    [mergeMs] = timed(() => {
      lib.mergeInto(target, [bytes]);
      text = lib.text(target);
    });
    checkText(problems, "merged", text);
    lib.free(target);
  }
  for (const r of applied.replicas) lib.free(r);
  return { applyMs, encodeMs, loadMs, mergeMs, bytes: bytes.length, heap, wasm, replicas: applied.replicas.length };
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

const problems = new Set();
const notes = [];
const steps = trace.concurrent ? plan(trace).steps : undefined;
const runs = [];
let runsPlanned = runsWanted;
const started = performance.now();
for (let i = 0; i < runsPlanned; i++) {
  try {
    runs.push(oneRun(steps, problems, i === 0));
  } catch (error) {
    problems.add(`run ${i + 1}: ${error?.stack ?? error}`);
    break;
  }
  process.stderr.write(`  ${lib.name} ${trace.name}: run ${i + 1} apply ${runs[i].applyMs.toFixed(1)} ms\n`);
  if (i === 0 && performance.now() - started > SLOW_RUN_MS) {
    const first = performance.now() - started;
    runsPlanned = Math.max(1, Math.min(runsWanted, Math.floor(SLOW_BUDGET_MS / first)));
    if (runsPlanned < runsWanted) {
      notes.push(`${runsPlanned} of ${runsWanted} runs: the first run took ${(first / 1000).toFixed(1)} s (over 2 s)`);
    }
  }
}

const pick = (key) => (runs.length > 0 ? median(runs.map((r) => r[key])) : null);
const first = runs[0];
const result = {
  library: lib.name,
  version: lib.version,
  trace: trace.name,
  ops: trace.ops,
  apply_ms: pick("applyMs"),
  encode_ms: pick("encodeMs"),
  load_ms: pick("loadMs"),
  merge_ms: pick("mergeMs"),
  bytes: pick("bytes"),
  js_heap_bytes: first ? first.heap : null,
  wasm_memory_bytes: first ? (wasmInstances() > 0 ? first.wasm : 0) : null,
  ok: problems.size === 0 && runs.length > 0,
  runs: runs.length,
};
if (problems.size > 0) result.problems = [...problems];
if (notes.length > 0) result.notes = notes;
process.stdout.write(`${JSON.stringify(result)}\n`);
