"""The home page's trend chart: home blood pressure and glucose over time, drawn on the server
as SVG with pygal (no script reaches the browser, nothing is loaded from elsewhere).

The SVG is served on its own URL and shown through <img>, so a browser never runs anything in
it; still, pygal's inline configuration script (its tooltips need it, and they need a script
file we do not serve) and its comments are taken out, leaving shapes, text and one <style>.
"""

from __future__ import annotations

import datetime as dt
import sys
import xml.etree.ElementTree as ET  # noqa: S405 - only our own pygal output is parsed
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pygal
from pygal.style import Style

# pygal appends a finder for its map plugins (unused here) that lacks find_spec: from then on
# every failed import anywhere in the process raises an ImportWarning (an error under the
# test suite's warning filter). Take it out again.
sys.meta_path[:] = [finder for finder in sys.meta_path
                    if not isinstance(finder, pygal.PluginImportFixer)]

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
ET.register_namespace("", SVG_NS)
ET.register_namespace("xlink", XLINK_NS)

# The portal's colours (portal.css), each at least 4.5:1 on white; a series keeps its colour
# whichever others are drawn with it.
SYSTOLIC_COLOUR, DIASTOLIC_COLOUR, GLUCOSE_COLOUR = "#b42318", "#1a5fb4", "#0b6e4f"


def _style(colours: tuple[str, ...]) -> Style:
    return Style(
        background="#ffffff", plot_background="#ffffff", foreground="#1b1f23",
        foreground_strong="#1b1f23", foreground_subtle="#4a5560", colors=colours,
        font_family="system-ui, sans-serif", label_font_size=14, major_label_font_size=14,
        legend_font_size=15, title_font_size=16, no_data_font_size=20, value_font_size=13,
        tooltip_font_size=14, guide_stroke_color="#c9d1d9", major_guide_stroke_color="#c9d1d9",
        stroke_width="2.5", stroke_opacity="1", opacity="1",
    )


# Fixed scales (widened when a value falls outside), so two charts of different weeks compare
# at a glance and a single reading does not fill the whole height.
PRESSURE_RANGE = (40.0, 200.0)
GLUCOSE_RANGE = (0.0, 20.0)


@dataclass(frozen=True)
class TrendTexts:
    """The chart's words in the reader's language."""

    title: str
    systolic: str
    diastolic: str
    glucose: str
    no_data: str


def trend_svg(*, pressure: Sequence[tuple[dt.datetime, float, float]],
              glucose: Sequence[tuple[dt.datetime, float]], texts: TrendTexts,
              number: Callable[[float], str]) -> bytes:
    """The chart as an SVG document. Times are local wall-clock times (Viet Nam), naive;
    `number` writes a value the reader's way (7,1 in Vietnamese)."""
    low, high = PRESSURE_RANGE
    for _, systolic, diastolic in pressure:
        low, high = min(low, diastolic - 10), max(high, systolic + 10)
    glucose_high = max([GLUCOSE_RANGE[1], *(value + 2 for _, value in glucose)])
    colours = ((SYSTOLIC_COLOUR, DIASTOLIC_COLOUR) if pressure else ()) + (
        (GLUCOSE_COLOUR,) if glucose else ())
    chart = pygal.DateTimeLine(
        js=[], style=_style(colours or (GLUCOSE_COLOUR,)), width=420, height=280,
        explicit_size=False, show_dots=True, dots_size=4, min_scale=4, max_scale=8,
        # The legend is the page's (HTML wraps on a phone; pygal reserves its bottom legend's
        # room once per axis, a blank band under the plot); the SVG keeps its title.
        show_legend=False, truncate_label=-1,
        x_value_formatter=lambda moment: moment.strftime("%d/%m"), x_label_rotation=0,
        x_labels_major_count=4, show_minor_x_labels=False,
        range=(low, high) if pressure else (GLUCOSE_RANGE[0], glucose_high),
        secondary_range=(GLUCOSE_RANGE[0], glucose_high), no_data_text=texts.no_data,
        show_x_labels=bool(pressure or glucose), show_y_labels=bool(pressure or glucose),
        value_formatter=number, margin=12, pretty_print=False, disable_xml_declaration=False,
    )
    if pressure:
        chart.add(texts.systolic, [(at, s) for at, s, _ in pressure])
        chart.add(texts.diastolic, [(at, d) for at, _, d in pressure])
    if glucose:
        # Its own scale on the right when blood pressure takes the left one.
        chart.add(texts.glucose, list(glucose), secondary=bool(pressure))
    return _cleaned(chart.render(), texts.title)


def _cleaned(rendered: bytes, title: str) -> bytes:
    """pygal's SVG without its script (the page's CSP would block it anyway) and comments,
    titled for screen readers."""
    root = ET.fromstring(rendered)  # noqa: S314 - pygal's output, built from our own numbers
    for parent in list(root.iter()):
        for child in list(parent):
            if child.tag == f"{{{SVG_NS}}}script":
                parent.remove(child)
    found = root.find(f"{{{SVG_NS}}}title")
    if found is not None:
        found.text = title
    root.set("role", "img")
    root.set("aria-label", title)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
