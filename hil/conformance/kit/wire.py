"""On the wire: raw RTU/MBAP framing, CRC, and the pymodbus client under a lock."""
import select
import struct
import threading
import time

from .common import Fail, NoReply, hx


# ---------------------------------------------------------------- Modbus framing (raw requests)

def crc16(data):
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def rtu_frame(unit, pdu):
    body = bytes([unit]) + pdu
    c = crc16(body)
    return body + bytes([c & 0xFF, c >> 8])


def pdu_read(function, address, count):
    return struct.pack(">BHH", function, address, count)


def pdu_write1(address, value):
    return struct.pack(">BHH", 6, address, value & 0xFFFF)


def pdu_write_n(address, values, count=None, byte_count=None):
    data = b"".join(struct.pack(">H", v & 0xFFFF) for v in values)
    count = len(values) if count is None else count
    byte_count = len(data) if byte_count is None else byte_count
    return struct.pack(">BHHB", 16, address, count, byte_count) + data


def exception_of(pdu):
    """The exception code of a reply PDU, or None for a normal reply."""
    if pdu and pdu[0] & 0x80 and len(pdu) >= 2:
        return pdu[1]
    return None


def rtu_reply_length(buf):
    if len(buf) < 2:
        return None
    fc = buf[1]
    if fc & 0x80:
        return 5
    if fc in (3, 4):
        return 5 + buf[2] if len(buf) >= 3 else None
    if fc in (6, 16):
        return 8
    return None


# ---------------------------------------------------------------- the link (pymodbus)

class Link:
    """One pymodbus client shared under a lock (pymodbus clients are not thread-safe)."""

    def __init__(self, serial_port=None, tcp=None, baud=115200, timeout=0.3):
        from pymodbus.client import ModbusSerialClient, ModbusTcpClient
        self.lock = threading.RLock()
        self.transport = "serial" if serial_port else "tcp"
        self.timeout = timeout
        if serial_port:
            self.client = ModbusSerialClient(serial_port, baudrate=baud, bytesize=8, parity="N", stopbits=1,
                                             timeout=timeout, retries=0)
            self.where = serial_port
        else:
            host, _, port = tcp.rpartition(":")
            self.client = ModbusTcpClient(host or "127.0.0.1", port=int(port), timeout=timeout, retries=0)
            self.where = tcp
        try:
            self.client.set_max_no_responses(1_000_000)
        except Exception:
            pass
        self.tid = 0x7000
        self.dirty = False

    def recover(self):
        """After a lost or mismatched reply: a fresh TCP connection, or a flushed serial line."""
        with self.lock:
            self.dirty = False
            if self.transport == "tcp":
                self.client.close()
                time.sleep(0.05)
                self.client.connect()
            else:
                time.sleep(0.05)
                if self.client.socket is not None:
                    self.client.socket.reset_input_buffer()

    def connect(self):
        if not self.client.connect():
            raise RuntimeError(f"cannot open {self.transport} link {self.where}")

    def close(self):
        try:
            self.client.close()
        except Exception:
            pass

    def _call(self, what, fn, *args, **kwargs):
        from pymodbus.exceptions import ConnectionException, ModbusIOException
        with self.lock:
            for attempt in (0, 1):
                # One retry: a reply lost to a busy host must not fail a rule. Repeating
                # a request is harmless here: the same value again is no edge, and a
                # refused write is refused again.
                try:
                    return fn(*args, **kwargs)
                except ModbusIOException as e:
                    if attempt == 1:
                        self.dirty = True
                        raise NoReply(f"no reply to {what} (tried twice, {self.timeout:.2f} s each)") from e
                    self.recover()
                except ConnectionException as e:
                    if attempt == 1:
                        raise NoReply(f"link lost at {what}: {e}") from e
                    self.client.close()
                    time.sleep(0.2)
                    self.client.connect()

    def read(self, unit, table, address, count):
        """(exception code or None, registers)."""
        fn = self.client.read_input_registers if table == "input" else self.client.read_holding_registers
        r = self._call(f"read {table} {address}+{count} of unit {unit}", fn, address, count=count, device_id=unit)
        if r.isError():
            return getattr(r, "exception_code", -1), None
        return None, list(r.registers)

    def write1(self, unit, address, value):
        r = self._call(f"0x06 write {address}={value} to unit {unit}", self.client.write_register, address,
                       value & 0xFFFF, device_id=unit)
        return getattr(r, "exception_code", -1) if r.isError() else None

    def write_n(self, unit, address, values):
        r = self._call(f"0x10 write {address}+{len(values)} to unit {unit}", self.client.write_registers, address,
                       [v & 0xFFFF for v in values], device_id=unit)
        return getattr(r, "exception_code", -1) if r.isError() else None

    # Raw requests go through pymodbus's own transport (its serial port or socket).
    def raw(self, unit, pdu, wait=None):
        """Sends one request PDU; returns the reply PDU, or None when nothing came within `wait`."""
        wait = self.timeout if wait is None else wait
        with self.lock:
            if self.transport == "serial":
                buf = self._serial_exchange(rtu_frame(unit, pdu), wait)
                if not buf:
                    return None
                if len(buf) < 4 or crc16(buf[:-2]) != (buf[-2] | buf[-1] << 8):
                    raise Fail(f"reply with a bad CRC or cut short: {buf.hex(' ')}")
                if buf[0] != unit:
                    raise Fail(f"reply from unit {buf[0]} to a request for unit {unit}")
                return buf[1:-2]
            return self._tcp_exchange(unit, pdu, wait)

    def raw_frame(self, frame, wait):
        """Serial only: sends raw bytes, returns whatever came back within `wait`."""
        with self.lock:
            return self._serial_exchange(frame, wait, return_early=False)

    def _serial_exchange(self, frame, wait, return_early=True):
        s = self.client.socket
        if s is None:
            self.client.connect()
            s = self.client.socket
        s.reset_input_buffer()
        s.write(frame)
        s.flush()
        buf = b""
        deadline = time.monotonic() + wait
        last = None
        while True:
            n = s.in_waiting
            now = time.monotonic()
            if n:
                buf += s.read(n)
                last = now
                length = rtu_reply_length(buf)
                if return_early and length is not None and len(buf) >= length:
                    break
                continue
            if return_early and buf and now - last > 0.02:
                break
            if now >= deadline:
                break
            time.sleep(0.0005)
        return buf

    def _tcp_exchange(self, unit, pdu, wait):
        sock = self.client.socket
        if sock is None:
            self.client.connect()
            sock = self.client.socket
        while select.select([sock], [], [], 0)[0]:
            if not sock.recv(4096):
                break
        self.tid = (self.tid + 1) & 0xFFFF
        sock.sendall(struct.pack(">HHHB", self.tid, 0, len(pdu) + 1, unit) + pdu)
        buf = b""
        deadline = time.monotonic() + wait
        while True:
            need = 7 if len(buf) < 7 else 6 + struct.unpack(">H", buf[4:6])[0]
            if len(buf) >= need and len(buf) >= 7:
                break
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                return None if not buf else buf[7:] or None
            chunk = sock.recv(4096)
            if not chunk:
                self.dirty = True
                raise NoReply("gateway closed the connection")
            buf += chunk
        tid, _, _, reply_unit = struct.unpack(">HHHB", buf[:7])
        if tid != self.tid:
            self.dirty = True
            raise Fail(f"reply {hx(buf)} has transaction id {tid}, expected {self.tid}")
        return buf[7:need]
