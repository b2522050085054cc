"""Personal data a moderator should notice in a proposal: e-mail addresses, phone numbers, colleagues' names.

Each flag points at a span of the text; deciding what to do with it is the moderator's job, so the
patterns lean towards what people actually write rather than towards every valid address or number.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

KINDS = ("email", "phone", "name")


@dataclass(frozen=True)
class Flag:
    """A span of personal data: kind is "email", "phone" or "name"; text is the text's [start:end]."""

    kind: str
    start: int
    end: int
    text: str


def find_personal_data(text: str, names: NameIndex | None = None) -> list[Flag]:
    """E-mail, phone and name flags in `text`, sorted by start; where two overlap, the longer one is kept."""
    flags = find_emails(text) + find_phones(text) + (names.find(text) if names is not None else [])
    return _without_overlaps(flags)


def _without_overlaps(flags: list[Flag]) -> list[Flag]:
    kept: list[Flag] = []
    for flag in sorted(flags, key=lambda f: (f.start - f.end, f.start, KINDS.index(f.kind))):
        if all(flag.end <= other.start or other.end <= flag.start for other in kept):
            kept.append(flag)
    return sorted(kept, key=lambda f: f.start)


# --- E-mail addresses -------------------------------------------------------------------------------

_LOCAL = r"[\w%+\-]+(?:\.[\w%+\-]+)*"
_LABEL = r"[^\W_](?:[\w\-]*[^\W_])?"
_OPEN, _CLOSE = r"[\[({<]", r"[\])}>]"
_AT = rf"(?:@|\s*{_OPEN}\s*(?:at|arobase|@)\s*{_CLOSE}\s*|\s+(?P<word>at|arobase)\s+)"
_DOT = rf"(?:\.|\s*{_OPEN}\s*(?:dot|point)\s*{_CLOSE}\s*|\s+(?:dot|point)\s+)"
_EMAIL = re.compile(
    rf"(?<![\w.%+\-])(?P<local>{_LOCAL}){_AT}{_LABEL}(?:{_DOT}{_LABEL})*{_DOT}[^\W\d_]{{2,}}(?![\w\-])",
    re.IGNORECASE,
)
# "look at this dot com" is English, "marie.dupont at corp dot com" an address.
_ADDRESS_LIKE_LOCAL = re.compile(r"[._%+\-\d]")


def find_emails(text: str) -> list[Flag]:
    """Addresses like local@sub.domain.tld, also written "local [at] domain [dot] tld" or "local at domain dot tld"."""
    flags: list[Flag] = []
    position = 0
    # A match taken for English ("me at jean.dupont") is not an address, but the real one may start
    # inside it ("jean.dupont@corp.fr"): look again from the next character, not from its end.
    while (match := _EMAIL.search(text, position)) is not None:
        if _is_address(match):
            flags.append(Flag("email", match.start(), match.end(), match.group()))
            position = match.end()
        else:
            position = match.start() + 1
    return flags


def _is_address(match: re.Match[str]) -> bool:
    return match["word"] is None or match["word"].lower() == "arobase" or bool(
        _ADDRESS_LIKE_LOCAL.search(match["local"]))


# --- Phone numbers ----------------------------------------------------------------------------------

# Space, no-break spaces (French typography), dot and hyphen.
_SEP = r"[ \u00a0\u202f.\-]"
# French numbers use one separator throughout; "05-12-2024 10:00" is a date, not a number.
_FRENCH = (rf"(?P<fr>(?:\+|00)33{_SEP}?(?:\(0\){_SEP}?)?[1-9](?P<s1>{_SEP}?)\d\d(?:(?P=s1)\d\d){{3}}"
           rf"|0[1-9](?P<s2>{_SEP}?)\d\d(?:(?P=s2)\d\d){{3}})")
