// Shared by the test files (no tests of its own): a plain string kept equal to a text by
// replaying its change events, which is what an editor binding does.
import assert from 'node:assert/strict';

/**
 * Applies the text changes of one event to `mirror` and returns the new string; checks that
 * each deletion's `text` is what the mirror held there.
 */
export function applyTextChanges(mirror, changes) {
  for (const change of changes) {
    if (change.kind !== 'text') continue;
    if (change.action === 'insert') {
      mirror = mirror.slice(0, change.index) + change.text + mirror.slice(change.index);
    } else {
      assert.equal(mirror.slice(change.index, change.index + change.length), change.text);
      mirror = mirror.slice(0, change.index) + mirror.slice(change.index + change.length);
    }
  }
  return mirror;
}
