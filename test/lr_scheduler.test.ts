import { describe, expect, it } from 'vitest';
import { Adam, AdamW, SGD, type Optimizer, type ParamGroup } from '../src/engine/optim/index.js';
import {
  CosineAnnealingLR, CyclicLR, ExponentialLR, LRScheduler, MultiStepLR, OneCycleLR, ReduceLROnPlateau, StepLR,
} from '../src/engine/lr_scheduler.js';
import { cases, f64, loadFixture, makeOptimizer, makeParams, makeScheduler, type OptSpec } from './optim_fixtures.js';

const fx = loadFixture('schedulers.safetensors');
const SHAPES = [[3, 4], [5]];

interface SchedCase { optimizer: OptSpec; class: string; kwargs: Record<string, unknown>; steps: number }

function momentumOf(g: ParamGroup): number {
  return Array.isArray(g.betas) ? (g.betas as number[])[0] : (g.momentum as number);
}

/** LRs (and momenta) after construction and after each of `steps` steps. */
function trajectory(opt: Optimizer<ParamGroup>, sched: LRScheduler | ReduceLROnPlateau, steps: number, metric?: Float64Array) {
  const lrs = [opt.paramGroups.map((g) => g.lr)];
  const moms = [opt.paramGroups.map(momentumOf)];
  for (let t = 0; t < steps; t++) {
    opt.step();
    if (sched instanceof ReduceLROnPlateau) sched.step(metric![t]);
    else sched.step();
    lrs.push(opt.paramGroups.map((g) => g.lr));
    moms.push(opt.paramGroups.map(momentumOf));
    expect(sched.getLastLr()).toEqual(lrs[lrs.length - 1]);
  }
  return { lrs, moms };
}

function expectClose(ours: number[][], ref: Float64Array, what: string): number {
  const groups = ours[0].length;
  expect(ours.length * groups, `${what}: length`).toBe(ref.length);
  let worst = 0;
  ours.forEach((row, t) => row.forEach((v, g) => {
    const r = ref[t * groups + g];
    const err = Math.abs(v - r) / Math.max(Math.abs(r), 1e-300);
    if (!(Math.abs(v - r) <= 1e-6 * Math.abs(r) + 1e-15)) expect.fail(`${what}: step ${t} group ${g}: ours ${v}, PyTorch ${r}`);
    if (v !== r) worst = Math.max(worst, err);
  }));
  return worst;
}

describe('LR schedulers match torch.optim.lr_scheduler (PyTorch 1.13 fixtures, 320 steps)', () => {
  const all = cases(fx) as unknown as [string, SchedCase][];
  it('has the fixture cases', () => expect(all.length).toBeGreaterThanOrEqual(25));
  for (const [name, cfg] of all) {
    it(`${name} (${cfg.class})`, () => {
      const opt = makeOptimizer(cfg.optimizer, makeParams(SHAPES));
      const sched = makeScheduler(opt, cfg.class, cfg.kwargs);
      const metric = fx.tensors.has(`${name}.metric`) ? f64(fx, `${name}.metric`) : undefined;
      const { lrs, moms } = trajectory(opt, sched, cfg.steps, metric);
      const e1 = expectClose(lrs, f64(fx, `${name}.lr`), `${name} lr`);
      let e2 = 0;
      if (fx.tensors.has(`${name}.momentum`)) e2 = expectClose(moms, f64(fx, `${name}.momentum`), `${name} momentum`);
      if (process.env.OPTIM_REPORT) console.log(`${name}: max rel err lr ${e1.toExponential(2)}, momentum ${e2.toExponential(2)}`);
    });
  }
});

