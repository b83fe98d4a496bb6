// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "IterExtract",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "IterExtract", targets: ["IterExtract"]),
        .library(name: "ScatterList", targets: ["ScatterList"]),
        .library(name: "Verbs", targets: ["Verbs"]),
        .library(name: "SoftVerbs", targets: ["SoftVerbs"]),
        .library(name: "IBVerbs", targets: ["IBVerbs"]),
        .library(name: "RDMASGE", targets: ["RDMASGE"]),
        .executable(name: "iterextract", targets: ["IterExtractCLI"]),
        .executable(name: "soft-verbs-loopback", targets: ["SoftVerbsLoopback"]),
        .executable(name: "rdma-e2e", targets: ["RDMAEndToEnd"]),
        .library(name: "SMBDirect", targets: ["SMBDirect"]),
        .executable(name: "smbdirect-send", targets: ["SMBDirectSend"]),
        .executable(name: "rdma-copy", targets: ["RDMACopy"]),
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
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // A value behind a pthread mutex, shared by the modules (package access only).
        .target(name: "Locking"),
        .target(name: "IterExtract", dependencies: ["Locking"]),
        .target(
            name: "ScatterList",
            dependencies: [
                "IterExtract",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The verbs vocabulary: SGEs, access flags, work requests and completions,
        // errors, and the five protocols every backend implements.
        // epoll(7) and eventfd(2): headers only, from the C library.
        .systemLibrary(name: "CEventPoll"),
        .target(name: "Verbs", dependencies: ["Locking", "CEventPoll"]),
        // The in-process backend, exact to the statuses a device reports.
        .target(name: "SoftVerbs", dependencies: ["Verbs", "Locking", "CEventPoll"]),
        // libibverbs and librdmacm, with the RDMA trait (empty without it): the only
        // importer of CVerbs.
        .target(
            name: "IBVerbs",
            dependencies: ["Verbs", "Locking", .target(name: "CVerbs", condition: .when(traits: ["RDMA"]))],
            // Debug builds let tests stand in for libibverbs and librdmacm (IBVerbsMockingDriver).
            swiftSettings: [.define("IBVERBS_MOCKING", .when(configuration: .debug))]
        ),
        // userfaultfd(2): the MR cache's memory monitor (RDMASGE only).
        .systemLibrary(name: "CUserfaultfd"),
        .target(name: "RDMASGE", dependencies: ["IterExtract", "Verbs", "Locking", "CUserfaultfd"]),
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
                "SoftVerbs",
                "TestKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Examples/IterExtractCLI"
        ),
        .executableTarget(
            name: "SoftVerbsLoopback",
            dependencies: ["IterExtract", "RDMASGE", "SoftVerbs"],
            path: "Examples/SoftVerbsLoopback"
        ),
        .executableTarget(
            name: "RDMAEndToEnd",
            dependencies: ["IterExtract", "ScatterList", "RDMASGE", "SoftVerbs", "IBVerbs", "TestKit"],
            path: "Examples/RDMAEndToEnd"
        ),
        .target(
            name: "SMBDirect",
            dependencies: [
                "IterExtract", "RDMASGE", "ScatterList",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "SMBDirectSend",
            dependencies: [
                "IterExtract", "RDMASGE", "SoftVerbs", "IBVerbs", "SMBDirect", "TestKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Examples/SMBDirectSend"
        ),
        // Two programs copying a file by RDMA WRITE and READ through the public API.
        .executableTarget(
            name: "RDMACopy",
            dependencies: [
                "IterExtract", "RDMASGE", "SoftVerbs", "IBVerbs", "Verbs", "TestKit",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Examples/RDMACopy"
        ),
        // Shared by the tests, the examples and the benchmarks (another package: through a
        // link, as BenchmarkTestKit): the kernel's KUnit fixtures, iterator memory of every
        // kind and the reference model. Not a product, so none of it is library API.
        .target(name: "TestKit", dependencies: ["IterExtract"], path: "Tests/TestKit"),
        .testTarget(name: "IterExtractTests", dependencies: ["IterExtract", "Locking", "TestKit"]),
        .testTarget(name: "ScatterListTests", dependencies: ["ScatterList", "TestKit"]),
        .testTarget(name: "SMBDirectTests", dependencies: ["SMBDirect", "RDMASGE", "SoftVerbs", "SMBDirectSend", "TestKit"]),
        .testTarget(name: "RDMACopyTests", dependencies: ["RDMACopy", "IterExtract", "RDMASGE", "SoftVerbs", "TestKit"]),
        // IBVerbs against a mocked libibverbs and librdmacm (with the RDMA trait; empty without).
        .testTarget(name: "IBVerbsTests", dependencies: ["IBVerbs", "Verbs"]),
        .testTarget(
            name: "RDMASGETests",
            dependencies: [
                "RDMASGE", "ScatterList", "SoftVerbs", "IBVerbs", "Locking", "TestKit",
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
