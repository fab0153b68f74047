// Scenario 3 of the server benchmark (bench/README.md): one writer, N observers on one
// document, each server with its own clients (ours: the package's SyncClient; Hocuspocus:
// @hocuspocus/provider; y-websocket-server: y-websocket's WebsocketProvider), all in this
// Node process over loopback. The writer sets a map key to a tick number at a steady rate;
// every observer records when it sees each tick. Reports propagation latency p50/p99/p999,
// the server's CPU per update per observer, its memory, and this generator's own CPU (the
// generator and the server share the machine's cores).
//
//   node bench/servers/fanout.mjs [--observers 100,1000] [--ticks 100] [--hz 20]
//        [--servers sync-server,hocuspocus,y-websocket-server] [--out DIR]
//
// Writes servers.md and servers.json into DIR (default bench/results).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { HocuspocusProvider, HocuspocusProviderWebsocket } from '@hocuspocus/provider';
import { WebSocket } from 'ws';
import { WebsocketProvider } from 'y-websocket';
import * as Y from 'yjs';

import { SyncClient } from '../../wasm/pkg/node.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = join(here, '..', '..');

function argument(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const OBSERVERS = argument('observers', '100,1000').split(',').map(Number);
const TICKS = Number(argument('ticks', '100'));
const HZ = Number(argument('hz', '20'));
const DOC = 'fanout';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/** How long all observers may take to join and sync before a run is given up. */
const JOIN_LIMIT_MS = 120_000;
// y-websocket's provider adds a process exit listener per client.
process.setMaxListeners(0);

async function until(check, ms, what) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** User + system CPU of a process, in ms (Linux /proc; 100 ticks per second). */
function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function rssMiB(pid) {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Number(line.split(/\s+/)[1]) / 1024;
}

/** Starts a server process; resolves once it answers. */
async function startServer(kind) {
  const port = await freePort();
  let child;
  if (kind === 'sync-server') {
    const binary = process.env.SYNC_SERVER_BIN ?? join(root, 'target/release/sync-server');
    const data = mkdtempSync(join(tmpdir(), 'bench-fanout-'));
    child = spawn(
      binary,
      ['--listen', `127.0.0.1:${port}`, '--data-dir', data, '--max-connections-per-ip', '20000', '--max-connections', '20000'],
      { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, SYNC_LOG: 'warn' } },
    );
  } else {
    const script = join(here, kind === 'hocuspocus' ? 'peer-hocuspocus.mjs' : 'peer-y-websocket.mjs');
    child = spawn(process.execPath, [script, String(port)], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/${kind === 'sync-server' ? 'healthz' : ''}`);
      if (response.status < 500) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${kind} did not start`);
    await sleep(50);
  }
  return { port, pid: child.pid, stop: () => child.kill('SIGKILL') };
}

