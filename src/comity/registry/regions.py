"""Countries: ISO 3166-1 alpha-2 codes, their UN M49 macro-region, and their populations.

:data:`REGION_OF` maps every officially assigned ISO 3166-1 alpha-2 code
(249 of them) to one of the five macro-regions of the UN Statistics
Division's *Standard country or area codes for statistical use* (M49):
Africa, Americas, Asia, Europe and Oceania, or to ``None`` for Antarctica
(``AQ``), which M49 places in no region. The table is written out below by
M49 sub-region so that it can be checked line by line against the UNSD
list; it is data, not derived from any package.

One departure from M49: ``TW`` (Taiwan) is not listed separately by M49,
which counts it within China; it is placed in Asia here, where it lies,
since registries delegate to it under its own code.

Codes that registries use but that are not countries (``EU``, ``AP``,
``ZZ``, an empty code, anything not in the table, such as the user-assigned
``XK``) are not countries here: :func:`non_country_meaning` says what each
stands for, and the statistics report them apart.

Populations, for per-capita figures, come from a :class:`Populations`:
:func:`default_populations` gives those bundled with the ``countryinfo``
package when it is installed (approximate, of mixed years; the source is
named in every report that uses them), and none otherwise. No figure is
written here.

Trust assumptions: country codes come from delegation rows, which came from
imported files or council decisions; they are only looked up here, never
trusted to be valid.

Example::

    region_of("KE")        # Region.AFRICA
    is_country("EU")       # False
    non_country_meaning("EU")  # "EU: European Union (a registry code, not a country)"
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

__all__ = ["ISO_CODES", "REGION_OF", "CountryInfoPopulations", "Populations", "Region",
           "StaticPopulations", "UnknownPopulations", "default_populations", "is_country",
           "non_country_meaning", "normalise_code", "region_of"]


class Region(enum.StrEnum):
    """The five UN M49 macro-regions."""

    AFRICA = "Africa"
    AMERICAS = "Americas"
    ASIA = "Asia"
    EUROPE = "Europe"
    OCEANIA = "Oceania"


# M49 sub-region -> the alpha-2 codes in it, per macro-region (UNSD M49 "geographic
# regions"; Latin America and the Caribbean is split into its three intermediate regions).
_TABLE: dict[Region | None, dict[str, str]] = {
    Region.AFRICA: {
        "Northern Africa": "DZ EG EH LY MA SD TN",
        "Eastern Africa": "BI DJ ER ET IO KE KM MG MU MW MZ RE RW SC SO SS TF TZ UG YT ZM ZW",
        "Middle Africa": "AO CD CF CG CM GA GQ ST TD",
        "Southern Africa": "BW LS NA SZ ZA",
        "Western Africa": "BF BJ CI CV GH GM GN GW LR ML MR NE NG SH SL SN TG",
    },
    Region.AMERICAS: {
        "Caribbean": "AG AI AW BB BL BQ BS CU CW DM DO GD GP HT JM KN KY LC MF MQ MS PR SX "
                     "TC TT VC VG VI",
        "Central America": "BZ CR GT HN MX NI PA SV",
        "South America": "AR BO BR BV CL CO EC FK GF GS GY PE PY SR UY VE",
        "Northern America": "BM CA GL PM US",
    },
    Region.ASIA: {
        "Central Asia": "KG KZ TJ TM UZ",
        "Eastern Asia": "CN HK JP KP KR MN MO TW",
        "South-eastern Asia": "BN ID KH LA MM MY PH SG TH TL VN",
        "Southern Asia": "AF BD BT IN IR LK MV NP PK",
        "Western Asia": "AE AM AZ BH CY GE IL IQ JO KW LB OM PS QA SA SY TR YE",
    },
    Region.EUROPE: {
        "Eastern Europe": "BG BY CZ HU MD PL RO RU SK UA",
        "Northern Europe": "AX DK EE FI FO GB GG IE IM IS JE LT LV NO SE SJ",
        "Southern Europe": "AD AL BA ES GI GR HR IT ME MK MT PT RS SI SM VA",
        "Western Europe": "AT BE CH DE FR LI LU MC NL",
    },
    Region.OCEANIA: {
        "Australia and New Zealand": "AU CC CX HM NF NZ",
        "Melanesia": "FJ NC PG SB VU",
        "Micronesia": "FM GU KI MH MP NR PW UM",
        "Polynesia": "AS CK NU PF PN TK TO TV WF WS",
    },
    None: {
        "Antarctica": "AQ",
    },
}

REGION_OF: Mapping[str, Region | None] = MappingProxyType({
    code: region
    for region, subregions in _TABLE.items()
    for codes in subregions.values()
    for code in codes.split()
})
ISO_CODES: frozenset[str] = frozenset(REGION_OF)

# Codes registries use for what is not one country. RIR statistics files use
# EU and AP for space handed out across a whole region, and ZZ (or nothing)
# for space with no country recorded.
_NON_COUNTRY: Mapping[str, str] = MappingProxyType({
    "EU": "European Union (a registry code, not a country)",
    "AP": "Asia-Pacific (a registry code, not a country)",
    "ZZ": "unknown or unassigned country",
    "": "no country given",
})


def normalise_code(code: str | None) -> str:
    """The code as looked up: stripped and upper case, ``""`` for none."""
    return (code or "").strip().upper()


def is_country(code: str | None) -> bool:
    """Whether ``code`` is an assigned ISO 3166-1 alpha-2 code (``EU``, ``ZZ`` are not)."""
    return normalise_code(code) in ISO_CODES


def region_of(code: str | None) -> Region | None:
    """The M49 macro-region of a country code; ``None`` for Antarctica and non-countries."""
    return REGION_OF.get(normalise_code(code))


def non_country_meaning(code: str | None) -> str:
    """What a code that is not a country stands for, for reports."""
    norm = normalise_code(code)
    meaning = _NON_COUNTRY.get(norm, "not an ISO 3166-1 country code")
    return f"{norm or '(none)'}: {meaning}"


# -- populations ---------------------------------------------------------------------------

class Populations(Protocol):
    """Population per country, for per-capita figures."""

    @property
    def source(self) -> str | None:
        """Where the figures come from (named in every report), ``None`` for none."""
        ...

    def of(self, country: str) -> int | None:
        """The population of an ISO alpha-2 code, ``None`` when unknown."""
        ...


@dataclass(frozen=True)
class StaticPopulations:
    """Figures given by the caller, with their source (tests; an operator's own table)."""

    figures: Mapping[str, int]
    source: str | None

    def of(self, country: str) -> int | None:
        value = self.figures.get(country)
        return value if value is not None and value > 0 else None


class UnknownPopulations:
    """No population data: every per-capita figure is unknown."""

    source: str | None = None

    def of(self, country: str) -> int | None:
        return None


class CountryInfoPopulations:
    """The populations bundled with the ``countryinfo`` package (offline).

    Its figures are approximate, compiled from Wikipedia, and of mixed and
    unstated years (about 2009 to 2015 for the 1.0.1 data): fit for orders
    of magnitude, not for fine comparisons. A code is used only when the
    package resolves it to an entry with that same alpha-2 code, and a
    population of 0 or none is unknown.

    Raises:
        ImportError: the package is not installed.
    """

    def __init__(self) -> None:
        from importlib.metadata import version

        from countryinfo import CountryInfo
        from countryinfo.exceptions import CountryNotFoundError

        self._lookup = CountryInfo
        self._missing = CountryNotFoundError
        self._cache: dict[str, int | None] = {}
        self.source: str | None = (
            f"countryinfo {version('countryinfo')} (approximate figures compiled from "
            "Wikipedia, of mixed and unstated years)")

    def of(self, country: str) -> int | None:
        if country not in self._cache:
            self._cache[country] = self._find(country)
        return self._cache[country]

    def _find(self, country: str) -> int | None:
        try:
            info = self._lookup(country)
        except self._missing:
            return None
        # The package also matches names and spellings: keep only an exact code match.
        if info.iso(2) != country:
            return None
        value = info.population()
        return value if value is not None and value > 0 else None


def default_populations() -> Populations:
    """``countryinfo``'s populations when it is installed, else unknown populations."""
    try:
        return CountryInfoPopulations()
    except ImportError:
        return UnknownPopulations()
