// Records the memory of every WebAssembly instance created after this module runs, so the
// harness can report how much wasm memory a library grew. Import it before any library.
// (wasm memory only grows, so its growth over a run is that run's peak.)

const memories = [];

function record(instance) {
  for (const value of Object.values(instance.exports)) {
    if (value instanceof WebAssembly.Memory) memories.push(value);
  }
}

const OriginalInstance = WebAssembly.Instance;
class RecordedInstance extends OriginalInstance {
  constructor(module, imports) {
    super(module, imports);
    record(this);
  }
}
WebAssembly.Instance = RecordedInstance;

const originalInstantiate = WebAssembly.instantiate;
WebAssembly.instantiate = async function instantiate(source, imports) {
  const result = await originalInstantiate.call(WebAssembly, source, imports);
  record(result instanceof OriginalInstance ? result : result.instance);
  return result;
};

/** Bytes of wasm memory held by all instances so far. */
export function wasmMemoryBytes() {
  return memories.reduce((sum, memory) => sum + memory.buffer.byteLength, 0);
}

/** How many wasm instances have been seen (0 for a pure JS library). */
export function wasmInstances() {
  return memories.length;
}
