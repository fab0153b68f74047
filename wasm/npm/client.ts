// SyncClient: documents synced with a sync-server over one WebSocket. The protocol (frames,
// fragments, subscriptions, numbered batches, acknowledgements, refusals) is decided in wasm
// by WireClient; this file owns what wasm cannot: the socket, timers, reconnection with
// backoff, status, events, promises, storage and the channel between tabs.
import { CrdtError, Doc, type WireEvent, WireClient, versionIncludes, versionJoin } from './index.js';
import { type DocStorage, IndexedDbStorage } from './storage.js';
import { TabChannel } from './tabs.js';

/** The WebSocket subprotocol of the server's wire format (`sync-protocol`'s SUBPROTOCOL). */
const SUBPROTOCOL = 'crdt-sync.v1';
/** Presence lasts 30 s on other clients; it is sent again at a third of that. */
const PRESENCE_REFRESH_MS = 10_000;
/** Appended updates per document before they are folded into one snapshot. */
const COMPACT_AFTER = 100;

/** Where a {@link SyncClient} stands with the server. */
export type SyncStatus =
  /** No connection: waiting to retry (or destroyed). */
  | 'offline'
  /** Opening the socket and waiting for the server's welcome. */
  | 'connecting'
  /** Connected, no document open. */
  | 'online'
  /** Connected, some local changes not yet acknowledged (or documents still subscribing). */
  | 'syncing'
  /** Connected, and the server durably stored every local change of every open document. */
  | 'saved';

/** Why the server refused a batch of changes. */
export type RefusalStatus =
  | 'permissionDenied'
  | 'tooLarge'
  | 'rateLimited'
  | 'invalid'
  | 'overloaded'
  | 'missingDependencies';

/** The minimal WebSocket a {@link SyncClient} needs: the browser's, or Node's `ws` package. */
export interface WebSocketLike {
  binaryType: string;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: unknown) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}

