"""chatcore_auth plugin."""
