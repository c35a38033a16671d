"""The widgets the terminal client's screens are made of."""
