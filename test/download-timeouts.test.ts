/**
 * A mirror that stalls costs seconds, not minutes: one that accepts the connection and never answers
 * hits the connect timeout, one that stops sending in the middle of the body hits the idle timeout;
 * either way the next mirror is tried, each step is reported, and no partial file is left.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOWNLOAD_TIMEOUTS, downloadFile, type DownloadEvent } from '../src/lab/data/download.js';
import { md5Hex } from '../src/lab/data/idx.js';

const raw = Buffer.from('not really IDX, but checked by MD5 all the same'.repeat(200));
const body = gzipSync(raw);
const file = { name: 'x.gz', md5: md5Hex(raw) };

describe('download timeouts', () => {
  let server: http.Server;
  let base = '';
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.url?.startsWith('/silent/')) return;   // accepts, never answers
      if (req.url?.startsWith('/stall/')) {           // answers, sends half, then nothing
        res.writeHead(200, { 'Content-Length': body.length });
        res.write(body.subarray(0, body.length >> 1));
        return;
      }
      res.writeHead(200, { 'Content-Length': body.length });
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('a silent and a stalling mirror are given up for the next, with the reason and the steps reported', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'latentlab-dl-'));
    const events: DownloadEvent[] = [];
    const got = await downloadFile(file, dir, [`${base}/silent/`, `${base}/stall/`, `${base}/good/`], {
      connectTimeoutMs: 300, idleTimeoutMs: 300, onEvent: (e) => events.push(e),
    });
    expect(got).toBe(path.join(dir, 'x.gz'));
    expect(events.map((e) => e.type)).toEqual(['connecting', 'failed', 'connecting', 'start', 'failed', 'connecting', 'start', 'done']);
    const fails = events.filter((e): e is Extract<DownloadEvent, { type: 'failed' }> => e.type === 'failed');
    expect(fails[0]).toMatchObject({ url: `${base}/silent/x.gz`, reason: 'no answer within 0.3 s' });
    expect(fails[1]).toMatchObject({ url: `${base}/stall/x.gz`, reason: 'stalled (no data for 0.3 s)' });
    expect(readdirSync(dir)).toEqual(['x.gz']);   // no .part left behind
  });

  it('when every mirror stalls, one line names each and why', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'latentlab-dl-'));
    await expect(downloadFile(file, dir, [`${base}/silent/`, `${base}/stall/`], { connectTimeoutMs: 200, idleTimeoutMs: 200 }))
      .rejects.toThrow(new RegExp(`^x\\.gz: download failed from every mirror: ${base}/silent/x\\.gz -> no answer within 0\\.2 s; ${base}/stall/x\\.gz -> stalled \\(no data for 0\\.2 s\\)$`));
    expect(readdirSync(dir)).toEqual([]);
  });

  it('the defaults are about 10 s', () => {
    expect(DOWNLOAD_TIMEOUTS).toEqual({ connectMs: 10_000, idleMs: 10_000 });
  });
});
