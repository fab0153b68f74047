// Earlier versions, reverts, shallow snapshots and cursors through the built package.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { CrdtError, Doc, DocView } from '../pkg/node.js';

const code = (expected) => (error) => error instanceof CrdtError && error.code === expected;

describe('history', () => {
  test('viewAt, forkAt and revertTo', () => {
    const doc = new Doc();
    const text = doc.getText('t');
    text.insert(0, 'draft');
    const v1 = doc.version();
    text.insert(5, ' two');
    doc.getList('l').push(1);
    const view = doc.viewAt(v1);
    assert.ok(view instanceof DocView);
    assert.deepEqual(view.toJSON(), { t: 'draft' });
    assert.deepEqual(view.version(), v1);
    const branch = doc.forkAt(v1);
    assert.deepEqual(branch.toJSON(), { t: 'draft' });
    branch.getText('t').insert(0, '> ');
    doc.revertTo(v1);
    assert.deepEqual(doc.toJSON(), { t: 'draft' }); // "l" did not exist at v1
    doc.merge(branch);
    assert.equal(doc.getText('t').toString(), '> draft');
    // A version from another document names events this one has not seen.
    const stranger = new Doc();
    stranger.root.set('k', 1);
    assert.throws(() => doc.viewAt(stranger.version()), code('UNKNOWN_VERSION'));
    assert.throws(() => doc.viewAt(new Uint8Array([7])), code('BAD_ENCODING'));
  });

  test('a shallow snapshot loads and keeps syncing recent changes', () => {
    const doc = new Doc();
    const text = doc.getText('t');
    for (let i = 0; i < 50; i++) text.insert(text.length, `line ${i}\n`);
    const base = doc.version();
    text.insert(0, 'recent ');
    const full = doc.encode();
    const shallow = doc.encodeShallow(base);
    assert.ok(shallow.length < full.length, `${shallow.length} < ${full.length}`);
    const loaded = Doc.load(shallow);
    assert.deepEqual(loaded.toJSON(), doc.toJSON());
    text.insert(0, 'newer ');
    loaded.applyUpdate(doc.updateSince(loaded.version()));
    assert.equal(loaded.getText('t').toString(), text.toString());
    assert.throws(() => loaded.viewAt(new Doc().version()), code('HISTORY_TRIMMED'));
  });
});

describe('cursors', () => {
  test('a text cursor follows its character through remote edits, in UTF-16', () => {
    const doc = new Doc();
    const text = doc.getText('t');
    text.insert(0, 'hello world');
    const caret = text.cursor(6); // before "world"
    const peer = doc.fork();
    peer.getText('t').insert(0, '😀 well, ');
    doc.merge(peer);
    assert.equal(text.toString(), '😀 well, hello world');
    const index = text.resolveCursor(caret);
    assert.equal(text.toString().slice(index), 'world');
    assert.throws(() => text.cursor(99), code('OUT_OF_RANGE'));
    assert.throws(() => text.resolveCursor(new Uint8Array([1, 255, 255])), CrdtError);
    assert.throws(() => text.resolveCursor(new Uint8Array([9])), code('UNSUPPORTED_VERSION'));
    assert.throws(() => text.cursor(0, 'sideways'), code('INVALID_ARGUMENT'));
  });

  test('a list cursor follows its element', () => {
    const doc = new Doc();
    const list = doc.getList('l');
    list.push('a');
    list.push('b');
    const atB = list.cursor(1);
    list.insert(0, 'first');
    assert.equal(list.resolveCursor(atB), 2);
  });
});