/** Timer functions, replaceable by a fake clock in tests. */
export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  setInterval(callback: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

/** Options of a {@link SyncClient}. */
export interface SyncClientOptions {
  /** A token the server verifies (HS256 JWT listing readable and writable documents). */
  token?: string;
  /** The WebSocket class: the browser's by default; in Node 20 pass `WebSocket` from `ws`. */
  WebSocket?: new (url: string, protocol: string) => WebSocketLike;
  /** Reconnection delays: a random wait up to `initialMs * 2^attempt`, capped at `maxMs` (defaults 500 and 30,000). */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Client name and version for the server's logs. */
  agent?: string;
  /** The random source of the backoff jitter, in [0, 1) (tests pass a fixed one). */
  random?: () => number;
  /**
   * Where documents are kept between page loads: IndexedDB in browsers by default
   * ({@link IndexedDbStorage}), none elsewhere; `null` keeps nothing.
   */
  storage?: DocStorage | null;
  /**
   * Share changes at once with the other tabs of this origin that opened the same document
   * on the same server, through `BroadcastChannel` (default: where it exists). Every tab
   * keeps its own connection; one connected tab is enough for all tabs' edits to reach the
   * server, and a tab knows its edits are saved when any tab's server acknowledged them.
   */
  broadcast?: boolean;
  /** The timer functions (tests pass a fake clock); `globalThis` by default. */
  timers?: Timers;
}

/** Another client present on a document, with the state it set by `setPresence`. */
export interface SyncPeer {
  replica: string;
  state: unknown;
}

/** The events of a {@link SyncClient}, by name. */
export interface SyncClientEvents {
  /** The status changed. */
  status: SyncStatus;
  /** The server refused a batch; the changes stay local (retryable ones are sent again). */
  refused: { doc: string; batch: number; status: RefusalStatus; retryable: boolean };
  /** The server reported an error (about a document if `doc` is set), or a frame was bad. */
  error: { doc?: string; code: string; message: string };
  /** Another client's presence on `doc` changed (or timed out). */
  presence: { doc: string };
  /** A reconnection is scheduled after `delayMs`. */
  retry: { attempt: number; delayMs: number };
  /** The server accepted a token given by `setToken` (expiry in seconds since the epoch). */
  authorized: { expiresAt: number | null };
  /**
   * Storage failed (a full quota, stored data that does not load): the edits stay in memory
   * and are written again after the next change.
   */
  storageError: { doc: string; error: unknown };
}

type Listener<E extends keyof SyncClientEvents> = (payload: SyncClientEvents[E]) => void;

/** One open document. */
interface Entry {
  doc: Doc;
  listener: number;
  /** What storage holds. */
  storedVersion: Uint8Array;
  appends: number;
  persisting: Promise<void>;
  persistQueued: boolean;
  storageError: unknown;
  tab: TabChannel | null;
  /** What other tabs' servers acknowledged. */
  sharedDurable: Uint8Array | null;
  reportedReadOnly: boolean;
  peerCount: number;
  /** Stored parts this client could not read: never compacted away. */
  keepParts: boolean;
}

interface SavedWaiter {
  id: string | undefined;
  resolve: () => void;
  reject: (error: unknown) => void;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Applies stored parts (a snapshot and updates, possibly written by several tabs in any
 * order) to `doc`, retrying those that wait for others; returns the errors of parts that
 * could not be applied.
 */
function applyParts(doc: Doc, parts: Uint8Array[]): unknown[] {
  const errors: unknown[] = [];
  let pending = parts;
  while (pending.length > 0) {
    const waiting: { part: Uint8Array; error: unknown }[] = [];
    for (const part of pending) {
      try {
        doc.applyUpdate(part);
      } catch (error) {
        if (error instanceof CrdtError && error.code === 'MISSING_DEPENDENCY') waiting.push({ part, error });
        else errors.push(error);
      }
    }
    if (waiting.length === pending.length) {
      errors.push(...waiting.map((w) => w.error));
      break;
    }
    pending = waiting.map((w) => w.part);
  }
  return errors;
}

/**
 * Presence travels as JSON; byte arrays (a stable cursor from `text.cursor(i)`) are kept as
 * `{ "$bytes": base64 }` and come back as `Uint8Array`s.
 */
function presenceToBytes(state: unknown): Uint8Array {
  const json = JSON.stringify(state, (_key, value: unknown) => {
    if (value instanceof Uint8Array) {
      let binary = '';
      for (const byte of value) binary += String.fromCharCode(byte);
      return { $bytes: btoa(binary) };
    }
    return value;
  });
  return encoder.encode(json);
}

function presenceFromBytes(bytes: Uint8Array): unknown {
  return JSON.parse(decoder.decode(bytes), (_key, value: unknown) => {
    if (value !== null && typeof value === 'object' && Object.keys(value).length === 1) {
      const encoded = (value as { $bytes?: unknown }).$bytes;
      if (typeof encoded === 'string') return Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0));
    }
    return value;
  });
}

/** `ws://host:port` gets the server's `/sync` path; a URL with a path is kept as given. */
function syncUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.pathname === '/' || parsed.pathname === '') parsed.pathname = '/sync';
  return parsed.toString();
}

/** A received message's bytes, whatever the WebSocket implementation delivers. */
function bytesOf(data: unknown): Uint8Array {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new CrdtError('BAD_FRAME', 'the server sent a text message; the protocol is binary');
}

/**
 * Documents synced with a `sync-server` over one WebSocket: edits apply locally at once and
 * reach the server in the background; peers' edits arrive as remote changes of the `Doc`.
 * The connection comes back by itself (exponential backoff with full jitter, and at once on
 * the browser's `online` event); {@link SyncClient.whenSaved} says when the server has
 * durably stored every local change. Documents are kept in IndexedDB in browsers, and
 * shared at once between tabs.
 *
 * @example
 * ```ts
 * import { SyncClient } from "crdt-toolkit";
 *
 * const client = new SyncClient("ws://127.0.0.1:8080", { token });
 * const doc = await client.open("notes/1"); // at once from IndexedDB, offline too
 * doc.getText("body").insert(0, "Hello");
 * client.on("status", (status) => console.log(status)); // "syncing", then "saved"
 * await client.whenSaved();
 * ```
 */
