/**
 * Reference figures measured with PyTorch, which the study report quotes. They are never typed
 * into the report: `tools/fixtures/gen_study_reference.py` trains the study's model in PyTorch and
 * writes reference/supervised.json (with its seeds, run count, steps and torch version), and the
 * report words its sentence from that file. Browser-safe (the JSON is bundled, not read from disk).
 */
import supervisedJson from './reference/supervised.json' with { type: 'json' };
import familyJson from './reference/family.json' with { type: 'json' };

/** The file's path in the repository, for messages. */
export const SUPERVISED_REFERENCE_FILE = 'src/lab/study/reference/supervised.json';

export interface ReferenceRun { seed: number; targetAccuracy: number; testMse: number }

export interface ReferenceVariant {
  latentActivation: string;
  runs: ReferenceRun[];
  mean: { targetAccuracy: number; testMse: number };
}

/** The supervised 2-D experiment in PyTorch: LeakyReLU after the latent (the study's) vs none. */
export interface SupervisedReference {
  generator: string;
  torch: string;
  seeds: number[];
  runCount: number;
  steps: number;
  stepsPerEpoch: number;
  testImages: number;
  variants: { 'sup-leaky': ReferenceVariant; 'sup-linear': ReferenceVariant };
}

function fail(key: string, expected: string): never {
  throw new Error(`${SUPERVISED_REFERENCE_FILE}: ${key}: expected ${expected} (regenerate it with tools/fixtures/gen_study_reference.py)`);
}

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Checks the shape of a supervised reference; throws one line naming the file and the key. */
export function checkSupervisedReference(j: unknown): SupervisedReference {
  const o = (j ?? {}) as Record<string, unknown>;
  if (typeof o.torch !== 'string') fail('torch', 'the torch version (a string)');
  if (typeof o.generator !== 'string') fail('generator', 'the script that wrote the file');
  for (const k of ['runCount', 'steps', 'stepsPerEpoch', 'testImages'] as const)
    if (!(Number.isInteger(o[k]) && (o[k] as number) > 0)) fail(k, 'a positive integer');
  if (!Array.isArray(o.seeds) || o.seeds.length !== o.runCount || !o.seeds.every(Number.isInteger)) fail('seeds', 'runCount integer seeds');
  const variants = (o.variants ?? {}) as Record<string, unknown>;
  for (const name of ['sup-leaky', 'sup-linear']) {
    const v = variants[name] as Record<string, unknown> | undefined;
    if (!v) fail(`variants.${name}`, 'an object');
    const runs = v.runs as Record<string, unknown>[] | undefined;
    if (!Array.isArray(runs) || runs.length !== o.runCount) fail(`variants.${name}.runs`, 'one entry per seed');
    runs.forEach((r, i) => { if (!isNum(r.targetAccuracy) || !isNum(r.testMse)) fail(`variants.${name}.runs[${i}]`, 'targetAccuracy and testMse numbers'); });
    const mean = v.mean as Record<string, unknown> | undefined;
    if (!mean || !isNum(mean.targetAccuracy) || !isNum(mean.testMse)) fail(`variants.${name}.mean`, 'targetAccuracy and testMse numbers');
  }
  return o as unknown as SupervisedReference;
}

/** The committed reference (checked once, at import). */
export const SUPERVISED_REFERENCE: SupervisedReference = checkSupervisedReference(supervisedJson);

/**
 * The report's sentence on the PyTorch reference, worded from the file: what was run (runs,
 * seeds, steps and the share of an epoch, test images, torch version) and the target accuracies.
 */
