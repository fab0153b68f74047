// UndoManager and SyncSession through the built package.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { CrdtError, Doc, SyncSession, UndoManager } from '../pkg/node.js';
import { applyTextChanges } from '../test-support/text-mirror.mjs';

describe('UndoManager', () => {
  test('undoes and redoes local steps, keeping remote edits', () => {
    const doc = new Doc();
    const text = doc.getText('t');
    const undo = new UndoManager(doc, { captureTimeout: 0 });
    assert.equal(undo.canUndo, false);
    text.insert(0, 'hello');
    undo.stopCapturing();
    text.insert(5, ' world');
    // A peer edits concurrently; its edit stays through undo and redo.
    const peer = doc.fork();
    peer.getText('t').insert(0, '> ');
    doc.merge(peer);
    assert.equal(text.toString(), '> hello world');
    assert.equal(undo.undo(), true);
    assert.equal(text.toString(), '> hello');
    assert.equal(undo.canRedo, true);
    assert.equal(undo.undo(), true);
    assert.equal(text.toString(), '> ');
    assert.equal(undo.undo(), false);
    assert.equal(undo.redo(), true);
    assert.equal(text.toString(), '> hello');
    undo.destroy();
    assert.throws(() => undo.undo(), (e) => e instanceof CrdtError && e.code === 'DESTROYED');
  });

  test('changes within the capture timeout are one step; undo is heard as local', () => {
    const doc = new Doc();
    const list = doc.getList('l');
    const undo = new UndoManager(doc, { captureTimeout: 60_000 });
    list.push(1);
    list.push(2);
    const origins = [];
    doc.subscribe((event) => origins.push(event.origin));
    assert.equal(undo.undo(), true);
    assert.deepEqual(list.toJSON(), []);
    assert.deepEqual(origins, ['local']);
    assert.throws(
      () => new UndoManager(doc, { captureTimeout: -1 }),
      (e) => e instanceof CrdtError && e.code === 'INVALID_ARGUMENT',
    );
  });

  test('undo inside transact throws TRANSACTION_OPEN', () => {
    const doc = new Doc();
    const undo = new UndoManager(doc);
    doc.root.set('k', 1);
    doc.transact(() => {
      assert.throws(() => undo.undo(), (e) => e.code === 'TRANSACTION_OPEN');
    });
    assert.equal(doc.root.get('k'), 1);
  });
});

/** Delivers messages between two sessions until both are quiet. */
function pump(queues, sessions) {
  let rounds = 0;
  while (queues[0].length || queues[1].length) {
    assert.ok(rounds++ < 100, 'sync did not settle');
    for (const side of [0, 1]) {
      const inbox = queues[1 - side].splice(0);
      for (const message of inbox) queues[side].push(...sessions[side].receive(message));
    }
  }
}

describe('SyncSession', () => {
  test('two documents sync through messages, then live edits, then a reconnect', () => {
    const alice = new Doc();
    const bob = new Doc();
    alice.getText('title').insert(0, 'Shared');
    bob.getList('items').push('bob item');
    const sessions = [new SyncSession(alice, 'doc-1'), new SyncSession(bob, 'doc-1')];
    // queues[0]: messages from alice to bob; queues[1]: from bob to alice.
    const queues = [[sessions[0].hello()], [sessions[1].hello()]];
    pump(queues, sessions);
    assert.deepEqual(alice.toJSON(), bob.toJSON());
    assert.deepEqual(bob.toJSON(), { items: ['bob item'], title: 'Shared' });
    // Live: a local edit, polled and sent.
    alice.getText('title').insert(6, ' doc');
    const changes = sessions[0].poll();
    assert.ok(changes instanceof Uint8Array);
    assert.equal(sessions[0].poll(), undefined);
    queues[0].push(changes);
    pump(queues, sessions);
    assert.equal(bob.getText('title').toString(), 'Shared doc');
    // Disconnected: both edit, then reset and hello again.
    alice.getCounter('n').add(1);
    bob.getCounter('n').add(2);
    sessions[0].reset();
    sessions[1].reset();
    queues[0].push(sessions[0].hello());
    queues[1].push(sessions[1].hello());
    pump(queues, sessions);
    assert.equal(alice.getCounter('n').value, 3);
    assert.deepEqual(alice.toJSON(), bob.toJSON());
    assert.equal(sessions[0].waiting, 0);
  });

  test('bad messages throw and change nothing', () => {
    const doc = new Doc();
    doc.root.set('k', 'v');
    const session = new SyncSession(doc, 'doc-1');
    assert.throws(() => session.receive(new Uint8Array([1, 2, 3])), (e) => e.code === 'BAD_ENCODING');
    const other = new SyncSession(new Doc(), 'doc-2');
    assert.throws(() => session.receive(other.hello()), (e) => e.code === 'WRONG_DOCUMENT');
    assert.deepEqual(doc.toJSON(), { k: 'v' });
  });
});

