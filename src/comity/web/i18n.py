"""The UI's languages: gettext catalogs, and dates in the reader's language and time zone.

Catalogs are the ``.po`` files under ``locale/`` (``make messages`` refreshes
them from the templates and code); they are compiled in memory when the
process starts, so there is no generated binary to keep in step.
"""

from __future__ import annotations

import datetime as dt
import gettext
import io
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from comity.web.accounts import LANGUAGES

__all__ = ["DOMAIN", "LOCALE_DIR", "format_when", "translations"]

DOMAIN = "comity"
LOCALE_DIR = Path(__file__).parent / "locale"


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The catalog of ``language`` (English: the messages as written)."""
    if language not in LANGUAGES or language == LANGUAGES[0]:
        return gettext.NullTranslations()
    po = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with po.open("rb") as f:
        catalog = read_po(f, locale=language, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


@cache
def _locale(language: str) -> Locale:
    return Locale.parse({"zh": "zh_Hans_CN", "fr": "fr_FR"}.get(language, "en_GB"))


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def format_when(value: dt.datetime | str | None, language: str, timezone: str,
                *, style: str = "medium") -> str:
    """A timestamp as the reader reads dates, in the reader's time zone (with its name)."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    local = value.astimezone(_zone(timezone))
    pattern = {"medium": "medium", "short": "short"}.get(style, "medium")
    return f"{format_datetime(local, format=pattern, locale=_locale(language))} {local:%Z}"
