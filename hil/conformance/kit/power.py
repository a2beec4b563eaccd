"""Keeping the units powered: the watchdog keep-alive, power-up, expiry, reboots."""
import threading
import time

from .common import Fail, NoReply, check


# ---------------------------------------------------------------- the watchdog keep-alive

class Keepalive(threading.Thread):
    """Refreshes the safety token every 100 ms while active."""

    def __init__(self, kit):
        super().__init__(daemon=True, name="keepalive")
        self.kit = kit
        self.active = threading.Event()
        self.stopping = threading.Event()
        self.busy = threading.Lock()
        self.errors = 0

    def run(self):
        while not self.stopping.is_set():
            if self.active.is_set():
                with self.busy:
                    if self.active.is_set():
                        try:
                            if self.kit.refresh() is not None:
                                self.errors += 1
                        except Exception:
                            self.errors += 1
            self.stopping.wait(0.1)

    def resume(self):
        self.active.set()

    def pause(self):
        self.active.clear()
        with self.busy:
            pass

    def stop(self):
        self.pause()
        self.stopping.set()


# ---------------------------------------------------------------- the Kit's power and reboot helpers

class PowerMixin:
    """Safety-controller and reboot helpers of the Kit (kit/helpers.py), which mixes this in."""

    # ---- safety
    def next_token(self):
        self.token = (self.token + 1) & 0xFFFF or 1
        return self.token

    def refresh(self):
        return self.write_field("safety", "command", "watchdogToken", self.next_token())

    def outputs_bit(self, name):
        return self.map.bit("safety", "command", "outputs", name)

    def safety(self):
        return self.read("safety")

    def power_up(self, timeout_ms=None):
        """Refresh, then a reset edge (W7.5); then keeps the watchdog refreshed."""
        self.keepalive.pause()
        timeout_ms = timeout_ms or self.map.boot_defaults("safety", "command")["watchdogTimeout"]
        code = self.write_block("safety", "command", {"watchdogToken": self.next_token(),
                                                      "watchdogTimeout": timeout_ms, "outputs": 0})
        check(code is None, f"safety: refresh write gave exception {code}")
        code = self.write_field("safety", "command", "outputs", self.outputs_bit("estopReset"))
        check(code is None, f"safety: reset edge gave exception {code}")
        self.write_field("safety", "command", "outputs", 0)
        self.keepalive.resume()
        s = self.safety()
        check(s["flags.motionPowerOn"], f"motion power does not come on after refresh and reset (safety flags 0x{s['flags']:04X})")

    def expire_watchdog(self):
        """Stops refreshing and waits for the watchdog to expire."""
        self.keepalive.pause()
        s = self.wait_for(lambda: (lambda s: s if s["flags.watchdogExpired"] else None)(self.safety()), 3.0)
        check(s is not None, "watchdog did not expire within 3 s without refreshes")
        return s

    # ---- reboots
    def wait_ready(self, timeout=3.0):
        """Polls every unit until a read succeeds (booting units answer exception 6)."""
        deadline = time.monotonic() + timeout
        pending = list(self.map.units)
        last = {}
        while pending:
            dev = pending[0]
            try:
                if self.link.dirty:
                    self.link.recover()
                code, _ = self.link.read(self.unit(dev), "input", 0, 1)
            except NoReply:
                code = "no reply"
            if code is None:
                pending.pop(0)
                continue
            last[dev] = code
            if time.monotonic() >= deadline:
                raise Fail(f"{dev} does not answer a read within {timeout} s (last answer: {code})")
            time.sleep(0.02)
        return time.monotonic()

    def reboot(self):
        self.keepalive.pause()
        self.stim.reboot()
        t0 = time.monotonic()
        self.wait_ready()
        return t0
