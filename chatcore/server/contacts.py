"""Contacts (friends), invitations and blocks: every rule, and the `contact` events.

Transports stay thin: they call these functions with the acting user and shape the reply.

Rules (docs/protocol.md "Contacts (friends) and blocks", plus the decisions written here):
- An invitation goes to a user id or a username. Inviting yourself is a bad request; an
  unknown user is `not_found`; an existing contact is a `conflict`. While a pending invitation
  between the two exists, inviting again answers it (200): the caller's own unchanged, or, when
  the other user invited first, that one accepted (inviting back accepts).
- Only the invitee accepts (the inviter gets `forbidden`; anyone else `not_found`). The invitee
  declines, the inviter cancels: both with decline, and the invitation becomes "declined".
  Answering again is harmless when it asks for the state the invitation is in already.
- Lists show pending invitations only, newest first.
- A block is one-way to set and two-way in effect: neither user can invite the other, open
  their direct room, send or type into it, or add the other to a group. In every room they
  share, neither sees the other's typing or read receipts (`chatcore.server.realtime.blocklist`);
  in a group,
  messages still reach both (clients hide them), but the blocker gets no push of the blocked
  user's. Blocking ends the contact, declines the blocker's pending invitation to the blocked
  user, and hides the blocked user's pending invitation from the blocker. The blocked user is
  never told: their invitation to the blocker "succeeds" and stays pending for them (hidden
  from the blocker; declined when the block is lifted), and refusals they get say only that
  the other user does not accept it, with the same code whatever the cause. The blocker is
  told plainly.
- Events: `{"type": "contact", "event", "invitation"?, "user"}` reach every session of both
  users; `user` is always the other party as the recipient sees it. "invited" and "accepted"
  carry the invitation; "removed" carries the invitation when a pending one was declined or
  cancelled, and only `user` when a contact ended. Nothing reaches the blocked user about a
  block, beyond what removing a contact or cancelling an invitation would show.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

from chatcore.clock import now_ms
from chatcore.errors import ChatError, ErrorCode, bad_request, not_found
from chatcore.protocol.frames import encode
from chatcore.state import StateKey

if TYPE_CHECKING:
    from chatcore.models import Contact, Invitation, User
    from chatcore.server.app import App

ContactEvent = Literal["invited", "accepted", "removed"]

#: What the blocked side of a block is told, whatever it tried: it names no block, and would
#: read the same for any other reason a user may have not to accept someone (a future
#: "contacts only" setting, for example).
NOT_ACCEPTED = "This user does not accept messages from you."
YOU_BLOCKED = "You have blocked this user; unblock them first."

#: Rooms remembered per node for the check of typing (see `check_send`).
ROOM_CACHE_MAX = 50_000
_ROOM_CACHE_KEY: StateKey[OrderedDict[str, tuple[str, ...] | None]] = StateKey(
    "chatcore.server.contacts.direct_pairs"
)


def _forbidden(message: str) -> ChatError:
    return ChatError(ErrorCode.FORBIDDEN, message)


# --- events -----------------------------------------------------------------------------------


def contact_event(event: ContactEvent, other: User, invitation: Invitation | None = None) -> bytes:
    """The `contact` event for one recipient; `other` is the other party as they see it."""
    data: dict[str, object] = {"type": "contact", "event": event}
    if invitation is not None:
        data["invitation"] = invitation.wire()
    data["user"] = other.wire()
    return encode(data)


async def _tell(
    app: App, recipients: tuple[User, User], event: ContactEvent, inv: Invitation | None = None
) -> None:
    """Tell both users, each about the other."""
    first, second = recipients
    await app.hub.publish_user(first.id, contact_event(event, second, inv))
    await app.hub.publish_user(second.id, contact_event(event, first, inv))


async def _tell_one(
    app: App, recipient: User, other: User, event: ContactEvent, inv: Invitation | None = None
) -> None:
    await app.hub.publish_user(recipient.id, contact_event(event, other, inv))


async def _tell_invitation(app: App, event: ContactEvent, invitation: Invitation) -> None:
    """Both parties, but a hidden invitation only its sender."""
    if invitation.hidden:
        await _tell_one(app, invitation.from_user, invitation.to_user, event, invitation)
    else:
        await _tell(app, (invitation.from_user, invitation.to_user), event, invitation)


# --- invitations ------------------------------------------------------------------------------


async def _target(app: App, user_id: object, username: object) -> User:
    if (user_id is None) == (username is None):
        raise bad_request("Give either user_id or username (one of them).")
    if user_id is not None:
        if not isinstance(user_id, str) or not user_id:
            raise bad_request("user_id must be a non-empty string.")
        # No id holds NUL (PostgreSQL refuses it even as a query parameter).
        found = await app.storage.get_user(user_id) if "\x00" not in user_id else None
    else:
        if not isinstance(username, str) or not username:
            raise bad_request("username must be a non-empty string.")
        found = await app.storage.get_user_by_username(username)
    if found is None:
        raise not_found("This user")
    return found


async def invite(
    app: App, user_id: str, *, target_id: object = None, username: object = None
) -> tuple[Invitation, bool]:
    """Invite a user by id or username; True when a new invitation was sent now.

    False: a pending invitation between the two existed and is returned: the caller's own,
    unchanged, or the other user's, now accepted.
    """
    target = await _target(app, target_id, username)
    if target.id == user_id:
        raise bad_request("You cannot invite yourself.")
    i_block, blocks_me = await app.storage.block_state(user_id, target.id)
    if i_block:
        raise _forbidden(YOU_BLOCKED)
    if await app.storage.get_contact(user_id, target.id) is not None:
        raise ChatError(ErrorCode.CONFLICT, "This user is already one of your contacts.")
    invitation, created = await app.storage.create_invitation(
        user_id, target.id, now_ms(), hidden=blocks_me
    )
    if created:
        await _tell_invitation(app, "invited", invitation)
        return invitation, True
    if invitation.from_user.id == user_id or invitation.hidden:
        # A hidden one from the other user means the caller blocks them: a block made since
        # the check above. It stays hidden.
        return invitation, False
    accepted, _contact = await _accept(app, user_id, invitation)
    return accepted, False


async def _visible_invitation(app: App, user_id: str, invitation_id: str) -> Invitation:
    """The invitation, when `user_id` may see it: a party to it, and not the invitee of a
    hidden one. `not_found` otherwise."""
    invitation = await app.storage.get_invitation(invitation_id)
    if (
        invitation is None
        or not invitation.party(user_id)
        or (invitation.hidden and invitation.to_user.id == user_id)
    ):
        raise not_found("This invitation")
    return invitation


async def accept(app: App, user_id: str, invitation_id: str) -> Contact:
    """The invitee accepts; both become contacts (both told "accepted"). Accepting an
    invitation accepted before answers the contact again, while it lasts."""
    invitation = await _visible_invitation(app, user_id, invitation_id)
    if invitation.to_user.id != user_id:
        raise _forbidden("Only the invited user may accept an invitation.")
    _accepted, contact = await _accept(app, user_id, invitation)
    return contact


async def _accept(app: App, user_id: str, invitation: Invitation) -> tuple[Invitation, Contact]:
    if invitation.status == "pending":
        answered = await app.storage.answer_invitation(invitation.id, "accepted", now_ms())
        if answered is not None:
            await _tell_invitation(app, "accepted", answered)
            invitation = answered
        else:  # answered by someone else just now: judge the answer that won
            reread = await app.storage.get_invitation(invitation.id)
            assert reread is not None, "invitations are never deleted"
            invitation = reread
    if invitation.status == "declined":
        raise ChatError(
            ErrorCode.CONFLICT, "This invitation was declined or cancelled; send a new one."
        )
    contact = await app.storage.get_contact(user_id, invitation.other(user_id).id)
    if contact is None:
        raise ChatError(ErrorCode.CONFLICT, "You are no longer contacts; send a new invitation.")
    return invitation, with_presence(app, contact)


async def decline(app: App, user_id: str, invitation_id: str) -> None:
    """The invitee declines, or the inviter cancels, a pending invitation (both told
    "removed"; a hidden one: only its sender). Declining a declined one changes nothing."""
    invitation = await _visible_invitation(app, user_id, invitation_id)
    if invitation.status == "pending":
        answered = await app.storage.answer_invitation(invitation.id, "declined", now_ms())
        if answered is not None:
            await _tell_invitation(app, "removed", answered)
            return
        reread = await app.storage.get_invitation(invitation.id)
        assert reread is not None, "invitations are never deleted"
        invitation = reread
    if invitation.status == "accepted":
        raise ChatError(
            ErrorCode.CONFLICT, "This invitation was accepted; remove the contact instead."
        )


async def pending(app: App, user_id: str) -> tuple[list[Invitation], list[Invitation]]:
    """(incoming, outgoing) pending invitations, newest first."""
    return await app.storage.pending_invitations(user_id)


# --- contacts ---------------------------------------------------------------------------------


def with_presence(app: App, contact: Contact) -> Contact:
    status = "online" if app.hub.is_online(contact.user.id) else "offline"
    return contact.model_copy(update={"presence": status})


async def list_contacts(app: App, user_id: str) -> list[Contact]:
    """The user's contacts by username, each with their presence."""
    return [with_presence(app, c) for c in await app.storage.list_contacts(user_id)]


