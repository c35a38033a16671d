"""The contacts and blocks endpoints of docs/protocol.md ("Contacts (friends) and blocks").

The views stay thin: `chatcore.server.contacts` decides who may see and answer an invitation (anyone
but its two users gets `not_found`), enforces blocks and sends the `contact` events; the views
only read the request and shape the reply.
"""

from __future__ import annotations

from quart import Response
from quart_schema import document_response, validate_request

from chatcore.models import Identity
from chatcore.server import contacts
from chatcore_rest.auth import requires_auth
from chatcore_rest.endpoints.base import API_PREFIX, Area
from chatcore_rest.jsonio import empty_response, json_response
from chatcore_rest.openapi import Reply, api_doc
from chatcore_rest.schemas import (
    AcceptedContact,
    BlockRequest,
    Blocks,
    Contacts,
    InvitationBody,
    Invitations,
    InviteRequest,
)
from chatcore_rest.state import rest_state

__all__ = ["AREA"]

CONTACTS = API_PREFIX + "/contacts"
INVITATIONS = CONTACTS + "/invitations"
BLOCKS = API_PREFIX + "/blocks"


@requires_auth
@validate_request(InviteRequest)
@document_response(InvitationBody, 201)
@document_response(InvitationBody, 200)
@api_doc(errors=(400, 401, 403, 404, 409, 413))
async def invite(identity: Identity, data: InviteRequest) -> Response:
    """Invite a user to be a contact, by `user_id` or `username`.

    201 with the new invitation; 200 when one between the two was pending already: yours,
    unchanged, or theirs, which inviting back accepts (its `status` is then "accepted").
    409 when the user is a contact already.
    """
    invitation, created = await contacts.invite(
        rest_state().app, identity.user_id, target_id=data.user_id, username=data.username
    )
    return json_response(invitation.wire(), 201 if created else 200)


@requires_auth
@document_response(Invitations)
@api_doc(errors=(401,))
async def list_invitations(identity: Identity) -> Response:
    """Your pending invitations, received and sent, newest first."""
    incoming, outgoing = await contacts.pending(rest_state().app, identity.user_id)
    return json_response(
        {"incoming": [i.wire() for i in incoming], "outgoing": [i.wire() for i in outgoing]}
    )


@requires_auth
@document_response(AcceptedContact)
@api_doc(errors=(401, 403, 404, 409))
async def accept_invitation(identity: Identity, invitation_id: str) -> Response:
    """Accept an invitation you received: you and its sender become contacts.

    Accepting again answers the same contact; a declined or cancelled invitation is a 409.
    """
    contact = await contacts.accept(rest_state().app, identity.user_id, invitation_id)
    return json_response({"contact": contact.wire()})


@requires_auth
@api_doc(errors=(401, 404, 409), replies={204: Reply("The invitation is declined.")})
async def decline_invitation(identity: Identity, invitation_id: str) -> Response:
    """Decline an invitation you received, or cancel one you sent (again: no change)."""
    await contacts.decline(rest_state().app, identity.user_id, invitation_id)
    return empty_response(204)


@requires_auth
@document_response(Contacts)
@api_doc(errors=(401,))
async def list_contacts(identity: Identity) -> Response:
    """Your contacts, by username, each with their presence."""
    found = await contacts.list_contacts(rest_state().app, identity.user_id)
    return json_response({"contacts": [contact.wire() for contact in found]})


@requires_auth
@api_doc(errors=(401,), replies={204: Reply("The user is not your contact (now or already).")})
async def remove_contact(identity: Identity, user_id: str) -> Response:
    """End a contact, for both of you."""
    await contacts.remove_contact(rest_state().app, identity.user_id, user_id)
    return empty_response(204)


@requires_auth
@validate_request(BlockRequest)
@api_doc(errors=(400, 401, 404, 413), replies={204: Reply("The user is blocked (now or already).")})
async def block_user(identity: Identity, data: BlockRequest) -> Response:
    """Block a user: neither of you can invite the other, open your direct room or send
    into it. Ends your contact and the pending invitations between you."""
    await contacts.block(rest_state().app, identity.user_id, data.user_id)
    return empty_response(204)


@requires_auth
@api_doc(errors=(400, 401), replies={204: Reply("The user is not blocked (now or already).")})
async def unblock_user(identity: Identity, user_id: str) -> Response:
    """Lift a block."""
    await contacts.unblock(rest_state().app, identity.user_id, user_id)
    return empty_response(204)


@requires_auth
@document_response(Blocks)
@api_doc(errors=(401,))
async def list_blocks(identity: Identity) -> Response:
    """The users you block, by username."""
    users = await contacts.blocked_users(rest_state().app, identity.user_id)
    return json_response({"blocks": [user.wire() for user in users]})


AREA = Area(
    routes=[
        ("POST", INVITATIONS, invite),
        ("GET", INVITATIONS, list_invitations),
        ("POST", INVITATIONS + "/<invitation_id>/accept", accept_invitation),
        ("POST", INVITATIONS + "/<invitation_id>/decline", decline_invitation),
        ("GET", CONTACTS, list_contacts),
        ("DELETE", CONTACTS + "/<user_id>", remove_contact),
        ("POST", BLOCKS, block_user),
        ("GET", BLOCKS, list_blocks),
        ("DELETE", BLOCKS + "/<user_id>", unblock_user),
    ],
    features=("contacts", "blocks"),
)
