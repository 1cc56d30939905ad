#!/usr/bin/env python3
"""Local stand-in for the chat services peakflow-bpf pushes to (DingTalk custom robot,
ServerChan Turbo, WeCom group robot, Feishu bot) plus a generic webhook, for tests.

It checks requests the way the real services do (tokens, signatures and their time
window, Content-Type, keyword rules, required fields and size limits, rate limits and
ServerChan's daily quota) and answers with the services' error codes. Every accepted
message is appended to --record as one JSON line.

  DingTalk  Content-Type application/json (else 43004); the keyword in the title or in the
            text (each on its own: a keyword split across them is not found, 310000);
            text or markdown text up to 20000 bytes (460101); 20 a minute (130101)
  WeCom     Content-Type application/json (else 40008: the body is not read as JSON);
            markdown content up to 4096 bytes (40058); 20 a minute (45009)
  Feishu    Content-Type application/json (else 19002: no msg_type is seen); the keyword in
            the text (19024); request bodies up to 20 KB (9499); 100 a minute and 5 a
            second (11232)
  ServerChan  title up to 32 characters, desp up to 32 KB; the free tier's 5 messages a
            day (40001), or "quota" per SENDKEY

  chat_standin.py --config robots.json --record accepted.jsonl --port-file port

robots.json:
  {"dingtalk":   {"TOKEN": {"secret": "SEC...", "keyword": "peakflow"}},
   "serverchan": {"SENDKEY": {"quota": 5}},
   "wecom":      {"KEY": {}},
   "feishu":     {"TOKEN": {"secret": "...", "keyword": "peakflow"}}}

Control (for fault tests), POST /_control with JSON:
  {"service": "dingtalk", "fail": N, "status": 500}  answer the next N requests with HTTP 500
  {"service": "dingtalk", "delay": S, "count": N}    hold the next N answers for S seconds
Every request (accepted or not) is also logged to --record + ".all".
"""

import argparse
import base64
import hashlib
import hmac
import json
import select
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
FAULTS = {}  # service -> {"fail": n, "status": s, "delay": sec, "count": n}
SENT = {}  # (service, token) -> [times] of accepted messages (rate limits)


