/// The proxy's state machine: the configuration, the services with their
/// backends, health and counters, and the connections being placed.
///
/// Drivers send events with `handle(_:)` and carry out the actions it
/// returns; the same sequence of events always gives the same actions. It
/// reads no clock and draws randomness only from its seeded generator.
public struct Registry: Sendable {
    /// The running configuration, services and backends sorted by name.
    public internal(set) var config = Config()
    /// The driver's clock as last reported.
    public internal(set) var now = Instant.zero

    var services: [String: ServiceState] = [:]
    /// Bumped by every commit, the only place that adds or removes
    /// services: a position in `services` saved before may be stale.
    var serviceLayout: UInt64 = 0
    /// Committed listeners to their service.
    var listeners: [ListenerID: String] = [:]
    var connections: [ConnectionID: ConnectionState] = [:]
    var virtualHosts = VirtualHostTable()
    var random: SeededGenerator
    var pending: PendingUpdate?
    var queued: [(RequestID, AdminCommand)] = []
    var nextBackendID: UInt64 = 1
    var nextListenerID: UInt64 = 1
    var nextGeneration: UInt64 = 1
    /// The fallbacks after a failed connect, reused so that working them
    /// out allocates nothing.
    var order: [Int] = []

    /// The command line's settings.
    public let settings: ProxySettings

    public init(seed: UInt64 = 0, settings: ProxySettings = ProxySettings()) {
        self.settings = settings
        random = SeededGenerator(seed: seed)
        order.reserveCapacity(16)
    }

    /// Feeds one event to the model; returns what the driver must do, in order.
    public mutating func handle(_ event: Event) -> [Action] {
        switch event {
        case .admin(let id, let command):
            return admin(id, command)
        case .listenerBound(let id, let address):
            return listenerResult(id, .success(address))
        case .listenerFailed(let id, let reason):
            return listenerResult(id, .failure(BindError(reason: reason)))
        case .checkResult(let id, let passed):
            return checkResult(id, passed: passed)
        case .clientConnected(let connection, let listener, let key):
            return clientConnected(connection, listener: listener, key: key)
        case .backendConnected(let connection):
            backendConnected(connection)
            return []
        case .backendConnectFailed(let connection, let reason):
            return backendConnectFailed(connection, reason: reason)
        case .bytesTransferred(let connection, let sent, let received):
            bytesTransferred(connection, sent: sent, received: received)
            return []
        case .connectionClosed(let connection):
            connectionClosed(connection)
            return []
        case .requestReceived(let request, let info):
            return requestReceived(request, info)
        case .requestFinished(let request, let outcome):
            requestFinished(request, outcome)
            return []
        case .timeAdvanced(let instant):
            if instant > now { now = instant }
            return []
        }
    }

    /// Whether an admin update is waiting for its listeners.
    public var isUpdating: Bool { pending != nil }

    /// The listener of a service and the local address it is bound to.
    public func listener(ofService name: String) -> (Listener, boundAddress: String)? {
        guard let state = services[name], let listener = state.listener else { return nil }
        return (listener, boundAddresses[listener.id] ?? listener.address)
    }

    /// Local addresses of committed listeners, as reported when bound.
    var boundAddresses: [ListenerID: String] = [:]

    /// Whether the named backend is up; nil when there is no such backend.
    public func isUp(service: String, backend: String) -> Bool? {
        services[service]?.backends.first { $0.name == backend }?.isUp
    }

    /// The current id of the named backend.
    public func backendID(service: String, backend: String) -> BackendID? {
        services[service]?.backends.first { $0.name == backend }?.id
    }

    /// Health checks running now, by backend.
    public var healthChecks: [HealthCheck] {
        services.keys.sorted().flatMap { services[$0]!.backends.compactMap(\.check) }
    }

    /// Connections being placed or open, for invariant checks.
    public var openConnections: Int { connections.count }

    /// Picks the service for an HTTP request to `host` (a `Host` header value
    /// or a TLS server name); nil when no virtual host matches.
    public mutating func routeVirtualHost(_ host: String) -> String? {
        guard let name = VirtualHostName.fromHostHeader(host) else { return nil }
        return route(lookupForm: name)
    }

    /// `routeVirtualHost` for a name already in its lookup form.
    mutating func route(lookupForm name: String) -> String? {
        let services = self.services  // a second reference: the table moves while this is read
        return virtualHosts.route(name) { service in
            services.index(forKey: service).map { services.values[$0].hasBackendUp } ?? false
        }
    }
}

struct BindError: Error, Equatable {
    var reason: String
}
