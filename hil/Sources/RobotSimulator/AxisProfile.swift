/// One-dimensional motion towards a target under speed and acceleration limits: the
/// simulator's stand-in for a drive's own profile generator.
public struct AxisProfile: Sendable, Equatable {
    public var position: Double
    public var velocity: Double = 0
    public var target: Double?
    public var maxSpeed: Double
    public var acceleration: Double

    public init(position: Double, maxSpeed: Double, acceleration: Double) {
        self.position = position
        self.maxSpeed = maxSpeed
        self.acceleration = acceleration
    }

    public var isMoving: Bool { velocity != 0 || target != nil }

    /// Advances by `dt` seconds. Returns the distance moved.
    @discardableResult
    public mutating func step(_ dt: Double) -> Double {
        let start = position
        guard let target else {
            // No target: decelerate to a stop.
            let dv = acceleration * dt
            if abs(velocity) <= dv { velocity = 0 } else { velocity -= dv * (velocity > 0 ? 1 : -1) }
            position += velocity * dt
            return position - start
        }
        let remaining = target - position
        let direction: Double = remaining >= 0 ? 1 : -1
        // Fastest speed from which we can still stop at the target.
        let stoppingSpeed = (2 * acceleration * abs(remaining)).squareRoot()
        let desired = direction * min(maxSpeed, stoppingSpeed)
        let dv = acceleration * dt
        if abs(desired - velocity) <= dv { velocity = desired } else { velocity += dv * (desired > velocity ? 1 : -1) }
        position += velocity * dt
        let overshot = (target - position) * direction < 0
        if abs(target - position) < 0.0002 || (overshot && abs(velocity) <= 2 * dv) {
            position = target
            velocity = 0
            self.target = nil
        }
        return position - start
    }

    /// Stops at once (power cut): no deceleration ramp.
    public mutating func halt() {
        velocity = 0
        target = nil
    }
}
