"""Does a loaded plugin serve each backend URL of the config? Answered before any backend loads.

The `url` of `[storage]`, `[broker]` and `[media]` picks the backend. The plugins that provide
one (`chatcore_storage`, ...) name the URL schemes they serve in the `url_schemes` of the
settings model they contribute for that section (`chatcore.settings.BackendSection`). When
every provider of a section says, a URL none of them serves is a config problem, reported by
`chatcore check-config` like a bad key; when one does not say (or none is loaded), the check is
left to start-up, which fails with "no plugin provides the ..." (also when an installed plugin
failed to import: start-up names it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from chatcore.plugins import PluginHost
    from chatcore.settings import Settings

__all__ = ["PROVIDERS", "served_schemes", "unserved_urls"]

#: Section -> the hook whose answer serves its `url`.
PROVIDERS = {
    "storage": "chatcore_storage",
    "broker": "chatcore_broker",
    "media": "chatcore_media_store",
}


def unserved_urls(settings: Settings, host: PluginHost) -> list[str]:
    """One `section.url: ...` problem per backend URL no loaded plugin serves."""
    if settings.role != "server":  # a client builds no backends
        return []
    if host.skipped:
        # A plugin that failed to import may be the one serving a URL: start-up says which.
        return []
    problems = []
    for section, hook_name in PROVIDERS.items():
        served = served_schemes(host, section, hook_name)
        url = getattr(getattr(settings, section, None), "url", None)
        if not served or not isinstance(url, str):
            continue
        scheme = urlsplit(url).scheme.lower() if "://" in url else ""
        if scheme in served:
            continue
        expected = ", ".join(f"{s}://" for s in sorted(served))
        got = f"no loaded plugin serves {scheme}:// URLs" if scheme else "not a URL"
        problems.append(f"{section}.url: {got}; expected one of: {expected}")
    return problems


def served_schemes(host: PluginHost, section: str, hook_name: str) -> set[str] | None:
    """The schemes the providers of `section` serve; None when one of them does not say."""
    schemes: set[str] = set()
    for impl in getattr(host.hook, hook_name).get_hookimpls():
        contribute = getattr(impl.plugin, "chatcore_settings_models", None)
        model = (contribute() or {}).get(section) if callable(contribute) else None
        declared = getattr(model, "url_schemes", None)
        if declared is None:
            return None
        schemes.update(scheme.lower() for scheme in declared)
    return schemes
