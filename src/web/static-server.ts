/**
 * `latentlab serve --static DIR`: a static file server for a built page (dist/web/tab/, "train in
 * the tab") with the headers the wasm backend's shared memory needs (COOP/COEP, via ./http.ts).
 * GET and HEAD only; paths are resolved inside DIR (no dot segments out of it); a folder serves its
 * index.html.
 */
import { createReadStream, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { setHeaders } from './http.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8', '.wasm': 'application/wasm', '.json': 'application/json; charset=utf-8',
  '.png': 'image/png', '.svg': 'image/svg+xml',
};

export interface StaticServer { url: string; port: number; close(): Promise<void> }

export async function startStaticServer(opts: { dir: string; port?: number; host?: string }): Promise<StaticServer> {
  const root = path.resolve(opts.dir);
  let st;
  try { st = statSync(root); } catch { throw new Error(`--static: ${opts.dir}: no such folder (build it with npm run build:web)`); }
  if (!st.isDirectory()) throw new Error(`--static: ${opts.dir}: expected a folder`);
  const server = http.createServer((req, res) => {
    const fail = (code: number, msg: string): void => { setHeaders(res, 'text/plain; charset=utf-8'); res.statusCode = code; res.end(`${msg}\n`); };
    if (req.method !== 'GET' && req.method !== 'HEAD') return fail(405, 'GET or HEAD only');
    let rel: string;
    try { rel = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname); } catch { return fail(400, 'bad path'); }
    if (rel.split('/').some((s) => s === '..' || s.includes('\0'))) return fail(400, 'bad path');
    let file = path.join(root, rel);
    if (!file.startsWith(root)) return fail(400, 'bad path');
    try { if (statSync(file).isDirectory()) file = path.join(file, 'index.html'); } catch { return fail(404, 'not found'); }
    let size: number;
    try { const s = statSync(file); if (!s.isFile()) return fail(404, 'not found'); size = s.size; } catch { return fail(404, 'not found'); }
    setHeaders(res, TYPES[path.extname(file)] ?? 'application/octet-stream', { 'Content-Length': String(size), 'Cache-Control': 'no-cache' });
    if (req.method === 'HEAD') { res.end(); return; }
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve); });
  const port = (server.address() as { port: number }).port;
  const host = opts.host ?? '127.0.0.1';
  return { port, url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/`, close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}
