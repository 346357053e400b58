import Foundation
import PropertyBased

@testable import ShuttleModel

/// Draws values from one seed taken from the property checker's generator,
/// so that composite values (configs, event sequences) are built in plain code
/// and still reproduce from the checker's seed.
struct Draw {
    var random: SeededGenerator

    init(_ rng: inout any SeededRandomNumberGenerator) {
        random = SeededGenerator(seed: rng.next())
    }

    init(seed: UInt64) {
        random = SeededGenerator(seed: seed)
    }

    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &random) }

    mutating func chance(_ probability: Double) -> Bool { Double.random(in: 0..<1, using: &random) < probability }

    mutating func bool() -> Bool { chance(0.5) }

    mutating func element<T>(_ items: [T]) -> T { items[int(0...(items.count - 1))] }

    mutating func shuffled<T>(_ items: [T]) -> [T] { items.shuffled(using: &random) }

    /// `count` distinct indices of `0..<n`, in random order.
    mutating func distinctIndices(_ count: Int, of n: Int) -> [Int] {
        Array(shuffled(Array(0..<n)).prefix(count))
    }

    mutating func word(_ length: ClosedRange<Int>, from alphabet: String = "abcdefghijklmnopqrstuvwxyz0123456789")
        -> String
    {
        let letters = Array(alphabet)
        return String((0..<int(length)).map { _ in element(letters) })
    }
}

/// A generator that builds its value with a `Draw`.
func generator<T: Sendable>(_ build: @escaping @Sendable (inout Draw) -> T) -> Generator<T, Shrink.None<T>> {
    Generator(run: { rng in
        var draw = Draw(&rng)
        return build(&draw)
    })
}

/// Config generators: arbitrary ones (any field value, for coding), valid
/// ones (pass validation), and full ones (every field set non-zero and
/// non-empty, so that a merge replaces all of them).
enum ConfigGen {
    static let tcpNetworks = ["", "tcp", "tcp4", "tcp6"]
    static let udpNetworks = ["udp", "udp4", "udp6"]
    static let balances = ["", "RR", "LC", "P2C", "HASH"]
    static let statusCodes = [400, 403, 404, 500, 502, 503, 504]

    // MARK: Arbitrary values (not necessarily valid)

    static func arbitraryString(_ d: inout Draw) -> String {
        switch d.int(0...5) {
        case 0: return ""
        case 1: return d.word(1...8)
        case 2:
            return d.element(["é", "日本", "🚀", "\"", "\\", "/", "\n", "\t", "\u{0}", "a b", "{}", "[1]"]) + d.word(0...3)
        case 3: return "\(d.word(1...6)).example.com:\(d.int(0...70000))"
        case 4: return d.word(1...4, from: "AZaz09_-./:*?#%[] ")
        default: return String(repeating: d.word(1...3), count: d.int(1...20))
        }
    }

    static func arbitraryInt(_ d: inout Draw) -> Int {
        switch d.int(0...5) {
        case 0: return 0
        case 1: return d.element([1, -1, Int.max, Int.min, 65535, 1 << 53])
        default: return d.int(-1_000_000...1_000_000)
        }
    }

    static func arbitraryBackend(_ d: inout Draw, name: String) -> BackendConfig {
        BackendConfig(
            name: name, address: arbitraryString(&d), network: d.chance(0.3) ? "" : arbitraryString(&d),
            checkAddress: arbitraryString(&d), weight: arbitraryInt(&d))
    }

    static func arbitraryService(_ d: inout Draw, name: String) -> ServiceConfig {
        var pages: [String: [Int]] = [:]
        for _ in 0..<d.int(0...3) {
            pages[arbitraryString(&d)] = (0..<d.int(0...3)).map { _ in arbitraryInt(&d) }
        }
        let backendNames = uniqueNames(&d, count: d.int(0...4)) { arbitraryString(&$0) }
        return ServiceConfig(
            name: name, address: arbitraryString(&d), network: d.chance(0.3) ? "" : arbitraryString(&d),
            balance: d.chance(0.3) ? "" : arbitraryString(&d), checkInterval: arbitraryInt(&d), fall: arbitraryInt(&d),
            rise: arbitraryInt(&d), clientTimeout: arbitraryInt(&d), serverTimeout: arbitraryInt(&d),
            connectTimeout: arbitraryInt(&d), httpsRedirect: d.bool(),
            virtualHosts: (0..<d.int(0...3)).map { _ in arbitraryString(&d) }, errorPages: pages,
            backends: backendNames.map { arbitraryBackend(&d, name: $0) }, maintenanceMode: d.bool())
    }

