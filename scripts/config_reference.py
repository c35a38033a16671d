"""Print the configuration reference (every section and key of the installed plugins) as
Markdown. docs/configuration.md embeds its output between the REFERENCE markers:

    .venv/bin/python scripts/config_reference.py --update docs/configuration.md
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic_core import PydanticUndefined

from chatcore.plugins import PluginHost
from chatcore.settings import CORE_SECTIONS, settings_class

BEGIN, END = "<!-- REFERENCE:BEGIN -->", "<!-- REFERENCE:END -->"


def default_of(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    else:
        value = field.default
    if value is PydanticUndefined or value is None:
        return "—"
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    return f"`{value!r}`"


def type_of(field: Any) -> str:
    text = str(field.annotation).replace("typing.", "").replace("pydantic.types.", "")
    text = text.replace("pydantic.networks.", "").replace("<class '", "").replace("'>", "")
    return text.replace("|", "\\|")


def reference() -> str:
    host = PluginHost.load()
    owners: dict[str, list[str]] = {name: ["core"] for name in CORE_SECTIONS}
    for info in host.describe():
        plugin = host.pm.get_plugin(info.name)
        hook = getattr(plugin, "chatcore_settings_models", None)
        for section in (hook() or {}) if hook else {}:
            owners.setdefault(section, []).append(info.name)
    cls = settings_class(host.settings_models())
    out = []
    for name, field in cls.model_fields.items():
        model = field.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        doc = (model.__doc__ or "").strip().split("\n\n")[0]
        doc = " ".join(doc.split()).removeprefix(f"`[{name}]`:").strip()
        doc = doc[:1].upper() + doc[1:]
        out += [f"## `[{name}]`", "", f"From: {', '.join(dict.fromkeys(owners.get(name, [])))}."]
        if doc:
            out += ["", doc]
        out += ["", "| key | type | default | meaning |", "|---|---|---|---|"]
        for key, sub in model.model_fields.items():
            meaning = " ".join((sub.description or "").split()).replace("|", "\\|")
            out.append(f"| `{key}` | {type_of(sub)} | {default_of(sub)} | {meaning} |")
        out.append("")
    return "\n".join(out)


def main() -> None:
    text = reference()
    if len(sys.argv) == 3 and sys.argv[1] == "--update":
        path = Path(sys.argv[2])
        doc = path.read_text()
        head, rest = doc.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        path.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")
    else:
        print(text)


if __name__ == "__main__":
    main()
