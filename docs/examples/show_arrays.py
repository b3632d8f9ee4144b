"""Open avexplorer on arrays held in memory, and read back what was selected on the map.

    python docs/examples/show_arrays.py

Draw around a cluster with the Lasso (or click a class in the legend), close the window, and the
script prints the selected clips. In Jupyter, run ``%gui qt`` first and ``show`` returns at once;
``handle.selection`` then follows the map live.
"""

import numpy as np

import avexplorer

rng = np.random.default_rng(0)
classes = ["dog", "rain", "engine", "piano", "speech"]
per_class, width = 200, 32
labels = np.repeat(np.arange(len(classes)), per_class)
centres = rng.normal(size=(len(classes), width))
# Stand-ins for a model's audio and visual embeddings: the two sides of a clip lie near their
# class centre (a torch tensor works as well as a numpy array).
audio = centres[labels] + 0.7 * rng.normal(size=(len(labels), width))
visual = centres[labels] + 0.7 * rng.normal(size=(len(labels), width))
names = [f"{classes[c]} {i:04d}" for i, c in enumerate(labels)]

handle = avexplorer.show(audio, visual, labels, names=names, class_names=classes)
print(f"{len(handle.selection)} clips selected: {handle.selection[:10].tolist()} ...")
