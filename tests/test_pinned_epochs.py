"""Training stays bit-identical: the first epochs of committed runs, through `pepita reproduce`.

`fc_mnist_drtp` seed 0 (3 epochs) and `conv_mnist_pepita` seed 0 (2 epochs) are
trained on real MNIST exactly as `pepita reproduce` trains them (run folder,
per-epoch order, callbacks, the full-length schedule), stopped by Ctrl-C after
the pinned epochs, and their test accuracies compared for equality. oneDNN's
float32 kernels round differently with the instruction set they pick, so the
pinned values are per ISA: the AVX2 ones are the committed store's runs (an AMD
EPYC without AVX-512, `reproductions/results/tracking.db`); the AVX-512 ones were
measured on an Intel Xeon with the code before and after the one-factory
redesign (equal), and again on an AMD EPYC with AVX-512 with the code before and
after `pepita_keras.convert` (equal): the vendor does not matter, the ISA does.
"""

import json

import pytest

from pepita_keras import experiment_config, reproduce
from pepita_keras.store import checkpoints, provenance

PINNED = {
    "AVX2": {
        "fc_mnist_drtp": [0.9284999966621399, 0.9362000226974487, 0.9383999705314636],
        "conv_mnist_pepita": [0.9434000253677368, 0.9501000046730042],
    },
    "AVX-512": {
        "fc_mnist_drtp": [0.9279000163078308, 0.9333000183105469, 0.9386000037193298],
        "conv_mnist_pepita": [0.9448999762535095, 0.9549999833106995],
    },
}


def _pinned_for_this_cpu():
    hardware = provenance.environment_info()["hardware"]
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        pytest.skip(f"cannot read this CPU's instruction sets ({hardware})")
    if "avx512f" in flags:
        return PINNED["AVX-512"]
    if "avx2" in flags:
        return PINNED["AVX2"]
    pytest.skip(f"no pinned epochs for this CPU ({hardware}); oneDNN rounds per ISA")


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.parametrize("cell", ["fc_mnist_drtp", "conv_mnist_pepita"])
def test_first_epochs_equal_the_pinned_runs(cell, tmp_path, monkeypatch):
    expected = _pinned_for_this_cpu()[cell]
    real_end = checkpoints.EpochCheckpoint.on_epoch_end

    def stop_after_the_pinned_epochs(self, epoch, logs=None):
        real_end(self, epoch, logs)
        if epoch + 1 >= len(expected):
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints.EpochCheckpoint, "on_epoch_end",
                        stop_after_the_pinned_epochs)
    with pytest.raises(KeyboardInterrupt):
        reproduce.reproduce(experiment_config.load_config(cell), seeds=[0], run_root=tmp_path / "runs",
                            tracking_uri=f"sqlite:///{tmp_path / 'store.db'}", verbose=0)
    state = json.loads((tmp_path / "runs" / cell / "seed0" / checkpoints.STATE_FILE).read_text())
    assert state["history"]["val_accuracy"] == expected