export function supervisedReferenceSentence(ref: SupervisedReference = SUPERVISED_REFERENCE, fmt: (v: number) => string = (v) => v.toFixed(3)): string {
  const epochs = ref.steps / ref.stepsPerEpoch;
  const length = ref.steps % ref.stepsPerEpoch === 0
    ? `${epochs} epoch${epochs === 1 ? '' : 's'} (${ref.steps} steps)`
    : `${ref.steps} steps (${epochs.toFixed(2)} of an epoch)`;
  const runs = ref.runCount === 1 ? `one run per variant (seed ${ref.seeds[0]})` : `the mean of ${ref.runCount} runs per variant (seeds ${ref.seeds.join(', ')})`;
  const a = ref.variants['sup-leaky'].mean.targetAccuracy, b = ref.variants['sup-linear'].mean.targetAccuracy;
  return `In PyTorch (torch ${ref.torch}, \`${ref.generator}\`: the same recipe, ${runs}, ${length}, ${ref.testImages} test images): `
    + `target accuracy ${fmt(a)} with LeakyReLU vs ${fmt(b)} without.`;
}

// ---------------------------------------------------------------------------------------------
// plain vs variational vs denoising

/** The file's path in the repository, for messages. */
export const FAMILY_REFERENCE_FILE = 'src/lab/study/reference/family.json';

/** The three members of the family the study compares. */
export type FamilyKind = 'plain' | 'vae' | 'denoising';
export const FAMILY_KINDS: readonly FamilyKind[] = ['plain', 'vae', 'denoising'];

export interface FamilyReferenceRun { kind: FamilyKind; latent: number; testMse: number; knnAccuracy: number; kl?: number }

/** Plain, VAE and denoising autoencoders trained in PyTorch with the study's recipe (tools/fixtures/gen_family_reference.py). */
export interface FamilyReference {
  generator: string;
  torch: string;
  date: string;
  seed: number;
  steps: number;
  stepsPerEpoch: number;
  testImages: number;
  /** The VAE's KL weight and the denoising runs' corruption PyTorch trained with. */
  beta: number;
  noise: string;
  knn: { k: number; references: number };
  runs: FamilyReferenceRun[];
}

function failFamily(key: string, expected: string): never {
  throw new Error(`${FAMILY_REFERENCE_FILE}: ${key}: expected ${expected} (regenerate it with tools/fixtures/gen_family_reference.py)`);
}

/** Checks the shape of a family reference; throws one line naming the file and the key. */
export function checkFamilyReference(j: unknown): FamilyReference {
  const o = (j ?? {}) as Record<string, unknown>;
  for (const k of ['torch', 'generator', 'date', 'noise'] as const) if (typeof o[k] !== 'string') failFamily(k, 'a string');
  for (const k of ['steps', 'stepsPerEpoch', 'testImages'] as const)
    if (!(Number.isInteger(o[k]) && (o[k] as number) > 0)) failFamily(k, 'a positive integer');
  if (!(Number.isInteger(o.seed) && (o.seed as number) >= 0)) failFamily('seed', 'an integer >= 0');
  if (!(isNum(o.beta) && o.beta >= 0)) failFamily('beta', 'a number >= 0');
  const knn = (o.knn ?? {}) as Record<string, unknown>;
  if (!(Number.isInteger(knn.k) && Number.isInteger(knn.references))) failFamily('knn', '{ k, references } integers');
  if (!Array.isArray(o.runs) || !o.runs.length) failFamily('runs', 'a list of runs');
  (o.runs as Record<string, unknown>[]).forEach((r, i) => {
    if (!FAMILY_KINDS.includes(r.kind as FamilyKind)) failFamily(`runs[${i}].kind`, FAMILY_KINDS.join(', '));
    if (!(Number.isInteger(r.latent) && (r.latent as number) > 0)) failFamily(`runs[${i}].latent`, 'a positive integer');
    if (!isNum(r.testMse) || !isNum(r.knnAccuracy)) failFamily(`runs[${i}]`, 'testMse and knnAccuracy numbers');
    if (r.kind === 'vae' && !isNum(r.kl)) failFamily(`runs[${i}].kl`, "a number (the VAE's KL per test image)");
  });
  return o as unknown as FamilyReference;
}

/** The committed reference (checked once, at import). */
export const FAMILY_REFERENCE: FamilyReference = checkFamilyReference(familyJson);

/** PyTorch's run of a kind and latent size, if the reference has one. */
export function familyReferenceRun(ref: FamilyReference, kind: FamilyKind, latent: number): FamilyReferenceRun | undefined {
  return ref.runs.find((r) => r.kind === kind && r.latent === latent);
}
