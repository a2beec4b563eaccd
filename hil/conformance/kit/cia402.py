"""The CiA 402 drive state machine: controlword commands, statusword bits, states."""
# CiA 402 (firmware-protocol/README.md, "Drives"): commands and statusword bits.
SHUTDOWN, SWITCH_ON, ENABLE_OP, DISABLE_VOLTAGE, QUICK_STOP = 0x0006, 0x0007, 0x000F, 0x0000, 0x0002
NEW_SETPOINT, FAULT_RESET, HALT = 0x0010, 0x0080, 0x0100
SW_TARGET_REACHED, SW_SETPOINT_ACK = 1 << 10, 1 << 12
SOD, RTSO, SO, OE, QSA, FAULT = ("switch on disabled", "ready to switch on", "switched on",
                                  "operation enabled", "quick stop active", "fault")


def cia_state(sw):
    if sw & 0x4F == 0x00:
        return "not ready to switch on"
    if sw & 0x4F == 0x40:
        return SOD
    if sw & 0x6F == 0x21:
        return RTSO
    if sw & 0x6F == 0x23:
        return SO
    if sw & 0x6F == 0x27:
        return OE
    if sw & 0x6F == 0x07:
        return QSA
    if sw & 0x4F == 0x0F:
        return "fault reaction active"
    if sw & 0x4F == 0x08:
        return FAULT
    return f"unknown statusword 0x{sw:04X}"
