"""Command-line interface (``actionimages ...``)."""
