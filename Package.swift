// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "RadiationInspectionRobot",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "FirmwareProtocol", targets: ["FirmwareProtocol"]),
        .library(name: "RobotIO", targets: ["RobotIO"]),
        .library(name: "RobotControl", targets: ["RobotControl"]),
        .library(name: "Inspection", targets: ["Inspection"]),
        .library(name: "RobotSimulator", targets: ["RobotSimulator"]),
        .library(name: "RobotTesting", targets: ["RobotTesting"]),
        .library(name: "CommandServer", targets: ["CommandServer"]),
        .library(name: "RobotAPI", targets: ["RobotAPI"]),
        .library(name: "FuzzTargets", targets: ["FuzzTargets"]),
        .executable(name: "robotctl", targets: ["robotctl"]),
        .executable(name: "robotd", targets: ["robotd"]),
        .executable(name: "robot-sim", targets: ["robot-sim"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
        .package(url: "https://github.com/hummingbird-project/swift-websocket", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.0"),
        // Already in the graph through Hummingbird; named for NIOHTTPTypes (the connection guard).
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
    ],
    targets: [
        // C libraries from Debian, found through pkg-config.
        .systemLibrary(
            name: "CModbus",
            pkgConfig: "libmodbus",
            providers: [.apt(["libmodbus-dev"])]
        ),
        .systemLibrary(
            name: "CSerialPort",
            pkgConfig: "libserialport",
            providers: [.apt(["libserialport-dev"])]
        ),

        // Strict YAML reading with line numbers, for configuration, scenario and rig files.
        .target(
            name: "StrictYAML",
            dependencies: [.product(name: "Yams", package: "Yams")]
        ),

        // The wire contract, in pure Swift. Shared by the controller and the simulator.
        .target(name: "FirmwareProtocol"),

        // Owns the libmodbus and libserialport handles: buses, schedules, discovery.
        .target(
            name: "RobotIO",
            dependencies: [
                "FirmwareProtocol", "CModbus", "CSerialPort",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),

        // The real-time control loop, drive state machines and safety supervisor.
        .target(
            name: "RobotControl",
            dependencies: [
                "RobotIO", "FirmwareProtocol",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),

        // The SN/T 0570-2007 procedure: profiles, plans, statistics, verdicts, scans.
        .target(
            name: "Inspection",
            dependencies: ["RobotControl", "StrictYAML"]
        ),

        // Persistence: scans, readings (hash-chained, append-only), verdicts, audit. GRDB on SQLite (WAL).
        .target(
            name: "InspectionStore",
            dependencies: [
                "RobotAPI",
                "Inspection", "RobotControl",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),

        // The officers' API: REST + WebSocket telemetry, users, lease and deadman, the phone UI.
        .target(
            name: "CommandServer",
            dependencies: [
                "RobotAPI",
                "RobotControl", "RobotIO", "Inspection", "InspectionStore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                "ProcessMemory",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            resources: [.copy("PhoneUI")]
        ),

        // The API's wire types, shared by the server, the client and the tests.
        .target(name: "RobotAPI"),
        // A client of the command server's API, for robotctl, rigs, tests and benchmarks.
        .target(
            name: "CommandClient",
            dependencies: [
                "RobotAPI",
                .product(name: "WSClient", package: "swift-websocket"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // Every decoder that takes outside input, for the fuzzers in Fuzz/ and their replay test.
        .target(
            name: "FuzzTargets",
            dependencies: ["FirmwareProtocol", "Inspection", "RobotSimulator", "CommandServer"]
        ),

        // robotd's parts: configuration file, services, the simulator child process.
        .target(
            name: "RobotDaemon",
            dependencies: [
                "RobotControl", "RobotIO", "FirmwareProtocol", "StrictYAML", "Inspection", "InspectionStore", "CommandServer",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "robotd",
            dependencies: [
                "RobotDaemon", "Inspection", "CommandServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        .executableTarget(
            name: "robotctl",
            dependencies: [
                "RobotIO", "FirmwareProtocol", "Inspection", "InspectionStore", "RobotControl", "RobotDaemon", "CommandServer", "CommandClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // Hardware-in-the-loop rig: the firmware simulator. Depends only on the protocol.
        .target(
            name: "RobotSimulator",
            dependencies: ["FirmwareProtocol", "CModbus", "StrictYAML"],
            path: "hil/Sources/RobotSimulator"
        ),
        // Test support, like HummingbirdTesting: the robot in virtual time, test tiers.
        .target(
            name: "RobotTesting",
            dependencies: ["Inspection", "RobotControl", "RobotIO", "RobotSimulator", "FirmwareProtocol"]
        ),
        .executableTarget(
            name: "robot-sim",
            dependencies: [
                "RobotSimulator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "hil/Sources/robot-sim"
        ),

        // Reliability campaign tools the test command runs: the fault soak and the store
        // memory bench.
        .executableTarget(
            name: "FaultSoak",
            dependencies: ["BenchmarkSupport", "RobotTesting", "Inspection", "InspectionStore", "RobotControl", "RobotIO", "RobotSimulator", "FirmwareProtocol", "ProcessMemory"],
            path: "Reliability/FaultSoak"
        ),
        // The benchmarks' and the soak's shared command line (`--seed 7` means the same in each).
        .target(
            name: "BenchmarkSupport",
            path: "Benchmarks/BenchmarkSupport"
        ),
        .executableTarget(
            name: "StoreMemoryBench",
            dependencies: ["BenchmarkSupport", "Inspection", "InspectionStore", "ProcessMemory"],
            path: "Benchmarks/StoreMemoryBench"
        ),
        // The process's memory for the soak and the load bench: resident set split into
        // anonymous and file pages, heap in use (mallinfo2) and SQLite's own count, so a
        // leak can be told from memory kept for reuse.
        .target(
            name: "CProcessMemory",
            path: "Reliability/CProcessMemory",
            linkerSettings: [.linkedLibrary("sqlite3")]
        ),
        .target(
            name: "ProcessMemory",
            dependencies: ["CProcessMemory"],
            path: "Reliability/ProcessMemory"
        ),


        .testTarget(
            name: "FirmwareProtocolTests",
            dependencies: ["RobotTesting", "FirmwareProtocol"]
        ),
        .testTarget(
            name: "InspectionTests",
            dependencies: ["RobotTesting", "Inspection", "InspectionStore", "RobotControl", "RobotIO", "RobotSimulator", "StrictYAML",
                           .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .testTarget(
            name: "FuzzCorpusTests",
            dependencies: ["RobotTesting", "FuzzTargets"]
        ),
        .testTarget(
            name: "CommandServerTests",
            dependencies: ["RobotTesting", "CommandServer", "CommandClient", "RobotAPI", "RobotControl", "RobotIO", "Inspection", "InspectionStore", "RobotSimulator", "FirmwareProtocol",
                           .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(
            name: "RobotDaemonTests",
            dependencies: ["RobotTesting", "RobotDaemon", "RobotControl", "InspectionStore", "CommandServer", "CommandClient"]
        ),
        .testTarget(
            name: "RobotControlTests",
            dependencies: ["RobotTesting", "RobotControl", "RobotIO", "RobotSimulator", "FirmwareProtocol"]
        ),
        .testTarget(
            name: "HILTests",
            dependencies: ["RobotTesting", "RobotIO", "RobotSimulator", "FirmwareProtocol"]
        ),
        .testTarget(
            name: "RobotIOTests",
            dependencies: ["RobotTesting", "RobotIO", "RobotSimulator", "FirmwareProtocol", "CModbus"]
        ),
    ],
    swiftLanguageModes: [.v6]
)

// The benchmarks are built only when asked for (`ROBOT_BENCHMARKS=1`, as the commands in
// docs/performance.md do), so neither a plain `swift build` nor the test command spends
// time on them.
if Context.environment["ROBOT_BENCHMARKS"] == "1" {
    package.targets += [
        // Benchmarks: our bus layer against a plain C libmodbus loop.
        .target(
            name: "CModbusBaseline",
            dependencies: ["CModbus"],
            path: "Benchmarks/CModbusBaseline"
        ),
        .executableTarget(
            name: "BusBench",
            dependencies: ["BenchmarkSupport", "RobotIO", "RobotSimulator", "CModbusBaseline", "FirmwareProtocol"],
            path: "Benchmarks/BusBench"
        ),

        .target(
            name: "MallocCounter",
            path: "Benchmarks/MallocCounter"
        ),
        .executableTarget(
            name: "LoopBench",
            dependencies: ["BenchmarkSupport", "RobotTesting", "RobotControl", "RobotIO", "RobotSimulator", "FirmwareProtocol", "MallocCounter",
                           .product(name: "Histogram", package: "hdrhistogram-swift")],
            path: "Benchmarks/LoopBench"
        ),

        .executableTarget(
            name: "ServerBench",
            dependencies: ["BenchmarkSupport", "RobotTesting", "CommandServer", "CommandClient", "InspectionStore", "RobotControl", "RobotIO", "RobotSimulator", "ProcessMemory",
                           .product(name: "Histogram", package: "hdrhistogram-swift"),
                           .product(name: "WSClient", package: "swift-websocket"),
                           .product(name: "Logging", package: "swift-log")],
            path: "Benchmarks/ServerBench"
        ),


        .executableTarget(
            name: "VerdictBench",
            dependencies: ["BenchmarkSupport", "Inspection", "RobotSimulator"],
            path: "Benchmarks/VerdictBench"
        ),
        .executableTarget(
            name: "ScanBench",
            dependencies: ["BenchmarkSupport", "RobotTesting", "Inspection", "RobotControl", "RobotIO", "RobotSimulator"],
            path: "Benchmarks/ScanBench"
        ),
        .executableTarget(
            name: "RegistrationBench",
            dependencies: ["BenchmarkSupport", "RobotTesting", "Inspection", "RobotControl", "RobotSimulator"],
            path: "Benchmarks/RegistrationBench"
        ),
        .executableTarget(
            name: "EncounterBench",
            dependencies: ["BenchmarkSupport", "RobotTesting", "RobotControl", "RobotSimulator"],
            path: "Benchmarks/EncounterBench"
        ),
        .executableTarget(
            name: "BatteryBench",
            dependencies: ["BenchmarkSupport", "RobotTesting", "Inspection", "RobotControl", "RobotSimulator"],
            path: "Benchmarks/BatteryBench"
        ),
    ]
}
