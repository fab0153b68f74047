// The history as data (changes, diff, compact, inspectUpdate) and the version helpers,
// through the built package.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  CrdtError,
  Doc,
  UndoManager,
  versionIncludes,
  versionJoin,
  versionMeet,
} from '../pkg/node.js';
import { applyTextChanges } from '../test-support/text-mirror.mjs';

const code = (expected) => (error) => error instanceof CrdtError && error.code === expected;

/** A document edited in three transactions by two replicas, with emoji in its text. */
function history() {
  const alice = new Doc({ replica: '00000000000000000000000000000001' });
  alice.transact(() => alice.getText('t').insert(0, 'héllo 👋'), 'greeting');
  const bob = alice.fork({ replica: '00000000000000000000000000000002' });
  bob.transact(() => {
    bob.getText('t').insert(0, '🎉 ');
    bob.root.set('done', false);
  }, 'bob');
  alice.merge(bob);
  alice.transact(() => alice.getText('t').delete(2, 3), 'trim');
  return { alice, bob };
}

describe('changes', () => {
  test('lists every change in order, with messages and the version after each', () => {
    const { alice } = history();
    const changes = alice.changes();
    assert.deepEqual(
      changes.map((c) => [c.replica.slice(-1), c.counter, c.message]),
      [
        ['1', 1, 'greeting'],
        ['2', 1, 'bob'],
        ['1', 9, 'trim'],
      ],
    );
    // Creating the named text is an event, then one per code point of 'héllo 👋' (7); bob's
    // change is 2 code points and a key.
    assert.deepEqual(
      changes.map((c) => c.events),
      [8, 3, 3],
    );
    for (const change of changes) {
      assert.equal(typeof change.timestamp, 'number');
      assert.ok(Math.abs(change.timestamp - Date.now()) < 60_000);
    }
    // The version after each change, read back: a time-travel slider.
    assert.deepEqual(
      changes.map((c) => alice.viewAt(c.version).toJSON()),
      [
        { t: 'héllo 👋' },
        { t: '🎉 héllo 👋', done: false },
        { t: '🎉llo 👋', done: false },
      ],
    );
    assert.deepEqual(changes.at(-1).version, alice.version());
    // Between two versions only.
    const since = changes[0].version;
    assert.deepEqual(
      alice.changes(since, changes[1].version).map((c) => c.message),
      ['bob'],
    );
    assert.deepEqual(alice.changes(alice.version()), []);
  });

  test('unknown or forged versions throw', () => {
    const { alice } = history();
    const stranger = new Doc();
    stranger.root.set('k', 1);
    assert.throws(() => alice.changes(stranger.version()), code('UNKNOWN_VERSION'));
    assert.throws(() => alice.changes(new Uint8Array([9, 9, 9])), code('BAD_ENCODING'));
  });
});

describe('diff', () => {
  test('applied to the JSON at `from`, the changes give the JSON at `to` (UTF-16 positions)', () => {
    const { alice } = history();
    const versions = [new Doc().version(), ...alice.changes().map((c) => c.version)];
    for (let i = 0; i < versions.length; i++) {
      for (let j = i; j < versions.length; j++) {
        const before = alice.viewAt(versions[i]).toJSON();
        const after = alice.viewAt(versions[j]).toJSON();
        const changes = alice.diff(versions[i], versions[j]);
        const text = applyTextChanges(before.t ?? '', changes);
        assert.equal(text, after.t ?? '', `text from ${i} to ${j}`);
        const json = { ...before };
        for (const change of changes) {
          if (change.kind === 'map' && change.action === 'set') json[change.key] = change.value;
        }
        assert.equal(json.done, after.done, `map from ${i} to ${j}`);
      }
    }
    assert.deepEqual(alice.diff(alice.version()), []);
  });

  test('code points when the document counts so', () => {
    const doc = new Doc({ indexUnit: 'codePoint' });
    doc.getText('t').insert(0, '👋');
    const v1 = doc.version();
    doc.getText('t').insert(1, '!');
    assert.deepEqual(doc.diff(v1), [
      { path: ['t'], kind: 'text', action: 'insert', index: 1, text: '!' },
    ]);
  });

  test('`to` must include `from`', () => {
    const { alice, bob } = history();
    const [greeting] = alice.changes();
    assert.throws(() => alice.diff(alice.version(), greeting.version), code('INVALID_ARGUMENT'));
    // Concurrent versions: neither includes the other.
    const ahead = alice.fork();
    ahead.root.set('x', 1);
    bob.root.set('y', 2);
    ahead.merge(bob);
    const aliceOnly = alice.version();
    alice.merge(ahead);
    const bobOnly = bob.version();
    assert.throws(() => alice.diff(aliceOnly, bobOnly), code('INVALID_ARGUMENT'));
  });
});

