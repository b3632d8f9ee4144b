"""Background work, one module per kind of job; ``controller.JobController`` starts them.

Every job runs off the GUI thread (a superqt worker, or a child process for training and for UMAP
and t-SNE), touches no widget, and hands plain data back to ``avexplorer.state.AppState`` on the
GUI thread.
"""
