"""Sections and content blocks over the API: create, read, update, delete, move, and the
course's whole order at once. The course's owner only (``access.section_for_owner``,
``block_for_owner``, ``course_for_owner``); anyone else gets 404."""

from __future__ import annotations

from flask import url_for
from marshmallow import Schema, fields, validate

from ..models import BlockType
from ..services import access, unit_of_work
from ..services import blocks as block_svc
from ..services import courses as svc
from . import bp
from .schemas import text
from .security import authenticated, me

TAGS = ["sections and blocks"]
TYPES = [str(t) for t in BlockType]


class BlockRowSchema(Schema):
    id = fields.Integer(required=True)
    title = fields.String(required=True)
    type = fields.String(required=True, validate=validate.OneOf(TYPES))
    completions = fields.Integer(required=True)


class SectionSchema(Schema):
    id = fields.Integer(required=True)
    course_id = fields.Integer(required=True)
    title = fields.String(required=True)
    description = fields.String(required=True)
    position = fields.Integer(required=True)
    blocks = fields.List(fields.Nested(BlockRowSchema), required=True)


class NewSectionSchema(Schema):
    title = text(200, required=True)
    description = text(5000, load_default="")


class SectionChangeSchema(Schema):
    title = text(200)
    description = text(5000)


class MoveSchema(Schema):
    direction = fields.String(validate=validate.OneOf(["up", "down"]))
    section_id = fields.Integer(
        metadata={"description": "Blocks only: move to the end of this section"}
    )


class BlockSchema(Schema):
    id = fields.Integer(required=True)
    section_id = fields.Integer(required=True)
    course_id = fields.Integer(required=True)
    title = fields.String(required=True)
    type = fields.String(required=True, validate=validate.OneOf(TYPES))
    url = fields.String(required=True, allow_none=True)
    description = fields.String(required=True)
    content = fields.String(required=True, metadata={"description": "Markdown"})
    position = fields.Integer(required=True)


class NewBlockSchema(Schema):
    title = text(200, required=True)
    type = fields.String(load_default=str(BlockType.LESSON), validate=validate.OneOf(TYPES))
    url = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))
    description = text(5000, load_default="")
    content = text(100_000, load_default="")


class BlockChangeSchema(Schema):
    title = text(200)
    type = fields.String(validate=validate.OneOf(TYPES))
    url = fields.String(allow_none=True, validate=validate.Length(max=2000))
    description = text(5000)
    content = text(100_000)


class OrderSectionSchema(Schema):
    id = fields.Integer(required=True)
    blocks = fields.List(fields.Integer(), required=True)


class OrderSchema(Schema):
    sections = fields.List(
        fields.Nested(OrderSectionSchema), required=True, validate=validate.Length(max=2000)
    )


def section_body(section_id: int) -> dict:
    section = access.section_for_owner(section_id, me())
    o = svc.section_outline(section.id, me())
    return {
        "id": section.id,
        "course_id": section.course_id,
        "title": section.title,
        "description": section.description,
        "position": section.position,
        "blocks": [
            {"id": b.id, "title": b.title, "type": b.type, "completions": b.done}
            for b in o.blocks_of(section)
        ],
    }


def block_body(block_id: int) -> dict:
    b = access.block_for_owner(block_id, me())
    return {
        "id": b.id,
        "section_id": b.section_id,
        "course_id": b.section.course_id,
        "title": b.title,
        "type": b.type,
        "url": b.url,
        "description": b.description,
        "content": b.content,
        "position": b.position,
    }


# --- sections ----------------------------------------------------------------------------------


@bp.route("/courses/<int:course_id>/sections", methods=["POST"], tags=TAGS)
@authenticated()
@bp.arguments(NewSectionSchema)
@bp.response(201, SectionSchema)
def create_section(args, course_id: int):
    """Add a section at the end of the course."""
    course = access.course_for_owner(course_id, me())
    section = svc.add_section(course, args["title"], args["description"])
    location = url_for("api.get_section", section_id=section.id)
    return section_body(section.id), 201, {"Location": location}


@bp.route("/sections/<int:section_id>", methods=["GET"], tags=TAGS)
@authenticated()
@bp.response(200, SectionSchema)
def get_section(section_id: int):
    """A section of your course, with its blocks in order."""
    return section_body(section_id)


