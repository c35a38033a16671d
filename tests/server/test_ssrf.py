"""chatcore.server.push.ssrf: which endpoint URLs the server refuses to connect to. Literal
addresses and
local names only: nothing here needs a network beyond the local resolver."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest

from chatcore.errors import ChatError, ErrorCode
from chatcore.server.push.ssrf import check_endpoint, check_url_shape, resolve_endpoint

pytestmark = pytest.mark.anyio

REFUSED = {
    "http://127.0.0.1/": "loopback",
    "http://127.8.9.10:8080/hook": "loopback",
    "http://10.1.2.3/": "private",
    "http://172.16.0.1/": "private",
    "http://192.168.1.1/": "private",
    "http://169.254.169.254/latest/meta-data/": "link-local",
    "http://0.0.0.0/": "unspecified",
    "http://224.0.0.1/": "multicast",
    "http://240.0.0.1/": "reserved",
    "http://100.64.0.1/": "not globally routable",
    "http://[::1]/": "loopback",
    "http://[::]/": "unspecified",
    "http://[fe80::1]/": "link-local",
    "http://[fe80::1%25eth0]/": "link-local",
    "http://[fc00::1]/": "private",
    "http://[ff02::1]/": "multicast",
    "http://[::ffff:127.0.0.1]/": "loopback",  # IPv4-mapped
    "http://[::ffff:10.0.0.1]/": "private",
    "http://[2002:7f00:1::]/": "loopback",  # 6to4 of 127.0.0.1
    "http://[2002:a9fe:a9fe::]/": "link-local",  # 6to4 of 169.254.169.254
    # Teredo, server 65.54.227.120 (public), client 192.168.1.1 (obfuscated: XOR 0xffffffff)
    "http://[2001:0:4136:e378:8000:63bf:3f57:fefe]/": "private",
}
PUBLIC = {
    "https://93.184.216.34/hook": "93.184.216.34",
    "http://8.8.8.8:8080/": "8.8.8.8",
    "https://[2606:4700:4700::1111]/x": "2606:4700:4700::1111",
    "https://[2002:5db8:d822::]/": "2002:5db8:d822::",  # 6to4 of 93.184.216.34
}


@pytest.mark.parametrize(("url", "reason"), REFUSED.items())
async def test_non_public_literal_addresses_are_refused(url, reason):
    with pytest.raises(ChatError) as info:
        await check_endpoint(url)
    assert info.value.code is ErrorCode.BAD_REQUEST
    assert f"is a {reason} address" in info.value.message
    with pytest.raises(ChatError):  # no DNS needed to see it: refused at once
        check_url_shape(url)


@pytest.mark.parametrize(("url", "address"), PUBLIC.items())
async def test_public_literal_addresses_pass(url, address):
    check_url_shape(url)
    await check_endpoint(url)
    assert await resolve_endpoint(url) == (ipaddress.ip_address(address),)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://93.184.216.34/", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("gopher://93.184.216.34:70/", "http or https"),
        ("javascript:alert(1)", "http or https"),
        ("93.184.216.34/hook", "http or https"),
        ("http:///path", "no host"),
        ("https://", "no host"),
        ("http://user:pw@93.184.216.34/", "user name or password"),
        ("http://user@93.184.216.34/", "user name or password"),
        ("http://93.184.216.34:99999/", "not a valid URL"),
        ("http://[::1/", "not a valid URL"),
    ],
)
async def test_bad_urls_are_refused_with_a_clear_sentence(url, words):
    for allow_private in (False, True):  # allowing private addresses allows no bad URL
        with pytest.raises(ChatError) as info:
            check_url_shape(url, allow_private=allow_private)
        assert words in info.value.message
        with pytest.raises(ChatError) as info:
            await check_endpoint(url, allow_private=allow_private)
        assert info.value.code is ErrorCode.BAD_REQUEST
        assert words in info.value.message


async def test_a_name_resolving_to_loopback_is_refused():
    check_url_shape("http://localhost:8080/hook")  # the name alone says nothing
    with pytest.raises(ChatError) as info:
        await check_endpoint("http://localhost:8080/hook")
    assert "localhost (" in info.value.message
    assert "loopback address" in info.value.message


async def test_decimal_and_hex_spellings_are_judged_by_what_they_resolve_to():
    # glibc's resolver reads "2130706433" and "0x7f.1" as 127.0.0.1
    for host in ("2130706433", "0x7f.1", "LOCALHOST.", "127.1"):
        with pytest.raises(ChatError, match="loopback"):
            await check_endpoint(f"http://{host}/")


async def test_allow_private_skips_the_address_checks():
    for url in ("http://127.0.0.1:9/", "http://localhost/", "http://[::1]/", "http://10.0.0.1/"):
        check_url_shape(url, allow_private=True)
        await check_endpoint(url, allow_private=True)
        assert await resolve_endpoint(url, allow_private=True) == ()  # connect by name


async def test_allowed_hosts_skip_the_address_checks_for_those_hosts_only():
    allowed = ["LocalHost", "[::1]", "10.0.0.7"]
    await check_endpoint("http://localhost:8080/", allowed_hosts=allowed)
    await check_endpoint("http://[::1]/", allowed_hosts=allowed)
    check_url_shape("http://10.0.0.7/", allowed_hosts=allowed)
    await check_endpoint("http://10.0.0.7/", allowed_hosts=allowed)
    for url in ("http://127.0.0.1/", "http://10.0.0.8/"):
        with pytest.raises(ChatError):
            await check_endpoint(url, allowed_hosts=allowed)


async def test_any_bad_address_among_several_refuses_the_host(monkeypatch):
    loop = asyncio.get_running_loop()
    answers = [("93.184.216.34", 80), ("10.0.0.1", 80)]

    async def getaddrinfo(host, port, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", a) for a in answers]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    with pytest.raises(ChatError, match=r"example\.org \(10\.0\.0\.1\) is a private"):
        await check_endpoint("http://example.org/")
    answers.pop()
    assert await resolve_endpoint("http://example.org/") == (ipaddress.ip_address("93.184.216.34"),)


async def test_a_name_that_does_not_resolve_is_refused(monkeypatch):
    loop = asyncio.get_running_loop()

    async def getaddrinfo(host, port, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    with pytest.raises(ChatError, match="could not be resolved") as info:
        await check_endpoint("https://no-such-host.example/")
    assert info.value.code is ErrorCode.BAD_REQUEST
