import CSerialPort

/// What libserialport knows about one port.
public struct SerialPortInfo: Sendable, Equatable, Codable {
    public var path: String
    public var description: String?
    public var transport: String
    public var usbVendorId: UInt16?
    public var usbProductId: UInt16?
    public var usbSerialNumber: String?
    public var usbManufacturer: String?
    public var usbProduct: String?

    public init(path: String, description: String? = nil, transport: String = "native",
                usbVendorId: UInt16? = nil, usbProductId: UInt16? = nil, usbSerialNumber: String? = nil,
                usbManufacturer: String? = nil, usbProduct: String? = nil) {
        self.path = path
        self.description = description
        self.transport = transport
        self.usbVendorId = usbVendorId
        self.usbProductId = usbProductId
        self.usbSerialNumber = usbSerialNumber
        self.usbManufacturer = usbManufacturer
        self.usbProduct = usbProduct
    }
}

public struct PortResolutionError: Error, Sendable, Equatable, CustomStringConvertible {
    public let selector: String
    public let available: [String]
    public var description: String {
        let list = available.isEmpty ? "none" : available.joined(separator: ", ")
        return "no serial port matches '\(selector)'; ports present: \(list). Is the adapter plugged in?"
    }
}

/// Serial port discovery through libserialport.
///
/// libserialport 0.1.1 lists only ports with an entry in `/sys/class/tty`, so ptys
/// never appear here; `resolve` passes plain paths through untouched for them.
public enum SerialPortCatalog {
    /// Every port the system reports, with USB identity where it has one.
    public static func list() -> [SerialPortInfo] {
        var listPointer: UnsafeMutablePointer<OpaquePointer?>?
        guard sp_list_ports(&listPointer) == SP_OK, let list = listPointer else { return [] }
        defer { sp_free_port_list(list) }
        var ports: [SerialPortInfo] = []
        var index = 0
        while let port = list[index] {
            ports.append(info(port))
            index += 1
        }
        return ports.sorted { $0.path < $1.path }
    }

    static func info(_ port: OpaquePointer) -> SerialPortInfo {
        let text = { (p: UnsafeMutablePointer<CChar>?) in p.map { String(cString: $0) } }
        var result = SerialPortInfo(path: text(sp_get_port_name(port)) ?? "?")
        result.description = text(sp_get_port_description(port))
        switch sp_get_port_transport(port) {
        case SP_TRANSPORT_USB:
            result.transport = "usb"
            var vid: Int32 = 0
            var pid: Int32 = 0
            if sp_get_port_usb_vid_pid(port, &vid, &pid) == SP_OK {
                result.usbVendorId = UInt16(truncatingIfNeeded: vid)
                result.usbProductId = UInt16(truncatingIfNeeded: pid)
            }
            result.usbSerialNumber = text(sp_get_port_usb_serial(port))
            result.usbManufacturer = text(sp_get_port_usb_manufacturer(port))
            result.usbProduct = text(sp_get_port_usb_product(port))
        case SP_TRANSPORT_BLUETOOTH:
            result.transport = "bluetooth"
        default:
            result.transport = "native"
        }
        return result
    }

    /// The device path for `selector`, looked up afresh each call so that a replugged
    /// adapter is found under its new name.
    public static func resolve(_ selector: PortSelector, among ports: [SerialPortInfo]? = nil) throws(PortResolutionError) -> String {
        if case .path(let path) = selector { return path }
        let candidates = ports ?? list()
        guard let match = candidates.first(where: selector.matches) else {
            throw PortResolutionError(selector: selector.description, available: candidates.map(\.path))
        }
        return match.path
    }
}
