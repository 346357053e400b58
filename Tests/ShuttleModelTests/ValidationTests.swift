import Foundation
import PropertyBased
import Testing

@testable import ShuttleModel

// MARK: Planted errors

/// The kinds of error planted into valid configs.
enum PlantedKind: CaseIterable, Sendable {
    case badAddress, negativeNumber, unknownBalance, unknownNetwork, duplicateBackendName, nameWithSlash
    case nameWithUnderscore, errorPageCode700, badVirtualHost, backendOfTheOtherTransport, sameAddress
}

/// One planted error and the paths where it may be reported (two for a
/// shared address: either service of the pair).
struct PlantedError: Sendable, CustomStringConvertible {
    var kind: PlantedKind
    var paths: Set<String>
    var description: String { "\(kind) at \(paths.sorted())" }
}

/// A valid config with k errors planted at distinct places: each in its own
/// service (a shared address borrows the address of a service left clean),
/// and maybe one more in the globals.
struct PlantedConfig: Sendable {
    var config: Config
    var planted: [PlantedError]
}

enum Plant {
    static func backendIndex(_ service: inout ServiceConfig, _ d: inout Draw) -> Int {
        if service.backends.isEmpty {
            let udp = Network(rawValue: service.network)?.isDatagram ?? false
            service.backends.append(ConfigGen.validBackend(&d, name: "planted", udp: udp))
        }
        return d.int(0...(service.backends.count - 1))
    }

    static func plant(_ d: inout Draw) -> PlantedConfig {
        let k = d.int(1...4)
        var config = ConfigGen.validConfig(&d, services: (2 * k)...(2 * k + 2))
        let order = d.shuffled(Array(config.services.indices))
        var partners = Array(order.dropFirst(k))
        var planted: [PlantedError] = []

        for i in order.prefix(k) {
            let at = "services[\(i)]"
            var s = config.services[i]
            let kind = d.element(PlantedKind.allCases)
            var paths: Set<String>
            switch kind {
            case .badAddress:
                if d.bool() {
                    s.address = d.element(["nohost", "127.0.0.1", "1.2.3.4:65536", "300.1.1.1:80", "::1:80", "[::1]", "a b:80"])
                    paths = ["\(at).address"]
                } else {
                    let j = backendIndex(&s, &d)
                    s.backends[j].address = d.element(["", ":80", "10.0.0.1:0", "10.0.0.1", "bad host:1", "[zz::1]:80"])
                    paths = ["\(at).backends[\(j)].address"]
                }
            case .negativeNumber:
                let value = -d.int(1...100_000)
                switch d.int(0...6) {
                case 0: s.checkInterval = value; paths = ["\(at).check_interval"]
                case 1: s.fall = value; paths = ["\(at).fall"]
                case 2: s.rise = value; paths = ["\(at).rise"]
                case 3: s.clientTimeout = value; paths = ["\(at).client_timeout"]
                case 4: s.serverTimeout = value; paths = ["\(at).server_timeout"]
                case 5: s.connectTimeout = value; paths = ["\(at).connect_timeout"]
                default:
                    let j = backendIndex(&s, &d)
                    s.backends[j].weight = value
                    paths = ["\(at).backends[\(j)].weight"]
                }
            case .unknownBalance:
                s.balance = d.element(["rr", "WRR", "random", "least"])
                paths = ["\(at).balance"]
            case .unknownNetwork:
                if d.bool() {
                    s.network = d.element(["sctp", "TCP", "unix", "ud"])
                    paths = ["\(at).network"]
                } else {
                    let j = backendIndex(&s, &d)
                    s.backends[j].network = d.element(["ipx", "tc", "UDP"])
                    paths = ["\(at).backends[\(j)].network"]
                }
            case .duplicateBackendName:
                let j = backendIndex(&s, &d)
                var copy = s.backends[j]
                copy.address = "10.9.9.9:\(d.int(1...65535))"
                s.backends.append(copy)
                paths = ["\(at).backends[\(s.backends.count - 1)].name"]
            case .nameWithSlash:
                s.name += "/" + d.word(0...3)
                paths = ["\(at).name"]
            case .nameWithUnderscore:
                if d.bool() {
                    s.name = "_" + s.name
                    paths = ["\(at).name"]
                } else {
                    let j = backendIndex(&s, &d)
                    s.backends[j].name = "_" + s.backends[j].name
                    paths = ["\(at).backends[\(j)].name"]
                }
            case .errorPageCode700:
                s.errorPages["http://errors.example.com/planted.html"] = [404, 700]
                paths = ["\(at).error_pages.http://errors.example.com/planted.html[1]"]
            case .badVirtualHost:
                s.virtualHosts.append(d.element(["bad host", "a..b", "www.*.com", "host:80", "-x.com", ""]))
                paths = ["\(at).virtual_hosts[\(s.virtualHosts.count - 1)]"]
            case .backendOfTheOtherTransport:
                let udp = d.bool()
                s.network = d.element(udp ? ConfigGen.udpNetworks : ConfigGen.tcpNetworks)
                for b in s.backends.indices { s.backends[b].network = udp ? "udp" : "" }
                let j = backendIndex(&s, &d)
                s.backends[j].network = udp ? d.element(["", "tcp", "tcp6"]) : d.element(["udp", "udp4"])
                paths = ["\(at).backends[\(j)].network"]
            case .sameAddress:
                let q = partners.removeFirst()
                let partner = config.services[q]
                s.address = partner.address
                s.network = partner.network
                let udp = Network(rawValue: partner.network)?.isDatagram ?? false
                for b in s.backends.indices { s.backends[b].network = udp ? "udp" : "" }
                paths = ["\(at).address", "services[\(q)].address"]
            }
            config.services[i] = s
            planted.append(PlantedError(kind: kind, paths: paths))
        }

        if d.chance(0.3) {
            if d.bool() {
                config.balance = "FASTEST"
                planted.append(PlantedError(kind: .unknownBalance, paths: ["balance"]))
            } else {
                config.connectTimeout = -1
                planted.append(PlantedError(kind: .negativeNumber, paths: ["connect_timeout"]))
            }
        }
        return PlantedConfig(config: config, planted: planted)
    }
}

