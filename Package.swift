// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "IterExtract",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "IterExtract", targets: ["IterExtract"]),
        .library(name: "ScatterList", targets: ["ScatterList"]),
        .library(name: "RDMASGE", targets: ["RDMASGE"]),
        .executable(name: "iterextract", targets: ["IterExtractCLI"]),
        .executable(name: "soft-verbs-loopback", targets: ["SoftVerbsLoopback"]),
        .executable(name: "rdma-e2e", targets: ["RDMAEndToEnd"]),
        .library(name: "SMBDirect", targets: ["SMBDirect"]),
        .executable(name: "smbdirect-send", targets: ["SMBDirectSend"]),
    ],
    traits: [
        .trait(
            name: "RDMA",
            description: "Build the libibverbs/librdmacm backend (needs libibverbs-dev and librdmacm-dev)."
        ),
        .default(enabledTraits: []),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        .target(name: "IterExtract"),
        .target(
            name: "ScatterList",
            dependencies: [
                "IterExtract",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "RDMASGE",
            dependencies: [
                "IterExtract",
                .target(name: "CVerbs", condition: .when(traits: ["RDMA"])),
            ]
        ),
        .systemLibrary(
            name: "CVerbs",
            pkgConfig: "libibverbs",
            providers: [.apt(["libibverbs-dev", "librdmacm-dev"])]
        ),
        .executableTarget(
            name: "IterExtractCLI",
            dependencies: [
                "IterExtract",
                "ScatterList",
                "RDMASGE",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Examples/IterExtractCLI"
        ),
        .executableTarget(
            name: "SoftVerbsLoopback",
            dependencies: ["IterExtract", "RDMASGE"],
            path: "Examples/SoftVerbsLoopback"
        ),
        .executableTarget(
            name: "RDMAEndToEnd",
            dependencies: [
                "IterExtract", "ScatterList", "RDMASGE",
                .target(name: "CVerbs", condition: .when(traits: ["RDMA"])),
            ],
            path: "Examples/RDMAEndToEnd"
        ),
        .target(
            name: "SMBDirect",
            dependencies: [
                "IterExtract", "RDMASGE",
                .target(name: "CVerbs", condition: .when(traits: ["RDMA"])),
            ]
        ),
        .executableTarget(
            name: "SMBDirectSend",
            dependencies: [
                "IterExtract", "RDMASGE", "SMBDirect",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Examples/SMBDirectSend"
        ),
        // Shared by the test targets: the kernel's KUnit fixtures and the reference model.
        .target(name: "TestKit", dependencies: ["IterExtract"], path: "Tests/TestKit"),
        .testTarget(name: "IterExtractTests", dependencies: ["IterExtract", "TestKit"]),
        .testTarget(name: "ScatterListTests", dependencies: ["ScatterList", "TestKit"]),
        .testTarget(name: "SMBDirectTests", dependencies: ["SMBDirect", "RDMASGE", "TestKit"]),
        .testTarget(
            name: "RDMASGETests",
            dependencies: [
                "RDMASGE", "ScatterList", "TestKit",
                .target(name: "CVerbs", condition: .when(traits: ["RDMA"])),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
