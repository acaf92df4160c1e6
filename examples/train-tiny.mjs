// @ts-check
/**
 * Train the study's autoencoder for a few steps on a tiny batch, with SGD + CyclicLR, from the
 * browser-safe API (this runs in a browser as it is, on the reference backend).
 *
 *   node examples/train-tiny.mjs [steps]
 */
import { Tensor, models, optim, lr_scheduler, data, mseLoss, nn } from 'latentlab';

const steps = Number(process.argv[2] ?? 10);
nn.manualSeed(0); // PyTorch-style global seed for the layers' initialisation

// 16 synthetic "digits": a bright bar at a different place in each 28x28 image (bytes, like MNIST)
const n = 16;
const images = new Uint8Array(n * 784);
for (let i = 0; i < n; i++)
  for (let y = 4; y < 24; y++) for (let x = 4 + i; x < 8 + i; x++) images[i * 784 + y * 28 + x] = 255;

const model = new models.AutoEncoder({ model: 'bn', latent: 2 }); // the study's model
const opt = new optim.SGD(model.parameters(), { lr: 1e-3, momentum: 0.9 });
const sched = new lr_scheduler.CyclicLR(opt, { baseLr: 1e-4, maxLr: 1e-2, stepSizeUp: 5 });
const loader = new data.DataLoader({ images, labels: null }, { batchSize: 8, seed: 0 });
model.train();

const grad = new Float32Array(8 * 784);
for (let step = 0; step < steps; step++) {
  const b = loader.next(); // x in [-1, 1]
  const x = new Tensor([b.size, 1, 28, 28], b.x);
  model.zeroGrad();
  const y = model.forward(x);
  const loss = mseLoss(y.data, b.x, b.size * 784, grad); // writes dLoss/dy into grad
  model.backward(new Tensor(y.shape, grad.subarray(0, b.size * 784)));
  opt.step();
  sched.step();
  console.log(`step ${step + 1} loss ${loss.toFixed(6)} lr ${sched.getLastLr()[0]?.toExponential(3)}`);
}
