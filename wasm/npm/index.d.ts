// Types of the crdt-toolkit package, written by hand (not generated) so that they say what
// things are. Keep them in step with wasm/src/*.rs: wasm/test/consumer.ts type-checks a use of
// every export with `tsc --strict`.

/**
 * Loads the WebAssembly module (browsers and bundlers; in Node the import does it). Call once
 * before using any class; later calls do nothing.
 *
 * @param source - Where the module is: by default `crdt_wasm_bg.wasm` beside the package's
 * JS, fetched. Or a URL, a `Response`, the module's bytes or a compiled `WebAssembly.Module`.
 *
 * @example
 * ```ts
 * import { init, Doc } from "crdt-toolkit";
 * await init();
 * const doc = new Doc();
 * ```
 */
export function init(
  source?: RequestInfo | URL | Response | BufferSource | WebAssembly.Module | Promise<Response>,
): Promise<void>;

/**
 * Loads the WebAssembly module synchronously from its bytes or a compiled module.
 *
 * @example
 * ```ts
 * import { initSync } from "crdt-toolkit";
 * initSync(wasmBytes); // a Uint8Array of crdt_wasm_bg.wasm
 * ```
 */
export function initSync(source: BufferSource | WebAssembly.Module): void;

/**
 * The stable codes of {@link CrdtError}. An existing code never changes meaning.
 *
 * - `INVALID_ARGUMENT`: an argument of the wrong type or out of its domain;
 * - `INVALID_VALUE`: a value that cannot be stored (undefined, an object, an array, ...);
 * - `INVALID_REPLICA`: a replica id that is not 32 hex digits;
 * - `OUT_OF_RANGE`: an index past the end of a list or text;
 * - `NOT_CHAR_BOUNDARY`: a UTF-16 index inside a surrogate pair;
 * - `KEY_HOLDS`: `getText("k")` (or another kind) where "k" holds something else;
 * - `WRONG_KIND`, `NO_SUCH_CONTAINER`, `CONTAINER_AS_VALUE`: a handle used on the wrong
 *   document or kind;
 * - `TOO_DEEP`: containers nested deeper than the document's limit (512);
 * - `BAD_ENCODING`: bytes that are not a valid update, snapshot or version;
 * - `UNSUPPORTED_VERSION`: bytes from a newer version of the format;
 * - `MISSING_DEPENDENCY`: an update that builds on changes this document lacks (apply those
 *   first, or ask the peer for `updateSince(doc.version())`);
 * - `HISTORY_TRIMMED`: the peer needs history that was trimmed away;
 * - `HISTORY_UNREADABLE`: stored history that does not replay (a bug or corrupt storage);
 * - `TRANSACTION_OPEN`: an operation that cannot run inside `transact` (apply, merge,
 *   subscribe);
 * - `REENTRANT`: a call into a document from a getter or proxy while the document was busy;
 * - `WRONG_DOCUMENT`: a sync message about another document than the session's;
 * - `UNKNOWN_VERSION`: a version or cursor naming changes this document has not seen (yet);
 * - `CONCURRENT_VERSION`: a shallow snapshot at a version that concurrent changes straddle;
 * - `UNDO_RECORDING`: history trimming refused while an undo manager records;
 * - `SYNC_BUFFER_FULL`: too many sync updates waited for missing changes (reset and hello);
 * - `DESTROYED`: an undo manager used after `destroy()`;
 * - `DOCUMENT_ERROR`: any other document error.
 */
export type CrdtErrorCode =
  | "INVALID_ARGUMENT"
  | "INVALID_VALUE"
  | "INVALID_REPLICA"
  | "OUT_OF_RANGE"
  | "NOT_CHAR_BOUNDARY"
  | "KEY_HOLDS"
  | "WRONG_KIND"
  | "NO_SUCH_CONTAINER"
  | "CONTAINER_AS_VALUE"
  | "TOO_DEEP"
  | "BAD_ENCODING"
  | "UNSUPPORTED_VERSION"
  | "MISSING_DEPENDENCY"
  | "HISTORY_TRIMMED"
  | "HISTORY_UNREADABLE"
  | "TRANSACTION_OPEN"
  | "REENTRANT"
  | "WRONG_DOCUMENT"
  | "UNKNOWN_VERSION"
  | "CONCURRENT_VERSION"
  | "UNDO_RECORDING"
  | "SYNC_BUFFER_FULL"
  | "DESTROYED"
  | "DOCUMENT_ERROR"
  /** A message from the sync server did not decode (the client reconnects). */
  | "BAD_FRAME"
  /** The sync server refused a document's changes for good (`whenSaved` rejects with it). */
  | "REFUSED";

