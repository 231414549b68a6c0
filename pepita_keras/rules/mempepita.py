"""MEMPEPITA: PEPITA's updates without keeping the clean-pass activations.

Pau & Aymone, "Suitability of Forward-Forward and PEPITA Learning to
MLCommons-Tiny benchmarks", IEEE COINS 2023 (arXiv:2305.13251).

PEPITA needs `h_l` (clean pass) and `h_l^mod` (modulated pass) for every
layer at update time, so the whole clean pass stays in memory while the
modulated pass runs. MEMPEPITA trades compute for memory with three forward
passes:

1. clean pass: keep only the output `y` (for `e = y − onehot(t)`, the loss
   and the metrics); every hidden activation is dropped as soon as the next
   layer has consumed it;
2. modulated pass on `x_mod = x + s·F e`, and
3. the clean pass again, run side by side with 2., block by block: block l
   receives `h_{l-1}` and `h_{l-1}^mod`, produces `h_l` and `h_l^mod`, and
   its update `G_l` is computed at once (`PEPITA.block_update`); then the
   inputs are dropped.

At any time only two consecutive layers' activations of the two passes are
alive (inside `tf.function`, `ops.after` makes each block wait for the
previous block's update and the recomputation wait for `e`, so the executor
can neither merge pass 3 into pass 1 nor run it ahead). The updates are
exactly PEPITA's — same F, same dropout masks (drawn once per step and shared
by all three passes), same variants (`last_layer_error`, `modulation_sign`,
`normalize_activations`, `update_form`, `feedback_mirroring`) — at the cost
of one more forward pass. `time_local=True` is not available: its first half
must be applied before the modulated pass, which here is interleaved with
the recomputation.
"""

import keras
from keras import ops

from pepita_keras import ops as backend_ops
from pepita_keras.rules.pepita import PEPITA
from pepita_keras.registry import register_rule


@register_rule("mempepita", label="MEMPEPITA", order=5)
class MEMPEPITA(PEPITA):
    """PEPITA with activation recomputation (three forward passes).

    Takes exactly `PEPITA`'s arguments (except `time_local=True`) and
    computes exactly its updates; see the module docstring for the memory
    schedule and `benchmarks/mempepita_memory.py` for the measured saving.

    Example:

    ```python
    network = pepita_keras.paper_networks.paper_fc(seed=0)
    model = pepita_keras.MEMPEPITA(network, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=64, epochs=2)
    ```
    """

    def __init__(self, network, *args, time_local=False, **kwargs):
        if time_local:
            raise ValueError(
                "MEMPEPITA interleaves the modulated pass with the clean "
                "recomputation, so the clean-pass half of time_local=True "
                "cannot be applied before the modulated pass. Use "
                "PEPITA(..., time_local=True). Received: time_local=True."
            )
        super().__init__(network, *args, **kwargs)

    def updates_and_predictions(self, x, targets, sample_weight=None, masks=None):
        dtype = self.feedback_matrix.dtype
        targets = ops.cast(targets, dtype)
        # Pass 1: only the output survives.
        h = x
        for index in range(len(self.blocks)):
            _, h = self.forward_block(index, h, masks)
        prediction = h
        error = ops.cast(prediction, dtype) - targets
        # Passes 2 and 3, block by block.
        h, h_mod = backend_ops.after((x, self.modulate(x, error)), error)
        updates = []
        for index in range(len(self.blocks)):
            clean = self.forward_block(index, h, masks)
            modulated = self.forward_block(index, h_mod, masks)
            block_updates = self.block_update(
                index, clean, modulated, targets, sample_weight
            )
            updates += block_updates
            h, h_mod = backend_ops.after((clean[1], modulated[1]), block_updates)
            # Eager: drop h_{l-1} and h_{l-1}^mod before the next block runs.
            del clean, modulated
        return updates, prediction
