"""The reference docs keep up with the code: every hook and every config key is documented."""

from __future__ import annotations

import inspect
import re
import textwrap
from pathlib import Path

import pytest
from pydantic import BaseModel

from chatcore import hookspecs
from chatcore.client import hookspecs as client_hookspecs
from chatcore.plugins import PluginHost
from chatcore.server import hookspecs as server_hookspecs
from chatcore.server.app import App
from chatcore.settings import settings_class

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
#: Each role's hook specifications, under the heading of docs/hooks.md that groups them.
SPECS_BY_HEADING = {
    "## Kernel hooks (every role)": hookspecs,
    "## Server hooks": server_hookspecs,
    "## Client hooks": client_hookspecs,
}
HOOKS = {
    name: (heading, getattr(module, name))
    for heading, module in SPECS_BY_HEADING.items()
    for name in dir(module)
    if name.startswith("chatcore_")
}


def first_sentence(doc: str) -> str:
    return " ".join(inspect.cleandoc(doc).split("\n\n")[0].split()).split(". ")[0]


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_has_reference_docs(name):
    text = (DOCS / "hooks.md").read_text()
    role_heading, fn = HOOKS[name]
    heading = re.search(rf"^### `{name}\((.*)\)`", text, re.MULTILINE)
    assert heading, f"docs/hooks.md lacks a '### `{name}(...)`' heading"
    assert heading.group(1) == ", ".join(inspect.signature(fn).parameters)
    assert first_sentence(fn.__doc__ or "") in " ".join(text.split()), (
        f"docs/hooks.md: the entry for {name} should start from its docstring"
    )
    group = text.split(f"\n{role_heading}\n", 1)[-1].split("\n## ", 1)[0]
    assert f"### `{name}(" in group, f"docs/hooks.md: {name} belongs under '{role_heading}'"


def config_keys() -> list[tuple[str, str]]:
    cls = settings_class(PluginHost.load().settings_models())
    keys = []
    for section, field in cls.model_fields.items():
        model = field.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            keys += [(section, key) for key in model.model_fields]
        else:
            keys.append(("", section))
    return keys


@pytest.mark.parametrize(("section", "key"), config_keys())
def test_every_config_key_is_documented(section, key):
    text = (DOCS / "configuration.md").read_text()
    if section:
        part = text.split(f"## `[{section}]`", 1)
        assert len(part) == 2, f"docs/configuration.md lacks a '## `[{section}]`' section"
        body = part[1].split("\n## ", 1)[0]
    else:
        body = text
    assert f"`{key}`" in body, f"docs/configuration.md does not document {section}.{key}"


CORE_MODULES = sorted(
    path.relative_to(ROOT / "chatcore").as_posix() for path in (ROOT / "chatcore").rglob("*.py")
)


def listed_core_modules() -> set[str]:
    """The first cells of docs/architecture.md's table of the core's modules."""
    text = (DOCS / "architecture.md").read_text()
    section = text.split("## The core (`chatcore/`)", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([^`]+)` \|", section, re.MULTILINE))


@pytest.mark.parametrize("module", CORE_MODULES)
def test_every_core_module_is_in_the_architecture_table(module):
    """docs/architecture.md lists each module of chatcore/ (and chatcore/testing/) by its path."""
    assert module in listed_core_modules(), (
        f"docs/architecture.md: the table of the core lacks a '| `{module}` | ... |' row"
    )


def code_blocks(page: str, language: str) -> list[str]:
    """The fenced code blocks of one language on a docs page, dedented (list items indent)."""
    text = (DOCS / page).read_text()
    blocks = re.findall(rf"^( *)```{language}\n(.*?)^\1```", text, re.MULTILINE | re.DOTALL)
    return [textwrap.dedent(body) for _, body in blocks]


def test_the_embedding_page_shows_the_example_the_suite_runs():
    (code,) = code_blocks("embedding.md", "python")
    assert code in (ROOT / "examples" / "embed.py").read_text(), (
        "docs/embedding.md: the code must be examples/embed.py's (tests/test_examples.py runs it)"
    )


def test_the_minimal_server_file_of_the_protocol_page_is_valid(tmp_path):
    (minimal,) = code_blocks("protocol.md", "toml")
    path = tmp_path / "chat.toml"
    path.write_text(minimal)
    settings = App.from_config(str(path)).settings
    assert settings.server.port == 8080
    assert settings.storage.url == "sqlite+aiosqlite:///./data/chat.db"
