// Loading an editing trace (format: ../../shared/traces/README.md) and planning how a
// concurrent one is replayed with one replica per agent, exactly as the Rust bench does
// (bench/src/plan.rs): the same plan, so the two benches measure the same deliveries.

import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { basename } from "node:path";

/**
 * Reads a trace. Every library measured here indexes text in UTF-16 code units, while the
 * trace's positions are code points; a trace holding characters outside the BMP is converted
 * once, here, before any timing (sequential traces only: the versions of a concurrent trace
 * differ per replica, and none of the concurrent traces needs it, which is checked).
 */
export function loadTrace(path) {
  let raw = readFileSync(path);
  if (path.endsWith(".gz")) raw = gunzipSync(raw);
  const json = JSON.parse(raw.toString("utf8"));
  const name = traceName(path);
  const concurrent = json.kind === "concurrent" && json.txns.some((t) => t.parents.length > 0);
  const txns = json.txns.map((t, index) => ({
    parents: t.parents ?? (index === 0 ? [] : [index - 1]),
    agent: t.agent ?? 0,
    patches: t.patches,
  }));
  const nonBmp = txns.some((t) => t.patches.some((p) => hasNonBmp(p[2])));
  if (nonBmp) {
    if (concurrent) {
      throw new Error(`${name}: a concurrent trace with characters outside the BMP is not supported`);
    }
    toUtf16(txns);
  }
  const ops = txns.reduce((sum, t) => sum + t.patches.length, 0);
  return {
    name,
    concurrent,
    endContent: json.endContent,
    numAgents: concurrent ? (json.numAgents ?? 1 + Math.max(...txns.map((t) => t.agent))) : 1,
    txns,
    ops,
    nonBmp,
  };
}

/** The file name without `.json[.gz]`, with `ascii_only/` kept for the ASCII copies. */
export function traceName(path) {
  const name = basename(path).replace(/\.json(\.gz)?$/, "");
  return path.includes("/ascii_only/") ? `ascii_only/${name}` : name;
}

function hasNonBmp(text) {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) return true;
  }
  return false;
}

/**
 * Rewrites code point positions and delete counts as UTF-16 ones. Characters outside the BMP
 * are rare, so this keeps only their code point positions (sorted) and shifts them per patch:
 * a position's UTF-16 offset is the position plus the number of such characters before it.
 */
function toUtf16(txns) {
  let astral = []; // code point positions of the non-BMP chars in the current text
  const before = (pos) => astral.filter((a) => a < pos).length;
  for (const txn of txns) {
    txn.patches = txn.patches.map(([pos, del, ins]) => {
      const at = pos + before(pos);
      const units = del + before(pos + del) - before(pos);
      const chars = Array.from(ins);
      const added = [];
      chars.forEach((c, i) => {
        if (c.length === 2) added.push(pos + i);
      });
      astral = [
        ...astral.filter((a) => a < pos),
        ...added,
        ...astral.filter((a) => a >= pos + del).map((a) => a - del + chars.length),
      ];
      return [at, units, ins];
    });
  }
}

/**
 * For every transaction of a concurrent trace: whether its agent needs a fresh replica (a
 * fork: its replica holds something the transaction did not see) and which earlier
 * transactions that replica must receive first, in index order.
 */
export function plan(trace) {
  const n = trace.txns.length;
  const held = Array.from({ length: trace.numAgents }, () => new Uint8Array(n));
  const last = new Array(trace.numAgents).fill(-1);
  const visited = new Float64Array(n).fill(-1);
  const steps = [];
  let forks = 0;
  let deliveries = 0;
  trace.txns.forEach((txn, index) => {
    const agent = txn.agent;
    const fork = last[agent] >= 0 && !isAncestor(trace, last[agent], txn.parents, 2 * index, visited);
    if (fork) {
      held[agent].fill(0);
      forks += 1;
    }
    const receive = [];
    const stamp = 2 * index + 1;
    const stack = [...txn.parents];
    while (stack.length > 0) {
      const t = stack.pop();
      if (visited[t] === stamp || held[agent][t]) continue;
      visited[t] = stamp;
      receive.push(t);
      stack.push(...trace.txns[t].parents);
    }
    receive.sort((a, b) => a - b);
    for (const t of receive) held[agent][t] = 1;
    held[agent][index] = 1;
    last[agent] = index;
    deliveries += receive.length;
    steps.push({ fork, receive });
  });
  return { steps, forks, deliveries };
}

function isAncestor(trace, target, parents, stamp, visited) {
  const stack = [...parents];
  while (stack.length > 0) {
    const t = stack.pop();
    if (t === target) return true;
    if (t < target || visited[t] === stamp) continue;
    visited[t] = stamp;
    stack.push(...trace.txns[t].parents);
  }
  return false;
}
