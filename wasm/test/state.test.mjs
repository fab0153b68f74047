// The state-based types through the built package: the CRDT laws on deltas.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { AwSet, CrdtError, MvRegister, OrMap, PNCounter } from '../pkg/node.js';

/** Every order of `items` (small arrays only). */
function permutations(items) {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
  );
}

test('PNCounter: deltas merged in any order, duplicated, give the same total', () => {
  const a = new PNCounter();
  const b = new PNCounter();
  const deltas = [a.add(5), b.add(-2), a.add(10n), b.add(1)];
  for (const order of permutations(deltas)) {
    const c = new PNCounter();
    for (const delta of [...order, ...order]) c.merge(delta);
    assert.equal(c.value, 14);
  }
  const copy = PNCounter.decode(a.encode());
  assert.equal(copy.value, 15);
  assert.equal(copy.merge(a.encode()), false); // nothing new
  assert.throws(() => a.add(0.5), (e) => e instanceof CrdtError && e.code === 'INVALID_ARGUMENT');
  assert.throws(() => a.merge(new Uint8Array([1, 2])), (e) => e.code === 'BAD_ENCODING');
  assert.throws(() => new PNCounter('zz'), (e) => e.code === 'INVALID_REPLICA');
});

test('AwSet: an add wins over a concurrent delete; all orders converge', () => {
  const a = new AwSet();
  const b = new AwSet();
  const added = a.add('milk');
  b.merge(added);
  const removed = b.delete('milk'); // b saw the first add
  const readded = a.add('milk'); // concurrently, a adds again
  const other = a.add('eggs');
  for (const order of permutations([added, removed, readded, other])) {
    const c = new AwSet();
    for (const delta of order) c.merge(delta);
    assert.deepEqual(c.values(), ['eggs', 'milk']);
    assert.equal(c.has('milk'), true);
    assert.equal(c.size, 2);
  }
});

test('MvRegister: concurrent writes are kept, a later write replaces them', () => {
  const a = new MvRegister();
  const b = new MvRegister();
  const fromA = a.set('draft');
  const fromB = b.set('final');
  a.merge(fromB);
  b.merge(fromA);
  assert.deepEqual(a.values().sort(), ['draft', 'final']);
  assert.deepEqual(b.values().sort(), ['draft', 'final']);
  b.merge(a.set('agreed'));
  assert.deepEqual(b.values(), ['agreed']);
  assert.deepEqual(MvRegister.decode(b.encode()).values(), ['agreed']);
  a.merge(a.clear());
  assert.deepEqual(a.values(), []);
});

test('OrMap: a write wins over a concurrent delete of its key; all orders converge', () => {
  const a = new OrMap();
  const b = new OrMap();
  const theme = a.set('theme', 'dark');
  b.merge(theme);
  const removed = b.delete('theme'); // b saw the first write
  const rewritten = a.set('theme', 'light'); // concurrently, a writes again
  const font = a.set('font', 'serif');
  const concurrentFont = b.set('font', 'mono');
  for (const order of permutations([theme, removed, rewritten, font, concurrentFont])) {
    const c = new OrMap();
    for (const delta of [...order, ...order]) c.merge(delta);
    assert.deepEqual(c.keys(), ['font', 'theme']);
    assert.deepEqual(c.get('theme'), ['light']);
    assert.deepEqual(c.get('font').sort(), ['mono', 'serif']);
    assert.equal(c.size, 2);
  }
  const c = OrMap.decode(a.encode());
  c.merge(b.encode());
  c.merge(c.set('font', 'sans')); // a later write replaces both concurrent values
  assert.deepEqual(c.toJSON(), { font: ['sans'], theme: ['light'] });
  c.delete('theme');
  assert.equal(c.has('theme'), false);
  assert.equal(c.get('theme'), undefined);
  assert.equal(c.merge(c.encode()), false);
  assert.throws(() => c.merge(new AwSet().encode()), (e) => e.code === 'BAD_ENCODING');
});