describe('constructors initialise the LR like PyTorch', () => {
  const sgd = (lr = 0.5) => new SGD(makeParams(SHAPES), { lr, momentum: 0.9 });
  it('CyclicLR sets lr to baseLr and momentum to maxMomentum', () => {
    const opt = sgd();
    const s = new CyclicLR(opt, { baseLr: 0.01, maxLr: 0.1, stepSizeUp: 5 });
    expect(opt.paramGroups[0].lr).toBe(0.01);
    expect(opt.paramGroups[0].momentum).toBe(0.9);
    expect(opt.paramGroups[0].initialLr).toBe(0.01);
    expect(s.lastEpoch).toBe(0);
    expect(s.getLastLr()).toEqual([0.01]);
  });
  it('OneCycleLR sets initialLr = maxLr / divFactor, maxLr, minLr', () => {
    const opt = sgd();
    new OneCycleLR(opt, { maxLr: 0.1, totalSteps: 100 });
    // the cos anneal at pct 0 gives 0.0040000000000000036, as in PyTorch (see the onecycle_* fixtures)
    expect(opt.paramGroups[0].lr).toBeCloseTo(0.004, 15);
    expect(opt.paramGroups[0]).toMatchObject({ initialLr: 0.1 / 25, maxLr: 0.1, minLr: 0.1 / 25 / 1e4, momentum: 0.95, maxMomentum: 0.95, baseMomentum: 0.85 });
  });
  it('other schedulers record initialLr and keep the current LR', () => {
    const opt = sgd(0.3);
    const s = new StepLR(opt, { stepSize: 2 });
    expect(opt.paramGroups[0].initialLr).toBe(0.3);
    expect(s.baseLrs).toEqual([0.3]);
    expect(s.getLastLr()).toEqual([0.3]);
  });
  it('OneCycleLR throws after totalSteps + 1 steps', () => {
    const opt = sgd();
    const s = new OneCycleLR(opt, { maxLr: 0.1, totalSteps: 5 });
    for (let i = 0; i < 5; i++) s.step();
    expect(() => s.step()).toThrow(/OneCycleLR: tried to step 7 times; the specified number of total steps is 5/);
  });
});

describe('CyclicLR cycles Adam beta1 (PyTorch 2.x behaviour; 1.13 raises)', () => {
  it('beta1 follows the SGD momentum fixture, beta2 untouched', () => {
    const name = 'cyclic_triangular';
    const cfg = Object.fromEntries(cases(fx))[name] as unknown as SchedCase;
    for (const Cls of [Adam, AdamW]) {
      const opt = new Cls([{ params: makeParams([[2]]) }, { params: makeParams([[3]]), lr: 0.05 }], { lr: 0.1, betas: [0.5, 0.99] });
      const sched = makeScheduler(opt, cfg.class, cfg.kwargs);
      const { lrs, moms } = trajectory(opt, sched, cfg.steps);
      expectClose(lrs, f64(fx, `${name}.lr`), 'adam lr');
      expectClose(moms, f64(fx, `${name}.momentum`), 'adam beta1');
      expect(opt.paramGroups.map((g) => (g.betas as number[])[1])).toEqual([0.99, 0.99]);
    }
  });
});

describe('scheduler stateDict -> loadStateDict (through JSON) continues identically', () => {
  type Make = (opt: Optimizer<ParamGroup>) => LRScheduler | ReduceLROnPlateau;
  const metric = (t: number) => 1 / (1 + t / 10) + (t > 40 ? 0.2 : 0) + 0.01 * Math.sin(t);
  const makers: [string, Make][] = [
    ['StepLR', (o) => new StepLR(o, { stepSize: 7, gamma: 0.5 })],
    ['MultiStepLR', (o) => new MultiStepLR(o, { milestones: [10, 30, 30], gamma: 0.5 })],
    ['ExponentialLR', (o) => new ExponentialLR(o, { gamma: 0.97 })],
    ['CosineAnnealingLR', (o) => new CosineAnnealingLR(o, { tMax: 25, etaMin: 0.001 })],
    ['CyclicLR exp_range', (o) => new CyclicLR(o, { baseLr: 0.01, maxLr: 0.1, stepSizeUp: 6, stepSizeDown: 9, mode: 'exp_range', gamma: 0.99 })],
    ['CyclicLR custom scaleFn', (o) => new CyclicLR(o, { baseLr: 0.01, maxLr: 0.1, stepSizeUp: 5, scaleFn: (x) => 1 / x, scaleMode: 'cycle' })],
    ['OneCycleLR three_phase linear', (o) => new OneCycleLR(o, { maxLr: 0.2, epochs: 4, stepsPerEpoch: 20, threePhase: true, annealStrategy: 'linear' })],
    ['ReduceLROnPlateau', (o) => new ReduceLROnPlateau(o, { patience: 2, cooldown: 3, factor: 0.5, minLr: 1e-3 })],
  ];
  for (const [name, make] of makers) {
    it(name, () => {
      const run = (o: Optimizer<ParamGroup>, s: LRScheduler | ReduceLROnPlateau, from: number, to: number) => {
        const out: number[] = [];
        for (let t = from; t < to; t++) {
          o.step();
          if (s instanceof ReduceLROnPlateau) s.step(metric(t)); else s.step();
          out.push(o.paramGroups[0].lr, momentumOf(o.paramGroups[0]));
        }
        return out;
      };
      const mk = () => new SGD(makeParams([[2]]), { lr: 0.1, momentum: 0.9 });
      const oa = mk(), sa = make(oa);
      const straight = run(oa, sa, 0, 80);
      const ob = mk(), sb = make(ob);
      run(ob, sb, 0, 33);
      const optState = ob.stateDict();
      const schedState = JSON.parse(JSON.stringify(sb.stateDict()));
      const oc = mk(), sc = make(oc);
      oc.loadStateDict(optState);
      sc.loadStateDict(schedState);
      expect(sc.lastEpoch).toBe(sb.lastEpoch);
      expect(run(oc, sc, 33, 80)).toEqual(straight.slice(66));
    });
  }
  it('ReduceLROnPlateau best = Infinity survives JSON', () => {
    const s = new ReduceLROnPlateau(new SGD(makeParams([[1]]), { lr: 1 }));
    const sd = JSON.parse(JSON.stringify(s.stateDict()));
    expect(sd.best).toBe('Infinity');
    s.loadStateDict(sd);
    expect(s.best).toBe(Infinity);
  });
});

