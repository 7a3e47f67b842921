"""One progress rule (issue 11, defect 6): the same enrolment shows the same whole percent, rounded
down, in the student's course outline, the roster, the gradebook and the progress CSV."""

from __future__ import annotations

import csv
import io
import re
from html.parser import HTMLParser

import pytest

from tests.conftest import login_as, make_course
from tests.test_teaching import blocks_of, complete, enrol

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


class _Texts(HTMLParser):
    """The text inside every element ``tag`` whose attributes include ``attrs``."""

    def __init__(self, tag: str, attrs: dict[str, str]):
        super().__init__()
        self.tag, self.attrs = tag, attrs
        self.found: list[str] = []
        self.depth = 0  # inside a match: how many open elements deep

    def handle_starttag(self, tag, attrs):
        if self.depth:
            self.depth += tag not in VOID
        elif tag == self.tag and self.attrs.items() <= {k: v or "" for k, v in attrs}.items():
            self.found.append("")
            self.depth = 1

    def handle_endtag(self, tag):
        if self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if self.depth:
            self.found[-1] += data


def texts(html: str, tag: str, **attrs: str) -> list[str]:
    parser = _Texts(tag, {k.rstrip("_"): v for k, v in attrs.items()})
    parser.feed(html)
    return [" ".join(t.split()) for t in parser.found]


def percent_in(text: str) -> int:
    found = {int(p) for p in re.findall(r"(\d+)\s*%", text)}
    assert len(found) == 1, text  # one figure, however often it is shown
    return found.pop()


def shown_everywhere(client, course, student, teacher) -> dict[str, int]:
    """The student's progress as each place shows it."""
    login_as(client, student)
    outline = client.get(f"/courses/{course.id}").text
    login_as(client, teacher)
    base = f"/teach/courses/{course.id}"
    roster = client.get(f"{base}/students").text
    book = client.get(f"{base}/gradebook").text
    raw = client.get(f"{base}/progress.csv").get_data().decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(raw, newline="")))
    assert rows and {r["Email"] for r in rows} == {student.email}
    return {
        "outline": percent_in(" ".join(texts(outline, "div", id="course-progress"))),
        "roster": percent_in(" ".join(texts(roster, "td", class_="progress-cell"))),
        "gradebook": percent_in(" ".join(texts(book, "td", class_="progress"))),
        "csv": percent_in(" ".join(f"{r['Course progress (%)']}%" for r in rows)),
    }


@pytest.mark.parametrize(("done", "expected"), [(4, 66), (5, 83), (1, 16)])
def test_outline_roster_gradebook_and_csv_show_the_same_floor_percent(
    client, teacher, student, done, expected
):
    course = make_course(teacher, title="Six", sections=2, blocks=3, types=("lesson",))
    enrol(student, course)
    for block in blocks_of(course)[:done]:
        complete(student, block)
    assert len(blocks_of(course)) == 6
    shown = shown_everywhere(client, course, student, teacher)
    assert shown == dict.fromkeys(shown, expected)


def test_one_block_short_of_the_end_is_never_100_percent(client, teacher, student):
    course = make_course(teacher, title="Long", sections=4, blocks=50, types=("lesson",))
    enrol(student, course)
    for block in blocks_of(course)[:199]:
        complete(student, block)
    shown = shown_everywhere(client, course, student, teacher)
    assert shown == dict.fromkeys(shown, 99)
