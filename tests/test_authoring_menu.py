"""The calmer editor (issue 16): a row shows its type, title and one Edit, the other actions sit
in a "More" menu whose buttons submit one shared form; Duplicate; announcements that say where
a thing went; the course title's editor keeps the page's <h1>."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from tests.conftest import login_as, make_course, make_user
from webapp.extensions import db
from webapp.models import CompletedContentBlock, ContentBlock, Section


def hx(target: str) -> dict:
    return {"HX-Request": "true", "HX-Target": target}


def announced(resp) -> str:
    return json.loads(resp.headers["HX-Trigger"])["announce"]


@pytest.fixture
def course(teacher):
    # Section 1: Block 1.1, Block 1.2 | Section 2: Block 2.1, Block 2.2
    return make_course(teacher, title="Draft course", sections=2, blocks=2, published=False)


def blocks(course_id: int) -> dict[str, ContentBlock]:
    db.session.expire_all()
    rows = db.session.scalars(
        ContentBlock.__table__.select()
        .join(Section.__table__)
        .where(Section.course_id == course_id)
        .with_only_columns(ContentBlock.id)
    ).all()
    return {b.title: b for b in (db.session.get(ContentBlock, i) for i in rows)}


class Tree(HTMLParser):
    """The page as nested elements: (tag, attrs, children, text)."""

    VOID = {"input", "br", "img", "meta", "link", "hr"}

    def __init__(self):
        super().__init__()
        self.root = ("root", {}, [], [])
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        node = (tag, dict(attrs), [], [])
        self.stack[-1][2].append(node)
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        for node in self.stack:
            node[3].append(data)


def walk(node):
    yield node
    for child in node[2]:
        yield from walk(child)


def find(node, pred):
    return [n for n in walk(node) if pred(n)]


def text(node) -> str:
    return " ".join("".join(node[3]).split())


def parse(html: str):
    tree = Tree()
    tree.feed(html)
    return tree.root


def test_a_row_shows_type_title_and_one_edit_and_the_rest_in_a_menu(client, teacher, course):
    login_as(client, teacher)
    page = parse(client.get(f"/teach/courses/{course.id}").text)
    rows = find(page, lambda n: n[0] == "li" and "block" in n[1].get("class", "").split())
    assert len(rows) == 4
    [shared] = find(page, lambda n: n[0] == "form" and n[1].get("id") == "row-action")
    assert shared[1]["method"] == "post" and find(
        shared, lambda n: n[1].get("name") == "csrf_token"
    )
    for row in rows:
        title = text(find(row, lambda n: "block-title" in n[1].get("class", ""))[0])
        actions = find(row, lambda n: "block-actions" in n[1].get("class", ""))[0]
        # Outside the menu: one control, Edit.
        direct = [n for n in actions[2] if n[0] in ("a", "button")]
        assert [text(n) for n in direct] == [f"Edit block {title}"]
        [menu] = [n for n in actions[2] if n[0] == "details"]
        assert "menu" in menu[1]["class"].split() and "open" not in menu[1]
        summary = menu[2][0]
        assert summary[0] == "summary" and text(summary) == "More"
        assert summary[1]["aria-labelledby"] == f"{summary[1]['id']} {row[1]['id']}-t"
        items = [text(n) for n in find(menu, lambda n: n[0] in ("button", "a", "summary"))]
        assert items == [
            "More", "↑ Move up", "↓ Move down", "Move to section…", "Duplicate", "Delete…",
            "Delete block",
        ]  # fmt: skip
        # Every button submits the shared form to its own action; none is a danger button
        # but the one inside the delete confirmation.
        for button in find(menu, lambda n: n[0] == "button"):
            assert button[1]["form"] == "row-action" and button[1]["type"] == "submit"
            assert button[1]["formaction"].startswith(f"/teach/blocks/{row[1]['data-id']}/")
        dangers = find(row, lambda n: "danger" in n[1].get("class", "").split())
        assert [text(n) for n in dangers] == ["Delete block"]
        confirm = find(menu, lambda n: "confirm-body" in n[1].get("class", ""))[0]
        assert dangers[0] in confirm[2]


def test_menu_actions_work_as_plain_forms(client, teacher, course):
    """Without JavaScript each menu button posts the shared form to its formaction."""
    login_as(client, teacher)
    b = blocks(course.id)
    resp = client.post(f"/teach/blocks/{b['Block 1.2'].id}/move", data={"direction": "up"})
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith(f"#block-{b['Block 1.2'].id}")
    page = client.get(resp.headers["Location"]).text
    assert "Block 1.2 moved to position 1 in Section 1" in page  # the flash says it too
    resp = client.post(f"/teach/blocks/{b['Block 2.1'].id}/duplicate")
    assert resp.status_code == 303
    copy = blocks(course.id)["Copy of Block 2.1"]
    assert (copy.section.title, copy.position, blocks(course.id)["Block 2.2"].position) == (
        "Section 2",
        1,
        2,
    )
    resp = client.post(f"/teach/blocks/{copy.id}/delete")
    assert resp.status_code == 303 and "Copy of Block 2.1" not in blocks(course.id)


def test_duplicate_copies_the_block_right_after_it_without_completions(
    client, teacher, student, course
):
    b = blocks(course.id)["Block 1.1"]
    b.content, b.description = "Some **words**", "Read this"
    db.session.add(CompletedContentBlock(student_id=student.id, content_block_id=b.id, feedback=""))
    db.session.commit()
    login_as(client, teacher)
    resp = client.post(f"/teach/blocks/{b.id}/duplicate", headers=hx("outline"))
    assert resp.status_code == 200
    assert announced(resp) == "Copy of Block 1.1 added at position 2 in Section 1"
    now = blocks(course.id)
    copy = now["Copy of Block 1.1"]
    assert [now[t].position for t in ("Block 1.1", "Copy of Block 1.1", "Block 1.2")] == [0, 1, 2]
    assert (copy.type, copy.url, copy.content, copy.description) == (
        b.type,
        b.url,
        "Some **words**",
        "Read this",
    )
    assert db.session.query(CompletedContentBlock).filter_by(content_block_id=copy.id).count() == 0
    # Focus goes to the copy's Edit.
    edit = find(
        parse(resp.text),
        lambda n: n[0] == "a" and n[1].get("hx-get") == f"/teach/blocks/{copy.id}?edit=1",
    )
    assert "data-autofocus" in edit[0][1]


@pytest.mark.parametrize("who", ["student", "other", "admin"])
def test_only_the_owner_duplicates(client, course, who):
    user = make_user({"other": "teacher"}.get(who, who))
    login_as(client, user)
    b = blocks(course.id)["Block 1.1"]
    assert client.post(f"/teach/blocks/{b.id}/duplicate").status_code == 404
    assert "Copy of Block 1.1" not in blocks(course.id)


def test_announcements_say_where_things_went(client, teacher, course):
    """Issue 16, item 3: "Installing Python moved to position 3 in Getting started", not
    "Block moved" (each of these said only "Block moved", "Section added", … before)."""
    login_as(client, teacher)
    b = blocks(course.id)
    sections = {s.title: s for s in db.session.query(Section).filter_by(course_id=course.id)}
    say = {}
    post = client.post
    say["down"] = post(
        f"/teach/blocks/{b['Block 1.2'].id}/move", data={"direction": "down"}, headers=hx("outline")
    )
    say["to"] = post(
        f"/teach/blocks/{b['Block 1.1'].id}/move",
        data={"section_id": sections["Section 2"].id},
        headers=hx("outline"),
    )
    say["section"] = post(
        f"/teach/sections/{sections['Section 2'].id}/move",
        data={"direction": "up"},
        headers=hx("outline"),
    )
    say["add_section"] = post(
        f"/teach/courses/{course.id}/sections",
        data={"new-section-title": "Extras"},
        headers=hx("outline"),
    )
    extras = db.session.query(Section).filter_by(title="Extras").one()
    new = f"new-block-{extras.id}"
    say["add_block"] = post(
        f"/teach/sections/{extras.id}/blocks",
        data={f"{new}-title": "Installing Python", f"{new}-type": "lesson"},
        headers=hx("outline"),
    )
    assert {k: (r.status_code, announced(r)) for k, r in say.items()} == {
        "down": (200, "Block 1.2 moved to position 1 in Section 2"),
        "to": (200, "Block 1.1 moved to position 4 in Section 2"),
        "section": (200, "Section Section 2 moved to position 1 of 2"),
        "add_section": (200, "Section Extras added at position 3 of 3"),
        "add_block": (200, "Lesson Installing Python added at position 1 in Extras"),
    }


def test_drag_and_drop_says_what_was_dragged_where(client, teacher, course):
    login_as(client, teacher)
    b = blocks(course.id)
    s1, s2 = (b["Block 1.1"].section_id, b["Block 2.1"].section_id)
    ids = {t: x.id for t, x in b.items()}
    # Block 1.2 dragged over the section's edge: the flat order is the same, its section not.
    order = [[s1, [ids["Block 1.1"]]], [s2, [ids["Block 1.2"], ids["Block 2.1"], ids["Block 2.2"]]]]
    resp = client.post(
        f"/teach/courses/{course.id}/order",
        data={"order": json.dumps(order)},
        headers=hx("outline"),
    )
    assert resp.status_code == 200
    assert announced(resp) == "Block 1.2 moved to position 1 in Section 2"
    same = client.post(
        f"/teach/courses/{course.id}/order",
        data={"order": json.dumps(order)},
        headers=hx("outline"),
    )
    assert announced(same) == "Order saved: 2 sections, 4 blocks"


def test_the_course_title_editor_keeps_the_page_heading(client, teacher, course):
    """Issue 16, item 4: the in-place title form replaced the page's only <h1>."""
    login_as(client, teacher)
    for resp in (
        client.get(f"/teach/courses/{course.id}?edit=course-title"),  # without JavaScript
        client.get(f"/teach/courses/{course.id}/title?edit=1", headers=hx("course-title")),
        client.post(  # refused, the form again
            f"/teach/courses/{course.id}/title",
            data={"course-edit-title": " "},
            headers=hx("course-title"),
        ),
    ):
        page = parse(resp.text)
        assert find(page, lambda n: n[0] == "form" and "inplace-form" in n[1].get("class", ""))
        assert [text(h) for h in find(page, lambda n: n[0] == "h1")] == ["Draft course"]
    section = db.session.query(Section).filter_by(course_id=course.id).first()
    form = client.get(
        f"/teach/sections/{section.id}/title?edit=1", headers=hx(f"section-{section.id}-title")
    )
    assert [text(h) for h in find(parse(form.text), lambda n: n[0] == "h2")] == ["Section 1"]
