"""Proposal text rules, moderation charter and release batches."""

from __future__ import annotations

import difflib
import re
import unicodedata

from appliance.domain.errors import Invalid
from appliance.domain.similarity import NEGATION_WORDS, fold

STATUSES = ("queued", "pending", "accepted", "refused")

# Why a moderator may refuse a proposal (the moderation charter).
REFUSAL_REASONS = (
    "incomprehensible",
    "off_topic",
    "discriminatory",
    "insulting",
    "targets_a_person",
    "several_ideas",
    "advertising",
    "duplicate",
)
MAX_NOTE_CHARS = 500

_SPACES = re.compile(r"\s+")
# Bidirectional overrides can make a proposal display differently from what it says.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Invisible format characters (Cf: zero-width space, word joiner, BOM, soft hyphen, direction marks...) can pad
# a text or split its words unseen; the zero-width joiner alone is kept, as it builds emoji sequences.
_JOINER = "\u200d"
_STRAY_JOINERS = re.compile(r"(?<![^\s\u200d])\u200d|\u200d(?![^\s\u200d])")


# A subdivision flag (England's, Scotland's) is the black flag followed by tag characters, format characters
# too, that end with the cancel tag: kept as a whole, while tag characters anywhere else are dropped.
_FLAG = re.compile("\U0001f3f4[\U000e0030-\U000e0039\U000e0061-\U000e007a]{1,6}\U000e007f")


def clean_text(text: str) -> str:
    """NFC-normalised text, control and invisible format characters removed, whitespace collapsed.

    A zero-width joiner stays only between two visible characters (inside an emoji sequence), and tag
    characters only within a subdivision flag.
    """
    text = unicodedata.normalize("NFC", text)
    kept, start = [], 0
    for flag in _FLAG.finditer(text):
        kept += [_drop_invisible(text[start:flag.start()]), flag.group()]
        start = flag.end()
    kept.append(_drop_invisible(text[start:]))
    return _SPACES.sub(" ", _STRAY_JOINERS.sub("", "".join(kept))).strip()


