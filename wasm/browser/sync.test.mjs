// The browser sync client end to end: pages of browser/sync.html in headless Chromium
// (Playwright driving Debian's chromium) sync through a real sync-server process. Run by
// `cargo xtask test` (node --test) after the package is built; every test saves a screenshot
// in pkg/screenshots/. Contexts are separate browsers' worth of storage; pages of one context
// are tabs of one origin.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { freePort, startServer } from '../test-support/server.mjs';
import { contentType, fileFor, serveDirectory } from '../test-support/static-server.mjs';

const root = fileURLToPath(new URL('..', import.meta.url)); // wasm/
const shots = join(root, 'pkg', 'screenshots');
mkdirSync(shots, { recursive: true });

let browser;
let statics;
let sync;
const problems = [];

before(async () => {
  statics = await serveDirectory(root);
  sync = await startServer();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      // Pages are served through `route` (see newContext), which Chromium's local network
      // access checks treat as a public origin reaching loopback; a deployed app is served
      // by a real server instead.
      '--disable-features=LocalNetworkAccessChecks,PrivateNetworkAccessChecks,BlockInsecurePrivateNetworkRequests',
    ],
  });
});

after(async () => {
  await browser?.close();
  statics?.close();
  await sync?.kill();
});

/**
 * A fresh browser profile. Its pages' files come from disk through `route`, not the network,
 * so that a page reloads while the context is offline (a real app would use a service
 * worker; the test is about the document, not about caching the app).
 */
async function newContext() {
  const context = await browser.newContext();
  await context.route(`http://127.0.0.1:${statics.port}/**`, async (route) => {
    const file = fileFor(root, new URL(route.request().url()).pathname);
    if (!file) return route.fulfill({ status: 404 });
    return route.fulfill({ status: 200, contentType: contentType(file), body: readFileSync(file) });
  });
  return context;
}

/** Opens the note page on `doc` and waits for the app to be ready. */
async function openPage(context, { doc, name, color = '#36c', server = sync.url }) {
  const page = await context.newPage();
  page.on('pageerror', (error) => problems.push(`${name}: page error: ${error.message}`));
  page.on('console', (message) => {
    // The browser itself logs each failed WebSocket connection while the server is down.
    if (message.type() === 'error' && !message.text().startsWith('WebSocket connection to')) {
      problems.push(`${name}: console error: ${message.text()}`);
    }
  });
  const query = new URLSearchParams({ server, doc, name, color });
  await page.goto(`http://127.0.0.1:${statics.port}/browser/sync.html?${query}`);
  await page.waitForFunction(() => window.app !== undefined, undefined, { timeout: 20_000 });
  return page;
}

const textOf = (page) => page.evaluate(() => window.app.text.toString());
const insert = (page, index, text) =>
  page.evaluate(([i, t]) => window.app.text.insert(i, t), [index, text]);
const waitFor = (page, predicate, arg, timeout = 15_000) =>
  page.waitForFunction(predicate, arg, { timeout, polling: 50 });
const shoot = (page, name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

test('two browsers edit one document through the server and converge', async () => {
  const [one, two] = [await newContext(), await newContext()];
  const ana = await openPage(one, { doc: 'converge', name: 'Ana', color: '#c33' });
  const ben = await openPage(two, { doc: 'converge', name: 'Ben', color: '#393' });
  await insert(ana, 0, 'Hello from Ana. ');
  await insert(ben, 0, 'Ben was here. ');
  for (const page of [ana, ben]) {
    await waitFor(page, () => window.app.text.length === 30);
    await waitFor(page, () => window.app.client.isSaved());
  }
  assert.equal(await textOf(ana), await textOf(ben));
  assert.match(await textOf(ana), /Hello from Ana\. /);
  await waitFor(ana, () => document.getElementById('status').textContent === 'saved');
  await shoot(ana, 'converge-ana');
  await shoot(ben, 'converge-ben');
  await one.close();
  await two.close();
  assert.deepEqual(problems, []);
});

test('a page offline edits, reloads while offline with its edits, and syncs when back', async () => {
  const [mine, theirs] = [await newContext(), await newContext()];
  const page = await openPage(mine, { doc: 'offline', name: 'Ana' });
  await insert(page, 0, 'online. ');
  await waitFor(page, () => window.app.client.isSaved());
  await mine.setOffline(true);
  // The socket fails or stays silent: either way the edit waits, unacknowledged.
  await insert(page, 8, 'offline edit. ');
  await page.evaluate(() => window.app.client.whenStored());
  await page.reload();
  await page.waitForFunction(() => window.app !== undefined, undefined, { timeout: 20_000 });
  assert.equal(await textOf(page), 'online. offline edit. ');
  await waitFor(page, () => document.getElementById('status').textContent === 'offline');
  assert.equal(await page.evaluate(() => window.app.client.isSaved()), false);
  await shoot(page, 'offline-reloaded');
  // Back online: the browser's online event reconnects at once; the edit reaches the server.
  await mine.setOffline(false);
  await waitFor(page, () => window.app.client.isSaved());
  const other = await openPage(theirs, { doc: 'offline', name: 'Ben' });
  await waitFor(other, () => window.app.text.toString() === 'online. offline edit. ');
  await shoot(page, 'offline-back-online');
  await mine.close();
  await theirs.close();
  assert.deepEqual(problems, []);
});

test('two tabs share edits through BroadcastChannel with the server stopped', async () => {
  const nowhere = `ws://127.0.0.1:${await freePort()}`; // nothing listens there
  const context = await newContext();
  const first = await openPage(context, { doc: 'tabs', name: 'tab 1', server: nowhere });
  const second = await openPage(context, { doc: 'tabs', name: 'tab 2', server: nowhere });
  await insert(first, 0, 'typed in tab 1. ');
  await waitFor(second, () => window.app.text.toString() === 'typed in tab 1. ');
  await insert(second, 0, 'tab 2: ');
  await waitFor(first, () => window.app.text.toString() === 'tab 2: typed in tab 1. ');
  assert.equal(await first.evaluate(() => window.app.client.status), 'offline');
  await shoot(first, 'tabs-first');
  await shoot(second, 'tabs-second');
  await context.close();
  assert.deepEqual(problems, []);
});

test('presence shows across pages and goes when a page leaves', async () => {
  const [one, two] = [await newContext(), await newContext()];
  const ana = await openPage(one, { doc: 'presence', name: 'Ana', color: '#c33' });
  const ben = await openPage(two, { doc: 'presence', name: 'Ben', color: '#393' });
  await waitFor(ana, () => document.getElementById('peers').textContent === 'Ben');
  await waitFor(ben, () => document.getElementById('peers').textContent === 'Ana');
  await shoot(ana, 'presence-ana');
  await ben.evaluate(() => window.app.client.setPresence(window.app.docId, null));
  await waitFor(ana, () => document.getElementById('peers').textContent === 'nobody else');
  // Back, then gone with its page: the server drops a closed connection's presence.
  await ben.evaluate(() => window.app.client.setPresence(window.app.docId, { name: 'Ben', color: '#393' }));
  await waitFor(ana, () => document.getElementById('peers').textContent === 'Ben');
  await two.close();
  await waitFor(ana, () => document.getElementById('peers').textContent === 'nobody else');
  await one.close();
  assert.deepEqual(problems, []);
});