    /// Any field values at all; service names unique, backend names unique
    /// within their service (sorting by name must give one canonical order).
    static func arbitraryConfig(_ d: inout Draw) -> Config {
        let names = uniqueNames(&d, count: d.int(0...4)) { arbitraryString(&$0) }
        return Config(
            balance: d.chance(0.3) ? "" : arbitraryString(&d), checkInterval: arbitraryInt(&d), fall: arbitraryInt(&d),
            rise: arbitraryInt(&d), clientTimeout: arbitraryInt(&d), serverTimeout: arbitraryInt(&d),
            connectTimeout: arbitraryInt(&d), httpsRedirect: d.bool(),
            services: names.map { arbitraryService(&d, name: $0) })
    }

    static func uniqueNames(_ d: inout Draw, count: Int, _ make: (inout Draw) -> String) -> [String] {
        var names: [String] = []
        var seen = Set<String>()
        while names.count < count {
            var name = make(&d)
            if seen.contains(name) { name += "-\(names.count)" }
            if seen.insert(name).inserted { names.append(name) }
        }
        return names
    }

    // MARK: Valid values

    static func validName(_ d: inout Draw) -> String {
        d.word(1...1, from: "abcdefghijklmnopqrstuvwxyz") + d.word(0...6, from: "abcdefghijklmnopqrstuvwxyz0123456789-_.")
    }

    /// A listen address on `port` (ports are unique per service, so valid
    /// configs never put two services on one address).
    static func listenAddress(_ d: inout Draw, port: Int) -> String {
        d.element(["127.0.0.1:\(port)", ":\(port)", "[::1]:\(port)", "localhost:\(port)", "0.0.0.0:\(port)"])
    }

    static func backendAddress(_ d: inout Draw) -> String {
        switch d.int(0...3) {
        case 0: return "10.\(d.int(0...255)).\(d.int(0...255)).\(d.int(1...254)):\(d.int(1...65535))"
        case 1: return "\(d.word(1...6, from: "abcdefghij")).internal:\(d.int(1...65535))"
        case 2: return "[fe80::\(String(d.int(1...0xffff), radix: 16))]:\(d.int(1...65535))"
        // Not in the services' port range: a backend at its own service's address is a loop.
        default: return "127.0.0.1:\(d.int(2000...65535))"
        }
    }

    static func virtualHost(_ d: inout Draw) -> String {
        let label = d.word(1...8, from: "abcdefghijklmnopqrstuvwxyz0123456789")
        let base = "\(label).\(d.element(["example.com", "Example.ORG", "test"]))"
        return d.chance(0.25) ? "*." + base : base
    }

    static func errorPages(_ d: inout Draw, count: ClosedRange<Int>) -> [String: [Int]] {
        var pages: [String: [Int]] = [:]
        for _ in 0..<d.int(count) {
            let url = "\(d.element(["http", "https"]))://errors.example.com/\(d.word(1...8)).html"
            pages[url] = Array(d.shuffled(statusCodes).prefix(d.int(1...3)))
        }
        return pages
    }

    static func validBackend(_ d: inout Draw, name: String, udp: Bool) -> BackendConfig {
        BackendConfig(
            name: name, address: backendAddress(&d), network: d.element(udp ? udpNetworks : tcpNetworks),
            checkAddress: d.bool() ? "" : "127.0.0.1:\(d.int(1...65535))", weight: d.int(0...10))
    }

    static func validService(_ d: inout Draw, name: String, port: Int) -> ServiceConfig {
        let udp = d.chance(0.2)
        let backendNames = uniqueNames(&d, count: d.int(0...4)) { validName(&$0) }
        return ServiceConfig(
            name: name, address: listenAddress(&d, port: port), network: d.element(udp ? udpNetworks : tcpNetworks),
            balance: d.element(balances), checkInterval: d.int(0...60000), fall: d.int(0...5), rise: d.int(0...5),
            clientTimeout: d.int(0...30000), serverTimeout: d.int(0...30000), connectTimeout: d.int(0...30000),
            httpsRedirect: d.bool(), virtualHosts: (0..<d.int(0...3)).map { _ in virtualHost(&d) },
            errorPages: errorPages(&d, count: 0...2),
            backends: backendNames.map { validBackend(&d, name: $0, udp: udp) }, maintenanceMode: d.bool())
    }

