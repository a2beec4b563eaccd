"""The rules of §7 Safety controller (firmware-protocol/README.md)."""
import time

from .cia402 import SOD
from .common import check
from .registry import rule


@rule("W7.1", "a refresh is a different token; 0 after power-up is not one; the first refresh starts the watchdog",
      needs=("reboot",))
def w7_1(k):
    k.reboot()
    code = k.write_field("safety", "command", "watchdogToken", 0)
    check(code is None, f"token 0: exception {code}")
    for _ in range(6):
        s = k.safety()
        check(s["watchdogRemaining"] == 0, f"token 0 after power-up started the watchdog (remaining {s['watchdogRemaining']} ms)")
        time.sleep(0.05)
    k.write_field("safety", "command", "watchdogToken", 0x1234)
    s = k.safety()
    check(s["watchdogRemaining"] > 0, "the first refresh did not start the watchdog")
    t0 = time.monotonic()
    expired = None
    while time.monotonic() - t0 < 1.5:
        k.write_field("safety", "command", "watchdogToken", 0x1234)
        s = k.safety()
        if s["flags.watchdogExpired"]:
            expired = time.monotonic() - t0
            break
        time.sleep(0.1)
    check(expired is not None, "writing the same token every 100 ms kept the watchdog alive (not a refresh)")
    check(expired >= 0.35, f"watchdog expired {expired:.2f} s after the refresh (timeout 500 ms)")


@rule("W7.2", "no refresh within watchdogTimeout: expires, chain opens, power off; refreshes do not clear it")
def w7_2(k):
    for timeout in (500, 300):
        if timeout != 500:
            k.keepalive.pause()
            k.write_block("safety", "command", {"watchdogToken": k.next_token(), "watchdogTimeout": timeout,
                                                "outputs": k.outputs_bit("estopReset")})
            k.write_field("safety", "command", "outputs", 0)
            k.keepalive.resume()
            time.sleep(0.3)
            check(k.safety()["flags.motionPowerOn"], f"no motion power with timeout {timeout}")
        k.enable("chassis")
        k.keepalive.pause()
        t_last = k.last_refresh
        s = k.wait_for(lambda: (lambda s: s if s["flags.watchdogExpired"] else None)(k.safety()), 2.0, 0.01)
        t = time.monotonic() - t_last
        check(s is not None, f"timeout {timeout} ms: the watchdog did not expire within 2 s")
        check(timeout / 1000 - 0.05 <= t <= timeout / 1000 + 0.15,
              f"timeout {timeout} ms: expired {t * 1000:.0f} ms after the last refresh")
        check(s["flags.estopLatched"] and not s["flags.motionPowerOn"],
              f"timeout {timeout} ms: expired but chain closed or power on (flags 0x{s['flags']:04X})")
        k.expect_state("chassis", SOD, "after the watchdog expired")
        k.refresh()
        s = k.safety()
        check(s["watchdogRemaining"] > 0, "a refresh after expiry did not restart the timer")
        check(s["flags.watchdogExpired"] and not s["flags.motionPowerOn"], "a refresh cleared watchdogExpired")
        k.power_up()


@rule("W7.3", "the chain opens and latches on the button, on softwareEstop (a level) and on expiry")
def w7_3(k):
    sw = k.outputs_bit("softwareEstop")
    reset = k.outputs_bit("estopReset")
    k.write_field("safety", "command", "outputs", sw)
    s = k.safety()
    check(s["flags.estopLatched"] and s["flags.softwareEstop"] and not s["flags.motionPowerOn"],
          f"softwareEstop did not open the chain (flags 0x{s['flags']:04X})")
    k.write_field("safety", "command", "outputs", sw | reset)
    s = k.safety()
    check(s["flags.estopLatched"], "a reset edge closed the chain while softwareEstop is set")
    k.write_field("safety", "command", "outputs", 0)
    time.sleep(0.1)
    s = k.safety()
    check(s["flags.estopLatched"] and not s["flags.softwareEstop"], "the chain did not stay latched after clearing softwareEstop")
    k.power_up()
    if k.stim.available:
        k.stim.estop(True)
        s = k.safety()
        check(s["flags.estopButton"] and s["flags.estopLatched"] and not s["flags.motionPowerOn"],
              f"the e-stop button did not open the chain (flags 0x{s['flags']:04X})")
        k.stim.estop(False)
        time.sleep(0.05)
        s = k.safety()
        check(not s["flags.estopButton"] and s["flags.estopLatched"], "the chain did not stay latched after the button's release")
        k.power_up()
    s = k.expire_watchdog()
    check(s["flags.estopLatched"], "watchdog expiry did not latch the chain")


