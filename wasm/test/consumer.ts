// Type-checked with `tsc --strict` by `cargo xtask test` (never run): a consumer using every
// export of the package's hand-written types, so that they stay complete and precise.
import {
  AwSet,
  type ChangeRecord,
  CrdtError,
  type CrdtErrorCode,
  Doc,
  type DocChange,
  DocCounter,
  type DocEvent,
  DocList,
  DocMap,
  DocRegister,
  DocText,
  DocView,
  type Head,
  type DocStorage,
  IndexedDbStorage,
  MemoryStorage,
  type RefusalStatus,
  type JsonValue,
  type ReadValue,
  init,
  initSync,
  MvRegister,
  OrMap,
  type Peer,
  PNCounter,
  Presence,
  SyncClient,
  type SyncClientOptions,
  type SyncPeer,
  SyncSession,
  type SyncStatus,
  UndoManager,
  WireClient,
  type WireEvent,
  type UpdateInfo,
  versionIncludes,
  versionJoin,
  versionMeet,
} from '../npm/index.js';

export async function tour(wasmBytes: Uint8Array): Promise<string> {
  await init();
  initSync(wasmBytes);
  const doc: Doc = new Doc({ replica: '0123456789abcdef0123456789abcdef', indexUnit: 'utf16' });
  const title: DocText = doc.getText('title');
  title.insert(0, 'Hello');
  title.delete(0, 1);
  const length: number = title.length;
  const items: DocList = doc.getList('items');
  items.push('milk');
  items.insert(0, 1n);
  const nested: DocMap = items.insertContainer(2, 'map');
  nested.set('done', false);
  const notes: DocText = nested.setContainer('notes', 'text');
  notes.insert(0, 'x');
  const first: ReadValue | undefined = items.get(0);
  const settings: DocMap = doc.getMap('settings');
  settings.set('theme', 'dark');
  const keys: string[] = settings.keys();
  const likes: DocCounter = doc.getCounter('likes');
  likes.add(1);
  const total: number | bigint = likes.value;
  const status: DocRegister = doc.getRegister('status');
  status.set(new Uint8Array([1]));
  const conflicts: ReadValue[] = status.getConflicts();
  const n: number = doc.transact(() => {
    items.push(null);
    return items.length;
  }, 'push');
  const id: number = doc.subscribe((event: DocEvent) => {
    const change: DocChange | undefined = event.changes[0];
    if (change?.kind === 'text' && change.action === 'delete') {
      const removed: string = change.text;
      void removed;
    }
  });
  doc.unsubscribe(id);
  const json: { [key: string]: JsonValue } = doc.toJSON();
  const heads: Head[] = doc.heads();
  const other = Doc.load(doc.encode());
  other.applyUpdate(doc.updateSince(other.version()));
  const fork: Doc = doc.fork();
  const merged: number = fork.merge(doc);
  try {
    title.insert(99, 'x');
  } catch (e) {
    if (e instanceof CrdtError) {
      const code: CrdtErrorCode = e.code;
      void code;
    }
  }
  fork.free();
  return `${length} ${String(first)} ${keys.length} ${String(total)} ${conflicts.length} ${n} ${JSON.stringify(json)} ${heads.length} ${merged}`;
}

export function undoAndSync(doc: Doc, peer: Doc): boolean {
  const undo = new UndoManager(doc, { captureTimeout: 500, maxSteps: 10 });
  const undone: boolean = undo.undo();
  const redone: boolean = undo.redo();
  const can: boolean = undo.canUndo && undo.canRedo;
  undo.stopCapturing();
  undo.destroy();
  const session = new SyncSession(doc, 'doc-1');
  const other = new SyncSession(peer, 'doc-1');
  const replies: Uint8Array[] = other.receive(session.hello());
  for (const reply of replies) session.receive(reply);
  const changes: Uint8Array | undefined = session.poll();
  session.reset();
  const waiting: number = session.waiting;
  return undone && redone && can && changes === undefined && waiting === 0;
}

export function history(doc: Doc): number {
  const before: Uint8Array = doc.version();
  const text: DocText = doc.getText('t');
  text.insert(0, 'x');
  const view: DocView = doc.viewAt(before);
  const json: { [key: string]: JsonValue } = view.toJSON();
  const same: Uint8Array = view.version();
  const branch: Doc = doc.forkAt(before, { replica: 'ffffffffffffffffffffffffffffffff' });
  doc.revertTo(before);
  const shallow: Uint8Array = doc.encodeShallow(doc.version());
  const caret: Uint8Array = text.cursor(0, 'before');
  const at: number = text.resolveCursor(caret);
  const item: Uint8Array = doc.getList('l').cursor(0);
  return Object.keys(json).length + same.length + branch.historyLength + shallow.length + at + item.length;
}

