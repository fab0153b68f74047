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
import { type Doc, versionIncludes } from './index.js';

interface TabMessage {
  type?: unknown;
  version?: unknown;
  update?: unknown;
}

/** One document's channel between tabs (internal to the package). */
export class TabChannel {
  /** True while applying another tab's update (its events are not sent back). */
  applying = false;
  private readonly channel: BroadcastChannel;
  /** What the other tabs were sent (or said they have). */
  private sent: Uint8Array;
  private queued = false;

  /**
   * @param name the channel (server URL and document id)
   * @param onDurable called with a version another tab's server made durable
   * @param onError called with updates from other tabs that do not apply
   */
  constructor(
    name: string,
    private readonly doc: Doc,
    private readonly onDurable: (version: Uint8Array) => void,
    private readonly onError: (error: unknown) => void,
  ) {
    this.channel = new BroadcastChannel(name);
    this.sent = doc.version();
    this.channel.onmessage = (event: MessageEvent<unknown>) => this.receive(event.data);
    this.post({ type: 'hello', version: doc.version() });
  }

  /** The document changed (not by another tab): share it, batched per task. */
  changed(): void {
    if (this.queued) return;
    this.queued = true;
    queueMicrotask(() => {
      this.queued = false;
      const version = this.doc.version();
      if (versionIncludes(this.sent, version)) return;
      this.post({ type: 'update', update: this.doc.updateSince(this.sent) });
      this.sent = version;
    });
  }

  /** The server acknowledged changes up to `version`: tell the other tabs. */
  durable(version: Uint8Array): void {
    this.post({ type: 'durable', version });
  }

  close(): void {
    this.channel.onmessage = null;
    this.channel.close();
  }

  private post(message: TabMessage): void {
    try {
      this.channel.postMessage(message);
    } catch {
      // A closed channel (the page is going away): nothing to share.
    }
  }

  private apply(update: Uint8Array): void {
    this.applying = true;
    try {
      this.doc.applyUpdate(update);
    } catch (error) {
      if ((error as { code?: unknown } | null)?.code === 'MISSING_DEPENDENCY') {
        // This tab missed something: ask the others for everything it lacks.
        this.post({ type: 'hello', version: this.doc.version() });
      } else {
        this.onError(error);
      }
    } finally {
      this.applying = false;
    }
  }

  private receive(data: unknown): void {
    if (!data || typeof data !== 'object') return;
    const { type, version, update } = data as TabMessage;
    try {
      if (type === 'hello' && version instanceof Uint8Array) {
        this.post({ type: 'sync', version: this.doc.version(), update: this.doc.updateSince(version) });
      } else if (type === 'sync' && update instanceof Uint8Array && version instanceof Uint8Array) {
        this.apply(update);
        // The answering tab lacks something of ours (edits made here while it was closed).
        if (!versionIncludes(version, this.doc.version())) {
          this.post({ type: 'update', update: this.doc.updateSince(version) });
        }
      } else if (type === 'update' && update instanceof Uint8Array) {
        this.apply(update);
      } else if (type === 'durable' && version instanceof Uint8Array) {
        this.onDurable(version);
      }
    } catch (error) {
      // A forged version from another tab (a bug there): reported, never thrown here.
      this.onError(error);
    }
  }
}
