"""Reproduction epochs side by side: conv vs FC, PEPITA vs backprop, input checks on/off, memory.

Each variant trains real MNIST exactly as a `pepita reproduce` epoch does
(the cell's model from `pepita_keras.build`, the per-(seed, epoch) batch
order of `input_pipeline.EpochData`, the per-epoch test evaluation, the
`TerminateOnNaN` and alignment-diagnostics callbacks), in its own process,
and the variants take turns round by round, so a change in the machine's
load hits them all alike. Reported per variant: the median epoch time
(the first, tracing epoch excluded), the projected 100-epoch seed, the
peak RSS, and the RSS after each epoch (growth across epochs would be a
leak). The ratios the speed targets are stated in come from these medians.

Each variant checks the data's values once, as `pepita reproduce` does
(`EpochData.check_values`, then `model.check_batch_values = False`);
`checks=step` checks them inside every step instead (the default for a
model given arbitrary data), to measure what the per-step checks cost.

Usage:

    PEPITA_DATA_DIR=../shared/data python benchmarks/epoch_costs.py
    PEPITA_DATA_DIR=../shared/data python benchmarks/epoch_costs.py --rounds 3 --epochs 3
    PEPITA_DATA_DIR=../shared/data python benchmarks/epoch_costs.py \\
        --variants fc_mnist_pepita --epochs 20 --rounds 1     # the memory check
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

DEFAULT_VARIANTS = ("conv_mnist_pepita", "conv_mnist_bp", "fc_mnist_pepita", "fc_mnist_bp",
                    "fc_mnist_pepita:checks=step", "conv_mnist_pepita:checks=step")


def _rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_variant(variant, epochs, data_dir):
    """Trains one variant for `epochs` + 1 epochs in this process; returns its figures."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import resource

    import keras

    from pepita_keras import build, callbacks, experiment_config, input_pipeline

    cell, _, option = variant.partition(":")
    if option not in ("", "checks=step"):
        raise SystemExit(f"unknown option {option!r} (known: checks=step)")
    config = experiment_config.load_config(cell)
    arrays = input_pipeline.load_config_arrays(config, data_dir)
    data = input_pipeline.EpochData(arrays, config.batch_size, config.eval_batch_size)
    keras.utils.set_random_seed(0)
    model = build.build_model(config, 0, data.steps_per_epoch)
    if option != "checks=step":  # as `pepita reproduce`: the values checked once
        data.check_values(config.num_classes)
        model.check_batch_values = False
    hooks = [keras.callbacks.TerminateOnNaN(), callbacks.AlignmentDiagnostics(probe=data.probe)]
    times, rss = [], []
    for epoch in range(epochs + 1):
        start = time.perf_counter()
        model.fit(data.train(0, epoch), validation_data=data.test, initial_epoch=epoch,
                  epochs=epoch + 1, shuffle=False, verbose=0, callbacks=hooks)
        times.append(time.perf_counter() - start)
        rss.append(_rss_mib())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"variant": variant, "epoch_s": times[1:], "trace_epoch_s": times[0],
            "rss_mib": rss, "peak_rss_mib": peak, "load": os.getloadavg()[0]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS),
                        help="cell names, optionally with ':checks=step'")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per process")
    parser.add_argument("--rounds", type=int, default=2, help="processes per variant, interleaved")
    parser.add_argument("--data-dir", default=os.environ.get("PEPITA_DATA_DIR"))
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(run_variant(args.worker, args.epochs, args.data_dir)))
        return
    if not args.data_dir:
        raise SystemExit("set PEPITA_DATA_DIR (or --data-dir) to a folder holding mnist/")

    from pepita_keras.store import provenance

    figures = {variant: [] for variant in args.variants}
    began = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_before = os.getloadavg()
    for round_ in range(args.rounds):
        order = args.variants[round_ % len(args.variants):] + \
            args.variants[:round_ % len(args.variants)]
        for variant in order:
            out = subprocess.run(
                [sys.executable, __file__, "--worker", variant, "--epochs", str(args.epochs),
                 "--data-dir", args.data_dir], capture_output=True, text=True, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            figures[variant].append(result)
            print(f"round {round_ + 1}: {variant}: epochs "
                  f"{', '.join(f'{t:.2f}' for t in result['epoch_s'])} s, "
                  f"peak RSS {result['peak_rss_mib']:.0f} MiB, load {result['load']:.1f}",
                  file=sys.stderr, flush=True)

    median = {v: statistics.median(t for r in runs for t in r["epoch_s"])
              for v, runs in figures.items()}
    print(f"- date: {began}; CPU: {provenance.cpu_model()}, "
          f"{os.cpu_count()} logical cores; load average before "
          f"{' '.join(f'{x:.2f}' for x in load_before)}, after "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"- {args.rounds} process(es) per variant, interleaved; {args.epochs} timed epoch(s) "
          "each after a tracing epoch; epoch = fit + test evaluation + callbacks\n")
    print("| variant | median epoch s | 100 epochs (min) | peak RSS MiB | RSS after each epoch MiB "
          "| largest rise between later epochs MiB |")
    print("|---|---|---|---|---|---|")
    for variant, runs in figures.items():
        rss = runs[-1]["rss_mib"]
        # After the tracing epoch and the first timed one, a leak shows as a steady rise.
        later = max((b - a for a, b in zip(rss[2:], rss[3:])), default=float("nan"))
        print(f"| {variant} | {median[variant]:.2f} | {median[variant] * 100 / 60:.1f} | "
              f"{max(r['peak_rss_mib'] for r in runs):.0f} | "
              f"{' '.join(f'{value:.0f}' for value in rss)} | {later:.1f} |")
    ratios = [("conv PEPITA / conv BP", "conv_mnist_pepita", "conv_mnist_bp"),
              ("conv PEPITA / FC PEPITA", "conv_mnist_pepita", "fc_mnist_pepita"),
              ("FC PEPITA / FC BP", "fc_mnist_pepita", "fc_mnist_bp"),
              ("FC PEPITA checks per step / once", "fc_mnist_pepita:checks=step",
               "fc_mnist_pepita"),
              ("conv PEPITA checks per step / once", "conv_mnist_pepita:checks=step",
               "conv_mnist_pepita")]
    print("\n| ratio | value |\n|---|---|")
    for label, top, bottom in ratios:
        if top in median and bottom in median:
            print(f"| {label} | {median[top] / median[bottom]:.3f} |")


if __name__ == "__main__":
    main()
