"""Training throughput of PEPITA and its rule family against plain Keras backprop.

Prints, in one run on one machine, samples/s of `model.fit` for every rule
that `pepita_keras` exports (PEPITA, FeedbackAlignment, DRTP, MEMPEPITA, ...)
and for "BP": the same network compiled with a cross-entropy loss and trained
by Keras's own `fit` (the reference every ratio is taken against). Nets: the
paper's FC and conv nets; batch 64 and 1024; `jit_compile` off and on.

Because the machine may be shared, every variant of one (net, batch) cell is
timed in the same process, *interleaved* (one epoch of each variant in turn,
in a rotating order, repeated), and medians are reported: ratios are robust
to slow drifts in background load, absolute figures are not.

It also reports:
- FLOPs per sample of each `train_step`, counted by TensorFlow's graph
  profiler (`tf.compat.v1.profiler`, matmul/conv plus element-wise ops), and
  the achieved GFLOP/s;
- the machine's matmul peak on the same shapes: a `tf.linalg.matmul`
  microbenchmark of the network's forward GEMMs (`x @ W`) and update GEMMs
  (`x^T @ delta`, im2col shapes for Conv2D), timed interleaved with the
  models, and each model's fraction of it;
- peak RSS of the process (and, with `--rss-per-model`, of a fresh process
  per model).

Usage:

    python benchmarks/throughput.py                      # everything, ~10 min
    python benchmarks/throughput.py --nets fc --batches 64 --jit off --repeats 3
    python benchmarks/throughput.py --output benchmarks/RESULTS.md
"""

import argparse
import datetime
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import pepita_keras  # noqa: E402
from pepita_keras import paper_networks  # noqa: E402

NETS = {"fc": paper_networks.paper_fc, "conv": paper_networks.paper_conv}
# Rules by the name pepita_keras exports them; missing ones are skipped.
RULES = ("PEPITA", "FeedbackAlignment", "DRTP", "MEMPEPITA", "Backprop")
INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10


# ----------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------
def training_arrays(source, num_examples, seed=0):
    """MNIST-shaped float32 images in [0, 1] and int32 labels."""
    if source == "mnist":
        from pepita_keras import datasets

        (x, y), _ = datasets.load_arrays("mnist")
        return x[:num_examples], y[:num_examples]
    rng = np.random.default_rng(seed)
    x = rng.random((num_examples,) + INPUT_SHAPE, dtype=np.float32)
    y = rng.integers(0, NUM_CLASSES, num_examples).astype("int32")
    return x, y


def pipeline(x, y, batch_size):
    """In-memory tf.data: batch-before-map gather, prefetch, autotune off."""
    x, y = tf.constant(x), tf.constant(y)
    ds = tf.data.Dataset.range(len(y)).batch(batch_size, drop_remainder=True)
    ds = ds.map(lambda i: (tf.gather(x, i), tf.gather(y, i)))
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.prefetch(2).with_options(options)


# ----------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------
def available_rules():
    """`{name: class}` of the rules this pepita_keras exports, and the missing."""
    found, missing = {}, []
    for name in RULES:
        cls = getattr(pepita_keras, name, None)
        if cls is None:
            missing.append(name)
        else:
            found[name] = cls
    return found, missing


