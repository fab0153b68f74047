// SyncClient: documents synced with a sync-server over one WebSocket. The protocol (frames,
// fragments, subscriptions, numbered batches, acknowledgements, refusals) is decided in wasm
// by WireClient; this file owns what wasm cannot: the socket, timers, reconnection with
// backoff, status, events and promises. Types and docs: index.d.ts.
import { Doc, WireClient, versionIncludes, versionJoin } from './crdt_wasm.js';
import { CrdtError } from './errors.js';
import { IndexedDbStorage } from './storage.js';
import { TabChannel } from './tabs.js';

/** The WebSocket subprotocol of the server's wire format (`sync-protocol`'s SUBPROTOCOL). */
const SUBPROTOCOL = 'crdt-sync.v1';
/** Presence lasts 30 s on other clients; it is sent again at a third of that. */
const PRESENCE_REFRESH_MS = 10_000;

/** Appended updates per document before they are folded into one snapshot. */
const COMPACT_AFTER = 100;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Applies stored parts (a snapshot and updates, possibly written by several tabs in any
 * order) to `doc`, retrying those that wait for others; returns the errors of parts that
 * could not be applied.
 */
function applyParts(doc, parts) {
  const errors = [];
  let pending = parts;
  while (pending.length > 0) {
    const waiting = [];
    for (const part of pending) {
      try {
        doc.applyUpdate(part);
      } catch (error) {
        if (error?.code === 'MISSING_DEPENDENCY') waiting.push({ part, error });
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
function presenceToBytes(state) {
  const json = JSON.stringify(state, (_key, value) => {
    if (value instanceof Uint8Array) {
      let binary = '';
      for (const byte of value) binary += String.fromCharCode(byte);
      return { $bytes: btoa(binary) };
    }
    return value;
  });
  return encoder.encode(json);
}

function presenceFromBytes(bytes) {
  return JSON.parse(decoder.decode(bytes), (_key, value) => {
    if (value && typeof value === 'object' && typeof value.$bytes === 'string' && Object.keys(value).length === 1) {
      return Uint8Array.from(atob(value.$bytes), (c) => c.charCodeAt(0));
    }
    return value;
  });
}

/** `ws://host:port` gets the server's `/sync` path; a URL with a path is kept as given. */
function syncUrl(url) {
  const parsed = new URL(url);
  if (parsed.pathname === '/' || parsed.pathname === '') parsed.pathname = '/sync';
  return parsed.toString();
}

export class SyncClient {
  /**
   * @param {string} url
   * @param {import('./index.js').SyncClientOptions} [options]
   */
  constructor(url, options = {}) {
    const WebSocketImpl = options.WebSocket ?? globalThis.WebSocket;
    if (typeof WebSocketImpl !== 'function') {
      throw new CrdtError(
        'INVALID_ARGUMENT',
        'no WebSocket implementation: pass options.WebSocket (in Node 20, the "ws" package)',
      );
    }
    this._url = syncUrl(url);
    this._WebSocket = WebSocketImpl;
    this._wire = new WireClient(options.agent ?? 'crdt-toolkit-js/0.1.0', options.token ?? undefined);
    this._initialDelay = options.backoff?.initialMs ?? 500;
    this._maxDelay = options.backoff?.maxMs ?? 30_000;
    this._random = options.random ?? Math.random;
    this._timers = options.timers ?? globalThis;
    this._storage =
      options.storage !== undefined
        ? options.storage
        : typeof globalThis.indexedDB !== 'undefined'
          ? new IndexedDbStorage()
          : null;
    /** @type {Map<string, Promise<Doc>>} */
    this._opening = new Map();
    this._broadcast = options.broadcast ?? typeof globalThis.BroadcastChannel === 'function';
    /** @type {Map<string, { doc: Doc, listener: number }>} */
    this._docs = new Map();
    /** @type {Map<string, Set<Function>>} */
    this._listeners = new Map();
    /** @type {{ id: string | undefined, resolve: () => void, reject: (e: Error) => void }[]} */
    this._savedWaiters = [];
    this._socket = null;
    this._status = 'offline';
    this._attempt = 0;
    this._retryTimer = null;
    this._wakeTimer = null;
    this._flushQueued = false;
    this._destroyed = false;
    this._presenceTimer = this._timers.setInterval(() => {
      // Peers whose presence ran out without a leave (a closed laptop) disappear now.
      for (const [id, entry] of this._docs) {
        const count = this._wire.peers(id).length;
        if (count !== entry.peerCount) this._emit('presence', { doc: id });
        entry.peerCount = count;
      }
      this._wire.refreshPresence();
      this._flush();
    }, PRESENCE_REFRESH_MS);
    this._onOnline = () => this.reconnect();
    if (typeof globalThis.addEventListener === 'function') {
      globalThis.addEventListener('online', this._onOnline);
    }
    this._connect();
  }

  /** @returns {import('./index.js').SyncStatus} */
  get status() {
    return this._status;
  }

  /**
   * @param {string} id
   * @param {{ doc?: Doc }} [options]
   * @returns {Promise<Doc>}
   */
  open(id, options = {}) {
    if (typeof id !== 'string' || id.length === 0) {
      return Promise.reject(new CrdtError('INVALID_ARGUMENT', 'a document id is a non-empty string'));
    }
    if (this._destroyed) {
      return Promise.reject(new CrdtError('DESTROYED', 'the sync client was destroyed'));
    }
    const opening = this._opening.get(id);
    if (opening) {
      return opening.then((doc) => {
        if (options.doc && options.doc !== doc) {
          throw new CrdtError('INVALID_ARGUMENT', `document ${JSON.stringify(id)} is already open with another Doc`);
        }
        return doc;
      });
    }
    const promise = this._load(id, options.doc);
    this._opening.set(id, promise);
    promise.catch(() => this._opening.delete(id));
    return promise;
  }

  async _load(id, given) {
    const doc = given ?? new Doc();
    let parts = [];
    if (this._storage) {
      try {
        parts = await this._storage.load(id);
      } catch (error) {
        this._emit('storageError', { doc: id, error });
      }
    }
    for (const error of applyParts(doc, parts)) this._emit('storageError', { doc: id, error });
    if (this._destroyed) throw new CrdtError('DESTROYED', 'the sync client was destroyed');
    const entry = {
      doc,
      listener: 0,
      // What storage holds: everything loaded (a given doc's own content is stored next).
      storedVersion: given ? new Doc().version() : doc.version(),
      appends: 0,
      persisting: Promise.resolve(),
      persistQueued: false,
      storageError: null,
      /** @type {TabChannel | null} */
      tab: null,
      /** @type {Uint8Array | null} what other tabs' servers acknowledged */
      sharedDurable: null,
      reportedReadOnly: false,
      peerCount: 0,
    };
    // Edits go out in one batch per task: many edits in one tick make one message. Changes
    // from other tabs go to the server too (this tab may be the one connected).
    entry.listener = doc.subscribe(() => {
      this._queueFlush();
      this._schedulePersist(id);
      if (entry.tab && !entry.tab.applying) entry.tab.changed();
    });
    if (this._broadcast) {
      entry.tab = new TabChannel(
        `crdt-toolkit|${this._url}|${id}`,
        doc,
        (version) => {
          entry.sharedDurable = entry.sharedDurable ? versionJoin(entry.sharedDurable, version) : version;
          this._queueFlush();
        },
        (error) => this._emit('error', { doc: id, code: 'badTabUpdate', message: String(error?.message ?? error) }),
      );
    }
    this._wire.open(id, doc);
    this._docs.set(id, entry);
    this._schedulePersist(id);
    this._flush();
    return doc;
  }

  /** @param {string} [id] @returns {Promise<void>} */
  async whenStored(id) {
    const ids = id === undefined ? [...this._docs.keys()] : [id];
    for (const each of ids) {
      const entry = this._docs.get(each);
      if (!entry) throw new CrdtError('INVALID_ARGUMENT', `document ${JSON.stringify(each)} is not open`);
      if (!this._storage) continue;
      for (;;) {
        this._schedulePersist(each);
        await new Promise((resolve) => queueMicrotask(resolve));
        await entry.persisting;
        if (entry.storageError) throw entry.storageError;
        if (versionIncludes(entry.storedVersion, entry.doc.version())) break;
      }
    }
  }

  _schedulePersist(id) {
    const entry = this._docs.get(id);
    if (!entry || !this._storage || entry.persistQueued) return;
    entry.persistQueued = true;
    queueMicrotask(() => {
      entry.persistQueued = false;
      entry.persisting = entry.persisting.then(() => this._persist(id, entry));
    });
  }

  /** Writes what storage lacks of one document: an update, or every 100th time a snapshot. */
  async _persist(id, entry) {
    const doc = entry.doc;
    const version = doc.version();
    if (versionIncludes(entry.storedVersion, version)) return;
    try {
      if (entry.appends >= COMPACT_AFTER) {
        let stored = version;
        await this._storage.compact(id, (parts) => {
          // Other tabs' parts are merged in, so the snapshot replacing them holds them all.
          for (const error of applyParts(doc, parts)) this._emit('storageError', { doc: id, error });
          stored = doc.version();
          return doc.encode();
        });
        entry.appends = 0;
        entry.storedVersion = stored;
      } else {
        await this._storage.append(id, doc.updateSince(entry.storedVersion));
        entry.appends += 1;
        entry.storedVersion = version;
      }
      entry.storageError = null;
    } catch (error) {
      // A full quota or a failing disk: the edits stay in memory and are written next time.
      entry.storageError = error;
      this._emit('storageError', { doc: id, error });
    }
  }

  /** @param {string} id */
  close(id) {
    const open = this._docs.get(id);
    if (!open) return;
    this._docs.delete(id);
    this._opening.delete(id);
    open.doc.unsubscribe(open.listener);
    open.tab?.close();
    this._sendAll(this._wire.close(id));
    this._checkSaved();
  }

  /** @param {string} [id] @returns {boolean} */
  isSaved(id) {
    if (this._destroyed) return false;
    const ids = id === undefined ? [...this._docs.keys()] : [id];
    return ids.every((each) => {
      const entry = this._docs.get(each);
      if (!entry) return false;
      if (this._wire.isSaved(each)) return true;
      // Another tab's server acknowledged everything this document holds.
      return (
        entry.sharedDurable !== null &&
        this._wire.refusal(each) === undefined &&
        versionIncludes(entry.sharedDurable, entry.doc.version())
      );
    });
  }

  /** @param {string} id @returns {Uint8Array | undefined} */
  savedVersion(id) {
    this._requireOpen(id);
    return this._wire.durableVersion(id);
  }

  /** @param {string} [id] @returns {Promise<void>} */
  whenSaved(id) {
    if (id !== undefined && !this._docs.has(id)) {
      return Promise.reject(new CrdtError('INVALID_ARGUMENT', `document ${JSON.stringify(id)} is not open`));
    }
    const refused = this._refusedAmong(id);
    if (refused) return Promise.reject(refused);
    if (this.isSaved(id)) return Promise.resolve();
    return new Promise((resolve, reject) => this._savedWaiters.push({ id, resolve, reject }));
  }

  /** @param {string | undefined} token */
  setToken(token) {
    this._wire.setToken(token ?? undefined);
    this._flush();
  }

  /** @param {string} id @param {unknown} state */
  setPresence(id, state) {
    this._requireOpen(id);
    const bytes = state === null || state === undefined ? undefined : presenceToBytes(state);
    this._wire.setPresence(id, bytes);
    this._flush();
  }

  /** @param {string} id */
  peers(id) {
    this._requireOpen(id);
    const peers = [];
    for (const { replica, state } of this._wire.peers(id)) {
      try {
        peers.push({ replica, state: presenceFromBytes(state) });
      } catch {
        // Presence that is not JSON comes from another kind of client: not shown.
      }
    }
    return peers;
  }

  /**
   * @param {string} event
   * @param {Function} listener
   * @returns {() => void}
   */
  on(event, listener) {
    let set = this._listeners.get(event);
    if (!set) {
      set = new Set();
      this._listeners.set(event, set);
    }
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Connects now if offline (the browser's `online` event calls this). */
  reconnect() {
    if (this._destroyed || this._socket) return;
    this._attempt = 0;
    if (this._retryTimer !== null) this._timers.clearTimeout(this._retryTimer);
    this._retryTimer = null;
    this._connect();
  }

  /** Closes the connection and stops; the documents stay usable, unsynced. */
  destroy() {
    if (this._destroyed) return;
    this._destroyed = true;
    for (const id of [...this._docs.keys()]) this.close(id);
    if (this._retryTimer !== null) this._timers.clearTimeout(this._retryTimer);
    if (this._wakeTimer !== null) this._timers.clearTimeout(this._wakeTimer);
    this._timers.clearInterval(this._presenceTimer);
    if (typeof globalThis.removeEventListener === 'function') {
      globalThis.removeEventListener('online', this._onOnline);
    }
    const socket = this._socket;
    this._socket = null;
    if (socket) socket.close(1000, 'client destroyed');
    this._wire.disconnected();
    this._setStatus('offline');
    for (const waiter of this._savedWaiters.splice(0)) {
      waiter.reject(new CrdtError('DESTROYED', 'the sync client was destroyed before the changes were saved'));
    }
    this._wire.free();
  }

  // --- internals ---

  _emit(event, payload) {
    for (const listener of this._listeners.get(event) ?? []) {
      try {
        listener(payload);
      } catch (error) {
        // A listener's bug must not stop the client; report it where developers look.
        console.error(error);
      }
    }
  }

  _setStatus(status) {
    if (status === this._status) return;
    this._status = status;
    this._emit('status', status);
  }

  _requireOpen(id) {
    if (!this._docs.has(id)) {
      throw new CrdtError('INVALID_ARGUMENT', `document ${JSON.stringify(id)} is not open`);
    }
  }

  _connect() {
    if (this._destroyed) return;
    this._setStatus('connecting');
    let socket;
    try {
      socket = new this._WebSocket(this._url, SUBPROTOCOL);
    } catch (error) {
      this._emit('error', { code: 'connectFailed', message: String(error?.message ?? error) });
      this._scheduleRetry();
      return;
    }
    socket.binaryType = 'arraybuffer';
    this._socket = socket;
    socket.onopen = () => {
      if (this._socket !== socket) return;
      this._sendAll(this._wire.connected());
    };
    socket.onmessage = (message) => {
      if (this._socket !== socket) return;
      this._receive(message.data);
    };
    socket.onclose = () => this._lost(socket);
    socket.onerror = () => this._lost(socket);
  }

  _lost(socket) {
    if (this._socket !== socket) return;
    this._socket = null;
    try {
      socket.close();
    } catch {
      // Already closed.
    }
    this._wire.disconnected();
    this._setStatus('offline');
    this._scheduleRetry();
  }

  /** Full jitter: a uniform wait in [0, min(max, initial * 2^attempt)). */
  _scheduleRetry() {
    if (this._destroyed || this._retryTimer !== null) return;
    const cap = Math.min(this._maxDelay, this._initialDelay * 2 ** Math.min(this._attempt, 30));
    const delay = Math.floor(this._random() * cap);
    this._attempt += 1;
    this._emit('retry', { attempt: this._attempt, delayMs: delay });
    this._retryTimer = this._timers.setTimeout(() => {
      this._retryTimer = null;
      this._connect();
    }, delay);
  }

  _receive(data) {
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer ?? data, data.byteOffset ?? 0, data.byteLength);
    let events;
    try {
      events = this._wire.receive(bytes);
    } catch (error) {
      // A frame that does not decode: the connection cannot be trusted; start again.
      this._emit('error', { code: 'badFrame', message: String(error?.message ?? error) });
      if (this._socket) this._lost(this._socket);
      return;
    }
    for (const event of events) this._handle(event);
    this._flush();
  }

  _handle(event) {
    switch (event.type) {
      case 'welcome':
        this._attempt = 0;
        this._setStatus('online');
        break;
      case 'authorized':
        this._emit('authorized', { expiresAt: event.expiresAt });
        break;
      case 'connectionError':
        this._emit('error', { code: event.code, message: event.message });
        break;
      case 'acknowledged': {
        const entry = this._docs.get(event.doc);
        const durable = this._wire.durableVersion(event.doc);
        if (entry?.tab && durable) entry.tab.durable(durable);
        break;
      }
      case 'refused':
        this._emit('refused', { doc: event.doc, batch: event.batch, status: event.status, retryable: event.retryable });
        break;
      case 'error':
        this._emit('error', { doc: event.doc, code: event.code, message: event.message });
        break;
      case 'badUpdate':
        this._emit('error', { doc: event.doc, code: 'badUpdate', message: event.message });
        break;
      case 'presence':
        this._emit('presence', { doc: event.doc });
        break;
      default:
        break;
    }
  }

  _queueFlush() {
    if (this._flushQueued) return;
    this._flushQueued = true;
    queueMicrotask(() => {
      this._flushQueued = false;
      this._flush();
    });
  }

  /** Sends what is due, updates the status and settles `whenSaved` promises. */
  _flush() {
    if (this._destroyed) return;
    if (this._socket && this._wire.ready) {
      this._sendAll(this._wire.poll());
      this._reportReadOnly();
      this._setStatus(this._docs.size > 0 && this.isSaved() ? 'saved' : this._docs.size > 0 ? 'syncing' : 'online');
      this._scheduleWake();
    }
    this._checkSaved();
  }

  _scheduleWake() {
    if (this._wakeTimer !== null) this._timers.clearTimeout(this._wakeTimer);
    this._wakeTimer = null;
    const at = this._wire.nextWakeup();
    if (at === undefined) return;
    this._wakeTimer = this._timers.setTimeout(() => {
      this._wakeTimer = null;
      this._flush();
    }, Math.max(0, at - Date.now()));
  }

  _sendAll(messages) {
    const socket = this._socket;
    if (!socket) return;
    for (const message of messages) socket.send(message);
  }

  /** Why `id`'s local changes cannot be saved, if they cannot. */
  _refusal(id) {
    const status = this._wire.refusal(id);
    if (status) return status;
    // Read-only access: local edits are never sent, so they can never be saved.
    if (this._wire.access(id) === 'read' && !this.isSaved(id)) return 'permissionDenied';
    return undefined;
  }

  _refusedAmong(id) {
    const ids = id === undefined ? [...this._docs.keys()] : [id];
    for (const each of ids) {
      const status = this._refusal(each);
      if (status) {
        return new CrdtError('REFUSED', `the server refused changes of ${JSON.stringify(each)}: ${status}`);
      }
    }
    return undefined;
  }

  /** Reports local edits on a read-only document once (the server never sees them). */
  _reportReadOnly() {
    for (const [id, entry] of this._docs) {
      const stuck = this._wire.access(id) === 'read' && !this.isSaved(id);
      if (stuck && !entry.reportedReadOnly) {
        this._emit('refused', { doc: id, batch: 0, status: 'permissionDenied', retryable: false });
      }
      entry.reportedReadOnly = stuck;
    }
  }

  _checkSaved() {
    if (this._savedWaiters.length === 0) return;
    const waiting = this._savedWaiters;
    this._savedWaiters = [];
    for (const waiter of waiting) {
      if (waiter.id !== undefined && !this._docs.has(waiter.id)) {
        waiter.reject(new CrdtError('INVALID_ARGUMENT', `document ${JSON.stringify(waiter.id)} was closed`));
        continue;
      }
      const refused = this._refusedAmong(waiter.id);
      if (refused) waiter.reject(refused);
      else if (this.isSaved(waiter.id)) waiter.resolve();
      else this._savedWaiters.push(waiter);
    }
  }
}
