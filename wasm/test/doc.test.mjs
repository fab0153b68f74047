// The built package (wasm/pkg, from `cargo xtask wasm`) through its public API, in Node.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { CrdtError, Doc, DocList, DocMap, DocText } from '../pkg/node.js';
import { applyTextChanges } from '../test-support/text-mirror.mjs';

/** Applies everything `from` has that `to` lacks. */
function sync(from, to) {
  return to.applyUpdate(from.updateSince(to.version()));
}

/** Asserts that `fn` throws a CrdtError with `code`. */
function throwsCode(fn, code) {
  assert.throws(fn, (error) => {
    assert.ok(error instanceof CrdtError, `expected a CrdtError, got ${error}`);
    assert.ok(error instanceof Error);
    assert.equal(error.name, 'CrdtError');
    assert.equal(error.code, code, error.message);
    assert.ok(error.message.length > 0);
    return true;
  });
}

describe('the README tour', () => {
  test('two replicas edit and converge', () => {
    const alice = new Doc();
    const title = alice.getText('title');
    title.insert(0, 'Groceries');
    alice.transact(() => {
      const items = alice.getList('items');
      items.push('milk');
      items.push('eggs');
    });
    const bob = new Doc();
    sync(alice, bob);
    assert.equal(bob.getText('title').toString(), 'Groceries');
    // Concurrent edits on both sides, then an exchange in both directions.
    bob.getList('items').insert(0, 'bread');
    alice.getText('title').insert(9, '!');
    alice.getCounter('visits').add(2);
    bob.getCounter('visits').add(3);
    sync(alice, bob);
    sync(bob, alice);
    const expected = { items: ['bread', 'milk', 'eggs'], title: 'Groceries!', visits: 5 };
    assert.deepEqual(alice.toJSON(), expected);
    assert.deepEqual(bob.toJSON(), expected);
  });
});

describe('named containers', () => {
  test('concurrent creators share one container', () => {
    const a = new Doc();
    const b = new Doc();
    a.getText('notes').insert(0, 'from a ');
    b.getText('notes').insert(0, 'from b ');
    sync(a, b);
    sync(b, a);
    const text = a.getText('notes').toString();
    assert.equal(text.length, 14);
    assert.ok(text.includes('from a ') && text.includes('from b '));
    assert.equal(b.getText('notes').toString(), text);
  });

  test('asking for another kind at a key throws KEY_HOLDS and changes nothing', () => {
    const doc = new Doc();
    doc.getText('title').insert(0, 'x');
    const before = doc.encode();
    throwsCode(() => doc.getList('title'), 'KEY_HOLDS');
    doc.root.set('n', 1);
    throwsCode(() => doc.getMap('n'), 'KEY_HOLDS');
    assert.equal(doc.getText('title').toString(), 'x');
    assert.notDeepEqual(before, doc.encode()); // only the set of "n" changed it
  });

  test('containers nest and read back as handles', () => {
    const doc = new Doc();
    const todo = doc.getList('todo');
    const item = todo.insertContainer(0, 'map');
    assert.ok(item instanceof DocMap);
    item.set('done', false);
    item.getText('label').insert(0, 'write tests');
    const again = todo.get(0);
    assert.ok(again instanceof DocMap);
    assert.ok(again.getText('label') instanceof DocText);
    assert.ok(doc.root.get('todo') instanceof DocList);
    assert.deepEqual(doc.toJSON(), { todo: [{ done: false, label: 'write tests' }] });
    assert.equal(JSON.stringify(doc.toJSON()), '{"todo":[{"done":false,"label":"write tests"}]}');
  });
});

describe('values', () => {
  test('scalars round-trip with their JS types', () => {
    const doc = new Doc();
    const map = doc.getMap('m');
    const big = 2n ** 60n;
    map.set('null', null);
    map.set('bool', true);
    map.set('int', 42);
    map.set('float', 1.5);
    map.set('big', big);
    map.set('string', 'hi');
    map.set('bytes', new Uint8Array([1, 2, 3]));
    const copy = Doc.load(doc.encode());
    const m = copy.getMap('m');
    assert.equal(m.get('null'), null);
    assert.equal(m.get('bool'), true);
    assert.equal(m.get('int'), 42);
    assert.equal(m.get('float'), 1.5);
    assert.equal(m.get('big'), big); // beyond 2^53: a bigint, not a rounded number
    assert.equal(m.get('string'), 'hi');
    assert.deepEqual(m.get('bytes'), new Uint8Array([1, 2, 3]));
    assert.equal(m.get('missing'), undefined);
    assert.deepEqual(m.keys(), ['big', 'bool', 'bytes', 'float', 'int', 'null', 'string']);
    assert.equal(m.size, 7);
    m.delete('int');
    assert.equal(m.has('int'), false);
  });

  test('values that cannot be stored throw INVALID_VALUE', () => {
    const doc = new Doc();
    const map = doc.getMap('m');
    for (const bad of [undefined, {}, [1], () => 1, Symbol('s'), 2n ** 64n]) {
      throwsCode(() => map.set('k', bad), 'INVALID_VALUE');
    }
    throwsCode(() => map.set('k', doc.getText('t')), 'INVALID_VALUE');
    assert.equal(map.size, 0);
  });

  test('counters and registers', () => {
    const a = new Doc();
    const b = a.fork();
    a.getCounter('c').add(5);
    b.getCounter('c').add(-2n);
    a.getRegister('r').set('from a');
    b.getRegister('r').set('from b');
    a.merge(b);
    b.merge(a);
    assert.equal(a.getCounter('c').value, 3);
    const conflicts = a.getRegister('r').getConflicts();
    assert.equal(conflicts.length, 2);
    assert.equal(a.getRegister('r').get(), b.getRegister('r').get());
    a.getRegister('r').clear();
    assert.equal(a.getRegister('r').get(), undefined);
    throwsCode(() => a.getCounter('c').add(1.5), 'INVALID_ARGUMENT');
  });
});

