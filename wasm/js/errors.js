// The error class every failing call of the package throws. It lives in its own module so
// that the generated glue (which creates the errors) and the package entry point (which
// exports the class) share one class, and `instanceof CrdtError` holds.

/** An error from the document: `code` says which, stably (see index.d.ts). */
export class CrdtError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   */
  constructor(code, message) {
    super(message);
    this.name = 'CrdtError';
    /** @type {string} */
    this.code = code;
  }
}

/**
 * Called by the wasm module to make the error it throws.
 * @param {string} code
 * @param {string} message
 */
export function makeCrdtError(code, message) {
  return new CrdtError(code, message);
}
