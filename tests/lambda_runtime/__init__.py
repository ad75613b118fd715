"""Handlers under the real Lambda runtime interface client."""
