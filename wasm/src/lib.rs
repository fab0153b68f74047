//! wasm-bindgen bindings for `crdt-core`: the document for JavaScript and TypeScript.
//!
//! The npm package (built by `cargo xtask wasm`, see `wasm/README.md`) wraps this crate's
//! generated glue with hand-written types (`npm/index.d.ts`). The modules:
//!
//! - `doc`: the `Doc` class (create, load, transact, subscribe, versions, updates, merge);
//! - `containers`: the handles `DocMap`, `DocList`, `DocText`, `DocCounter`, `DocRegister`;
//! - `shared`: the state a document and its handles share, and the rules that keep JS
//!   callbacks from ever re-entering a borrowed document;
//! - `events`: change events for JS listeners, with text positions in UTF-16;
//! - `convert`: values between JS and the document;
//! - `changes`: the history as data (`changes`, `diff`, `compact`, `inspectUpdate`) and the
//!   version helpers `versionIncludes` / `versionMeet` / `versionJoin`;
//! - `history`: earlier versions (`viewAt`, `forkAt`, `revertTo`, `encodeShallow`, the
//!   read-only `DocView`) and cursors on texts and lists;
//! - `state`: the state-based `PNCounter`, `AwSet`, `MvRegister`, `OrMap`, mutations returning
//!   deltas;
//! - `undo`: `UndoManager`, undo/redo of the local replica's changes;
//! - `sync`: `SyncSession`, one document synced with one peer as encoded messages;
//! - `wire`: `WireClient`, the sync server's wire protocol (`sync-protocol`'s `ClientSession`)
//!   around `Doc`s, for the TypeScript `SyncClient` in `npm/client.ts`;
//! - `error`: `CrdtError`, thrown with a stable `code`.
//!
//! Nothing a JS caller passes can trap the instance: every failure is a thrown `CrdtError`,
//! and the document is left as it was before the failing call.

mod changes;
mod containers;
mod convert;
mod doc;
mod error;
mod events;
mod history;
mod shared;
mod state;
mod sync;
mod undo;
mod wire;

pub use changes::{version_includes, version_join, version_meet};
pub use containers::{DocCounter, DocList, DocMap, DocRegister, DocText};
pub use doc::Doc;
pub use error::{JsFailure, JsResult};
pub use history::DocView;
pub use state::{AwSet, MvRegister, OrMap, PNCounter};
pub use sync::{Presence, SyncSession};
pub use undo::UndoManager;
pub use wire::WireClient;