/**
 * What every failing call throws. The document is left as it was before the call.
 *
 * @example
 * ```ts
 * try {
 *   doc.getText("title").insert(99, "x");
 * } catch (e) {
 *   if (e instanceof CrdtError && e.code === "OUT_OF_RANGE") console.warn(e.message);
 *   else throw e;
 * }
 * ```
 */
export class CrdtError extends Error {
  /** Which error, stably. */
  readonly code: CrdtErrorCode;
  /** Always `"CrdtError"`. */
  readonly name: "CrdtError";
  constructor(code: CrdtErrorCode, message: string);
}

/**
 * A value stored in a map, list or register. Integers read back as numbers when they are
 * safe integers and as bigints otherwise; `undefined`, objects and arrays cannot be stored
 * (use a container).
 */
export type Scalar = null | boolean | number | bigint | string | Uint8Array;

/** A container handle. */
export type Container = DocMap | DocList | DocText | DocCounter | DocRegister;

/** What reading a map key, list element or register gives. */
export type ReadValue = Scalar | Container;

/** The kinds of container, as `insertContainer` and `setContainer` take them. */
export type ContainerKind = "map" | "list" | "text" | "counter" | "register";

/** Plain JSON-like data, as `toJSON()` returns it. */
export type JsonValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | JsonValue[]
  | { [key: string]: JsonValue };

/** Options of `new Doc`, `Doc.load` and `fork`. */
export interface DocOptions {
  /**
   * This replica's id: 32 hex digits. Random by default. Two live documents must never
   * share one (reuse an id only to reopen the same replica's stored document).
   */
  replica?: string;
  /** How text positions count: UTF-16 code units (the default, as JS strings) or code points. */
  indexUnit?: "utf16" | "codePoint";
}

/** One change to one container, as listeners receive it. */
export type DocChange =
  | { path: PathSegment[] | null; kind: "map"; action: "set"; key: string; value: ReadValue }
  | { path: PathSegment[] | null; kind: "map"; action: "delete"; key: string }
  | { path: PathSegment[] | null; kind: "list"; action: "insert"; index: number; values: ReadValue[] }
  | { path: PathSegment[] | null; kind: "list"; action: "delete"; index: number; length: number }
  | { path: PathSegment[] | null; kind: "text"; action: "insert"; index: number; text: string }
  | {
      path: PathSegment[] | null;
      kind: "text";
      action: "delete";
      index: number;
      length: number;
      /** The text removed. */
      text: string;
    }
  | { path: PathSegment[] | null; kind: "counter"; action: "increment"; by: number | bigint }
  | { path: PathSegment[] | null; kind: "register"; action: "set"; value: ReadValue | null };

/** A step of a path from the root: a map key or a list index. */
export type PathSegment = string | number;

/**
 * What a listener receives after each local transaction or applied update. Applying the
 * changes in order to the JSON as it was gives the JSON now; `path` is where the container
 * is from the root (`null` if it is not reachable), text positions are in the document's
 * index unit.
 */
export interface DocEvent {
  /** `"local"` for this replica's edits, `"remote"` for applied updates and merges. */
  origin: "local" | "remote";
  changes: DocChange[];
}

/** The latest event of a replica that no other event builds on. */
export interface Head {
  replica: string;
  counter: number;
}

/** One change (a transaction or an applied peer's change) in a document's history. */
export interface ChangeRecord {
  /** The replica that made it. */
  replica: string;
  /** The counter of its first event (a replica's events count from 1). */
  counter: number;
  /** How many events it holds (one per inserted or deleted element or value written). */
  events: number;
  /** How many operations, as the author made them (typing "abc" is one of three events). */
  operations: number;
  /** The message given to {@link Doc.transact}, or `null`. */
  message: string | null;
  /** When it was committed, in milliseconds since the Unix epoch, or `null`. */
  timestamp: number | null;
  /** The document's version right after this change (and every change listed before it). */
  version: Uint8Array;
}

/** What {@link Doc.inspectUpdate} reads from encoded bytes. */
export interface UpdateInfo {
  /** Changes (from `updateSince`), a whole document (`encode`) or a shallow snapshot. */
  kind: "changes" | "snapshot" | "shallowSnapshot";
  /** For a shallow snapshot: the version its history was trimmed at. */
  base?: Uint8Array;
  /** The events carried, as runs of one replica's counters `from` (inclusive) to `to` (exclusive). */
  events: { replica: string; from: number; to: number }[];
  /** How many events it carries. */
  eventCount: number;
  /** Events it builds on without carrying them: a document must hold these to apply it. */
  dependencies: Head[];
  /** How many operations (runs of events on one container). */
  operations: number;
  /** Its size in bytes. */
  bytes: number;
}

