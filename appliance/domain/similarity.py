"""Near-duplicate proposals: text normalisation (French and English), similarity, groups.

A proposal becomes a set of *terms*: words folded to lower case without accents,
French and English stop words dropped, then lightly stemmed so that plurals,
feminines and common inflections meet ("bornes électriques" and "borne
electrique" give the same terms). Two proposals are compared by the cosine of
their term sets; a proposal with a negation ("pas", "not", "sans"...) and one
without it say opposite things and score lower.

The stemmer is deliberately light and shared by both languages: it only needs
to send the forms of one word to one term, not to produce real roots. Synonyms
("bike" and "bicycle") are not matched: they raise a hint for a draft but do not
group proposals automatically; moderators mark such duplicates by hand.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from functools import lru_cache

# Pairs at or above this score are near-duplicates. Conservative on purpose, as
# proposals of one group are never shown together in a voting sequence: a
# proposal of 3 or 4 terms and the same plus one term are grouped (0.87, 0.89),
# one of 2 terms and the same plus one are not (0.82).
NEAR_DUPLICATE_THRESHOLD = 0.85
# Drafts: accepted proposals scoring below this are not worth a hint (one shared
# term out of three on each side, or out of two and four, is not enough).
HINT_MIN_SCORE = 0.36
# A negation on one side only divides the score by this much.
NEGATION_FACTOR = 0.5

_STOP_WORDS = frozenset("""
    a afin ai au aux avec c ca ce ceci cela celle celles celui ces cet cette chaque chez
    comme d dans de des donc du elle elles en entre est et etc etre faire fait il ils j je l la
    le les leur leurs lui m ma mais me mes mon n ne nos notre nous on ont or ou par pour qu que
    quel quelle quelles quels qui s sa se ses si son sont sur ta te tes toi ton tous tout toute
    toutes tres tu un une vers vos votre vous y
    about after also am an and any are as at be been being but by can could did do does each
    for from had has have he her his how i if in into is it its let me my near of on onto or
    our out over please she should so some such than that the their them then there these
    they this those to too up us very via was we were what when where which while who why
    will with would you your
""".split()) | frozenset(
    # What proposals say around their idea: urgency, politeness and the generic verb that opens them
    # ("Ajouter ... au plus vite", "Give ... as soon as possible"); shared, they made unrelated proposals alike.
    """
    asap possible quickly rapidement soon svp vite merci thanks thank
    add ajouter create creer donner get give mettre put
""".split())

# Kept as terms (not stop words): they reverse what a proposal asks for.
NEGATION_WORDS = ("pas", "non", "sans", "aucun", "aucune", "jamais", "ni", "no", "not", "without", "never",
                  "nor")

# (suffix, replacement), longest first; applied until none applies, keeping a stem of
# at least _MIN_STEM characters, so that every form of a word ends on the same term.
_SUFFIXES = (
    ("ements", ""), ("ations", ""), ("ement", ""), ("ation", ""), ("ments", ""), ("ment", ""),
    ("eaux", "eau"), ("aux", "al"),  # bureaux -> bureau, locaux -> local, réseaux -> réseau
    ("ings", ""), ("ing", ""), ("ies", "i"), ("ed", ""), ("er", ""), ("ez", ""),
    ("ss", "ss"), ("s", ""), ("x", ""), ("e", ""), ("y", "i"),
)
_MIN_STEM = 3
_WORD = re.compile(r"[^\W_]+")
# A hyphen inside a word joins it: "week-end" and "weekend", "e-mail" and "email" meet.
_HYPHEN = re.compile(r"(?<=[^\W\d_])[-\u2010\u2011](?=[^\W\d_])")
_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae", "Œ": "oe", "Æ": "ae"})
# Longer input is no proposal: only its beginning is read.
_MAX_CHARS = 4000


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The term of one folded word: common French and English endings removed."""
    changed = True
    while changed:
        changed = False
        for suffix, replacement in _SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= _MIN_STEM:
                new = word[: len(word) - len(suffix)] + replacement
                changed = new != word
                word = new
                break
    return word


def fold(text: str) -> str:
    """Lower case, ligatures spelt out, accents, other combining marks and invisible format characters removed.

    A soft hyphen or a zero-width space pasted inside a word would otherwise split it in two.
    """
    decomposed = unicodedata.normalize("NFKD", text.translate(_LIGATURES).casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch) and unicodedata.category(ch) != "Cf")


def terms(text: str) -> list[str]:
    """The terms of a text, in order: folded words, stop words and single letters dropped, stemmed."""
    return _terms_of(_WORD.findall(_HYPHEN.sub("", fold(text[:_MAX_CHARS]))))


def draft_terms(draft: str) -> tuple[list[str], str | None]:
    """The terms of a draft being typed, and its last word (folded) when it may be unfinished.

    It may when the draft ends inside a word (no space after it yet) that is not
    a stop word and has at least three letters (shorter prefixes would match
    almost anything).
    """
    folded = _HYPHEN.sub("", fold(draft[:_MAX_CHARS]))
    words = _WORD.findall(folded)
    last = words[-1] if words else ""
    unfinished = len(last) >= _MIN_STEM and last not in _STOP_WORDS and folded.endswith(last)
    return _terms_of(words), last if unfinished else None


