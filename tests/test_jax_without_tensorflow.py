"""The JAX path works where TensorFlow is not installed.

One subprocess runs without `KERAS_BACKEND` (so `import pepita_keras` must
choose JAX itself) and with a meta-path finder that
makes `import tensorflow` (and tfds, tensorboard) raise
`ModuleNotFoundError`, as on a GPU box with Keras-JAX only. In it:
`import pepita_keras`, `datasets.load` / `load_arrays` / `EpochData` on tiny
MNIST IDX files this test writes, every rule's `fit` (with the callbacks),
`evaluate`, `predict`, `compute_updates`, `.keras` save and load,
`pepita reproduce --synthetic` into a temporary MLflow store and
`pepita tune --smoke`. Expectations come from the data written here, from
documented contracts (`epoch_order`, per-epoch reshuffling by seed) and from
this TensorFlow process: it loads the models the JAX side saved and must get
the same predictions and updates, and its `EpochData` must yield the same
batches.
"""

import gzip
import importlib.util
import json
import os
import struct
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import pepita_keras
from pepita_keras import input_pipeline
from pepita_keras.store import tracking

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                       reason="jax is not installed (pip install 'pepita_keras[jax]')"),
    pytest.mark.skipif(importlib.util.find_spec("mlflow") is None
                       or importlib.util.find_spec("keras_tuner") is None,
                       reason="needs mlflow and keras-tuner (pip install 'pepita_keras[all]')"),
    pytest.mark.slow,  # one fresh process: JAX compiles six rules, MLflow, keras-tuner
]

RULES = ("PEPITA", "MEMPEPITA", "Backprop", "FeedbackAlignment",
         "DirectFeedbackAlignment", "DRTP")
N_TRAIN, N_TEST = 800, 100  # pepita tune --smoke takes 512 + 256 training images

# Installed before anything else in the child: TensorFlow is "not installed".
BLOCK_TENSORFLOW = textwrap.dedent(
    """
    import sys
    assert "tensorflow" not in sys.modules
    class _NoTensorFlow:
        BLOCKED = ("tensorflow", "tensorflow_datasets", "tf_keras", "tensorboard")
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None
    sys.meta_path.insert(0, _NoTensorFlow())
    import runpy
    runpy.run_path(sys.argv.pop(1), run_name="__main__")  # argv: -c, data dir, out
    """
)