def ding_sign(secret, ts):
    mac = hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def feishu_sign(secret, ts):
    mac = hmac.new(f"{ts}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def rate_ok(key, limit, now, window=60):
    times = [t for t in SENT.get(key, []) if t > now - 60]
    SENT[key] = times
    return len([t for t in times if t > now - window]) < limit


def json_content_type(headers):
    return headers.get("Content-Type", "").split(";")[0].strip().lower() == "application/json"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def answer(self, status, obj):
        data = json.dumps(obj, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def record(self, path, entry):
        entry["time"] = time.time()
        with LOCK, open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path == "/_control":
            c = json.loads(raw)
            with LOCK:
                FAULTS.setdefault(c["service"], {}).update(c)
            return self.answer(200, {"ok": True})
        service = self.service_of(url.path)
        self.record(ARGS.record + ".all", {"service": service, "path": url.path, "bytes": len(raw)})
        with LOCK:
            f = FAULTS.get(service, {})
            fail = f.get("fail", 0) > 0
            if fail:
                f["fail"] -= 1
            delay = f.get("delay", 0) if f.get("count", 0) > 0 else 0
            if delay:
                f["count"] -= 1
        if fail:
            return self.answer(f.get("status", 500), {"error": "injected failure"})
        if delay:
            self.record(ARGS.record + ".all", {"service": service, "delaying": delay, "body": raw.decode("utf-8", "replace")})
            time.sleep(delay)
            # A client that went away meanwhile (killed) never sees an answer: the message
            # was not delivered, as with the real service when the connection drops.
            readable, _, _ = select.select([self.connection], [], [], 0)
            if readable:
                try:
                    gone = self.connection.recv(1, socket.MSG_PEEK) == b""
                except OSError:
                    gone = True
                if gone:
                    self.record(ARGS.record + ".all", {"service": service, "dropped": True})
                    self.close_connection = True
                    return
        handler = getattr(self, "svc_" + (service or "none"))
        handler(url, query, raw)

    def service_of(self, path):
        if path == "/robot/send":
            return "dingtalk"
        if path.endswith(".send"):
            return "serverchan"
        if path == "/cgi-bin/webhook/send":
            return "wecom"
        if path.startswith("/open-apis/bot/v2/hook/"):
            return "feishu"
        if path.startswith("/webhook"):
            return "webhook"
        return None

    def svc_none(self, url, query, raw):
        self.answer(404, {"error": "no such endpoint"})

    def svc_dingtalk(self, url, query, raw):
        token = query.get("access_token", [""])[0]
        robot = ROBOTS.get("dingtalk", {}).get(token)
        if robot is None:
            return self.answer(200, {"errcode": 300001, "errmsg": "token is not exist"})
        if robot.get("secret"):
            ts = query.get("timestamp", [""])[0]
            sign = query.get("sign", [""])[0]
            if not ts.isdigit() or abs(int(ts) - time.time() * 1000) > 3600 * 1000:
                return self.answer(200, {"errcode": 310000, "errmsg": "sign not match, timestamp invalid"})
            if not hmac.compare_digest(sign, ding_sign(robot["secret"], ts)):
                return self.answer(200, {"errcode": 310000, "errmsg": "sign not match"})
        if not json_content_type(self.headers):
            return self.answer(200, {"errcode": 43004, "errmsg": "无效的HTTP HEADER Content-Type"})
        try:
            body = json.loads(raw)
        except ValueError:
            return self.answer(200, {"errcode": 40035, "errmsg": "invalid json"})
        mt = body.get("msgtype")
        if mt == "text":
            content = body.get("text", {}).get("content")
            if not isinstance(content, str) or not content:
                return self.answer(200, {"errcode": 40035, "errmsg": "missing text.content"})
            checked = [content]
        elif mt == "markdown":
            md = body.get("markdown", {})
            if not isinstance(md.get("title"), str) or not isinstance(md.get("text"), str) or not md["text"]:
                return self.answer(200, {"errcode": 40035, "errmsg": "missing markdown.title or markdown.text"})
            content = md["text"]
            checked = [md["title"], md["text"]]  # each on its own
        else:
            return self.answer(200, {"errcode": 40035, "errmsg": "unsupported msgtype"})
        if len(content.encode()) > 20000:
            return self.answer(200, {"errcode": 460101, "errmsg": "message too long, exceed 20000 bytes"})
        kw = robot.get("keyword")
        if kw and not any(kw in c for c in checked):
            return self.answer(200, {"errcode": 310000, "errmsg": "keywords not in content"})
        now = time.time()
        with LOCK:
            if not rate_ok(("dingtalk", token), 20, now):
                return self.answer(200, {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"})
            SENT[("dingtalk", token)].append(now)
        self.record(ARGS.record, {"service": "dingtalk", "token": token, "body": body})
        self.answer(200, {"errcode": 0, "errmsg": "ok"})

    def svc_serverchan(self, url, query, raw):
        key = urllib.parse.unquote(url.path.rsplit("/", 1)[1][: -len(".send")])
        robot = ROBOTS.get("serverchan", {}).get(key)
        if robot is None:
            return self.answer(400, {"code": 40001, "message": "bad pushtoken", "data": None})
        ctype = self.headers.get("Content-Type", "")
        if ctype.startswith("application/json"):
            form = json.loads(raw)
        else:
            form = {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode(), keep_blank_values=True).items()}
        title = form.get("title") or form.get("text")
        if not title:
            return self.answer(200, {"code": 40002, "message": "title required", "data": None})
        if len(title) > 32:
            return self.answer(200, {"code": 40003, "message": "title too long (max 32)", "data": None})
        if len(form.get("desp", "").encode()) > 32 * 1024:
            return self.answer(200, {"code": 40004, "message": "desp too long (max 32KB)", "data": None})
        with LOCK:
            n = len(SENT.setdefault(("serverchan", key), []))
            if n >= robot.get("quota", 5):  # the free tier: 5 a day
                return self.answer(200, {"code": 40001, "message": "超过当天的发送次数限制[5]，请稍后再试", "data": None})
            SENT[("serverchan", key)].append(time.time())
        self.record(ARGS.record, {"service": "serverchan", "token": key, "body": form})
        self.answer(200, {"code": 0, "message": "", "data": {"pushid": str(n + 1), "readkey": "x", "error": "SUCCESS"}})

    def svc_wecom(self, url, query, raw):
        key = query.get("key", [""])[0]
        if key not in ROBOTS.get("wecom", {}):
            return self.answer(200, {"errcode": 93000, "errmsg": "invalid webhook url"})
        if not json_content_type(self.headers):
            return self.answer(200, {"errcode": 40008, "errmsg": "invalid message type"})
        try:
            body = json.loads(raw)
        except ValueError:
            return self.answer(200, {"errcode": 40016, "errmsg": "invalid json"})
        if body.get("msgtype") != "markdown" or not isinstance(body.get("markdown", {}).get("content"), str):
            return self.answer(200, {"errcode": 40008, "errmsg": "invalid message type"})
        if len(body["markdown"]["content"].encode()) > 4096:
            return self.answer(200, {"errcode": 40058, "errmsg": "markdown.content exceed max length 4096"})
        now = time.time()
        with LOCK:
            if not rate_ok(("wecom", key), 20, now):
                return self.answer(200, {"errcode": 45009, "errmsg": "api freq out of limit"})
            SENT[("wecom", key)].append(now)
        self.record(ARGS.record, {"service": "wecom", "token": key, "body": body})
        self.answer(200, {"errcode": 0, "errmsg": "ok"})

    def svc_feishu(self, url, query, raw):
        token = url.path.rsplit("/", 1)[1]
        robot = ROBOTS.get("feishu", {}).get(token)
        if robot is None:
            return self.answer(200, {"code": 19001, "msg": "param invalid: incoming webhook access token invalid", "data": {}})
        if not json_content_type(self.headers):
            return self.answer(200, {"code": 19002, "msg": "params error, msg_type need", "data": {}})
        try:
            body = json.loads(raw)
        except ValueError:
            return self.answer(400, {"code": 9499, "msg": "Bad Request", "data": {}})
        if robot.get("secret"):
            ts = str(body.get("timestamp", ""))
            if not ts.isdigit() or abs(int(ts) - time.time()) > 3600:
                return self.answer(200, {"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time", "data": {}})
            if not hmac.compare_digest(str(body.get("sign", "")), feishu_sign(robot["secret"], ts)):
                return self.answer(200, {"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time", "data": {}})
        if body.get("msg_type") != "text" or not isinstance(body.get("content", {}).get("text"), str):
            return self.answer(200, {"code": 19002, "msg": "params error, msg_type need", "data": {}})
        if len(raw) > 20 * 1024:
            return self.answer(200, {"code": 9499, "msg": "request body too large (max 20KB)", "data": {}})
        kw = robot.get("keyword")
        if kw and kw not in body["content"]["text"]:
            return self.answer(200, {"code": 19024, "msg": "Key Words Not Found", "data": {}})
        now = time.time()
        with LOCK:
            if not rate_ok(("feishu", token), 100, now) or not rate_ok(("feishu", token), 5, now, window=1):
                return self.answer(200, {"code": 11232, "msg": "frequency limited psm[lark.oapi.app_platform_runtime]", "data": {}})
            SENT.setdefault(("feishu", token), []).append(now)
        self.record(ARGS.record, {"service": "feishu", "token": token, "body": body})
        self.answer(200, {"code": 0, "msg": "success", "data": {}})

    def svc_webhook(self, url, query, raw):
        entry = {"service": "webhook", "path": url.path, "body_raw": raw.decode("utf-8", "replace"),
                 "headers": {k.lower(): v for k, v in self.headers.items() if k.lower().startswith(("x-", "authorization", "content-type"))}}
        self.record(ARGS.record, entry)
        self.answer(200, {"ok": True})


def main():
    global ARGS, ROBOTS
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--record", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--bind", default="127.0.0.1", help="address to listen on (a test namespace's)")
    ARGS = ap.parse_args()
    with open(ARGS.config, encoding="utf-8") as f:
        ROBOTS = json.load(f)
    srv = ThreadingHTTPServer((ARGS.bind, ARGS.port), Handler)
    srv.daemon_threads = True
    with open(ARGS.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    import os

    os.rename(ARGS.port_file + ".tmp", ARGS.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
