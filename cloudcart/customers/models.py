"""API models of the customers area: profile, addresses, preferences and consent, export.

JSON field names are camelCase on the wire (`postalCode`, `isDefault`, `inApp`).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from cloudcart.core.fields import NOT_BLANK_PATTERN, is_blank
from cloudcart.customers.documents import Channel, MessageKind

CHANNELS: tuple[Channel, ...] = ("email", "sms", "whatsapp", "push", "inApp")
"""Notification channels, as named on the wire."""

KINDS: tuple[MessageKind, ...] = ("transactional", "marketing")
"""Kinds of message a customer can allow or refuse per channel."""

DEFAULT_ON: frozenset[tuple[str, str]] = frozenset(
    {("email", "transactional"), ("inApp", "transactional")}
)
"""(channel, kind) pairs that are on until the customer turns them off. Everything else
(WhatsApp, all marketing, and SMS/push until a phone or device is known to be wanted)
needs an explicit opt-in."""

PERSONALIZATION_DEFAULT = True
"""Browsing history and personalisation are on for a signed-in customer until they turn
them off (`PUT /api/me/preferences` with `personalization: false`)."""

MAX_ADDRESSES = 20

ConsentSource = Literal["web", "app", "api", "support"]
"""Where a consent change came from."""

E164 = re.compile(r"\+[1-9][0-9]{1,14}")
"""E.164: a plus, a country code not starting with 0, at most 15 digits in all."""

# BCP 47 language tags as storefronts use them: language, optional script, optional
# region (`en`, `en-IN`, `zh-Hant-TW`, `es-419`). Private-use and variant subtags are not
# needed to pick a translation, so they are refused rather than half-supported.
BCP47 = re.compile(r"[a-zA-Z]{2,3}(-[a-zA-Z]{4})?(-([a-zA-Z]{2}|[0-9]{3}))?")

# ISO 3166-1 alpha-2 officially assigned codes (249). A constant rather than a package:
# it changes once in years, and importing a country database would cost every cold start.
ISO_COUNTRIES: frozenset[str] = frozenset(
    [
        "AD",
        "AE",
        "AF",
        "AG",
        "AI",
        "AL",
        "AM",
        "AO",
        "AQ",
        "AR",
        "AS",
        "AT",
        "AU",
        "AW",
        "AX",
        "AZ",
        "BA",
        "BB",
        "BD",
        "BE",
        "BF",
        "BG",
        "BH",
        "BI",
        "BJ",
        "BL",
        "BM",
        "BN",
        "BO",
        "BQ",
        "BR",
        "BS",
        "BT",
        "BV",
        "BW",
        "BY",
        "BZ",
        "CA",
        "CC",
        "CD",
        "CF",
        "CG",
        "CH",
        "CI",
        "CK",
        "CL",
        "CM",
        "CN",
        "CO",
        "CR",
        "CU",
        "CV",
        "CW",
        "CX",
        "CY",
        "CZ",
        "DE",
        "DJ",
        "DK",
        "DM",
        "DO",
        "DZ",
        "EC",
        "EE",
        "EG",
        "EH",
        "ER",
        "ES",
        "ET",
        "FI",
        "FJ",
        "FK",
        "FM",
        "FO",
        "FR",
        "GA",
        "GB",
        "GD",
        "GE",
        "GF",
        "GG",
        "GH",
        "GI",
        "GL",
        "GM",
        "GN",
        "GP",
        "GQ",
        "GR",
        "GS",
        "GT",
        "GU",
        "GW",
        "GY",
        "HK",
        "HM",
        "HN",
        "HR",
        "HT",
        "HU",
        "ID",
        "IE",
        "IL",
        "IM",
        "IN",
        "IO",
        "IQ",
        "IR",
        "IS",
        "IT",
        "JE",
        "JM",
        "JO",
        "JP",
        "KE",
        "KG",
        "KH",
        "KI",
        "KM",
        "KN",
        "KP",
        "KR",
        "KW",
        "KY",
        "KZ",
        "LA",
        "LB",
        "LC",
        "LI",
        "LK",
        "LR",
        "LS",
        "LT",
        "LU",
        "LV",
        "LY",
        "MA",
        "MC",
        "MD",
        "ME",
        "MF",
        "MG",
        "MH",
        "MK",
        "ML",
        "MM",
        "MN",
        "MO",
        "MP",
        "MQ",
        "MR",
        "MS",
        "MT",
        "MU",
        "MV",
        "MW",
        "MX",
        "MY",
        "MZ",
        "NA",
        "NC",
        "NE",
        "NF",
        "NG",
        "NI",
        "NL",
        "NO",
        "NP",
        "NR",
        "NU",
        "NZ",
        "OM",
        "PA",
        "PE",
        "PF",
        "PG",
        "PH",
        "PK",
        "PL",
        "PM",
        "PN",
        "PR",
        "PS",
        "PT",
        "PW",
        "PY",
        "QA",
        "RE",
        "RO",
        "RS",
        "RU",
        "RW",
        "SA",
        "SB",
        "SC",
        "SD",
        "SE",
        "SG",
        "SH",
        "SI",
        "SJ",
        "SK",
        "SL",
        "SM",
        "SN",
        "SO",
        "SR",
        "SS",
        "ST",
        "SV",
        "SX",
        "SY",
        "SZ",
        "TC",
        "TD",
        "TF",
        "TG",
        "TH",
        "TJ",
        "TK",
        "TL",
        "TM",
        "TN",
        "TO",
        "TR",
        "TT",
        "TV",
        "TW",
        "TZ",
        "UA",
        "UG",
        "UM",
        "US",
        "UY",
        "UZ",
        "VA",
        "VC",
        "VE",
        "VG",
        "VI",
        "VN",
        "VU",
        "WF",
        "WS",
        "YE",
        "YT",
        "ZA",
        "ZM",
        "ZW",
    ]
)


def any_case(word: str) -> str:
    """A regex matching `word` in any letter case (JSON Schema patterns have no flags)."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in word)