async def remove_contact(app: App, user_id: str, other_id: str) -> None:
    """End a contact on both sides (both told "removed"); no contact: nothing to do."""
    if not await app.storage.remove_contact(user_id, other_id):
        return
    me, other = await app.storage.get_user(user_id), await app.storage.get_user(other_id)
    if me is not None and other is not None:
        await _tell(app, (me, other), "removed")


# --- blocks -----------------------------------------------------------------------------------


async def block(app: App, user_id: str, target_id: str) -> None:
    """Block a user (again: nothing changes). See the module's rules for what it ends."""
    if target_id == user_id:
        raise bad_request("You cannot block yourself.")
    change = await app.storage.block(user_id, target_id, now_ms())
    await app.hub.block_changed(user_id, target_id, True)
    if change.contact_removed:
        me, other = await app.storage.get_user(user_id), await app.storage.get_user(target_id)
        if me is not None and other is not None:
            await _tell(app, (me, other), "removed")
    for invitation in change.declined:  # the blocker's own: the blocked user sees a cancel
        await _tell_invitation(app, "removed", invitation)
    for invitation in change.hidden:  # the blocked user's: gone for the blocker only
        await _tell_one(app, invitation.to_user, invitation.from_user, "removed", invitation)


async def unblock(app: App, user_id: str, target_id: str) -> None:
    """Lift a block (none: nothing to do). The invitations it hid are declined: their
    senders see them go as after any decline; the blocker never sees them."""
    if target_id == user_id:
        raise bad_request("You cannot block or unblock yourself.")
    hidden = await app.storage.unblock(user_id, target_id, now_ms())
    # The other may block the caller too: the two stay apart until both blocks are lifted.
    await app.hub.block_changed(
        user_id, target_id, any(await app.storage.block_state(user_id, target_id))
    )
    for invitation in hidden:
        await _tell_one(app, invitation.from_user, invitation.to_user, "removed", invitation)


