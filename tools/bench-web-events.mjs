#!/usr/bin/env node
// Bench of the explorer's events stream (issue 16, item 5): how long GET /api/info takes while the
// server streams metrics.jsonl to viewers.
//
//   A: one viewer of a run whose metrics.jsonl has 200k lines, one line appended per second
//   B: two viewers of a run whose metrics.jsonl has 300k lines, one line appended every 50 ms
//
// The server runs in a child process (so the viewers' and the writer's work in this process does not
// count); the viewers connect like the page does (?from=<lines already shown>). Prints the median and
// 90th percentile of 40 /api/info requests, 150 ms apart, per scenario.
//
//   node tools/bench-web-events.mjs [path/to/dist/web/server.js]
//
// Not a test: figures depend on the machine (two shared cores when the issue was measured).
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const serverModule = path.resolve(process.argv[2] ?? path.join(root, 'dist', 'web', 'server.js'));

const line = (step) => JSON.stringify({ step, epoch: 1, loss: 0.05 + 1 / (step + 10), lr: 0.01, samplesPerSec: 1234.5 });

function makeRun(runsDir, name, lines) {
  const dir = path.join(runsDir, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ model: 'bn', latent: 2, batchSize: 64, epochs: 1, totalSteps: 10_000_000 }));
  const parts = [];
  for (let i = 1; i <= lines; i++) parts.push(line(i));
  writeFileSync(path.join(dir, 'metrics.jsonl'), parts.join('\n') + '\n');
  return { dir, next: lines + 1 };
}

function get(port, p) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    http.get({ host: '127.0.0.1', port, path: p }, (res) => {
      res.resume();
      res.on('end', () => resolve(performance.now() - t0));
    }).on('error', reject);
  });
}

function viewer(port, name, from) {
  let bytes = 0;
  const req = http.get({ host: '127.0.0.1', port, path: `/api/runs/${name}/events?from=${from}&snap=-1` }, (res) => {
    res.on('data', (c) => { bytes += c.length; });
  });
  req.on('error', () => {});
  return { close: () => req.destroy(), bytes: () => bytes };
}

async function startServerChild(runsDir) {
  const code = `import(${JSON.stringify(pathToFileURL(serverModule).href)}).then(async (m) => {
    const s = await m.startServer({ runsDir: ${JSON.stringify(runsDir)}, port: 0 });
    process.stdout.write(String(s.port) + '\\n');
  });`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d) => { buf += d; if (buf.includes('\n')) resolve(Number(buf.trim())); });
    child.once('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
  return { child, port };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (xs, q) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };

async function scenario(label, lines, viewers, appendEveryMs) {
  const runsDir = mkdtempSync(path.join(os.tmpdir(), 'latentlab-bench-web-'));
  const name = 'big';
  const run = makeRun(runsDir, name, lines);
  const { child, port } = await startServerChild(runsDir);
  try {
    const idle = [];
    for (let i = 0; i < 10; i++) { idle.push(await get(port, '/api/info')); await sleep(50); }
    const writer = setInterval(() => { appendFileSync(path.join(run.dir, 'metrics.jsonl'), line(run.next++) + '\n'); }, appendEveryMs);
    const vs = [];
    for (let v = 0; v < viewers; v++) vs.push(viewer(port, name, lines));
    await sleep(1500);
    const t = [];
    for (let i = 0; i < 40; i++) { t.push(await get(port, '/api/info')); await sleep(150); }
    clearInterval(writer);
    for (const v of vs) v.close();
    const f = (x) => `${x.toFixed(1)} ms`;
    console.log(`${label}: /api/info median ${f(pct(t, 0.5))}, p90 ${f(pct(t, 0.9))} (idle before the viewers: median ${f(pct(idle, 0.5))}); ${viewers} viewer(s) received ${vs.map((v) => v.bytes()).join(' + ')} bytes`);
  } finally {
    child.kill('SIGTERM');
    rmSync(runsDir, { recursive: true, force: true });
  }
}

console.log(`server module: ${path.relative(process.cwd(), serverModule)}`);
await scenario('A: 1 viewer, 200k lines, +1 line/s', 200_000, 1, 1000);
await scenario('B: 2 viewers, 300k lines, +1 line/50 ms', 300_000, 2, 50);
