//! Errors thrown to JavaScript: a `CrdtError` (an `Error` subclass defined in `js/errors.js`)
//! with a stable `code` and the core's message.
//!
//! The codes are part of the package's API (listed in `index.d.ts`): apps branch on them, so
//! an existing code never changes meaning.

use crdt_core::{DocError, LoadError};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/js/errors.js")]
extern "C" {
    #[wasm_bindgen(js_name = makeCrdtError)]
    fn make_crdt_error(code: &str, message: &str) -> JsValue;
}

/// An error on its way to JavaScript, where it becomes a thrown `CrdtError` with `code` and
/// `message` (what the exported functions return on failure).
#[derive(Debug)]
pub struct JsFailure {
    code: &'static str,
    message: String,
}

impl JsFailure {
    /// An error with `code` (one of those in `index.d.ts`).
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> JsFailure {
        JsFailure {
            code,
            message: message.into(),
        }
    }

    /// The stable code (`"OUT_OF_RANGE"`, ...), as `CrdtError.code` will carry it.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message, as `CrdtError.message` will carry it.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// A JS argument of the wrong type or out of its domain.
    pub(crate) fn invalid_argument(message: impl Into<String>) -> JsFailure {
        JsFailure::new("INVALID_ARGUMENT", message)
    }
}

impl From<JsFailure> for JsValue {
    fn from(failure: JsFailure) -> JsValue {
        make_crdt_error(failure.code, &failure.message)
    }
}

impl From<DocError> for JsFailure {
    fn from(error: DocError) -> JsFailure {
        let code = match &error {
            DocError::NoSuchContainer(_) => "NO_SUCH_CONTAINER",
            DocError::WrongKind { .. } => "WRONG_KIND",
            DocError::OutOfRange { .. } => "OUT_OF_RANGE",
            DocError::NotCharBoundary { .. } => "NOT_CHAR_BOUNDARY",
            DocError::ContainerAsValue => "CONTAINER_AS_VALUE",
            DocError::KeyHolds { .. } => "KEY_HOLDS",
            DocError::HistoryUnreadable(_) => "HISTORY_UNREADABLE",
            DocError::TooDeep { .. } => "TOO_DEEP",
            DocError::DepthLimitOutOfRange { .. } => "INVALID_ARGUMENT",
            _ => "DOCUMENT_ERROR",
        };
        JsFailure::new(code, error.to_string())
    }
}

impl From<LoadError> for JsFailure {
    fn from(error: LoadError) -> JsFailure {
        let code = match &error {
            LoadError::UnknownFormat
            | LoadError::Truncated
            | LoadError::ChecksumMismatch
            | LoadError::Malformed(_) => "BAD_ENCODING",
            LoadError::UnsupportedVersion { .. } => "UNSUPPORTED_VERSION",
            LoadError::MissingEvent(_) => "MISSING_DEPENDENCY",
            LoadError::HistoryTrimmed { .. } => "HISTORY_TRIMMED",
            LoadError::TooDeep { .. } => "TOO_DEEP",
            _ => "BAD_ENCODING",
        };
        JsFailure::new(code, error.to_string())
    }
}

/// What every exported function returns on failure.
pub type JsResult<T> = Result<T, JsFailure>;
