// swift-tools-version: 6.0
// libFuzzer harnesses for every decoder that takes outside input. Build and run them
// with scripts/fuzz.sh (it passes -sanitize=fuzzer and links with lld).
import PackageDescription


let package = Package(
    name: "Fuzz",
    platforms: [.macOS(.v14)],
    dependencies: [.package(name: "RadiationInspectionRobot", path: "..")],
    targets: [
        .executableTarget(
            name: "FuzzDriver",
            dependencies: [.product(name: "FuzzTargets", package: "RadiationInspectionRobot")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
