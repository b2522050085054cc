"""Digest and round-mail content (subject, text, html) and weekly schedule arithmetic; no I/O.

Every figure a message shows is given to it: participation bands and the
publishable view's rates. Nothing here counts or computes a figure of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from html import escape
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from appliance.domain.disclosure import ResultsView
from appliance.domain.errors import Invalid

TOP = 5
BAR_WIDTH = 10  # blocks in a text bar at 100%
BAR_COLOURS = {"agree": "#2e7d32", "disagree": "#c62828", "neutral": "#9e9e9e"}
RATES = ("agree", "disagree", "neutral")
_LOCAL_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")

# Every string of round mail, one dict per language.
TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "weekly_subject": "{title}: this week's digest",
        "weekly_intro": "Where the consultation \u201c{title}\u201d stands this week.",
        "participation": "Participation: {band} people (as of {day})",
        "participation_unknown": "Participation: not published yet (figures come a day late)",
        "accepted": "Proposals accepted so far: {count}",
        "pending": "Proposals waiting for moderation: {count}",
        "final_subject": "{title}: the results",
        "final_intro": "The consultation \u201c{title}\u201d is over. What came out of it:",
        "round_voters": "Voters: {count}",
        "voters": "{count} voters",
        "not_enough": "not enough responses",
        "consensus": "Widest support",
        "controversy": "Most divided",
        "none_shown": "None with enough responses.",
        "agree": "agree", "disagree": "disagree", "neutral": "neutral",
        "open_round": "Open the consultation",
        "closes_on": " It closes on {day}.",
        "invitation_subject": "New consultation: {title}",
        "invitation_body": "A consultation is open: \u201c{question}\u201d Propose your ideas and vote on those of"
                           " others; nobody can see how you voted or what you wrote.{closes}",
        "reminder_subject": "{title}: closing soon",
        "reminder_body": "The consultation \u201c{title}\u201d closes soon.{closes} This reminder goes to"
                         " everyone invited: there is still time to propose and vote.",
        "results_subject": "{title}: the results are published",
        "results_body": "The results of the consultation \u201c{title}\u201d are published. Everyone invited can"
                        " read them on the appliance.",
        "opt_out": "No more reminders: open this link",
    },
    "fr": {
        "weekly_subject": "{title} : le point de la semaine",
        "weekly_intro": "O\u00f9 en est la consultation \u00ab {title} \u00bb cette semaine.",
        "participation": "Participation : {band} personnes (au {day})",
        "participation_unknown": "Participation : pas encore publi\u00e9e (les chiffres ont un jour de d\u00e9calage)",
        "accepted": "Propositions accept\u00e9es \u00e0 ce jour : {count}",
        "pending": "Propositions en attente de mod\u00e9ration : {count}",
        "final_subject": "{title} : les r\u00e9sultats",
        "final_intro": "La consultation \u00ab {title} \u00bb est termin\u00e9e. Ce qui en ressort :",
        "round_voters": "Votants : {count}",
        "voters": "{count} votants",
        "not_enough": "pas assez de r\u00e9ponses",
        "consensus": "Les plus soutenues",
        "controversy": "Les plus partag\u00e9es",
        "none_shown": "Aucune avec assez de r\u00e9ponses.",
        "agree": "d'accord", "disagree": "pas d'accord", "neutral": "neutre",
        "open_round": "Ouvrir la consultation",
        "closes_on": " Elle se termine le {day}.",
        "invitation_subject": "Nouvelle consultation : {title}",
        "invitation_body": "Une consultation est ouverte : \u00ab {question} \u00bb Proposez vos id\u00e9es et votez"
                           " sur celles des autres ; personne ne peut savoir ce que vous avez vot\u00e9 ou"
                           " \u00e9crit.{closes}",
        "reminder_subject": "{title} : bient\u00f4t termin\u00e9e",
        "reminder_body": "La consultation \u00ab {title} \u00bb se termine bient\u00f4t.{closes} Ce rappel est"
                         " envoy\u00e9 \u00e0 toutes les personnes invit\u00e9es : il est encore temps de proposer"
                         " et de voter.",
        "results_subject": "{title} : les r\u00e9sultats sont publi\u00e9s",
        "results_body": "Les r\u00e9sultats de la consultation \u00ab {title} \u00bb sont publi\u00e9s. Toutes les"
                        " personnes invit\u00e9es peuvent les lire sur l'appliance.",
        "opt_out": "Ne plus recevoir de rappels : ouvrez ce lien",
    },
}


@lru_cache(maxsize=64)
def zone_named(name: str) -> ZoneInfo:
    """The IANA time zone, or Invalid naming it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid("unknown time zone %(name)s: give an IANA name such as 'Europe/Paris'", name=repr(name)) from None


def parse_local_time(text: str) -> time:
    """"HH:MM" (24-hour clock), or Invalid."""
    match = _LOCAL_TIME.match(text)
    if match is None:
        raise Invalid("bad time %(text)s: give the local time as HH:MM, from 00:00 to 23:59", text=repr(text))
    return time(int(match[1]), int(match[2]))


def latest_occurrence(weekday: int, local_time: str, zone_name: str, now: datetime) -> datetime:
    """The last weekday-at-local-time at or before `now`, as an aware time in that zone (wall clock, DST-aware)."""
    zone, at = zone_named(zone_name), parse_local_time(local_time)
    local_now = now.astimezone(zone)
    day = local_now.date() - timedelta(days=(local_now.weekday() - weekday) % 7)
    occurrence = datetime.combine(day, at, tzinfo=zone)
    if occurrence > now:
        occurrence = datetime.combine(day - timedelta(days=7), at, tzinfo=zone)
    return occurrence


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
    """The best-ranked shown proposals of one zone (consensus, controversy), at most `count`."""
    shown = [p for p in view.proposals if p.scores is not None and p.rank is not None and p.scores.zone == zone]
    shown.sort(key=lambda p: p.rank)
    return [ProposalLine(p.text, p.voters, {name: p.scores.rates[name].value for name in RATES})
            for p in shown[:count]]


