"""Peak memory of PEPITA vs MEMPEPITA on a deep MLP at a large batch.

Measures, for each rule, the peak of TensorFlow's allocator above what was
already allocated (weights, optimizer slots, the input batch) while it runs:

- `compute_updates` eagerly (Python drops each tensor when its last
  reference goes),
- `compute_updates` inside one `tf.function` (the graph executor frees a
  tensor after its last consumer), and
- a training step (`model.fit` on one batch, SGD with momentum).

How: TensorFlow's CPU allocator is switched to its BFC allocator
(`TF_CPU_ALLOCATOR_USE_BFC=true`, set here before TensorFlow is imported), for
which `tf.config.experimental.get_memory_info("CPU:0")` reports current and
peak bytes; `reset_memory_stats` starts each measurement. Every measurement
is taken after a warm-up call (tracing, optimizer slots). On a GPU the same
calls report device memory (`--device GPU:0`).

Expected: PEPITA keeps all L clean activations until the updates are formed
(≈ L·B·units·4 bytes = 96 MiB for 6×1024 at B = 4096) on top of the
modulated pass; MEMPEPITA keeps about two consecutive layers of both passes.

Usage:

    python benchmarks/mempepita_memory.py                 # 6×1024, batch 4096
    python benchmarks/mempepita_memory.py --depth 8 --batch 2048 --skip-fit
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import pepita_keras  # noqa: E402

MIB = 2**20


def build_network(depth, units, input_dim, classes, seed):
    layers = [keras.Input((input_dim,))]
    for index in range(depth):
        layers.append(
            keras.layers.Dense(
                units,
                activation="relu",
                use_bias=False,
                kernel_initializer=keras.initializers.HeUniform(seed + index),
            )
        )
    layers.append(keras.layers.Dense(classes, activation="softmax", use_bias=False))
    return keras.Sequential(layers)


def peak_above_current(device, fn):
    """Runs fn(); returns (peak bytes above the bytes allocated before, seconds)."""
    tf.config.experimental.reset_memory_stats(device)
    before = tf.config.experimental.get_memory_info(device)["current"]
    start = time.perf_counter()
    result = fn()
    # Materialise: the values must exist (and be counted) before we look.
    for tensor in tf.nest.flatten(result):
        if hasattr(tensor, "numpy"):
            tensor.numpy()
    seconds = time.perf_counter() - start
    peak = tf.config.experimental.get_memory_info(device)["peak"]
    del result
    return peak - before, seconds


def measure(rule, args, x, y):
    with tf.device(args.device):
        network = build_network(args.depth, args.units, x.shape[1], args.classes, 0)
        model = rule(network, seed=0)
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))
        x_t, y_t = tf.constant(x), tf.constant(y)
        results = {}

        def eager():
            return model.compute_updates(x_t, y_t)

        graph_fn = tf.function(lambda a, b: model.compute_updates(a, b))

        def graph():
            return graph_fn(x_t, y_t)

        data = tf.data.Dataset.from_tensors((x_t, y_t))

        def fit():
            model.fit(data, epochs=1, verbose=0)
            return []

        cases = [("eager compute_updates", eager), ("tf.function compute_updates", graph)]
        if not args.skip_fit:
            cases.append(("fit train step", fit))
        for name, fn in cases:
            fn()  # warm-up: tracing, optimizer slots, oneDNN caches
            results[name] = peak_above_current(args.device, fn)
        return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=6, help="hidden layers")
    parser.add_argument("--units", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--input-dim", type=int, default=784)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--device", default="CPU:0")
    parser.add_argument("--skip-fit", action="store_true")
    args = parser.parse_args(argv)
    if "tensorflow" in sys.modules and os.environ.get("TF_CPU_ALLOCATOR_USE_BFC") != "true":
        print("warning: TF_CPU_ALLOCATOR_USE_BFC is not 'true'; CPU stats may be 0")

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(args.batch, args.input_dim)).astype("float32")
    y = rng.integers(0, args.classes, size=args.batch)
    activation_mib = args.depth * args.batch * args.units * 4 / MIB
    print(
        f"MLP {args.input_dim}→{args.depth}×{args.units}→{args.classes}, batch "
        f"{args.batch}, float32, device {args.device}, TF {tf.__version__}, "
        f"Keras {keras.__version__}; one hidden activation = "
        f"{activation_mib / args.depth:.1f} MiB, all {args.depth} = {activation_mib:.1f} MiB"
    )
    print("peak allocator memory above the pre-call level (MiB), and wall time (s)")
    measured = {
        rule.__name__: measure(rule, args, x, y)
        for rule in (pepita_keras.PEPITA, pepita_keras.MEMPEPITA)
    }
    header = f"{'measurement':32s} {'PEPITA':>16s} {'MEMPEPITA':>16s} {'ratio':>7s}"
    print(header)
    print("-" * len(header))
    for case in measured["PEPITA"]:
        (p_bytes, p_s), (m_bytes, m_s) = measured["PEPITA"][case], measured["MEMPEPITA"][case]
        print(
            f"{case:32s} {p_bytes / MIB:8.1f} ({p_s:5.2f}s) {m_bytes / MIB:8.1f} "
            f"({m_s:5.2f}s) {p_bytes / max(m_bytes, 1):7.2f}"
        )
    return measured


if __name__ == "__main__":
    main()
