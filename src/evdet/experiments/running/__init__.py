"""Running: the runner that trains one record over its seeds and fills results.json."""
