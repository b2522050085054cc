"""Digest and round-mail content (subject, text, html); no I/O.

Every figure a message shows is given to it: participation bands and the
publishable view's rates. Nothing here counts or computes a figure of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING

from appliance.domain.disclosure import ResultsView, band_said, percent_said
from appliance.domain.scoring import shown_percent

if TYPE_CHECKING:  # the language is given by the caller, with its catalogue
    from appliance.i18n import Speaker

TOP = 5
BAR_WIDTH = 10  # blocks in a text bar at 100%
BAR_COLOURS = {"agree": "#2e7d32", "disagree": "#c62828", "neutral": "#9e9e9e"}
RATES = ("agree", "neutral", "disagree")  # as the results page reads: support, then the rest


@dataclass(frozen=True)
class Content:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class ProposalLine:
    """One proposal of a final digest, as the publishable view gives it."""

    text: str
    voters: int | None
    rates: dict[str, float]  # agree / disagree / neutral, 0 to 1


def top_proposals(view: ResultsView, zone: str, count: int = TOP) -> list[ProposalLine]:
    """The first shown proposals of one zone, in the results page's order: consensus by rank, another zone by
    its own score (the most divided first), at most `count`."""
    shown = [p for p in view.proposals if p.scores is not None and p.rank is not None and p.scores.zone == zone]
    if zone == "consensus":
        shown.sort(key=lambda p: p.rank)
    else:
        shown.sort(key=lambda p: -getattr(p.scores, zone).value)
    return [ProposalLine(p.text, p.voters, {name: p.scores.rates[name].value for name in RATES})
            for p in shown[:count]]


def text_bar(rate: float) -> str:
    return "\u2587" * round(shown_percent(rate) * BAR_WIDTH / 100)


def html_bar(name: str, rate: float, label: str, say: Speaker) -> str:
    width = shown_percent(rate)
    return (f'<div style="display:flex;align-items:center;margin:2px 0;font-size:13px">'
            f'<span style="width:110px">{escape(label)} {escape(percent_said(say, rate))}</span>'
            f'<div style="background:#eeeeee;width:200px;height:10px">'
            f'<div style="background:{BAR_COLOURS[name]};width:{width}%;height:10px"></div></div></div>')


def _page(title: str, body: str, say: Speaker) -> str:
    return (f'<!doctype html><html lang="{say.language}"><head><meta charset="utf-8">'
            f'<title>{escape(title)}</title></head>'
            f'<body style="font-family:sans-serif;color:#222222;max-width:640px">{body}</body></html>')


def _link_lines(say: Speaker, link: str | None) -> tuple[str, str]:
    if not link:
        return "", ""
    line, anchor = say.gettext("Open the consultation: %(link)s", link=link), say.gettext("Open the consultation")
    return f"\n{line}\n", f'<p><a href="{escape(link)}">{escape(anchor)}</a></p>'


def weekly_digest(title: str, band: str | None, as_of: str | None, accepted: int, pending: int | None,
                  link: str | None, say: Speaker) -> Content:
    """The weekly digest of an open round: participation band (lagged), accepted proposals, and for admins the backlog."""
    participation = (say.gettext("Participation: %(band)s people (as of %(day)s)", band=band_said(say, band),
                                 day=say.day(as_of))
                     if band and as_of else say.gettext("Participation: not published yet (figures come a day late)"))
    lines = [participation, say.gettext("Proposals accepted so far: %(count)s", count=say.number(accepted))]
    if pending is not None:
        lines.append(say.gettext("Proposals waiting for moderation: %(count)s", count=say.number(pending)))
    link_text, link_html = _link_lines(say, link)
    intro = say.gettext("Where the consultation \u201c%(title)s\u201d stands this week.", title=title)
    text = intro + "\n\n" + "\n".join(f"- {line}" for line in lines) + "\n" + link_text
    body = (f"<h1 style=\"font-size:20px\">{escape(title)}</h1><p>{escape(intro)}</p>"
            "<ul>" + "".join(f"<li>{escape(line)}</li>" for line in lines) + "</ul>" + link_html)
    subject = say.gettext("%(title)s: this week's digest", title=title)
    return Content(subject, text, _page(subject, body, say))


def _answers(say: Speaker) -> dict[str, str]:
    return {"agree": say.gettext("agree"), "disagree": say.gettext("disagree"), "neutral": say.gettext("neutral")}


def _voters(line: ProposalLine, say: Speaker) -> str:
    if line.voters is None:
        return say.gettext("not enough responses")
    return say.ngettext("%(num)s voter", "%(num)s voters", line.voters)


def _proposal_text(line: ProposalLine, say: Speaker) -> str:
    answers = _answers(say)
    label_width = max(9, max(map(len, answers.values())) + 1)
    figure_width = len(say.percent(1.0))
    bars = "\n".join(f"    {answers[name]:<{label_width}} {percent_said(say, line.rates[name]):>{figure_width}}"
                     f" {text_bar(line.rates[name])}" for name in RATES)
    return f"* {line.text} ({_voters(line, say)})\n{bars}"


def _proposal_html(line: ProposalLine, say: Speaker) -> str:
    answers = _answers(say)
    bars = "".join(html_bar(name, line.rates[name], answers[name], say) for name in RATES)
    return (f'<div style="margin:12px 0"><p style="margin:0 0 4px 0"><strong>{escape(line.text)}</strong>'
            f' <span style="color:#666666">({escape(_voters(line, say))})</span></p>{bars}</div>')


def final_digest(title: str, voters: int | None, consensus: list[ProposalLine], controversy: list[ProposalLine],
                 link: str | None, say: Speaker) -> Content:
    """The final digest: the best consensus and controversy proposals of the publishable view, with bars."""
    total = (say.gettext("Voters: %(count)s", count=say.number(voters)) if voters is not None
             else say.gettext("not enough responses"))
    intro = say.gettext("The consultation \u201c%(title)s\u201d is over. What came out of it:", title=title)
    none_shown = say.gettext("None with enough responses.")
    text_parts, html_parts = [intro, total], []
    for heading, lines in ((say.gettext("Widest support"), consensus), (say.gettext("Most divided"), controversy)):
        shown = [_proposal_text(line, say) for line in lines] or [none_shown]
        text_parts.append(f"{heading}\n" + "\n".join(shown))
        items = "".join(_proposal_html(line, say) for line in lines) or f"<p>{escape(none_shown)}</p>"
        html_parts.append(f'<h2 style="font-size:16px">{escape(heading)}</h2>{items}')
    link_text, link_html = _link_lines(say, link)
    subject = say.gettext("%(title)s: the results", title=title)
    body = (f"<h1 style=\"font-size:20px\">{escape(title)}</h1><p>{escape(intro)}"
            f"</p><p>{escape(total)}</p>" + "".join(html_parts) + link_html)
    return Content(subject, "\n\n".join(text_parts) + "\n" + link_text, _page(subject, body, say))


def notice(kind: str, title: str, question: str, closes_at: datetime | None, link: str | None,
           opt_out: str | None, say: Speaker) -> Content:
    """An invitation, a reminder or a results notice to the whole audience; it closes on a day and at a time,
    in the speaker's language and time zone (a round closing at 00:00 is closed all that day)."""
    when = say.datetime(closes_at) if closes_at else None
    if kind == "invitation":
        subject = say.gettext("New consultation: %(title)s", title=title)
        sentences = [say.gettext("A consultation is open: \u201c%(question)s\u201d Propose your ideas and vote on those"
                                 " of others; nobody can see how you voted or what you wrote.", question=question),
                     say.gettext("It closes on %(when)s.", when=when) if when else ""]
    elif kind == "reminder":
        subject = say.gettext("%(title)s: closing soon", title=title)
        sentences = [say.gettext("The consultation \u201c%(title)s\u201d closes on %(when)s.", title=title, when=when)
                     if when else say.gettext("The consultation \u201c%(title)s\u201d closes soon.", title=title),
                     say.gettext("This reminder goes to everyone invited: there is still time to propose and vote.")]
    else:
        subject = say.gettext("%(title)s: the results are published", title=title)
        sentences = [say.gettext("The results of the consultation \u201c%(title)s\u201d are published. Everyone"
                                 " invited can read them on the consultation site.", title=title)]
    body_text = " ".join(sentence for sentence in sentences if sentence)
    link_text, link_html = _link_lines(say, link)
    text, html = body_text + "\n" + link_text, f"<p>{escape(body_text)}</p>{link_html}"
    if opt_out:
        line, anchor = say.gettext("No more reminders: %(link)s", link=opt_out), say.gettext("No more reminders")
        text += f"\n{line}\n"
        html += f'<p style="font-size:12px;color:#666666"><a href="{escape(opt_out)}">{escape(anchor)}</a></p>'
    return Content(subject, text, _page(subject, html, say))
