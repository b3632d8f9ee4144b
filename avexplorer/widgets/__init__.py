"""The app's widgets: each shows part of the ``Session`` and emits what the user asks for."""
