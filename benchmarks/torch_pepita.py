"""PEPITA in plain PyTorch, timed against `pepita_keras.PEPITA.fit`.

The official PEPITA code (https://github.com/GiorgiaD/PEPITA) is a plain
PyTorch loop: two forward passes, outer-product updates, momentum by hand.
`TorchPEPITA` below is an equivalent minimal loop written from the paper's
equations (not copied from that code), for the paper's FC net
784 → 1024 (ReLU, dropout 0.1) → 10 (softmax), no biases:

    h   = drop(relu(x W1)),          y     = softmax(h W2),      e = y − t
    x_m = x + e Fᵀ
    h_m = drop(relu(x_m W1)),        y_m   = softmax(h_m W2)      (same mask)
    G1  = x_mᵀ (h − h_m) / B,        G2    = h_mᵀ (y_m − t) / B
    v   ← μ v − η G,                 W     ← W + v

This script trains both on the same in-memory data with the same batch size,
alternating one epoch of each (so background load hits both alike), and
prints the median samples/s and the Keras/PyTorch ratio.

It also times each side's **GEMM floor**: the large matrix products of one
step alone, in a loop, on the same threads. The torch loop above does three
(B×784)·(784×1024)-sized products per step (`x W1`, `x_m W1`, `x_mᵀ (h − h_m)`);
`pepita_keras.PEPITA` does two, because its first-layer shortcut gets
`x_m W1 = x W1 + e (Fᵀ W1)` from a (10×784)·(784×1024) product
(`PEPITA.first_layer_shortcut_applies`). The ratio of the two floors is the
most the Keras side can lead by on this arithmetic (1.5 if the products ran
at one speed); "step / floor" says how much of each step is not those products.

Usage (needs `pip install 'pepita_keras[bench]'`, i.e. torch==2.13.0):

    python benchmarks/torch_pepita.py --batches 64 1024              # default threads
    python benchmarks/torch_pepita.py --batches 64 1024 --threads 1  # one thread each
    PEPITA_DATA_DIR=../shared/data python benchmarks/torch_pepita.py --data mnist
"""

import argparse
import math
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from worker_process import WorkerProcess  # noqa: E402


class TorchPEPITA:
    """PEPITA for a 1-hidden-layer MLP, updates computed without autograd.

    Args:
        input_size, hidden, classes: layer sizes (paper: 784, 1024, 10).
        dropout: dropout rate after the hidden layer (paper: 0.1).
        lr, momentum: SGD hyper-parameters (paper: 0.01, 0.9).
        feedback_scale: F ~ U(±s·sqrt(6/input_size)) (paper: s = 0.05).
        seed: torch seed.
        device: where the weights live and the steps run ("cpu", "cuda").
    """

    def __init__(self, input_size=784, hidden=1024, classes=10, dropout=0.1,
                 lr=0.01, momentum=0.9, feedback_scale=0.05, seed=0, device="cpu"):
        gen = torch.Generator().manual_seed(seed)

        def uniform(shape, limit):
            return ((torch.rand(shape, generator=gen) * 2 - 1) * limit).to(device)

        # He-uniform weights in (in, out) layout, as Keras Dense kernels.
        self.w1 = uniform((input_size, hidden), math.sqrt(6 / input_size))
        self.w2 = uniform((hidden, classes), math.sqrt(6 / hidden))
        self.feedback = uniform((input_size, classes),
                                feedback_scale * math.sqrt(6 / input_size))
        self.v1, self.v2 = torch.zeros_like(self.w1), torch.zeros_like(self.w2)
        self.dropout, self.lr, self.momentum = dropout, lr, momentum
        self.classes = classes
        # Masks and epoch orders are drawn where the data is.
        self.gen = torch.Generator(device=device).manual_seed(seed)

    def forward(self, x, mask=None):
        h = torch.relu(x @ self.w1)
        if mask is not None:
            h = h * mask
        return h, torch.softmax(h @ self.w2, dim=1)

    @torch.no_grad()
    def train_step(self, x, labels):
        batch = x.shape[0]
        targets = torch.nn.functional.one_hot(labels, self.classes).to(x.dtype)
        keep = torch.rand((batch, self.w1.shape[1]), generator=self.gen,
                          device=x.device) >= self.dropout
        mask = keep.to(x.dtype) / (1 - self.dropout)
        h, y = self.forward(x, mask)
        x_mod = x + (y - targets) @ self.feedback.T
        h_mod, y_mod = self.forward(x_mod, mask)
        g1 = x_mod.T @ (h - h_mod) / batch
        g2 = h_mod.T @ (y_mod - targets) / batch
        for w, v, g in ((self.w1, self.v1, g1), (self.w2, self.v2, g2)):
            v.mul_(self.momentum).sub_(g, alpha=self.lr)
            w.add_(v)
        return y

    def fit_epoch(self, x, labels, batch_size):
        order = torch.randperm(x.shape[0], generator=self.gen, device=x.device)
        for start in range(0, x.shape[0] - batch_size + 1, batch_size):
            index = order[start:start + batch_size]
            self.train_step(x[index], labels[index])

    @torch.no_grad()
    def accuracy(self, x, labels):
        return (self.forward(x)[1].argmax(1) == labels).float().mean().item()


