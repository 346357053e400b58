import ShuttleModel

/// The operator: at random moments, a valid or an invalid change of the
/// whole config, of a service or of a backend, through the admin API's
/// commands. Each says whether it is meant to be valid, for the checker.
extension Simulation {
    mutating func adminChurn() {
        guard !draining else { return }
        queue.push(.adminChurn, at: now + random.nanos(world.adminInterval / 2...world.adminInterval * 3 / 2))
        guard proxy.up else {
            counts.admin += 1
            tally("admin lost: proxy down")
            return
        }
        let config = proxy.registry.config
        if random.chance(world.invalidRate) {
            submit(invalidCommand(config), expect: .invalid)
        } else {
            submit(validCommand(config), expect: .valid)
        }
    }

    func isUDP(_ service: ServiceConfig) -> Bool { service.network.hasPrefix("udp") }

    func blueprint(_ name: String) -> ServiceBlueprint? { World.blueprints.first { $0.name == name } }

    mutating func newBackend(_ name: String, for service: ServiceConfig) -> BackendConfig {
        World.backend(name, udp: isUDP(service), &random, backendHosts: world.backendHosts)
    }

    /// The service's backends after one or two edits: one removed, one
    /// added, a weight or an address changed.
    mutating func editedBackends(_ service: ServiceConfig) -> [BackendConfig] {
        var backends = service.backends
        for _ in 0..<random.int(1...2) {
            switch random.int(0...3) {
            case 0:
                if !backends.isEmpty && (backends.count > 1 || random.chance(0.2)) {
                    backends.remove(at: random.int(0...(backends.count - 1)))
                }
            case 1:
                if let name = World.backendNames.first(where: { n in !backends.contains { $0.name == n } }) {
                    backends.append(newBackend(name, for: service))
                }
            case 2:
                if !backends.isEmpty { backends[random.int(0...(backends.count - 1))].weight = random.int(0...4) }
            default:
                if !backends.isEmpty {
                    let i = random.int(0...(backends.count - 1))
                    let fresh = newBackend(backends[i].name, for: service)
                    backends[i].address = fresh.address
                    if !backends[i].checkAddress.isEmpty { backends[i].checkAddress = fresh.checkAddress }
                }
            }
        }
        return backends
    }

    mutating func validCommand(_ config: Config) -> AdminCommand {
        let service = config.services.isEmpty ? nil : random.pick(config.services)
        switch random.weighted([8, 3, 8, 12, 12, 8, 4, 16, 10, 5]) {
        case 0:
            // The running config again: changes nothing.
            return .updateConfig(ConfigUpdate(config))
        case 1:
            return .updateConfig(ConfigUpdate(global: Config(), httpsRedirectPresent: false, services: []))
        case 2:
            var g = Config()
            switch random.int(0...5) {
            case 0: g.checkInterval = random.int(100...1500)
            case 1: g.fall = random.int(1...3)
            case 2: g.rise = random.int(1...3)
            case 3: g.connectTimeout = random.int(100...2000)
            case 4: g.serverTimeout = random.int(2000...8000)
            default: g.balance = random.pick(["RR", "LC", "P2C", "HASH"])
            }
            return .updateConfig(ConfigUpdate(global: g, httpsRedirectPresent: false, services: []))
        case 3:
            guard let service else { break }
            var u = ServiceConfig(name: service.name)
            var present: ServiceFields = []
            switch random.int(0...6) {
            case 0: u.balance = random.pick(["RR", "LC", "P2C", "HASH"])
            case 1: u.checkInterval = random.int(100...1500)
            case 2: u.fall = random.int(1...3)
            case 3: u.rise = random.int(1...3)
            case 4: u.clientTimeout = isUDP(service) ? random.int(1000...4000) : random.int(3000...10000)
            case 5: u.serverTimeout = random.int(2000...8000)
            default: u.connectTimeout = random.int(100...2000)
            }
            if !isUDP(service) && random.chance(0.3) {
                present.insert(.virtualHosts)
                u.virtualHosts = Array(Set((0..<random.int(0...2)).map { _ in random.pick(World.virtualHosts) })).sorted()
            }
            if !isUDP(service) && random.chance(0.1) {
                present.insert(.maintenanceMode)
                u.maintenanceMode = random.chance(0.3)
            }
            if random.chance(0.4) {
                present.insert(.backends)
                u.backends = editedBackends(service)
            }
            let update = ServiceUpdate(u, present: present)
            return random.chance(0.5)
                ? .upsertService(name: service.name, update)
                : .updateConfig(ConfigUpdate(global: Config(), httpsRedirectPresent: false, services: [update]))
        case 4:
            guard let service else { break }
            var u = ServiceConfig(name: random.chance(0.5) ? service.name : "")
            u.backends = editedBackends(service)
            return .upsertService(name: service.name, ServiceUpdate(u, present: [.backends]))
        case 5:
            guard let missing = World.blueprints.first(where: { b in config.service(named: b.name) == nil && random.chance(0.5) })
            else { break }
            let fresh = World.service(missing, &random, backendHosts: world.backendHosts)
            return random.chance(0.5)
                ? .upsertService(name: missing.name, ServiceUpdate(fresh))
                : .updateConfig(ConfigUpdate(global: Config(), httpsRedirectPresent: false, services: [ServiceUpdate(fresh)]))
        case 6:
            guard let service, config.services.count > 1 else { break }
            return .removeService(name: service.name)
        case 7:
            guard let service else { break }
            let name = random.pick(World.backendNames)
            var backend: BackendConfig
            if let existing = service.backend(named: name), random.chance(0.6) {
                backend = existing
                switch random.int(0...3) {
                case 0: backend.weight = random.int(0...4)
                case 1: backend.address = newBackend(name, for: service).address
                case 2: backend.checkAddress = newBackend(name, for: service).checkAddress
                default: break  // unchanged
                }
            } else {
                backend = newBackend(name, for: service)
            }
            if random.chance(0.5) { backend.name = "" }
            return .upsertBackend(service: service.name, name: name, backend)
        case 8:
            guard let service, let backend = service.backends.isEmpty ? nil : random.pick(service.backends) else { break }
            return .removeBackend(service: service.name, name: backend.name)
        default:
            guard let service, let blueprint = blueprint(service.name) else { break }
            let other = blueprint.ports.map { "\(World.proxyIP):\($0)" }.first { $0 != service.address } ?? service.address
            return .upsertService(name: service.name, ServiceUpdate(ServiceConfig(address: other), present: []))
        }
        return .updateConfig(ConfigUpdate(config))
    }

