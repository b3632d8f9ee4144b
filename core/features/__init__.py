"""From real clips to features: decoding (PyAV), pretrained encoders, cache, batch extraction.

Modules (import the one you need; this package itself stays light and imports neither torch nor
PyAV):

- ``errors``: ``ClipError``, the per-file error whose message names the file.
- ``media``, ``avio``: file kinds, opening with PyAV, readable reasons for failures.
- ``video``, ``audio``, ``image``: frames at a fixed rate, mono audio at a given rate, stills.
- ``mel``: the aisfx-compatible mel spectrogram and the fallback's log-mel statistics (numpy).
- ``encoders``: EfficientNet-Lite0, aisfx, and weights-free fallbacks; ``load_encoders``.
- ``cache``: per-(content hash, encoder) feature cache.
- ``decode``: what a decoding process does for one clip.
- ``decoder_process``: decoding in child processes, so that a decoder crash costs one file.
- ``extract``: the streaming pipeline and the one-file API (``encode_path``, ``first_frame``,
  ``load_audio``).
- ``dataset``: clip folders and manifests to the lineage's HDF5 layout; shards and merging.
"""

from core.features.errors import ClipError

__all__ = ["ClipError"]
