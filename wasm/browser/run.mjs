// Opens browser/index.html in headless Chromium (Playwright) from a loopback static server
// over the wasm/ directory, checks that the page reports PASS with no console or page errors,
// and saves a screenshot. Run by `cargo xtask test` after the package is built into pkg/.
// Stops by itself within a minute in every case.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { serveDirectory } from '../test-support/static-server.mjs';

const root = fileURLToPath(new URL('..', import.meta.url)); // wasm/
const screenshot = join(root, 'pkg', 'browser-screenshot.png');

const deadline = setTimeout(() => {
  console.error('browser test: timed out after 60 s');
  process.exit(1);
}, 60_000);

const server = await serveDirectory(root);
const { port } = server;
const profile = mkdtempSync(join(tmpdir(), 'crdt-chromium-'));
const problems = [];
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  await page.goto(`http://127.0.0.1:${port}/browser/index.html`);
  await page.waitForFunction(
    () => ['PASS', 'FAIL'].includes(document.getElementById('status')?.textContent ?? ''),
    undefined,
    { timeout: 30_000 },
  );
  const status = await page.textContent('#status');
  const checks = await page.$$eval('#checks li', (items) => items.map((item) => item.textContent));
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(checks.join('\n'));
  console.log(`screenshot: ${screenshot}`);
  if (status !== 'PASS') problems.push(`the page reports ${status}`);
} catch (error) {
  problems.push(String(error && error.stack || error));
} finally {
  await context?.close().catch(() => {});
  server.close();
  rmSync(profile, { recursive: true, force: true });
  clearTimeout(deadline);
}
if (problems.length > 0) {
  console.error(`browser test FAILED:\n${problems.join('\n')}`);
  process.exit(1);
}
console.log('browser test: PASS in headless Chromium');
