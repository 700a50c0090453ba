"""Training: the Lightning system (module), recurrent state per stream slot, optimiser, monitors,
checkpoints, ``fit`` and stream-mode ``predict_sequences``. Import the submodules directly
(``evdet.training.fit``, ``evdet.training.module``, ...); nothing heavy is imported here.
"""