def load_data(source, num_examples):
    if source == "mnist":
        from pepita_keras import datasets

        (x, y), (x_test, y_test) = datasets.load_arrays("mnist")
        return x[:num_examples], y[:num_examples], x_test, y_test
    rng = np.random.default_rng(0)
    x = rng.random((num_examples, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, num_examples).astype("int32")
    return x, y, x[:1000], y[:1000]


def _torch_worker(connection, threads, x, y):
    """Child process: owns the PyTorch side, runs one epoch per request.

    PyTorch runs in its own process so that its OpenMP threads and
    TensorFlow's thread pools never share (or spin in) one process.
    """
    if threads:
        torch.set_num_threads(threads)
    tx, ty = torch.from_numpy(x.reshape(len(x), -1)), torch.from_numpy(y).long()
    models = {}
    while True:
        request = connection.recv()
        if request is None:
            return
        if request[0] == "gemm":
            connection.send(_torch_gemm_seconds(*request[1:]))
            continue
        batch, examples = request
        model = models.setdefault(batch, TorchPEPITA(seed=0))
        start = time.perf_counter()
        model.fit_epoch(tx[:examples], ty[:examples], batch)
        connection.send(time.perf_counter() - start)


def _torch_gemm_seconds(batch, steps, input_size=784, hidden=1024):
    """Seconds for `steps` of the torch loop's three large products, nothing else."""
    gen = torch.Generator().manual_seed(0)
    x, x_mod = (torch.rand((batch, input_size), generator=gen) for _ in range(2))
    w1 = torch.rand((input_size, hidden), generator=gen)
    delta = torch.rand((batch, hidden), generator=gen)
    with torch.no_grad():
        for _ in range(3):  # warm-up
            x @ w1
        start = time.perf_counter()
        for _ in range(steps):
            x @ w1
            x_mod @ w1
            x_mod.T @ delta
        return time.perf_counter() - start


def keras_gemm_seconds(batch, steps, input_size=784, hidden=1024):
    """Seconds for `steps` of `pepita_keras.PEPITA`'s two large products, in one graph."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x, x_mod = (tf.Variable(rng.random((batch, input_size), dtype=np.float32)) for _ in range(2))
    w1 = tf.Variable(rng.random((input_size, hidden), dtype=np.float32))
    delta = tf.Variable(rng.random((batch, hidden), dtype=np.float32))

    @tf.function
    def loop(n):
        total = tf.constant(0.0)
        for _ in tf.range(n):
            # Summing one entry of each product keeps both from being pruned.
            total += tf.matmul(x, w1)[0, 0] + tf.matmul(x_mod, delta, transpose_a=True)[0, 0]
        return total

    loop(tf.constant(3)).numpy()  # trace and warm up
    start = time.perf_counter()
    loop(tf.constant(steps)).numpy()
    return time.perf_counter() - start


def keras_model(steps_per_execution):
    import keras

    import pepita_keras

    model = pepita_keras.PEPITA(pepita_keras.paper_networks.paper_fc(seed=0), seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  metrics=["accuracy"], steps_per_execution=steps_per_execution)
    return model


def main(argv=None):
    """Prints a markdown table; returns its rows."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", nargs="+", type=int, default=[64, 1024])
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both sides (TensorFlow intra/inter-op and torch); "
                             "default: each library's own default for this machine")
    parser.add_argument("--examples", type=int, default=12800,
                        help="training examples per timed epoch")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps-per-execution", nargs="+", type=int, default=[1])
    parser.add_argument("--data", choices=["synthetic", "mnist"], default="synthetic")
    parser.add_argument("--epochs-accuracy", type=int, default=0,
                        help="also train torch for N full epochs and print test accuracy")
    args = parser.parse_args(argv)

    import tensorflow as tf

    if args.threads:  # the same budget for both sides
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    from pepita_keras import datasets

    x, y, x_test, y_test = load_data(args.data, args.examples)
    worker = WorkerProcess(_torch_worker, args.threads, x, y)
    threads = f"{args.threads} threads each" if args.threads else "default threads"
    print(f"torch {torch.__version__} ({threads}, own process), "
          f"TensorFlow {tf.__version__}, data={args.data}, {len(x)} examples/epoch, "
          f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("| batch | implementation | samples/s | vs torch | GEMM floor samples/s | step / floor |")
    print("|---|---|---|---|---|---|")
    results = []
    for batch in args.batches:
        pipeline = datasets.make_pipeline(x, y, batch, shuffle=True, seed=0)
        variants = {"torch": None}
        for spe in args.steps_per_execution:
            variants[f"pepita_keras fit, steps_per_execution={spe}"] = keras_model(spe)
        for name, model in variants.items():  # warm-up: trace, allocate
            if model is None:
                worker.request(batch, 4 * batch)
            else:
                model.fit(pipeline.take(4), epochs=1, verbose=0)
        times = {name: [] for name in variants}
        names = list(variants)
        for r in range(args.repeats):
            for name in names[r % len(names):] + names[: r % len(names)]:
                if variants[name] is None:
                    times[name].append(worker.request(batch, len(x)))
                    continue
                start = time.perf_counter()
                variants[name].fit(pipeline, epochs=1, verbose=0)
                times[name].append(time.perf_counter() - start)
        samples = (len(x) // batch) * batch
        steps = samples // batch
        floors = {"torch": statistics.median(worker.request("gemm", batch, steps)
                                             for _ in range(args.repeats)),
                  "keras": statistics.median(keras_gemm_seconds(batch, steps)
                                             for _ in range(args.repeats))}
        torch_rate = samples / statistics.median(times["torch"])
        for name in names:
            rate = samples / statistics.median(times[name])
            floor = floors["torch" if name == "torch" else "keras"]
            line = (f"| {batch} | {name} | {rate:,.0f} | {rate / torch_rate:.2f} | "
                    f"{samples / floor:,.0f} | {samples / rate / floor:.2f} |")
            results.append(line)
            print(line, flush=True)
        ceiling = floors["torch"] / floors["keras"]
        line = (f"| {batch} | ceiling: both at their GEMM floor | | {ceiling:.2f} | | |")
        results.append(line)
        print(line, flush=True)
    worker.close()
    tx, ty = torch.from_numpy(x.reshape(len(x), -1)), torch.from_numpy(y).long()
    if args.epochs_accuracy:
        model = TorchPEPITA(seed=0)
        tx_test = torch.from_numpy(x_test.reshape(len(x_test), -1))
        for _ in range(args.epochs_accuracy):
            model.fit_epoch(tx, ty, 64)
        print(f"torch test accuracy after {args.epochs_accuracy} epochs: "
              f"{model.accuracy(tx_test, torch.from_numpy(y_test).long()):.4f}")
    return results


if __name__ == "__main__":
    main()
