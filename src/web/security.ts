/**
 * Who may talk to the server. The Host header must name this server on every bind (no DNS
 * rebinding): the bound address, the loopback names, the machine's own addresses when bound to all
 * of them, and the hosts given with --allowed-host. A POST must come from a page of this server (its
 * Origin, when the browser sends one, names an allowed host on the same port).
 */
import type http from 'node:http';
import { isIP } from 'node:net';
import os from 'node:os';
import { HttpError } from './http.js';

/** A host name or address without brackets, port or trailing dot, lower case. */
export function normalizeHost(h: string): string {
  return h.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
}

/** localhost (and *.localhost), 127.0.0.0/8, ::1 and ::ffff:127.x: this machine only. */
export function isLoopbackHost(host: string): boolean {
  const h = normalizeHost(host);
  if (h === 'localhost' || h.endsWith('.localhost') || h === '::1') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (h.startsWith('::ffff:')) return isIP(h.slice(7)) === 4 && h.slice(7).startsWith('127.');
  // short IPv4 forms such as 127.1 resolve to 127.0.0.1
  if (/^127(\.\d+){0,3}$/.test(h)) return true;
  return false;
}

const WILDCARDS = new Set(['0.0.0.0', '::', '']);

/** The host names a request may carry for a server bound to `bound`. */
export function allowedHosts(bound: string, extra: readonly string[] = []): Set<string> {
  const ok = new Set<string>(['localhost', '127.0.0.1', '::1']);
  const b = normalizeHost(bound);
  if (WILDCARDS.has(b)) {
    for (const addrs of Object.values(os.networkInterfaces())) for (const a of addrs ?? []) ok.add(normalizeHost(a.address));
  } else ok.add(b);
  for (const e of extra) ok.add(normalizeHost(e));
  return ok;
}

/** The host name of a Host header (`name:port`, `[v6]:port`). */
function hostName(header: string): string {
  const h = header.trim();
  if (h.startsWith('[')) return normalizeHost(h.slice(0, h.indexOf(']') + 1));
  return normalizeHost(h.replace(/:\d*$/, ''));
}

/** Refuses (403) a request whose Host is not one of `ok` (or a loopback name). */
export function checkHost(req: http.IncomingMessage, ok: ReadonlySet<string>): void {
  const header = String(req.headers.host ?? '');
  const name = hostName(header);
  if (!header || !(ok.has(name) || isLoopbackHost(name))) throw new HttpError(403, `Host '${header}' is not this server (start it with --allowed-host ${name || 'NAME'} to allow that name)`);
}

/** Refuses (403) a write from another origin: Origin must be http://<Host>, and Sec-Fetch-Site same-origin when sent. */
export function checkOrigin(req: http.IncomingMessage): void {
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let u: URL | null = null;
    try { u = new URL(origin); } catch { /* refused below */ }
    if (!u || u.protocol !== 'http:' || u.host !== String(req.headers.host ?? '').toLowerCase()) throw new HttpError(403, `cross-origin request refused (Origin ${origin})`);
  }
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && !['same-origin', 'none'].includes(String(site))) throw new HttpError(403, 'cross-site request refused');
}