describe('scheduler argument errors are one-line messages naming the argument', () => {
  const opt = () => new SGD(makeParams([[2]]), { lr: 0.1, momentum: 0.9 });
  const bad: [string, () => unknown, RegExp][] = [
    ['CyclicLR unknown mode', () => new CyclicLR(opt(), { baseLr: 0.01, maxLr: 0.1, mode: 'sawtooth' as never }), /CyclicLR: unknown mode 'sawtooth'/],
    ['CyclicLR negative baseLr', () => new CyclicLR(opt(), { baseLr: -0.01, maxLr: 0.1 }), /CyclicLR: invalid baseLr -0\.01/],
    ['CyclicLR wrong number of maxLr', () => new CyclicLR(opt(), { baseLr: 0.01, maxLr: [0.1, 0.2] }), /maxLr/],
    ['CyclicLR bad stepSizeUp', () => new CyclicLR(opt(), { baseLr: 0.01, maxLr: 0.1, stepSizeUp: 0 }), /invalid stepSizeUp/],
    ['CyclicLR bad scaleMode', () => new CyclicLR(opt(), { baseLr: 0.01, maxLr: 0.1, scaleFn: () => 1, scaleMode: 'epochs' as never }), /unknown scaleMode/],
    ['OneCycleLR unknown annealStrategy', () => new OneCycleLR(opt(), { maxLr: 0.1, totalSteps: 10, annealStrategy: 'exp' as never }), /unknown annealStrategy 'exp'/],
    ['OneCycleLR no length', () => new OneCycleLR(opt(), { maxLr: 0.1 }), /totalSteps, or epochs and stepsPerEpoch/],
    ['OneCycleLR bad totalSteps', () => new OneCycleLR(opt(), { maxLr: 0.1, totalSteps: -3 }), /invalid totalSteps -3/],
    ['OneCycleLR bad pctStart', () => new OneCycleLR(opt(), { maxLr: 0.1, totalSteps: 10, pctStart: 1.5 }), /invalid pctStart 1\.5/],
    ['OneCycleLR negative maxLr', () => new OneCycleLR(opt(), { maxLr: -0.1, totalSteps: 10 }), /invalid maxLr/],
    ['StepLR bad stepSize', () => new StepLR(opt(), { stepSize: 0 }), /StepLR: invalid stepSize 0/],
    ['CosineAnnealingLR bad tMax', () => new CosineAnnealingLR(opt(), { tMax: 0 }), /invalid tMax/],
    ['ReduceLROnPlateau unknown mode', () => new ReduceLROnPlateau(opt(), { mode: 'avg' as never }), /ReduceLROnPlateau: unknown mode 'avg'/],
    ['ReduceLROnPlateau unknown thresholdMode', () => new ReduceLROnPlateau(opt(), { thresholdMode: 'pct' as never }), /unknown thresholdMode 'pct'/],
    ['ReduceLROnPlateau factor >= 1', () => new ReduceLROnPlateau(opt(), { factor: 1 }), /invalid factor 1/],
    ['ReduceLROnPlateau negative patience', () => new ReduceLROnPlateau(opt(), { patience: -1 }), /invalid patience/],
  ];
  for (const [name, f, re] of bad) {
    it(name, () => {
      let msg = '';
      try { f(); } catch (e) { msg = (e as Error).message; }
      expect(msg).toMatch(re);
      expect(msg).not.toContain('\n');
    });
  }
});
