// The JS benchmark: replays editing traces through crdt-toolkit (the npm package built in
// ../../wasm/pkg), Yjs, Loro and Automerge in Node, one process per library and trace, and
// prints a table per trace with every row's ratio to the best peer. See README.md.
//
//   node bench.mjs [--trace FILE ...] [--library NAME ...] [--runs N] [--timeout SECONDS]
//                  [--json OUT] [--txt OUT]

import { spawn } from "node:child_process";
import { writeFileSync, existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { LIBRARIES } from "./libraries.mjs";
import { traceName } from "./trace.mjs";

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const TRACES = here("../../../shared/traces/");
const DEFAULT_TRACES = [
  "sequential/automerge-paper.json.gz",
  "sequential/seph-blog1.json.gz",
  "sequential/friendsforever_flat.json.gz",
  "sequential/clownschool_flat.json.gz",
  "sequential/json-crdt-patch.json.gz",
  "sequential/ascii_only/seph-blog1.json.gz",
  "sequential/ascii_only/json-crdt-patch.json.gz",
  "egwalker-paper/S3.json.gz",
  "concurrent/friendsforever.json.gz",
  "concurrent/clownschool.json.gz",
  "egwalker-paper/A1.json.gz",
].map((t) => TRACES + t);

function usage(message) {
  process.stderr.write(
    `${message}\nusage: node bench.mjs [--trace FILE ...] [--library ${Object.keys(LIBRARIES).join("|")} ...] [--runs N] [--timeout SECONDS] [--json OUT] [--txt OUT]\n`,
  );
  process.exit(2);
}

function parseArgs(argv) {
  const options = { traces: [], libraries: [], runs: 5, timeout: 900, json: undefined, txt: undefined };
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    const need = () => {
      if (value === undefined) usage(`${argv[i]} needs a value`);
      i += 1;
      return value;
    };
    switch (argv[i]) {
      case "--trace": options.traces.push(need()); break;
      case "--library": {
        const name = need();
        if (!(name in LIBRARIES)) usage(`unknown library ${name}`);
        options.libraries.push(name);
        break;
      }
      case "--runs": options.runs = Number(need()); break;
      case "--timeout": options.timeout = Number(need()); break;
      case "--json": options.json = need(); break;
      case "--txt": options.txt = need(); break;
      default: usage(`unknown argument ${argv[i]}`);
    }
  }
  if (!Number.isInteger(options.runs) || options.runs < 1) usage("--runs needs a positive integer");
  if (!(options.timeout > 0)) usage("--timeout needs a positive number of seconds");
  if (options.traces.length === 0) options.traces = DEFAULT_TRACES;
  if (options.libraries.length === 0) options.libraries = Object.keys(LIBRARIES);
  for (const trace of options.traces) if (!existsSync(trace)) usage(`no such trace: ${trace}`);
  return options;
}

/** Runs measure.mjs for one library and trace; a row (with problems if it failed). */
function measure(library, trace, runs, timeoutSeconds) {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ["--expose-gc", "--max-old-space-size=16384", here("./measure.mjs"), library, trace, String(runs)],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
      process.stderr.write(chunk);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutSeconds * 1000);
    child.on("close", (code) => {
      clearTimeout(timer);
      const name = traceName(trace);
      const failed = (problem) => ({ library, version: null, trace: name, ok: false, runs: 0, problems: [problem] });
      if (timedOut) return resolve(failed(`not finished within the ${timeoutSeconds} s limit`));
      try {
        resolve(JSON.parse(stdout.trim().split("\n").pop()));
      } catch {
        resolve(failed(`the measuring process exited with ${code}: ${stderr.trim().split("\n").slice(-3).join(" | ")}`));
      }
    });
  });
}

const COLUMNS = [
  ["apply ms", "apply_ms", "ms"],
  ["encode ms", "encode_ms", "ms"],
  ["bytes", "bytes", "count"],
  ["load ms", "load_ms", "ms"],
  ["merge ms", "merge_ms", "ms"],
  ["JS heap", "js_heap_bytes", "size"],
  ["wasm memory", "wasm_memory_bytes", "size"],
  ["memory", "memory_bytes", "size"],
];

