"""Azure SAS permission letters: their meaning depends on the SAS type and service.

The tables follow Microsoft's "Create an account SAS", "Create a service SAS" and
"Create a user delegation SAS" (learn.microsoft.com, Azure Storage REST API).
``p`` is the classic trap: *process* (dequeue) in account and queue SAS, *set POSIX
permissions* in blob/DFS SAS.
"""

from __future__ import annotations

from functools import lru_cache

from keyscope.errors import ParseError
from keyscope.model import Capability

# letter: (name, meaning, classes). Classes are provider-neutral words that the
# sentence and the policy use: read, list, write, overwrite, create, delete,
# permanent-delete, dequeue, set-acl, tags, filter, immutability, move.
_Table = dict[str, tuple[str, str, tuple[str, ...]]]

ACCOUNT: _Table = {
    "r": (
        "read",
        "read data, properties and metadata of every object; read service settings",
        ("read",),
    ),
    "w": (
        "write",
        "create and overwrite blobs and files, set metadata and properties; with "
        "service-level access also change service properties (logging, soft delete, CORS)",
        ("write", "overwrite"),
    ),
    "d": (
        "delete",
        "delete containers, shares, queues, tables, blobs, files and entities",
        ("delete",),
    ),
    "x": ("delete version", "delete blob versions", ("delete",)),
    "y": (
        "permanent delete",
        "permanently delete snapshots and versions, bypassing soft delete",
        ("delete", "permanent-delete"),
    ),
    "l": ("list", "list containers, shares, queues, tables, blobs and files", ("list",)),
    "a": ("add", "add queue messages, table entities and append blocks", ("write",)),
    "c": ("create", "create new containers, shares, tables, blobs and files", ("write", "create")),
    "u": ("update", "update queue messages and table entities", ("write",)),
    "p": ("process", "get (dequeue) and delete queue messages", ("delete", "dequeue")),
    "t": ("tag", "read and write blob index tags", ("write", "tags")),
    "f": ("filter", "find blobs by index tags across the account", ("read", "filter")),
    "i": (
        "set immutability policy",
        "set or delete immutability policies and legal holds",
        ("write", "immutability"),
    ),
}

BLOB: _Table = {
    "r": ("read", "read content, properties and metadata of blobs in scope", ("read",)),
    "a": ("add", "append blocks to append blobs", ("write",)),
    "c": ("create", "write new blobs, snapshots and copies", ("write", "create")),
    "w": (
        "write",
        "create or overwrite blob content, properties and metadata",
        ("write", "overwrite"),
    ),
    "d": ("delete", "delete blobs and break leases", ("delete",)),
    "x": ("delete version", "delete blob versions", ("delete",)),
    "y": (
        "permanent delete",
        "permanently delete snapshots and versions",
        ("delete", "permanent-delete"),
    ),
    "l": ("list", "list blobs", ("list",)),
    "t": ("tag", "read and write blob index tags", ("write", "tags")),
    "f": ("filter", "find blobs by index tags", ("read", "filter")),
    "m": (
        "move",
        "move and rename blobs and directories (hierarchical namespace)",
        ("write", "move"),
    ),
    "e": (
        "execute",
        "read system properties and POSIX ACLs; set them on items the caller owns",
        ("read",),
    ),
    "o": ("ownership", "set owner and owning group (hierarchical namespace)", ("write", "set-acl")),
    "p": (
        "permissions",
        "set POSIX permissions and ACLs (hierarchical namespace)",
        ("write", "set-acl"),
    ),
    "i": (
        "set immutability policy",
        "set or delete immutability policies and legal holds",
        ("write", "immutability"),
    ),
}

FILE: _Table = {
    "r": ("read", "read file content, properties and metadata", ("read",)),
    "c": ("create", "create new files and copy to new files", ("write", "create")),
    "w": ("write", "write, resize and overwrite files", ("write", "overwrite")),
    "d": ("delete", "delete files", ("delete",)),
    "l": ("list", "list files and directories in the share", ("list",)),
}

QUEUE: _Table = {
    "r": ("read", "read queue metadata and peek at messages", ("read",)),
    "a": ("add", "add messages", ("write",)),
    "u": ("update", "update messages", ("write",)),
    "p": ("process", "get (dequeue) and delete messages", ("delete", "dequeue")),
}

TABLE: _Table = {
    "r": ("read", "query entities", ("read",)),
    "a": ("add", "insert entities", ("write",)),
    "u": ("update", "update and merge entities", ("write",)),
    "d": ("delete", "delete entities", ("delete",)),
}

# Service SAS where the service is unknown (a bare query string without ``sr``/``tn``):
# queue or table; the letters mean the same in both except ``p`` and ``d``.
QUEUE_OR_TABLE: _Table = {
    **TABLE,
    "p": QUEUE["p"],
    "r": ("read", "read messages or entities", ("read",)),
}

TABLES: dict[str, _Table] = {
    "account": ACCOUNT,
    "blob": BLOB,
    "dfs": BLOB,
    "file": FILE,
    "queue": QUEUE,
    "table": TABLE,
    "queue-or-table": QUEUE_OR_TABLE,
}


@lru_cache(maxsize=512)  # a few permission sets recur: one shared tuple each
def capabilities(letters: str, table_name: str) -> tuple[Capability, ...]:
    """Decode ``sp`` for a SAS type/service. Unknown or repeated letters are a ParseError."""
    table = TABLES[table_name]
    seen: set[str] = set()
    caps: list[Capability] = []
    for letter in letters:
        if letter not in table:
            allowed = "".join(table)
            kind = "an account SAS" if table_name == "account" else f"a {table_name} SAS"
            raise ParseError(
                f"sp: unknown permission letter {letter!r} for {kind} (allowed: {allowed})"
            )
        if letter in seen:
            continue
        seen.add(letter)
        name, meaning, classes = table[letter]
        caps.append(Capability(letter=letter, name=name, meaning=meaning, classes=classes))
    return tuple(caps)
