"""Errors a user can fix: the CLI maps them to exit code 2, the app to ``st.error``."""


class UserError(Exception):
    """A one-line message naming the file or field and the problem (no traceback shown)."""


class ClusterError(Exception):
    """A training lost on a cluster (its node or worker died, retries spent): not the user's mistake, but
    one line all the same (the CLI exits 1)."""
