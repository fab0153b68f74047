// Documents release their wasm memory: freed explicitly, or after garbage collection through
// the FinalizationRegistry of the glue. Wasm memory never shrinks, so "released" shows as a
// heap that stops growing: after a warm-up, thousands more documents fit in the same pages.
// Run with `node --expose-gc` (as `cargo xtask test` does).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { Doc } from '../pkg/node.js';
import { initSync as glueInit } from '../pkg/crdt_wasm.js';

// Already initialised by node.js: this returns the instance's exports.
const exports = glueInit({ module: readFileSync(new URL('../pkg/crdt_wasm_bg.wasm', import.meta.url)) });
const memoryBytes = () => exports.memory.buffer.byteLength;

/** A document with a few edits, and the handles used for them. */
function editOne(i) {
  const doc = new Doc();
  const handles = [doc.getText('t'), doc.getList('l'), doc.getMap('m')];
  handles[0].insert(0, `document ${i} with some text 😀`);
  handles[1].push(i);
  handles[2].set('k', 'v');
  return { doc, handles };
}

/** Frees a document and its handles (each handle keeps the document alive). */
function freeAll({ doc, handles }) {
  for (const handle of handles) handle.free();
  doc.free();
}

const gcTick = () => new Promise((resolve) => setImmediate(resolve));

test('10,000 documents edited and freed: wasm memory stops growing', () => {
  for (let i = 0; i < 1000; i++) freeAll(editOne(i));
  const warm = memoryBytes();
  for (let i = 0; i < 10_000; i++) {
    const edited = editOne(i);
    edited.doc.encode();
    freeAll(edited);
  }
  const after = memoryBytes();
  console.log(`explicit free: ${warm} bytes after warm-up, ${after} after 10,000 more`);
  assert.ok(after <= warm + 64 * 1024, `memory grew from ${warm} to ${after}`);
});

test('10,000 documents dropped without free: the FinalizationRegistry releases them', async (t) => {
  if (typeof globalThis.gc !== 'function') {
    t.skip('needs node --expose-gc');
    return;
  }
  const batch = async () => {
    for (let i = 0; i < 1000; i++) {
      const { doc } = editOne(i);
      doc.getText('t').toString();
    }
    globalThis.gc();
    await gcTick();
    globalThis.gc();
    await gcTick();
  };
  for (let round = 0; round < 3; round++) await batch();
  const warm = memoryBytes();
  for (let round = 0; round < 10; round++) await batch();
  const after = memoryBytes();
  console.log(`garbage collected: ${warm} bytes after warm-up, ${after} after 10,000 more`);
  // Finalizers run when the engine decides; allow one batch's worth of slack, far below
  // what 10,000 leaked documents would take (each holds several KB).
  assert.ok(after <= warm + 2 * 1024 * 1024, `memory grew from ${warm} to ${after}`);
});
