"""dropnet's engine against PyTorch on the CPU, on the workloads of
../shared/bench/torch_reference.py (the same layer dicts), timed in the same run, interleaved.

    python bench/engine.py [workload ...] [--rounds 5]      # time ratios dropnet / torch
    python bench/engine.py --memory [--iterations 20000]    # RSS over a long training loop
    python bench/engine.py --parity                         # float64 step against PyTorch

Prints per training step (forward, loss, backward, SGD update; float32) the median ratio over
rounds (lower is better) with its spread, the targets, and for mlp_large the share of the
GEMM roofline (the step's FLOPs at the GEMM speed measured in this run).

Both OpenBLAS settings run in one invocation, each in its own subprocess with its own GEMM
speed: "machine" (the environment as inherited, e.g. a CI override such as
OPENBLAS_CORETYPE=Haswell) and "native" (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed, so
OpenBLAS picks the kernels of this CPU, as a user's machine does). `--setting native` runs one.
Needs `pip install torch==2.13.0` (the bench extra).
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = Path(os.environ.get("DROPNET_TORCH_REFERENCE",
                                ROOT.parent / "shared" / "bench" / "torch_reference.py"))

BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
SETTINGS = ("machine", "native")
TARGETS = {  # ratio dropnet / torch per setting; issue 13 sets the native ones
    "machine": {"mlp_large": 0.75, "mlp_large_b32": 0.85, "mlp_small": 0.4, "cnn": 1.0,
                "cnn_cifar": 1.0, "infer_b1": 0.8, "infer_b256": 1.0},
    "native": {"mlp_large": 0.42, "mlp_large_b32": 0.65, "mlp_small": 0.28, "cnn": 0.8,
               "cnn_cifar": 0.9, "infer_b1": 0.45, "infer_b256": 0.5},
}
ROOFLINE_TARGETS = {"machine": 0.70, "native": 0.75}


def load_reference():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("torch_reference", REFERENCE)
    if spec is None or spec.loader is None:
        sys.exit(f"torch reference not found at {REFERENCE} (set DROPNET_TORCH_REFERENCE)")
    module = importlib.util.module_from_spec(spec)
    sys.modules["torch_reference"] = module
    spec.loader.exec_module(module)
    return module


def dropnet_step(workload) -> Callable[[], None]:  # type: ignore[no-untyped-def]
    """A closure running one dropnet training step (or one inference call)."""
    from service.engine.losses import get_loss
    from service.engine.network import build_network
    from service.engine.optimizers import build_optimizer
    from service.engine.training import train_step

    reference = sys.modules["torch_reference"]
    network = build_network(workload.layers, workload.input_shape, seed=0, dtype="float32")
    x, y = reference.batch(workload)
    if not workload.train:
        network.freeze()  # inference-only, as the service's model cache holds its models

        def infer() -> None:
            network.forward(x, training=False)
        return infer
    loss = get_loss("cross_entropy")
    optimizer = build_optimizer({"type": "sgd", "learning_rate": 0.01})

    def step() -> None:  # exactly what the training loop runs per iteration
        train_step(network, loss, optimizer, x, y, 0.01)
    return step


def gemm_gflops(seconds_per_call: Callable[..., float]) -> float:
    """float32 GEMM speed of this machine's NumPy BLAS (the best of a few shapes)."""
    rng = np.random.default_rng(0)
    best = 0.0
    for m, k, n in ((1024, 1024, 1024), (128, 1024, 1024), (1024, 784, 128)):
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        out = np.empty((m, n), dtype=np.float32)
        seconds = seconds_per_call(lambda a=a, b=b, out=out: np.matmul(a, b, out=out))
        best = max(best, 2 * m * k * n / seconds / 1e9)
    return best


def mlp_step_flops(workload) -> float:  # type: ignore[no-untyped-def]
    """GEMM FLOPs of one dense training step: forward, dW for every layer, dx for all but the
    first."""
    sizes = [workload.input_shape[0]] + [spec["units"] for spec in workload.layers
                                         if spec["type"] == "dense"]
    products = [a * b for a, b in itertools.pairwise(sizes)]
    batch = workload.batch_size
    return 2 * batch * (3 * sum(products) - products[0])


