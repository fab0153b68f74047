// One adapter per library, each using that library's own idiomatic calls. Every adapter has
// the same shape, so the harness (measure.mjs) treats them alike:
//
//   create(agent)              a fresh replica (agent n gets a fixed id, so byte counts repeat)
//   edit(replica, patches)     one trace transaction as one transaction of the library
//   editWithUpdate(r, patches) the same, returning the update a peer needs
//   receive(replica, updates)  applies updates from peers, as one sync message would carry them
//   text(replica)              the text as a JS string
//   encode(replica)            the whole document, history included, in the standard format
//   load(bytes)                a replica decoded from encode()'s bytes
//   mergeInto(replica, list)   encode()d documents merged into an existing replica
//   free(replica)
//
// Positions are UTF-16 code units: every library here indexes JS strings that way by default.

import { readFileSync } from "node:fs";

const packageVersion = (url) => JSON.parse(readFileSync(new URL(url, import.meta.url), "utf8")).version;

/** A trace transaction edits with a delete then an insert per patch; this counts them. */
const editCount = (patches) => patches.reduce((n, [, del, ins]) => n + (del > 0) + (ins.length > 0), 0);

const hexId = (agent) => (agent + 1).toString(16).padStart(32, "0");

async function crdtToolkit() {
  const { Doc } = await import(new URL("../../wasm/pkg/node.js", import.meta.url).href);
  const edits = (text, patches) => {
    for (const [pos, del, ins] of patches) {
      if (del > 0) text.delete(pos, del);
      if (ins.length > 0) text.insert(pos, ins);
    }
  };
  // `getText` creates the shared text on first use, which is itself a change: it is asked for
  // inside the first local transaction, after the version that transaction's update starts
  // from, so the creation travels with it.
  const textOf = (r) => (r.text ??= r.doc.getText("text"));
  const edit = (r, patches) => {
    const text = textOf(r);
    if (editCount(patches) > 1) r.doc.transact(() => edits(text, patches));
    else edits(text, patches);
  };
  return {
    name: "crdt-toolkit",
    version: packageVersion("../../wasm/pkg/package.json"),
    create: (agent) => ({ doc: new Doc({ replica: hexId(agent) }), text: undefined }),
    edit,
    editWithUpdate(r, patches) {
      const before = r.doc.version();
      edit(r, patches);
      return r.doc.updateSince(before);
    },
    receive(r, updates) {
      for (const update of updates) r.doc.applyUpdate(update);
    },
    text: (r) => textOf(r).toString(),
    encode: (r) => r.doc.encode(),
    load: (bytes) => ({ doc: Doc.load(bytes), text: undefined }),
    mergeInto(r, list) {
      for (const bytes of list) r.doc.applyUpdate(bytes);
    },
    free(r) {
      r.text?.free();
      r.doc.free();
    },
  };
}

async function yjs() {
  const Y = await import("yjs");
  const edits = (text, patches) => {
    for (const [pos, del, ins] of patches) {
      if (del > 0) text.delete(pos, del);
      if (ins.length > 0) text.insert(pos, ins);
    }
  };
  const edit = (r, patches) => {
    if (editCount(patches) > 1) r.doc.transact(() => edits(r.text, patches));
    else edits(r.text, patches);
  };
  const create = (agent) => {
    const doc = new Y.Doc();
    doc.clientID = agent + 1;
    return { doc, text: doc.getText("text") };
  };
  return {
    name: "yjs",
    version: packageVersion("./node_modules/yjs/package.json"),
    create,
    edit,
    editWithUpdate(r, patches) {
      // The "update" event carries exactly this transaction's update; listening only for this
      // one spares Yjs from encoding the updates it receives (kinder to Yjs than a listener
      // kept for the replica's life, as y-websocket does).
      let update;
      const listener = (bytes) => (update = bytes);
      r.doc.once("update", listener);
      edit(r, patches);
      r.doc.off("update", listener);
      return update;
    },
    receive(r, updates) {
      r.doc.transact(() => {
        for (const update of updates) Y.applyUpdate(r.doc, update);
      });
    },
    text: (r) => r.text.toString(),
    encode: (r) => Y.encodeStateAsUpdate(r.doc),
    load(bytes) {
      // A client id no writer uses (Yjs renames a doc's client that meets its own id).
      const r = create(0x7ffffffe);
      Y.applyUpdate(r.doc, bytes);
      return r;
    },
    mergeInto(r, list) {
      r.doc.transact(() => {
        for (const bytes of list) Y.applyUpdate(r.doc, bytes);
      });
    },
    free: (r) => r.doc.destroy(),
  };
}

async function loro() {
  const { LoroDoc } = await import("loro-crdt");
  const create = (agent) => {
    const doc = new LoroDoc();
    doc.setPeerId(BigInt(agent + 1));
    return { doc, text: doc.getText("text") };
  };
  const edit = (r, patches) => {
    for (const [pos, del, ins] of patches) {
      if (del > 0) r.text.delete(pos, del);
      if (ins.length > 0) r.text.insert(pos, ins);
    }
    r.doc.commit();
  };
  return {
    name: "loro",
    version: packageVersion("./node_modules/loro-crdt/package.json"),
    create,
    edit,
    editWithUpdate(r, patches) {
      const before = r.doc.oplogVersion();
      edit(r, patches);
      const update = r.doc.export({ mode: "update", from: before });
      before.free();
      return update;
    },
    receive: (r, updates) => void r.doc.importBatch(updates),
    text: (r) => r.text.toString(),
    encode: (r) => r.doc.export({ mode: "snapshot" }),
    load(bytes) {
      const doc = LoroDoc.fromSnapshot(bytes);
      return { doc, text: doc.getText("text") };
    },
    mergeInto: (r, list) => void r.doc.importBatch(list),
    free(r) {
      r.text.free();
      r.doc.free();
    },
  };
}

async function automerge() {
  const A = await import("@automerge/automerge");
  // The text is a field of the root object. Created by the first transaction (the trace's
  // root, which every other transaction descends from), so all replicas share one.
  const edit = (r, patches) => {
    r.doc = A.change(r.doc, (d) => {
      if (d.text === undefined) d.text = "";
      for (const [pos, del, ins] of patches) A.splice(d, ["text"], pos, del, ins);
    });
  };
  return {
    name: "automerge",
    version: packageVersion("./node_modules/@automerge/automerge/package.json"),
    create: (agent) => ({ doc: A.init({ actor: hexId(agent) }) }),
    edit,
    editWithUpdate(r, patches) {
      edit(r, patches);
      return A.getLastLocalChange(r.doc);
    },
    receive(r, updates) {
      [r.doc] = A.applyChanges(r.doc, updates);
    },
    text: (r) => r.doc.text ?? "",
    encode: (r) => A.save(r.doc),
    load: (bytes) => ({ doc: A.load(bytes) }),
    mergeInto(r, list) {
      for (const bytes of list) r.doc = A.loadIncremental(r.doc, bytes);
    },
    free: (r) => A.free(r.doc),
  };
}

/** The libraries by name, in table order (ours first). */
export const LIBRARIES = {
  "crdt-toolkit": crdtToolkit,
  yjs,
  loro,
  automerge,
};
