/** Builds the optimiser and LR scheduler a TrainConfig names. */
import type { Parameter } from '../../engine/nn/parameter.js';
import { Adam, AdamW, SGD } from '../../engine/optim/index.js';
import {
  CosineAnnealingLR, CyclicLR, ExponentialLR, MultiStepLR, OneCycleLR, ReduceLROnPlateau, StepLR, type LRScheduler,
} from '../../engine/lr_scheduler.js';
import type { TrainConfig } from '../run/config.js';

export type AnyOpt = SGD | Adam | AdamW;

export function makeOptimizer(c: TrainConfig, params: Parameter[]): AnyOpt {
  switch (c.optimizer) {
    case 'sgd': return new SGD(params, { lr: c.lr, momentum: c.momentum, weightDecay: c.weightDecay, nesterov: c.nesterov });
    case 'adam': return new Adam(params, { lr: c.lr, betas: c.betas, weightDecay: c.weightDecay });
    case 'adamw': return new AdamW(params, { lr: c.lr, betas: c.betas, weightDecay: c.weightDecay });
  }
}

/** A per-batch scheduler, or a plateau scheduler stepped with the test loss each epoch, or none. */
export type Schedule = { kind: 'batch'; s: LRScheduler } | { kind: 'plateau'; s: ReduceLROnPlateau } | { kind: 'none' };

export function makeScheduler(c: TrainConfig, opt: AnyOpt, totalSteps: number): Schedule {
  // PyTorch's CyclicLR/OneCycleLR with cycle_momentum need a momentum to cycle: SGD without momentum has none
  const canCycle = c.optimizer !== 'sgd' || c.momentum > 0;
  switch (c.scheduler) {
    case 'none': return { kind: 'none' };
    case 'cyclic':
      return { kind: 'batch', s: new CyclicLR(opt, {
        baseLr: c.baseLr, maxLr: c.maxLr, stepSizeUp: c.stepSizeUp, stepSizeDown: c.stepSizeDown, mode: c.mode,
        gamma: c.gamma ?? 1, cycleMomentum: c.cycleMomentum && canCycle,
        ...(c.baseMomentum !== undefined ? { baseMomentum: c.baseMomentum } : {}),
        ...(c.maxMomentum !== undefined ? { maxMomentum: c.maxMomentum } : {}),
      }) };
    case 'onecycle':
      return { kind: 'batch', s: new OneCycleLR(opt, {
        maxLr: c.maxLr, totalSteps, pctStart: c.pctStart, annealStrategy: c.annealStrategy, threePhase: c.threePhase,
        cycleMomentum: c.cycleMomentum && canCycle,
        ...(c.baseMomentum !== undefined ? { baseMomentum: c.baseMomentum } : {}),
        ...(c.maxMomentum !== undefined ? { maxMomentum: c.maxMomentum } : {}),
      }) };
    case 'step': return { kind: 'batch', s: new StepLR(opt, { stepSize: c.stepSize, gamma: c.gamma ?? 0.1 }) };
    case 'multistep': return { kind: 'batch', s: new MultiStepLR(opt, { milestones: c.milestones, gamma: c.gamma ?? 0.1 }) };
    case 'exp': return { kind: 'batch', s: new ExponentialLR(opt, { gamma: c.gamma ?? 0.999 }) };
    case 'cosine': return { kind: 'batch', s: new CosineAnnealingLR(opt, { tMax: c.tMax ?? totalSteps, etaMin: c.etaMin }) };
    case 'plateau': return { kind: 'plateau', s: new ReduceLROnPlateau(opt, { factor: c.factor, patience: c.patience }) };
  }
}

/** The momentum the optimiser uses now (SGD's momentum or Adam's beta1). */
export function currentMomentum(opt: AnyOpt): number | undefined {
  const g = opt.paramGroups[0] as unknown as { momentum?: number; betas?: [number, number] };
  return g.momentum ?? g.betas?.[0];
}
