"""Generated audio-visual datasets in the lineage's layout, with the flaws of web-video labels.

Each clip has a latent semantic code drawn around its class's prototype, with a few sub-modes per
class (a "dog" clip may be a bark or a growl). Audio and visual features are different nonlinear
views of that code (random two-layer networks into 128-d and 1024-d, the visual one non-negative
like pooled CNN activations), each with its own noise, so neither modality is a copy of the other.
Then the flaws that make the paper's comparison mean something:

- label noise: a fraction of training labels is replaced, mostly by a "confusable" neighbour class
  (as "engine" and "car" are confused on the web), sometimes at random;
- weak pairs: in a fraction of clips one modality carries little of the class (off-screen sound,
  a black frame), i.e. the pair is inconsistent with its own label.

Test and val labels stay clean so that MAP measures retrieval, not label noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.data.dataset import AVDataset, Split


@dataclass(frozen=True)
class SyntheticSpec:
    num_classes: int
    n_train: int
    n_val: int
    n_test: int
    audio_dim: int = 128
    visual_dim: int = 1024
    latent_dim: int = 32
    modes_per_class: int = 3
    class_spread: float = 1.0  # distance scale between class prototypes
    within_spread: float = 0.85  # spread of clips around their mode
    label_noise: float = 0.25  # fraction of training labels replaced
    weak_pair_rate: float = 0.15  # fraction of clips with one uninformative modality
    audio_noise: float = 0.6
    visual_noise: float = 0.4


SHAPES: dict[str, SyntheticSpec] = {
    # AVE's 15-class subset: ~1,955 clips.
    "ave": SyntheticSpec(num_classes=15, n_train=1_367, n_val=195, n_test=393),
    # VEGAS: 10 classes, 28,103 clips of which 5,621 test.
    "vegas": SyntheticSpec(num_classes=10, n_train=20_234, n_val=2_248, n_test=5_621),
    # A small one for tests and quick demos of the CLI.
    "tiny": SyntheticSpec(
        num_classes=4, n_train=96, n_val=32, n_test=48, audio_dim=16, visual_dim=24, latent_dim=8
    ),
}


@dataclass(frozen=True)
class Flaws:
    """What the generator did to the train split: the truth an audit is scored against."""

    true_labels: np.ndarray  # [N] each train pair's class before label noise
    weak_pairs: np.ndarray  # [N] bool: one half replaced by an unrelated one (a broken pair)


def make_dataset(shape: str | SyntheticSpec = "ave", seed: int = 0) -> AVDataset:
    """A generated dataset of the given shape; the same seed gives the same arrays."""
    return make_flawed_dataset(shape, seed)[0]


def make_flawed_dataset(
    shape: str | SyntheticSpec = "ave", seed: int = 0
) -> tuple[AVDataset, Flaws]:
    """``make_dataset``'s dataset and the flaws put into its train split."""
    spec = SHAPES[shape] if isinstance(shape, str) else shape
    rng = np.random.default_rng(seed)
    c, k, z = spec.num_classes, spec.modes_per_class, spec.latent_dim
    prototypes = rng.normal(size=(c, z)) * spec.class_spread
    # Confusable pairs: each class has a neighbour whose prototype is pulled halfway towards it.
    neighbour = rng.permutation(c)
    neighbour = np.where(neighbour == np.arange(c), (neighbour + 1) % c, neighbour)
    prototypes[neighbour] = 0.6 * prototypes[neighbour] + 0.4 * prototypes
    modes = prototypes[:, None, :] + 0.5 * rng.normal(size=(c, k, z))
    audio_net = _random_net(rng, z, spec.audio_dim)
    visual_net = _random_net(rng, z, spec.visual_dim)

    flaws: list[Flaws] = []

    def draw(n: int, noisy: bool) -> Split:
        labels = rng.integers(0, c, size=n)
        latent = modes[labels, rng.integers(0, k, size=n)] + spec.within_spread * rng.normal(
            size=(n, z)
        )
        audio_latent, visual_latent = latent.copy(), latent.copy()
        weak = rng.random(n) < spec.weak_pair_rate
        weak_audio = weak & (rng.random(n) < 0.5)
        audio_latent[weak_audio] = rng.normal(size=(int(weak_audio.sum()), z)) * spec.class_spread
        weak_visual = weak & ~weak_audio
        visual_latent[weak_visual] = (
            rng.normal(size=(int(weak_visual.sum()), z)) * spec.class_spread
        )
        audio = audio_net(audio_latent) + spec.audio_noise * rng.normal(size=(n, spec.audio_dim))
        visual = np.maximum(
            visual_net(visual_latent) + spec.visual_noise * rng.normal(size=(n, spec.visual_dim)),
            0.0,
        )
        observed = labels.copy()
        if noisy:
            flip = rng.random(n) < spec.label_noise
            to_neighbour = rng.random(n) < 0.7
            observed[flip & to_neighbour] = neighbour[labels[flip & to_neighbour]]
            random_flip = flip & ~to_neighbour
            observed[random_flip] = (
                labels[random_flip] + rng.integers(1, c, random_flip.sum())
            ) % c
            flaws.append(Flaws(labels.astype(np.int64), weak))
        return Split(audio.astype(np.float32), visual.astype(np.float32), observed.astype(np.int64))

    data = AVDataset(
        train=draw(spec.n_train, noisy=True),
        val=draw(spec.n_val, noisy=False),
        test=draw(spec.n_test, noisy=False),
        class_names=tuple(f"class_{i:02d}" for i in range(c)),
        source=f"synthetic:{shape if isinstance(shape, str) else 'custom'}:seed{seed}",
        attrs={"generator": "core.data.synthetic", "label_noise": str(spec.label_noise)},
    )
    return data, flaws[0]


def _random_net(rng: np.random.Generator, in_dim: int, out_dim: int, hidden: int = 256):
    w1 = rng.normal(size=(in_dim, hidden)) / np.sqrt(in_dim)
    b1 = 0.1 * rng.normal(size=hidden)
    w2 = rng.normal(size=(hidden, out_dim)) / np.sqrt(hidden)

    def net(x: np.ndarray) -> np.ndarray:
        return np.tanh(x @ w1 + b1) @ w2

    return net