/**
 * True if version `a` holds every event version `b` holds (versions from
 * {@link Doc.version}): a peer at `a` lacks nothing of `b`.
 *
 * @example
 * ```ts
 * versionIncludes(serverVersion, doc.version()); // the server has all local edits
 * ```
 */
export function versionIncludes(a: Uint8Array, b: Uint8Array): boolean;
/**
 * The events both versions hold: fold it over several peers' versions to get what all of
 * them hold (what {@link Doc.compact} may drop).
 *
 * @example
 * ```ts
 * const stable = [v1, v2, v3].reduce(versionMeet);
 * ```
 */
export function versionMeet(a: Uint8Array, b: Uint8Array): Uint8Array;
/**
 * The events either version holds.
 *
 * @example
 * ```ts
 * const seen = versionJoin(seenSoFar, message.version);
 * ```
 */
export function versionJoin(a: Uint8Array, b: Uint8Array): Uint8Array;

/**
 * A collaborative JSON-like document: named maps, lists, texts, counters and registers that
 * every replica shares, edited locally and merged with updates from peers. Replicas that have
 * applied the same updates hold the same document, whatever the order.
 *
 * Call `free()` when done to release its memory at once; otherwise it is released after the
 * object is garbage collected.
 *
 * @example
 * ```ts
 * import { Doc } from "crdt-toolkit";
 *
 * const alice = new Doc();
 * const title = alice.getText("title");
 * title.insert(0, "Groceries");
 * alice.getList("items").push("milk");
 *
 * const bob = new Doc();
 * bob.applyUpdate(alice.updateSince(bob.version()));
 * bob.getText("title").toString(); // "Groceries"
 * ```
 */