CHILD = textwrap.dedent(
    """
    import json, os, pathlib, sys
    import numpy as np

    try:
        import tensorflow  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("the TensorFlow blocker does not work")

    import pepita_keras  # first: it chooses the backend before Keras is imported
    import keras
    from pepita_keras import callbacks, cli, datasets, input_pipeline, paper_networks

    assert keras.backend.backend() == "jax", keras.backend.backend()
    data_dir, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    report, arrays = {}, {}

    # ---- datasets
    (x, y), (x_test, y_test) = datasets.load_arrays("mnist", data_dir, verify=False)
    arrays.update(x=x[:64], y=y[:64], y_all=y, y_test_all=y_test)
    data = datasets.load("mnist", data_dir, batch_size=16, seed=3, subset=(40, 24),
                         verify=False)
    report["train_type"] = [isinstance(data.train, keras.utils.PyDataset),
                            isinstance(data.test, keras.utils.PyDataset)]
    def epoch_labels(pipeline):
        batches = list(pipeline)
        report.setdefault("batch_sizes", [len(b[1]) for b in batches])
        return np.concatenate([b[1] for b in batches]), np.concatenate([b[0] for b in batches])
    for epoch in range(2):  # a full pass is an epoch, as for tf.data
        labels, images = epoch_labels(data.train)
        arrays[f"load_epoch{epoch}_y"] = labels
        arrays[f"load_epoch{epoch}_x"] = images
    again = datasets.load("mnist", data_dir, batch_size=16, seed=3, subset=(40, 24),
                          verify=False)
    arrays["again_epoch0_y"] = epoch_labels(again.train)[0]
    arrays["again_epoch1_y"] = epoch_labels(again.train)[0]
    other = datasets.load("mnist", data_dir, batch_size=16, seed=4, subset=(40, 24),
                          verify=False)
    arrays["seed4_epoch0_y"] = epoch_labels(other.train)[0]
    arrays["test_y"] = epoch_labels(data.test)[0]
    try:
        datasets.load("mnist", data_dir, verify=False)  # no batch_size: tf.data only
    except ValueError as error:
        report["unbatched_error"] = str(error)
    # EpochData (pepita reproduce's batches): written out for the TF side.
    arrays_for_epochs = ((x[:50], y[:50]), (x_test[:20], y_test[:20]))
    epochs = input_pipeline.EpochData(arrays_for_epochs, 16, 8)
    for seed, epoch in ((0, 0), (0, 1), (5, 3)):
        arrays[f"epochdata_{seed}_{epoch}_y"] = np.concatenate(
            [b[1] for b in epochs.train(seed, epoch)])
    arrays["epochdata_test_y"] = np.concatenate([b[1] for b in epochs.test])

    # ---- every rule: fit with callbacks, evaluate, predict, updates, save, load
    probe = (x[:32], y[:32])
    for name in RULES:
        rule = getattr(pepita_keras, name)
        network = paper_networks.paper_fc((28, 28, 1), 10, hidden_units=(32,), dropout=0.0,
                                          use_bias=True, seed=1)
        model = rule(network, seed=1)
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                      metrics=["accuracy"])
        csv = out / f"{name}.csv"
        history = model.fit(
            data.train, epochs=2, validation_data=data.test, shuffle=False, verbose=0,
            callbacks=[callbacks.AlignmentDiagnostics(probe=probe),
                       keras.callbacks.CSVLogger(str(csv))])
        entry = {"history_keys": sorted(history.history),
                 "csv_header": csv.read_text().splitlines()[0].split(","),
                 "epochs": len(history.history["loss"]),
                 "evaluate": model.evaluate(x_test, y_test, verbose=0, return_dict=True)}
        prediction = np.asarray(model.predict(x[:64], verbose=0))
        updates = [np.asarray(u) for u in model.compute_updates(x[:64], y[:64])]
        model.save(out / f"{name}.keras")
        loaded = keras.saving.load_model(out / f"{name}.keras")
        entry["loaded_type"] = type(loaded).__name__
        entry["reload_prediction_diff"] = float(
            np.abs(np.asarray(loaded.predict(x[:64], verbose=0)) - prediction).max())
        entry["reload_update_diff"] = max(
            float(np.abs(np.asarray(a) - b).max())
            for a, b in zip(loaded.compute_updates(x[:64], y[:64]), updates))
        arrays[f"{name}_prediction"] = prediction
        arrays.update({f"{name}_u{i}": u for i, u in enumerate(updates)})
        report[name] = entry

    # ---- the command line, MLflow included
    uri = f"sqlite:///{out / 'mlflow.db'}"
    report["reproduce_rc"] = cli.main([
        "reproduce", "fc_mnist_pepita", "--smoke", "--synthetic", "--seeds", "0",
        "--tracking-uri", uri, "--run-root", str(out / "runs"), "--verbose", "0"])
    # `pepita tune` has no --no-verify; the files written here are not genuine MNIST.
    datasets._KNOWN_SHA256["mnist"] = {}
    assert os.environ["MLFLOW_TRACKING_URI"] == uri  # the store tune logs to
    report["tune_rc"] = cli.main([
        "tune", "pepita_fc_mnist", "--smoke", "--data-dir", str(data_dir),
        "--directory", str(out / "tuning"), "--experiment", "tf-free-tuning"])

    report["tensorflow_modules"] = sorted(m for m in sys.modules if m.startswith("tensorflow"))
    np.savez(out / "arrays.npz", **arrays)
    (out / "report.json").write_text(json.dumps(report))
    """
)


