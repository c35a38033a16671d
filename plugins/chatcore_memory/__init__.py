"""chatcore_memory plugin."""
