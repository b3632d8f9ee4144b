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
