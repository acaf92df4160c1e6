/**
 * The explorer's server over raw HTTP, with hand-made run folders (no training): each security rule
 * of issue 16 gets the bad request (foreign Host on every bind, foreign Origin, symlinked run files,
 * training settings out of bounds, prototype keys), and the events stream is checked to tail
 * metrics.jsonl from its last offset with one watcher per run and a cap on viewers.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunsFolder } from '../src/web/runs.js';
import { isLoopbackHost } from '../src/web/security.js';
import { parseTrainRequest, startServer, type ServeOptions, type WebServer } from '../src/web/server.js';
import { ROOT } from './helpers.js';

let runsDir = '', outside = '', appDir = '', cliPath = '';
const servers: WebServer[] = [];

interface Reply { status: number; headers: http.IncomingHttpHeaders; body: string }

function request(port: number, p: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    if (opts.body) req.write(opts.body);
    req.end();
  });
}

const post = (port: number, p: string, body: string, headers: Record<string, string> = {}): Promise<Reply> =>
  request(port, p, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body });

async function serve(o: Partial<ServeOptions> = {}): Promise<WebServer> {
  const s = await startServer({ runsDir, port: 0, appDir, cliPath, ...o });
  servers.push(s);
  return s;
}

const metricLine = (step: number): string => JSON.stringify({ step, epoch: 1, loss: 1 / step });

function makeRun(name: string, lines: number): string {
  const dir = path.join(runsDir, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ model: 'bn', latent: 2, batchSize: 64 }));
  writeFileSync(path.join(dir, 'metrics.jsonl'), Array.from({ length: lines }, (_, i) => metricLine(i + 1) + '\n').join(''));
  return dir;
}

beforeAll(() => {
  runsDir = mkdtempSync(path.join(os.tmpdir(), 'latentlab-web-server-'));
  outside = mkdtempSync(path.join(os.tmpdir(), 'latentlab-outside-'));
  appDir = mkdtempSync(path.join(os.tmpdir(), 'latentlab-app-'));
  writeFileSync(path.join(appDir, 'index.html'), '<!doctype html><title>app</title>');
  // a CLI that must never be started by these tests (every training request here is refused)
  cliPath = path.join(appDir, 'cli-never.mjs');
  writeFileSync(cliPath, 'process.exit(3);\n');
  makeRun('plain', 3);
  // run files that are symlinks to files outside the runs folder
  writeFileSync(path.join(outside, 'config.json'), JSON.stringify({ model: 'bn', secret: 'SECRET-CONFIG' }));
  writeFileSync(path.join(outside, 'result.json'), JSON.stringify({ steps: 1, secret: 'SECRET-RESULT' }));
  writeFileSync(path.join(outside, 'metrics.jsonl'), JSON.stringify({ step: 1, secret: 'SECRET-METRICS' }) + '\n');
  mkdirSync(path.join(runsDir, 'leaky'));
  for (const f of ['config.json', 'result.json', 'metrics.jsonl']) symlinkSync(path.join(outside, f), path.join(runsDir, 'leaky', f));
  // a symlink that stays inside the runs folder is fine
  mkdirSync(path.join(runsDir, 'linked'));
  symlinkSync(path.join(runsDir, 'plain', 'config.json'), path.join(runsDir, 'linked', 'config.json'));
});

afterAll(async () => {
  for (const s of servers) await s.close();
});

describe('Host and Origin', () => {
  it('loopback names: 127.1 and ::ffff:127.0.0.1 are this machine, 0.0.0.0 and a LAN address are not', () => {
    for (const h of ['127.0.0.1', '127.1', 'localhost', '::1', '[::1]', 'app.localhost', '::ffff:127.0.0.1']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '192.168.1.5', 'evil.example', '127.evil.example']) expect(isLoopbackHost(h), h).toBe(false);
  });

  it.each(['127.0.0.1', '127.1', '0.0.0.0'])('bound to %s: a foreign Host is refused with 403, the loopback names and --allowed-host are served', async (host) => {
    const s = await serve({ host, allowedHosts: ['lab.example'] });
    for (const h of ['evil.example', `evil.example:${s.port}`, '127.0.0.1.evil.example', 'localhost.evil.example']) {
      const r = await request(s.port, '/api/runs', { headers: { Host: h } });
      expect(r.status, h).toBe(403);
      expect(r.body, h).not.toContain('plain');
      expect(JSON.parse(r.body).error).toMatch(/Host .* is not this server/);
    }
    for (const h of [`127.0.0.1:${s.port}`, `localhost:${s.port}`, `[::1]:${s.port}`, `lab.example:${s.port}`]) {
      const r = await request(s.port, '/api/runs', { headers: { Host: h } });
      expect(r.status, h).toBe(200);
    }
    // a foreign Origin never reaches training, whatever the bind
    const bad = await post(s.port, '/api/train', '{"settings":{}}', { Host: `127.0.0.1:${s.port}`, Origin: 'http://evil.example' });
    expect(bad.status).toBe(403);
    expect(JSON.parse(bad.body).error).toMatch(/cross-origin/);
  });

  it('a POST must come from this server: foreign or opaque Origin, another port, cross-site fetch are refused', async () => {
    const s = await serve();
    const host = `127.0.0.1:${s.port}`;
    for (const origin of ['http://evil.example', 'null', `http://127.0.0.1:${s.port + 1}`, `https://${host}`]) {
      const r = await post(s.port, '/api/runs/plain/stop', '{}', { Host: host, Origin: origin });
      expect(r.status, origin).toBe(403);
    }
    expect((await post(s.port, '/api/runs/plain/stop', '{}', { Host: host, 'Sec-Fetch-Site': 'cross-site' })).status).toBe(403);
    // the same request from the page itself passes the check (and is refused for what it asks: not a run started here)
    expect((await post(s.port, '/api/runs/plain/stop', '{}', { Host: host, Origin: `http://${host}`, 'Sec-Fetch-Site': 'same-origin' })).status).toBe(409);
  });

  it('`latentlab serve --host 127.1` prints no "anyone can reach it" warning; --host 0.0.0.0 does', async () => {
    const cli = path.join(ROOT, 'dist', 'cli', 'main.js');
    if (!existsSync(cli)) { if (process.env.CI === 'true') throw new Error(`${cli} missing`); return; }
    const run = (host: string): Promise<string> => new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [cli, 'serve', runsDir, '--port', '0', '--host', host], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '', err = '';
      child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
      child.stdout.on('data', (d: Buffer) => { out += d.toString(); if (out.includes('latentlab explorer:')) child.kill('SIGTERM'); });
      child.on('exit', () => (out.includes('latentlab explorer:') ? resolve(err) : reject(new Error(`serve --host ${host}: ${err}`))));
    });
    expect(await run('127.1')).not.toMatch(/warning/);
    expect(await run('0.0.0.0')).toMatch(/warning: listening on 0\.0\.0\.0/);
  }, 60_000);
});

describe('run files', () => {
  it('config.json, result.json and metrics.jsonl that are symlinks out of the runs folder are neither read nor served', async () => {
    const s = await serve();
    const list = await request(s.port, '/api/runs');
    expect(list.status).toBe(200);
    expect(list.body).not.toMatch(/SECRET/);
    const names = (JSON.parse(list.body) as { runs: { name: string }[] }).runs.map((r) => r.name);
    expect(names).toContain('plain');
    expect(names).toContain('linked'); // its config.json is a symlink that stays inside
    expect(names).not.toContain('leaky'); // no readable config.json
    const one = await request(s.port, '/api/runs/leaky');
    expect(one.status).toBe(200);
    expect(one.body).not.toMatch(/SECRET/);
    expect(JSON.parse(one.body)).toMatchObject({ config: null, result: null, metrics: [] });
    for (const f of ['config.json', 'result.json', 'metrics.jsonl']) {
      const r = await request(s.port, `/runs/leaky/${f}`);
      expect(r.status, f).toBe(403);
      expect(r.body, f).not.toMatch(/SECRET/);
    }
    expect((await request(s.port, '/runs/linked/config.json')).status).toBe(200);
  });
});

describe('training requests', () => {
  const bad: [string, RegExp][] = [
    ['{"settings":{"batchSize":60001}}', /--batch-size: expected at most 60000/],
    ['{"settings":{"threads":100000}}', /--threads: expected at most \d+ \(the cores of this machine\)/],
    ['{"settings":{"latent":1000000}}', /--latent: expected .*at most 1024/],
    ['{"settings":{"latent":"1000000"}}', /--latent: expected .*at most 1024/],
    ['{"settings":{"snapshotEvery":1}}', /--snapshot-every: expected 0 \(no snapshots\) or at least 10/],
    ['{"settings":{"__proto__":5}}', /'__proto__' is not allowed/],
    ['{"settings":{"constructor":{"name":"x"}}}', /'constructor' is not allowed/],
    ['{"__proto__":{"settings":{}},"settings":{}}', /'__proto__' is not allowed/],
    ['{"settings":{"toString":"x"}}', /unknown or not allowed setting 'toString'/],
    ['{"settings":{"hasOwnProperty":1}}', /unknown or not allowed setting 'hasOwnProperty'/],
    ['{"testLimit":20000}', /--test-limit: expected an integer from 1 to 10000/],
  ];
  it.each(bad)('%s is refused with 400 and one line', async (body, msg) => {
    const s = servers[0] ?? await serve();
    const r = await post(s.port, '/api/train', body, { Host: `127.0.0.1:${s.port}` });
    expect(r.status, r.body).toBe(400);
    const err = JSON.parse(r.body).error as string;
    expect(err).toMatch(msg);
    expect(err).not.toContain('\n');
  });

  it('threads are capped at the cores given to the server; the CLI validator still applies', () => {
    expect(() => parseTrainRequest({ settings: { threads: 3 } }, { runsDir, cores: 2 })).toThrow(/--threads: expected at most 2/);
    expect(parseTrainRequest({ settings: { threads: 2 } }, { runsDir, cores: 2 }).config.threads).toBe(2);
    expect(() => parseTrainRequest({ settings: { lr: -1 } }, { runsDir, cores: 2 })).toThrow(/--lr: expected a positive number/);
    expect(() => parseTrainRequest({ settings: { snapshotEvery: 0, latent: 'conv' } }, { runsDir, cores: 2 })).not.toThrow();
    // a settings object built with a prototype key is refused even when it comes from code, not JSON
    const sneaky = JSON.parse('{"__proto__": 5}') as Record<string, unknown>;
    expect(() => parseTrainRequest({ settings: sneaky }, { runsDir, cores: 2 })).toThrow(/'__proto__'/);
  });
});

describe('events stream', () => {
  it('the server tails metrics.jsonl through the run-folder module: only what was appended, a torn line when it ends, from 0 when rewritten', () => {
    const dir = makeRun('tail', 5);
    const f = path.join(dir, 'metrics.jsonl');
    const runs = new RunsFolder(runsDir);
    const real = runs.dir('tail')!;
    const a = runs.tailMetrics(real, 0).value!;
    expect(a.lines.map((l) => l.step)).toEqual([1, 2, 3, 4, 5]);
    expect(runs.tailMetrics(real, a.offset).value!.lines).toEqual([]);
    appendFileSync(f, metricLine(6) + '\n' + metricLine(7).slice(0, 8));
    const b = runs.tailMetrics(real, a.offset).value!;
    expect(b.lines.map((l) => l.step)).toEqual([6]);
    appendFileSync(f, metricLine(7).slice(8) + '\n');
    const c = runs.tailMetrics(real, b.offset).value!;
    expect(c.lines.map((l) => l.step)).toEqual([7]);
    writeFileSync(f, metricLine(1) + '\n');
    expect(runs.tailMetrics(real, c.offset).value).toMatchObject({ reset: true, lines: [{ step: 1 }] });
    // a broken line is a problem naming the file and the line, not a silent skip
    writeFileSync(f, metricLine(1) + '\nnot json\n' + metricLine(3) + '\n');
    expect(runs.tailMetrics(real, 0).problem).toMatch(/^metrics\.jsonl: line 2 is not JSON/);
  });

  it('viewers of one run share one watcher, get the appended lines from where they are, and the viewers are capped', async () => {
    const s = await serve({ maxViewers: 2 });
    const dir = makeRun('live', 1000);
    // training (status.json says so; the writer is this process, so it is alive)
    const status = (state: string): void => writeFileSync(path.join(dir, 'status.json'), JSON.stringify({ state, pid: process.pid, step: 1000, totalSteps: 2000, checkpointStep: null, error: null, updated: Date.now() }));
    status('running');
    type Ev = { event: string; data: { from?: number; lines?: { step: number }[]; status?: string } };
    const open = (from: number): { events: Ev[]; req: http.ClientRequest } => {
      const events: Ev[] = [];
      const req = http.get({ host: '127.0.0.1', port: s.port, path: `/api/runs/live/events?from=${from}` }, (res) => {
        let buf = '';
        res.on('data', (c: Buffer) => {
          buf += c.toString();
          for (let i; (i = buf.indexOf('\n\n')) >= 0;) {
            const block = buf.slice(0, i); buf = buf.slice(i + 2);
            const ev = /^event: (.*)$/m.exec(block)?.[1], d = /^data: (.*)$/m.exec(block)?.[1];
            if (ev && d) events.push({ event: ev, data: JSON.parse(d) as Ev['data'] });
          }
        });
      });
      req.on('error', () => {});
      return { events, req };
    };
    const wait = async (what: string, f: () => boolean): Promise<void> => {
      for (let t0 = Date.now(); !f(); await new Promise((r) => setTimeout(r, 50))) if (Date.now() - t0 > 10_000) throw new Error(`timed out: ${what}`);
    };
    const a = open(1000), b = open(998);
    await wait('two viewers', () => s.stats().viewers === 2);
    expect(s.stats().watchers).toBe(1);
    await wait('b catches up', () => b.events.some((e) => e.event === 'metrics'));
    expect(b.events.find((e) => e.event === 'metrics')!.data).toEqual({ from: 998, lines: [{ step: 999, epoch: 1, loss: 1 / 999 }, { step: 1000, epoch: 1, loss: 1 / 1000 }] });
    // a third viewer is refused
    const third = await request(s.port, '/api/runs/live/events');
    expect(third.status).toBe(503);
    expect(JSON.parse(third.body).error).toMatch(/at most 2/);
    appendFileSync(path.join(dir, 'metrics.jsonl'), metricLine(1001) + '\n');
    const got = (v: { events: Ev[] }): Ev[] => v.events.filter((e) => e.event === 'metrics' && e.data.lines!.some((l) => l.step === 1001));
    await wait('the new line', () => got(a).length === 1 && got(b).length === 1);
    expect(got(a)[0].data).toMatchObject({ from: 1000, lines: [{ step: 1001 }] });
    expect(got(a)[0].data.lines).toHaveLength(1);
    // the run finishes: both get the end, and the watcher goes away
    status('finished');
    await wait('the end', () => a.events.at(-1)?.event === 'end' && b.events.at(-1)?.event === 'end');
    expect(a.events.at(-1)!.data.status).toBe('done');
    await wait('no watcher left', () => s.stats().watchers === 0 && s.stats().viewers === 0);
  }, 30_000);
});
