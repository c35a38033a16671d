"""The push device endpoints of docs/protocol.md ("Push devices"): registration only.

The views stay thin: `chatcore.server.devices` validates a device per platform, bounds the devices
per user and hides other users' devices (`not_found`); the views read the request and shape
the reply. The server sends the pushes itself, through the adapters (docs/push.md).
"""

from __future__ import annotations

from quart import Response
from quart_schema import document_response, validate_request

from chatcore.models import Identity
from chatcore.server import devices
from chatcore_rest.auth import requires_auth
from chatcore_rest.endpoints.base import API_PREFIX, Area
from chatcore_rest.jsonio import empty_response, json_response
from chatcore_rest.openapi import Reply, api_doc
from chatcore_rest.schemas import DeviceBody, DeviceRequest, Devices
from chatcore_rest.state import rest_state

__all__ = ["AREA"]

DEVICES = API_PREFIX + "/push/devices"


@requires_auth
@validate_request(DeviceRequest)
@document_response(DeviceBody, 201)
@document_response(DeviceBody, 200)
@api_doc(errors=(400, 401, 409, 413))
async def register_device(identity: Identity, data: DeviceRequest) -> Response:
    """Register a push device: a Web Push subscription, an FCM or APNs token, or a webhook.

    201 with the new device; 200 with the one registered before when this user registered the
    same platform and token or endpoint already (a Web Push device takes the keys given now).
    409 when the user has the most devices allowed (50): remove one first.
    """
    device, created = await devices.register(
        rest_state().app,
        identity.user_id,
        platform=data.platform,
        token=data.token,
        endpoint=data.endpoint,
        keys=data.keys.model_dump() if data.keys is not None else None,
    )
    return json_response(device.wire(), 201 if created else 200)


@requires_auth
@document_response(Devices)
@api_doc(errors=(401,))
async def list_devices(identity: Identity) -> Response:
    """Your push devices, newest first."""
    found = await devices.list_devices(rest_state().app, identity.user_id)
    return json_response({"devices": [device.wire() for device in found]})


@requires_auth
@api_doc(errors=(401, 404), replies={204: Reply("The device is removed.")})
async def remove_device(identity: Identity, device_id: str) -> Response:
    """Remove one of your push devices (another user's, or an unknown id: 404)."""
    await devices.remove(rest_state().app, identity.user_id, device_id)
    return empty_response(204)


AREA = Area(
    routes=[
        ("POST", DEVICES, register_device),
        ("GET", DEVICES, list_devices),
        ("DELETE", DEVICES + "/<device_id>", remove_device),
    ],
    features=("push",),
)
