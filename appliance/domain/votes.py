"""Votes and the qualifications that may nuance each."""

from __future__ import annotations

from appliance.domain.errors import Invalid

QUALIFICATIONS: dict[str, tuple[str, ...]] = {
    "agree": ("like_it", "doable", "platitude_agree"),
    "disagree": ("no_way", "impossible", "platitude_disagree"),
    "neutral": ("do_not_understand", "no_opinion", "do_not_care"),
}
VOTES = tuple(QUALIFICATIONS)
# Every option a ballot counts for: the votes, then the qualifications.
OPTIONS = VOTES + tuple(name for names in QUALIFICATIONS.values() for name in names)
OPTION_INDEX = {name: i for i, name in enumerate(OPTIONS)}


def check_vote(vote: str, qualification: str | None) -> str:
    """The qualification to store ('' for none), or Invalid if it does not match the vote."""
    if vote not in QUALIFICATIONS:
        raise Invalid("vote must be one of %(votes)s", votes=", ".join(VOTES))
    if not qualification:
        return ""
    if qualification not in QUALIFICATIONS[vote]:
        allowed = ", ".join(QUALIFICATIONS[vote])
        raise Invalid("qualification %(qualification)s does not match vote %(vote)s (allowed: %(allowed)s)",
                      qualification=repr(qualification), vote=repr(vote), allowed=allowed)
    return qualification
