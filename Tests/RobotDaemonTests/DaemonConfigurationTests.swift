import RobotControl
import RobotDaemon
import RobotIO
import StrictYAML
import Testing

@Suite struct DaemonConfigurationTests {
    @Test func aFullFileIsRead() throws {
        let yaml = """
        robot: RIR-07
        bus:
          port: usb-serial:A10K3XQZ
          baud: 19200
          responseTimeoutMilliseconds: 150
        loop:
          rateHertz: 200
        limits:
          liftMaximumMetres: 2.6
          keepOutZones:
            - {minX: -0.3, minY: -2.7, maxX: 12.5, maxY: 0.3}
        safety:
          deadmanTimeoutSeconds: 2
        """
        let config = try DaemonConfiguration.parse(yaml, file: "robotd.yaml")
        #expect(config.robotId == "RIR-07")
        #expect(config.endpoint == .rtu(.usbSerial("A10K3XQZ"), baud: 19200, responseTimeoutMilliseconds: 150))
        #expect(config.control.loopRateHertz == 200)
        #expect(config.control.liftMaximumMetres == 2.6)
        #expect(config.control.keepOutZones == [KeepOutZone(minX: -0.3, minY: -2.7, maxX: 12.5, maxY: 0.3)])
        #expect(config.control.deadmanTimeoutSeconds == 2)
    }

    @Test func theDocumentedExampleIsValid() throws {
        let path = String(#filePath.dropLast("Tests/RobotDaemonTests/DaemonConfigurationTests.swift".count)) + "docs/robotd.yaml"
        let config = try DaemonConfiguration.load(path: path)
        #expect(config.control == ControlConfiguration() || config.control.keepOutZones.count > 0)
    }

    func error(_ yaml: String) -> ConfigurationFileError? {
        do {
            _ = try DaemonConfiguration.parse(yaml, file: "robotd.yaml")
            return nil
        } catch {
            return error
        }
    }

    @Test func badValuesNameTheFieldAndTheLine() {
        let range = error("limits:\n  liftMaximumMetres: 3.5\n")
        #expect(range?.description == "robotd.yaml:2:22: limits.liftMaximumMetres: 3.5 is out of range; allowed 0.3 to 2.8")
        let both = error("bus:\n  port: /dev/ttyUSB0\n  tcp: 10.0.0.5:502\n")
        #expect(both?.message == "give either port or tcp, not both")
        let tcp = error("bus:\n  tcp: gateway\n")
        #expect(tcp?.field == "bus.tcp")
        let unknown = error("safety:\n  deadman: 1\n")
        #expect(unknown?.line == 2)
        let order = error("limits:\n  liftMinimumMetres: 2.0\n  liftMaximumMetres: 1.0\n")
        #expect(order?.message == "lift range 2.0-1.0 m must lie inside the firmware's 0.3-2.8 m, minimum below maximum")
    }
}