def build_model(rule, net, jit_compile, steps_per_execution=1, dropout=None):
    """A compiled model: `rule` is "BP" (plain Keras) or a pepita_keras name."""
    kwargs = {} if dropout is None or net != "fc" else {"dropout": dropout}
    network = NETS[net](INPUT_SHAPE, NUM_CLASSES, seed=0, **kwargs)
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    common = dict(
        optimizer=optimizer,
        metrics=["accuracy"],
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    if rule == "BP":
        network.compile(loss="sparse_categorical_crossentropy", **common)
        return network
    cls = available_rules()[0][rule]
    model = cls(network, seed=0)
    model.compile(**common)
    return model


def step_flops(model, batch_size):
    """FLOPs of one `train_step`, from TensorFlow's graph profiler."""
    spec = (
        tf.TensorSpec((batch_size,) + INPUT_SHAPE, tf.float32),
        tf.TensorSpec((batch_size,), tf.int32),
    )
    graph = tf.function(model.train_step).get_concrete_function(spec).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return tf.compat.v1.profiler.profile(graph, options=options).total_float_ops


# ----------------------------------------------------------------------
# Matmul peak on the network's shapes
# ----------------------------------------------------------------------
def gemm_shapes(net, batch_size):
    """(m, k, n) of each learnable layer's forward GEMM (im2col for Conv2D)."""
    network = NETS[net](INPUT_SHAPE, NUM_CLASSES, seed=0)
    shapes = []
    for layer in network.layers:
        if isinstance(layer, keras.layers.Dense):
            shapes.append((batch_size, layer.kernel.shape[0], layer.kernel.shape[1]))
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            _, ho, wo, _ = layer.output.shape
            shapes.append((batch_size * ho * wo, kh * kw * cin, cout))
    return shapes


class MatmulPeak:
    """Times `x @ W` and `x^T @ delta` for every layer shape, as one function.

    Its GFLOP/s is what `tf.linalg.matmul` achieves on exactly the GEMMs a
    training step is made of: the ceiling for a step built from them.
    """

    def __init__(self, shapes):
        self.shapes = shapes
        rng = np.random.default_rng(0)
        self.operands = [
            (
                tf.constant(rng.random((m, k), dtype=np.float32)),
                tf.constant(rng.random((k, n), dtype=np.float32)),
                tf.constant(rng.random((m, n), dtype=np.float32)),
            )
            for m, k, n in shapes
        ]
        self.flops = sum(2 * 2 * m * k * n for m, k, n in shapes)

        @tf.function
        def run(operands):
            outs = []
            for a, w, d in operands:
                outs.append(tf.linalg.matmul(a, w))
                outs.append(tf.linalg.matmul(a, d, transpose_a=True))
            return outs

        self.run = run

    def seconds(self, repeats):
        start = time.perf_counter()
        for _ in range(repeats):
            out = self.run(self.operands)
        _ = [o.numpy() for o in out[-1:]]
        return (time.perf_counter() - start) / repeats


# ----------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------
def fit_seconds(model, dataset):
    start = time.perf_counter()
    model.fit(dataset, epochs=1, verbose=0, shuffle=False)
    return time.perf_counter() - start


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_cell(variants, dataset, steps, repeats, peak):
    """Interleaved medians: {name: seconds per epoch}, and the peak's s/step."""
    for model in variants.values():  # trace / compile, warm caches
        fit_seconds(model, dataset)
    peak.seconds(3)
    names = list(variants)
    times = {name: [] for name in names}
    peak_times = []
    for r in range(repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            times[name].append(fit_seconds(variants[name], dataset))
        peak_times.append(peak.seconds(max(3, steps // 4)))
    return (
        {name: statistics.median(t) for name, t in times.items()},
        statistics.median(peak_times),
    )


def rss_of_fresh_process(rule, net, batch, jit, data, steps):
    """Peak RSS (MiB) of a fresh process that fits one model for one epoch."""
    code = (
        "import sys, runpy; sys.argv = ['throughput.py', '--child', "
        f"{rule!r}, '--nets', {net!r}, '--batches', '{batch}', '--jit', "
        f"{'on' if jit else 'off'!r}, '--data', {data!r}, '--steps', '{steps}']; "
        f"runpy.run_path({__file__!r}, run_name='__main__')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    for line in out.stdout.splitlines():
        if line.startswith("RSS_MIB "):
            return float(line.split()[1])
    return float("nan")


# ----------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------
def machine_info():
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "date (UTC)": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M"
        ),
        "CPU": f"{cpu}, {os.cpu_count()} logical cores",
        "load average at start": " ".join(f"{v:.2f}" for v in os.getloadavg()),
        "Python": platform.python_version(),
        "TensorFlow": tf.__version__,
        "Keras": keras.__version__,
        "pepita_keras": pepita_keras.__version__,
        "NumPy": np.__version__,
    }


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nets", nargs="+", default=["fc", "conv"], choices=NETS)
    parser.add_argument("--batches", nargs="+", type=int, default=[64, 1024])
    parser.add_argument("--jit", choices=["off", "on", "both"], default="both")
    parser.add_argument("--rules", nargs="+", default=None, help="subset of rules")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--steps", type=int, default=None,
        help="steps per timed epoch (default: 100 at batch 64, 10 at 1024)",
    )
    parser.add_argument("--steps-per-execution", type=int, default=1)
    parser.add_argument(
        "--dropouts", nargs="+", type=float, default=None,
        help="FC dropout rates to compare (default: the paper's 0.1 only)",
    )
    parser.add_argument("--data", choices=["synthetic", "mnist"], default="synthetic")
    parser.add_argument("--rss-per-model", action="store_true")
    parser.add_argument("--output", default=None, help="write a markdown report")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    jits = {"off": [False], "on": [True], "both": [False, True]}[args.jit]
    rules, missing = available_rules()
    if args.rules:
        rules = {k: v for k, v in rules.items() if k in args.rules}
    if args.child:  # --rss-per-model worker: one model, one epoch, print RSS
        net, batch = args.nets[0], args.batches[0]
        x, y = training_arrays(args.data, batch * args.steps)
        model = build_model(args.child, net, jits[0])
        model.fit(pipeline(x, y, batch), epochs=1, verbose=0)
        print(f"RSS_MIB {peak_rss_mib():.1f}")
        return

    info = machine_info()
    print("\n".join(f"{k}: {v}" for k, v in info.items()))
    if missing:
        print(f"Skipped (not exported by this pepita_keras): {', '.join(missing)}")
    names = ["BP"] + list(rules)
    rows = []
    for net in args.nets:
        for batch in args.batches:
            steps = args.steps or (100 if batch <= 128 else 10)
            x, y = training_arrays(args.data, batch * steps)
            dataset = pipeline(x, y, batch)
            peak = MatmulPeak(gemm_shapes(net, batch))
            for jit in jits:
                variants, flops = {}, {}
                dropouts = args.dropouts if args.dropouts and net == "fc" else [None]
                for name in names:
                    for dropout in dropouts:
                        label = name if dropout is None else f"{name} dropout={dropout:g}"
                        try:
                            variants[label] = build_model(
                                name, net, jit, args.steps_per_execution, dropout
                            )
                            variants[label].fit(dataset.take(1), epochs=1, verbose=0)
                            flops[label] = step_flops(variants[label], batch)
                        except Exception as error:  # report, benchmark the others
                            print(f"{label} on {net}: skipped ({type(error).__name__}: {error})")
                            variants.pop(label, None)
                medians, peak_step = time_cell(
                    variants, dataset, steps, args.repeats, peak
                )
                peak_gflops = peak.flops / peak_step / 1e9
                for name, seconds in medians.items():
                    # BP with the same dropout suffix, if any.
                    reference = "BP" + name[len(name.split(" ")[0]):]
                    samples = batch * steps / seconds
                    gflops = flops[name] * steps / seconds / 1e9
                    row = dict(
                        net=net, batch=batch, jit="on" if jit else "off", rule=name,
                        samples_per_s=samples, ms_per_step=seconds / steps * 1e3,
                        ratio=seconds / medians[reference]
                        if reference in medians
                        else math.nan,
                        mflop_per_sample=flops[name] / batch / 1e6, gflops=gflops,
                        peak_gflops=peak_gflops, peak_fraction=gflops / peak_gflops,
                        rss=math.nan,
                    )
                    if args.rss_per_model:
                        row["rss"] = rss_of_fresh_process(
                            name, net, batch, jit, args.data, min(steps, 20)
                        )
                    rows.append(row)
                    print(format_row(row), flush=True)
    info["peak RSS of this benchmark process"] = f"{peak_rss_mib():.0f} MiB"
    print(f"peak RSS of this process: {peak_rss_mib():.0f} MiB")
    if args.output:
        write_report(args, info, missing, rows)


HEADER = (
    "| net | batch | jit | rule | samples/s | ms/step | time / BP | "
    "MFLOP/sample | GFLOP/s | matmul peak GFLOP/s | % of peak | peak RSS MiB |"
)


def format_row(row):
    return (
        f"| {row['net']} | {row['batch']} | {row['jit']} | {row['rule']} | "
        f"{row['samples_per_s']:,.0f} | {row['ms_per_step']:.2f} | "
        f"{row['ratio']:.2f} | {row['mflop_per_sample']:.2f} | "
        f"{row['gflops']:.1f} | {row['peak_gflops']:.1f} | "
        f"{100 * row['peak_fraction']:.0f}% | "
        + ("–" if math.isnan(row["rss"]) else f"{row['rss']:.0f}")
        + " |"
    )


def write_report(args, info, missing, rows):
    lines = [
        "## Training throughput (`benchmarks/throughput.py`)",
        "",
        "Command: `python benchmarks/throughput.py "
        + " ".join(sys.argv[1:])
        + "`",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    if missing:
        lines.append(f"- not exported by this pepita_keras, skipped: {', '.join(missing)}")
    lines += [
        f"- data: {args.data}, MNIST-shaped (28×28×1, 10 classes), in-memory "
        "tf.data (batch-before-map gather, prefetch 2, autotune off)",
        "- optimizer SGD(0.01, momentum=0.9), metrics accuracy, "
        f"steps_per_execution={args.steps_per_execution}; BP = the same network "
        "with sparse categorical cross-entropy and Keras's own `train_step`",
        f"- each cell: medians of {args.repeats} interleaved one-epoch `fit` "
        "calls per variant (rotating order); time / BP = epoch time over BP's "
        "epoch time at the same jit setting",
        "- MFLOP/sample: TF graph profiler count of one `train_step`; matmul "
        "peak: `tf.linalg.matmul` on the layers' forward and update GEMM shapes "
        "(im2col for Conv2D), timed interleaved with the models",
        "",
        HEADER,
        "|" + "---|" * (HEADER.count("|") - 1),
    ]
    lines += [format_row(row) for row in rows]
    lines.append("")
    with open(args.output, "a" if os.path.exists(args.output) else "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
