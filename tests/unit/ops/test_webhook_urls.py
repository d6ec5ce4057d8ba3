"""The webhook URL checks (app/services/webhooks.py): only http(s), no credentials, and only
public addresses, whatever form the address takes or whatever a name resolves to."""

from __future__ import annotations

import socket

import pytest

from app.extensions import db
from app.models import Project
from app.services import webhooks
from app.services.webhooks import WebhookError, address_refusal, check_url


def resolver(table: dict[str, list[str]]):
    """A fake DNS: names resolve to what `table` says; the port asked is recorded."""
    asked: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append((host, port))
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    resolve.asked = asked
    return resolve


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),  # the cloud metadata service
        ("100.64.0.1", "not a public"),  # carrier-grade NAT
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),  # broadcast
        ("192.0.2.10", "private"),  # documentation
        ("198.18.0.1", "private"),  # benchmarking
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("ff02::1", "multicast"),
        ("2001:db8::1", "private"),  # documentation
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "link-local"),
        ("2002:7f00:1::1", "loopback"),  # 6to4 of 127.0.0.1
        ("2002:a00:1::1", "private"),  # 6to4 of 10.0.0.1
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
    ],
)
def test_non_public_addresses_are_refused_with_the_reason(address, why):
    refusal = address_refusal(address)
    assert refusal is not None and why in refusal


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "8.8.8.8",
        "2606:4700:4700::1111",
        "::ffff:93.184.216.34",
        "64:ff9b::808:808",
    ],
)
def test_public_addresses_pass(address):
    assert address_refusal(address) is None


def test_a_name_is_judged_by_every_address_it_resolves_to():
    resolve = resolver({"hooks.example.org": ["93.184.216.34", "10.0.0.7"]})
    with pytest.raises(WebhookError) as caught:
        check_url("https://hooks.example.org/x", allow_private=False, resolve=resolve)
    message = str(caught.value)
    assert "hooks.example.org resolves to 10.0.0.7, a private address" in message
    assert "WEBHOOK_ALLOW_PRIVATE=1" in message


def test_a_name_resolving_to_a_public_address_gives_where_to_connect():
    resolve = resolver({"hooks.example.org": ["93.184.216.34", "2606:2800:220:1::1"]})
    target = check_url(
        "https://hooks.example.org:8443/in?project=1#frag", allow_private=False, resolve=resolve
    )
    assert target == webhooks.Target(
        scheme="https",
        host="hooks.example.org",
        port=8443,
        path="/in?project=1",
        addresses=("93.184.216.34", "2606:2800:220:1::1"),
    )
    assert resolve.asked == [("hooks.example.org", 8443)]


@pytest.mark.parametrize(
    "name", ["localhost", "internal.example.org", "metadata.example.org", "mapped.example.org"]
)
def test_names_that_resolve_to_private_addresses_are_refused(name):
    resolve = resolver(
        {
            "localhost": ["127.0.0.1", "::1"],
            "internal.example.org": ["192.168.0.20"],
            "metadata.example.org": ["169.254.169.254"],
            "mapped.example.org": ["::ffff:192.168.0.20"],
        }
    )
    with pytest.raises(WebhookError, match=f"The host {name} resolves to"):
        check_url(f"http://{name}/hook", allow_private=False, resolve=resolve)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://2130706433/hook",  # 127.0.0.1 written as one number
        "http://0x7f.1/hook",
        "http://10.0.0.1/hook",
    ],
)
def test_literal_private_addresses_are_refused_through_the_system_resolver(url):
    with pytest.raises(WebhookError, match="webhooks go only to public addresses"):
        check_url(url, allow_private=False)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.org/x", "starts with https://"),
        ("file:///etc/passwd", "starts with https://"),
        ("javascript:alert(1)", "starts with https://"),
        ("example.org/hook", "starts with https://"),
        ("http:///hook", "names a host"),
        ("https://user:secret@example.org/hook", "no user name or password"),
        ("http://example.org:99999/hook", "not a URL"),
        ("https://example.org/" + "a" * 2048, "at most 2048"),
        ("https://nowhere.invalid/hook", "does not resolve"),
    ],
)
def test_urls_that_are_not_webhooks_are_refused_with_a_message(url, message):
    with pytest.raises(WebhookError, match=message):
        check_url(url, allow_private=False, resolve=resolver({"example.org": ["93.184.216.34"]}))


def test_allow_private_lets_loopback_through_but_still_checks_the_scheme():
    resolve = resolver({"localhost": ["127.0.0.1"]})
    target = check_url("http://localhost:9000/hook", allow_private=True, resolve=resolve)
    assert target.addresses == ("127.0.0.1",)
    with pytest.raises(WebhookError):
        check_url("gopher://localhost/", allow_private=True, resolve=resolve)


def test_setting_a_webhook_needs_the_secret_and_a_public_url(app):
    project = Project(slug="hooked", title="Hooked", source_filename="x.pdf")
    db.session.add(project)
    db.session.commit()
    public = resolver({"hooks.example.org": ["93.184.216.34"], "lan.example.org": ["10.0.0.2"]})
    with pytest.raises(WebhookError, match="WEBHOOK_SECRET is not set"):
        webhooks.set_webhook(project, "https://hooks.example.org/x", resolve=public)
    app.config["WEBHOOK_SECRET"] = "s3cret"
    with pytest.raises(WebhookError, match="a private address"):
        webhooks.set_webhook(project, "https://lan.example.org/x", resolve=public)
    assert project.webhook_url is None
    webhooks.set_webhook(project, " https://hooks.example.org/x ", resolve=public)
    assert project.webhook_url == "https://hooks.example.org/x"
    webhooks.set_webhook(project, None)
    assert project.webhook_url is None
