"""The sweeps of ``welavae reproduce``: the presets (:mod:`~welavae.experiments.presets`), the engine that runs a
plan (:mod:`~welavae.experiments.sweep`), its executors, results store, folder and tables."""