export class SyncClient {
  private readonly url: string;
  private readonly WebSocketImpl: new (url: string, protocol: string) => WebSocketLike;
  private readonly wire: WireClient;
  private readonly initialDelay: number;
  private readonly maxDelay: number;
  private readonly random: () => number;
  private readonly timers: Timers;
  private readonly storage: DocStorage | null;
  private readonly broadcast: boolean;
  private readonly opening = new Map<string, Promise<Doc>>();
  private readonly docs = new Map<string, Entry>();
  private readonly listeners = new Map<keyof SyncClientEvents, Set<(payload: never) => void>>();
  private savedWaiters: SavedWaiter[] = [];
  private socket: WebSocketLike | null = null;
  private current: SyncStatus = 'offline';
  private attempt = 0;
  private retryTimer: unknown = null;
  private wakeTimer: unknown = null;
  private flushQueued = false;
  private destroyed = false;
  private readonly presenceTimer: unknown;
  private readonly onOnline = (): void => this.reconnect();

  /** Connects to the server at `url` (`ws://host:port`, the path `/sync` added if none). */
  constructor(url: string, options: SyncClientOptions = {}) {
    const WebSocketImpl =
      options.WebSocket ?? (globalThis.WebSocket as unknown as SyncClientOptions['WebSocket'] | undefined);
    if (typeof WebSocketImpl !== 'function') {
      throw new CrdtError(
        'INVALID_ARGUMENT',
        'no WebSocket implementation: pass options.WebSocket (in Node 20, the "ws" package)',
      );
    }
    this.url = syncUrl(url);
    this.WebSocketImpl = WebSocketImpl;
    this.wire = new WireClient(options.agent ?? 'crdt-toolkit-js/0.1.0', options.token);
    this.initialDelay = options.backoff?.initialMs ?? 500;
    this.maxDelay = options.backoff?.maxMs ?? 30_000;
    this.random = options.random ?? Math.random;
    this.timers = options.timers ?? (globalThis as unknown as Timers);
    this.storage =
      options.storage !== undefined
        ? options.storage
        : typeof globalThis.indexedDB !== 'undefined'
          ? new IndexedDbStorage()
          : null;
    this.broadcast = options.broadcast ?? typeof globalThis.BroadcastChannel === 'function';
    this.presenceTimer = this.timers.setInterval(() => {
      // Peers whose presence ran out without a leave (a closed laptop) disappear now.
      for (const [id, entry] of this.docs) {
        const count = this.wire.peers(id).length;
        if (count !== entry.peerCount) this.emit('presence', { doc: id });
        entry.peerCount = count;
      }
      this.wire.refreshPresence();
      this.flush();
    }, PRESENCE_REFRESH_MS);
    if (typeof globalThis.addEventListener === 'function') {
      globalThis.addEventListener('online', this.onOnline);
    }
    this.connect();
  }

  /** Where the client stands; see {@link SyncStatus}. */
  get status(): SyncStatus {
    return this.current;
  }

  /**
   * Starts syncing the document `id` and returns it once loaded from storage (with its
   * unsynced edits from earlier visits), or a new document; `options.doc` is a `Doc` to
   * sync instead (what storage holds is merged into it). Opening an open id returns its
   * `Doc`.
   */
  open(id: string, options: { doc?: Doc } = {}): Promise<Doc> {
    if (typeof id !== 'string' || id.length === 0) {
      return Promise.reject(new CrdtError('INVALID_ARGUMENT', 'a document id is a non-empty string'));
    }
    if (this.destroyed) {
      return Promise.reject(new CrdtError('DESTROYED', 'the sync client was destroyed'));
    }
    const opening = this.opening.get(id);
    if (opening) {
      return opening.then((doc) => {
        if (options.doc && options.doc !== doc) {
          throw new CrdtError('INVALID_ARGUMENT', `document ${JSON.stringify(id)} is already open with another Doc`);
        }
        return doc;
      });
    }
    const promise = this.load(id, options.doc);
    this.opening.set(id, promise);
    promise.catch(() => this.opening.delete(id));
    return promise;
  }

