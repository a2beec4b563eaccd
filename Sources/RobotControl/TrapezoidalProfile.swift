/// A trapezoidal (or triangular) velocity profile over a distance: the time a move
/// takes, and where it should be when. Used for arrival deadlines and progress.
public struct TrapezoidalProfile: Sendable, Equatable {
    public let distance: Double
    public let maxSpeed: Double
    public let acceleration: Double

    public init(distance: Double, maxSpeed: Double, acceleration: Double) {
        self.distance = abs(distance)
        self.maxSpeed = maxSpeed
        self.acceleration = acceleration
    }

    /// Peak speed actually reached: the cruise speed, or less if the move is too short.
    public var peakSpeed: Double {
        min(maxSpeed, (distance * acceleration).squareRoot())
    }

    /// Total time of the move.
    public var duration: Double {
        guard distance > 0, maxSpeed > 0, acceleration > 0 else { return 0 }
        let rampDistance = maxSpeed * maxSpeed / acceleration
        if distance >= rampDistance { return distance / maxSpeed + maxSpeed / acceleration }
        return 2 * (distance / acceleration).squareRoot()
    }

    /// Distance covered after `t` seconds.
    public func position(at t: Double) -> Double {
        let total = duration
        guard t > 0 else { return 0 }
        guard t < total else { return distance }
        let v = peakSpeed
        let ramp = v / acceleration
        if t < ramp { return 0.5 * acceleration * t * t }
        if t <= total - ramp { return 0.5 * v * ramp + v * (t - ramp) }
        let left = total - t
        return distance - 0.5 * acceleration * left * left
    }
}
