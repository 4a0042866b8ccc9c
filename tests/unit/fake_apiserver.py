# -*- coding: utf-8 -*-
"""A tiny stand-in for a Kubernetes API server on loopback (plain HTTP), for unit tests.

It answers /version, the discovery documents and SelfSubjectReview, and records the
requests it got. Behaviour is set per instance: ``token`` (the bearer token it accepts;
None accepts anything, including no token), ``review_status`` (HTTP status of
SelfSubjectReview, 201 normally), ``hang`` (never answer), ``username``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeAPIServer(object):

    def __init__(self, token=None, username="system:admin", review_status=201, hang=False, git_version="v1.36.3"):
        self.token = token
        self.username = username
        self.review_status = review_status
        self.hang = hang
        self.git_version = git_version
        self.requests = []
        self._release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                server.requests.append((method, self.path, dict(self.headers)))
                if server.hang:
                    server._release.wait(30)
                    return
                auth = self.headers.get("Authorization")
                if server.token is not None and auth != "Bearer {0}".format(server.token):
                    return self._answer(401, {"kind": "Status", "status": "Failure", "message": "Unauthorized",
                                              "reason": "Unauthorized", "code": 401})
                user = server.username if auth else "system:anonymous"
                path = self.path.split("?")[0].rstrip("/") or "/"
                if path == "/version":
                    return self._answer(200, {"major": "1", "minor": "36", "gitVersion": server.git_version,
                                              "gitCommit": "x", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                                              "goVersion": "go1.26", "compiler": "gc", "platform": "linux/amd64"})
                if path == "/apis/authentication.k8s.io/v1/selfsubjectreviews" and method == "POST":
                    if server.review_status != 201:
                        return self._answer(server.review_status, {"kind": "Status", "code": server.review_status,
                                                                   "message": "no"})
                    return self._answer(201, {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview",
                                              "metadata": {}, "status": {"userInfo": {"username": user}}})
                if path == "/api":
                    return self._answer(200, {"kind": "APIVersions", "versions": ["v1"]})
                if path == "/apis":
                    return self._answer(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
                if path == "/api/v1":
                    return self._answer(200, {"kind": "APIResourceList", "groupVersion": "v1", "resources": []})
                return self._answer(404, {"kind": "Status", "code": 404, "message": "not found"})

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self):
        return "http://127.0.0.1:{0}".format(self._server.server_address[1])

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        return False
