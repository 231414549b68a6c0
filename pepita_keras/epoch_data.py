"""Deprecated name of `pepita_keras.input_pipeline` (renamed in 0.1; see `pepita_keras._renamed`)."""

from pepita_keras import _renamed

_renamed.alias(__name__)