def partial_terms(partial: str) -> list[str]:
    """The terms an unfinished word may already be the whole of: its beginnings of four letters or more.

    "organisat" is on its way to "organisation", whose term is "organi": a term that
    begins the word matches it, as well as a term that the word's stem begins.
    """
    return [partial[:n] for n in range(_MIN_STEM + 1, len(partial))]


def _terms_of(words: Iterable[str]) -> list[str]:
    return [stem(word) for word in words if len(word) > 1 and word not in _STOP_WORDS]


NEGATIONS = frozenset(stem(fold(word)) for word in NEGATION_WORDS)


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """Cosine of two term sets in 0..1, lowered when only one of them is negated."""
    if not a or not b:
        return 0.0
    return _cosine(len(a & b), a, b)


def _cosine(shared: int, a: Collection[str], b: frozenset[str]) -> float:
    """shared / sqrt(|a| |b|), times NEGATION_FACTOR when only one side is negated."""
    score = shared / math.sqrt(len(a) * len(b))
    if bool(NEGATIONS.intersection(a)) != bool(b & NEGATIONS):
        score *= NEGATION_FACTOR
    return score


def draft_score(draft: Collection[str], candidate: frozenset[str], partial: str | None = None) -> float:
    """Cosine of a draft's terms and an accepted proposal's, in 0..1, lowered when only one is negated.

    The draft is being typed: its last word (`partial`, folded) may be unfinished, so it matches a term that
    its stem begins, or one that begins it (partial_terms).
    """
    words = set(draft)
    if not words or not candidate:
        return 0.0
    shared = len(words & candidate)
    if partial is not None:
        prefix, beginnings = stem(partial), set(partial_terms(partial))
        if prefix not in candidate and any(term.startswith(prefix) or term in beginnings for term in candidate):
            shared += 1
    return _cosine(shared, words, candidate)


def near_duplicate_groups(proposals: Sequence[tuple[str, str]],
                          threshold: float = NEAR_DUPLICATE_THRESHOLD) -> dict[str, str]:
    """Each proposal id -> its group id (the smallest id of its group of near-duplicates)."""
    return group_terms({pid: frozenset(terms(text)) for pid, text in proposals}, threshold)


def group_terms(term_sets: Mapping[str, frozenset[str]], threshold: float = NEAR_DUPLICATE_THRESHOLD) -> dict[str, str]:
    """Groups of near-duplicates from proposals' term sets: connected components of pairs >= threshold."""
    parent = {pid: pid for pid in term_sets}
    for a, b in _candidate_pairs(term_sets, threshold):
        if _root(parent, a) != _root(parent, b) and similarity(term_sets[a], term_sets[b]) >= threshold:
            _union(parent, a, b)
    return {pid: _root(parent, pid) for pid in term_sets}


def _candidate_pairs(term_sets: Mapping[str, frozenset[str]], threshold: float) -> Iterable[tuple[str, str]]:
    """Every pair that may reach the threshold, without comparing all pairs (prefix filtering).

    Terms are ordered rarest first. A cosine of t needs an overlap of at least
    ceil(t^2 |A|) terms, so two sets that reach t share a term within the first
    |A| - ceil(t^2 |A|) + 1 terms of each: only those prefixes are indexed.
    """
    frequency: dict[str, int] = defaultdict(int)
    for term_set in term_sets.values():
        for term in term_set:
            frequency[term] += 1
    squared = max(threshold, 0.0) ** 2
    index: dict[str, list[str]] = defaultdict(list)
    for pid, term_set in term_sets.items():
        ordered = sorted(term_set, key=lambda term: (frequency[term], term))
        size = len(ordered)
        prefix = ordered[: size - max(1, math.ceil(squared * size - 1e-9)) + 1]
        # Size filter: a cosine of t also needs t^2 |A| <= |B| <= |A| / t^2.
        others = {other for term in prefix for other in index[term] if _sizes_fit(size, len(term_sets[other]), squared)}
        for term in prefix:
            index[term].append(pid)
        yield from ((other, pid) for other in others)


def _sizes_fit(a: int, b: int, squared: float) -> bool:
    return squared * a <= b * (1 + 1e-9) and squared * b <= a * (1 + 1e-9)


def _root(parent: dict[str, str], pid: str) -> str:
    while parent[pid] != pid:
        parent[pid] = parent[parent[pid]]
        pid = parent[pid]
    return pid


def _union(parent: dict[str, str], a: str, b: str) -> None:
    """Join two groups; the smaller id stays the root, so a group's id is its smallest member."""
    ra, rb = _root(parent, a), _root(parent, b)
    if ra != rb:
        parent[max(ra, rb)] = min(ra, rb)
