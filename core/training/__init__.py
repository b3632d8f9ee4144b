"""Training: the method, its baselines and the loop that runs them.

- ``config``: the frozen run configuration (model, loss, schedule, optimiser, data), validated
  where it is built; ``method_config`` gives each method's recipe.
- ``loop``: ``train(config, data, ...)``, a generator of ``events``; ``evaluate``.
- ``model`` (the two encoders and the label head), ``teacher`` (EMA or self), ``objective``
  (a method's losses composed from ``losses/``), ``batches`` (each step's pairs), ``schedules``
  (r_t and the soft weight), ``control`` (pause, stop), ``distributed`` (torchrun),
  ``checkpoint`` (what a run keeps), ``embedding`` (a model applied to a split or to features),
  ``pseudo_labels`` (the teacher's classes for unlabelled pairs).

May import ``core.data``, ``core.evaluation`` and core's run-time helpers (``errors``, ``atomic``,
``device``, ``rundir``); never ``core.features`` or ``core.exploration``. This file stays empty so
that ``core.training.config`` and ``core.training.control`` load without torch.
"""
