"""Providers: one per credential family (Azure Storage today).

``interface.py`` is the contract every provider implements; ``registry.py`` lists
the providers and answers "which provider parses, explains, rates or checks this?".
"""
