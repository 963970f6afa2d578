"""Template tags for the staff pages: moments written for people, and an answer's reasons.

Registered as the template library `moments` (settings.TEMPLATES, OPTIONS "libraries").
"""

from datetime import datetime
from typing import Any

from django import template
from django.utils import timezone
from django.utils.dateformat import format as format_date
from django.utils.html import format_html

from ..queries import outcomes

register = template.Library()

PEOPLE_FORMAT = "j M Y, H:i T"  # 5 Dec 2026, 23:19 CET: the site's time zone, named


def for_people(moment: datetime) -> str:
    """'5 Dec 2026, 23:19 CET': a moment in the site's time zone, as people write it."""
    return format_date(timezone.localtime(moment), PEOPLE_FORMAT)


@register.simple_tag
def moment(value: datetime | None) -> str:
    """<time datetime="ISO">5 Dec 2026, 23:19 CET</time>, or "" for no moment."""
    if not value:
        return ""
    return format_html('<time datetime="{}">{}</time>', value.isoformat(), for_people(value))


@register.filter
def reasons(output: Any) -> list[str]:
    """The plain-language reasons of a step's answer (`data.reasons`), text only."""
    return outcomes.reasons_of(output)
