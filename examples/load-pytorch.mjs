// @ts-check
/**
 * Load a checkpoint saved by PyTorch from the study's own code, with strict key matching, and
 * check that the model computes what PyTorch computed.
 *
 *   node examples/load-pytorch.mjs [state_dict.safetensors] [io.safetensors]
 *
 * The checkpoint is `model.state_dict()` saved with safetensors (key names as in the study:
 * encoder.0.weight, encoder.1.running_mean, ..., decoder.9.bias); the fixture is made by
 * tools/fixtures/gen_checkpoint.py with Debian's PyTorch. In PyTorch:
 *
 *   from safetensors.torch import save_file
 *   save_file(model.state_dict(), "study_z2.safetensors")
 */
import { fileURLToPath } from 'node:url';
import { loadModel, loadSafetensorsFile } from 'latentlab/node';

const here = (/** @type {string} */ p) => fileURLToPath(new URL(p, import.meta.url));
const [
  ckpt = here('../test/fixtures/pytorch/study_z2.safetensors'),
  io = here('../test/fixtures/pytorch/study_z2_io.safetensors'),
] = process.argv.slice(2);

// strict: every key of the model must be in the file and nothing else (else a one-line error)
const model = loadModel(ckpt, { model: 'bn', latent: 2 });
console.log(`loaded ${ckpt}: ${model.stateDict().size} tensors, ${model.countParameters().trainable} parameters`);

const { tensors } = loadSafetensorsFile(io);
const x = /** @type {Float32Array} */ (tensors.get('x')?.data);
const zRef = /** @type {Float32Array} */ (tensors.get('z')?.data);
const yRef = /** @type {Float32Array} */ (tensors.get('y')?.data);
const n = x.length / 784;
const z = model.encode(x, n); // eval mode: BatchNorm uses PyTorch's running statistics
const y = model.decode(z, n);
const maxDiff = (/** @type {Float32Array} */ a, /** @type {Float32Array} */ b) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
console.log(`latents: ${[...z].map((v) => v.toFixed(4)).join(' ')}`);
console.log(`max |z - z_torch| = ${maxDiff(z, zRef).toExponential(2)}, max |y - y_torch| = ${maxDiff(y, yRef).toExponential(2)}`);
