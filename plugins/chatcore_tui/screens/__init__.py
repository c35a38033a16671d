"""The screens of the terminal client: each a Textual `Screen` or `ModalScreen` of its own."""
