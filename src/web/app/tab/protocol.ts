/** Messages between the "train in the tab" page (main.ts) and its training worker (worker.ts). */
import type { TrainConfig } from '../../../lab/run/config.js';
import type { StepBench } from '../../../lab/train/bench-step.js';

export interface DataFiles { trainImages: Uint8Array; trainLabels: Uint8Array; testImages: Uint8Array; testLabels: Uint8Array }

export type ToWorker =
  | { type: 'start'; settings: Partial<TrainConfig>; files: DataFiles; threads: number; snapshotMs?: number }
  | { type: 'pause' } | { type: 'resume' } | { type: 'stop' }
  | { type: 'lr'; lr: number }
  | { type: 'weights' }
  | { type: 'open'; bytes: Uint8Array; name: string; files?: DataFiles; threads: number }
  | { type: 'bench'; threads: number; windows: number };

export interface PlaneMsg {
  step: number; z: Float32Array; dim: number; labels: Uint8Array;
  grid: Float32Array; gridSize: number; box?: [number, number, number, number];
}

export type FromWorker =
  | { type: 'ready'; backend: string; threads: number; relaxed: boolean; note?: string; totalSteps: number; batchesPerEpoch: number; config: TrainConfig }
  | { type: 'progress'; step: number; totalSteps: number; epoch: number; loss: number; lr: number; samplesPerSec: number; elapsed: number }
  | { type: 'metrics'; line: Record<string, number> }
  | ({ type: 'plane' } & PlaneMsg)
  | { type: 'state'; state: 'running' | 'paused' | 'finished' | 'stopped' | 'failed'; error?: string; step: number }
  | { type: 'weights'; bytes: Uint8Array; step: number }
  | { type: 'opened'; name: string; config: TrainConfig; backend: string }
  | { type: 'bench'; result: StepBench }
  | { type: 'error'; error: string };
