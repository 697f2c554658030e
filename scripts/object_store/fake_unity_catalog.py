"""A stand-in for the two Unity Catalog REST calls deltalake makes to open `uc://` tables (no
Databricks workspace can be reached from CI): `GET /api/2.1/unity-catalog/tables/{full_name}`
and `POST /api/2.1/unity-catalog/temporary-table-credentials` (credential vending). Tables
live in the S3 emulator; the vended credentials are the emulator's, with its URL as the
access point. A request without `Authorization: Bearer <token>` gets Databricks' 401 body.

    VENDED_AWS_ACCESS_KEY_ID=... VENDED_AWS_SECRET_ACCESS_KEY=... \
        fake_unity_catalog.py PORT TOKEN TABLES_JSON S3_ENDPOINT

TABLES_JSON maps `catalog.schema.table` to an `s3://` storage location.
"""

import json
import os
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/api/2.1/unity-catalog"


def main():
    port, token, tables_json, s3_endpoint = sys.argv[1:5]
    tables = json.loads(tables_json)
    table_ids = {str(uuid.uuid5(uuid.NAMESPACE_URL, name)): name for name in tables}

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
                    "storage_location": tables[name],
                    "created_at": 0,
                    "updated_at": 0,
                    "table_id": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
                },
            )

        def do_POST(self):  # noqa: N802
            if not self.authorized():
                return
            length = int(self.headers.get("Content-Length", "0"))
            request = json.loads(self.rfile.read(length) or b"{}")
            name = table_ids.get(request.get("table_id"))
            if self.path != PREFIX + "/temporary-table-credentials" or name is None:
                return self.reply(404, {"error_code": "NOT_FOUND", "message": "No such table id."})
            self.reply(
                200,
                {
                    "aws_temp_credentials": {
                        "access_key_id": os.environ["VENDED_AWS_ACCESS_KEY_ID"],
                        "secret_access_key": os.environ["VENDED_AWS_SECRET_ACCESS_KEY"],
                        "access_point": s3_endpoint,
                    },
                    "expiration_time": int(time.time() * 1000) + 3_600_000,
                    "url": tables[name],
                },
            )

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", int(port)), Handler).serve_forever()


if __name__ == "__main__":
    main()
