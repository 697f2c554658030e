"""How the DuckDB peers read a Delta table: harness plumbing, not part of what they compute.

With DuckDB's delta extension when it is installed (benches/run.sh tries `INSTALL delta` once
per harness run), asked of the local catalog: an INSTALL or LOAD without network waits seconds
on each attempt. Without it, the Parquet files of the table's current version as deltalake
lists them (the same rows for tables without deletion vectors). Says on stderr which it uses.
"""
import sys

import duckdb
from deltalake import DeltaTable


def table_reader(con, data):
    """A function from a table's folder name under DATA to the SQL that reads it."""
    delta = con.execute(
        "SELECT count(*) FROM duckdb_extensions() WHERE extension_name = 'delta' AND installed").fetchone()[0] > 0
    if delta:
        try:
            con.execute("LOAD delta")
        except duckdb.Error:
            delta = False
    print(f"reading Delta tables with {'delta_scan' if delta else 'read_parquet over the files deltalake lists'}",
          file=sys.stderr)

    def source(table):
        if delta:
            return f"delta_scan('{data}/{table}')"
        files = ", ".join(f"'{uri}'" for uri in DeltaTable(f"{data}/{table}").file_uris())
        return f"read_parquet([{files}])"

    return source
