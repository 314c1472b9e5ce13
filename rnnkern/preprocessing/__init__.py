"""Keras 3's ``keras.preprocessing`` names that sequence models use
(``import rnnkern as keras`` -> ``keras.preprocessing``):
``timeseries_dataset_from_array`` and ``sequence.pad_sequences`` (the same
functions as in ``rnnkern.utils``). Keras' image and text dataset loaders are
not part of rnnkern: asking for them is an AttributeError that says so."""
from ..utils.data import timeseries_dataset_from_array
from . import sequence

__all__ = ["timeseries_dataset_from_array", "sequence"]


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(f"rnnkern.preprocessing has no {name!r}: Keras' "
                         f"keras.preprocessing.{name} is not part of rnnkern (it has "
                         f"{', '.join(__all__)})")