    /// Distinct ports for `count` services.
    static func ports(_ d: inout Draw, count: Int) -> [Int] {
        Array(d.shuffled(Array(1000...1999)).prefix(count))
    }

    /// A config that passes validation.
    static func validConfig(_ d: inout Draw, services count: ClosedRange<Int> = 0...5) -> Config {
        let n = d.int(count)
        let names = uniqueNames(&d, count: n) { validName(&$0) }
        let ports = ports(&d, count: n)
        return Config(
            balance: d.element(balances), checkInterval: d.int(0...60000), fall: d.int(0...5), rise: d.int(0...5),
            clientTimeout: d.int(0...30000), serverTimeout: d.int(0...30000), connectTimeout: d.int(0...30000),
            httpsRedirect: d.bool(), services: zip(names, ports).map { validService(&d, name: $0, port: $1) })
    }

    // MARK: Full values (every field set)

    static func fullService(_ d: inout Draw, name: String, port: Int) -> ServiceConfig {
        let udp = d.chance(0.2)
        let backendNames = uniqueNames(&d, count: d.int(1...4)) { validName(&$0) }
        return ServiceConfig(
            name: name, address: listenAddress(&d, port: port),
            network: d.element(udp ? udpNetworks : Array(tcpNetworks.dropFirst())),
            balance: d.element(Array(balances.dropFirst())), checkInterval: d.int(1...60000), fall: d.int(1...5),
            rise: d.int(1...5), clientTimeout: d.int(1...30000), serverTimeout: d.int(1...30000),
            connectTimeout: d.int(1...30000), httpsRedirect: d.bool(),
            virtualHosts: (0..<d.int(1...3)).map { _ in virtualHost(&d) }, errorPages: errorPages(&d, count: 1...2),
            backends: backendNames.map { name in
                var backend = validBackend(&d, name: name, udp: udp)
                backend.weight = d.int(1...10)
                return backend
            }, maintenanceMode: d.bool())
    }

    /// A valid config whose globals and services set every field non-zero
    /// and non-empty, with services of exactly these names.
    static func fullConfig(_ d: inout Draw, names: [String]) -> Config {
        let ports = ports(&d, count: names.count)
        return Config(
            balance: d.element(Array(balances.dropFirst())), checkInterval: d.int(1...60000), fall: d.int(1...5),
            rise: d.int(1...5), clientTimeout: d.int(1...30000), serverTimeout: d.int(1...30000),
            connectTimeout: d.int(1...30000), httpsRedirect: d.bool(),
            services: zip(names, ports).map { fullService(&d, name: $0, port: $1) })
    }
}

extension ConfigGen {
    /// Arbitrary configs.
    static var arbitrary: Generator<Config, Shrink.None<Config>> { generator { arbitraryConfig(&$0) } }

    /// Valid configs.
    static var valid: Generator<Config, Shrink.None<Config>> { generator { validConfig(&$0) } }

    /// A valid config A and a full valid config B that names every service of A.
    static var validThenFull: Generator<Pair<Config, Config>, Shrink.None<Pair<Config, Config>>> {
        generator { d in
            let a = validConfig(&d, services: 0...4)
            var names = a.services.map(\.name)
            names += uniqueNames(&d, count: d.int(0...2)) { validName(&$0) + "-new" }
            return Pair(a, fullConfig(&d, names: d.shuffled(Array(Set(names)))))
        }
    }
}

/// Two values from one generator (one seed), for properties about pairs.
struct Pair<A: Sendable, B: Sendable>: Sendable {
    var first: A
    var second: B

    init(_ first: A, _ second: B) {
        self.first = first
        self.second = second
    }
}

/// Fixture files of the package, found from this source file's path.
enum Fixture {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // ShuttleModelTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // package root
        .appendingPathComponent("Fixtures")

    static func data(_ name: String) throws -> Data {
        try Data(contentsOf: directory.appendingPathComponent(name))
    }
}