export class Doc {
  /** A new, empty document. */
  constructor(options?: DocOptions);
  /**
   * Loads a document from {@link Doc.encode}'s bytes. Corrupt or forged bytes throw
   * `BAD_ENCODING`.
   *
   * @example
   * ```ts
   * const copy = Doc.load(doc.encode());
   * ```
   */
  static load(data: Uint8Array, options?: DocOptions): Doc;
  /** This replica's id (32 hex digits). */
  readonly replica: string;
  /** The root map. */
  readonly root: DocMap;
  /** How many events (operations) the history holds. */
  readonly historyLength: number;
  /**
   * The map named `name` at the root. Every replica that asks for "name" gets the same map,
   * even when they create it at the same time. Throws `KEY_HOLDS` if the key holds another
   * kind.
   *
   * The first call on a document that lacks it creates it, and that is a change like an edit
   * (listeners hear a `set` at the root, and `updateSince` a version taken before carries
   * it); later calls only read.
   */
  getMap(name: string): DocMap;
  /** The list named `name` at the root (see {@link Doc.getMap}). */
  getList(name: string): DocList;
  /** The text named `name` at the root (see {@link Doc.getMap}). */
  getText(name: string): DocText;
  /** The counter named `name` at the root (see {@link Doc.getMap}). */
  getCounter(name: string): DocCounter;
  /** The register named `name` at the root (see {@link Doc.getMap}). */
  getRegister(name: string): DocRegister;
  /**
   * Runs `body` as one transaction: its edits become one change, committed when it returns
   * and entirely undone when it throws (the exception is rethrown). `body` must be
   * synchronous. Nested calls join the outer transaction. Returns what `body` returns.
   *
   * @example
   * ```ts
   * doc.transact(() => {
   *   items.push("eggs");
   *   count.add(1);
   * }, "add eggs");
   * ```
   */
  transact<T>(body: () => T, message?: string): T;
  /**
   * Calls `listener` after every local transaction and applied update; returns an id for
   * {@link Doc.unsubscribe}. A listener may edit the document; its events follow.
   *
   * @example
   * ```ts
   * const id = doc.subscribe((event) => {
   *   for (const change of event.changes) console.log(change.path, change.action);
   * });
   * ```
   */
  subscribe(listener: (event: DocEvent) => void): number;
  /** Stops calling a listener; false if it was not subscribed. */
  unsubscribe(id: number): boolean;
  /** The whole document as plain data. */
  toJSON(): { [key: string]: JsonValue };
  /** The version (every replica's count of events seen), encoded for {@link Doc.updateSince}. */
  version(): Uint8Array;
  /** The latest events. */
  heads(): Head[];
  /** The whole document (state and history), compact, for storage. */
  encode(): Uint8Array;
  /**
   * The changes a peer at `version` lacks (omit `version` for everything).
   *
   * @example
   * ```ts
   * bob.applyUpdate(alice.updateSince(bob.version()));
   * ```
   */
  updateSince(version?: Uint8Array): Uint8Array;
  /**
   * Applies an update or snapshot from a peer; returns how many new events it brought (0 if
   * it was already applied). All or nothing: bad bytes throw and change nothing.
   */
  applyUpdate(update: Uint8Array): number;
  /** Merges everything `other` has that this document lacks; returns how many new events. */
  merge(other: Doc): number;
  /** A copy of this document as another replica (random id by default). */
  fork(options?: DocOptions): Doc;
  /**
   * The document as it was at `version` (from {@link Doc.version}), read-only. Throws
   * `UNKNOWN_VERSION` for a version this document has not seen.
   *
   * @example
   * ```ts
   * const before = doc.version();
   * doc.getText("t").insert(0, "new");
   * doc.viewAt(before).toJSON(); // without "new"
   * ```
   */
  viewAt(version: Uint8Array): DocView;
  /** A new document as this one was at `version`, editing as another replica. */
  forkAt(version: Uint8Array, options?: DocOptions): Doc;
  /**
   * Makes the document show what it showed at `version` again, as one new local change
   * (peers merge it like any edit; what they did concurrently stays).
   */
  revertTo(version: Uint8Array): void;
  /**
   * A shallow snapshot: the state now plus the history after `version`, the history before
   * it trimmed. Load it with {@link Doc.load}; peers needing the trimmed history get
   * `HISTORY_TRIMMED`.
   */
  encodeShallow(version: Uint8Array): Uint8Array;
  /**
   * The changes `until` holds and `since` lacks (defaults: from the start, until now),
   * oldest first. Each carries the version right after it: give it to {@link Doc.viewAt}
   * for a history slider, or to {@link Doc.diff}.
   *
   * @example
   * ```ts
   * doc.transact(() => doc.getText("t").insert(0, "hello"), "greeting");
   * const [first] = doc.changes();
   * first.message; // "greeting"
   * doc.viewAt(first.version).toJSON(); // { t: "hello" }
   * ```
   */
  changes(since?: Uint8Array, until?: Uint8Array): ChangeRecord[];
  /**
   * What changed from version `from` to version `to` (default: now), as the changes a
   * listener would have received: applied in order to `viewAt(from).toJSON()` they give
   * `viewAt(to).toJSON()`. Text positions are in the document's index unit. Throws
   * `INVALID_ARGUMENT` if `to` does not include `from`, `UNKNOWN_VERSION` for versions this
   * document has not seen.
   *
   * @example
   * ```ts
   * const before = doc.version();
   * doc.getText("t").insert(0, "hi");
   * doc.diff(before); // [{ path: ["t"], kind: "text", action: "insert", index: 0, text: "hi" }]
   * ```
   */
  diff(from: Uint8Array, to?: Uint8Array): DocChange[];
  /**
   * Drops the history before `stable`, a version every peer already holds (fold
   * {@link versionMeet} over their versions), keeping the state and every later change: the
   * document encodes and loads smaller. Returns the version compacted to (at most `stable`).
   * Peers that still lack part of the dropped history get `HISTORY_TRIMMED` when they sync;
   * `viewAt` before it is no longer possible. Throws `UNDO_RECORDING` while an
   * {@link UndoManager} records this document (destroy it first) and `TRANSACTION_OPEN`
   * inside {@link Doc.transact}.
   *
   * @example
   * ```ts
   * const stable = versionMeet(doc.version(), peerVersion);
   * doc.compact(stable);
   * ```
   */
  compact(stable: Uint8Array): Uint8Array;
  /**
   * What encoded bytes (an update, a snapshot or a shallow snapshot) hold, read without
   * applying them. Throws `BAD_ENCODING` (or another load code) for bytes that are not one.
   *
   * @example
   * ```ts
   * Doc.inspectUpdate(doc.updateSince()).eventCount; // how many events it carries
   * ```
   */
  static inspectUpdate(bytes: Uint8Array): UpdateInfo;
  /** Releases the document's memory now (handles keep it alive until they are freed too). */
  free(): void;
  [Symbol.dispose](): void;
}

/**
 * A map of string keys to values and nested containers. Concurrent writes of one key keep
 * every value as a conflict; one wins everywhere.
 *
 * @example
 * ```ts
 * const settings = doc.getMap("settings");
 * settings.set("theme", "dark");
 * settings.get("theme"); // "dark"
 * const notes = settings.getText("notes"); // a text inside the map
 * ```
 */
