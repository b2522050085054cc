"""Charts drawn on the server as inline SVG: no script, no external asset, readable by screen readers."""

from __future__ import annotations

from markupsafe import Markup, escape

from appliance.i18n import Speaker
from appliance.web.api.models import Figure

COLOURS = {"agree": "#17773a", "neutral": "#9aa3b0", "disagree": "#b42318"}
BAR_ORDER = ("agree", "neutral", "disagree")


def stacked_bar(rates: dict[str, Figure]) -> Markup:
    """Agree, neutral and disagree side by side, widths proportional to their published rates.

    Hidden from screen readers: the legend written under it says the same figures, which a label would
    have them hear twice.
    """
    values = [max(0.0, rates[name].value) for name in BAR_ORDER]
    total = sum(values) or 1.0
    parts, x = [], 0.0
    for name, value in zip(BAR_ORDER, values):
        width = 100 * value / total
        parts.append(f'<rect x="{x:.2f}" y="0" width="{width:.2f}" height="10" fill="{COLOURS[name]}"/>')
        x += width
    return Markup('<svg class="bar" viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true"'
                  ' focusable="false">{}</svg>').format(Markup("".join(parts)))


def interval_bar(figure: Figure, say: Speaker, name: str) -> Markup:
    """One rate with its interval: a line from low to high with a dot at the estimate, on a 0 to 100% track."""
    low, value, high = (100 * max(0.0, min(1.0, v)) for v in (figure.low, figure.value, figure.high))
    label = say.gettext("%(name)s %(value)s (from %(low)s to %(high)s)", name=say.gettext(name),
                        value=say.percent(figure.value), low=say.percent(max(0.0, figure.low)),
                        high=say.percent(min(1.0, figure.high)))
    return Markup(
        '<svg class="bar interval" viewBox="-2 0 104 10" preserveAspectRatio="none" role="img" aria-label="{}">'
        '<rect x="0" y="4" width="100" height="2" fill="#d6dae1"/>'
        '<rect x="{:.2f}" y="2" width="{:.2f}" height="6" fill="#1f4e79" opacity=".35"/>'
        '<rect x="{:.2f}" y="1" width="1.6" height="8" fill="#1f4e79"/></svg>'
    ).format(escape(label), low, max(0.5, high - low), value - 0.8)
