"""Preprocessing (raw recordings + labels -> the RVT layout): ``dataset`` drives it, ``inputs`` reads the
inputs, ``windows`` cuts event windows, ``sequence_task`` converts one sequence, ``manifest`` verifies it,
``workers`` runs sequences in processes."""
