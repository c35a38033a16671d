"""The media viewer: a received file, opened through the media cache.

`client.open_media(media_id)` gives a local copy (from the cache without a request while it is
fresh, else downloaded into it). An image is previewed in the terminal with textual-image
(Kitty graphics, Sixel or coloured half blocks, whichever the terminal supports; plain
unicode blocks where it is no terminal), from its 256-pixel thumbnail when the server makes
one; any other file shows its type, size and the cached copy's path. Keys: `c` copies the path,
`o` opens the file with the system's opener, Escape closes. What fails (offline with nothing
cached, a file the server no longer serves) is said in the viewer.

textual-image asks the terminal for its cell size when it is first imported, which it can only
do before Textual takes the terminal over: this module imports it at the top, so the app must
import this module before it runs (the app module does, with its other screens).
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from typing import TYPE_CHECKING, ClassVar

from PIL import Image as PILImage
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Label, Static
from textual_image.widget import Image

from chatcore.client.errors import ClientError
from chatcore.client.models import CachedFile, Message
from chatcore_tui.format import error_text

if TYPE_CHECKING:
    from chatcore.client.app import Client

#: The thumbnail size asked for a preview (the server makes the largest of its sizes not above).
PREVIEW_SIZE = 256


def human_size(size: int) -> str:
    """A byte count for a person: 512 B, 1.5 KiB, 2.0 MiB."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def is_image(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower().startswith("image/")


def load_image(path: str) -> PILImage.Image:
    """The decoded image (run in a thread: decoding reads the whole file)."""
    with PILImage.open(path) as opened:
        opened.load()
        return opened.copy()


def system_opener() -> list[str] | None:
    """The command that opens a file with the user's default program, if this system has one."""
    if sys.platform == "darwin":
        return ["open"]
    if sys.platform == "win32":
        return None  # os.startfile; not offered on Windows yet
    found = shutil.which("xdg-open")
    return [found] if found else None


class MediaViewer(ModalScreen[None]):
    """Shows a media message's file (see the module's docstring)."""

    DEFAULT_CSS = """
    MediaViewer { align: center middle; }
    MediaViewer > Vertical {
        width: 80%; height: 85%; border: round $accent; background: $surface; padding: 0 1;
    }
    MediaViewer #media-info { height: auto; margin-bottom: 1; }
    MediaViewer #media-preview { height: 1fr; width: auto; }
    MediaViewer #media-error { color: $error; height: auto; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("c", "copy_path", "Copy path"),
        Binding("o", "open_file", "Open"),
    ]

    def __init__(self, client: Client, message: Message) -> None:
        super().__init__()
        self.client = client
        self.message = message
        self.file: CachedFile | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="media-box"):
            yield Label(self._title(), id="media-title", markup=False)
            yield Static("Opening…", id="media-info", markup=False)
        yield Footer()

    def _title(self, content_type: str | None = None) -> str:
        """The caption, else what the file is (the engine keeps no file name)."""
        caption = self.message.body.strip()
        if caption:
            return caption
        if content_type is None:
            return "A file"
        return "An image" if is_image(content_type) else f"A file ({content_type})"

    def on_mount(self) -> None:
        self._open()

    @work(group="open", exclusive=True)
    async def _open(self) -> None:
        info = self.query_one("#media-info", Static)
        media_id = self.message.media_id
        if media_id is None:
            self._failed("This message carries no file.")
            return
        try:
            file = await self.client.open_media(media_id)
        except ClientError as exc:
            self._failed(f"The file cannot be opened: {error_text(exc)}")
            return
        self.file = file
        self.query_one("#media-title", Label).update(self._title(file.content_type))
        info.update(
            f"{file.content_type}, {human_size(file.size)} (media {media_id})\n{file.path}\n"
            "c copies the path, o opens it."
        )
        self.refresh_bindings()
        if is_image(file.content_type):
            await self._preview(media_id, file)

    async def _preview(self, media_id: str, file: CachedFile) -> None:
        """Show the image, from its thumbnail when the server gives one (smaller, quicker)."""
        path = file.path
        try:
            path = (await self.client.open_media(media_id, thumbnail=PREVIEW_SIZE)).path
        except ClientError:
            pass  # offline with the file cached, or a type the server makes no thumbnail of
        try:
            picture = await asyncio.to_thread(load_image, path)
        # PIL's UnidentifiedImageError is an OSError; DecompressionBombError: a picture of more
        # pixels than Pillow decodes by default (a hostile file), refused before decoding.
        except (OSError, ValueError, PILImage.DecompressionBombError) as exc:
            self._failed(f"The image cannot be shown: {error_text(exc)}")
            return
        await self.query_one("#media-box").mount(Image(picture, id="media-preview"))

    def _failed(self, text: str) -> None:
        self.query_one("#media-info", Static).update("")
        self.query_one("#media-box").mount(Static(text, id="media-error", markup=False))

    # --- actions -------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("copy_path", "open_file"):
            return self.file is not None
        return True

    def action_copy_path(self) -> None:
        if self.file is not None:
            self.app.copy_to_clipboard(self.file.path)
            self.notify("The path is copied.", markup=False)

    def action_open_file(self) -> None:
        if self.file is None:
            return
        opener = system_opener()
        if opener is None:
            self.notify(
                f"No program to open files with here; the file is at {self.file.path}", markup=False
            )
            return
        self._run_opener([*opener, self.file.path])

    @work(group="opener")
    async def _run_opener(self, command: list[str]) -> None:
        try:
            # Its own session, no terminal: what it prints must not reach the screen Textual
            # draws. xdg-open and open return once they have handed the file over.
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
            code = await process.wait()
        except OSError as exc:
            self.notify(
                f"The file cannot be opened: {error_text(exc)}", severity="error", markup=False
            )
            return
        if code != 0:
            self.notify(
                f"{command[0]} could not open the file (exit {code}).",
                severity="error",
                markup=False,
            )

    def action_close(self) -> None:
        self.dismiss(None)
