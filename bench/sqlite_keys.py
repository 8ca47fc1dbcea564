#!/usr/bin/env python3
"""SQLite alone (no service around it): 28.5 million random keys, sorted, in ten transactions of
2.85 million, into a table shaped like `pseudonyms`, stored as 16-byte blobs or as 64-bit
integers (docs/performance.md, "Integer index keys"). Usage: python3 bench/sqlite_keys.py blob|int
[DIR]; prints each transaction's insert time and the main file's size (before
the write-ahead log's last checkpoint)."""
import os
import random
import sqlite3
import struct
import sys
import time

mode = sys.argv[1]
work = sys.argv[2] if len(sys.argv) > 2 else "/tmp"
n_tx, per_tx, keys_a_holding = 10, 2_850_000, 28
path = os.path.join(work, f"sqlite_keys_{mode}.db")
for suffix in ("", "-wal", "-shm"):
    if os.path.exists(path + suffix):
        os.remove(path + suffix)
db = sqlite3.connect(path, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=NORMAL")
db.execute("PRAGMA cache_size=-65536")
db.execute("PRAGMA wal_autocheckpoint=100000")
column = "BLOB" if mode == "blob" else "INTEGER"
db.execute(
    f"CREATE TABLE p (pseudonym {column} NOT NULL, holding_id INTEGER NOT NULL, kind INTEGER NOT NULL, "
    "subject INTEGER NOT NULL, PRIMARY KEY (pseudonym, holding_id)) WITHOUT ROWID"
)
rnd, holding, inserting = random.Random(1), 0, 0.0
for t in range(n_tx):
    rows = []
    for i in range(per_tx):
        key = rnd.randbytes(16)
        rows.append((key if mode == "blob" else struct.unpack(">q", key[:8])[0], holding + i // keys_a_holding, i % 24, 0))
    holding += per_tx // keys_a_holding
    rows.sort()
    started = time.time()
    db.execute("BEGIN")
    db.executemany("INSERT INTO p VALUES (?,?,?,?)", rows)
    db.execute("COMMIT")
    inserting += time.time() - started
    print(f"{mode} transaction {t}: {time.time() - started:.1f} s", flush=True)
print(f"{mode}: {inserting:.1f} s inserting, {os.path.getsize(path) / 1e6:.0f} MB")
