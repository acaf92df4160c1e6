/**
 * A training request from the page ({name?, settings: {...}, testLimit?}), checked at the edge before
 * anything is spawned: only known keys (a null-prototype copy, so `__proto__` and friends are
 * refused), values read like the CLI reads its flags, then the training schema's own validator
 * (`parseTrainSettings` of src/lab/run/config.ts, the zod schema every flag, --config file and
 * config.json goes through), the CLI's resolution (`resolveTrainConfig`: defaults, settings that
 * must go together), then the bounds of a server that trains on this machine (threads at most the
 * cores, a batch at most the training set, ...). `checkWebTrainConfig` is the one place the server
 * validates a training configuration.
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DATASETS } from '../lab/data/datasets.js';
import { parseLatent } from '../lab/models/autoencoder.js';
import { FROM_FLAGS, STUDY_LATENT_MAP, flagOf, parseTrainSettings, resolveTrainConfig, type TrainConfig } from '../lab/run/config.js';
import { RUN_NAME_RE } from './runs.js';

type Kind = 'num' | 'int' | 'str' | 'bool' | 'latent';

/** The settings the training form may send, with how each is read. */
const WEB_TRAIN_KEYS: ReadonlyMap<string, Kind> = new Map(Object.entries({
  dataset: 'str', model: 'str', latent: 'latent', activation: 'str', latentActivation: 'str', optimizer: 'str', lr: 'num',
  momentum: 'num', weightDecay: 'num', nesterov: 'bool', scheduler: 'str', baseLr: 'num', maxLr: 'num', stepSizeUp: 'int',
  stepSizeDown: 'int', mode: 'str', gamma: 'num', pctStart: 'num', stepSize: 'int', tMax: 'int', etaMin: 'num',
  epochs: 'int', maxSteps: 'int', batchSize: 'int', seed: 'int', threads: 'int', backend: 'str', loss: 'str',
  checkpointEvery: 'int', snapshotEvery: 'int', logEvery: 'int', latentWeight: 'num', supervised: 'bool',
} satisfies Record<string, Kind>));

const REQUEST_KEYS = new Set(['name', 'settings', 'testLimit']);

/** What a server on this machine allows beyond the CLI's rules. */
export const WEB_LIMITS = {
  /** Snapshots cost a pass over the test subset: at least this many steps apart. */
  minSnapshotEvery: 10,
  /** Training steps one request may ask for. */
  maxSteps: 2_000_000,
} as const;

export interface TrainRequest { name: string; config: TrainConfig; args: string[]; testLimit?: number }

export interface TrainRequestContext {
  runsDir: string;
  /** Cores of this machine (default os.availableParallelism()). */
  cores?: number;
}

function fail(flag: string, expected: string, got: unknown): never {
  throw new Error(`${flag}: expected ${expected}, got ${JSON.stringify(got)}`);
}

/**
 * The one validation of a training configuration coming from the page: the CLI's validator, then the
 * machine's bounds. Throws one line naming the flag.
 */
export function checkWebTrainConfig(flags: Partial<TrainConfig>, cores: number): TrainConfig {
  if (typeof flags.threads === 'number' && flags.threads > cores) fail('--threads', `at most ${cores} (the cores of this machine)`, flags.threads);
  // the schema's validator (types and bounds, one line naming the flag), then the CLI's resolution
  const config = resolveTrainConfig({}, parseTrainSettings(flags, FROM_FLAGS));
  const train = DATASETS[config.dataset].counts.train;
  if (config.batchSize > train) fail('--batch-size', `at most ${train} (the ${config.dataset} training set)`, config.batchSize);
  if (config.snapshotEvery !== 0 && config.snapshotEvery < WEB_LIMITS.minSnapshotEvery)
    fail('--snapshot-every', `0 (no snapshots) or at least ${WEB_LIMITS.minSnapshotEvery} steps`, config.snapshotEvery);
  const steps = Math.min(config.maxSteps ?? Infinity, config.epochs * Math.floor(train / config.batchSize));
  if (steps > WEB_LIMITS.maxSteps) throw new Error(`--epochs/--max-steps: at most ${WEB_LIMITS.maxSteps.toLocaleString('en-US')} steps from the web form, got ${steps}`);
  return config;
}

