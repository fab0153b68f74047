// Where SyncClient keeps documents between page loads: IndexedDB in browsers, memory
// elsewhere (or anything implementing DocStorage). A document is stored as a snapshot
// followed by the updates made since, appended after each batch of transactions; the client
// folds them into a new snapshot every so often.
import { CrdtError } from './index.js';

/**
 * Where a {@link SyncClient} keeps documents: each is stored as parts (a snapshot and the
 * updates after it). Implement it to store elsewhere.
 *
 * @example
 * ```ts
 * const files: DocStorage = {
 *   load: async (key) => readParts(key),
 *   append: async (key, update) => appendPart(key, update),
 *   compact: async (key, merge) => replaceParts(key, merge(await readParts(key))),
 * };
 * ```
 */
export interface DocStorage {
  /** Every part stored for document `key`, in the order written. */
  load(key: string): Promise<Uint8Array[]>;
  /** Stores one more part of `key`. */
  append(key: string, update: Uint8Array): Promise<void>;
  /**
   * Replaces the parts of `key` by what `merge(parts)` returns (it merges them into the
   * document and returns its snapshot), atomically against other writers.
   */
  compact(key: string, merge: (parts: Uint8Array[]) => Uint8Array): Promise<void>;
}

/**
 * Documents in memory, gone with the process (Node, tests).
 *
 * @example
 * ```ts
 * const client = new SyncClient(url, { WebSocket, storage: new MemoryStorage() });
 * ```
 */
export class MemoryStorage implements DocStorage {
  private readonly records = new Map<string, Uint8Array[]>();

  async load(key: string): Promise<Uint8Array[]> {
    return (this.records.get(key) ?? []).slice();
  }

  async append(key: string, update: Uint8Array): Promise<void> {
    const parts = this.records.get(key) ?? [];
    parts.push(update.slice());
    this.records.set(key, parts);
  }

  async compact(key: string, merge: (parts: Uint8Array[]) => Uint8Array): Promise<void> {
    const snapshot = merge(await this.load(key));
    this.records.set(key, [snapshot.slice()]);
  }
}

const PARTS = 'parts';

/** Wraps an IndexedDB request in a promise. */
function done<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** Resolves when a transaction commits, rejects with its error (a full quota, ...). */
function committed(transaction: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    transaction.oncomplete = () => resolve();
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error ?? new Error('IndexedDB transaction aborted'));
  });
}

/** A stored part as bytes (IndexedDB gives back the `Uint8Array` it was given). */
function asBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  throw new CrdtError('BAD_ENCODING', 'a stored part is not bytes');
}

/** Every part of document `key`: keys `[key, time, writer, n]` sort after `[key]`, before `[key, []]`. */
function range(key: string): IDBKeyRange {
  return IDBKeyRange.bound([key], [key, []]);
}

/**
 * Documents in the browser's IndexedDB (database `name`, default `"crdt-toolkit"`): the
 * default storage of a {@link SyncClient} in browsers. Each appended update is its own
 * record, keyed by document, time and a random writer id, so that tabs appending at once
 * never overwrite each other; `compact` reads, merges and replaces a document's records in
 * one read-write transaction, which IndexedDB runs alone against other tabs' writes.
 *
 * @example
 * ```ts
 * const client = new SyncClient(url, { storage: new IndexedDbStorage("my-app") });
 * ```
 */
export class IndexedDbStorage implements DocStorage {
  private readonly name: string;
  private opening: Promise<IDBDatabase> | null = null;
  private readonly writer = Math.random().toString(36).slice(2);
  private count = 0;

  constructor(name = 'crdt-toolkit') {
    if (typeof globalThis.indexedDB === 'undefined') {
      throw new CrdtError('INVALID_ARGUMENT', 'IndexedDB is not available here: use MemoryStorage or your own storage');
    }
    this.name = name;
  }

  private db(): Promise<IDBDatabase> {
    if (!this.opening) {
      const request = globalThis.indexedDB.open(this.name, 1);
      request.onupgradeneeded = () => {
        request.result.createObjectStore(PARTS);
      };
      this.opening = done(request);
    }
    return this.opening;
  }

  private key(key: string): IDBValidKey {
    this.count += 1;
    return [key, Date.now(), this.writer, this.count];
  }

  async load(key: string): Promise<Uint8Array[]> {
    const db = await this.db();
    const store = db.transaction(PARTS, 'readonly').objectStore(PARTS);
    const values: unknown[] = await done(store.getAll(range(key)));
    return values.map(asBytes);
  }

  async append(key: string, update: Uint8Array): Promise<void> {
    const db = await this.db();
    const transaction = db.transaction(PARTS, 'readwrite');
    transaction.objectStore(PARTS).put(update, this.key(key));
    await committed(transaction);
  }

  async compact(key: string, merge: (parts: Uint8Array[]) => Uint8Array): Promise<void> {
    const db = await this.db();
    const transaction = db.transaction(PARTS, 'readwrite');
    const store = transaction.objectStore(PARTS);
    const request = store.getAll(range(key));
    let failure: unknown = null;
    request.onsuccess = () => {
      // Synchronous inside the transaction: no other tab writes these records meanwhile.
      try {
        const snapshot = merge((request.result as unknown[]).map(asBytes));
        store.delete(range(key));
        store.put(snapshot, this.key(key));
      } catch (error) {
        failure = error;
        transaction.abort();
      }
    };
    try {
      await committed(transaction);
    } catch (error) {
      throw failure ?? error;
    }
  }
}
