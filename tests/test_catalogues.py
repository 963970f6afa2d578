"""`manage.py compile_catalogues` (`make compilemessages`) writes what msgfmt would, and the
committed .mo files are up to date with their .po files (docs/pages.md, Languages)."""

import shutil
from io import StringIO
from pathlib import Path

import polib
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

LOCALE = Path(settings.BASE_DIR) / "locale"


def entries(mo_path: Path) -> dict[str, str]:
    return {entry.msgid: entry.msgstr for entry in polib.mofile(str(mo_path)) if entry.msgid}


def test_the_committed_catalogues_are_compiled_from_their_po_files(tmp_path):
    copy = tmp_path / "locale"
    shutil.copytree(LOCALE, copy)
    with override_settings(LOCALE_PATHS=[str(copy)]):
        call_command("compile_catalogues", stdout=StringIO())
    for committed in LOCALE.glob("*/LC_MESSAGES/django.mo"):
        fresh = copy / committed.relative_to(LOCALE)
        assert entries(fresh) == entries(committed), f"{committed}: run make compilemessages"
    spanish = entries(LOCALE / "es" / "LC_MESSAGES" / "django.mo")
    assert spanish["Case number"] == "Número de expediente"


def test_fuzzy_entries_are_left_out_as_msgfmt_leaves_them(tmp_path):
    folder = tmp_path / "locale" / "es" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    catalogue = polib.POFile()
    catalogue.metadata = {"Content-Type": "text/plain; charset=UTF-8", "Language": "es"}
    catalogue.append(polib.POEntry(msgid="Done", msgstr="Hecho"))
    catalogue.append(polib.POEntry(msgid="Guess", msgstr="Adivina", flags=["fuzzy"]))
    catalogue.save(str(folder / "django.po"))
    with override_settings(LOCALE_PATHS=[str(tmp_path / "locale")]):
        call_command("compile_catalogues", stdout=StringIO())
    assert entries(folder / "django.mo") == {"Done": "Hecho"}
