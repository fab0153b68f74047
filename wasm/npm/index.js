// The package's entry point for browsers and bundlers. The WebAssembly module must be loaded
// once before any class is used: `await init()` (fetches crdt_wasm_bg.wasm beside this file),
// or `init(source)` / `initSync(bytes)` with the module's bytes or a compiled module. In Node,
// the "node" export (node.js) does this on import.
import initWasm, { initSync as initWasmSync } from './crdt_wasm.js';

export {
  AwSet,
  Doc,
  DocMap,
  DocList,
  DocText,
  DocCounter,
  DocRegister,
  DocView,
  MvRegister,
  OrMap,
  PNCounter,
  Presence,
  SyncSession,
  UndoManager,
  versionIncludes,
  WireClient,
  versionJoin,
  versionMeet,
} from './crdt_wasm.js';
export { CrdtError } from './errors.js';
export { SyncClient } from './client.js';
export { IndexedDbStorage, MemoryStorage } from './storage.js';

let ready = false;

/**
 * Loads the WebAssembly module. Safe to call more than once.
 * @param {RequestInfo | URL | Response | BufferSource | WebAssembly.Module | Promise<Response>} [source]
 */
export async function init(source) {
  if (ready) return;
  await initWasm(source === undefined ? undefined : { module_or_path: source });
  ready = true;
}

/**
 * Loads the WebAssembly module synchronously from its bytes or a compiled module.
 * @param {BufferSource | WebAssembly.Module} source
 */
export function initSync(source) {
  if (ready) return;
  initWasmSync({ module: source });
  ready = true;
}
