// Run by `cargo xtask test` in a fresh directory where the packed tarball was installed:
// the package must load and work from Node ESM by its name alone.
import assert from 'node:assert/strict';
import { CrdtError, Doc } from 'crdt-toolkit';

const alice = new Doc();
alice.getText('title').insert(0, 'Packed 📦');
alice.getList('items').push('milk');
const bob = new Doc();
bob.applyUpdate(alice.updateSince(bob.version()));
assert.deepEqual(bob.toJSON(), { items: ['milk'], title: 'Packed 📦' });
assert.throws(() => bob.applyUpdate(new Uint8Array([1, 2, 3])), CrdtError);
console.log('the packed package installs and works from Node ESM');
