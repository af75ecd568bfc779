"""A local OpenID Connect provider, speaking the protocol "Sign in with Hugging Face" uses: discovery document,
authorization-code flow with state and nonce, a token endpoint that checks the client's secret, and RS256-signed
ID tokens with their JWKS. Streamlit's ``st.login`` (Authlib) runs against it unchanged; it signs in whoever
``user`` names. Loopback only; the keys are made per instance.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from joserfc import jwt
from joserfc.jwk import RSAKey


class FakeOIDC:
    def __init__(self, client_id: str, client_secret: str, user: str):
        self.client_id, self.client_secret, self.user = client_id, client_secret, user
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key"})
        self.codes: dict[str, dict] = {}  # code -> {"nonce", "redirect_uri"}
        self.tokens_issued = 0
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeOIDC:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _json(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802 - http.server's name
                parsed = urllib.parse.urlparse(self.path)
                query = dict(urllib.parse.parse_qsl(parsed.query))
                if parsed.path == "/.well-known/openid-configuration":
                    base = provider.url
                    return self._json(200, {
                        "issuer": base, "authorization_endpoint": f"{base}/authorize",
                        "token_endpoint": f"{base}/token", "jwks_uri": f"{base}/jwks",
                        "userinfo_endpoint": f"{base}/userinfo", "response_types_supported": ["code"],
                        "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"],
                        "scopes_supported": ["openid", "profile"],
                        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"]})
                if parsed.path == "/jwks":
                    return self._json(200, {"keys": [provider.key.as_dict(private=False)]})
                if parsed.path == "/authorize":
                    if query.get("client_id") != provider.client_id or query.get("response_type") != "code":
                        return self._json(400, {"error": "invalid_request"})
                    code = secrets.token_urlsafe(16)
                    provider.codes[code] = {"nonce": query.get("nonce"), "redirect_uri": query["redirect_uri"]}
                    target = query["redirect_uri"] + "?" + urllib.parse.urlencode(
                        {"code": code, "state": query.get("state", "")})
                    self.send_response(302)
                    self.send_header("Location", target)
                    self.end_headers()
                    return None
                return self._json(404, {"error": "not_found"})

            def do_POST(self):  # noqa: N802
                if self.path != "/token":
                    return self._json(404, {"error": "not_found"})
                form = dict(urllib.parse.parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode()))
                client, secret = form.get("client_id"), form.get("client_secret")
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    client, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
                    client, secret = urllib.parse.unquote(client), urllib.parse.unquote(secret)
                grant = provider.codes.pop(form.get("code", ""), None)
                if (client, secret) != (provider.client_id, provider.client_secret) or grant is None \
                        or grant["redirect_uri"] != form.get("redirect_uri"):
                    return self._json(400, {"error": "invalid_grant"})
                now = int(time.time())
                claims = {"iss": provider.url, "sub": f"user-{provider.user}", "aud": provider.client_id,
                          "iat": now, "exp": now + 600, "preferred_username": provider.user,
                          "name": provider.user.title()}
                if grant["nonce"]:
                    claims["nonce"] = grant["nonce"]
                token = jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, provider.key)
                provider.tokens_issued += 1
                return self._json(200, {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                                        "expires_in": 600, "id_token": token, "scope": "openid profile"})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
