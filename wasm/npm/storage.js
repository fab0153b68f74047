// Where SyncClient keeps documents between page loads: IndexedDB in browsers, memory
// elsewhere (or anything with the same three methods). A document is stored as a snapshot
// followed by the updates made since, appended after each batch of transactions; the client
// folds them into a new snapshot every so often. Types and docs: index.d.ts.
import { CrdtError } from './errors.js';

/** Documents in memory, for Node and tests: gone when the process ends. */
export class MemoryStorage {
  constructor() {
    /** @type {Map<string, Uint8Array[]>} */
    this._records = new Map();
  }

  /** @param {string} key */
  async load(key) {
    return (this._records.get(key) ?? []).slice();
  }

  /** @param {string} key @param {Uint8Array} update */
  async append(key, update) {
    const parts = this._records.get(key) ?? [];
    parts.push(update.slice());
    this._records.set(key, parts);
  }

  /**
   * @param {string} key
   * @param {(parts: Uint8Array[]) => Uint8Array} merge
   */
  async compact(key, merge) {
    const snapshot = merge(await this.load(key));
    this._records.set(key, [snapshot.slice()]);
  }
}

const PARTS = 'parts';

/** Wraps an IndexedDB request in a promise. */
function done(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** Resolves when a transaction commits, rejects with its error (a full quota, ...). */
function committed(transaction) {
  return new Promise((resolve, reject) => {
    transaction.oncomplete = () => resolve();
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error ?? new Error('IndexedDB transaction aborted'));
  });
}

/** Every part of document `key`: keys `[key, time, writer, n]` sort after `[key]`, before `[key, []]`. */
function range(key) {
  return IDBKeyRange.bound([key], [key, []]);
}

/**
 * Documents in the browser's IndexedDB, in the database `name`. Each appended update is its
 * own record, keyed by document, time and a random writer id, so that tabs appending at once
 * never overwrite each other; `compact` reads, merges and replaces a document's records in
 * one read-write transaction, which IndexedDB runs alone against other tabs' writes.
 */
export class IndexedDbStorage {
  /** @param {string} [name] */
  constructor(name = 'crdt-toolkit') {
    if (typeof globalThis.indexedDB === 'undefined') {
      throw new CrdtError('INVALID_ARGUMENT', 'IndexedDB is not available here: use MemoryStorage or your own storage');
    }
    this._name = name;
    /** @type {Promise<IDBDatabase> | null} */
    this._open = null;
    this._writer = Math.random().toString(36).slice(2);
    this._count = 0;
  }

  _db() {
    if (!this._open) {
      const request = globalThis.indexedDB.open(this._name, 1);
      request.onupgradeneeded = () => {
        request.result.createObjectStore(PARTS);
      };
      this._open = done(request);
    }
    return this._open;
  }

  _key(key) {
    this._count += 1;
    return [key, Date.now(), this._writer, this._count];
  }

  /** @param {string} key */
  async load(key) {
    const db = await this._db();
    const store = db.transaction(PARTS, 'readonly').objectStore(PARTS);
    const values = await done(store.getAll(range(key)));
    return values.map((value) => new Uint8Array(value));
  }

  /** @param {string} key @param {Uint8Array} update */
  async append(key, update) {
    const db = await this._db();
    const transaction = db.transaction(PARTS, 'readwrite');
    transaction.objectStore(PARTS).put(update, this._key(key));
    await committed(transaction);
  }

  /**
   * @param {string} key
   * @param {(parts: Uint8Array[]) => Uint8Array} merge
   */
  async compact(key, merge) {
    const db = await this._db();
    const transaction = db.transaction(PARTS, 'readwrite');
    const store = transaction.objectStore(PARTS);
    const request = store.getAll(range(key));
    request.onsuccess = () => {
      // Synchronous inside the transaction: no other tab writes these records meanwhile.
      let snapshot;
      try {
        snapshot = merge(request.result.map((value) => new Uint8Array(value)));
      } catch (error) {
        transaction.abort();
        throw error;
      }
      store.delete(range(key));
      store.put(snapshot, this._key(key));
    };
    await committed(transaction);
  }
}
