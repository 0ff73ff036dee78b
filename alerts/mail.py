"""E-mail whose plain-text part is ours: apprise's e-mail service, sending OUR text/plain next to OUR HTML.

apprise sends an HTML message as multipart/alternative, but it always makes the text/plain part itself, by
converting the HTML — links keep their words and lose their addresses — and neither ``notify()`` nor the
e-mail plugin takes a text part of our own (apprise 2.2: ``NotifyEmail.send`` calls
``NotifyEmail.prepare_emails``, which calls the HTML→text converter, with no hook in between). So an e-mail
channel is apprise's own ``NotifyEmail`` built from the user's ``mailto://`` URL by apprise's own parser
(provider presets, TLS, login, From/To/Cc/Bcc, headers), added to an ``Apprise`` object like any service (so
``notify()`` keeps its timeout, result and log handling), with one difference: before each prepared message
is handed to apprise's SMTP controller, its converted text part is replaced by the one we rendered from the
``*.txt.j2`` templates. Everything else of the message (headers, Message-ID, Date, the HTML part) is
apprise's, untouched. A PGP-signed or encrypted message cannot be edited after apprise built it: there,
apprise's own converted text part is kept.
"""

from __future__ import annotations

import email
import smtplib
from email.mime.text import MIMEText
from typing import Any

import apprise
from apprise.exception import AppriseImproperlyConfigured
from apprise.plugins import url_to_dict
from apprise.plugins.email import AppriseEmailException, NotifyEmail
from apprise.plugins.email.base import PGP_MODE_DEFAULT
from apprise.plugins.email.smtp import AppriseSMTPController

EMAIL_SCHEMES = frozenset({"mailto", "mailtos"})


def with_text_part(message: str, text: str) -> str:
    """A serialized e-mail with the text/plain part of its multipart/alternative replaced by ``text``
    (unchanged if it has none)."""
    parsed = email.message_from_string(message)
    for part in parsed.walk():
        if part.get_content_type() != "multipart/alternative":
            continue
        children = part.get_payload()
        if not isinstance(children, list):
            continue
        for i, child in enumerate(children):
            if child.get_content_type() == "text/plain":
                children[i] = MIMEText(text, "plain", "utf-8")
                part.set_payload(children)
                return parsed.as_string()
    return message


class MultipartEmail(NotifyEmail):  # type: ignore[misc]  # apprise is untyped
    """apprise's e-mail service; ``text_part``, when set, becomes the text/plain part of an HTML message."""

    text_part: str | None = None

    def send(
        self, body: str, title: str = "", notify_type: Any = apprise.NotifyType.INFO, attach: Any = None,
        body_format: Any = None, **kwargs: Any,
    ) -> bool:
        text = self.text_part
        notify_format = self.resolve_format(body_format)
        if text is not None and notify_format == apprise.NotifyFormat.TEXT:
            # The URL asks for plain text (?format=text): our text, not apprise's conversion of the HTML.
            return bool(super().send(text, title=title, notify_type=notify_type, attach=attach,
                                     body_format=body_format, **kwargs))
        if text is None or notify_format != apprise.NotifyFormat.HTML or self.pgp_mode != PGP_MODE_DEFAULT:
            return bool(super().send(body, title=title, notify_type=notify_type, attach=attach,
                                     body_format=body_format, **kwargs))
        if not self.targets:
            self.logger.warning("There are no Email recipients to notify")
            return False
        # The same steps as NotifyEmail.send (apprise 2.2), with our text part swapped in. apprise leaves its
        # attributes loosely typed (port and secure mode are set by its own defaults by now).
        self.throttle()
        ok = True
        plugin: Any = self
        try:
            with AppriseSMTPController(
                host=self.smtp_host, port=plugin.port, secure_mode=plugin.secure_mode, user=self.user,
                password=self.password, verify_certificate=self.verify_certificate,
                socket_connect_timeout=self.socket_connect_timeout,
            ) as smtp:
                headers = {"X-Application": self.app_id, **self.headers, **self._protocol_headers(body)}
                for message in self.prepare_emails(
                    subject=title, body=body, notify_format=notify_format, from_addr=self.from_addr,
                    to=self.targets, cc=self.cc, bcc=self.bcc, reply_to=self.reply_to, smtp_host=self.smtp_host,
                    attach=attach, headers=headers, names=self.names, pgp=self.pgp, pgp_mode=self.pgp_mode,
                    inline=self.inline, tzinfo=self.tzinfo,
                ):
                    if self.is_delivered(message.recipient):
                        continue  # a retry inside apprise: this recipient has it already
                    if smtp.sendmail(plugin.from_addr[1], message.to_addrs, with_text_part(message.body, text)):
                        self.logger.info("Sent Email to %s", message.recipient)
                        self.mark_delivered(message.recipient)
                    else:
                        self.logger.warning('Sending email to "%s" failed.', message.recipient)
                        ok = False
        except (OSError, smtplib.SMTPException, RuntimeError, AppriseImproperlyConfigured) as exc:
            self.logger.warning('Connection error while submitting email to "%s"', self.smtp_host)
            self.logger.debug(f"Socket Exception: {exc}")
            ok = False
        except AppriseEmailException as exc:
            self.logger.debug(f"Socket Exception: {exc}")
            ok = False
        return ok


def email_service(
    url: str, asset: apprise.AppriseAsset, parsed: dict[str, Any] | None = None
) -> MultipartEmail | None:
    """The e-mail service of a ``mailto://`` / ``mailtos://`` URL, parsed by apprise (None if it cannot).

    ``parsed``: apprise's parsed form of ``url`` when the caller has it already (with its timeouts set).
    """
    if url.split("://", 1)[0].lower() not in EMAIL_SCHEMES:
        return None
    results = parsed if parsed is not None else url_to_dict(url, secure_logging=asset.secure_logging)
    if not results:
        return None
    try:
        service = MultipartEmail(**{**results, "asset": asset})
    except Exception:  # apprise refuses the URL's values (a bad address, port…): the caller says so
        return None
    return service if service.enabled else None
