"""PEPITA `fit` throughput under Keras's TensorFlow and JAX backends.

A Keras process has one backend, so each backend runs in its own worker
process (spawned with `KERAS_BACKEND` set); the parent asks them for one
epoch in turn, alternating, and prints median samples/s and the JAX/TF
ratio. Both train the paper FC net (dropout 0.1) with SGD(0.01, momentum
0.9) on the same in-memory arrays; TensorFlow uses its default
`jit_compile` (False on CPU), JAX always compiles with XLA.

Usage (needs `pip install 'pepita_keras[jax]'`):

    python benchmarks/backends.py --batches 64 1024
"""

import argparse
import os
import statistics
import time

import numpy as np
from worker_process import WorkerProcess


def _worker(connection, backend, x, y):
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    import pepita_keras

    assert keras.backend.backend() == backend, keras.backend.backend()
    models = {}
    while True:
        request = connection.recv()
        if request is None:
            return
        batch, examples = request
        if batch not in models:
            model = pepita_keras.PEPITA(pepita_keras.paper_networks.paper_fc(seed=0), seed=0)
            model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                          metrics=["accuracy"])
            models[batch] = model
        start = time.perf_counter()
        history = models[batch].fit(x[:examples], y[:examples], batch_size=batch,
                                    epochs=1, verbose=0, shuffle=False)
        connection.send((time.perf_counter() - start, history.history["accuracy"][-1]))


def main(argv=None):
    """Prints a markdown table; returns its rows."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", nargs="+", type=int, default=[64, 1024])
    parser.add_argument("--examples", type=int, default=12800)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    x = rng.random((args.examples, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, args.examples).astype("int32")
    workers = {name: WorkerProcess(_worker, name, x, y) for name in ("tensorflow", "jax")}
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("| batch | backend | samples/s | vs TensorFlow |")
    print("|---|---|---|---|")
    rows = []
    for batch in args.batches:
        for worker in workers.values():  # compile
            worker.request(batch, 4 * batch)
        times = {name: [] for name in workers}
        names = list(workers)
        for r in range(args.repeats):
            for name in names[r % 2:] + names[: r % 2]:
                times[name].append(workers[name].request(batch, args.examples)[0])
        samples = (args.examples // batch) * batch
        rates = {name: samples / statistics.median(t) for name, t in times.items()}
        for name in names:
            row = (f"| {batch} | {name} | {rates[name]:,.0f} | "
                   f"{rates[name] / rates['tensorflow']:.2f} |")
            rows.append(row)
            print(row, flush=True)
    for worker in workers.values():
        worker.close()
    return rows


if __name__ == "__main__":
    main()
