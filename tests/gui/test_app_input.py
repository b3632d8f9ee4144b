"""The app says what it could not do: clips left out of a folder, a query past the test split."""

from __future__ import annotations


def test_clips_left_out_of_a_folder_are_reported(qtbot, window, tmp_path, cheap_encoders):
    from tests.core.features_fixtures import make_video

    root = tmp_path / "clips"
    for c, color in enumerate(((220, 30, 30), (30, 30, 220))):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(2):
            make_video(root / f"class{c}" / f"c{c}_{i}.mp4", 1.0, size=32, color=color)
    (root / "class0" / "empty.mp4").write_bytes(b"")
    (root / "class1" / "loop.mp4").symlink_to(root / "class1" / "loop.mp4")
    errors = []
    window.state.signals.error.connect(lambda title, message: errors.append((title, message)))
    window.open_folder(str(root))
    qtbot.waitUntil(lambda: bool(errors), timeout=60_000)
    title, message = errors[-1]
    head, details = message.split("\n\n", 1)
    assert title == "Some clips were left out"
    assert head == "1 of 5 clips were left out; 1 entries were not clips"
    assert "empty.mp4" in details and "loop.mp4: a link that leads nowhere" in details
    assert window.state.catalog.dataset is not None and len(window.state.catalog.dataset.test) >= 1


def test_a_query_past_the_test_split_is_a_dialog(qtbot, window, gui_h5, trained_checkpoint):
    from avexplorer.app import build_parser, open_initial

    args = build_parser().parse_args(
        ["--data", str(gui_h5), "--checkpoint", str(trained_checkpoint), "--query", "99999"]
    )
    open_initial(window, args)
    qtbot.waitUntil(lambda: window.last_error is not None, timeout=60_000)
    assert window.last_error == ("No such item", "--query 99999: the test split has 24 items")


def test_a_runs_folder_that_cannot_be_written_is_a_dialog(qtbot, window, tmp_path):
    (tmp_path / "not-a-folder").write_text("x")
    window.state.runs.root = tmp_path / "not-a-folder"
    window.state.runs.request_training(window.training_panel.config())
    assert window.last_error[0] == "Cannot train" and "cannot create" in window.last_error[1]
    assert window.state.runs.active_run is None
