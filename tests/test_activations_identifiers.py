"""Identifier normalisation and hashing for Meta and Google customer lists (CONTRACTS.md)."""

import hashlib

import pytest

from activations import identifiers as ids

META_EMAIL_CASE = "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"
META_PHONE_CASE = "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


# --- reference cases from CONTRACTS.md ---------------------------------------------------------

def test_meta_email_reference_case():
    assert ids.normalize_email_meta("John_Smith@gmail.com") == "john_smith@gmail.com"
    assert ids.hash_email_meta("John_Smith@gmail.com") == META_EMAIL_CASE
    assert ids.hash_email_meta("  John_Smith@gmail.com \n") == META_EMAIL_CASE


def test_meta_phone_reference_case():
    assert ids.normalize_phone_meta("(650)555-1212", default_region="US") == "16505551212"
    assert ids.hash_phone_meta("(650)555-1212", default_region="US") == META_PHONE_CASE


def test_google_korean_phone_reference_case():
    assert ids.normalize_phone_google("010-1234-5678") == "+821012345678"
    assert ids.hash_phone_google("010-1234-5678") == sha("+821012345678")


# --- phones --------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "raw",
    [
        "010-1234-5678",
        "01012345678",
        "+82 10-1234-5678",
        "+821012345678",
        "010 1234 5678",
        "+82 010-1234-5678",  # trunk zero written after the country code
        "+82 (0)10 1234 5678",
        " 010.1234.5678 ",
    ],
)
def test_korean_mobile_formats_agree(raw):
    assert ids.normalize_phone_e164(raw) == "+821012345678"
    assert ids.normalize_phone_meta(raw) == "821012345678"
    assert ids.hash_phone_meta(raw) == sha("821012345678")


def test_korean_landline_seoul():
    assert ids.normalize_phone_e164("02-123-4567") == "+8221234567"


@pytest.mark.parametrize("raw", ["(650)555-1212", "650-555-1212", "1 650 555 1212", "+1 (650) 555-1212"])
def test_us_formats(raw):
    assert ids.normalize_phone_e164(raw, default_region="US") == "+16505551212"


def test_plus_number_ignores_default_region():
    assert ids.normalize_phone_e164("+1 650 555 1212", default_region="KR") == "+16505551212"
    assert ids.normalize_phone_e164("+821012345678", default_region="US") == "+821012345678"


def test_meta_phone_has_no_plus_and_no_leading_zero():
    normalised = ids.normalize_phone_meta("010-1234-5678")
    assert normalised.isdigit() and not normalised.startswith("0")


@pytest.mark.parametrize(
    "raw",
    [None, "", "   ", "---", "()", "abc", "010-CALL-NOW", "010-1234-5678 ext 9", "12", "+0 123 456 789",
     "0101234567891234", "555-1212", 1012345678],
)
def test_invalid_phone_is_none(raw):
    assert ids.normalize_phone_e164(raw) is None
    assert ids.hash_phone_meta(raw) is None
    assert ids.hash_phone_google(raw) is None


def test_us_number_with_wrong_length_is_none():
    assert ids.normalize_phone_e164("555-1212", default_region="US") is None


def test_unknown_default_region_is_none():
    assert ids.normalize_phone_e164("010-1234-5678", default_region="XX") is None


# --- emails --------------------------------------------------------------------------------------

def test_google_removes_gmail_dots_only_for_gmail():
    assert ids.normalize_email_google(" John.Smith@Gmail.com ") == "johnsmith@gmail.com"
    assert ids.normalize_email_google("j.o.h.n@googlemail.com") == "john@googlemail.com"
    assert ids.normalize_email_google("John.Smith@example.co.kr") == "john.smith@example.co.kr"
    assert ids.hash_email_google("John.Smith@gmail.com") == sha("johnsmith@gmail.com")


def test_meta_keeps_gmail_dots():
    assert ids.normalize_email_meta("John.Smith@gmail.com") == "john.smith@gmail.com"


@pytest.mark.parametrize("raw", [None, "", "  ", "no-at-sign", "a@b", "@gmail.com", "a b@gmail.com", "a@@b.com", 42])
def test_invalid_email_is_none(raw):
    assert ids.normalize_email_meta(raw) is None
    assert ids.hash_email_meta(raw) is None
    assert ids.hash_email_google(raw) is None


def test_gmail_local_part_of_only_dots_is_none():
    assert ids.normalize_email_google("...@gmail.com") is None


# --- names and clear-text fields -------------------------------------------------------------------

def test_meta_name_lowercased_without_punctuation():
    assert ids.normalize_name_meta("  O'Brien-Smith ") == "obriensmith"
    assert ids.normalize_name_meta("Mary.") == "mary"
    assert ids.hash_name_meta("Mary") == sha("mary")
    assert ids.normalize_name_meta("김 민준") == "김민준"
    assert ids.normalize_name_meta("'-.") is None
    assert ids.normalize_name_meta(None) is None


def test_google_country_and_postal_code_stay_clear():
    assert ids.normalize_country_google(" kr ") == "KR"
    assert ids.normalize_country_google("Korea") is None
    assert ids.normalize_postal_code_google(" 06236 ") == "06236"
    assert ids.normalize_postal_code_google("") is None


def test_hash_is_lowercase_hex_and_never_raw():
    digest = ids.hash_email_meta("A@B.COM")
    assert len(digest) == 64 and digest == digest.lower() and "@" not in digest
    assert ids.sha256_hex("") is None and ids.sha256_hex(None) is None