# What the validators below accept, as JSON Schema patterns, so the document states the rules
# while the validators keep their own messages.
PHONE_PATTERN = r"^[\s().-]*\+[\s().-]*[1-9]([\s().-]*[0-9]){1,14}[\s().-]*$"
LOCALE_PATTERN = f"^{BCP47.pattern}$"
# The special-use domain names email_validator refuses (`x@shop.test`, `x@localhost`).
EMAIL_PATTERN = (
    r"^(?![\s\S]*[@.]("
    + "|".join(any_case(n) for n in ("arpa", "invalid", "local", "localhost", "onion", "test"))
    + r")$)"
)


def _country_pattern() -> str:
    second_letters: dict[str, set[str]] = {}
    for code in ISO_COUNTRIES:
        second_letters.setdefault(code[0], set()).add(code[1])
    return (
        "^("
        + "|".join(
            f"{any_case(first)}[{''.join(c + c.lower() for c in sorted(seconds))}]"
            for first, seconds in sorted(second_letters.items())
        )
        + ")$"
    )


COUNTRY_PATTERN = _country_pattern()


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class _Input(BaseModel):
    # Unknown fields are refused so a typo (`postcode`) is a clear 422, not a silent no-op.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


def validate_email_address(value: str) -> str:
    """The normalised address (domain lower-cased, IDNA handled) or ValueError.

    Syntax only: a deliverability check would need DNS at request time.
    """
    # Imported here: email_validator (and its idna tables) loads on the first write only.
    from email_validator import EmailNotValidError, validate_email

    try:
        return str(validate_email(value, check_deliverability=False).normalized)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from None


def validate_phone(value: str) -> str:
    """`value` without spaces, dashes, dots or parentheses if it is E.164; else ValueError."""
    compact = re.sub(r"[\s().-]", "", value)
    if not E164.fullmatch(compact):
        raise ValueError("phone must be in E.164 form, e.g. +919876543210")
    return compact


# IANA names are ASCII path segments (`Asia/Kolkata`, `America/Argentina/Buenos_Aires`,
# `Etc/GMT+5`); checking the shape first keeps odd keys away from the file lookup.
IANA_TIME_ZONE = re.compile(r"[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+){0,2}")
# Files in the zone database that name the host's settings rather than a zone.
_NOT_ZONES = frozenset({"localtime", "posixrules", "posix", "right"})


def _time_zone_schema(schema: dict[str, Any]) -> None:
    # Listed when the document is built (not at import: listing reads the zone database);
    # null stays allowed beside the names (it clears the field).
    from zoneinfo import available_timezones

    zones = sorted(
        zone
        for zone in available_timezones()
        if IANA_TIME_ZONE.fullmatch(zone) and zone.split("/")[0] not in _NOT_ZONES
    )
    schema["enum"] = [*zones, None]


def validate_time_zone(value: str) -> str:
    """`value` if it names an IANA time zone that `zoneinfo` knows; else ValueError."""
    # Imported here: only a profile write needs it, not every cold start.
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not IANA_TIME_ZONE.fullmatch(value) or value.split("/")[0] in _NOT_ZONES:
        raise ValueError("timeZone must be an IANA time zone name such as Asia/Kolkata")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name such as Asia/Kolkata"
        ) from None
    return value


