"""Stubs of the sentio.v1 API, generated from proto/sentio/v1/*.proto by generate.py."""
