"""Rules for the `form` of an `applicant` service: the fields the applicant is asked to fill in."""

import re
from collections.abc import Mapping
from typing import Any

from .checks import check_choice, check_keys, describe, suggest
from .languages import check_text_map
from .problems import Report
from .sizes import parse_size
from .specs import FormField

FORM_FIELDS = ("name", "label", "type", "required", "choices", "accept", "maxSize")
FIELD_TYPES = ("text", "textarea", "number", "date", "choice", "file")
# Types told by a file's content (its first bytes), never by its name: PDF and images.
DOCUMENT_TYPES = ("pdf", "png", "jpg", "gif", "webp", "tif", "heic")
DEFAULT_ACCEPT = ("pdf", "png", "jpg")
_ALIASES = {"jpeg": "jpg", "tiff": "tif"}
_ONLY_FOR = {"choices": "choice", "accept": "file", "maxSize": "file"}
_FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


def check_form(raw: Mapping, path: tuple, report: Report) -> tuple[FormField, ...]:
    """`form`: a non-empty list of fields with unique names."""
    value, where = raw.get("form"), (*path, "form")
    if not isinstance(value, list) or not value:
        shown = "missing" if value is None else describe(value)
        report.add(
            where,
            f"form is {shown}; an applicant service needs a list of fields, "
            "e.g. [{name: sitePlan, label: Site plan, type: file, required: true}]",
        )
        return ()
    fields = [_check_field(item, (*where, i), report) for i, item in enumerate(value)]
    seen: dict[str, int] = {}
    for index, found in enumerate(fields):
        if found and found.name in seen:
            report.add(
                (*where, index, "name"),
                f"duplicate field name '{found.name}'; form[{seen[found.name]}] already uses it",
            )
        elif found:
            seen[found.name] = index
    return tuple(f for f in fields if f)


def _check_field(raw: Any, path: tuple, report: Report) -> FormField | None:
    if not isinstance(raw, Mapping):
        report.add(
            path, f"each form field must be a mapping with 'name' and 'type', not {describe(raw)}"
        )
        return None
    check_keys(raw, FORM_FIELDS, path, report)
    name = _check_name(raw.get("name"), (*path, "name"), report)
    kind = raw.get("type", "text")
    if not check_choice(kind, FIELD_TYPES, (*path, "type"), report):
        kind = None
    for key, owner in _ONLY_FOR.items():
        if raw.get(key) is not None and kind and kind != owner:
            report.add((*path, key), f"{key} applies to {owner} fields only; this field is {kind}")
    required = raw.get("required", False)
    if not isinstance(required, bool):
        report.add((*path, "required"), f"required must be true or false, not {describe(required)}")
    label = (
        check_text_map(raw.get("label"), (*path, "label"), report, required=True)
        if "label" in raw
        else ""
    )
    choices = _check_choices(raw, path, report) if kind == "choice" else ()
    accept = _check_accept(raw.get("accept"), (*path, "accept"), report) if kind == "file" else ()
    max_size = None
    if kind == "file" and raw.get("maxSize") is not None:
        try:
            max_size = parse_size(raw["maxSize"])
        except ValueError as error:
            report.add((*path, "maxSize"), str(error))
    if not (name and kind) or not report.is_clean(path):
        return None
    return FormField(name, label or "", kind, required, choices, accept, max_size)


def _check_name(value: Any, path: tuple, report: Report) -> str | None:
    if value is None:
        report.add(path, "missing required field 'name' (the key of the answer, e.g. sitePlan)")
    elif not isinstance(value, str) or not _FIELD_NAME.fullmatch(value):
        report.add(
            path,
            f"name {describe(value)} must start with a letter and use only letters, digits "
            "and '_' (1-64 characters), e.g. sitePlan",
        )
    else:
        return value
    return None


def _check_choices(raw: Mapping, path: tuple, report: Report) -> tuple:
    value, where = raw.get("choices"), (*path, "choices")
    if not isinstance(value, list) or not value:
        report.add(
            where,
            f"a choice field needs choices, a non-empty list such as [yes, no], not {describe(value)}",
        )
        return ()
    found: dict[str, Any] = {}
    for index, item in enumerate(value):
        entry = _check_choice_entry(item, (*where, index), report)
        if entry and entry[0] in found:
            report.add((*where, index), f"choice '{entry[0]}' is listed twice")
        elif entry:
            found[entry[0]] = entry[1]
    return tuple(found.items())


def _check_choice_entry(item: Any, path: tuple, report: Report) -> tuple[str, Any] | None:
    if isinstance(item, str) and item.strip():
        return item, item
    if isinstance(item, Mapping) and isinstance(item.get("value"), str) and item["value"].strip():
        check_keys(item, ("value", "label"), path, report)
        label = (
            check_text_map(item["label"], (*path, "label"), report, required=True)
            if "label" in item
            else ""
        )
        return item["value"], label or item["value"]
    report.add(path, f"a choice is text, or {{value: ..., label: ...}}; not {describe(item)}")
    return None


def _check_accept(value: Any, path: tuple, report: Report) -> tuple[str, ...]:
    if value is None:
        return DEFAULT_ACCEPT
    if not isinstance(value, list) or not value:
        report.add(
            path, f"accept must be a non-empty list such as [pdf, png, jpg], not {describe(value)}"
        )
        return ()
    kinds = []
    for index, item in enumerate(value):
        name = _ALIASES.get(item.lower(), item.lower()) if isinstance(item, str) else None
        if name in DOCUMENT_TYPES:
            kinds.append(name)
            continue
        shown = f"'{item}'" if isinstance(item, str) else describe(item)
        report.add(
            (*path, index),
            f"{shown} is not a document type told by its content; use {', '.join(DOCUMENT_TYPES)}"
            + (suggest(item, DOCUMENT_TYPES) if isinstance(item, str) else ""),
        )
    return tuple(dict.fromkeys(kinds))
