// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "IterExtract",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "IterExtract", targets: ["IterExtract"]),
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
    ],
    targets: [
        .target(name: "IterExtract"),
        .systemLibrary(
            name: "CVerbs",
            pkgConfig: "libibverbs",
            providers: [.apt(["libibverbs-dev", "librdmacm-dev"])]
        ),
    ],
    swiftLanguageModes: [.v6]
)
