"""Errors whose message is meant for the person who caused them."""


class UserError(Exception):
    """Something the user can fix. The command tree shows the message ephemerally and logs
    nothing alarming; state is unchanged because the error is raised before any write."""
