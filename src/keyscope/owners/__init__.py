"""Who owns a credential: the people who committed it, the CODEOWNERS of its path,
and the ``[owners]`` map of the config file (``assign.py`` puts them together)."""
