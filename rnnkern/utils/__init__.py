"""Utilities, by Keras 3's names (``keras.utils`` -> ``rnnkern.utils``):
``set_random_seed``, ``clear_session``, ``timeseries_dataset_from_array``,
``pad_sequences``, ``to_categorical``, ``Progbar``, ``get_file`` (Keras' cache and
hashing, safe extraction), ``plot_model`` and ``model_to_dot`` (pydot + Graphviz)."""
from __future__ import annotations

import random

import numpy as np

from ..config import set_global_seed as _set_global_seed
from .data import TimeseriesDataset, pad_sequences, timeseries_dataset_from_array, to_categorical
from .file_utils import get_file
from .model_visualization import model_to_dot, plot_model
from .naming import clear_session as _clear_names
from .progbar import Progbar
from .registry import register_keras_serializable

__all__ = ["clear_session", "set_random_seed", "timeseries_dataset_from_array",
           "TimeseriesDataset", "pad_sequences", "to_categorical", "Progbar", "get_file",
           "plot_model", "model_to_dot", "register_keras_serializable"]


def clear_session():
    """Reset Keras' automatic layer names (the next Dense is ``dense`` again),
    as ``keras.utils.clear_session()``."""
    _clear_names()


def set_random_seed(seed):
    """Seed Python's ``random``, NumPy's global generator and every rnnkern
    generator made afterwards by a layer without a seed of its own (weight
    initialisation, dropout) or by ``fit`` (shuffling), as
    ``keras.utils.set_random_seed``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"Expected `seed` argument to be an integer. Received: seed={seed!r} "
                         f"(of type {type(seed)})")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    _set_global_seed(seed)