def write_mnist(directory, rng):
    """Gzipped IDX files; each class lights its own image row, so it is learnable."""
    directory.mkdir(parents=True)
    written = {}
    for prefix, n in (("train", N_TRAIN), ("t10k", N_TEST)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 100, (n, 28, 28)).astype(np.uint8)
        images[np.arange(n), 2 * labels.astype(int) + 4, :] = 255
        (directory / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes()))
        (directory / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(
            gzip.compress(struct.pack(">II", 2049, n) + labels.tobytes()))
        written[prefix] = (images, labels)
    return written


@pytest.fixture(scope="module")
def tf_free(tmp_path_factory):
    """Runs the child; returns (report, arrays, out folder, data written)."""
    root = tmp_path_factory.mktemp("tf_free")
    written = write_mnist(root / "data" / "mnist", np.random.default_rng(0))
    out = root / "out"
    out.mkdir()
    script = root / "child.py"
    script.write_text(f"RULES = {RULES!r}\n" + CHILD)
    env = dict(os.environ, JAX_PLATFORMS="cpu", MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join(sys.path))
    # No KERAS_BACKEND: without TensorFlow, `import pepita_keras` must pick JAX.
    env.pop("KERAS_BACKEND", None)
    env.pop("PEPITA_DATA_DIR", None)
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{out / 'mlflow.db'}"
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_TENSORFLOW, str(script), str(root / "data"), str(out)],
        env=env, cwd=root, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    report = json.loads((out / "report.json").read_text())
    return report, dict(np.load(out / "arrays.npz")), out, written


def test_nothing_imported_tensorflow(tf_free):
    assert tf_free[0]["tensorflow_modules"] == []


def test_datasets_read_the_files_and_reshuffle_by_seed(tf_free):
    report, arrays, _, written = tf_free
    images, labels = written["train"]
    np.testing.assert_array_equal(arrays["y_all"], labels)
    np.testing.assert_array_equal(arrays["y_test_all"], written["t10k"][1])
    np.testing.assert_allclose(arrays["x"][..., 0], images[:64] / 255.0, rtol=1e-6)
    assert report["train_type"] == [True, True]
    assert report["batch_sizes"] == [16, 16, 8]
    # Each epoch is a permutation of the 40 kept examples, images paired with labels.
    for epoch in range(2):
        pixels = np.rint(arrays[f"load_epoch{epoch}_x"][..., 0] * 255).astype(np.uint8)
        order = [int(np.flatnonzero((images[:40] == p).all(axis=(1, 2)))[0]) for p in pixels]
        assert sorted(order) == list(range(40))
        np.testing.assert_array_equal(arrays[f"load_epoch{epoch}_y"], labels[order])
    first, second = arrays["load_epoch0_y"], arrays["load_epoch1_y"]
    assert not np.array_equal(first, second)  # reshuffled each epoch
    np.testing.assert_array_equal(arrays["again_epoch0_y"], first)  # same seed, same epochs
    np.testing.assert_array_equal(arrays["again_epoch1_y"], second)
    assert not np.array_equal(arrays["seed4_epoch0_y"], first)
    np.testing.assert_array_equal(arrays["test_y"], written["t10k"][1][:24])  # never shuffled
    assert "batch_size" in report["unbatched_error"] and "tensorflow" in report["unbatched_error"]


def test_input_pipeline_gives_tensorflow_batches(tf_free):
    """`pepita reproduce`'s batches: the same (seed, epoch) order on both backends."""
    _, arrays, _, written = tf_free
    x = written["train"][0][:50, ..., None].astype("float32") / 255.0
    y = written["train"][1][:50].astype("int32")
    x_test = written["t10k"][0][:20, ..., None].astype("float32") / 255.0
    y_test = written["t10k"][1][:20].astype("int32")
    data = input_pipeline.EpochData(((x, y), (x_test, y_test)), 16, 8)
    for seed, epoch in ((0, 0), (0, 1), (5, 3)):
        tf_labels = np.concatenate([b[1] for b in data.train(seed, epoch).as_numpy_iterator()])
        np.testing.assert_array_equal(arrays[f"epochdata_{seed}_{epoch}_y"], tf_labels)
        np.testing.assert_array_equal(tf_labels, y[input_pipeline.epoch_order(seed, epoch, 50)])
    np.testing.assert_array_equal(arrays["epochdata_test_y"], y_test)


