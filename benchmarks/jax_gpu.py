"""PEPITA on a GPU with Keras-JAX: samples/s and 100-epoch run times, beside backprop and PyTorch.

Measures, in one process on one device (real MNIST, the paper's FC net
784-1024-10 and the conv net of `conv_mnist_pepita`):

- training samples/s of one `fit` epoch over the 60,000 training images
  from NumPy arrays (median of `--repeats` epochs after a warm-up epoch that
  compiles every shape), for:
  - `pepita_keras.PEPITA` with `steps_per_execution=1` (Keras's loop: one
    jitted step per dispatch) and with the GPU default of 128 (one
    `jax.lax.scan` over 128 steps per dispatch, `jax_step.scanned_steps`);
  - Keras backprop: the same network compiled with sparse categorical
    cross-entropy, Keras's own `train_step` and step loop;
  - (FC only) `benchmarks/torch_pepita.TorchPEPITA`, a plain PyTorch loop of
    the paper's equations with the data on the GPU and one Python step per
    batch;
- (FC, `--resident`) PEPITA's own train step scanned over a whole epoch
  whose data stays on the device (one dispatch per epoch, batches gathered
  there by a permutation), outside `fit`: the step's ceiling without Keras's
  input path, which sends NumPy batches from the host every epoch. The
  PyTorch loop keeps its data on the GPU too; the gap between this row and
  the `fit` rows is what the input path costs;
- the wall time of a 100-epoch run of a shipped config (`fit` over the
  config's epochs with the test set evaluated after every epoch), and its
  final test accuracy. `pepita reproduce` adds checkpoints and MLflow logging
  per epoch on top of this.

Variants are timed interleaved (rotating order), so drifts hit all alike.

Usage (Keras-JAX on a GPU, no TensorFlow needed; see ../shared/device/README.md):

    KERAS_BACKEND=jax python benchmarks/jax_gpu.py --data-dir DIR --output gpu.json

Prints markdown tables; `--output` also writes every figure as JSON.
"""

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402


def _pepita(config_name, steps_per_execution):
    """A PEPITA model of a shipped config's network, SGD(0.01, momentum 0.9)."""
    import keras

    from pepita_keras import build, experiment_config

    config = experiment_config.load_config(config_name)
    model = build.rule_class(config.rule)(
        build.build_network(config, 0), seed=0, **dict(config.rule_kwargs))
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  metrics=["accuracy"], steps_per_execution=steps_per_execution)
    return model


def _keras_backprop(config_name, steps_per_execution):
    import keras

    from pepita_keras import build, experiment_config

    network = build.build_network(experiment_config.load_config(config_name), 0)
    network.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                    loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                    steps_per_execution=steps_per_execution)
    return network


