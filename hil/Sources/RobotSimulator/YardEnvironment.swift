import Foundation

/// A rain shower: radon progeny washed out onto the ground raise the background while it
/// rains (rising with a time constant) and decay after it stops with the progeny's
/// effective half-life (`hil/README.md`, "Radiation environment", for the figures).
public struct RainEvent: Sendable, Codable, Equatable {
    public var startSeconds: Double
    /// Peak rise over the background before the rain (0.5 is +50 %).
    public var peakFraction: Double
    public var riseMinutes: Double
    public var durationMinutes: Double
    public var decayHalfLifeMinutes: Double

    public init(startSeconds: Double, peakFraction: Double, riseMinutes: Double = 10, durationMinutes: Double = 20,
                decayHalfLifeMinutes: Double = 35) {
        self.startSeconds = startSeconds
        self.peakFraction = peakFraction
        self.riseMinutes = riseMinutes
        self.durationMinutes = durationMinutes
        self.decayHalfLifeMinutes = decayHalfLifeMinutes
    }

    /// Relative rise at a time.
    func rise(atSeconds t: Double) -> Double {
        guard t > startSeconds else { return 0 }
        let rainEnd = startSeconds + durationMinutes * 60
        let building = { (s: Double) in self.peakFraction * (1 - exp(-(s - self.startSeconds) / max(self.riseMinutes * 60, 1))) }
        if t <= rainEnd { return building(t) }
        return building(rainEnd) * exp(-log(2) * (t - rainEnd) / max(decayHalfLifeMinutes * 60, 1))
    }
}

/// How the background behaves beyond the original uniform field: a height profile, the
/// shadow of containers (their body and cargo hide the ground and sky behind them), a site
/// level at the containers that differs from the station's, a random walk and rain. All
/// zero by default, which is the original uniform field.
public struct BackgroundEnvironment: Sendable, Codable, Equatable {
    /// The part of the background at 1 m that comes from the ground (the rest, cosmic and
    /// airborne, from above).
    public var terrestrialFraction = 0.7
    /// Relative change of the ground's part per metre above 1 m.
    public var heightGradientPerMetre = 0.0
    /// Scale of the shadowing computed from the geometry (0 off, 1 as computed).
    public var shadowingScale = 0.0
    /// Mass attenuation of the background's (scattered) spectrum in cargo, cm²/g, and of
    /// steel, per cm.
    public var cargoMassMu = 0.06
    public var steelMuPerCentimetre = 0.5
    /// The background within `siteRadiusMetres` of a container is this much higher (or
    /// lower) than elsewhere, the station included.
    public var siteOffsetFraction = 0.0
    public var siteRadiusMetres = 3.0
    /// Relative standard deviation of the random walk per √hour.
    public var randomWalkPerRootHour = 0.0
    public var rain: [RainEvent] = []
    /// The random walk, one value a minute (built by `prepare(seed:)`).
    var walk: [Double] = []

    public init() {}

    static let walkStepSeconds = 60.0

    /// Draws the random walk for a seed (48 hours, then it holds).
    public mutating func prepare(seed: UInt64) {
        guard randomWalkPerRootHour > 0 else {
            walk = []
            return
        }
        var random = SeededRandom(seed: seed ^ 0x5EED_0F_BA5E)
        let step = randomWalkPerRootHour * (Self.walkStepSeconds / 3600).squareRoot()
        var value = 0.0
        walk = [0]
        for _ in 0..<(48 * 60) {
            value += step * random.gaussian()
            walk.append(value)
        }
    }

    /// The relative level of the whole background at a time (walk and rain; the sine is the field's).
    func temporalFactor(atSeconds t: Double) -> (all: Double, rain: Double) {
        var walkValue = 0.0
        if !walk.isEmpty {
            let position = max(0, t) / Self.walkStepSeconds
            let i = min(Int(position), walk.count - 2)
            let f = min(1, position - Double(i))
            walkValue = walk[i] + f * (walk[i + 1] - walk[i])
        }
        return (1 + walkValue, rain.reduce(0) { $0 + $1.rise(atSeconds: t) })
    }

