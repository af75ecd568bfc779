"""Errors a user can fix: the CLI maps them to exit code 2, the app to ``st.error``."""


class UserError(Exception):
    """A one-line message naming the file or field and the problem (no traceback shown)."""