// MARK: Arbitrary documents

/// JSON-ish text: documents shaped like configs with values of any type,
/// nesting, odd numbers and strings, sometimes cut or corrupted.
enum JSONish {
    static let globalKeys = ["balance", "check_interval", "fall", "rise", "client_timeout", "server_timeout", "connect_timeout", "https-redirect"]
    static let serviceKeys = [
        "name", "address", "network", "balance", "check_interval", "fall", "rise", "client_timeout", "server_timeout",
        "connect_timeout", "https-redirect", "virtual_hosts", "error_pages", "maintenance_mode",
    ]
    static let backendKeys = ["name", "address", "network", "check_address", "weight"]

    static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    static func number(_ d: inout Draw) -> String {
        d.element([
            "0", "-0", "1", "-1", "2", "5000", "65535", "1.5", "-2.5", "1e3", "1E-2", "9223372036854775807",
            "-9223372036854775808", "9223372036854775808", "99999999999999999999999", "1e400", "0.0",
            String(d.int(-100_000...100_000)),
        ])
    }

    static func string(_ d: inout Draw) -> String {
        switch d.int(0...3) {
        case 0: return quote(ConfigGen.arbitraryString(&d))
        case 1: return quote(d.element(["RR", "LC", "P2C", "HASH", "tcp", "udp", "udp6", "127.0.0.1:80", ":0", "[::1]:8080", "a.example.com", "*.example.com"]))
        case 2: return quote("\(d.word(1...5)):\(d.int(0...70000))")
        default: return "\"\\u00e9\\ud83d\\ude80\\n\""
        }
    }

    static func value(_ d: inout Draw, depth: Int) -> String {
        switch d.int(0...(depth > 0 ? 8 : 5)) {
        case 0: return "null"
        case 1: return d.bool() ? "true" : "false"
        case 2, 3: return number(&d)
        case 4, 5: return string(&d)
        case 6: return "[" + (0..<d.int(0...4)).map { _ in value(&d, depth: depth - 1) }.joined(separator: ",") + "]"
        default:
            let keys = globalKeys + serviceKeys + backendKeys + ["services", "backends", "x", ""]
            return object(&d, keys: keys, depth: depth - 1, nested: [:])
        }
    }

    static func object(_ d: inout Draw, keys: [String], depth: Int, nested: [String: (inout Draw) -> String]) -> String {
        var members: [String] = []
        for _ in 0..<d.int(0...(keys.count + 2)) {
            let key = d.chance(0.9) ? d.element(keys) : ConfigGen.arbitraryString(&d)
            let text = nested[key].map { $0(&d) } ?? value(&d, depth: depth)
            members.append(quote(key) + ":" + text)
        }
        return "{" + members.joined(separator: d.element([",", ", ", ",\n"])) + "}"
    }

