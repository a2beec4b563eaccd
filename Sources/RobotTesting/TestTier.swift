import Foundation

/// Which tier of the test suite this run is.
///
/// - The **fast tier** (unit and virtual-time tests) is what a plain `swift test` runs,
///   in parallel, in about a minute.
/// - The **HIL tier** runs real links (ptys, TCP), real-time loops and whole daemons;
///   it needs the cores to itself. `scripts/test.sh` runs it one test at a time with
///   `ROBOT_TEST_TIER=hil`.
///
/// Suites say which tier they belong to with `.enabled(if: TestTier.fast)` or
/// `.enabled(if: TestTier.hil)`, so each test runs in exactly one tier.
public enum TestTier {
    public static var isHIL: Bool { ProcessInfo.processInfo.environment["ROBOT_TEST_TIER"] == "hil" }
    /// True in the fast tier (the default).
    public static var fast: Bool { !isHIL }
    /// True in the HIL tier.
    public static var hil: Bool { isHIL }
}
