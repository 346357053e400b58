// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "shuttle",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "shuttle", targets: ["shuttle"]),
        .library(name: "ShuttleModel", targets: ["ShuttleModel"]),
        .library(name: "ShuttleHTTPWire", targets: ["ShuttleHTTPWire"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
    ],
    targets: [
        // The pure, deterministic heart: config, validation, merge, registry,
        // balancers, health. Standard library and Foundation only.
        .target(name: "ShuttleModel"),
        // HTTP/1.1 messages read and written as bytes, in place: no I/O, no
        // allocation per message. Standard library (and libc's memchr) only.
        .target(name: "ShuttleHTTPWire"),
        // The Linux calls of the splice relay that Glibc's Swift module does
        // not show (splice, pipe2, accept4, epoll, eventfd).
        .target(name: "CShuttleSplice"),
        // SwiftNIO: sockets, the admin API, files. Carries out the model's actions.
        .target(
            name: "ShuttleRuntime",
            dependencies: [
                "ShuttleModel", "ShuttleHTTPWire", "CShuttleSplice",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // Discrete-event simulation of the network driving the same model.
        .target(name: "ShuttleSim", dependencies: ["ShuttleModel"]),
        .executableTarget(
            name: "shuttle",
            dependencies: [
                "ShuttleModel", "ShuttleRuntime", "ShuttleSim",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            // A release daemon carries the Swift runtime and
            // FoundationEssentials inside it: no shared Swift libraries to
            // map (2 MiB less resident), direct calls into the runtime
            // (retain/release are a seventh of an HTTP request's CPU), and a
            // binary that runs on a machine without the toolchain. The
            // static FoundationEssentials needs its two C helper archives
            // named. Debug builds and the tests keep the shared libraries.
            linkerSettings: [
                .unsafeFlags(
                    ["-static-stdlib", "-l_FoundationCShims", "-l_FoundationCollections"],
                    .when(platforms: [.linux], configuration: .release))
            ]
        ),
        .testTarget(
            name: "ShuttleModelTests",
            dependencies: [
                "ShuttleModel",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        // Backends, clients and helpers shared by the loopback and end-to-end tests.
        .target(
            name: "ShuttleTestSupport",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Tests/ShuttleTestSupport"
        ),
        .testTarget(
            name: "ShuttleRuntimeTests",
            dependencies: [
                "ShuttleModel", "ShuttleRuntime", "ShuttleHTTPWire", "ShuttleTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                // swift-certificates is the reference for the names the
                // daemon reads from certificates with swift-asn1.
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        // The wire format, checked against NIOHTTP1's reading of the same bytes.
        .testTarget(
            name: "ShuttleHTTPWireTests",
            dependencies: [
                "ShuttleHTTPWire", "ShuttleTestSupport",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        .testTarget(
            name: "ShuttleSimTests",
            dependencies: [
                "ShuttleSim", "ShuttleModel",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        .testTarget(
            name: "ShuttleTests",
            dependencies: [
                "shuttle", "ShuttleModel", "ShuttleTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
