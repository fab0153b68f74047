// Opens browser/index.html in headless Chromium (Playwright) from a loopback static server
// over the wasm/ directory, checks that the page reports PASS with no console or page errors,
// and saves a screenshot. Run by `cargo xtask test` after the package is built into pkg/.
// Stops by itself within a minute in every case.
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const root = fileURLToPath(new URL('..', import.meta.url)); // wasm/
const screenshot = join(root, 'pkg', 'browser-screenshot.png');
const types = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm', // lets the browser compile while downloading
  '.json': 'application/json',
  '.png': 'image/png',
};

const server = createServer((request, response) => {
  const path = normalize(decodeURIComponent(new URL(request.url, 'http://x').pathname));
  const file = join(root, path);
  if (!file.startsWith(root.endsWith(sep) ? root : root + sep)) {
    response.writeHead(403).end();
    return;
  }
  try {
    if (!statSync(file).isFile()) throw new Error('not a file');
    response.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' });
    response.end(readFileSync(file));
  } catch {
    response.writeHead(404).end();
  }
});

const deadline = setTimeout(() => {
  console.error('browser test: timed out after 60 s');
  process.exit(1);
}, 60_000);

await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address();
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
