import Foundation
import FuzzTargets
import RobotTesting
import Testing

/// The short form of the fuzzing campaign, in the normal test run: every seed and every
/// input the fuzzers kept (Fuzz/corpus/TARGET), then deterministic mutations of them,
/// through the same harnesses. A trap here fails the whole run, as it would the fuzzer.
/// The coverage-guided runs are `scripts/fuzz.sh SECONDS` (see docs/reliability.md).
@Suite(.enabled(if: TestTier.fast), .timeLimit(.minutes(5))) struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz/corpus")

    /// SplitMix64: the same mutations on every run.
    struct Mutator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }

        mutating func mutate(_ input: [UInt8]) -> [UInt8] {
            var bytes = input
            for _ in 0..<Int.random(in: 1...8, using: &self) {
                switch Int.random(in: 0..<5, using: &self) {
                case 0 where !bytes.isEmpty: bytes[Int.random(in: 0..<bytes.count, using: &self)] ^= UInt8.random(in: 1...255, using: &self)
                case 1: bytes.insert(UInt8.random(in: 0...255, using: &self), at: Int.random(in: 0...bytes.count, using: &self))
                case 2 where !bytes.isEmpty: bytes.remove(at: Int.random(in: 0..<bytes.count, using: &self))
                case 3 where bytes.count > 2:
                    let cut = Int.random(in: 0..<bytes.count, using: &self)
                    bytes = Array(bytes[..<cut])
                default:
                    let interesting: [[UInt8]] = [Array("null".utf8), Array("1e999".utf8), Array("-0".utf8), [0xff, 0xfe], Array(":\n- ".utf8),
                                                   Array("{}".utf8), Array("&a *a".utf8), Array("\u{0}".utf8)]
                    bytes.insert(contentsOf: interesting[Int.random(in: 0..<interesting.count, using: &self)],
                                 at: Int.random(in: 0...bytes.count, using: &self))
                }
            }
            return bytes
        }
    }

    @Test(arguments: FuzzTargets.names)
    func theCorpusAndItsMutationsAreRefusedCleanly(target: String) throws {
        let directory = Self.corpus.appendingPathComponent(target)
        let files = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
        #expect(!files.isEmpty, "no seed corpus for \(target)")
        var mutator = Mutator(state: 0x5EED_0000 &+ UInt64(target.utf8.count))
        var inputs = 0
        for file in files {
            let seed = Array(try Data(contentsOf: file))
            FuzzTargets.run(target, seed)
            inputs += 1
            for _ in 0..<300 {
                FuzzTargets.run(target, mutator.mutate(seed))
                inputs += 1
            }
        }
        // What this shows is that no seed and no mutation traps: a trap (a force unwrap, an
        // index out of range, an overflow) ends the test process and fails the run.
        #expect(inputs == files.count * 301, "every seed and every mutation was run")
    }
}
