"""Helpers for scripts/object-store-tests.sh: free ports, waiting for the emulators and stand-ins,
filling the bucket / container with the demo fixtures, and checking what the job wrote there.

Runs in the venv the script installs (boto3, azure-storage-blob, deltalake, pyarrow). Every
credential comes from the environment (AWS_* / AZURE_STORAGE_*), never from the command line.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def fail(message: str) -> None:
    print(f"harness: {message}", file=sys.stderr)
    sys.exit(1)


# ---------------------------------------------------------------------------------------------
# processes and ports


def free_ports(args: argparse.Namespace) -> None:
    """Prints N distinct free loopback ports (bound together, then released)."""
    sockets = []
    for _ in range(args.count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    print(" ".join(str(s.getsockname()[1]) for s in sockets))
    for s in sockets:
        s.close()


def wait_http(args: argparse.Namespace) -> None:
    """Waits until something answers HTTP at the URL (any status counts as up)."""
    deadline = time.monotonic() + args.timeout
    last = ""
    while time.monotonic() < deadline:
        if args.pid and not Path(f"/proc/{args.pid}").exists():
            fail(f"the server for {args.url} (pid {args.pid}) exited before it answered")
        try:
            with urllib.request.urlopen(args.url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answered: an error status is still a running server
        except (urllib.error.URLError, OSError) as e:
            last = str(e)
        time.sleep(0.2)
    fail(f"nothing answered at {args.url} within {args.timeout}s ({last})")


def wait_port(args: argparse.Namespace) -> None:
    """Waits until something accepts TCP connections on the loopback port (for stand-ins that
    never answer HTTP)."""
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if args.pid and not Path(f"/proc/{args.pid}").exists():
            fail(f"the server on port {args.port} (pid {args.pid}) exited before it listened")
        try:
            socket.create_connection(("127.0.0.1", args.port), timeout=2).close()
            return
        except OSError:
            time.sleep(0.2)
    fail(f"nothing listened on port {args.port} within {args.timeout}s")


# ---------------------------------------------------------------------------------------------
# S3 (moto)


def s3_client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name=os.environ.get("AWS_REGION", "us-east-1"))


def s3_setup(args: argparse.Namespace) -> None:
    """Creates an IAM user with an S3 policy and an access key (moto issues its secret), the
    bucket, uploads the fixtures, then switches moto to checking every request's signature.

    Writes `AWS_ACCESS_KEY_ID=...` / `AWS_SECRET_ACCESS_KEY=...` lines to --credentials-out
    (mode 600) for the test script to export.
    """
    import boto3

    region = os.environ.get("AWS_REGION", "us-east-1")
    # Before auth is switched on moto accepts any key; these bootstrap values are not used again.
    bootstrap = dict(aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap", region_name=region)
    iam = boto3.client("iam", endpoint_url=args.endpoint, **bootstrap)
    iam.create_user(UserName="gateway-analytics-ci")
    iam.put_user_policy(
        UserName="gateway-analytics-ci",
        PolicyName="s3",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        ),
    )
    key = iam.create_access_key(UserName="gateway-analytics-ci")["AccessKey"]
    s3 = boto3.client("s3", endpoint_url=args.endpoint, **bootstrap)
    s3.create_bucket(Bucket=args.bucket)
    count = 0
    src = Path(args.src)
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        s3.upload_file(str(path), args.bucket, f"{args.prefix}/{path.relative_to(src).as_posix()}")
        count += 1
    out = Path(args.credentials_out)
    out.touch(mode=0o600)
    out.write_text(
        f"AWS_ACCESS_KEY_ID={key['AccessKeyId']}\nAWS_SECRET_ACCESS_KEY={key['SecretAccessKey']}\n"
    )
    # From now on moto checks signatures and IAM policies: a wrong secret is refused.
    request = urllib.request.Request(
        f"{args.endpoint}/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        json.load(response)
    print(f"uploaded {count} files to s3://{args.bucket}/{args.prefix}/ (moto now checks signatures)")


def s3_download(args: argparse.Namespace) -> None:
    """Downloads every object under s3://bucket/prefix/ into --dest (credentials from the env)."""
    s3 = s3_client(args.endpoint)
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=args.bucket, Prefix=f"{args.prefix}/"):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    if not keys:
        fail(f"no objects under s3://{args.bucket}/{args.prefix}/")
    for key in keys:
        target = Path(args.dest) / key[len(args.prefix) + 1 :]
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(args.bucket, key, str(target))
    print(f"downloaded {len(keys)} objects from s3://{args.bucket}/{args.prefix}/")


# ---------------------------------------------------------------------------------------------
# Azure (Azurite)


