import Foundation

/// ISO 668 container sizes, in metres.
public enum ContainerType: String, Sendable, Codable, CaseIterable {
    case twentyFoot = "22G1"
    case fortyFoot = "42G1"
    case fortyFootHighCube = "45G1"
    case fortyFiveFootHighCube = "L5G1"

    public var lengthMetres: Double {
        switch self {
        case .twentyFoot: return 6.058
        case .fortyFoot, .fortyFootHighCube: return 12.192
        case .fortyFiveFootHighCube: return 13.716
        }
    }

    public var widthMetres: Double { 2.438 }

    public var heightMetres: Double {
        switch self {
        case .twentyFoot, .fortyFoot: return 2.591
        case .fortyFootHighCube, .fortyFiveFootHighCube: return 2.896
        }
    }
}

/// Gamma constants and attenuation coefficients, close enough for a simulator.
public enum Nuclide: String, Sendable, Codable, CaseIterable {
    case cs137 = "Cs-137"
    case co60 = "Co-60"
    case ra226 = "Ra-226"
    case ir192 = "Ir-192"
    case am241 = "Am-241"

    /// Γ in μSv·m²·MBq⁻¹·h⁻¹.
    public var gammaConstant: Double {
        switch self {
        case .cs137: return 0.09
        case .co60: return 0.35
        case .ra226: return 0.23
        case .ir192: return 0.13
        case .am241: return 0.004
        }
    }

    /// Linear attenuation coefficient of steel, per cm, at the main line.
    public var steelMuPerCentimetre: Double {
        switch self {
        case .cs137: return 0.58
        case .co60: return 0.43
        case .ra226: return 0.50
        case .ir192: return 0.90
        case .am241: return 8.6
        }
    }

    /// Mass attenuation coefficient of bulk cargo, cm²/g.
    public var cargoMassMu: Double {
        switch self {
        case .cs137: return 0.075
        case .co60: return 0.058
        case .ra226: return 0.068
        case .ir192: return 0.10
        case .am241: return 0.19
        }
    }
}

/// A point source inside a container, in the container's own frame: `along` from the
/// door end towards the front, `across` from the left wall (seen from the doors), and
/// `height` above the floor, all in metres.
public struct PointSource: Sendable, Codable, Equatable {
    public var nuclide: Nuclide
    public var activityMBq: Double
    public var along: Double
    public var across: Double
    public var height: Double

    public init(nuclide: Nuclide, activityMBq: Double, along: Double, across: Double, height: Double) {
        self.nuclide = nuclide
        self.activityMBq = activityMBq
        self.along = along
        self.across = across
        self.height = height
    }
}

/// A container standing in the yard. `(x, y)` is its door-end left corner in the yard
/// frame, and `headingDegrees` is the direction of its long axis from the doors.
public struct PlacedContainer: Sendable, Codable, Equatable {
    public var number: String
    public var type: ContainerType
    public var x: Double
    public var y: Double
    public var headingDegrees: Double
    /// Bulk density of the cargo, g/cm³ (0 for empty).
    public var cargoDensity: Double
    /// Wall steel thickness, cm.
    public var wallThicknessCentimetres: Double
    public var sources: [PointSource]
    /// NORM in the cargo (K-40 in fertiliser, zircon sand, ceramics): the net dose rate a
    /// probe would read flush against an endless wall of this cargo.
    public var normDoseRateAtContactMicrosievertsPerHour = 0.0
    /// Depth of the side walls' trapezoidal corrugation, inward from the outer faces (ISO
    /// boxes: about 36 mm at a pitch of about 278 mm). It matters only to range sensors:
    /// the bumper meets the outer faces. The end walls are flat.
    public var corrugationDepthMetres = 0.0
    public var corrugationPitchMetres = 0.278

    public init(number: String, type: ContainerType, x: Double, y: Double, headingDegrees: Double = 0,
                cargoDensity: Double = 0.3, wallThicknessCentimetres: Double = 0.2, sources: [PointSource] = []) {
        self.number = number
        self.type = type
        self.x = x
        self.y = y
        self.headingDegrees = headingDegrees
        self.cargoDensity = cargoDensity
        self.wallThicknessCentimetres = wallThicknessCentimetres
        self.sources = sources
    }

    /// Yard point to container frame (along, across, height).
    public func local(_ px: Double, _ py: Double, _ pz: Double) -> (Double, Double, Double) {
        let h = headingDegrees * .pi / 180
        let dx = px - x
        let dy = py - y
        // `across` grows to the right of the long axis seen from the doors.
        return (dx * cos(h) + dy * sin(h), dx * sin(h) - dy * cos(h), pz)
    }

    /// Yard frame position of a local point.
    public func yard(along: Double, across: Double) -> (x: Double, y: Double) {
        let h = headingDegrees * .pi / 180
        return (x + along * cos(h) + across * sin(h), y + along * sin(h) - across * cos(h))
    }

    /// How far in from the outer face a side wall is at `along` (0 on a ridge).
    func corrugationDepth(along a: Double) -> Double {
        guard corrugationDepthMetres > 0, corrugationPitchMetres > 0 else { return 0 }
        // Trapezoid: ridge 26 %, flank 24 %, valley 26 %, flank 24 % of the pitch.
        let u = (a / corrugationPitchMetres).truncatingRemainder(dividingBy: 1)
        let phase = u < 0 ? u + 1 : u
        switch phase {
        case ..<0.26: return 0
        case ..<0.50: return corrugationDepthMetres * (phase - 0.26) / 0.24
        case ..<0.76: return corrugationDepthMetres
        default: return corrugationDepthMetres * (1 - (phase - 0.76) / 0.24)
        }
    }

