"""``paystream bench``: the pipeline under load, its baselines, and the report."""
