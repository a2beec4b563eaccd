import RobotIO
import RobotTesting
import Testing

@Suite(.enabled(if: TestTier.fast), .timeLimit(.minutes(5))) struct PortDiscoveryTests {
    let before = [
        SerialPortInfo(path: "/dev/ttyS0", description: "ttyS0"),
        SerialPortInfo(path: "/dev/ttyUSB0", description: "FT232R USB UART", transport: "usb", usbVendorId: 0x0403,
                       usbProductId: 0x6001, usbSerialNumber: "A10K3XQZ"),
    ]
    // The same adapter after an unplug and replug, renumbered behind another one.
    let after = [
        SerialPortInfo(path: "/dev/ttyS0", description: "ttyS0"),
        SerialPortInfo(path: "/dev/ttyUSB0", description: "CP2102", transport: "usb", usbVendorId: 0x10C4,
                       usbProductId: 0xEA60, usbSerialNumber: "0001"),
        SerialPortInfo(path: "/dev/ttyUSB1", description: "FT232R USB UART", transport: "usb", usbVendorId: 0x0403,
                       usbProductId: 0x6001, usbSerialNumber: "A10K3XQZ"),
    ]

    @Test func anAdapterNamedByIdentityIsFoundAgainAfterAReplug() throws {
        let selector = try PortSelector(parsing: "usb-serial:A10K3XQZ")
        #expect(try SerialPortCatalog.resolve(selector, among: before) == "/dev/ttyUSB0")
        #expect(try SerialPortCatalog.resolve(selector, among: after) == "/dev/ttyUSB1")
        let byIds = try PortSelector(parsing: "usb:0403:6001")
        #expect(try SerialPortCatalog.resolve(byIds, among: after) == "/dev/ttyUSB1")
    }

    @Test func plainPathsPassThroughForPtys() throws {
        #expect(try SerialPortCatalog.resolve(.path("/tmp/robot-sim/bus0"), among: []) == "/tmp/robot-sim/bus0")
    }

    @Test func aMissingAdapterSaysWhatIsThere() {
        do {
            _ = try SerialPortCatalog.resolve(.usbSerial("NOPE"), among: before)
            Issue.record("must not resolve")
        } catch {
            #expect(error.description == "no serial port matches 'usb-serial:NOPE'; ports present: /dev/ttyS0, /dev/ttyUSB0. Is the adapter plugged in?")
        }
    }

    @Test func badSelectorsSayHowToWriteThem() {
        #expect(throws: PortSelectorError.self) { try PortSelector(parsing: "usb:xyz") }
        #expect(throws: PortSelectorError.self) { try PortSelector(parsing: "usb-serial:") }
        #expect((try? PortSelector(parsing: "usb:0403:6001:A1")) == .usbVidPid(vendor: 0x0403, product: 0x6001, serial: "A1"))
        #expect(PortSelector.usbVidPid(vendor: 0x0403, product: 0x6001, serial: nil).description == "usb:0403:6001")
    }

    @Test func listingTheSystemsPortsDoesNotFail() {
        // Whatever this machine has; ptys never appear (libserialport 0.1.1).
        let ports = SerialPortCatalog.list()
        #expect(ports.allSatisfy { !$0.path.hasPrefix("/dev/pts/") })
    }
}
