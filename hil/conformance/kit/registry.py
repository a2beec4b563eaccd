"""The rule registry: @rule(...) appends to RULES in the order the rule modules are imported."""
import re


class Rule:
    def __init__(self, rid, text, fn, needs, slow, transport):
        self.id = rid
        self.section = "§" + re.match(r"[A-Z](\d+)\.", rid).group(1)
        self.text = text
        self.fn = fn
        self.needs = needs
        self.slow = slow
        self.transport = transport


RULES = []


def rule(rid, text, needs=(), slow=False, transport=None):
    def register(fn):
        RULES.append(Rule(rid, text, fn, tuple(needs), slow, transport))
        return fn
    return register
