"""`python manage.py compile_catalogues`: every locale/*/LC_MESSAGES/django.po to its .mo.

What Django's `compilemessages` does, without GNU gettext's msgfmt (a system package): polib,
from PyPI, reads and writes the catalogues (`make compilemessages`; docs/pages.md, Languages).
Fuzzy entries are left out, as msgfmt leaves them out.
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Compile every .po catalogue in LOCALE_PATHS to its .mo (no GNU gettext needed)."

    def handle(self, *args, **options) -> None:
        try:
            import polib
        except ImportError:
            raise CommandError("polib is missing: pip install polib (or make venv)") from None
        found = sorted(
            po for folder in settings.LOCALE_PATHS for po in Path(folder).glob("*/LC_MESSAGES/*.po")
        )
        if not found:
            raise CommandError(f"no .po files under {', '.join(map(str, settings.LOCALE_PATHS))}")
        for path in found:
            catalogue = polib.pofile(str(path))
            for entry in catalogue.fuzzy_entries():
                catalogue.remove(entry)
            catalogue.save_as_mofile(str(path.with_suffix(".mo")))
            done = catalogue.percent_translated()
            self.stdout.write(f"{path.with_suffix('.mo')}: {done}% translated")
