#!/usr/bin/env python3
"""A real SMTP server for tests (aiosmtpd, python3-aiosmtpd): accepts mail on
127.0.0.1:PORT and stores each message as DIR/N.eml (the DATA exactly as received) with
DIR/N.env (MAIL FROM, RCPT TO and the authenticated user, JSON).

With --user/--password it offers AUTH PLAIN and LOGIN (without TLS, on loopback only) and
refuses mail from clients that did not authenticate (530) or used a wrong password (535).
"""

import argparse
import asyncio
import json
import os
import signal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Store:
    def __init__(self, directory, need_auth):
        self.dir = directory
        self.need_auth = need_auth
        self.n = 0

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.need_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        base = os.path.join(self.dir, str(self.n))
        with open(base + ".eml", "wb") as f:
            f.write(envelope.original_content)
        user = session.auth_data.login.decode() if session.auth_data else None
        with open(base + ".env", "w") as f:
            json.dump({"from": envelope.mail_from, "to": envelope.rcpt_tos, "user": user}, f)
        return "250 2.0.0 stored as " + str(self.n)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--user")
    ap.add_argument("--password")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == a.user and \
            auth_data.password.decode() == a.password
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    kwargs = {}
    if a.user:
        kwargs = {"authenticator": authenticator, "auth_require_tls": False}
    ctl = Controller(Store(a.dir, bool(a.user)), hostname="127.0.0.1", port=a.port, **kwargs)
    ctl.start()
    print("listening", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    ctl.stop()


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    main()
