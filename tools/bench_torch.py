"""The same training step in PyTorch, for `npm run bench`: the study's model (bn, z=2), SGD with
momentum + CyclicLR, MSE, random data of MNIST's shape. Prints one JSON line.

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 tools/bench_torch.py --threads 2 --batch 64 --steps 40
"""
import argparse
import json
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=2)
p.add_argument("--batch", type=int, default=64)
p.add_argument("--warmup", type=int, default=5)
p.add_argument("--windows", type=int, default=5)
p.add_argument("--steps", type=int, default=10, help="steps per window")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)

sys.path.insert(0, __file__.rsplit("/", 1)[0] + "/fixtures")
from gen_model import AutoEncoder  # noqa: E402  (the same model the parity fixtures use)

model = AutoEncoder(z_dim=2)
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
sched = torch.optim.lr_scheduler.CyclicLR(opt, base_lr=1e-4, max_lr=1e-2, step_size_up=400)
x = torch.rand(a.batch, 1, 28, 28) * 2 - 1


def step():
    opt.zero_grad()
    y = model(x)
    loss = nn.functional.mse_loss(y, x)
    loss.backward()
    opt.step()
    sched.step()


for _ in range(a.warmup):
    step()
rates = []
for _ in range(a.windows):
    t = time.perf_counter()
    for _ in range(a.steps):
        step()
    rates.append(a.steps * a.batch / (time.perf_counter() - t))
print(json.dumps({"backend": f"pytorch {torch.__version__}", "threads": a.threads, "samplesPerSec": statistics.median(rates),
                  "windows": rates, "peakRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
