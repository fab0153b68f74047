// TabChannel: one document's changes shared at once between the tabs (and workers) of one
// origin through a BroadcastChannel, with or without a server. Used by SyncClient.
//
// Design: every tab keeps its own connection (as y-websocket does) and the channel only
// shares changes and the server's acknowledgements between tabs. So one connected tab is
// enough for every tab's edits to reach the server (they are in its document, and its sync
// session sends what the server lacks), a tab that loses its connection still sees and
// shares edits, and a tab whose edits another tab made durable knows they are saved. A
// leader tab holding the only connection would save connections but adds a hand-over
// window on every tab close and relays presence; not worth it at one idle WebSocket per tab.
//
// Messages (structured clones): `hello {version}` from a tab that opened the document, answered
// by `sync {version, update}` with what it lacks; `update {update}` after changes; `durable
// {version}` after the server acknowledged a batch.
import { versionIncludes } from './crdt_wasm.js';

export class TabChannel {
  /**
   * @param {string} name the channel (server URL and document id)
   * @param {import('./index.js').Doc} doc
   * @param {(version: Uint8Array) => void} onDurable called with a version another tab's server made durable
   * @param {(error: unknown) => void} onError called with updates from other tabs that do not apply
   */
  constructor(name, doc, onDurable, onError) {
    this._doc = doc;
    this._onDurable = onDurable;
    this._onError = onError;
    this._channel = new BroadcastChannel(name);
    /** What the other tabs were sent (or said they have). */
    this._sent = doc.version();
    this._queued = false;
    /** True while applying another tab's update (its events are not sent back). */
    this.applying = false;
    this._channel.onmessage = (event) => this._receive(event.data);
    this._post({ type: 'hello', version: doc.version() });
  }

  /** The document changed (not by another tab): share it, batched per task. */
  changed() {
    if (this._queued) return;
    this._queued = true;
    queueMicrotask(() => {
      this._queued = false;
      const version = this._doc.version();
      if (versionIncludes(this._sent, version)) return;
      this._post({ type: 'update', update: this._doc.updateSince(this._sent) });
      this._sent = version;
    });
  }

  /** The server acknowledged changes up to `version`: tell the other tabs. @param {Uint8Array} version */
  durable(version) {
    this._post({ type: 'durable', version });
  }

  close() {
    this._channel.onmessage = null;
    this._channel.close();
  }

  _post(message) {
    try {
      this._channel.postMessage(message);
    } catch {
      // A closed channel (the page is going away): nothing to share.
    }
  }

  _apply(update) {
    this.applying = true;
    try {
      this._doc.applyUpdate(update);
      return true;
    } catch (error) {
      if (error?.code === 'MISSING_DEPENDENCY') {
        // This tab missed something: ask the others for everything it lacks.
        this._post({ type: 'hello', version: this._doc.version() });
      } else {
        this._onError(error);
      }
      return false;
    } finally {
      this.applying = false;
    }
  }

  _receive(message) {
    if (!message || typeof message !== 'object') return;
    const { type, version, update } = message;
    if (type === 'hello' && version instanceof Uint8Array) {
      try {
        this._post({ type: 'sync', version: this._doc.version(), update: this._doc.updateSince(version) });
      } catch (error) {
        this._onError(error);
      }
    } else if (type === 'sync' && update instanceof Uint8Array && version instanceof Uint8Array) {
      this._apply(update);
      try {
        // The answering tab lacks something of ours (edits made here while it was closed).
        if (!versionIncludes(version, this._doc.version())) {
          this._post({ type: 'update', update: this._doc.updateSince(version) });
        }
      } catch (error) {
        this._onError(error);
      }
    } else if (type === 'update' && update instanceof Uint8Array) {
      this._apply(update);
    } else if (type === 'durable' && version instanceof Uint8Array) {
      this._onDurable(version);
    }
  }
}
