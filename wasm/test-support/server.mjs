// Shared by the test files (no tests of its own): a real sync-server process on a loopback
// port, started and killed by the tests.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The server binary: `SYNC_SERVER_BIN` (set by `cargo xtask test`), else the debug build. */
export function serverBinary() {
  const path =
    process.env.SYNC_SERVER_BIN ??
    fileURLToPath(new URL('../../target/debug/sync-server', import.meta.url));
  if (!existsSync(path)) {
    throw new Error(`no sync-server binary at ${path}: run \`cargo build -p sync-server\` first`);
  }
  return path;
}

/** A free loopback port (bound, read, released). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** Polls `check` every 20 ms until it returns true; throws after `ms`. */
export async function until(check, ms = 10_000, what = 'condition') {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Starts `sync-server` on `port` (free one by default) storing in `dataDir` (a fresh temp dir
 * by default), with extra `args`; resolves once `/healthz` answers.
 */
export async function startServer({ port, dataDir, args = [] } = {}) {
  port ??= await freePort();
  dataDir ??= mkdtempSync(join(tmpdir(), 'crdt-sync-test-'));
  const child = spawn(
    serverBinary(),
    ['--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, ...args],
    { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, SYNC_LOG: 'warn' } },
  );
  const exited = new Promise((resolve) => child.once('exit', resolve));
  await until(async () => {
    if (child.exitCode !== null) throw new Error(`sync-server exited with ${child.exitCode}`);
    try {
      return (await fetch(`http://127.0.0.1:${port}/healthz`)).ok;
    } catch {
      return false;
    }
  }, 20_000, 'the server to start');
  return {
    port,
    dataDir,
    url: `ws://127.0.0.1:${port}`,
    /** Kills the process (SIGKILL: no clean shutdown) and waits for it to exit. */
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}
