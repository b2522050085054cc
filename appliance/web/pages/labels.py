"""Words the pages show for the appliance's codes (statuses, votes, zones, reasons), marked for translation."""

from __future__ import annotations


def N_(message: str) -> str:
    """Marks a message for the catalogue; it is translated where it is shown."""
    return message


STATUSES = {
    "draft": N_("Draft"), "open": N_("Open"), "closed": N_("Closed"), "published": N_("Results published"),
    "pending": N_("Waiting for moderation"), "accepted": N_("Published"), "refused": N_("Refused"),
    "queued": N_("Waiting for moderation"),
}
ACTIONS = {"open": N_("open"), "close": N_("close"), "publish": N_("publish")}  # what an admin does to a round
VOTES = {"agree": N_("Agree"), "disagree": N_("Disagree"), "neutral": N_("Neutral")}
VOTE_KEYS = {"agree": "1", "disagree": "2", "neutral": "3"}
QUALIFICATIONS = {
    "like_it": N_("I like it"), "doable": N_("Doable"), "platitude_agree": N_("Obvious"),
    "no_way": N_("No way"), "impossible": N_("Impossible"), "platitude_disagree": N_("Empty words"),
    "do_not_understand": N_("I don't understand"), "no_opinion": N_("No opinion"), "do_not_care": N_("I don't care"),
}
ZONES = {"consensus": N_("Consensus"), "controversy": N_("Controversy"), "rejection": N_("Rejection"),
         "limbo": N_("Undecided")}
REASONS = {
    "incomprehensible": N_("hard to understand"), "off_topic": N_("off topic"),
    "discriminatory": N_("discriminatory"), "insulting": N_("insulting"),
    "targets_a_person": N_("names or targets a person"), "several_ideas": N_("several ideas in one"),
    "advertising": N_("advertising"), "duplicate": N_("already proposed"),
}
NOTICES = {
    "proposed": N_("Thank you: your proposal is sent. It appears after moderation."),
    "proposed_post": N_("Thank you: your proposal is sent. It appears with the next batch of proposals."),
    "voted": N_("Vote recorded."),
    "vote_withdrawn": N_("Your vote was not recorded: this proposal is no longer published."),
    "vote_closed": N_("Your vote was not recorded: this round no longer takes votes."),
    "created": N_("Round created as a draft."),
    "opened": N_("The round is open."),
    "closed": N_("The round is closed: its ballots are now counts."),
    "published": N_("The results are published to the audience."),
    "accepted": N_("Proposal accepted."),
    "refused": N_("Proposal refused."),
    "corrected": N_("Spelling corrected. The audit log keeps both texts."),
    "refused_published": N_("Proposal refused: it is hidden from voters."),
    "corrected_published": N_("Spelling corrected. The audit log keeps both texts."),
    "grouped": N_("Marked as a duplicate: voters will see only one of them."),
    "ungrouped": N_("No longer marked as a duplicate."),
    "digest": N_("Digest settings saved."),
    "dated": N_("Dates saved."),
    "edited": N_("Draft saved."),
    "unchanged": N_("Nothing was changed."),
    "deleted": N_("Draft deleted."),
}
# Notices of the desk shown in its published list, not above the queue.
PUBLISHED_NOTICES = frozenset({"refused_published", "corrected_published", "grouped", "ungrouped"})
