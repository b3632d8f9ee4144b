import subprocess
import sys

import numpy as np
import pytest

from core.exploration.projection import align_to, joint_projection, pca_2d, procrustes, project


def _blobs(n=60, d=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, d)) * 4
    return (centres[rng.integers(0, 3, n)] + rng.normal(size=(n, d))).astype(np.float32)


def test_pca_keeps_the_direction_of_largest_variance_on_the_first_axis():
    rng = np.random.default_rng(1)
    x = np.zeros((200, 5), np.float32)
    x[:, 3] = rng.normal(size=200) * 10
    x[:, 1] = rng.normal(size=200)
    coords = pca_2d(x)
    assert coords.shape == (200, 2) and coords.dtype == np.float32
    assert abs(np.corrcoef(coords[:, 0], x[:, 3])[0, 1]) > 0.99


def test_pca_is_deterministic_in_sign():
    x = _blobs()
    assert np.array_equal(pca_2d(x), pca_2d(x.copy()))


def test_procrustes_recovers_rotation_reflection_scale_and_shift():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(50, 2))
    theta = 0.7
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    b = 2.5 * (a * [1, -1]) @ rot + [3.0, -1.0]  # reflected, rotated, scaled, shifted
    r, s, t = procrustes(a, b)
    assert np.allclose(s * a @ r + t, b, atol=1e-9)
    assert np.allclose(align_to(a.astype(np.float32), b.astype(np.float32)), b, atol=1e-4)


def test_alignment_keeps_layouts_of_consecutive_epochs_close():
    x = _blobs()
    first = project(x, "pca")
    # A small training step: the embedding drifts; the raw projection may flip axes.
    drift = x + np.random.default_rng(3).normal(size=x.shape).astype(np.float32) * 0.05
    flipped = -pca_2d(drift)
    aligned = align_to(flipped, first)
    assert np.abs(aligned - first).mean() < 0.1 * np.abs(first).mean()


def test_align_to_without_reference_returns_the_input():
    c = np.ones((4, 2), np.float32)
    assert align_to(c, None) is c
    assert align_to(c, np.ones((5, 2), np.float32)) is c


def test_joint_projection_splits_audio_and_visual_rows():
    a, v = _blobs(30), _blobs(20, seed=4)
    pa, pv = joint_projection(a, v)
    assert pa.shape == (30, 2) and pv.shape == (20, 2)


def test_unknown_method_is_an_error():
    with pytest.raises(ValueError, match="unknown projection"):
        project(_blobs(), "isomap")  # type: ignore[arg-type]


