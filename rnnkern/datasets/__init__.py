"""Keras' small datasets, by Keras 3's names (``keras.datasets`` ->
``rnnkern.datasets``): ``imdb``, ``reuters`` and ``mnist``, each with
``load_data`` (and ``get_word_index``; ``reuters.get_label_names``).

They read the files Keras downloads, from Keras' cache (``~/.keras/datasets``
or ``$KERAS_HOME/datasets``; ``rnnkern.utils.get_file``), and return the arrays
Keras returns. Nothing in a file is run: the sequences' pickles are read with
an unpickler that rebuilds arrays only."""
from . import imdb, mnist, reuters

__all__ = ["imdb", "reuters", "mnist"]
