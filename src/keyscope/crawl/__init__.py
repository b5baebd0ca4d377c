"""``keyscope crawl``: a polite same-site crawler whose pages, bundles, source maps and
linked files are scanned like files (see ``source.py``)."""