    mutating func invalidCommand(_ config: Config) -> AdminCommand {
        let service = config.services.isEmpty ? nil : random.pick(config.services)
        let empty = ConfigUpdate(global: Config(), httpsRedirectPresent: false, services: [])
        switch random.int(0...12) {
        case 0:
            var update = empty
            update.global.fall = -1
            return .updateConfig(update)
        case 1:
            guard let service else { break }
            var u = ServiceConfig(name: service.name)
            u.backends = service.backends
            var bad = newBackend("z", for: service)
            bad.address = "10.0.1.1"
            u.backends.append(bad)
            return .upsertService(name: service.name, ServiceUpdate(u, present: [.backends]))
        case 2:
            guard let service else { break }
            var u = ServiceConfig(name: service.name)
            u.balance = "XX"
            return .upsertService(name: service.name, ServiceUpdate(u, present: []))
        case 3:
            guard let service else { break }
            var u = ServiceConfig(name: service.name)
            let b = newBackend("a", for: service)
            u.backends = [b, b]
            return .updateConfig(ConfigUpdate(global: Config(), httpsRedirectPresent: false, services: [ServiceUpdate(u, present: [.backends])]))
        case 4:
            guard let service else { break }
            var b = newBackend("z", for: service)
            b.network = isUDP(service) ? "tcp" : "udp"
            return .upsertBackend(service: service.name, name: "z", b)
        case 5:
            guard let service else { break }
            var b = newBackend("a", for: service)
            b.name = "b"
            return .upsertBackend(service: service.name, name: "a", b)
        case 6:
            guard let service else { break }
            var b = newBackend("a", for: service)
            b.weight = 5000
            return .upsertBackend(service: service.name, name: "a", b)
        case 7:
            guard let service,
                let other = config.services.first(where: { $0.name != service.name && isUDP($0) == isUDP(service) })
            else { break }
            return .upsertService(name: service.name, ServiceUpdate(ServiceConfig(address: other.address), present: []))
        case 8:
            guard let service, !isUDP(service) else { break }
            var u = ServiceConfig()
            u.virtualHosts = ["www.example.com:80"]
            return .upsertService(name: service.name, ServiceUpdate(u, present: [.virtualHosts]))
        case 9:
            return .removeService(name: "nosuch")
        case 10:
            guard let service else { break }
            return random.chance(0.5)
                ? .removeBackend(service: service.name, name: "zz")
                : .upsertBackend(service: "nosuch", name: "a", newBackend("a", for: service))
        case 11:
            return .upsertService(name: "_stats", ServiceUpdate(ServiceConfig(address: "\(World.proxyIP):7000")))
        default:
            // A body of {} for a service that does not exist: no address.
            guard let missing = World.blueprints.first(where: { config.service(named: $0.name) == nil }) else { break }
            return .upsertService(name: missing.name, ServiceUpdate(ServiceConfig(), present: []))
        }
        return .removeService(name: "nosuch")
    }
}
