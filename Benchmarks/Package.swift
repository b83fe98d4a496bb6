// swift-tools-version: 6.1
import Foundation
import PackageDescription

// The parent package is referenced by path; its identity is its directory's name,
// which depends on where the repository was cloned.
let parentIdentity = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().lastPathComponent.lowercased()

let package = Package(
    name: "IterExtractBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        // MallocInterposer counts heap allocations; the runtime interposer is not wanted.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // The hand-written C lower bound, compiled with -O2.
        .target(name: "CBaseline", cSettings: [.unsafeFlags(["-O2"])]),
        // The parent's TestKit (iterator memory of every kind, the KUnit buffer), through a
        // link: it is no product of the parent, so that it stays out of the library API, and
        // a target name must be unique across the package graph, hence another name here.
        .target(name: "BenchmarkTestKit", dependencies: [.product(name: "IterExtract", package: parentIdentity)]),
        .executableTarget(
            name: "ExtractionBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "IterExtract", package: parentIdentity),
                .product(name: "ScatterList", package: parentIdentity),
                .product(name: "RDMASGE", package: parentIdentity),
                .product(name: "SoftVerbs", package: parentIdentity),
                .product(name: "SMBDirect", package: parentIdentity),
                "CBaseline",
                "BenchmarkTestKit",
            ],
            path: "Benchmarks/ExtractionBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