    static func array(_ d: inout Draw, _ element: (inout Draw) -> String) -> String {
        d.chance(0.9) ? "[" + (0..<d.int(0...4)).map { _ in element(&d) }.joined(separator: ",") + "]" : value(&d, depth: 1)
    }

    static func document(_ d: inout Draw) -> String {
        let backend: (inout Draw) -> String = { d in
            d.chance(0.9) ? object(&d, keys: backendKeys, depth: 1, nested: [:]) : value(&d, depth: 1)
        }
        let service: (inout Draw) -> String = { d in
            d.chance(0.9)
                ? object(&d, keys: serviceKeys + ["backends"], depth: 1, nested: ["backends": { d in array(&d, backend) }])
                : value(&d, depth: 1)
        }
        var text = object(&d, keys: globalKeys + ["services"], depth: 1, nested: ["services": { d in array(&d, service) }])
        if d.chance(0.15) {
            // Corrupt: cut it short, or drop in a stray character.
            var bytes = Array(text.utf8)
            let at = d.int(0...bytes.count)
            if d.bool() { bytes = Array(bytes.prefix(at)) } else { bytes.insert(d.element(Array("{}[]\":,\\x0 ".utf8)), at: at) }
            text = String(decoding: bytes, as: UTF8.self)
        }
        return text
    }
}

let jsonishDocuments = generator { d in JSONish.document(&d) }

let randomBytes = generator { d -> [UInt8] in
    let alphabet = Array("{}[]\":,.-+eE0123456789truefalsnl \\u".utf8)
    let jsonLike = d.bool()
    return (0..<d.int(0...128)).map { _ in jsonLike ? d.element(alphabet) : UInt8(d.int(0...255)) }
}

