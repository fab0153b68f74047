// Shared by the browser tests (no tests of its own): the wasm/ directory over HTTP on a
// loopback port, as a web app's own server would serve the package.
import { readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm', // lets the browser compile while downloading
  '.json': 'application/json',
  '.png': 'image/png',
};

/** The file under `root` for a URL path, or null (outside `root`, or no such file). */
export function fileFor(root, urlPath) {
  const path = normalize(decodeURIComponent(urlPath));
  const file = join(root, path);
  if (!file.startsWith(root.endsWith(sep) ? root : root + sep)) return null;
  try {
    return statSync(file).isFile() ? file : null;
  } catch {
    return null;
  }
}

/** The content type of a served file. */
export function contentType(file) {
  return TYPES[extname(file)] ?? 'application/octet-stream';
}

/** Serves `root` on a free loopback port; resolves to `{ port, close() }`. */
export async function serveDirectory(root) {
  const server = createServer((request, response) => {
    const file = fileFor(root, new URL(request.url, 'http://x').pathname);
    if (!file) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': contentType(file) });
    response.end(readFileSync(file));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: server.address().port, close: () => server.close() };
}