describe('text indices', () => {
  test('UTF-16 by default, with emoji and combining marks', () => {
    const doc = new Doc();
    const text = doc.getText('t');
    text.insert(0, 'a😀b');
    assert.equal(text.length, 4); // the emoji is a surrogate pair
    text.insert(3, 'e\u0301'); // e + combining acute: two code units, two code points
    assert.equal(text.toString(), 'a😀e\u0301b');
    throwsCode(() => text.insert(2, 'x'), 'NOT_CHAR_BOUNDARY');
    text.delete(1, 2); // the emoji
    assert.equal(text.toString(), 'ae\u0301b');
    throwsCode(() => text.delete(0, 99), 'OUT_OF_RANGE');
    throwsCode(() => text.insert(-1, 'x'), 'OUT_OF_RANGE');
    assert.equal(text.toString(), 'ae\u0301b');
  });

  test('code points when asked', () => {
    const doc = new Doc({ indexUnit: 'codePoint' });
    const text = doc.getText('t');
    text.insert(0, 'a😀b');
    assert.equal(text.length, 3);
    text.insert(2, 'x');
    assert.equal(text.toString(), 'a😀xb');
    throwsCode(() => new Doc({ indexUnit: 'bytes' }), 'INVALID_ARGUMENT');
  });
});

describe('transactions', () => {
  test('commit as one change, roll back when the body throws', () => {
    const doc = new Doc();
    const list = doc.getList('l');
    const result = doc.transact(() => {
      list.push(1);
      list.push(2);
      return list.length; // reads inside see the transaction's edits
    });
    assert.equal(result, 2);
    const boom = new Error('boom');
    assert.throws(
      () =>
        doc.transact(() => {
          list.push(3);
          doc.getText('t').insert(0, 'never');
          throw boom;
        }),
      (error) => error === boom,
    );
    assert.deepEqual(doc.toJSON(), { l: [1, 2] });
    // The document goes on normally, and a peer sees only committed edits.
    list.push(4);
    const peer = new Doc();
    sync(doc, peer);
    assert.deepEqual(peer.toJSON(), { l: [1, 2, 4] });
  });

  test('a failing edit inside transact can be caught; the rest commits', () => {
    const doc = new Doc();
    const list = doc.getList('l');
    doc.transact(() => {
      list.push('a');
      throwsCode(() => list.insert(9, 'b'), 'OUT_OF_RANGE');
      list.push('c');
    });
    assert.deepEqual(list.toJSON(), ['a', 'c']);
  });

  test('nested transact joins the outer one; apply inside throws TRANSACTION_OPEN', () => {
    const doc = new Doc();
    const other = new Doc();
    other.getText('x').insert(0, 'y');
    const events = [];
    doc.subscribe((event) => events.push(event));
    doc.transact(() => {
      doc.root.set('a', 1);
      doc.transact(() => doc.root.set('b', 2));
      throwsCode(() => doc.applyUpdate(other.updateSince()), 'TRANSACTION_OPEN');
    });
    assert.equal(events.length, 1);
    assert.deepEqual(doc.toJSON(), { a: 1, b: 2 });
  });
});