@rule("W7.4", "a reset edge closes the chain only with no cause left; else every flag stays as it was")
def w7_4(k):
    reset = k.outputs_bit("estopReset")
    k.expire_watchdog()
    time.sleep(0.1)
    before = k.safety()["flags"]
    k.write_field("safety", "command", "outputs", 0)
    k.write_field("safety", "command", "outputs", reset)
    after = k.safety()
    check(after["flags"] == before,
          f"reset edge without a refresh after expiry changed the flags 0x{before:04X} -> 0x{after['flags']:04X}")
    check(after["flags.estopLatched"], "reset edge without a refresh closed the chain")
    k.write_field("safety", "command", "outputs", 0)
    code = k.write_block("safety", "command", {"watchdogToken": k.next_token(),
                                               "outputs": reset | k.outputs_bit("softwareEstop")})
    s = k.safety()
    check(code is None and s["flags.estopLatched"], "refresh + reset with softwareEstop set closed the chain")
    k.write_field("safety", "command", "outputs", 0)
    if k.stim.available:
        k.stim.estop(True)
        k.write_block("safety", "command", {"watchdogToken": k.next_token(), "outputs": reset})
        s = k.safety()
        k.write_field("safety", "command", "outputs", 0)
        k.stim.estop(False)
        check(s["flags.estopLatched"], "refresh + reset with the e-stop button pressed closed the chain")
    code = k.write_block("safety", "command", {"watchdogToken": k.next_token(), "outputs": reset})
    s = k.safety()
    k.write_field("safety", "command", "outputs", 0)
    k.keepalive.resume()
    check(code is None, f"refresh + reset: exception {code}")
    check(not s["flags.estopLatched"] and not s["flags.watchdogExpired"] and not s.get("flags.bootInterlock", False)
          and s["flags.motionPowerOn"], f"refresh + reset with no cause left did not close the chain (flags 0x{s['flags']:04X})")


@rule("W7.5", "after power-up a refresh alone never powers the drives; refresh then reset edge does",
      needs=("reboot",))
def w7_5(k):
    k.reboot()
    k.keepalive.resume()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 0.6:
        s = k.safety()
        check(not s["flags.motionPowerOn"], f"motion power on {time.monotonic() - t0:.2f} s after power-up with refreshes only")
        check(s["flags.estopLatched"], "chain closed after power-up with refreshes only")
        time.sleep(0.05)
    k.write_field("safety", "command", "outputs", 0)
    k.write_field("safety", "command", "outputs", k.outputs_bit("estopReset"))
    k.write_field("safety", "command", "outputs", 0)
    s = k.safety()
    check(s["flags.motionPowerOn"] and not s.get("flags.bootInterlock", False),
          f"refresh and a reset edge did not power motion after power-up (flags 0x{s['flags']:04X})")


@rule("W7.6", "motion power on exactly when chain closed, watchdog running and not expired, battery not empty")
def w7_6(k):
    states = []

    def observe(what):
        s = k.safety()
        want = (not s["flags.estopLatched"] and not s["flags.watchdogExpired"] and s["watchdogRemaining"] > 0
                and s["batteryCharge"] > 0)
        check(s["flags.motionPowerOn"] == want, f"{what}: motionPowerOn {s['flags.motionPowerOn']} with flags "
                                                f"0x{s['flags']:04X}, watchdogRemaining {s['watchdogRemaining']}")
        states.append(what)
    observe("powered")
    k.write_field("safety", "command", "outputs", k.outputs_bit("softwareEstop"))
    observe("softwareEstop set")
    k.write_field("safety", "command", "outputs", 0)
    observe("softwareEstop cleared, chain latched")
    k.power_up()
    observe("reset")
    k.expire_watchdog()
    observe("watchdog expired")
    k.refresh()
    observe("refreshed after expiry")
    k.power_up()
    observe("reset after expiry")


@rule("W7.7", "beacon and buzzer follow their output bits and nothing else")
def w7_7(k):
    beacon, buzzer = k.outputs_bit("beacon"), k.outputs_bit("buzzer")
    for outputs in (beacon, buzzer, beacon | buzzer, 0):
        k.write_field("safety", "command", "outputs", outputs)
        s = k.safety()
        check(s["flags.beaconOn"] == bool(outputs & beacon) and s["flags.buzzerOn"] == bool(outputs & buzzer),
              f"outputs 0x{outputs:04X}: beaconOn {s['flags.beaconOn']}, buzzerOn {s['flags.buzzerOn']}")
    k.write_field("safety", "command", "outputs", k.outputs_bit("softwareEstop"))
    s = k.safety()
    check(not s["flags.beaconOn"] and not s["flags.buzzerOn"], "beacon or buzzer on by itself during a software e-stop")
    k.write_field("safety", "command", "outputs", 0)
    k.power_up()
    s = k.expire_watchdog()
    time.sleep(0.2)
    s = k.safety()
    check(not s["flags.beaconOn"] and not s["flags.buzzerOn"], "beacon or buzzer on by itself after the watchdog expired")


@rule("W7.8", "a softwareEstop write (0x06 or 0x10) has acted before its reply")
def w7_8(k):
    sw = k.outputs_bit("softwareEstop")
    for how in ("0x06", "0x10"):
        k.enable("chassis")
        if how == "0x06":
            code = k.write_field("safety", "command", "outputs", sw)
        else:
            k.keepalive.pause()
            code = k.write_block("safety", "command", {"watchdogToken": k.next_token(), "outputs": sw})
        s = k.safety()
        st = k.state("chassis")
        k.write_field("safety", "command", "outputs", 0)
        check(code is None, f"{how} softwareEstop: exception {code}")
        check(s["flags.softwareEstop"] and s["flags.estopLatched"] and not s["flags.motionPowerOn"],
              f"{how} softwareEstop: the first read after the reply shows flags 0x{s['flags']:04X}")
        check(st == SOD, f"{how} softwareEstop: chassis in {st} right after the reply")
        k.power_up()
