"""Normalise and hash customer identifiers for ad-platform customer lists.

Meta Custom Audiences and Google Customer Match only match a hashed identifier when it was
normalised exactly the way the platform normalises its own users' data before hashing, so every
rule here follows the platforms' published recipes (see /work/shared/CONTRACTS.md, "Ad platforms").

Contract for every public function: invalid input (None, empty, no digits, unparseable) gives
None and never raises -- a bad row must be skipped, and the raw value must never leak into a
payload in place of a hash.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

__all__ = [
    "sha256_hex",
    "normalize_email_meta",
    "normalize_email_google",
    "normalize_phone_e164",
    "normalize_phone_meta",
    "normalize_phone_google",
    "normalize_name_meta",
    "hash_email_meta",
    "hash_phone_meta",
    "hash_name_meta",
    "hash_email_google",
    "hash_phone_google",
    "normalize_country_google",
    "normalize_postal_code_google",
]

# Calling code and national trunk prefix for the regions our data contains. The trunk prefix
# ("0" in Korea, "1" in the NANP) is dialled only inside the country and is not part of E.164.
_REGIONS: dict[str, tuple[str, str]] = {
    "KR": ("82", "0"),
    "US": ("1", "1"),
    "CA": ("1", "1"),
    "JP": ("81", "0"),
    "CN": ("86", "0"),
    "GB": ("44", "0"),
}
# National significant number lengths we accept per calling code (after the trunk prefix is
# removed): KR 02-123-4567 has 9 digits incl. the area code "2" -> 8..10; NANP is always 10.
_NATIONAL_LENGTHS: dict[str, range] = {
    "82": range(8, 11),
    "1": range(10, 11),
    "81": range(9, 11),
    "86": range(10, 12),
    "44": range(9, 11),
}
# Calling codes whose numbers are sometimes written with the trunk zero after the country
# code ("+82 010-...", "+44 (0)20 ..."); E.164 drops it.
_TRUNK_ZERO_CODES = ("82", "81", "86", "44")

# Characters people put inside phone numbers for readability; anything else (letters,
# "ext", "#") makes the value unparseable rather than silently mangled.
_PHONE_ALLOWED = re.compile(r"^\+?[0-9\s\-.()/]+$")
_EMAIL_SHAPE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def sha256_hex(normalised: str | None) -> str | None:
    """SHA-256 of the UTF-8 bytes, lowercase hex, as both platforms require."""
    if not normalised:
        return None
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


# --- email ---------------------------------------------------------------------------------

def normalize_email_meta(raw: object) -> str | None:
    """Trimmed and lowercased; nothing else (Meta does not strip Gmail dots)."""
    if not isinstance(raw, str):
        return None
    email = raw.strip().lower()
    if not _EMAIL_SHAPE.match(email):
        return None
    return email


def normalize_email_google(raw: object) -> str | None:
    """Trimmed and lowercased; for gmail.com / googlemail.com the dots of the local part are
    removed, because Gmail ignores them and Google matches on the canonical address."""
    email = normalize_email_meta(raw)
    if email is None:
        return None
    local, _, domain = email.rpartition("@")
    if domain in ("gmail.com", "googlemail.com"):
        local = local.replace(".", "")
        if not local:
            return None
    return f"{local}@{domain}"


# --- phone ---------------------------------------------------------------------------------

def normalize_phone_e164(raw: object, default_region: str = "KR") -> str | None:
    """E.164 with "+": "010-1234-5678" -> "+821012345678", "(650)555-1212" (US) -> "+16505551212".

    A number starting with "+" (or the international prefix "00") carries its own country code;
    otherwise it is read as a national number of `default_region`.
    """
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if not text or not _PHONE_ALLOWED.match(text):
        return None
    digits = re.sub(r"\D", "", text)
    if not digits:
        return None

    if text.startswith("+") or digits.startswith("00"):
        international = digits[2:] if not text.startswith("+") else digits
        international = _drop_trunk_zero_after_country_code(international)
        if international.startswith("0"):
            return None  # no country code starts with 0
        code = _known_calling_code(international)
        if code is not None and len(international) - len(code) not in _NATIONAL_LENGTHS[code]:
            return None
        if not 8 <= len(international) <= 15:  # E.164 allows at most 15 digits
            return None
        return "+" + international

    region = _REGIONS.get((default_region or "").upper())
    if region is None:
        return None
    calling_code, trunk = region
    national = digits
    if calling_code == "1" and len(national) == 11 and national.startswith("1"):
        national = national[1:]  # NANP "1 650 555 1212"
    elif trunk == "0" and national.startswith("0"):
        national = national[1:]
    if len(national) not in _NATIONAL_LENGTHS[calling_code] or national.startswith("0"):
        return None
    return "+" + calling_code + national


def _known_calling_code(international_digits: str) -> str | None:
    for code in sorted(_NATIONAL_LENGTHS, key=len, reverse=True):
        if international_digits.startswith(code):
            return code
    return None


def _drop_trunk_zero_after_country_code(international_digits: str) -> str:
    for code in _TRUNK_ZERO_CODES:
        if international_digits.startswith(code + "0"):
            return code + international_digits[len(code) + 1:]
    return international_digits


def normalize_phone_meta(raw: object, default_region: str = "KR") -> str | None:
    """Digits only, with the country code, no "+", no leading zeros: "16505551212"."""
    e164 = normalize_phone_e164(raw, default_region)
    return e164[1:] if e164 else None


def normalize_phone_google(raw: object, default_region: str = "KR") -> str | None:
    """Google Customer Match wants E.164 including the "+"."""
    return normalize_phone_e164(raw, default_region)


# --- names ---------------------------------------------------------------------------------

def normalize_name_meta(raw: object) -> str | None:
    """Lowercased, punctuation and spaces removed.

    Meta's SDKs keep only a-z; we keep every Unicode letter and digit instead (Meta accepts
    UTF-8 special characters), so a Korean name like "김민준" is not reduced to nothing.
    """
    if not isinstance(raw, str):
        return None
    text = unicodedata.normalize("NFC", raw.strip().lower())
    kept = "".join(ch for ch in text if unicodedata.category(ch)[0] in ("L", "N"))
    return kept or None


# --- Google's un-hashed address fields -------------------------------------------------------

def normalize_country_google(raw: object) -> str | None:
    """Two-letter ISO country code, sent in clear (Google does not hash it)."""
    if not isinstance(raw, str):
        return None
    code = raw.strip().upper()
    return code if re.fullmatch(r"[A-Z]{2}", code) else None


def normalize_postal_code_google(raw: object) -> str | None:
    """Postal code sent in clear (not hashed); only surrounding whitespace is removed."""
    if not isinstance(raw, str):
        return None
    code = raw.strip()
    return code or None


# --- hashes ----------------------------------------------------------------------------------

def hash_email_meta(raw: object) -> str | None:
    return sha256_hex(normalize_email_meta(raw))


def hash_phone_meta(raw: object, default_region: str = "KR") -> str | None:
    return sha256_hex(normalize_phone_meta(raw, default_region))


def hash_name_meta(raw: object) -> str | None:
    return sha256_hex(normalize_name_meta(raw))


def hash_email_google(raw: object) -> str | None:
    return sha256_hex(normalize_email_google(raw))


def hash_phone_google(raw: object, default_region: str = "KR") -> str | None:
    return sha256_hex(normalize_phone_google(raw, default_region))
