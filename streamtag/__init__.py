"""streamtag: live genre, mood and taste tags for whatever is playing."""

__version__ = "0.1.0"
