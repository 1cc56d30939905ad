#!/usr/bin/python3
"""A reverse proxy between agents and peakflow-collector for the fleet tests (stdlib only).

  fleet_proxy.py --listen IP:PORT --upstream 127.0.0.1:PORT --record FILE [--drop-seq N]

Forwards every request to the collector and its answer back, and appends one JSON line per
request to FILE: {"path", "agent", "batches": [[stream, seq, records]...], "live", "status",
"answer", "dropped"}. With --drop-seq N, the first report whose buckets batch has seq N is
forwarded and committed by the collector, but its answer is thrown away and the
connection closed: what an agent sees when the collector dies between its commit and its
answer. The agent must then send the same batch again, and the collector must not store
it twice.
"""
import argparse
import gzip
import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {"dropped": False}


def describe(body, encoding):
    try:
        raw = gzip.decompress(body) if encoding == "gzip" else body
        doc = json.loads(raw)
        batches = [[b["stream"], b["seq"], len(b["records"])] for b in doc.get("batches", [])]
        return doc.get("agent", {}).get("name", ""), batches, len(doc.get("live", []))
    except Exception:  # noqa: BLE001 - a request we cannot read is recorded as such
        return "", [], 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_):
        pass

    def do_POST(self):  # noqa: N802 - http.server's name
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        agent, batches, live = describe(body, self.headers.get("Content-Encoding", ""))
        conn = http.client.HTTPConnection(self.server.upstream[0], self.server.upstream[1], timeout=30)
        try:
            conn.request("POST", self.path, body=body, headers=headers)
            resp = conn.getresponse()
            answer = resp.read()
            status = resp.status
            ctype = resp.getheader("Content-Type", "application/json")
        except OSError as e:
            status, answer, ctype = 502, json.dumps({"status": "error", "message": str(e)}).encode(), "application/json"
        finally:
            conn.close()
        drop = False
        with LOCK:
            if (self.server.drop_seq and not STATE["dropped"] and status == 200 and
                    any(b[0] == "buckets" and b[1] == self.server.drop_seq for b in batches)):
                STATE["dropped"] = drop = True
            with open(self.server.record, "a", encoding="utf-8") as f:
                f.write(json.dumps({"path": self.path, "agent": agent, "batches": batches, "live": live,
                                    "status": status, "answer": answer.decode("utf-8", "replace"),
                                    "dropped": drop}) + "\n")
        if drop:
            self.close_connection = True
            return
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--record", required=True)
    ap.add_argument("--drop-seq", type=int, default=0)
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    srv = ThreadingHTTPServer((host, int(port)), Handler)
    uh, up = a.upstream.rsplit(":", 1)
    srv.upstream = (uh, int(up))
    srv.record = a.record
    srv.drop_seq = a.drop_seq
    print("listening", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
