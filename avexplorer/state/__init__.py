"""The app's state: what the views show, held in parts owned by ``app_state.AppState``.

Each module holds one part and imports only the parts below it, never the root:
``signals`` (what the state announces) <- ``catalog`` (the open dataset) <- ``retrieval`` (model,
query, results) <- ``runs`` (training runs; ``run`` is one ``Run``) <- ``embeddings`` (their test
embeddings, layouts and metrics) <- ``labelling`` <- ``audit``; ``selection``, ``tasks`` and
``time_axis`` sit beside them. ``app_state`` builds them all and holds what spans them. Nothing
in this package imports a widget, a job or the window (import-linter checks it).
"""
