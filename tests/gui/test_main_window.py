from tests.gui.conftest import tiny_dataset


def test_window_opens_on_the_dataset_and_lists_every_item(window):
    data = tiny_dataset()
    panel = window.dataset_panel
    assert panel.model.rowCount() == len(data.train) + len(data.val) + len(data.test)
    assert "4 classes" in panel.source.text()
    assert window.training_panel.start_button.isEnabled()
    assert window.device_label.text().startswith("Device: ")


def test_table_filters_by_class_and_text(window):
    panel = window.dataset_panel
    panel.class_box.setCurrentIndex(2)  # "All classes" is index 0 -> class1
    n_class1 = panel.proxy.rowCount()
    assert 0 < n_class1 < panel.model.rowCount()
    assert all(panel.proxy.index(r, 1).data() == "class1" for r in range(panel.proxy.rowCount()))
    panel.text_box.setText("test_00")
    assert 0 < panel.proxy.rowCount() <= n_class1
    assert "of" in panel.count.text()


def test_opening_a_folder_of_clips_extracts_features_and_lists_the_clips(
    qtbot, window, tmp_path, cheap_encoders
):
    """File > Open folder: clips in class folders are decoded, encoded, split and opened."""
    from tests.core.features_fixtures import make_video

    root = tmp_path / "clips"
    for c, (color, tone) in enumerate((((220, 30, 30), 330.0), ((30, 30, 220), 660.0))):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(2):
            make_video(root / f"class{c}" / f"c{c}_{i}.mp4", 1.0, size=32, color=color, tone=tone)
    opened, tasks = [], []
    window.state.signals.datasetChanged.connect(lambda: opened.append(window.state.catalog.dataset))
    window.state.signals.taskChanged.connect(tasks.append)
    window.open_folder(str(root))
    qtbot.waitUntil(lambda: bool(opened), timeout=60_000)
    data = opened[-1]
    # The status bar counted the clips, with their rate and the time left.
    assert any(t.startswith("Extracting features of clips: 4/4 clips") for t in tasks)
    assert any(t.endswith("ETA 0:00") and " clips/s" in t for t in tasks)
    assert data.class_names == ("class0", "class1")
    assert len(data.train) + len(data.val) + len(data.test) == 4
    assert data.audio_dim == 128 and data.visual_dim == 192
    panel = window.dataset_panel
    assert panel.model.rowCount() == 4
    names = {panel.proxy.index(r, 0).data() for r in range(panel.proxy.rowCount())}
    assert names == {"c0_0.mp4", "c0_1.mp4", "c1_0.mp4", "c1_1.mp4"}
    # First frames and durations follow in the background.
    qtbot.waitUntil(lambda: len(window.state.catalog.thumbnails) == 4, timeout=30_000)
    assert panel.proxy.index(0, 3).data().endswith(" s")


def test_every_tab_can_be_opened_from_the_command_line(window):
    """``avexplorer --tab NAME`` accepts each tab the window has, the Metrics tab included."""
    from avexplorer.app import build_parser, show_tab

    choices = build_parser()._option_string_actions["--tab"].choices
    shown = set()
    for name in choices:
        show_tab(window, name)
        shown.add(window.tabs.currentIndex())
    assert shown == set(range(window.tabs.count()))


def test_a_run_of_another_dataset_lends_no_embeddings_to_the_open_one(qtbot, real_window):
    """Opening another dataset after a run keeps the run's curves, but its test embeddings describe
    the old test split: the map, the metrics and queries must not use them (the Metrics tab
    failed with "6 audio rows, 6 visual rows and 120 labels" after opening the demo)."""
    from core.training.config import method_config
    from tests.gui.conftest import tiny_dataset

    window = real_window
    state = window.state
    state.runs.request_training(method_config("psd").replace(**{"optim.epochs": 1, "threads": 1}))
    qtbot.waitUntil(lambda: bool(state.runs), timeout=30_000)
    rid = max(state.runs)
    qtbot.waitUntil(lambda: state.embeddings.latest_epoch(rid) is not None, timeout=60_000)
    qtbot.waitUntil(lambda: state.runs.active_run is None, timeout=60_000)

    other = tiny_dataset(seed=1, n_classes=5)  # another test split: 24 pairs of 5 classes
    state.set_dataset(other)
    assert state.embeddings.embeddings_for(rid) == {} and state.embeddings.latest_epoch(rid) is None
    assert "train a model" in window.map.plot.getPlotItem().titleLabel.text  # not the old run's
    window.tabs.setCurrentWidget(window.metrics_view)
    state.runs.set_current_run(rid)
    qtbot.wait(300)
    assert window.last_error is None, window.last_error
    assert state.retrieval.gallery is None and rid in state.runs


def test_checkpoint_flag_alone_opens_the_data_the_checkpoint_was_trained_on(
    qtbot, window, gui_h5, tmp_path
):
    """``avexplorer --checkpoint RUN/model.pt`` (docs/app.md) opens the checkpoint's own feature
    file, not the demo, which would refuse the checkpoint as trained on other data."""
    from avexplorer.app import build_parser, open_initial
    from avexplorer.cli import main

    run = tmp_path / "cli-run"
    flags = ["--epochs", "1", "--threads", "1", "--quiet"]
    assert main(["train", str(gui_h5), "--out", str(run), *flags]) == 0
    state = window.state
    before = state.catalog.dataset
    open_initial(window, build_parser().parse_args(["--checkpoint", str(run / "model.pt")]))
    qtbot.waitUntil(
        lambda: state.catalog.dataset is not before and state.retrieval.gallery is not None,
        timeout=30_000,
    )
    assert state.catalog.dataset.source == str(gui_h5) and window.last_error is None


def test_view_menu_opens_every_tab_by_its_position(window):
    actions = {a.shortcut().toString(): a for a in window.view_menu.actions()}
    for n in range(1, window.tabs.count() + 1):
        actions[f"Ctrl+{n}"].trigger()
        assert window.tabs.currentIndex() == n - 1