def test_importing_projection_does_not_import_umap_or_opentsne():
    code = (
        "import sys, core.exploration.projection; "
        "print(any(m in sys.modules for m in ('umap', 'numba', 'openTSNE')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_umap_started_from_previous_layout_stays_close():
    x = _blobs(80)
    first = project(x, "umap")
    second = project(x, "umap", previous=first)
    assert second.shape == first.shape
    assert np.isfinite(second).all()


def test_tsne_keeps_classes_apart_and_repeats_with_its_seed():
    """The map's t-SNE: finite [N, 2], each point's map neighbours in its class, the same seed
    the same map; started from a previous layout, it stays aligned to it."""
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(6)
    labels = np.arange(200) % 4
    x = ((rng.normal(size=(4, 32)) * 3)[labels] + rng.normal(size=(200, 32))).astype(np.float32)
    first = project(x, "tsne", seed=2)
    assert first.shape == (200, 2) and first.dtype == np.float32 and np.isfinite(first).all()
    _, near = cKDTree(first).query(first, 6)
    assert (labels[near[:, 1:]] == labels[:, None]).mean() > 0.95
    assert np.array_equal(first, project(x, "tsne", seed=2))
    drift = x + 0.05 * rng.normal(size=x.shape).astype(np.float32)
    second = project(drift, "tsne", previous=first)
    assert np.isfinite(second).all()
    assert np.abs(second - first).mean() < 0.2 * np.abs(first - first.mean(axis=0)).mean()


def test_numba_cache_folder_is_the_users_cache_unless_numba_is_told_otherwise(
    monkeypatch, tmp_path
):
    from core.numba_cache import numba_cache_dir

    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert numba_cache_dir() == tmp_path / "avexplorer" / "numba"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert numba_cache_dir() == tmp_path / "elsewhere"


def test_cosine_neighbours_are_exact_below_the_cut_off_and_close_above(monkeypatch):
    import core.exploration.projection as projection

    x = _blobs(300, d=24)
    idx, dist = projection.cosine_knn(x, 10)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = unit @ unit.T
    want = np.argsort(-sims, axis=1)[:, :10]
    assert (idx[:, 0] == np.arange(300)).all() and np.allclose(dist[:, 0], 0, atol=1e-5)
    assert np.mean([len(set(a) & set(b)) for a, b in zip(idx, want, strict=True)]) > 9.9
    np.testing.assert_allclose(dist, 1 - np.take_along_axis(sims, idx, axis=1), atol=1e-5)
    monkeypatch.setattr(projection, "EXACT_KNN_MAX", 100)  # the HNSW path
    approx, _ = projection.cosine_knn(x, 10)
    assert np.mean([len(set(a) & set(b)) for a, b in zip(approx, want, strict=True)]) > 9.5


@pytest.mark.slow
def test_umap_writes_its_compiled_code_to_the_cache_folder_and_a_new_process_reads_it(tmp_path):
    """A new app session loads UMAP's compiled kernels instead of compiling them again."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    code = (
        "import numpy as np, numba.core.event as ev\n"
        "from core.exploration.projection import import_umap, umap_2d\n"
        "import_umap()\n"  # umap compiles a few typed helpers as it is imported
        "names = []\n"
        "class L(ev.Listener):\n"
        "    def on_start(self, e): names.append(e.data['dispatcher'].py_func.__module__)\n"
        "    def on_end(self, e): pass\n"
        "ev.register('numba:compile', L())\n"
        "x = np.random.default_rng(0).normal(size=(80, 8)).astype(np.float32)\n"
        "assert umap_2d(x).shape == (80, 2)\n"
        "print(sum(n.startswith('umap.') for n in names))\n"
    )

    def compiled() -> int:
        out = subprocess.run(
            [sys.executable, "-W", "ignore", "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        return int(out.stdout.strip().splitlines()[-1])

    first = compiled()
    cached = list((tmp_path / "avexplorer" / "numba").rglob("*.nbi"))
    assert first > 0 and cached, "the first session compiles and writes the cache"
    assert compiled() == 0, "the next session loads every umap kernel from the cache"


def test_unknown_umap_start_is_an_error():
    from core.exploration.projection import umap_2d

    with pytest.raises(ValueError, match="unknown UMAP start"):
        umap_2d(_blobs(), start="random")  # type: ignore[arg-type]


@pytest.mark.slow
def test_umap_keeps_classes_apart_from_either_start_and_repeats_with_its_seed():
    """The app's UMAP (PCA start, fewer epochs) and umap-learn's own (spectral start) both keep
    each point's map neighbours in its class; the same seed gives the same map."""
    from scipy.spatial import cKDTree

    from core.exploration.projection import umap_2d

    rng = np.random.default_rng(5)
    labels = np.arange(300) % 6
    x = (rng.normal(size=(6, 32)) * 3)[labels] + rng.normal(size=(300, 32))
    for layout in (umap_2d(x), umap_2d(x, start="spectral", n_epochs=None)):
        _, near = cKDTree(layout).query(layout, 6)
        assert (labels[near[:, 1:]] == labels[:, None]).mean() > 0.95
    assert np.array_equal(umap_2d(x, seed=3), umap_2d(x, seed=3))


@pytest.mark.slow
def test_a_umap_of_the_maps_size_does_not_import_torch():
    """The app's UMAP process starts with each session: torch would be most of its imports."""
    code = (
        "import sys\n"
        "from core.exploration.projection import warm_up_umap\n"
        "warm_up_umap()\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "False"
