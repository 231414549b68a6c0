"""Small modern networks for the rules on graphs: a residual net and a vision transformer.

Our own cells (`resnet_mnist_<rule>`, `vit_mnist_<rule>`; no paper number) ask
whether each learning rule trains the architectures the field uses. Both are
functional Keras models sized so that a 20-epoch MNIST seed stays within
minutes on a 2-core CPU, and both end in `keras.layers.Softmax()`, so every
rule of `pepita_keras.convert` takes them.

Example:

```python
network = modern_networks.small_resnet((28, 28, 1), 10, seed=0)   # 12,562 weights (12,526 trainable)
model = pepita_keras.convert(network, "fa", seed=0)
```
"""

import keras


def _initializers(seed, index):
    """He-uniform kernels (the paper nets' init), each seeded from `seed` and its position."""
    return keras.initializers.HeUniform(seed=None if seed is None else seed * 100 + index)


def small_resnet(input_shape=(28, 28, 1), num_classes=10, seed=None, filters=6):
    """Conv stem + BatchNorm + ReLU, one residual block, max pooling, Dense, Softmax.

    `x → Conv(f, 3×3) → BN → ReLU → [Conv(f, 3×3) → BN → ReLU → Conv(f, 3×3) → BN] + x
    → ReLU → MaxPool(2) → Flatten → Dense(C) → Softmax`.

    Args:
        input_shape: image shape (H, W, channels).
        num_classes: C.
        seed: seeds every kernel initializer.
        filters: f (6 gives 12,562 weights on MNIST).

    Returns:
        A functional `keras.Model` named "small_resnet".
    """
    def conv(h, index):
        return keras.layers.Conv2D(filters, 3, padding="same", name=f"conv_{index}",
                                   kernel_initializer=_initializers(seed, index))(h)

    inputs = keras.Input(input_shape)
    h = keras.layers.ReLU(name="relu_1")(keras.layers.BatchNormalization(name="bn_1")(
        conv(inputs, 1)))
    r = keras.layers.ReLU(name="relu_2")(keras.layers.BatchNormalization(name="bn_2")(
        conv(h, 2)))
    r = keras.layers.BatchNormalization(name="bn_3")(conv(r, 3))
    h = keras.layers.ReLU(name="relu_3")(keras.layers.Add(name="residual")([h, r]))
    h = keras.layers.Flatten(name="flatten")(keras.layers.MaxPooling2D(2, name="pool")(h))
    logits = keras.layers.Dense(num_classes, name="head",
                                kernel_initializer=_initializers(seed, 4))(h)
    outputs = keras.layers.Softmax(name="softmax")(logits)
    return keras.Model(inputs, outputs, name="small_resnet")


def tiny_vit(input_shape=(28, 28, 1), num_classes=10, seed=None, dim=32, heads=2, patch=7,
             mlp_units=64):
    """A one-block vision transformer.

    `x → Conv(dim, patch×patch, stride patch) → Reshape(tokens, dim) →
    [LN → MultiHeadAttention] + → [LN → Dense(mlp, relu) → Dense(dim)] + →
    Flatten → Dense(C) → Softmax` (no position embedding: the flattened tokens
    keep their positions for the head).

    Args:
        input_shape: image shape (H, W, channels); H and W multiples of `patch`.
        num_classes: C.
        seed: seeds every kernel initializer.
        dim, heads, patch, mlp_units: the transformer's sizes (the defaults
            give 15,274 weights on MNIST: 16 tokens of 32).

    Returns:
        A functional `keras.Model` named "tiny_vit".
    """
    rows, columns = input_shape[0] // patch, input_shape[1] // patch
    inputs = keras.Input(input_shape)
    tokens = keras.layers.Conv2D(dim, patch, strides=patch, name="patch_embedding",
                                 kernel_initializer=_initializers(seed, 1))(inputs)
    tokens = keras.layers.Reshape((rows * columns, dim), name="tokens")(tokens)
    normed = keras.layers.LayerNormalization(name="ln_1")(tokens)
    attended = keras.layers.MultiHeadAttention(
        heads, dim // heads, name="attention",
        kernel_initializer=keras.initializers.GlorotUniform(
            seed=None if seed is None else seed * 100 + 2))(normed, normed)
    tokens = keras.layers.Add(name="residual_1")([tokens, attended])
    normed = keras.layers.LayerNormalization(name="ln_2")(tokens)
    hidden = keras.layers.Dense(mlp_units, activation="relu", name="mlp_1",
                                kernel_initializer=_initializers(seed, 3))(normed)
    hidden = keras.layers.Dense(dim, name="mlp_2", kernel_initializer=_initializers(seed, 4))(
        hidden)
    tokens = keras.layers.Add(name="residual_2")([tokens, hidden])
    flat = keras.layers.Flatten(name="flatten")(tokens)
    logits = keras.layers.Dense(num_classes, name="head",
                                kernel_initializer=_initializers(seed, 5))(flat)
    outputs = keras.layers.Softmax(name="softmax")(logits)
    return keras.Model(inputs, outputs, name="tiny_vit")
