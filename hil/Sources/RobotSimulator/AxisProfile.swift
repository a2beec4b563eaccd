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
        let distance = abs(remaining)
        let dv = acceleration * dt
        // The fastest speed from which a stop in whole steps of `dv` still ends at the
        // target (the discrete form of √(2·a·d)), and never more than one step's worth.
        let stoppable = dv * ((0.25 + 2 * distance / (dt * dv)).squareRoot() - 0.5)
        let desired = direction * min(maxSpeed, stoppable, distance / dt)
        if abs(desired - velocity) <= dv { velocity = desired } else { velocity += dv * (desired > velocity ? 1 : -1) }
        position += velocity * dt
        if abs(target - position) < 1e-7 && abs(velocity) <= dv {
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