describe('compact', () => {
  test('drops history every peer holds: smaller, same state, later sync still works', () => {
    const doc = new Doc();
    const text = doc.getText('t');
    for (let i = 0; i < 200; i++) text.insert(i, 'x');
    text.delete(0, 150); // deleted content: history only
    for (let i = 0; i < 200; i++) doc.root.set('k', i); // overwritten values: history only
    const peer = doc.fork();
    text.insert(0, 'late ');
    const stable = versionMeet(doc.version(), peer.version());
    const before = { json: doc.toJSON(), size: doc.encode().length };
    const compacted = doc.compact(stable);
    assert.ok(versionIncludes(stable, compacted));
    assert.deepEqual(doc.toJSON(), before.json);
    assert.ok(doc.encode().length < before.size, `${doc.encode().length} < ${before.size}`);
    // The peer holds the stable version, so it can still catch up, and send its edits.
    peer.getText('t').insert(0, '> ');
    peer.applyUpdate(doc.updateSince(peer.version()));
    doc.applyUpdate(peer.updateSince(doc.version()));
    assert.deepEqual(doc.toJSON(), peer.toJSON());
    // Both concurrent inserts at 0 (their order depends on the random replica ids).
    assert.ok(['> late ', 'late > '].includes(doc.getText('t').toString().slice(0, 7)));
    // An empty newcomer gets the compacted document whole; a replica with edits of its own
    // that lacks the dropped history cannot be served from it.
    const newcomer = new Doc();
    newcomer.applyUpdate(doc.updateSince(newcomer.version()));
    assert.deepEqual(newcomer.toJSON(), doc.toJSON());
    const stranger = new Doc();
    stranger.root.set('mine', 1);
    assert.throws(() => stranger.applyUpdate(doc.updateSince(stranger.version())), code('HISTORY_TRIMMED'));
    // Loaded again, it is the same document.
    assert.deepEqual(Doc.load(doc.encode()).toJSON(), doc.toJSON());
  });

  test('refused inside a transaction and while an UndoManager records', () => {
    const doc = new Doc();
    doc.root.set('k', 1);
    assert.throws(() => doc.transact(() => doc.compact(doc.version())), code('TRANSACTION_OPEN'));
    const undo = new UndoManager(doc);
    assert.throws(() => doc.compact(doc.version()), code('UNDO_RECORDING'));
    undo.destroy();
    assert.deepEqual(doc.compact(doc.version()), doc.version());
  });

  test('a version with events the document lacks compacts only what both hold', () => {
    const doc = new Doc();
    doc.root.set('k', 1);
    const stranger = new Doc();
    stranger.root.set('k', 1);
    const empty = new Doc().version();
    assert.deepEqual(doc.compact(stranger.version()), empty); // nothing in common
    assert.deepEqual(doc.toJSON(), { k: 1 });
    assert.throws(() => doc.compact(new Uint8Array([1])), code('BAD_ENCODING'));
  });
});

describe('inspectUpdate', () => {
  test('reads what updates and snapshots hold without applying them', () => {
    const { alice } = history();
    const [greeting] = alice.changes();
    const update = alice.updateSince(greeting.version);
    const info = Doc.inspectUpdate(update);
    assert.equal(info.kind, 'changes');
    assert.equal(info.eventCount, 6);
    assert.equal(info.bytes, update.length);
    assert.deepEqual(
      info.events.map((r) => [r.replica.slice(-1), r.from, r.to]),
      [
        ['1', 9, 12],
        ['2', 1, 4],
      ],
    );
    // It builds on the greeting's last event.
    assert.deepEqual(info.dependencies, [{ replica: alice.replica, counter: 8 }]);
    assert.equal(Doc.inspectUpdate(alice.encode()).kind, 'snapshot');
    const shallow = Doc.inspectUpdate(alice.encodeShallow(greeting.version));
    assert.equal(shallow.kind, 'shallowSnapshot');
    assert.deepEqual(shallow.base, greeting.version);
    assert.throws(() => Doc.inspectUpdate(new Uint8Array([1, 2, 3])), code('BAD_ENCODING'));
  });
});

describe('version helpers', () => {
  test('includes, meet and join over concurrent versions', () => {
    const a = new Doc();
    a.root.set('k', 1);
    const b = a.fork();
    a.root.set('a', 1);
    b.root.set('b', 1);
    const [va, vb] = [a.version(), b.version()];
    assert.equal(versionIncludes(va, vb), false);
    assert.equal(versionIncludes(vb, va), false);
    const meet = versionMeet(va, vb);
    assert.ok(versionIncludes(va, meet) && versionIncludes(vb, meet));
    a.merge(b);
    assert.deepEqual(versionJoin(va, vb), a.version());
    assert.equal(versionIncludes(a.version(), vb), true);
    assert.throws(() => versionMeet(va, new Uint8Array([7])), code('BAD_ENCODING'));
  });
});
