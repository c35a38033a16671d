"""The sticker picker: the server's sticker packs, one list, a heading per pack.

Each sticker shows its emoji (when the pack gives one) and its id. Enter or a click chooses one:
the picker is dismissed with the sticker's id (for `client.send_sticker`); Escape dismisses with
None. A server without packs says so; a failure to read them (offline) is shown in the picker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Label, OptionList, Static
from textual.widgets.option_list import Option

from chatcore.client.errors import ClientError
from chatcore.client.models import StickerPack
from chatcore_tui.format import error_text

if TYPE_CHECKING:
    from chatcore.client.app import Client

NO_PACKS = "No sticker packs on this server."
#: Shown for a sticker its pack gave no emoji.
NO_EMOJI = "▫"


def pack_options(packs: list[StickerPack]) -> list[Option | None]:
    """The list's lines: per pack a heading (not choosable), then its stickers (id: sticker id);
    a separator (None) between packs."""
    options: list[Option | None] = []
    for index, pack in enumerate(packs):
        if index:
            options.append(None)
        heading = Text.assemble((pack.name, "bold"), (f"  {len(pack.stickers)} stickers", "dim"))
        options.append(Option(heading, id=f"pack:{pack.id}", disabled=True))
        for sticker in pack.stickers:
            prompt = Text.assemble(f"  {sticker.emoji or NO_EMOJI}  ", (sticker.id, "dim"))
            options.append(Option(prompt, id=sticker.id))
    return options


class StickerPicker(ModalScreen[str | None]):
    """Choose a sticker of the server's packs (see the module's docstring)."""

    DEFAULT_CSS = """
    StickerPicker { align: center middle; }
    StickerPicker > Vertical {
        width: 70%; height: 70%; border: round $accent; background: $surface; padding: 0 1;
    }
    StickerPicker #stickers { height: 1fr; }
    StickerPicker #stickers-status { color: $text-muted; height: auto; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Cancel"),
        Binding("enter", "choose", "Send sticker"),
    ]

    def __init__(self, client: Client) -> None:
        super().__init__()
        self.client = client

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Stickers", classes="title")
            yield Static("Reading the sticker packs…", id="stickers-status", markup=False)
            yield OptionList(id="stickers")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#stickers", OptionList).focus()
        self._load()

    @work(group="packs", exclusive=True)
    async def _load(self) -> None:
        status = self.query_one("#stickers-status", Static)
        try:
            packs = await self.client.sticker_packs()
        except ClientError as exc:
            status.update(f"The sticker packs cannot be read: {error_text(exc)}")
            return
        packs = [pack for pack in packs if pack.stickers]
        if not packs:
            status.update(NO_PACKS)
            return
        count = sum(len(pack.stickers) for pack in packs)
        status.update(f"{len(packs)} packs, {count} stickers: Enter sends one.")
        stickers = self.query_one("#stickers", OptionList)
        stickers.set_options(pack_options(packs))
        stickers.action_first()  # the first choosable line (headings are disabled)

    @on(OptionList.OptionSelected, "#stickers")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None and not event.option.disabled:
            self.dismiss(event.option.id)

    def action_choose(self) -> None:
        option = self.query_one("#stickers", OptionList).highlighted_option
        if option is not None and option.id is not None and not option.disabled:
            self.dismiss(option.id)

    def action_close(self) -> None:
        self.dismiss(None)
