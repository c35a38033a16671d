"""chatcore_rest plugin."""