@bp.route("/sections/<int:section_id>", methods=["PATCH"], tags=TAGS)
@authenticated()
@bp.arguments(SectionChangeSchema)
@bp.response(200, SectionSchema)
def update_section(args, section_id: int):
    """Change the section's title or description."""
    section = access.section_for_owner(section_id, me())
    with unit_of_work():  # both saved, or neither
        for name in ("title", "description"):
            if name in args:
                svc.update_section_field(section, name, args[name])
    return section_body(section_id)


@bp.route("/sections/<int:section_id>", methods=["DELETE"], tags=TAGS)
@authenticated()
@bp.response(204)
def delete_section(section_id: int):
    """Delete the section with its blocks and their completions."""
    svc.delete_section(access.section_for_owner(section_id, me()))
    return "", 204


@bp.route("/sections/<int:section_id>/move", methods=["POST"], tags=TAGS)
@authenticated()
@bp.arguments(MoveSchema)
@bp.response(200, SectionSchema)
def move_section(args, section_id: int):
    """Move the section one place ``up`` or ``down``."""
    section = access.section_for_owner(section_id, me())
    svc.move_section(section, args.get("direction", ""))
    return section_body(section_id)


@bp.route("/courses/<int:course_id>/order", methods=["PUT"], tags=TAGS)
@authenticated()
@bp.arguments(OrderSchema)
@bp.response(204)
def reorder(args, course_id: int):
    """Save the whole order of the course's sections and blocks at once.

    Every section of the course, each with all its blocks, once; an order that does not name
    exactly the course's sections and blocks is a 409."""
    course = access.course_for_owner(course_id, me())
    block_svc.reorder(course, [(s["id"], s["blocks"]) for s in args["sections"]])
    return "", 204


# --- blocks ------------------------------------------------------------------------------------


@bp.route("/sections/<int:section_id>/blocks", methods=["POST"], tags=TAGS)
@authenticated()
@bp.arguments(NewBlockSchema)
@bp.response(201, BlockSchema)
def create_block(args, section_id: int):
    """Add a block at the end of the section (a video or link needs its ``url``)."""
    section = access.section_for_owner(section_id, me())
    block = block_svc.add_block(
        section, args["title"], args["type"], url=args["url"], content=args["content"],
        description=args["description"],
    )  # fmt: skip
    location = url_for("api.get_block", block_id=block.id)
    return block_body(block.id), 201, {"Location": location}


@bp.route("/blocks/<int:block_id>", methods=["GET"], tags=TAGS)
@authenticated()
@bp.response(200, BlockSchema)
def get_block(block_id: int):
    """A block of your course, with its content."""
    return block_body(block_id)


@bp.route("/blocks/<int:block_id>", methods=["PATCH"], tags=TAGS)
@authenticated()
@bp.arguments(BlockChangeSchema)
@bp.response(200, BlockSchema)
def update_block(args, block_id: int):
    """Change any of the block's values; the others stay as they are."""
    block = access.block_for_owner(block_id, me())
    values = {k: args.get(k, getattr(block, k)) for k in BlockChangeSchema().fields}
    block_svc.update_block(
        block, values["title"], values["type"], values["url"], values["content"],
        values["description"],
    )  # fmt: skip
    return block_body(block_id)


@bp.route("/blocks/<int:block_id>", methods=["DELETE"], tags=TAGS)
@authenticated()
@bp.response(204)
def delete_block(block_id: int):
    """Delete the block and its completions."""
    block_svc.delete_block(access.block_for_owner(block_id, me()))
    return "", 204


@bp.route("/blocks/<int:block_id>/move", methods=["POST"], tags=TAGS)
@authenticated()
@bp.arguments(MoveSchema)
@bp.response(200, BlockSchema)
def move_block(args, block_id: int):
    """Move the block one place ``up`` or ``down``, or to the end of section ``section_id``."""
    block = access.block_for_owner(block_id, me())
    if "section_id" in args:
        target = access.section_for_owner(args["section_id"], me())
        block_svc.move_block_to_section(block, target)
    else:
        block_svc.move_block(block, args.get("direction", ""))
    return block_body(block_id)