    var needsGeometry: Bool { shadowingScale > 0 }
}

/// What containers do to the background at a point: the fraction of the ground's and the
/// sky's part they hide, and the net dose of NORM cargo, by sampling 512 directions of
/// equal solid angle. Computed independently of the controller's model (which uses the
/// closed-form solid angle of the box), so a test of one against the other means something.
enum ContainerShadow {
    static let elevations = 16
    static let azimuths = 32

    /// Directions (unit vectors), each standing for 4π/512 sr.
    static let directions: [(Double, Double, Double)] = {
        var result: [(Double, Double, Double)] = []
        for e in 0..<elevations {
            let z = -1 + (Double(e) + 0.5) * 2 / Double(elevations)
            let r = (1 - z * z).squareRoot()
            for a in 0..<azimuths {
                let phi = (Double(a) + 0.5) * 2 * .pi / Double(azimuths)
                result.append((r * cos(phi), r * sin(phi), z))
            }
        }
        return result
    }()

    /// (hidden fraction of the ground's part, hidden fraction of the sky's part, NORM dose).
    static func effect(x: Double, y: Double, z: Double, containers: [PlacedContainer],
                       environment: BackgroundEnvironment) -> (ground: Double, sky: Double, norm: Double) {
        var hiddenGround = 0.0, hiddenSky = 0.0, norm = 0.0
        let weight = 1 / Double(directions.count / 2)
        for d in directions {
            for container in containers {
                let h = container.headingDegrees * .pi / 180
                let (pa, pc, pz) = container.local(x, y, z)
                let da = d.0 * cos(h) + d.1 * sin(h)
                let dc = d.0 * sin(h) - d.1 * cos(h)
                guard let (enter, exit) = slab((pa, pc, pz), (da, dc, d.2),
                                               (container.type.lengthMetres, container.type.widthMetres, container.type.heightMetres))
                else { continue }
                // A downward ray that meets the ground before the box is not hidden.
                if d.2 < 0, enter > pz / -d.2 { continue }
                let chordCm = (exit - enter) * 100
                let steel = exp(-environment.steelMuPerCentimetre * container.wallThicknessCentimetres)
                let cargo = exp(-environment.cargoMassMu * container.cargoDensity * chordCm)
                let hidden = 1 - steel * steel * cargo
                if d.2 < 0 { hiddenGround += weight * hidden } else { hiddenSky += weight * hidden }
                if container.normDoseRateAtContactMicrosievertsPerHour > 0 {
                    // A thick cargo seen over a half space gives the contact figure.
                    norm += weight * container.normDoseRateAtContactMicrosievertsPerHour * (1 - cargo) * steel
                }
            }
        }
        return (min(1, hiddenGround), min(1, hiddenSky), norm)
    }

    /// Entry and exit distances of a ray from p along d through the box [0, size].
    static func slab(_ p: (Double, Double, Double), _ d: (Double, Double, Double),
                     _ size: (Double, Double, Double)) -> (Double, Double)? {
        var low = 0.0, high = Double.infinity
        for (origin, direction, extent) in [(p.0, d.0, size.0), (p.1, d.1, size.1), (p.2, d.2, size.2)] {
            if abs(direction) < 1e-12 {
                if origin < 0 || origin > extent { return nil }
                continue
            }
            var t0 = (0 - origin) / direction, t1 = (extent - origin) / direction
            if t0 > t1 { swap(&t0, &t1) }
            low = max(low, t0)
            high = min(high, t1)
            if low >= high { return nil }
        }
        return (low, high)
    }
}

/// How a Cs-137-calibrated probe answers other spectra, relative to Cs-137 (1 is the
/// calibration's answer): the scattered background, NORM cargo, and each nuclide.
public struct EnergyResponse: Sendable, Codable, Equatable {
    public var background = 1.0
    public var norm = 1.0
    public var byNuclide: [String: Double] = [:]

    public init() {}

    public func factor(_ nuclide: Nuclide) -> Double { byNuclide[nuclide.rawValue] ?? 1 }
}