export class DocMap {
  private constructor();
  /** How many keys hold something. */
  readonly size: number;
  /** The value at `key`, a container handle, or `undefined`. */
  get(key: string): ReadValue | undefined;
  /** Every concurrently written value not overwritten since, the winner first. */
  getConflicts(key: string): ReadValue[];
  /** Sets `key` to a value. */
  set(key: string, value: Scalar): void;
  /** Deletes `key`. */
  delete(key: string): void;
  /** True if `key` holds something. */
  has(key: string): boolean;
  /** The keys that hold something, in order. */
  keys(): string[];
  /** The map at `key`, shared by every replica that asks for it. */
  getMap(key: string): DocMap;
  /** The list at `key`, shared by every replica that asks for it. */
  getList(key: string): DocList;
  /** The text at `key`, shared by every replica that asks for it. */
  getText(key: string): DocText;
  /** The counter at `key`, shared by every replica that asks for it. */
  getCounter(key: string): DocCounter;
  /** The register at `key`, shared by every replica that asks for it. */
  getRegister(key: string): DocRegister;
  /**
   * Replaces `key` with a new, empty container of its own. Unlike `getText` and the others,
   * concurrent calls make distinct containers, of which one wins.
   */
  setContainer(key: string, kind: "map"): DocMap;
  setContainer(key: string, kind: "list"): DocList;
  setContainer(key: string, kind: "text"): DocText;
  setContainer(key: string, kind: "counter"): DocCounter;
  setContainer(key: string, kind: "register"): DocRegister;
  /** The map and everything in it as plain data. */
  toJSON(): { [key: string]: JsonValue };
  free(): void;
}

/**
 * A list of values and nested containers.
 *
 * @example
 * ```ts
 * const items = doc.getList("items");
 * items.push("milk");
 * items.insert(0, "bread");
 * items.toArray(); // ["bread", "milk"]
 * const sub = items.insertContainer(2, "map"); // a map as the third element
 * ```
 */
export class DocList {
  private constructor();
  /** How many elements. */
  readonly length: number;
  /** The element at `index`, or `undefined` past the end. */
  get(index: number): ReadValue | undefined;
  /** Inserts a value at `index` (0 to length). */
  insert(index: number, value: Scalar): void;
  /** Appends a value. */
  push(value: Scalar): void;
  /** Inserts a new, empty container at `index`; returns its handle. */
  insertContainer(index: number, kind: "map"): DocMap;
  insertContainer(index: number, kind: "list"): DocList;
  insertContainer(index: number, kind: "text"): DocText;
  insertContainer(index: number, kind: "counter"): DocCounter;
  insertContainer(index: number, kind: "register"): DocRegister;
  /** Deletes `length` elements (default 1) from `index`. */
  delete(index: number, length?: number): void;
  /** The elements (containers as handles). */
  toArray(): ReadValue[];
  /** The list and everything in it as plain data. */
  toJSON(): JsonValue[];
  /** A stable position at `index` that follows its element (see {@link DocText.cursor}). */
  cursor(index: number, bias?: "after" | "before"): Uint8Array;
  /** Where a cursor from {@link DocList.cursor} is now. */
  resolveCursor(cursor: Uint8Array): number;
  free(): void;
}

/**
 * Collaborative plain text. Positions are UTF-16 code units, as JS strings count them, unless
 * the document was made with `indexUnit: "codePoint"`.
 *
 * @example
 * ```ts
 * const title = doc.getText("title");
 * title.insert(0, "Hello 😀");
 * title.length; // 8 (the emoji is two UTF-16 units)
 * title.delete(0, 6);
 * title.toString(); // "😀"
 * ```
 */
export class DocText {
  private constructor();
  /** The length in the document's index unit. */
  readonly length: number;
  /** Inserts `content` at `index`. An index inside a surrogate pair throws `NOT_CHAR_BOUNDARY`. */
  insert(index: number, content: string): void;
  /** Deletes `length` units from `index`. */
  delete(index: number, length: number): void;
  /** The text. */
  toString(): string;
  /** The text (for `JSON.stringify`). */
  toJSON(): string;
  /**
   * A stable position at `index`: it follows the character after it (`"after"`, the default)
   * or before it (`"before"`) through every later edit, local or remote. Encoded, to store or
   * send.
   *
   * @example
   * ```ts
   * const caret = text.cursor(5);
   * // ... edits arrive from peers ...
   * const index = text.resolveCursor(caret);
   * ```
   */
  cursor(index: number, bias?: "after" | "before"): Uint8Array;
  /** Where a cursor from {@link DocText.cursor} is now. */
  resolveCursor(cursor: Uint8Array): number;
  free(): void;
}

