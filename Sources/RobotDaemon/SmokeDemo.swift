import Foundation
import Logging
import RobotControl

/// A short demonstration that the whole chain works: home, walk, raise, measure.
/// (The full container scan comes with the inspection engine.)
public enum SmokeDemo {
    public static func run(loop: ControlLoop, logger: Logger) async {
        let steps: [(String, RobotCommand, Double)] = [
            ("home the lift", .homeLift, 30),
            ("walk 1 m", .walk(metres: 1, speedMetresPerSecond: nil), 15),
            ("raise the detector to 1.5 m", .lift(heightMetres: 1.5), 20),
            ("measure for 3 s", .measure(seconds: 3), 10),
            ("lower the detector to 0.5 m", .lift(heightMetres: 0.5), 20),
        ]
        for (what, command, timeout) in steps {
            let result = await loop.run(command, timeout: timeout)
            if Task.isCancelled { return }
            guard let result, result.state == .done else {
                logger.error("demo step failed", metadata: ["step": "\(what)", "problem": "\(result?.problem.map { "\($0)" } ?? "no answer")"])
                return
            }
            var metadata: Logger.Metadata = ["step": "\(what)", "command": "\(result.id)"]
            if let r = result.reading {
                metadata["doseRate"] = "\(String(format: "%.3f ± %.3f μSv/h", r.doseRateMicrosievertsPerHour, r.doseRateUncertaintyMicrosievertsPerHour))"
                metadata["counts"] = "\(r.counts) in \(String(format: "%.2f", r.seconds)) s"
            }
            let s = loop.snapshot()
            metadata["pose"] = "\(String(format: "(%.3f, %.3f) m, %.1f°, lift %.3f m", s.xMetres, s.yMetres, s.headingDegrees, s.liftHeightMetres))"
            logger.info("demo step done", metadata: metadata)
        }
    }
}
