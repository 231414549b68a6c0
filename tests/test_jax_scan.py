"""Many steps per dispatch under Keras-JAX (`jax_step.scanned_steps`).

`steps_per_execution=k` must run the same steps as one step per dispatch,
in the same order, with the state (dropout seeds, optimizer momentum,
metrics) carried from step to step; only the number of host round trips
changes. So `fit`/`evaluate` with k > 1 must give the weights, history and
metrics of k = 1, including an epoch whose last batch is smaller and whose
step count is not a multiple of k. Runs in a JAX subprocess (the test
process holds TensorFlow).
"""

import importlib.util
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                       reason="jax is not installed (pip install 'pepita_keras[jax]')"),
    pytest.mark.slow,  # each module starts a Keras-JAX process (10-15 s)
]

SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras
    import pepita_keras
    from pepita_keras import paper_networks

    assert keras.backend.backend() == "jax"
    rng = np.random.default_rng(0)
    # 150 examples at batch 16: 9 full batches and one of 6; k = 4 gives
    # executions of 4, 4 and 1 + 1 (the smaller last batch runs on its own).
    x = rng.random((150, 6, 6, 1), dtype=np.float32)
    y = rng.integers(0, 4, 150)
    out = {}
    for rule in ("PEPITA", "FeedbackAlignment"):
        for spe in (1, 4):
            model = getattr(pepita_keras, rule)(
                paper_networks.paper_fc((6, 6, 1), 4, hidden_units=(16,), dropout=0.1, seed=0), seed=0)
            model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                          metrics=["accuracy"], steps_per_execution=spe)
            history = model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0,
                                validation_data=(x[:70], y[:70]))
            key = f"{rule}_{spe}"
            out[key + "_function"] = np.array(model.train_function.__qualname__)
            for i, w in enumerate(model.get_weights()):
                out[f"{key}_w{i}"] = w
            for name, values in history.history.items():
                out[f"{key}_h_{name}"] = np.array(values)
            out[key + "_eval"] = np.array(model.evaluate(x, y, batch_size=32, verbose=0))
    default = pepita_keras.PEPITA(paper_networks.paper_fc((6, 6, 1), 4, hidden_units=(16,)), seed=0)
    default.compile(optimizer="sgd", metrics=["accuracy"])
    out["default_spe_on_cpu"] = np.array(default.steps_per_execution)
    np.savez(sys.argv[1], **out)
    """
)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    path = tmp_path_factory.mktemp("scan") / "out.npz"
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(path)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(np.load(path))


@pytest.mark.parametrize("rule", ["PEPITA", "FeedbackAlignment"])
def test_many_steps_per_dispatch_equal_one_step_per_dispatch(results, rule):
    assert "scanned_steps" in str(results[f"{rule}_4_function"])
    assert "scanned_steps" not in str(results[f"{rule}_1_function"])
    weights = sorted(k for k in results if k.startswith(f"{rule}_1_w"))
    assert weights
    for key in weights:
        np.testing.assert_allclose(results[key.replace("_1_", "_4_")], results[key],
                                   rtol=1e-5, atol=1e-6, err_msg=key)
    histories = sorted(k for k in results if k.startswith(f"{rule}_1_h_"))
    assert {k.split("_h_")[1] for k in histories} >= {"loss", "accuracy", "val_accuracy"}
    for key in histories + [f"{rule}_1_eval"]:
        np.testing.assert_allclose(results[key.replace("_1_", "_4_")], results[key],
                                   rtol=1e-5, atol=1e-6, err_msg=key)


def test_one_step_per_dispatch_is_the_cpu_default(results):
    assert int(results["default_spe_on_cpu"]) == 1


REPRODUCE_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from pepita_keras import experiment_config, reproduce
    from pepita_keras.backend import jax_step

    # What a GPU runs (many steps per dispatch by default), forced on this CPU.
    config = experiment_config.load_config("fc_mnist_pepita").smoke_version().replace(epochs=2)
    out = {}
    for spe in (1, 3):
        jax_step.default_steps_per_execution = lambda spe=spe: spe
        _, (seed,) = reproduce.reproduce(
            config, seeds=[0], synthetic=True, run_root=f"{sys.argv[1]}/runs{spe}",
            tracking_uri=f"sqlite:///{sys.argv[1]}/store{spe}.db", verbose=0)
        out[f"spe{spe}"] = seed.model.steps_per_execution
        out[f"function{spe}"] = np.array(seed.model.train_function.__qualname__)
        for key in ("val_accuracy", "accuracy", "loss"):
            out[f"{key}{spe}"] = np.array(seed.history[key])
    np.savez(f"{sys.argv[1]}/out.npz", **out)
    """
)


@pytest.mark.slow
def test_reproduce_with_many_steps_per_dispatch_trains_the_same_seed(tmp_path):
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", REPRODUCE_SCRIPT, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    out = dict(np.load(tmp_path / "out.npz"))
    assert int(out["spe1"]) == 1 and int(out["spe3"]) == 3
    assert "scanned_steps" in str(out["function3"])
    for key in ("val_accuracy", "accuracy", "loss"):
        assert len(out[f"{key}1"]) == 2
        np.testing.assert_allclose(out[f"{key}3"], out[f"{key}1"], rtol=1e-5, atol=1e-6)