  /** Stops syncing `id` (the `Doc` stays usable). */
  close(id: string): void {
    const entry = this.docs.get(id);
    if (!entry) return;
    this.docs.delete(id);
    this.opening.delete(id);
    entry.doc.unsubscribe(entry.listener);
    entry.tab?.close();
    this.sendAll(this.wire.close(id));
    this.checkSaved();
  }

  /** True when the server durably stored every local change of `id` (default: every open document). */
  isSaved(id?: string): boolean {
    if (this.destroyed) return false;
    const ids = id === undefined ? [...this.docs.keys()] : [id];
    return ids.every((each) => {
      const entry = this.docs.get(each);
      if (!entry) return false;
      if (this.wire.isSaved(each)) return true;
      // Another tab's server acknowledged everything this document holds.
      return (
        entry.sharedDurable !== null &&
        this.wire.refusal(each) === undefined &&
        versionIncludes(entry.sharedDurable, entry.doc.version())
      );
    });
  }

  /**
   * The version of `id` the server has acknowledged as durable (give it to `doc.viewAt` to
   * see what is saved); empty before the first acknowledgement.
   *
   * @example
   * ```ts
   * const saved = doc.viewAt(client.savedVersion("notes/1")!).toJSON();
   * ```
   */
  savedVersion(id: string): Uint8Array | undefined {
    this.requireOpen(id);
    return this.wire.durableVersion(id);
  }

  /**
   * Resolves once the server durably stored every local change of `id` (default: every open
   * document). Rejects with `REFUSED` if the server refused them for good (read-only access
   * included), `DESTROYED` if the client is destroyed first.
   */
  whenSaved(id?: string): Promise<void> {
    if (id !== undefined && !this.docs.has(id)) {
      return Promise.reject(new CrdtError('INVALID_ARGUMENT', `document ${JSON.stringify(id)} is not open`));
    }
    const refused = this.refusedAmong(id);
    if (refused) return Promise.reject(refused);
    if (this.isSaved(id)) return Promise.resolve();
    return new Promise((resolve, reject) => this.savedWaiters.push({ id, resolve, reject }));
  }

  /**
   * Resolves once storage holds every change of `id` (default: every open document);
   * rejects with the storage's error if writing failed.
   */
  async whenStored(id?: string): Promise<void> {
    const ids = id === undefined ? [...this.docs.keys()] : [id];
    for (const each of ids) {
      const entry = this.docs.get(each);
      if (!entry) throw new CrdtError('INVALID_ARGUMENT', `document ${JSON.stringify(each)} is not open`);
      if (!this.storage) continue;
      for (;;) {
        this.schedulePersist(each);
        await new Promise<void>((resolve) => queueMicrotask(resolve));
        await entry.persisting;
        if (entry.storageError) throw entry.storageError;
        if (versionIncludes(entry.storedVersion, entry.doc.version())) break;
      }
    }
  }

  /**
   * Replaces the token before the old one expires: sent on the live connection (the
   * `authorized` event follows) and used by later ones.
   */
  setToken(token: string | undefined): void {
    this.wire.setToken(token);
    this.flush();
  }

  /**
   * Sets this client's presence on `id`: any JSON value, where `Uint8Array`s (a stable
   * cursor from `text.cursor(i)`) are allowed and reach peers as `Uint8Array`s; `null`
   * withdraws it. It is refreshed while the client lives and expires 30 s after it stops.
   *
   * @example
   * ```ts
   * client.setPresence("notes/1", { name: "Ana", color: "#c33", cursor: body.cursor(4) });
   * for (const peer of client.peers("notes/1")) {
   *   const { name, cursor } = peer.state as { name: string; cursor: Uint8Array };
   *   console.log(name, body.resolveCursor(cursor));
   * }
   * ```
   */
  setPresence(id: string, state: unknown): void {
    this.requireOpen(id);
    this.wire.setPresence(id, state === null || state === undefined ? undefined : presenceToBytes(state));
    this.flush();
  }

