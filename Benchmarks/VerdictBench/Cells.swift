import Foundation
import Inspection
import RobotSimulator

/// How the background moves during a cell's scans.
enum Motion: String, Sendable, CaseIterable {
    case steady
    /// The simulator's ±10 % over 2 h, at a random phase.
    case sine
    /// A random walk of 2 %/√h (twice the dry-weather figure of `hil/README.md`).
    case walk
    /// A +50 % rain shower starting at a random time in the scan.
    case rain
}

/// One cell of the matrix: a yard, a container and what it holds.
struct Cell: Sendable {
    enum Group: String, Sendable { case clean, outside, norm, source, multi, response, neighbour }
    var group: Group
    var name: String
    var background = 0.10
    var motion = Motion.steady
    var siteOffset = 0.0
    var shadowing = 0.0
    var cargoDensity = 0.5
    /// Uniform NORM: the highest true net it gives at a grid point (μSv/h).
    var norm = 0.0
    var sources: [SourceSpec] = []
    var response = EnergyResponse()
    /// A source in the next container, 2 m beyond the right wall, of this strength at the grid.
    var neighbour = 0.0
    var containers: Int
}

enum Matrix {
    static func cells(clean: Int, other: Int) -> [Cell] {
        var cells: [Cell] = []
        for background in [0.05, 0.10, 0.15, 0.25] {
            for motion in Motion.allCases {
                for offset in [-0.10, 0.0, 0.10] {
                    for shadowing in [0.0, 1.0] {
                        cells.append(Cell(group: .clean, name: String(format: "clean B=%.2f %@ offset %+.0f%% shadow %@", background, motion.rawValue,
                                                                      100 * offset, shadowing > 0 ? "on" : "off"),
                                          background: background, motion: motion, siteOffset: offset, shadowing: shadowing, containers: clean))
                    }
                }
            }
        }
        // Truth outside the model: shadowing and site offset 50 % beyond it.
        for shadowing in [0.5, 1.5] {
            cells.append(Cell(group: .clean, name: String(format: "clean B=0.10 steady shadow ×%.1f", shadowing), shadowing: shadowing, containers: clean))
        }
        for offset in [-0.15, 0.15] {
            cells.append(Cell(group: .outside, name: String(format: "clean B=0.10 offset %+.0f%% (50%% beyond the allowance)", 100 * offset),
                              siteOffset: offset, containers: other))
        }
        cells.append(Cell(group: .outside, name: "clean B=0.30 (outside the plausible band)", background: 0.30, containers: other))
        for norm in [0.10, 0.30] {
            cells.append(Cell(group: .norm, name: String(format: "uniform NORM +%.2f (dense cargo)", norm), shadowing: 1, cargoDensity: 1.0,
                              norm: norm, containers: other))
        }
        for nuclide in [Nuclide.cs137, .co60] {
            for placement in [SourcePlacement.wall, .midCargo, .betweenPoints] {
                for strength in [0.10, 0.20, 0.25, 0.30, 0.50] {
                    cells.append(Cell(group: .source, name: String(format: "%@ +%.2f %@", nuclide.rawValue, strength, placement.rawValue),
                                      sources: [SourceSpec(nuclide: nuclide, strength: strength, placement: placement)], containers: other))
                }
            }
        }
        for background in [0.05, 0.15] {
            cells.append(Cell(group: .source, name: String(format: "Cs-137 +0.10 wall, B=%.2f", background), background: background,
                              sources: [SourceSpec(nuclide: .cs137, strength: 0.10, placement: .wall)], containers: other))
        }
        for strength in [0.10, 0.25] {
            cells.append(Cell(group: .source, name: String(format: "Cs-137 +%.2f wall, shadow on", strength), shadowing: 1,
                              sources: [SourceSpec(nuclide: .cs137, strength: strength, placement: .wall)], containers: other))
        }
        cells.append(Cell(group: .multi, name: "2 sources, same face, +0.50 and +0.05 (1:10)",
                          sources: [SourceSpec(nuclide: .cs137, strength: 0.50, placement: .wall),
                                    SourceSpec(nuclide: .cs137, strength: 0.05, placement: .wall)], containers: other))
        cells.append(Cell(group: .multi, name: "2 sources, opposite faces, +0.30 and +0.30",
                          sources: [SourceSpec(nuclide: .cs137, strength: 0.30, placement: .wall),
                                    SourceSpec(nuclide: .co60, strength: 0.30, placement: .wall, sameFace: false)], containers: other))
        cells.append(Cell(group: .multi, name: "3 sources, +0.50, +0.25 same face, +0.10 opposite",
                          sources: [SourceSpec(nuclide: .cs137, strength: 0.50, placement: .wall),
                                    SourceSpec(nuclide: .cs137, strength: 0.25, placement: .wall),
                                    SourceSpec(nuclide: .co60, strength: 0.10, placement: .wall, sameFace: false)], containers: other))
        for factor in [0.85, 1.15] {
            for strength in [0.25, 0.30] {
                var response = EnergyResponse()
                response.byNuclide[Nuclide.co60.rawValue] = factor
                cells.append(Cell(group: .response, name: String(format: "Co-60 true +%.2f, probe reads ×%.2f", strength, factor),
                                  sources: [SourceSpec(nuclide: .co60, strength: strength, placement: .wall)], response: response, containers: other))
            }
        }
        cells.append(Cell(group: .neighbour, name: "clean, +0.05 from a source in the next container", neighbour: 0.05, containers: other))
        return cells
    }
}
