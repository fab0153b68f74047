// SyncClient through the built package against a real sync-server process on loopback, with
// Node's `ws` as the WebSocket: convergence, nothing acknowledged lost across a server kill,
// refusals surfaced, and the reconnection backoff observed on a fake clock.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { WebSocket } from 'ws';

import { CrdtError, Doc, MemoryStorage, SyncClient } from '../pkg/node.js';
import { startServer, until } from '../test-support/server.mjs';

const servers = [];
const clients = [];
after(async () => {
  for (const client of clients) client.destroy();
  for (const server of servers) await server.kill();
});

async function server(options) {
  const started = await startServer(options);
  servers.push(started);
  return started;
}

function client(url, options = {}) {
  // No BroadcastChannel unless a test asks: clients in one process would otherwise share
  // changes without the server, and the server tests would prove nothing.
  const made = new SyncClient(url, {
    WebSocket,
    backoff: { initialMs: 50, maxMs: 500 },
    broadcast: false,
    ...options,
  });
  clients.push(made);
  return made;
}

describe('SyncClient against sync-server', () => {
  test('two clients converge, and whenSaved resolves once the server stored every change', async () => {
    const { url } = await server();
    const a = client(url);
    const b = client(url);
    assert.equal(a.status, 'connecting');
    const statuses = [];
    a.on('status', (status) => statuses.push(status));
    const docA = await a.open('notes/1');
    const docB = await b.open('notes/1');
    docA.getText('body').insert(0, 'Hello 👋');
    docB.getList('items').push('from b');
    await Promise.all([a.whenSaved(), b.whenSaved()]);
    assert.equal(a.isSaved(), true);
    await until(() => docA.getList('items').length === 1 && docB.getText('body').toString() === 'Hello 👋');
    assert.deepEqual(docA.toJSON(), docB.toJSON());
    // Many edits in one task travel as one batch and are all acknowledged.
    for (let i = 0; i < 100; i++) docB.getText('body').insert(0, String(i % 10));
    await b.whenSaved('notes/1');
    await until(() => docA.getText('body').length === docB.getText('body').length);
    assert.deepEqual(docA.toJSON(), docB.toJSON());
    assert.equal(a.status, 'saved');
    assert.deepEqual(statuses.slice(0, 3), ['online', 'syncing', 'saved']);
  });

  test('a server killed mid-edit loses nothing acknowledged; offline edits go out on reconnect', async () => {
    const first = await server();
    const storage = new MemoryStorage();
    const a = client(first.url, { storage });
    const doc = await a.open('notes/2');
    const list = doc.getList('log');
    // A burst of edits, and how many of them the server acknowledged as durable.
    const acknowledged = () => doc.viewAt(a.savedVersion('notes/2')).toJSON().log?.length ?? 0;
    let killed = false;
    const burst = (async () => {
      for (let i = 0; !killed || i < 400; i++) {
        list.push(i);
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();
    await until(() => acknowledged() >= 50, 10_000, '50 acknowledged edits');
    await first.kill(); // SIGKILL in the middle of the burst
    killed = true;
    const atKill = acknowledged();
    await burst;
    assert.ok(list.length > atKill, `${list.length} edits, ${atKill} acknowledged`);
    await until(() => a.status === 'offline', 5_000, 'offline');
    assert.equal(a.isSaved(), false); // the edits after the kill wait
    await a.whenStored();
    a.destroy();
    // The server comes back (same port and data). Before any client resends anything, it
    // holds every edit it acknowledged.
    const second = await server({ port: first.port, dataDir: first.dataDir });
    const fresh = client(second.url);
    const copy = await fresh.open('notes/2');
    await until(() => copy.getList('log').length >= atKill, 10_000, 'the acknowledged edits');
    assert.deepEqual(copy.getList('log').toArray().slice(0, atKill), list.toArray().slice(0, atKill));
    // The writer comes back from storage and sends what the server lacks.
    const again = client(second.url, { storage });
    await again.open('notes/2');
    await again.whenSaved();
    await until(() => copy.getList('log').length === list.length, 10_000, 'every edit');
    assert.deepEqual(copy.toJSON(), doc.toJSON());
  });

  test('refusals surface as events and whenSaved rejects; the edit stays local', async () => {
    const { url } = await server({ args: ['--max-document', '2000'] });
    const a = client(url);
    const refusals = [];
    a.on('refused', (refusal) => refusals.push(refusal));
    const doc = await a.open('big');
    doc.root.set('blob', 'x'.repeat(50_000));
    await assert.rejects(a.whenSaved(), (e) => e instanceof CrdtError && e.code === 'REFUSED');
    assert.deepEqual(
      refusals.map((r) => [r.doc, r.status, r.retryable]),
      [['big', 'tooLarge', false]],
    );
    assert.equal(doc.root.get('blob').length, 50_000);
    assert.equal(a.isSaved(), false);
  });

  test('presence: peers see each other, and a withdrawn presence disappears', async () => {
    const { url } = await server();
    const a = client(url);
    const b = client(url);
    const text = (await b.open('room')).getText('t');
    text.insert(0, 'hello world');
    await b.whenSaved();
    const docA = await a.open('room');
    await until(() => docA.getText('t').length === 11, 10_000, 'a to get the text');
    // A stable cursor travels in presence as bytes and resolves on the peer.
    a.setPresence('room', { name: 'Ana', color: '#c33', cursor: docA.getText('t').cursor(6) });
    await until(() => b.peers('room').length === 1, 10_000, 'b to see a');
    const { name, color, cursor } = b.peers('room')[0].state;
    assert.deepEqual([name, color], ['Ana', '#c33']);
    assert.ok(cursor instanceof Uint8Array);
    text.insert(0, '>> ');
    assert.equal(text.resolveCursor(cursor), 9); // still before 'world'
    assert.deepEqual(a.peers('room'), []); // its own presence is not a peer
    a.setPresence('room', null);
    await until(() => b.peers('room').length === 0, 10_000, 'a to leave');
  });

  test('bad arguments throw typed errors', async () => {
    assert.throws(() => new SyncClient('ws://127.0.0.1:1', {}), (e) => {
      // Node 20 has no global WebSocket: the error says what to pass.
      return typeof globalThis.WebSocket === 'function' || (e instanceof CrdtError && e.code === 'INVALID_ARGUMENT');
    });
    const a = client('ws://127.0.0.1:1');
    await assert.rejects(a.open(''), (e) => e.code === 'INVALID_ARGUMENT');
    const doc = await a.open('x');
    await assert.rejects(a.open('x', { doc: new Doc() }), (e) => e.code === 'INVALID_ARGUMENT');
    assert.equal(await a.open('x'), doc);
    assert.throws(() => a.peers('not open'), (e) => e.code === 'INVALID_ARGUMENT');
  });
});

describe('connections', () => {
  test('many documents over one connection', async () => {
    const { url } = await server();
    const a = client(url);
    const b = client(url);
    const ids = ['one', 'two', 'three'];
    for (const id of ids) (await a.open(id)).root.set('id', id);
    await a.whenSaved();
    const docs = await Promise.all(ids.map((id) => b.open(id)));
    await until(() => docs.every((doc, i) => doc.root.get('id') === ids[i]), 10_000, 'every document');
    a.close('two');
    (await b.open('two')).root.set('later', 1);
    await b.whenSaved();
    assert.equal(a.isSaved('two'), false); // closed: not synced any more
  });

  test('tokens: a valid one syncs, a refreshed one is accepted, a bad one is an error event', async () => {
    const secret = 'a test secret that is long enough';
    const { url } = await server({ args: ['--jwt-secret', secret] });
    const token = (sub, exp) => jwt(secret, { sub, exp, read: ['*'], write: ['*'] });
    const now = Math.floor(Date.now() / 1000);
    const a = client(url, { token: token('ana', now + 60) });
    const doc = await a.open('secret');
    doc.root.set('k', 1);
    await a.whenSaved();
    const authorized = new Promise((resolve) => a.on('authorized', resolve));
    a.setToken(token('ana', now + 3600));
    assert.equal((await authorized).expiresAt, now + 3600);
    // Read-only: local edits stay local, are reported once, and whenSaved rejects.
    const reader = client(url, { token: jwt(secret, { sub: 'r', exp: now + 60, read: ['*'], write: [] }) });
    const refusals = [];
    reader.on('refused', (refusal) => refusals.push(refusal));
    const readOnly = await reader.open('secret');
    await until(() => readOnly.root.get('k') === 1, 10_000, 'the reader to get the document');
    assert.equal(reader.isSaved(), true); // nothing of its own yet
    readOnly.root.set('mine', 2);
    await assert.rejects(reader.whenSaved(), (e) => e.code === 'REFUSED');
    await until(() => refusals.length === 1, 5_000, 'the read-only refusal');
    assert.deepEqual([refusals[0].status, refusals[0].retryable], ['permissionDenied', false]);
    assert.equal(readOnly.root.get('mine'), 2);
    const errors = [];
    const bad = client(url, { token: 'not.a.token' });
    bad.on('error', (error) => errors.push(error.code));
    await bad.open('secret');
    await until(() => errors.includes('unauthorized'), 10_000, 'the unauthorized error');
  });
});

/** An HS256 JSON Web Token, as the server verifies them. */
function jwt(secret, claims) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const body = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}`;
  const signature = createHmac('sha256', secret).update(body).digest('base64url');
  return `${body}.${signature}`;
}

describe('storage', () => {
  test('a client started while the server is down shows the stored edits, then syncs them', async () => {
    const storage = new MemoryStorage();
    const first = await server();
    const a = client(first.url, { storage });
    const doc = await a.open('offline-first');
    doc.getText('t').insert(0, 'saved');
    await a.whenSaved();
    await first.kill();
    doc.getText('t').insert(5, ' + unsynced');
    await a.whenStored();
    a.destroy();
    // "Reload" while the server is down: the document is there at once, with its unsynced edit.
    const b = client(first.url, { storage });
    const reloaded = await b.open('offline-first');
    assert.equal(reloaded.getText('t').toString(), 'saved + unsynced');
    assert.notEqual(reloaded.replica, doc.replica); // a new replica per load, never a reused one
    assert.equal(b.isSaved(), false);
    // The server comes back: the unsynced edit reaches it.
    const second = await server({ port: first.port, dataDir: first.dataDir });
    await b.whenSaved();
    const c = client(second.url);
    const copy = await c.open('offline-first');
    await until(() => copy.getText('t').toString() === 'saved + unsynced');
  });

  test('many small writes are folded into a snapshot; what loads is the same document', async () => {
    const storage = new MemoryStorage();
    const a = client('ws://127.0.0.1:9', { storage });
    const doc = await a.open('log');
    for (let i = 0; i < 250; i++) {
      doc.getList('l').push(i);
      await a.whenStored('log');
    }
    const parts = await storage.load('log');
    assert.ok(parts.length < 100, `${parts.length} parts`);
    const b = client('ws://127.0.0.1:9', { storage });
    const loaded = await b.open('log');
    assert.deepEqual(loaded.toJSON(), doc.toJSON());
  });

  test('a stored part this client cannot read is reported and never compacted away', async () => {
    const storage = new MemoryStorage();
    const unreadable = new Uint8Array([0xc7, 0xff, 1, 2, 3]); // as if from a newer version
    await storage.append('future', unreadable);
    const a = client('ws://127.0.0.1:9', { storage });
    const errors = [];
    a.on('storageError', ({ error }) => errors.push(error));
    const doc = await a.open('future');
    assert.equal(errors.length, 1);
    for (let i = 0; i < 150; i++) {
      doc.getList('l').push(i); // past the point where parts are folded into a snapshot
      await a.whenStored('future');
    }
    const parts = await storage.load('future');
    assert.deepEqual(parts[0], unreadable);
    assert.ok(parts.length > 100, `${parts.length} parts`);
    const loaded = await client('ws://127.0.0.1:9', { storage }).open('future');
    assert.equal(loaded.getList('l').length, 150);
  });

  test('a storage failure is an event and a rejected whenStored; the next write catches up', async () => {
    const storage = new MemoryStorage();
    let full = true;
    const append = storage.append.bind(storage);
    storage.append = async (key, update) => {
      if (full) throw new Error('QuotaExceededError');
      return append(key, update);
    };
    const a = client('ws://127.0.0.1:9', { storage });
    const errors = [];
    a.on('storageError', ({ error }) => errors.push(String(error)));
    const doc = await a.open('quota');
    doc.root.set('k', 1);
    await assert.rejects(a.whenStored(), /QuotaExceededError/);
    assert.ok(errors.length >= 1);
    full = false;
    doc.root.set('k2', 2);
    await a.whenStored();
    const loaded = await client('ws://127.0.0.1:9', { storage }).open('quota');
    assert.deepEqual(loaded.toJSON(), { k: 1, k2: 2 });
  });
});

describe('tabs', () => {
  test('clients of one process share changes through BroadcastChannel with no server', async () => {
    const url = 'ws://127.0.0.1:9'; // nothing listens: both "tabs" are offline
    const a = client(url, { broadcast: true });
    const docA = await a.open('shared');
    docA.getText('t').insert(0, 'written before b opened');
    const b = client(url, { broadcast: true });
    const docB = await b.open('shared');
    // B catches up from A on open, then edits flow both ways at once.
    await until(() => docB.getText('t').toString() === 'written before b opened', 5_000, 'catch-up');
    docB.getText('t').insert(0, '> ');
    docA.root.set('k', 1);
    await until(() => docA.getText('t').length === docB.getText('t').length && docB.root.get('k') === 1, 5_000, 'both ways');
    assert.deepEqual(docA.toJSON(), docB.toJSON());
    // Another document, or the same id on another server, is not shared.
    const other = await client('ws://127.0.0.1:10', { broadcast: true }).open('shared');
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(other.toJSON(), {});
  });

  test("one connected tab saves every tab's edits; the offline tab learns they are saved", async () => {
    const { url } = await server();
    const online = client(url, { broadcast: true });
    const docOnline = await online.open('tabs');
    // This "tab" never reaches the server (wrong port) but shares the channel name's URL.
    const offline = client(url, { broadcast: true, WebSocket: class {
      constructor() {
        this.onopen = this.onmessage = this.onclose = this.onerror = null;
        queueMicrotask(() => this.onclose?.({}));
      }
      send() {}
      close() {}
    } });
    const docOffline = await offline.open('tabs');
    docOffline.getList('l').push('from the offline tab');
    await until(() => docOnline.getList('l').length === 1, 5_000, 'the edit to reach the online tab');
    await offline.whenSaved(); // acknowledged through the online tab's connection
    assert.equal(offline.status, 'offline');
    const fresh = client(url);
    const copy = await fresh.open('tabs');
    await until(() => copy.getList('l').length === 1, 5_000, 'the server to have it');
  });
});

describe('reconnection backoff', () => {
  /** A WebSocket whose connections always fail, a moment after they start. */
  class FailingSocket {
    static attempts = 0;
    constructor() {
      FailingSocket.attempts += 1;
      this.onopen = this.onmessage = this.onclose = this.onerror = null;
      queueMicrotask(() => this.onclose?.({}));
    }
    send() {}
    close() {}
  }

  /** Timers that run only when the test says so. */
  function fakeTimers() {
    const pending = [];
    return {
      pending,
      setTimeout(callback, ms) {
        const timer = { callback, ms };
        pending.push(timer);
        return timer;
      },
      clearTimeout(timer) {
        const i = pending.indexOf(timer);
        if (i >= 0) pending.splice(i, 1);
      },
      setInterval() {
        return null;
      },
      clearInterval() {},
      /** Runs the earliest timer. */
      fire() {
        pending.sort((x, y) => x.ms - y.ms);
        pending.shift().callback();
      },
    };
  }

  test('waits are random up to an exponentially growing cap (full jitter), reset by reconnect()', async () => {
    const timers = fakeTimers();
    const delays = [];
    const a = new SyncClient('ws://127.0.0.1:9', {
      WebSocket: FailingSocket,
      timers,
      random: () => 0.999,
      backoff: { initialMs: 100, maxMs: 1_000 },
    });
    a.on('retry', ({ delayMs }) => delays.push(delayMs));
    for (let i = 0; i < 6; i++) {
      await until(() => timers.pending.length === 1, 1_000, 'a scheduled retry');
      timers.fire();
    }
    await until(() => delays.length === 7, 1_000, 'the seventh retry');
    assert.deepEqual(delays, [99, 199, 399, 799, 999, 999, 999]);
    assert.equal(FailingSocket.attempts, 7);
    // The browser's `online` event calls reconnect(): at once, and the cap starts again.
    a.reconnect();
    await until(() => delays.length === 8, 1_000, 'the retry after reconnect');
    assert.equal(delays[7], 99);
    assert.equal(FailingSocket.attempts, 8);
    // Another random draw gives another wait under the same cap.
    a.destroy();
    const b = new SyncClient('ws://127.0.0.1:9', {
      WebSocket: FailingSocket,
      timers: fakeTimers(),
      random: () => 0.25,
      backoff: { initialMs: 100, maxMs: 1_000 },
    });
    const first = await new Promise((resolve) => b.on('retry', ({ delayMs }) => resolve(delayMs)));
    assert.equal(first, 25);
    assert.equal(b.status, 'offline');
    b.destroy();
  });
});
