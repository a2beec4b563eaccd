"""The conformance kit's parts; conformance.py beside this folder is the entry point.

    common       the rule outcomes (Fail, Skip, NoReply, MapMissing), check(), the repository root
    cia402       the CiA 402 drive commands, statusword bits and states
    registermap  firmware-protocol/register-map.json: blocks, fields, encode/decode
    wire         raw RTU/MBAP frames, CRC, the pymodbus client under a lock
    rig          rig files, serial ports, starting robot-sim, the stimulus (control) socket
    power        the watchdog keep-alive, power-up, watchdog expiry, reboots
    helpers      the Kit the rules are given: registers, drives, motion, the baseline state
    registry     @rule and RULES
    rules_*      the rules, one module per spec section

Importing the package registers every rule (RULE_MODULES below sets their order).
"""
import importlib

from .registry import RULES

# One module per spec section, §2 to §9: importing them in this order registers the rules
# in the order they are printed and run.
RULE_MODULES = ("rules_units", "rules_functions", "rules_boot", "rules_drives",
                "rules_lift", "rules_safety", "rules_detector", "rules_pose", "rules_field")
for _module in RULE_MODULES:
    importlib.import_module(f"{__name__}.{_module}")

__all__ = ["RULES", "RULE_MODULES"]