def percent(rate: float) -> int:
    return round(min(max(rate, 0.0), 1.0) * 100)


def text_bar(rate: float) -> str:
    return "\u2587" * round(percent(rate) * BAR_WIDTH / 100)


def html_bar(name: str, rate: float, label: str) -> str:
    width = percent(rate)
    return (f'<div style="display:flex;align-items:center;margin:2px 0;font-size:13px">'
            f'<span style="width:90px">{escape(label)} {width}%</span>'
            f'<div style="background:#eeeeee;width:200px;height:10px">'
            f'<div style="background:{BAR_COLOURS[name]};width:{width}%;height:10px"></div></div></div>')


def _page(title: str, body: str) -> str:
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{escape(title)}</title></head>'
            f'<body style="font-family:sans-serif;color:#222222;max-width:640px">{body}</body></html>')


def _link_lines(words: dict[str, str], link: str | None) -> tuple[str, str]:
    if not link:
        return "", ""
    return f"\n{words['open_round']}: {link}\n", f'<p><a href="{escape(link)}">{escape(words["open_round"])}</a></p>'


def weekly_digest(title: str, band: str | None, as_of: str | None, accepted: int, pending: int | None,
                  link: str | None, language: str = "en") -> Content:
    """The weekly digest of an open round: participation band (lagged), accepted proposals, and for admins the backlog."""
    words = TEXTS[language]
    participation = (words["participation"].format(band=band, day=as_of) if band and as_of
                     else words["participation_unknown"])
    lines = [participation, words["accepted"].format(count=accepted)]
    if pending is not None:
        lines.append(words["pending"].format(count=pending))
    link_text, link_html = _link_lines(words, link)
    text = words["weekly_intro"].format(title=title) + "\n\n" + "\n".join(f"- {line}" for line in lines) + "\n" + link_text
    body = (f"<h1 style=\"font-size:20px\">{escape(title)}</h1><p>{escape(words['weekly_intro'].format(title=title))}</p>"
            "<ul>" + "".join(f"<li>{escape(line)}</li>" for line in lines) + "</ul>" + link_html)
    subject = words["weekly_subject"].format(title=title)
    return Content(subject, text, _page(subject, body))


def _proposal_text(line: ProposalLine, words: dict[str, str]) -> str:
    voters = words["voters"].format(count=line.voters) if line.voters is not None else words["not_enough"]
    bars = "\n".join(f"    {words[name]:<9} {percent(line.rates[name]):>3}% {text_bar(line.rates[name])}" for name in RATES)
    return f"* {line.text} ({voters})\n{bars}"


def _proposal_html(line: ProposalLine, words: dict[str, str]) -> str:
    voters = words["voters"].format(count=line.voters) if line.voters is not None else words["not_enough"]
    bars = "".join(html_bar(name, line.rates[name], words[name]) for name in RATES)
    return (f'<div style="margin:12px 0"><p style="margin:0 0 4px 0"><strong>{escape(line.text)}</strong>'
            f' <span style="color:#666666">({escape(voters)})</span></p>{bars}</div>')


def final_digest(title: str, voters: int | None, consensus: list[ProposalLine], controversy: list[ProposalLine],
                 link: str | None, language: str = "en") -> Content:
    """The final digest: the best consensus and controversy proposals of the publishable view, with bars."""
    words = TEXTS[language]
    total = words["round_voters"].format(count=voters) if voters is not None else words["not_enough"]
    text_parts, html_parts = [words["final_intro"].format(title=title), total], []
    for heading, lines in ((words["consensus"], consensus), (words["controversy"], controversy)):
        shown = [_proposal_text(line, words) for line in lines] or [words["none_shown"]]
        text_parts.append(f"{heading}\n" + "\n".join(shown))
        items = "".join(_proposal_html(line, words) for line in lines) or f"<p>{escape(words['none_shown'])}</p>"
        html_parts.append(f'<h2 style="font-size:16px">{escape(heading)}</h2>{items}')
    link_text, link_html = _link_lines(words, link)
    subject = words["final_subject"].format(title=title)
    body = (f"<h1 style=\"font-size:20px\">{escape(title)}</h1><p>{escape(words['final_intro'].format(title=title))}"
            f"</p><p>{escape(total)}</p>" + "".join(html_parts) + link_html)
    return Content(subject, "\n\n".join(text_parts) + "\n" + link_text, _page(subject, body))


def notice(kind: str, title: str, question: str, closes_on: date | None, link: str | None,
           opt_out: str | None = None, language: str = "en") -> Content:
    """An invitation, a reminder or a results notice to the whole audience."""
    words = TEXTS[language]
    closes = words["closes_on"].format(day=closes_on.isoformat()) if closes_on else ""
    body_text = words[f"{kind}_body"].format(title=title, question=question, closes=closes).strip()
    link_text, link_html = _link_lines(words, link)
    text, html = body_text + "\n" + link_text, f"<p>{escape(body_text)}</p>{link_html}"
    if opt_out:
        text += f"\n{words['opt_out']}: {opt_out}\n"
        html += f'<p style="font-size:12px;color:#666666">{escape(words["opt_out"])}: {escape(opt_out)}</p>'
    subject = words[f"{kind}_subject"].format(title=title)
    return Content(subject, text, _page(subject, html))
