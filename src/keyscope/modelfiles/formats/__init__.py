"""Model formats: one module per format (containers may share one), all listed in
``registry.FORMATS``, whose order is the order in which they are sniffed."""