@pytest.mark.parametrize("name", RULES)
def test_rule_trains_saves_and_loads_without_tensorflow(tf_free, name):
    report, arrays, out, _ = tf_free
    entry = report[name]
    assert entry["epochs"] == 2 and entry["loaded_type"] == name
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "update_norm_output"):
        assert key in entry["history_keys"] and key in entry["csv_header"], key
    assert set(entry["evaluate"]) == {"loss", "accuracy"}
    assert np.isfinite(entry["evaluate"]["loss"])
    assert entry["reload_prediction_diff"] == 0 and entry["reload_update_diff"] == 0
    # The same file under TensorFlow: same predictions and updates (float tolerance).
    model = keras.saving.load_model(out / f"{name}.keras")
    assert isinstance(model, getattr(pepita_keras, name))
    x, y = arrays["x"], arrays["y"]
    np.testing.assert_allclose(model.predict(x, verbose=0), arrays[f"{name}_prediction"],
                               rtol=1e-4, atol=1e-6)
    updates = model.compute_updates(x, y)
    assert len(updates) == len(model.network.trainable_weights)
    for i, update in enumerate(updates):
        update = np.asarray(update)
        assert np.abs(update).max() > 0
        np.testing.assert_allclose(arrays[f"{name}_u{i}"], update, rtol=2e-4, atol=1e-6)


def test_alignment_callback_under_jax(tf_free):
    report = tf_free[0]
    for name in ("PEPITA", "FeedbackAlignment", "DirectFeedbackAlignment", "DRTP"):
        assert any(k.startswith("alignment_angle_") for k in report[name]["history_keys"]), name


def test_reproduce_and_tune_log_to_mlflow(tf_free, tmp_path):
    report, _, out, _ = tf_free
    assert report["reproduce_rc"] == 0 and report["tune_rc"] == 0
    client = tracking.client(f"sqlite:///{out / 'mlflow.db'}")
    runs = {experiment.name: client.search_runs([experiment.experiment_id])
            for experiment in client.search_experiments()}

    def parents_and_children(experiment_runs):
        parents = [r for r in experiment_runs if "mlflow.parentRunId" not in r.data.tags]
        children = [r for r in experiment_runs if "mlflow.parentRunId" in r.data.tags]
        assert len(parents) == 1, [r.info.run_name for r in experiment_runs]
        assert all(r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
                   for r in children)
        assert all(r.info.status == "FINISHED" for r in experiment_runs)
        return parents[0], children

    # pepita tune --smoke: one search run, its two trials nested under it.
    _, trials = parents_and_children(runs.pop("tf-free-tuning"))
    assert len(trials) == 2
    # pepita reproduce: one cell run, one seed run with per-epoch metrics.
    (reproductions,) = [r for r in runs.values() if r] or [[]]  # MLflow's "Default" is empty
    _, (seed_run,) = parents_and_children(reproductions)
    assert any("accuracy" in name for name in seed_run.data.metrics), seed_run.data.metrics
    # Its environment record says what ran: JAX, no TensorFlow.
    path = client.download_artifacts(seed_run.info.run_id, "environment.json", str(tmp_path))
    info = json.loads(open(path).read())["environment"]
    assert info["keras_backend"] == "jax" and info["tensorflow"] is None
    assert info["devices"] == "CPU"
    # Its platform tag keeps it apart from TensorFlow runs of the cell in `pepita results`.
    assert seed_run.data.tags["pepita.platform"] == "jax-cpu"
    assert seed_run.data.tags["jax"] == info["jax"] and seed_run.data.tags["jax"]
