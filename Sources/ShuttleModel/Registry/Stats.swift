/// A backend's stats, with the original's JSON keys.
public struct BackendStats: Codable, Equatable, Sendable {
    public var name: String
    public var address: String
    public var checkAddress: String
    public var up: Bool
    public var weight: Int
    public var sent: Int
    public var received: Int
    public var errors: Int
    public var connections: Int
    public var active: Int
    public var httpActive: Int
    public var checkSuccess: Int
    public var checkFail: Int

    enum CodingKeys: String, CodingKey {
        case name, address, up, weight, sent, received, errors, connections, active
        case checkAddress = "check_address"
        case httpActive = "http_active"
        case checkSuccess = "check_success"
        case checkFail = "check_fail"
    }
}

/// A service's stats, with the original's JSON keys. Totals are the sum over
/// its backends plus its own (connections with no backend, removed backends).
public struct ServiceStats: Codable, Equatable, Sendable {
    public var name: String
    public var address: String
    /// The local address the listener got (the port chosen for port 0);
    /// ours, beyond the original's keys.
    public var listenAddress: String
    public var network: String
    public var virtualHosts: [String]
    public var backends: [BackendStats]
    public var balance: String
    public var checkInterval: Int
    public var fall: Int
    public var rise: Int
    public var clientTimeout: Int
    public var serverTimeout: Int
    public var connectTimeout: Int
    public var maintenanceMode: Bool
    public var sent: Int
    public var received: Int
    public var errors: Int
    public var connections: Int
    public var active: Int
    public var httpActive: Int
    public var httpConnections: Int
    public var httpErrors: Int

    enum CodingKeys: String, CodingKey {
        case name, address, network, backends, balance, fall, rise, sent, received, errors, connections, active
        case virtualHosts = "virtual_hosts"
        case listenAddress = "listen_address"
        case checkInterval = "check_interval"
        case clientTimeout = "client_timeout"
        case serverTimeout = "server_timeout"
        case connectTimeout = "connect_timeout"
        case maintenanceMode = "maintenance_mode"
        case httpActive = "http_active"
        case httpConnections = "http_connections"
        case httpErrors = "http_errors"
    }
}

extension Registry {
    /// Stats of every service, sorted by name.
    public func stats() -> [ServiceStats] {
        services.keys.sorted().compactMap { stats(service: $0) }
    }

    /// Stats of one service.
    public func stats(service name: String) -> ServiceStats? {
        guard let state = services[name] else { return nil }
        let backends = state.backends.map { stats(of: $0) }
        let total = state.backends.reduce(state.own) { $0 + $1.counters }
        let s = state.settings
        return ServiceStats(
            name: name, address: state.config.address,
            listenAddress: state.listener.flatMap { boundAddresses[$0.id] } ?? state.config.address,
            network: s.network.rawValue,
            virtualHosts: state.config.virtualHosts, backends: backends, balance: s.balance.rawValue,
            checkInterval: s.checkInterval, fall: s.fall, rise: s.rise, clientTimeout: s.clientTimeout,
            serverTimeout: s.serverTimeout, connectTimeout: s.connectTimeout,
            maintenanceMode: state.config.maintenanceMode, sent: total.sent, received: total.received,
            errors: total.errors, connections: total.connections, active: total.active,
            httpActive: total.httpActive, httpConnections: total.httpConnections, httpErrors: total.httpErrors)
    }

    /// Stats of one backend.
    public func stats(service: String, backend: String) -> BackendStats? {
        services[service]?.backends.first { $0.name == backend }.map { stats(of: $0) }
    }

    func stats(of backend: BackendState) -> BackendStats {
        let c = backend.counters
        return BackendStats(
            name: backend.name, address: backend.config.address, checkAddress: backend.config.checkAddress,
            up: backend.isUp, weight: backend.weight, sent: c.sent, received: c.received, errors: c.errors,
            connections: c.connections, active: c.active, httpActive: c.httpActive,
            checkSuccess: backend.health.successes, checkFail: backend.health.failures)
    }

    /// A service's own counters (not those of its current backends).
    public func ownCounters(service: String) -> Counters? { services[service]?.own }

    /// Everything the metrics export, per service, sorted by name.
    public func metricsSnapshot() -> [ServiceSnapshot] {
        services.keys.sorted().map { name in
            let state = services[name]!
            let total = state.backends.reduce(state.own) { $0 + $1.counters }
            return ServiceSnapshot(
                name: name, totals: total,
                backends: state.backends.map {
                    BackendSnapshot(
                        name: $0.name, id: $0.id, counters: $0.counters, isUp: $0.isUp,
                        checkSuccesses: $0.health.successes, checkFailures: $0.health.failures)
                })
        }
    }
}

/// A service's counters for the metrics: totals (its backends plus its own).
public struct ServiceSnapshot: Equatable, Sendable {
    public var name: String
    public var totals: Counters
    public var backends: [BackendSnapshot]
}

/// A backend's counters and health for the metrics. `id` changes when the
/// backend is replaced, and its counters start again from zero.
public struct BackendSnapshot: Equatable, Sendable {
    public var name: String
    public var id: BackendID
    public var counters: Counters
    public var isUp: Bool
    public var checkSuccesses: Int
    public var checkFailures: Int
}