def azure_container(args: argparse.Namespace):
    from azure.storage.blob import BlobServiceClient

    account = os.environ["AZURE_STORAGE_ACCOUNT_NAME"]
    key = os.environ["AZURE_STORAGE_ACCOUNT_KEY"]
    base = os.environ["AZURITE_BLOB_STORAGE_URL"].rstrip("/")
    service = BlobServiceClient(
        account_url=f"{base}/{account}", credential={"account_name": account, "account_key": key}
    )
    return service.get_container_client(args.container)


def azure_setup(args: argparse.Namespace) -> None:
    """Creates the container and uploads the fixtures under --prefix."""
    container = azure_container(args)
    container.create_container()
    count = 0
    src = Path(args.src)
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        with path.open("rb") as data:
            container.upload_blob(f"{args.prefix}/{path.relative_to(src).as_posix()}", data, overwrite=True)
        count += 1
    print(f"uploaded {count} files to container {args.container}/{args.prefix}/")


def azure_sas(args: argparse.Namespace) -> None:
    """Writes to --out a read-and-list SAS token for the container, valid for an hour: the shape
    of Unity Catalog's `azure_user_delegation_sas` (Azurite signs it with the account key; a user
    delegation key needs Azure AD, which Azurite has not)."""
    import datetime

    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    token = generate_container_sas(
        account_name=os.environ["AZURE_STORAGE_ACCOUNT_NAME"],
        container_name=args.container,
        account_key=os.environ["AZURE_STORAGE_ACCOUNT_KEY"],
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1),
    )
    Path(args.out).write_text(token)
    print(f"a read/list SAS token for container {args.container}, valid for an hour")


def azure_download(args: argparse.Namespace) -> None:
    """Downloads every blob under container/prefix/ into --dest."""
    container = azure_container(args)
    names = [b.name for b in container.list_blobs(name_starts_with=f"{args.prefix}/")]
    if not names:
        fail(f"no blobs under {args.container}/{args.prefix}/")
    for name in names:
        target = Path(args.dest) / name[len(args.prefix) + 1 :]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(container.download_blob(name).readall())
    print(f"downloaded {len(names)} blobs from {args.container}/{args.prefix}/")


# ---------------------------------------------------------------------------------------------
# checks


# The ledger's columns that name the run and its clock, different in every run by design.
RUN_COLUMNS = {"run_id", "computed_at", "checked_at"}
# The ledger takes two commits per run (dates started, then finished); other tables one.
COMMITS_PER_RUN = {"computed_dates": 2}


def sorted_table(path: Path):
    """The Delta table's rows (latest version) without the run's own columns, sorted by every
    column, with its version."""
    from deltalake import DeltaTable

    table = DeltaTable(str(path))
    data = table.to_pyarrow_table()
    data = data.select(sorted(c for c in data.column_names if c not in RUN_COLUMNS))
    keys = [(name, "ascending") for name in data.column_names if _sortable(data.schema.field(name).type)]
    return table.version(), data.sort_by(keys)


def _sortable(data_type) -> bool:
    import pyarrow as pa

    return not (pa.types.is_nested(data_type) or pa.types.is_dictionary(data_type))


def compare_outputs(args: argparse.Namespace) -> None:
    """Asserts the outputs copied from the store equal the local run's: every Delta table (same
    rows, same latest version, a _delta_log in the store) and every rate-limit patch file."""
    expected_root, actual_root = Path(args.expected), Path(args.actual)
    tables = sorted(p.name for p in expected_root.iterdir() if (p / "_delta_log").is_dir())
    if not tables:
        fail(f"no Delta tables under {expected_root}")
    problems = []
    report = []
    for name in tables:
        actual = actual_root / name
        if not sorted(actual.glob("_delta_log/*.json")):
            problems.append(f"{name}: no _delta_log/*.json objects in the store")
            continue
        expected_version, expected_rows = sorted_table(expected_root / name)
        actual_version, actual_rows = sorted_table(actual)
        expected_version += args.version_offset * COMMITS_PER_RUN.get(name, 1)
        if actual_version != expected_version:
            problems.append(f"{name}: store table at version {actual_version}, expected {expected_version}")
        if actual_rows.schema != expected_rows.schema:
            problems.append(f"{name}: schema differs:\n{actual_rows.schema}\nvs\n{expected_rows.schema}")
        elif not actual_rows.equals(expected_rows):
            problems.append(f"{name}: rows differ ({actual_rows.num_rows} in the store, {expected_rows.num_rows} local)")
        report.append(f"{name}={actual_rows.num_rows}")
    def patches(root):
        folder = root / "recommendations"
        return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}

    expected_patches, actual_patches = patches(expected_root), patches(actual_root)
    if expected_patches != actual_patches:
        problems.append(
            f"recommendations/ files differ: store {sorted(actual_patches)}, local {sorted(expected_patches)}"
        )
    if problems:
        fail("outputs in the store differ from the local run:\n  " + "\n  ".join(problems))
    print(f"{len(tables)} tables equal to the local run ({', '.join(report)}); {len(actual_patches)} patch files equal")