_INTERNATIONAL = rf"(?P<intl>\+[1-9]\d{{0,2}}(?P<groups>(?:{_SEP}?(?:\(\d{{1,4}}\)|\d{{1,4}})){{1,6}}))"
# North American: "(555) 123-4567", "555-123-4567", "555.123.4567"; always with one kind of separator.
_NORTH_AMERICAN = r"(?P<na>(?:\([2-9]\d\d\)[ \u00a0]?\d{3}[.\-]|[2-9]\d\d(?P<s3>[.\-])\d{3}(?P=s3))\d{4})"
_PHONE = re.compile(
    rf"(?<![\w+])(?<!\d{_SEP})(?:{_FRENCH}|{_INTERNATIONAL}|{_NORTH_AMERICAN})"
    rf"(?!{_SEP}?\d|\s*(?:[€$£%‰]|(?:euros?|dollars?|eur|usd)\b))",
    re.IGNORECASE,
)
_EXTENSION = re.compile(r"\b(?:ext(?:ension)?\.?|poste)\s*:?\s*\d{4,5}(?![\d.,]\d|\w)", re.IGNORECASE)
# E.164 allows 15 digits; fewer than 8 after a "+" is a signed amount, not a number to call.
_E164_DIGITS = range(8, 16)
_THOUSANDS = re.compile(rf"(?:{_SEP}\d{{3}})+")


def find_phones(text: str) -> list[Flag]:
    """French, North American and international numbers, and extensions written "ext. 1234" or "poste 1234"."""
    numbers = [m for m in _PHONE.finditer(text) if m["fr"] or m["na"] or _is_international_number(m)]
    flags = [Flag("phone", m.start(), m.end(), m.group()) for m in numbers]
    flags += [Flag("phone", m.start(), m.end(), m.group()) for m in _EXTENSION.finditer(text)]
    return sorted(flags, key=lambda f: f.start)


def _is_international_number(match: re.Match[str]) -> bool:
    """Enough digits for a phone number, not grouped by thousands like "+12 345 678"."""
    digits = sum(ch.isdigit() for ch in match["intl"])
    return digits in _E164_DIGITS and not _THOUSANDS.fullmatch(match["groups"])


# --- Colleagues' names ------------------------------------------------------------------------------

_TOKEN = re.compile(r"\w+")
_APOSTROPHES = re.compile(r"['’ʼ`]")
# What may separate the words of a name in a text; a comma only between a last and a first name.
_NAME_GAP = re.compile(r"[\s'’ʼ`\u2010\u2011-]+")
_COMMA_GAP = re.compile(r"\s*,\s*")
# After a title ("Mme Martin", "M. Martin", "Dr. Smith") or an initial ("B. Martin"): a full stop may, or must,
# come before the last name.
_DOT_GAP = re.compile(r"\.?\s+")
_DOTTED_GAP = re.compile(r"\.\s*")
# Titles that name a person with their last name alone; "m" only with its full stop ("M. Martin").
# ("Miss" is left out: "we miss Smith" would read as a title.)
TITLES = ("mme", "mmes", "mlle", "madame", "monsieur", "mademoiselle", "mr", "mrs", "ms", "dr", "docteur")
DOTTED_TITLES = ("m",)


def fold(text: str) -> str:
    """`text` compared without accents or case: NFKD, case-folded, combining marks removed."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


class _Word(NamedTuple):
    folded: str
    start: int
    end: int


# The tokens of a full name, and the index of the token a comma may precede (0: none); or, for a title or an
# initial before the last name, DOT_MAY or DOT_MUST: what comes between the first token and the next.
_Spelling = tuple[tuple[str, ...], int]
DOT_MAY, DOT_MUST = -1, -2


class NameIndex:
    """The directory's full names, keyed by their first two tokens so a text costs one lookup per word."""

    def __init__(self, names: Iterable[str]) -> None:
        self._by_start: dict[tuple[str, str], set[_Spelling]] = {}
        for name in names:
            for spelling in name_spellings(name):
                self._by_start.setdefault((spelling[0][0], spelling[0][1]), set()).add(spelling)

    def find(self, text: str) -> list[Flag]:
        """The longest full name starting at each word of `text`, by start; flags may overlap."""
        words = _words(text)
        flags: list[Flag] = []
        for i in range(len(words) - 1):
            spellings = self._by_start.get((words[i].folded, words[i + 1].folded), ())
            length = max((len(tokens) for tokens, comma in spellings if _spells(text, words, i, tokens, comma)),
                         default=0)
            if length:
                start, end = words[i].start, words[i + length - 1].end
                flags.append(Flag("name", start, end, text[start:end]))
        return flags