/** One client of `kind`: `set(i)` (writers), `onTick(callback)`, `ready()`, `close()`. */
function connect(kind, port) {
  if (kind === 'sync-server') {
    const client = new SyncClient(`ws://127.0.0.1:${port}`, { WebSocket, storage: null, broadcast: false });
    let doc = null;
    let onTick = () => {};
    const opened = client.open(DOC).then((d) => {
      doc = d;
      d.subscribe((event) => {
        for (const change of event.changes) {
          if (change.kind === 'map' && change.action === 'set' && change.key === 'tick') onTick(change.value);
        }
      });
    });
    return {
      ready: async () => {
        await opened;
        await until(() => client.status === 'saved', 60_000, 'a subscription');
      },
      set: (i) => doc.root.set('tick', i),
      onTick: (callback) => (onTick = callback),
      close: () => client.destroy(),
    };
  }
  const ydoc = new Y.Doc();
  const map = ydoc.getMap('m');
  let onTick = () => {};
  map.observe((event) => {
    if (event.keysChanged.has('tick')) onTick(map.get('tick'));
  });
  let synced = false;
  let close;
  if (kind === 'hocuspocus') {
    const socket = new HocuspocusProviderWebsocket({ url: `ws://127.0.0.1:${port}`, WebSocketPolyfill: WebSocket });
    const provider = new HocuspocusProvider({
      websocketProvider: socket,
      name: DOC,
      document: ydoc,
      onSynced: () => (synced = true),
    });
    provider.attach?.();
    close = () => {
      provider.destroy();
      socket.destroy();
    };
  } else {
    const provider = new WebsocketProvider(`ws://127.0.0.1:${port}`, DOC, ydoc, { WebSocketPolyfill: WebSocket });
    provider.on('sync', (isSynced) => (synced = isSynced));
    close = () => provider.destroy();
  }
  return {
    ready: () => until(() => synced, 60_000, 'a sync'),
    set: (i) => map.set('tick', i),
    onTick: (callback) => (onTick = callback),
    close,
  };
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function run(kind, observers) {
  const server = await startServer(kind);
  const clients = [];
  try {
    const writer = connect(kind, server.port);
    clients.push(writer);
    await writer.ready();
    const sent = new Float64Array(TICKS + 1);
    const latencies = [];
    let received = 0;
    const joinStarted = performance.now();
    for (let i = 0; i < observers; i++) {
      const observer = connect(kind, server.port);
      clients.push(observer);
      observer.onTick((tick) => {
        if (typeof tick === 'number' && tick >= 1 && tick <= TICKS) {
          latencies.push(performance.now() - sent[tick]);
          received += 1;
        }
      });
      // Join a few at a time: a connect storm is another scenario.
      if (i % 50 === 49) await observer.ready();
      if (performance.now() - joinStarted > JOIN_LIMIT_MS) {
        throw new Error(`${i + 1} of ${observers} observers joined in ${JOIN_LIMIT_MS / 1000} s`);
      }
    }
    await Promise.all(clients.map((c) => c.ready()));
    await sleep(500);
    const serverCpu = cpuMs(server.pid);
    const ownCpu = process.cpuUsage();
    const started = performance.now();
    for (let tick = 1; tick <= TICKS; tick++) {
      sent[tick] = performance.now();
      writer.set(tick);
      await sleep(1000 / HZ);
    }
    const expected = TICKS * observers;
    await until(() => received >= expected, 30_000, 'every tick at every observer').catch(() => {});
    const elapsed = performance.now() - started;
    const serverCpuUsed = cpuMs(server.pid) - serverCpu;
    const own = process.cpuUsage(ownCpu);
    latencies.sort((a, b) => a - b);
    return {
      server: kind,
      observers,
      ticks: TICKS,
      p50_ms: percentile(latencies, 50),
      p99_ms: percentile(latencies, 99),
      p999_ms: percentile(latencies, 99.9),
      max_ms: latencies.at(-1),
      missing: expected - received,
      server_cpu_us_per_update_per_observer: (serverCpuUsed * 1000) / expected,
      server_cpu_percent: (serverCpuUsed / elapsed) * 100,
      server_rss_mib: rssMiB(server.pid),
      generator_cpu_percent: ((own.user + own.system) / 1000 / elapsed) * 100,
    };
  } finally {
    for (const client of clients) client.close();
    server.stop();
  }
}

const SERVERS = argument('servers', 'sync-server,hocuspocus,y-websocket-server').split(',');
const results = [];
for (const observers of OBSERVERS) {
  for (const kind of SERVERS) {
    process.stderr.write(`fan-out: ${kind}, ${observers} observers... `);
    let result;
    try {
      result = await run(kind, observers);
      process.stderr.write(`p50 ${result.p50_ms.toFixed(2)} ms, p99 ${result.p99_ms.toFixed(2)} ms\n`);
    } catch (error) {
      // Reported in the table, not hidden: the row says what went wrong.
      result = { server: kind, observers, ticks: TICKS, failed: String(error?.message ?? error) };
      process.stderr.write(`failed: ${result.failed}\n`);
    }
    results.push(result);
    await sleep(500);
  }
}

const fmt = (n, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : '-');
const lines = [
  '# Server benchmark',
  '',
  `Written by \`node bench/servers/fanout.mjs\` on ${new Date().toISOString().slice(0, 10)}; method in bench/README.md. One machine (2 cores) runs the server and this generator (all clients in one Node process); the generator's CPU is reported beside the server's.`,
  '',
  `## Scenario 3: fan-out (1 writer, N observers, ${TICKS} map writes at ${HZ} Hz)`,
  '',
  '| observers | server | p50 ms | p99 ms | p999 ms | max ms | missing | server CPU µs / update / observer | server CPU % | server RSS MiB | generator CPU % | p99 / best |',
  '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
];
for (const observers of OBSERVERS) {
  const rows = results.filter((r) => r.observers === observers);
  const best = Math.min(...rows.filter((r) => !r.failed).map((r) => r.p99_ms));
  for (const r of rows) {
    if (r.failed) {
      lines.push(`| ${observers} | ${r.server} | failed: ${r.failed} | | | | | | | | | |`);
      continue;
    }
    lines.push(
      `| ${observers} | ${r.server} | ${fmt(r.p50_ms)} | ${fmt(r.p99_ms)} | ${fmt(r.p999_ms)} | ${fmt(r.max_ms)} | ${r.missing} | ${fmt(r.server_cpu_us_per_update_per_observer, 1)} | ${fmt(r.server_cpu_percent, 0)} | ${fmt(r.server_rss_mib, 0)} | ${fmt(r.generator_cpu_percent, 0)} | ${fmt(r.p99_ms / best)} |`,
    );
  }
}
lines.push('');
const out = argument('out', join(root, 'bench', 'results'));
writeFileSync(join(out, 'servers.md'), lines.join('\n'));
writeFileSync(join(out, 'servers.json'), `${JSON.stringify({ fanout: results }, null, 2)}\n`);
console.log(lines.join('\n'));
process.exit(0);
