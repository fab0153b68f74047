// The package's entry point in Node: loads the WebAssembly module from the package directory
// on import, so the classes work at once.
import { readFileSync } from 'node:fs';
import { initSync } from './index.js';

initSync(readFileSync(new URL('./crdt_wasm_bg.wasm', import.meta.url)));

export * from './index.js';