  /** The other clients present on `id`. */
  peers(id: string): SyncPeer[] {
    this.requireOpen(id);
    const peers: SyncPeer[] = [];
    for (const { replica, state } of this.wire.peers(id)) {
      try {
        peers.push({ replica, state: presenceFromBytes(state) });
      } catch {
        // Presence that is not JSON comes from another kind of client: not shown.
      }
    }
    return peers;
  }

  /** Calls `listener` on each event named `event`; returns a function that stops it. */
  on<E extends keyof SyncClientEvents>(event: E, listener: Listener<E>): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    const stored = listener as (payload: never) => void;
    set.add(stored);
    return () => {
      set.delete(stored);
    };
  }

  /** Connects now if offline, without waiting for the backoff (the browser's `online` event calls this). */
  reconnect(): void {
    if (this.destroyed || this.socket) return;
    this.attempt = 0;
    if (this.retryTimer !== null) this.timers.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.connect();
  }

  /** Closes the connection and stops; the documents stay usable, unsynced. */
  destroy(): void {
    if (this.destroyed) return;
    for (const id of [...this.docs.keys()]) this.close(id);
    this.destroyed = true;
    if (this.retryTimer !== null) this.timers.clearTimeout(this.retryTimer);
    if (this.wakeTimer !== null) this.timers.clearTimeout(this.wakeTimer);
    this.timers.clearInterval(this.presenceTimer);
    if (typeof globalThis.removeEventListener === 'function') {
      globalThis.removeEventListener('online', this.onOnline);
    }
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.close(1000, 'client destroyed');
    this.wire.disconnected();
    this.setStatus('offline');
    for (const waiter of this.savedWaiters.splice(0)) {
      waiter.reject(new CrdtError('DESTROYED', 'the sync client was destroyed before the changes were saved'));
    }
    this.wire.free();
  }

  // --- opening and storage ---

  private async load(id: string, given: Doc | undefined): Promise<Doc> {
    const doc = given ?? new Doc();
    let parts: Uint8Array[] = [];
    if (this.storage) {
      try {
        parts = await this.storage.load(id);
      } catch (error) {
        this.emit('storageError', { doc: id, error });
      }
    }
    const unreadable = applyParts(doc, parts);
    for (const error of unreadable) this.emit('storageError', { doc: id, error });
    if (this.destroyed) throw new CrdtError('DESTROYED', 'the sync client was destroyed');
    const entry: Entry = {
      doc,
      listener: 0,
      // Everything loaded is in storage; a given doc's own content is stored next.
      storedVersion: given ? new Doc().version() : doc.version(),
      appends: 0,
      persisting: Promise.resolve(),
      persistQueued: false,
      storageError: null,
      tab: null,
      sharedDurable: null,
      reportedReadOnly: false,
      peerCount: 0,
      keepParts: unreadable.length > 0,
    };
    // Edits go out in one batch per task: many edits in one tick make one message. Changes
    // from other tabs go to the server too (this tab may be the one connected).
    entry.listener = doc.subscribe(() => {
      this.queueFlush();
      this.schedulePersist(id);
      if (entry.tab && !entry.tab.applying) entry.tab.changed();
    });
    if (this.broadcast) {
      entry.tab = new TabChannel(
        `crdt-toolkit|${this.url}|${id}`,
        doc,
        (version) => {
          entry.sharedDurable = entry.sharedDurable ? versionJoin(entry.sharedDurable, version) : version;
          this.queueFlush();
        },
        (error) => this.emit('error', { doc: id, code: 'badTabUpdate', message: message(error) }),
      );
    }
    this.wire.open(id, doc);
    this.docs.set(id, entry);
    this.schedulePersist(id);
    this.flush();
    return doc;
  }

  private schedulePersist(id: string): void {
    const entry = this.docs.get(id);
    if (!entry || !this.storage || entry.persistQueued) return;
    entry.persistQueued = true;
    queueMicrotask(() => {
      entry.persistQueued = false;
      entry.persisting = entry.persisting.then(() => this.persist(id, entry));
    });
  }

  /** Writes what storage lacks of one document: an update, or every 100th time a snapshot. */
  private async persist(id: string, entry: Entry): Promise<void> {
    const storage = this.storage;
    if (!storage) return;
    const doc = entry.doc;
    const version = doc.version();
    if (versionIncludes(entry.storedVersion, version)) return;
    try {
      if (entry.appends >= COMPACT_AFTER && !entry.keepParts && (await this.compact(id, entry, storage))) {
        return;
      }
      await storage.append(id, doc.updateSince(entry.storedVersion));
      entry.appends += 1;
      entry.storedVersion = version;
      entry.storageError = null;
    } catch (error) {
      // A full quota or a failing disk: the edits stay in memory and are written next time.
      entry.storageError = error;
      this.emit('storageError', { doc: id, error });
    }
  }

  /**
   * Folds a document's stored parts into one snapshot; false if it did not (an error was
   * reported, and the update is appended instead).
   */
  private async compact(id: string, entry: Entry, storage: DocStorage): Promise<boolean> {
    const doc = entry.doc;
    let stored = doc.version();
    let unreadable = false;
    try {
      await storage.compact(id, (parts) => {
        // Other tabs' parts are merged in, so the snapshot replacing them holds them all.
        const errors = applyParts(doc, parts);
        if (errors.length > 0) {
          unreadable = true;
          throw errors[0];
        }
        stored = doc.version();
        return doc.encode();
      });
    } catch (error) {
      // A part this version cannot read (written by a newer one, or damaged) is never
      // replaced: this client stops compacting the document and only appends.
      if (unreadable) entry.keepParts = true;
      this.emit('storageError', { doc: id, error });
      return false;
    }
    entry.appends = 0;
    entry.storedVersion = stored;
    entry.storageError = null;
    return true;
  }

  // --- connection ---

  private emit<E extends keyof SyncClientEvents>(event: E, payload: SyncClientEvents[E]): void {
    for (const listener of this.listeners.get(event) ?? []) {
      try {
        (listener as Listener<E>)(payload);
      } catch (error) {
        // A listener's bug must not stop the client; report it where developers look.
        console.error(error);
      }
    }
  }

  private setStatus(status: SyncStatus): void {
    if (status === this.current) return;
    this.current = status;
    this.emit('status', status);
  }

  private requireOpen(id: string): void {
    if (!this.docs.has(id)) {
      throw new CrdtError('INVALID_ARGUMENT', `document ${JSON.stringify(id)} is not open`);
    }
  }

  private connect(): void {
    if (this.destroyed) return;
    this.setStatus('connecting');
    let socket: WebSocketLike;
    try {
      socket = new this.WebSocketImpl(this.url, SUBPROTOCOL);
    } catch (error) {
      this.emit('error', { code: 'connectFailed', message: message(error) });
      this.scheduleRetry();
      return;
    }
    socket.binaryType = 'arraybuffer';
    this.socket = socket;
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.sendAll(this.wire.connected());
    };
    socket.onmessage = (event) => {
      if (this.socket !== socket) return;
      this.receive(event.data);
    };
    socket.onclose = () => this.lost(socket);
    socket.onerror = () => this.lost(socket);
  }

  private lost(socket: WebSocketLike): void {
    if (this.socket !== socket) return;
    this.socket = null;
    try {
      socket.close();
    } catch {
      // Already closed.
    }
    this.wire.disconnected();
    this.setStatus('offline');
    this.scheduleRetry();
  }

  /** Full jitter: a uniform wait in [0, min(max, initial * 2^attempt)). */
  private scheduleRetry(): void {
    if (this.destroyed || this.retryTimer !== null) return;
    const cap = Math.min(this.maxDelay, this.initialDelay * 2 ** Math.min(this.attempt, 30));
    const delay = Math.floor(this.random() * cap);
    this.attempt += 1;
    this.emit('retry', { attempt: this.attempt, delayMs: delay });
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, delay);
  }

  private receive(data: unknown): void {
    let events: WireEvent[];
    try {
      events = this.wire.receive(bytesOf(data));
    } catch (error) {
      // A frame that does not decode: the connection cannot be trusted; start again.
      this.emit('error', { code: 'badFrame', message: message(error) });
      if (this.socket) this.lost(this.socket);
      return;
    }
    for (const event of events) this.handle(event);
    this.flush();
  }

  private handle(event: WireEvent): void {
    switch (event.type) {
      case 'welcome':
        this.attempt = 0;
        this.setStatus('online');
        break;
      case 'authorized':
        this.emit('authorized', { expiresAt: event.expiresAt });
        break;
      case 'connectionError':
        this.emit('error', { code: event.code, message: event.message });
        break;
      case 'acknowledged': {
        const entry = this.docs.get(event.doc);
        const durable = this.wire.durableVersion(event.doc);
        if (entry?.tab && durable) entry.tab.durable(durable);
        break;
      }
      case 'refused':
        this.emit('refused', { doc: event.doc, batch: event.batch, status: event.status, retryable: event.retryable });
        break;
      case 'error':
        this.emit('error', { doc: event.doc, code: event.code, message: event.message });
        break;
      case 'badUpdate':
        this.emit('error', { doc: event.doc, code: 'badUpdate', message: event.message });
        break;
      case 'presence':
        this.emit('presence', { doc: event.doc });
        break;
      default:
        break;
    }
  }

  private queueFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      this.flush();
    });
  }

  /** Sends what is due, updates the status and settles `whenSaved` promises. */
  private flush(): void {
    if (this.destroyed) return;
    if (this.socket && this.wire.ready) {
      this.sendAll(this.wire.poll());
      this.reportReadOnly();
      const open = this.docs.size > 0;
      this.setStatus(open && this.isSaved() ? 'saved' : open ? 'syncing' : 'online');
      this.scheduleWake();
    }
    this.checkSaved();
  }

  private scheduleWake(): void {
    if (this.wakeTimer !== null) this.timers.clearTimeout(this.wakeTimer);
    this.wakeTimer = null;
    const at = this.wire.nextWakeup();
    if (at === undefined) return;
    this.wakeTimer = this.timers.setTimeout(() => {
      this.wakeTimer = null;
      this.flush();
    }, Math.max(0, at - Date.now()));
  }

  private sendAll(messages: Uint8Array[]): void {
    const socket = this.socket;
    if (!socket) return;
    for (const bytes of messages) socket.send(bytes);
  }

  /** Why `id`'s local changes cannot be saved, if they cannot. */
  private refusal(id: string): RefusalStatus | undefined {
    const status = this.wire.refusal(id);
    if (status) return status;
    // Read-only access: local edits are never sent, so they can never be saved.
    if (this.wire.access(id) === 'read' && !this.isSaved(id)) return 'permissionDenied';
    return undefined;
  }

  private refusedAmong(id: string | undefined): CrdtError | undefined {
    const ids = id === undefined ? [...this.docs.keys()] : [id];
    for (const each of ids) {
      const status = this.refusal(each);
      if (status) {
        return new CrdtError('REFUSED', `the server refused changes of ${JSON.stringify(each)}: ${status}`);
      }
    }
    return undefined;
  }

  /** Reports local edits on a read-only document once (the server never sees them). */
  private reportReadOnly(): void {
    for (const [id, entry] of this.docs) {
      const stuck = this.wire.access(id) === 'read' && !this.isSaved(id);
      if (stuck && !entry.reportedReadOnly) {
        this.emit('refused', { doc: id, batch: 0, status: 'permissionDenied', retryable: false });
      }
      entry.reportedReadOnly = stuck;
    }
  }

  private checkSaved(): void {
    if (this.savedWaiters.length === 0) return;
    const waiting = this.savedWaiters;
    this.savedWaiters = [];
    for (const waiter of waiting) {
      if (waiter.id !== undefined && !this.docs.has(waiter.id)) {
        waiter.reject(new CrdtError('INVALID_ARGUMENT', `document ${JSON.stringify(waiter.id)} was closed`));
        continue;
      }
      const refused = this.refusedAmong(waiter.id);
      if (refused) waiter.reject(refused);
      else if (this.isSaved(waiter.id)) waiter.resolve();
      else this.savedWaiters.push(waiter);
    }
  }
}
