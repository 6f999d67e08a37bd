"""Vendored helper of the Markdown guest: reaches the guest through `wactor build --path vendor`."""


def titled(html: str) -> str:
    """Wrap rendered HTML in a section."""
    return f"<section>{html}</section>"
