"""Exploration: what the app and ``locate`` build on trained embeddings.

- ``projection``: PCA, UMAP and t-SNE layouts of the map, aligned from epoch to epoch.
- ``selection``: a selection of clips per modality and its pure maths; ``selection_files``: its
  exports (clip lists, embeddings, feature files).
- ``locate``: when in a clip a query matches (segments, moments, sync).

The top layer: may import ``core.training``, ``core.evaluation``, ``core.features``, ``core.data``
and the run-time helpers.
"""
