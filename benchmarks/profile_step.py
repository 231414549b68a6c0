"""Where a training step's time goes: TF profiler trace of `fit`, per op type.

Traces one `fit` epoch of PEPITA (or BP, the plain Keras `fit` of the same
network) with `tf.profiler.experimental` and prints the time per step spent
in each TensorFlow op type (summed over the executor threads), next to the
step's wall time. The trace is left in `--logdir` for TensorBoard's profile
tab. Summarising needs the `xprof` package (`pip install xprof`, the
TensorBoard profile plugin's converter); without it only the trace is written.

With `--cell`, the model is the one `pepita reproduce <cell>` trains (the
package's one factory, `pepita_keras.build.build_model`: network, rule,
optimizer and schedule of the cell), at the cell's batch size.

Usage:

    python benchmarks/profile_step.py --rule PEPITA --batch 64
    python benchmarks/profile_step.py --rule BP --batch 1024 --top 15
    python benchmarks/profile_step.py --cell conv_mnist_pepita
    python benchmarks/profile_step.py --cell conv_mnist_bp
"""

import argparse
import collections
import glob
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import pepita_keras  # noqa: E402
from pepita_keras import paper_networks  # noqa: E402

# Host-side bookkeeping events of the trace, not ops.
_NOT_OPS = ("ThreadpoolListener", "ExecutorState", "ParallelFor", "Iterator",
            "ExecutorDoneCallback")


def op_times(logdir):
    """{op type: total µs} over the executor threads of the newest trace."""
    from xprof.convert import raw_to_tool_data

    path = sorted(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True))[-1]
    data, _ = raw_to_tool_data.xspace_to_tool_data([path], "trace_viewer", {})
    events = json.loads(data)
    events = events["traceEvents"] if isinstance(events, dict) else events
    threads = {
        (e["pid"], e["tid"]): e["args"]["name"]
        for e in events
        if e.get("ph") == "M" and e.get("name") == "thread_name"
    }
    totals = collections.Counter()
    for event in events:
        if event.get("ph") != "X":
            continue
        thread = threads.get((event["pid"], event["tid"]), "")
        name = event["name"].split(":")[0]
        if thread.startswith("tf_Compute") and not name.startswith(_NOT_OPS):
            totals[name] += event.get("dur", 0)
    return totals


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rule", default="PEPITA", help="'BP' or a pepita_keras rule")
    parser.add_argument("--net", choices=["fc", "conv"], default="fc")
    parser.add_argument("--cell", default=None,
                        help="profile this reproduction cell's model instead (sets rule, net, batch)")
    parser.add_argument("--batch", type=int, default=None, help="default 64, or the cell's")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--logdir", default="/tmp/pepita_profile")
    args = parser.parse_args(argv)

    config = None
    if args.cell:
        from pepita_keras import experiment_config

        config = experiment_config.load_config(args.cell)
        args.rule, args.net = config.rule, config.architecture
        args.batch = args.batch or config.batch_size
    args.batch = args.batch or 64
    rng = np.random.default_rng(0)
    n = args.batch * args.steps
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, n).astype("int32")
    options = tf.data.Options()
    options.autotune.enabled = False
    dataset = (tf.data.Dataset.from_tensor_slices((x, y)).batch(args.batch)
               .prefetch(2).with_options(options))
    network = (paper_networks.paper_fc if args.net == "fc" else paper_networks.paper_conv)(seed=0)
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    if config is not None:
        from pepita_keras import build

        model = build.build_model(config, 0, args.steps)
    elif args.rule == "BP":
        model = network
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
    else:
        model = getattr(pepita_keras, args.rule)(network, seed=0)
        model.compile(optimizer=optimizer, metrics=["accuracy"])
    model.fit(dataset, epochs=1, verbose=0)  # trace the step first
    start = time.perf_counter()
    model.fit(dataset, epochs=1, verbose=0)
    plain = (time.perf_counter() - start) / args.steps
    tf.profiler.experimental.start(args.logdir)
    start = time.perf_counter()
    model.fit(dataset, epochs=1, verbose=0)
    traced = (time.perf_counter() - start) / args.steps
    tf.profiler.experimental.stop()
    print(f"{args.cell or args.rule} {args.net} batch {args.batch}: {plain * 1e3:.2f} ms/step "
          f"({traced * 1e3:.2f} while tracing), load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}; trace in {args.logdir}")
    try:
        totals = op_times(args.logdir)
    except ImportError:
        print("install `xprof` to summarise the trace by op type")
        return
    total = sum(totals.values())
    print(f"op time summed over executor threads: {total / args.steps / 1e3:.2f} ms/step")
    print("| op | ms/step | share |")
    print("|---|---|---|")
    for name, micros in totals.most_common(args.top):
        print(f"| {name} | {micros / args.steps / 1e3:.2f} | {micros / total:.0%} |")


if __name__ == "__main__":
    main()