class _Torch:
    """`TorchPEPITA` on the GPU with its data resident there."""

    def __init__(self, x, y):
        import torch
        from torch_pepita import TorchPEPITA

        self.torch = torch
        self.model = TorchPEPITA(seed=0, device="cuda")
        self.x = torch.from_numpy(x.reshape(len(x), -1)).cuda()
        self.y = torch.from_numpy(y.astype(np.int64)).cuda()

    def epoch(self, batch):
        self.model.fit_epoch(self.x, self.y, batch)
        self.torch.cuda.synchronize()
        return (len(self.x) // batch) * batch


RESIDENT = "pepita_keras PEPITA train_step, data on the device, one scan per epoch (outside fit)"


class _ResidentEpoch:
    """PEPITA's train step, `jax.lax.scan`ned over an epoch of batches gathered on the device.

    Benchmark only: the same `train_step` that `fit` runs, with the data put
    on the device once and each epoch one jitted call (a permutation drawn
    on the device, the last partial batch dropped as in the PyTorch loop).
    `sync()` writes the state back into the model's variables, so that it can
    be evaluated like any Keras model.
    """

    def __init__(self, model, x, y, batch):
        import jax

        self.jax, self.batch = jax, batch
        model.fit(x[:batch], y[:batch], batch_size=batch, epochs=1, verbose=0)  # builds it all
        self.groups = (model.trainable_variables, model.non_trainable_variables,
                       model.optimizer.variables, model.metrics_variables)
        # Copies: the jitted epoch donates the state's buffers, the model keeps its own.
        self.state = tuple([jax.numpy.array(v.value, copy=True) for v in group]
                           for group in self.groups)
        self.x, self.y = jax.device_put(x), jax.device_put(y)
        self.key = jax.random.PRNGKey(0)
        step, batches = model.train_step, len(x) // batch

        def epoch(state, x_all, y_all, key):
            order = jax.random.permutation(key, len(x_all))[:batches * batch]

            def body(carry, indices):
                _, carry = step(carry, (x_all[indices], y_all[indices]))
                return carry, None

            state, _ = jax.lax.scan(body, state, order.reshape(batches, batch))
            return state

        self.epoch_function = jax.jit(epoch, donate_argnums=0)

    def __call__(self):
        self.key, key = self.jax.random.split(self.key)
        self.state = self.epoch_function(self.state, self.x, self.y, key)
        self.jax.block_until_ready(self.state)
        return (len(self.x) // self.batch) * self.batch

    def sync(self):
        for group, values in zip(self.groups, self.state):
            for variable, value in zip(group, values):
                variable.assign(value)


def throughput(config_name, x, y, batches, repeats, torch_loop, resident=False):
    """`[{batch, implementation, samples_per_s, vs_torch}]` for one network."""
    rows = []
    for batch in batches:
        variants = {
            "pepita_keras PEPITA, steps_per_execution=1": _pepita(config_name, 1),
            "pepita_keras PEPITA, steps_per_execution=128 (GPU default)": _pepita(config_name, 128),
            "Keras backprop, steps_per_execution=1": _keras_backprop(config_name, 1),
            "Keras backprop, steps_per_execution=128": _keras_backprop(config_name, 128),
        }
        runners = {name: _fit_epoch(model, x, y, batch) for name, model in variants.items()}
        if resident:
            runners[RESIDENT] = _ResidentEpoch(_pepita(config_name, 1), x, y, batch)
        if torch_loop:
            torch_model = _Torch(x, y)
            runners["PyTorch loop (TorchPEPITA, data on the GPU)"] = (
                lambda: torch_model.epoch(batch))
        for run in runners.values():  # warm-up: compile every shape
            run()
        times = {name: [] for name in runners}
        names = list(runners)
        samples = {}
        for r in range(repeats):
            for name in names[r % len(names):] + names[: r % len(names)]:
                start = time.perf_counter()
                samples[name] = runners[name]()
                times[name].append(time.perf_counter() - start)
        rates = {name: samples[name] / statistics.median(times[name]) for name in names}
        reference = next((rates[n] for n in names if n.startswith("PyTorch")), None)
        for name in names:
            row = {"net": config_name, "batch": batch, "implementation": name,
                   "samples_per_s": rates[name],
                   "vs_torch": rates[name] / reference if reference else None}
            rows.append(row)
            ratio = f"{row['vs_torch']:.2f}" if reference else "–"
            print(f"| {config_name} | {batch} | {name} | {rates[name]:,.0f} | {ratio} |",
                  flush=True)
    return rows


def _fit_epoch(model, x, y, batch):
    def run():
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=True)
        return len(x)
    return run


def full_run(config_name, x, y, x_test, y_test, epochs=None):
    """Wall time and final test accuracy of `fit` over a shipped config's epochs."""
    import keras

    from pepita_keras import build, experiment_config

    config = experiment_config.load_config(config_name)
    if epochs:
        config = config.replace(epochs=epochs)
    keras.utils.set_random_seed(0)
    model = build.build_model(
        config, 0, build.steps_per_epoch(len(x), config.batch_size))
    start = time.perf_counter()
    history = model.fit(x, y, batch_size=config.batch_size, epochs=config.epochs,
                        validation_data=(x_test, y_test),
                        validation_batch_size=config.eval_batch_size, verbose=0)
    wall = time.perf_counter() - start
    row = {"config": config_name, "epochs": config.epochs, "wall_s": wall,
           "final_test_accuracy": 100 * history.history["val_accuracy"][-1],
           "steps_per_execution": model.steps_per_execution}
    print(f"| {config_name} | {config.epochs} | {wall:.1f} s | "
          f"{row['final_test_accuracy']:.2f} |", flush=True)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="folder holding mnist/ (IDX files)")
    parser.add_argument("--batches", nargs="+", type=int, default=[64, 1024])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full-runs", nargs="*", default=["fc_mnist_pepita", "conv_mnist_pepita"],
                        help="shipped configs to train for all their epochs")
    parser.add_argument("--full-run-epochs", type=int, default=None,
                        help="train the full runs this many epochs instead (quick checks)")
    parser.add_argument("--examples", type=int, default=None,
                        help="use only this many training images (quick checks)")
    parser.add_argument("--skip-conv-throughput", action="store_true")
    parser.add_argument("--resident", action="store_true",
                        help="also time PEPITA's step over an epoch kept on the device (FC)")
    parser.add_argument("--output", default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)

    import jax
    import keras

    from pepita_keras import datasets
    from pepita_keras.store import provenance

    (x, y), (x_test, y_test) = datasets.load_arrays("mnist", args.data_dir)
    x, y = x[:args.examples], y[:args.examples]
    env = provenance.environment_info()
    report = {"device": [d.device_kind for d in jax.devices()], "hardware": env["hardware"],
              "jax": jax.__version__, "keras": keras.__version__,
              "backend": keras.backend.backend(), "throughput": [], "full_runs": []}

    def save():
        if args.output:
            with open(args.output, "w") as f:
                json.dump(report, f, indent=1)

    print(f"{env['hardware']}; JAX {jax.__version__}, Keras {keras.__version__} "
          f"({keras.backend.backend()})", flush=True)
    try:
        import torch
        torch_loop = torch.cuda.is_available()
        report["torch"] = torch.__version__
    except ImportError:
        torch_loop = False
    print("\n| net | batch | implementation | samples/s | vs PyTorch loop |\n|---|---|---|---|---|")
    report["throughput"] += throughput("fc_mnist_pepita", x, y, args.batches, args.repeats,
                                       torch_loop, resident=args.resident)
    save()
    if not args.skip_conv_throughput:
        report["throughput"] += throughput("conv_mnist_pepita", x, y, args.batches[:1],
                                           args.repeats, False)
        save()
    print("\n| config | epochs | wall (fit + test each epoch) | final test accuracy |\n"
          "|---|---|---|---|")
    for name in args.full_runs:
        report["full_runs"].append(full_run(name, x, y, x_test, y_test,
                                            args.full_run_epochs))
        save()
    return report


if __name__ == "__main__":
    main()
