"""A stand-in for the Databricks workspace calls that `uc://` reads make (no Databricks workspace
can be reached from CI): `GET /api/2.1/unity-catalog/tables/{full_name}`,
`POST /api/2.1/unity-catalog/temporary-table-credentials` (credential vending) and
`POST /oidc/v1/token` (OAuth machine-to-machine: a service principal's client id and secret
for an access token). A request without `Authorization: Bearer <token>` gets Databricks' 401
body; the token endpoint answers 401 `invalid_client` to a wrong client id or secret.

    VENDED_AWS_ACCESS_KEY_ID=... VENDED_AWS_SECRET_ACCESS_KEY=... VENDED_AZURE_SAS=... \\
    VENDED_GCP_TOKEN=... FAKE_CLIENT_ID=... FAKE_CLIENT_SECRET=... \\
        fake_unity_catalog.py PORT TOKEN TABLES_JSON

TABLES_JSON maps `catalog.schema.table` to its storage location and the shape of the
credentials vended for it, each cloud's as Unity Catalog sends them:
`{"location": "s3://...", "vend": "aws"}` (access key, secret key, session token; no region),
`"azure"` (`azure_user_delegation_sas.sas_token`), `"gcp"` (`gcp_oauth_token.oauth_token`),
or `"expired"` (AWS keys whose `expiration_time` has passed). Vended credentials expire in an
hour. Each vending is counted on stdout as `vended <name>` (never the credentials).
"""

import json
import os
import sys
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/api/2.1/unity-catalog"


def credentials(vend):
    """The vended credentials of one shape, without `expiration_time` and `url`."""
    aws = {
        "aws_temp_credentials": {
            "access_key_id": os.environ.get("VENDED_AWS_ACCESS_KEY_ID", ""),
            "secret_access_key": os.environ.get("VENDED_AWS_SECRET_ACCESS_KEY", ""),
            "session_token": None,
        }
    }
    if vend in ("aws", "expired"):
        return aws
    if vend == "azure":
        return {"azure_user_delegation_sas": {"sas_token": os.environ["VENDED_AZURE_SAS"]}}
    if vend == "gcp":
        return {"gcp_oauth_token": {"oauth_token": os.environ["VENDED_GCP_TOKEN"]}}
    raise ValueError(f"unknown credential shape {vend!r}")


def main():
    port, token, tables_json = sys.argv[1:4]
    tables = {
        name: spec if isinstance(spec, dict) else {"location": spec, "vend": "aws"}
        for name, spec in json.loads(tables_json).items()
    }
    table_ids = {str(uuid.uuid5(uuid.NAMESPACE_URL, name)): name for name in tables}
    client_id = os.environ.get("FAKE_CLIENT_ID")
    client_secret = os.environ.get("FAKE_CLIENT_SECRET")

    class Handler(BaseHTTPRequestHandler):
        def reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def authorized(self):
            if self.headers.get("Authorization") == f"Bearer {token}":
                return True
            self.reply(401, {"error_code": "UNAUTHENTICATED", "message": "Invalid access token."})
            return False

        def body(self):
            length = int(self.headers.get("Content-Length", "0"))
            return self.rfile.read(length) if length else b""

        def do_GET(self):  # noqa: N802 (http.server's name)
            if not self.authorized():
                return
            if not self.path.startswith(PREFIX + "/tables/"):
                return self.reply(404, {"error_code": "NOT_FOUND", "message": "No such API."})
            name = self.path.removeprefix(PREFIX + "/tables/")
            if name not in tables:
                return self.reply(404, {"error_code": "TABLE_DOES_NOT_EXIST", "message": f"Table '{name}' does not exist."})
            catalog, schema, table = name.split(".")
            self.reply(
                200,
                {
                    "name": table,
                    "catalog_name": catalog,
                    "schema_name": schema,
                    "table_type": "EXTERNAL",
                    "data_source_format": "DELTA",
                    "columns": [],
                    "properties": {},
                    "storage_location": tables[name]["location"],
                    "created_at": 0,
                    "updated_at": 0,
                    "table_id": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
                },
            )

        def token_endpoint(self):
            form = urllib.parse.parse_qs(self.body().decode())
            given = (form.get("client_id", [""])[0], form.get("client_secret", [""])[0])
            if client_id is None or given != (client_id, client_secret) or form.get("grant_type") != ["client_credentials"]:
                return self.reply(
                    401,
                    {"error": "invalid_client", "error_id": str(uuid.uuid4()), "error_description": "Client authentication failed"},
                )
            self.reply(200, {"access_token": token, "token_type": "Bearer", "scope": "all-apis", "expires_in": 3600})

        def do_POST(self):  # noqa: N802
            if self.path == "/oidc/v1/token":
                return self.token_endpoint()
            if not self.authorized():
                return
            request = json.loads(self.body() or b"{}")
            name = table_ids.get(request.get("table_id"))
            if self.path != PREFIX + "/temporary-table-credentials" or name is None:
                return self.reply(404, {"error_code": "NOT_FOUND", "message": "No such table id."})
            vend = tables[name]["vend"]
            now_ms = int(time.time() * 1000)
            expires = now_ms - 60_000 if vend == "expired" else now_ms + 3_600_000
            print(f"vended {name}", flush=True)
            self.reply(200, {**credentials(vend), "expiration_time": expires, "url": tables[name]["location"]})

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", int(port)), Handler).serve_forever()


if __name__ == "__main__":
    main()
