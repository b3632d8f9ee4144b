import json

import numpy as np

from avexplorer.settings import settings


def test_checkpoint_save_then_load_round_trips(qtbot, loaded, tmp_path):
    before = loaded.state.retrieval.gallery
    out = tmp_path / "saved.pt"
    loaded.save_checkpoint(str(out))
    assert out.exists()
    loaded.state.retrieval.gallery = None
    loaded.load_checkpoint(str(out))
    qtbot.waitUntil(lambda: loaded.state.retrieval.gallery is not None, timeout=20_000)
    after = loaded.state.retrieval.gallery
    assert np.allclose(before.audio, after.audio) and np.allclose(before.visual, after.visual)
    recent = json.loads(settings().value("recent/runs"))
    assert recent[0]["path"] == str(out)
    assert loaded.recent_menu.actions()


def test_exports_write_embeddings_and_results(qtbot, loaded, tmp_path):
    loaded.export_embeddings(str(tmp_path / "e.npz"))
    z = np.load(tmp_path / "e.npz")
    assert z["audio"].shape == loaded.state.retrieval.gallery.audio.shape
    loaded.export_embeddings(str(tmp_path / "e.csv"))
    lines = (tmp_path / "e.csv").read_text().splitlines()
    assert len(lines) == 1 + 2 * 24
    loaded.state.retrieval.set_item_query("test", 0)
    loaded.export_results(str(tmp_path / "r.csv"))
    assert len((tmp_path / "r.csv").read_text().splitlines()) == 1 + loaded.state.retrieval.k
    loaded.export_png(loaded.map.plot, str(tmp_path / "map.png"))
    assert (tmp_path / "map.png").stat().st_size > 1000


def test_window_layout_persists(qtbot, window):
    window.tabs.setCurrentIndex(1)
    window.save_settings()
    assert int(settings().value("window/tab")) == 1
    assert settings().value("window/state") is not None