/**
 * The document at an earlier version, read-only (from {@link Doc.viewAt}).
 */
export class DocView {
  private constructor();
  /** The whole document at this version as plain data. */
  toJSON(): { [key: string]: JsonValue };
  /** The version this view shows. */
  version(): Uint8Array;
  free(): void;
}

/**
 * A number that replicas add to and subtract from; concurrent additions all count.
 *
 * @example
 * ```ts
 * const likes = doc.getCounter("likes");
 * likes.add(1);
 * likes.value; // 1
 * ```
 */
export class DocCounter {
  private constructor();
  /** The sum of every replica's additions (a bigint beyond the safe-integer range). */
  readonly value: number | bigint;
  /** Adds `by` (an integer; negative to subtract). */
  add(by: number | bigint): void;
  /** The value (for `JSON.stringify`). */
  toJSON(): number | bigint;
  free(): void;
}

/**
 * One value; concurrent writes are kept as conflicts and one wins everywhere.
 *
 * @example
 * ```ts
 * const status = doc.getRegister("status");
 * status.set("draft");
 * status.get(); // "draft"
 * ```
 */
export class DocRegister {
  private constructor();
  /** The value, or `undefined` if unset or cleared. */
  get(): ReadValue | undefined;
  /** Every concurrently written value not overwritten since, the winner first. */
  getConflicts(): ReadValue[];
  /** Sets the value. */
  set(value: Scalar): void;
  /** Clears the value. */
  clear(): void;
  /** The value, or null (for `JSON.stringify`). */
  toJSON(): JsonValue;
  free(): void;
}

/** Options of {@link UndoManager}. */
export interface UndoOptions {
  /** Changes made within this many milliseconds of each other form one step (default 500). */
  captureTimeout?: number;
  /** The most undo steps kept; the oldest are forgotten (default 1000). */
  maxSteps?: number;
}

/**
 * Undo and redo of this replica's own changes. Remote changes are never undone, and undoing
 * keeps what peers did since. One manager per document.
 *
 * @example
 * ```ts
 * const undo = new UndoManager(doc);
 * doc.getText("t").insert(0, "typo");
 * undo.undo();     // the insert is gone
 * undo.redo();     // and back
 * ```
 */
export class UndoManager {
  constructor(doc: Doc, options?: UndoOptions);
  /** Undoes the last step; false if there was none. Listeners hear of it as a local change. */
  undo(): boolean;
  /** Redoes the last undone step; false if there was none. */
  redo(): boolean;
  /** True if there is a step to undo. */
  readonly canUndo: boolean;
  /** True if there is a step to redo. */
  readonly canRedo: boolean;
  /** Ends the current step: the next change starts a new one. */
  stopCapturing(): void;
  /** Stops recording and drops every step; later calls throw `DESTROYED`. */
  destroy(): void;
  free(): void;
}

/**
 * Syncs a document with one peer over any transport (WebSocket, WebRTC, postMessage): send
 * `hello()` when connected, give every message from the peer to `receive` and send what it
 * returns, and after local edits send what `poll()` returns. After a disconnect, `reset()`
 * and say hello again: each side then sends exactly what the other lacks.
 *
 * @example
 * ```ts
 * const session = new SyncSession(doc, "doc-1");
 * socket.onopen = () => socket.send(session.hello());
 * socket.onmessage = (e) => {
 *   for (const reply of session.receive(new Uint8Array(e.data))) socket.send(reply);
 * };
 * doc.subscribe((event) => {
 *   const changes = event.origin === "local" ? session.poll() : undefined;
 *   if (changes) socket.send(changes);
 * });
 * ```
 */
export class SyncSession {
  /** A session for `doc`, known to the peer as `name` (both sides use the same name). */
  constructor(doc: Doc, name: string);
  /** The message that starts (or restarts) the exchange. */
  hello(): Uint8Array;
  /**
   * Handles a message from the peer; returns the messages to send back. Throws
   * `BAD_ENCODING`, `WRONG_DOCUMENT`, `UNSUPPORTED_VERSION`, or `SYNC_BUFFER_FULL` (then
   * `reset()` and say hello again); a message that throws changes nothing.
   */
  receive(message: Uint8Array): Uint8Array[];
  /** The local changes the peer has not been sent, or `undefined`. */
  poll(): Uint8Array | undefined;
  /** Forgets the peer after a disconnect. */
  reset(): void;
  /** How many received updates wait for changes that have not arrived. */
  readonly waiting: number;
  free(): void;
}

