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
p.add_argument("--info", action="store_true", help="print only which PyTorch this is (version, BLAS) as JSON")
a = p.parse_args()


def torch_info():
    """Version, the BLAS it was built with and the BLAS/oneDNN libraries really mapped after a matmul."""
    import re
    cfg = torch.__config__.show()
    m = re.search(r"BLAS_INFO=([^,\s]+)", cfg)
    torch.ones(64, 64) @ torch.ones(64, 64)
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                name = line.strip().split("/")[-1]
                if re.search(r"blas|mkl|lapack|dnnl|mkldnn", name, re.I) and name.endswith(tuple(f".so{s}" for s in ["", ".0", ".1", ".2", ".3"])) or re.search(r"(blas|mkl).*\.so", name):
                    libs.add(name)
    except OSError:
        pass
    return {"version": torch.__version__, "blas": m.group(1) if m else "unknown", "mkldnn": torch.backends.mkldnn.is_available(),
            "libs": sorted(libs), "python": sys.executable}


if a.info:
    print(json.dumps(torch_info()))
    sys.exit(0)
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

# A separate profiled pass: each convolution's forward and backward (input and weight gradients together,
# as one autograd node computes both) timed with module hooks; the hooks add a little overhead of their own.
times = {}
stack = {}


def hooks(name, mod):
    def pre(m, inp):
        stack[(name, "f")] = time.perf_counter()

    def post(m, inp, out):
        times.setdefault((name, "fwd"), 0.0)
        times[(name, "fwd")] += time.perf_counter() - stack[(name, "f")]

    def bpre(m, gout):
        stack[(name, "b")] = time.perf_counter()

    def bpost(m, gin, gout):
        times.setdefault((name, "bwd"), 0.0)
        times[(name, "bwd")] += time.perf_counter() - stack[(name, "b")]

    hs = [mod.register_forward_pre_hook(pre), mod.register_forward_hook(post)]
    if hasattr(mod, "register_full_backward_pre_hook"):
        hs += [mod.register_full_backward_pre_hook(bpre), mod.register_full_backward_hook(bpost)]
    return hs


handles = []
for name, mod in model.named_modules():
    if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)):
        handles += hooks(name, mod)
t = time.perf_counter()
for _ in range(a.steps):
    step()
profiled_ms = (time.perf_counter() - t) * 1000 / a.steps
for h in handles:
    h.remove()
convs = [{"layer": f"{k[0]} {type(model.get_submodule(k[0])).__name__}", "dir": k[1], "ms": v * 1000 / a.steps} for k, v in times.items()]
info = torch_info()
print(json.dumps({"backend": f"pytorch {torch.__version__}", "threads": a.threads, "samplesPerSec": statistics.median(rates),
                  "windows": rates, "peakRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "convs": convs, "profiledStepMs": profiled_ms, "convMs": sum(c["ms"] for c in convs), "torch": info}))
