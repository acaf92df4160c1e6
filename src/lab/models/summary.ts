/**
 * The study's model table (torchsummary style): Layer, Type, Output Shape, Param #, with BatchNorm
 * counted as the study counted it (weight, bias, running mean and variance, num_batches_tracked:
 * 129 for 32 channels), then total / trainable / non-trainable parameters and a size estimate.
 */
import { Tensor } from '../../engine/tensor.js';
import { Module } from '../../engine/nn/module.js';
import { Sequential } from '../../engine/nn/sequential.js';
import type { AutoEncoder } from './autoencoder.js';
import { IMAGE_PIXELS, IMAGE_SHAPE, batchShape } from '../data/image.js';

export interface SummaryRow { layer: string; type: string; outputShape: number[]; params: number; depth: number }

export interface ModelSummary {
  rows: SummaryRow[];
  total: number; trainable: number; nonTrainable: number;
  /** Megabytes, as torchsummary estimates them for one sample. */
  inputMB: number; forwardBackwardMB: number; paramsMB: number; totalMB: number;
}

function stateCount(m: Module): number {
  let n = 0;
  for (const [k, p] of m.namedParameters()) if (!k.includes('.')) n += p.size;
  for (const [k, b] of m.namedBuffers()) if (!k.includes('.')) n += b.data.length;
  return n;
}

export function summarize(model: AutoEncoder): ModelSummary {
  const rows: SummaryRow[] = [];
  const was = model.training;
  model.eval();
  let x = new Tensor(batchShape(1), new Float32Array(IMAGE_PIXELS));
  rows.push({ layer: 'autoencoder', type: 'AutoEncoder', outputShape: [-1, ...IMAGE_SHAPE], params: 0, depth: 0 });
  let activations = 0;
  for (const [name, seq] of [['encoder', model.encoder], ['decoder', model.decoder]] as [string, Sequential][]) {
    const header: SummaryRow = { layer: name, type: 'Sequential', outputShape: [], params: 0, depth: 1 };
    rows.push(header);
    seq.namedChildren().forEach(([idx, layer]) => {
      // copy the input into the layer's backend memory, then run the layer alone (no fusion)
      const staged = layer.device.alloc(x.size);
      staged.set(x.data.subarray(0, x.size));
      x = layer.forward(new Tensor(x.shape, staged));
      activations += x.size;
      rows.push({ layer: idx, type: layer.typeName, outputShape: [-1, ...x.shape.slice(1)], params: stateCount(layer), depth: 2 });
    });
    header.outputShape = [-1, ...x.shape.slice(1)];
  }
  model.train(was);
  const { trainable, nonTrainable } = model.countParameters();
  const total = trainable + nonTrainable;
  const MB = 1024 * 1024;
  const inputMB = (IMAGE_PIXELS * 4) / MB, forwardBackwardMB = (2 * activations * 4) / MB, paramsMB = (total * 4) / MB;
  return { rows, total, trainable, nonTrainable, inputMB, forwardBackwardMB, paramsMB, totalMB: inputMB + forwardBackwardMB + paramsMB };
}

const fmtShape = (s: number[]): string => `(${s.join(', ')})`;

/** The table as text, in the study's layout. */
export function formatSummary(s: ModelSummary): string {
  const line = '_'.repeat(90), eq = '='.repeat(90);
  const pad = (v: string, n: number): string => v.padEnd(n);
  const out = [line, `${pad('Layer', 29)}${pad('Type', 22)}${pad('Output Shape', 26)}${pad('Param #', 15)}`, eq];
  let encoderDone = false;
  for (const r of s.rows) {
    let name = r.layer;
    if (r.depth === 1) { name = `├─${r.layer}`; encoderDone = r.layer === 'decoder' || encoderDone; }
    if (r.depth === 2) name = `|    └─${r.layer}`;
    out.push(`${pad(name, 29)}${pad(r.type, 22)}${pad(fmtShape(r.outputShape), 26)}${pad(r.params.toLocaleString('en-US'), 15)}`);
  }
  out.push(eq,
    `Total params: ${s.total.toLocaleString('en-US')}`,
    `Trainable params: ${s.trainable.toLocaleString('en-US')}`,
    `Non-trainable params: ${s.nonTrainable.toLocaleString('en-US')}`,
    line,
    `Input size (MB): ${s.inputMB.toFixed(2)}`,
    `Forward/backward pass size (MB): ${s.forwardBackwardMB.toFixed(2)}`,
    `Params size (MB): ${s.paramsMB.toFixed(2)}`,
    `Estimated Total Size (MB): ${s.totalMB.toFixed(2)}`,
    line);
  return out.join('\n');
}
