"""Texts in several languages: a definition's `name`, `title`, `description` and form labels
may be a string or a map of language code to string (docs/definitions.md, Languages).

Pure: the site tells this module its languages and how to read the active one when it starts
(apps.py: settings.LANGUAGES and Django's get_language); until then the defaults below hold.
"""

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .checks import describe, suggest
from .problems import Report

Text = str | Mapping[str, str]  # text, or {language code: text}, the first entry the default

_LANGUAGE = re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})?")
_site = {"codes": ("en", "es"), "active": lambda: None}


def configure(*, codes: Iterable[str], active: Callable[[], str | None]) -> None:
    """Set the site's language codes (in order) and the reader of the active language."""
    _site["codes"] = tuple(codes)
    _site["active"] = active


def site_languages() -> tuple[str, ...]:
    """The language codes a language map may use."""
    return _site["codes"]


def active_language() -> str | None:
    """The language pages and emails are being written in now (None: the map's first)."""
    return _site["active"]()


def localized(text: Text, language: str | None = None) -> str:
    """Text in `language` from a string or a language map, else the map's first entry."""
    if isinstance(text, str):
        return text
    if language and language in text:
        return text[language]
    base = (language or "").split("-")[0]
    return text.get(base) or next(iter(text.values()), "")


def in_language(text: Text) -> str:
    """The text in the active language (falling back to the map's first entry)."""
    return localized(text, active_language())


def check_text_map(value: Any, path: tuple, report: Report, *, required: bool = False) -> Text:
    """Text, or a non-empty map of the site's language codes to non-empty text; "" when
    absent (or wrong: reported). `required` refuses an empty string too."""
    if not required and (value is None or isinstance(value, str)):
        return value or ""
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, Mapping) and value:
        for code, text in value.items():
            _check_entry(code, text, (*path, code), report)
        return dict(value)
    report.add(
        path,
        f"{path[-1]} must be text or a map of language to text ({{en: ..., es: ...}}), "
        f"not {describe(value)}",
    )
    return ""


def _check_entry(code: Any, text: Any, path: tuple, report: Report) -> None:
    codes = site_languages()
    if not isinstance(code, str) or not _LANGUAGE.fullmatch(code):
        report.add(path, f"'{code}' is not a language code such as {' or '.join(codes[:2])}")
    elif code not in codes and code.split("-")[0] not in codes:
        report.add(
            path,
            f"language '{code}' is not one of the site's languages ({', '.join(codes)}; "
            f"set by HMS_LANGUAGES){suggest(code, codes)}",
        )
    elif not isinstance(text, str) or not text.strip():
        report.add(path, f"the {code} text must be non-empty text, not {describe(text)}")