def compare_summaries(args: argparse.Namespace) -> None:
    """Asserts two `--format json` summaries are equal, the second's output versions being the
    first's plus --version-offset."""
    expected = json.loads(Path(args.expected).read_text())
    actual = json.loads(Path(args.actual).read_text())
    for output in expected.get("outputs", []):
        output["version"] += args.version_offset * COMMITS_PER_RUN.get(output["table"], 1)
    # Each run has its own id.
    for summary in (expected, actual):
        summary.pop("run_id", None)
    # What a run read depends on where the tables live (and scratch file sizes vary): only
    # check that the store run reports its scans.
    expected.pop("scanned", None)
    scanned = actual.pop("scanned", [])
    if not any(scan.get("files", 0) > 0 and scan.get("bytes", 0) > 0 for scan in scanned):
        fail(f"{args.actual}: the summary reports no scanned files")
    if expected != actual:
        diff = [
            key for key in sorted(set(expected) | set(actual)) if expected.get(key) != actual.get(key)
        ]
        fail(f"summaries differ ({args.actual} vs {args.expected}) in: {', '.join(diff)}")
    print(f"summary equal ({len(actual.get('totals', []))} totals rows, {len(actual.get('outputs', []))} outputs)")


def read_store_table(args: argparse.Namespace) -> None:
    """Reads one output table straight from the store with the deltalake Python package (a
    second Delta reader, through its own object-store client) and compares it with the local one."""
    from deltalake import DeltaTable

    if args.uri.startswith("s3://"):
        options = {
            "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"],
            "AWS_ALLOW_HTTP": "true",
            "AWS_REGION": os.environ["AWS_REGION"],
            "AWS_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"],
        }
    else:
        options = {
            "azure_storage_account_name": os.environ["AZURE_STORAGE_ACCOUNT_NAME"],
            "azure_storage_account_key": os.environ["AZURE_STORAGE_ACCOUNT_KEY"],
            "azure_storage_use_emulator": "true",
        }
    data = DeltaTable(args.uri, storage_options=options).to_pyarrow_table()
    _, expected = sorted_table(Path(args.expected))
    data = data.select(sorted(data.column_names))
    keys = [(name, "ascending") for name in data.column_names if _sortable(data.schema.field(name).type)]
    if not data.sort_by(keys).equals(expected):
        fail(f"{args.uri} read with deltalake-python has {data.num_rows} rows, different from {args.expected}")
    print(f"read {args.uri} back with deltalake-python: {data.num_rows} rows, equal to the local table")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("free-ports")
    p.add_argument("count", type=int)
    p.set_defaults(run=free_ports)

    p = commands.add_parser("wait-http")
    p.add_argument("url")
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--pid", type=int, help="fail at once when this process is gone")
    p.set_defaults(run=wait_http)

    p = commands.add_parser("wait-port")
    p.add_argument("port", type=int)
    p.add_argument("--timeout", type=float, default=30)
    p.add_argument("--pid", type=int, help="fail at once when this process is gone")
    p.set_defaults(run=wait_port)

    p = commands.add_parser("s3-setup")
    p.add_argument("--endpoint", required=True)
    p.add_argument("--bucket", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--src", required=True)
    p.add_argument("--credentials-out", required=True)
    p.set_defaults(run=s3_setup)

    p = commands.add_parser("s3-download")
    p.add_argument("--endpoint", required=True)
    p.add_argument("--bucket", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--dest", required=True)
    p.set_defaults(run=s3_download)

    for name, run in [("azure-setup", azure_setup), ("azure-download", azure_download)]:
        p = commands.add_parser(name)
        p.add_argument("--container", required=True)
        p.add_argument("--prefix", required=True)
        p.add_argument("--src")
        p.add_argument("--dest")
        p.set_defaults(run=run)

    p = commands.add_parser("azure-sas")
    p.add_argument("--container", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(run=azure_sas)

    p = commands.add_parser("compare-outputs")
    p.add_argument("--expected", required=True)
    p.add_argument("--actual", required=True)
    p.add_argument("--version-offset", type=int, default=0)
    p.set_defaults(run=compare_outputs)

    p = commands.add_parser("compare-summaries")
    p.add_argument("--expected", required=True)
    p.add_argument("--actual", required=True)
    p.add_argument("--version-offset", type=int, default=0)
    p.set_defaults(run=compare_summaries)

    p = commands.add_parser("read-store-table")
    p.add_argument("--uri", required=True)
    p.add_argument("--expected", required=True)
    p.set_defaults(run=read_store_table)

    args = parser.parse_args()
    try:
        args.run(args)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    # Leave without the interpreter's teardown: the deltalake / pyarrow native threads can abort
    # it ("terminate called without an active exception") after the work is done.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
