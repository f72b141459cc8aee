"""The one exception type a user sees: a one-line message that names the problem and the fix."""


class UserError(Exception):
    """Bad input or a missing prerequisite; printed as one line, exit status 2, nothing else touched."""
