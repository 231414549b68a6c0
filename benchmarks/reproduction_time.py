"""Projected wall time of the 100-epoch MNIST FC reproduction.

Trains PEPITA on the paper FC net exactly as a reproduction epoch does
(full MNIST training split, batch 64, SGD(0.1, momentum 0.9), shuffled
in-memory tf.data, evaluation on the 10k test split at batch 1000 after every
epoch) for a few epochs, and reports the median epoch time including the
evaluation, times 100.

Usage:

    PEPITA_DATA_DIR=../shared/data python benchmarks/reproduction_time.py
    python benchmarks/reproduction_time.py --epochs 3 --steps-per-execution 32
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import pepita_keras  # noqa: E402
from pepita_keras import datasets, paper_networks  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (+1 warm-up)")
    parser.add_argument("--steps-per-execution", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args(argv)

    data = datasets.load("mnist", batch_size=args.batch, seed=0)
    test = datasets.load("mnist", batch_size=1000, shuffle=False).test
    model = pepita_keras.PEPITA(paper_networks.paper_fc(seed=0), seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  metrics=["accuracy"], steps_per_execution=args.steps_per_execution)
    times, logs = [], None
    for epoch in range(args.epochs + 1):
        start = time.perf_counter()
        logs = model.fit(data.train, validation_data=test, epochs=1, verbose=0).history
        if epoch:  # the first epoch includes tracing
            times.append(time.perf_counter() - start)
    epoch_s = statistics.median(times)
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}; "
          f"steps_per_execution={args.steps_per_execution}, batch {args.batch}")
    print(f"epoch incl. evaluation: {epoch_s:.2f} s (median of {times and len(times)}: "
          f"{', '.join(f'{t:.1f}' for t in times)}); "
          f"{data.num_train / epoch_s:,.0f} training samples/s")
    print(f"projected 100 epochs: {100 * epoch_s / 60:.1f} min "
          f"(test accuracy after {args.epochs + 1} epochs: {logs['val_accuracy'][-1]:.4f})")


if __name__ == "__main__":
    main()
