/// The faults the simulator injects.
enum FaultKind: Int, CaseIterable {
    /// A backend's server process dies (connections reset, connects refused), then restarts.
    case backendCrash
    /// A backend refuses connects on its data port.
    case refuseConnects
    /// A backend answers seconds late.
    case slowBackend
    /// A backend accepts and reads but never answers.
    case stalledBackend
    /// A backend's check port accepts or refuses at random: its checks flap.
    case flappingChecks
    /// The link between the proxy and a backend is cut.
    case partition
    /// The link between the proxy and a backend loses datagrams.
    case datagramLoss
    /// The proxy process crashes and starts again with its state file.
    case proxyRestart
    /// Another process takes a port a service may move to.
    case portTaken
}

/// Which faults a run injects and how often, drawn from its seed (as
/// TigerBeetle's VOPR draws its packet simulator's settings per seed).
struct FaultPlan {
    var enabled: Bool
    /// Mean time between two faults.
    var interval: UInt64
    var weights: [Int]

    static let calm = FaultPlan(enabled: false, interval: seconds(1), weights: FaultKind.allCases.map { _ in 0 })

    init(enabled: Bool, interval: UInt64, weights: [Int]) {
        self.enabled = enabled
        self.interval = interval
        self.weights = weights
    }

    init(random: inout SimRandom) {
        enabled = !random.chance(0.1)
        interval = ms(random.int(200...3000))
        weights = FaultKind.allCases.map { kind in
            let weight = random.chance(0.7) ? random.int(1...5) : 0
            return kind == .proxyRestart ? weight / 2 : weight
        }
        if weights.allSatisfy({ $0 == 0 }) { weights[FaultKind.backendCrash.rawValue] = 1 }
    }
}

/// A fault in force, and what it hit.
struct ActiveFault {
    var kind: FaultKind
    var target: Int
    var healed = false
}

extension Simulation {
    mutating func injectFault() {
        guard !draining else { return }
        queue.push(.injectFault, at: now + random.nanos(faults.interval / 2...faults.interval * 3 / 2))
        let kind = FaultKind(rawValue: random.weighted(faults.weights))!
        let s = random.int(0...(servers.count - 1))
        var target = s
        let duration = ms(random.int(200...5000))
        switch kind {
        case .backendCrash: crashServer(s)
        case .refuseConnects: servers[s].refusing += 1
        case .slowBackend:
            servers[s].slow += 1
            servers[s].slowDelay = ms(random.int(500...6000))
        case .stalledBackend: servers[s].stalled += 1
        case .flappingChecks: servers[s].flapping += 1
        case .partition:
            let host = Int(servers[s].host)
            hosts[host].partitionedUntil = max(hosts[host].partitionedUntil, now + duration)
        case .datagramLoss:
            hosts[Int(servers[s].host)].loss = Double(random.int(10...60)) / 100
        case .proxyRestart:
            crashProxy()
        case .portTaken:
            let port = random.pick(World.blueprints).ports[1]
            target = port << 1 | (random.chance(0.5) ? 1 : 0)
            foreignPorts[target, default: 0] += 1
        }
        counts.faults += 1
        activeFaults.append(ActiveFault(kind: kind, target: target))
        let heal = kind == .proxyRestart ? ms(random.int(50...2000)) : duration
        queue.push(.healFault(Int32(activeFaults.count - 1)), at: now + heal)
    }

    mutating func heal(_ i: Int) {
        guard !activeFaults[i].healed else { return }
        activeFaults[i].healed = true
        let s = activeFaults[i].target
        switch activeFaults[i].kind {
        case .backendCrash: restartServer(s)
        case .refuseConnects: servers[s].refusing -= 1
        case .slowBackend: servers[s].slow -= 1
        case .stalledBackend: servers[s].stalled -= 1
        case .flappingChecks: servers[s].flapping -= 1
        case .partition:
            // A partition ends by itself; the drain ends them all at once.
            if draining { hosts[Int(servers[s].host)].partitionedUntil = min(hosts[Int(servers[s].host)].partitionedUntil, now) }
        case .datagramLoss: hosts[Int(servers[s].host)].loss = 0
        case .proxyRestart: restartProxy()
        case .portTaken: foreignPorts[s, default: 1] -= 1
        }
    }
}