    func contains(along a: Double, across c: Double, margin: Double) -> Bool {
        a > -margin && a < type.lengthMetres + margin && c > -margin && c < type.widthMetres + margin
    }
}

/// The gamma field in the yard: a drifting background plus unshielded point sources,
/// attenuated through cargo and one container wall. Buildup is left out, so shielded
/// readings are somewhat low compared with reality; the physics test checks against
/// the same model. `environment` adds what a real yard does to the background
/// (shadowing, a site level, a random walk, rain, a height profile) and containers may
/// hold NORM cargo; both are off by default.
public struct RadiationField: Sendable {
    public var backgroundMicrosievertsPerHour: Double
    /// Relative amplitude of the slow background drift (0.1 is ±10 %).
    public var driftAmplitude: Double
    public var driftPeriodSeconds: Double
    public var containers: [PlacedContainer]
    public var environment = BackgroundEnvironment()

    public init(backgroundMicrosievertsPerHour: Double = 0.1, driftAmplitude: Double = 0.1,
                driftPeriodSeconds: Double = 7200, containers: [PlacedContainer] = []) {
        self.backgroundMicrosievertsPerHour = backgroundMicrosievertsPerHour
        self.driftAmplitude = driftAmplitude
        self.driftPeriodSeconds = driftPeriodSeconds
        self.containers = containers
    }

    /// The background at 1 m, away from containers (the station's): the level, its sine,
    /// the random walk and rain.
    public func background(atSeconds t: Double) -> Double {
        let moving = environment.temporalFactor(atSeconds: t)
        return backgroundMicrosievertsPerHour * (1 + driftAmplitude * sin(2 * .pi * t / driftPeriodSeconds)) * moving.all * (1 + moving.rain)
    }

    /// What the containers do to the background at a point (time-independent, so callers
    /// that stand still may keep it): hidden fractions of the ground's and sky's parts and
    /// the NORM dose. `nil` when nothing needs the geometry.
    public func containerEffect(x: Double, y: Double, z: Double) -> (ground: Double, sky: Double, norm: Double)? {
        guard environment.needsGeometry || containers.contains(where: { $0.normDoseRateAtContactMicrosievertsPerHour > 0 }) else { return nil }
        let e = ContainerShadow.effect(x: x, y: y, z: z, containers: containers, environment: environment)
        // The sky's part is mostly cosmic, which passes through a container: only the
        // ground's part is shadowed.
        return (environment.shadowingScale * e.ground, 0, e.norm)
    }

    /// Dose rate in μSv/h at a yard point (z is height above ground), as a probe with this
    /// energy response indicates it. `effect` is `containerEffect` at the point, if known.
    public func doseRate(x: Double, y: Double, z: Double, atSeconds t: Double, response: EnergyResponse = EnergyResponse(),
                         effect: (ground: Double, sky: Double, norm: Double)?? = nil) -> Double {
        let base = background(atSeconds: t)
        let e = environment
        var ground = base * e.terrestrialFraction * max(0, 1 + e.heightGradientPerMetre * (z - 1))
        var sky = base * (1 - e.terrestrialFraction)
        if e.siteOffsetFraction != 0, containers.contains(where: { c in
            let (a, cc, _) = c.local(x, y, z)
            return c.contains(along: a, across: cc, margin: e.siteRadiusMetres)
        }) {
            ground *= 1 + e.siteOffsetFraction
            sky *= 1 + e.siteOffsetFraction
        }
        var norm = 0.0
        if let effect = effect ?? containerEffect(x: x, y: y, z: z) {
            ground *= 1 - min(1, effect.ground)
            sky *= 1 - min(1, effect.sky)
            norm = effect.norm
        }
        var total = (ground + sky) * response.background + norm * response.norm
        for container in containers {
            let (pa, pc, pz) = container.local(x, y, z)
            for source in container.sources {
                total += Self.sourceContribution(source, in: container, toAlong: pa, across: pc, height: pz) * response.factor(source.nuclide)
            }
        }
        return total
    }

    /// Γ·A/r² · exp(−μ_steel·x_steel − μ_cargo·ρ·x_cargo) for a detector at a local point.
    public static func sourceContribution(_ s: PointSource, in container: PlacedContainer,
                                          toAlong a: Double, across c: Double, height h: Double) -> Double {
        let d = (a - s.along, c - s.across, h - s.height)
        let r2 = d.0 * d.0 + d.1 * d.1 + d.2 * d.2
        guard r2 > 1e-6 else { return 0 }
        let r = r2.squareRoot()
        let size = (container.type.lengthMetres, container.type.widthMetres, container.type.heightMetres)
        // Distance from the source to where the ray leaves the box, and which wall it crosses.
        var tExit = Double.infinity
        var crossedAxis = 0
        for (axis, (p, dir, extent)) in [(s.along, d.0, size.0), (s.across, d.1, size.1), (s.height, d.2, size.2)].enumerated()
        where dir != 0 {
            let t = dir > 0 ? (extent - p) / dir : -p / dir
            if t < tExit {
                tExit = t
                crossedAxis = axis
            }
        }
        var attenuationExponent = 0.0
        if tExit < 1 {
            let cargoPathCm = tExit * r * 100
            attenuationExponent += s.nuclide.cargoMassMu * container.cargoDensity * cargoPathCm
            let component = [d.0, d.1, d.2][crossedAxis]
            let cosine = max(abs(component) / r, 0.1)
            attenuationExponent += s.nuclide.steelMuPerCentimetre * container.wallThicknessCentimetres / cosine
        } else {
            // Detector inside the box: cargo all the way, no wall.
            attenuationExponent += s.nuclide.cargoMassMu * container.cargoDensity * r * 100
        }
        return s.nuclide.gammaConstant * s.activityMBq / r2 * exp(-attenuationExponent)
    }
}