def name_spellings(display_name: str) -> set[_Spelling]:
    """How a full name may be written: first then last, or last then first; none for a single word."""
    spellings: set[_Spelling] = set()
    for name in {display_name, _APOSTROPHES.sub("", display_name)}:
        for first, particles, last in _readings(name):
            spellings.add((first + particles + last, 0))
            spellings.add((particles + last + first, len(particles + last)))
            # "La Fontaine, Jean de" and "La Fontaine Jean" for "Jean de La Fontaine".
            spellings.update({(last + first + particles, len(last)), (last + first, len(last))})
            # "Mme Martin", "M. Martin", "J. Martin": a last name after a title or the initial names a person
            # ("M. de La Fontaine" and "M. La Fontaine" both).
            for ending in {particles + last, last}:
                spellings.update((title + ending, DOT_MAY) for title in map(_tokens, TITLES))
                spellings.update(((title,) + ending, DOT_MUST) for title in (*DOTTED_TITLES, first[0][0]))
    return spellings


def _readings(display_name: str) -> list[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]]:
    """(first, particles, last) tokens: "Last, First", else every split between words ("Jean Pierre Martin")."""
    if "," in display_name:
        last, _, first = display_name.partition(",")
        splits = [(first.split(), last.split())]
    else:
        words = display_name.split()
        splits = [(words[:k], words[k:]) for k in range(1, len(words))]
    readings = []
    for first, last in splits:
        particles: list[str] = []
        while len(first) > 1 and first[-1].islower():
            particles.insert(0, first.pop())
        while len(last) > 1 and last[0].islower():
            particles.append(last.pop(0))
        readings.append((_tokens(" ".join(first)), _tokens(" ".join(particles)), _tokens(" ".join(last))))
    return [(first, particles, last) for first, particles, last in readings if first and last]


def _tokens(text: str) -> tuple[str, ...]:
    return tuple(_TOKEN.findall(fold(text)))


def _words(text: str) -> list[_Word]:
    """Folded words of `text` with their offsets in `text` itself, trailing combining marks included."""
    folded: list[str] = []
    offsets: list[int] = []
    for i, ch in enumerate(text):
        part = fold(ch)
        folded.append(part)
        offsets += [i] * len(part)
    words: list[_Word] = []
    for match in _TOKEN.finditer("".join(folded)):
        end = offsets[match.end() - 1] + 1
        while end < len(text) and not fold(text[end]):
            end += 1
        words.append(_Word(match.group(), offsets[match.start()], end))
    return words


def _spells(text: str, words: list[_Word], i: int, tokens: tuple[str, ...], comma: int) -> bool:
    """Whether the words from i on are `tokens`, separated only by spaces, hyphens or apostrophes."""
    if i + len(tokens) > len(words) or any(words[i + k].folded != token for k, token in enumerate(tokens)):
        return False
    gaps = [text[words[i + k - 1].end:words[i + k].start] for k in range(1, len(tokens))]
    if comma in (DOT_MAY, DOT_MUST):
        first_gap = _DOT_GAP if comma == DOT_MAY else _DOTTED_GAP
        return bool(first_gap.fullmatch(gaps[0])) and all(_NAME_GAP.fullmatch(gap) for gap in gaps[1:])
    return all(_NAME_GAP.fullmatch(gap) or (k == comma and _COMMA_GAP.fullmatch(gap))
               for k, gap in enumerate(gaps, start=1))
