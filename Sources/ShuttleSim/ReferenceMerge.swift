import ShuttleModel

/// The merge rules of an admin update, written down again from the
/// compatibility contract (COMPAT.md, "Merge semantics") rather than taken
/// from the model: the oracle the checker compares every applied update to.
enum ReferenceMerge {
    enum Outcome: Equatable {
        case merged(Config)
        /// The command names a service or backend that does not exist.
        case notFound
    }

    static func apply(_ command: AdminCommand, to config: Config) -> Outcome {
        switch command {
        case .updateConfig(let update):
            var merged = config
            let g = update.global
            if !g.balance.isEmpty { merged.balance = g.balance }
            if g.checkInterval != 0 { merged.checkInterval = g.checkInterval }
            if g.fall != 0 { merged.fall = g.fall }
            if g.rise != 0 { merged.rise = g.rise }
            if g.clientTimeout != 0 { merged.clientTimeout = g.clientTimeout }
            if g.serverTimeout != 0 { merged.serverTimeout = g.serverTimeout }
            if g.connectTimeout != 0 { merged.connectTimeout = g.connectTimeout }
            if update.httpsRedirectPresent { merged.httpsRedirect = g.httpsRedirect }
            for service in update.services { merged = upsert(merged, service) }
            return .merged(sorted(merged))

        case .upsertService(let name, var update):
            update.service.name = name
            return .merged(sorted(upsert(config, update)))

        case .removeService(let name):
            guard config.services.contains(where: { $0.name == name }) else { return .notFound }
            var merged = config
            merged.services.removeAll { $0.name == name }
            return .merged(sorted(merged))

        case .upsertBackend(let serviceName, let name, var backend):
            guard let i = config.services.firstIndex(where: { $0.name == serviceName }) else { return .notFound }
            backend.name = name
            var merged = config
            merged.services[i].backends.removeAll { $0.name == name }
            merged.services[i].backends.append(backend)
            return .merged(sorted(merged))

        case .removeBackend(let serviceName, let name):
            guard let i = config.services.firstIndex(where: { $0.name == serviceName }),
                config.services[i].backends.contains(where: { $0.name == name })
            else { return .notFound }
            var merged = config
            merged.services[i].backends.removeAll { $0.name == name }
            return .merged(sorted(merged))
        }
    }

    /// A service merged with an update: set strings and numbers replace,
    /// flags and lists replace when the update carries them.
    static func upsert(_ config: Config, _ update: ServiceUpdate) -> Config {
        var merged = config
        let u = update.service
        let index = merged.services.firstIndex { $0.name == u.name }
        var s = index.map { merged.services[$0] } ?? ServiceConfig(name: u.name)
        if !u.address.isEmpty { s.address = u.address }
        if !u.network.isEmpty { s.network = u.network }
        if !u.balance.isEmpty { s.balance = u.balance }
        if u.checkInterval != 0 { s.checkInterval = u.checkInterval }
        if u.fall != 0 { s.fall = u.fall }
        if u.rise != 0 { s.rise = u.rise }
        if u.clientTimeout != 0 { s.clientTimeout = u.clientTimeout }
        if u.serverTimeout != 0 { s.serverTimeout = u.serverTimeout }
        if u.connectTimeout != 0 { s.connectTimeout = u.connectTimeout }
        if update.present.contains(.httpsRedirect) { s.httpsRedirect = u.httpsRedirect }
        if update.present.contains(.maintenanceMode) { s.maintenanceMode = u.maintenanceMode }
        if update.present.contains(.virtualHosts) { s.virtualHosts = u.virtualHosts }
        if update.present.contains(.errorPages) { s.errorPages = u.errorPages }
        if update.present.contains(.backends) { s.backends = u.backends }
        if let index { merged.services[index] = s } else { merged.services.append(s) }
        return merged
    }

    /// Services and backends sorted by name, as the running config is kept.
    static func sorted(_ config: Config) -> Config {
        var copy = config
        copy.services = config.services.map { service in
            var s = service
            s.backends.sort { $0.name < $1.name }
            return s
        }.sorted { $0.name < $1.name }
        return copy
    }

    /// The first difference between two configs, in words.
    static func difference(_ want: Config, _ got: Config) -> String {
        func globals(_ c: Config) -> String {
            "balance=\(c.balance) check_interval=\(c.checkInterval) fall=\(c.fall) rise=\(c.rise) client_timeout=\(c.clientTimeout) server_timeout=\(c.serverTimeout) connect_timeout=\(c.connectTimeout) https-redirect=\(c.httpsRedirect)"
        }
        if globals(want) != globals(got) { return "globals: want \(globals(want)), got \(globals(got))" }
        let names = Set(want.services.map(\.name)).union(got.services.map(\.name)).sorted()
        for name in names {
            let w = want.service(named: name)
            let g = got.service(named: name)
            if w != g {
                return "service \(name): want \(w.map { "\($0)" } ?? "none"), got \(g.map { "\($0)" } ?? "none")"
            }
        }
        return "services in a different order"
    }
}

/// Which services serve a `Host`, by the contract's rules (names match
/// case-insensitively without the port; an exact name beats a wildcard, a
/// longer wildcard a shorter one), written independently of the model's table.
enum VirtualHostOracle {
    /// The lookup form of a Host header as the simulator and the recordings
    /// send it (`Name.Example.com:8080`), nil when it is not a plain name.
    static func normalize(header: String?) -> String? {
        guard var host = header?.lowercased(), !host.isEmpty, !host.hasPrefix("[") else { return nil }
        if let colon = host.lastIndex(of: ":") {
            let port = host[host.index(after: colon)...]
            guard !port.isEmpty, port.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            host = String(host[..<colon])
        }
        if host.hasSuffix(".") { host.removeLast() }
        guard !host.isEmpty, host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") })
        else { return nil }
        return host
    }

    /// The services that serve `host` (normalized), sorted; empty for none.
    static func candidates(_ host: String, in config: Config) -> [String] {
        var exact: [String] = []
        var best: (length: Int, services: [String]) = (0, [])
        for service in config.services {
            for name in service.virtualHosts {
                var n = name.lowercased()
                if n.hasSuffix(".") { n.removeLast() }
                if n == host {
                    exact.append(service.name)
                } else if n.hasPrefix("*.") {
                    let suffix = n.dropFirst()
                    guard host.hasSuffix(suffix), host.count > suffix.count else { continue }
                    if suffix.count > best.length {
                        best = (suffix.count, [service.name])
                    } else if suffix.count == best.length {
                        best.services.append(service.name)
                    }
                }
            }
        }
        let chosen = exact.isEmpty ? best.services : exact
        return Array(Set(chosen)).sorted()
    }
}