/** Another replica present on the document. */
export interface Peer {
  /** Its replica id. */
  replica: string;
  /** What it last announced. */
  state: Uint8Array;
}

/**
 * Presence (awareness): who else is on a document and their ephemeral state (a cursor, a
 * name, a colour), never stored. Its messages travel beside the sync messages: give every
 * message from a peer to both {@link SyncSession.receive} and {@link Presence.receive}.
 *
 * @example
 * ```ts
 * const presence = new Presence(doc, "doc-1");
 * socket.send(presence.setLocal(new TextEncoder().encode(JSON.stringify({ caret: 4 }))));
 * // on each message: if (presence.receive(bytes)) render(presence.peers());
 * setInterval(() => presence.expire(), 5_000);
 * ```
 */
export class Presence {
  /** Presence on `doc` (known to peers as `name`); an announcement lasts `ttlMs` (30,000). */
  constructor(doc: Doc, name: string, ttlMs?: number);
  /** Announces this replica's state (not empty); returns the message to send. */
  setLocal(state: Uint8Array): Uint8Array;
  /** Says this replica left; returns the message to send. */
  leave(): Uint8Array;
  /** Takes in a peer's message; true if what is known of the others changed. */
  receive(message: Uint8Array): boolean;
  /** Forgets peers whose announcement ran out; returns their replica ids. */
  expire(): string[];
  /** The other replicas present. */
  peers(): Peer[];
  free(): void;
}

/**
 * A counter every replica adds to and subtracts from: a state-based CRDT whose mutations
 * return small deltas. Ship deltas (or whole states from `encode()`) any way, in any order,
 * any number of times, and `merge` them.
 *
 * @example
 * ```ts
 * const a = new PNCounter();
 * const b = new PNCounter();
 * b.merge(a.add(5));
 * a.merge(b.add(-2));
 * a.value; // 3
 * ```
 */
export class PNCounter {
  /** A counter at 0, changed as `replica` (32 hex digits; random by default). */
  constructor(replica?: string);
  /** A counter from `encode()`'s bytes or a delta, changed as `replica`. */
  static decode(bytes: Uint8Array, replica?: string): PNCounter;
  /** Adds `by` (negative to subtract); returns the delta to send. */
  add(by: number | bigint): Uint8Array;
  /** The total. */
  readonly value: number | bigint;
  /** Merges a peer's delta or state; true if this counter changed. */
  merge(bytes: Uint8Array): boolean;
  /** The whole state. */
  encode(): Uint8Array;
  free(): void;
}

/**
 * A set of strings where an add wins over a concurrent delete (state-based, with deltas).
 *
 * @example
 * ```ts
 * const tags = new AwSet();
 * const delta = tags.add("urgent");
 * peerTags.merge(delta);
 * ```
 */
export class AwSet {
  /** An empty set, changed as `replica` (random by default). */
  constructor(replica?: string);
  /** A set from `encode()`'s bytes or a delta. */
  static decode(bytes: Uint8Array, replica?: string): AwSet;
  /** Adds `element`; returns the delta. */
  add(element: string): Uint8Array;
  /** Deletes `element` (the adds of it seen so far); returns the delta. */
  delete(element: string): Uint8Array;
  /** True if `element` is in the set. */
  has(element: string): boolean;
  /** The elements, in order. */
  values(): string[];
  /** How many elements. */
  readonly size: number;
  /** Merges a peer's delta or state; true if this set changed. */
  merge(bytes: Uint8Array): boolean;
  /** The whole state. */
  encode(): Uint8Array;
  free(): void;
}

/**
 * A register of strings that keeps every concurrently written value (state-based, with
 * deltas): the app sees conflicts and resolves them by writing again.
 *
 * @example
 * ```ts
 * const title = new MvRegister();
 * peer.merge(title.set("Draft"));
 * title.values(); // ["Draft"]
 * ```
 */
export class MvRegister {
  /** An empty register, changed as `replica` (random by default). */
  constructor(replica?: string);
  /** A register from `encode()`'s bytes or a delta. */
  static decode(bytes: Uint8Array, replica?: string): MvRegister;
  /** Sets the value, replacing every value seen; returns the delta. */
  set(value: string): Uint8Array;
  /** Clears the values seen; returns the delta. */
  clear(): Uint8Array;
  /** Every value written concurrently and not overwritten since. */
  values(): string[];
  /** Merges a peer's delta or state; true if this register changed. */
  merge(bytes: Uint8Array): boolean;
  /** The whole state. */
  encode(): Uint8Array;
  free(): void;
}