export function presence(doc: Doc): string[] {
  const here = new Presence(doc, 'doc-1', 10_000);
  const hello: Uint8Array = here.setLocal(new Uint8Array([1]));
  const changed: boolean = here.receive(hello);
  const peers: Peer[] = here.peers();
  const bye: Uint8Array = here.leave();
  const gone: string[] = here.expire();
  return [String(changed), String(peers.length), String(bye.length), ...gone];
}

export function stateTypes(): string {
  const counter = new PNCounter('0123456789abcdef0123456789abcdef');
  const delta: Uint8Array = counter.add(2n);
  const copy: PNCounter = PNCounter.decode(counter.encode());
  const changed: boolean = copy.merge(delta);
  const total: number | bigint = copy.value;
  const tags = new AwSet();
  tags.merge(tags.add('a'));
  tags.delete('a');
  const has: boolean = tags.has('a');
  const elements: string[] = tags.values();
  const size: number = tags.size;
  const title = new MvRegister();
  title.set('x');
  title.clear();
  const values: string[] = MvRegister.decode(title.encode()).values();
  return `${changed} ${String(total)} ${has} ${elements.length} ${size} ${values.length}`;
}

export function historyAsData(doc: Doc, peerVersion: Uint8Array): number {
  const changes: ChangeRecord[] = doc.changes();
  const first: ChangeRecord | undefined = changes[0];
  const message: string | null = first ? first.message : null;
  const when: number | null = first ? first.timestamp : null;
  const slider: JsonValue[] = changes.map((c) => doc.viewAt(c.version).toJSON());
  const diff: DocChange[] = doc.diff(first ? first.version : doc.version(), doc.version());
  const info: UpdateInfo = Doc.inspectUpdate(doc.updateSince(peerVersion));
  const deps: Head[] = info.dependencies;
  const base: Uint8Array | undefined = info.base;
  const stable: Uint8Array = versionMeet(doc.version(), peerVersion);
  const all: Uint8Array = versionJoin(doc.version(), peerVersion);
  const compacted: Uint8Array = doc.compact(stable);
  const ok: boolean = versionIncludes(all, compacted);
  const map = new OrMap();
  const delta: Uint8Array = map.set('k', 'v');
  map.merge(delta);
  const values: string[] | undefined = map.get('k');
  const keys: string[] = OrMap.decode(map.encode()).keys();
  const json: { [key: string]: string[] } = map.toJSON();
  map.delete('k');
  return (
    slider.length + diff.length + deps.length + info.eventCount + (base ? 1 : 0) + (ok ? 1 : 0) +
    (values ? values.length : 0) + keys.length + Object.keys(json).length + map.size +
    (message ? 1 : 0) + (when ?? 0)
  );
}

export async function syncClient(WebSocketImpl: NonNullable<SyncClientOptions['WebSocket']>): Promise<string> {
  const client = new SyncClient('ws://127.0.0.1:8080', {
    WebSocket: WebSocketImpl,
    token: 'a.b.c',
    backoff: { initialMs: 100, maxMs: 10_000 },
    storage: new MemoryStorage(),
  });
  const custom: DocStorage = new IndexedDbStorage('app');
  await custom.compact('k', (parts) => parts[0] ?? new Uint8Array());
  const doc: Doc = await client.open('notes/1');
  await client.whenStored('notes/1');
  client.on('storageError', ({ doc: id, error }) => console.log(id, error));
  doc.getText('body').insert(0, 'hi');
  const stop: () => void = client.on('refused', (refusal) => {
    const status: RefusalStatus = refusal.status;
    console.log(refusal.doc, refusal.batch, status, refusal.retryable);
  });
  client.on('status', (status: SyncStatus) => console.log(status));
  client.on('retry', ({ attempt, delayMs }) => console.log(attempt + delayMs));
  client.setPresence('notes/1', { name: 'Ana' });
  const peers: SyncPeer[] = client.peers('notes/1');
  await client.whenSaved();
  const saved: boolean = client.isSaved('notes/1');
  stop();
  client.setToken(undefined);
  client.reconnect();
  client.close('notes/1');
  client.destroy();
  const wire = new WireClient('agent/1');
  wire.open('d', doc);
  const out: Uint8Array[] = wire.connected();
  const events: WireEvent[] = wire.receive(out[0] ?? new Uint8Array());
  const wake: number | undefined = wire.nextWakeup();
  return `${peers.length} ${saved} ${client.status} ${events.length} ${wake ?? 0}`;
}
