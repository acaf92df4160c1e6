/** Safetensors and checkpoint files (Node): read, write atomically, save a model. */
import { readFileSync } from 'node:fs';
import { loadSafetensors, saveSafetensors, type Safetensors, type StateDict } from '../engine/state.js';
import type { Module } from '../engine/nn/module.js';
import { writeFileAtomic } from '../viz/node.js';

/** Reads a safetensors file (ours or PyTorch's); errors name the file. */
export function loadSafetensorsFile(file: string): Safetensors {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`${file}: cannot read (${code === 'ENOENT' ? 'not found' : code ?? (e as Error).message})`, { cause: e });
  }
  return loadSafetensors(bytes, file);
}

/** Writes a state dict as a safetensors file (atomically: a temporary file, then a rename). */
export async function saveSafetensorsFile(file: string, sd: StateDict, metadata?: Record<string, string>): Promise<void> {
  await writeFileAtomic(file, saveSafetensors(sd, metadata));
}

/**
 * Saves a model's state dict (PyTorch key names: it loads in PyTorch with
 * `model.load_state_dict(safetensors.torch.load_file(file))`).
 */
export async function saveModel(file: string, model: Module, metadata?: Record<string, string>): Promise<void> {
  await saveSafetensorsFile(file, model.stateDict(), metadata);
}