describe('events', () => {
  test('local and remote changes with paths and UTF-16 positions', () => {
    const a = new Doc();
    const b = new Doc();
    const seen = { a: [], b: [] };
    a.subscribe((event) => seen.a.push(event));
    b.subscribe((event) => seen.b.push(event));
    const text = a.getText('t');
    text.insert(0, '😀😀 hi');
    sync(a, b);
    const before = b.version();
    text.delete(2, 2); // the second emoji
    text.insert(3, '!');
    b.applyUpdate(a.updateSince(before));
    const lastA = seen.a.at(-1);
    assert.equal(lastA.origin, 'local');
    assert.deepEqual(lastA.changes, [
      { path: ['t'], kind: 'text', action: 'insert', index: 3, text: '!' },
    ]);
    const lastB = seen.b.at(-1);
    assert.equal(lastB.origin, 'remote');
    assert.deepEqual(lastB.changes, [
      { path: ['t'], kind: 'text', action: 'delete', index: 2, length: 2, text: '😀' },
      { path: ['t'], kind: 'text', action: 'insert', index: 3, text: '!' },
    ]);
    // Replaying every event on a string gives the text, on both sides.
    for (const side of ['a', 'b']) {
      let mirror = '';
      for (const event of seen[side]) mirror = applyTextChanges(mirror, event.changes);
      assert.equal(mirror, '😀 !hi');
    }
  });

  test('a listener may edit the document; unsubscribe stops delivery', () => {
    const doc = new Doc();
    const log = [];
    const id = doc.subscribe((event) => {
      log.push(event.changes.map((c) => c.key ?? c.action).join(','));
      if (doc.root.get('echo') === undefined) doc.root.set('echo', true);
    });
    doc.root.set('first', 1);
    assert.deepEqual(log, ['first', 'echo']);
    assert.equal(doc.unsubscribe(id), true);
    assert.equal(doc.unsubscribe(id), false);
    doc.root.set('second', 2);
    assert.equal(log.length, 2);
  });

  test('a throwing listener does not stop the others or undo the edit', () => {
    const doc = new Doc();
    let heard = 0;
    doc.subscribe(() => {
      throw new Error('listener bug');
    });
    doc.subscribe(() => heard++);
    doc.root.set('k', 1);
    assert.equal(heard, 1);
    assert.equal(doc.root.get('k'), 1);
  });
});

describe('sync and storage', () => {
  test('updates apply in any order once, snapshots load, forks merge', () => {
    const a = new Doc({ replica: '000000000000000000000000000000aa' });
    assert.equal(a.replica, '000000000000000000000000000000aa');
    const v0 = a.version();
    const t = a.getText('t'); // opening a named container for the first time writes it
    t.insert(0, 'one ');
    const first = a.updateSince(v0);
    const v1 = a.version();
    t.insert(4, 'two');
    const second = a.updateSince(v1);
    const b = new Doc();
    throwsCode(() => b.applyUpdate(a.updateSince(v1)), 'MISSING_DEPENDENCY');
    assert.ok(b.applyUpdate(first) > 0);
    assert.ok(b.applyUpdate(second) > 0);
    assert.equal(b.applyUpdate(second), 0); // duplicates change nothing
    assert.equal(b.getText('t').toString(), 'one two');
    const loaded = Doc.load(a.encode());
    assert.deepEqual(loaded.toJSON(), a.toJSON());
    assert.deepEqual(loaded.heads(), a.heads());
    assert.equal(a.heads()[0].replica, a.replica);
    const fork = a.fork({ replica: '000000000000000000000000000000bb' });
    fork.getText('t').insert(0, '> ');
    assert.ok(a.merge(fork) > 0);
    assert.equal(a.getText('t').toString(), '> one two');
    assert.equal(a.merge(a), 0);
  });

  test('forged and truncated bytes throw and leave the document as it was', () => {
    const doc = new Doc();
    doc.getText('t').insert(0, 'keep me');
    const good = doc.encode();
    const target = new Doc();
    target.getList('l').push(1);
    const before = target.toJSON();
    const forged = [
      new Uint8Array(),
      new Uint8Array([0xff, 0xff, 0xff]),
      good.slice(0, good.length - 3),
    ];
    const flipped = good.slice();
    flipped[Math.floor(flipped.length / 2)] ^= 0x55;
    forged.push(flipped);
    for (const bytes of forged) {
      assert.throws(() => target.applyUpdate(bytes), CrdtError);
      assert.throws(() => Doc.load(bytes), CrdtError);
    }
    // Random garbage never traps the instance.
    let seed = 7;
    for (let i = 0; i < 300; i++) {
      const bytes = good.slice();
      for (let j = 0; j < 4; j++) {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        bytes[seed % bytes.length] = seed & 0xff;
      }
      try {
        target.applyUpdate(bytes);
      } catch (error) {
        assert.ok(error instanceof CrdtError);
      }
    }
    assert.deepEqual(target.getList('l').toJSON(), before.l);
    throwsCode(() => doc.updateSince(new Uint8Array([9, 9])), 'BAD_ENCODING');
    throwsCode(() => new Doc({ replica: 'not hex' }), 'INVALID_REPLICA');
    throwsCode(() => new Doc('options'), 'INVALID_ARGUMENT');
  });
});
