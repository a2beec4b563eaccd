import Foundation
import ProcessMemory
import Prometheus
import RobotControl
import RobotIO

/// `/metrics`: the loop, the bus, safety, the scan, and HTTP/WebSocket counts, in the
/// Prometheus text format. Loop and bus figures are read when scraped.
final class ServerMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    let requestDuration: ValueHistogram

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        requestDuration = registry.makeValueHistogram(
            name: "robotd_http_request_duration_seconds",
            buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5],
            help: "HTTP request handling time")
    }

    func countRequest(method: String, status: Int, seconds: Double) {
        registry.makeCounter(name: "robotd_http_requests_total", labels: [("method", method), ("status", "\(status)")],
                             help: "HTTP requests by method and status").increment()
        requestDuration.record(seconds)
    }

    func countWebSocket(opened: Bool) {
        registry.makeCounter(name: "robotd_websocket_connections_total", labels: [("event", opened ? "opened" : "closed")],
                             help: "WebSocket connections opened and closed").increment()
    }

    /// Refreshes the gauges read from the loop, then writes everything.
    func scrape(loop: ControlLoop, webSocketClients: Int, framesSent: UInt64, watchedCommands: Int, scan: (completed: Int, total: Int)?,
                slowConnectionsClosed: Int = 0, diskFreeBytes: Int64? = nil) -> [UInt8] {
        let stats = loop.statistics()
        let s = loop.snapshot()
        func gauge(_ name: String, _ value: Double, _ help: String, _ labels: [(String, String)] = []) {
            registry.makeGauge(name: name, labels: labels, help: help).set(value)
        }
        for (q, v) in [("0.5", stats.wakeLatencyP50), ("0.99", stats.wakeLatencyP99), ("0.999", stats.wakeLatencyP999), ("1", stats.wakeLatencyMax)] {
            gauge("robotd_loop_wake_latency_microseconds", Double(v), "Control loop wake-up latency past its deadline, by quantile", [("quantile", q)])
        }
        gauge("robotd_loop_tick_duration_p99_microseconds", Double(stats.tickDurationP99), "Control loop tick duration, 99th percentile")
        gauge("robotd_loop_ticks", Double(stats.ticks), "Control loop ticks since start")
        gauge("robotd_loop_overruns", Double(stats.overruns), "Control loop ticks missed (overruns) since start")
        for d in loop.bus.statisticsSnapshot() {
            let l = [("device", d.device)]
            gauge("robotd_bus_transactions", Double(d.transactions), "Modbus transactions per device", l)
            gauge("robotd_bus_failures", Double(d.failures), "Failed Modbus transactions per device", l)
            gauge("robotd_bus_timeouts", Double(d.timeouts), "Modbus timeouts per device", l)
            gauge("robotd_bus_crc_errors", Double(d.crcErrors), "Modbus CRC errors per device", l)
            gauge("robotd_bus_retries", Double(d.retries), "Modbus retries per device", l)
            gauge("robotd_bus_latency_p99_microseconds", Double(d.latencyP99Microseconds), "Modbus round trip, 99th percentile", l)
            gauge("robotd_status_age_p99_microseconds", Double(d.statusAgeP99Microseconds),
                  "Age a unit's polled status had reached when it was refreshed, 99th percentile", l)
            gauge("robotd_status_age_max_microseconds", Double(d.statusAgeMaxMicroseconds),
                  "Age a unit's polled status had reached when it was refreshed, worst", l)
        }
        gauge("robotd_safety_stopped", s.stopCause == nil ? 0 : 1, "1 while a safety stop is latched")
        gauge("robotd_motion_power_on", s.motionPowerOn ? 1 : 0, "1 while drive power is on")
        gauge("robotd_estop_button_pressed", s.estopButton ? 1 : 0, "1 while the hardware e-stop is pressed")
        if let charge = s.batteryChargePercent {
            gauge("robotd_battery_charge_percent", charge, "The battery's charge as the safety unit reports it")
        }
        gauge("robotd_deadman_armed", s.deadmanArmed ? 1 : 0, "1 while a client holds the motion lease")
        gauge("robotd_dose_rate_microsieverts_per_hour", s.doseRateMicrosievertsPerHour, "Live dose rate at the detector")
        gauge("robotd_scan_running", scan == nil ? 0 : 1, "1 while a scan runs")
        gauge("robotd_scan_points_completed", Double(scan?.completed ?? 0), "Points completed in the running scan")
        gauge("robotd_scan_points_total", Double(scan?.total ?? 0), "Points in the running scan")
        gauge("robotd_websocket_clients", Double(webSocketClients), "Connected WebSocket clients")
        gauge("robotd_websocket_telemetry_frames", Double(framesSent), "Telemetry frames broadcast since start")
        gauge("robotd_api_commands_followed", Double(watchedCommands), "API commands whose feedback is still followed (not final yet)")
        let memory = MemoryUse.now()
        gauge("robotd_memory_resident_bytes", Double(memory.residentBytes), "Resident set size")
        gauge("robotd_memory_heap_in_use_bytes", Double(memory.heapBytes), "malloc heap in use (mallinfo2), SQLite's share included")
        gauge("robotd_memory_sqlite_bytes", Double(memory.sqliteBytes), "Memory SQLite holds (sqlite3_memory_used)")
        gauge("robotd_slow_connections_closed", Double(slowConnectionsClosed), "Connections closed for not sending a whole request in time")
        if let diskFreeBytes { gauge("robotd_store_disk_free_bytes", Double(diskFreeBytes), "Free space on the store's file system") }
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}
