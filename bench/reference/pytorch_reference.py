"""PyTorch's training step on paratrain's mnist-mlp and mnist-cnn: the same layers, batches and
Adam, on random inputs of the same shapes (speed only), for a same-machine reference.

    python3 bench/reference/pytorch_reference.py [--threads 1] [--steps 60] [--warmup 10] [--repeats 3]

Prints one JSON object per workload: ms per step (median of the repeats' medians, and each
repeat's) and samples/s. Needs python3-torch (Debian: apt-get install python3-torch, PyTorch 1.13
on the same OpenBLAS as paratrain's native backend).

--threads N is the whole process's compute threads: torch.set_num_threads(N) for PyTorch's own
kernels, and OPENBLAS_NUM_THREADS=N for the products, which OpenBLAS threads on its own (left
unset, a "one-thread" PyTorch ran mnist-mlp's products on every core: 2.8 ms a step here
against 3.9 ms with one). OpenBLAS reads it when it loads, so it is set before torch is imported:
one thread count per process.
"""
import argparse, json, os, statistics, time


def mnist_mlp():
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                         nn.Linear(128, 10)), (784,), 256


def mnist_cnn():
    # conv3x3(16)-pool-conv3x3(32)-pool-dense(64)-10, 'same' padding, as workloads/mnist_cnn.ts
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(7 * 7 * 32, 64), nn.ReLU(), nn.Linear(64, 10)), (1, 28, 28), 128


def time_steps(model, shape, batch, steps, warmup):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.rand(batch, *shape)
    y = torch.randint(0, 10, (batch,))
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        elapsed = (time.perf_counter() - t0) * 1000
        if i >= warmup:
            times.append(elapsed)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workloads", nargs="+", default=["mnist-mlp", "mnist-cnn"])
    args = parser.parse_args()
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
    global torch, nn
    import torch
    import torch.nn as nn
    torch.manual_seed(0)
    builders = {"mnist-mlp": mnist_mlp, "mnist-cnn": mnist_cnn}
    torch.set_num_threads(args.threads)
    for name in args.workloads:
        medians = []
        for _ in range(args.repeats):
            model, shape, batch = builders[name]()
            medians.append(time_steps(model, shape, batch, args.steps, args.warmup))
        ms = statistics.median(medians)
        print(json.dumps({"framework": f"pytorch {torch.__version__}", "workload": name,
                          "threads": args.threads, "batch": batch, "msPerStep": round(ms, 3),
                          "repeatsMs": [round(m, 3) for m in medians],
                          "samplesPerSec": round(batch / ms * 1000, 1)}))


if __name__ == "__main__":
    main()
