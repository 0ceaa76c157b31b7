"""The project's errors: each names what is wrong and where, so a tool can print it as
one line instead of a traceback."""


class DataError(RuntimeError):
    """Bad or missing input data; the message names the offending path."""


class ProposalError(DataError):
    """Proposals of an image are missing or unusable; the message names the file."""


class OptionError(ValueError):
    """Options that contradict each other or the data (a tool exits 2, as argparse
    does for a bad command line)."""


class NonFiniteLossError(RuntimeError):
    """A training loss became NaN or infinite; the message names the iteration."""