async def blocked_users(app: App, user_id: str) -> list[User]:
    return await app.storage.blocked_users(user_id)


# --- enforcement in rooms and sends -----------------------------------------------------------


def block_refusal(i_block: bool, blocks_me: bool) -> ChatError | None:
    """The refusal of something between two users across a block (None: no block): the
    blocker is told why, the blocked user only that the other does not accept it.

    Storage answers a message stored across a block with this same error (see
    `Storage.store_messages`), so that every refusal of a blocked send reads alike.
    """
    if i_block:
        return _forbidden(YOU_BLOCKED)
    if blocks_me:
        return _forbidden(NOT_ACCEPTED)
    return None


async def check_can_talk(app: App, user_id: str, peer_id: str) -> None:
    """Refuse (`forbidden`) when either user blocks the other (see `block_refusal`)."""
    refusal = block_refusal(*await app.storage.block_state(user_id, peer_id))
    if refusal is not None:
        raise refusal


async def check_can_add(app: App, actor_id: str, user_ids: Iterable[str]) -> None:
    """Refuse (`forbidden`, as `block_refusal` words it) putting into a group anyone the actor
    blocks or is blocked by: a block keeps the blocked user from pulling the blocker into a
    conversation, and the blocker from pulling in the blocked user. Others may add either."""
    across = set(await app.storage.blocks_involving(actor_id)).intersection(user_ids)
    if across:
        await check_can_talk(app, actor_id, min(across))


async def check_send(app: App, sender_id: str, room_id: str) -> None:
    """Refuse typing into a direct room across a block (see `check_can_talk`).

    Message sends do not come here: storage refuses a message across a block inside the
    transaction that stores it (`Storage.store_messages`), at no extra round trip per send.

    A room's kind and a direct room's two members never change, so each node remembers them
    (bounded, least recently used first out): a call for a group room costs no storage call
    after its room's first; one for a direct room costs one lookup of the pair's blocks.
    A room the sender is not in is left to the caller.
    """
    cache = app.state.setdefault(_ROOM_CACHE_KEY, OrderedDict())
    if room_id in cache:
        cache.move_to_end(room_id)
        pair = cache[room_id]
    else:
        room = await app.storage.get_room(room_id)
        if room is None:
            return
        pair = room.member_ids if room.kind == "direct" else None
        cache[room_id] = pair
        if len(cache) > ROOM_CACHE_MAX:
            cache.popitem(last=False)
    if pair is None or sender_id not in pair or len(pair) != 2:
        return
    peer = pair[0] if pair[1] == sender_id else pair[1]
    await check_can_talk(app, sender_id, peer)
