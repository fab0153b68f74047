//! Browser bindings: not built yet.
//!
//! A placeholder so the workspace has its final shape. A later issue adds wasm-bindgen bindings
//! over `crdt-core`'s document and sync session, and a TypeScript-typed npm package with a
//! reconnecting `SyncClient` and IndexedDB offline storage.
