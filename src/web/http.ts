/** The server's HTTP plumbing: the error type, the headers every response carries, JSON and file replies, request bodies. */
import { createReadStream, statSync } from 'node:fs';
import type http from 'node:http';
import path from 'node:path';

/** An error that becomes a response with this status and `{error: message}`. */
export class HttpError extends Error {
  constructor(readonly status: number, message: string) { super(message); }
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8', '.jsonl': 'application/x-ndjson; charset=utf-8', '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm', '.png': 'image/png', '.gif': 'image/gif', '.svg': 'image/svg+xml', '.safetensors': 'application/octet-stream',
};

const CSP = [
  "default-src 'self'", "script-src 'self' blob: 'wasm-unsafe-eval'", "worker-src 'self' blob:", "style-src 'self'",
  "img-src 'self' data: blob:", "connect-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'", "form-action 'self'",
].join('; ');

/** Content type, cross-origin isolation (the wasm backend's shared memory needs it), CORP, CSP, nosniff. */
export function setHeaders(res: http.ServerResponse, type: string, extra: Record<string, string> = {}): void {
  res.setHeader('Content-Type', type);
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Content-Security-Policy', CSP);
  for (const [k, v] of Object.entries(extra)) res.setHeader(k, v);
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const s = JSON.stringify(body);
  setHeaders(res, 'application/json; charset=utf-8', { 'Cache-Control': 'no-store' });
  res.statusCode = status;
  res.end(s);
}

/** Streams a file already checked by the caller (a real path inside an allowed folder). */
export function sendFile(req: http.IncomingMessage, res: http.ServerResponse, file: string, cache: string): void {
  const st = statSync(file);
  if (!st.isFile()) throw new HttpError(404, 'not found');
  setHeaders(res, TYPES[path.extname(file)] ?? 'application/octet-stream', { 'Cache-Control': cache, 'Content-Length': String(st.size) });
  res.statusCode = 200;
  if (req.method === 'HEAD') { res.end(); return; }
  const s = createReadStream(file);
  s.on('error', () => res.destroy());
  s.pipe(res);
}

/** Keys that must never become properties of an object built from a request. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * JSON text → value whose objects have no prototype; a `__proto__`, `constructor` or `prototype` key
 * anywhere is refused (one line naming it).
 */
export function parseJsonSafe(text: string): unknown {
  return JSON.parse(text, (_k, v: unknown) => {
    if (!v || typeof v !== 'object' || Array.isArray(v)) return v;
    const o = Object.create(null) as Record<string, unknown>;
    for (const [k, x] of Object.entries(v)) {
      if (FORBIDDEN_KEYS.has(k)) throw new HttpError(400, `key '${k}' is not allowed in a request`);
      o[k] = x;
    }
    return o;
  });
}

/** A JSON request body (Content-Type application/json, at most maxBody bytes), parsed by parseJsonSafe. */
export function readJsonBody(req: http.IncomingMessage, maxBody: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const type = String(req.headers['content-type'] ?? '');
    if (!/^application\/json\b/i.test(type)) { reject(new HttpError(415, 'expected Content-Type: application/json')); req.resume(); return; }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > maxBody) { reject(new HttpError(413, `request body over ${maxBody} bytes`)); req.resume(); return; }
    const chunks: Buffer[] = [];
    let size = 0, failed = false;
    req.on('data', (c: Buffer) => {
      if (failed) return;
      size += c.length;
      if (size > maxBody) { failed = true; reject(new HttpError(413, `request body over ${maxBody} bytes`)); return; }
      chunks.push(c);
    });
    req.on('end', () => {
      if (failed) return;
      const text = Buffer.concat(chunks).toString('utf8');
      if (!text.trim()) { resolve(Object.create(null)); return; }
      try { resolve(parseJsonSafe(text)); } catch (e) { reject(e instanceof HttpError ? e : new HttpError(400, 'the request body is not JSON')); }
    });
    req.on('error', reject);
  });
}
