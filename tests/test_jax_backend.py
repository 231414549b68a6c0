"""PEPITA under `KERAS_BACKEND=jax` agrees with the TensorFlow backend.

The test process runs TensorFlow (the backend is fixed at import), so the JAX
side runs in one subprocess: it receives weights, F and a batch per network
through an `.npz` file and writes back its `compute_updates` and the accuracy
of a short `fit`. Expectations come from the TensorFlow implementation, which
tests/test_pepita.py checks against an independent NumPy reference.
"""

import importlib.util
import inspect
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pepita_keras
from pepita_keras import paper_networks

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                       reason="jax is not installed (pip install 'pepita_keras[jax]')"),
    pytest.mark.slow,  # each module starts a Keras-JAX process (10-15 s)
]

KINDS = ("fc", "conv")


def network(kind, seed=0):
    if kind == "fc":
        return paper_networks.paper_fc((6, 6, 1), 4, hidden_units=(16,), dropout=0.0,
                                       use_bias=True, seed=seed)
    return paper_networks.paper_conv((8, 8, 2), 4, filters=3, kernel_size=3,
                                     use_bias=True, seed=seed)


# Runs in the JAX subprocess.
JAX_SCRIPT = "import sys\nimport numpy as np\nimport keras\nimport pepita_keras\n"
# The same `network(kind)` as on this (TensorFlow) side, by its source.
JAX_SCRIPT += "from pepita_keras import paper_networks\n" + inspect.getsource(network) + textwrap.dedent(
    """
    assert keras.backend.backend() == "jax", keras.backend.backend()
    data = dict(np.load(sys.argv[1]))
    out = {}
    for kind in ("fc", "conv"):
        net = network(kind)
        model = pepita_keras.PEPITA(net, seed=0)
        net.set_weights([data[f"{kind}_w{i}"] for i in range(len(net.weights))])
        model.feedback_matrix.assign(data[f"{kind}_F"])
        updates = model.compute_updates(
            data[f"{kind}_x"], data[f"{kind}_y"], sample_weight=data[f"{kind}_sw"])
        out.update({f"{kind}_u{i}": np.asarray(u) for i, u in enumerate(updates)})
    # A short fit of a fresh network (with dropout) must learn the task.
    model = pepita_keras.PEPITA(
        paper_networks.paper_fc((6, 6, 1), 4, hidden_units=(16,), seed=1), seed=1)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                  metrics=["accuracy"])
    x, y = data["x_train"], data["y_train"]
    before = model.evaluate(x, y, verbose=0, return_dict=True)["accuracy"]
    model.fit(x, y, batch_size=32, epochs=8, verbose=0)
    after = model.evaluate(x, y, verbose=0, return_dict=True)["accuracy"]
    out["accuracy"] = np.array([before, after])
    np.savez(sys.argv[2], **out)
    """
)


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    """Per kind: TF model, inputs; plus the JAX subprocess outputs."""
    rng = np.random.default_rng(0)
    tmp_path = tmp_path_factory.mktemp("jax")
    arrays, tf_side = {}, {}
    for kind in KINDS:
        net = network(kind)
        model = pepita_keras.PEPITA(net, seed=0)
        # Non-default weights, F and sample weights: nothing matches by luck.
        weights = [rng.normal(0, 0.5, w.shape).astype("float32") for w in net.weights]
        net.set_weights(weights)
        feedback = rng.uniform(-0.3, 0.3, model.feedback_matrix.shape)
        model.feedback_matrix.assign(feedback.astype("float32"))
        x = rng.random((24,) + model.input_spec_shape, dtype=np.float32)
        y = rng.integers(0, 4, 24).astype("int32")
        sample_weight = rng.uniform(0.5, 1.5, 24).astype("float32")
        arrays.update({f"{kind}_w{i}": w for i, w in enumerate(weights)})
        arrays.update({f"{kind}_F": feedback.astype("float32"), f"{kind}_x": x,
                       f"{kind}_y": y, f"{kind}_sw": sample_weight})
        tf_side[kind] = (model, x, y, sample_weight)
    # Learnable task for the fit: the class's input quadrant is bright.
    y_train = rng.integers(0, 4, 512).astype("int32")
    x_train = 0.3 * rng.random((512, 2, 3, 2, 3), dtype=np.float32)
    x_train[np.arange(512), y_train // 2, :, y_train % 2, :] += 0.7
    arrays.update(x_train=x_train.reshape(512, 6, 6, 1), y_train=y_train)

    inputs, outputs = tmp_path / "in.npz", tmp_path / "out.npz"
    np.savez(inputs, **arrays)
    script = tmp_path / "jax_side.py"
    script.write_text(JAX_SCRIPT)
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    result = subprocess.run(
        [sys.executable, str(script), str(inputs), str(outputs)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return tf_side, dict(np.load(outputs))


@pytest.mark.parametrize("kind", KINDS)
def test_jax_updates_equal_tensorflow_updates(cases, kind):
    tf_side, jax_out = cases
    model, x, y, sample_weight = tf_side[kind]
    expected = model.compute_updates(x, y, sample_weight=sample_weight)
    assert len(expected) == len(model.network.weights)
    for i, update in enumerate(expected):
        update = np.asarray(update)
        assert np.abs(update).max() > 0  # a non-trivial update
        np.testing.assert_allclose(jax_out[f"{kind}_u{i}"], update, rtol=2e-4, atol=1e-6)


def test_jax_fit_learns(cases):
    before, after = cases[1]["accuracy"]
    assert after >= 0.8 and after > before + 0.3, (before, after)
