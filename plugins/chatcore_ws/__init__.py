"""chatcore_ws plugin."""