def validate_locale(value: str) -> str:
    """A BCP 47 tag in canonical case (`en-IN`, `zh-Hant-TW`) or ValueError."""
    if not BCP47.fullmatch(value):
        raise ValueError("locale must be a BCP 47 tag such as en-IN")
    parts = value.split("-")
    out = [parts[0].lower()]
    for part in parts[1:]:
        out.append(part.title() if len(part) == 4 else part.upper())
    return "-".join(out)


# --- profile ------------------------------------------------------------------------------


class Profile(_Wire):
    """The customer's profile."""

    customer_id: str = Field(description="Stable id of the customer (the token's subject).")
    name: str | None = Field(None, description="Display name.")
    email: str | None = Field(None, description="Contact email address.")
    phone: str | None = Field(None, description="Phone number in E.164 form (+919876543210).")
    locale: str | None = Field(None, description="Preferred language, BCP 47 (en-IN).")
    time_zone: str | None = Field(
        None, description="IANA time zone (Asia/Kolkata); quiet hours are in this zone."
    )
    # Profiles stored before verification existed lack these fields: unverified.
    email_verified: bool = Field(
        False,
        description="Read-only. Whether `email` was proven with a code "
        "(`POST /api/me/verify/email`); changing `email` makes it false again.",
    )
    phone_verified: bool = Field(
        False,
        description="Read-only. Whether `phone` was proven with an SMS code "
        "(`POST /api/me/verify/phone`); changing `phone` makes it false again.",
    )
    created_at: datetime = Field(description="When the profile was created.")
    updated_at: datetime = Field(description="When the profile last changed.")


class ProfilePatch(_Input):
    """Fields to change; omitted fields keep their value, `null` clears one.

    `emailVerified` and `phoneVerified` are not settable here (a verification code sets
    them); sending them is a 422 like any unknown field."""

    name: str | None = Field(
        None, min_length=1, max_length=200, json_schema_extra={"pattern": NOT_BLANK_PATTERN}
    )
    email: str | None = Field(
        None,
        max_length=254,
        description="An email address; special-use domains (`.test`, `.local`, ...) are refused.",
        json_schema_extra={"format": "email", "pattern": EMAIL_PATTERN},
    )
    phone: str | None = Field(
        None,
        max_length=32,
        description="E.164 (+919876543210); spaces, dots, dashes and parentheses are ignored.",
        json_schema_extra={"pattern": PHONE_PATTERN},
    )
    locale: str | None = Field(
        None,
        max_length=35,
        description="BCP 47 language tag: language, optional script, optional region (en-IN).",
        json_schema_extra={"pattern": LOCALE_PATTERN},
    )
    time_zone: str | None = Field(
        None,
        max_length=64,
        description="IANA name (Asia/Kolkata).",
        json_schema_extra=_time_zone_schema,
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and is_blank(value):
            raise ValueError("name must not be blank")
        return value.strip() if value is not None else None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return validate_email_address(value) if value is not None else None

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return validate_phone(value) if value is not None else None

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str | None) -> str | None:
        return validate_locale(value) if value is not None else None

    @field_validator("time_zone")
    @classmethod
    def _time_zone(cls, value: str | None) -> str | None:
        return validate_time_zone(value) if value is not None else None


# --- addresses ----------------------------------------------------------------------------


class AddressInput(_Input):
    """A postal address as the customer enters it (POST and PUT take the whole address)."""

    name: str = Field(
        min_length=1,
        max_length=200,
        description="Recipient name.",
        json_schema_extra={"pattern": NOT_BLANK_PATTERN},
    )
    line1: str = Field(
        min_length=1, max_length=200, json_schema_extra={"pattern": NOT_BLANK_PATTERN}
    )
    line2: str | None = Field(None, max_length=200)
    city: str = Field(
        min_length=1, max_length=100, json_schema_extra={"pattern": NOT_BLANK_PATTERN}
    )
    region: str | None = Field(None, max_length=100, description="State, province or county.")
    postal_code: str | None = Field(
        None, max_length=20, description="Postal code (some countries have none)."
    )
    country: str = Field(
        min_length=2,
        max_length=2,
        description="ISO 3166-1 alpha-2 code, any case (IN, de).",
        json_schema_extra={"pattern": COUNTRY_PATTERN},
    )
    phone: str | None = Field(
        None,
        max_length=32,
        description="E.164 phone for the courier (spaces, dots, dashes and parentheses are "
        "ignored).",
        json_schema_extra={"pattern": PHONE_PATTERN},
    )
    is_default: bool = Field(
        False,
        strict=True,  # lax booleans would take 0, 1 and "yes"
        description="Make this the default address (the previous default stops being it). "
        "The first address is always the default.",
    )

    @field_validator("name", "line1", "city")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if is_blank(value):
            raise ValueError("must not be blank")
        return value.strip()

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        code = value.upper()
        if code not in ISO_COUNTRIES:
            raise ValueError("country must be an ISO 3166-1 alpha-2 code such as IN or DE")
        return code

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return validate_phone(value) if value is not None else None


