import FirmwareProtocol
import Foundation

/// The side-facing range pair (protocol 1.1, G9): each beam from its sensor, square to the
/// heading and to the robot's right, to the nearest container face it meets; a side wall
/// reads its corrugation's depth at the point met. The block latches the reported pose
/// (odometry, with its drift) with the distances, as G9.1 asks of a firmware.
extension FirmwareModel {
    func chassisRange() -> ChassisRange? {
        guard let pair = settings.rangePair else { return nil }
        let pose = reportedPose
        var headingDegrees = (pose.headingRadians * 180 / .pi).truncatingRemainder(dividingBy: 360)
        if headingDegrees > 180 { headingDegrees -= 360 }
        if headingDegrees < -180 { headingDegrees += 360 }
        var flags: ChassisRange.Flags = []
        var front: UInt16 = 0, rear: UInt16 = 0
        if pair.faulted {
            flags.insert(.sensorFault)
        } else {
            if let d = beam(forward: pair.frontForwardMetres, pair), d + pair.frontBiasMetres <= pair.maximumRangeMetres {
                flags.insert(.frontValid)
                front = millimetres(d + pair.frontBiasMetres)
            }
            if let d = beam(forward: pair.rearForwardMetres, pair) {
                flags.insert(.rearValid)
                rear = millimetres(d)
            }
        }
        return ChassisRange(flags: flags, frontMillimetres: front, rearMillimetres: rear,
                            headingCentidegrees: Int16(clamping: Int((headingDegrees * 100).rounded())),
                            xMillimetres: Int32(clamping: Int64((pose.x * 1000).rounded())),
                            yMillimetres: Int32(clamping: Int64((pose.y * 1000).rounded())))
    }

    private func millimetres(_ metres: Double) -> UInt16 { UInt16(clamping: Int((max(0, metres) * 1000).rounded())) }

    /// One sensor's reading with noise, or nil when nothing is within range.
    private func beam(forward: Double, _ pair: RangePairSettings) -> Double? {
        let h = trueHeading
        let right = (x: sin(h), y: -cos(h))
        let origin = (x: trueX + forward * cos(h) + pair.rightMetres * right.x,
                      y: trueY + forward * sin(h) + pair.rightMetres * right.y)
        var nearest: Double?
        for container in field.containers {
            guard let d = Self.distance(from: origin, along: right, to: container) else { continue }
            if nearest.map({ d < $0 }) ?? true { nearest = d }
        }
        guard let d = nearest else { return nil }
        let reading = d + pair.noiseMetres * rangeRandom.gaussian()
        return reading <= pair.maximumRangeMetres ? max(0, reading) : nil
    }

    /// Distance along a horizontal ray to a container's outer box, plus the corrugation's
    /// depth where it meets a side wall (measured along the ray).
    static func distance(from origin: (x: Double, y: Double), along direction: (x: Double, y: Double),
                         to container: PlacedContainer) -> Double? {
        let (pa, pc, _) = container.local(origin.x, origin.y, 0)
        let h = container.headingDegrees * .pi / 180
        let da = direction.x * cos(h) + direction.y * sin(h)
        let dc = direction.x * sin(h) - direction.y * cos(h)
        let size = (container.type.lengthMetres, container.type.widthMetres, 10.0)
        guard let (enter, _) = ContainerShadow.slab((pa, pc, 1), (da, dc, 0), size), enter > 0 else { return nil }
        let hitAlong = pa + enter * da, hitAcross = pc + enter * dc
        let onSideWall = abs(hitAcross) < 1e-6 || abs(hitAcross - container.type.widthMetres) < 1e-6
        guard onSideWall, abs(dc) > 1e-6 else { return enter }
        return enter + container.corrugationDepth(along: hitAlong) / abs(dc)
    }
}