/**
 * A map from string keys to multi-value string registers (state-based, with deltas): a write
 * wins over a concurrent delete of its key, and concurrent writes of one key are all kept
 * until written again.
 *
 * @example
 * ```ts
 * const prefs = new OrMap();
 * const delta = prefs.set("theme", "dark");
 * const elsewhere = new OrMap();
 * elsewhere.merge(delta);
 * elsewhere.get("theme"); // ["dark"]
 * ```
 */
export class OrMap {
  /** An empty map, changed as `replica` (random by default). */
  constructor(replica?: string);
  /** A map from `encode()`'s bytes or a delta. */
  static decode(bytes: Uint8Array, replica?: string): OrMap;
  /** Writes `value` under `key`, replacing every value seen there; returns the delta. */
  set(key: string, value: string): Uint8Array;
  /** Deletes `key` as far as seen (a concurrent write keeps it); returns the delta. */
  delete(key: string): Uint8Array;
  /** The values under `key` (several if written concurrently), or `undefined` if absent. */
  get(key: string): string[] | undefined;
  /** True if `key` is present. */
  has(key: string): boolean;
  /** The present keys, in order. */
  keys(): string[];
  /** How many keys are present. */
  readonly size: number;
  /** Every present key with its values. */
  toJSON(): { [key: string]: string[] };
  /** Merges a peer's delta or state; true if this map changed. */
  merge(bytes: Uint8Array): boolean;
  /** The whole state. */
  encode(): Uint8Array;
  free(): void;
}

export {
  SyncClient,
  type RefusalStatus,
  type SyncClientEvents,
  type SyncClientOptions,
  type SyncPeer,
  type SyncStatus,
  type Timers,
  type WebSocketLike,
} from './client.js';
export { type DocStorage, IndexedDbStorage, MemoryStorage } from './storage.js';
import type { RefusalStatus } from './client.js';

/** What {@link WireClient.receive} reports. */
export type WireEvent =
  | { type: "welcome"; server: string }
  | { type: "authorized"; expiresAt: number | null }
  | { type: "connectionError"; code: string; message: string }
  | { type: "subscribed"; doc: string; access: "read" | "write" }
  | { type: "changed"; doc: string }
  | { type: "acknowledged"; doc: string; batch: number }
  | { type: "refused"; doc: string; batch: number; status: RefusalStatus; retryable: boolean }
  | { type: "error"; doc: string; code: string; message: string }
  | { type: "badUpdate"; doc: string; message: string }
  | { type: "presence"; doc: string };

/**
 * The sync server's wire protocol without I/O, as {@link SyncClient} uses it: give it what
 * the socket receives, send what it returns. For other transports only.
 *
 * @example
 * ```ts
 * const wire = new WireClient("my-app/1.0");
 * wire.open("notes/1", doc);
 * socket.onopen = () => wire.connected().forEach((m) => socket.send(m));
 * socket.onmessage = (e) => {
 *   wire.receive(new Uint8Array(e.data));
 *   wire.poll().forEach((m) => socket.send(m));
 * };
 * ```
 */
export class WireClient {
  constructor(agent: string, token?: string);
  /** Starts syncing `doc` as `id`. */
  open(id: string, doc: Doc): void;
  /** Stops syncing `id`; returns the messages to send. */
  close(id: string): Uint8Array[];
  /** The socket opened: the messages to send first. */
  connected(): Uint8Array[];
  /** The socket closed. */
  disconnected(): void;
  /** True once the server welcomed the client. */
  readonly ready: boolean;
  /** Replaces the token. */
  setToken(token?: string): void;
  /** Handles one message from the server (throws `BAD_FRAME` for one that does not decode). */
  receive(message: Uint8Array): WireEvent[];
  /** The messages due now. */
  poll(): Uint8Array[];
  /** When (`Date.now()` ms) a poll is due without any event, if ever. */
  nextWakeup(): number | undefined;
  /** True when the server durably stored everything `id` holds. */
  isSaved(id: string): boolean;
  /** What the server has confirmed durable for `id` (an encoded version). */
  durableVersion(id: string): Uint8Array | undefined;
  /** The refusal stopping `id`'s changes, if any. */
  refusal(id: string): RefusalStatus | undefined;
  /** What the server lets this client do with `id`, once subscribed. */
  access(id: string): "read" | "write" | undefined;
  /** Sets or (`undefined`) withdraws this client's presence bytes on `id`. */
  setPresence(id: string, state?: Uint8Array): void;
  /** Marks live presence to be sent again. */
  refreshPresence(): void;
  /** The other clients present on `id`. */
  peers(id: string): { replica: string; state: Uint8Array }[];
  free(): void;
}