function format(value, kind) {
  if (value === null || value === undefined) return "-";
  if (kind === "count") return value.toLocaleString("en-US");
  if (kind === "size") {
    if (Math.abs(value) >= 1024 * 1024) return `${(value / 1024 / 1024).toFixed(2)} MiB`;
    return `${(value / 1024).toFixed(1)} KiB`;
  }
  if (value >= 1000) return value.toFixed(0);
  if (value >= 100) return value.toFixed(1);
  if (value >= 1) return value.toFixed(2);
  return value.toFixed(3);
}

function table(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [line(headers), ...rows.map(line)].join("\n");
}

function report(traceName, header, rows) {
  const out = [`== ${traceName} (${header}) ==`];
  out.push(
    table(
      ["library", "version", ...COLUMNS.map(([h]) => h), "ok"],
      rows.map((r) => [r.library, r.version ?? "-", ...COLUMNS.map(([, key, kind]) => format(r[key], kind)), r.ok ? "ok" : "FAILED"]),
    ),
  );
  const peers = rows.filter((r) => r.library !== "crdt-toolkit" && r.ok);
  const best = {};
  for (const [, key] of COLUMNS) {
    const candidates = peers.filter((r) => typeof r[key] === "number" && r[key] > 0);
    if (candidates.length > 0) best[key] = candidates.reduce((a, b) => (b[key] < a[key] ? b : a));
  }
  out.push(
    `best peer: ${COLUMNS.filter(([, key]) => best[key]).map(([h, key, kind]) => `${h} ${best[key].library} (${format(best[key][key], kind)})`).join(" | ")}`,
  );
  out.push(
    table(
      ["× best peer", "", ...COLUMNS.map(([h]) => h)],
      rows.map((r) => [
        r.library,
        "",
        ...COLUMNS.map(([, key]) => (best[key] && typeof r[key] === "number" ? (r[key] / best[key][key]).toFixed(2) : "-")),
      ]),
    ),
  );
  for (const r of rows) {
    for (const note of r.notes ?? []) out.push(`note: ${r.library}: ${note}`);
    for (const problem of r.problems ?? []) out.push(`!!! ERROR ${r.library}: ${problem}`);
  }
  return out.join("\n");
}

const options = parseArgs(process.argv.slice(2));
const { loadTrace, plan } = await import("./trace.mjs");
const results = [];
const sections = [
  `node ${process.version}; runs per figure: median of up to ${options.runs}; memory from the first run`,
];
let failed = false;
for (const tracePath of options.traces) {
  const trace = loadTrace(tracePath);
  const chars = [...trace.endContent].length.toLocaleString("en-US");
  let header = `${trace.concurrent ? "concurrent" : "sequential"}: `;
  if (trace.concurrent) {
    const p = plan(trace);
    header += `${trace.numAgents} agents, ${trace.txns.length.toLocaleString("en-US")} txns, ${trace.ops.toLocaleString("en-US")} ops, ${chars} chars at the end; ${p.deliveries.toLocaleString("en-US")} update deliveries, ${p.forks} forks`;
  } else {
    header += `${trace.txns.length.toLocaleString("en-US")} txns, ${trace.ops.toLocaleString("en-US")} ops, ${chars} chars at the end`;
  }
  process.stderr.write(`== ${trace.name} ==\n`);
  const rows = [];
  for (const library of options.libraries) {
    const row = await measure(library, tracePath, options.runs, options.timeout);
    row.memory_bytes =
      typeof row.js_heap_bytes === "number" && typeof row.wasm_memory_bytes === "number"
        ? Math.max(0, row.js_heap_bytes) + row.wasm_memory_bytes
        : null;
    failed ||= !row.ok;
    rows.push(row);
    results.push(row);
  }
  const section = report(trace.name, header, rows);
  sections.push(section);
  process.stdout.write(`${section}\n\n`);
}
if (options.json) writeFileSync(options.json, `${JSON.stringify(results, null, 2)}\n`);
if (options.txt) writeFileSync(options.txt, `${sections.join("\n\n")}\n`);
process.exitCode = failed ? 1 : 0;