def blas_description() -> str:
    """The OpenBLAS kernels in use and the override variables that chose them."""
    from threadpoolctl import threadpool_info

    kernels = ", ".join(f"{info.get('internal_api')} {info.get('architecture')}"
                        for info in threadpool_info() if info.get("user_api") == "blas")
    overrides = ", ".join(f"{name}={os.environ[name]}" for name in BLAS_OVERRIDES
                          if name in os.environ) or "no override"
    return f"{kernels or 'unknown BLAS'} ({overrides})"


def time_workloads(names: list[str], rounds: int, setting: str) -> bool:
    import torch

    reference = load_reference()
    measure = reference.seconds_per_call
    targets = TARGETS[setting]
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"== setting {setting}: {blas_description()}; load average {load}")
    print(f"numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} "
          f"threads), {os.cpu_count()} cores; {rounds} interleaved rounds, median ratio")
    gflops = gemm_gflops(measure)
    print(f"float32 GEMM speed measured now: {gflops:.0f} GFLOP/s")
    print(f"{'workload':14s} {'dropnet ms':>11s} {'torch ms':>9s} {'ratio':>6s} "
          f"{'(min-max)':>12s} {'target':>7s}")
    ok = True
    for name in names:
        workload = reference.WORKLOADS[name]
        ours, theirs = dropnet_step(workload), reference.torch_step(workload)
        times_ours, times_theirs, ratios = [], [], []
        for _ in range(rounds):
            a = measure(ours, repeats=3, target_s=0.1)
            b = measure(theirs, repeats=3, target_s=0.1)
            times_ours.append(a)
            times_theirs.append(b)
            ratios.append(a / b)
        ratio = statistics.median(ratios)
        target = targets.get(name)
        met = target is None or ratio <= target
        ok &= met
        print(f"{name:14s} {statistics.median(times_ours) * 1e3:11.3f} "
              f"{statistics.median(times_theirs) * 1e3:9.3f} {ratio:6.2f} "
              f"({min(ratios):.2f}-{max(ratios):.2f}) {'<=' + str(target):>7s} "
              f"{'ok' if met else 'MISSED'}")
        if name == "mlp_large":
            roofline = mlp_step_flops(workload) / (gflops * 1e9)
            share = roofline / statistics.median(times_ours)
            met = share >= ROOFLINE_TARGETS[setting]
            ok &= met
            print(f"{'':14s} GEMM roofline {roofline * 1e3:.2f} ms: {share:.0%} of it "
                  f"(target >= {ROOFLINE_TARGETS[setting]:.0%}) {'ok' if met else 'MISSED'}")
    return ok


def setting_environment(setting: str) -> dict[str, str]:
    """The environment a setting's subprocess runs in."""
    env = dict(os.environ)
    if setting == "native":
        for name in BLAS_OVERRIDES:
            env.pop(name, None)
    return env


def time_settings(names: list[str], rounds: int, settings: list[str]) -> bool:
    """Each setting in its own subprocess (OpenBLAS reads its variables once, at load)."""
    ok = True
    for setting in settings:
        command = [sys.executable, __file__, *names, "--rounds", str(rounds),
                   "--setting-child", setting]
        sys.stdout.flush()
        ok &= subprocess.run(command, env=setting_environment(setting)).returncode == 0
    return ok


PARITY_TOLERANCE = 1e-9


