import ShuttleModel

/// A service the operator may run: its name, transport and the two
/// addresses it may listen on (so that services never collide, yet can move).
struct ServiceBlueprint {
    var name: String
    var udp: Bool
    var ports: [Int]
}

/// The shape of one run's world, drawn from its seed: how many hosts, how
/// busy the clients and the operator are, and the config the proxy starts with.
struct World {
    static let proxyIP = "10.0.0.1"
    /// The proxy's HTTP virtual-host listener (the `-http` flag's).
    static let httpPort = 80

    static let blueprints: [ServiceBlueprint] = [
        ServiceBlueprint(name: "web", udp: false, ports: [8001, 9001]),
        ServiceBlueprint(name: "api", udp: false, ports: [8002, 9002]),
        ServiceBlueprint(name: "shop", udp: false, ports: [8003, 9003]),
        ServiceBlueprint(name: "dns", udp: true, ports: [8053, 9053]),
        ServiceBlueprint(name: "metrics", udp: true, ports: [8054, 9054]),
    ]
    static let backendNames = ["a", "b", "c", "d", "e"]
    static let virtualHosts = ["www.example.com", "api.example.com", "*.example.com", "static.example.org", "*.cdn.example.org"]
    /// Host headers clients send: served names in other cases and with
    /// ports, wildcard matches, and names nobody serves.
    static let requestHosts = [
        "www.example.com", "WWW.Example.COM:8080", "api.example.com", "x.example.com", "a.b.example.com",
        "img.cdn.example.org", "static.example.org.", "unknown.example.net", "example.com",
    ]

    var backendHosts: Int
    var clientHosts: Int
    /// Mean time between two new clients.
    var spawnInterval: UInt64
    /// Mean time between two admin commands.
    var adminInterval: UInt64
    var invalidRate: Double
    /// Weights of TCP, HTTP and UDP clients.
    var mix: [Int]
    var initialConfig: Config

    init(random: inout SimRandom) {
        backendHosts = random.int(3...8)
        clientHosts = random.int(3...12)
        spawnInterval = us(random.int(2_000...30_000))
        adminInterval = ms(random.int(150...1_500))
        invalidRate = Double(random.int(5...30)) / 100
        mix = [random.int(2...6), random.int(0...4), random.int(0...4)]
        initialConfig = Self.initial(&random, backendHosts: backendHosts)
    }

    static func initial(_ random: inout SimRandom, backendHosts: Int) -> Config {
        var config = Config(
            balance: random.pick(["", "RR"]), checkInterval: random.int(150...1500), fall: random.int(1...3),
            rise: random.int(1...3), connectTimeout: random.pick([0, random.int(200...2000)]))
        var names = blueprints.indices.filter { _ in random.chance(0.6) }
        if !names.contains(where: { !blueprints[$0].udp }) { names.append(random.int(0...2)) }
        for i in Set(names).sorted() {
            config.services.append(service(blueprints[i], &random, backendHosts: backendHosts))
        }
        return config.canonical
    }

    static func service(_ blueprint: ServiceBlueprint, _ random: inout SimRandom, backendHosts: Int) -> ServiceConfig {
        var s = ServiceConfig(name: blueprint.name, address: "\(proxyIP):\(blueprint.ports[0])")
        s.network = blueprint.udp ? "udp" : random.pick(["", "tcp"])
        s.balance = random.pick(["", "RR", "RR", "RR", "LC", "P2C", "HASH"])
        if random.chance(0.5) { s.checkInterval = random.int(100...1500) }
        if random.chance(0.5) { s.fall = random.int(1...3) }
        if random.chance(0.5) { s.rise = random.int(1...3) }
        if blueprint.udp {
            s.clientTimeout = random.int(1000...4000)
        } else if random.chance(0.3) {
            s.clientTimeout = random.int(3000...10000)
        }
        if random.chance(0.4) { s.serverTimeout = random.int(2000...8000) }
        if random.chance(0.3) { s.connectTimeout = random.int(100...2000) }
        if !blueprint.udp {
            s.virtualHosts = Array(Set((0..<random.int(0...2)).map { _ in random.pick(virtualHosts) })).sorted()
            s.maintenanceMode = random.chance(0.05)
            s.httpsRedirect = random.chance(0.05)
        }
        let count = random.int(1...4)
        var names = backendNames
        for _ in 0..<count {
            let name = names.remove(at: random.int(0...(names.count - 1)))
            s.backends.append(backend(name, udp: blueprint.udp, &random, backendHosts: backendHosts))
        }
        return s.canonical
    }

    static func backend(_ name: String, udp: Bool, _ random: inout SimRandom, backendHosts: Int) -> BackendConfig {
        let host = "10.0.1.\(random.int(1...backendHosts))"
        let address = "\(host):\(BackendServer.dataPort)"
        var b = BackendConfig(name: name, address: address)
        b.network = udp ? "udp" : random.pick(["", "tcp"])
        switch random.weighted([3, 5, 2]) {
        case 1: b.checkAddress = "\(host):\(BackendServer.checkPort)"
        case 2: b.checkAddress = address
        default: break
        }
        b.weight = random.int(0...4)
        return b
    }
}