/// Decodes and validates; what a property can check without knowing the input.
func checkDecodesAndValidates(_ data: Data) {
    let decoded = ConfigCoding.decodeConfig(data)
    if decoded.value == nil { #expect(!decoded.problems.isEmpty, "no value and no problem") }
    guard let value = decoded.value else { return }
    let problems = Validation.validate(value.config) + Validation.check(value)
    for problem in problems { #expect(!problem.reason.isEmpty) }
    _ = ConfigCoding.decodeService(data)
    _ = ConfigCoding.decodeBackend(data)
}

// MARK: Hand-written rules

func backend(_ name: String, _ address: String = "10.0.0.1:80") -> BackendConfig {
    BackendConfig(name: name, address: address)
}

/// Three clean services, each with backends "one" and "two".
let cleanConfig = Config(
    services: ["alpha", "beta", "gamma"].enumerated().map { i, name in
        ServiceConfig(
            name: name, address: "127.0.0.1:\(1001 + i)", backends: [backend("one"), backend("two", "10.0.0.2:80")])
    })

/// One rule of Validation.swift: a change to the clean config and the one
/// path it must be reported at.
struct Rule: Sendable, CustomTestStringConvertible {
    var name: String
    var path: String
    var change: @Sendable (inout Config) -> Void
    var testDescription: String { "\(name) at \(path)" }

    init(_ name: String, _ path: String, _ change: @escaping @Sendable (inout Config) -> Void) {
        self.name = name
        self.path = path
        self.change = change
    }
}

let globalRules: [Rule] =
    [Rule("unknown global balance", "balance") { $0.balance = "FAST" }]
    + [
        ("check_interval", \Config.checkInterval), ("fall", \Config.fall), ("rise", \Config.rise),
        ("client_timeout", \Config.clientTimeout), ("server_timeout", \Config.serverTimeout),
        ("connect_timeout", \Config.connectTimeout),
    ].map { key, field in
        Rule("negative global \(key)", key) { $0[keyPath: field] = -1 }
    }

let serviceRules: [Rule] =
    [
        Rule("service name required", "services[1].name") { $0.services[1].name = "" },
        Rule("duplicate service name", "services[2].name") { $0.services[2].name = "alpha" },
        Rule("service address required", "services[1].address") { $0.services[1].address = "" },
        Rule("service network unknown", "services[1].network") { $0.services[1].network = "sctp" },
        Rule("service balance unknown", "services[1].balance") { $0.services[1].balance = "rr" },
        Rule("error page URL not http", "services[1].error_pages.ftp://e.com/x") { $0.services[1].errorPages = ["ftp://e.com/x": [503]] },
        Rule("error page URL without host", "services[1].error_pages.http:///x") { $0.services[1].errorPages = ["http:///x": [503]] },
        Rule("error page without codes", "services[1].error_pages.http://e.com/x") { $0.services[1].errorPages = ["http://e.com/x": []] },
        Rule("error page code 700", "services[1].error_pages.http://e.com/x[1]") { $0.services[1].errorPages = ["http://e.com/x": [503, 700]] },
        Rule("error page code 99", "services[1].error_pages.http://e.com/x[0]") { $0.services[1].errorPages = ["http://e.com/x": [99]] },
    ]
    + ["_admin", "_", "a/b", "a?b", "a#b", "a%b", "a b", "a\\b", ".", "..", "tab\there", "del\u{7f}", String(repeating: "n", count: 256)]
    .map { name in Rule("service name \(name.debugDescription)", "services[0].name") { $0.services[0].name = name } }
    + ["nohost", "127.0.0.1", "1.2.3.4:65536", "1.2.3.4:-1", "300.1.1.1:80", "10.0.0:80", "::1:80", "[::1]", "[zz::1]:80", "a b:80", "host:port"]
    .map { address in Rule("service address \(address.debugDescription)", "services[1].address") { $0.services[1].address = address } }
    + [
        ("check_interval", \ServiceConfig.checkInterval), ("fall", \ServiceConfig.fall), ("rise", \ServiceConfig.rise),
        ("client_timeout", \ServiceConfig.clientTimeout), ("server_timeout", \ServiceConfig.serverTimeout),
        ("connect_timeout", \ServiceConfig.connectTimeout),
    ].map { key, field in
        Rule("negative service \(key)", "services[1].\(key)") { $0.services[1][keyPath: field] = -5 }
    }
    + ["", "a.com:80", "www.*.com", "*", "*.", "bad host", "a..b", "-x.com", "x-.com", "a/b.com"]
    .map { host in
        Rule("virtual host \(host.debugDescription)", "services[1].virtual_hosts[1]") { $0.services[1].virtualHosts = ["ok.example.com", host] }
    }

let backendRules: [Rule] =
    [
        Rule("backend name required", "services[2].backends[0].name") { $0.services[2].backends[0].name = "" },
        Rule("backend name with _", "services[2].backends[0].name") { $0.services[2].backends[0].name = "_one" },
        Rule("backend name with /", "services[2].backends[0].name") { $0.services[2].backends[0].name = "o/ne" },
        Rule("duplicate backend name", "services[2].backends[1].name") { $0.services[2].backends[1].name = "one" },
        Rule("backend network unknown", "services[2].backends[0].network") { $0.services[2].backends[0].network = "ipx" },
        Rule("bad check address", "services[2].backends[1].check_address") { $0.services[2].backends[1].checkAddress = "nohost" },
        Rule("check address port 0", "services[2].backends[1].check_address") { $0.services[2].backends[1].checkAddress = "10.0.0.1:0" },
        Rule("negative weight", "services[2].backends[1].weight") { $0.services[2].backends[1].weight = -1 },
        Rule("weight above 1000", "services[2].backends[1].weight") { $0.services[2].backends[1].weight = 1001 },
        Rule("udp backend in a tcp service", "services[2].backends[1].network") { $0.services[2].backends[1].network = "udp" },
        Rule("tcp backend in a udp service", "services[2].backends[0].network") { config in
            config.services[2].network = "udp"
            config.services[2].backends[1].network = "udp4"
        },
        Rule("two services on one address", "services[2].address") { $0.services[2].address = "127.0.0.1:1001" },
        Rule("a backend at its own service's address", "services[2].backends[0].address") {
            $0.services[2].backends[0].address = "127.0.0.1:1003"
        },
        Rule("a backend at localhost on its service's port", "services[2].backends[1].address") {
            $0.services[2].backends[1].address = "LocalHost:1003"
        },
        Rule("a loopback backend of a service on every interface", "services[2].backends[0].address") { config in
            config.services[2].address = ":1003"
            config.services[2].backends[0].address = "127.0.0.2:1003"
        },
        Rule("a wildcard backend of a wildcard service", "services[2].backends[0].address") { config in
            config.services[2].address = "0.0.0.0:1003"
            config.services[2].backends[0].address = "0.0.0.0:1003"
        },
        Rule("an IPv6 loopback backend of a service on every IPv6 interface", "services[2].backends[1].address") { config in
            config.services[2].address = "[::]:1003"
            config.services[2].backends[1].address = "[::1]:1003"
        },
        Rule("a udp service whose backend is itself", "services[2].backends[0].address") { config in
            config.services[2].network = "udp"
            config.services[2].backends = [
                BackendConfig(name: "one", address: "127.0.0.1:1003", network: "udp"),
                BackendConfig(name: "two", address: "10.0.0.2:53", network: "udp"),
            ]
        },
        Rule("two services on one address, tcp4 and tcp", "services[2].address") { config in
            config.services[2].address = "127.0.0.1:1001"
            config.services[2].network = "tcp4"
        },
    ]
    + ["", ":80", "10.0.0.1:0", "10.0.0.1", "bad host:80", "10.0.0.256:80", "[::1:80"]
    .map { address in
        Rule("backend address \(address.debugDescription)", "services[2].backends[0].address") { $0.services[2].backends[0].address = address }
    }

@Suite struct ValidationTests {
    @Test func theCleanConfigHasNoProblem() {
        #expect(Validation.validate(cleanConfig) == [])
    }

    @Test(arguments: globalRules + serviceRules + backendRules)
    func eachRuleIsReportedAtItsPath(_ rule: Rule) {
        var config = cleanConfig
        rule.change(&config)
        let problems = Validation.validate(config)
        #expect(problems.map(\.path) == [rule.path], "\(problems)")
    }

    @Test func validValuesAtTheEdgesPass() {
        var config = cleanConfig
        config.services[0].address = ":0"
        config.services[1].address = "[::1]:65535"
        config.services[2].address = "localhost:1003"
        config.services[0].backends[0].address = "[fe80::1%eth0]:80"
        config.services[0].backends[1].address = "db.internal.:5432"
        config.services[1].backends[0].weight = 1000
        config.services[1].backends[1].checkAddress = "10.0.0.2:81"
        config.services[2].virtualHosts = ["*.Example.COM", "10.1.2.3", "www.example.com."]
        config.services[2].errorPages = ["HTTPS://e.com/x?y#z": [100, 599]]
        #expect(Validation.validate(config) == [])
    }

    @Test func listenersOnPortZeroOrOfOtherTransportsDoNotCollide() {
        var config = cleanConfig
        config.services[0].address = ":0"
        config.services[1].address = ":0"
        config.services[2].address = "127.0.0.1:1001"
        config.services[2].network = "udp"
        config.services[2].backends = [BackendConfig(name: "u", address: "10.0.0.1:53", network: "udp")]
        config.services.append(ServiceConfig(name: "delta", address: "127.0.0.1:1001", network: "tcp"))
        #expect(Validation.validate(config) == [])
    }

    @Test func backendsOnTheSamePortElsewhereOrOnOtherServicesAreNotLoops() {
        var config = cleanConfig
        // Another host on the service's port; another service of this proxy
        // (a chain, not a loop); a service on port 0, whatever port it gets;
        // a backend named by a host name this check does not resolve.
        config.services[2].backends = [backend("one", "10.0.0.1:1003"), backend("two", "127.0.0.1:1001")]
        config.services[1].address = ":0"
        config.services[1].backends = [backend("one", "127.0.0.1:1002"), backend("two", "db.local:1002")]
        config.services[0].address = "127.0.0.2:1001"
        config.services[0].backends = [backend("one", "127.0.0.1:1001"), backend("two", "localhost:1001")]
        #expect(Validation.validate(config) == [])
    }

    @Test func anUpdateMovingAServiceOntoItsOwnBackendIsRejectedAtItsAddress() {
        var config = cleanConfig
        config.services[2].address = "10.0.0.2:80"
        // The update gave the address alone: its backends were kept.
        let problems = Validation.checkMerged(
            config.canonical, touched: ["gamma": JSONPath("services[0]")],
            bodies: ["gamma": ServiceConfig(name: "gamma", address: "10.0.0.2:80")])
        #expect(problems.map(\.path) == ["services[0].address"])
        #expect(problems.first?.reason.contains("\"two\"") == true, "\(problems)")
    }

    @Test func everyProblemOfAConfigIsReported() {
        var config = cleanConfig
        config.fall = -1
        config.services[0].name = "_x"
        config.services[1].balance = "FAST"
        config.services[2].backends[0].address = "10.0.0.1"
        config.services[2].backends[1].weight = -3
        #expect(
            Validation.validate(config).map(\.path).sorted() == [
                "fall", "services[0].name", "services[1].balance", "services[2].backends[0].address",
                "services[2].backends[1].weight",
            ])
    }

    @Test func aBackendOfTheWrongTransportIsReportedAtItsIndexInTheBody() {
        // The body lists its backends unsorted: "z" first, then "a".
        var config = cleanConfig
        config.services[2].backends = [backend("z"), BackendConfig(name: "a", address: "10.0.0.1:53", network: "udp")]
        #expect(Validation.validate(config).map(\.path) == ["services[2].backends[1].network"])
    }

    @Test func anUpdateMovingAServiceOntoAnothersAddressIsRejectedWhicheverNameSortsFirst() {
        // "zeta" (touched) sorts after "alpha" (untouched), whose address it takes.
        var config = cleanConfig
        config.services.append(ServiceConfig(name: "zeta", address: "127.0.0.1:1001"))
        let problems = Validation.checkMerged(config.canonical, touched: ["zeta": JSONPath("services[0]")])
        #expect(problems.map(\.path) == ["services[0].address"])
        // And the other way round: "aardvark" sorts before "alpha".
        var other = cleanConfig
        other.services.append(ServiceConfig(name: "aardvark", address: "127.0.0.1:1001"))
        let reverse = Validation.checkMerged(other.canonical, touched: ["aardvark": JSONPath("services[0]")])
        #expect(reverse.map(\.path) == ["services[0].address"])
    }

    // Every error planted in a valid config is reported at its path, and nothing else is.
    @Test func everyPlantedErrorIsReportedAtItsPath() async {
        await propertyCheck(count: 200, input: generator { Plant.plant(&$0) }) { planted in
            let paths = Set(Validation.validate(planted.config).map(\.path))
            for error in planted.planted {
                #expect(!paths.isDisjoint(with: error.paths), "\(error) missing from \(paths.sorted())")
            }
            let allowed = planted.planted.reduce(Set<String>()) { $0.union($1.paths) }
            #expect(paths.subtracting(allowed).isEmpty, "unplanted problems \(paths.subtracting(allowed).sorted()), planted \(planted.planted)")
        }
    }

    // Valid configs have no problem.
    @Test func generatedValidConfigsHaveNoProblem() async {
        await propertyCheck(count: 200, input: ConfigGen.valid) { config in
            #expect(Validation.validate(config) == [])
        }
    }

    // Decoding and validating arbitrary bytes never traps; no value comes with a problem.
    @Test func arbitraryBytesNeverTrap() async {
        await propertyCheck(count: 500, input: randomBytes) { bytes in
            checkDecodesAndValidates(Data(bytes))
        }
    }

    // Decoding and validating arbitrary config-shaped JSON never traps; no value comes with a problem.
    @Test func arbitraryJSONNeverTraps() async {
        await propertyCheck(count: 500, input: jsonishDocuments) { text in
            checkDecodesAndValidates(Data(text.utf8))
        }
    }

    // Validating arbitrary configs never traps, and a config it passes is applied by the registry.
    @Test func aConfigThatValidatesIsApplied() async {
        let configs = generator { d in d.bool() ? ConfigGen.arbitraryConfig(&d) : ConfigGen.validConfig(&d) }
        await propertyCheck(count: 200, input: configs) { config in
            guard Validation.validate(config).isEmpty else { return }
            var harness = Harness()
            let reply = harness.apply(config).replies.last?.1
            #expect(reply == .applied(config.canonical))
        }
    }

    // A decoded document without problems that validates is applied by the registry as decoded.
    @Test func aDocumentThatDecodesAndValidatesIsApplied() async {
        await propertyCheck(count: 300, input: jsonishDocuments) { text in
            let decoded = ConfigCoding.decodeConfig(Data(text.utf8))
            guard decoded.problems.isEmpty, let update = decoded.value, Validation.validate(update.config).isEmpty,
                Validation.check(update).isEmpty
            else { return }
            var harness = Harness()
            let replies = harness.admin(.updateConfig(update)).replies
            #expect(replies.count == 1)
            if case .applied = replies.first?.1 {} else { Issue.record("not applied: \(replies) for \(text)") }
        }
    }
}
