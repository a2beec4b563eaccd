"""What every part of the kit shares: the repository root, the rule outcomes, check()."""
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


class Fail(Exception):
    pass


class Skip(Exception):
    pass


class NoReply(Exception):
    pass


class MapMissing(Exception):
    pass


def hx(data):
    return data.hex(" ") if data else "nothing"


def check(condition, detail):
    if not condition:
        raise Fail(detail)
