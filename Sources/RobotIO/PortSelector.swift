/// How a configuration names a serial port.
///
/// USB adapters are renumbered when they are unplugged and plugged back
/// (`/dev/ttyUSB0` becomes `/dev/ttyUSB1`), so a rig should name its adapter by
/// identity. Virtual ports (ptys) have no identity and are named by path.
public enum PortSelector: Sendable, Equatable, CustomStringConvertible {
    /// A device path such as `/dev/ttyUSB0`, `/dev/pts/3` or a symlink to one.
    case path(String)
    /// The USB serial number of the adapter (`iSerial`).
    case usbSerial(String)
    /// USB vendor and product ID, optionally narrowed by serial number.
    case usbVidPid(vendor: UInt16, product: UInt16, serial: String?)

    /// Parses `usb-serial:ABC123`, `usb:0403:6001`, `usb:0403:6001:ABC123`, or a path.
    public init(parsing text: String) throws(PortSelectorError) {
        if text.hasPrefix("usb-serial:") {
            let serial = String(text.dropFirst("usb-serial:".count))
            guard !serial.isEmpty else { throw PortSelectorError(text: text, reason: "the serial number is empty") }
            self = .usbSerial(serial)
        } else if text.hasPrefix("usb:") {
            let parts = text.dropFirst(4).split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2 || parts.count == 3,
                  let vendor = UInt16(parts[0], radix: 16), let product = UInt16(parts[1], radix: 16) else {
                throw PortSelectorError(text: text, reason: "write usb:VID:PID or usb:VID:PID:SERIAL with hex IDs, e.g. usb:0403:6001")
            }
            self = .usbVidPid(vendor: vendor, product: product, serial: parts.count == 3 ? String(parts[2]) : nil)
        } else {
            guard !text.isEmpty else { throw PortSelectorError(text: text, reason: "the port is empty") }
            self = .path(text)
        }
    }

    public var description: String {
        switch self {
        case .path(let p): return p
        case .usbSerial(let s): return "usb-serial:\(s)"
        case let .usbVidPid(v, p, s):
            let hex = { (x: UInt16) in String(repeating: "0", count: 4 - String(x, radix: 16).count) + String(x, radix: 16) }
            return "usb:\(hex(v)):\(hex(p))" + (s.map { ":\($0)" } ?? "")
        }
    }

    /// True if the described port matches this selector.
    public func matches(_ port: SerialPortInfo) -> Bool {
        switch self {
        case .path(let p): return port.path == p
        case .usbSerial(let s): return port.usbSerialNumber == s
        case let .usbVidPid(v, p, s):
            return port.usbVendorId == v && port.usbProductId == p && (s == nil || port.usbSerialNumber == s)
        }
    }
}

public struct PortSelectorError: Error, Sendable, Equatable, CustomStringConvertible {
    public let text: String
    public let reason: String
    public var description: String { "port '\(text)': \(reason)" }
}
