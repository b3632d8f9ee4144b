"""Mel spectrograms in plain numpy: the one aisfx was trained on, and a small one for the fallback.

Why not librosa: its first mel call compiles numba kernels (tens of seconds on a fresh install,
several seconds per new process), and its filterbank is not the one aisfx's training used. We only
need a framed FFT and a triangular filterbank, which numpy does in a few lines.

aisfx (ISMIR 2022) computed its training inputs with Essentia (``aisfx/spectrogram/
spectrogram_essentia.py``): EasyLoader at 44.1 kHz (mono mix, replayGain -6 dB + 6 dB preamp = no
gain), FrameCutter 2048/1024 with frames centred on multiples of the hop (the first one on sample
0, zero-padded), a symmetric Hann window, magnitude spectrum, MelBands with 96 HTK-mel bands over
0-22050 Hz, triangles linear in mel ("warping") normalised to unit sum, applied to the *power*
spectrum, then log10(1e4 * x + 1) and division by 9.4578 (the max over its training sets). The
result is (frames, mel); blocks of 100 frames with a 50-frame hop feed the network.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

AISFX_SR = 44_100
AISFX_FRAME = 2048
AISFX_HOP = 1024
AISFX_MELS = 96
# aisfx.preprocessing.spectrogram_normalize(spec_norm="original"): max over its training sets
AISFX_SPEC_MAX = 9.457798957824707
AISFX_BLOCK = 100  # frames per embedding block (~2.3 s)
AISFX_BLOCK_HOP = 50  # 50 % overlap, as in the paper


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


@lru_cache(maxsize=8)
def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """[n_fft // 2 + 1, n_mels] weights, Essentia MelBands style (HTK mel, triangles linear in
    mel over the bins in [lo, hi), each band's weights summing to one). Checked against
    essentia.standard.MelBands 2.1b6: the same matrix to float32 rounding."""
    n_bins = n_fft // 2 + 1
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    edges_mel = hz_to_mel(edges)
    scale = (sr / 2.0) / (n_bins - 1)
    bin_hz = np.arange(n_bins) * scale
    bin_mel = hz_to_mel(bin_hz)
    weights = np.zeros((n_mels, n_bins), dtype=np.float64)
    for i in range(n_mels):
        lo, mid, hi = edges[i : i + 3]
        j = np.flatnonzero((bin_hz >= lo) & (bin_hz < hi))
        f, m = bin_hz[j], bin_mel[j]
        up = (f >= lo) & (f < mid)
        down = (f >= mid) & (f < hi)
        weights[i, j[up]] = (m[up] - edges_mel[i]) / (edges_mel[i + 1] - edges_mel[i])
        weights[i, j[down]] = (edges_mel[i + 2] - m[down]) / (edges_mel[i + 2] - edges_mel[i + 1])
        total = weights[i].sum()
        if total > 0:
            weights[i] /= total
    out = np.ascontiguousarray(weights.T, dtype=np.float32)
    out.flags.writeable = False  # shared through the cache
    return out


@lru_cache(maxsize=8)
def hann_symmetric(n: int) -> np.ndarray:
    w = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / (n - 1))).astype(np.float32)
    w.flags.writeable = False
    return w


def centred_frames(y: np.ndarray, frame: int, hop: int) -> np.ndarray:
    """[n, frame] frames centred on 0, hop, 2 hop, ... up to the first centre at or past the end
    (Essentia's streaming FrameCutter with startFromZero=False), zero-padded at both ends."""
    n = math.ceil(len(y) / hop) + 1
    left = (frame + 1) // 2
    padded = np.zeros((n - 1) * hop + frame, dtype=np.float32)
    take = min(len(y), len(padded) - left)
    padded[left : left + take] = y[:take]
    return np.lib.stride_tricks.sliding_window_view(padded, frame)[::hop][:n]


def power_mel(y: np.ndarray, sr: int, frame: int, hop: int, n_mels: int) -> np.ndarray:
    """(frames, n_mels) mel energies of the power spectrum."""
    frames = centred_frames(np.asarray(y, dtype=np.float32), frame, hop) * hann_symmetric(frame)
    spectrum = np.fft.rfft(frames, axis=1)  # complex64: numpy 2 transforms float32 as float32
    power = spectrum.real**2 + spectrum.imag**2
    bins, weights, starts, bands = _band_entries(sr, frame, n_mels)
    out = np.zeros((len(power), n_mels), np.float32)
    out[:, bands] = np.add.reduceat(power[:, bins] * weights, starts, axis=1)
    return out


@lru_cache(maxsize=8)
def _band_entries(sr: int, n_fft: int, n_mels: int) -> tuple[np.ndarray, ...]:
    """The filterbank's nonzero weights, band by band: (bin, weight) of each, where each
    non-empty band starts, and which bands those are.

    Each band covers a few bins, so summing them costs a fraction of the dense product, which
    also went through BLAS, whose threads then spun against the encoders'."""
    bank = mel_filterbank(sr, n_fft, n_mels, 0.0, sr / 2.0).T  # [n_mels, bins]
    band, bins = np.nonzero(bank)  # in band order, then bin order
    bands = np.unique(band)
    return bins, bank[band, bins], np.searchsorted(band, bands), bands


def aisfx_mel(y: np.ndarray) -> np.ndarray:
    """(frames, 96) normalised log-mel input of aisfx, from mono float32 audio at 44.1 kHz."""
    mel = power_mel(y, AISFX_SR, AISFX_FRAME, AISFX_HOP, AISFX_MELS)
    return (np.log10(1e4 * mel + 1.0) / AISFX_SPEC_MAX).astype(np.float32)


def aisfx_blocks(spec: np.ndarray) -> np.ndarray:
    """[B, 100, 96] blocks with a 50-frame hop; a trailing partial block is dropped (aisfx's
    drop_partial_block=True) and a spectrogram shorter than one block is zero-padded to one."""
    t = spec.shape[0]
    if t < AISFX_BLOCK:
        spec = np.concatenate([spec, np.zeros((AISFX_BLOCK - t, spec.shape[1]), spec.dtype)])
        t = AISFX_BLOCK
    n = 1 + (t - AISFX_BLOCK) // AISFX_BLOCK_HOP
    idx = np.arange(n)[:, None] * AISFX_BLOCK_HOP + np.arange(AISFX_BLOCK)[None, :]
    return spec[idx]


# One aisfx block spans 100 frames, i.e. (100 - 1) hops of audio: shorter clips need padding.
AISFX_WINDOW_SECONDS = (AISFX_BLOCK - 1) * AISFX_HOP / AISFX_SR


def log_mel_stats(y: np.ndarray, sr: int, n_mels: int = 64) -> np.ndarray:
    """[2 * n_mels]: mean and standard deviation over time of the log (dB) mel energies, a
    weights-free clip descriptor (1024-sample frames, 50 % overlap)."""
    mel = power_mel(y, sr, 1024, 512, n_mels)
    db = 10.0 * np.log10(np.maximum(mel, 1e-10))
    return np.concatenate([db.mean(axis=0), db.std(axis=0)]).astype(np.float32)
