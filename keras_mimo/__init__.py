"""keras-mimo: computation in superposition (MIMONets) for Keras 3 on TensorFlow, JAX and PyTorch."""

__version__ = "0.1.0"

from keras_mimo import layers, models  # noqa: E402

__all__ = ["layers", "models", "__version__"]
