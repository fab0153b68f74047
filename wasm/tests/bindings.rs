//! The bindings in wasm, under Node (wasm-bindgen-test): run by `cargo xtask test` with
//! `wasm-bindgen-test-runner` as the wasm32 test runner.
#![cfg(target_arch = "wasm32")]

use crdt_wasm::{Doc, UndoManager};
use js_sys::{Array, Function, Reflect};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::wasm_bindgen_test;

fn doc() -> Doc {
    Doc::new(JsValue::UNDEFINED).expect("default options")
}

fn sync(from: &Doc, to: &Doc) {
    let version = to.version().expect("a version").to_vec();
    let update = from
        .update_since(Some(version))
        .expect("an update")
        .to_vec();
    to.apply_update(&update).expect("applies");
}

fn json(doc: &Doc) -> String {
    let value = doc.to_json().expect("readable");
    js_sys::JSON::stringify(&value)
        .expect("plain data")
        .as_string()
        .unwrap_or_default()
}

#[wasm_bindgen_test]
fn two_documents_converge_through_updates() {
    let alice = doc();
    let bob = doc();
    alice
        .get_text("t")
        .expect("a text")
        .insert(0, "from alice")
        .expect("in range");
    bob.get_list("l")
        .expect("a list")
        .push(JsValue::from(1))
        .expect("a value");
    bob.get_text("t")
        .expect("a text")
        .insert(0, "bob: ")
        .expect("in range");
    sync(&alice, &bob);
    sync(&bob, &alice);
    assert_eq!(json(&alice), json(&bob));
    let text = alice
        .get_text("t")
        .expect("a text")
        .to_string_js()
        .expect("a text");
    assert!(
        text.contains("from alice") && text.contains("bob: "),
        "{text}"
    );
}

#[wasm_bindgen_test]
fn utf16_indices_with_emoji_and_combining_marks() {
    let doc = doc();
    let text = doc.get_text("t").expect("a text");
    text.insert(0, "a😀b").expect("in range");
    assert_eq!(text.length().expect("a length"), 4);
    let inside_pair = text.insert(2, "x").expect_err("inside a surrogate pair");
    assert_eq!(inside_pair.code(), "NOT_CHAR_BOUNDARY");
    text.insert(3, "e\u{301}").expect("after the emoji");
    assert_eq!(text.to_string_js().expect("a text"), "a😀e\u{301}b");
    text.delete(1, 2).expect("the emoji");
    assert_eq!(text.to_string_js().expect("a text"), "ae\u{301}b");
    assert_eq!(
        text.delete(0, 99).expect_err("too long").code(),
        "OUT_OF_RANGE"
    );
}

#[wasm_bindgen_test]
fn errors_have_codes_and_change_nothing() {
    let doc = doc();
    doc.get_text("title")
        .expect("a text")
        .insert(0, "x")
        .expect("in range");
    assert_eq!(json(&doc), r#"{"title":"x"}"#);
    assert_eq!(
        doc.get_list("title").err().map(|e| e.code()),
        Some("KEY_HOLDS")
    );
    assert_eq!(
        doc.apply_update(&[1, 2, 3]).expect_err("garbage").code(),
        "BAD_ENCODING"
    );
    let map = doc.get_map("m").expect("a map");
    assert_eq!(
        map.set("k", JsValue::UNDEFINED)
            .expect_err("undefined")
            .code(),
        "INVALID_VALUE"
    );
    // Only the opening of "m" changed the document; the refused set left it empty.
    assert_eq!(json(&doc), r#"{"m":{},"title":"x"}"#);
}

#[wasm_bindgen_test]
fn events_reach_listeners_with_paths_and_utf16_positions() {
    let doc = doc();
    let text = doc.get_text("t").expect("a text");
    text.insert(0, "😀").expect("in range");
    let seen = Array::new();
    let sink = seen.clone();
    let listener =
        wasm_bindgen::closure::Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            sink.push(&event);
        });
    let function: &Function = listener.as_ref().unchecked_ref_function();
    doc.subscribe(function.clone()).expect("subscribed");
    text.insert(2, "!").expect("after the emoji");
    assert_eq!(seen.length(), 1);
    let event = seen.get(0);
    let changes = Array::from(&Reflect::get(&event, &"changes".into()).expect("changes"));
    let change = changes.get(0);
    let get = |key: &str| Reflect::get(&change, &key.into()).expect("a field");
    assert_eq!(get("index").as_f64(), Some(2.0));
    assert_eq!(get("text").as_string().as_deref(), Some("!"));
    assert_eq!(get("kind").as_string().as_deref(), Some("text"));
    let path = Array::from(&get("path"));
    assert_eq!(path.get(0).as_string().as_deref(), Some("t"));
    drop(listener);
}

#[wasm_bindgen_test]
fn undo_and_redo() {
    let doc = doc();
    let undo = UndoManager::new(&doc, JsValue::UNDEFINED).expect("a manager");
    let list = doc.get_list("l").expect("a list");
    undo.stop_capturing().expect("stops");
    list.push(JsValue::from("a")).expect("a value");
    assert!(undo.undo().expect("undoes"));
    assert_eq!(list.length().expect("a length"), 0);
    assert!(undo.redo().expect("redoes"));
    assert_eq!(list.length().expect("a length"), 1);
}

/// `Closure` to `&Function` without importing `JsCast` at every use.
trait AsFunction {
    fn unchecked_ref_function(&self) -> &Function;
}

impl AsFunction for JsValue {
    fn unchecked_ref_function(&self) -> &Function {
        wasm_bindgen::JsCast::unchecked_ref(self)
    }
}
