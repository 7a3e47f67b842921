"""Video blocks: YouTube and Vimeo players from strictly parsed URLs; the CSP allows only them."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from tests.conftest import login_as, make_course
from webapp.embeds import FRAME_HOSTS, video_embed
from webapp.extensions import db
from webapp.models import ContentBlock, Section, StudentCourse

YT = "dQw4w9WgXcQ"


@pytest.mark.parametrize(
    ("url", "src"),
    [
        (f"https://www.youtube.com/watch?v={YT}", f"https://www.youtube-nocookie.com/embed/{YT}"),
        (
            f"https://youtube.com/watch?v={YT}&list=PL1",
            f"https://www.youtube-nocookie.com/embed/{YT}",
        ),
        (f"http://m.youtube.com/watch?v={YT}", f"https://www.youtube-nocookie.com/embed/{YT}"),
        (f"https://youtu.be/{YT}", f"https://www.youtube-nocookie.com/embed/{YT}"),
        (f"https://youtu.be/{YT}?t=42", f"https://www.youtube-nocookie.com/embed/{YT}?start=42"),
        (
            f"https://www.youtube.com/watch?v={YT}&t=1h2m3s",
            f"https://www.youtube-nocookie.com/embed/{YT}?start=3723",
        ),
        (f"https://www.youtube.com/embed/{YT}", f"https://www.youtube-nocookie.com/embed/{YT}"),
        # an unreadable start time is dropped, the video is still shown
        (f"https://youtu.be/{YT}?t=soon", f"https://www.youtube-nocookie.com/embed/{YT}"),
        (f"https://www.youtube.com/shorts/{YT}", f"https://www.youtube-nocookie.com/embed/{YT}"),
        (f"https://www.youtube.com/live/{YT}/", f"https://www.youtube-nocookie.com/embed/{YT}"),
        (
            f"https://www.youtube-nocookie.com/embed/{YT}?start=90",
            f"https://www.youtube-nocookie.com/embed/{YT}?start=90",
        ),
        ("https://vimeo.com/76979871", "https://player.vimeo.com/video/76979871?dnt=1"),
        (
            "https://vimeo.com/76979871/8272103f6e",
            "https://player.vimeo.com/video/76979871?h=8272103f6e&dnt=1",
        ),
        (
            "https://vimeo.com/channels/staffpicks/76979871",
            "https://player.vimeo.com/video/76979871?dnt=1",
        ),
        (
            "https://vimeo.com/groups/shortfilms/videos/76979871",
            "https://player.vimeo.com/video/76979871?dnt=1",
        ),
        (
            "https://player.vimeo.com/video/76979871?h=8272103f6e&autoplay=1",
            "https://player.vimeo.com/video/76979871?h=8272103f6e&dnt=1",
        ),
    ],
)
def test_known_url_forms_become_players_on_the_allowed_hosts(url, src):
    embed = video_embed(url)
    assert embed is not None and embed.src == src
    assert any(embed.src.startswith(host + "/") for host in FRAME_HOSTS)


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        "https://example.com/video",
        f"https://www.youtube.com.evil.example/watch?v={YT}",
        f"https://evil.example/?u=https://www.youtube.com/watch?v={YT}",
        f"https://evilyoutube.com/watch?v={YT}",
        f"https://youtube.com@evil.example/watch?v={YT}",
        f"https://user:pass@www.youtube.com/watch?v={YT}",
        f"https://www.youtube.com:8443/watch?v={YT}",
        f"https://www.youtube.com./watch?v={YT}",
        f"javascript://www.youtube.com/watch?v={YT}",
        f"ftp://www.youtube.com/watch?v={YT}",
        f"//www.youtube.com/watch?v={YT}",
        f"https://www.youtube.com/watch?v={YT}x",  # 12 characters
        "https://www.youtube.com/watch?v=short",
        f'https://www.youtube.com/watch?v={YT[:-1]}"',
        "https://www.youtube.com/watch?v=%22onload%3Dx",
        f"https://www.youtube.com/watch?v={YT}&v=aaaaaaaaaaa",  # two ids: which one?
        f"https://www.youtube.com/watch/{YT}",
        f"https://www.youtube.com/embed/{YT}/extra",
        f"https://youtu.be/{YT}/extra",
        f"https://youtu.be/{YT[:5]}<script>",
        f"https://www.youtube-nocookie.com/watch?v={YT}",
        f"https://ＹＯＵＴＵＢＥ.com/watch?v={YT}",  # fullwidth letters
        f"https://www.youtube.com/watch?v={YT}\n",
        f"https://www.youtube.com\\@evil.example/watch?v={YT}",
        f"https://[::1]/watch?v={YT}",
        "https://vimeo.com/",
        "https://vimeo.com/abc",
        "https://vimeo.com/76979871/NOT-A-HASH",
        "https://vimeo.com/channels/bad name/76979871",
        "https://vimeo.com/1234567890123",  # 13 digits
        "https://player.vimeo.com/video/76979871?h=<x>",
        "https://player.vimeo.com/76979871",
        "https://vimeo.com.evil.example/76979871",
        "https://youtube.com/watch?v=" + "a" * 3000,
    ],
)
def test_anything_else_is_not_embedded(url):
    assert video_embed(url) is None


def test_the_csp_allows_frames_from_the_two_players_only(client):
    csp = client.get("/").headers["Content-Security-Policy"]
    directives = dict(
        (part.split()[0], part.split()[1:]) for part in csp.split(";") if part.strip()
    )
    assert directives["frame-src"] == [
        "https://www.youtube-nocookie.com",
        "https://player.vimeo.com",
    ]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["default-src"] == ["'self'"]
    assert "'unsafe-inline'" not in csp


class _Frames(HTMLParser):
    def __init__(self):
        super().__init__()
        self.frames: list[dict] = []
        self.link_cards: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "iframe":
            self.frames.append(a)
        if tag == "a" and "link-card" in (a.get("class") or ""):
            self.link_cards.append(a["href"])


def _block_page(client, student, teacher, url):
    course = make_course(teacher, title="Videos", sections=1, blocks=1, types=("video",))
    block = db.session.scalars(
        db.select(ContentBlock).join(Section).where(Section.course_id == course.id)
    ).one()
    block.url = url
    db.session.add(StudentCourse(student_id=student.id, course_id=course.id))
    db.session.commit()
    login_as(client, student)
    response = client.get(f"/courses/{course.id}/blocks/{block.id}")
    assert response.status_code == 200
    parser = _Frames()
    parser.feed(response.get_data(as_text=True))
    return parser, block


def test_a_youtube_video_block_shows_the_nocookie_player(client, student, teacher):
    page, block = _block_page(client, student, teacher, f"https://youtu.be/{YT}?t=5")
    [frame] = page.frames
    assert frame["src"] == f"https://www.youtube-nocookie.com/embed/{YT}?start=5"
    assert frame["title"] == f"YouTube video: {block.title}"
    assert frame["loading"] == "lazy"
    # The page's own policy sends no referrer to other sites; the player needs its origin.
    assert frame["referrerpolicy"] == "strict-origin-when-cross-origin"
    assert page.link_cards == []


def test_another_video_url_stays_a_link_card(client, student, teacher):
    page, _ = _block_page(client, student, teacher, "https://example.com/talk.mp4")
    assert page.frames == []
    assert page.link_cards == ["https://example.com/talk.mp4"]
