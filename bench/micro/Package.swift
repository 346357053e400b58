// swift-tools-version: 6.1
// Micro-benchmarks of the model's hot path and of the HTTP wire format, kept out of the main package so
// that its build and CI do not carry the benchmark framework.
//
//     cd bench/micro && swift package benchmark
import Foundation
import PackageDescription

// A path dependency is known by its folder's name, whatever the clone is called.
let shuttle = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent().deletingLastPathComponent()

let package = Package(
    name: "shuttle-micro",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(path: shuttle.path),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/ordo-one/benchmark.git", exact: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "ModelHotPath",
            dependencies: [
                .product(name: "ShuttleModel", package: shuttle.lastPathComponent),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/ModelHotPath",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "HTTPWire",
            dependencies: [
                .product(name: "ShuttleHTTPWire", package: shuttle.lastPathComponent),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/HTTPWire",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
