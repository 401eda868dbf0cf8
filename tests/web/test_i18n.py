"""The UI's languages: complete catalogs, labels for every stored term, local dates."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from comity.agreements.schemas import AgreementStatus
from comity.governance.documents import Choice
from comity.governance.services import _FROM as COUNCIL_STAGES
from comity.requests import lifecycle
from comity.sharing.stix import TLP
from comity.web.accounts import LANGUAGES, Role
from comity.web.i18n import LOCALE_DIR, format_when, translations
from comity.web.vocabulary import LABELS
from tests.requests.support import two_authorities
from tests.support import LocalFederation
from tests.web.support import Ui, make_user

ROOT = Path(__file__).resolve().parents[2]


def _pot_ids() -> set[str]:
    with (LOCALE_DIR / "comity.pot").open("rb") as f:
        return {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}


def test_every_stored_term_has_a_label() -> None:
    terms = {
        *(s.value for s in lifecycle.State), *lifecycle.EVENTS,
        *(e for ev in lifecycle.EVENTS.values() for e in (*ev.required, *ev.optional)),
        *(r.value for r in Role), *(s.value for s in AgreementStatus),
        *COUNCIL_STAGES, *(c.value for c in Choice), *(t.value for t in TLP),
        "overdue", "due-soon", "pending", "requester", "requested",
    }
    assert sorted(terms - set(LABELS)) == []


def test_catalog_template_is_current() -> None:
    """Every message in the code and templates is in comity.pot (run ``make messages``)."""
    method_map = [("src/comity/web/**.py", "python"),
                  ("src/comity/web/templates/**.html", "jinja2")]
    options = {"src/comity/web/templates/**.html": {
        "extensions": "jinja2.ext.i18n", "trim_blocks": "True", "lstrip_blocks": "True"}}
    found = set()
    for _, _, message, _, _ in extract_from_dir(str(ROOT), method_map, options,
                                                keywords={"_": None, "N_": None,
                                                          "gettext": None,
                                                          "ngettext": (1, 2)}):
        found.add(message if isinstance(message, str) else message[0])
    missing = sorted(found - _pot_ids())
    assert missing == [], "run `make messages` and translate: " + ", ".join(missing[:10])


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != "en"])
def test_catalog_is_complete_and_well_formed(language: str) -> None:
    with (LOCALE_DIR / language / "LC_MESSAGES" / "comity.po").open("rb") as f:
        catalog = read_po(f, locale=language)
    untranslated = sorted(m.id if isinstance(m.id, str) else m.id[0] for m in catalog
                          if m.id and not (m.string if isinstance(m.string, str)
                                           else all(m.string)))
    assert untranslated == []
    assert {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id} >= _pot_ids()
    # Placeholders such as %(count)s are kept in every translation.
    problems = [(m.id, errors) for m, errors in catalog.check() if errors]
    assert problems == []


def test_pages_speak_the_readers_language(fed: LocalFederation) -> None:
    fr, _, _ = two_authorities(fed)
    make_user(fr, "anne", Role.OFFICER, language="fr", timezone="Europe/Paris")
    make_user(fr, "li", Role.OFFICER, language="zh", timezone="Asia/Shanghai")
    french, chinese = Ui(fr, "anne").get("/ui/requests"), Ui(fr, "li").get("/ui/requests")
    assert '<html lang="fr">' in french.text
    assert translations("fr").gettext("Requests") in french.text
    assert translations("fr").gettext("Requests") != "Requests"
    assert '<html lang="zh">' in chinese.text
    assert translations("zh").gettext("Requests") in chinese.text
    # Before signing in, the browser's language.
    page = fr.client.get("/ui/login", headers={"accept-language": "zh-CN,zh;q=0.9"})
    assert '<html lang="zh">' in page.text


def test_dates_are_in_the_readers_zone_and_language() -> None:
    at = dt.datetime(2026, 11, 30, 21, 30, tzinfo=dt.UTC)
    assert format_when(at, "en", "UTC").endswith("21:30:00 UTC")
    nairobi = format_when(at, "fr", "Africa/Nairobi")
    assert "1 déc. 2026" in nairobi
    assert "00:30:00" in nairobi
    assert format_when("2026-11-30T21:30:00.000000Z", "zh", "Asia/Shanghai").startswith(
        "2026年12月1日")
    assert format_when(None, "en", "UTC") == ""