class Address(_Wire):
    """A stored address of the customer."""

    id: str
    name: str
    line1: str
    line2: str | None = None
    city: str
    region: str | None = None
    postal_code: str | None = None
    country: str
    phone: str | None = None
    is_default: bool
    created_at: datetime
    updated_at: datetime


class AddressList(_Wire):
    """The customer's addresses, the default first, then oldest first."""

    items: list[Address]
    max_addresses: int = Field(MAX_ADDRESSES, description="How many addresses a customer may keep.")


# --- preferences and consent --------------------------------------------------------------


class ChannelPreference(_Wire):
    """Whether a channel may carry each kind of message."""

    transactional: bool
    marketing: bool


class ChannelPreferenceUpdate(_Input):
    """Changes for one channel; an omitted kind keeps its value."""

    # Strict: lax booleans would take 0, 1 and "yes".
    transactional: bool | None = Field(None, strict=True)
    marketing: bool | None = Field(None, strict=True)


class Channels(_Wire):
    """Preferences per channel."""

    email: ChannelPreference
    sms: ChannelPreference
    whatsapp: ChannelPreference
    push: ChannelPreference
    in_app: ChannelPreference


class ChannelsUpdate(_Input):
    """Changes per channel; an omitted channel keeps its preferences."""

    email: ChannelPreferenceUpdate | None = None
    sms: ChannelPreferenceUpdate | None = None
    whatsapp: ChannelPreferenceUpdate | None = None
    push: ChannelPreferenceUpdate | None = None
    in_app: ChannelPreferenceUpdate | None = None


class ConsentRecord(_Wire):
    """The current consent for one channel and kind: what, when and through what."""

    granted: bool
    at: datetime | None = Field(description="When it was last changed (null: the default).")
    source: Literal["default", "web", "app", "api", "support", "provider"] = Field(
        description="`provider`: the customer told the email or SMS provider (an "
        "unsubscribe link, a STOP reply); the others as given with the change."
    )


class ConsentEntry(_Wire):
    """One change in the append-only consent history."""

    id: str
    preference: Literal["channel", "personalization"] = Field(
        "channel",
        description="What changed: a channel and kind (`channel`), or the `personalization` "
        "preference (then `channel` and `kind` are null).",
    )
    channel: str | None
    kind: str | None
    granted: bool
    at: datetime
    source: ConsentSource | Literal["provider"]


class Preferences(_Wire):
    """Notification preferences with the consent behind each of them."""

    channels: Channels
    consents: dict[str, dict[str, ConsentRecord]] = Field(
        description="Per channel and kind: the consent record the preference rests on."
    )
    personalization: bool = Field(
        description="Whether browsing history is recorded and used to personalise the shop "
        "(on until the customer turns it off; turning it off deletes the recorded history)."
    )
    personalization_consent: ConsentRecord = Field(
        description="The consent record the `personalization` preference rests on."
    )
    history: list[ConsentEntry] = Field(
        description="Consent changes, oldest first (the most recent 100; the export has all)."
    )


class PreferencesUpdate(_Input):
    """New preferences; `source` (or the `X-Consent-Source` header) says where the consent
    was given, `api` when neither does. Omitted parts keep their values."""

    channels: ChannelsUpdate | None = None
    personalization: bool | None = Field(
        None,
        strict=True,
        description="Record browsing history and personalise the shop (true) or not (false: "
        "the recorded history is deleted and nothing more is recorded).",
    )
    source: ConsentSource | None = None


# --- privacy ------------------------------------------------------------------------------


class CustomerExport(_Wire):
    """Everything Cloudcart holds about the caller, one section per contributor."""

    customer_id: str
    exported_at: datetime
    sections: dict[str, Any] = Field(
        description="Per contributor (`profile`, `addresses`, `preferences`, "
        "`consentHistory`, `sessions`, `customerDocuments`, `events`, and any other area "
        "that registered one): what it holds about the customer."
    )
