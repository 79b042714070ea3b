"""Training: corpus loaders, preprocessing, the Keras model and its training loop (needs the `train` extra)."""