def clean_paragraphs(text: str) -> str:
    """clean_text line by line, for a text of paragraphs (a round's description): line breaks stay, at most one
    blank line in a row."""
    lines = [clean_text(line) for line in text.replace("\r\n", "\n").split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


_BLANK_LINES = re.compile(r"\n{3,}")


def _drop_invisible(text: str) -> str:
    return "".join(ch for ch in text if ch.isspace() or _visible(ch))


def _visible(ch: str) -> bool:
    """False for a control character, a bidirectional control or a format character other than the joiner."""
    category = unicodedata.category(ch)
    return category != "Cc" and ch not in _BIDI_CONTROLS and (category != "Cf" or ch == _JOINER)


def check_proposal_text(text: str, min_chars: int, max_chars: int) -> str:
    """The cleaned text, or Invalid when it is too short, too long or has no letter or digit."""
    cleaned = clean_text(text)
    if len(cleaned) < min_chars:
        raise Invalid("proposal is too short: %(length)s characters, at least %(min)s needed",
                      length=len(cleaned), min=min_chars)
    if len(cleaned) > max_chars:
        raise Invalid("proposal is too long: %(length)s characters, at most %(max)s allowed",
                      length=len(cleaned), max=max_chars)
    if not any(ch.isalnum() for ch in cleaned):
        raise Invalid("a proposal needs words: it has no letter or digit")
    return cleaned


# A correction fixes spelling and typography: at least this share of the text stays as it was.
CORRECTION_MIN_SIMILARITY = 0.8
# ...and it changes no word by more than a typo's worth of letters: one for a word of up to five
# letters, two up to ten, three beyond; its first letter stays, unless swapped with the second
# ("recieve", "teh", "hte" are typos; "Mettre" and "Retirer", "increase" and "decrease" are two
# words). Words may be joined or split ("alot", "a lot") with one typo at most. Accents, case,
# ligatures and apostrophes inside words are free ("deja", "déjà"; "coeur", "cœur"; "dont", "don't"),
# and French elisions are words of their own ("l'ouest" is "l" and "ouest"). Adding or removing a
# word, a negation, a number (or its sign, decimals or unit) or a word of quantity is not a correction.
_WORD = re.compile(r"\w+(?:['\u2019]\w+)*")  # an apostrophe inside a word keeps it whole: "don't", "n'est"
_ELISION = re.compile(r"^(qu|[cdjlmnst])['\u2019](\w.*)$")  # French "l'", "n'", "qu'"...: a word of their own
_DIGITS = re.compile(r"\d")
_NUMBER = re.compile(r"[+\-\u2212]?\d(?:[\d\s.,]*\d)?(?:\s*[%\u2030\u20ac$\u00a3])?")
_ORDINALS = frozenset({"", "e", "er", "re", "ere", "eme", "ieme", "nd", "rd", "th", "st"})  # "2e", "2ème", "2nd"
# Words that say no: those near-duplicate hints weigh, and "cannot", "rien". French "ne" is left out
# (spoken French drops it, and "pas", "jamais"... carry it).
_NEGATIONS = frozenset(NEGATION_WORDS) | {"cannot", "rien"}
_CONTRACTED = frozenset({"do", "does", "did", "ca", "wo", "is", "are", "was", "were", "should", "would", "could",
                         "have", "has", "had", "must", "need", "might", "ai"})  # + "nt": "dont", "can't"
# Words of quantity, order or number: a typo may swap two of their letters ("plsu"), not make another word.
_GUARDED = frozenset("""
    plus moins more less fewer most least mieux pire better worse before after avant apres trop assez enough
    minimum maximum min max all none tous toutes aucun chaque every each
    one two three four five six seven eight nine ten eleven twelve twenty thirty fifty hundred thousand million
    deux trois quatre cinq six sept huit neuf dix onze douze vingt trente cinquante cent mille
""".split())
_NEGATING_PREFIXES = ("un", "in", "im", "il", "ir", "dis", "non", "de", "anti", "mal", "mis")
_OPTIONAL_WORDS = frozenset({"n", "ne"})  # the "ne" of a French negation may be added or dropped ("il n'est pas")
WORD_JUNK_AFTER = 200  # words: past this, difflib may skip the most frequent ones (a text of one repeated word)
SIMILARITY_CHARS = 1000  # past this, the similarity of two texts is counted by words, not characters


def check_correction(before: str, text: str, min_chars: int, max_chars: int) -> str:
    """The corrected text, cleaned and within the round's limits, if it is a correction and not a rewrite.

    A correction may fix the spelling of words, their accents, case and punctuation, join or split
    them ("a lot"); it may not add, remove or replace a word, nor turn its meaning round: a
    proposal keeps the votes it had, and they must still be about what it says.
    """
    cleaned = check_proposal_text(text, min_chars, max_chars)
    if cleaned == before:
        raise Invalid("the corrected text is the same as the proposal")
    old, new = _words(before), _words(cleaned)
    words = difflib.SequenceMatcher(None, old, new, autojunk=len(old) + len(new) > 2 * WORD_JUNK_AFTER)
    similarity = _similarity(before, cleaned, words)
    if similarity < CORRECTION_MIN_SIMILARITY:
        raise Invalid("a correction may fix spelling, not rewrite the proposal: %(kept)s of the text is"
                      " unchanged, at least %(needed)s must be; refuse it with a reason instead",
                      kept=format(similarity, ".0%"), needed=format(CORRECTION_MIN_SIMILARITY, ".0%"))
    if sorted(filter(None, map(_negation, old))) != sorted(filter(None, map(_negation, new))):
        raise Invalid("a correction may fix spelling, not add or remove a negation; refuse the proposal with a"
                      " reason instead")
    if _numbers(before) != _numbers(cleaned):
        raise Invalid("a correction may fix spelling, not change a number; refuse the proposal with a reason"
                      " instead")
    for tag, i1, i2, j1, j2 in words.get_opcodes():
        if tag == "equal" or (tag == "delete" and _repeated(old, i1, i2)):
            continue
        if tag in ("insert", "delete") and set(old[i1:i2] + new[j1:j2]) <= _OPTIONAL_WORDS:
            continue
        was, becomes = " ".join(old[i1:i2]), " ".join(new[j1:j2])
        if tag == "insert":
            raise Invalid("a correction may fix spelling, not add words (\u201c%(words)s\u201d); refuse the proposal"
                          " with a reason instead", words=becomes)
        if tag == "delete":
            raise Invalid("a correction may fix spelling, not remove words (\u201c%(words)s\u201d); refuse the"
                          " proposal with a reason instead", words=was)
        if not _typo(old[i1:i2], new[j1:j2]):
            raise Invalid("a correction may fix spelling, not change words: \u201c%(was)s\u201d became"
                          " \u201c%(becomes)s\u201d; refuse the proposal with a reason instead",
                          was=was, becomes=becomes)
    return cleaned


def _similarity(before: str, after: str, words: difflib.SequenceMatcher) -> float:
    """difflib's ratio of the texts without case, accents or ligatures; past SIMILARITY_CHARS, of their `words`.

    Character by character, a long text of one repeated letter costs the square of its length.
    """
    if max(len(before), len(after)) > SIMILARITY_CHARS:
        return words.ratio()
    return difflib.SequenceMatcher(None, fold(before), fold(after), autojunk=False).ratio()


def _words(text: str) -> list[str]:
    """The text's words as a correction compares them: without case, accents, ligatures or inner apostrophes.

    A French elision is a word of its own: "l'ouest" is "l" and "ouest", so that its first letter counts.
    """
    words = []
    for word in _WORD.findall(text.casefold()):
        elided = _ELISION.match(word)
        for part in elided.groups() if elided else (word,):
            words.append(fold(part).replace("'", "").replace("\u2019", ""))
    return words


def _numbers(text: str) -> list[str]:
    """The text's numbers with their sign, decimals and unit, spaces left out ("1 000 €" is "1000€")."""
    return ["".join(number.split()) for number in _NUMBER.findall(text)]


def _negation(word: str) -> str | None:
    """The negation a word says, if any: "not" for "not", "cannot", "don't", "dont"; else the word itself."""
    if word in ("not", "cannot") or (word.endswith("nt") and word[:-2] in _CONTRACTED):
        return "not"
    return word if word in _NEGATIONS else None


def _repeated(words: list[str], start: int, end: int) -> bool:
    """Whether words[start:end] repeat the words just before or just after them ("the the")."""
    run = words[start:end]
    return run == words[start - len(run):start] or run == words[end:end + len(run)]


def _typo(was_words: list[str], new_words: list[str]) -> bool:
    """Whether these words become those by typos: word by word, or, joined or split, by one edit at most."""
    if len(was_words) == len(new_words):
        return all(_word_typo(was, becomes) for was, becomes in zip(was_words, new_words))
    was, becomes = "".join(was_words), "".join(new_words)
    if (set(was_words) | set(new_words)) & _GUARDED or _DIGITS.search(was + becomes):
        return was == becomes  # "a lot" and "alot"; never a word of quantity or a number made by a join
    return bool(was and becomes) and was[0] == becomes[0] and _edits(was, becomes, 1) <= 1


def _word_typo(was: str, becomes: str) -> bool:
    """Whether one word becomes the other by a typo's worth of edits."""
    if _DIGITS.search(was + becomes):  # "2eme" and "2e": the number stays, an ordinal's ending may change
        letters = [_DIGITS.sub("", word) for word in (was, becomes)]
        return _DIGITS.findall(was) == _DIGITS.findall(becomes) and (
            letters[0] == letters[1] or set(letters) <= _ORDINALS)
    if {was, becomes} & _GUARDED:  # "moins" and "mois": only two letters swapped ("plsu", "plus")
        return len(was) == len(becomes) and sorted(was) == sorted(becomes) and _edits(was, becomes, 1) <= 1
    for prefix in _NEGATING_PREFIXES:
        if becomes == prefix + was or was == prefix + becomes:
            return False  # "possible" and "impossible"
    if not was or not becomes:
        return False
    swapped = len(was) > 2 and len(becomes) > 2 and (was[0], was[1]) == (becomes[1], becomes[0])
    if was[0] != becomes[0] and not swapped:
        return False  # typos keep a word's first letter, or swap it with the second: "hte", "the"
    longest = max(len(was), len(becomes))
    allowed = 1 if longest <= 5 else 2 if longest <= 10 else 3
    return _edits(was, becomes, allowed) <= allowed


def _edits(a: str, b: str, limit: int) -> int:
    """Insertions, deletions, substitutions and swaps of two neighbours that turn a into b (optimal alignment).

    Counted up to `limit` only (more: limit + 1), along the diagonal band where they can be: a long
    word, or a long text without spaces, costs its length, not its square.
    """
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    far = limit + 1
    previous2: dict[int, int] = {}
    previous = {j: j for j in range(0, min(len(b), limit) + 1)}
    for i in range(1, len(a) + 1):
        current = {0: i} if i <= limit else {}
        for j in range(max(1, i - limit), min(len(b), i + limit) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            value = min(previous.get(j, far) + 1, current.get(j - 1, far) + 1, previous.get(j - 1, far) + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                value = min(value, previous2.get(j - 2, far) + 1)
            current[j] = min(value, far)
        previous2, previous = previous, current
    return min(previous.get(len(b), far), far)


def check_refusal(reason: str, note: str | None) -> str:
    """The cleaned note ('' for none), or Invalid for a reason outside the charter."""
    if not reason:
        raise Invalid("a refusal needs its reason, from the charter: %(reasons)s", reasons=", ".join(REFUSAL_REASONS))
    if reason not in REFUSAL_REASONS:
        raise Invalid("reason must be one of %(reasons)s", reasons=", ".join(REFUSAL_REASONS))
    cleaned = clean_text(note or "")
    if len(cleaned) > MAX_NOTE_CHARS:
        raise Invalid("note is too long: at most %(max)s characters", max=MAX_NOTE_CHARS)
    return cleaned


def release_period(now: float, interval_seconds: int) -> int:
    """Index of the release period containing `now`; a proposal waits for the next one."""
    return int(now // interval_seconds) if interval_seconds > 0 else 0


def next_release(now: float, interval_seconds: int) -> float | None:
    """When the next batch of new proposals is released (a Unix time); None when they are released at once."""
    return (release_period(now, interval_seconds) + 1) * interval_seconds if interval_seconds > 0 else None


def shown_status(status: str, moderation: str) -> str:
    """What an author is told: a queued proposal is already pending (pre) or accepted (post)."""
    return released_status(moderation) if status == "queued" else status


def released_status(moderation: str) -> str:
    """What a released proposal becomes: the moderation queue, or published at once."""
    return "pending" if moderation == "pre" else "accepted"