def parity(names: list[str]) -> bool:
    """One float64 training step of each workload in both engines from the same weights
    (dropout rates set to 0, so no random masks differ): the largest relative difference of
    loss, gradients and updated weights must stay below PARITY_TOLERANCE."""
    import torch

    from service.engine.losses import get_loss
    from service.engine.network import build_network
    from service.engine.optimizers import build_optimizer
    from service.engine.training import train_step

    reference = load_reference()
    print(f"float64, one SGD step from the same weights, dropout off; "
          f"tolerance {PARITY_TOLERANCE:g}")
    ok = True
    for name in names:
        workload = reference.WORKLOADS[name]
        if not workload.train:
            continue
        layers = [{**spec, "rate": 0.0} if spec["type"] == "dropout" else spec
                  for spec in workload.layers]
        network = build_network(layers, workload.input_shape, seed=0, dtype="float64")
        module = reference.torch_module(workload).double().eval()  # eval: no torch dropout
        weighted = [layer for layer in network.layers if layer.params]
        modules = [m for m in module if isinstance(m, torch.nn.Linear | torch.nn.Conv2d)]
        with torch.no_grad():
            for layer, torch_layer in zip(weighted, modules, strict=True):
                weight = layer.params["weight"]
                torch_layer.weight.copy_(torch.from_numpy(
                    weight.T if isinstance(torch_layer, torch.nn.Linear) else weight))
                torch_layer.bias.copy_(torch.from_numpy(layer.params["bias"]))
        x, y = reference.batch(workload)
        x = x.astype(np.float64)
        value = train_step(network, get_loss("cross_entropy"),
                           build_optimizer({"type": "sgd", "learning_rate": 0.01}), x, y, 0.01)
        torch_loss = torch.nn.functional.cross_entropy(module(torch.from_numpy(x)),
                                                       torch.from_numpy(y))
        torch_loss.backward()
        errors = [abs(value - torch_loss.item()) / abs(torch_loss.item())]
        for layer, torch_layer in zip(weighted, modules, strict=True):
            linear = isinstance(torch_layer, torch.nn.Linear)
            with torch.no_grad():
                torch_layer.weight -= 0.01 * torch_layer.weight.grad
                torch_layer.bias -= 0.01 * torch_layer.bias.grad
            pairs = [(layer.grads["weight"], torch_layer.weight.grad),
                     (layer.grads["bias"], torch_layer.bias.grad),
                     (layer.params["weight"], torch_layer.weight),
                     (layer.params["bias"], torch_layer.bias)]
            for ours, theirs in pairs:
                expected = theirs.detach().numpy()
                if linear and ours.ndim == 2:
                    expected = expected.T
                scale = max(float(np.abs(expected).max()), 1e-300)
                errors.append(float(np.abs(ours - expected).max()) / scale)
        worst = max(errors)
        met = worst <= PARITY_TOLERANCE
        ok &= met
        print(f"{name:14s} max relative difference {worst:.2e} {'ok' if met else 'MISSED'}")
    return ok


def memory_run(engine: str, iterations: int) -> None:
    """Child process: train mlp_large for `iterations` steps, print RSS samples (MiB)."""
    reference = load_reference()
    workload = reference.WORKLOADS["mlp_large"]
    step = dropnet_step(workload) if engine == "dropnet" else reference.torch_step(workload)
    samples = []
    for i in range(1, iterations + 1):
        step()
        if i % max(1, iterations // 10) == 0:
            samples.append(_rss_mib())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{engine} " + " ".join(f"{s:.1f}" for s in samples) + f" peak {peak:.1f}")


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory(iterations: int) -> bool:
    print(f"mlp_large, {iterations} training steps; RSS (MiB) at every tenth, then the peak")
    ok = True
    for engine in ("dropnet", "torch"):
        out = subprocess.run([sys.executable, __file__, "--memory-child", engine,
                              "--iterations", str(iterations)], check=True,
                             capture_output=True, text=True).stdout.strip()
        print(out)
        if engine == "dropnet":
            samples = [float(v) for v in out.split()[1:-2]]
            growth = samples[-1] - samples[0]
            flat = growth <= 1.0
            ok &= flat
            print(f"dropnet RSS growth after warm-up: {growth:+.1f} MiB "
                  f"({'flat' if flat else 'GROWING'})")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workloads", nargs="*")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--parity", action="store_true")
    parser.add_argument("--iterations", type=int, default=20_000)
    parser.add_argument("--setting", choices=SETTINGS, action="append",
                        help="run only this BLAS setting (repeatable; default: both)")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    parser.add_argument("--setting-child", choices=SETTINGS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.memory_child:
        memory_run(args.memory_child, args.iterations)
        return
    if args.memory:
        sys.exit(0 if memory(args.iterations) else 1)
    names = args.workloads or list(TARGETS["native"])
    unknown = sorted(set(names) - set(TARGETS["native"]))
    if unknown:
        parser.error(f"unknown workloads {unknown}; expected some of {list(TARGETS['native'])}")
    if args.parity:
        sys.exit(0 if parity(names) else 1)
    start = time.perf_counter()
    if args.setting_child:
        ok = time_workloads(names, args.rounds, args.setting_child)
    else:
        ok = time_settings(names, args.rounds, args.setting or list(SETTINGS))
    print(f"({time.perf_counter() - start:.0f} s)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
