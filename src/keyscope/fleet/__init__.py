"""Scans of many targets: a target list (``--targets FILE``), an organisation's
repositories listed through its forge's API (``github:ORG``, ``gitlab:GROUP``), and
``--cluster``: each target a task on a Dask cluster, its findings merged into one
report and into the inventory. Nothing here is imported by a single-machine scan
without those options; only ``cluster.py`` imports Dask."""
