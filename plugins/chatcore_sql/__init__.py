"""chatcore_sql plugin."""