describe('Presence', () => {
  test('peers announce, update, leave; own echoes and other documents are ignored', async () => {
    const { Presence } = await import('../pkg/node.js');
    const alice = new Doc();
    const bob = new Doc();
    const atAlice = new Presence(alice, 'doc-1');
    const atBob = new Presence(bob, 'doc-1');
    const hi = atBob.setLocal(new TextEncoder().encode('{"caret":4}'));
    assert.equal(atAlice.receive(hi), true);
    assert.equal(atAlice.receive(hi), false); // same clock: nothing new
    assert.equal(atAlice.receive(atAlice.setLocal(new Uint8Array([1]))), false); // own echo
    const peers = atAlice.peers();
    assert.equal(peers.length, 1);
    assert.equal(peers[0].replica, bob.replica);
    assert.equal(new TextDecoder().decode(peers[0].state), '{"caret":4}');
    const elsewhere = new Presence(bob, 'doc-2');
    assert.equal(atAlice.receive(elsewhere.setLocal(new Uint8Array([2]))), false);
    // Sync messages go to the session, not here.
    assert.equal(atAlice.receive(new SyncSession(bob, 'doc-1').hello()), false);
    assert.equal(atAlice.receive(atBob.leave()), true);
    assert.equal(atAlice.peers().length, 0);
    assert.deepEqual(atAlice.expire(), []);
    assert.throws(() => atBob.setLocal(new Uint8Array()), (e) => e.code === 'INVALID_ARGUMENT');
    assert.throws(() => new Presence(alice, 'd', -5), (e) => e.code === 'INVALID_ARGUMENT');
    assert.throws(() => atAlice.receive(new Uint8Array([0])), (e) => e.code === 'BAD_ENCODING');
  });

  test('an announcement expires after its ttl', async () => {
    const { Presence } = await import('../pkg/node.js');
    const atAlice = new Presence(new Doc(), 'doc-1');
    const atBob = new Presence(new Doc(), 'doc-1', 1);
    atAlice.receive(atBob.setLocal(new Uint8Array([1])));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(atAlice.expire().length, 1);
    assert.equal(atAlice.peers().length, 0);
  });
});

describe('events through sync', () => {
  test('updates released from the early buffer in one call keep exact UTF-16 positions', () => {
    const alice = new Doc();
    const bob = new Doc();
    const atAlice = new SyncSession(alice, 'doc-1');
    const atBob = new SyncSession(bob, 'doc-1');
    atAlice.receive(atBob.hello()); // alice knows bob has nothing
    const text = alice.getText('t');
    const updates = [];
    for (const [index, piece] of [[0, '😀😀'], [2, 'a😀b'], [0, '🎉'], [4, 'é']]) {
      text.insert(index, piece);
      updates.push(atAlice.poll());
    }
    text.delete(2, 2); // a deletion of an emoji, too
    updates.push(atAlice.poll());
    let mirror = '';
    bob.subscribe((event) => {
      mirror = applyTextChanges(mirror, event.changes);
    });
    // The later updates arrive first and wait; the first one releases them all in one call.
    for (const update of updates.slice(1).reverse()) atBob.receive(update);
    assert.ok(atBob.waiting > 0);
    atBob.receive(updates[0]);
    assert.equal(atBob.waiting, 0);
    assert.equal(bob.getText('t').toString(), text.toString());
    assert.equal(mirror, text.toString());
  });
});
