"""Wall time of training steps, measured step by step.

Epoch and run times on a shared or virtual machine include stalls outside the
training (on the 2-core development machine, epochs end on 1.27 s ticks); the
median step, from one batch end to the next, is immune to a few such stalls.
"""
from __future__ import annotations

import time

import tensorflow as tf


class StepTimes(tf.keras.callbacks.Callback):
    """Wall seconds of each training step of an epoch, from one batch end to the next."""

    def __init__(self):
        super().__init__()
        self._supports_tf_logs = True  # no per-step conversion of the logs to numpy
        self.seconds: list[float] = []
        self._last = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._last = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        self.seconds.append(now - self._last)
        self._last = now
