"""Reading course cards (catalogue, My learning) out of a page, with html.parser."""

from __future__ import annotations

from html.parser import HTMLParser

_FIELDS = {
    "course-card-title": "title",
    "course-card-teacher": "teacher",
    "course-card-summary": "summary",
    "cover-badge": "badge",
    "progress-text": "progress",
}


class _Cards(HTMLParser):
    def __init__(self):
        super().__init__()
        self.cards: list[dict] = []
        self._field: str | None = None
        self._depth = 0
        self._in_facts = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "li" and "course-card" in classes:
            self.cards.append(
                {"facts": [], "enrolled": "is-enrolled" in classes, "cover": False, "links": []}
            )
            return
        if not self.cards:
            return
        card = self.cards[-1]
        if tag == "svg" and "cover-art" in classes:
            card["cover"] = True
        if tag == "a":
            card["links"].append(a.get("href"))
        if tag == "progress":
            card["value"], card["max"] = int(a["value"]), int(a["max"])
        if tag == "ul" and "course-facts" in classes:
            self._in_facts = True
        if tag == "li" and self._in_facts:
            card["facts"].append("")
            self._field = "fact"
        for cls, name in _FIELDS.items():
            if cls in classes:
                self._field = name
                card[name] = ""

    def handle_endtag(self, tag):
        if tag == "ul" and self._in_facts:
            self._in_facts = False
        if tag in ("h2", "p", "span", "li"):
            self._field = None

    def handle_data(self, data):
        if not self.cards or not self._field:
            return
        card = self.cards[-1]
        if self._field == "fact":
            card["facts"][-1] += data.strip()
        else:
            card[self._field] = (card[self._field] + " " + data.strip()).strip()


def course_cards(html: str) -> list[dict]:
    """Each card: title, teacher, summary, facts (["6 blocks", "About 1 h"]), badge, enrolled,
    cover (a generated cover is drawn), value/max of its progress bar, progress text, links."""
    parser = _Cards()
    parser.feed(html)
    return parser.cards