/** Checks a training request from the page; returns the CLI arguments. Throws one line. */
export function parseTrainRequest(body: unknown, ctx: TrainRequestContext | string): TrainRequest {
  const { runsDir, cores = os.availableParallelism() } = typeof ctx === 'string' ? { runsDir: ctx } : ctx;
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new Error('expected a JSON object {name, settings, testLimit}');
  const b = copyKeys(body as Record<string, unknown>, REQUEST_KEYS, (k) => `unknown field '${k}'`);
  const name = b.name === undefined || b.name === '' ? `web-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}` : b.name;
  if (typeof name !== 'string' || !RUN_NAME_RE.test(name)) fail('name', "letters, digits, '.', '_' or '-' (at most 100, not starting with '.' or '-')", b.name);
  if (existsSync(path.join(runsDir, name))) throw new Error(`name: a run called '${name}' already exists`);
  const rawSettings = b.settings ?? Object.create(null);
  if (!rawSettings || typeof rawSettings !== 'object' || Array.isArray(rawSettings)) throw new Error('settings: expected an object');
  const s = copyKeys(rawSettings as Record<string, unknown>, WEB_TRAIN_KEYS, (k) => `settings: unknown or not allowed setting '${k}'`);
  const flags = Object.create(null) as Partial<TrainConfig>;
  const args: string[] = [];
  for (const [k, raw] of Object.entries(s)) {
    const kind = WEB_TRAIN_KEYS.get(k)!;
    if (raw === undefined || raw === null || raw === '') continue;
    const flag = flagOf(k);
    let v: unknown;
    if (kind === 'bool') {
      if (typeof raw !== 'boolean') fail(flag, 'true or false', raw);
      if (!raw) continue;
      v = k === 'supervised' ? STUDY_LATENT_MAP : true;
      args.push(flag);
    } else if (kind === 'str') {
      if (typeof raw !== 'string' || !/^[A-Za-z0-9_-]{1,32}$/.test(raw)) fail(flag, 'a name', raw);
      v = raw;
    } else if (kind === 'latent') {
      if (typeof raw !== 'string' && typeof raw !== 'number') fail('--latent', "a positive integer or 'conv'", raw);
      v = parseLatent(typeof raw === 'string' ? raw.trim() : raw);
    } else {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
      if (!Number.isFinite(n)) fail(flag, 'a number', raw);
      if (kind === 'int' && !Number.isInteger(n)) fail(flag, 'an integer', raw);
      v = n;
    }
    (flags as Record<string, unknown>)[k] = v;
    if (kind !== 'bool') args.push(flag, String(v));
  }
  const config = checkWebTrainConfig({ ...flags }, cores);
  let testLimit: number | undefined;
  if (b.testLimit !== undefined && b.testLimit !== null && b.testLimit !== '') {
    const n = Number(b.testLimit);
    const test = DATASETS[config.dataset].counts.test;
    if (!Number.isInteger(n) || n < 1 || n > test) fail('--test-limit', `an integer from 1 to ${test}`, b.testLimit);
    testLimit = n;
    args.push('--test-limit', String(n));
  }
  return { name, config, args, testLimit };
}

/** A null-prototype copy of `o` holding only allowed own keys; a prototype key or any other key is refused. */
function copyKeys(o: Record<string, unknown>, allowed: { has(k: string): boolean }, unknown: (k: string) => string): Record<string, unknown> {
  const out = Object.create(null) as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (k === '__proto__' || k === 'constructor' || k === 'prototype' || !allowed.has(k)) throw new Error(unknown(k));
    out[k] = o[k];
  }
  return out;
}
